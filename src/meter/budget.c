/* Budget notation ("100usd/month") and the calendar of budget windows (UTC). */
#include "meter/govern.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "meter/cost.h"

#define MAX_BUDGET_MICROS ((int64_t)1000000000000LL * SL_MICROS / 1000) /* 10^9 units */

static const struct {
    const char *suffix;
    enum sl_budget_window window;
} windows[] = {
    {"", SL_WINDOW_TOTAL},
    {"/total", SL_WINDOW_TOTAL},
    {"/day", SL_WINDOW_DAY},
    {"/month", SL_WINDOW_MONTH},
};

int sl_budget_parse(const char *s, struct sl_budget *out)
{
    char lower[64], amount[40];
    size_t n = strlen(s), digits;
    if (n == 0 || n >= sizeof(lower))
        return -1;
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)tolower((unsigned char)s[i]);
    digits = strspn(lower, "0123456789.");
    if (digits == 0 || digits >= sizeof(amount))
        return -1;
    memcpy(amount, lower, digits);
    amount[digits] = '\0';
    const char *cur = lower + digits;
    if (strncmp(cur, "usd", 3) != 0 && strncmp(cur, "cny", 3) != 0)
        return -1;
    struct sl_budget b = {0};
    if (sl_cost_parse_decimal(amount, MAX_BUDGET_MICROS, &b.limit_micros) || b.limit_micros <= 0)
        return -1;
    for (int i = 0; i < 3; i++)
        b.currency[i] = (char)toupper((unsigned char)cur[i]);
    for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
        if (strcmp(cur + 3, windows[w].suffix) == 0) {
            b.window = windows[w].window;
            *out = b;
            return 0;
        }
    }
    return -1;
}

int64_t sl_budget_window_start(enum sl_budget_window w, int64_t now_ms)
{
    const int64_t day_ms = 86400 * 1000LL;
    if (w == SL_WINDOW_TOTAL)
        return 0;
    int64_t day = (now_ms >= 0 ? now_ms : now_ms - day_ms + 1) / day_ms * day_ms;
    if (w == SL_WINDOW_DAY)
        return day;
    time_t t = (time_t)(day / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    return day - (int64_t)(tm.tm_mday - 1) * day_ms;
}
