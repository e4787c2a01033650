/* Unit tests for src/meter/keys.c and the keys table of src/store/sqlite.c: lookup by
 * secret, revocation, expiry, option checks, and that no secret reaches the store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meter/keys.h"

#define NOW 1700000000000LL

struct fixture {
    char dir[64];
    char path[128];
    char url[160];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/sl_keys_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/keys.db", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite://%s", f->path);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    static const char *suffixes[] = {"", "-wal", "-shm"};
    char p[160];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Creates a key named name (options as "opt=value" pairs, NULL-terminated). */
static void create(const struct fixture *f, const char *name, const char *expires,
                   struct sl_key *k, char secret[SL_KEY_SECRET_SIZE])
{
    struct sl_key_spec spec;
    char err[256] = "";
    memset(&spec, 0, sizeof(spec));
    assert_int_equal(sl_key_spec_set(&spec, "name", name, err, sizeof(err)), 0);
    if (expires)
        assert_int_equal(sl_key_spec_set(&spec, "expires", expires, err, sizeof(err)), 0);
    int rc = sl_keys_create(f->url, &spec, NOW, k, secret, err, sizeof(err));
    if (rc)
        print_error("create: %s\n", err);
    assert_int_equal(rc, SL_STORE_OK);
}

static struct sl_keys *load(const struct fixture *f)
{
    char err[256] = "";
    struct sl_keys *t = sl_keys_load(f->url, err, sizeof(err));
    if (!t)
        print_error("load: %s\n", err);
    assert_non_null(t);
    return t;
}

static void test_create_then_find(void **state)
{
    struct fixture *f = *state;
    struct sl_key k;
    char secret[SL_KEY_SECRET_SIZE];
    create(f, "team-a", NULL, &k, secret);
    assert_int_equal(strlen(secret), SL_KEY_SECRET_SIZE - 1);
    assert_memory_equal(secret, "sk-sluice-", 10);
    assert_int_equal(strspn(secret + 10, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789-_"), 43);
    assert_memory_equal(k.id, "key_", 4);
    assert_memory_equal(k.prefix, secret, SL_KEY_PREFIX_SIZE - 1);

    struct sl_keys *t = load(f);
    assert_int_equal(sl_keys_count(t), 1);
    const struct sl_key *found = sl_keys_find(t, secret, NOW + 1);
    assert_non_null(found);
    assert_string_equal(found->id, k.id);
    assert_string_equal(found->name, "team-a");
    sl_keys_free(t);
}

static void test_wrong_secret_is_null(void **state)
{
    struct fixture *f = *state;
    struct sl_key k;
    char secret[SL_KEY_SECRET_SIZE];
    create(f, "team-a", NULL, &k, secret);
    struct sl_keys *t = load(f);
    char wrong[SL_KEY_SECRET_SIZE];
    memcpy(wrong, secret, sizeof(wrong));
    wrong[20] = wrong[20] == 'A' ? 'B' : 'A';
    assert_null(sl_keys_find(t, wrong, NOW));
    assert_null(sl_keys_find(t, "", NOW));
    assert_null(sl_keys_find(t, NULL, NOW));
    assert_null(sl_keys_find(t, k.hash, NOW)); /* the hash is not a secret that works */
    sl_keys_free(t);
}

static void test_revoked_is_null(void **state)
{
    struct fixture *f = *state;
    struct sl_key a, b;
    char sa[SL_KEY_SECRET_SIZE], sb[SL_KEY_SECRET_SIZE], err[256] = "";
    create(f, "team-a", NULL, &a, sa);
    create(f, "team-b", NULL, &b, sb);
    assert_int_equal(sl_keys_revoke(f->url, a.id, NOW + 5, err, sizeof(err)), SL_STORE_OK);
    assert_int_equal(sl_keys_revoke(f->url, a.id, NOW + 9, err, sizeof(err)), SL_STORE_OK);
    assert_int_equal(sl_keys_revoke(f->url, "key_nope", NOW, err, sizeof(err)),
                     SL_STORE_NOT_FOUND);
    struct sl_keys *t = load(f);
    assert_int_equal(sl_keys_count(t), 1);
    assert_null(sl_keys_find(t, sa, NOW + 10));
    assert_non_null(sl_keys_find(t, sb, NOW + 10));
    sl_keys_free(t);

    struct sl_key *all = NULL;
    size_t n = 0;
    assert_int_equal(sl_keys_list(f->url, &all, &n, err, sizeof(err)), SL_STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(all[0].revoked_ms + all[1].revoked_ms, NOW + 5); /* the first time kept */
    free(all);
}

static void test_expired_is_null(void **state)
{
    struct fixture *f = *state;
    struct sl_key k;
    char secret[SL_KEY_SECRET_SIZE];
    create(f, "short", "1h", &k, secret);
    assert_int_equal(k.expires_ms, NOW + 3600 * 1000);
    struct sl_keys *t = load(f);
    assert_non_null(sl_keys_find(t, secret, NOW + 3600 * 1000 - 1));
    assert_null(sl_keys_find(t, secret, NOW + 3600 * 1000));
    sl_keys_free(t);
}

/* Reads the whole file (and its WAL) looking for needle, bypassing SQLite. */
static int file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    static char data[4 * 1024 * 1024];
    size_t n = fread(data, 1, sizeof(data), fp);
    fclose(fp);
    return memmem(data, n, needle, strlen(needle)) != NULL;
}

static void test_store_holds_hash_not_secret(void **state)
{
    struct fixture *f = *state;
    struct sl_key k;
    char secret[SL_KEY_SECRET_SIZE], hash[SL_KEY_HASH_SIZE], wal[160];
    create(f, "team-a", NULL, &k, secret);
    sl_keys_hash_hex(secret, hash);
    assert_string_equal(k.hash, hash);
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_true(file_contains(f->path, hash) || file_contains(wal, hash));
    assert_false(file_contains(f->path, secret));
    assert_false(file_contains(wal, secret));
    assert_false(file_contains(f->path, secret + SL_KEY_PREFIX_SIZE - 1));
    assert_false(file_contains(wal, secret + SL_KEY_PREFIX_SIZE - 1));
}

static void test_list_shows_no_secret(void **state)
{
    struct fixture *f = *state;
    struct sl_key k, *all = NULL;
    char secret[SL_KEY_SECRET_SIZE], err[256] = "";
    size_t n = 0;
    create(f, "team-a", NULL, &k, secret);
    assert_int_equal(sl_keys_list(f->url, &all, &n, err, sizeof(err)), SL_STORE_OK);
    assert_int_equal(n, 1);
    assert_null(memmem(&all[0], sizeof(all[0]), secret, strlen(secret)));
    assert_null(memmem(&all[0], sizeof(all[0]), secret + 18, strlen(secret) - 18));
    free(all);
}

static void test_no_database_means_no_keys(void **state)
{
    struct fixture *f = *state;
    struct sl_keys *t = load(f);
    assert_int_equal(sl_keys_count(t), 0);
    assert_null(sl_keys_find(t, "sk-sluice-anything", NOW));
    sl_keys_free(t);
    assert_int_equal(access(f->path, F_OK), -1); /* loading created nothing */
}

static void test_options_are_checked(void **state)
{
    static const char *const good[][2] = {
        {"budget", "100usd/month"}, {"budget", "0.5CNY/day"}, {"budget", "20usd"},
        {"rpm", "600"}, {"tpm", "200000"}, {"models", "deepseek-*,qwen-*"},
        {"tags", "team=search,env=prod"}, {"expires", "30d"}, {"expires", "never"},
    };
    static const char *const bad[][2] = {
        {"name", ""}, {"name", "team a"}, {"budget", "100"}, {"budget", "usd/month"},
        {"budget", "0usd"}, {"budget", "10eur/month"}, {"budget", "10usd/week"},
        {"rpm", "0"}, {"rpm", "-1"}, {"rpm", "6e2"}, {"tpm", "1000000000001"},
        {"models", ""}, {"models", "a,,b"}, {"models", "a b"}, {"tags", "team"},
        {"tags", "=x"}, {"tags", "team="}, {"tags", "a=b=c"}, {"expires", "30"},
        {"expires", "0d"}, {"expires", "30y"}, {"colour", "red"},
    };
    struct sl_key_spec spec;
    char err[256];
    memset(&spec, 0, sizeof(spec));
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (sl_key_spec_set(&spec, good[i][0], good[i][1], err, sizeof(err)))
            fail_msg("%s=%s refused: %s", good[i][0], good[i][1], err);
    }
    assert_string_equal(spec.key.budget, "20usd");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (sl_key_spec_set(&spec, bad[i][0], bad[i][1], err, sizeof(err)) == 0)
            fail_msg("%s=%s accepted", bad[i][0], bad[i][1]);
        assert_true(err[0] != '\0');
    }
    (void)state;
}

static void test_create_needs_a_name(void **state)
{
    struct fixture *f = *state;
    struct sl_key_spec spec;
    struct sl_key k;
    char secret[SL_KEY_SECRET_SIZE], err[256] = "";
    memset(&spec, 0, sizeof(spec));
    assert_int_equal(sl_keys_create(f->url, &spec, NOW, &k, secret, err, sizeof(err)),
                     SL_STORE_ERROR);
    assert_non_null(strstr(err, "name"));
}

static void test_presented_and_equal(void **state)
{
    assert_string_equal(sl_keys_presented("Bearer sk-sluice-x", NULL), "sk-sluice-x");
    assert_string_equal(sl_keys_presented("bearer  abc", "zzz"), "abc");
    assert_string_equal(sl_keys_presented(NULL, "sk-ant"), "sk-ant");
    assert_string_equal(sl_keys_presented("Basic abc", "sk-ant"), "sk-ant");
    assert_null(sl_keys_presented("Bearer ", NULL));
    assert_null(sl_keys_presented(NULL, ""));
    assert_true(sl_keys_secret_equal("master", "master"));
    assert_false(sl_keys_secret_equal("master", "master2"));
    assert_false(sl_keys_secret_equal("", ""));
    assert_false(sl_keys_secret_equal(NULL, "master"));
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_then_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_secret_is_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_is_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_is_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_holds_hash_not_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_shows_no_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_database_means_no_keys, setup, teardown),
        cmocka_unit_test(test_options_are_checked),
        cmocka_unit_test_setup_teardown(test_create_needs_a_name, setup, teardown),
        cmocka_unit_test(test_presented_and_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
