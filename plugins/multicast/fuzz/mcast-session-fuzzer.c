/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer harness: whole multicast sessions (proto/shoal-mcast-sim.h),
 * with Reed-Solomon blocks or in window mode,
 * whose packets the input drops, duplicates, alters, cuts or replaces,
 * signed with the session key as a member of the group could, or not, as
 * an outsider. Whatever comes, no receiver may crash or write a byte that
 * is not the image's, and each must end with every chunk (what the
 * multicast part did not bring comes by unicast). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shoal-mcast-sim.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define IMAGE_LEN (5 * 24576 + 1000)

typedef struct {
  const uint8_t *in;
  size_t left;
} stream;

static int
take (stream *s)
{
  if (s->left == 0)
    return -1;
  s->left--;
  return *s->in++;
}

static int
fate (void *user, smc_sim *sim, uint32_t from, uint32_t to, uint8_t *pkt, size_t *len, size_t cap)
{
  stream *s = user;
  int op = take (s), a, b;
  (void) from;
  if (op < 0 || op < 160)
    return SMC_SIM_DELIVER;
  if (op < 200)
    return SMC_SIM_DROP;
  a = take (s);
  b = take (s);
  if (a < 0 || b < 0)
    return SMC_SIM_DELIVER;
  if (op < 230) {
    /* one byte changed: signed again (a member) or not (an outsider) */
    if (*len > 0)
      pkt[(size_t) a * 256u % *len] ^= (uint8_t) (b | 1);
    if (op < 220)
      smc_sim_sign (sim, pkt, *len);
  } else if (op < 240) {
    /* cut short, signed */
    size_t n = (size_t) a << 8 | (size_t) b;
    if (n < *len)
      *len = n;
    smc_sim_sign (sim, pkt, *len);
  } else if (op < 250) {
    /* the same packet once more */
    smc_sim_inject (sim, from, to, pkt, *len, 0);
  } else {
    /* replaced: its first bytes from the input (header included), signed */
    size_t n = (size_t) a;
    for (size_t i = 0; i < n && i < *len && s->left > 0; i++)
      pkt[i] = (uint8_t) take (s);
    if (b & 1 && n < cap)
      *len = n > SMC_HDR_LEN + SMC_TAG_LEN ? n : SMC_HDR_LEN + SMC_TAG_LEN;
    smc_sim_sign (sim, pkt, *len);
  }
  return SMC_SIM_DELIVER;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static uint8_t *image;
  static smc_sim_result res;
  static const uint16_t mtus[4] = { 1500, 9000, 600, 1280 };
  smc_sim_config c;
  stream s = { data, size };
  char err[256];
  if (size < 3)
    return 0;
  if (image == NULL) {
    image = malloc (IMAGE_LEN);
    smc_sim_fill (image, IMAGE_LEN, 1);
    /* the third chunk all zeros: never sent, only recorded */
    memset (image + 2 * 24576, 0, 24576);
  }
  smc_sim_config_init (&c);
  c.image = image;
  c.image_len = IMAGE_LEN;
  c.chunk_size = 24576;
  c.mtu = mtus[data[0] & 3];
  c.receivers = 1 + (data[0] >> 2) % 3;
  c.no_key = (data[0] >> 4) & 1;
  c.window_chunks = (data[0] >> 5) & 1 ? 2 : 0;  /* window mode: two chunks a window */
  c.loss_ppm = (uint32_t) data[1] * 1000;
  c.seed = data[2];
  c.time_limit_ns = 30ull * 1000000000ull;
  s.in += 3;
  s.left -= 3;
  c.filter = fate;
  c.user = &s;
  if (smc_sim_run (&c, &res, err, sizeof err) < 0)
    abort ();
  for (uint32_t i = 1; i <= c.receivers; i++)
    if (res.rcv[i].bad_writes != 0 || !res.rcv[i].complete)
      abort ();
  return 0;
}
