/* sluice kb add NAME FILES...: adds documents (folders are walked), each sent whole to
 * POST /v1/kb/NAME/documents; unchanged ones are skipped by the server. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cli/cmd_kb.h"
#include "cli/commands.h"
#include "cli/kb_remote.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/limits.h"
#include "kb/extract.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: sluice kb add NAME FILE|FOLDER... [--type contract|techdoc|default|auto|PROFILE]\n"
            "                     [--url URL | --config FILE]\n\n"
            "Adds .txt .md .html .pdf .docx documents (folders are walked) to a knowledge base.\n"
            "A document is named by its path as given; adding an unchanged one again does\n"
            "nothing, a changed one replaces its chunks. Chunks are embedded in batches and\n"
            "cached by content hash. A progress bar is drawn when stderr is a terminal.\n\n%s",
            kb_cli_common_help);
}

struct files {
    char **paths;
    size_t n, cap;
};

static int push(struct files *f, const char *path)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        char **grown = realloc(f->paths, cap * sizeof(char *));
        if (!grown)
            return -1;
        f->paths = grown;
        f->cap = cap;
    }
    return (f->paths[f->n++] = strdup(path)) ? 0 : -1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* path, or every document under it (sorted, for a stable order). */
static int collect(struct files *f, const char *path, int top)
{
    struct stat st;
    if (stat(path, &st)) {
        fprintf(stderr, "sluice kb add: %s: no such file or folder\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (top || sl_doc_kind_of(path) >= 0)
            return push(f, path);
        return 0;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    size_t first = f->n;
    int rc = d ? 0 : -1;
    while (d && (e = readdir(d)) && !rc) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", e->d_name);
        rc = collect(f, sub, 0);
    }
    if (d)
        closedir(d);
    qsort(f->paths + first, f->n - first, sizeof(char *), by_name);
    return rc;
}

struct add {
    const char *kb, *type;
    struct files files;
    int tty;
};

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    struct sl_buf b = SL_BUF_INIT(SL_MAX_DOC_FILE);
    char chunk[65536];
    size_t n;
    while (fp && (n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        if (sl_buf_append(&b, chunk, n)) {
            fclose(fp);
            sl_buf_release(&b);
            return NULL;
        }
    if (fp)
        fclose(fp);
    *len = b.len;
    return fp ? (b.ptr ? b.ptr : calloc(1, 1)) : NULL;
}

static char *doc_body(const char *path, const char *type)
{
    size_t len = 0;
    char *data = read_file(path, &len);
    if (!data)
        return NULL;
    char *b64 = malloc(len / 3 * 4 + 8);
    if (b64)
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)data, (int)len);
    free(data);
    cJSON *o = b64 ? cJSON_CreateObject() : NULL;
    cJSON_AddStringToObject(o, "name", path);
    cJSON_AddStringToObject(o, "content", b64);
    if (type)
        cJSON_AddStringToObject(o, "type", type);
    free(b64);
    char *printed = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return printed;
}

static void progress(const struct add *a, size_t done, const char *name)
{
    int width = 30, fill = a->files.n ? (int)(done * (size_t)width / a->files.n) : width;
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu %-40.40s", fill, "==============================",
            width - fill, "", done, a->files.n, name);
    fflush(stderr);
}

static int add_all(struct sl_kb_client *c, void *arg)
{
    struct add *a = arg;
    char path[SL_MAX_NAME + 32];
    size_t counts[3] = {0}, chunks = 0, embedded = 0, cached = 0;
    int failed = 0;
    int64_t t0 = sl_now_us();
    snprintf(path, sizeof(path), "/v1/kb/%s/documents", a->kb);
    for (size_t i = 0; i < a->files.n; i++) {
        const char *f = a->files.paths[i];
        if (a->tty)
            progress(a, i, f);
        char *body = doc_body(f, a->type);
        cJSON *reply = body ? kb_cli_call(c, "add", "POST", path, body) : NULL;
        if (!body)
            fprintf(stderr, "sluice kb add: cannot read %s\n", f);
        free(body);
        if (!reply) {
            failed++;
            continue;
        }
        const char *status = sl_json_str(reply, "status", "");
        int what = strcmp(status, "added") == 0 ? 0 : strcmp(status, "replaced") == 0 ? 1 : 2;
        counts[what]++;
        chunks += (size_t)sl_json_int(reply, "chunks", 0);
        embedded += (size_t)sl_json_int(reply, "embedded", 0);
        cached += (size_t)sl_json_int(reply, "cached", 0);
        if (!a->tty)
            printf("%s %s: %lld chunks (%lld embedded, %lld cached)\n", status, f,
                   (long long)sl_json_int(reply, "chunks", 0), (long long)sl_json_int(reply, "embedded", 0),
                   (long long)sl_json_int(reply, "cached", 0));
        cJSON_Delete(reply);
    }
    if (a->tty) {
        progress(a, a->files.n, "");
        fprintf(stderr, "\n");
    }
    printf("%zu added, %zu replaced, %zu unchanged, %d failed: %zu chunks, %zu embedded, %zu from "
           "the cache, %.1f s\n",
           counts[0], counts[1], counts[2], failed, chunks, embedded, cached,
           (double)(sl_now_us() - t0) / 1e6);
    return failed ? 1 : 0;
}

int cmd_kb_add(int argc, char **argv)
{
    struct kb_cli_opts o = {.write = 1};
    struct add a = {0};
    int rc = 0;
    if (sl_cli_wants_help(argc, argv)) {
        help(stdout);
        return 0;
    }
    for (int i = 1; i < argc && !rc; i++) {
        if (kb_cli_common_opt(argc, argv, &i, &o))
            continue;
        if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
            a.type = argv[++i];
        else if (argv[i][0] == '-')
            rc = 2;
        else if (!a.kb)
            a.kb = argv[i];
        else if (collect(&a.files, argv[i], 1))
            rc = 1;
    }
    if (!rc && (!a.kb || !a.files.n))
        rc = 2;
    if (rc == 2)
        help(stderr);
    a.tty = isatty(2);
    if (!rc)
        rc = kb_cli_run(&o, add_all, &a);
    for (size_t i = 0; i < a.files.n; i++)
        free(a.files.paths[i]);
    free(a.files.paths);
    return rc;
}
