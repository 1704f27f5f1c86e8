/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: the window code's solver (proto/shoal-mcast-wc.h) fed
 * repair symbols whose ids (any degree code, any serial) and order the
 * input chooses, some of them forged: no crash, and whenever every repair
 * symbol was honest, a solved window is the sender's, byte for byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shoal-mcast-wc.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  uint32_t k, len, forged = 0, n = 0;
  uint64_t seed = 0;
  uint8_t *src, *buf, *have, *par;
  const uint8_t **sp;
  uint8_t **sym;
  smc_wc_dec *dec;
  size_t at = 12;
  int rc = 1;
  if (size < at)
    return 0;
  k = 1 + ((uint32_t) data[0] << 8 | data[1]) % 300;
  len = 1 + data[2] % 40;
  memcpy (&seed, data + 3, 8);
  src = malloc ((size_t) k * len);
  buf = calloc (k, len);
  have = calloc (k, 1);
  par = malloc (len);
  sp = malloc (sizeof *sp * k);
  sym = malloc (sizeof *sym * k);
  dec = smc_wc_dec_new (seed, k, len);
  if (src == NULL || buf == NULL || have == NULL || par == NULL || sp == NULL || sym == NULL || dec == NULL)
    abort ();
  for (uint32_t j = 0; j < k; j++) {
    for (uint32_t b = 0; b < len; b++)
      src[(size_t) j * len + b] = (uint8_t) (j * 31 + b * 7 + data[11]);
    sp[j] = src + (size_t) j * len;
    sym[j] = buf + (size_t) j * len;
    /* lost: bit j of the loss mask bytes, cycling over the input */
    if (((data[11 + j / 8 % (size - 11)] >> (j % 8)) & 1) == 0) {
      memcpy (sym[j], sp[j], len);
      have[j] = 1;
    }
  }
  /* then records of 5 bytes: degree code, 3 bytes of serial, an op byte
   * (bit 0: forged payload, bit 1: solve after it) */
  for (; at + 5 <= size && n < 400; at += 5, n++) {
    uint32_t id = (uint32_t) data[at] << 24 | (uint32_t) data[at + 1] << 16 | (uint32_t) data[at + 2] << 8 | data[at + 3];
    uint8_t op = data[at + 4];
    if (op & 1) {
      for (uint32_t b = 0; b < len; b++)
        par[b] = (uint8_t) (op + b);
      if (smc_wc_dec_add (dec, id, par) == 0)
        forged = 1;
    } else {
      if (smc_wc_encode (seed, k, sp, id, par, len) < 0)
        abort ();
      smc_wc_dec_add (dec, id, par);
    }
    if (op & 2) {
      uint32_t rank = 0;
      rc = smc_wc_dec_solve (dec, sym, have, &rank);
      if (rc == 0) {
        if (!forged && memcmp (buf, src, (size_t) k * len) != 0)
          abort ();
        memset (have, 1, k);
        break;
      }
    }
  }
  smc_wc_dec_free (dec);
  free (src);
  free (buf);
  free (have);
  free (par);
  free (sp);
  free (sym);
  return 0;
}
