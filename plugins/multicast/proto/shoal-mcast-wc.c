/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-wc.c: the window code (see shoal-mcast-wc.h) */
#include "shoal-mcast-wc.h"

#include "shoal-mcast-fec.h"

#include <stdlib.h>
#include <string.h>

/* 2^(i/16) in 16.16 fixed point, rounded down: the degree scale's steps */
static const uint32_t degree_mant[16] = {
  65536, 68437, 71467, 74631, 77935, 81386, 84989, 88752,
  92681, 96785, 101070, 105545, 110217, 115097, 120193, 125514,
};

static uint32_t
degree_unbounded (uint8_t code)
{
  return (uint32_t) (((uint64_t) degree_mant[code & 15] << (code >> 4)) * 8 >> 16);
}

uint32_t
smc_wc_degree_of_code (uint32_t k, uint8_t code)
{
  uint32_t d = degree_unbounded (code);
  return d < k ? d : k;
}

/* ln x within 0.01 for x >= 1, without libm (not in the static agent's
 * link): ln 2 * (e + log2 m), m = x / 2^e in [1, 2), log2 m by a parabola */
static double
ln_approx (uint32_t x)
{
  int e = 31 - __builtin_clz (x);
  double m = (double) x / (double) (1u << e) - 1.0;
  return 0.693147 * ((double) e + m * (1.3465 - 0.3465 * m));
}

uint8_t
smc_wc_degree_code (uint32_t k, uint32_t missing)
{
  double want;
  if (missing == 0)
    missing = 1;
  want = (double) k * (ln_approx (missing) + 6.0) / (double) missing;
  for (int c = 0; c < 256; c++)
    if (degree_unbounded ((uint8_t) c) >= want || degree_unbounded ((uint8_t) c) >= k)
      return (uint8_t) c;
  return 255;
}

/* ---------------- rows ---------------- */

/* splitmix64: the rows must be the same on every receiver, whatever its
 * libc: integer arithmetic only */
static uint64_t
mix (uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* uniform in [0, n) */
static uint32_t
below (uint64_t *s, uint32_t n)
{
  return (uint32_t) (((mix (s) >> 32) * n) >> 32);
}

/* row `id` of a window of k: its degree d, then d distinct values below k
 * drawn one after the other (a value drawn again is drawn anew), or, when
 * d is more than half of k, the k - d values left out drawn that way;
 * listed in ascending order; then one coefficient in 1..255 for each, in
 * that order */
int
smc_wc_row (uint64_t seed, uint32_t k, uint32_t id, uint32_t *idx, uint8_t *coef)
{
  uint64_t s = seed ^ ((uint64_t) id * 0xd6e8feb86659fd93ull);
  uint32_t d, m, n = 0;
  uint64_t *bits;
  int invert;
  if (k == 0 || k > SMC_WC_MAX_K)
    return -1;
  d = smc_wc_degree (k, id);
  invert = d > k - d;
  m = invert ? k - d : d;
  bits = calloc ((k + 63) / 64, sizeof *bits);
  if (bits == NULL)
    return -1;
  mix (&s);
  for (uint32_t drawn = 0; drawn < m;) {
    uint32_t v = below (&s, k);
    uint64_t b = 1ull << (v & 63);
    if (bits[v >> 6] & b)
      continue;
    bits[v >> 6] |= b;
    drawn++;
  }
  for (uint32_t w = 0; w < (k + 63) / 64; w++) {
    uint64_t x = invert ? ~bits[w] : bits[w];
    if (invert && w == (k - 1) / 64 && (k & 63) != 0)
      x &= (1ull << (k & 63)) - 1;
    while (x != 0) {
      idx[n++] = w * 64 + (uint32_t) __builtin_ctzll (x);
      x &= x - 1;
    }
  }
  free (bits);
  for (uint32_t i = 0; i < d; i++)
    coef[i] = (uint8_t) (1 + below (&s, 255));
  return (int) d;
}

int
smc_wc_encode (uint64_t seed, uint32_t k, const uint8_t *const *src, uint32_t id,
               uint8_t *out, size_t len)
{
  uint32_t d = k == 0 ? 0 : smc_wc_degree (k, id);
  uint32_t *idx = malloc (sizeof *idx * (d + 1));
  uint8_t *coef = malloc (d + 1);
  const uint8_t **in = malloc (sizeof *in * (d + 1));
  int rc = -1;
  if (idx != NULL && coef != NULL && in != NULL && smc_wc_row (seed, k, id, idx, coef) == (int) d) {
    for (uint32_t i = 0; i < d; i++)
      in[i] = src[idx[i]];
    smc_gf_combine (d, 1, coef, in, &out, len, 0);
    rc = 0;
  }
  free (idx);
  free (coef);
  free (in);
  return rc;
}

/* Rows that cover at least a quarter of a window of at most
 * SMC_WC_DENSE_K symbols (a 2 MiB window at MTU 9000: 236 symbols, rows
 * of 170 or more) are combined together, as a matrix with zeros where a
 * row has no term: each source symbol is read once for six rows by the
 * multi-row kernel, not once per row (the rows of a round, read one by
 * one, went through the caches as many times as there were rows). Sparse
 * rows (a 16 MiB window's) stay one at a time: their zeros would cost
 * more than the reads they save. */
#define SMC_WC_DENSE_K 2048u

static int
dense_enough (uint64_t terms, uint32_t rows, uint32_t cols)
{
  return rows > 1 && cols > 0 && cols <= SMC_WC_DENSE_K && terms * 4 >= (uint64_t) rows * cols;
}

int
smc_wc_encode_many (uint64_t seed, uint32_t k, const uint8_t *const *src, const uint32_t *ids, uint32_t n,
                    uint8_t *const *out, size_t len)
{
  uint64_t terms = 0;
  uint32_t *idx;
  uint8_t *coef, *M;
  int rc = 0;
  for (uint32_t i = 0; i < n; i++)
    terms += k == 0 ? 0 : smc_wc_degree (k, ids[i]);
  if (!dense_enough (terms, n, k)) {
    for (uint32_t i = 0; i < n; i++)
      if (smc_wc_encode (seed, k, src, ids[i], out[i], len) < 0)
        rc = -1;
    return rc;
  }
  idx = malloc (sizeof *idx * k);
  coef = malloc (k);
  M = calloc ((size_t) n, k);
  if (idx == NULL || coef == NULL || M == NULL)
    rc = -1;
  for (uint32_t i = 0; i < n && rc == 0; i++) {
    int dg = smc_wc_row (seed, k, ids[i], idx, coef);
    if (dg < 0)
      rc = -1;
    for (int e = 0; e < dg; e++)
      M[(size_t) i * k + idx[e]] = coef[e];
  }
  if (rc == 0)
    smc_gf_combine (k, (int) n, M, src, out, len, 0);
  free (idx);
  free (coef);
  free (M);
  return rc;
}

/* ---------------- decoder ---------------- */

struct smc_wc_dec {
  uint64_t seed;
  uint32_t k;
  size_t len;
  uint32_t n, cap;
  uint32_t *ids;
  uint8_t **pay;
  uint32_t *seen;        /* the ids held, open addressing (2 * cap slots);
                          * UINT32_MAX free (that id is looked for in ids) */
  int32_t *col;          /* k entries: the column of a missing symbol, -1 */
  uint64_t ops;
};

smc_wc_dec *
smc_wc_dec_new (uint64_t seed, uint32_t k, size_t len)
{
  smc_wc_dec *d;
  if (k == 0 || k > SMC_WC_MAX_K || len == 0)
    return NULL;
  d = calloc (1, sizeof *d);
  if (d == NULL)
    return NULL;
  d->seed = seed;
  d->k = k;
  d->len = len;
  return d;
}

static void
release (smc_wc_dec *d)
{
  for (uint32_t i = 0; i < d->n; i++)
    free (d->pay[i]);
  d->n = 0;
  if (d->seen != NULL)
    memset (d->seen, 0xff, sizeof *d->seen * 2 * d->cap);
}

static uint32_t
seen_slot (const smc_wc_dec *d, uint32_t id)
{
  uint32_t mask = 2 * d->cap - 1, h = (id * 0x9e3779b1u) & mask;
  while (d->seen[h] != UINT32_MAX && d->seen[h] != id)
    h = (h + 1) & mask;
  return h;
}

/* whether id is held: UINT32_MAX, which the table cannot hold, by a scan */
static int
held (const smc_wc_dec *d, uint32_t id)
{
  if (d->n == 0)
    return 0;
  if (id == UINT32_MAX) {
    for (uint32_t i = 0; i < d->n; i++)
      if (d->ids[i] == id)
        return 1;
    return 0;
  }
  return d->seen[seen_slot (d, id)] == id;
}

void
smc_wc_dec_free (smc_wc_dec *d)
{
  if (d == NULL)
    return;
  release (d);
  free (d->ids);
  free (d->pay);
  free (d->seen);
  free (d->col);
  free (d);
}

int
smc_wc_dec_add (smc_wc_dec *d, uint32_t id, const uint8_t *payload)
{
  if (held (d, id))
    return 1;
  if (d->n >= SMC_WC_MAX_HELD)
    return -1;
  if (d->n == d->cap) {
    uint32_t cap = d->cap ? d->cap * 2 : 64;
    uint32_t *ids = realloc (d->ids, sizeof *ids * cap), *seen;
    uint8_t **pay;
    if (ids == NULL)
      return -1;
    d->ids = ids;
    pay = realloc (d->pay, sizeof *pay * cap);
    if (pay == NULL)
      return -1;
    d->pay = pay;
    seen = malloc (sizeof *seen * 2 * cap);
    if (seen == NULL)
      return -1;
    free (d->seen);
    d->seen = seen;
    d->cap = cap;
    memset (d->seen, 0xff, sizeof *d->seen * 2 * cap);
    for (uint32_t i = 0; i < d->n; i++)
      if (d->ids[i] != UINT32_MAX)
        d->seen[seen_slot (d, d->ids[i])] = d->ids[i];
  }
  d->pay[d->n] = malloc (d->len);
  if (d->pay[d->n] == NULL)
    return -1;
  memcpy (d->pay[d->n], payload, d->len);
  if (id != UINT32_MAX)
    d->seen[seen_slot (d, id)] = id;
  d->ids[d->n++] = id;
  return 0;
}

uint32_t smc_wc_dec_held (const smc_wc_dec *d) { return d->n; }
uint64_t smc_wc_dec_last_ops (const smc_wc_dec *d) { return d->ops; }

/* The solve's subtraction of the known symbols from the L selected repair
 * symbols sel[], one row at a time; in[] has room for a row's terms. idx
 * and coef have room for a row. 0, or -1 when a row cannot be drawn */
static int
subtract_rows (smc_wc_dec *d, uint8_t *const *sym, const uint8_t *have, const uint32_t *sel, uint32_t L,
               uint32_t *idx, uint8_t *coef, const uint8_t **in)
{
  for (uint32_t i = 0; i < L; i++) {
    uint32_t t = sel[i], nk = 0;
    int dg = smc_wc_row (d->seed, d->k, d->ids[t], idx, coef);
    if (dg < 0)
      return -1;
    for (int e = 0; e < dg; e++)
      if (have[idx[e]]) {
        in[nk] = sym[idx[e]];
        coef[nk++] = coef[e];
      }
    smc_gf_combine (nk, 1, coef, in, &d->pay[t], d->len, 1);
    d->ops += nk;
  }
  return 0;
}

/* the same, the rows together as an L x (k - L) matrix over the known
 * symbols (in[] has room for them all; out[] for L pointers). d->col
 * holds the missing symbols' columns, and holds them alone again after */
static int
subtract_dense (smc_wc_dec *d, uint8_t *const *sym, const uint8_t *have, const uint32_t *sel, uint32_t L,
                uint32_t *idx, uint8_t *coef, const uint8_t **in, uint8_t **out)
{
  uint32_t nk = 0;
  int bad = 0;
  uint8_t *K = calloc ((size_t) L, d->k - L);
  if (K == NULL)
    return -1;
  for (uint32_t j = 0; j < d->k; j++)
    if (have[j]) {
      d->col[j] = (int32_t) nk;
      in[nk++] = sym[j];
    }
  for (uint32_t i = 0; i < L && !bad; i++) {
    int dg = smc_wc_row (d->seed, d->k, d->ids[sel[i]], idx, coef);
    bad = dg < 0;
    for (int e = 0; e < dg; e++)
      if (have[idx[e]]) {
        K[(size_t) i * nk + (uint32_t) d->col[idx[e]]] = coef[e];
        d->ops++;
      }
    out[i] = d->pay[sel[i]];
  }
  for (uint32_t j = 0; j < d->k; j++)
    if (have[j])
      d->col[j] = -1;
  if (!bad)
    smc_gf_combine (nk, (int) L, K, in, out, d->len, 1);
  free (K);
  return bad ? -1 : 0;
}

/* Gauss-Jordan on the held rows restricted to the L missing symbols, one
 * row at a time: each row carries, after its L coefficients, L more that
 * say which combination of the selected repair symbols it is. A row that
 * reduces to zero is dependent and set aside. With L independent rows,
 * back-substitution leaves, for each missing symbol, its combination of
 * the selected repair symbols: one L x L combine after the known symbols
 * are subtracted from those. */
int
smc_wc_dec_solve (smc_wc_dec *d, uint8_t *const *sym, const uint8_t *have, uint32_t *rank_out)
{
  uint32_t L = 0, rank = 0, W, maxd = 0, marked = 0, nin;
  uint32_t *U = NULL, *piv = NULL, *sel = NULL, *idx = NULL;
  int dense;
  uint8_t *basis = NULL, *row = NULL, *coef = NULL, *M = NULL;
  const uint8_t **in = NULL;
  uint8_t **out = NULL;
  int rc = -1;

  d->ops = 0;
  if (rank_out != NULL)
    *rank_out = 0;
  for (uint32_t j = 0; j < d->k; j++)
    L += have[j] == 0;
  if (L == 0) {
    release (d);
    return 0;
  }
  if (L > SMC_WC_MAX_MISSING)
    return -1;
  if (d->col == NULL) {
    d->col = malloc (sizeof *d->col * d->k);
    if (d->col == NULL)
      return -1;
    memset (d->col, 0xff, sizeof *d->col * d->k);
  }
  for (uint32_t i = 0; i < d->n; i++) {
    uint32_t g = smc_wc_degree (d->k, d->ids[i]);
    if (g > maxd)
      maxd = g;
  }
  W = 2 * L;
  U = malloc (sizeof *U * L);
  piv = malloc (sizeof *piv * L);
  sel = malloc (sizeof *sel * L);
  basis = malloc ((size_t) L * W);
  row = malloc (W);
  idx = malloc (sizeof *idx * (maxd + 1));
  coef = malloc (maxd + 1);
  if (U == NULL || piv == NULL || sel == NULL || basis == NULL || row == NULL || idx == NULL || coef == NULL)
    goto out;
  for (uint32_t j = 0; j < d->k; j++)
    if (!have[j]) {
      d->col[j] = (int32_t) marked;
      U[marked++] = j;
    }

  for (uint32_t t = 0; t < d->n && rank < L; t++) {
    int dg = smc_wc_row (d->seed, d->k, d->ids[t], idx, coef), nz = 0;
    uint32_t c;
    if (dg < 0)
      goto out;
    memset (row, 0, W);
    for (int e = 0; e < dg; e++)
      if (d->col[idx[e]] >= 0) {
        row[d->col[idx[e]]] = coef[e];
        nz++;
      }
    if (nz == 0)
      continue;
    row[L + rank] = 1;
    for (uint32_t p = 0; p < rank; p++) {
      uint8_t f = row[piv[p]];
      if (f != 0)
        smc_gf_muladd (row, basis + (size_t) p * W, f, W);
    }
    for (c = 0; c < L && row[c] == 0; c++)
      ;
    if (c == L)
      continue;  /* dependent on the rows already taken */
    smc_gf_scale (row, smc_gf_inv (row[c]), W);
    memcpy (basis + (size_t) rank * W, row, W);
    piv[rank] = c;
    sel[rank] = t;
    rank++;
  }
  if (rank_out != NULL)
    *rank_out = rank;
  if (rank < L) {
    rc = (int) (L - rank);
    goto out;
  }
  for (uint32_t p = rank; p-- > 0;)
    for (uint32_t q = 0; q < p; q++) {
      uint8_t f = basis[(size_t) q * W + piv[p]];
      if (f != 0)
        smc_gf_muladd (basis + (size_t) q * W, basis + (size_t) p * W, f, W);
    }

  /* subtract what is known from each selected repair symbol: the rows
   * together when dense enough (dense_enough), else one at a time */
  {
    uint64_t terms = 0;
    for (uint32_t i = 0; i < L; i++)
      terms += smc_wc_degree (d->k, d->ids[sel[i]]);
    dense = dense_enough (terms, L, d->k - L);
  }
  nin = dense ? d->k - L : maxd;
  in = malloc (sizeof *in * (nin > L ? nin : L));
  out = malloc (sizeof *out * L);
  M = malloc ((size_t) L * L);
  if (in == NULL || out == NULL || M == NULL ||
      (dense ? subtract_dense (d, sym, have, sel, L, idx, coef, in, out)
             : subtract_rows (d, sym, have, sel, L, idx, coef, in)) < 0)
    goto out;
  for (uint32_t p = 0; p < L; p++) {
    memcpy (M + (size_t) p * L, basis + (size_t) p * W + L, L);
    out[p] = sym[U[piv[p]]];
  }
  for (uint32_t i = 0; i < L; i++)
    in[i] = d->pay[sel[i]];
  smc_gf_combine (L, (int) L, M, in, out, d->len, 0);
  d->ops += (uint64_t) L * L;
  release (d);
  rc = 0;

out:
  for (uint32_t i = 0; i < marked; i++)
    d->col[U[i]] = -1;
  free (U);
  free (piv);
  free (sel);
  free (basis);
  free (row);
  free (idx);
  free (coef);
  free (in);
  free (out);
  free (M);
  return rc;
}
