/* JSON helpers: top-level member spans of a raw object (to rewrite a field without
 * re-encoding the rest) and small accessors over cJSON. */
#ifndef SL_JSON_H
#define SL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct sl_span {
    const char *ptr;
    size_t len;
};

struct sl_json_member {
    struct sl_span key;   /* raw bytes between the quotes, escapes not decoded */
    struct sl_span value; /* raw bytes of the value */
};

/* Finds the top-level members of the JSON object in s (which cJSON already
 * accepted). Returns the member count, or -1 when s is not an object or has
 * more than max members. */
int sl_json_members(const char *s, size_t n, struct sl_json_member *out, int max);

/* Returns the offset of the first control byte JSON never allows unescaped (below
 * 0x20 except tab, LF, CR), or -1 when there is none. cJSON accepts them, and reads a
 * NUL as the end of a string: a body with one would mean different things to sluice
 * and to the provider. */
long sl_json_raw_control(const char *s, size_t n);

/* Returns the name of the first top-level key that appears twice, or NULL. */
const char *sl_json_duplicate_key(const cJSON *obj);

/* A JSON number as an integer, clamped to +-2^62 (NaN is 0): casting an out-of-range
 * double is undefined behaviour, and any number can arrive from a client. */
int64_t sl_json_clamp_int(double d);
/* True when v is a number with no fractional part within the clamp range. */
int sl_json_is_int(const cJSON *v);

/* Accessors returning a default when the member is missing or of another type. */
const char *sl_json_str(const cJSON *obj, const char *key, const char *dflt);
int64_t sl_json_int(const cJSON *obj, const char *key, int64_t dflt);
int sl_json_bool(const cJSON *obj, const char *key, int dflt);

/* A change to one top-level member: its new raw JSON value (added when absent). */
struct sl_json_edit {
    const char *key;
    const char *value;
};

/* Writes the object s with the edits applied to out, every other byte as it was.
 * Returns 0, or -1 when s has a key written with escapes (compare it decoded: use
 * sl_json_apply_edits_tree) or out is full. */
struct sl_buf;
int sl_json_apply_edits(const char *s, size_t n, const struct sl_json_edit *e, int ne,
                        struct sl_buf *out);

/* The same on a parsed object. Returns 0, or -1 when a value does not parse. */
int sl_json_apply_edits_tree(cJSON *obj, const struct sl_json_edit *e, int ne);

/* Appends s as a JSON string literal (with quotes) to b. Returns 0 or -1. */
int sl_json_quote(struct sl_buf *b, const char *s, size_t n);

#endif
