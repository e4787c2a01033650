/* Durations ("200ms", "10s", "5m", "1h", bare milliseconds) and sizes ("64KiB", "10MB")
 * as written in the configuration file. */
#include "config/config.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

struct unit {
    const char *suffix;
    uint64_t mult;
};

/* A suffix must match the whole rest of the string, so the order of rows is free. */
static const struct unit duration_units[] = {
    {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000},
};

static const struct unit size_units[] = {
    {"", 1},
    {"B", 1},
    {"KB", 1000},
    {"MB", 1000 * 1000},
    {"GB", 1000 * 1000 * 1000},
    {"KiB", 1024},
    {"MiB", 1024 * 1024},
    {"GiB", 1024 * 1024 * 1024},
};

/* Reads "DIGITS [spaces] SUFFIX" and multiplies; -1 on anything else or when the
 * result exceeds max or is zero (a zero timeout or size is always a mistake here). */
static int parse_scaled(const char *s, const struct unit *units, size_t nunits, uint64_t max,
                        uint64_t *out)
{
    uint64_t n = 0;
    const char *p = s;
    if (!s || *p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (n > (max - digit) / 10) /* checked before it can wrap */
            return -1;
        n = n * 10 + digit;
    }
    while (*p == ' ')
        p++;
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(p, units[i].suffix) != 0)
            continue;
        if (n == 0 || n > max / units[i].mult)
            return -1;
        *out = n * units[i].mult;
        return 0;
    }
    return -1;
}

int sl_config_parse_duration(const char *s, int *ms)
{
    uint64_t v;
    if (parse_scaled(s, duration_units, sizeof(duration_units) / sizeof(duration_units[0]),
                     INT_MAX, &v))
        return -1;
    *ms = (int)v;
    return 0;
}

int sl_config_parse_size(const char *s, size_t *bytes)
{
    uint64_t v;
    if (parse_scaled(s, size_units, sizeof(size_units) / sizeof(size_units[0]), SIZE_MAX, &v))
        return -1;
    *bytes = (size_t)v;
    return 0;
}
