/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-fec.h: systematic Reed-Solomon erasure code over GF(2^8)
 * (polynomial 0x11d) with a Cauchy parity matrix: parity row j of a block
 * with k source symbols has coefficients 1 / ((k + j) xor c), c < k.
 * Any k of the k + (256 - k) symbols recover the block. Bulk arithmetic
 * uses ISA-L (GFNI/AVX-512) when built with it, else portable tables;
 * both produce the same bytes. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* max parity index + 1 for a block of k source symbols */
static inline int smc_fec_max_parity (int k) { return 256 - k; }

/* parity rows j0 .. j0+rows-1 of src[0..k-1] (each len bytes) into out[0..rows-1] */
int smc_fec_encode (int k, const uint8_t *const *src, int j0, int rows,
                    uint8_t *const *out, size_t len);

/* Recover the missing source symbols of a block: src[c] is NULL for each
 * missing c (e of them, ascending); par[i] is the parity symbol with index
 * pidx[i] (e distinct indices). out[i] receives the i-th missing symbol.
 * Returns 0, or -1 on bad input. */
int smc_fec_decode (int k, const uint8_t *const *src, int e, const uint8_t *pidx,
                    const uint8_t *const *par, uint8_t *const *out, size_t len);

/* 1 when the ISA-L backend is compiled in. smc_fec_force_portable(1)
 * skips ISA-L (then AVX2+GFNI affine kernels run when the CPU has them,
 * which the static agent uses), (2) also skips GFNI (plain tables). */
int  smc_fec_have_isal (void);
void smc_fec_force_portable (int on);

#ifdef __cplusplus
}
#endif
