/* The attempt loop shared by every client format: pick the path for each deployment,
 * and decide what a failure before the first byte leads to. */
#include "server/plan.h"

#include <stdio.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/json.h"

static void on_req_cleanup(void *p)
{
    cJSON_Delete(p);
}

struct sl_plan *sl_plan_new(struct sl_exchange *x, const struct sl_client_format *cf, cJSON *req,
                            const char *raw, size_t raw_len)
{
    struct sl_plan *p = sl_arena_alloc(x->arena, sizeof(*p));
    if (!p || sl_arena_cleanup(x->arena, on_req_cleanup, req)) {
        cJSON_Delete(req);
        return NULL;
    }
    p->cf = cf;
    p->req = req;
    p->raw = raw;
    p->raw_len = raw_len;
    p->stream = sl_json_bool(req, "stream", 0);
    x->row.stream = p->stream;
    return p;
}

int sl_plan_resolve(struct sl_exchange *x, struct sl_plan *p, const char *name)
{
    const struct sl_model_cfg *m = sl_config_find_model(x->snap->cfg, name);
    if (!m || p->ncand == SL_MAX_CANDIDATES)
        return -1;
    p->cand[p->ncand++] = m;
    return 0;
}

/* Nothing is left to try: the client gets the last failure, in its own format. */
static void answer_failure(struct sl_exchange *x, struct sl_plan *p)
{
    x->status = p->last.status;
    if (p->current)
        sl_exchange_account(x, p->current, &(struct sl_usage){0}, NULL, 0);
    if (p->retry_after[0] && !x->client_gone)
        evhttp_add_header(evhttp_request_get_output_headers(x->req), "Retry-After", p->retry_after);
    sl_exchange_send_error(x, p->cf, &p->last);
}

void sl_plan_next(struct sl_exchange *x, struct sl_plan *p)
{
    if (p->next >= p->ncand) {
        answer_failure(x, p);
        return;
    }
    const struct sl_model_cfg *m = p->cand[p->next++];
    int same_wire = (m->p->kind == SL_WIRE_OPENAI && strcmp(p->cf->name, "openai") == 0) ||
                    (m->p->kind == SL_WIRE_ANTHROPIC && strcmp(p->cf->name, "anthropic") == 0);
    p->current = m;
    p->attempts++;
    x->on_gone = NULL;
    if (!same_wire || !p->raw)
        sl_translate_attempt(x, p, m);
    else if (m->p->kind == SL_WIRE_OPENAI)
        sl_fast_start(x, p, m);
    else
        sl_pass_start(x, p, m);
}

void sl_plan_failed(struct sl_exchange *x, struct sl_plan *p, const struct sl_error *e,
                    const char *retry_after)
{
    p->last = *e;
    snprintf(p->retry_after, sizeof(p->retry_after), "%s", retry_after ? retry_after : "");
    if (!p->retry_after[0] && e->retry_after[0])
        snprintf(p->retry_after, sizeof(p->retry_after), "%s", e->retry_after);
    answer_failure(x, p);
}
