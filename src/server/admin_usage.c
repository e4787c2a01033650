/* GET /admin/usage (master key): the spend report of `sluice cost report`, with the
 * same options as query parameters: ?since=30d&by=model|provider|day|key|tag
 * &format=json|csv|table. The numbers come from the same store query and sheet code
 * (src/meter/report.c), so both always agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/clock.h"
#include "meter/report.h"
#include "server/internal.h"
#include "store/store.h"

#define MAX_REPORT (64u * 1024 * 1024)

static const char *const content_types[] = {
    [SL_REPORT_TABLE] = "text/plain; charset=utf-8",
    [SL_REPORT_JSON] = "application/json",
    [SL_REPORT_CSV] = "text/csv; charset=utf-8",
};

/* The rows since since_ms; no database yet is an empty report. */
static int load(struct sl_exchange *x, int64_t since_ms, enum sl_usage_by by,
                struct sl_usage_group **g, size_t *n, char *err, size_t errlen)
{
    struct sl_store *s = NULL;
    int rc = sl_store_open(x->snap->cfg->store, SL_STORE_MUST_EXIST, &s, err, errlen);
    if (rc == SL_STORE_MISSING)
        return SL_STORE_OK;
    if (rc == SL_STORE_OK)
        rc = sl_store_usage_groups(s, since_ms, by, g, n, err, errlen);
    sl_store_close(s);
    return rc;
}

/* The store is read on this worker: a report over daily roll-ups takes milliseconds,
 * and admin calls are rare. */
void sl_admin_usage_handle(struct sl_exchange *x)
{
    struct evkeyvalq q = {0};
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(x->req));
    enum sl_report_format f;
    enum sl_usage_by by;
    const char *word, *since_s, *bad = NULL;
    int64_t age = 0;
    if (!sl_admin_authorized(x))
        return;
    if (evhttp_parse_query_str(query ? query : "", &q) != 0) /* initialises q too */
        bad = "the query string is malformed";
    since_s = evhttp_find_header(&q, "since");
    if (!bad && since_s && sl_report_parse_age(since_s, &age))
        bad = "since: expected an age such as 24h, 7d or 30d";
    if (!bad && sl_report_parse_by(evhttp_find_header(&q, "by"), &by, &word))
        bad = "by: expected model, provider, day, key or tag";
    const char *format = evhttp_find_header(&q, "format");
    if (!bad && sl_report_parse_format(format ? format : "json", &f))
        bad = "format: expected json, csv or table";
    evhttp_clear_headers(&q);
    if (bad) {
        sl_exchange_error(x, 400, "invalid_request_error", bad, NULL, NULL);
        return;
    }
    struct sl_usage_group *g = NULL;
    size_t n = 0;
    char err[512] = "";
    struct sl_sheet sheet = {0};
    struct sl_buf out = SL_BUF_INIT(MAX_REPORT);
    int rc = load(x, since_s ? sl_wall_ms() - age : 0, by, &g, &n, err, sizeof(err));
    if (rc == SL_STORE_OK && (sl_report_spend(&sheet, g, n, by, word, f) ||
                              sl_sheet_write(&sheet, f, &out)))
        snprintf(err, sizeof(err), "the report is larger than sluice can build");
    if (rc != SL_STORE_OK || err[0])
        sl_exchange_error(x, 500, "api_error", err, NULL, NULL);
    else
        sl_exchange_reply(x, 200, content_types[f], out.ptr ? out.ptr : "", out.len);
    free(g);
    sl_sheet_free(&sheet);
    sl_buf_release(&out);
}
