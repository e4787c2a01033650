/* The chunking: block of the config: profiles typed, checked with the chunker's rules,
 * reported with file:line, and registered for sl_chunk_profile(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/arena.h"
#include "kb/chunk.h"

static struct sl_config *parse(const char *yaml, struct sl_buf *errors)
{
    struct sl_config *cfg = NULL;
    sl_buf_init(errors, 1 << 16);
    if (sl_config_parse(yaml, strlen(yaml), "t.yaml", &cfg, errors))
        return NULL;
    return cfg;
}

static void test_profiles_from_config(void **state)
{
    struct sl_buf errors;
    struct sl_config *cfg = parse("chunking:\n"
                                  "  - name: slides\n"
                                  "    separators: [\"\\n---\\n\", \"\\n\", \"\"]\n"
                                  "    size: 14\n"
                                  "    overlap: 0\n"
                                  "    unit: chars\n"
                                  "    headings: []\n"
                                  "  - name: big-contract\n"
                                  "    base: contract\n"
                                  "    size: 1200\n",
                                  &errors);
    if (!cfg)
        fail_msg("%s", errors.ptr);
    char err[200];
    assert_int_equal(cfg->nchunking, 2);
    assert_int_equal(sl_config_register_chunking(cfg, err, sizeof(err)), 0);
    sl_config_free(cfg);
    const struct sl_chunk_profile *p = sl_chunk_profile("big-contract");
    assert_non_null(p);
    assert_int_equal(p->size, 1200);
    assert_int_equal(p->overlap, 100); /* from contract */
    assert_int_equal(p->headings, SL_HEADINGS_CLAUSE | SL_HEADINGS_MARKDOWN);
    assert_string_equal(p->separators[0], "\n第");
    p = sl_chunk_profile("slides");
    assert_non_null(p);
    assert_int_equal(p->nseparators, 3);
    assert_string_equal(p->separators[2], "");
    const char *t = "one slide\n---\ntwo slide\n---\nthree";
    struct sl_arena *a = sl_arena_new();
    struct sl_chunk *c;
    size_t n;
    assert_int_equal(sl_chunk_text(p, t, strlen(t), a, &c, &n), 0);
    assert_int_equal(n, 3);
    /* Chunk texts are source slices, read by len. */
    assert_int_equal(c[0].len, strlen("one slide\n---"));
    assert_memory_equal(c[0].text, "one slide\n---", c[0].len);
    assert_int_equal(c[2].len, strlen("three"));
    assert_memory_equal(c[2].text, "three", c[2].len);
    sl_arena_free(a);
    sl_buf_release(&errors);
}

static void test_bad_profiles_are_reported(void **state)
{
    struct sl_buf errors;
    struct sl_config *cfg = parse("chunking:\n"
                                  "  - name: a\n"
                                  "    size: 10\n"
                                  "    overlap: 10\n"
                                  "  - name: contract\n"
                                  "  - name: b\n"
                                  "    unit: words\n"
                                  "  - name: c\n"
                                  "    base: langchain\n"
                                  "  - name: a\n",
                                  &errors);
    assert_null(cfg);
    assert_non_null(strstr(errors.ptr, "t.yaml:2: chunking[0]: chunking profile a: overlap"));
    assert_non_null(strstr(errors.ptr, "t.yaml:5: chunking[1].name: 'contract' is a built-in"));
    assert_non_null(strstr(errors.ptr, "t.yaml:7: chunking[2].unit: 'words' is not tokens or chars"));
    assert_non_null(strstr(errors.ptr, "chunking[3].base: 'langchain' is not"));
    assert_non_null(strstr(errors.ptr, "profile 'a' is defined twice"));
    sl_buf_release(&errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profiles_from_config),
        cmocka_unit_test(test_bad_profiles_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
