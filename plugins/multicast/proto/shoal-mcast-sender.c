/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-sender.c: paced multicast sender with NACK-driven FEC repair */
#include "shoal-mcast-sender.h"
#include "shoal-mcast-keyset.h"

#include "shoal-mcast-fec.h"
#include "shoal-mcast-net.h"
#include "shoal-mcast-sim.h"
#include "shoal-mcast-wc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Chunks kept in memory for repairs: 32 MiB of them (8 to 64 chunks).
 * Receivers ask for repair when they have read the block's packets, and a
 * receiver slower than the sender lags by what its socket holds: with 8
 * chunks, at MTU 9000 and 5 % loss, one receiver's repairs read 150 of
 * the 128 chunks a second time (from the page cache, 1 MiB each, on the
 * sending thread) and it got 670-707 MB/s; with 32, none, 715-762. */
#define CACHE_BYTES (32u << 20)
#define CACHE_MIN 8
#define CACHE_MAX 64
#define WIRE_OVERHEAD 42     /* Ethernet 14 + IPv4 20 + UDP 8 */
/* ‰: a receiver whose receive queue is this full is far behind: its
 * intake, not a fraction of the rate, is what the sender slows to */
#define BACKLOG_FULL 750
#define MS 1000000ull
/* parity runs remembered per block: a receiver behind its socket (a slow
 * disk) NACKs a block again before the parity sent for it reaches it, each
 * NACK answered by a run; with 4, the fifth run made the first forgotten,
 * its parity was taken for lost and sent again (shoal-mcast-sim, N=16, 5 %,
 * receivers taking 60 MB/s: egress 1.197, with 8 1.153; 8 and 16 the same) */
#define RUNS 8
#define CYCLE_MS 60
/* parity sent after the last packet a NACK's receiver had taken is in
 * flight to it, not lost: it may be in its socket, behind what it has not
 * taken yet (128 receivers on two cores lag far behind the sender). But a
 * receiver that takes nothing at all (a loss burst that outlasts the pass)
 * says the same 'seen' in every NACK and would never be repaired again:
 * once its NACKs have said the same 'seen' for STALL_MS, parity sent more
 * than INFLIGHT_MS ago is taken as lost. (With that for every receiver, a
 * lagging one had the sender resend what it had queued: 128 receivers at
 * 1 % loss sent 12,000 NACKs instead of 1,000.) */
#define STALL_MS 20
#define INFLIGHT_MS 30

typedef struct {
  uint32_t idx;
  int valid;
  uint64_t used;
  uint64_t pinned;   /* batch number whose packets point into buf (first pass) */
  uint8_t *buf;
} cache_ent;

/* a source symbol asked for again (SRCREQ) */
typedef struct {
  uint32_t chunk;
  uint16_t esi;
} resend;

/* Source symbols asked for again get one copy however many receivers ask,
 * and however often one asks while they wait in the queue (an outage of
 * 100 ms at 1 Gbit/s is 8,000 symbols: seconds of requests every 10 ms
 * before the last is sent): the queued ones are a set (exact), and those
 * sent in the last RESEND_DEDUP_MS (on their way) a table keyed by chunk
 * and symbol, overwritten on collision (a duplicate at worst). */
#define RECENT_SLOTS 4096
#define RESEND_DEDUP_MS 5
/* the blocks of the first pass whose repair would be asked for after it
 * (as late as requests come lately, and TAIL_SLACK_MS) are sent with
 * parity for the loss the receivers report (block_done_proactive) */
#define TAIL_SLACK_MS 2
#define ASK_MS_MAX 100

typedef struct {
  uint32_t chunk;
  uint8_t block, j0, count, proactive;
} repair;

/* window mode: repair symbols of one window sent back to back, serials
 * serial0 .. serial0 + count - 1, after the packet of sequence number seq
 * (the last SDATA or ANNOUNCE before them: a receiver that has processed a
 * later one has had each of them, or lost it) */
typedef struct {
  uint32_t serial0, count, seq, ms;
} wrun;

typedef struct {
  uint32_t k;                  /* source symbols */
  uint32_t serial;             /* the next repair serial */
  uint32_t queued;             /* repair symbols queued, not sent yet */
  uint32_t cap_base;           /* serials sent before the last group cut (a
                                * congested path): not counted in the cap */
  uint32_t run_next;
  wrun runs[RUNS];
} wstate;

typedef struct {
  uint32_t window, count;
  uint8_t code;                /* degree code of its ids (smc_wc_degree_code) */
} wrepair;

/* a chunk the read-ahead thread loads for the first pass */
enum { RA_LOADING, RA_READY, RA_FAILED };
typedef struct {
  uint8_t *buf;
  uint32_t idx;
  int state;
} ra_slot;

/* parity symbols of one block sent back to back: sequence numbers
 * seq0 .. seq0 + count - 1 */
typedef struct {
  uint32_t seq0;
  uint16_t count;
  uint32_t ms;                 /* when it was sent (ms_of) */
} prun;

struct smc_sender {
  smc_sender_config cfg;
  const smc_manifest *m;
  smc_sock sock;               /* group:port, joined: NACKs */
  smc_sock tx;                 /* ephemeral port: everything sent, STATUS replies */
  smc_auth *auth;
  smc_rxbatch rx;
  uint16_t S;
  uint8_t nbmax;
  uint8_t *next_parity;        /* n_chunks * nbmax */
  uint32_t *parity_ms;         /* n_chunks * nbmax: when parity was last queued or sent */
  uint32_t *end_ms;            /* n_chunks * nbmax: when the first pass sent the block's
                                * last source symbol; 0 not yet, UINT32_MAX once a
                                * repair request for it was timed (ask_latency) */
  prun *runs;                  /* n_chunks * nbmax * RUNS: the latest parity runs */
  uint8_t *run_next;           /* n_chunks * nbmax: next slot in runs */
  uint8_t *cycle;              /* n_chunks * nbmax: next parity to resend once all were used */
  uint16_t *queued;            /* n_chunks * nbmax: parity symbols queued, not sent yet */
  cache_ent *cache;
  int cache_n;
  uint64_t cache_clock;
  size_t cache_len;
  /* read-ahead (cfg.read_ahead > 0): a thread loads the next chunks of the
   * first pass into a ring; the sender swaps a loaded buffer with the
   * cache's victim instead of reading on its own thread */
  ra_slot *ra;
  uint32_t ra_n, ra_head, ra_count, ra_next;
  int ra_started, ra_stop;
  pthread_t ra_thread;
  pthread_mutex_t ra_mu;
  pthread_cond_t ra_cv;
  /* position of the first pass: the group of up to `lanes` chunks being
   * sent, in rounds. Round cur_src is symbol cur_src of every chunk of the
   * group (grp[0], grp[1], ...) or, with blocks interleaved, symbol cur_src
   * of every block of every chunk (block 0 of each chunk, block 1 of each,
   * ...): a loss burst is then spread over all the group's blocks instead
   * of taking one. cur_chunk is the group's last chunk (UINT32_MAX before
   * the first). */
  int state;
  int interleave;                  /* blocks interleaved (SMC_ANN_INTERLEAVED) */
  int solo;                        /* the last ANNOUNCE said SMC_ANN_SOLO */
  int solo_repeats;                /* ANNOUNCEs still to send soon for a change of it */
  uint64_t pass_left;              /* bytes the first pass has still to send */
  uint32_t ask_ms;                 /* how long after the first pass sent a block the
                                    * first request to repair it comes (recent high) */
  uint8_t lanes, grp_n, cur_lane, cur_blk;
  uint8_t grp_nb;                  /* most blocks of the group's chunks */
  uint32_t grp[SMC_MAX_LANES];
  smc_geom grp_g[SMC_MAX_LANES];
  uint16_t grp_src;                /* rounds in the group: most source symbols of its
                                    * chunks, or of their blocks */
  uint32_t cur_chunk;
  uint16_t cur_src;
  /* repair FIFO */
  repair *rq;
  size_t rq_head, rq_len, rq_cap;
  /* source symbols to send again, FIFO, and the ones sent lately */
  resend *sq;
  size_t sq_head, sq_len, sq_cap;
  smc_keyset queued_src;           /* the symbols in sq: (chunk << 16 | esi) + 1 */
  uint64_t *recent_key;        /* RECENT_SLOTS: the same keys (0: empty) */
  uint32_t *recent_ms;          /* when it was sent */
  uint64_t batch_no;           /* send_some calls: cache entries pinned by the batch being filled */
  /* outgoing batch: pkt[i] holds the whole packet, or (source symbols, sent
   * without copying the payload) the header and, after it, the tag while
   * pay[i] points into the chunk cache */
  uint8_t *pkt[SMC_BATCH];
  size_t plen[SMC_BATCH];          /* whole packet length */
  const uint8_t *pay[SMC_BATCH];
  size_t paylen[SMC_BATCH];
  uint32_t seq_mc, seq_ctl;
  /* pacing */
  double rate_Bps, cap_Bps, tokens;
  int slow_start;
  uint32_t group_loss_run;   /* rate cuts in a row for most receivers losing
                              * more than max_loss (a congested path) */
  uint64_t last_group_cut;
  uint64_t last_refill, last_signal, last_increase;
  /* timers */
  uint64_t next_announce, state_since, end_announces;
  smc_node_info *nodes;
  uint8_t *strikes;
  uint64_t *strike_ns;       /* when each node's first strike came */
  size_t n_nodes, nodes_cap;
  smc_sender_stats st;
  volatile int cancelled;
  /* nodes the caller dropped (smc_sender_drop_node): asked, under drop_mu,
   * and taken in by the sending thread's timers */
  pthread_mutex_t drop_mu;
  uint32_t *drop_asked;
  size_t drop_asked_n, drop_asked_cap;
  uint32_t *dropped;               /* sending thread's */
  size_t n_dropped, dropped_cap;
  uint32_t dropped_absent;         /* of them, those that had not joined */
  /* window mode (wc > 0): chunks that are not all-zero, by rank, in
   * windows of wc; each window's repair state; repairs queued, FIFO */
  uint32_t wc, n_windows, nz, wk_max;
  uint32_t *rank;                  /* n_chunks + 1: not-all-zero chunks before c */
  uint32_t *byrank;                /* the chunk of each rank */
  wstate *win;
  const uint8_t **wsrc;            /* wk_max: the source symbols of the window encoded */
  wrepair *wq;
  size_t wq_head, wq_len, wq_cap;
  size_t hl, tl;                   /* head and tag bytes of a DATA or SDATA packet */
};

static void vlog (smc_sender *s, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static int ra_start (smc_sender *s);

static void
vlog (smc_sender *s, const char *fmt, ...)
{
  va_list ap;
  if (!s->cfg.verbose)
    return;
  va_start (ap, fmt);
  fprintf (stderr, "smc-sender: ");
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
}

const char *
smc_leave_reason_str (int reason)
{
  switch (reason) {
  case SMC_REASON_NONE: return "-";
  case SMC_REASON_MTU: return "mtu";
  case SMC_REASON_PATH_MTU: return "path-mtu";
  default: return "unknown";
  }
}

const char *
smc_evict_cause_str (int cause)
{
  switch (cause) {
  case SMC_EVICT_NONE: return "-";
  case SMC_EVICT_LOSS: return "loss";
  case SMC_EVICT_FLOOR: return "min-rate";
  case SMC_EVICT_BEHIND: return "behind";
  case SMC_EVICT_SELF: return "receiver";
  case SMC_EVICT_SLOW: return "slow-disk";
  default: return "unknown";
  }
}

const char *
smc_node_outcome_str (int o)
{
  switch (o) {
  case 0: return "receiving";
  case SMC_NODE_JOINED: return "joined";
  case SMC_NODE_COMPLETE: return "complete";
  case SMC_NODE_EVICTED: return "evicted-to-unicast";
  case SMC_NODE_FAILED: return "failed";
  case SMC_NODE_NEVER_JOINED: return "never-joined";
  case SMC_NODE_DROPPED: return "dropped";
  default: return "unknown";
  }
}

void
smc_sender_config_init (smc_sender_config *c)
{
  memset (c, 0, sizeof *c);
  c->mtu = 1500;
  c->max_k = SMC_DEFAULT_K;
  c->join_wait_ms = 5000;
  c->node_timeout_ms = 3000;
  c->drain_timeout_ms = 60000;
  c->max_loss_permille = 250;
  c->slow_ratio_permille = 500;
}

static int
geom_of (smc_sender *s, uint32_t c, smc_geom *g)
{
  return smc_geom_init (g, smc_manifest_chunk_len (s->m, c), s->S, s->cfg.max_k);
}

/* window mode: the windows of chunks that are not all-zero, wc each,
 * their sizes in symbols; the cache holds two windows and the group being
 * sent (the repairs of one while the first pass sends the next). n_src:
 * the symbols of a whole chunk. 0, or -1 with err */
static int
window_init (smc_sender *s, uint32_t n_src, char *err, size_t errlen)
{
  uint32_t wc = s->cfg.window_chunks;
  if (wc > SMC_MAX_WINDOW_CHUNKS)
    wc = SMC_MAX_WINDOW_CHUNKS;
  if ((uint64_t) wc * n_src > SMC_WC_MAX_K)
    wc = SMC_WC_MAX_K / n_src;
  wc = (wc + s->lanes - 1) / s->lanes * s->lanes;
  while (wc > s->lanes && (wc > SMC_MAX_WINDOW_CHUNKS || (uint64_t) wc * n_src > SMC_WC_MAX_K))
    wc -= s->lanes;
  if (wc == 0 || wc > SMC_MAX_WINDOW_CHUNKS || (uint64_t) wc * n_src > SMC_WC_MAX_K) {
    snprintf (err, errlen, "no window of whole groups of %u chunks fits %u symbols", s->lanes, SMC_WC_MAX_K);
    return -1;
  }
  s->wc = wc;
  s->rank = malloc (((size_t) s->m->n_chunks + 1) * sizeof *s->rank);
  s->byrank = malloc (((size_t) s->m->n_chunks + 1) * sizeof *s->byrank);
  if (s->rank == NULL || s->byrank == NULL)
    goto oom;
  for (uint32_t c = 0; c < s->m->n_chunks; c++) {
    s->rank[c] = s->nz;
    if (!(s->m->flags[c] & SMC_CHUNK_ZERO))
      s->byrank[s->nz++] = c;
  }
  s->rank[s->m->n_chunks] = s->nz;
  s->n_windows = (s->nz + wc - 1) / wc;
  s->win = calloc (s->n_windows ? s->n_windows : 1, sizeof *s->win);
  if (s->win == NULL)
    goto oom;
  for (uint32_t r = 0; r < s->nz; r++) {
    smc_geom g;
    if (geom_of (s, s->byrank[r], &g) < 0) {
      snprintf (err, errlen, "chunk %u has no geometry", s->byrank[r]);
      return -1;
    }
    s->win[r / wc].k += g.n_src;
  }
  for (uint32_t w = 0; w < s->n_windows; w++)
    if (s->win[w].k > s->wk_max)
      s->wk_max = s->win[w].k;
  s->wsrc = malloc (((size_t) s->wk_max + 1) * sizeof *s->wsrc);
  s->wq_cap = 256;
  s->wq = malloc (s->wq_cap * sizeof *s->wq);
  if (s->wsrc == NULL || s->wq == NULL)
    goto oom;
  if ((uint32_t) s->cache_n < 2 * wc + s->lanes + 2)
    s->cache_n = (int) (2 * wc + s->lanes + 2);
  return 0;
oom:
  snprintf (err, errlen, "out of memory");
  return -1;
}

/* with a tap: offline (shoal-mcast-sim.h), no sockets */
static smc_sender *
sender_new (const smc_sender_config *c, smc_tap_fn tap, void *tap_user, char *err, size_t errlen)
{
  smc_sender *s;
  smc_geom g;
  int mtu = c->mtu ? c->mtu : 1500;
  if (c->manifest == NULL || c->read_chunk == NULL || c->group == NULL) {
    snprintf (err, errlen, "manifest, read_chunk and group are required");
    return NULL;
  }
  if (mtu < 576 || mtu > 65535 || c->max_k < 2 || c->max_k > SMC_MAX_K) {
    snprintf (err, errlen, "bad mtu %d or FEC block size %u", mtu, c->max_k);
    return NULL;
  }
  if (c->lanes > SMC_MAX_LANES) {
    snprintf (err, errlen, "at most %d chunks can be interleaved, not %u", SMC_MAX_LANES, c->lanes);
    return NULL;
  }
  s = calloc (1, sizeof *s);
  pthread_mutex_init (&s->drop_mu, NULL);
  s->cfg = *c;
  s->lanes = c->lanes ? c->lanes : SMC_DEFAULT_LANES;
  s->m = c->manifest;
  s->S = (uint16_t) (mtu - SMC_IPUDP_OVERHEAD - (c->window_chunks ? SMC_SHORT_OVERHEAD : SMC_DATA_OVERHEAD));
  s->hl = c->window_chunks ? SMC_SHORT_HDR_LEN : SMC_DATA_HDR_LEN;
  s->tl = c->window_chunks ? SMC_SHORT_TAG_LEN : SMC_TAG_LEN;
  if (smc_geom_init (&g, s->m->chunk_size, s->S, c->max_k) < 0) {
    snprintf (err, errlen, "chunk size %u too large for symbol size %u", s->m->chunk_size, s->S);
    pthread_mutex_destroy (&s->drop_mu);
    free (s);
    return NULL;
  }
  s->nbmax = g.n_blocks;
  s->cache_len = (size_t) g.n_src * s->S;
  s->next_parity = calloc ((size_t) s->m->n_chunks * s->nbmax, 1);
  s->parity_ms = calloc ((size_t) s->m->n_chunks * s->nbmax, sizeof *s->parity_ms);
  s->end_ms = calloc ((size_t) s->m->n_chunks * s->nbmax, sizeof *s->end_ms);
  s->cycle = calloc ((size_t) s->m->n_chunks * s->nbmax, 1);
  s->runs = calloc ((size_t) s->m->n_chunks * s->nbmax * RUNS, sizeof *s->runs);
  s->run_next = calloc ((size_t) s->m->n_chunks * s->nbmax, 1);
  s->queued = calloc ((size_t) s->m->n_chunks * s->nbmax, sizeof *s->queued);
  s->cache_n = (int) (CACHE_BYTES / s->cache_len);
  s->cache_n = s->cache_n < CACHE_MIN ? CACHE_MIN : s->cache_n > CACHE_MAX ? CACHE_MAX : s->cache_n;
  if (c->window_chunks > 0 && window_init (s, g.n_src, err, errlen) < 0) {
    smc_sender_free (s);
    return NULL;
  }
  s->cache = calloc ((size_t) s->cache_n, sizeof *s->cache);
  for (int i = 0; s->cache != NULL && i < s->cache_n; i++)
    if ((s->cache[i].buf = malloc (s->cache_len)) == NULL)
      s->cache_n = i;
  for (int i = 0; i < SMC_BATCH; i++)
    s->pkt[i] = malloc ((size_t) mtu);
  s->rq_cap = 1024;
  s->rq = malloc (s->rq_cap * sizeof *s->rq);
  s->sq_cap = 1024;
  s->sq = malloc (s->sq_cap * sizeof *s->sq);
  smc_keyset_init (&s->queued_src);
  s->recent_key = calloc (RECENT_SLOTS, sizeof *s->recent_key);
  s->recent_ms = calloc (RECENT_SLOTS, sizeof *s->recent_ms);
  if (smc_rxbatch_init (&s->rx, 65536) < 0 || s->next_parity == NULL || s->parity_ms == NULL || s->end_ms == NULL || s->cycle == NULL || s->queued == NULL ||
      s->runs == NULL || s->run_next == NULL || s->cache == NULL || s->cache_n < CACHE_MIN || s->rq == NULL ||
      s->sq == NULL || s->queued_src.k == NULL || s->recent_key == NULL || s->recent_ms == NULL) {
    snprintf (err, errlen, "out of memory");
    smc_sender_free (s);
    return NULL;
  }
  if (tap != NULL ? smc_sock_open_offline (&s->sock, c->group, c->port, tap, tap_user) < 0 ||
                      smc_sock_open_offline (&s->tx, c->group, c->port, tap, tap_user) < 0
                  : smc_sock_open (&s->sock, c->group, c->port, c->iface, 0, 8 << 20) < 0 ||
                      smc_sock_open_tx (&s->tx, c->group, c->port, c->iface, 4 << 20, 4 << 20) < 0) {
    snprintf (err, errlen, "cannot open multicast socket %s:%u on %s: %s", c->group, c->port,
              c->iface ? c->iface : "(default)", strerror (errno));
    smc_sender_free (s);
    return NULL;
  }
  if (c->has_key && (s->auth = smc_auth_new (c->key, s->m->id)) == NULL) {
    snprintf (err, errlen, "cannot set up packet authentication");
    smc_sender_free (s);
    return NULL;
  }
  s->cap_Bps = (double) (c->rate_max_bps ? c->rate_max_bps : 10000000000ull) / 8.0;
  /* slow start from 1 Gbit/s (or the configured start): receivers that
   * cannot take the cap are not flooded before their first report */
  s->rate_Bps = c->rate_start_bps ? (double) c->rate_start_bps / 8.0 : 125e6;
  s->slow_start = 1;
  if (s->rate_Bps > s->cap_Bps)
    s->rate_Bps = s->cap_Bps;
  s->cur_chunk = UINT32_MAX;
  s->batch_no = 1;
  s->interleave = c->interleave_blocks != 0;
  if (c->read_ahead > 0 && ra_start (s) < 0) {
    snprintf (err, errlen, "cannot start the read-ahead thread");
    smc_sender_free (s);
    return NULL;
  }
  return s;
}

smc_sender *
smc_sender_new (const smc_sender_config *c, char *err, size_t errlen)
{
  return sender_new (c, NULL, NULL, err, errlen);
}

smc_sender *
smc_sender_new_offline (const smc_sender_config *c, smc_tap_fn tap, void *tap_user, char *err, size_t errlen)
{
  if (tap == NULL) {
    snprintf (err, errlen, "an offline sender needs a tap");
    return NULL;
  }
  return sender_new (c, tap, tap_user, err, errlen);
}

void
smc_sender_free (smc_sender *s)
{
  if (s == NULL)
    return;
  if (s->ra_started) {
    pthread_mutex_lock (&s->ra_mu);
    s->ra_stop = 1;
    pthread_cond_broadcast (&s->ra_cv);
    pthread_mutex_unlock (&s->ra_mu);
    pthread_join (s->ra_thread, NULL);
  }
  if (s->ra != NULL) {
    for (uint32_t i = 0; i < s->ra_n; i++)
      free (s->ra[i].buf);
    free (s->ra);
    pthread_mutex_destroy (&s->ra_mu);
    pthread_cond_destroy (&s->ra_cv);
  }
  smc_sock_close (&s->sock);
  smc_sock_close (&s->tx);
  smc_auth_free (s->auth);
  smc_rxbatch_free (&s->rx);
  for (int i = 0; s->cache != NULL && i < s->cache_n; i++)
    free (s->cache[i].buf);
  free (s->cache);
  for (int i = 0; i < SMC_BATCH; i++)
    free (s->pkt[i]);
  free (s->rq);
  free (s->sq);
  smc_keyset_clear (&s->queued_src);
  free (s->recent_key);
  free (s->recent_ms);
  free (s->next_parity);
  free (s->parity_ms);
  free (s->end_ms);
  free (s->cycle);
  free (s->runs);
  free (s->run_next);
  free (s->queued);
  free (s->nodes);
  free (s->strikes);
  free (s->strike_ns);
  free (s->drop_asked);
  free (s->dropped);
  free (s->rank);
  free (s->byrank);
  free (s->win);
  free (s->wsrc);
  free (s->wq);
  pthread_mutex_destroy (&s->drop_mu);
  free (s);
}

void smc_sender_cancel (smc_sender *s) { __atomic_store_n (&s->cancelled, 1, __ATOMIC_SEQ_CST); }

/* appends id to *ids (*n of *cap); -1 out of memory */
static int
ids_add (uint32_t **ids, size_t *n, size_t *cap, uint32_t id)
{
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 8;
    uint32_t *nids = realloc (*ids, c * sizeof *nids);
    if (nids == NULL)
      return -1;
    *ids = nids;
    *cap = c;
  }
  (*ids)[(*n)++] = id;
  return 0;
}

int
smc_sender_drop_node (smc_sender *s, uint32_t node)
{
  int rc;
  pthread_mutex_lock (&s->drop_mu);
  rc = ids_add (&s->drop_asked, &s->drop_asked_n, &s->drop_asked_cap, node);
  pthread_mutex_unlock (&s->drop_mu);
  return rc;
}
const smc_sender_stats *smc_sender_get_stats (smc_sender *s) { return &s->st; }
uint16_t smc_sender_symbol_size (smc_sender *s) { return s->S; }

size_t
smc_sender_get_nodes (smc_sender *s, const smc_node_info **nodes)
{
  *nodes = s->nodes;
  return s->n_nodes;
}

int
smc_sender_join_string (smc_sender *s, uint32_t node, char *out, size_t cap)
{
  smc_join j;
  memset (&j, 0, sizeof j);
  snprintf (j.group, sizeof j.group, "%s", s->cfg.group);
  j.port = s->cfg.port;
  j.session = s->cfg.session;
  memcpy (j.manifest_hash, s->m->id, SMC_HASH_LEN);
  j.has_key = s->cfg.has_key;
  memcpy (j.key, s->cfg.key, SMC_KEY_LEN);
  j.node = node;
  return smc_join_format (&j, out, cap);
}

static inline uint32_t
ms_of (smc_sender *s, uint64_t now)
{
  return (uint32_t) ((now - s->st.start_ns) / MS) + 1;
}

/* ---------------- chunk cache and read-ahead ---------------- */

/* chunk idx into buf, zero-padded to whole symbols for coding: 0, or -1
 * when read_chunk failed (the read-ahead thread runs it too) */
static int
load_chunk (smc_sender *s, uint32_t idx, uint8_t *buf)
{
  uint32_t len = smc_manifest_chunk_len (s->m, idx);
  __atomic_add_fetch (&s->st.chunk_reads, 1, __ATOMIC_RELAXED);
  if (s->cfg.read_chunk (s->cfg.user, idx, buf, len) != 0)
    return -1;
  memset (buf + len, 0, s->cache_len - len);
  return 0;
}

static void *
ra_main (void *data)
{
  smc_sender *s = data;
  pthread_mutex_lock (&s->ra_mu);
  while (!s->ra_stop) {
    ra_slot *slot;
    uint32_t idx = s->ra_next;
    int rc;
    while (idx < s->m->n_chunks && (s->m->flags[idx] & SMC_CHUNK_ZERO))
      idx++;
    if (s->ra_count == s->ra_n || idx >= s->m->n_chunks) {
      pthread_cond_wait (&s->ra_cv, &s->ra_mu);
      continue;
    }
    slot = &s->ra[(s->ra_head + s->ra_count) % s->ra_n];
    slot->idx = idx;
    slot->state = RA_LOADING;
    s->ra_count++;
    s->ra_next = idx + 1;
    pthread_mutex_unlock (&s->ra_mu);
    rc = load_chunk (s, idx, slot->buf);
    pthread_mutex_lock (&s->ra_mu);
    slot->state = rc == 0 ? RA_READY : RA_FAILED;
    pthread_cond_broadcast (&s->ra_cv);
  }
  pthread_mutex_unlock (&s->ra_mu);
  return NULL;
}

static int
ra_start (smc_sender *s)
{
  s->ra_n = s->cfg.read_ahead;
  s->ra = calloc (s->ra_n, sizeof *s->ra);
  if (s->ra == NULL)
    return -1;
  pthread_mutex_init (&s->ra_mu, NULL);
  pthread_cond_init (&s->ra_cv, NULL);
  for (uint32_t i = 0; i < s->ra_n; i++)
    if ((s->ra[i].buf = malloc (s->cache_len)) == NULL)
      return -1;
  if (pthread_create (&s->ra_thread, NULL, ra_main, s) != 0)
    return -1;
  s->ra_started = 1;
  return 0;
}

/* frees the ring's oldest slot for the thread (under ra_mu) */
static void
ra_pop (smc_sender *s)
{
  s->ra_head = (s->ra_head + 1) % s->ra_n;
  s->ra_count--;
  pthread_cond_broadcast (&s->ra_cv);
}

/* chunk idx from the read-ahead ring into *buf (buffers swapped): 1; 0
 * when the ring does not hold it (a repair of an older chunk) or its read
 * failed. Ring entries before idx are dropped: the first pass asks for
 * chunks in the order the thread loads them. */
static int
ra_take (smc_sender *s, uint32_t idx, uint8_t **buf)
{
  int got = 0;
  pthread_mutex_lock (&s->ra_mu);
  while (s->ra_count > 0 && s->ra[s->ra_head].idx < idx && s->ra[s->ra_head].state != RA_LOADING)
    ra_pop (s);
  if (s->ra_count > 0 && s->ra[s->ra_head].idx == idx) {
    ra_slot *slot = &s->ra[s->ra_head];
    while (slot->state == RA_LOADING)
      pthread_cond_wait (&s->ra_cv, &s->ra_mu);
    if (slot->state == RA_READY) {
      uint8_t *t = slot->buf;
      slot->buf = *buf;
      *buf = t;
      got = 1;
    }
    ra_pop (s);
  } else if (idx >= s->ra_next) {
    /* the thread has not reached idx (it gets no core while the sending
     * thread and the receivers have both): the caller reads idx itself,
     * and the thread goes on after it instead of reading it a second time */
    s->ra_next = idx + 1;
  }
  pthread_mutex_unlock (&s->ra_mu);
  return got;
}

static cache_ent *
chunk_ent (smc_sender *s, uint32_t idx)
{
  cache_ent *victim = &s->cache[0];
  uint64_t t0;
  int ok;
  for (int i = 0; i < s->cache_n; i++) {
    if (s->cache[i].valid && s->cache[i].idx == idx) {
      s->cache[i].used = ++s->cache_clock;
      return &s->cache[i];
    }
    /* never one the batch being filled points into (first-pass packets
     * are sent from the cache without a copy): repairs of many other
     * chunks in the same batch could otherwise make it the oldest */
    if (s->cache[i].pinned == s->batch_no && s->cache[i].valid)
      continue;
    if (!s->cache[i].valid || s->cache[i].used < victim->used || victim->pinned == s->batch_no)
      victim = &s->cache[i];
  }
  /* the victim is the least recently used of the chunks no packet of the
   * batch being filled points into (at most `lanes` of cache_n >= 8 are) */
  victim->valid = 0;
  t0 = smc_now_ns ();
  ok = (s->ra != NULL && ra_take (s, idx, &victim->buf)) || load_chunk (s, idx, victim->buf) == 0;
  s->st.read_wait_ns += smc_now_ns () - t0;
  if (!ok)
    return NULL;
  victim->idx = idx;
  victim->valid = 1;
  victim->used = ++s->cache_clock;
  return victim;
}

static const uint8_t *
chunk_data (smc_sender *s, uint32_t idx)
{
  cache_ent *e = chunk_ent (s, idx);
  return e != NULL ? e->buf : NULL;
}

/* ---------------- nodes ---------------- */

static smc_node_info *
node_find (smc_sender *s, uint32_t id, size_t *index)
{
  for (size_t i = 0; i < s->n_nodes; i++)
    if (s->nodes[i].node == id) {
      if (index != NULL)
        *index = i;
      return &s->nodes[i];
    }
  return NULL;
}

static smc_node_info *
node_add (smc_sender *s, uint32_t id, const struct sockaddr_in *from, uint64_t now)
{
  smc_node_info *n;
  if (s->n_nodes == s->nodes_cap) {
    size_t cap = s->nodes_cap ? s->nodes_cap * 2 : 16;
    smc_node_info *nn;
    uint8_t *ns;
    uint64_t *nt;
    /* each array is kept as soon as it has grown: a later failure leaves
     * them all valid (with room for at least the nodes they hold) */
    if ((nn = realloc (s->nodes, cap * sizeof *nn)) == NULL)
      return NULL;
    s->nodes = nn;
    if ((ns = realloc (s->strikes, cap)) == NULL)
      return NULL;
    s->strikes = ns;
    if ((nt = realloc (s->strike_ns, cap * sizeof *nt)) == NULL)
      return NULL;
    s->strike_ns = nt;
    s->nodes_cap = cap;
  }
  s->strikes[s->n_nodes] = 0;
  s->strike_ns[s->n_nodes] = 0;
  n = &s->nodes[s->n_nodes++];
  memset (n, 0, sizeof *n);
  n->node = id;
  inet_ntop (AF_INET, &from->sin_addr, n->addr, sizeof n->addr);
  n->joined_ns = now;
  n->last_heard_ns = now;
  vlog (s, "node %u joined from %s", id, n->addr);
  if (s->cfg.on_node != NULL) {
    n->outcome = SMC_NODE_JOINED;
    s->cfg.on_node (s->cfg.node_user, n);
    n->outcome = 0;
  }
  return n;
}

static void
node_finish (smc_sender *s, smc_node_info *n, int outcome, uint64_t now)
{
  if (n->outcome != 0)
    return;
  n->outcome = outcome;
  n->finished_ns = now;
  vlog (s, "node %u: %s (done %u chunks, %u for unicast, loss %u/1000)", n->node,
        smc_node_outcome_str (outcome), n->last.chunks_done, n->last.ext_missing, n->last.loss_permille);
  if (s->cfg.on_node != NULL)
    s->cfg.on_node (s->cfg.node_user, n);
}

/* the sender leaves node n to finish by unicast, for cause, decided on
 * report st (recorded as its last; NULL: already recorded) (the next
 * reports it sends get a CONTROL EVICT in answer) */
static void
node_evict (smc_sender *s, smc_node_info *n, int cause, const smc_status *st, uint64_t now)
{
  if (n->outcome != 0)
    return;
  if (st != NULL)
    n->last = *st;
  n->evict_sent = cause != SMC_EVICT_SELF;
  n->evict_cause = cause;
  node_finish (s, n, SMC_NODE_EVICTED, now);
}

/* ---------------- sending ---------------- */

static void
sign (smc_sender *s, uint8_t *pkt, size_t len)
{
  if (s->auth != NULL)
    smc_auth_sign (s->auth, pkt, len);
}

static void
send_control (smc_sender *s, uint32_t node, uint8_t op, const char *addr)
{
  uint8_t buf[64];
  smc_hdr h = { .session = s->cfg.session, .seq = ++s->seq_ctl };
  smc_control c = { .node = node, .op = op };
  struct sockaddr_in dst = s->sock.group;
  size_t len = smc_build_control (buf, sizeof buf, &h, &c);
  uint8_t *p = buf;
  inet_pton (AF_INET, addr, &dst.sin_addr);
  sign (s, buf, len);
  smc_send_batch (&s->tx, &p, &len, 1, &dst);
  s->st.control_pkts++;
  s->st.bytes += len + WIRE_OVERHEAD;
}

/* whether the caller dropped node id (smc_sender_drop_node) */
static int
is_dropped (const smc_sender *s, uint32_t id)
{
  for (size_t i = 0; i < s->n_dropped; i++)
    if (s->dropped[i] == id)
      return 1;
  return 0;
}

/* receivers expected still to be in the session: those dropped before
 * they joined are not waited for */
static size_t
expected_left (const smc_sender *s)
{
  return s->cfg.expected > s->dropped_absent ? s->cfg.expected - s->dropped_absent : 0;
}

/* receivers in the session: as many as expected, or more if more joined */
static size_t
group_size (const smc_sender *s)
{
  return s->n_nodes > expected_left (s) ? s->n_nodes : expected_left (s);
}

/* receivers still receiving (no outcome yet) */
static size_t
count_active (smc_sender *s)
{
  size_t n = 0;
  for (size_t i = 0; i < s->n_nodes; i++)
    n += s->nodes[i].outcome == 0;
  return n;
}

/* one receiver still receiving, and no other expected: nobody else can
 * use a parity symbol, so its repair is the source symbols it lacks, sent
 * again (no encoding here, no decoding there, the same bytes on the wire) */
static int
solo (smc_sender *s)
{
  return s->wc == 0 && s->cfg.expected > 0 && s->n_nodes >= expected_left (s) && count_active (s) == 1;
}

static void
send_announce (smc_sender *s)
{
  uint8_t buf[128], *p = buf;
  smc_hdr h = { .session = s->cfg.session, .seq = ++s->seq_mc };
  smc_announce a;
  size_t len;
  memcpy (a.manifest_hash, s->m->id, SMC_HASH_LEN);
  a.image_size = s->m->image_size;
  a.chunk_size = s->m->chunk_size;
  a.n_chunks = s->m->n_chunks;
  a.symbol_size = s->S;
  a.max_k = s->cfg.max_k;
  a.lanes = s->lanes;
  s->solo = solo (s);
  a.flags = SMC_ANN_SRCREQ | (s->interleave ? SMC_ANN_INTERLEAVED : 0) | (s->solo ? SMC_ANN_SOLO : 0);
  a.window_chunks = (uint8_t) s->wc;
  if (s->wc > 0)
    a.flags = SMC_ANN_WINDOW;
  {
    size_t n = group_size (s);
    a.receivers = (uint16_t) (n > UINT16_MAX ? UINT16_MAX : n);
  }
  a.state = (uint8_t) s->state;
  a.position = s->state >= SMC_STATE_DRAIN ? s->m->n_chunks
             : (s->cur_chunk == UINT32_MAX ? 0 : s->cur_chunk);
  a.rate_kbps = (uint32_t) (s->rate_Bps * 8 / 1000);
  len = smc_build_announce (buf, sizeof buf, &h, &a);
  sign (s, buf, len);
  smc_send_batch (&s->tx, &p, &len, 1, NULL);
  s->st.control_pkts++;
  s->st.bytes += len + WIRE_OVERHEAD;
}

static void
set_state (smc_sender *s, int state, uint64_t now)
{
  vlog (s, "state %d -> %d", s->state, state);
  s->state = state;
  s->state_since = now;
  s->next_announce = now;
  if (state == SMC_STATE_SENDING) {
    s->st.data_start_ns = now;
    s->pass_left = 0;
    for (uint32_t c = 0; c < s->m->n_chunks; c++)
      if (!(s->m->flags[c] & SMC_CHUNK_ZERO))
        s->pass_left += smc_manifest_chunk_len (s->m, c);
  } else if (state == SMC_STATE_DRAIN)
    s->st.drain_ns = now;
  else if (state == SMC_STATE_END)
    s->st.end_ns = now;
}

/* the next group: up to `lanes` chunks that are not all-zero; 0 when none
 * is left */
static int
next_group (smc_sender *s)
{
  uint32_t c = s->cur_chunk == UINT32_MAX ? 0 : s->cur_chunk + 1;
  s->grp_n = 0;
  s->grp_src = 0;
  s->grp_nb = 0;
  s->cur_src = 0;
  s->cur_lane = 0;
  s->cur_blk = 0;
  for (; c < s->m->n_chunks && s->grp_n < s->lanes; c++) {
    const smc_geom *g = &s->grp_g[s->grp_n];
    uint16_t rounds;
    if (s->m->flags[c] & SMC_CHUNK_ZERO)
      continue;
    if (geom_of (s, c, &s->grp_g[s->grp_n]) < 0)
      break;
    rounds = s->interleave ? smc_geom_k (g, 0) : g->n_src;
    if (rounds > s->grp_src)
      s->grp_src = rounds;
    if (g->n_blocks > s->grp_nb)
      s->grp_nb = g->n_blocks;
    s->grp[s->grp_n++] = c;
  }
  if (s->grp_n == 0) {
    s->cur_chunk = s->m->n_chunks;
    return 0;
  }
  s->cur_chunk = s->grp[s->grp_n - 1];
  return 1;
}

/* the source symbol the first pass is at, in chunk grp[cur_lane] */
static uint16_t
cur_esi (const smc_sender *s)
{
  return s->interleave ? (uint16_t) (smc_geom_start (&s->grp_g[s->cur_lane], s->cur_blk) + s->cur_src) : s->cur_src;
}

/* the position names a symbol (a short chunk, the image's last, has
 * fewer, and a chunk that could not be read none) */
static int
cur_valid (const smc_sender *s)
{
  const smc_geom *g = &s->grp_g[s->cur_lane];
  if (s->interleave)
    return g->n_src > 0 && s->cur_blk < g->n_blocks && s->cur_src < smc_geom_k (g, s->cur_blk);
  return s->cur_src < g->n_src;
}

/* the next (lane, symbol) of the group: lanes in turn, then (blocks
 * interleaved) the next block, then the next symbol; a chunk with fewer
 * symbols (the image's last) drops out */
static void
group_step (smc_sender *s)
{
  do {
    if (++s->cur_lane == s->grp_n) {
      s->cur_lane = 0;
      if (!s->interleave || ++s->cur_blk == s->grp_nb) {
        s->cur_blk = 0;
        s->cur_src++;
      }
    }
  } while (s->cur_src < s->grp_src && !cur_valid (s));
}

/* a full FIFO ring (*buf, elem bytes each, len == *cap from *head) made
 * twice as large, its entries from index 0: 0, or -1 out of memory */
static int
ring_grow (void **buf, size_t *head, size_t *cap, size_t elem)
{
  uint8_t *n = malloc (2 * *cap * elem), *o = *buf;
  if (n == NULL)
    return -1;
  memcpy (n, o + *head * elem, (*cap - *head) * elem);
  memcpy (n + (*cap - *head) * elem, o, *head * elem);
  free (o);
  *buf = n;
  *head = 0;
  *cap *= 2;
  return 0;
}

/* after the first pass a lost repair costs the receiver its retry time
 * (10 ms) with nothing else to do: for a repair of n symbols to a receiver
 * reporting loss_permille, as many fresh parity symbols as it would lose
 * twice over (one for any n under 10 at 5 %; none without loss) */
static int
margin_of (int n, uint16_t loss_permille)
{
  return (n * 2 * loss_permille + 999) / 1000;
}

static void
rq_push (smc_sender *s, uint32_t chunk, uint8_t block, uint8_t j0, uint8_t count, int proactive)
{
  if (s->rq_len == s->rq_cap && ring_grow ((void **) &s->rq, &s->rq_head, &s->rq_cap, sizeof *s->rq) < 0)
    return;
  s->rq[(s->rq_head + s->rq_len++) % s->rq_cap] =
    (repair) { .chunk = chunk, .block = block, .j0 = j0, .count = count, .proactive = (uint8_t) proactive };
  s->queued[(size_t) chunk * s->nbmax + block] += count;
}

/* emits up to room parity packets of the head repair into the batch */
static int
emit_repair (smc_sender *s, int at, int room)
{
  repair *r = &s->rq[s->rq_head];
  smc_geom g;
  const uint8_t *data, *src[256];
  uint8_t *out[SMC_BATCH];
  int rows = r->count < room ? r->count : room;
  uint8_t k;
  if (geom_of (s, r->chunk, &g) < 0 || (data = chunk_data (s, r->chunk)) == NULL) {
    s->queued[(size_t) r->chunk * s->nbmax + r->block] -= r->count;
    r->count = 0;
    rows = 0;
  } else {
    uint32_t ms = ms_of (s, smc_now_ns ());
    s->queued[(size_t) r->chunk * s->nbmax + r->block] -= (uint16_t) rows;
    k = smc_geom_k (&g, r->block);
    for (int i = 0; i < k; i++)
      src[i] = data + (size_t) (smc_geom_start (&g, r->block) + i) * s->S;
    for (int i = 0; i < rows; i++)
      out[i] = s->pkt[at + i] + SMC_DATA_HDR_LEN;
    smc_fec_encode (k, src, r->j0, rows, out, s->S);
    {
      size_t bi = (size_t) r->chunk * s->nbmax + r->block;
      s->runs[bi * RUNS + s->run_next[bi]] = (prun) { .seq0 = s->seq_mc + 1, .count = (uint16_t) rows,
                                                      .ms = ms };
      s->run_next[bi] = (uint8_t) ((s->run_next[bi] + 1) % RUNS);
    }
    for (int i = 0; i < rows; i++) {
      smc_hdr h = { .session = s->cfg.session, .seq = ++s->seq_mc };
      s->plen[at + i] = smc_build_data (s->pkt[at + i], s->cfg.mtu, &h, r->chunk,
                                        smc_parity_esi (r->block, (uint8_t) (r->j0 + i)),
                                        out[i], s->S);
      s->pay[at + i] = NULL;
      sign (s, s->pkt[at + i], s->plen[at + i]);
    }
    s->st.parity_pkts += (uint64_t) rows;
    if (r->proactive)
      s->st.parity_proactive += (uint64_t) rows;
    s->parity_ms[(size_t) r->chunk * s->nbmax + r->block] = ms;
    r->j0 = (uint8_t) (r->j0 + rows);
    r->count = (uint8_t) (r->count - rows);
  }
  if (r->count == 0) {
    s->rq_head = (s->rq_head + 1) % s->rq_cap;
    s->rq_len--;
  }
  return rows;
}

/* ---------------- source symbols asked for again ---------------- */

/* 0, or -1 out of memory */
static int
sq_push (smc_sender *s, uint32_t chunk, uint16_t esi)
{
  if (s->sq_len == s->sq_cap && ring_grow ((void **) &s->sq, &s->sq_head, &s->sq_cap, sizeof *s->sq) < 0)
    return -1;
  s->sq[(s->sq_head + s->sq_len++) % s->sq_cap] = (resend) { .chunk = chunk, .esi = esi };
  return 0;
}

static uint64_t
src_key (uint32_t chunk, uint16_t esi)
{
  return ((uint64_t) chunk << 16 | esi) + 1;
}

static size_t
recent_slot (uint64_t key)
{
  return (size_t) ((key * 0x9e3779b97f4a7c15ull) >> 52) % RECENT_SLOTS;
}

/* queues symbol esi of chunk to be sent again, unless it is queued or was
 * sent in the last RESEND_DEDUP_MS */
static void
resend_once (smc_sender *s, uint32_t chunk, uint16_t esi, uint32_t ms)
{
  uint64_t key = src_key (chunk, esi);
  size_t slot = recent_slot (key);
  if (smc_keyset_has (&s->queued_src, key) ||
      (s->recent_key[slot] == key && ms - s->recent_ms[slot] < RESEND_DEDUP_MS))
    return;
  if (smc_keyset_add (&s->queued_src, key) == 0 && sq_push (s, chunk, esi) < 0)
    smc_keyset_del (&s->queued_src, key);
}

/* one queued source symbol into slot at (copied: the chunk may leave the
 * cache before the batch is sent); 0 when its chunk cannot be read */
static int
emit_resend (smc_sender *s, int at)
{
  resend q = s->sq[s->sq_head];
  smc_hdr h = { .session = s->cfg.session };
  smc_geom g;
  const uint8_t *data;
  uint32_t off, len;
  uint64_t key = src_key (q.chunk, q.esi);
  size_t slot = recent_slot (key);
  s->sq_head = (s->sq_head + 1) % s->sq_cap;
  s->sq_len--;
  smc_keyset_del (&s->queued_src, key);
  s->recent_key[slot] = key;
  s->recent_ms[slot] = ms_of (s, smc_now_ns ());
  if (geom_of (s, q.chunk, &g) < 0 || q.esi >= g.n_src || (data = chunk_data (s, q.chunk)) == NULL)
    return 0;
  off = (uint32_t) q.esi * s->S;
  len = g.len - off < s->S ? g.len - off : s->S;
  h.seq = ++s->seq_mc;
  s->plen[at] = smc_build_data (s->pkt[at], s->cfg.mtu, &h, q.chunk, q.esi, data + off, len);
  s->pay[at] = NULL;
  sign (s, s->pkt[at], s->plen[at]);
  s->st.source_resent++;
  return s->plen[at] > 0;
}

/* bytes per second sent since the first pass began (the paced rate is a
 * cap: the receivers, or the cores, may hold the sender well under it) */
static double
sent_Bps (const smc_sender *s, uint64_t now)
{
  uint64_t t = now - s->st.data_start_ns;
  double r = t > 0 ? (double) s->st.bytes * 1e9 / (double) t : 0;
  return r < s->rate_Bps ? r : s->rate_Bps;
}

/* the highest loss reported by a receiver still repaired (‰) */
static uint16_t
group_loss (const smc_sender *s)
{
  uint16_t max = 0;
  for (size_t i = 0; i < s->n_nodes; i++)
    if (s->nodes[i].outcome == 0 && s->strikes[i] == 0 && s->nodes[i].last.loss_permille > max)
      max = s->nodes[i].last.loss_permille;
  return max;
}

static void
block_done_proactive (smc_sender *s, uint32_t chunk, const smc_geom *g, uint8_t block, uint64_t now)
{
  uint8_t k = smc_geom_k (g, block);
  uint32_t n = (k * s->cfg.proactive_permille + 999) / 1000;
  uint8_t *np = &s->next_parity[(size_t) chunk * s->nbmax + block];
  s->end_ms[(size_t) chunk * s->nbmax + block] = ms_of (s, now);
  if (s->ask_ms > 0 && s->pass_left < sent_Bps (s, now) * (s->ask_ms + TAIL_SLACK_MS) / 1000) {
    /* the end of the first pass: a repair asked for the block would come
     * after it, with the receivers waiting for it and nothing else to
     * do. Parity for the loss they report, sent with the block, spares
     * them the round trip (and its retries, when a repair is lost too).
     * A receiver alone asks for what this leaves missing at once, by
     * source symbol (no NACK delay, no parity used up): it gets the loss
     * it reports once over, not twice (the rest was 0.05 % of egress at
     * MTU 1500, 5 %, where that egress sits on the goal of 1.10) */
    uint32_t tail = (uint32_t) margin_of (k, group_loss (s));
    if (s->solo)
      tail = (tail + 1) / 2;
    if (tail > n)
      n = tail;
  }
  if (n == 0)
    return;
  if (n > (uint32_t) smc_fec_max_parity (k) - *np)
    n = (uint32_t) smc_fec_max_parity (k) - *np;
  rq_push (s, chunk, block, *np, (uint8_t) n, 1);
  *np = (uint8_t) (*np + n);
}

/* one source symbol of the first pass into slot at; 0 when the pass is over */
static int
emit_source (smc_sender *s, int at, uint64_t now)
{
  const uint8_t *data;
  const smc_geom *g;
  uint32_t off, len, chunk;
  uint16_t esi;
  smc_hdr h = { .session = s->cfg.session };
  uint8_t b;
  cache_ent *e;
  if (s->cur_chunk == UINT32_MAX || s->cur_src >= s->grp_src) {
    if (!next_group (s)) {
      set_state (s, SMC_STATE_DRAIN, now);
      return 0;
    }
  }
  chunk = s->grp[s->cur_lane];
  g = &s->grp_g[s->cur_lane];
  esi = cur_esi (s);
  e = chunk_ent (s, chunk);
  data = e != NULL ? e->buf : NULL;
  if (data == NULL) {
    /* the chunk drops out of the group: its receivers take it by unicast */
    vlog (s, "cannot read chunk %u", chunk);
    s->grp_g[s->cur_lane].n_src = 0;
    group_step (s);
    return 0;
  }
  off = (uint32_t) esi * s->S;
  len = g->len - off < s->S ? g->len - off : s->S;
  h.seq = ++s->seq_mc;
  /* the payload goes from the chunk cache straight to the socket: the
   * group's chunks are the cache's most recently used entries, so they
   * outlive the batch */
  if (s->wc > 0)
    smc_build_sdata_head (s->pkt[at], s->cfg.session, h.seq, chunk, esi);
  else
    smc_build_data_head (s->pkt[at], &h, chunk, esi);
  e->pinned = s->batch_no;
  s->pay[at] = data + off;
  s->paylen[at] = len;
  s->plen[at] = s->hl + s->tl + len;
  memset (s->pkt[at] + s->hl, 0, s->tl);
  if (s->auth != NULL && s->wc > 0)
    smc_auth_sign_short (s->auth, s->pkt[at], data + off, len, s->pkt[at] + s->hl);
  else if (s->auth != NULL)
    smc_auth_sign_split (s->auth, s->pkt[at], SMC_DATA_HDR_LEN, 0, data + off, len,
                         s->pkt[at] + SMC_DATA_HDR_LEN);
  s->st.data_pkts++;
  s->pass_left = s->pass_left > len ? s->pass_left - len : 0;
  if (s->wc > 0) {
    group_step (s);
    return 1;
  }
  b = smc_geom_block_of (g, esi);
  if (esi + 1 == smc_geom_start (g, b) + smc_geom_k (g, b))
    block_done_proactive (s, chunk, g, b, now);
  group_step (s);
  return 1;
}

/* ---------------- window mode: repair by the window code ---------------- */

static void
wq_push (smc_sender *s, uint32_t window, uint32_t count, uint8_t code)
{
  if (s->wq_len == s->wq_cap && ring_grow ((void **) &s->wq, &s->wq_head, &s->wq_cap, sizeof *s->wq) < 0)
    return;
  s->wq[(s->wq_head + s->wq_len++) % s->wq_cap] = (wrepair) { .window = window, .count = count, .code = code };
  s->win[window].queued += count;
}

/* the rank after window w's last chunk */
static uint32_t
window_end (const smc_sender *s, uint32_t w)
{
  return (w + 1) * s->wc < s->nz ? (w + 1) * s->wc : s->nz;
}

/* the source symbols of window w into s->wsrc (zero-padded chunks from
 * the cache, which holds two windows): 0, or -1 when a chunk cannot be
 * read */
static int
window_sources (smc_sender *s, uint32_t w)
{
  uint32_t n = 0, end = window_end (s, w);
  for (uint32_t r = w * s->wc; r < end; r++) {
    smc_geom g;
    const uint8_t *data;
    if (geom_of (s, s->byrank[r], &g) < 0 || (data = chunk_data (s, s->byrank[r])) == NULL)
      return -1;
    for (uint32_t j = 0; j < g.n_src; j++)
      s->wsrc[n++] = data + (size_t) j * s->S;
  }
  return n == s->win[w].k ? 0 : -1;
}

/* emits up to room repair symbols of the head of the queue, each with a
 * fresh id of its window */
static int
emit_wrepair (smc_sender *s, int at, int room)
{
  wrepair *q = &s->wq[s->wq_head];
  wstate *ws = &s->win[q->window];
  int rows = q->count < (uint32_t) room ? (int) q->count : room;
  if (ws->serial + (uint32_t) rows > SMC_WC_SERIAL_MASK || window_sources (s, q->window) < 0) {
    /* ids used up (16 million repairs of a window), or a chunk that
     * cannot be read: its receivers take it by unicast */
    vlog (s, "window %u cannot be repaired any more", q->window);
    rows = 0;
    ws->queued -= q->count;
    q->count = 0;
  } else {
    uint64_t seed = smc_window_seed (s->m->id, q->window);
    wrun *prev = &ws->runs[(ws->run_next + RUNS - 1) % RUNS];
    uint32_t ms = ms_of (s, smc_now_ns ());
    if (prev->count > 0 && prev->seq == s->seq_mc && prev->serial0 + prev->count == ws->serial) {
      /* no sequence number between them: one run (a round of hundreds of
       * symbols goes in several batches, and RUNS must not forget them) */
      prev->count += (uint32_t) rows;
      prev->ms = ms;
    } else {
      ws->runs[ws->run_next] = (wrun) { .serial0 = ws->serial, .count = (uint32_t) rows, .seq = s->seq_mc, .ms = ms };
      ws->run_next = (ws->run_next + 1) % RUNS;
    }
    uint32_t ids[SMC_BATCH];
    uint8_t *outs[SMC_BATCH];
    for (int i = 0; i < rows; i++) {
      ids[i] = smc_wc_make_id (q->code, ws->serial++);
      outs[i] = s->pkt[at + i] + SMC_SHORT_HDR_LEN;
    }
    smc_wc_encode_many (seed, ws->k, s->wsrc, ids, (uint32_t) rows, outs, s->S);
    for (int i = 0; i < rows; i++) {
      uint8_t *pkt = s->pkt[at + i];
      uint32_t id = ids[i];
      smc_build_repair_head (pkt, s->cfg.session, q->window, id);
      memset (pkt + SMC_SHORT_HDR_LEN + s->S, 0, SMC_SHORT_TAG_LEN);
      if (s->auth != NULL)
        smc_auth_sign_short (s->auth, pkt, pkt + SMC_SHORT_HDR_LEN, s->S, pkt + SMC_SHORT_HDR_LEN + s->S);
      s->plen[at + i] = SMC_SHORT_OVERHEAD + s->S;
      s->pay[at + i] = NULL;
    }
    s->st.parity_pkts += (uint64_t) rows;
    s->st.repair_pkts += (uint64_t) rows;
    ws->queued -= (uint32_t) rows;
    q->count -= (uint32_t) rows;
  }
  if (q->count == 0) {
    s->wq_head = (s->wq_head + 1) % s->wq_cap;
    s->wq_len--;
  }
  return rows;
}

static void
refill (smc_sender *s, uint64_t now)
{
  /* credit for 20 ms (at least four batches): a late wake-up on a loaded
   * host is caught up instead of lost */
  double burst = 4.0 * SMC_BATCH * (s->cfg.mtu + WIRE_OVERHEAD);
  if (s->rate_Bps * 0.020 > burst)
    burst = s->rate_Bps * 0.020;
  s->tokens += s->rate_Bps * (double) (now - s->last_refill) / 1e9;
  if (s->tokens > burst)
    s->tokens = burst;
  s->last_refill = now;
}

/* the batch's n packets to the group: runs of one size as UDP GSO
 * super-packets (one pass through the sender's stack for up to 64 KiB; the
 * kernel or the NIC cuts them into the same packets before the wire), or
 * one by one when GSO is off or was refused */
static void
send_packets (smc_sender *s, struct iovec (*iov)[3], const int *niov, int n)
{
  /* a software bridge (VMs on one host) copies every packet of a
   * super-packet to each receiver's port before it passes any on: keep
   * that burst under 512 packets (Linux drops what exceeds
   * netdev_max_backlog, 1000 by default, per CPU) */
  size_t rcv = group_size (s);
  int segs = rcv > 0 ? (int) (512 / rcv) : SMC_GSO_MAX_SEGS, done = 0;
  if (s->tx.gso && !s->cfg.no_gso && segs >= 2) {
    done = smc_send_iov_gso (&s->tx, iov, niov, s->plen, n, segs, &s->st.gso_sends);
    if (done < n && (errno == EIO || errno == EINVAL || errno == EMSGSIZE)) {
      vlog (s, "UDP GSO refused (%s): one packet per send from now on", strerror (errno));
      s->tx.gso = 0;
      s->st.gso_refused = 1;
    }
  }
  if (done < n)
    smc_send_iov (&s->tx, iov + done, niov + done, n - done, NULL);
}

/* fills and sends one batch; returns packets sent */
static int
send_some (smc_sender *s, uint64_t now)
{
  int n = 0;
  double need = s->cfg.mtu + WIRE_OVERHEAD;
  s->batch_no++;
  refill (s, now);
  while (n < SMC_BATCH && s->tokens >= need) {
    int got = 0;
    if (s->rq_len > 0) {
      int room = SMC_BATCH - n;
      got = emit_repair (s, n, (int) (s->tokens / need) < room ? (int) (s->tokens / need) : room);
      if (got == 0 && s->rq_len > 0)
        continue;
    } else if (s->wq_len > 0) {
      int room = SMC_BATCH - n;
      got = emit_wrepair (s, n, (int) (s->tokens / need) < room ? (int) (s->tokens / need) : room);
      if (got == 0)
        continue;
    } else if (s->sq_len > 0) {
      got = emit_resend (s, n);
      if (got == 0)
        continue;
    } else if (s->state == SMC_STATE_SENDING) {
      got = emit_source (s, n, now);
    }
    if (got == 0)
      break;
    for (int i = n; i < n + got; i++)
      s->tokens -= (double) (s->plen[i] + WIRE_OVERHEAD);
    n += got;
  }
  if (n > 0) {
    struct iovec iov[SMC_BATCH][3];
    int niov[SMC_BATCH];
    for (int i = 0; i < n; i++) {
      if (s->pay[i] != NULL) {
        iov[i][0] = (struct iovec) { .iov_base = s->pkt[i], .iov_len = s->hl };
        iov[i][1] = (struct iovec) { .iov_base = (void *) s->pay[i], .iov_len = s->paylen[i] };
        iov[i][2] = (struct iovec) { .iov_base = s->pkt[i] + s->hl, .iov_len = s->tl };
        niov[i] = 3;
      } else {
        iov[i][0] = (struct iovec) { .iov_base = s->pkt[i], .iov_len = s->plen[i] };
        niov[i] = 1;
      }
    }
    send_packets (s, iov, niov, n);
    for (int i = 0; i < n; i++)
      s->st.bytes += s->plen[i] + WIRE_OVERHEAD;
  }
  return n;
}

/* ---------------- feedback ---------------- */

/* 1 when every source symbol of (chunk, block) went out in the first pass */
static int
block_sent (smc_sender *s, uint32_t chunk, uint8_t block)
{
  if (s->state >= SMC_STATE_DRAIN || s->cur_chunk == UINT32_MAX)
    return s->state >= SMC_STATE_DRAIN;
  if (chunk < s->grp[0])
    return 1;
  for (uint8_t l = 0; l < s->grp_n; l++)
    if (s->grp[l] == chunk) {
      const smc_geom *g = &s->grp_g[l];
      uint16_t last;
      if (s->interleave) {
        /* the block's last round, then its place in the round */
        last = (uint16_t) (smc_geom_k (g, block) - 1);
        return last < s->cur_src ||
               (last == s->cur_src && (block < s->cur_blk || (block == s->cur_blk && l < s->cur_lane)));
      }
      last = (uint16_t) (smc_geom_start (g, block) + smc_geom_k (g, block) - 1);
      return last < s->cur_src || (last == s->cur_src && l < s->cur_lane);
    }
  return 0;
}

/* Every parity index of the block is used (k + j reached 256): resend
 * parity symbols, first those from pnext (the NACK's: its receiver has
 * seen none of them, a burst took them all), then round-robin; each is new
 * to the receivers that lost it. */
static void
resend_cycle (smc_sender *s, uint32_t chunk, uint8_t block, uint8_t k, uint8_t pnext, int count)
{
  uint8_t *cyc = &s->cycle[(size_t) chunk * s->nbmax + block];
  int max = smc_fec_max_parity (k);
  if (pnext < max) {
    int run = max - pnext < count ? max - pnext : count;
    rq_push (s, chunk, block, pnext, (uint8_t) run, 0);
    count -= run;
  }
  while (count > 0) {
    int run = max - *cyc < count ? max - *cyc : count;
    rq_push (s, chunk, block, *cyc, (uint8_t) run, 0);
    *cyc = (uint8_t) ((*cyc + run) % max);
    count -= run;
  }
}

/* the first request to repair a block: how long after the block it came
 * (the receivers' queue, their NACK delay, the round trip). The estimate
 * jumps up to a longer wait and decays by an eighth toward shorter ones */
static void
ask_latency (smc_sender *s, uint32_t chunk, uint8_t block, uint64_t now)
{
  uint32_t *e = &s->end_ms[(size_t) chunk * s->nbmax + block], ms = ms_of (s, now), d;
  if (*e == 0 || *e == UINT32_MAX)
    return;
  d = ms > *e ? ms - *e : 0;
  *e = UINT32_MAX;
  if (d > ASK_MS_MAX)
    d = ASK_MS_MAX;
  s->ask_ms = d >= s->ask_ms ? d : s->ask_ms - (s->ask_ms - d) / 8;
  s->st.ask_ms = s->ask_ms;
}

/* the receiver that sent a NACK or SRCREQ (NULL if it never reported),
 * in *node; 0 when it is not to be repaired */
static int
repairable (smc_sender *s, uint32_t id, smc_node_info **node)
{
  size_t idx = 0;
  *node = node_find (s, id, &idx);
  if (*node == NULL)
    return !is_dropped (s, id);
  (*node)->nacks++;
  if ((*node)->outcome != 0)
    return 0;  /* evicted or failed: it finishes by unicast */
  if (s->cfg.slow_policy == SMC_SLOW_EVICT && s->strikes[idx] > 0)
    return 0;  /* losing more than max_loss: about to be evicted; repairing
                * for it would take the group's bandwidth */
  return 1;
}

/* (chunk, block) named by a NACK or SRCREQ is one the sender has and has
 * sent all source symbols of: 1, its chunk's geometry in *g */
static int
repair_target (smc_sender *s, uint32_t chunk, uint8_t block, smc_geom *g)
{
  return chunk < s->m->n_chunks && !(s->m->flags[chunk] & SMC_CHUNK_ZERO) && geom_of (s, chunk, g) >= 0 &&
         block < g->n_blocks && block_sent (s, chunk, block);
}

/* that margin as parity of the block, when a SRCREQ asked for n source
 * symbols (a NACK's margin is part of its parity) */
static void
repair_margin (smc_sender *s, uint32_t chunk, uint8_t block, uint8_t k, int n, uint16_t loss_permille)
{
  uint8_t *np = &s->next_parity[(size_t) chunk * s->nbmax + block];
  int add = margin_of (n, loss_permille), room = smc_fec_max_parity (k) - *np;
  if (add > room)
    add = room;
  if (add <= 0)
    return;
  rq_push (s, chunk, block, *np, (uint8_t) add, 0);
  *np = (uint8_t) (*np + add);
}

/* a receiver whose block needs more symbols than the parity it has not
 * seen yet: the source symbols it names go out again (not one still
 * queued, nor one sent in the last RESEND_DEDUP_MS, whoever asks) */
static void
handle_srcreq (smc_sender *s, const uint8_t *buf, size_t len, uint64_t now)
{
  smc_srcreq q;
  smc_node_info *node;
  smc_geom g;
  uint16_t start;
  uint8_t k;
  int asked = 0;
  uint32_t ms = ms_of (s, now);
  if (smc_parse_srcreq (buf, len, &q) < 0) {
    s->st.bad++;
    return;
  }
  s->st.srcreqs_rx++;
  if (!repairable (s, q.node, &node))
    return;
  if (!repair_target (s, q.chunk, q.block, &g))
    return;
  ask_latency (s, q.chunk, q.block, now);
  k = smc_geom_k (&g, q.block);
  start = smc_geom_start (&g, q.block);
  for (int i = 0; i < k && i / 8 < q.map_len; i++)
    if ((q.map[i / 8] >> (i % 8)) & 1) {
      resend_once (s, q.chunk, (uint16_t) (start + i), ms);
      asked++;
    }
  if (s->state == SMC_STATE_DRAIN && node != NULL)
    repair_margin (s, q.chunk, q.block, k, asked, node->last.loss_permille);
}

/* a NACK or WNACK (parse: its parser) into n; its receiver (NULL if it
 * never reported) in *node, and whether it takes nothing (*stalled: the
 * same 'seen' in its NACKs for STALL_MS); 0 when it is malformed or its
 * receiver is not to be repaired */
static int
nack_from (smc_sender *s, const uint8_t *buf, size_t len, int (*parse) (const uint8_t *, size_t, smc_nack *),
           smc_nack *n, smc_node_info **node, int *stalled, uint64_t now)
{
  if (parse (buf, len, n) < 0) {
    s->st.bad++;
    return 0;
  }
  s->st.nacks_rx++;
  if (!repairable (s, n->node, node))
    return 0;
  if (*node != NULL && ((*node)->nack_seen != n->seen || (*node)->nack_seen_ns == 0)) {
    (*node)->nack_seen = n->seen;
    (*node)->nack_seen_ns = now;
  }
  *stalled = *node != NULL && now - (*node)->nack_seen_ns >= STALL_MS * MS;
  return 1;
}

static void
handle_nack (smc_sender *s, const uint8_t *buf, size_t len, uint64_t now)
{
  smc_nack n;
  smc_node_info *node;
  uint32_t ms = ms_of (s, now);
  int stalled;
  if (!nack_from (s, buf, len, smc_parse_nack, &n, &node, &stalled, now))
    return;
  for (uint16_t i = 0; i < n.count; i++) {
    smc_nack_entry e;
    smc_geom g;
    uint8_t *np, k;
    uint32_t *pms;
    int inflight, need, add, room, q;
    smc_nack_entry_get (&n, i, &e);
    s->st.nack_entries++;
    if (!repair_target (s, e.chunk, e.block, &g))
      continue;
    ask_latency (s, e.chunk, e.block, now);
    k = smc_geom_k (&g, e.block);
    np = &s->next_parity[(size_t) e.chunk * s->nbmax + e.block];
    pms = &s->parity_ms[(size_t) e.chunk * s->nbmax + e.block];
    /* in flight for this receiver: parity still queued, plus parity sent
     * after the last packet it had processed when it wrote the NACK (its
     * 'seen' sequence number) in the last INFLIGHT_MS; parity sent before
     * that and missing at the receiver was lost, and is replaced */
    q = s->queued[(size_t) e.chunk * s->nbmax + e.block];
    inflight = q;
    for (int ri = 0; ri < RUNS; ri++) {
      const prun *run = &s->runs[((size_t) e.chunk * s->nbmax + e.block) * RUNS + ri];
      int32_t after = (int32_t) (run->seq0 + run->count - 1u - n.seen);
      if (run->count == 0 || after <= 0 || (stalled && ms - run->ms > INFLIGHT_MS))
        continue;
      inflight += after > run->count ? run->count : after;
    }
    if (*np == smc_fec_max_parity (k) && ms - *pms < CYCLE_MS)
      continue;  /* parity used up and resent lately: wait for that round */
    /* a receiver NACKs no more than the parity indices above those it has
     * seen (it asks for the rest by source index, SRCREQ): a NACK asking
     * for more is held to that (one that asked for 255 of every block
     * took the sender to 1.665 × the image, sim test greedy-nacks) */
    need = e.pnext < smc_fec_max_parity (k) ? smc_fec_max_parity (k) - e.pnext : 0;
    if (e.need < need)
      need = e.need;
    add = need - inflight;
    room = smc_fec_max_parity (k) - *np;
    if (add <= 0)
      continue;
    if (s->state == SMC_STATE_DRAIN && node != NULL)
      add += margin_of (add, node->last.loss_permille);
    if (room > 0) {
      int fresh = add < room ? add : room;
      rq_push (s, e.chunk, e.block, *np, (uint8_t) fresh, 0);
      *np = (uint8_t) (*np + fresh);
      add -= fresh;
    }
    if (add > 0)
      resend_cycle (s, e.chunk, e.block, k, e.pnext, add);
    *pms = ms;
  }
}

/* 1 when the first pass has sent every source symbol of window w */
static int
window_sent (const smc_sender *s, uint32_t w)
{
  uint32_t end = window_end (s, w);
  if (s->state >= SMC_STATE_DRAIN)
    return 1;
  if (s->cur_chunk == UINT32_MAX || s->grp_n == 0)
    return 0;
  if (s->rank[s->grp[0]] >= end)
    return 1;
  return s->cur_src >= s->grp_src && s->rank[s->grp[s->grp_n - 1]] + 1 >= end;
}

/* window mode: a receiver's windows that need `need` more independent
 * repair symbols. Fresh ones go out for what is not in flight to it
 * already: queued, or sent after the last packet it had processed (its
 * 'seen' sequence number; a packet of a run sent before that and not had
 * was lost) with a serial it has not had yet; from a receiver that takes
 * nothing (its 'seen' the same for STALL_MS), only what was sent in the
 * last INFLIGHT_MS. Each new repair symbol is as good as any other to
 * every receiver, so the neediest receiver's NACK covers the others'. */
static void
handle_wnack (smc_sender *s, const uint8_t *buf, size_t len, uint64_t now)
{
  smc_nack n;
  smc_node_info *node;
  uint32_t ms = ms_of (s, now);
  int stalled;
  if (s->wc == 0) {
    s->st.bad++;
    return;
  }
  if (!nack_from (s, buf, len, smc_parse_wnack, &n, &node, &stalled, now))
    return;
  for (uint16_t i = 0; i < n.count; i++) {
    smc_wnack_entry e;
    wstate *ws;
    int64_t inflight, add, limit;
    smc_wnack_entry_get (&n, i, &e);
    s->st.nack_entries++;
    if (e.window >= s->n_windows || e.need == 0 || !window_sent (s, e.window))
      continue;
    ws = &s->win[e.window];
    inflight = ws->queued;
    for (int ri = 0; ri < RUNS; ri++) {
      const wrun *run = &ws->runs[ri];
      uint32_t end = run->serial0 + run->count;
      if (run->count == 0 || (int32_t) (n.seen - run->seq) > 0 || (stalled && ms - run->ms > INFLIGHT_MS) ||
          e.next >= end)
        continue;
      inflight += end - (e.next > run->serial0 ? e.next : run->serial0);
    }
    add = (int64_t) e.need - inflight;
    if (add <= 0)
      continue;
    /* a margin for the repair's own loss where a round trip costs most:
     * after the first pass (the receivers wait for it with nothing else to
     * do), and to a receiver behind its socket's queue, whose next NACK
     * waits for the answer to come through that queue (150 MB/s receivers
     * at MTU 9000 and 5 %, 10 Gbit/s cap: a third of a second per round,
     * and it read six windows before the third round of the first came) */
    if (node != NULL && (s->state == SMC_STATE_DRAIN || node->last.backlog_permille >= 100))
      add += margin_of ((int) add, node->last.loss_permille);
    /* A window gets at most k / 2 + 64 repair symbols, whatever is asked:
     * a member with the key NACKing for everything (need 65535 in every
     * window) took the sender to twice the image. Not less: loss reports
     * leave out outages (a receiver losing 1000 packets of every 8000, 40
     * ms at a time, reported none), and a cap of k × (twice the loss
     * reported + 10 %) left such a receiver's windows to unicast. What a
     * window cannot get goes to unicast. The repair sent before the group
     * last slowed down for a congested path does not count: it was sent
     * faster than the path carries, and most receivers lost much of it
     * (a cap that counted it left the first window of a congested start
     * to unicast at every receiver) */
    limit = (int64_t) ws->k / 2 + 64 - (int64_t) (ws->serial - ws->cap_base) - (int64_t) ws->queued;
    if (add > limit)
      add = limit;
    if (add <= 0)
      continue;
    wq_push (s, e.window, (uint32_t) add, smc_wc_degree_code (ws->k, e.need));
  }
}

/* the least the group is slowed to: 10 Mbit/s, or the configured minimum
 * (SMC_SLOW_EVICT: below it a receiver is left behind, not waited for) */
static double
floor_Bps (const smc_sender *s)
{
  double min = s->cfg.slow_policy == SMC_SLOW_EVICT ? (double) s->cfg.rate_min_bps / 8.0 : 0;
  if (min > s->cap_Bps)
    min = s->cap_Bps;
  return min > 1.25e6 ? min : 1.25e6;
}

/* what a receiver's reported intake (UDP payload) is on the wire */
static double
intake_wire_Bps (const smc_sender *s, const smc_status *st)
{
  return st->intake_kBps * 1000.0 * (s->cfg.mtu + WIRE_OVERHEAD) / (s->cfg.mtu - 28);
}

/* the rate that lets a receiver drain its queue: 90 % of its intake */
static double
drain_Bps (const smc_sender *s, const smc_status *st)
{
  return 0.9 * intake_wire_Bps (s, st);
}

/* with a minimum rate (SMC_SLOW_EVICT), the sender at it, and node n's
 * report saying it does not keep up even so: new drops in its socket, or
 * a queue three quarters full that it drains slower than that rate */
static int
behind_at_floor (const smc_sender *s, const smc_node_info *n, const smc_status *st)
{
  if (s->cfg.rate_min_bps == 0 || s->cfg.slow_policy != SMC_SLOW_EVICT || s->state != SMC_STATE_SENDING ||
      s->rate_Bps > floor_Bps (s) * 1.01)
    return 0;
  return st->rx_overflow > n->last.rx_overflow ||
         (st->backlog_permille >= BACKLOG_FULL && intake_wire_Bps (s, st) < 0.9 * floor_Bps (s));
}

/* any slow-down signal: the rate becomes new_Bps (floor_Bps at least), slow
 * start ends, growth waits 200 ms */
static void
slow_down (smc_sender *s, double new_Bps, uint64_t now, const char *why)
{
  double floor = floor_Bps (s);
  s->last_signal = now;
  s->slow_start = 0;
  s->rate_Bps = new_Bps < floor ? floor : new_Bps;
  vlog (s, "%s: rate now %.0f Mbit/s", why, s->rate_Bps * 8 / 1e6);
}

/* slow start overshoots by at most 2x: halve; later cut by 30 % */
static double
cut_rate (const smc_sender *s)
{
  return s->rate_Bps * (s->slow_start ? 0.5 : 0.7);
}

static void
congestion (smc_sender *s, const smc_status *st, uint64_t now)
{
  /* a socket that overflowed (st) took what it reports it took: the rate
   * goes under that at once, as for a full queue. By 30 % per 50 ms from
   * 7 Gbit/s, 16 receivers taking 150 MB/s overflowed by 117,000 packets
   * and left 1,899 of their 4,096 chunks to unicast (shoal-mcast-sim
   * --size 256 --mtu 9000 --receivers 16 --loss 5 --rate 10000 --intake
   * 150); now none */
  double drain = st != NULL && st->intake_kBps != 0 ? drain_Bps (s, st) : 0;
  double target = cut_rate (s);
  if (now - s->last_signal < 50 * MS) {
    /* a cut waits 50 ms for the one before to show, but not when this
     * socket drops at a rate far above what it takes (it takes less than
     * 70 % of the rate: more than a cut would remove): the 50 ms after a
     * 30 % backlog cut from 10 Gbit/s cost 4 receivers taking 150 MB/s
     * 1,500 packets each, and the repair took egress to 1.31 */
    if (drain == 0 || intake_wire_Bps (s, st) >= 0.7 * s->rate_Bps)
      return;
    target = drain;
  } else if (drain != 0 && drain < target) {
    target = drain;
  }
  slow_down (s, target, now, "congestion");
}

/* a receiver's queue is over half full and still growing: it takes packets
 * more slowly than they come, and would drop some soon. Its intake over its
 * last report is what it can drain: the rate goes to 10 % under that, but
 * down by 30 % at most per cut, so a receiver whose intake was low for a
 * moment (descheduled on a shared CPU) does not starve the group. A queue
 * that is high but shrinking needs nothing: the receiver has work queued
 * and the sender is already slower than it. */
static void
backlog (smc_sender *s, const smc_status *st, uint64_t now)
{
  double target;
  /* a queue three quarters full: the receiver is far behind (a slow disk,
   * all receivers slower than the cap) and the rate goes to its intake at
   * once, every 20 ms if need be; cut by 30 % per 50 ms from 10 Gbit/s, the
   * first pass of a 128 MiB image was over before the rate came down to
   * 2.4 Gbit/s, and the receivers' windows had overflowed to unicast
   * (shoal-mcast-sim --mtu 9000 --rate 10000 --intake 300) */
  int full = st->backlog_permille >= BACKLOG_FULL;
  if (now - s->last_signal < (full ? 20 : 50) * MS)
    return;
  /* intake is UDP payload; the rate counts every byte on the wire */
  target = drain_Bps (s, st);
  if (!full && target < 0.7 * s->rate_Bps)
    target = 0.7 * s->rate_Bps;
  slow_down (s, target < s->rate_Bps ? target : s->rate_Bps, now, "receiver backlog");
}

/* more than half of the receivers still in the session (this report for
 * node idx, the last one of the others) lose more than max_loss / 2 while
 * one loses more than max_loss: the path to them is congested (the cap is
 * above what their links carry), not one receiver slow, so the group slows
 * down instead of sending them all to unicast. A loss that rate cuts do
 * not lower (a broken network, not a full one) gets GROUP_LOSS_CUTS of
 * them, then eviction as usual. */
#define GROUP_LOSS_CUTS 8
static int
group_lossy (smc_sender *s, size_t idx, const smc_status *st)
{
  size_t active = 0, lossy = 0;
  for (size_t i = 0; i < s->n_nodes; i++) {
    uint16_t loss = i == idx ? st->loss_permille : s->nodes[i].last.loss_permille;
    if (s->nodes[i].outcome != 0)
      continue;
    active++;
    /* half the threshold for the others: at the rate a congested path
     * settles to, receivers lose about max_loss, some just over and some
     * just under; an outlier is one that loses much more than the rest */
    lossy += loss > s->cfg.max_loss_permille / 2;
  }
  return active >= 2 && lossy * 2 > active;
}

/* some other receiver still in the session has not reported since t */
static int
others_silent_since (smc_sender *s, size_t idx, uint64_t t)
{
  for (size_t i = 0; i < s->n_nodes; i++)
    if (i != idx && s->nodes[i].outcome == 0 && s->nodes[i].last_heard_ns < t)
      return 1;
  return 0;
}

/* on_progress, when node n, still receiving, has verified more chunks than
 * it last passed on and progress_ms have gone by since */
static void
progress (smc_sender *s, smc_node_info *n, uint64_t now)
{
  uint64_t every = (s->cfg.progress_ms ? s->cfg.progress_ms : 250) * MS;
  if (s->cfg.on_progress == NULL || n->outcome != 0 || n->last.chunks_done <= n->progress_done ||
      (n->progress_ns != 0 && now - n->progress_ns < every))
    return;
  n->progress_done = n->last.chunks_done;
  n->progress_ns = now;
  s->cfg.on_progress (s->cfg.node_user, n);
}

/* the pace the group would keep without node n: the median of the other
 * receivers' hash-and-write paths (those that said theirs), or the cap if
 * lower (payload bytes/s); 0 when no other receiver said */
static double
group_pace_without (const smc_sender *s, const smc_node_info *n)
{
  double v[64], t;
  size_t m = 0, i, j;
  double cap = s->cap_Bps * (s->cfg.mtu - 28) / (s->cfg.mtu + WIRE_OVERHEAD);
  /* a spread sample of at most 64 of them: the median of a group of
   * thousands is as well known from 64 */
  size_t step = s->n_nodes / 64 + 1;
  for (i = 0; i < s->n_nodes && m < 64; i += step) {
    const smc_node_info *o = &s->nodes[i];
    if (o == n || o->outcome != 0 || o->drain_Bps == 0)
      continue;
    v[m++] = o->drain_Bps;
  }
  if (m == 0)
    return 0;
  for (i = 1; i < m; i++)
    for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
      t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  t = m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2;
  return t < cap ? t : cap;
}

/* 1 when node n's disk holds the group under slow_ratio of the pace it
 * would keep without n, and has for SMC_SLOW_HOLD_MS (st: its report) */
static int
slow_outlier (smc_sender *s, smc_node_info *n, const smc_status *st, uint64_t now)
{
  double pace;
  uint32_t budget = (uint32_t) (s->n_nodes / 4);
  if (st->drain_kBps == 0)
    return 0;  /* no chunk finished since its last report: nothing new */
  if (s->cfg.slow_policy != SMC_SLOW_EVICT || s->cfg.slow_ratio_permille == 0 || s->state != SMC_STATE_SENDING ||
      n->outcome != 0)
    return 0;
  pace = group_pace_without (s, n);
  if (pace == 0 || n->drain_Bps >= pace * s->cfg.slow_ratio_permille / 1000.0) {
    n->slow_since_ns = 0;
    n->slow_reports = 0;
    return 0;
  }
  /* slow since the data began when its first report says so: it had
   * finished nothing before (in window mode a receiver verifies a
   * window's chunks together, and reports a drain once a window: 16 MiB
   * at 20 MB/s, 0.8 s) */
  if (n->slow_since_ns == 0)
    n->slow_since_ns = n->drain_reports <= 1 ? s->st.data_start_ns : now;
  n->slow_reports++;
  /* a quarter of the group at most (a group that is mostly slow is slow:
   * sending most of it by unicast would not be faster) */
  if (now - n->slow_since_ns < SMC_SLOW_HOLD_MS * MS || n->slow_reports < (s->wc > 0 ? 2u : 3u) ||
      s->st.slow_evictions >= (budget > 0 ? budget : 1))
    return 0;
  n->group_Bps = pace;
  return 1;
}

static void
handle_status (smc_sender *s, const uint8_t *buf, size_t len, const struct sockaddr_in *from, uint64_t now)
{
  smc_status st;
  smc_node_info *n;
  size_t idx = 0;
  int behind;
  if (smc_parse_status (buf, len, &st) < 0) {
    s->st.bad++;
    return;
  }
  n = node_find (s, st.node, &idx);
  if (n == NULL && is_dropped (s, st.node)) {
    /* dropped before it joined: told to leave, never in the session */
    char addr[48];
    inet_ntop (AF_INET, &from->sin_addr, addr, sizeof addr);
    send_control (s, st.node, SMC_CTL_EVICT, addr);
    return;
  }
  if (n == NULL) {
    n = node_add (s, st.node, from, now);
    if (n == NULL)
      return;
    idx = s->n_nodes - 1;
    n->last = st;
  }
  n->last_heard_ns = now;
  if (n->outcome == SMC_NODE_FAILED && st.state != SMC_RX_FAILED && s->state < SMC_STATE_END) {
    /* a receiver that went silent is back (restarted agent): track it again */
    vlog (s, "node %u is back", n->node);
    n->outcome = 0;
    n->finished_ns = 0;
    n->last = st;
    if (s->cfg.on_node != NULL) {
      n->outcome = SMC_NODE_JOINED;
      s->cfg.on_node (s->cfg.node_user, n);
      n->outcome = 0;
    }
  }
  behind = n->outcome == 0 && behind_at_floor (s, n, &st);
  if (!behind)
    n->floor_strikes = 0;
  if (behind) {
    /* its socket drops, or is nearly full and drains slower than the
     * least rate the group is held to: it cannot keep up, and is left
     * behind (the second such report in a row: the first may cover time
     * before the rate came down) */
    if (++n->floor_strikes >= 2) {
      vlog (s, "node %u cannot keep up at the minimum rate: finishing by unicast", n->node);
      node_evict (s, n, SMC_EVICT_FLOOR, &st, now);
    }
  } else if (n->outcome == 0 && st.rx_overflow > n->last.rx_overflow) {
    congestion (s, &st, now);
  } else if (n->outcome == 0 && !s->cfg.no_backlog_pacing && st.backlog_permille >= SMC_BACKLOG_HIGH &&
           st.backlog_permille > n->last.backlog_permille) {
    s->st.backlog_signals++;
    n->backlog_signals++;
    backlog (s, &st, now);
  }
  if (n->outcome == 0 && s->state >= SMC_STATE_SENDING && st.loss_permille > s->cfg.max_loss_permille) {
    int congested = s->cfg.slow_policy == SMC_SLOW_EVICT && s->group_loss_run < GROUP_LOSS_CUTS &&
                    group_lossy (s, idx, &st);
    if (s->cfg.slow_policy == SMC_SLOW_WAIT)
      congestion (s, NULL, now);
    else if (congested) {
      s->strikes[idx] = 0;   /* not an outlier: its NACKs count */
      /* at most every 100 ms: each cut is judged on reports made after the
       * one before (a report covers up to 100 ms already past) */
      if (now - s->last_group_cut >= 100 * MS) {
        s->group_loss_run++;
        s->st.group_loss_cuts++;
        s->last_group_cut = now;
        slow_down (s, cut_rate (s), now, "congested path");
        for (uint32_t w = 0; w < s->n_windows && s->win != NULL; w++)
          s->win[w].cap_base = s->win[w].serial;
      }
    } else if (s->last_group_cut != 0 && now - s->last_group_cut < 300 * MS) {
      /* a report still covering the loss the group just slowed down for
       * (the others' newer ones no longer do): not an outlier yet */
      s->strikes[idx] = 0;
    } else if (++s->strikes[idx] == 1) {
      s->strike_ns[idx] = now;
    } else if (others_silent_since (s, idx, s->strike_ns[idx])) {
      /* the others have not reported since this one began to lose: they
       * may be losing as much (a congested path); ask again next time */
      s->strikes[idx] = 1;
    } else {
      /* the report that evicts it: its loss, and why, if it can say */
      node_evict (s, n, SMC_EVICT_LOSS, &st, now);
    }
  } else if (n->outcome == 0) {
    s->strikes[idx] = 0;
    if (!group_lossy (s, idx, &st))
      s->group_loss_run = 0;
  }
  /* what its disk takes, smoothed (0.7 old, 0.3 new) */
  if (st.drain_kBps != 0) {
    n->drain_Bps = n->drain_Bps == 0 ? st.drain_kBps * 1000.0 : 0.7 * n->drain_Bps + 300.0 * st.drain_kBps;
    n->drain_reports++;
  }
  if (slow_outlier (s, n, &st, now)) {
    s->st.slow_evictions++;
    vlog (s, "node %u writes %.1f MB/s, under %.0f %% of the others' %.1f MB/s: finishing by unicast", n->node,
          n->drain_Bps / 1e6, s->cfg.slow_ratio_permille / 10.0, n->group_Bps / 1e6);
    node_evict (s, n, SMC_EVICT_SLOW, &st, now);
    /* the rate it held the group to says nothing of the others: find
     * theirs again as at the start, doubling until one signals */
    s->slow_start = 1;
  }
  if (s->cfg.max_behind_chunks && n->outcome == 0 && s->state == SMC_STATE_SENDING &&
      s->cur_chunk != UINT32_MAX && st.chunks_done + st.chunks_pending + s->cfg.max_behind_chunks < s->cur_chunk &&
      st.chunks_pending >= s->cfg.max_behind_chunks) {
    node_evict (s, n, SMC_EVICT_BEHIND, &st, now);
  }
  n->last = st;
  progress (s, n, now);
  if (st.state == SMC_RX_COMPLETE) {
    node_finish (s, n, SMC_NODE_COMPLETE, now);
    send_control (s, n->node, SMC_CTL_ACK_COMPLETE, n->addr);
  } else if (st.state == SMC_RX_FAILED) {
    node_finish (s, n, SMC_NODE_FAILED, now);
  } else if (n->evict_sent && st.state != SMC_RX_EVICTED) {
    send_control (s, n->node, SMC_CTL_EVICT, n->addr);
  } else if (st.state == SMC_RX_EVICTED) {
    /* it left on its own (st.reason): it finishes by unicast, and its
     * repair requests, if any come, are not served */
    node_evict (s, n, SMC_EVICT_SELF, NULL, now);
  }
}

/* one packet from a receiver */
static void
input (smc_sender *s, const uint8_t *buf, size_t len, const struct sockaddr_in *from, uint64_t now)
{
  smc_hdr h;
  if (smc_parse_hdr (buf, len, &h) < 0 || h.session != s->cfg.session) {
    s->st.bad++;
    return;
  }
  if (h.type != SMC_PKT_NACK && h.type != SMC_PKT_STATUS && h.type != SMC_PKT_SRCREQ && h.type != SMC_PKT_WNACK)
    return;
  if (s->auth != NULL && smc_auth_verify (s->auth, buf, len) < 0) {
    s->st.forged++;
    return;
  }
  if (h.type == SMC_PKT_WNACK)
    handle_wnack (s, buf, len, now);
  else if (h.type == SMC_PKT_NACK)
    handle_nack (s, buf, len, now);
  else if (h.type == SMC_PKT_SRCREQ)
    handle_srcreq (s, buf, len, now);
  else
    handle_status (s, buf, len, from, now);
}

static void
receive_from (smc_sender *s, smc_sock *sock, uint64_t now)
{
  for (int round = 0; round < 8; round++) {
    int n = smc_rxbatch_recv (sock, &s->rx);
    for (int i = 0; i < n; i++)
      input (s, s->rx.bufs[i], s->rx.msgs[i].msg_len, &s->rx.from[i], now);
    if (n < SMC_BATCH)
      break;
  }
}

static void
receive_feedback (smc_sender *s, uint64_t now)
{
  receive_from (s, &s->sock, now);
  receive_from (s, &s->tx, now);
}

/* ---------------- timers and state ---------------- */

static int
outcome (smc_sender *s)
{
  int rc = s->n_nodes >= s->cfg.expected ? 0 : 1;
  for (size_t i = 0; i < s->n_nodes; i++)
    if (s->nodes[i].outcome != SMC_NODE_COMPLETE)
      rc = 1;
  return rc;
}

/* every receiver expected has joined and completed (and there was one) */
static int
all_complete (smc_sender *s)
{
  return s->n_nodes > 0 && outcome (s) == 0;
}

/* the nodes the caller dropped since the last turn leave the session */
static void
take_drops (smc_sender *s, uint64_t now)
{
  uint32_t *asked;
  size_t n_asked;
  pthread_mutex_lock (&s->drop_mu);
  asked = s->drop_asked;
  n_asked = s->drop_asked_n;
  s->drop_asked = NULL;
  s->drop_asked_n = s->drop_asked_cap = 0;
  pthread_mutex_unlock (&s->drop_mu);
  for (size_t i = 0; i < n_asked; i++) {
    smc_node_info *n;
    if (is_dropped (s, asked[i]) || ids_add (&s->dropped, &s->n_dropped, &s->dropped_cap, asked[i]) < 0)
      continue;
    n = node_find (s, asked[i], NULL);
    vlog (s, "node %u dropped%s", asked[i], n == NULL ? " before it joined" : "");
    if (n == NULL) {
      s->dropped_absent++;
      continue;
    }
    if (n->outcome != 0)
      continue;  /* it had finished (complete, evicted, failed) */
    n->evict_sent = 1;  /* its next reports are answered with EVICT */
    node_finish (s, n, SMC_NODE_DROPPED, now);
    send_control (s, n->node, SMC_CTL_EVICT, n->addr);
  }
  free (asked);
}

static void
timers (smc_sender *s, uint64_t now)
{
  uint64_t interval;
  take_drops (s, now);
  for (size_t i = 0; i < s->n_nodes; i++)
    if (s->nodes[i].outcome == 0 && now - s->nodes[i].last_heard_ns > s->cfg.node_timeout_ms * MS)
      node_finish (s, &s->nodes[i], SMC_NODE_FAILED, now);
  /* slow start: ×2 every 5 ms until the first overflow report (a LAN's
   * round trip is well under 1 ms, and the first report is sent at once;
   * receive buffers hold 50 ms at 10 Gbit/s); then +3 % per 50 ms without
   * reports for 200 ms */
  if (s->state == SMC_STATE_SENDING && now - s->last_increase > (s->slow_start ? 5 : 50) * MS &&
      s->rate_Bps < s->cap_Bps && (s->slow_start || now - s->last_signal > 200 * MS)) {
    s->rate_Bps *= s->slow_start ? 2.0 : 1.03;
    if (s->rate_Bps > s->cap_Bps)
      s->rate_Bps = s->cap_Bps;
    s->last_increase = now;
  }
  if (s->state == SMC_STATE_WAITING &&
      (s->n_nodes >= expected_left (s) && s->cfg.expected > 0 ? 1 : now - s->state_since > s->cfg.join_wait_ms * MS)) {
    if (count_active (s) > 0)
      set_state (s, SMC_STATE_SENDING, now);
    else {
      /* nobody to send to (none joined, or each dropped or silent): the
       * image is not sent, the session ends */
      vlog (s, "no receiver in the session after the join wait: ending without sending");
      s->st.no_receiver = 1;
      set_state (s, SMC_STATE_END, now);
    }
  }
  if (s->state == SMC_STATE_SENDING && s->n_dropped > 0 && count_active (s) == 0 && s->n_nodes >= expected_left (s)) {
    /* every receiver left was dropped by the caller: the rest of the
     * image would go to nobody */
    vlog (s, "no receiver left in the session: ending");
    set_state (s, SMC_STATE_END, now);
  }
  if (s->state == SMC_STATE_DRAIN && s->rq_len == 0 && s->sq_len == 0 && s->wq_len == 0 && count_active (s) == 0 &&
      (s->n_nodes >= expected_left (s) || now - s->state_since > s->cfg.node_timeout_ms * MS))
    set_state (s, SMC_STATE_END, now);
  if (s->state == SMC_STATE_DRAIN && now - s->state_since > s->cfg.drain_timeout_ms * MS) {
    for (size_t i = 0; i < s->n_nodes; i++)
      node_finish (s, &s->nodes[i], SMC_NODE_FAILED, now);
    set_state (s, SMC_STATE_END, now);
  }
  if (__atomic_load_n (&s->cancelled, __ATOMIC_SEQ_CST) && s->state != SMC_STATE_END)
    set_state (s, SMC_STATE_END, now);
  if (s->state >= SMC_STATE_SENDING && s->state < SMC_STATE_END && solo (s) != s->solo) {
    /* the receiver left alone asks for sources from now on: three
     * ANNOUNCEs 5 ms apart say so, one loss does not delay it 200 ms */
    s->next_announce = now;
    s->solo_repeats = 3;
  }
  if (now >= s->next_announce) {
    send_announce (s);
    if (s->state == SMC_STATE_END)
      s->end_announces++;
    interval = s->state == SMC_STATE_SENDING ? 200 : 20;
    /* while waiting, a receiver joins at the first ANNOUNCE it sees: every
     * 2 ms in the first second (receivers told to join at the start are in
     * by then), every 10 ms after (machines still booting) */
    if (s->state == SMC_STATE_WAITING)
      interval = now - s->state_since < 1000 * MS ? 2 : 10;
    if (s->state == SMC_STATE_DRAIN && now - s->state_since > 500 * MS)
      interval = 100;
    else if (s->state == SMC_STATE_DRAIN && s->wc > 0)
      interval = 5;  /* its sequence number tells the sender which repairs the receivers have had */
    if (s->solo_repeats > 0 && --s->solo_repeats > 0 && interval > 5)
      interval = 5;
    /* three ENDs, spaced so one loss burst does not take all; back to back
     * when every receiver has completed and been told so (acknowledged) */
    if (s->state == SMC_STATE_END)
      interval = all_complete (s) ? 0 : 2;
    s->next_announce = now + interval * MS;
  }
}

/* how long the sending loop may wait for feedback: until the next
 * ANNOUNCE (10 ms at most), or with packets to send until the pacing lets
 * half a batch go */
static uint64_t
wait_ns (smc_sender *s, uint64_t now, int can_send)
{
  uint64_t wait = s->next_announce > now ? s->next_announce - now : 0;
  if (wait > 10 * MS)
    wait = 10 * MS;
  if (can_send) {
    double need = (double) SMC_BATCH / 2 * (s->cfg.mtu + WIRE_OVERHEAD) - s->tokens;
    uint64_t t = need > 0 ? (uint64_t) (need / s->rate_Bps * 1e9) : 0;
    if (t < wait)
      wait = t;
  }
  return wait;
}

static void
wait_io (smc_sender *s, uint64_t wait)
{
  struct pollfd p[2] = { { .fd = s->sock.fd, .events = POLLIN }, { .fd = s->tx.fd, .events = POLLIN } };
  struct timespec ts;
  ts.tv_sec = (time_t) (wait / 1000000000ull);
  ts.tv_nsec = (long) (wait % 1000000000ull);
  ppoll (p, 2, &ts, NULL);
}

static int
running (const smc_sender *s)
{
  return s->state != SMC_STATE_END || s->end_announces < 3;
}

/* one turn of the sending loop at now (feedback taken): packets the pacing
 * allows; the number sent, and whether there was anything to send */
static int
turn (smc_sender *s, uint64_t now, int *can_send)
{
  int sent = 0;
  timers (s, now);
  *can_send = s->state != SMC_STATE_END && (s->rq_len > 0 || s->sq_len > 0 || s->wq_len > 0 || s->state == SMC_STATE_SENDING);
  if (*can_send)
    sent = send_some (s, now);
  s->st.rate_bps = (uint64_t) (s->rate_Bps * 8);
  return sent;
}

int
smc_sender_run (smc_sender *s)
{
  uint64_t now;
  smc_sender_start (s, smc_now_ns ());
  while (running (s)) {
    int can_send, sent;
    now = smc_now_ns ();
    receive_feedback (s, now);
    sent = turn (s, now, &can_send);
    if (sent < SMC_BATCH / 2) {
      now = smc_now_ns ();
      wait_io (s, wait_ns (s, now, can_send));
    }
  }
  return outcome (s);
}

/* ---------------- offline (shoal-mcast-sim.h) ---------------- */

void
smc_sender_start (smc_sender *s, uint64_t now)
{
  s->st.start_ns = now;
  s->last_refill = now;
  set_state (s, SMC_STATE_WAITING, now);
}

void
smc_sender_input (smc_sender *s, const uint8_t *pkt, size_t len, const struct sockaddr_in *from, uint64_t now)
{
  input (s, pkt, len, from, now);
}

uint64_t
smc_sender_step (smc_sender *s, uint64_t now)
{
  int can_send, sent;
  if (!running (s))
    return UINT64_MAX;
  sent = turn (s, now, &can_send);
  if (!running (s))
    return UINT64_MAX;
  return sent >= SMC_BATCH / 2 ? now : now + wait_ns (s, now, can_send);
}

int
smc_sender_outcome (smc_sender *s)
{
  return running (s) ? -1 : outcome (s);
}
