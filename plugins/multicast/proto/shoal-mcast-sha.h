/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-sha.h: SHA-256 of several messages at once.
 *
 * A SHA-NI round waits for the one before it, so one message leaves most
 * of the unit idle; two or four independent messages hashed in one pass
 * fill it (here, 1 MiB messages in cache: 0.48 ns per byte for one, 0.32
 * for two, 0.28 for four). With AVX-512, fourteen messages or more go
 * sixteen at a time through the lanes of the vector registers (0.20-0.24).
 * A receiver verifying the chunks of an interleaved pair hashes them
 * together. A message alone, and every message without SHA-NI (or off
 * x86-64), goes through OpenSSL. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* 1 when the several-at-once code runs on this CPU */
int smc_sha256_ni_available (void);

/* how many messages to give smc_sha256_multi at once for its best speed:
 * 16 with AVX-512 (and SHA-NI), 4 with SHA-NI, 1 without */
int smc_sha256_batch (void);

/* out[i] = SHA-256 (data[i], len[i]) for i < n; any n, any lengths */
void smc_sha256_multi (size_t n, const uint8_t *const *data, const size_t *len, uint8_t (*out)[32]);

/* the same, one message at a time through OpenSSL (for comparison) */
void smc_sha256_multi_openssl (size_t n, const uint8_t *const *data, const size_t *len, uint8_t (*out)[32]);
