/* Option values the store commands share (usage, cost, compare, keys). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "config/config.h"
#include "core/buf.h"
#include "meter/report.h"

int sl_cli_parse_format(const char *s, enum sl_cli_format *f)
{
    static const char *const names[] = {"table", "json", "csv"};
    for (int i = 0; i < 3; i++) {
        if (!s || strcmp(s, names[i]) == 0) {
            *f = s ? (enum sl_cli_format)i : SL_FORMAT_TABLE;
            return 0;
        }
    }
    return -1;
}

int sl_cli_parse_age(const char *s, int64_t *ms)
{
    return sl_report_parse_age(s, ms); /* the same words as GET /admin/usage's since= */
}

int sl_cli_store_url(const char *store, const char *config, const char *cmd, char *url, size_t n)
{
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    struct sl_config *cfg = NULL;
    int result = 0;
    if (!config)
        snprintf(url, n, "%s", store ? store : SL_CLI_DEFAULT_STORE);
    else if (sl_config_load(config, &cfg, &errors) != 0) {
        if (errors.ptr)
            fprintf(stderr, "%s", errors.ptr);
        else
            fprintf(stderr, "sluice %s: cannot load config\n", cmd);
        result = -1;
    } else
        snprintf(url, n, "%s", cfg->store ? cfg->store : SL_CLI_DEFAULT_STORE);
    sl_config_free(cfg);
    sl_buf_release(&errors);
    return result;
}
