/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-gmac.c: AES-128-GMAC with AES-NI and VPCLMULQDQ (see the header) */
#include "shoal-mcast-gmac.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TGT __attribute__ ((target ("aes,pclmul,sse4.1,avx2,avx512f,avx512bw,avx512vl,vpclmulqdq")))

int
smc_gmac_available (void)
{
  static int cached = -1;
  if (cached < 0)
    cached = __builtin_cpu_supports ("aes") && __builtin_cpu_supports ("pclmul") &&
             __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512bw") &&
             __builtin_cpu_supports ("avx512vl") && __builtin_cpu_supports ("vpclmulqdq");
  return cached;
}

/* H^32 .. H^1 (Montgomery form of POLYVAL: H_i = H^i x^(-128(i-1))), four per
 * vector, lane 0 first: block b of a group of G (16 or 32) is multiplied by
 * H_(G-b), from v[8 - G/4] on. 32 blocks per reduction: the reduction is the
 * one step each group waits for, the 32 products are independent. */
#define GROUP_MAX 32
typedef struct {
  __m512i v[GROUP_MAX / 4];
  __m128i h1;
} powers;

struct smc_gmac {
  powers  pw;        /* first: 64-byte aligned */
  __m128i rk[11];    /* AES-128 round keys */
  __m128i s0;        /* POLYVAL state after the 32-byte prefix */
};

/* ---------------- AES-128, one block ---------------- */

TGT static __m128i
aes_expand_step (__m128i key, __m128i assist)
{
  assist = _mm_shuffle_epi32 (assist, 0xff);
  key = _mm_xor_si128 (key, _mm_slli_si128 (key, 4));
  key = _mm_xor_si128 (key, _mm_slli_si128 (key, 4));
  key = _mm_xor_si128 (key, _mm_slli_si128 (key, 4));
  return _mm_xor_si128 (key, assist);
}

TGT static void
aes_expand (__m128i rk[11], const uint8_t key[16])
{
  rk[0] = _mm_loadu_si128 ((const __m128i *) key);
#define STEP(i, rcon) rk[i] = aes_expand_step (rk[i - 1], _mm_aeskeygenassist_si128 (rk[i - 1], rcon))
  STEP (1, 0x01); STEP (2, 0x02); STEP (3, 0x04); STEP (4, 0x08); STEP (5, 0x10);
  STEP (6, 0x20); STEP (7, 0x40); STEP (8, 0x80); STEP (9, 0x1b); STEP (10, 0x36);
#undef STEP
}

TGT static __m128i
aes_block (const __m128i rk[11], __m128i x)
{
  x = _mm_xor_si128 (x, rk[0]);
  for (int i = 1; i < 10; i++)
    x = _mm_aesenc_si128 (x, rk[i]);
  return _mm_aesenclast_si128 (x, rk[10]);
}

/* ---------------- POLYVAL ---------------- */

/* the 256-bit product hi:lo times x^-128 mod x^128 + x^127 + x^126 + x^121 + 1:
 * twice, the low 64 bits P are cancelled by adding P * g (g = 1 mod x^64),
 * whose other terms are P * 0xc2 << 56 at bit 64 and P at bit 128 */
TGT static __m128i
reduce (__m128i lo, __m128i hi)
{
  const __m128i c = _mm_set_epi64x (0, (long long) 0xc200000000000000ull);
  __m128i t = _mm_clmulepi64_si128 (lo, c, 0x00);
  __m128i x = _mm_xor_si128 (_mm_shuffle_epi32 (lo, 0x4e), t);
  t = _mm_clmulepi64_si128 (x, c, 0x00);
  return _mm_xor_si128 (_mm_xor_si128 (_mm_shuffle_epi32 (x, 0x4e), t), hi);
}

/* dot(a, b) = a * b * x^-128 */
TGT static __m128i
dot (__m128i a, __m128i b)
{
  __m128i lo = _mm_clmulepi64_si128 (a, b, 0x00);
  __m128i hi = _mm_clmulepi64_si128 (a, b, 0x11);
  __m128i mid = _mm_xor_si128 (_mm_clmulepi64_si128 (a, b, 0x01), _mm_clmulepi64_si128 (a, b, 0x10));
  return reduce (_mm_xor_si128 (lo, _mm_slli_si128 (mid, 8)), _mm_xor_si128 (hi, _mm_srli_si128 (mid, 8)));
}

TGT static void
powers_init (powers *p, __m128i h)
{
  _Alignas (64) __m128i pw[GROUP_MAX + 1];
  pw[1] = h;
  for (int i = 2; i <= GROUP_MAX; i++)
    pw[i] = dot (pw[i - 1], h);
  for (int v = 0; v < GROUP_MAX / 4; v++) {
    int top = GROUP_MAX - 4 * v;
    _Alignas (64) __m128i lanes[4] = { pw[top], pw[top - 1], pw[top - 2], pw[top - 3] };
    p->v[v] = _mm512_load_si512 ((const void *) lanes);
  }
  p->h1 = h;
}

TGT static __m128i
fold (__m512i v)
{
  __m256i t = _mm256_xor_si256 (_mm512_castsi512_si256 (v), _mm512_extracti64x4_epi64 (v, 1));
  return _mm_xor_si128 (_mm256_castsi256_si128 (t), _mm256_extracti128_si256 (t, 1));
}

/* the state after G (16 or 32) more blocks at p, each byte-reversed by shuf
 * (GHASH order) or taken as it is (POLYVAL order): one reduction for all */
TGT static inline __m128i
group (const powers *pw, __m128i s, const uint8_t *p, __m512i shuf, int G)
{
  const __m512i *key = pw->v + (GROUP_MAX - G) / 4;
  __m512i x, lo, hi, mid;
  __m128i l, h, m;
  x = _mm512_shuffle_epi8 (_mm512_loadu_si512 ((const void *) p), shuf);
  x = _mm512_xor_si512 (x, _mm512_inserti32x4 (_mm512_setzero_si512 (), s, 0));
  lo = _mm512_clmulepi64_epi128 (x, key[0], 0x00);
  hi = _mm512_clmulepi64_epi128 (x, key[0], 0x11);
  mid = _mm512_xor_si512 (_mm512_clmulepi64_epi128 (x, key[0], 0x01),
                          _mm512_clmulepi64_epi128 (x, key[0], 0x10));
  for (int v = 1; v < G / 4; v++) {
    x = _mm512_shuffle_epi8 (_mm512_loadu_si512 ((const void *) (p + 64 * v)), shuf);
    lo = _mm512_xor_si512 (lo, _mm512_clmulepi64_epi128 (x, key[v], 0x00));
    hi = _mm512_xor_si512 (hi, _mm512_clmulepi64_epi128 (x, key[v], 0x11));
    mid = _mm512_xor_si512 (mid, _mm512_xor_si512 (_mm512_clmulepi64_epi128 (x, key[v], 0x01),
                                                   _mm512_clmulepi64_epi128 (x, key[v], 0x10)));
  }
  l = fold (lo);
  h = fold (hi);
  m = fold (mid);
  return reduce (_mm_xor_si128 (l, _mm_slli_si128 (m, 8)), _mm_xor_si128 (h, _mm_srli_si128 (m, 8)));
}

/* the state after n more blocks at p */
TGT static __m128i
blocks (const powers *pw, __m128i s, const uint8_t *p, size_t n, __m512i shuf)
{
  _Alignas (64) uint8_t pad[256];
  size_t r;
  for (; n >= 32; n -= 32, p += 512)
    s = group (pw, s, p, shuf, 32);
  if (n >= 16) {
    s = group (pw, s, p, shuf, 16);
    n -= 16;
    p += 256;
  }
  if (n == 0)
    return s;
  if (n == 1)
    return dot (_mm_xor_si128 (s, _mm_shuffle_epi8 (_mm_loadu_si128 ((const __m128i *) p),
                                                   _mm512_castsi512_si128 (shuf))), pw->h1);
  /* 2..15 blocks: a group whose first 16 - n blocks are zero; the state
   * goes into the first real one (the shuffle is its own inverse) */
  r = 16 - n;
  memset (pad, 0, r * 16);
  memcpy (pad + r * 16, p, n * 16);
  _mm_storeu_si128 ((__m128i *) (pad + r * 16),
                    _mm_xor_si128 (_mm_loadu_si128 ((const __m128i *) (pad + r * 16)),
                                   _mm_shuffle_epi8 (s, _mm512_castsi512_si128 (shuf))));
  return group (pw, _mm_setzero_si128 (), pad, shuf, 16);
}

TGT static __m512i
bswap_mask (void)
{
  return _mm512_broadcast_i32x4 (_mm_set_epi8 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

TGT static __m512i
identity_mask (void)
{
  return _mm512_broadcast_i32x4 (_mm_set_epi8 (15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
}

TGT void
smc_gmac_polyval (const uint8_t h[16], const uint8_t *x, size_t n, uint8_t out[16])
{
  _Alignas (64) powers pw;
  powers_init (&pw, _mm_loadu_si128 ((const __m128i *) h));
  _mm_storeu_si128 ((__m128i *) out, blocks (&pw, _mm_setzero_si128 (), x, n / 16, identity_mask ()));
  _mm256_zeroupper ();
}

/* ---------------- GMAC ---------------- */

TGT smc_gmac *
smc_gmac_new (const uint8_t key[16], const uint8_t prefix[32])
{
  smc_gmac *g;
  __m128i h, carry;
  if (!smc_gmac_available () || (g = aligned_alloc (64, (sizeof *g + 63) & ~(size_t) 63)) == NULL)
    return NULL;
  aes_expand (g->rk, key);
  /* POLYVAL's key: mulX_POLYVAL (ByteReverse (AES_K (0))): shift left by one
   * bit, and when bit 127 fell out add x^127 + x^126 + x^121 + 1 */
  h = _mm_shuffle_epi8 (aes_block (g->rk, _mm_setzero_si128 ()), _mm512_castsi512_si128 (bswap_mask ()));
  carry = _mm_srai_epi32 (_mm_shuffle_epi32 (h, 0xff), 31);
  h = _mm_or_si128 (_mm_slli_epi64 (h, 1), _mm_srli_epi64 (_mm_slli_si128 (h, 8), 63));
  h = _mm_xor_si128 (h, _mm_and_si128 (carry, _mm_set_epi64x ((long long) 0xc200000000000000ull, 1)));
  powers_init (&g->pw, h);
  g->s0 = blocks (&g->pw, _mm_setzero_si128 (), prefix, 2, bswap_mask ());
  _mm256_zeroupper ();
  return g;
}

void
smc_gmac_free (smc_gmac *g)
{
  free (g);
}

TGT void
smc_gmac_tag (const smc_gmac *g, const uint8_t iv[12], const uint8_t *a, size_t na,
              const uint8_t *b, size_t nb, uint8_t tag[16])
{
  const __m512i shuf = bswap_mask ();
  const __m128i shuf1 = _mm512_castsi512_si128 (shuf);
  const uint8_t *piece[2] = { a, b };
  size_t plen[2] = { na, nb }, np = 0;
  uint8_t part[16], j0[16], len[16];
  __m128i s = g->s0;
  uint64_t bits = (uint64_t) (32 + na + nb) * 8;

  for (int i = 0; i < 2; i++) {
    const uint8_t *p = piece[i];
    size_t n = plen[i], full;
    if (n == 0)
      continue;
    if (np > 0) {
      size_t take = n < 16 - np ? n : 16 - np;
      memcpy (part + np, p, take);
      np += take;
      p += take;
      n -= take;
      if (np < 16)
        continue;
      s = blocks (&g->pw, s, part, 1, shuf);
      np = 0;
    }
    full = n / 16;
    s = blocks (&g->pw, s, p, full, shuf);
    np = n - full * 16;
    memcpy (part, p + full * 16, np);
  }
  if (np > 0) {
    memset (part + np, 0, 16 - np);
    s = blocks (&g->pw, s, part, 1, shuf);
  }
  /* the length block: bits of AAD, bits of ciphertext (none), big-endian */
  for (int i = 0; i < 8; i++) {
    len[i] = (uint8_t) (bits >> (56 - 8 * i));
    len[8 + i] = 0;
  }
  s = blocks (&g->pw, s, len, 1, shuf);
  memcpy (j0, iv, 12);
  j0[12] = j0[13] = j0[14] = 0;
  j0[15] = 1;
  _mm_storeu_si128 ((__m128i *) tag,
                    _mm_xor_si128 (_mm_shuffle_epi8 (s, shuf1),
                                   aes_block (g->rk, _mm_loadu_si128 ((const __m128i *) j0))));
  /* the upper halves of the vector registers are left clean: legacy-SSE
   * code run after it (SHA-NI, OpenSSL's SHA-256) would otherwise run 2.6
   * times slower here (a dependency on the dirty upper state) */
  _mm256_zeroupper ();
}

#else /* not x86-64 */

int smc_gmac_available (void) { return 0; }
smc_gmac *smc_gmac_new (const uint8_t key[16], const uint8_t prefix[32]) { (void) key; (void) prefix; return NULL; }
void smc_gmac_free (smc_gmac *g) { (void) g; }
void
smc_gmac_tag (const smc_gmac *g, const uint8_t iv[12], const uint8_t *a, size_t na, const uint8_t *b, size_t nb,
              uint8_t tag[16])
{
  (void) g; (void) iv; (void) a; (void) na; (void) b; (void) nb;
  memset (tag, 0, 16);
}
void
smc_gmac_polyval (const uint8_t h[16], const uint8_t *x, size_t n, uint8_t out[16])
{
  (void) h; (void) x; (void) n;
  memset (out, 0, 16);
}

#endif
