/* Option values the reporting commands share (usage, cost). */
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

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
    static const struct { char unit; int64_t ms; } units[] = {
        {'s', 1000}, {'m', 60 * 1000}, {'h', 3600 * 1000}, {'d', 86400 * 1000},
    };
    char *end = NULL;
    long long n = s ? strtoll(s, &end, 10) : 0;
    if (!s || end == s || n <= 0 || end[0] == '\0' || end[1] != '\0')
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (*end == units[i].unit && n <= 36500LL * 86400 * 1000 / units[i].ms) {
            *ms = (int64_t)n * units[i].ms;
            return 0;
        }
    }
    return -1;
}
