/* HTML to Markdown-shaped text with libxml2's HTML parser: headings become "#" lines, list
 * items "- " lines, tables Markdown tables, pre blocks fenced code; script, style, nav and
 * other non-content elements are dropped. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include "kb/extract_internal.h"

static int named(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcasecmp((const char *)n->name, name) == 0;
}

static int in_list(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp(name, *list) == 0)
            return 1;
    return 0;
}

static const char *const dropped[] = {"script", "style", "nav", "noscript", "template", "head",
                                      "svg", "iframe", "object", "button", "select", NULL};
static const char *const blocks[] = {"p", "div", "section", "article", "header", "footer",
                                     "main", "aside", "blockquote", "figure", "figcaption",
                                     "dl", "dt", "dd", "address", "form", "fieldset",
                                     "details", "summary", "center", "body", "html", NULL};

struct walk {
    struct sl_md md;
    int list_depth;
};

static void walk(struct walk *w, const xmlNode *n);

/* Navigation that is not marked up as <nav>: role="navigation", and the class names that
 * documentation generators give their headers, footers, sidebars and heading permalinks. */
static int navigation(const xmlNode *n)
{
    static const char *const classes[] = {"navheader", "navfooter", "navbar", "navigation",
                                          "sphinxsidebar", "breadcrumb", "headerlink", NULL};
    xmlChar *role = xmlGetProp(n, (const xmlChar *)"role");
    xmlChar *cls = xmlGetProp(n, (const xmlChar *)"class");
    int nav = role && strcasecmp((const char *)role, "navigation") == 0;
    for (const char *const *c = classes; !nav && cls && *c; c++) {
        const char *hit = strstr((const char *)cls, *c);
        size_t k = strlen(*c);
        nav = hit && (hit == (const char *)cls || hit[-1] == ' ') && (hit[k] == '\0' || hit[k] == ' ');
    }
    xmlFree(role);
    xmlFree(cls);
    return nav;
}

static void children(struct walk *w, const xmlNode *n)
{
    for (const xmlNode *c = n->children; c; c = c->next)
        walk(w, c);
}

/* The text of a subtree, whitespace collapsed, into its own writer. */
static void text_of(const xmlNode *n, struct sl_md *m)
{
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
        if (n->content)
            sl_md_text(m, (const char *)n->content, strlen((const char *)n->content));
        return;
    }
    if (n->type != XML_ELEMENT_NODE || in_list((const char *)n->name, dropped) || navigation(n))
        return;
    if (named(n, "br"))
        sl_md_break(m, 1);
    for (const xmlNode *c = n->children; c; c = c->next)
        text_of(c, m);
}

static void heading(struct walk *w, const xmlNode *n, int level)
{
    struct sl_buf b = SL_BUF_INIT(4096);
    struct sl_md m;
    sl_md_init(&m, &b);
    text_of(n, &m);
    if (b.len) {
        char hashes[8] = "######";
        hashes[level] = '\0';
        sl_md_break(&w->md, 3);
        sl_md_raw(&w->md, hashes, (size_t)level);
        sl_md_raw(&w->md, " ", 1);
        sl_md_raw(&w->md, b.ptr, b.len);
        sl_md_break(&w->md, 3);
    }
    sl_buf_release(&b);
}

/* One cell's text with "|" escaped, into row; returns whether it had any text. */
static int cell(struct sl_buf *row, const xmlNode *td)
{
    struct sl_buf b = SL_BUF_INIT(64 * 1024);
    struct sl_md m;
    sl_md_init(&m, &b);
    text_of(td, &m);
    sl_buf_append(row, " ", 1);
    for (size_t i = 0; i < b.len; i++)
        sl_buf_append(row, b.ptr[i] == '|' ? "\\|" : b.ptr + i, b.ptr[i] == '|' ? 2 : 1);
    sl_buf_append(row, " |", 2);
    int any = b.len > 0;
    sl_buf_release(&b);
    return any;
}

static int rows_of(const xmlNode *n, const xmlNode **rows, int nrows)
{
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (named(c, "tr")) {
            if (rows)
                rows[nrows] = c;
            nrows++;
        } else if (named(c, "thead") || named(c, "tbody") || named(c, "tfoot")) {
            nrows = rows_of(c, rows, nrows);
        }
    }
    return nrows;
}

static int cells_of(const xmlNode *tr)
{
    int k = 0;
    for (const xmlNode *c = tr->children; c; c = c->next)
        k += named(c, "td") || named(c, "th");
    return k;
}

/* A Markdown table; the first row is the header. */
static void table(struct walk *w, const xmlNode *n)
{
    int nrows = rows_of(n, NULL, 0), cols = 0;
    const xmlNode **r = nrows ? calloc((size_t)nrows, sizeof(*r)) : NULL;
    if (!r)
        return;
    rows_of(n, r, 0);
    for (int i = 0; i < nrows; i++)
        if (cells_of(r[i]) > cols)
            cols = cells_of(r[i]);
    sl_md_break(&w->md, 3);
    struct sl_buf row = SL_BUF_INIT(1024 * 1024);
    for (int i = 0, out = 0; i < nrows && cols; i++) {
        int k = 0, any = 0;
        sl_buf_reset(&row);
        sl_buf_append(&row, "|", 1);
        for (const xmlNode *c = r[i]->children; c; c = c->next)
            if (named(c, "td") || named(c, "th")) {
                any |= cell(&row, c);
                k++;
            }
        if (!any) /* layout rows with nothing in them */
            continue;
        for (; k < cols; k++)
            sl_buf_append(&row, "  |", 3);
        sl_md_raw(&w->md, row.ptr, row.len);
        sl_md_raw(&w->md, "\n", 1);
        if (out++ == 0) {
            sl_md_raw(&w->md, "|", 1);
            for (k = 0; k < cols; k++)
                sl_md_raw(&w->md, " --- |", 6);
            sl_md_raw(&w->md, "\n", 1);
        }
    }
    sl_buf_release(&row);
    sl_md_break(&w->md, 3);
    free(r);
}

/* Preformatted text as a fenced block, whitespace kept. */
static void pre(struct walk *w, const xmlNode *n)
{
    struct sl_buf b = SL_BUF_INIT(16u * 1024 * 1024);
    struct sl_md m;
    sl_md_init(&m, &b);
    m.pre = 1;
    text_of(n, &m);
    while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == ' '))
        b.ptr[--b.len] = '\0';
    if (b.len) {
        sl_md_break(&w->md, 3);
        sl_md_raw(&w->md, "```\n", 4);
        sl_md_raw(&w->md, b.ptr, b.len);
        sl_md_raw(&w->md, "\n```", 4);
        sl_md_break(&w->md, 3);
    }
    sl_buf_release(&b);
}

static void item(struct walk *w, const xmlNode *n, const xmlNode *list)
{
    static const char indent[] = "                ";
    int depth = w->list_depth > 8 ? 8 : w->list_depth;
    sl_md_break(&w->md, 2);
    if (depth > 1)
        sl_md_raw(&w->md, indent, (size_t)(2 * (depth - 1)));
    if (named(list, "ol")) {
        int k = 1;
        for (const xmlNode *c = list->children; c && c != n; c = c->next)
            k += named(c, "li");
        char num[16];
        int nl = snprintf(num, sizeof(num), "%d. ", k);
        sl_md_marker(&w->md, num, (size_t)nl);
    } else {
        sl_md_marker(&w->md, "- ", 2);
    }
    children(w, n);
    sl_md_break(&w->md, 2);
}

static void walk(struct walk *w, const xmlNode *n)
{
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
        text_of(n, &w->md);
        return;
    }
    if (n->type != XML_ELEMENT_NODE && n->type != XML_DOCUMENT_NODE &&
        n->type != XML_HTML_DOCUMENT_NODE) {
        return;
    }
    const char *name = n->name ? (const char *)n->name : "";
    if (n->type == XML_ELEMENT_NODE && (in_list(name, dropped) || navigation(n)))
        return;
    if (n->type == XML_ELEMENT_NODE && strlen(name) == 2 && (name[0] == 'h' || name[0] == 'H') &&
        name[1] >= '1' && name[1] <= '6') {
        heading(w, n, name[1] - '0');
    } else if (named(n, "table")) {
        table(w, n);
    } else if (named(n, "pre")) {
        pre(w, n);
    } else if (named(n, "br")) {
        sl_md_break(&w->md, 2);
    } else if (named(n, "hr")) {
        sl_md_break(&w->md, 3);
    } else if (named(n, "ul") || named(n, "ol")) {
        w->list_depth++;
        sl_md_break(&w->md, w->list_depth == 1 ? 3 : 2);
        for (const xmlNode *c = n->children; c; c = c->next) {
            if (named(c, "li"))
                item(w, c, n);
            else
                walk(w, c);
        }
        w->list_depth--;
        sl_md_break(&w->md, w->list_depth == 0 ? 3 : 2);
    } else if (named(n, "li")) { /* outside a list */
        w->list_depth++;
        item(w, n, n);
        w->list_depth--;
    } else if (n->type == XML_ELEMENT_NODE && in_list(name, blocks)) {
        sl_md_break(&w->md, 3);
        children(w, n);
        sl_md_break(&w->md, 3);
    } else {
        children(w, n);
    }
}

int sl_extract_html(const char *data, size_t len, struct sl_buf *out, char *err, size_t errlen)
{
    if (len > (size_t)INT_MAX) {
        snprintf(err, errlen, "HTML larger than 2 GB");
        return -1;
    }
    /* Declared charsets win; undeclared UTF-8 is read as UTF-8, not Latin-1. */
    const char *enc = sl_utf8_valid(data, len) ? "UTF-8" : NULL;
    htmlDocPtr doc = htmlReadMemory(data, (int)len, NULL, enc,
                                    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
                                        HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                                        HTML_PARSE_COMPACT);
    if (!doc) {
        snprintf(err, errlen, "not an HTML document");
        return -1;
    }
    struct walk w = {0};
    size_t before = out->len;
    sl_md_init(&w.md, out);
    walk(&w, (const xmlNode *)doc);
    xmlFreeDoc(doc);
    if (w.md.failed) {
        snprintf(err, errlen, "the text is larger than %zu bytes", out->max);
        return -1;
    }
    if (out->len > before && out->ptr[out->len - 1] != '\n')
        sl_buf_append(out, "\n", 1);
    return 0;
}
