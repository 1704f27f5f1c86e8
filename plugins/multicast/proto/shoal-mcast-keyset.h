/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-keyset.h: a set of nonzero 64-bit keys (open addressing,
 * linear probing, backward-shift deletion), at most half full */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint64_t *k;       /* cap slots, 0: empty */
  size_t cap, n;     /* cap: a power of two */
} smc_keyset;

/* 0, or -1 out of memory (then k is NULL) */
int smc_keyset_init (smc_keyset *ks);
void smc_keyset_clear (smc_keyset *ks);
int smc_keyset_has (const smc_keyset *ks, uint64_t key);
/* adds a nonzero key not in the set: 0, or -1 out of memory (set unchanged) */
int smc_keyset_add (smc_keyset *ks, uint64_t key);
/* removes key if it is there */
void smc_keyset_del (smc_keyset *ks, uint64_t key);

#ifdef __cplusplus
}
#endif
