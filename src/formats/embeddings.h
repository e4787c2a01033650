/* Embeddings wire shapes: OpenAI's /v1/embeddings (what clients speak), DashScope's
 * native text-embedding API and Gemini's batchEmbedContents. Requests are read and
 * built here, replies parsed into vectors, and the client's OpenAI reply encoded. */
#ifndef SL_FORMAT_EMBEDDINGS_H
#define SL_FORMAT_EMBEDDINGS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/arena.h"
#include "core/buf.h"
#include "formats/format.h"

#define SL_EMBED_MAX_INPUTS   2048   /* OpenAI's cap on inputs per request */
#define SL_EMBED_MAX_INFLIGHT 4      /* upstream requests of one client request at once */
#define SL_EMBED_MAX_VALUES   (2048u * 4096u) /* floats kept for one reply (64 MiB as doubles) */
#define SL_EMBED_MAX_REPLY    (256u * 1024 * 1024) /* the client reply, as text */
#define SL_EMBED_DASHSCOPE_URL \
    "https://dashscope.aliyuncs.com/api/v1/services/embeddings/text-embedding/text-embedding"

/* A client request, validated. Pointers into the caller's tree and body. */
struct sl_embed_req {
    const char *body;     /* the client's bytes, for the pass-through rewrite */
    size_t len;
    const cJSON *root;
    const cJSON *input;
    int ninputs;
    int single;           /* input is one item (a string or one token array), not a list */
    int tokens;           /* items are token arrays (only OpenAI-format providers take them) */
    int base64;           /* encoding_format: "base64" */
    int64_t dimensions;   /* 0 = the model's default */
};

/* Reads and checks an OpenAI embeddings request (root: the parsed body, an object).
 * Returns 0, or -1 with e filled (400, param set) for a missing, empty, mistyped or
 * oversized input, or a bad encoding_format, dimensions or user. */
int sl_embed_request_read(const cJSON *root, const char *body, size_t len, struct sl_embed_req *r,
                          struct sl_error *e);

/* The i-th input (a string, or an array of token ids). */
const cJSON *sl_embed_input(const struct sl_embed_req *r, int i);

/* The shape provider p's embeddings use: its embeddings: key, else by kind
 * (openai -> OpenAI, gemini -> Gemini); AUTO for a kind that has none (anthropic). */
enum sl_embed_wire sl_embed_wire_of(const struct sl_provider_cfg *p);

/* Inputs one upstream request may carry for model m: its max_batch, else the
 * provider's published limit for that model, else the shape's (OpenAI 2048,
 * DashScope 10, Gemini 100). */
int sl_embed_batch_limit(enum sl_embed_wire w, const struct sl_model_cfg *m);

/* The split of n inputs into requests of at most limit: how many, and part i's
 * first input and count (parts keep the inputs' order). */
int sl_embed_nparts(int n, int limit);
void sl_embed_part(int n, int limit, int i, int *offset, int *count);

/* Builds the upstream request for inputs [off, off+cnt) of r to model m in shape w:
 * URL, headers (with the key) and body, all in the arena. The OpenAI body is the
 * client's bytes with only `model` replaced when one request carries every input.
 * Returns 0, or -1 when out of memory. */
int sl_embed_encode(enum sl_embed_wire w, const struct sl_embed_req *r,
                    const struct sl_model_cfg *m, int off, int cnt, struct sl_arena *a,
                    struct sl_encoded *out);

/* One embedding vector. */
struct sl_embed_vec {
    double *v; /* in the arena */
    int dim;
};

/* A part's reply: vectors written to vecs[0..cnt), usage when reported. */
struct sl_embed_parsed {
    int64_t tokens;
    int usage_present;
    size_t values; /* floats stored, for the caller's SL_EMBED_MAX_VALUES budget */
};

/* Parses a 2xx reply of shape w that must hold exactly cnt vectors (in order of
 * their index) into vecs, allocating from a. max_values caps the floats stored.
 * Returns 0, or -1 with e filled (502) when the reply is not what the shape says. */
int sl_embed_parse_reply(enum sl_embed_wire w, const char *body, size_t len, int cnt,
                         size_t max_values, struct sl_arena *a, struct sl_embed_vec *vecs,
                         struct sl_embed_parsed *out, struct sl_error *e);

/* Reads the usage of an OpenAI reply without keeping its vectors (the pass-through
 * path). Returns 0, or -1 when the body is not a JSON object. */
int sl_embed_openai_usage(const char *body, size_t len, struct sl_embed_parsed *out);

/* A non-2xx reply of shape w -> e: status, the provider's message, type and code.
 * e->message is "" when the body says nothing usable. */
void sl_embed_parse_error(enum sl_embed_wire w, int status, const char *body, size_t len,
                          struct sl_error *e);

/* Appends the client's reply: {"object":"list","data":[...],"model","usage"}, the
 * vectors as float arrays or, with base64, as little-endian float32 in base64 (as
 * OpenAI sends them). Returns 0, or -1 when out of memory or over out->max. */
int sl_embed_reply(const struct sl_embed_vec *vecs, int n, const char *model, int64_t tokens,
                   int base64, struct sl_buf *out);

/* Appends the base64 of n floats as little-endian float32. Returns 0 or -1. */
int sl_embed_base64(const double *v, int n, struct sl_buf *out);

#endif
