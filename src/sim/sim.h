/* The simulated provider: a real HTTP server speaking the providers' wire formats
 * with deterministic replies, exact usage, and failure injection. Used by
 * `sluice sim`, by `sluice serve` when no provider key is set, by tests and benchmarks. */
#ifndef SL_SIM_H
#define SL_SIM_H

struct sl_sim_opts {
    const char *host;     /* default "127.0.0.1" */
    int port;             /* 0 = ephemeral */
    int threads;          /* default 1 */
    int ttft_ms;          /* delay before the first byte of a reply */
    int chunk_delay_ms;   /* delay between two stream chunks */
    int latency_ms;       /* non-stream: delay before the reply */
    int words_per_chunk;  /* default 1 */
    int quiet;            /* no per-request log lines */
};

struct sl_sim;

/* Binds and starts serving on background threads. Returns 0 and *out, or -1
 * (with a log line) when the address cannot be bound. */
int sl_sim_start(const struct sl_sim_opts *opts, struct sl_sim **out);

/* The bound port (useful with port 0). */
int sl_sim_port(const struct sl_sim *sim);

/* Stops the threads and frees everything. NULL is allowed. */
void sl_sim_stop(struct sl_sim *sim);

/* The model names the simulator advertises, NULL-terminated. */
extern const char *const sl_sim_models[];

#endif
