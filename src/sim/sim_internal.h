/* Types shared by the simulator's files: the wire-neutral request a wire format decodes
 * into, the answer computed from it, the stream cursor, the wire-format vtable and the
 * worker loop that chat requests are played back on. */
#ifndef SL_SIM_INTERNAL_H
#define SL_SIM_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct sl_arena;
struct sl_buf;

#define SIM_TEXT_CUT     200      /* bytes of user or tool text echoed in a reply */
#define SIM_MAX_WORDS    100000   /* @sim:words cap: about 1 MB of reply text */
#define SIM_MAX_MS       600000   /* cap on every injected delay */
#define SIM_ARG_FRAGMENT 8        /* bytes of tool arguments per streamed chunk */
#define SIM_SCHEMA_DEPTH 16       /* nesting a schema is followed to */

/* One message reduced to what the simulator looks at. */
struct sim_msg {
    const char *role; /* "system", "user", "assistant", "tool", ... */
    const char *text; /* string content, or text parts joined with a space; "" if none */
};

struct sim_tool {
    const char *name;
    const cJSON *schema; /* JSON schema of the arguments; NULL when absent */
};

enum sim_format { SIM_FORMAT_TEXT, SIM_FORMAT_JSON_OBJECT, SIM_FORMAT_JSON_SCHEMA };

/* A chat request in no particular wire format. Strings point into the parsed body. */
struct sim_request {
    const char *model;
    const struct sim_msg *msgs;
    int n_msgs;
    const struct sim_tool *tools;
    int n_tools;
    const char *forced_tool; /* a tool the client named; NULL otherwise */
    int tools_off;           /* the client said not to call tools */
    enum sim_format format;
    const cJSON *format_schema;
    int stream;
    int include_usage;    /* usage is reported in a stream (always, in some formats) */
    int max_tokens;       /* completion words allowed; 0: no limit */
    int reasoning_hidden; /* reasoning is counted but not sent (Gemini without includeThoughts) */
};

/* The @sim: directives of the last user message; -1 means "not given". */
struct sim_directives {
    int status, retry_after, fail_times;
    int reset, reset_after;
    int stall_ms, stall_after, stall_after_ms;
    int malformed_after, error_after;
    int keepalive, no_usage, parallel_tools;
    int ttft_ms, delay_ms, words;
    int stamp; /* flag: stream reply chunks carry their send time instead of text */
};

struct sim_tool_call {
    const char *name;
    const char *arguments; /* JSON text */
};

/* What the simulated model says, before any wire format encodes it. */
struct sim_answer {
    const char *reasoning; /* NULL unless the model is a reasoner */
    const char *content;   /* NULL when the answer is tool calls */
    const struct sim_tool_call *calls;
    int n_calls;
    int tool_forced; /* the calls answer a tool_choice that named the tool */
    int truncated;   /* max_tokens cut the reasoning or the reply text */
    int prompt_tokens, completion_tokens, reasoning_tokens;
};

/* One request in flight: everything an encoder needs. */
struct sim_exchange {
    const struct sim_request *rq;
    const struct sim_answer *ans;
    const struct sim_directives *dir;
    const char *id;         /* the wire's id prefix and the request number */
    const char *request_id; /* "req_sim_<n>" */
    int64_t created;        /* Unix seconds */
    int usage;       /* usage is reported in a stream (asked for, not @sim:no_usage) */
};

/* ---- sim_answer.c ---- */

/* The last message whose role is "user"; NULL when there is none. */
const struct sim_msg *sl_sim_last_user(const struct sim_request *rq);

/* Reads the @sim: tokens of text into *d (unknown names and bad values are ignored). */
void sl_sim_directives_parse(const char *text, struct sim_directives *d);

/* Computes the answer to rq under d. Strings live in a. Returns 0, or -1 when out of memory. */
int sl_sim_answer(const struct sim_request *rq, const struct sim_directives *d,
                  struct sl_arena *a, struct sim_answer *out);

/* Counts whitespace-separated words. */
int sl_sim_words(const char *s, size_t n);

/* Length of s cut to at most max bytes, not splitting a UTF-8 sequence. */
size_t sl_sim_utf8_cut(const char *s, size_t n, size_t max);

/* ---- sim_fail.c: the fail_times counters, shared by all worker threads ---- */

struct sim_failmap;
struct sim_failmap *sl_sim_failmap_new(void);
void sl_sim_failmap_free(struct sim_failmap *m);

/* True when the request's injected failure (status or reset) applies now: always
 * without fail_times, else for the first fail_times requests with this last user text. */
int sl_sim_failure_due(struct sim_failmap *m, const struct sim_directives *d, const char *key);

/* ---- sim_stream.c: which piece of a streamed answer goes out next, and when ---- */

enum sim_piece_kind {
    SIM_PIECE_KEEPALIVE,  /* a comment that keeps the connection warm */
    SIM_PIECE_START,      /* the assistant turn begins */
    SIM_PIECE_REASONING,  /* text: a run of reasoning words */
    SIM_PIECE_TEXT,       /* text: a run of reply words */
    SIM_PIECE_TOOL_START, /* call: a tool call's id and name */
    SIM_PIECE_TOOL_ARGS,  /* call, text: a fragment of its arguments */
    SIM_PIECE_FINISH,     /* the turn ends (finish reason) */
    SIM_PIECE_USAGE,      /* the usage report */
    SIM_PIECE_DONE,       /* the stream terminator */
    SIM_PIECE_MALFORMED,  /* injected: an event that is not JSON */
    SIM_PIECE_ERROR,      /* injected: an error event; DONE follows */
    SIM_PIECE_CLOSE,      /* injected: drop the connection here */
};

struct sim_piece {
    enum sim_piece_kind kind;
    const char *text;
    size_t len;
    int call;     /* index of the tool call */
    int delay_ms; /* wait before sending this piece */
    /* Content blocks are the reasoning, the reply text and each tool call, numbered
     * from 0 in that order (a format like Anthropic's frames them). */
    int block;
    int opens, closes; /* the piece is the first / the last of its block */
    int reasoning_words, text_words; /* sent so far, this piece included */
    int failed; /* SIM_PIECE_DONE: an injected error event came before */
};

struct sim_cursor {
    const struct sim_exchange *x;
    int ttft_ms, delay_ms, words_per_chunk;
    int phase, call, keepalives, content_sent, first, malformed_done, stall_done, extra_ms;
    int block, reasoning_words, text_words, failed;
    size_t pos, len; /* within the text being streamed */
};

/* Prepares to walk x's stream; ttft_ms is the delay of the first piece. */
void sl_sim_cursor_init(struct sim_cursor *c, const struct sim_exchange *x, int ttft_ms,
                        int delay_ms, int words_per_chunk);

/* Sets *p to the next piece. Returns 1, or 0 when the stream is over. */
int sl_sim_cursor_next(struct sim_cursor *c, struct sim_piece *p);

/* ---- one file per wire format (sim_openai.c, sim_anthropic.c, sim_gemini.c) ---- */

/* An error reply, before a wire format encodes it. */
struct sim_error {
    int status;
    const char *message;
    const char *param;      /* the offending parameter, or NULL */
    const char *request_id; /* or NULL */
    int retry_after;        /* seconds; -1 when not given */
};

/* To add a wire format: a struct like this in sim_<format>.c, its rows in sim.c's routes[]
 * (with a SL_SIM_FORMAT_* bit), a test in tests/unit/test_sim.c and a section in docs/sim.md. */
struct sim_wire {
    const char *id_prefix;         /* reply ids are this and the request number */
    const char *request_id_header; /* the header that carries "req_sim_<n>", or NULL */
    int retry_after_header;        /* errors send Retry-After (else only the body says it) */
    /* Fills *rq from body; arg is the rest of the path after the route's prefix ("" for
     * an exact route). Strings stay in body or a. Returns 0, or -1 with a message for
     * the client in *err and the offending parameter (or NULL) in *param. */
    int (*decode)(const cJSON *body, const char *arg, struct sl_arena *a, struct sim_request *rq,
                  const char **err, const char **param);
    /* Appends the complete non-streamed reply body. Returns 0 or -1. */
    int (*reply)(const struct sim_exchange *x, struct sl_buf *out);
    /* Appends the bytes of one stream piece (possibly none). Returns 0 or -1. */
    int (*piece)(const struct sim_exchange *x, const struct sim_piece *p, struct sl_buf *out);
    /* Appends the error body (the format picks the error type by status). Returns 0 or -1. */
    int (*error)(const struct sim_error *e, struct sl_buf *out);
};

extern const struct sim_wire sl_sim_openai;
extern const struct sim_wire sl_sim_anthropic;
extern const struct sim_wire sl_sim_gemini;
extern const struct sim_wire sl_sim_dashscope; /* embeddings only: error bodies */

/* Appends v printed compactly (pretty when pretty is set) and deletes it. Returns 0 or -1. */
int sl_sim_append_json(cJSON *v, int pretty, struct sl_buf *out);

/* ---- sim_play.c: answering chat requests on a worker's loop ---- */

struct event_base;
struct evhttp_request;
struct sl_sim_opts;
struct sim_play;

/* What a worker thread lends to the requests it serves. */
struct sim_loop {
    struct event_base *base;
    const struct sl_sim_opts *opts;
    struct sim_failmap *fails;
    atomic_ullong *requests; /* numbers the reply ids, across all workers */
    struct sim_play *plays;  /* requests still in flight */
};

/* Answers a chat request in wire's format, now or on later loop iterations; arg is
 * what the route left of the path (see sim_wire.decode). */
void sl_sim_chat(struct sim_loop *l, struct evhttp_request *req, const struct sim_wire *wire,
                 const char *arg);

/* Frees the requests still in flight; only once l's loop has stopped. */
void sl_sim_plays_release(struct sim_loop *l);

/* Sends a JSON body (with Retry-After when retry_after >= 0). */
void sl_sim_send_body(struct evhttp_request *req, int status, const struct sl_buf *body,
                      int retry_after);

/* Sends wire's error body for e, with the request id and Retry-After headers the wire
 * sends. */
void sl_sim_send_error(struct evhttp_request *req, const struct sim_wire *wire,
                       const struct sim_error *e);

/* Numbers a new request (across all workers) and writes "req_sim_<n>" to id. Returns n. */
unsigned long long sl_sim_request_id(struct sim_loop *l, char id[32]);

/* Sends wire's error for status to a request that has no number yet. param may be NULL. */
void sl_sim_fail(struct sim_loop *l, struct evhttp_request *req, const struct sim_wire *wire,
                 int status, const char *message, const char *param);

/* Parses the request's JSON body; NULL when it is not JSON. The caller deletes it. */
cJSON *sl_sim_read_json(struct evhttp_request *req);

/* ---- sim_gemini.c, sim_embed.c: routes that dispatch further ---- */

/* POST /v1beta/models/{arg}: generateContent, streamGenerateContent, embedContent or
 * batchEmbedContents by the method after the model's colon. */
void sl_sim_gemini_route(struct sim_loop *l, struct evhttp_request *req, const char *arg);

/* The embeddings endpoints: OpenAI's, DashScope's native one, Gemini's (batch or one). */
void sl_sim_embed_openai(struct sim_loop *l, struct evhttp_request *req);
void sl_sim_embed_dashscope(struct sim_loop *l, struct evhttp_request *req);
void sl_sim_embed_gemini(struct sim_loop *l, struct evhttp_request *req, const char *model,
                         int batch);

/* The rerank endpoints (sim_rerank.c): Jina-style /v1/rerank, Cohere /v2/rerank and
 * DashScope's native text-rerank path. */
void sl_sim_rerank_jina(struct sim_loop *l, struct evhttp_request *req);
void sl_sim_rerank_cohere(struct sim_loop *l, struct evhttp_request *req);
void sl_sim_rerank_dashscope(struct sim_loop *l, struct evhttp_request *req);

/* Appends the OpenAI model list (GET /v1/models) or one model (id non-NULL). */
int sl_sim_openai_models(const char *id, struct sl_buf *out);

#endif
