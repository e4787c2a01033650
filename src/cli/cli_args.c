/* Option values the reporting commands share (usage, cost). */
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
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
