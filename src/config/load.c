/* YAML -> struct sl_config: walks the document once with the directive tables of
 * directives.c, reporting every problem as FILE:LINE: message, then checks what spans
 * blocks (unique names, each model's provider). */
#include <errno.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/loader.h"
#include "core/limits.h"

#define CONFIG_MAX_FILE   (4u * 1024 * 1024) /* read whole; anything bigger is not a config */
#define CONFIG_MAX_SCALAR (64u * 1024)       /* one value after ${VAR} substitution */

/* ---- reporting ---------------------------------------------------------------- */

static void report(struct loader *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(struct loader *ld, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ld->nerrors++;
    if (!ld->errors)
        return;
    if (line > 0)
        sl_buf_printf(ld->errors, "%s:%d: %s\n", ld->name, line, msg);
    else
        sl_buf_printf(ld->errors, "%s: %s\n", ld->name, msg);
}

void sl_config_bad(struct loader *ld, int line, const char *key, const char *fmt, ...)
{
    char msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *dot = ld->path[0] && key ? "." : "";
    const char *colon = ld->path[0] || key ? ": " : "";
    report(ld, line, "%s%s%s%s%s", ld->path, dot, key ? key : "", colon, msg);
}

void sl_config_oom(struct loader *ld, int line)
{
    report(ld, line, "out of memory");
}

/* Appends name to a ", "-separated list, ending it with "..." once it is full. */
static void join(char *out, size_t size, const char *name)
{
    size_t len = strlen(out);
    if (len >= 3 && strcmp(out + len - 3, "...") == 0)
        return;
    if (len + strlen(name) + 8 > size) {
        snprintf(out + len, size - len, "%s...", len ? ", " : "");
        return;
    }
    snprintf(out + len, size - len, "%s%s", len ? ", " : "", name);
}

/* ---- walking the document ----------------------------------------------------- */

/* 1-based line where a node starts; collections have no token of their own, so they
 * take their first scalar's. Empty ones (and null values) get fallback. */
static int node_line(struct fy_node *n, int fallback)
{
    while (n && !fy_node_is_scalar(n)) {
        void *it = NULL;
        if (fy_node_is_mapping(n)) {
            struct fy_node_pair *pair = fy_node_mapping_iterate(n, &it);
            n = pair ? fy_node_pair_key(pair) : NULL;
        } else {
            n = fy_node_sequence_iterate(n, &it);
        }
    }
    struct fy_token *tok = n ? fy_node_get_scalar_token(n) : NULL;
    const struct fy_mark *mark = tok ? fy_token_start_mark(tok) : NULL;
    return mark ? mark->line + 1 : fallback;
}

/* "key:" with nothing after it, "~" and "null" (unquoted) are YAML's null. */
static int is_null(struct fy_node *n)
{
    size_t len = 0;
    if (!n)
        return 1;
    if (!fy_node_is_scalar(n) || fy_node_get_style(n) != FYNS_PLAIN)
        return 0;
    const char *s = fy_node_get_scalar(n, &len);
    return !s || len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static size_t path_push(struct loader *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static size_t path_push(struct loader *ld, const char *fmt, ...)
{
    size_t saved = strlen(ld->path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->path + saved, sizeof(ld->path) - saved, fmt, ap);
    va_end(ap);
    return saved;
}

static void path_pop(struct loader *ld, size_t saved)
{
    ld->path[saved] = '\0';
}

static void walk(struct loader *ld, struct fy_node *map, const struct table *t, void *base,
                 int line);

static void apply_scalar(struct loader *ld, const struct directive *d, struct fy_node *node,
                         void *base, int line)
{
    size_t len = 0;
    const char *raw = is_null(node) ? NULL : fy_node_get_scalar(node, &len);
    struct sl_buf buf = SL_BUF_INIT(CONFIG_MAX_SCALAR);
    char unset[SL_MAX_NAME];
    const char *why = NULL;
    struct scalar v = {d->key, "", 0, line, NULL};

    if (sl_config_expand_env(raw ? raw : "", raw ? len : 0, &buf, unset, sizeof(unset), &why)) {
        sl_config_bad(ld, line, d->key, "%s", why);
        goto out;
    }
    v.s = buf.ptr;
    v.len = buf.len;
    v.unset = unset[0] ? unset : NULL;
    if (strlen(v.s) != v.len)
        sl_config_bad(ld, line, d->key, "contains a NUL byte");
    else if (v.len == 0 && !(d->flags & D_EMPTY_OK) && v.unset)
        sl_config_bad(ld, line, d->key, "is empty because %s is not set", v.unset);
    else if (v.len == 0 && !(d->flags & D_EMPTY_OK))
        sl_config_bad(ld, line, d->key, "has no value");
    else
        d->scalar(ld, &v, base, d);
out:
    sl_buf_release(&buf);
}

static const char *node_kind(struct fy_node *n)
{
    return fy_node_is_mapping(n) ? "mapping" : fy_node_is_sequence(n) ? "list" : "single value";
}

/* Substitutes one list item into bufs[i]; 0, or -1 when it was reported. */
static int seq_item(struct loader *ld, const struct directive *d, struct fy_node *node,
                    struct sl_buf *buf, struct scalar *v)
{
    size_t len = 0;
    char unset[SL_MAX_NAME];
    const char *why = NULL;
    int line = node_line(node, v->line);
    if (!fy_node_is_scalar(node)) {
        sl_config_bad(ld, line, d->key, "expected single values in the list, not a %s",
                      node_kind(node));
        return -1;
    }
    const char *raw = fy_node_get_scalar(node, &len);
    if (sl_config_expand_env(raw ? raw : "", raw ? len : 0, buf, unset, sizeof(unset), &why)) {
        sl_config_bad(ld, line, d->key, "%s", why);
        return -1;
    }
    if ((buf->len == 0 && !(d->flags & D_EMPTY_OK)) ||
        (buf->len && strlen(buf->ptr) != buf->len)) {
        sl_config_bad(ld, line, d->key, "has an empty item or a NUL byte");
        return -1;
    }
    *v = (struct scalar){d->key, buf->len ? buf->ptr : "", buf->len, line, NULL};
    return 0;
}

/* A list of scalars: every item is substituted first, then typed in one call, so the
 * typing function sees the whole list (to count it, check order, find duplicates). */
static void apply_seq(struct loader *ld, const struct directive *d, struct fy_node *seq,
                      void *base, int line)
{
    int n = fy_node_sequence_item_count(seq);
    if (n > SL_MAX_SEQ_ITEMS) {
        sl_config_bad(ld, line, d->key, "too many items (%d; at most %d)", n, SL_MAX_SEQ_ITEMS);
        return;
    }
    struct sl_buf bufs[SL_MAX_SEQ_ITEMS];
    struct scalar items[SL_MAX_SEQ_ITEMS];
    int ok = 1, filled = 0;
    void *it = NULL;
    struct fy_node *item;
    while (filled < n && (item = fy_node_sequence_iterate(seq, &it))) {
        bufs[filled] = (struct sl_buf)SL_BUF_INIT(CONFIG_MAX_SCALAR);
        items[filled].line = line;
        ok &= seq_item(ld, d, item, &bufs[filled], &items[filled]) == 0;
        filled++;
    }
    if (ok)
        d->seq(ld, items, (size_t)filled, line, base, d);
    for (int i = 0; i < filled; i++)
        sl_buf_release(&bufs[i]);
}

/* Walks each item of a sequence of mappings into a new array of structs, stored
 * where l says in base. The array keeps a slot for a malformed item so that line
 * numbers and indexes in later messages still match the file. */
static void walk_items(struct loader *ld, struct fy_node *seq, const struct list *l, void *base,
                       int line)
{
    int n = fy_node_sequence_item_count(seq);
    if (n <= 0)
        return;
    if ((size_t)n > l->max) {
        sl_config_bad(ld, line, NULL, "too many entries (%d; at most %zu)", n, l->max);
        return;
    }
    char *arr = calloc((size_t)n, l->size);
    if (!arr) {
        sl_config_oom(ld, line);
        return;
    }
    *(void **)(void *)((char *)base + l->arr_off) = arr;
    *(size_t *)(void *)((char *)base + l->count_off) = (size_t)n;
    void *it = NULL;
    struct fy_node *item;
    for (size_t i = 0; i < (size_t)n && (item = fy_node_sequence_iterate(seq, &it)); i++) {
        int iline = node_line(item, line);
        size_t saved = path_push(ld, "[%zu]", i);
        l->init(arr + i * l->size, iline);
        if (!fy_node_is_mapping(item))
            sl_config_bad(ld, iline, NULL, "expected %s, not a %s", l->item->what,
                          node_kind(item));
        else
            walk(ld, item, l->item, arr + i * l->size, iline);
        path_pop(ld, saved);
    }
}

static void apply(struct loader *ld, const struct directive *d, struct fy_node *v, void *base,
                  int line)
{
    if (d->scalar) {
        if (v && !fy_node_is_scalar(v))
            sl_config_bad(ld, line, d->key, "expected a single value, not a %s", node_kind(v));
        else
            apply_scalar(ld, d, v, base, line);
        return;
    }
    if (is_null(v)) /* "server:" with nothing under it keeps every default */
        return;
    if (d->seq) {
        if (!fy_node_is_sequence(v))
            sl_config_bad(ld, line, d->key, "expected a list ([a, b] or lines starting with "
                          "'- '), not a %s", node_kind(v));
        else
            apply_seq(ld, d, v, base, line);
        return;
    }
    if (d->map && !fy_node_is_mapping(v)) {
        sl_config_bad(ld, line, d->key, "expected a mapping of keys, not a %s", node_kind(v));
    } else if (d->list && !fy_node_is_sequence(v)) {
        sl_config_bad(ld, line, d->key, "expected a list (lines starting with '- '), not a %s",
                      node_kind(v));
    } else {
        size_t saved = path_push(ld, "%s%s", ld->path[0] ? "." : "", d->key);
        if (d->map)
            walk(ld, v, d->map, (char *)base + d->off, line);
        else
            walk_items(ld, v, d->list, base, line);
        path_pop(ld, saved);
    }
}

/* Levenshtein distance, for "did you mean" on short keys. */
static size_t distance(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b), row[33];
    if (n > 32 || m > 32)
        return SIZE_MAX;
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[m];
}

static void unknown_key(struct loader *ld, const struct table *t, const char *key, size_t len,
                        int line)
{
    char known[512] = "";
    const char *near = NULL;
    int shown = (int)(len > 64 ? 64 : len);
    size_t best = 3; /* suggest only within two edits */
    for (size_t i = 0; i < t->n; i++) {
        size_t dist = key ? distance(key, len, t->rows[i].key) : SIZE_MAX;
        if (dist < best) {
            best = dist;
            near = t->rows[i].key;
        }
        join(known, sizeof(known), t->rows[i].key);
    }
    if (!key)
        sl_config_bad(ld, line, NULL, "keys must be plain names (known keys: %s)", known);
    else if (near)
        sl_config_bad(ld, line, NULL, "unknown key '%.*s', did you mean '%s'? (known keys: %s)",
                      shown, key, near, known);
    else
        sl_config_bad(ld, line, NULL, "unknown key '%.*s' (known keys: %s)", shown, key, known);
}

static const struct directive *find_row(const struct table *t, const char *key, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->rows[i].key) == len && memcmp(t->rows[i].key, key, len) == 0)
            return &t->rows[i];
    return NULL;
}

static void walk(struct loader *ld, struct fy_node *map, const struct table *t, void *base,
                 int line)
{
    uint64_t seen = 0; /* one bit per row: tables stay under 64 rows */
    void *it = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(map, &it))) {
        struct fy_node *k = fy_node_pair_key(pair);
        int kline = node_line(k, line);
        size_t klen = 0;
        const char *key = k && fy_node_is_scalar(k) ? fy_node_get_scalar(k, &klen) : NULL;
        const struct directive *d = key ? find_row(t, key, klen) : NULL;
        if (!d && t == &sl_config_top_table && klen > 2 && memcmp(key, "x-", 2) == 0)
            continue; /* "x-" keys hold YAML anchors to reuse below, as in docker-compose */
        if (!d) {
            unknown_key(ld, t, key, klen, kline);
            continue;
        }
        seen |= UINT64_C(1) << (d - t->rows);
        apply(ld, d, fy_node_pair_value(pair), base, kline);
    }
    for (size_t i = 0; i < t->n; i++)
        if ((t->rows[i].flags & D_REQUIRED) && !(seen & (UINT64_C(1) << i)))
            sl_config_bad(ld, line, NULL, "missing required key '%s'", t->rows[i].key);
}

/* ---- checks across blocks ----------------------------------------------------- */

static void inherit(struct sl_timeouts *t, const struct sl_timeouts *def)
{
    t->connect_ms = t->connect_ms ? t->connect_ms : def->connect_ms;
    t->first_byte_ms = t->first_byte_ms ? t->first_byte_ms : def->first_byte_ms;
    t->idle_ms = t->idle_ms ? t->idle_ms : def->idle_ms;
    t->total_ms = t->total_ms ? t->total_ms : def->total_ms;
}

static void check_providers(struct loader *ld)
{
    struct sl_config *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        struct sl_provider_cfg *p = &cfg->providers[i];
        inherit(&p->timeouts, &cfg->upstream);
        const struct sl_provider_cfg *first = sl_config_find_provider(cfg, p->name);
        if (first && first != p)
            report(ld, p->line, "duplicate provider name '%s' (first defined at line %d)",
                   p->name, first->line);
    }
}

static void check_model(struct loader *ld, struct sl_model_cfg *m, size_t index)
{
    struct sl_config *cfg = ld->cfg;
    for (size_t j = 0; m->name && j < index; j++) {
        if (cfg->models[j].name && strcmp(cfg->models[j].name, m->name) == 0) {
            report(ld, m->line, "duplicate model name '%s' (first defined at line %d)", m->name,
                   cfg->models[j].line);
            break;
        }
    }
    if (m->name && !m->model && !(m->model = strdup(m->name)))
        sl_config_oom(ld, m->line);
    if (!m->provider)
        return;
    m->p = sl_config_find_provider(cfg, m->provider);
    if (m->p)
        return;
    char known[384] = "";
    for (size_t j = 0; j < cfg->nproviders; j++)
        if (cfg->providers[j].name)
            join(known, sizeof(known), cfg->providers[j].name);
    report(ld, m->line, "model '%s': unknown provider '%s' (providers: %s)",
           m->name ? m->name : "?", m->provider, known[0] ? known : "none");
}

/* cache.embedding_model names a model of this file. */
static void check_cache(struct loader *ld)
{
    const struct sl_cache_cfg *c = &ld->cfg->cache;
    if (!c->embedding_model[0])
        return;
    for (size_t i = 0; i < ld->cfg->nmodels; i++)
        if (ld->cfg->models[i].name && strcmp(ld->cfg->models[i].name, c->embedding_model) == 0)
            return;
    report(ld, c->embedding_model_line, "cache.embedding_model: '%s' is not a model of models:",
           c->embedding_model);
}

static void finish(struct loader *ld)
{
    check_providers(ld);
    for (size_t i = 0; i < ld->cfg->nmodels; i++)
        check_model(ld, &ld->cfg->models[i], i);
    sl_config_check_groups(ld);
    check_cache(ld);
    sl_config_check_chunking(ld);
}

/* ---- entry points ------------------------------------------------------------- */

static void apply_defaults(struct loader *ld, const struct table *t, void *base)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct directive *d = &t->rows[i];
        if (d->map) {
            apply_defaults(ld, d->map, (char *)base + d->off);
        } else if (d->scalar && d->def) {
            struct scalar v = {d->key, d->def, strlen(d->def), 0, NULL};
            d->scalar(ld, &v, base, d);
        }
    }
}

struct sl_config *sl_config_default(void)
{
    struct sl_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return NULL;
    struct loader ld = {.name = "defaults", .cfg = cfg};
    apply_defaults(&ld, &sl_config_top_table, cfg);
    if (ld.nerrors) { /* the defaults are valid, so this is out of memory */
        sl_config_free(cfg);
        return NULL;
    }
    return cfg;
}

static void on_diag_output(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    /* Errors are collected and reported as FILE:LINE lines; nothing goes to stderr. */
}

/* Only blank lines and comments: libfyaml builds no document for that, and says
 * nothing, so an empty file is told apart here. */
static int is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '#')
            while (i < len && s[i] != '\n')
                i++;
        else if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    }
    return 1;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
             : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!n || n > avail)
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    for (size_t k = 1; k < n; k++, lo = 0x80, hi = 0xbf)
        if (s[k] < lo || s[k] > hi)
            return 0;
    return n;
}

/* YAML must be Unicode, and libfyaml 0.7.12 loops forever on some malformed UTF-8
 * (a directive line such as "% \xc2"), so the text is checked before it is parsed.
 * Returns the 1-based line of the first bad byte, or 0 when it is all valid. */
static int bad_utf8_line(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    int line = 1;
    for (size_t i = 0, n; i < len; i += n) {
        if (!(n = utf8_len(s + i, len - i)))
            return line;
        line += s[i] == '\n';
    }
    return 0;
}

/* Returns 0 with *doc set (NULL for an empty file), or -1 when the YAML is malformed. */
static int build(struct loader *ld, const char *yaml, size_t len, struct fy_document **doc)
{
    int bad_line = bad_utf8_line(yaml, len);
    if (bad_line) {
        report(ld, bad_line, "not valid UTF-8 text");
        return -1;
    }
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = on_diag_output;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag) {
        sl_config_oom(ld, 0);
        return -1;
    }
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT, .diag = diag};
    *doc = len ? fy_document_build_from_string(&pcfg, yaml, len) : NULL;
    int before = ld->nerrors;
    void *it = NULL;
    struct fy_diag_error *e;
    while (!*doc && (e = fy_diag_errors_iterate(diag, &it)))
        if (e->type >= FYET_ERROR)
            report(ld, e->line, "%s", e->msg ? e->msg : "malformed YAML");
    fy_diag_destroy(diag);
    if (*doc || is_blank(yaml, len))
        return 0;
    if (ld->nerrors == before)
        report(ld, 0, "malformed YAML");
    return -1;
}

int sl_config_parse(const char *yaml, size_t len, const char *name, struct sl_config **out,
                    struct sl_buf *errors)
{
    struct loader ld = {.name = name ? name : "config", .errors = errors};
    struct fy_document *doc = NULL;
    *out = NULL;
    ld.cfg = sl_config_default();
    if (!ld.cfg || !(ld.cfg->path = strdup(ld.name))) {
        sl_config_oom(&ld, 0);
        sl_config_free(ld.cfg);
        return -1;
    }
    if (build(&ld, yaml, len, &doc) == 0) {
        struct fy_node *root = doc ? fy_document_root(doc) : NULL;
        if (!is_null(root) && !fy_node_is_mapping(root))
            report(&ld, node_line(root, 1), "the file must be a mapping of keys (server:, "
                   "providers:, models:, ...)");
        else if (!is_null(root))
            walk(&ld, root, &sl_config_top_table, ld.cfg, 1);
        finish(&ld);
    }
    if (doc)
        fy_document_destroy(doc);
    if (ld.nerrors) {
        sl_config_free(ld.cfg);
        return -1;
    }
    *out = ld.cfg;
    return 0;
}

static int read_file(struct loader *ld, const char *path, struct sl_buf *text)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        report(ld, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    char chunk[8192];
    size_t n;
    int result = 0;
    while (!result && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (sl_buf_append(text, chunk, n)) {
            report(ld, 0, "larger than %u bytes, or out of memory", CONFIG_MAX_FILE);
            result = -1;
        }
    }
    if (!result && ferror(f)) {
        report(ld, 0, "cannot read: %s", strerror(errno));
        result = -1;
    }
    fclose(f);
    return result;
}

int sl_config_load(const char *path, struct sl_config **out, struct sl_buf *errors)
{
    struct loader ld = {.name = path, .errors = errors};
    struct sl_buf text = SL_BUF_INIT(CONFIG_MAX_FILE);
    *out = NULL;
    int result = read_file(&ld, path, &text);
    if (!result)
        result = sl_config_parse(text.ptr ? text.ptr : "", text.len, path, out, errors);
    sl_buf_release(&text);
    return result;
}
