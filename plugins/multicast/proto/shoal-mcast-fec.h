/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-fec.h: systematic Reed-Solomon erasure code over GF(2^8)
 * (polynomial 0x11d) with a Cauchy parity matrix: parity row j of a block
 * with k source symbols has coefficients 1 / ((k + j) xor c), c < k.
 * Any k of the k + (256 - k) symbols recover the block. */
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

/* GF(2^8) arithmetic for other codes (shoal-mcast-wc.h), on the backend
 * below. smc_gf_combine: out[r] = sum_c coef[r*k + c] * in[c] for r < rows,
 * any k (with add, out[r] ^= that sum). smc_gf_muladd: dst ^= c * src.
 * smc_gf_scale: buf = c * buf. */
void    smc_gf_combine (size_t k, int rows, const uint8_t *coef, const uint8_t *const *in,
                        uint8_t *const *out, size_t len, int add);
void    smc_gf_muladd (uint8_t *dst, const uint8_t *src, uint8_t c, size_t len);
void    smc_gf_scale (uint8_t *buf, uint8_t c, size_t len);
uint8_t smc_gf_mul (uint8_t a, uint8_t b);
uint8_t smc_gf_inv (uint8_t a);

/* Bulk arithmetic backends; all give the same bytes. AUTO takes the first
 * available of GFNI512 (AVX-512 + GFNI affine kernels, several output rows
 * per pass), ISAL (when built with ISA-L), GFNI256 (AVX2 + GFNI, one row at
 * a time; the static agent's choice when the CPU has no AVX-512), TABLES. */
enum { SMC_FEC_AUTO, SMC_FEC_GFNI512, SMC_FEC_ISAL, SMC_FEC_GFNI256, SMC_FEC_TABLES, SMC_FEC_N_BACKENDS };
int         smc_fec_backend_available (int backend);
/* process-wide; -1 (and no change) when not available here */
int         smc_fec_set_backend (int backend);
/* the backend in use (AUTO resolved): "gfni-avx512", "isa-l", "gfni-avx2", "tables" */
const char *smc_fec_backend_name (void);
/* those names and "auto" -> the enum; -1 for anything else */
int         smc_fec_backend_from_name (const char *name);
/* sets the backend by name (as --fec does): NULL, or why not ("unknown
 * FEC backend", "this CPU or build has no FEC backend"), to name it after */
const char *smc_fec_select (const char *name);

#ifdef __cplusplus
}
#endif
