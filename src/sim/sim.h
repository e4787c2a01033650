/* The simulated provider: a real HTTP server speaking the providers' wire formats
 * with deterministic replies, exact usage, and failure injection. Used by
 * `sluice sim`, by `sluice serve` when no provider key is set, by tests and benchmarks. */
#ifndef SL_SIM_H
#define SL_SIM_H

#include <stddef.h>

struct sl_sim_opts {
    const char *host;     /* default "127.0.0.1" */
    int port;             /* 0 = ephemeral */
    int threads;          /* default 1 */
    int ttft_ms;          /* delay before the first byte of a reply */
    int chunk_delay_ms;   /* delay between two stream chunks */
    int latency_ms;       /* non-stream: delay before the reply */
    int words_per_chunk;  /* default 1 */
    int quiet;            /* no per-request log lines */
    unsigned formats;     /* SL_SIM_FORMAT_* bits of the wire formats served; 0 = all */
};

/* The wire formats the simulator can serve (routes of the others answer 404). */
#define SL_SIM_FORMAT_OPENAI    1u /* chat completions, /v1/embeddings, DashScope embeddings */
#define SL_SIM_FORMAT_ANTHROPIC 2u /* /v1/messages */
#define SL_SIM_FORMAT_GEMINI    4u /* /v1beta/models/{model}:METHOD, chat and embeddings */
#define SL_SIM_FORMAT_ALL       7u

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

/* The simulator's deterministic embedding of text[0..len) in dims dimensions, written
 * to out[0..dims): word unigrams and the character trigrams of each word, hashed and
 * L2-normalised, plus a direction every text shares; the result has unit length.
 * Same text, same vector; a one-word change in a ten-word sentence keeps the cosine
 * similarity above 0.9, unrelated texts stay below 0.3. An endpoint serving model M with
 * `dimensions` d returns the first d values of sl_sim_embed(text, len, v, dims(M)),
 * normalised again (dims: 1024 when M contains "large", else 256). */
void sl_sim_embed(const char *text, size_t len, float *out, int dims);

/* The simulator's relevance of doc to query, in [0, 1]: with Q and D the sets of
 * distinct features of each text (lower-cased words of ASCII letters and digits or
 * other non-CJK letters; adjacent-character bigrams of CJK runs, a lone CJK character
 * as itself; "@sim:" tokens skipped), 0.9 * |Q & D| / |Q| + 0.1 * |Q & D| / |D|, and 0
 * when either set is empty. docs/sim.md has the exact rules. */
double sl_sim_rerank_score(const char *query, const char *doc);

#endif
