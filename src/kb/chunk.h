/* Document-type-aware chunking: a recursive splitter like LangChain's
 * RecursiveCharacterTextSplitter, with profiles as data and stricter rules (docs/kb.md):
 * no chunk exceeds the size, sentence punctuation stays at the end of its sentence, a
 * heading stays with its body and names the chunk, tables split by rows with their header
 * repeated. A profile with langchain set reproduces LangChain chunk for chunk instead. */
#ifndef SL_KB_CHUNK_H
#define SL_KB_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

enum sl_chunk_unit {
    SL_CHUNK_TOKENS, /* sluice's token estimate (meter/estimate.h) */
    SL_CHUNK_CHARS,  /* Unicode code points */
};

/* Which lines open a section (and give chunks their heading path). */
#define SL_HEADINGS_MARKDOWN 1u /* ATX headings "# ..." outside code fences */
#define SL_HEADINGS_CLAUSE 2u   /* 第N章 / 第N节 / 第N条 / 条款 at a line start */

#define SL_CHUNK_MAX_SEPARATORS 32
#define SL_CHUNK_MAX_PROFILES 64

struct sl_chunk_profile {
    const char *name;
    /* Tried in order, as in LangChain; "" means split anywhere (on a code point). A
     * separator that ends with a newline splits after itself; else one that starts with
     * whitespace splits after that whitespace (before "第" in "\n第"), and one that does not
     * (such as "。") splits after itself, so punctuation ends its sentence. Outside
     * langchain mode, a separator "\n第" matches only a clause marker (第 + number +
     * 条/章/节) and "\n#..." only a Markdown heading. */
    const char *const *separators;
    int nseparators;
    int size, overlap; /* in unit; size >= 1, 0 <= overlap < size */
    enum sl_chunk_unit unit;
    int langchain; /* exact LangChain behaviour: keepSeparator, trim, may exceed size */
    unsigned headings; /* SL_HEADINGS_* (ignored in langchain mode) */
};

struct sl_chunk {
    size_t start, end;   /* byte offsets of the chunk in the source text */
    const char *text;    /* the chunk text, len bytes: the source bytes [start, end)
                            themselves (text == source + start, NOT NUL-terminated), or,
                            for a table part with its header repeated, an arena copy */
    size_t len;
    const char *heading; /* heading path, "第一章 总则 > 第三条" or "Install > Linux"; "" */
    int size;            /* of text, in the profile's unit */
};

/* A profile by name: built-ins "contract", "techdoc", "default", "langchain", then those
 * registered. NULL when unknown. The returned profile lives for the process. */
const struct sl_chunk_profile *sl_chunk_profile(const char *name);

/* Registers (or replaces, by name) a profile, e.g. from config; the strings are copied.
 * Built-in names cannot be replaced. Returns 0, or -1 with err filled (bad size/overlap,
 * too many separators or profiles). Not thread-safe: call at start-up or config load. */
int sl_chunk_profile_register(const struct sl_chunk_profile *p, char *err, size_t errlen);

/* Checks a profile's numbers: 0, or -1 with err filled. */
int sl_chunk_profile_check(const struct sl_chunk_profile *p, char *err, size_t errlen);

/* "auto": the name of the built-in profile that fits the text: "contract" when clause
 * markers (第N条/第N章) open lines, "techdoc" when Markdown headings or code fences do,
 * else "default". */
const char *sl_chunk_detect(const char *text, size_t len);

/* Splits UTF-8 text into chunks, in order, allocated in arena a. *out may be NULL when *n
 * is 0. Lifetime: a chunk's text usually points into the source text (no copy), so the
 * caller keeps text alive and unchanged for as long as it uses the chunks (as well as the
 * arena), and reads a chunk's text by its len, never as a C string. Outside langchain mode every chunk's size is at most p->size and the chunks cover
 * the text's non-whitespace bytes in order. Returns 0, or -1 when out of memory or the
 * profile is invalid. */
int sl_chunk_text(const struct sl_chunk_profile *p, const char *text, size_t len,
                  struct sl_arena *a, struct sl_chunk **out, size_t *n);

/* Size of UTF-8 text in unit (code points, or sl_estimate_text's tokens). */
int64_t sl_chunk_measure(enum sl_chunk_unit unit, const char *s, size_t n);

#endif
