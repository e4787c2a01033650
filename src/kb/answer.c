/* Context assembly and the answer request. */
#include "kb/answer.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "meter/estimate.h"

static const char instructions[] =
    "Answer the question using only the numbered sources below. Cite the sources you use "
    "as [1], [2], ... right after the statements they support. If the sources do not hold "
    "the answer, say so. Answer in the language of the question.\n\nSources:\n\n";

/* The longest prefix of s (n bytes) within tokens, cut at a UTF-8 boundary. */
static size_t cut_to(const char *s, size_t n, int64_t tokens)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* the estimate grows with the prefix: bisect */
        size_t mid = lo + (hi - lo + 1) / 2;
        if (sl_estimate_text(s, mid) <= tokens)
            lo = mid;
        else
            hi = mid - 1;
    }
    while (lo > 0 && lo < n && ((unsigned char)s[lo] & 0xC0) == 0x80)
        lo--;
    return lo;
}

size_t sl_kb_context(const struct sl_kb_hit *hits, size_t n, int budget_tokens, struct sl_buf *out)
{
    int64_t left = budget_tokens;
    size_t used = 0;
    for (size_t i = 0; i < n && left > 0; i++) {
        char head[1200];
        int hl = snprintf(head, sizeof(head), "[%zu] %s%s%s\n", i + 1, hits[i].doc,
                          hits[i].heading[0] ? " > " : "", hits[i].heading);
        if (hl < 0)
            break;
        size_t tl = strlen(hits[i].text);
        int64_t cost = sl_estimate_text(head, (size_t)hl) + sl_estimate_text(hits[i].text, tl);
        if (cost > left) {
            int64_t room = left - sl_estimate_text(head, (size_t)hl);
            tl = room > 0 ? cut_to(hits[i].text, tl, room) : 0;
            if (tl == 0 && used)
                break;
        }
        if (sl_buf_append(out, head, (size_t)hl) || sl_buf_append(out, hits[i].text, tl) ||
            sl_buf_puts(out, "\n\n"))
            break;
        left -= sl_estimate_text(head, (size_t)hl) + sl_estimate_text(hits[i].text, tl);
        used++;
    }
    return used;
}

const char *sl_kb_question(const cJSON *req)
{
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(req, "messages"), *m;
    const char *q = NULL;
    cJSON_ArrayForEach(m, messages)
    {
        if (strcmp(sl_json_str(m, "role", ""), "user") != 0)
            continue;
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content"), *part;
        if (cJSON_IsString(content))
            q = content->valuestring;
        const cJSON *parts = cJSON_IsArray(content) ? content : NULL;
        cJSON_ArrayForEach(part, parts)
        {
            if (strcmp(sl_json_str(part, "type", ""), "text") == 0 && sl_json_str(part, "text", NULL))
                q = sl_json_str(part, "text", NULL);
        }
    }
    return q && q[0] ? q : NULL;
}

cJSON *sl_kb_answer_request(const struct sl_kb *kb, const cJSON *client_req, const char *context)
{
    cJSON *req = cJSON_Duplicate(client_req, 1);
    if (!req)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(req, "model");
    cJSON_AddStringToObject(req, "model", kb->answer_model);
    if (!cJSON_GetObjectItemCaseSensitive(req, "temperature"))
        cJSON_AddNumberToObject(req, "temperature", kb->temperature);
    cJSON *messages = cJSON_GetObjectItemCaseSensitive(req, "messages");
    struct sl_buf sys = SL_BUF_INIT(16u * 1024 * 1024);
    int bad = !cJSON_IsArray(messages) || sl_buf_puts(&sys, instructions) || sl_buf_puts(&sys, context);
    cJSON *m = bad ? NULL : cJSON_CreateObject();
    if (m) {
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", sys.ptr);
        cJSON_InsertItemInArray(messages, 0, m);
    }
    sl_buf_release(&sys);
    if (!m) {
        cJSON_Delete(req);
        return NULL;
    }
    return req;
}

static int num(struct sl_buf *b, const char *key, double v, int present)
{
    return present ? sl_buf_printf(b, ",\"%s\":%.6g", key, v) : sl_buf_printf(b, ",\"%s\":null", key);
}

int sl_kb_sources_json(const struct sl_kb_hit *hits, size_t n, struct sl_buf *out)
{
    int bad = sl_buf_puts(out, "[");
    for (size_t i = 0; i < n && !bad; i++) {
        const struct sl_kb_hit *h = &hits[i];
        bad = sl_buf_printf(out, "%s{\"index\":%zu,\"chunk_id\":%lld,\"document\":", i ? "," : "",
                            i + 1, (long long)h->chunk_id) ||
              sl_json_quote(out, h->doc, strlen(h->doc)) || sl_buf_puts(out, ",\"heading\":") ||
              sl_json_quote(out, h->heading, strlen(h->heading)) || sl_buf_puts(out, ",\"text\":") ||
              sl_json_quote(out, h->text, strlen(h->text)) ||
              sl_buf_printf(out, ",\"start\":%lld,\"end\":%lld,\"byte_start\":%lld,\"byte_end\":%lld,"
                                 "\"ordinal\":%d,\"scores\":{\"rrf\":%.6g",
                            (long long)h->start, (long long)h->end, (long long)h->byte_start,
                            (long long)h->byte_end, h->ordinal, h->rrf) ||
              num(out, "vector", h->vec_score, h->vec_rank > 0) ||
              num(out, "bm25", h->bm25_score, h->bm25_rank > 0) ||
              sl_buf_printf(out, ",\"vector_rank\":%d,\"bm25_rank\":%d", h->vec_rank, h->bm25_rank) ||
              num(out, "rerank", h->rerank_score, h->reranked) || sl_buf_puts(out, "}}");
    }
    return bad || sl_buf_puts(out, "]") ? -1 : 0;
}
