/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-wc-sim: what repair by the window code (proto/shoal-mcast-wc.h)
 * costs, in one process: a sender, N receivers that each lose every packet
 * independently with probability P, perfect feedback. Per window: every
 * source symbol once, then rounds of as many repair symbols as the
 * neediest receiver still lacks (missing symbols while it holds too few
 * rows, else what the solver says is short), at the degree
 * smc_wc_degree_code gives for that need. The real encoder and solver run
 * on real bytes, and every receiver's window is compared with the
 * sender's. Prints egress / image (Ethernet frames of S + H + 42 bytes for
 * S bytes of image), the repair's overhead over the neediest receiver's
 * losses, rounds, and the solver's time and multiply-adds per receiver.
 *
 * shoal-mcast-wc-sim [--k K] [--symbol S] [--header H] [--len B]
 *                    [--receivers N] [--loss PERCENT] [--windows W]
 *                    [--seed X] [--fec BACKEND]
 *   --len B: bytes per symbol actually coded (default S; smaller runs
 *   faster and gives the same egress, not the same time)
 * shoal-mcast-wc-sim --combine [--k K] [--symbol S] [--fec BACKEND]:
 *   what one row costs (smc_gf_combine, one output) at the degrees a 5 %
 *   loss gives the rounds: first, second, and a dense row */
#include "shoal-mcast-fec.h"
#include "shoal-mcast-wc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t
rnd (uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int
lost (uint64_t *s, double p)
{
  return (double) (rnd (s) >> 11) / 9007199254740992.0 < p;
}

static double
cpu_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

typedef struct {
  uint8_t *buf, *have;
  uint8_t **sym;
  smc_wc_dec *dec;
  uint32_t missing;
  int done, dirty, short_by;
  double solve_s;
  uint64_t ops;
  uint32_t extra;          /* rows held beyond the missing count when solved */
} rcv;

/* GB/s of one-row combines over a window of k symbols of S bytes, at
 * degrees d spread over it */
static void
combine_cost (uint32_t k, uint32_t S)
{
  uint8_t *win = malloc ((size_t) k * S), *out = malloc (S), *coef = malloc (k);
  const uint8_t **in = malloc (sizeof *in * k);
  uint32_t ds[3] = { smc_wc_degree_of_code (k, smc_wc_degree_code (k, k / 20)),
                     smc_wc_degree_of_code (k, smc_wc_degree_code (k, k / 400)), k };
  uint64_t s = 7;
  if (win == NULL || out == NULL || coef == NULL || in == NULL)
    exit (1);
  for (size_t i = 0; i < (size_t) k * S; i++)
    win[i] = (uint8_t) rnd (&s);
  for (int di = 0; di < 3; di++) {
    uint32_t d = ds[di], n = 0;
    double t0 = cpu_s (), dt;
    for (uint32_t i = 0; i < d; i++) {
      in[i] = win + (size_t) ((uint64_t) i * k / d) * S;
      coef[i] = (uint8_t) (1 + rnd (&s) % 255);
    }
    do {
      smc_gf_combine (d, 1, coef, in, &out, S, 1);
      n++;
    } while ((dt = cpu_s () - t0) < 0.5);
    printf ("combine k=%u S=%u fec=%s: degree %u: %.1f us per row, %.1f GB/s\n", k, S,
            smc_fec_backend_name (), d, dt / n * 1e6, (double) d * S * n / dt / 1e9);
  }
  free (win);
  free (out);
  free (coef);
  free (in);
}

static void
usage (void)
{
  fprintf (stderr, "usage: shoal-mcast-wc-sim [--k K] [--symbol S] [--header H] [--len B] "
                   "[--receivers N] [--loss PERCENT] [--windows W] [--seed X] [--fec BACKEND]\n"
                   "       shoal-mcast-wc-sim --combine [--k K] [--symbol S] [--fec BACKEND]\n");
  exit (2);
}

int
main (int argc, char **argv)
{
  uint32_t k = 0, S = 1458, H = 14, len = 0, N = 4, windows = 4;
  double p = 0.05;
  uint64_t seed = 1, rs;
  double eg_sum = 0, eg_max = 0, over_sum = 0, rounds_sum = 0, solve_sum = 0, solve_max = 0, ops_sum = 0;
  uint64_t extra_sum = 0, solves = 0;
  int bad = 0, combine = 0;

  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp (a, "--combine") == 0) {
      combine = 1;
      i--;
      continue;
    }
    if (v == NULL)
      usage ();
    if (strcmp (a, "--k") == 0)
      k = (uint32_t) strtoul (v, NULL, 10);
    else if (strcmp (a, "--symbol") == 0)
      S = (uint32_t) strtoul (v, NULL, 10);
    else if (strcmp (a, "--header") == 0)
      H = (uint32_t) strtoul (v, NULL, 10);
    else if (strcmp (a, "--len") == 0)
      len = (uint32_t) strtoul (v, NULL, 10);
    else if (strcmp (a, "--receivers") == 0)
      N = (uint32_t) strtoul (v, NULL, 10);
    else if (strcmp (a, "--loss") == 0)
      p = strtod (v, NULL) / 100.0;
    else if (strcmp (a, "--windows") == 0)
      windows = (uint32_t) strtoul (v, NULL, 10);
    else if (strcmp (a, "--seed") == 0)
      seed = strtoull (v, NULL, 0);
    else if (strcmp (a, "--fec") == 0) {
      const char *why = smc_fec_select (v);
      if (why != NULL) {
        fprintf (stderr, "shoal-mcast-wc-sim: %s: %s\n", v, why);
        return 2;
      }
    } else
      usage ();
  }
  if (k == 0)
    k = (16u << 20) / S;
  if (len == 0)
    len = S;
  if (combine) {
    combine_cost (k, S);
    return 0;
  }
  if (N == 0 || N > 1024 || k > SMC_WC_MAX_K || S == 0 || windows == 0)
    usage ();
  rs = seed;

  for (uint32_t w = 0; w < windows; w++) {
    uint8_t *src = malloc ((size_t) k * len), *par = malloc (len);
    const uint8_t **sp = malloc (sizeof *sp * k);
    rcv *r = calloc (N, sizeof *r);
    uint64_t sent = k, serial = 0, wseed = rnd (&rs);
    uint32_t worst = 0;
    int rounds = 0;
    if (src == NULL || par == NULL || sp == NULL || r == NULL)
      return 1;
    for (size_t i = 0; i < (size_t) k * len; i += 8) {
      uint64_t x = rnd (&rs);
      memcpy (src + i, &x, (size_t) k * len - i < 8 ? (size_t) k * len - i : 8);
    }
    for (uint32_t j = 0; j < k; j++)
      sp[j] = src + (size_t) j * len;
    for (uint32_t n = 0; n < N; n++) {
      r[n].buf = calloc ((size_t) k, len);
      r[n].have = calloc (k, 1);
      r[n].sym = malloc (sizeof *r[n].sym * k);
      r[n].dec = smc_wc_dec_new (wseed, k, len);
      if (r[n].buf == NULL || r[n].have == NULL || r[n].sym == NULL || r[n].dec == NULL)
        return 1;
      for (uint32_t j = 0; j < k; j++) {
        r[n].sym[j] = r[n].buf + (size_t) j * len;
        if (!lost (&rs, p)) {
          memcpy (r[n].sym[j], sp[j], len);
          r[n].have[j] = 1;
        } else {
          r[n].missing++;
        }
      }
      if (r[n].missing > worst)
        worst = r[n].missing;
      r[n].dirty = 1;
    }
    for (;;) {
      uint32_t need = 0;
      uint8_t code;
      for (uint32_t n = 0; n < N; n++) {
        rcv *x = &r[n];
        uint32_t held, want;
        if (x->done)
          continue;
        held = smc_wc_dec_held (x->dec);
        if (held < x->missing) {
          want = x->missing - held;
        } else if (!x->dirty) {
          want = (uint32_t) x->short_by;
        } else {
          double t0 = cpu_s (), dt;
          int rc = smc_wc_dec_solve (x->dec, x->sym, x->have, NULL);
          dt = cpu_s () - t0;
          x->solve_s += dt;
          x->ops += smc_wc_dec_last_ops (x->dec);
          x->dirty = 0;
          if (rc < 0) {
            fprintf (stderr, "shoal-mcast-wc-sim: the solver failed (%u missing)\n", x->missing);
            return 1;
          }
          if (rc == 0) {
            x->done = 1;
            x->extra = held - x->missing;
            continue;
          }
          x->short_by = rc;
          want = (uint32_t) rc;
        }
        if (want > need)
          need = want;
      }
      if (need == 0)
        break;
      if (++rounds > 1000) {
        fprintf (stderr, "shoal-mcast-wc-sim: no end after 1000 rounds\n");
        return 1;
      }
      code = smc_wc_degree_code (k, need);
      for (uint32_t i = 0; i < need; i++) {
        uint32_t id = smc_wc_make_id (code, (uint32_t) ++serial);
        if (smc_wc_encode (wseed, k, sp, id, par, len) < 0)
          return 1;
        for (uint32_t n = 0; n < N; n++)
          if (!r[n].done && !lost (&rs, p) && smc_wc_dec_add (r[n].dec, id, par) == 0)
            r[n].dirty = 1;
      }
      sent += need;
    }
    {
      double eg = (double) sent * (S + H + 42) / ((double) k * S);
      eg_sum += eg;
      if (eg > eg_max)
        eg_max = eg;
      over_sum += (double) (sent - k) / (double) worst;
      rounds_sum += rounds;
    }
    for (uint32_t n = 0; n < N; n++) {
      if (memcmp (r[n].buf, src, (size_t) k * len) != 0)
        bad++;
      solve_sum += r[n].solve_s;
      if (r[n].solve_s > solve_max)
        solve_max = r[n].solve_s;
      ops_sum += (double) r[n].ops;
      extra_sum += r[n].extra;
      solves++;
      smc_wc_dec_free (r[n].dec);
      free (r[n].buf);
      free (r[n].have);
      free (r[n].sym);
    }
    free (r);
    free (src);
    free (par);
    free (sp);
  }
  printf ("wc-sim k=%u S=%u H=%u len=%u N=%u loss=%.1f%% windows=%u fec=%s: egress/image %.4f (max %.4f) "
          "repair/worst-loss %.4f rounds %.2f spare-rows %.2f solve %.2f ms/window/receiver (max %.2f) "
          "ops/symbol %.1f %s\n",
          k, S, H, len, N, p * 100, windows, smc_fec_backend_name (), eg_sum / windows, eg_max,
          over_sum / windows, rounds_sum / windows, (double) extra_sum / (double) solves,
          solve_sum / (double) solves * 1e3, solve_max * 1e3, ops_sum / (double) solves / k,
          bad ? "CORRUPT" : "bit-exact");
  return bad ? 1 : 0;
}
