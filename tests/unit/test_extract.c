/* Extraction: kinds by extension, UTF-8 text, HTML structure as Markdown, PDF pages, DOCX
 * headings, lists and tables (files written here with libzip), and the errors for missing,
 * unknown and corrupt files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zip.h>

#include "kb/chunk.h"
#include "kb/extract.h"

static char tmpdir[] = "/tmp/sluice-test-extract-XXXXXX";

static int setup(void **state)
{
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *path_of(const char *name)
{
    static char p[256];
    snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
    return p;
}

/* Extracts bytes of a kind; returns the text (caller frees) or NULL with err filled. */
static char *extract(enum sl_doc_kind kind, const char *data, size_t len, char *err)
{
    struct sl_buf out = SL_BUF_INIT(SL_MAX_DOC_TEXT);
    if (sl_extract_mem(kind, data, len, &out, err, 256)) {
        sl_buf_release(&out);
        return NULL;
    }
    return out.ptr ? out.ptr : strdup("");
}

static void test_kind_of(void **state)
{
    assert_int_equal(sl_doc_kind_of("a/b.txt"), SL_DOC_TEXT);
    assert_int_equal(sl_doc_kind_of("README.MD"), SL_DOC_MARKDOWN);
    assert_int_equal(sl_doc_kind_of("x.markdown"), SL_DOC_MARKDOWN);
    assert_int_equal(sl_doc_kind_of("index.htm"), SL_DOC_HTML);
    assert_int_equal(sl_doc_kind_of("page.html"), SL_DOC_HTML);
    assert_int_equal(sl_doc_kind_of("c.PDF"), SL_DOC_PDF);
    assert_int_equal(sl_doc_kind_of("合同.docx"), SL_DOC_DOCX);
    assert_int_equal(sl_doc_kind_of("a.doc"), -1);
    assert_int_equal(sl_doc_kind_of("dir.md/file"), -1);
    assert_int_equal(sl_doc_kind_of("noext"), -1);
}

static void test_text(void **state)
{
    char err[256];
    const char in[] = "\xEF\xBB\xBF第一条 内容\r\nline two\rthree\n";
    char *t = extract(SL_DOC_TEXT, in, sizeof(in) - 1, err);
    assert_non_null(t);
    assert_string_equal(t, "第一条 内容\nline two\nthree\n");
    free(t);
    const char md[] = "# Title\n\nbody\n";
    t = extract(SL_DOC_MARKDOWN, md, sizeof(md) - 1, err);
    assert_string_equal(t, md); /* offsets in a Markdown file stay the file's */
    free(t);
    const char bad[] = "caf\xE9 latin-1";
    assert_null(extract(SL_DOC_TEXT, bad, sizeof(bad) - 1, err));
    assert_non_null(strstr(err, "UTF-8"));
}

static void test_html(void **state)
{
    const char *html =
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<nav><a href='/'>Home</a> menu</nav><div role='navigation'>Side links</div>"
        "<h1>User   guide</h1><p>First <b>bold</b>\n paragraph.</p>"
        "<script>var secret = 1;</script>"
        "<h2>Install<a class=\"headerlink\" href=\"#install\">\xc2\xb6</a></h2><ul><li><p>one</p></li><li>two<ul><li>nested</li></ul></li></ul>"
        "<ol><li>first</li><li>second</li></ol>"
        "<table><tr><th>key</th><th>value</th></tr><tr><td>a|b</td><td>1</td></tr>"
        "<tr><td></td><td></td></tr><tr><td>c</td></tr></table>"
        "<pre>make  build\n  indented</pre><p>中文段落。</p></body></html>";
    char err[256];
    char *t = extract(SL_DOC_HTML, html, strlen(html), err);
    assert_non_null(t);
    assert_null(strstr(t, "secret"));
    assert_null(strstr(t, "color"));
    assert_null(strstr(t, "menu"));
    assert_null(strstr(t, "Side links"));
    assert_non_null(strstr(t, "# User guide\n\nFirst bold paragraph.\n\n## Install\n\n"));
    assert_non_null(strstr(t, "- one\n"));
    assert_non_null(strstr(t, "- two\n  - nested\n"));
    assert_non_null(strstr(t, "1. first\n2. second\n"));
    assert_non_null(strstr(t, "| key | value |\n| --- | --- |\n| a\\|b | 1 |\n| c |  |\n\n"));
    assert_non_null(strstr(t, "```\nmake  build\n  indented\n```\n\n中文段落。\n"));
    /* The chunker sees the structure. */
    struct sl_arena *a = sl_arena_new();
    struct sl_chunk *c;
    size_t n;
    struct sl_chunk_profile p = *sl_chunk_profile("techdoc");
    p.size = 20;
    p.overlap = 0;
    assert_int_equal(sl_chunk_text(&p, t, strlen(t), a, &c, &n), 0);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (memmem(c[i].text, c[i].len, "second", 6)) /* chunk texts are not NUL-terminated */
            found = strcmp(c[i].heading, "User guide > Install") == 0;
    assert_true(found);
    sl_arena_free(a);
    free(t);
}

/* A two-page PDF with a correct cross-reference table. */
static size_t make_pdf(char *out, size_t cap)
{
    const char *objs[] = {
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 2 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 7 0 R >> >> >>",
        NULL, /* page one's stream */
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 6 0 R "
        "/Resources << /Font << /F1 7 0 R >> >> >>",
        NULL, /* page two's stream */
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    };
    const char *streams[] = {"BT /F1 24 Tf 72 700 Td (Hello from page one) Tj ET",
                             "BT /F1 24 Tf 72 700 Td (Second page text) Tj ET"};
    size_t off[8], n = (size_t)snprintf(out, cap, "%%PDF-1.4\n");
    for (int i = 0; i < 7; i++) {
        off[i + 1] = n;
        if (objs[i])
            n += (size_t)snprintf(out + n, cap - n, "%d 0 obj\n%s\nendobj\n", i + 1, objs[i]);
        else {
            const char *s = streams[i == 3 ? 0 : 1];
            n += (size_t)snprintf(out + n, cap - n,
                                  "%d 0 obj\n<< /Length %zu >>\nstream\n%s\nendstream\nendobj\n",
                                  i + 1, strlen(s), s);
        }
    }
    size_t xref = n;
    n += (size_t)snprintf(out + n, cap - n, "xref\n0 8\n0000000000 65535 f \n");
    for (int i = 1; i <= 7; i++)
        n += (size_t)snprintf(out + n, cap - n, "%010zu 00000 n \n", off[i]);
    n += (size_t)snprintf(out + n, cap - n,
                          "trailer\n<< /Size 8 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", xref);
    return n;
}

static void test_pdf(void **state)
{
    char pdf[4096], err[256];
    size_t n = make_pdf(pdf, sizeof(pdf));
    char *t = extract(SL_DOC_PDF, pdf, n, err);
    if (!t)
        fail_msg("pdf: %s", err);
    char *one = strstr(t, "Hello from page one"), *two = strstr(t, "Second page text");
    assert_true(one && two && one < two);
    assert_non_null(strstr(t, "one\n\nSecond")); /* pages apart by a blank line */
    free(t);
    assert_null(extract(SL_DOC_PDF, "%PDF-1.4\ngarbage", 16, err));
    assert_non_null(strstr(err, "PDF"));
    assert_null(extract(SL_DOC_PDF, "hello", 5, err));
    assert_non_null(strstr(err, "not a PDF"));
}

static void add(zip_t *z, const char *name, const char *data)
{
    zip_source_t *s = zip_source_buffer(z, data, strlen(data), 0);
    assert_non_null(s);
    assert_true(zip_file_add(z, name, s, ZIP_FL_OVERWRITE) >= 0);
}

#define W "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\""

static void write_docx(const char *path, int with_document)
{
    int zerr;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    assert_non_null(z);
    add(z, "[Content_Types].xml",
        "<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/"
        "content-types\"/>");
    /* Style ids as Chinese Word writes them: "1" is named "heading 1". */
    add(z, "word/styles.xml",
        "<?xml version=\"1.0\"?><w:styles " W ">"
        "<w:style w:type=\"paragraph\" w:styleId=\"1\"><w:name w:val=\"heading 1\"/></w:style>"
        "<w:style w:type=\"paragraph\" w:styleId=\"a3\"><w:name w:val=\"Normal\"/></w:style>"
        "</w:styles>");
    if (with_document)
        add(z, "word/document.xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document " W "><w:body>"
            "<w:p><w:pPr><w:pStyle w:val=\"1\"/></w:pPr><w:r><w:t>第一章 总则</w:t></w:r></w:p>"
            "<w:p><w:r><w:t xml:space=\"preserve\">第一条 甲方应当</w:t></w:r>"
            "<w:del><w:r><w:delText>删除的文字</w:delText></w:r></w:del>"
            "<w:r><w:t>按时付款。</w:t></w:r></w:p>"
            "<w:p><w:pPr><w:pStyle w:val=\"Heading2\"/></w:pPr><w:r><w:t>付款</w:t></w:r></w:p>"
            "<w:p><w:pPr><w:numPr><w:ilvl w:val=\"0\"/></w:numPr></w:pPr><w:r><w:t>列表项</w:t>"
            "</w:r></w:p>"
            "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>名称</w:t></w:r></w:p></w:tc>"
            "<w:tc><w:p><w:r><w:t>单价</w:t></w:r></w:p></w:tc></w:tr>"
            "<w:tr><w:tc><w:p><w:r><w:t>服务器</w:t></w:r></w:p></w:tc>"
            "<w:tc><w:p><w:r><w:t>1000</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
            "<w:p><w:r><w:t>结束。</w:t></w:r></w:p><w:sectPr/></w:body></w:document>");
    assert_int_equal(zip_close(z), 0);
}

static void test_docx(void **state)
{
    char err[256];
    struct sl_buf out = SL_BUF_INIT(SL_MAX_DOC_TEXT);
    write_docx(path_of("c.docx"), 1);
    if (sl_extract_file(path_of("c.docx"), &out, err, sizeof(err)))
        fail_msg("docx: %s", err);
    assert_string_equal(out.ptr, "# 第一章 总则\n\n第一条 甲方应当按时付款。\n\n## 付款\n\n- 列表项\n\n"
                                 "| 名称 | 单价 |\n| --- | --- |\n| 服务器 | 1000 |\n\n结束。\n");
    assert_string_equal(sl_chunk_detect(out.ptr, out.len), "contract");
    sl_buf_release(&out);

    write_docx(path_of("empty.docx"), 0);
    assert_int_equal(sl_extract_file(path_of("empty.docx"), &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "word/document.xml"));
    FILE *f = fopen(path_of("bad.docx"), "wb");
    fputs("PK\x03\x04 this is not a zip", f);
    fclose(f);
    assert_int_equal(sl_extract_file(path_of("bad.docx"), &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a DOCX"));
    assert_non_null(strstr(err, "bad.docx"));
    sl_buf_release(&out);
}

static void test_file_errors(void **state)
{
    char err[256];
    struct sl_buf out = SL_BUF_INIT(SL_MAX_DOC_TEXT);
    assert_int_equal(sl_extract_file(path_of("missing.txt"), &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "missing.txt: No such file"));
    assert_int_equal(sl_extract_file(path_of("x.doc"), &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown document type"));
    assert_int_equal(sl_extract_file(tmpdir, &out, err, sizeof(err)), -1);
    FILE *f = fopen(path_of("ok.md"), "wb");
    fputs("# Hi\n", f);
    fclose(f);
    assert_int_equal(sl_extract_file(path_of("ok.md"), &out, err, sizeof(err)), 0);
    assert_string_equal(out.ptr, "# Hi\n");
    sl_buf_release(&out);
    struct sl_buf small = SL_BUF_INIT(3);
    assert_int_equal(sl_extract_file(path_of("ok.md"), &small, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "larger than"));
    sl_buf_release(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_of), cmocka_unit_test(test_text),
        cmocka_unit_test(test_html),    cmocka_unit_test(test_pdf),
        cmocka_unit_test(test_docx),    cmocka_unit_test(test_file_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
