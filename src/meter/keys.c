/* Virtual keys: validating a new key's options, minting its secret, and the
 * immutable in-memory table the server checks presented secrets against. */
#include "meter/keys.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "meter/govern.h"

#define MAX_LIMIT  1000000000000LL /* rpm, tpm and budget amounts: more is a typo */
#define MAX_EXPIRY (36500LL * 86400 * 1000) /* a hundred years, so now + it cannot overflow */
#define DIGEST     32

static const char name_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

/* ---- options ---------------------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *option, const char *why)
{
    snprintf(err, errlen, "%s: %s", option, why);
    return -1;
}

static int copy_checked(char *dst, size_t cap, const char *value)
{
    size_t n = strlen(value);
    if (n >= cap)
        return -1;
    memcpy(dst, value, n + 1);
    return 0;
}

static int parse_positive(const char *s, int64_t max, int64_t *out)
{
    int64_t n = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        n = n * 10 + (*s - '0');
        if (n > max)
            return -1;
    }
    *out = n;
    return n > 0 ? 0 : -1;
}

static int set_name(struct sl_key_spec *sp, const char *v, char *err, size_t errlen)
{
    /* Names end up in the ledger, reports and metrics labels: keep them plain. */
    if (!*v || strlen(v) > SL_MAX_NAME || strspn(v, name_chars) != strlen(v))
        return fail(err, errlen, "name",
                    "expected 1 to 128 letters, digits, '.', '_' or '-' (e.g. team-a)");
    return copy_checked(sp->key.name, sizeof(sp->key.name), v);
}

/* "AMOUNT CURRENCY [/ WINDOW]": 100usd/month, 0.5cny/day, 20usd (= total). The budget
 * issue reads it back; here it is only checked and written in one canonical case. */
static int set_budget(struct sl_key_spec *sp, const char *v, char *err, size_t errlen)
{
    static const char *const windows[] = {"", "/day", "/month", "/total"};
    char canon[SL_KEY_BUDGET_SIZE];
    size_t i = 0, n = strlen(v);
    int digits = 0, ok = 0;
    for (; i < n && i + 1 < sizeof(canon); i++)
        canon[i] = (char)tolower((unsigned char)v[i]);
    canon[i] = '\0';
    const char *p = canon;
    for (; isdigit((unsigned char)*p); p++)
        digits++;
    if (*p == '.' && isdigit((unsigned char)p[1]))
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    int positive = strtod(canon, NULL) > 0 && strtod(canon, NULL) <= (double)MAX_LIMIT;
    if (digits && positive && (strncmp(p, "usd", 3) == 0 || strncmp(p, "cny", 3) == 0))
        for (size_t w = 0; w < 4; w++)
            ok |= strcmp(p + 3, windows[w]) == 0;
    struct sl_budget parsed; /* what the budget counters will read back */
    if (!ok || n >= sizeof(canon) || sl_budget_parse(canon, &parsed))
        return fail(err, errlen, "budget",
                    "expected AMOUNT usd|cny [/day|/month|/total], e.g. 100usd/month");
    return copy_checked(sp->key.budget, sizeof(sp->key.budget), canon);
}

static int set_limit(int64_t *field, const char *option, const char *v, char *err,
                     size_t errlen)
{
    if (parse_positive(v, MAX_LIMIT, field))
        return fail(err, errlen, option, "expected a whole number above 0");
    return 0;
}

/* Checks a comma-separated list item by item; tags are KEY=VALUE, models globs. */
static int valid_list(const char *v, int tags)
{
    if (!*v)
        return 0;
    for (const char *item = v;; item++) {
        size_t len = strcspn(item, ",");
        const char *eq = memchr(item, '=', len);
        size_t klen = tags && eq ? (size_t)(eq - item) : len;
        if (len == 0 || len > SL_MAX_NAME || (tags && (!eq || klen == 0 || klen + 1 == len)))
            return 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)item[i];
            if (c <= ' ' || c == 0x7f || (i < klen && tags && !strchr(name_chars, c)) ||
                (tags && i > klen && c == '='))
                return 0;
        }
        item += len;
        if (!*item)
            return 1;
    }
}

static int set_list(char *field, size_t cap, const char *option, const char *v, int tags,
                    char *err, size_t errlen)
{
    if (!valid_list(v, tags) || strlen(v) >= cap)
        return fail(err, errlen, option,
                    tags ? "expected KEY=VALUE[,KEY=VALUE...], no spaces (e.g. team=search)"
                         : "expected MODEL[,MODEL...] where * matches anything, no spaces");
    return copy_checked(field, cap, v);
}

/* "30d", "24h", "15m", "45s", or "never". */
static int set_expires(struct sl_key_spec *sp, const char *v, char *err, size_t errlen)
{
    static const struct { char unit; int64_t ms; } units[] = {
        {'s', 1000}, {'m', 60 * 1000}, {'h', 3600 * 1000}, {'d', 86400 * 1000},
    };
    char digits[24];
    size_t n = strlen(v);
    int64_t count = 0;
    if (strcmp(v, "never") == 0) {
        sp->expires_in_ms = 0;
        return 0;
    }
    if (n >= 2 && n < sizeof(digits)) {
        memcpy(digits, v, n - 1);
        digits[n - 1] = '\0';
        for (size_t i = 0; i < 4; i++)
            if (v[n - 1] == units[i].unit && !parse_positive(digits, MAX_EXPIRY / units[i].ms,
                                                             &count)) {
                sp->expires_in_ms = count * units[i].ms;
                return 0;
            }
    }
    return fail(err, errlen, "expires", "expected a duration such as 30d, 12h, 90m or never");
}

int sl_key_spec_set(struct sl_key_spec *sp, const char *option, const char *value, char *err,
                    size_t errlen)
{
    struct sl_key *k = &sp->key;
    if (strcmp(option, "name") == 0)
        return set_name(sp, value, err, errlen);
    if (strcmp(option, "budget") == 0)
        return set_budget(sp, value, err, errlen);
    if (strcmp(option, "rpm") == 0)
        return set_limit(&k->rpm, option, value, err, errlen);
    if (strcmp(option, "tpm") == 0)
        return set_limit(&k->tpm, option, value, err, errlen);
    if (strcmp(option, "concurrency") == 0)
        return set_limit(&k->concurrency, option, value, err, errlen);
    if (strcmp(option, "models") == 0)
        return set_list(k->models, sizeof(k->models), option, value, 0, err, errlen);
    if (strcmp(option, "tags") == 0)
        return set_list(k->tags, sizeof(k->tags), option, value, 1, err, errlen);
    if (strcmp(option, "expires") == 0)
        return set_expires(sp, value, err, errlen);
    snprintf(err, errlen, "unknown option '%.64s'", option);
    return -1;
}

/* ---- secrets ---------------------------------------------------------------------- */

static void digest(const char *s, size_t n, unsigned char out[DIGEST])
{
    unsigned int len = DIGEST;
    /* SHA-256 cannot fail on a valid input short of OpenSSL itself being broken. */
    if (!EVP_Digest(s, n, out, &len, EVP_sha256(), NULL))
        memset(out, 0, DIGEST);
}

static void to_hex(const unsigned char *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void sl_keys_hash_hex(const char *secret, char out[SL_KEY_HASH_SIZE])
{
    unsigned char d[DIGEST];
    digest(secret, strlen(secret), d);
    to_hex(d, DIGEST, out);
}

/* 256 random bits, base64url without padding: 43 characters after the prefix. */
static int mint_secret(char secret[SL_KEY_SECRET_SIZE])
{
    unsigned char raw[32];
    unsigned char b64[48];
    size_t plen = sizeof(SL_KEY_SECRET_PREFIX) - 1;
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    EVP_EncodeBlock(b64, raw, sizeof(raw)); /* 44 characters, the last one '=' */
    for (int i = 0; i < 43; i++)
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    memcpy(secret, SL_KEY_SECRET_PREFIX, plen);
    memcpy(secret + plen, b64, 43);
    secret[plen + 43] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(b64, sizeof(b64));
    return 0;
}

static int mint_id(char id[SL_KEY_ID_SIZE])
{
    unsigned char raw[8];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    memcpy(id, "key_", 4);
    to_hex(raw, sizeof(raw), id + 4);
    return 0;
}

/* Fills in what the spec does not say: id, hash, display prefix, times. */
static int mint_key(const struct sl_key_spec *sp, int64_t now_ms, struct sl_key *k,
                    char secret[SL_KEY_SECRET_SIZE])
{
    *k = sp->key;
    if (mint_secret(secret) || mint_id(k->id))
        return -1;
    sl_keys_hash_hex(secret, k->hash);
    memcpy(k->prefix, secret, SL_KEY_PREFIX_SIZE - 1);
    k->prefix[SL_KEY_PREFIX_SIZE - 1] = '\0';
    k->created_ms = now_ms;
    k->expires_ms = sp->expires_in_ms ? now_ms + sp->expires_in_ms : 0;
    k->revoked_ms = 0;
    return 0;
}

/* ---- the store -------------------------------------------------------------------- */

int sl_keys_create(const char *store_url, const struct sl_key_spec *spec, int64_t now_ms,
                   struct sl_key *out, char secret[SL_KEY_SECRET_SIZE], char *err,
                   size_t errlen)
{
    struct sl_store *s = NULL;
    int result = SL_STORE_ERROR;
    if (!spec->key.name[0]) {
        snprintf(err, errlen, "name: a key needs a name (e.g. team-a)");
        return SL_STORE_ERROR;
    }
    if (mint_key(spec, now_ms, out, secret)) {
        snprintf(err, errlen, "cannot get random bytes for the secret");
        goto out;
    }
    result = sl_store_open(store_url, 0, &s, err, errlen);
    if (result == SL_STORE_OK)
        result = sl_store_insert_key(s, out, err, errlen);
out:
    sl_store_close(s);
    if (result)
        OPENSSL_cleanse(secret, SL_KEY_SECRET_SIZE);
    return result;
}

int sl_keys_list(const char *store_url, struct sl_key **out, size_t *n, char *err,
                 size_t errlen)
{
    struct sl_store *s = NULL;
    *out = NULL;
    *n = 0;
    int result = sl_store_open(store_url, SL_STORE_MUST_EXIST, &s, err, errlen);
    if (result == SL_STORE_MISSING)
        return SL_STORE_OK; /* no database yet: no keys yet */
    if (result == SL_STORE_OK)
        result = sl_store_list_keys(s, out, n, err, errlen);
    sl_store_close(s);
    return result;
}

int sl_keys_revoke(const char *store_url, const char *id, int64_t now_ms, char *err,
                   size_t errlen)
{
    struct sl_store *s = NULL;
    int result = sl_store_open(store_url, SL_STORE_MUST_EXIST, &s, err, errlen);
    if (result == SL_STORE_MISSING) {
        snprintf(err, errlen, "no key with id '%.40s'", id);
        return SL_STORE_NOT_FOUND;
    }
    if (result == SL_STORE_OK)
        result = sl_store_revoke_key(s, id, now_ms, err, errlen);
    sl_store_close(s);
    return result;
}

/* ---- the lookup table ------------------------------------------------------------- */

struct entry {
    unsigned char digest[DIGEST];
    struct sl_key key;
};

struct sl_keys {
    struct entry *v; /* sorted by digest */
    size_t n;
    size_t ever;     /* keys in the store, revoked ones included */
};

static int by_digest(const void *a, const void *b)
{
    return memcmp(((const struct entry *)a)->digest, ((const struct entry *)b)->digest, DIGEST);
}

static int from_hex(const char *hex, unsigned char out[DIGEST])
{
    if (strlen(hex) != 2 * DIGEST)
        return -1;
    for (int i = 0; i < DIGEST; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = hex[2 * i + j];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v << 4 | (unsigned)d;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* Keeps the live keys of all, decoding each hash once so lookups compare bytes. */
static int build(struct sl_keys *t, const struct sl_key *all, size_t n, char *err, size_t errlen)
{
    t->v = n ? calloc(n, sizeof(*t->v)) : NULL;
    if (n && !t->v) {
        snprintf(err, errlen, "keys: out of memory");
        return -1;
    }
    t->ever = n;
    for (size_t i = 0; i < n; i++) {
        if (all[i].revoked_ms)
            continue;
        if (from_hex(all[i].hash, t->v[t->n].digest)) {
            snprintf(err, errlen, "keys: key %.40s has a malformed hash in the store", all[i].id);
            return -1;
        }
        t->v[t->n++].key = all[i];
    }
    if (t->n) /* qsort may not be given NULL, even for nothing */
        qsort(t->v, t->n, sizeof(*t->v), by_digest);
    return 0;
}

struct sl_keys *sl_keys_load(const char *store_url, char *err, size_t errlen)
{
    struct sl_key *all = NULL;
    size_t n = 0;
    struct sl_keys *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "keys: out of memory");
        return NULL;
    }
    if (sl_keys_list(store_url, &all, &n, err, errlen) != SL_STORE_OK ||
        build(t, all, n, err, errlen)) {
        sl_keys_free(t);
        t = NULL;
    }
    free(all);
    return t;
}

/* The binary search sees only SHA-256 digests, so its timing tells a caller nothing
 * it could use to guess a secret; the final comparison is constant time anyway. */
const struct sl_key *sl_keys_find(const struct sl_keys *t, const char *secret, int64_t now_ms)
{
    struct entry probe;
    if (!t || !t->n || !secret || !*secret)
        return NULL;
    digest(secret, strlen(secret), probe.digest);
    const struct entry *e = bsearch(&probe, t->v, t->n, sizeof(*t->v), by_digest);
    if (!e || CRYPTO_memcmp(e->digest, probe.digest, DIGEST) != 0)
        return NULL;
    if (e->key.expires_ms && now_ms >= e->key.expires_ms)
        return NULL;
    return &e->key;
}

const struct sl_key *sl_keys_find_id(const struct sl_keys *t, const char *id, int64_t now_ms)
{
    if (!t || !id || !*id)
        return NULL;
    for (size_t i = 0; i < t->n; i++) {
        const struct sl_key *k = &t->v[i].key;
        if (strcmp(k->id, id) == 0)
            return k->expires_ms && now_ms >= k->expires_ms ? NULL : k;
    }
    return NULL;
}

int sl_key_allows(const struct sl_key *k, const char *name)
{
    if (!k || !k->models[0])
        return 1;
    const char *p = k->models;
    while (*p) {
        size_t n = strcspn(p, ",");
        char glob[SL_KEY_LIST_SIZE];
        snprintf(glob, sizeof(glob), "%.*s", (int)n, p);
        if (fnmatch(glob, name, 0) == 0)
            return 1;
        p += n + (p[n] == ',');
    }
    return 0;
}

size_t sl_keys_count(const struct sl_keys *t)
{
    return t ? t->n : 0;
}

size_t sl_keys_ever(const struct sl_keys *t)
{
    return t ? t->ever : 0;
}

void sl_keys_free(struct sl_keys *t)
{
    if (!t)
        return;
    free(t->v);
    free(t);
}

/* ---- presented secrets ------------------------------------------------------------ */

const char *sl_keys_presented(const char *authorization, const char *x_api_key)
{
    if (authorization && strncasecmp(authorization, "Bearer ", 7) == 0) {
        const char *token = authorization + 7;
        while (*token == ' ')
            token++;
        if (*token)
            return token;
    }
    return x_api_key && *x_api_key ? x_api_key : NULL;
}

int sl_keys_secret_equal(const char *presented, const char *expected)
{
    unsigned char a[DIGEST], b[DIGEST];
    if (!presented || !*presented || !expected || !*expected)
        return 0;
    digest(presented, strlen(presented), a);
    digest(expected, strlen(expected), b);
    return CRYPTO_memcmp(a, b, DIGEST) == 0;
}
