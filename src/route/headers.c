/* Parsing what providers say about when to come back: Retry-After (seconds or an
 * HTTP-date), retry-after-ms, and OpenAI's x-ratelimit-reset-* Go durations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "route/route.h"

#define MAX_DELAY_MS (INT64_C(1) << 40) /* ~35 years: anything beyond is an overflow guard */

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static int all_space(const char *s)
{
    return *skip_space(s) == '\0';
}

static int month_of(const char *m)
{
    static const char *const names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (strcmp(m, names[i]) == 0)
            return i;
    return -1;
}

/* The three forms RFC 9110 says a recipient must accept; sscanf's %d and %[ are not
 * locale-dependent, unlike strptime's %a and %b. */
static int parse_http_date(const char *s, time_t *out)
{
    char wd[10], mon[4];
    int day, year, h, mi, sec, n = 0;
    struct tm tm = {0};
    if (sscanf(s, "%9[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", wd, &day, mon, &year,
               &h, &mi, &sec, &n) == 7 && n > 0 && all_space(s + n)) {
    } else if (sscanf(s, "%9[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", wd, &day, mon,
                      &year, &h, &mi, &sec, &n) == 7 && n > 0 && all_space(s + n)) {
        year += year < 70 ? 2000 : 1900;
    } else if (sscanf(s, "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", wd, mon, &day, &h, &mi,
                      &sec, &year, &n) == 7 && n > 0 && all_space(s + n)) {
    } else {
        return -1;
    }
    tm.tm_mon = month_of(mon);
    if (tm.tm_mon < 0 || day < 1 || day > 31 || h > 23 || mi > 59 || sec > 60 || year < 1970)
        return -1;
    tm.tm_mday = day;
    tm.tm_year = year - 1900;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out = timegm(&tm);
    return *out == (time_t)-1 ? -1 : 0;
}

static int parse_seconds(const char *s, int64_t *ms)
{
    int64_t n = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');
        if (n > MAX_DELAY_MS / 1000)
            return -1;
    }
    if (p == s || !all_space(p))
        return -1;
    *ms = n * 1000;
    return 0;
}

int sl_route_parse_retry_after(const char *s, int64_t now_wall_ms, int64_t *delay_ms)
{
    time_t when;
    if (!s)
        return -1;
    s = skip_space(s);
    if (*s >= '0' && *s <= '9')
        return parse_seconds(s, delay_ms);
    if (parse_http_date(s, &when))
        return -1;
    int64_t d = (int64_t)when * 1000 - now_wall_ms;
    *delay_ms = d > 0 ? d : 0;
    return 0;
}

struct go_unit {
    const char *name;
    double ns;
};

/* Longest names first, so "ms" is not read as "m" followed by "s". */
static const struct go_unit go_units[] = {
    {"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3}, {"ms", 1e6},
    {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
};

static const struct go_unit *go_unit_at(const char *p, size_t *len)
{
    const struct go_unit *best = NULL;
    for (size_t i = 0; i < sizeof(go_units) / sizeof(go_units[0]); i++) {
        size_t n = strlen(go_units[i].name);
        if (strncmp(p, go_units[i].name, n) == 0 && (!best || n > *len)) {
            best = &go_units[i];
            *len = n;
        }
    }
    return best;
}

/* DIGITS[.DIGITS] or .DIGITS, as Go writes them (strtod would also take exponents and
 * hex). Returns the characters read, or 0. */
static size_t go_number(const char *p, double *x)
{
    size_t i = 0, digits = 0;
    double scale = 1;
    *x = 0;
    for (; p[i] >= '0' && p[i] <= '9'; i++, digits++)
        *x = *x * 10 + (p[i] - '0');
    if (p[i] == '.')
        for (i++; p[i] >= '0' && p[i] <= '9'; i++, digits++)
            *x += (p[i] - '0') * (scale /= 10);
    return digits ? i : 0;
}

/* One "<number><unit>" term; returns the characters read, or 0. */
static size_t go_term(const char *p, double *ns)
{
    double x;
    size_t ulen = 0, n = go_number(p, &x);
    if (!n)
        return 0;
    const char *end = p + n;
    const struct go_unit *u = go_unit_at(end, &ulen);
    if (!u)
        return 0;
    *ns += x * u->ns;
    return (size_t)(end - p) + ulen;
}

int sl_route_parse_go_duration(const char *s, int64_t *ms)
{
    double ns = 0;
    if (!s)
        return -1;
    s = skip_space(s);
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    size_t n, terms = 0;
    while (*s && !all_space(s)) {
        if (!(n = go_term(s, &ns)))
            return -1;
        s += n;
        terms++;
    }
    if (!terms || ns / 1e6 > (double)MAX_DELAY_MS)
        return -1;
    *ms = (int64_t)(ns / 1e6);
    if ((double)*ms * 1e6 < ns)
        (*ms)++; /* round up: coming back early only earns another 429 */
    return 0;
}

static int parse_ms(const char *s, int64_t *ms)
{
    char *end = NULL;
    double x = s ? strtod(s, &end) : -1;
    if (!s || end == s || !all_space(end) || !(x >= 0) || x > (double)MAX_DELAY_MS)
        return -1;
    *ms = (int64_t)x + ((double)(int64_t)x < x);
    return 0;
}

int64_t sl_route_limit_delay_ms(const struct sl_route_limit_hints *hints, int64_t now_wall_ms)
{
    int64_t d = -1, req = -1, tok = -1;
    if (parse_ms(hints->retry_after_ms, &d) &&
        sl_route_parse_retry_after(hints->retry_after, now_wall_ms, &d)) {
        /* Which quota ran out is not said; waiting for the later reset is the safe one. */
        if (hints->reset_requests && sl_route_parse_go_duration(hints->reset_requests, &req))
            req = -1;
        if (hints->reset_tokens && sl_route_parse_go_duration(hints->reset_tokens, &tok))
            tok = -1;
        d = req > tok ? req : tok;
    }
    if (d < 0)
        d = SL_ROUTE_LIMIT_DEFAULT_MS;
    return d > SL_ROUTE_LIMIT_MAX_MS ? SL_ROUTE_LIMIT_MAX_MS : d;
}
