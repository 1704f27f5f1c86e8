/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-sha.c: SHA-256 (FIPS 180-4) of up to four messages in one
 * pass with the SHA-NI instructions, of sixteen with AVX-512 (see the
 * header) */
#include "shoal-mcast-sha.h"

#include "shoal-mcast-proto.h"

#include <stdlib.h>
#include <string.h>

void
smc_sha256_multi_openssl (size_t n, const uint8_t *const *data, const size_t *len, uint8_t (*out)[32])
{
  for (size_t i = 0; i < n; i++)
    smc_sha256 (data[i], len[i], out[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

#define TGT __attribute__ ((target ("sha,sse4.1,ssse3")))
#define LANES_MAX 4

static int have_avx, have_x16;

int
smc_sha256_ni_available (void)
{
  static int cached = -1;
  if (cached < 0) {
    unsigned int a, b, c, d;
    int sse = __get_cpuid (1, &a, &b, &c, &d) && (c & bit_SSE4_1) && (c & bit_SSSE3);
    have_avx = sse && (c & bit_AVX) && (c & bit_OSXSAVE);
    cached = sse && __get_cpuid_count (7, 0, &a, &b, &c, &d) && (b & bit_SHA);
    /* AVX-512 F and BW, with the ZMM state enabled by the OS (XCR0) */
    if (cached && have_avx && (b & bit_AVX512F) && (b & bit_AVX512BW)) {
      unsigned int lo, hi;
      __asm__ ("xgetbv" : "=a" (lo), "=d" (hi) : "c" (0));
      have_x16 = (lo & 0xe6) == 0xe6 && getenv ("SHOAL_SHA_NO_X16") == NULL;
    }
  }
  return cached;
}

static const uint32_t K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* The state of one message lives in two registers in the order the
 * instructions want: s0 = {A, B, E, F}, s1 = {C, D, G, H}. */
typedef struct {
  __m128i s0, s1;
} state;

/* four rounds: message words w (+ the round constants of quad q) */
TGT static inline __attribute__ ((always_inline)) void
quad (state *st, __m128i w, int q)
{
  __m128i m = _mm_add_epi32 (w, _mm_loadu_si128 ((const __m128i *) &K[4 * q]));
  st->s1 = _mm_sha256rnds2_epu32 (st->s1, st->s0, m);
  st->s0 = _mm_sha256rnds2_epu32 (st->s0, st->s1, _mm_shuffle_epi32 (m, 0x0e));
}

/* the next four message-schedule words from the last sixteen */
TGT static inline __attribute__ ((always_inline)) __m128i
schedule (__m128i m0, __m128i m1, __m128i m2, __m128i m3)
{
  __m128i t = _mm_add_epi32 (_mm_sha256msg1_epu32 (m0, m1), _mm_alignr_epi8 (m3, m2, 4));
  return _mm_sha256msg2_epu32 (t, m3);
}

/* nblk 64-byte blocks of W messages (p[w] advanced), the W messages'
 * rounds interleaved so that each waits less for its previous round */
TGT static inline __attribute__ ((always_inline)) void
compress (int W, state *st, const uint8_t **p, size_t nblk)
{
  const __m128i bswap = _mm_set_epi64x (0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  for (; nblk > 0; nblk--) {
    state save[LANES_MAX];
    __m128i m[LANES_MAX][4];
    for (int w = 0; w < W; w++) {
      save[w] = st[w];
      for (int i = 0; i < 4; i++)
        m[w][i] = _mm_shuffle_epi8 (_mm_loadu_si128 ((const __m128i *) (p[w] + 16 * i)), bswap);
      p[w] += 64;
    }
    _Pragma ("GCC unroll 16") for (int q = 0; q < 16; q++)
      _Pragma ("GCC unroll 4") for (int w = 0; w < W; w++) {
        if (q >= 4)
          m[w][q & 3] = schedule (m[w][q & 3], m[w][(q + 1) & 3], m[w][(q + 2) & 3], m[w][(q + 3) & 3]);
        quad (&st[w], m[w][q & 3], q);
      }
    for (int w = 0; w < W; w++) {
      st[w].s0 = _mm_add_epi32 (st[w].s0, save[w].s0);
      st[w].s1 = _mm_add_epi32 (st[w].s1, save[w].s1);
    }
  }
}

TGT static void compress1 (state *st, const uint8_t **p, size_t n) { compress (1, st, p, n); }
TGT static void compress2 (state *st, const uint8_t **p, size_t n) { compress (2, st, p, n); }
TGT static void compress4 (state *st, const uint8_t **p, size_t n) { compress (4, st, p, n); }

static const uint32_t H0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };

/* the state A..H (h[0..7]) in the registers' order */
TGT static void
state_from_words (state *st, const uint32_t h[8])
{
  __m128i abcd = _mm_shuffle_epi32 (_mm_loadu_si128 ((const __m128i *) &h[0]), 0xb1);
  __m128i efgh = _mm_shuffle_epi32 (_mm_loadu_si128 ((const __m128i *) &h[4]), 0x1b);
  st->s0 = _mm_alignr_epi8 (abcd, efgh, 8);
  st->s1 = _mm_blend_epi16 (efgh, abcd, 0xf0);
}

TGT static void
state_init (state *st)
{
  state_from_words (st, H0);
}

/* the last partial block of a message of total bytes, the padding and the
 * length, then the digest */
TGT static void
finish (state *st, const uint8_t *tail, size_t tlen, uint64_t total, uint8_t out[32])
{
  uint8_t buf[128] = { 0 };
  const uint8_t *p = buf;
  size_t nb = tlen + 9 <= 64 ? 1 : 2;
  uint32_t w[8];
  __m128i t, u;
  memcpy (buf, tail, tlen);
  buf[tlen] = 0x80;
  for (int i = 0; i < 8; i++)
    buf[nb * 64 - 1 - i] = (uint8_t) ((total * 8) >> (8 * i));
  compress1 (st, &p, nb);
  t = _mm_shuffle_epi32 (st->s0, 0x1b);
  u = _mm_shuffle_epi32 (st->s1, 0xb1);
  _mm_storeu_si128 ((__m128i *) &w[0], _mm_blend_epi16 (t, u, 0xf0));
  _mm_storeu_si128 ((__m128i *) &w[4], _mm_alignr_epi8 (u, t, 8));
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t) (w[i] >> 24);
    out[4 * i + 1] = (uint8_t) (w[i] >> 16);
    out[4 * i + 2] = (uint8_t) (w[i] >> 8);
    out[4 * i + 3] = (uint8_t) w[i];
  }
}

/* W (2 or 4) messages: their common whole blocks together, the rest of
 * each alone */
static void
hash_lanes (int W, const uint8_t *const *data, const size_t *len, uint8_t (*out)[32])
{
  state st[LANES_MAX];
  const uint8_t *p[LANES_MAX];
  size_t common = SIZE_MAX;
  for (int w = 0; w < W; w++) {
    state_init (&st[w]);
    p[w] = data[w];
    if (len[w] / 64 < common)
      common = len[w] / 64;
  }
  if (W == 4)
    compress4 (st, p, common);
  else
    compress2 (st, p, common);
  for (int w = 0; w < W; w++) {
    size_t rest = len[w] / 64 - common;
    compress1 (&st[w], &p[w], rest);
    finish (&st[w], p[w], len[w] % 64, len[w], out[w]);
  }
}

/* ---- sixteen messages at once with AVX-512 ----
 * One message per 32-bit lane of a ZMM register: the eight state words
 * are eight registers, the message schedule sixteen; VPRORD rotates and
 * VPTERNLOGD computes Ch, Maj and the three-way XORs in one instruction
 * each. Here (1 MiB messages) 0.20-0.24 ns per byte against 0.31 for two
 * messages with SHA-NI and 0.27 for four; it needs sixteen messages
 * (fewer lanes cost as much), and their common whole blocks only: the
 * rest of each message, and its padding, goes through SHA-NI. */
#if defined(__clang__)
#define T512 __attribute__ ((target ("avx512f,avx512bw")))
#else
/* GCC's code for it is 10-20 % faster with its loops unrolled (here) */
#define T512 __attribute__ ((target ("avx512f,avx512bw"), optimize ("unroll-loops")))
#endif
#define X16 16

T512 static inline __attribute__ ((always_inline)) __m512i
xor3 (__m512i a, __m512i b, __m512i c)
{
  return _mm512_ternarylogic_epi32 (a, b, c, 0x96);
}

/* r[i] = row i (message i's 16 words) -> r[i] = word i of every message */
T512 static inline __attribute__ ((always_inline)) void
transpose16 (__m512i r[16])
{
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32 (r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32 (r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64 (t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64 (t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64 (t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64 (t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 16; i += 8)
    for (int j = 0; j < 4; j++) {
      t[i + j] = _mm512_shuffle_i32x4 (r[i + j], r[i + j + 4], 0x88);
      t[i + j + 4] = _mm512_shuffle_i32x4 (r[i + j], r[i + j + 4], 0xdd);
    }
  for (int j = 0; j < 8; j++) {
    r[j] = _mm512_shuffle_i32x4 (t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_i32x4 (t[j], t[j + 8], 0xdd);
  }
}

T512 static void
compress16 (__m512i st[8], const uint8_t *const p[X16], size_t nblk)
{
  const __m512i bswap = _mm512_set4_epi32 (0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
  for (size_t b = 0; b < nblk; b++) {
    __m512i r[16], w[16];
    __m512i A = st[0], B = st[1], C = st[2], D = st[3], E = st[4], F = st[5], G = st[6], H = st[7];
    for (int l = 0; l < X16; l++)
      r[l] = _mm512_loadu_si512 ((const void *) (p[l] + b * 64));
    transpose16 (r);
    for (int i = 0; i < 16; i++)
      w[i] = _mm512_shuffle_epi8 (r[i], bswap);
    _Pragma ("GCC unroll 64") for (int t = 0; t < 64; t++) {
      __m512i t1, t2;
      if (t >= 16) {
        __m512i w1 = w[(t + 1) & 15], w14 = w[(t + 14) & 15];
        __m512i s0 = xor3 (_mm512_ror_epi32 (w1, 7), _mm512_ror_epi32 (w1, 18), _mm512_srli_epi32 (w1, 3));
        __m512i s1 = xor3 (_mm512_ror_epi32 (w14, 17), _mm512_ror_epi32 (w14, 19), _mm512_srli_epi32 (w14, 10));
        w[t & 15] = _mm512_add_epi32 (_mm512_add_epi32 (w[t & 15], s0), _mm512_add_epi32 (w[(t + 9) & 15], s1));
      }
      t1 = _mm512_add_epi32 (_mm512_add_epi32 (H, xor3 (_mm512_ror_epi32 (E, 6), _mm512_ror_epi32 (E, 11),
                                                          _mm512_ror_epi32 (E, 25))),
                             _mm512_add_epi32 (_mm512_ternarylogic_epi32 (E, F, G, 0xca),
                                               _mm512_add_epi32 (w[t & 15], _mm512_set1_epi32 ((int) K[t]))));
      t2 = _mm512_add_epi32 (xor3 (_mm512_ror_epi32 (A, 2), _mm512_ror_epi32 (A, 13), _mm512_ror_epi32 (A, 22)),
                             _mm512_ternarylogic_epi32 (A, B, C, 0xe8));
      H = G; G = F; F = E; E = _mm512_add_epi32 (D, t1);
      D = C; C = B; B = A; A = _mm512_add_epi32 (t1, t2);
    }
    st[0] = _mm512_add_epi32 (st[0], A); st[1] = _mm512_add_epi32 (st[1], B);
    st[2] = _mm512_add_epi32 (st[2], C); st[3] = _mm512_add_epi32 (st[3], D);
    st[4] = _mm512_add_epi32 (st[4], E); st[5] = _mm512_add_epi32 (st[5], F);
    st[6] = _mm512_add_epi32 (st[6], G); st[7] = _mm512_add_epi32 (st[7], H);
  }
}

/* the common whole blocks of 16 messages: words[i][l] = state word i of
 * message l after them */
T512 static void
blocks16 (const uint8_t *const p[X16], size_t nblk, uint32_t words[8][X16])
{
  __m512i st[8];
  for (int i = 0; i < 8; i++)
    st[i] = _mm512_set1_epi32 ((int) H0[i]);
  compress16 (st, p, nblk);
  for (int i = 0; i < 8; i++)
    _mm512_storeu_si512 ((void *) words[i], st[i]);
}

/* up to 16 messages (n >= 1; missing lanes repeat the first message) */
static void
hash16 (size_t n, const uint8_t *const *data, const size_t *len, uint8_t (*out)[32])
{
  const uint8_t *p[X16];
  uint32_t words[8][X16];
  size_t common = SIZE_MAX;
  for (size_t l = 0; l < X16; l++) {
    p[l] = data[l < n ? l : 0];
    if (len[l < n ? l : 0] / 64 < common)
      common = len[l < n ? l : 0] / 64;
  }
  blocks16 (p, common, words);
  /* back to legacy-SSE code (SHA-NI) for the rest: clean upper halves */
  __asm__ volatile ("vzeroupper" ::: "memory");
  for (size_t l = 0; l < n; l++) {
    uint32_t h[8];
    state st;
    const uint8_t *q = data[l] + common * 64;
    for (int i = 0; i < 8; i++)
      h[i] = words[i][l];
    state_from_words (&st, h);
    compress1 (&st, &q, len[l] / 64 - common);
    finish (&st, q, len[l] % 64, len[l], out[l]);
  }
}

/* messages ord[0..m-1] (m <= 16): sixteen lanes for 14 or more, else
 * smc_sha256_multi's other paths */
static void
by_order (const size_t *ord, size_t m, const uint8_t *const *data, const size_t *len, uint8_t (*out)[32])
{
  const uint8_t *d[X16] = { NULL };
  size_t l[X16] = { 0 };
  uint8_t o[X16][32];
  for (size_t i = 0; i < m; i++) {
    d[i] = data[ord[i]];
    l[i] = len[ord[i]];
  }
  if (m >= 14)
    hash16 (m, d, l, o);
  else
    smc_sha256_multi (m, d, l, o);
  for (size_t i = 0; i < m; i++)
    memcpy (out[ord[i]], o[i], 32);
}

int
smc_sha256_batch (void)
{
  return smc_sha256_ni_available () && have_x16 ? X16 : LANES_MAX;
}

void
smc_sha256_multi (size_t n, const uint8_t *const *data, const size_t *len, uint8_t (*out)[32])
{
  size_t i = 0;
  if (!smc_sha256_ni_available ()) {
    smc_sha256_multi_openssl (n, data, len, out);
    return;
  }
  /* SHA-NI is legacy-SSE code: after AVX code that left the upper halves
   * of the vector registers dirty it runs 2.6 times slower (measured here:
   * 0.87 against 0.33 ns per byte), so they are cleared first */
  if (have_avx)
    __asm__ volatile ("vzeroupper" ::: "memory");
  /* sixteen lanes for 14 messages or more (14 of them cost what 16 do, and
   * still less than four by four); messages of similar length together,
   * the longest first: a lane's blocks past the shortest message of its
   * sixteen go through SHA-NI alone */
  if (have_x16 && n >= 14) {
    size_t ord[64], k = n < 64 ? n : 64;
    for (size_t a = 0; a < k; a++) {
      size_t b = a;
      for (; b > 0 && len[ord[b - 1]] < len[a]; b--)
        ord[b] = ord[b - 1];
      ord[b] = a;
    }
    for (; k - i >= 14; i += X16 < k - i ? X16 : k - i)
      by_order (ord + i, X16 < k - i ? X16 : k - i, data, len, out);
    /* the rest of the first 64, four, two or one at a time */
    if (i < k)
      by_order (ord + i, k - i, data, len, out);
    if (k < n)
      smc_sha256_multi (n - k, data + k, len + k, out + k);
    return;
  }
  for (; n - i >= 4; i += 4)
    hash_lanes (4, data + i, len + i, out + i);
  for (; n - i >= 2; i += 2)
    hash_lanes (2, data + i, len + i, out + i);
  /* one message alone: OpenSSL's code is 5 % faster than this one's */
  if (i < n)
    smc_sha256_multi_openssl (n - i, data + i, len + i, out + i);
}

#else

int
smc_sha256_ni_available (void)
{
  return 0;
}

int
smc_sha256_batch (void)
{
  return 1;
}

void
smc_sha256_multi (size_t n, const uint8_t *const *data, const size_t *len, uint8_t (*out)[32])
{
  smc_sha256_multi_openssl (n, data, len, out);
}

#endif
