/* The gateway server: listener, worker threads, signals (SIGHUP reload, SIGTERM drain). */
#ifndef SL_SERVER_H
#define SL_SERVER_H

struct sl_serve_opts {
    const char *config_path; /* NULL = defaults (built-in simulated provider) */
    const char *listen;      /* overrides server.listen when not NULL */
};

/* Runs until SIGTERM or SIGINT, then drains in-flight requests and flushes the
 * ledger. Returns the process exit status. */
int sl_server_run(const struct sl_serve_opts *opts);

#endif
