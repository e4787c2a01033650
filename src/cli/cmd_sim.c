/* sluice sim: run the simulated provider in the foreground until SIGINT or SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/log.h"
#include "sim/sim.h"

#define MAX_HOST 256

static const char usage_text[] =
    "usage: sluice sim [--listen HOST:PORT] [--ttft-ms N] [--chunk-delay-ms N]\n"
    "                  [--latency-ms N] [--words-per-chunk N] [--threads N] [--quiet]\n"
    "                  [--format openai|anthropic|gemini|all]\n"
    "\n"
    "Runs a simulated provider speaking the OpenAI, Anthropic and Gemini wire formats,\n"
    "with deterministic replies and embeddings, exact usage and failure injection by\n"
    "@sim: directives (see docs/sim.md).\n"
    "\n"
    "  --listen HOST:PORT     address to listen on (default 127.0.0.1:8090; port 0 = any)\n"
    "  --format F             wire formats served, comma-separated (default all); the\n"
    "                         others' paths answer 404\n"
    "  --ttft-ms N            delay before the first byte of a stream\n"
    "  --chunk-delay-ms N     delay between two stream chunks\n"
    "  --latency-ms N         delay before a non-streamed reply\n"
    "  --words-per-chunk N    words in one streamed content chunk (default 1)\n"
    "  --threads N            worker threads (default 1)\n"
    "  --quiet                no log line per request\n";

/* To add a numeric option: a row here and a line in usage_text and docs/sim.md. */
static const struct int_option {
    const char *name;
    size_t field;
} int_options[] = {
    {"--ttft-ms", offsetof(struct sl_sim_opts, ttft_ms)},
    {"--chunk-delay-ms", offsetof(struct sl_sim_opts, chunk_delay_ms)},
    {"--latency-ms", offsetof(struct sl_sim_opts, latency_ms)},
    {"--words-per-chunk", offsetof(struct sl_sim_opts, words_per_chunk)},
    {"--threads", offsetof(struct sl_sim_opts, threads)},
};

static int parse_int(const char *s, int max, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* HOST:PORT, [V6HOST]:PORT or :PORT; host is at most MAX_HOST-1 bytes. */
static int parse_listen(const char *s, char *host, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || parse_int(colon + 1, 65535, port))
        return -1;
    const char *h = s;
    size_t n = (size_t)(colon - s);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n == 0) {
        h = "127.0.0.1";
        n = strlen(h);
    }
    if (n >= MAX_HOST)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    return 0;
}

/* To add a wire format: a row here, its bit in sim.h, and the usage text above. */
static const struct format_name {
    const char *name;
    unsigned bit;
} format_names[] = {
    {"openai", SL_SIM_FORMAT_OPENAI},
    {"anthropic", SL_SIM_FORMAT_ANTHROPIC},
    {"gemini", SL_SIM_FORMAT_GEMINI},
    {"all", SL_SIM_FORMAT_ALL},
};

static unsigned format_bit(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++)
        if (strlen(format_names[i].name) == n && memcmp(format_names[i].name, s, n) == 0)
            return format_names[i].bit;
    return 0;
}

/* "openai,gemini" into SL_SIM_FORMAT_* bits. Returns 0, or -1 for an unknown name. */
static int parse_formats(const char *s, unsigned *out)
{
    *out = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        unsigned bit = format_bit(s, n);
        if (!bit)
            return -1;
        *out |= bit;
        s += n + (s[n] == ',');
    }
    return *out ? 0 : -1;
}

static int parse_int_option(const char *name, const char *value, struct sl_sim_opts *o)
{
    for (size_t i = 0; i < sizeof(int_options) / sizeof(int_options[0]); i++) {
        if (strcmp(name, int_options[i].name) != 0)
            continue;
        if (!value || parse_int(value, 10000000, (int *)((char *)o + int_options[i].field)))
            return -1;
        return 1;
    }
    return 0;
}

/* Fills *o from argv. Returns 0, or -1 after printing what is wrong. */
static int parse_args(int argc, char **argv, struct sl_sim_opts *o, char *host)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--quiet") == 0) {
            o->quiet = 1;
            continue;
        }
        int found = strcmp(arg, "--listen") == 0
                        ? (value && parse_listen(value, host, &o->port) == 0 ? 1 : -1)
                    : strcmp(arg, "--format") == 0
                        ? (value && parse_formats(value, &o->formats) == 0 ? 1 : -1)
                        : parse_int_option(arg, value, o);
        if (found == 0) {
            fprintf(stderr, "sluice sim: unknown option '%s'\n\n%s", arg, usage_text);
            return -1;
        }
        if (found < 0) {
            fprintf(stderr, "sluice sim: %s needs a valid value\n\n%s", arg, usage_text);
            return -1;
        }
        i++; /* the value */
    }
    return 0;
}

int cmd_sim(int argc, char **argv)
{
    if (sl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    char host[MAX_HOST] = "127.0.0.1";
    struct sl_sim_opts o = {.host = host, .port = 8090, .threads = 1, .words_per_chunk = 1};
    if (parse_args(argc, argv, &o, host))
        return 2;

    /* Blocked before any thread starts, so only sigwait() below ever takes them. */
    sigset_t stop_signals, old;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old);

    struct sl_sim *sim;
    if (sl_sim_start(&o, &sim)) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return 1;
    }
    int v6 = strchr(host, ':') != NULL;
    sl_info("listening on http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
            sl_sim_port(sim));
    int sig = 0;
    sigwait(&stop_signals, &sig);
    sl_info("sim: %s received, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    sl_sim_stop(sim);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 0;
}
