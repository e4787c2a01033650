/* Cost arithmetic: tokens x integer prices, summed exactly in 128 bits and rounded
 * once, so a ledger total equals the sum of its rows to the micro-unit; plus the
 * what-if and self-hosting sums the cost reports make. */
#include "meter/cost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "meter/catalog.h"
#include "meter/ledger.h"
#include "providers/providers.h"
#include "store/store.h"

typedef __int128 wide; /* a product of two int64 values fits, so sums cannot wrap */

int sl_cost_parse_decimal(const char *s, int64_t max_micros, int64_t *micros)
{
    int64_t whole = 0, frac = 0;
    int digits = 0, fdigits = 0;
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        whole = whole * 10 + (*s - '0');
        if (whole > max_micros / SL_MICROS)
            return -1;
    }
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++, fdigits++) {
            if (fdigits == 6)
                return -1;
            frac = frac * 10 + (*s - '0');
        }
    if (*s || digits + fdigits == 0)
        return -1;
    for (int i = fdigits; i < 6; i++)
        frac *= 10;
    int64_t v = whole * SL_MICROS + frac;
    if (v > max_micros)
        return -1;
    *micros = v;
    return 0;
}

int sl_cost_check_currency(const char *s)
{
    return strcmp(s, "USD") == 0 || strcmp(s, "CNY") == 0 ? 0 : -1;
}

static int64_t clamp64(wide v)
{
    return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : (int64_t)v;
}

/* round(num * mul / div), half away from zero; div > 0. */
static int64_t scale_round(wide num, wide mul, wide div)
{
    wide x = num * mul;
    wide q = x >= 0 ? (x + div / 2) / div : -((-x + div / 2) / div);
    return clamp64(q);
}

/* The factor that turns an amount in from into one in to: mul / div. */
static void conversion(const char *from, const char *to, int64_t usd_per_cny, wide *mul,
                       wide *div)
{
    *mul = 1;
    *div = 1;
    if (strcmp(from, to) == 0 || usd_per_cny <= 0)
        return;
    if (strcmp(from, "CNY") == 0) { /* CNY -> USD: x * rate / 10^6 */
        *mul = usd_per_cny;
        *div = SL_MICROS;
    } else { /* USD -> CNY: x * 10^6 / rate */
        *mul = SL_MICROS;
        *div = usd_per_cny;
    }
}

int64_t sl_cost_convert(int64_t micros, const char *from, const char *to, int64_t usd_per_cny)
{
    wide mul, div;
    conversion(from, to, usd_per_cny, &mul, &div);
    return scale_round(micros, mul, div);
}

int64_t sl_cost_micros(const struct sl_price *p, int64_t prompt, int64_t cached,
                       int64_t completion, const char *to_currency, int64_t usd_per_cny)
{
    prompt = prompt > 0 ? prompt : 0;
    cached = cached > 0 ? (cached < prompt ? cached : prompt) : 0;
    completion = completion > 0 ? completion : 0;
    /* micro-units x tokens per million: divided by 10^6 below, after conversion */
    wide num = (wide)(prompt - cached) * p->input + (wide)cached * p->cached_input +
               (wide)completion * p->output;
    wide mul, div;
    conversion(p->currency, to_currency, usd_per_cny, &mul, &div);
    return scale_round(num, mul, div * SL_MICROS);
}

void sl_cost_format(int64_t micros, char *out, size_t size)
{
    /* unsigned so that INT64_MIN has a magnitude */
    uint64_t m = micros < 0 ? 0 - (uint64_t)micros : (uint64_t)micros;
    snprintf(out, size, "%s%llu.%06llu", micros < 0 ? "-" : "", (unsigned long long)(m / SL_MICROS),
             (unsigned long long)(m % SL_MICROS));
}

/* ---- the request path ------------------------------------------------------------ */

/* Config prices are doubles (the router ranks by them); typed as decimals with at
 * most 6 places, x 10^6 rounds back to the exact integer written. */
static int64_t config_micros(double usd)
{
    double x = usd * SL_MICROS + 0.5;
    return x >= 9.2e18 ? INT64_MAX : (int64_t)x;
}

static const char *preset_of(const struct sl_model_cfg *m)
{
    return m && m->p ? sl_provider_preset(m->p)->name : NULL;
}

/* models: price_in/price_out are USD; cached tokens take the catalog's cached price
 * for the same upstream model when it is lower, so a cache hit is not billed full. */
static void config_price(const struct sl_catalog *c, const struct sl_model_cfg *m,
                         struct sl_price *p)
{
    const struct sl_catalog_entry *e = c ? sl_catalog_find(c, m->model, preset_of(m)) : NULL;
    memcpy(p->currency, "USD", 4);
    p->input = config_micros(m->price_in);
    p->output = config_micros(m->price_out);
    p->cached_input = p->input;
    if (e) {
        int64_t cached = sl_cost_convert(e->price.cached_input, e->price.currency, "USD",
                                         c->usd_per_cny);
        p->cached_input = cached < p->input ? cached : p->input;
    }
}

static const char *row_model(const struct sl_model_cfg *m, const struct sl_usage_row *row)
{
    if (m && m->model)
        return m->model;
    return row->upstream_model[0] ? row->upstream_model : row->model;
}

void sl_cost_row(const struct sl_catalog *c, const struct sl_model_cfg *m,
                 struct sl_usage_row *row)
{
    const char *currency = c ? c->currency : "USD";
    int64_t rate = c ? c->usd_per_cny : 140000;
    struct sl_price p;
    const struct sl_catalog_entry *e = NULL;
    row->price_known = 1;
    if (m && m->priced) /* loaded configs hold 1 here: both prices were given */
        config_price(c, m, &p);
    else if (c && (e = sl_catalog_find(c, row_model(m, row), preset_of(m))))
        p = e->price;
    else
        row->price_known = 0;
    snprintf(row->currency, sizeof(row->currency), "%s", currency);
    row->cost_micros = row->price_known ? sl_cost_micros(&p, row->prompt_tokens,
                                                         row->cached_tokens,
                                                         row->completion_tokens, currency, rate)
                                        : 0;
}

int sl_cost_reprice(const struct sl_catalog *c, const char *model, const char *provider,
                    const struct sl_usage_group *g, int64_t *micros)
{
    const struct sl_catalog_entry *e = c ? sl_catalog_find(c, model, provider) : NULL;
    if (!e)
        return -1;
    *micros = sl_cost_micros(&e->price, g->prompt_tokens, g->cached_tokens,
                             g->completion_tokens, c->currency, c->usd_per_cny);
    return 0;
}

/* ---- what-if ----------------------------------------------------------------------- */

/* Copies s[0..len) without surrounding spaces into out. -1 when empty or too long. */
static int copy_name(const char *s, size_t len, char *out, size_t size)
{
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (!len || len >= size)
        return -1;
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

static int parse_pair(const char *s, size_t len, struct sl_cost_map *map, const char **why)
{
    const char *eq = memchr(s, '=', len);
    size_t i = map->n;
    if (i == SL_COST_MAX_MAP) {
        *why = "too many pairs (at most 64)";
        return -1;
    }
    if (!eq || copy_name(s, (size_t)(eq - s), map->pair[i].from, sizeof(map->pair[i].from)) ||
        copy_name(eq + 1, len - (size_t)(eq - s) - 1, map->pair[i].to,
                  sizeof(map->pair[i].to))) {
        *why = "expected FROM=TO pairs separated by commas, names of at most 128 characters";
        return -1;
    }
    if (sl_cost_map_target(map, map->pair[i].from)) {
        *why = "a model is mapped twice";
        return -1;
    }
    map->n++;
    return 0;
}

int sl_cost_parse_map(const char *s, struct sl_cost_map *map, const char **why)
{
    map->n = 0;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (parse_pair(s, len, map, why))
            return -1;
        if (!comma)
            return 0;
        s = comma + 1;
    }
}

const char *sl_cost_map_target(const struct sl_cost_map *map, const char *from)
{
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->pair[i].from, from) == 0)
            return map->pair[i].to;
    return NULL;
}

/* ---- self-hosting ------------------------------------------------------------------ */

int64_t sl_cost_selfhost_month(const struct sl_selfhost *s, int days)
{
    wide hours = (wide)days * 24;
    wide gpus = (wide)s->gpus * s->gpu_hourly * hours;
    /* micro-kW x micro-units per kWh: 10^12 too many */
    wide power = (wide)s->power_kw * s->kwh * hours;
    wide micro = gpus + s->people_monthly;
    return clamp64(micro + scale_round(power, 1, SL_MICROS));
}

int sl_cost_days_in_month(const char *yyyy_mm)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m;
    char tail;
    if (strlen(yyyy_mm) != 7 || sscanf(yyyy_mm, "%4d-%2d%c", &y, &m, &tail) != 2 || m < 1 ||
        m > 12)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return days[m - 1] + (m == 2 && leap);
}
