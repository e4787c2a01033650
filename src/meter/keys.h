/* Virtual keys: secrets sluice hands to its clients. The store keeps only each
 * secret's SHA-256; the server looks presented secrets up in an in-memory table. */
#ifndef SL_KEYS_H
#define SL_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define SL_KEY_SECRET_PREFIX "sk-sluice-"
#define SL_KEY_SECRET_SIZE   54 /* the prefix + 43 base64url characters (32 bytes) + NUL */

/* ---- creating, listing, revoking (CLI and admin API) ------------------------------ */

/* A new key's settings, before sl_keys_create. Start from {0} and apply options. */
struct sl_key_spec {
    struct sl_key key; /* name, budget, rpm, tpm, models, tags, expires_ms */
    int64_t expires_in_ms; /* 0 = never; turned into expires_ms at creation */
};

/* Applies one option by name: "name", "budget", "rpm", "tpm", "concurrency", "models", "tags",
 * "expires" (values as on the command line: "100usd/month", "600", "deepseek-*,qwen-*",
 * "team=search", "30d"). Returns 0, or -1 with the reason in err (an unknown option
 * too). Validation lives here so the CLI and the admin API accept the same things. */
int sl_key_spec_set(struct sl_key_spec *spec, const char *option, const char *value, char *err,
                    size_t errlen);

/* Creates the key spec describes (its name is required) in the store at store_url,
 * creating the database when missing. On SL_STORE_OK, *out is the stored key and
 * secret holds the only copy of the secret (SL_KEY_SECRET_SIZE bytes): show it once,
 * then wipe it (OPENSSL_cleanse). Else a negative store code and a message in err. */
int sl_keys_create(const char *store_url, const struct sl_key_spec *spec, int64_t now_ms,
                   struct sl_key *out, char secret[SL_KEY_SECRET_SIZE], char *err,
                   size_t errlen);

/* Every key in the store, revoked ones too, oldest first: a malloc'd array the caller
 * frees (NULL when *n is 0; also when there is no database yet). Returns a store code. */
int sl_keys_list(const char *store_url, struct sl_key **out, size_t *n, char *err,
                 size_t errlen);

/* Revokes key id. Returns SL_STORE_OK, SL_STORE_NOT_FOUND, or another store code. */
int sl_keys_revoke(const char *store_url, const char *id, int64_t now_ms, char *err,
                   size_t errlen);

/* ---- checking requests (the server) ---------------------------------------------- */

struct sl_keys;

/* Loads the keys not revoked from the store (no database yet = no keys) into an
 * immutable table: any number of threads may call sl_keys_find on it at once.
 * Returns it (free with sl_keys_free), or NULL with a message in err. */
struct sl_keys *sl_keys_load(const char *store_url, char *err, size_t errlen);

/* The key whose secret this is, or NULL when unknown, revoked (at load time) or
 * expired at now_ms. The pointer lives as long as the table. */
const struct sl_key *sl_keys_find(const struct sl_keys *k, const char *secret, int64_t now_ms);

/* The key with this id, or NULL when unknown or expired at now_ms (a linear scan: for
 * the knowledge base's own calls, which name the key they work for). */
const struct sl_key *sl_keys_find_id(const struct sl_keys *k, const char *id, int64_t now_ms);

/* Whether key k may ask for the model or group name: its models list ("deepseek-*,qwen-*",
 * shell globs) is empty or one glob matches. A NULL key (sluice open on loopback) may. */
int sl_key_allows(const struct sl_key *k, const char *name);

/* How many keys the table holds (expired ones included); 0 for NULL. */
size_t sl_keys_count(const struct sl_keys *k);

/* Keys ever created, revoked ones included: once there is one, every client request
 * needs a live key, so revoking the last key does not open the gateway again. */
size_t sl_keys_ever(const struct sl_keys *k);

/* NULL is allowed. */
void sl_keys_free(struct sl_keys *k);

/* The secret a client presented: the token of "Authorization: Bearer TOKEN" (OpenAI's
 * SDKs), else the x-api-key header (Anthropic's). Either may be NULL. Returns a
 * pointer into one of them, or NULL when neither holds a token. */
const char *sl_keys_presented(const char *authorization, const char *x_api_key);

/* True when presented equals expected, in time that depends on neither's content nor
 * length (both are hashed first). False when either is NULL or empty. */
int sl_keys_secret_equal(const char *presented, const char *expected);

/* Writes the SHA-256 of secret in lowercase hex (SL_KEY_HASH_SIZE bytes). */
void sl_keys_hash_hex(const char *secret, char out[SL_KEY_HASH_SIZE]);

#endif
