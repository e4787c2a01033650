/* Adding a document to a knowledge base: extract, chunk by profile, embed what the
 * cache lacks (in batches, through sluice), and store it all in one transaction.
 * Re-adding an unchanged document does nothing; a changed one replaces its chunks. */
#ifndef SL_KB_INGEST_H
#define SL_KB_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "kb/client.h"
#include "kb/kb.h"

typedef struct sqlite3 sqlite3;

#define SL_KB_EMBED_BATCH 256 /* inputs per embeddings call; sluice splits further per provider */

enum sl_kb_added { SL_KB_ADDED, SL_KB_REPLACED, SL_KB_UNCHANGED };

struct sl_kb_ingest_result {
    enum sl_kb_added what;
    int64_t doc_id;
    char profile[32];
    size_t chunks;
    size_t embedded;   /* chunks sent to the embedding model */
    size_t cached;     /* chunks whose vector came from the cache */
};

/* Adds document name (kind: enum sl_doc_kind) from its bytes. type is a chunking
 * profile name or "auto" (NULL: the knowledge base's default). kb is updated (dim, rev).
 * Returns 0, or -1 with err filled (nothing stored then). */
int sl_kb_ingest(sqlite3 *db, struct sl_kb_client *c, struct sl_kb *kb, const char *name, int kind,
                 const char *data, size_t len, const char *type, struct sl_kb_ingest_result *r,
                 char *err, size_t errlen);

/* "added" | "replaced" | "unchanged". */
const char *sl_kb_added_name(enum sl_kb_added a);

/* SHA-256 of n bytes as 64 hex digits + NUL. */
void sl_kb_sha256_hex(const void *p, size_t n, char out[65]);

#endif
