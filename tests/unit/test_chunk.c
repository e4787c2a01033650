/* Chunker: the size limit, sentence punctuation, headings with their bodies and as paths,
 * tables by rows with the header, cross-references, coverage, overlap, auto detection,
 * registered profiles and the LangChain mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "kb/chunk.h"
#include "meter/estimate.h"

static const char *const zh_sentences[] = {
    "甲方应当在收到货物后三十日内支付全部货款。",
    "乙方负责货物的运输、安装和调试，费用由乙方承担！",
    "双方是否同意延期交付？",
    "如因不可抗力导致无法履行，受影响的一方应及时通知对方；",
    "甲方应按第五条约定的方式付款。",
    "本条所称“货物”，是指附件一所列的全部设备和备件。",
};

/* A synthetic contract: chapters, clauses of 1 to 40 sentences, a cross-reference that a
 * wrapped line puts at a line start, and a price table. */
static void contract(struct sl_buf *b, int chapters)
{
    static const char *const cn[] = {"一", "二", "三", "四", "五", "六", "七", "八", "九", "十"};
    int clause = 1;
    sl_buf_puts(b, "设备采购合同\n\n甲方：某某科技有限公司\n乙方：某某设备有限公司\n\n");
    for (int c = 0; c < chapters; c++) {
        sl_buf_printf(b, "第%s章 %s\n\n", cn[c % 10], c % 2 ? "付款与交付" : "总则");
        for (int k = 0; k < 4; k++, clause++) {
            sl_buf_printf(b, "第%d条 ", clause);
            int n = 1 + (clause * 7) % 40;
            for (int s = 0; s < n; s++) {
                sl_buf_puts(b, zh_sentences[(clause + s) % 6]);
                if (s == 3)
                    sl_buf_puts(b, "\n第五条约定的违约金不足以弥补损失的，乙方应予赔偿。");
            }
            sl_buf_puts(b, "\n\n");
        }
        if (c == 1) {
            sl_buf_puts(b, "| 序号 | 货物名称 | 单价（元） |\n| --- | --- | --- |\n");
            for (int r = 1; r <= 120; r++)
                sl_buf_printf(b, "| %d | 服务器型号%d | %d |\n", r, r, 1000 * r);
            sl_buf_puts(b, "\n");
        }
    }
}

/* A technical document: nested headings, a fenced block with "#" lines, a long table. */
static void techdoc(struct sl_buf *b)
{
    sl_buf_puts(b, "# Guide\n\nsluice is a gateway.\n\n## Install\n\n");
    for (int i = 0; i < 30; i++)
        sl_buf_puts(b, "Download the package for your platform and verify its checksum. ");
    sl_buf_puts(b, "\n\n### Linux\n\nRun the installer. It puts the binary in /usr/local/bin.\n\n"
                   "```sh\n# not a heading\nmake build\n```\n\n### macOS\n\nUse the tarball.\n\n"
                   "## Configure\n\n| key | meaning |\n| --- | --- |\n");
    for (int r = 0; r < 200; r++)
        sl_buf_printf(b, "| option_%d | what option %d changes in the routing of requests |\n", r, r);
    sl_buf_puts(b, "\n## Run\n\nStart it with sluice serve.\n");
}

struct result {
    struct sl_arena *a;
    struct sl_chunk *c;
    size_t n;
};

static struct result chunk(const struct sl_chunk_profile *p, const char *t, size_t len)
{
    struct result r = {sl_arena_new(), NULL, 0};
    assert_non_null(r.a);
    assert_int_equal(sl_chunk_text(p, t, len, r.a, &r.c, &r.n), 0);
    /* A chunk's text is the source slice itself (not NUL-terminated) or, for a table part
     * with its header repeated, an arena copy; the checks below read NUL-terminated copies. */
    for (size_t i = 0; i < r.n; i++) {
        struct sl_chunk *c = &r.c[i];
        if (c->text == t + c->start)
            assert_int_equal(c->len, c->end - c->start);
        else
            assert_true(c->text < t || c->text > t + len);
        c->text = sl_arena_strndup(r.a, c->text, c->len);
        assert_non_null(c->text);
    }
    return r;
}

static struct sl_chunk_profile with(const char *name, int size, int overlap, enum sl_chunk_unit u)
{
    struct sl_chunk_profile p = *sl_chunk_profile(name);
    p.size = size;
    p.overlap = overlap;
    p.unit = u;
    return p;
}

static int is_blank(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* The invariants every chunking keeps: size, UTF-8 boundaries, order, coverage. */
static void check_invariants(const struct sl_chunk_profile *p, const char *t, size_t len,
                             const struct result *r)
{
    char *covered = calloc(len + 1, 1);
    assert_non_null(covered);
    for (size_t i = 0; i < r->n; i++) {
        const struct sl_chunk *c = &r->c[i];
        if (c->size > p->size)
            fail_msg("chunk %zu has size %d > %d", i, c->size, p->size);
        assert_int_equal(c->size, (int)sl_chunk_measure(p->unit, c->text, c->len));
        assert_true(c->len > 0 && c->start < c->end && c->end <= len);
        assert_true(((unsigned char)t[c->start] & 0xC0) != 0x80);
        assert_true(c->end == len || ((unsigned char)t[c->end] & 0xC0) != 0x80);
        assert_true(((unsigned char)c->text[0] & 0xC0) != 0x80);
        if (i > 0)
            assert_true(c->start >= r->c[i - 1].start);
        assert_non_null(c->heading);
        memset(covered + c->start, 1, c->end - c->start);
    }
    for (size_t i = 0; i < len; i++)
        if (!covered[i] && !is_blank((unsigned char)t[i]) && memcmp(t + i, "　", 3) != 0)
            fail_msg("byte %zu (%.12s) is in no chunk", i, t + i);
    free(covered);
}

static void test_size_is_never_exceeded(void **state)
{
    struct sl_buf b = SL_BUF_INIT(1 << 24);
    contract(&b, 6);
    techdoc(&b);
    for (int i = 0; i < 300; i++) /* no separator at all: the hard split */
        sl_buf_puts(&b, "無");
    for (int i = 0; i < 2000; i++)
        sl_buf_puts(&b, "x");
    static const char *const names[] = {"contract", "techdoc", "default"};
    static const int sizes[][2] = {{1, 0}, {3, 1}, {17, 4}, {64, 8}, {200, 30}, {800, 100}};
    for (int n = 0; n < 3; n++)
        for (int s = 0; s < 6; s++)
            for (int u = 0; u < 2; u++) {
                struct sl_chunk_profile p = with(names[n], sizes[s][0], sizes[s][1], u);
                struct result r = chunk(&p, b.ptr, b.len);
                assert_true(r.n > 0);
                check_invariants(&p, b.ptr, b.len, &r);
                sl_arena_free(r.a);
            }
    sl_buf_release(&b);
}

static void test_token_size_is_the_estimate(void **state)
{
    struct sl_buf b = SL_BUF_INIT(1 << 22);
    contract(&b, 3);
    struct sl_chunk_profile p = with("contract", 120, 20, SL_CHUNK_TOKENS);
    struct result r = chunk(&p, b.ptr, b.len);
    int full = 0;
    for (size_t i = 0; i < r.n; i++) {
        assert_int_equal(r.c[i].size, (int)sl_estimate_text(r.c[i].text, r.c[i].len));
        full += r.c[i].size > 100;
    }
    assert_true(full > 0); /* chunks are packed, not one sentence each */
    sl_arena_free(r.a);
    sl_buf_release(&b);
}

static int starts_with_any(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strncmp(s, *list, strlen(*list)) == 0)
            return 1;
    return 0;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static void test_chinese_punctuation_ends_its_sentence(void **state)
{
    static const char *const punct[] = {"。", "！", "？", "；", "”", NULL};
    struct sl_buf b = SL_BUF_INIT(1 << 20);
    for (int i = 0; i < 60; i++) /* one long paragraph: only sentence ends to split at */
        sl_buf_puts(&b, zh_sentences[i % 6]);
    struct sl_chunk_profile p = with("contract", 60, 10, SL_CHUNK_TOKENS);
    struct result r = chunk(&p, b.ptr, b.len);
    assert_true(r.n > 5);
    for (size_t i = 0; i < r.n; i++) {
        const struct sl_chunk *c = &r.c[i];
        if (starts_with_any(c->text, punct))
            fail_msg("chunk %zu starts with punctuation: %s", i, c->text);
        if (!ends_with(c->text, c->len, "。") && !ends_with(c->text, c->len, "！") &&
            !ends_with(c->text, c->len, "？") && !ends_with(c->text, c->len, "；") &&
            !ends_with(c->text, c->len, "”。"))
            fail_msg("chunk %zu does not end a sentence: %s", i, c->text);
    }
    check_invariants(&p, b.ptr, b.len, &r);
    sl_arena_free(r.a);
    sl_buf_release(&b);
}

static void test_clause_heading_path_and_body(void **state)
{
    struct sl_buf b = SL_BUF_INIT(1 << 22);
    contract(&b, 4);
    struct sl_chunk_profile p = with("contract", 300, 40, SL_CHUNK_TOKENS);
    struct result r = chunk(&p, b.ptr, b.len);
    int saw_clause3 = 0, saw_table = 0;
    for (size_t i = 0; i < r.n; i++) {
        const struct sl_chunk *c = &r.c[i];
        /* No chunk is a bare heading, and none ends with one. */
        size_t ll = strcspn(c->text, "\n");
        if (strncmp(c->text, "第", 3) == 0 && strstr(c->text, "章") &&
            ll == c->len)
            fail_msg("chunk %zu is only a heading: %s", i, c->text);
        const char *last = c->text + c->len;
        while (last > c->text && last[-1] != '\n')
            last--;
        if (last > c->text && strncmp(last, "第", 3) == 0 && strstr(last, "章 "))
            fail_msg("chunk %zu ends with a heading: %s", i, last);
        if (strncmp(c->text, "第3条", strlen("第3条")) == 0) {
            assert_string_equal(c->heading, "第一章 总则 > 第3条");
            saw_clause3 = 1;
        }
        if (strstr(c->text, "服务器型号77 "))
            saw_table = 1;
        /* A cross-reference is never a heading, even at a line start. */
        assert_null(strstr(c->heading, "第五条"));
        if (strncmp(c->text, "第五条约定的", strlen("第五条约定的")) == 0)
            assert_true(ends_with(c->heading, strlen(c->heading), "条"));
    }
    assert_true(saw_clause3);
    assert_true(saw_table);
    check_invariants(&p, b.ptr, b.len, &r);
    sl_arena_free(r.a);
    sl_buf_release(&b);
}

static void test_small_clauses_stay_whole(void **state)
{
    const char *t = "第一条 定义。本合同中的术语含义如下。\n第二条 付款。甲方按月付款。\n"
                    "第三条 交付。乙方应按期交付，交付地点为甲方仓库，交付时间为每月一日。\n";
    struct sl_chunk_profile p = with("contract", 30, 5, SL_CHUNK_TOKENS);
    struct result r = chunk(&p, t, strlen(t));
    /* Clauses 1 and 2 share a chunk; clause 3 does not fit after them and starts its own
     * instead of being cut in two. */
    assert_int_equal(r.n, 2);
    assert_true(strncmp(r.c[0].text, "第一条", 9) == 0 && strstr(r.c[0].text, "第二条"));
    assert_true(strncmp(r.c[1].text, "第三条", 9) == 0);
    assert_string_equal(r.c[1].heading, "第三条");
    assert_true(ends_with(r.c[1].text, r.c[1].len, "每月一日。"));
    sl_arena_free(r.a);
}

static void test_cross_reference_is_not_a_boundary(void **state)
{
    const char *t = "第一条 甲方应按\n第五条约定的方式付款，逾期按\n第五条规定处理。\n第二条 其他。\n";
    struct sl_chunk_profile p = with("contract", 800, 100, SL_CHUNK_TOKENS);
    struct result r = chunk(&p, t, strlen(t));
    assert_int_equal(r.n, 1);
    p.size = 20;
    p.overlap = 0;
    sl_arena_free(r.a);
    r = chunk(&p, t, strlen(t));
    for (size_t i = 0; i < r.n; i++) {
        assert_null(strstr(r.c[i].heading, "第五条"));
        if (strncmp(r.c[i].text, "第二条", 9) == 0)
            assert_string_equal(r.c[i].heading, "第二条");
        else
            assert_string_equal(r.c[i].heading, "第一条");
    }
    check_invariants(&p, t, strlen(t), &r);
    sl_arena_free(r.a);
}

static void test_markdown_heading_path(void **state)
{
    struct sl_buf b = SL_BUF_INIT(1 << 22);
    techdoc(&b);
    struct sl_chunk_profile p = with("techdoc", 200, 30, SL_CHUNK_TOKENS);
    struct result r = chunk(&p, b.ptr, b.len);
    int linux_seen = 0, run_seen = 0;
    for (size_t i = 0; i < r.n; i++) {
        const struct sl_chunk *c = &r.c[i];
        if (strstr(c->text, "Run the installer")) {
            /* The section's heading is in the same chunk, before its body. */
            const char *h = strstr(c->text, "### Linux\n");
            assert_true(h && h < strstr(c->text, "Run the installer"));
            assert_true(strncmp(c->heading, "Guide > Install", 15) == 0);
            linux_seen = 1;
        }
        if (strncmp(c->text, "### ", 4) == 0) {
            size_t tl = strcspn(c->text + 4, "\n");
            assert_true(strlen(c->heading) >= tl);
            assert_memory_equal(c->heading + strlen(c->heading) - tl, c->text + 4, tl);
        }
        if (strstr(c->text, "Start it with")) {
            const char *h = strstr(c->text, "## Run\n");
            assert_true(h && h < strstr(c->text, "Start it with"));
            if (h == c->text)
                assert_string_equal(c->heading, "Guide > Run");
            run_seen = 1;
        }
        assert_null(strstr(c->heading, "not a heading"));
        /* A heading never ends a chunk. */
        const char *last = c->text + c->len;
        while (last > c->text && last[-1] != '\n')
            last--;
        assert_true(last[0] != '#');
    }
    assert_true(linux_seen && run_seen);
    check_invariants(&p, b.ptr, b.len, &r);
    sl_arena_free(r.a);
    sl_buf_release(&b);
}

static void test_table_rows_with_header(void **state)
{
    struct sl_buf b = SL_BUF_INIT(1 << 22);
    techdoc(&b);
    struct sl_chunk_profile p = with("techdoc", 150, 0, SL_CHUNK_TOKENS);
    struct result r = chunk(&p, b.ptr, b.len);
    int parts = 0, rows[200] = {0};
    for (size_t i = 0; i < r.n; i++) {
        const struct sl_chunk *c = &r.c[i];
        if (!strstr(c->text, "| option_"))
            continue;
        parts++;
        const char *h = strstr(c->text, "| key | meaning |\n| --- | --- |\n");
        if (!h)
            fail_msg("table part %zu lacks the header: %.80s", i, c->text);
        for (const char *q = c->text; (q = strstr(q, "| option_")) != NULL; q++) {
            int k = atoi(q + 9);
            assert_true(k >= 0 && k < 200);
            const char *eol = strchr(q, '\n'), *tail = strstr(q, "requests |");
            assert_true(tail && (!eol || tail < eol)); /* whole rows only */
            rows[k]++;
        }
        assert_true(c->size <= p.size);
    }
    assert_true(parts >= 5);
    for (int k = 0; k < 200; k++)
        if (rows[k] != 1)
            fail_msg("row %d is in %d chunks", k, rows[k]);
    check_invariants(&p, b.ptr, b.len, &r);
    sl_arena_free(r.a);
    sl_buf_release(&b);
}

static void test_overlap_within_a_section(void **state)
{
    struct sl_buf b = SL_BUF_INIT(1 << 20);
    for (int i = 0; i < 80; i++)
        sl_buf_printf(&b, "Sentence number %d tells the reader something. ", i);
    struct sl_chunk_profile p = with("default", 100, 30, SL_CHUNK_TOKENS);
    struct result r = chunk(&p, b.ptr, b.len);
    assert_true(r.n > 3);
    for (size_t i = 1; i < r.n; i++) {
        assert_true(r.c[i].start < r.c[i - 1].end); /* overlaps the previous chunk */
        assert_true(r.c[i].start > r.c[i - 1].start);
        assert_true(strncmp(r.c[i].text, "Sentence number", 15) == 0);
    }
    check_invariants(&p, b.ptr, b.len, &r);
    sl_arena_free(r.a);
    sl_buf_release(&b);
}

static void test_detect(void **state)
{
    struct sl_buf b = SL_BUF_INIT(1 << 22);
    contract(&b, 2);
    assert_string_equal(sl_chunk_detect(b.ptr, b.len), "contract");
    sl_buf_reset(&b);
    techdoc(&b);
    assert_string_equal(sl_chunk_detect(b.ptr, b.len), "techdoc");
    const char *docx = "# 第一章 总则\n\n第一条 内容。\n\n# 第二章 付款\n\n第二条 内容。\n";
    assert_string_equal(sl_chunk_detect(docx, strlen(docx)), "contract");
    const char *plain = "Just some text.\n\nAnother paragraph that mentions 第五条约定的 terms.\n";
    assert_string_equal(sl_chunk_detect(plain, strlen(plain)), "default");
    sl_buf_release(&b);
}

static void test_profiles_registry(void **state)
{
    char err[200];
    assert_null(sl_chunk_profile("nope"));
    assert_int_equal(sl_chunk_profile("contract")->size, 800);
    assert_int_equal(sl_chunk_profile("contract")->overlap, 100);
    assert_int_equal(sl_chunk_profile("techdoc")->size, 600);
    assert_int_equal(sl_chunk_profile("techdoc")->overlap, 80);
    assert_int_equal(sl_chunk_profile("default")->size, 500);
    assert_int_equal(sl_chunk_profile("default")->overlap, 50);
    assert_true(sl_chunk_profile("langchain")->langchain);
    char sep0[] = "|";
    const char *seps[] = {sep0, "\n", ""};
    struct sl_chunk_profile p = {"slides", seps, 3, 50, 5, SL_CHUNK_CHARS, 0, 0};
    assert_int_equal(sl_chunk_profile_register(&p, err, sizeof(err)), 0);
    sep0[0] = 'X'; /* the registry holds its own copy */
    const struct sl_chunk_profile *got = sl_chunk_profile("slides");
    assert_non_null(got);
    assert_string_equal(got->separators[0], "|");
    const char *t = "one slide|two slide|three";
    struct result r = chunk(got, t, strlen(t));
    assert_int_equal(r.n, 1);
    sl_arena_free(r.a);
    p.size = 12;
    p.overlap = 0;
    sep0[0] = '|';
    assert_int_equal(sl_chunk_profile_register(&p, err, sizeof(err)), 0); /* replaces */
    r = chunk(sl_chunk_profile("slides"), t, strlen(t));
    assert_int_equal(r.n, 3);
    assert_string_equal(r.c[1].text, "two slide|");
    sl_arena_free(r.a);
    p.overlap = 12;
    assert_int_equal(sl_chunk_profile_register(&p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "overlap"));
    p.overlap = 0;
    p.name = "contract";
    assert_int_equal(sl_chunk_profile_register(&p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "built-in"));
}

/* The LangChain mode against outputs of @langchain/textsplitters 1.0.2 (the e2e test
 * compares the two on many more inputs). */
static void test_langchain_mode(void **state)
{
    const char *t = "Hi.\n\nI'm Harrison.\n\nHow? Are? You?\nOkay then f f f f.\n"
                    "This is a weird text to write, but gotta test the splittingggg some how.\n\n"
                    "Bye!\n\n-H.";
    static const char *const want[] = {"Hi.", "I'm", "Harrison.", "How? Are?", "You?",
                                       "Okay then", "f f f f.", "This is a", "weird", "text to",
                                       "write,", "but gotta", "test the", "splitting", "gggg",
                                       "some how.", "Bye!", "-H."};
    struct sl_chunk_profile p = with("langchain", 10, 1, SL_CHUNK_CHARS);
    struct result r = chunk(&p, t, strlen(t));
    assert_int_equal(r.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < r.n; i++) {
        assert_string_equal(r.c[i].text, want[i]);
        assert_memory_equal(t + r.c[i].start, want[i], strlen(want[i]));
    }
    sl_arena_free(r.a);
}

/* The LangChain mode's sizes are the unit's measure of each chunk's text (computed from the
 * pieces' costs, less the trimmed ends), in both units and with blanks at the ends. */
static void test_langchain_sizes_are_measures(void **state)
{
    struct sl_buf b = SL_BUF_INIT(1 << 22);
    contract(&b, 2);
    techdoc(&b);
    sl_buf_puts(&b, "  \t　 tail, with Unicode spaces\u00a0 \n\n\n");
    static const int sizes[][2] = {{1, 0}, {7, 3}, {64, 8}, {300, 60}, {1000, 200}};
    for (int s = 0; s < 5; s++)
        for (int u = 0; u < 2; u++) {
            struct sl_chunk_profile p = with("langchain", sizes[s][0], sizes[s][1], u);
            struct result r = chunk(&p, b.ptr, b.len);
            assert_true(r.n > 0);
            for (size_t i = 0; i < r.n; i++)
                assert_int_equal(r.c[i].size, (int)sl_chunk_measure(p.unit, r.c[i].text, r.c[i].len));
            sl_arena_free(r.a);
        }
    sl_buf_release(&b);
}

static void test_preamble_is_named_by_the_first_heading(void **state)
{
    const char *t = "Title page\n\n# Scope\n\nWhat this covers.\n";
    struct result r = chunk(sl_chunk_profile("techdoc"), t, strlen(t));
    assert_int_equal(r.n, 1);
    assert_string_equal(r.c[0].heading, "Scope");
    sl_arena_free(r.a);
}

static void test_empty_and_blank(void **state)
{
    static const char *const names[] = {"contract", "techdoc", "default", "langchain"};
    for (int i = 0; i < 4; i++) {
        struct result r = chunk(sl_chunk_profile(names[i]), "", 0);
        assert_int_equal(r.n, 0);
        sl_arena_free(r.a);
        r = chunk(sl_chunk_profile(names[i]), " \n\n\t　\n", strlen(" \n\n\t　\n"));
        assert_int_equal(r.n, 0);
        sl_arena_free(r.a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_is_never_exceeded),
        cmocka_unit_test(test_token_size_is_the_estimate),
        cmocka_unit_test(test_chinese_punctuation_ends_its_sentence),
        cmocka_unit_test(test_clause_heading_path_and_body),
        cmocka_unit_test(test_small_clauses_stay_whole),
        cmocka_unit_test(test_cross_reference_is_not_a_boundary),
        cmocka_unit_test(test_markdown_heading_path),
        cmocka_unit_test(test_table_rows_with_header),
        cmocka_unit_test(test_overlap_within_a_section),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_profiles_registry),
        cmocka_unit_test(test_langchain_mode),
        cmocka_unit_test(test_langchain_sizes_are_measures),
        cmocka_unit_test(test_preamble_is_named_by_the_first_heading),
        cmocka_unit_test(test_empty_and_blank),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
