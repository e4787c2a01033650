/* DOCX (Office Open XML) text: word/document.xml read from the zip with libzip and walked with
 * libxml2. Paragraphs become lines, heading styles (from word/styles.xml, or Heading1-style ids,
 * or an outline level) "#" headings, numbered paragraphs "- " items, tables Markdown tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <zip.h>

#include "kb/extract_internal.h"

#define MAX_PART (64u * 1024 * 1024) /* one XML part, uncompressed */
#define MAX_STYLES 512

struct style {
    char id[64];
    int level;
};

struct docx {
    struct sl_md md;
    struct style styles[MAX_STYLES];
    int nstyles;
};

static int is(const xmlNode *n, const char *local)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, local) == 0;
}

static const xmlNode *child(const xmlNode *n, const char *local)
{
    for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (is(c, local))
            return c;
    return NULL;
}

/* The w:val attribute (any namespace prefix). */
static const char *val(const xmlNode *n)
{
    for (const xmlAttr *a = n ? n->properties : NULL; a; a = a->next)
        if (strcmp((const char *)a->name, "val") == 0 && a->children && a->children->content)
            return (const char *)a->children->content;
    return NULL;
}

static const char *attr(const xmlNode *n, const char *local)
{
    for (const xmlAttr *a = n ? n->properties : NULL; a; a = a->next)
        if (strcmp((const char *)a->name, local) == 0 && a->children && a->children->content)
            return (const char *)a->children->content;
    return NULL;
}

/* Reads one part of the zip; NULL when absent (*missing set) or too large. */
static char *read_part(zip_t *z, const char *name, size_t *len, int *missing)
{
    zip_stat_t st;
    *missing = 0;
    if (zip_stat(z, name, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
        *missing = 1;
        return NULL;
    }
    if (st.size > MAX_PART)
        return NULL;
    zip_file_t *f = zip_fopen(z, name, 0);
    char *buf = f ? malloc((size_t)st.size + 1) : NULL;
    zip_int64_t got = buf ? zip_fread(f, buf, st.size) : -1;
    if (f)
        zip_fclose(f);
    if (got < 0 || (zip_uint64_t)got != st.size) {
        free(buf);
        return NULL;
    }
    buf[got] = '\0';
    *len = (size_t)got;
    return buf;
}

static xmlDocPtr parse_xml(const char *data, size_t len)
{
    /* No network, no entity expansion beyond the predefined ones. */
    return xmlReadMemory(data, (int)len, NULL, NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                             XML_PARSE_COMPACT);
}

/* Heading level of a style from its name ("heading 2", "Title") or its outline level. */
static void load_styles(struct docx *d, const char *xml, size_t len)
{
    xmlDocPtr doc = parse_xml(xml, len);
    const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    for (const xmlNode *s = root ? root->children : NULL; s && d->nstyles < MAX_STYLES;
         s = s->next) {
        if (!is(s, "style"))
            continue;
        const char *id = attr(s, "styleId"), *name = val(child(s, "name"));
        const char *outline = val(child(child(s, "pPr"), "outlineLvl"));
        int level = 0;
        if (name && strncasecmp(name, "heading ", 8) == 0 && name[8] >= '1' && name[8] <= '9')
            level = name[8] - '0';
        else if (name && strcasecmp(name, "title") == 0)
            level = 1;
        else if (outline && outline[0] >= '0' && outline[0] <= '8')
            level = outline[0] - '0' + 1;
        if (id && level && strlen(id) < sizeof(d->styles[0].id)) {
            strcpy(d->styles[d->nstyles].id, id);
            d->styles[d->nstyles++].level = level > 6 ? 6 : level;
        }
    }
    if (doc)
        xmlFreeDoc(doc);
}

static int heading_level(const struct docx *d, const xmlNode *ppr)
{
    const char *id = val(child(ppr, "pStyle")), *outline = val(child(ppr, "outlineLvl"));
    if (id) {
        for (int i = 0; i < d->nstyles; i++)
            if (strcmp(d->styles[i].id, id) == 0)
                return d->styles[i].level;
        if (strncasecmp(id, "heading", 7) == 0 && id[7] >= '1' && id[7] <= '9' && !id[8])
            return id[7] - '0' > 6 ? 6 : id[7] - '0';
        if (strcasecmp(id, "title") == 0)
            return 1;
    }
    if (outline && outline[0] >= '0' && outline[0] <= '5')
        return outline[0] - '0' + 1;
    return 0;
}

/* The text runs under n: w:t, tabs and breaks; deleted text (w:del) is left out. */
static void runs(struct sl_md *m, const xmlNode *n)
{
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is(c, "t") && c->children && c->children->content) {
            const char *t = (const char *)c->children->content;
            sl_md_text(m, t, strlen(t));
        } else if (is(c, "tab")) {
            sl_md_break(m, 1);
        } else if (is(c, "br") || is(c, "cr")) {
            sl_md_break(m, 1);
        } else if (!is(c, "del") && !is(c, "delText") && !is(c, "pPr") && !is(c, "rPr") &&
                   !is(c, "instrText")) {
            runs(m, c);
        }
    }
}

static void paragraph(struct docx *d, const xmlNode *p)
{
    const xmlNode *ppr = child(p, "pPr");
    int level = heading_level(d, ppr);
    struct sl_buf b = SL_BUF_INIT(MAX_PART);
    struct sl_md m;
    sl_md_init(&m, &b);
    runs(&m, p);
    if (b.len) {
        if (level) {
            static const char hashes[] = "###### ";
            sl_md_break(&d->md, 3);
            sl_md_raw(&d->md, hashes + 6 - level, (size_t)level + 1);
        } else {
            sl_md_break(&d->md, 3);
            if (child(ppr, "numPr"))
                sl_md_marker(&d->md, "- ", 2);
        }
        sl_md_raw(&d->md, b.ptr, b.len);
        sl_md_break(&d->md, 3);
    }
    if (m.failed)
        d->md.failed = 1;
    sl_buf_release(&b);
}

/* A cell: its paragraphs' text on one line, "|" escaped. */
static void cell(struct docx *d, const xmlNode *tc)
{
    struct sl_buf b = SL_BUF_INIT(1024 * 1024);
    struct sl_md m;
    sl_md_init(&m, &b);
    for (const xmlNode *c = tc->children; c; c = c->next)
        if (is(c, "p") || is(c, "tbl") || is(c, "sdt")) {
            sl_md_break(&m, 1);
            runs(&m, c);
        }
    sl_md_raw(&d->md, " ", 1);
    for (size_t i = 0; i < b.len; i++)
        sl_md_raw(&d->md, b.ptr[i] == '|' ? "\\|" : b.ptr + i, b.ptr[i] == '|' ? 2 : 1);
    sl_md_raw(&d->md, " |", 2);
    sl_buf_release(&b);
}

static void table(struct docx *d, const xmlNode *tbl)
{
    int cols = 0, row = 0;
    for (const xmlNode *tr = tbl->children; tr; tr = tr->next) {
        int k = 0;
        for (const xmlNode *tc = is(tr, "tr") ? tr->children : NULL; tc; tc = tc->next)
            k += is(tc, "tc");
        if (k > cols)
            cols = k;
    }
    if (!cols)
        return;
    sl_md_break(&d->md, 3);
    for (const xmlNode *tr = tbl->children; tr; tr = tr->next) {
        if (!is(tr, "tr"))
            continue;
        int k = 0;
        sl_md_raw(&d->md, "|", 1);
        for (const xmlNode *tc = tr->children; tc; tc = tc->next)
            if (is(tc, "tc")) {
                cell(d, tc);
                k++;
            }
        for (; k < cols; k++)
            sl_md_raw(&d->md, "  |", 3);
        sl_md_raw(&d->md, "\n", 1);
        if (row++ == 0) {
            sl_md_raw(&d->md, "|", 1);
            for (k = 0; k < cols; k++)
                sl_md_raw(&d->md, " --- |", 6);
            sl_md_raw(&d->md, "\n", 1);
        }
    }
    sl_md_break(&d->md, 3);
}

static void body(struct docx *d, const xmlNode *n)
{
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (is(c, "p"))
            paragraph(d, c);
        else if (is(c, "tbl"))
            table(d, c);
        else if (is(c, "sdt") || is(c, "sdtContent") || is(c, "customXml"))
            body(d, c);
    }
}

int sl_extract_docx(const char *data, size_t len, struct sl_buf *out, char *err, size_t errlen)
{
    zip_error_t zerr;
    zip_error_init(&zerr);
    zip_source_t *src = zip_source_buffer_create(data, len, 0, &zerr);
    zip_t *z = src ? zip_open_from_source(src, ZIP_RDONLY, &zerr) : NULL;
    struct docx *d = NULL;
    char *xml = NULL, *styles = NULL;
    size_t xlen = 0, slen = 0;
    int missing = 0, result = -1;
    if (!z) {
        snprintf(err, errlen, "not a DOCX file (zip: %s)", zip_error_strerror(&zerr));
        if (src)
            zip_source_free(src);
        zip_error_fini(&zerr);
        return -1;
    }
    zip_error_fini(&zerr);
    xml = read_part(z, "word/document.xml", &xlen, &missing);
    if (!xml) {
        snprintf(err, errlen, missing ? "not a DOCX file (no word/document.xml)"
                                      : "corrupt DOCX (word/document.xml unreadable or too large)");
        goto out;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    styles = read_part(z, "word/styles.xml", &slen, &missing);
    if (styles)
        load_styles(d, styles, slen);
    xmlDocPtr doc = parse_xml(xml, xlen);
    const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    const xmlNode *b = child(root, "body");
    if (!b) {
        snprintf(err, errlen, "corrupt DOCX (word/document.xml has no body)");
        if (doc)
            xmlFreeDoc(doc);
        goto out;
    }
    sl_md_init(&d->md, out);
    body(d, b);
    xmlFreeDoc(doc);
    if (d->md.failed)
        snprintf(err, errlen, "the text is larger than %zu bytes", out->max);
    else
        result = 0;
    if (!result && out->len && out->ptr[out->len - 1] != '\n' && sl_buf_append(out, "\n", 1))
        result = -1;
out:
    free(xml);
    free(styles);
    free(d);
    zip_discard(z);
    return result;
}
