/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-fec.c: Cauchy Reed-Solomon over GF(2^8), ISA-L or portable */
#include "shoal-mcast-fec.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_ISAL
#include <isa-l/erasure_code.h>
#endif

static uint8_t gf_exp[512];
static uint8_t gf_log[256];
static uint8_t smc_gf_mul_tbl[256][256];
static pthread_once_t gf_once = PTHREAD_ONCE_INIT;
static int backend = SMC_FEC_AUTO;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_GFNI_KERNEL 1
static uint64_t gfni_mats[256];   /* gfni_matrix (c), filled by gf_init */

/* x -> c*x is linear over GF(2): one 8x8 bit matrix per coefficient, applied
 * to 32 bytes at once by GF2P8AFFINEQB (any polynomial, here 0x11d) */
static uint64_t
gfni_matrix (uint8_t c)
{
  uint64_t m = 0;
  for (int i = 0; i < 8; i++) {
    uint64_t row = 0;
    for (int j = 0; j < 8; j++)
      row |= (uint64_t) ((smc_gf_mul_tbl[c][1u << j] >> i) & 1) << j;
    m |= row << (8 * (7 - i));
  }
  return m;
}

__attribute__ ((target ("avx2,gfni"))) static void
gfni_muladd (uint8_t *dst, const uint8_t *src, uint64_t mat, size_t len)
{
  __m256i a = _mm256_set1_epi64x ((long long) mat);
  size_t i = 0;
  for (; i + 32 <= len; i += 32) {
    __m256i x = _mm256_loadu_si256 ((const __m256i *) (src + i));
    __m256i d = _mm256_loadu_si256 ((const __m256i *) (dst + i));
    d = _mm256_xor_si256 (d, _mm256_gf2p8affine_epi64_epi8 (x, a, 0));
    _mm256_storeu_si256 ((__m256i *) (dst + i), d);
  }
  for (; i < len; i++) {
    uint8_t x = src[i], y = 0;
    for (int b = 0; b < 8; b++)
      y |= (uint8_t) (__builtin_parity ((unsigned) ((mat >> (8 * (7 - b))) & 0xff) & x) << b);
    dst[i] ^= y;
  }
}

static int
have_gfni (void)
{
  static int cached = -1;
  if (cached < 0) {
    __builtin_cpu_init ();
    cached = __builtin_cpu_supports ("gfni") && __builtin_cpu_supports ("avx2");
  }
  return cached;
}

static int
have_gfni512 (void)
{
  static int cached = -1;
  if (cached < 0) {
    __builtin_cpu_init ();
    cached = have_gfni () && __builtin_cpu_supports ("avx512f") &&
             __builtin_cpu_supports ("avx512bw");
  }
  return cached;
}

/* clang 14 folds the broadcast of a matrix loaded from memory into
 * VGF2P8AFFINEQB's operand with the wrong displacement scale (the next
 * input's matrix is read 8 entries too far: wrong bytes, no fault, for
 * any k > 1 once the loop is unrolled): the value goes through a register */
static inline long long
gfni_reg (uint64_t v)
{
  long long x = (long long) v;
#ifdef __clang__
  __asm__ ("" : "+r" (x));
#endif
  return x;
}

/* NR output rows at once: each 64-byte stripe of every input is loaded once
 * and folded into NR accumulators held in registers, so the outputs are
 * written once instead of once per input (what ISA-L 2.31 does with GFNI;
 * Debian 12's ISA-L 2.30 has table kernels only). The k inputs are k
 * streams, more than the hardware prefetcher follows: each is prefetched
 * two stripes ahead, which makes decoding a block that is no longer in
 * cache (the receiver's case) 2.5-7x faster here. */
#define SMC_GFNI512_ROWS(NR)                                                        \
  __attribute__ ((target ("avx512f,avx512bw,gfni"))) static void                  \
  gfni512_rows##NR (int k, const uint64_t *mat, const uint8_t *const *in,          \
                    uint8_t *const *out, size_t len, int add)                       \
  {                                                                                 \
    for (size_t i = 0; i < len; i += 64) {                                          \
      __mmask64 m = len - i >= 64 ? ~(__mmask64) 0 : (((__mmask64) 1 << (len - i)) - 1); \
      __m512i acc[NR];                                                              \
      for (int r = 0; r < NR; r++)                                                  \
        acc[r] = _mm512_maskz_loadu_epi8 (add ? m : 0, out[r] + i);                   \
      for (int c = 0; c < k; c++) {                                                 \
        __m512i x;                                                                  \
        if (i + 128 < len)                                                          \
          _mm_prefetch ((const char *) (in[c] + i + 128), _MM_HINT_T0);             \
        x = _mm512_maskz_loadu_epi8 (m, in[c] + i);                                 \
        for (int r = 0; r < NR; r++)                                                \
          acc[r] = _mm512_xor_si512 (acc[r], _mm512_gf2p8affine_epi64_epi8 (        \
                       x, _mm512_set1_epi64 (gfni_reg (mat[r * k + c])), 0));       \
      }                                                                             \
      for (int r = 0; r < NR; r++)                                                  \
        _mm512_mask_storeu_epi8 (out[r] + i, m, acc[r]);                            \
    }                                                                               \
  }
SMC_GFNI512_ROWS (1)
SMC_GFNI512_ROWS (2)
SMC_GFNI512_ROWS (3)
SMC_GFNI512_ROWS (4)
SMC_GFNI512_ROWS (5)
SMC_GFNI512_ROWS (6)

__attribute__ ((target ("avx512f,avx512bw,gfni"))) static void
gfni512_muladd (uint8_t *dst, const uint8_t *src, uint64_t mat, size_t len)
{
  __m512i a = _mm512_set1_epi64 ((long long) mat);
  for (size_t i = 0; i < len; i += 64) {
    __mmask64 m = len - i >= 64 ? ~(__mmask64) 0 : (((__mmask64) 1 << (len - i)) - 1);
    __m512i x = _mm512_maskz_loadu_epi8 (m, src + i), d = _mm512_maskz_loadu_epi8 (m, dst + i);
    _mm512_mask_storeu_epi8 (dst + i, m, _mm512_xor_si512 (d, _mm512_gf2p8affine_epi64_epi8 (x, a, 0)));
  }
}

/* k <= 256 inputs; add: out[r] ^= the combination, else out[r] = it */
static void
gfni512_combine (int k, int rows, const uint8_t *coef, int stride, const uint8_t *const *in,
                 uint8_t *const *out, size_t len, int add)
{
  static void (*const fn[]) (int, const uint64_t *, const uint8_t *const *,
                             uint8_t *const *, size_t, int) = {
    gfni512_rows1, gfni512_rows2, gfni512_rows3, gfni512_rows4, gfni512_rows5, gfni512_rows6,
  };
  uint64_t mat[6 * 256];
  for (int r0 = 0; r0 < rows; r0 += 6) {
    int nr = rows - r0 < 6 ? rows - r0 : 6;
    for (int r = 0; r < nr; r++)
      for (int c = 0; c < k; c++)
        mat[r * k + c] = gfni_mats[coef[(size_t) (r0 + r) * stride + c]];
    fn[nr - 1] (k, mat, in, out + r0, len, add);
  }
}
#endif

static void
gf_init (void)
{
  unsigned x = 1;
  for (int i = 0; i < 255; i++) {
    gf_exp[i] = (uint8_t) x;
    gf_log[x] = (uint8_t) i;
    x <<= 1;
    if (x & 0x100)
      x ^= 0x11d;
  }
  for (int i = 255; i < 512; i++)
    gf_exp[i] = gf_exp[i - 255];
  for (int a = 0; a < 256; a++)
    for (int b = 0; b < 256; b++)
      smc_gf_mul_tbl[a][b] = (a == 0 || b == 0) ? 0 : gf_exp[gf_log[a] + gf_log[b]];
#ifdef HAVE_GFNI_KERNEL
  for (int c = 0; c < 256; c++)
    gfni_mats[c] = gfni_matrix ((uint8_t) c);
#endif
}

static inline uint8_t gfm (uint8_t a, uint8_t b) { return smc_gf_mul_tbl[a][b]; }
static inline uint8_t gfi (uint8_t a) { return a == 0 ? 0 : gf_exp[255 - gf_log[a]]; }

int
smc_fec_backend_available (int b)
{
  switch (b) {
  case SMC_FEC_AUTO:
  case SMC_FEC_TABLES:
    return 1;
  case SMC_FEC_ISAL:
#ifdef HAVE_ISAL
    return 1;
#else
    return 0;
#endif
#ifdef HAVE_GFNI_KERNEL
  case SMC_FEC_GFNI256:
    return have_gfni ();
  case SMC_FEC_GFNI512:
    return have_gfni512 ();
#endif
  default:
    return 0;
  }
}

int
smc_fec_set_backend (int b)
{
  if (!smc_fec_backend_available (b))
    return -1;
  backend = b;
  return 0;
}

static int
effective_backend (void)
{
  static const int order[] = { SMC_FEC_GFNI512, SMC_FEC_ISAL, SMC_FEC_GFNI256 };
  if (backend != SMC_FEC_AUTO)
    return backend;
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    if (smc_fec_backend_available (order[i]))
      return order[i];
  return SMC_FEC_TABLES;
}

static const char *const backend_names[SMC_FEC_N_BACKENDS] = {
  [SMC_FEC_AUTO] = "auto", [SMC_FEC_GFNI512] = "gfni-avx512", [SMC_FEC_ISAL] = "isa-l",
  [SMC_FEC_GFNI256] = "gfni-avx2", [SMC_FEC_TABLES] = "tables",
};

const char *
smc_fec_backend_name (void)
{
  return backend_names[effective_backend ()];
}

int
smc_fec_backend_from_name (const char *name)
{
  for (int b = 0; b < SMC_FEC_N_BACKENDS; b++)
    if (strcmp (name, backend_names[b]) == 0)
      return b;
  return -1;
}

const char *
smc_fec_select (const char *name)
{
  int b = smc_fec_backend_from_name (name);
  if (b < 0)
    return "unknown FEC backend";
  if (smc_fec_set_backend (b) < 0)
    return "this CPU or build has no FEC backend";
  return NULL;
}

/* out[r] (^)= sum_c coef[r*stride + c] * in[c], c < k <= 256 */
static void
combine_slice (int k, int rows, const uint8_t *coef, int stride, const uint8_t *const *in,
               uint8_t *const *out, size_t len, int add)
{
  switch (effective_backend ()) {
#ifdef HAVE_GFNI_KERNEL
  case SMC_FEC_GFNI512:
    gfni512_combine (k, rows, coef, stride, in, out, len, add);
    return;
  case SMC_FEC_GFNI256:
    for (int r = 0; r < rows; r++) {
      if (!add)
        memset (out[r], 0, len);
      for (int c = 0; c < k; c++)
        if (coef[(size_t) r * stride + c] != 0)
          gfni_muladd (out[r], in[c], gfni_mats[coef[(size_t) r * stride + c]], len);
    }
    return;
#endif
#ifdef HAVE_ISAL
  case SMC_FEC_ISAL: {
    uint8_t *tbl = malloc ((size_t) 32 * k * rows), *dense = malloc ((size_t) k * rows);
    uint8_t *tmp = add ? malloc ((size_t) rows * len) : NULL;
    uint8_t *tout[256];
    if (tbl != NULL && dense != NULL && (!add || tmp != NULL) && rows <= 256) {
      for (int r = 0; r < rows; r++) {
        memcpy (dense + (size_t) r * k, coef + (size_t) r * stride, (size_t) k);
        tout[r] = add ? tmp + (size_t) r * len : out[r];
      }
      ec_init_tables (k, rows, dense, tbl);
      ec_encode_data ((int) len, k, rows, tbl, (unsigned char **) in, tout);
      for (int r = 0; r < rows && add; r++)
        for (size_t i = 0; i < len; i++)
          out[r][i] ^= tout[r][i];
      free (tbl);
      free (dense);
      free (tmp);
#if defined(__x86_64__) && defined(__GNUC__)
      /* ISA-L's AVX code (it picks it when the CPU has AVX, which
       * VZEROUPPER needs too) returns with the upper halves of the vector
       * registers dirty; legacy-SSE code after it (the chunk hashes) would
       * run 2.6 times slower */
      if (__builtin_cpu_supports ("avx"))
        __asm__ volatile ("vzeroupper" ::: "memory");
#endif
      return;
    }
    free (tbl);
    free (dense);
    free (tmp);
    break;
  }
#endif
  default:
    break;
  }
  for (int r = 0; r < rows; r++) {
    uint8_t *o = out[r];
    if (!add)
      memset (o, 0, len);
    for (int c = 0; c < k; c++) {
      uint8_t f = coef[(size_t) r * stride + c];
      const uint8_t *t = smc_gf_mul_tbl[f];
      const uint8_t *s = in[c];
      if (f == 0)
        continue;
      for (size_t i = 0; i < len; i++)
        o[i] ^= t[s[i]];
    }
  }
}

/* out[r] = sum_c coef[r*k + c] * in[c] */
static void
region_combine (int k, int rows, const uint8_t *coef, const uint8_t *const *in,
                uint8_t *const *out, size_t len)
{
  combine_slice (k, rows, coef, k, in, out, len, 0);
}

void
smc_gf_combine (size_t k, int rows, const uint8_t *coef, const uint8_t *const *in,
                uint8_t *const *out, size_t len, int add)
{
  pthread_once (&gf_once, gf_init);
  if (k == 0 && !add)
    for (int r = 0; r < rows; r++)
      memset (out[r], 0, len);
#ifdef HAVE_GFNI_KERNEL
  /* one output from more inputs than the caches hold (a dense row of the
   * window code): the output stays in L1 and each input is read once,
   * whole, where the kernels go stripe by stripe over their inputs and
   * fetch each input again for every 64-byte stripe (28-35 against 22
   * GB/s here for 11,507 inputs of 1458 bytes: shoal-mcast-wc-sim
   * --combine) */
  if (rows == 1 && k > 4096 && effective_backend () == SMC_FEC_GFNI512) {
    if (!add)
      memset (out[0], 0, len);
    for (size_t c = 0; c < k; c++)
      if (coef[c] != 0)
        gfni512_muladd (out[0], in[c], gfni_mats[coef[c]], len);
    return;
  }
#endif
  /* one output: 64 inputs at a time, which stay in L1 from one stripe to
   * the next (a row of 256 symbols of 1458 bytes: 24-30 against 13-15
   * GB/s) */
  size_t step = rows == 1 ? 64 : 256;
  /* and at most 256 outputs at a time (ISA-L's limit) */
  for (int r0 = 0; r0 < rows; r0 += 256) {
    int nr = rows - r0 < 256 ? rows - r0 : 256;
    for (size_t c0 = 0; c0 < k; c0 += step) {
      int n = k - c0 < step ? (int) (k - c0) : (int) step;
      uint8_t *slice = malloc ((size_t) nr * n);
      if (slice == NULL)
        abort ();
      for (int r = 0; r < nr; r++)
        memcpy (slice + (size_t) r * n, coef + (size_t) (r0 + r) * k + c0, (size_t) n);
      combine_slice (n, nr, slice, n, in + c0, out + r0, len, add || c0 > 0);
      free (slice);
    }
  }
}

void
smc_gf_muladd (uint8_t *dst, const uint8_t *src, uint8_t c, size_t len)
{
  pthread_once (&gf_once, gf_init);
  if (c == 0)
    return;
#ifdef HAVE_GFNI_KERNEL
  if (effective_backend () == SMC_FEC_GFNI512) {
    gfni512_muladd (dst, src, gfni_mats[c], len);
    return;
  }
  if (effective_backend () != SMC_FEC_TABLES && have_gfni ()) {
    gfni_muladd (dst, src, gfni_mats[c], len);
    return;
  }
#endif
  {
    const uint8_t *t = smc_gf_mul_tbl[c];
    for (size_t i = 0; i < len; i++)
      dst[i] ^= t[src[i]];
  }
}

void
smc_gf_scale (uint8_t *buf, uint8_t c, size_t len)
{
  const uint8_t *t;
  pthread_once (&gf_once, gf_init);
  t = smc_gf_mul_tbl[c];
  for (size_t i = 0; i < len; i++)
    buf[i] = t[buf[i]];
}

uint8_t
smc_gf_mul (uint8_t a, uint8_t b)
{
  pthread_once (&gf_once, gf_init);
  return smc_gf_mul_tbl[a][b];
}

uint8_t
smc_gf_inv (uint8_t a)
{
  pthread_once (&gf_once, gf_init);
  return a == 0 ? 0 : gf_exp[255 - gf_log[a]];
}

static inline uint8_t
cauchy (int k, int j, int c)
{
  return gfi ((uint8_t) ((k + j) ^ c));
}

int
smc_fec_encode (int k, const uint8_t *const *src, int j0, int rows,
                uint8_t *const *out, size_t len)
{
  uint8_t *coef;
  pthread_once (&gf_once, gf_init);
  if (k < 1 || rows < 1 || j0 < 0 || k + j0 + rows > 256)
    return -1;
  coef = malloc ((size_t) rows * k);
  if (coef == NULL)
    return -1;
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < k; c++)
      coef[r * k + c] = cauchy (k, j0 + r, c);
  region_combine (k, rows, coef, src, out, len);
  free (coef);
  return 0;
}

/* invert the e x e matrix a in place; -1 if singular */
static int
smc_gf_invert (uint8_t *a, int e)
{
  uint8_t *b = calloc ((size_t) e * e, 1);
  if (b == NULL)
    return -1;
  for (int i = 0; i < e; i++)
    b[i * e + i] = 1;
  for (int col = 0; col < e; col++) {
    int piv = col;
    uint8_t f;
    while (piv < e && a[piv * e + col] == 0)
      piv++;
    if (piv == e) {
      free (b);
      return -1;
    }
    for (int c = 0; c < e && piv != col; c++) {
      uint8_t t = a[col * e + c]; a[col * e + c] = a[piv * e + c]; a[piv * e + c] = t;
      t = b[col * e + c]; b[col * e + c] = b[piv * e + c]; b[piv * e + c] = t;
    }
    f = gfi (a[col * e + col]);
    for (int c = 0; c < e; c++) {
      a[col * e + c] = gfm (a[col * e + c], f);
      b[col * e + c] = gfm (b[col * e + c], f);
    }
    for (int r = 0; r < e; r++) {
      uint8_t m = a[r * e + col];
      if (r == col || m == 0)
        continue;
      for (int c = 0; c < e; c++) {
        a[r * e + c] ^= gfm (m, a[col * e + c]);
        b[r * e + c] ^= gfm (m, b[col * e + c]);
      }
    }
  }
  memcpy (a, b, (size_t) e * e);
  free (b);
  return 0;
}

/* s_E = A^-1 (p_P + C[P][notE] s_notE), A = C[P][E]: decode is one e x k combine */
int
smc_fec_decode (int k, const uint8_t *const *src, int e, const uint8_t *pidx,
                const uint8_t *const *par, uint8_t *const *out, size_t len)
{
  int miss[256], have[256], nm = 0, nh = 0, rc = -1;
  uint8_t *a, *coef;
  const uint8_t **in;
  pthread_once (&gf_once, gf_init);
  if (k < 1 || k > 255 || e < 0 || e > k)
    return -1;
  for (int c = 0; c < k; c++) {
    if (src[c] == NULL)
      miss[nm++] = c;
    else
      have[nh++] = c;
  }
  if (nm != e)
    return -1;
  if (e == 0)
    return 0;
  for (int i = 0; i < e; i++)
    if (k + pidx[i] > 255)
      return -1;
  a = malloc ((size_t) e * e);
  coef = calloc ((size_t) e * k, 1);
  in = malloc (sizeof *in * (size_t) k);
  if (a != NULL && coef != NULL && in != NULL) {
    for (int r = 0; r < e; r++)
      for (int c = 0; c < e; c++)
        a[r * e + c] = cauchy (k, pidx[r], miss[c]);
    if (smc_gf_invert (a, e) == 0) {
      /* inputs: e parity symbols, then the k - e present source symbols */
      for (int i = 0; i < e; i++)
        in[i] = par[i];
      for (int i = 0; i < nh; i++)
        in[e + i] = src[have[i]];
      for (int r = 0; r < e; r++) {
        for (int i = 0; i < e; i++)
          coef[r * k + i] = a[r * e + i];
        for (int h = 0; h < nh; h++) {
          uint8_t acc = 0;
          for (int i = 0; i < e; i++)
            acc ^= gfm (a[r * e + i], cauchy (k, pidx[i], have[h]));
          coef[r * k + e + h] = acc;
        }
      }
      region_combine (k, e, coef, in, out, len);
      rc = 0;
    }
  }
  free (a);
  free (coef);
  free (in);
  return rc;
}
