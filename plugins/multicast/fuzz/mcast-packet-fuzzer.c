/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: multicast packet parsers and tag checks, manifest parser, join string */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shoal-mcast-proto.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* tag checks: shoal's GMAC and OpenSSL's agree on every input */
static void
fuzz_auth (const uint8_t *data, size_t size)
{
  static smc_auth *fast, *ossl;
  static const uint8_t key[SMC_KEY_LEN] = { 7 }, hash[SMC_HASH_LEN] = { 9 };
  if (ossl == NULL) {
    fast = smc_auth_new (key, hash);
    smc_auth_set_openssl_only (1);
    ossl = smc_auth_new (key, hash);
    smc_auth_set_openssl_only (0);
    if (fast == NULL || ossl == NULL)
      abort ();
  }
  if (smc_auth_verify (fast, data, size) != smc_auth_verify (ossl, data, size))
    abort ();
}

static void
fuzz_packet (const uint8_t *data, size_t size)
{
  smc_hdr h;
  smc_data d;
  smc_announce a;
  smc_nack n;
  smc_srcreq q;
  smc_status s;
  smc_control c;
  smc_sdata sd;
  fuzz_auth (data, size);
  if (smc_parse_hdr (data, size, &h) < 0)
    return;
  (void) smc_packet_node (data, size);
  if (smc_parse_data (data, size, &d) == 0) {
    volatile uint8_t x = 0;
    for (size_t i = 0; i < d.payload_len; i += 97)
      x ^= d.payload[i];
    (void) x;
  }
  if (smc_parse_announce (data, size, &a) == 0) {
    smc_geom g;
    if (smc_geom_init (&g, a.chunk_size, a.symbol_size, a.max_k) == 0)
      for (uint16_t i = 0; i < g.n_src; i += 13)
        (void) smc_geom_block_of (&g, i);
  }
  if (smc_parse_nack (data, size, &n) == 0)
    for (uint16_t i = 0; i < n.count; i++) {
      smc_nack_entry e;
      smc_nack_entry_get (&n, i, &e);
    }
  if (smc_parse_sdata (data, size, &sd) == 0) {
    volatile uint8_t x = 0;
    for (size_t i = 0; i < sd.payload_len; i += 97)
      x ^= sd.payload[i];
    (void) x;
  }
  if (smc_parse_wnack (data, size, &n) == 0)
    for (uint16_t i = 0; i < n.count; i++) {
      smc_wnack_entry e;
      smc_wnack_entry_get (&n, i, &e);
    }
  if (smc_parse_srcreq (data, size, &q) == 0) {
    volatile uint8_t x = 0;
    for (uint8_t i = 0; i < q.map_len; i++)
      x ^= q.map[i];
    (void) x;
  }
  (void) smc_parse_status (data, size, &s);
  (void) smc_parse_control (data, size, &c);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  smc_manifest *m;
  char *str;
  smc_join j;
  if (size == 0)
    return 0;
  switch (data[0] % 3) {
  case 0:
    fuzz_packet (data + 1, size - 1);
    break;
  case 1:
    m = smc_manifest_parse (data + 1, size - 1);
    smc_manifest_free (m);
    break;
  default:
    str = malloc (size);
    memcpy (str, data + 1, size - 1);
    str[size - 1] = '\0';
    (void) smc_join_parse (str, &j);
    free (str);
    break;
  }
  return 0;
}
