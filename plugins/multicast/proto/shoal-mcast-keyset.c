/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-keyset.c: a set of nonzero 64-bit keys */
#include "shoal-mcast-keyset.h"

#include <stdlib.h>

#define INITIAL_CAP 1024

int
smc_keyset_init (smc_keyset *ks)
{
  ks->n = 0;
  ks->cap = INITIAL_CAP;
  ks->k = calloc (ks->cap, sizeof *ks->k);
  return ks->k != NULL ? 0 : -1;
}

void
smc_keyset_clear (smc_keyset *ks)
{
  free (ks->k);
  ks->k = NULL;
  ks->cap = ks->n = 0;
}

static size_t
home (const smc_keyset *ks, uint64_t key)
{
  return (size_t) ((key * 0x9e3779b97f4a7c15ull) >> 32) & (ks->cap - 1);
}

int
smc_keyset_has (const smc_keyset *ks, uint64_t key)
{
  for (size_t i = home (ks, key); ks->k[i] != 0; i = (i + 1) & (ks->cap - 1))
    if (ks->k[i] == key)
      return 1;
  return 0;
}

static void
put (smc_keyset *ks, uint64_t key)
{
  size_t i = home (ks, key);
  while (ks->k[i] != 0)
    i = (i + 1) & (ks->cap - 1);
  ks->k[i] = key;
  ks->n++;
}

int
smc_keyset_add (smc_keyset *ks, uint64_t key)
{
  if (2 * (ks->n + 1) > ks->cap) {
    smc_keyset g = { .cap = 2 * ks->cap };
    if ((g.k = calloc (g.cap, sizeof *g.k)) == NULL)
      return -1;
    for (size_t i = 0; i < ks->cap; i++)
      if (ks->k[i] != 0)
        put (&g, ks->k[i]);
    free (ks->k);
    *ks = g;
  }
  put (ks, key);
  return 0;
}

void
smc_keyset_del (smc_keyset *ks, uint64_t key)
{
  size_t mask = ks->cap - 1, i = home (ks, key), j;
  while (ks->k[i] != key) {
    if (ks->k[i] == 0)
      return;
    i = (i + 1) & mask;
  }
  /* backward shift: a later key of the run moves into the hole unless its
   * home lies cyclically in (hole, its slot] */
  for (j = (i + 1) & mask; ks->k[j] != 0; j = (j + 1) & mask) {
    size_t h = home (ks, ks->k[j]);
    if (i <= j ? (h <= i || h > j) : (h <= i && h > j)) {
      ks->k[i] = ks->k[j];
      i = j;
    }
  }
  ks->k[i] = 0;
  ks->n--;
}
