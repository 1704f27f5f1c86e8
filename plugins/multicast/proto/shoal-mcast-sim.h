/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-sim.h: a whole session in one process, in virtual time.
 *
 * The sender and receivers are the real ones (shoal-mcast-sender.c,
 * shoal-mcast-receiver.c), opened offline: no socket, what they send goes
 * to a tap, and the simulation hands each packet to its destinations after
 * a latency, losing what the configured loss (or the caller's filter) says.
 * Nothing is sent on any network. Time is the simulation's (smc_set_clock),
 * so a session of seconds runs in the time its computing takes, and a
 * seed replays it exactly. The tests, the session fuzzer and
 * shoal-mcast-sim use it. */
#pragma once

#include "shoal-mcast-net.h"
#include "shoal-mcast-receiver.h"
#include "shoal-mcast-sender.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the offline halves of the sender and receiver ---- */

/* as smc_receiver_new, with sends going to tap; nothing is received but
 * what smc_receiver_input hands it */
smc_receiver *smc_receiver_new_offline (const smc_receiver_config *c, smc_tap_fn tap, void *tap_user,
                                        char *err, size_t errlen);
void smc_receiver_start (smc_receiver *r, uint64_t now);
void smc_receiver_input (smc_receiver *r, const uint8_t *pkt, size_t len, const struct sockaddr_in *from,
                         uint64_t now);
/* its socket as the caller models it: receive queue fill (‰), how long a
 * packet queued now waits to be read (ns), the packets dropped so far
 * because it was full (drops, SO_MEMINFO), and that count as the packets
 * read so far carry it (overflow, SO_RXQ_OVFL: as it was when the last of
 * them was queued) */
void smc_receiver_set_socket (smc_receiver *r, uint16_t backlog_permille, uint64_t delay_ns, uint32_t drops,
                              uint32_t overflow);
/* what its hash-and-write path takes, as the caller models it: STATUS
 * says kBps while chunks are written (an offline receiver measures
 * nothing; 0, the default, says nothing) */
void smc_receiver_set_drain (smc_receiver *r, uint32_t kBps);
/* one turn of its loop after n packets were input at now (queue_empty:
 * none waits in its socket); when it wants the next (UINT64_MAX once
 * finished) */
uint64_t smc_receiver_step (smc_receiver *r, int n, int queue_empty, uint64_t now);
int smc_receiver_finished (const smc_receiver *r);
/* after it finished (or to stop it): settles what is left for unicast, as
 * smc_receiver_run returns; its return value */
int smc_receiver_end (smc_receiver *r);

smc_sender *smc_sender_new_offline (const smc_sender_config *c, smc_tap_fn tap, void *tap_user,
                                    char *err, size_t errlen);
void smc_sender_start (smc_sender *s, uint64_t now);
void smc_sender_input (smc_sender *s, const uint8_t *pkt, size_t len, const struct sockaddr_in *from,
                       uint64_t now);
/* one turn of its loop (timers, paced sending) at now; when it wants the
 * next (UINT64_MAX once the session ended) */
uint64_t smc_sender_step (smc_sender *s, uint64_t now);
/* as smc_sender_run returns, once ended; -1 before */
int smc_sender_outcome (smc_sender *s);

/* ---- the simulation ---- */

#define SMC_SIM_MAX_RECEIVERS 256

typedef struct smc_sim smc_sim;

/* what becomes of one packet on its way to `to` (0: the sender, i: receiver i) */
enum { SMC_SIM_DELIVER = 0, SMC_SIM_DROP = 1 };

typedef struct {
  const uint8_t *image;     /* the image, in memory */
  size_t image_len;
  uint32_t chunk_size;      /* default 1 MiB */
  uint16_t mtu;             /* default 1500 */
  uint32_t receivers;       /* 1 .. SMC_SIM_MAX_RECEIVERS */
  uint32_t loss_ppm;        /* each receiver loses this share (per million), independently,
                             * of every packet the sender sends (as the benchmark's nftables
                             * rule); feedback is not lost */
  uint64_t rate_bps;        /* the sender's cap, wire bits/s (default 1 Gbit/s) */
  uint64_t rate_min_bps;    /* smc_sender_config.rate_min_bps (default 0) */
  uint64_t latency_ns;      /* one way, every path (default 50 µs) */
  uint64_t time_limit_ns;   /* virtual; the session is stopped there (default 120 s) */
  uint64_t seed;
  int no_key;               /* 1: no session key (packets unauthenticated) */
  int verbose;              /* the sender's and receivers' logs on stderr */
  uint64_t kill_ns[SMC_SIM_MAX_RECEIVERS + 1]; /* receiver i stops dead then (0: never) */
  /* the sender's caller drops receiver i's node then (smc_sender_drop_node,
   * as the step does for a device taken out of the group; 0: never) */
  uint64_t drop_ns[SMC_SIM_MAX_RECEIVERS + 1];
  /* receiver i takes packets from its socket at this many bytes/s at most
   * (0: as they come): a receiver slower than the sender, whose queue
   * fills (its fill reported as a real socket's) and overflows past
   * rcvbuf bytes (its drops counted as SO_RXQ_OVFL) */
  uint64_t intake_Bps[SMC_SIM_MAX_RECEIVERS + 1];
  uint32_t rcvbuf;          /* each receiver's socket buffer, with an intake rate (64 MiB, as
                             * smc_receiver's) */
  /* what receiver i says its hash-and-write path takes (STATUS drain),
   * bytes/s (0: it says nothing); with intake_Bps, a slow disk */
  uint64_t drain_Bps[SMC_SIM_MAX_RECEIVERS + 1];
  uint32_t slow_ratio_permille; /* smc_sender_config's (default 500) */
  uint32_t window_chunks;   /* smc_sender_config's: 0, Reed-Solomon blocks (default) */
  /* called for every packet on its way (after the loss above spared it):
   * SMC_SIM_DELIVER or SMC_SIM_DROP; it may change the packet in place
   * (*len at most cap bytes) and send others with smc_sim_inject */
  int (*filter) (void *user, smc_sim *sim, uint32_t from, uint32_t to, uint8_t *pkt, size_t *len, size_t cap);
  void *user;
} smc_sim_config;

typedef struct {
  int rc;                   /* smc_receiver_end */
  int complete;             /* every chunk verified and written, after unicast */
  uint32_t chunks_unicast;  /* left for unicast by the multicast part (then supplied) */
  uint32_t bad_writes;      /* chunks written with bytes other than the image's: never */
  uint32_t writes;
  uint32_t overflow;        /* packets its full socket buffer dropped */
  uint64_t finished_ns;     /* when its multicast part ended (0: killed) */
  smc_receiver_stats st;
} smc_sim_receiver_result;

typedef struct {
  int sender_rc;            /* smc_sender_outcome: 0 every receiver completed */
  uint64_t end_ns;          /* when the sender's session ended */
  uint64_t egress_bytes;    /* the sender's packets on the wire (+ Ethernet, IP, UDP) */
  uint64_t egress_pkts;
  smc_sender_stats sender;
  uint32_t n_nodes;
  smc_node_info nodes[SMC_SIM_MAX_RECEIVERS];
  smc_sim_receiver_result rcv[SMC_SIM_MAX_RECEIVERS + 1]; /* 1 .. receivers */
} smc_sim_result;

void smc_sim_config_init (smc_sim_config *c);
/* len bytes that look random, the same for one seed: an image that no
 * chunk of repeats or leaves out */
void smc_sim_fill (uint8_t *buf, size_t len, uint64_t seed);
/* runs a session to its end (or the time limit); 0, or -1 with err said
 * when it could not be set up */
int smc_sim_run (const smc_sim_config *c, smc_sim_result *res, char *err, size_t errlen);

/* from a filter: send pkt (signed with the session key first when sign)
 * as `from` (0: the sender, i: receiver i) to `to` (0: the sender, i:
 * receiver i, UINT32_MAX: every receiver), after the latency */
void smc_sim_inject (smc_sim *sim, uint32_t from, uint32_t to, const uint8_t *pkt, size_t len, int sign);
/* signs pkt in place with the session key (as any member of the group
 * can: the key is the group's); nothing without a key */
void smc_sim_sign (smc_sim *sim, uint8_t *pkt, size_t len);
uint64_t smc_sim_now (const smc_sim *sim);

#ifdef __cplusplus
}
#endif
