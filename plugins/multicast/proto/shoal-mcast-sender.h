/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-sender.h: one multicast session sending one image to a group */
#pragma once

#include "shoal-mcast-proto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SMC_NODE_JOINED = 1,
  SMC_NODE_COMPLETE = 2,    /* multicast part done (ext_missing left for unicast) */
  SMC_NODE_EVICTED = 3,     /* told to finish by unicast */
  SMC_NODE_FAILED = 4,      /* went silent (timeout) or reported failure */
  SMC_NODE_NEVER_JOINED = 5,
  SMC_NODE_DROPPED = 6,     /* dropped by the caller (smc_sender_drop_node) */
} smc_node_outcome;

/* why a receiver was left to finish by unicast (outcome SMC_NODE_EVICTED) */
typedef enum {
  SMC_EVICT_NONE = 0,
  SMC_EVICT_LOSS = 1,       /* it lost more than max_loss, two reports in a row */
  SMC_EVICT_FLOOR = 2,      /* it could not keep up at rate_min_bps */
  SMC_EVICT_BEHIND = 3,     /* more than max_behind_chunks behind the first pass */
  SMC_EVICT_SELF = 4,       /* it left on its own (last.reason says why) */
  SMC_EVICT_SLOW = 5,       /* its disk took under slow_ratio of the group's pace */
} smc_evict_cause;

typedef struct {
  uint32_t node;
  char addr[48];
  int outcome;              /* 0 while receiving, else smc_node_outcome */
  int evict_cause;          /* smc_evict_cause, with SMC_NODE_EVICTED */
  uint64_t joined_ns, last_heard_ns, finished_ns;
  smc_status last;          /* last STATUS received */
  uint32_t nacks;           /* NACK and SRCREQ packets from this node */
  uint32_t backlog_signals; /* its receive queue, over SMC_BACKLOG_HIGH and
                             * growing, slowed the sender down */
  int evict_sent;
  uint32_t floor_strikes;   /* its reports in a row, with the sender at
                             * rate_min_bps, of new socket drops or a queue
                             * three quarters full drained slower than that */
  uint32_t nack_seen;       /* 'seen' of its last NACK, and since when it */
  uint64_t nack_seen_ns;    /* has said that one (a receiver taking nothing) */
  uint32_t progress_done;   /* chunks_done last passed to on_progress */
  uint64_t progress_ns;     /* and when */
  double drain_Bps;         /* what its hash-and-write path takes (STATUS
                             * drain, smoothed; 0: not said yet) */
  double group_Bps;         /* with SMC_EVICT_SLOW: the pace the group would
                             * keep without it, when it was evicted */
  uint64_t slow_since_ns;   /* its drain has been under slow_ratio of the
                             * group's pace since then (0: it is not) */
  uint32_t slow_reports;    /* reports in a row saying so */
  uint32_t drain_reports;   /* its reports with a drain (chunks finished since the one before) */
} smc_node_info;

typedef struct {
  uint64_t data_pkts, parity_pkts, parity_proactive, control_pkts, bytes;
  uint64_t nacks_rx, nack_entries, forged, bad;
  uint64_t srcreqs_rx;      /* SRCREQ packets: source symbols asked for by index */
  uint64_t repair_pkts;     /* window mode: repair symbols sent (in parity_pkts too) */
  uint64_t source_resent;   /* source symbols sent again for them */
  uint64_t rate_bps;        /* current paced rate (wire bits/s) */
  uint64_t start_ns, data_start_ns, drain_ns, end_ns;
  uint64_t read_wait_ns;    /* the sending thread waiting for chunk reads */
  uint64_t chunk_reads;     /* read_chunk calls: each chunk once, more for
                             * repairs of chunks no longer cached */
  uint64_t gso_sends;       /* UDP GSO super-packets (several packets each) */
  int gso_refused;          /* the kernel refused one: one packet per send since */
  uint64_t backlog_signals; /* STATUS with a receive queue over SMC_BACKLOG_HIGH, growing */
  uint64_t group_loss_cuts; /* rate cuts for most receivers losing > max_loss */
  uint32_t slow_evictions;  /* receivers evicted for a slow disk (SMC_EVICT_SLOW) */
  uint32_t ask_ms;          /* first repair requests come this long after their
                             * block (recent high): the first pass's last that
                             * long carries parity for the reported loss */
  int no_receiver;          /* the join wait ended with no receiver in the
                             * session (none joined, or every one dropped or
                             * silent): it ended without sending the image */
} smc_sender_stats;

typedef enum {
  SMC_SLOW_EVICT = 0,       /* a receiver losing > max_loss finishes by unicast */
  SMC_SLOW_WAIT = 1,        /* the group slows down to the slowest receiver */
} smc_slow_policy;

typedef struct {
  const char *group;
  uint16_t port;
  const char *iface;
  uint16_t session;
  int has_key;
  uint8_t key[SMC_KEY_LEN];
  const smc_manifest *manifest;
  uint16_t mtu;             /* 1500 default */
  uint8_t max_k;            /* FEC block size, SMC_DEFAULT_K */
  /* window mode (SMC_ANN_WINDOW) when not 0: repair by the window code
   * (shoal-mcast-wc.h) over windows of this many chunks that are not
   * all-zero (rounded up to a multiple of lanes; at most
   * SMC_MAX_WINDOW_CHUNKS; smc_window_chunks_for gives about 16 MiB), in
   * 14-byte-header packets. 0: Reed-Solomon blocks of max_k in each chunk */
  uint32_t window_chunks;
  /* chunks whose first pass is interleaved symbol by symbol (1 to
   * SMC_MAX_LANES; 0: SMC_DEFAULT_LANES): their receivers finish them
   * together and hash them in one pass (shoal-mcast-sha.h) */
  uint8_t lanes;
  int interleave_blocks;    /* 1: the first pass interleaves each chunk's FEC
                             * blocks (symbol i of every block, then i + 1: a
                             * loss burst is spread over them and repaired by
                             * parity); 0 (default): one after the other */
  uint64_t rate_max_bps;    /* configured cap (wire bits/s), 0: 10 Gbit/s */
  uint64_t rate_start_bps;  /* where slow start begins; 0: 1 Gbit/s (never above the cap) */
  /* with SMC_SLOW_EVICT, the group is not slowed below this (wire bits/s)
   * for a receiver that cannot keep up (its queue, its socket's drops): a
   * receiver whose socket still overflows at this rate is evicted and
   * finishes by unicast. 0 (default): the group slows down to what its
   * slowest receiver takes. */
  uint64_t rate_min_bps;
  uint32_t expected;        /* receivers to wait for before sending */
  uint32_t join_wait_ms;    /* start anyway after this (default 5000) */
  uint32_t node_timeout_ms; /* silent receiver -> failed (default 3000) */
  uint32_t drain_timeout_ms;/* give up on stragglers after this in drain (default 60000) */
  uint32_t max_loss_permille; /* evict threshold for SMC_SLOW_EVICT (default 250) */
  uint32_t max_behind_chunks; /* evict a receiver this many chunks behind (default 0: off) */
  /* with SMC_SLOW_EVICT, a receiver whose hash-and-write path (its disk)
   * takes less than this share (‰) of the pace the group would keep
   * without it (the median of the others' paths, or the cap if lower) for
   * SMC_SLOW_HOLD_MS is evicted and finishes by unicast, instead of
   * holding every other receiver to its speed. At most a quarter of the
   * group (one at least) is evicted so. Default 500; 0: the group slows
   * down to its slowest disk. */
  uint32_t slow_ratio_permille;
  int slow_policy;
  uint32_t proactive_permille; /* parity sent with every block (default 0) */
  int no_gso;               /* 1: one packet per send (by default runs of
                             * packets of one size go as UDP GSO super-packets,
                             * where the kernel has it and the device can
                             * checksum them) */
  int verbose;
  int no_backlog_pacing;    /* 1: ignore receivers' queue reports (only their
                             * drops slow the sender down; for comparison) */
  /* chunks the read-ahead thread loads ahead of the first pass (0: none,
   * every chunk is read on the sending thread; with it, read_chunk must be
   * safe to call from two threads at once) */
  uint32_t read_ahead;
  /* copies chunk idx (len bytes) into buf; 0 on success */
  int (*read_chunk) (void *user, uint32_t idx, uint8_t *buf, size_t len);
  /* a receiver joined / completed / was evicted / failed (sender thread) */
  void (*on_node) (void *node_user, const smc_node_info *node);
  /* a receiver still in the session reported more chunks verified
   * (node->last.chunks_done; sender thread), at most every progress_ms
   * (0: 250) for each receiver */
  void (*on_progress) (void *node_user, const smc_node_info *node);
  uint32_t progress_ms;
  void *user;               /* for read_chunk */
  void *node_user;          /* for on_node and on_progress */
} smc_sender_config;

/* how long a receiver's disk must be that slow before it is evicted */
#define SMC_SLOW_HOLD_MS 2000

typedef struct smc_sender smc_sender;

void smc_sender_config_init (smc_sender_config *c);
smc_sender *smc_sender_new (const smc_sender_config *c, char *err, size_t errlen);
void smc_sender_free (smc_sender *s);
/* Runs the session to its end (blocking). 0: every receiver completed;
 * 1: some failed or were evicted; -1: fatal error. */
int smc_sender_run (smc_sender *s);
/* thread-safe: makes run() end soon (announces END to the group) */
void smc_sender_cancel (smc_sender *s);
/* thread-safe: the receiver of node id leaves the session (its machine
 * was taken out of the group): it is not waited for, whether it joined or
 * not, its repair requests are not served, and each report it sends is
 * answered with a CONTROL EVICT (one is sent at once if it joined); its
 * outcome becomes SMC_NODE_DROPPED, unless it had one already. 0, or -1
 * out of memory */
int smc_sender_drop_node (smc_sender *s, uint32_t node);
const smc_sender_stats *smc_sender_get_stats (smc_sender *s);
size_t smc_sender_get_nodes (smc_sender *s, const smc_node_info **nodes);
/* the join instruction for one receiver (node id) */
int smc_sender_join_string (smc_sender *s, uint32_t node, char *out, size_t cap);
uint16_t smc_sender_symbol_size (smc_sender *s);
const char *smc_node_outcome_str (int outcome);
/* a STATUS reason (smc_leave_reason): "-", "mtu", "path-mtu", or "unknown" */
const char *smc_leave_reason_str (int reason);
/* an smc_evict_cause: "-", "loss", "min-rate", "behind", "receiver" */
const char *smc_evict_cause_str (int cause);

#ifdef __cplusplus
}
#endif
