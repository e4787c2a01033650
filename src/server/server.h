/* The gateway server: listener, worker threads, signals (SIGHUP reload, SIGTERM drain). */
#ifndef SL_SERVER_H
#define SL_SERVER_H

struct sl_serve_opts {
    const char *config_path; /* NULL = defaults (built-in simulated provider) */
    const char *listen;      /* overrides server.listen when not NULL */
    /* In-process use (the kb commands): when set, called on the main thread once the
     * workers listen, with the server's loopback URL and internal credential; the server
     * then drains and stops, and sl_server_run returns what it returned. */
    int (*on_ready)(void *arg, const char *url, const char *token);
    void *ready_arg;
    int quiet;               /* log warnings and errors only */
};

/* Runs until SIGTERM or SIGINT, then drains in-flight requests and flushes the
 * ledger. Returns the process exit status. */
int sl_server_run(const struct sl_serve_opts *opts);

#endif
