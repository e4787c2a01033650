/* The kb commands' connection to sluice: remote, or an in-process server. */
#include "cli/kb_remote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "core/json.h"
#include "server/server.h"

const char kb_cli_common_help[] =
    "  --url URL      a running sluice (default $SLUICE_URL); its key from $SLUICE_API_KEY,\n"
    "                 and $SLUICE_MASTER_KEY for commands that change a knowledge base\n"
    "  --config FILE  without --url: start sluice in this process from FILE for the\n"
    "                 command (default: the built-in defaults, store sqlite://./sluice.db)\n";

int kb_cli_common_opt(int argc, char **argv, int *i, struct kb_cli_opts *o)
{
    if (strcmp(argv[*i], "--url") == 0 && *i + 1 < argc) {
        o->url = argv[++*i];
        return 1;
    }
    if (strcmp(argv[*i], "--config") == 0 && *i + 1 < argc) {
        o->config = argv[++*i];
        return 1;
    }
    return 0;
}

struct ready {
    int (*fn)(struct sl_kb_client *c, void *arg);
    void *arg;
};

static int on_ready(void *arg, const char *url, const char *token)
{
    struct ready *r = arg;
    struct sl_kb_client c = {.base_url = url, .token = token};
    int rc = r->fn(&c, r->arg);
    sl_kbc_release(&c);
    return rc;
}

int kb_cli_run(struct kb_cli_opts *o, int (*fn)(struct sl_kb_client *c, void *arg), void *arg)
{
    const char *url = o->url ? o->url : getenv("SLUICE_URL");
    if (url && url[0]) {
        const char *key = o->write && getenv("SLUICE_MASTER_KEY") ? getenv("SLUICE_MASTER_KEY")
                                                                  : getenv("SLUICE_API_KEY");
        char base[2048];
        snprintf(base, sizeof(base), "%s", url);
        size_t n = strlen(base);
        while (n && base[n - 1] == '/')
            base[--n] = '\0';
        if (n >= 3 && strcmp(base + n - 3, "/v1") == 0)
            base[n - 3] = '\0'; /* the SDKs' base URL works too */
        curl_global_init(CURL_GLOBAL_DEFAULT);
        struct sl_kb_client c = {.base_url = base, .token = key && key[0] ? key : NULL};
        int rc = fn(&c, arg);
        sl_kbc_release(&c);
        curl_global_cleanup();
        return rc;
    }
    struct ready r = {fn, arg};
    struct sl_serve_opts so = {.config_path = o->config, .listen = "127.0.0.1:0",
                               .on_ready = on_ready, .ready_arg = &r, .quiet = 1};
    return sl_server_run(&so);
}

cJSON *kb_cli_call(struct sl_kb_client *c, const char *what, const char *method, const char *path,
                   const char *body)
{
    struct sl_buf out = SL_BUF_INIT(256u * 1024 * 1024);
    int rc = sl_kbc_request(c, method, path, NULL, body, body ? strlen(body) : 0, &out);
    cJSON *root = rc ? NULL : cJSON_Parse(out.ptr ? out.ptr : "");
    if (rc)
        fprintf(stderr, "sluice kb %s: %s\n", what, c->err);
    else if (!root)
        fprintf(stderr, "sluice kb %s: the reply is not JSON\n", what);
    sl_buf_release(&out);
    return root;
}
