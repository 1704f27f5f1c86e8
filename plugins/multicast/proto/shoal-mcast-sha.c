/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-sha.c: SHA-256 (FIPS 180-4) of up to four messages in one
 * pass with the SHA-NI instructions (see the header) */
#include "shoal-mcast-sha.h"

#include "shoal-mcast-proto.h"

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

static int have_avx;

int
smc_sha256_ni_available (void)
{
  static int cached = -1;
  if (cached < 0) {
    unsigned int a, b, c, d;
    int sse = __get_cpuid (1, &a, &b, &c, &d) && (c & bit_SSE4_1) && (c & bit_SSSE3);
    have_avx = sse && (c & bit_AVX) && (c & bit_OSXSAVE);
    cached = sse && __get_cpuid_count (7, 0, &a, &b, &c, &d) && (b & bit_SHA);
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

TGT static void
state_init (state *st)
{
  static const uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
  __m128i abcd = _mm_shuffle_epi32 (_mm_loadu_si128 ((const __m128i *) &h[0]), 0xb1);
  __m128i efgh = _mm_shuffle_epi32 (_mm_loadu_si128 ((const __m128i *) &h[4]), 0x1b);
  st->s0 = _mm_alignr_epi8 (abcd, efgh, 8);
  st->s1 = _mm_blend_epi16 (efgh, abcd, 0xf0);
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

void
smc_sha256_multi (size_t n, const uint8_t *const *data, const size_t *len, uint8_t (*out)[32])
{
  smc_sha256_multi_openssl (n, data, len, out);
}

#endif
