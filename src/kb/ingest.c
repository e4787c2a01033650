/* Document ingest: extraction and chunking (kb/extract.h, kb/chunk.h), the embedding
 * cache, and the store writes. */
#include "kb/ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/arena.h"
#include "core/buf.h"
#include "kb/chunk.h"
#include "kb/extract.h"
#include "kb/store.h"
#include "meter/estimate.h"

const char *sl_kb_added_name(enum sl_kb_added a)
{
    return a == SL_KB_ADDED ? "added" : a == SL_KB_REPLACED ? "replaced" : "unchanged";
}

void sl_kb_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    static const char hex[] = "0123456789abcdef";
    if (!EVP_Digest(p, n, md, &len, EVP_sha256(), NULL))
        len = 0;
    for (unsigned i = 0; i < len && i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * (len < 32 ? len : 32)] = '\0';
}

/* Code points in s[from, to), for the character offsets kept with each chunk. */
static int64_t chars(const char *s, size_t from, size_t to)
{
    int64_t n = 0;
    for (size_t i = from; i < to; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

struct work {
    struct sl_chunk *chunks;
    size_t n;
    struct sl_kb_chunk_row *rows;
    float *vecs;          /* n * dim, once known */
    int dim;
};

/* Vectors for every chunk: the cache's, and one embeddings call per batch for the rest. */
static int embed_chunks(sqlite3 *db, struct sl_kb_client *c, struct sl_kb *kb, struct work *w,
                        struct sl_kb_ingest_result *r, char *err, size_t errlen)
{
    size_t *missing = malloc((w->n + 1) * sizeof(size_t)), nm = 0;
    const char **texts = malloc((w->n + 1) * sizeof(*texts));
    size_t *lens = malloc((w->n + 1) * sizeof(size_t));
    int rc = missing && texts && lens ? 0 : -1;
    w->dim = kb->dim;
    if (w->dim)
        w->vecs = malloc(w->n * (size_t)w->dim * sizeof(float) + 1);
    for (size_t i = 0; !rc && i < w->n; i++) {
        int got = w->dim && w->vecs ? sl_kbs_cache_get(db, kb->embed_model, w->rows[i].hash,
                                                       w->vecs + i * (size_t)w->dim, w->dim, err, errlen)
                                    : SL_KB_NOT_FOUND;
        if (got < 0)
            rc = -1;
        else if (got == SL_KB_NOT_FOUND) {
            texts[nm] = w->rows[i].text;
            lens[nm] = w->rows[i].text_len;
            missing[nm++] = i;
        }
    }
    float *fresh = NULL;
    int dim = w->dim;
    if (!rc && nm && sl_kbc_embed(c, kb->embed_model, "ingest", texts, lens, nm, SL_KB_EMBED_BATCH,
                                  &fresh, &dim)) {
        snprintf(err, errlen, "embedding %zu chunk(s) with %s: %s", nm, kb->embed_model, c->err);
        rc = -1;
    }
    if (!rc && !w->vecs) {
        w->dim = dim;
        w->vecs = malloc(w->n * (size_t)dim * sizeof(float) + 1);
        rc = w->vecs ? 0 : -1;
    }
    for (size_t j = 0; !rc && j < nm; j++) {
        memcpy(w->vecs + missing[j] * (size_t)dim, fresh + j * (size_t)dim, (size_t)dim * sizeof(float));
        rc = sl_kbs_cache_put(db, kb->embed_model, w->rows[missing[j]].hash,
                              fresh + j * (size_t)dim, dim, err, errlen);
    }
    r->embedded = nm;
    r->cached = w->n - nm;
    free(fresh);
    free(missing);
    free(texts);
    free(lens);
    return rc;
}

static int store_all(sqlite3 *db, struct sl_kb *kb, const struct sl_kb_doc *old, struct sl_kb_doc *d,
                     struct work *w, char *err, size_t errlen)
{
    if (sl_kbs_begin(db)) {
        snprintf(err, errlen, "kb store: cannot begin a transaction");
        return -1;
    }
    int rc = old ? sl_kbs_doc_delete(db, kb->id, old->id, err, errlen) : 0;
    if (!rc)
        rc = sl_kbs_doc_insert(db, kb->id, d, err, errlen);
    for (size_t i = 0; !rc && i < w->n; i++) {
        int64_t id;
        rc = sl_kbs_chunk_insert(db, kb->id, d->id, &w->rows[i], &id, err, errlen) ||
             sl_kbs_vector_put(db, kb->id, id, kb->embed_model, w->vecs + i * (size_t)w->dim, w->dim,
                               err, errlen);
    }
    if (!rc && !kb->dim && w->n)
        rc = sl_kbs_set_dim(db, kb->id, w->dim, err, errlen);
    if (!rc && sl_kbs_commit(db)) {
        snprintf(err, errlen, "kb store: commit failed");
        rc = -1;
    }
    if (rc) {
        sl_kbs_rollback(db);
        return -1;
    }
    if (!kb->dim && w->n)
        kb->dim = w->dim;
    kb->rev++;
    return 0;
}

static int chunk_rows(struct sl_arena *a, const char *text, size_t len, struct work *w)
{
    w->rows = sl_arena_alloc(a, (w->n + 1) * sizeof(*w->rows));
    if (!w->rows)
        return -1;
    size_t at = 0;
    int64_t cat = 0;
    for (size_t i = 0; i < w->n; i++) {
        const struct sl_chunk *ch = &w->chunks[i];
        struct sl_kb_chunk_row *row = &w->rows[i];
        row->ordinal = (int)i;
        row->start = (int64_t)ch->start;
        row->end = (int64_t)ch->end;
        if (ch->start < at) { /* overlap: count again from the start */
            at = 0;
            cat = 0;
        }
        cat += chars(text, at, ch->start);
        at = ch->start;
        row->cstart = cat;
        row->cend = cat + chars(text, ch->start, ch->end < len ? ch->end : len);
        row->heading = ch->heading ? ch->heading : "";
        row->text = ch->text;
        row->text_len = ch->len;
        row->tokens = sl_estimate_text(ch->text, ch->len);
        sl_kb_sha256_hex(ch->text, ch->len, row->hash);
    }
    return 0;
}

int sl_kb_ingest(sqlite3 *db, struct sl_kb_client *c, struct sl_kb *kb, const char *name, int kind,
                 const char *data, size_t len, const char *type, struct sl_kb_ingest_result *r,
                 char *err, size_t errlen)
{
    struct sl_kb_doc old, d = {0};
    memset(r, 0, sizeof(*r));
    sl_kb_sha256_hex(data, len, d.hash);
    int have = sl_kbs_doc_get(db, kb->id, name, &old, err, errlen);
    if (have < 0)
        return -1;
    if (have == 0 && strcmp(old.hash, d.hash) == 0) {
        r->what = SL_KB_UNCHANGED;
        r->doc_id = old.id;
        r->chunks = (size_t)old.chunks;
        snprintf(r->profile, sizeof(r->profile), "%s", old.profile);
        return 0;
    }
    struct sl_buf text = SL_BUF_INIT(SL_MAX_DOC_TEXT);
    struct sl_arena *a = sl_arena_new();
    struct work w = {0};
    int rc = a ? sl_extract_mem((enum sl_doc_kind)kind, data, len, &text, err, errlen) : -1;
    const char *tp = text.ptr ? text.ptr : "";
    const char *pname = type && type[0] ? type : kb->profile;
    if (!rc && strcmp(pname, "auto") == 0)
        pname = sl_chunk_detect(tp, text.len);
    const struct sl_chunk_profile *prof = rc ? NULL : sl_chunk_profile(pname);
    if (!rc && !prof) {
        snprintf(err, errlen, "unknown chunking profile '%s'", pname);
        rc = -1;
    }
    if (!rc && (sl_chunk_text(prof, tp, text.len, a, &w.chunks, &w.n) || chunk_rows(a, tp, text.len, &w))) {
        snprintf(err, errlen, "cannot chunk %s (out of memory)", name);
        rc = -1;
    }
    if (!rc && w.n)
        rc = embed_chunks(db, c, kb, &w, r, err, errlen);
    if (!rc) {
        snprintf(d.name, sizeof(d.name), "%s", name);
        snprintf(d.type, sizeof(d.type), "%s", sl_doc_kind_name((enum sl_doc_kind)kind));
        snprintf(d.profile, sizeof(d.profile), "%s", pname);
        d.bytes = (int64_t)len;
        d.chunks = (int64_t)w.n;
        rc = store_all(db, kb, have == 0 ? &old : NULL, &d, &w, err, errlen);
    }
    if (!rc) {
        r->what = have == 0 ? SL_KB_REPLACED : SL_KB_ADDED;
        r->doc_id = d.id;
        r->chunks = w.n;
        snprintf(r->profile, sizeof(r->profile), "%s", pname);
    }
    free(w.vecs);
    sl_buf_release(&text);
    sl_arena_free(a);
    return rc;
}
