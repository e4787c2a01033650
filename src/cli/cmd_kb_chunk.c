/* sluice kb chunk FILE: extracts a document and prints its chunks, storing nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli/cmd_kb.h"
#include "cli/commands.h"
#include "config/config.h"
#include "core/arena.h"
#include "core/clock.h"
#include "kb/chunk.h"
#include "kb/extract.h"

struct options {
    const char *file, *type, *unit, *format, *config;
    long size, overlap; /* -1: the profile's */
    long repeat;        /* chunk this many times (for timing with --format stats) */
};

static const char help[] =
    "usage: sluice kb chunk FILE [--type contract|techdoc|default|langchain|auto|NAME]\n"
    "                            [--unit tokens|chars] [--size N] [--overlap N]\n"
    "                            [--format text|json|extracted|stats] [--repeat N]\n"
    "                            [--config FILE]\n\n"
    "Extracts FILE (.txt .md .html .pdf .docx) and prints the chunks it would be stored as,\n"
    "with their byte offsets in the extracted text, size and heading path. Nothing is stored.\n"
    "--type auto (the default) picks contract, techdoc or default from the text.\n"
    "--format extracted prints the extracted text instead; --format stats prints the chunk\n"
    "count and the time chunking took (averaged over --repeat N runs) as JSON.\n"
    "--config FILE adds the chunking: profiles of a sluice config to --type.\n";

static int number(const char *s, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || end == s || *end || errno || v < 0 || v > 1000000)
        return -1;
    *out = v;
    return 0;
}

static int parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){NULL, "auto", NULL, "text", NULL, -1, -1, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (strcmp(a, "--type") == 0 && v)
            o->type = v;
        else if (strcmp(a, "--unit") == 0 && v)
            o->unit = v;
        else if (strcmp(a, "--format") == 0 && v)
            o->format = v;
        else if (strcmp(a, "--config") == 0 && v)
            o->config = v;
        else if (strcmp(a, "--size") == 0 && v) {
            if (number(v, &o->size))
                return fprintf(stderr, "sluice kb chunk: --size needs a number\n"), -1;
        } else if (strcmp(a, "--overlap") == 0 && v) {
            if (number(v, &o->overlap))
                return fprintf(stderr, "sluice kb chunk: --overlap needs a number\n"), -1;
        } else if (strcmp(a, "--repeat") == 0 && v) {
            if (number(v, &o->repeat) || o->repeat < 1)
                return fprintf(stderr, "sluice kb chunk: --repeat needs a number from 1\n"), -1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sluice kb chunk: unknown option or missing value: %s\n", a);
            return -1;
        } else if (!o->file) {
            o->file = a;
            takes = 0;
        } else {
            fprintf(stderr, "sluice kb chunk: one FILE only (got %s)\n", a);
            return -1;
        }
        i += takes;
    }
    if (!o->file)
        return fprintf(stderr, "sluice kb chunk: FILE is missing\n"), -1;
    if (o->unit && strcmp(o->unit, "tokens") && strcmp(o->unit, "chars"))
        return fprintf(stderr, "sluice kb chunk: --unit is tokens or chars\n"), -1;
    if (strcmp(o->format, "text") && strcmp(o->format, "json") && strcmp(o->format, "stats") &&
        strcmp(o->format, "extracted"))
        return fprintf(stderr, "sluice kb chunk: --format is text, json, extracted or stats\n"), -1;
    return 0;
}

static void print_text(const char *file, const struct sl_chunk_profile *p,
                       const struct sl_chunk *c, size_t n)
{
    const char *unit = p->unit == SL_CHUNK_CHARS ? "chars" : "tokens";
    printf("%s: %zu chunks, profile %s, size %d %s, overlap %d\n", file, n, p->name, p->size,
           unit, p->overlap);
    for (size_t i = 0; i < n; i++) {
        printf("\n--- chunk %zu [%zu, %zu) %d %s%s%s\n", i + 1, c[i].start, c[i].end, c[i].size,
               unit, c[i].heading[0] ? " | " : "", c[i].heading);
        fwrite(c[i].text, 1, c[i].len, stdout);
        putchar('\n');
    }
}

static int print_json(const char *file, const struct sl_chunk_profile *p,
                      const struct sl_chunk *c, size_t n)
{
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "file", file);
    cJSON_AddStringToObject(root, "profile", p->name);
    cJSON_AddStringToObject(root, "unit", p->unit == SL_CHUNK_CHARS ? "chars" : "tokens");
    cJSON_AddNumberToObject(root, "size", p->size);
    cJSON_AddNumberToObject(root, "overlap", p->overlap);
    cJSON_AddItemToObject(root, "chunks", arr);
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "start", (double)c[i].start);
        cJSON_AddNumberToObject(o, "end", (double)c[i].end);
        cJSON_AddNumberToObject(o, "size", c[i].size);
        cJSON_AddStringToObject(o, "heading", c[i].heading);
        char *t = malloc(c[i].len + 1); /* a chunk's text is not NUL-terminated */
        if (t) {
            memcpy(t, c[i].text, c[i].len);
            t[c[i].len] = '\0';
        }
        cJSON_AddItemToArray(arr, o);
        if (!t || !cJSON_AddStringToObject(o, "text", t)) {
            free(t);
            cJSON_Delete(root);
            return -1;
        }
        free(t);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s)
        return -1;
    puts(s);
    cJSON_free(s);
    return 0;
}

/* Registers the chunking: profiles of a config file. */
static int load_profiles(const char *path)
{
    struct sl_buf errors = SL_BUF_INIT(1 << 16);
    struct sl_config *cfg = NULL;
    char err[256];
    int result = 0;
    if (sl_config_load(path, &cfg, &errors)) {
        fprintf(stderr, "%s", errors.ptr ? errors.ptr : "sluice kb chunk: cannot load config\n");
        result = -1;
    } else if (sl_config_register_chunking(cfg, err, sizeof(err))) {
        fprintf(stderr, "sluice kb chunk: %s\n", err);
        result = -1;
    }
    sl_config_free(cfg);
    sl_buf_release(&errors);
    return result;
}

int cmd_kb_chunk(int argc, char **argv)
{
    struct options o;
    if (sl_cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    if (parse(argc, argv, &o)) {
        fputs(help, stderr);
        return 2;
    }
    if (o.config && load_profiles(o.config))
        return 1;
    if (strcmp(o.type, "auto") != 0 && !sl_chunk_profile(o.type)) {
        fprintf(stderr, "sluice kb chunk: unknown --type %s\n", o.type);
        return 2;
    }
    struct sl_buf text = SL_BUF_INIT(SL_MAX_DOC_TEXT);
    char err[512];
    if (sl_extract_file(o.file, &text, err, sizeof(err))) {
        fprintf(stderr, "sluice kb chunk: %s\n", err);
        sl_buf_release(&text);
        return 1;
    }
    if (strcmp(o.format, "extracted") == 0) {
        if (text.len)
            fwrite(text.ptr, 1, text.len, stdout);
        sl_buf_release(&text);
        return 0;
    }
    const char *name = strcmp(o.type, "auto") == 0 ? sl_chunk_detect(text.ptr ? text.ptr : "",
                                                                      text.len)
                                                    : o.type;
    struct sl_chunk_profile p = *sl_chunk_profile(name);
    if (o.unit)
        p.unit = strcmp(o.unit, "chars") == 0 ? SL_CHUNK_CHARS : SL_CHUNK_TOKENS;
    if (o.size >= 0)
        p.size = (int)o.size;
    if (o.overlap >= 0)
        p.overlap = (int)o.overlap;
    else if (o.size >= 0 && p.overlap >= p.size)
        p.overlap = p.size / 10;
    int status = 0;
    if (sl_chunk_profile_check(&p, err, sizeof(err))) {
        fprintf(stderr, "sluice kb chunk: %s\n", err);
        sl_buf_release(&text);
        return 2;
    }
    struct sl_arena *a = NULL;
    struct sl_chunk *c = NULL;
    size_t n = 0;
    int64_t t0 = sl_now_us(), failed = 0;
    clock_t cpu0 = clock();
    for (long r = 0; r < o.repeat && !failed; r++) {
        sl_arena_free(a);
        a = sl_arena_new();
        failed = !a || sl_chunk_text(&p, text.ptr ? text.ptr : "", text.len, a, &c, &n);
    }
    double ms = (double)(sl_now_us() - t0) / 1000.0 / (double)o.repeat;
    double cpu_ms = (double)(clock() - cpu0) * 1000.0 / CLOCKS_PER_SEC / (double)o.repeat;
    if (failed) {
        fprintf(stderr, "sluice kb chunk: out of memory\n");
        status = 1;
    } else if (strcmp(o.format, "stats") == 0) {
        printf("{\"profile\":\"%s\",\"bytes\":%zu,\"chunks\":%zu,\"ms\":%.3f,\"cpu_ms\":%.3f}\n",
               p.name, text.len, n, ms, cpu_ms);
    } else if (strcmp(o.format, "json") == 0) {
        status = print_json(o.file, &p, c, n) ? 1 : 0;
    } else {
        print_text(o.file, &p, c, n);
    }
    sl_arena_free(a);
    sl_buf_release(&text);
    return status;
}
