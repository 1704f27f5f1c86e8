/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-receiver.h: joins a session, rebuilds and verifies chunks */
#pragma once

#include "shoal-mcast-proto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SMC_CHUNK_NEEDED = 0,
  SMC_CHUNK_PENDING = 1,    /* being received by multicast */
  SMC_CHUNK_DONE = 2,       /* verified and handed to write_chunk */
  SMC_CHUNK_SKIP = 3,       /* all-zero in the manifest: never sent */
  SMC_CHUNK_EXTERNAL = 4,   /* must come by unicast (smc_receiver_supply_chunk) */
  SMC_CHUNK_VERIFYING = 5,  /* assembled, being verified and written */
} smc_chunk_state;

typedef struct {
  uint64_t pkts, data_pkts, parity_used, dup, forged, bad, wrong_session, wrong_image;
  uint64_t chunks_done, chunks_hash_fail, chunks_external, decodes;
  uint64_t chunks_hashed_together; /* verified in one pass with others (shoal-mcast-sha.h) */
  uint64_t hash_ns, write_ns;      /* spent hashing chunks, and in write_chunk */
  uint64_t nacks_sent, nack_entries_sent, nacks_suppressed;
  uint64_t nack_entries_retry; /* entries for a block NACKed before (its repair had not come) */
  uint64_t srcreqs_sent, sources_asked; /* SRCREQ packets, and the source symbols they named */
  uint64_t outages, outage_pkts; /* silences of OUTAGE_MS or more followed by a jump in the
                                  * sender's sequence numbers, and the packets they took
                                  * (left out of the loss STATUS reports) */
  uint64_t wakeups;         /* times the receive loop slept and woke */
  uint32_t max_pending;     /* most chunks in assembly at once */
  uint64_t bytes_written;
  uint32_t rx_overflow;
  uint64_t backlog_reports;  /* early STATUS: receive queue over SMC_BACKLOG_HIGH */
  uint64_t first_pkt_ns, complete_ns;
  uint32_t left_reason;      /* SMC_REASON_* it gave when it left the multicast
                              * part (evicted, or on its own): what was not
                              * verified by then comes by unicast */
  uint32_t path_mtu;         /* of its route to the sender, when it joined (0: unknown) */
} smc_receiver_stats;

typedef struct {
  smc_join join;            /* from the sender's join instruction */
  const smc_manifest *manifest; /* its id must equal join.manifest_hash */
  uint32_t window_chunks;   /* chunks held in memory at once (default 0: as many
                             * as fit in 64 MiB, 4 to 64: 64 of 1 MiB, 16 of 4 MiB);
                             * twice that while its socket's queue is a tenth
                             * full or more */
  uint32_t idle_timeout_ms; /* no valid packet from the sender: fail (default 5000) */
  uint32_t join_timeout_ms; /* no ANNOUNCE at all: fail (default 15000) */
  uint32_t status_ms;       /* status report period (default 100) */
  uint32_t nack_backoff_us; /* random NACK delay upper bound (default 1500) */
  uint32_t nack_retry_ms;   /* re-NACK an unrepaired block after (default 10) */
  int verify_thread;        /* 1: SHA-256 verification and write_chunk of
                             * multicast chunks run on a thread of the
                             * receiver's own, overlapping the receive path
                             * (for a receiver alone on a machine with 2 or
                             * more CPUs); 0 (default): inline, best when many
                             * receivers share few CPUs. write_chunk is called
                             * from one thread at a time either way (that
                             * thread during smc_receiver_run, the caller's in
                             * smc_receiver_supply_chunk) */
  uint32_t rcvbuf;          /* socket receive buffer, bytes (default 64 MiB; its
                             * fill is reported to the sender, which slows
                             * down at SMC_BACKLOG_HIGH) */
  uint32_t coalesce_us;     /* while data flows, sleep this long between reads so
                             * packets are taken in batches, not one wake-up
                             * each (default 2000; 0: wake per packet) */
  int verbose;
  /* chunk idx verified against the manifest; 0 on success */
  int (*write_chunk) (void *user, uint32_t idx, const uint8_t *data, size_t len);
  /* chunk idx will not come by multicast: fetch it by unicast */
  void (*on_missing) (void *user, uint32_t idx);
  void *user;
} smc_receiver_config;

typedef struct smc_receiver smc_receiver;

/* the window used when window_chunks is 0, for chunks of chunk_size bytes */
uint32_t smc_receiver_default_window (uint32_t chunk_size);
void smc_receiver_config_init (smc_receiver_config *c);
smc_receiver *smc_receiver_new (const smc_receiver_config *c, char *err, size_t errlen);
void smc_receiver_free (smc_receiver *r);
/* Chunks already present (e.g. verified on disk after a restart): not fetched. */
void smc_receiver_mark_done (smc_receiver *r, uint32_t idx);
/* Runs the multicast part (blocking). 0: session over for this receiver
 * (every chunk done or left for unicast: see smc_receiver_missing);
 * -1: failed (sender silent, or error): missing chunks also left for unicast. */
int smc_receiver_run (smc_receiver *r);
void smc_receiver_cancel (smc_receiver *r);
/* chunks that must still be fetched by unicast; returns count, fills up to cap */
uint32_t smc_receiver_missing (smc_receiver *r, uint32_t *idx, uint32_t cap);
/* a chunk fetched from elsewhere: verified against the manifest, then written.
 * 0 on success, -1 if it does not match (nothing written). */
int smc_receiver_supply_chunk (smc_receiver *r, uint32_t idx, const uint8_t *data, size_t len);
int smc_receiver_is_complete (smc_receiver *r);
const smc_receiver_stats *smc_receiver_get_stats (smc_receiver *r);
uint8_t smc_receiver_chunk_state (smc_receiver *r, uint32_t idx);

#ifdef __cplusplus
}
#endif
