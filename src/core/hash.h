/* A small non-cryptographic hash (64-bit FNV-1a), fed piece by piece, for telling
 * equal texts apart (a mirrored answer against the primary's), never for secrets. */
#ifndef SL_HASH_H
#define SL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SL_HASH64_INIT UINT64_C(0xcbf29ce484222325)

/* Returns h extended with n bytes at p; feeding a text in pieces gives the same
 * value as feeding it whole. */
uint64_t sl_hash64(uint64_t h, const void *p, size_t n);

/* Writes h as 16 lowercase hex digits and a NUL into out (17 bytes). */
void sl_hash64_hex(uint64_t h, char out[17]);

#endif
