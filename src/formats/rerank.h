/* Rerank wire shapes: the client's {model, query, documents, top_n, return_documents}
 * (Jina / SiliconFlow / Cohere clients all send it), the upstream requests for the
 * Jina-style, Cohere v2 and DashScope-native rerank APIs, their replies read into
 * (index, score) hits, and the one client reply built from the merged hits. */
#ifndef SL_FORMAT_RERANK_H
#define SL_FORMAT_RERANK_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/arena.h"
#include "core/buf.h"
#include "formats/format.h"

#define SL_RERANK_MAX_DOCS     10000 /* documents in one client request */
#define SL_RERANK_MAX_INFLIGHT 4     /* upstream requests of one client request at once */
#define SL_RERANK_MAX_REPLY    (64u * 1024 * 1024) /* the client reply, as text */
#define SL_RERANK_DASHSCOPE_PATH "/api/v1/services/rerank/text-rerank/text-rerank"

/* A client request, validated. Strings point into the caller's cJSON tree; docs is
 * in the arena given to sl_rerank_request_read. */
struct sl_rerank_req {
    const cJSON *root;    /* the whole request: its other fields go to flat-shape providers */
    const char *query;
    const char **docs;
    int ndocs;
    int top_n;            /* results wanted, 1..ndocs (ndocs when not given) */
    int top_n_given;
    int return_documents; /* -1: not given; 0 or 1 */
};

/* Reads and checks a rerank request (root: the parsed body, an object). Returns 0, or
 * -1 with e filled (400, param set) for a missing or empty query, a missing, empty,
 * oversized (SL_RERANK_MAX_DOCS) or mistyped documents list (items must be non-empty
 * strings or {"text": non-empty string}), a bad top_n or return_documents; 503 when
 * out of memory. */
int sl_rerank_request_read(const cJSON *root, struct sl_arena *a, struct sl_rerank_req *r,
                           struct sl_error *e);

/* The shape provider p's rerank uses: its rerank: key, else by preset (cohere ->
 * Cohere, dashscope -> DashScope native), else Jina-style for an OpenAI-kind provider;
 * AUTO when it has none (Anthropic, Gemini). */
enum sl_rerank_wire sl_rerank_wire_of(const struct sl_provider_cfg *p);

/* Documents one upstream request may carry for model m: its max_batch, else the
 * shape's published limit (DashScope 500, Cohere 1000, Jina-style 1024). */
int sl_rerank_batch_limit(enum sl_rerank_wire w, const struct sl_model_cfg *m);

/* Tokens one upstream request may carry, counting the query once per document as the
 * provider does: DashScope's 30,000, of which sluice fills 80% by its own estimate (an
 * estimate, so a margin); 0 = no limit (the other shapes). */
int64_t sl_rerank_token_limit(enum sl_rerank_wire w);

/* Splits r's documents into parts of consecutive documents, each at most max_docs long
 * and, when max_tokens > 0, at most max_tokens by sl_estimate_text (query + document per
 * document; a document over the limit alone goes alone: the provider truncates it).
 * Writes the first document of each part to starts[0..n) and starts[n] = r->ndocs (starts
 * has room for r->ndocs + 1); returns n. */
int sl_rerank_plan(const struct sl_rerank_req *r, int max_docs, int64_t max_tokens, int *starts);

/* The upstream URL of model m in shape w: rerank_url when set; else base_url +
 * "/rerank" (Jina-style), base_url + "/v2/rerank" (Cohere, base_url without /v1 or
 * /v2), or the DashScope native path on base_url's scheme and host. In the arena. */
const char *sl_rerank_url(enum sl_rerank_wire w, const struct sl_model_cfg *m, struct sl_arena *a);

/* Builds the upstream request for documents [off, off+cnt) of r to model m in shape w:
 * URL, headers (with the key) and body, in the arena. top_n is sent as
 * min(r->top_n, cnt): the overall top n is always within the parts' own top n.
 * The Jina-style and Cohere bodies also carry every other top-level field of the
 * client's request as it was (vendor options such as max_chunks_per_doc, instruction,
 * max_tokens_per_doc). Returns 0, or -1 when out of memory. */
int sl_rerank_encode(enum sl_rerank_wire w, const struct sl_rerank_req *r,
                     const struct sl_model_cfg *m, int off, int cnt, struct sl_arena *a,
                     struct sl_encoded *out);

struct sl_rerank_hit {
    int index;    /* into the client's documents */
    double score;
};

/* What a part's reply said besides its hits. */
struct sl_rerank_parsed {
    int nhits;
    int64_t tokens;
    int usage_present;
    int64_t search_units; /* Cohere's meta.billed_units.search_units; 0 when absent */
};

/* Parses a 2xx reply of shape w to a part of documents [off, off+cnt): at most cnt
 * hits, each index within the part, none twice, are written to hits with off added.
 * Returns 0, or -1 with e filled (502) when the reply is not what the shape says. */
int sl_rerank_parse_reply(enum sl_rerank_wire w, const char *body, size_t len, int off, int cnt,
                          struct sl_rerank_hit *hits, struct sl_rerank_parsed *out,
                          struct sl_error *e);

/* A non-2xx reply -> e: the status, the provider's message and code (OpenAI's
 * {"error":{...}}, DashScope's and SiliconFlow's {code, message}, Cohere's {message},
 * Jina's {"detail"}). e->message is "" when the body says nothing usable. */
void sl_rerank_parse_error(int status, const char *body, size_t len, struct sl_error *e);

/* Sorts hits by score, highest first; equal scores by index. */
void sl_rerank_sort(struct sl_rerank_hit *hits, int n);

/* Appends the client's reply: {id, model, results: the first r->top_n hits (with
 * document.text when return_documents is 1), usage {prompt_tokens, total_tokens},
 * meta {api_version, billed_units {search_units}}}. Returns 0, or -1 when out of
 * memory or over out->max. */
int sl_rerank_reply(const struct sl_rerank_req *r, const struct sl_rerank_hit *hits, int n,
                    const char *id, const char *model, int64_t tokens, int64_t search_units,
                    struct sl_buf *out);

#endif
