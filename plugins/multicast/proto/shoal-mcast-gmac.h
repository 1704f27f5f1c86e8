/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-gmac.h: AES-128-GMAC with AES-NI and 512-bit carry-less
 * multiplication (VPCLMULQDQ), for the packet tags of shoal-mcast-proto.
 *
 * GMAC is AES-GCM with no plaintext: tag = GHASH_H(AAD) xor AES_K(J0), where
 * H = AES_K(0^128) and J0 = IV ‖ 00000001 for a 96-bit IV (NIST SP 800-38D).
 * GHASH runs here as POLYVAL (RFC 8452, appendix A: GHASH(H, X) =
 * ByteReverse(POLYVAL(mulX_POLYVAL(ByteReverse(H)), ByteReverse(X)))), whose
 * bit order is the one of PCLMULQDQ, 32 blocks per reduction with H^32..H^1
 * precomputed. The AAD of every tag begins with the same 32 bytes (the
 * manifest hash), so the GHASH state after them is computed once per key.
 *
 * Only built for x86-64; smc_gmac_available() says whether this CPU can run
 * it (AES-NI, PCLMULQDQ, VPCLMULQDQ, AVX-512 F/BW/VL). Callers fall back to
 * OpenSSL otherwise; the tests compare both byte for byte. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct smc_gmac smc_gmac;

int       smc_gmac_available (void);
/* NULL when not available here or out of memory */
smc_gmac *smc_gmac_new (const uint8_t key[16], const uint8_t prefix[32]);
void      smc_gmac_free (smc_gmac *g);
/* the 16-byte tag of AAD = prefix ‖ a[0..na) ‖ b[0..nb) under the 12-byte iv */
void      smc_gmac_tag (const smc_gmac *g, const uint8_t iv[12], const uint8_t *a, size_t na,
                        const uint8_t *b, size_t nb, uint8_t tag[16]);
/* POLYVAL(h, x[0..n)) of RFC 8452 (n a multiple of 16), for the tests */
void      smc_gmac_polyval (const uint8_t h[16], const uint8_t *x, size_t n, uint8_t out[16]);

#ifdef __cplusplus
}
#endif
