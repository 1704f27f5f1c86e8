/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the window code (proto/shoal-mcast-wc.h) and of the GF(2^8)
 * arithmetic it shares with the Reed-Solomon code */
#include <glib.h>
#include <math.h>
#include <string.h>

#include "shoal-mcast-fec.h"
#include "shoal-mcast-wc.h"

/* a window of k symbols of len bytes, a receiver's copy of it with the
 * symbols `lost` says were lost, and its solver */
typedef struct {
  uint32_t k;
  size_t len;
  uint64_t seed;
  uint8_t *src, *buf, *have;
  const uint8_t **sp;
  uint8_t **sym;
  uint32_t missing;
  smc_wc_dec *dec;
} win;

static void
win_init (win *w, uint32_t k, size_t len, uint64_t seed, GRand *rng, double loss)
{
  w->k = k;
  w->len = len;
  w->seed = seed;
  w->src = g_malloc ((size_t) k * len);
  w->buf = g_malloc0 ((size_t) k * len);
  w->have = g_malloc0 (k);
  w->sp = g_new (const uint8_t *, k);
  w->sym = g_new (uint8_t *, k);
  w->missing = 0;
  for (size_t i = 0; i < (size_t) k * len; i++)
    w->src[i] = (uint8_t) g_rand_int (rng);
  for (uint32_t j = 0; j < k; j++) {
    w->sp[j] = w->src + (size_t) j * len;
    w->sym[j] = w->buf + (size_t) j * len;
    if (g_rand_double (rng) >= loss) {
      memcpy (w->sym[j], w->sp[j], len);
      w->have[j] = 1;
    } else {
      w->missing++;
    }
  }
  w->dec = smc_wc_dec_new (seed, k, len);
  g_assert_nonnull (w->dec);
}

static void
win_clear (win *w)
{
  smc_wc_dec_free (w->dec);
  g_free (w->src);
  g_free (w->buf);
  g_free (w->have);
  g_free (w->sp);
  g_free (w->sym);
}

/* n repair symbols with serials from *serial on, at the degree for `for_missing` */
static void
win_feed (win *w, uint32_t n, uint32_t for_missing, uint32_t *serial)
{
  g_autofree uint8_t *par = g_malloc (w->len);
  uint8_t code = smc_wc_degree_code (w->k, for_missing);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t id = smc_wc_make_id (code, ++*serial);
    g_assert_cmpint (smc_wc_encode (w->seed, w->k, w->sp, id, par, w->len), ==, 0);
    g_assert_cmpint (smc_wc_dec_add (w->dec, id, par), ==, 0);
  }
}

static void
test_wc_rows (void)
{
  uint32_t k = 5000, prev = 0;
  g_autofree uint32_t *idx = g_new (uint32_t, k), *idx2 = g_new (uint32_t, k);
  g_autofree uint8_t *coef = g_malloc (k), *coef2 = g_malloc (k);
  /* the scale: 8 at code 0, doubling every 16 codes, capped at k */
  g_assert_cmpuint (smc_wc_degree_of_code (k, 0), ==, 8);
  g_assert_cmpuint (smc_wc_degree_of_code (k, 16), ==, 16);
  g_assert_cmpuint (smc_wc_degree_of_code (k, 64), ==, 128);
  g_assert_cmpuint (smc_wc_degree_of_code (k, 255), ==, k);
  g_assert_cmpuint (smc_wc_degree_of_code (3, 0), ==, 3);
  for (int c = 0; c < 256; c++) {
    uint32_t d = smc_wc_degree_of_code (k, (uint8_t) c);
    g_assert_cmpuint (d, >=, prev);
    prev = d;
  }
  /* the degree picked meets about ln(m) + 6 of m missing symbols */
  for (uint32_t m = 1; m <= 4000; m = m * 3 + 1) {
    uint32_t d = smc_wc_degree (k, smc_wc_make_id (smc_wc_degree_code (k, m), 1));
    double meets = (double) d * m / k;
    if (d < k)
      g_assert_cmpfloat (meets, >=, log ((double) m) + 5.9);
    g_assert_cmpfloat (meets, <, (log ((double) m) + 6.1) * 1.05 + 1);
  }
  for (int c = 0; c < 256; c += 7) {
    uint32_t id = smc_wc_make_id ((uint8_t) c, 12345), d = smc_wc_degree (k, id);
    g_assert_cmpint (smc_wc_row (99, k, id, idx, coef), ==, (int) d);
    for (uint32_t i = 0; i < d; i++) {
      g_assert_cmpuint (idx[i], <, k);
      if (i > 0)
        g_assert_cmpuint (idx[i], >, idx[i - 1]);
      g_assert_cmpuint (coef[i], !=, 0);
    }
    /* the same row for the same (seed, id); another for another id or seed */
    g_assert_cmpint (smc_wc_row (99, k, id, idx2, coef2), ==, (int) d);
    g_assert_cmpmem (idx, d * sizeof *idx, idx2, d * sizeof *idx);
    g_assert_cmpmem (coef, d, coef2, d);
    g_assert_cmpint (smc_wc_row (99, k, id + 1, idx2, coef2), ==, (int) d);
    g_assert_true (memcmp (coef, coef2, d) != 0 || (d < k && memcmp (idx, idx2, d * sizeof *idx) != 0));
    g_assert_cmpint (smc_wc_row (98, k, id, idx2, coef2), ==, (int) d);
    g_assert_true (memcmp (coef, coef2, d) != 0 || (d < k && memcmp (idx, idx2, d * sizeof *idx) != 0));
  }
  g_assert_cmpint (smc_wc_row (1, 0, 1, idx, coef), ==, -1);
  g_assert_cmpint (smc_wc_row (1, SMC_WC_MAX_K + 1, 1, idx, coef), ==, -1);
  /* a row fixed here, so that a change to the generator (which would make
   * receivers disagree with senders of another version) fails a test */
  g_assert_cmpint (smc_wc_row (7, 100, smc_wc_make_id (0, 1), idx, coef), ==, 8);
  {
    static const uint32_t want_idx[8] = { 18, 32, 33, 47, 75, 87, 89, 91 };
    static const uint8_t want_coef[8] = { 117, 208, 7, 84, 124, 231, 146, 90 };
    g_assert_cmpmem (idx, sizeof want_idx, want_idx, sizeof want_idx);
    g_assert_cmpmem (coef, sizeof want_coef, want_coef, sizeof want_coef);
  }
}

/* a receiver that lost 5 % (and a burst) solves from as many repair
 * symbols as it lacks, or one or two more, whatever the symbol size */
static void
test_wc_roundtrip (void)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (11);
  static const size_t lens[] = { 1, 63, 64, 65, 1458 };
  uint32_t spare_total = 0;
  for (int trial = 0; trial < 10; trial++) {
    win w;
    uint32_t serial = 0, rank = 0, fed;
    int rc;
    win_init (&w, 3000, lens[trial % G_N_ELEMENTS (lens)], 1000 + (uint64_t) trial, rng, 0.05);
    /* a burst of 40 on top */
    for (uint32_t j = 500; j < 540; j++)
      if (w.have[j]) {
        w.have[j] = 0;
        memset (w.sym[j], 0, w.len);
        w.missing++;
      }
    win_feed (&w, w.missing, w.missing, &serial);
    fed = w.missing;
    while ((rc = smc_wc_dec_solve (w.dec, w.sym, w.have, &rank)) > 0) {
      g_assert_cmpuint (rank + (uint32_t) rc, ==, w.missing);
      g_assert_cmpuint (fed, <, w.missing + 8);
      win_feed (&w, (uint32_t) rc, (uint32_t) rc, &serial);
      fed += (uint32_t) rc;
    }
    g_assert_cmpint (rc, ==, 0);
    g_assert_cmpuint (rank, ==, w.missing);
    g_assert_cmpmem (w.buf, (size_t) w.k * w.len, w.src, (size_t) w.k * w.len);
    g_assert_cmpuint (smc_wc_dec_held (w.dec), ==, 0);
    spare_total += fed - w.missing;
    win_clear (&w);
  }
  g_test_message ("spare repair symbols over 10 windows: %u", spare_total);
  g_assert_cmpuint (spare_total, <=, 6);
}

/* smc_wc_encode_many gives what smc_wc_encode gives for each id, dense
 * rows (a window of 236 symbols, rows for 12 missing: combined as one
 * matrix) or sparse (3000 symbols, one row at a time); and a receiver of
 * such dense windows, whose solve subtracts its known symbols from the
 * rows together, gets the window back at any loss it can solve */
static void
test_wc_dense (void)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (5);
  static const struct { uint32_t k; double loss; size_t len; } cases[] = {
    { 236, 0.05, 8958 }, { 236, 0.15, 1458 }, { 236, 0.30, 100 }, { 64, 0.5, 65 }, { 64, 1.0, 65 }, { 2000, 0.10, 64 }, { 3000, 0.05, 64 },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    win w;
    uint32_t serial = 0, n, rank = 0;
    uint32_t ids[64];
    uint8_t *outs[64];
    g_autofree uint8_t *one = NULL, *many = NULL;
    uint8_t code;
    int rc;
    win_init (&w, cases[c].k, cases[c].len, 77 + c, rng, cases[c].loss);
    code = smc_wc_degree_code (w.k, w.missing);
    g_test_message ("k %u, %u missing: degree %u", w.k, w.missing, smc_wc_degree_of_code (w.k, code));
    /* the first round, and a second as large, 64 rows at most a batch */
    one = g_malloc (w.len);
    many = g_malloc ((size_t) 64 * w.len);
    for (uint32_t fed = 0; fed < 2 * w.missing; fed += n) {
      n = 2 * w.missing - fed < 64 ? 2 * w.missing - fed : 64;
      for (uint32_t i = 0; i < n; i++) {
        ids[i] = smc_wc_make_id (code, ++serial);
        outs[i] = many + (size_t) i * w.len;
      }
      g_assert_cmpint (smc_wc_encode_many (w.seed, w.k, w.sp, ids, n, outs, w.len), ==, 0);
      for (uint32_t i = 0; i < n; i++) {
        g_assert_cmpint (smc_wc_encode (w.seed, w.k, w.sp, ids[i], one, w.len), ==, 0);
        g_assert_cmpmem (outs[i], w.len, one, w.len);
        if (fed + i < w.missing + 2)
          g_assert_cmpint (smc_wc_dec_add (w.dec, ids[i], outs[i]), ==, 0);
      }
    }
    rc = smc_wc_dec_solve (w.dec, w.sym, w.have, &rank);
    while (rc > 0) {
      win_feed (&w, (uint32_t) rc, (uint32_t) rc, &serial);
      rc = smc_wc_dec_solve (w.dec, w.sym, w.have, &rank);
    }
    g_assert_cmpint (rc, ==, 0);
    g_assert_cmpmem (w.buf, (size_t) w.k * w.len, w.src, (size_t) w.k * w.len);
    win_clear (&w);
  }
}

/* too few rows: nothing is written, the rows are kept, and more solve it;
 * duplicates are refused; too many missing is an error, not a hang */
static void
test_wc_short (void)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (12);
  g_autofree uint8_t *before = NULL;
  g_autofree uint8_t *par = NULL;
  win w;
  uint32_t serial = 0, rank = 0;
  int rc;
  win_init (&w, 1000, 100, 5, rng, 0.1);
  g_assert_cmpuint (w.missing, >, 20);
  before = g_memdup2 (w.buf, (size_t) w.k * w.len);
  win_feed (&w, w.missing - 10, w.missing, &serial);
  rc = smc_wc_dec_solve (w.dec, w.sym, w.have, &rank);
  g_assert_cmpint (rc, >=, 10);
  g_assert_cmpuint (rank, ==, w.missing - (uint32_t) rc);
  g_assert_cmpmem (w.buf, (size_t) w.k * w.len, before, (size_t) w.k * w.len);
  g_assert_cmpuint (smc_wc_dec_held (w.dec), ==, w.missing - 10);
  /* the same id again */
  par = g_malloc (w.len);
  g_assert_cmpint (smc_wc_encode (w.seed, w.k, w.sp, smc_wc_make_id (smc_wc_degree_code (w.k, w.missing), 1), par, w.len), ==, 0);
  g_assert_cmpint (smc_wc_dec_add (w.dec, smc_wc_make_id (smc_wc_degree_code (w.k, w.missing), 1), par), ==, 1);
  /* late source symbols count: the missing ones shrink, the rows held stay useful */
  for (uint32_t j = 0, n = 0; j < w.k && n < 5; j++)
    if (!w.have[j]) {
      memcpy (w.sym[j], w.sp[j], w.len);
      w.have[j] = 1;
      w.missing--;
      n++;
    }
  win_feed (&w, 8, 8, &serial);
  while ((rc = smc_wc_dec_solve (w.dec, w.sym, w.have, &rank)) > 0)
    win_feed (&w, (uint32_t) rc, (uint32_t) rc, &serial);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpmem (w.buf, (size_t) w.k * w.len, w.src, (size_t) w.k * w.len);
  win_clear (&w);

  /* nothing missing: solved at once */
  win_init (&w, 50, 10, 6, rng, 0.0);
  g_assert_cmpint (smc_wc_dec_solve (w.dec, w.sym, w.have, NULL), ==, 0);
  win_clear (&w);

  /* more missing than the solver takes */
  win_init (&w, SMC_WC_MAX_MISSING + 100, 4, 7, rng, 1.0);
  g_assert_cmpint (smc_wc_dec_solve (w.dec, w.sym, w.have, NULL), ==, -1);
  win_clear (&w);

  /* ids held: found again however many (the table grows), UINT32_MAX
   * too, and no more than SMC_WC_MAX_HELD */
  {
    smc_wc_dec *d = smc_wc_dec_new (9, 100, 4);
    const uint8_t pay[4] = { 1, 2, 3, 4 };
    g_assert_cmpint (smc_wc_dec_add (d, UINT32_MAX, pay), ==, 0);
    g_assert_cmpint (smc_wc_dec_add (d, UINT32_MAX, pay), ==, 1);
    for (uint32_t i = 0; i < SMC_WC_MAX_HELD - 1; i++)
      g_assert_cmpint (smc_wc_dec_add (d, i * 7919u, pay), ==, 0);
    for (uint32_t i = 0; i < SMC_WC_MAX_HELD - 1; i += 97)
      g_assert_cmpint (smc_wc_dec_add (d, i * 7919u, pay), ==, 1);
    g_assert_cmpint (smc_wc_dec_add (d, UINT32_MAX, pay), ==, 1);
    g_assert_cmpuint (smc_wc_dec_held (d), ==, SMC_WC_MAX_HELD);
    g_assert_cmpint (smc_wc_dec_add (d, 5, pay), ==, -1);
    smc_wc_dec_free (d);
  }

  g_assert_null (smc_wc_dec_new (1, 0, 10));
  g_assert_null (smc_wc_dec_new (1, 10, 0));
  g_assert_null (smc_wc_dec_new (1, SMC_WC_MAX_K + 1, 10));
}

/* into buf: the combination of in (rows outputs set, then rows added to
 * 0x3c bytes), then one muladd into a copy of the first input */
static void
combine_all (uint32_t k, int rows, const uint8_t *coef, const uint8_t *const *in, uint8_t *buf, size_t len)
{
  uint8_t *o[8];
  for (int add = 0; add <= 1; add++) {
    for (int r = 0; r < rows; r++) {
      o[r] = buf + (add * rows + r) * len;
      memset (o[r], 0x3c, len);
    }
    smc_gf_combine (k, rows, coef, in, o, len, add);
  }
  memcpy (buf + 2 * rows * len, in[0], len);
  smc_gf_muladd (buf + 2 * rows * len, in[1], 0x53, len);
}

/* every backend gives the same bytes as the tables, over more than 256
 * inputs (slices), with and without adding to the output */
static void
test_wc_combine_backends (void)
{
  static const size_t lens[] = { 1, 63, 64, 65, 1458 };
  const uint32_t k = 600;
  const int rows = 7;
  for (size_t li = 0; li < G_N_ELEMENTS (lens); li++) {
    size_t len = lens[li];
    g_autofree uint8_t *data = g_malloc (k * len);
    g_autofree uint8_t *coef = g_malloc (k * rows);
    g_autofree uint8_t *ref = g_malloc ((2 * rows + 1) * len);
    g_autofree uint8_t *got = g_malloc ((2 * rows + 1) * len);
    g_autofree const uint8_t **in = g_new (const uint8_t *, k);
    for (size_t i = 0; i < k * len; i++)
      data[i] = (uint8_t) (i * 37 + i / 7 * 11);
    for (size_t i = 0; i < k * rows; i++)
      coef[i] = (uint8_t) (i % 5 == 0 ? 0 : i * 13 + 1);
    for (uint32_t i = 0; i < k; i++)
      in[i] = data + i * len;
    g_assert_cmpint (smc_fec_set_backend (SMC_FEC_TABLES), ==, 0);
    combine_all (k, rows, coef, in, ref, len);
    for (int b = SMC_FEC_AUTO; b < SMC_FEC_N_BACKENDS; b++) {
      if (smc_fec_set_backend (b) != 0)
        continue;
      combine_all (k, rows, coef, in, got, len);
      g_assert_cmpmem (got, (2 * rows + 1) * len, ref, (2 * rows + 1) * len);
    }
  }
  /* more than 256 outputs (ISA-L takes 256 at most) */
  {
    const uint32_t n = 10;
    const int many = 300;
    const size_t len = 65;
    g_autofree uint8_t *data = g_malloc (n * len);
    g_autofree uint8_t *coef = g_malloc (n * many);
    g_autofree uint8_t *ref = g_malloc (many * len);
    g_autofree uint8_t *got = g_malloc (many * len);
    g_autofree const uint8_t **in = g_new (const uint8_t *, n);
    g_autofree uint8_t **o = g_new (uint8_t *, many);
    for (size_t i = 0; i < n * len; i++)
      data[i] = (uint8_t) (i * 11 + 5);
    for (size_t i = 0; i < n * (size_t) many; i++)
      coef[i] = (uint8_t) (i * 7 + i / 9);
    for (uint32_t i = 0; i < n; i++)
      in[i] = data + i * len;
    g_assert_cmpint (smc_fec_set_backend (SMC_FEC_TABLES), ==, 0);
    for (int r = 0; r < many; r++)
      o[r] = ref + r * len;
    smc_gf_combine (n, many, coef, in, o, len, 0);
    for (int b = SMC_FEC_AUTO; b < SMC_FEC_N_BACKENDS; b++) {
      if (smc_fec_set_backend (b) != 0)
        continue;
      for (int r = 0; r < many; r++)
        o[r] = got + r * len;
      memset (got, 0, many * len);
      smc_gf_combine (n, many, coef, in, o, len, 0);
      g_assert_cmpmem (got, many * len, ref, many * len);
    }
  }
  /* one output from more inputs than a slice, sparse or dense: the paths
   * a row of the window code takes */
  for (uint32_t n = 100; n <= 5000; n += 4900) {
    const size_t len = 1458;
    g_autofree uint8_t *data = g_malloc (n * len);
    g_autofree uint8_t *coef = g_malloc (n);
    g_autofree uint8_t *ref = g_malloc (len);
    g_autofree uint8_t *got = g_malloc (len);
    g_autofree const uint8_t **in = g_new (const uint8_t *, n);
    for (size_t i = 0; i < n * len; i++)
      data[i] = (uint8_t) (i * 29 + i / 13);
    for (uint32_t i = 0; i < n; i++) {
      coef[i] = (uint8_t) (i % 7 == 0 ? 0 : i * 5 + 3);
      in[i] = data + i * len;
    }
    for (int add = 0; add <= 1; add++) {
      g_assert_cmpint (smc_fec_set_backend (SMC_FEC_TABLES), ==, 0);
      memset (ref, 0x5a, len);
      smc_gf_combine (n, 1, coef, in, &ref, len, add);
      for (int b = SMC_FEC_AUTO; b < SMC_FEC_N_BACKENDS; b++) {
        if (smc_fec_set_backend (b) != 0)
          continue;
        memset (got, 0x5a, len);
        smc_gf_combine (n, 1, coef, in, &got, len, add);
        g_assert_cmpmem (got, len, ref, len);
      }
    }
  }
  smc_fec_set_backend (SMC_FEC_AUTO);
  /* the field: a * a^-1 = 1, scale by c is muladd into zeros */
  for (int a = 1; a < 256; a++)
    g_assert_cmpuint (smc_gf_mul ((uint8_t) a, smc_gf_inv ((uint8_t) a)), ==, 1);
  {
    uint8_t x[3] = { 1, 2, 0x80 }, y[3] = { 0 };
    smc_gf_muladd (y, x, 0x1d, 3);
    smc_gf_scale (x, 0x1d, 3);
    g_assert_cmpmem (x, 3, y, 3);
    g_assert_cmpuint (x[2], ==, smc_gf_mul (0x80, 0x1d));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/multicast/wc/rows", test_wc_rows);
  g_test_add_func ("/shoal/multicast/wc/roundtrip", test_wc_roundtrip);
  g_test_add_func ("/shoal/multicast/wc/dense", test_wc_dense);
  g_test_add_func ("/shoal/multicast/wc/short", test_wc_short);
  g_test_add_func ("/shoal/multicast/wc/combine-backends", test_wc_combine_backends);
  return g_test_run ();
}
