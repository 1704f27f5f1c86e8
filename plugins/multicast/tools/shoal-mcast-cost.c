/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-cost: what the work every receiver must do costs on this CPU,
 * per packet and per byte: the packet tag check (shoal's GMAC and OpenSSL's)
 * at MTU 1500 and 9000, and the SHA-256 check of a chunk. With the iperf
 * limit line it tells how close to the line a receiver can come at all
 * (bench/multicast/RESULTS.md, section 3).
 *
 *   shoal-mcast-cost [--seconds S]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shoal-mcast-proto.h"
#include "shoal-mcast-sha.h"

static double
seconds (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

/* ns per call of smc_auth_verify on a signed packet of len bytes */
static double
tag_cost (int openssl, size_t len, double budget)
{
  static uint8_t pkt[9000];
  uint8_t key[SMC_KEY_LEN] = { 1, 2, 3 }, hash[SMC_HASH_LEN] = { 4 };
  smc_hdr h = { .session = 1, .seq = 1 };
  uint8_t payload[9000];
  smc_auth *a;
  size_t n, plen;
  double t0, t;
  long iters = 0;
  smc_auth_set_openssl_only (openssl);
  a = smc_auth_new (key, hash);
  smc_auth_set_openssl_only (0);
  if (a == NULL)
    return -1;
  memset (payload, 0x5a, sizeof payload);
  plen = len - SMC_DATA_OVERHEAD;
  n = smc_build_data (pkt, sizeof pkt, &h, 3, 4, payload, plen);
  if (n != len || smc_auth_sign (a, pkt, n) < 0 || smc_auth_verify (a, pkt, n) < 0) {
    smc_auth_free (a);
    return -1;
  }
  t0 = seconds ();
  do {
    for (int i = 0; i < 1000; i++)
      if (smc_auth_verify (a, pkt, n) < 0)
        abort ();
    iters += 1000;
    t = seconds () - t0;
  } while (t < budget);
  smc_auth_free (a);
  return t / (double) iters * 1e9;
}

/* ns per byte of the SHA-256 check of 1 MiB chunks, `lanes` at once
 * (0: one at a time through OpenSSL) */
static double
hash_cost (double budget, int lanes)
{
  size_t len = 1 << 20, lens[16];
  int n = lanes ? lanes : 1;
  uint8_t *buf = malloc (len * 16), out[16][SMC_HASH_LEN];
  const uint8_t *data[16];
  double t0, t;
  long iters = 0;
  if (buf == NULL)
    return -1;
  memset (buf, 0xa5, len * 16);
  for (int i = 0; i < 16; i++) {
    data[i] = buf + len * (size_t) i;
    lens[i] = len;
  }
  t0 = seconds ();
  do {
    if (lanes)
      smc_sha256_multi ((size_t) n, data, lens, out);
    else
      smc_sha256 (buf, len, out[0]);
    buf[iters % len] ^= out[0][0];
    iters++;
    t = seconds () - t0;
  } while (t < budget);
  free (buf);
  return t / ((double) iters * (double) len * n) * 1e9;
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = { { "seconds", 1, 0, 's' }, { 0, 0, 0, 0 } };
  static const size_t lens[] = { 1500 - 28, 9000 - 28 };
  double budget = 1.0, h;
  int opt;
  while ((opt = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    if (opt != 's' || (budget = atof (optarg)) <= 0) {
      fprintf (stderr, "usage: shoal-mcast-cost [--seconds S]\n");
      return 2;
    }
  }
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
    for (int openssl = 0; openssl <= 1; openssl++) {
      const char *name;
      double ns;
      smc_auth_set_openssl_only (openssl);
      name = smc_auth_backend_name ();
      smc_auth_set_openssl_only (0);
      if (!openssl && strcmp (name, "openssl") == 0)
        continue;   /* no fast GMAC on this CPU: OpenSSL's line follows */
      ns = tag_cost (openssl, lens[i], budget / 5);
      printf ("COST tag mac=%s packet=%zu ns_per_packet=%.1f ns_per_byte=%.4f\n", name, lens[i], ns,
              ns / (double) lens[i]);
    }
  h = hash_cost (budget / 5, 0);
  printf ("COST sha256 impl=openssl chunks=1 chunk=1048576 ns_per_byte=%.4f GB_s=%.2f\n", h, 1.0 / h);
  /* a receiver hashes the chunks of an interleaved group together */
  for (int lanes = 2; lanes <= 4 && smc_sha256_ni_available (); lanes *= 2) {
    h = hash_cost (budget / 5, lanes);
    printf ("COST sha256 impl=sha-ni chunks=%d chunk=1048576 ns_per_byte=%.4f GB_s=%.2f\n", lanes, h, 1.0 / h);
  }
  /* and sixteen in the lanes of AVX-512 registers */
  if (smc_sha256_batch () == 16) {
    h = hash_cost (budget / 5, 16);
    printf ("COST sha256 impl=avx512 chunks=16 chunk=1048576 ns_per_byte=%.4f GB_s=%.2f\n", h, 1.0 / h);
  }
  return 0;
}
