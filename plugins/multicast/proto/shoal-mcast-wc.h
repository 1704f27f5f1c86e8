/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-wc.h: the window code, a sparse random linear erasure code
 * over GF(2^8) (polynomial 0x11d) for windows of up to SMC_WC_MAX_K source
 * symbols, where Reed-Solomon over GF(2^8) stops at 255.
 *
 * Repair symbol `id` of a window of k source symbols s_0 .. s_{k-1} is
 * sum_j c_j * s_j over smc_wc_degree (k, id) distinct j. The j and the
 * nonzero c_j come from a generator seeded with (seed, id); smc_wc_row
 * lists them. The degree is carried in the id (its top byte, a code of a
 * geometric scale), so the sender chooses it per symbol
 * (smc_wc_degree_code): rows that meet enough of a receiver's missing
 * symbols to be independent with few spares, and no more, since every
 * term costs the sender and every receiver one multiply-add of a symbol.
 *
 * A receiver that lacks L symbols of a window solves for them from repair
 * symbols whose rows, restricted to those L, have rank L: it subtracts
 * what it has from L independent ones, then applies the inverse of their
 * L x L matrix. With a repair symbol a row picked at random, the usual
 * case is that any L of them do (at the degree smc_wc_degree_code picks
 * for L, about 1 in 400 receivers needs one more).
 *
 * Plain C, no GLib: it links into the static agent. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SMC_WC_MAX_K       (1u << 20)  /* source symbols in a window */
#define SMC_WC_MAX_MISSING 4096        /* missing symbols a receiver solves for at once */
#define SMC_WC_SERIAL_MASK 0x00ffffffu  /* the id's low 24 bits: any serial */
#define SMC_WC_MAX_HELD    (2 * SMC_WC_MAX_MISSING)  /* repair symbols a receiver holds for a window */

/* the degree that code `code` (an id's top byte) stands for in a window
 * of k: 8 * 2^(code / 16), rounded down, at most k */
uint32_t smc_wc_degree_of_code (uint32_t k, uint8_t code);
static inline uint32_t smc_wc_degree (uint32_t k, uint32_t id) { return smc_wc_degree_of_code (k, (uint8_t) (id >> 24)); }
static inline uint32_t smc_wc_make_id (uint8_t code, uint32_t serial) { return ((uint32_t) code << 24) | (serial & SMC_WC_SERIAL_MASK); }

/* the code of the smallest degree whose rows meet, on average, about
 * ln(missing) + 6 of `missing` symbols lost at random: what a receiver
 * lacking that many needs for rank with almost no spare (each of its
 * missing symbols is then in no row with probability about 1 / (400 L)) */
uint8_t smc_wc_degree_code (uint32_t k, uint32_t missing);

/* row `id` of a window of k: fills idx (ascending, distinct, < k) and coef
 * (nonzero) with smc_wc_degree (k, id) entries each and returns that
 * number; -1 when k is 0 or above SMC_WC_MAX_K, or without memory */
int smc_wc_row (uint64_t seed, uint32_t k, uint32_t id, uint32_t *idx, uint8_t *coef);

/* repair symbol `id` of src[0 .. k-1] (len bytes each) into out; 0 or -1 */
int smc_wc_encode (uint64_t seed, uint32_t k, const uint8_t *const *src, uint32_t id,
                   uint8_t *out, size_t len);

/* repair symbols ids[0 .. n-1] into out[0 .. n-1], as smc_wc_encode
 * each, the rows together when they are dense; 0 or -1 */
int smc_wc_encode_many (uint64_t seed, uint32_t k, const uint8_t *const *src, const uint32_t *ids, uint32_t n,
                        uint8_t *const *out, size_t len);

/* the repair symbols a receiver holds for one window, and the solver */
typedef struct smc_wc_dec smc_wc_dec;

smc_wc_dec *smc_wc_dec_new (uint64_t seed, uint32_t k, size_t len);
void        smc_wc_dec_free (smc_wc_dec *d);
/* keeps a copy of repair symbol id: 0, 1 when it holds it already, -1
 * when it holds SMC_WC_MAX_HELD already (more than any solve can use: a
 * sender, or a member with the key, sending without end) or without
 * memory */
int         smc_wc_dec_add (smc_wc_dec *d, uint32_t id, const uint8_t *payload);
uint32_t    smc_wc_dec_held (const smc_wc_dec *d);
/* sym[j]: source symbol j's len bytes; have[j]: nonzero when it is there.
 * Returns 0 once every missing symbol is written into its sym[j] (the
 * repair symbols held are then let go); else how many more independent
 * repair symbols it needs at least (> 0), the ones held kept; -1 when
 * more than SMC_WC_MAX_MISSING are missing, or without memory. *rank:
 * the rank of the held rows on the missing symbols (may be NULL). */
int         smc_wc_dec_solve (smc_wc_dec *d, uint8_t *const *sym, const uint8_t *have, uint32_t *rank);

/* multiply-adds of a symbol the last solve cost (subtracting what the
 * receiver has, then the inverse): for the cost accounting of the tools */
uint64_t    smc_wc_dec_last_ops (const smc_wc_dec *d);

#ifdef __cplusplus
}
#endif
