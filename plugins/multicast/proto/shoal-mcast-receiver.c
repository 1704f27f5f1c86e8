/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-receiver.c: receive, FEC-decode, verify and hand over chunks */
#include "shoal-mcast-receiver.h"

#include "shoal-mcast-fec.h"
#include "shoal-mcast-net.h"
#include "shoal-mcast-sim.h"
#include "shoal-mcast-sha.h"
#include "shoal-mcast-wc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000ull

/* a block NACKed this long without repair goes to unicast */
#define NACK_GIVEUP_MS 1200
/* nothing from the sender for this long, then a jump in its sequence
 * numbers: an outage (a link down), not congestion, which drops some
 * packets while others still arrive */
#define OUTAGE_MS 20
/* nothing from the sender for this long, after a packet of the first
 * pass's last group and before its DRAIN announce: the pass is over with
 * that announce lost (a loss burst at its end); the incomplete blocks ask
 * for repair rather than wait */
#define SILENCE_MS 50
/* packets that wait in the socket's queue this long or longer (a slow
 * disk's receiver) put off asking again for a repair by as long; a
 * receiver that is only behind its CPU for a moment (tens of ms) asks
 * again as usual */
#define QDELAY_MIN_MS 100
/* how long a block lost before the receiver knows how to ask for its
 * repair waits for the ANNOUNCE that says (schedule) */
#define FLAGS_WAIT_MS 20

typedef struct {
  uint8_t k, src_have, n_par, pnext, done;
  uint8_t asked;            /* a SRCREQ went out for it in the current NACK scan */
  uint8_t solo;             /* its first request went out with SMC_ANN_SOLO set */
  uint8_t early;            /* scheduled by a silence before the pass was seen to
                             * pass it: asked for once per silence, not retried */
  uint16_t nacks;
  uint32_t req;             /* serial of its last SRCREQ (0: none) */
  uint8_t pj[256];
  uint8_t *pbuf[256];
  uint64_t due;             /* 0: no NACK scheduled */
} blk;

/* a chunk handed to the verify thread; rc: 0 written, -1 hash mismatch,
 * -2 write_chunk failed */
typedef struct {
  uint32_t idx;
  uint8_t *buf;
  size_t len;
  int rc;
  uint8_t lanes;            /* chunks hashed in the same pass */
  uint32_t hash_ns, write_ns;  /* this job's share of the hash pass, its write */
} vjob;

typedef struct {
  uint32_t idx;
  smc_geom g;
  uint8_t *buf;
  uint8_t *have;
  blk *blocks;
  uint8_t blocks_done;
  uint32_t got;             /* window mode: source symbols it has */
} pend;

/* window mode: one window of the window code (its chunks are the
 * not-all-zero ones of ranks w * wc .. + wc) */
enum { WND_OPEN, WND_DONE, WND_LOST };
typedef struct {
  uint32_t k;               /* source symbols */
  uint32_t missing;         /* of them, not had */
  uint32_t next;            /* highest repair serial had + 1 */
  uint32_t solve_at;        /* solve again once it holds this many repair symbols
                             * (the last solve's held + what it fell short by) */
  uint16_t nacks;
  uint8_t state;            /* WND_OPEN; WND_DONE: solved or whole; WND_LOST:
                             * a chunk of it is not held (done before, or
                             * left for unicast), no repair: its chunks
                             * finish by source symbols or by unicast */
  uint8_t dirty;            /* a repair symbol came since the last solve */
  uint8_t passed;           /* the first pass sent all of it, as far as seen */
  uint8_t early;            /* scheduled by a silence, before it was seen passed */
  uint64_t due;             /* 0: no NACK scheduled */
  smc_wc_dec *dec;
} wnd;

struct smc_receiver {
  smc_receiver_config cfg;
  const smc_manifest *m;
  smc_sock sock;
  smc_auth *auth;
  smc_rxbatch rx;
  uint32_t node;
  int have_ann;
  smc_announce ann;
  uint16_t S;
  struct sockaddr_in sender;
  uint8_t *cstate;
  pend **by_idx;
  pend **plist;
  uint32_t np;
  /* chunk buffers of finished chunks, reused: no allocation, page faults
   * or zeroing of a megabyte per chunk */
  uint8_t **pool;
  uint32_t pool_n;
  /* the verify thread: jobs in vq (ring), results in vd; vfd (eventfd)
   * tells the receive loop results are ready */
  int vt_on, vquit, vfd;
  pthread_t vt;
  pthread_mutex_t vmu;
  pthread_cond_t vcond;
  vjob *vq, *vd, *vscratch;
  uint32_t vcap, vq_head, vq_len, vd_len;
  uint32_t n_verifying;
  uint32_t n_settled;       /* DONE + SKIP + EXTERNAL */
  uint32_t n_done;
  uint32_t n_ext;
  /* the sender's first pass: groups of `lanes` chunks interleaved. rank[c]:
   * how many chunks before c are not all-zero (rank[n_chunks]: all of
   * them); chunk c is in group rank[c] / lanes. */
  uint8_t lanes;
  uint32_t *rank;
  uint32_t *byrank;              /* the chunk of each rank */
  /* the furthest point of the first pass seen: (group, position in it:
   * the block of the symbol, or with blocks interleaved its round);
   * chunks before cursor_scan were checked for having been skipped
   * entirely */
  int cursor_valid;
  uint32_t cursor_grp;
  uint16_t cursor_pos;
  uint32_t cursor_scan;
  /* chunks assembled and not yet verified: verified together (their
   * hashes computed in one pass) once their group is complete (ready_due) */
  vjob *ready;
  uint32_t n_ready, ready_cap;
  uint64_t ready_since;
  int drained;
  int rx_state;
  int finished;
  int rc;
  uint64_t start, last_sender, next_status, complete_since;
  uint64_t silence_scan;         /* the last NACK scheduling for a silent sender */
  uint64_t nack_defer_since;     /* a NACK fell due while packets were still queued */
  int acked;
  uint32_t reported_overflow;
  uint32_t drops;                /* the socket's drops as it counts them now, read every turn */
  uint32_t loss_overflow_base;
  uint64_t last_overflow_report;
  uint16_t backlog;              /* receive queue fill, ‰, read every 5 ms at most */
  uint64_t backlog_read;
  uint64_t qdelay;               /* how long packets wait in that queue (0 under a tenth
                                  * full or QDELAY_MIN_MS) */
  uint64_t last_backlog_report;
  uint64_t intake_bytes;         /* taken from the socket since the last STATUS */
  uint64_t intake_since;
  uint64_t drain_bytes;          /* chunks verified and written since the last */
  uint64_t drain_ns;             /* STATUS, and the time that took */
  int drain_measured;            /* 1: STATUS says what drain_* measured;
                                  * 0 (offline): drain_model_kBps */
  uint32_t drain_model_kBps;
  uint32_t seq_first, seq_max, seq_got;
  uint32_t seq_outage;           /* sequence numbers lost in outages, this window */
  /* window mode: REPAIR packets carry no sequence number; their loss is
   * the gaps in each window's repair serials, counted here apart, so that
   * the loss reported after the first pass, while only repairs come, is
   * not the last one measured before it */
  uint32_t rep_expected, rep_got, rep_outage;
  uint64_t seq_last_ns;          /* when the last DATA, ANNOUNCE or REPAIR came */
  /* a packet came after OUTAGE_MS of silence (an outage ended): the next
   * sequence gap is the outage's, though a REPAIR may have come first;
   * outage_counted: st.outages has counted it already */
  int after_silence, outage_counted;
  int seq_valid;
  uint16_t loss_permille;
  int sending_seen;              /* an ANNOUNCE said the sender sends */
  int full_data;                 /* a DATA packet with a whole symbol came */
  uint32_t short_data;           /* DATA packets with less (a chunk's last symbol) */
  uint64_t rng;
  uint32_t mc_seq, uc_seq;
  uint32_t req_serial;           /* SRCREQs sent */
  uint32_t req_answered;         /* the latest of them a resent symbol answered */
  uint8_t *nack_buf;
  smc_nack_entry *nack_entries;
  size_t nack_max;
  smc_receiver_stats st;
  volatile int cancelled;
  /* window mode (SMC_ANN_WINDOW): windows of wc chunks; the first pass
   * was seen past the windows before wcursor; those before wlow are done
   * or lost */
  uint32_t wc, n_windows, wk_max, wcursor, wlow;
  uint32_t wrun;                 /* the window of the last repair symbol had, + 1 (0: none) */
  uint64_t backlog_hi;           /* the last time its queue was a tenth full or more */
  wnd *win;
  uint8_t **wsym;
  uint8_t *whave;
  smc_wnack_entry *wnack_entries;
};

static void vlog (smc_receiver *r, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
vlog (smc_receiver *r, const char *fmt, ...)
{
  va_list ap;
  if (!r->cfg.verbose)
    return;
  va_start (ap, fmt);
  fprintf (stderr, "smc-receiver[%u]: ", r->node);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
}

static uint64_t
rnd (smc_receiver *r)
{
  r->rng ^= r->rng << 13;
  r->rng ^= r->rng >> 7;
  r->rng ^= r->rng << 17;
  return r->rng;
}

/* 64 MiB of chunks in flight: 64 of 1 MiB, 16 of 4 MiB, never fewer than 4 */
uint32_t
smc_receiver_default_window (uint32_t chunk_size)
{
  uint64_t w = chunk_size ? (64ull << 20) / chunk_size : 64;
  return w < 4 ? 4 : w > 64 ? 64 : (uint32_t) w;
}

void
smc_receiver_config_init (smc_receiver_config *c)
{
  memset (c, 0, sizeof *c);
  c->window_chunks = 0;
  c->idle_timeout_ms = 5000;
  c->join_timeout_ms = 15000;
  c->status_ms = 100;
  c->nack_backoff_us = 1500;
  c->nack_retry_ms = 10;
  c->coalesce_us = 2000;
  c->rcvbuf = 64u << 20;
}

/* ---------------- the verify thread ---------------- */

/* checks chunk idx, whose SHA-256 is hash, against the manifest and hands
 * it to write_chunk: 0 written, -1 hash mismatch, -2 write_chunk failed.
 * Reads only the manifest and the configuration: the verify thread runs
 * it too. */
static int
check_write (smc_receiver *r, uint32_t idx, const uint8_t *data, size_t len, const uint8_t hash[SMC_HASH_LEN])
{
  if (smc_manifest_check_hash (r->m, idx, len, hash) != 0)
    return -1;
  return r->cfg.write_chunk (r->cfg.user, idx, data, len) != 0 ? -2 : 0;
}

static int
verify_write (smc_receiver *r, uint32_t idx, const uint8_t *data, size_t len)
{
  uint8_t h[SMC_HASH_LEN];
  smc_sha256 (data, len, h);
  return check_write (r, idx, data, len, h);
}

/* verify_write of n jobs (rc set), their hashes computed together */
#define VERIFY_LANES 16
static void
verify_write_jobs (smc_receiver *r, vjob *j, uint32_t n)
{
  while (n > 0) {
    uint32_t w = n < VERIFY_LANES ? n : VERIFY_LANES;
    const uint8_t *data[VERIFY_LANES];
    size_t len[VERIFY_LANES];
    uint8_t h[VERIFY_LANES][SMC_HASH_LEN];
    for (uint32_t i = 0; i < w; i++) {
      data[i] = j[i].buf;
      len[i] = j[i].len;
      j[i].lanes = (uint8_t) w;
    }
    uint64_t t0 = smc_now_ns (), t1;
    smc_sha256_multi (w, data, len, h);
    t1 = smc_now_ns ();
    for (uint32_t i = 0; i < w; i++) {
      uint64_t t2;
      j[i].hash_ns = (uint32_t) ((t1 - t0) / w);
      j[i].rc = check_write (r, j[i].idx, j[i].buf, j[i].len, h[i]);
      t2 = smc_now_ns ();
      j[i].write_ns = (uint32_t) (t2 - t1);
      t1 = t2;
    }
    j += w;
    n -= w;
  }
}

static void *
verify_main (void *data)
{
  smc_receiver *r = data;
  pthread_mutex_lock (&r->vmu);
  for (;;) {
    vjob j[VERIFY_LANES];
    uint32_t n = 0;
    uint64_t one = 1;
    while (r->vq_len == 0 && !r->vquit)
      pthread_cond_wait (&r->vcond, &r->vmu);
    if (r->vquit)
      break;
    /* up to sixteen queued chunks at once, hashed in one pass: a thread
     * that fell behind (a disk stall, a busy CPU) catches up with the
     * sixteen-lane hash where the CPU has AVX-512 */
    for (; n < VERIFY_LANES && r->vq_len > 0; n++) {
      j[n] = r->vq[r->vq_head];
      r->vq_head = (r->vq_head + 1) % r->vcap;
      r->vq_len--;
    }
    pthread_mutex_unlock (&r->vmu);
    verify_write_jobs (r, j, n);
    pthread_mutex_lock (&r->vmu);
    for (uint32_t i = 0; i < n; i++)
      r->vd[r->vd_len++] = j[i];
    /* an eventfd counter does not overflow at this rate */
    if (write (r->vfd, &one, sizeof one) < 0 && errno != EAGAIN)
      break;
  }
  pthread_mutex_unlock (&r->vmu);
  return NULL;
}

static void
verify_start (smc_receiver *r)
{
  r->vcap = r->cfg.window_chunks;
  r->vq = calloc (r->vcap, sizeof *r->vq);
  r->vd = calloc (r->vcap, sizeof *r->vd);
  r->vscratch = calloc (r->vcap, sizeof *r->vscratch);
  r->vfd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (r->vq != NULL && r->vd != NULL && r->vscratch != NULL && r->vfd >= 0) {
    pthread_mutex_init (&r->vmu, NULL);
    pthread_cond_init (&r->vcond, NULL);
    if (pthread_create (&r->vt, NULL, verify_main, r) == 0) {
      r->vt_on = 1;
      return;
    }
    pthread_mutex_destroy (&r->vmu);
    pthread_cond_destroy (&r->vcond);
  }
  /* no thread: chunks are verified and written inline */
  if (r->vfd >= 0)
    close (r->vfd);
  r->vfd = -1;
  free (r->vq);
  free (r->vd);
  free (r->vscratch);
  r->vq = r->vd = r->vscratch = NULL;
}

static void
verify_stop (smc_receiver *r)
{
  if (!r->vt_on)
    return;
  pthread_mutex_lock (&r->vmu);
  r->vquit = 1;
  pthread_cond_broadcast (&r->vcond);
  pthread_mutex_unlock (&r->vmu);
  pthread_join (r->vt, NULL);
  r->vt_on = 0;
  /* jobs never taken and results never collected */
  for (uint32_t i = 0; i < r->vq_len; i++)
    free (r->vq[(r->vq_head + i) % r->vcap].buf);
  for (uint32_t i = 0; i < r->vd_len; i++)
    free (r->vd[i].buf);
  pthread_mutex_destroy (&r->vmu);
  pthread_cond_destroy (&r->vcond);
  close (r->vfd);
  r->vfd = -1;
  free (r->vq);
  free (r->vd);
  free (r->vscratch);
}

/* with a tap: offline (shoal-mcast-sim.h), no socket, and its random
 * choices follow from its node id alone (a simulation replays) */
static smc_receiver *
receiver_new (const smc_receiver_config *c, smc_tap_fn tap, void *tap_user, char *err, size_t errlen)
{
  smc_receiver *r;
  if (c->manifest == NULL || c->write_chunk == NULL) {
    snprintf (err, errlen, "manifest and write_chunk are required");
    return NULL;
  }
  if (memcmp (c->manifest->id, c->join.manifest_hash, SMC_HASH_LEN) != 0) {
    snprintf (err, errlen, "the manifest does not match the session's manifest hash");
    return NULL;
  }
  r = calloc (1, sizeof *r);
  r->vfd = -1;
  r->cfg = *c;
  if (r->cfg.window_chunks == 0)
    r->cfg.window_chunks = smc_receiver_default_window (c->manifest->chunk_size);
  r->m = c->manifest;
  r->rng = tap != NULL ? 0x9e3779b97f4a7c15ull
                       : (uint64_t) smc_now_ns () ^ ((uint64_t) getpid () << 32) ^ 0x9e3779b97f4a7c15ull;
  r->node = c->join.node;
  while (r->node == 0)
    r->node = (uint32_t) rnd (r);
  r->rng ^= r->node;
  /* random counters: a restarted receiver with the same node id must not
   * reuse GMAC nonces (node, seq) */
  r->mc_seq = (uint32_t) rnd (r);
  r->uc_seq = (uint32_t) rnd (r);
  r->cstate = calloc (r->m->n_chunks, 1);
  r->by_idx = calloc (r->m->n_chunks, sizeof *r->by_idx);
  r->plist = calloc ((size_t) r->cfg.window_chunks * 2, sizeof *r->plist);
  r->pool = calloc (r->cfg.window_chunks, sizeof *r->pool);
  r->ready_cap = SMC_BATCH;
  r->ready = calloc (r->ready_cap, sizeof *r->ready);
  if (r->ready == NULL || r->cstate == NULL || r->by_idx == NULL || r->plist == NULL || r->pool == NULL ||
      smc_rxbatch_init (&r->rx, 65536) < 0) {
    snprintf (err, errlen, "out of memory");
    smc_receiver_free (r);
    return NULL;
  }
  for (uint32_t i = 0; i < r->m->n_chunks; i++)
    if (r->m->flags[i] & SMC_CHUNK_ZERO) {
      r->cstate[i] = SMC_CHUNK_SKIP;
      r->n_settled++;
    }
  if (tap != NULL ? smc_sock_open_offline (&r->sock, c->join.group, c->join.port, tap, tap_user) < 0
                  : smc_sock_open (&r->sock, c->join.group, c->join.port, c->join.iface[0] ? c->join.iface : NULL,
                                   1 << 20, (int) (c->rcvbuf ? c->rcvbuf : 64u << 20)) < 0) {
    snprintf (err, errlen, "cannot join %s:%u", c->join.group, c->join.port);
    smc_receiver_free (r);
    return NULL;
  }
  smc_sock_queue_delay_ns (&r->sock);  /* turns the kernel's arrival stamps on */
  if (c->join.has_key && (r->auth = smc_auth_new (c->join.key, r->m->id)) == NULL) {
    snprintf (err, errlen, "cannot set up packet authentication");
    smc_receiver_free (r);
    return NULL;
  }
  r->drain_measured = tap == NULL;
  if (r->cfg.verify_thread)
    verify_start (r);
  return r;
}

smc_receiver *
smc_receiver_new (const smc_receiver_config *c, char *err, size_t errlen)
{
  return receiver_new (c, NULL, NULL, err, errlen);
}

smc_receiver *
smc_receiver_new_offline (const smc_receiver_config *c, smc_tap_fn tap, void *tap_user, char *err, size_t errlen)
{
  if (tap == NULL) {
    snprintf (err, errlen, "an offline receiver needs a tap");
    return NULL;
  }
  return receiver_new (c, tap, tap_user, err, errlen);
}

static void
pool_put (smc_receiver *r, uint8_t *buf)
{
  if (buf == NULL)
    return;
  if (r->pool_n < r->cfg.window_chunks)
    r->pool[r->pool_n++] = buf;
  else
    free (buf);
}

static void
pend_free (smc_receiver *r, pend *p)
{
  for (uint32_t i = 0; i < r->np; i++)
    if (r->plist[i] == p) {
      r->plist[i] = r->plist[--r->np];
      break;
    }
  r->by_idx[p->idx] = NULL;
  for (int b = 0; b < p->g.n_blocks; b++)
    for (int j = 0; j < p->blocks[b].n_par; j++)
      free (p->blocks[b].pbuf[j]);
  free (p->blocks);
  free (p->have);
  pool_put (r, p->buf);
  free (p);
}

/* a buffer for one chunk's source symbols (every chunk's fits: the
 * manifest's chunk size rounded up to whole symbols) */
static uint8_t *
chunk_buf_get (smc_receiver *r)
{
  if (r->pool_n > 0)
    return r->pool[--r->pool_n];
  return malloc (((size_t) r->m->chunk_size + r->S - 1) / r->S * r->S);
}

void
smc_receiver_free (smc_receiver *r)
{
  if (r == NULL)
    return;
  verify_stop (r);
  for (uint32_t i = 0; i < r->n_ready; i++)
    free (r->ready[i].buf);
  free (r->ready);
  free (r->rank);
  free (r->byrank);
  while (r->np > 0)
    pend_free (r, r->plist[0]);
  smc_sock_close (&r->sock);
  smc_auth_free (r->auth);
  smc_rxbatch_free (&r->rx);
  free (r->cstate);
  free (r->by_idx);
  free (r->plist);
  for (uint32_t i = 0; i < r->pool_n; i++)
    free (r->pool[i]);
  free (r->pool);
  free (r->nack_buf);
  free (r->nack_entries);
  for (uint32_t w = 0; r->win != NULL && w < r->n_windows; w++)
    smc_wc_dec_free (r->win[w].dec);
  free (r->win);
  free (r->wsym);
  free (r->whave);
  free (r->wnack_entries);
  free (r);
}

void smc_receiver_cancel (smc_receiver *r) { __atomic_store_n (&r->cancelled, 1, __ATOMIC_SEQ_CST); }
const smc_receiver_stats *smc_receiver_get_stats (smc_receiver *r) { return &r->st; }
int smc_receiver_is_complete (smc_receiver *r) { return r->n_settled == r->m->n_chunks && r->n_ext == 0; }

uint8_t
smc_receiver_chunk_state (smc_receiver *r, uint32_t idx)
{
  return idx < r->m->n_chunks ? r->cstate[idx] : SMC_CHUNK_NEEDED;
}

static void window_lost (smc_receiver *r, uint32_t w, int all);

static void
settle (smc_receiver *r, uint32_t idx, uint8_t state)
{
  pend *p = r->by_idx[idx];
  uint8_t old = r->cstate[idx];
  if (old == SMC_CHUNK_DONE || old == SMC_CHUNK_SKIP || old == state)
    return;
  if (p != NULL)
    pend_free (r, p);
  if (old == SMC_CHUNK_EXTERNAL) {
    r->n_ext--;
    r->n_settled--;
  }
  r->cstate[idx] = state;
  r->n_settled++;
  if (state == SMC_CHUNK_DONE)
    r->n_done++;
  if (state == SMC_CHUNK_EXTERNAL) {
    r->n_ext++;
    r->st.chunks_external++;
    if (r->cfg.on_missing != NULL)
      r->cfg.on_missing (r->cfg.user, idx);
  }
  if (r->win != NULL && old != SMC_CHUNK_VERIFYING && !(r->m->flags[idx] & SMC_CHUNK_ZERO) &&
      r->win[r->rank[idx] / r->wc].state == WND_OPEN)
    /* a chunk of an open window will not be held (left for unicast, or
     * had from elsewhere): the window cannot be solved any more */
    window_lost (r, r->rank[idx] / r->wc, state == SMC_CHUNK_EXTERNAL);
}

void
smc_receiver_mark_done (smc_receiver *r, uint32_t idx)
{
  if (idx < r->m->n_chunks)
    settle (r, idx, SMC_CHUNK_DONE);
}

uint32_t
smc_receiver_missing (smc_receiver *r, uint32_t *idx, uint32_t cap)
{
  uint32_t n = 0;
  for (uint32_t i = 0; i < r->m->n_chunks; i++)
    if (r->cstate[i] == SMC_CHUNK_EXTERNAL || r->cstate[i] == SMC_CHUNK_NEEDED ||
        r->cstate[i] == SMC_CHUNK_PENDING) {
      if (n < cap && idx != NULL)
        idx[n] = i;
      n++;
    }
  return n;
}

/* the statistics and state of verify_write's outcome (receive thread) */
static int
account (smc_receiver *r, uint32_t idx, size_t len, int rc)
{
  if (rc == -1) {
    r->st.chunks_hash_fail++;
  } else if (rc == -2) {
    vlog (r, "writing chunk %u failed", idx);
    r->rx_state = SMC_RX_FAILED;
  } else {
    r->st.bytes_written += len;
    r->st.chunks_done++;
  }
  return rc;
}

static int
write_verified (smc_receiver *r, uint32_t idx, const uint8_t *data, size_t len)
{
  return account (r, idx, len, verify_write (r, idx, data, len));
}

/* a chunk assembled from multicast is done, or left to unicast */
static void
chunk_settle (smc_receiver *r, uint32_t idx, int rc)
{
  if (rc == 0) {
    settle (r, idx, SMC_CHUNK_DONE);
  } else {
    vlog (r, "chunk %u: %s", idx, rc == -1 ? "hash mismatch, left for unicast" : "write failed");
    settle (r, idx, SMC_CHUNK_EXTERNAL);
  }
}

/* a verified (or refused) chunk: statistics, its buffer back to the pool,
 * its state */
static void
job_done (smc_receiver *r, const vjob *j)
{
  r->st.chunks_hashed_together += j->lanes > 1;
  r->st.hash_ns += j->hash_ns;
  r->st.write_ns += j->write_ns;
  r->drain_bytes += j->len;
  r->drain_ns += (uint64_t) j->hash_ns + j->write_ns;
  account (r, j->idx, j->len, j->rc);
  pool_put (r, j->buf);
  chunk_settle (r, j->idx, j->rc);
}

/* results of the verify thread: settles their chunks, recycles buffers */
static void
collect_results (smc_receiver *r)
{
  uint64_t cnt;
  uint32_t n;
  vjob *taken;
  if (!r->vt_on || r->n_verifying == 0)
    return;
  if (read (r->vfd, &cnt, sizeof cnt) < 0 && errno != EAGAIN)
    vlog (r, "reading the verify thread's eventfd: %s", strerror (errno));
  /* take the results array, leave the thread the spare one */
  pthread_mutex_lock (&r->vmu);
  taken = r->vd;
  r->vd = r->vscratch;
  r->vscratch = taken;
  n = r->vd_len;
  r->vd_len = 0;
  pthread_mutex_unlock (&r->vmu);
  for (uint32_t i = 0; i < n; i++) {
    r->n_verifying--;
    job_done (r, &taken[i]);
  }
}

/* waits (100 ms at most) for the verify thread to finish a chunk, and
 * collects what it finished */
static void
wait_results (smc_receiver *r)
{
  struct pollfd pf = { .fd = r->vfd, .events = POLLIN };
  poll (&pf, 1, 100);
  collect_results (r);
}

static void status_tick (smc_receiver *r, uint64_t now);

/* hands assembled chunks (and their buffers) to the verify thread, which
 * is woken once for all of them */
static void
verify_async (smc_receiver *r, const vjob *jobs, uint32_t n)
{
  uint32_t i = 0;
  while (i < n) {
    /* at most vcap chunks outstanding: when every slot is busy, wait for
     * one. A disk can stall a write for seconds: reports go on meanwhile
     * (the queue growing in them slows the sender down; silence for
     * node_timeout would have the sender count this receiver as failed) */
    while (r->n_verifying >= r->vcap) {
      wait_results (r);
      status_tick (r, smc_now_ns ());
    }
    pthread_mutex_lock (&r->vmu);
    for (; i < n && r->n_verifying < r->vcap; i++) {
      r->vq[(r->vq_head + r->vq_len) % r->vcap] = jobs[i];
      r->vq_len++;
      r->n_verifying++;
    }
    pthread_cond_signal (&r->vcond);
    pthread_mutex_unlock (&r->vmu);
  }
}

/* a chunk whose group is still being assembled waits this long at most for
 * the others, to be hashed with them */
#define READY_WAIT_MS 4

/* 1 when the assembled chunks are to be verified now: a group's worth of
 * them, none of their groups' other chunks still being assembled (one
 * whose repair comes in the next round, usually within a few ms), or the
 * first has waited READY_WAIT_MS */
static uint64_t
ready_deadline (const smc_receiver *r)
{
  return r->ready_since + READY_WAIT_MS * MS;
}

static int
ready_due (smc_receiver *r, uint64_t now)
{
  uint32_t L = r->lanes ? r->lanes : 1, nz;
  if (r->n_ready == 0)
    return 0;
  if (r->n_ready >= L || now >= ready_deadline (r) || r->rank == NULL)
    return 1;
  nz = r->rank[r->m->n_chunks];
  for (uint32_t i = 0; i < r->n_ready; i++) {
    uint32_t g0 = r->rank[r->ready[i].idx] / L * L;
    for (uint32_t k = g0; k < g0 + L && k < nz; k++)
      if (r->cstate[r->byrank[k]] == SMC_CHUNK_PENDING)
        return 0;
  }
  return 1;
}

/* the chunks assembled since the last call: to the verify thread, or
 * verified and written here */
static void
flush_ready (smc_receiver *r)
{
  uint32_t n = r->n_ready;
  r->n_ready = 0;
  if (n == 0)
    return;
  if (r->vt_on) {
    verify_async (r, r->ready, n);
    return;
  }
  verify_write_jobs (r, r->ready, n);
  for (uint32_t i = 0; i < n; i++)
    job_done (r, &r->ready[i]);
}

int
smc_receiver_supply_chunk (smc_receiver *r, uint32_t idx, const uint8_t *data, size_t len)
{
  if (idx >= r->m->n_chunks || r->cstate[idx] == SMC_CHUNK_DONE || r->cstate[idx] == SMC_CHUNK_SKIP)
    return idx < r->m->n_chunks ? 0 : -1;
  if (write_verified (r, idx, data, len) != 0)
    return -1;
  settle (r, idx, SMC_CHUNK_DONE);
  return 0;
}

/* ---------------- chunk assembly ---------------- */

/* chunks the window may hold now: twice window_chunks while the socket's
 * queue is a tenth full or more. The repair of the oldest chunk is then
 * likely among what waits in it, and dropping that chunk to unicast just
 * before its repair is read cost whole chunks in groups slower than the
 * sender (shoal-mcast-sim --mtu 9000 --chunk-size 4194304 --rate 10000
 * --intake 200: 18 to 34 chunks at 1 % loss; a receiver alone taking 800
 * MB/s at 5 %, --receivers 1 --loss 5 --intake 800: 6 chunks, its queue
 * under half full) */
#define WINDOW_GROW_PERMILLE 100
static uint32_t
window_now (const smc_receiver *r)
{
  if (r->win != NULL)
    /* window mode: three times as many while the queue was a tenth full
     * or more in the last second. A window's repair comes behind what the
     * queue held when it was asked for, and its second round behind as
     * much again: with a 64 MiB queue read at 150 MB/s, 800 ms, in which
     * the receiver reads 120 chunks of 1 MiB (with twice window_chunks it
     * left whole windows to unicast on their last round's way) */
    return r->backlog_hi != 0 && smc_now_ns () - r->backlog_hi < 1000 * MS ? 3 * r->cfg.window_chunks
                                                                           : r->cfg.window_chunks;
  return r->backlog >= WINDOW_GROW_PERMILLE ? r->cfg.window_chunks * 2 : r->cfg.window_chunks;
}

static pend *
pend_alloc (smc_receiver *r, uint32_t idx)
{
  pend *p;
  if (r->np >= window_now (r)) {
    /* window full: the oldest chunk goes to unicast */
    pend *old = r->plist[0];
    for (uint32_t i = 1; i < r->np; i++)
      if (r->plist[i]->idx < old->idx)
        old = r->plist[i];
    vlog (r, "window full: chunk %u left for unicast", old->idx);
    settle (r, old->idx, SMC_CHUNK_EXTERNAL);
  }
  p = calloc (1, sizeof *p);
  if (p == NULL || smc_geom_init (&p->g, smc_manifest_chunk_len (r->m, idx), r->S, r->ann.max_k) < 0) {
    free (p);
    return NULL;
  }
  p->idx = idx;
  p->buf = chunk_buf_get (r);
  p->have = calloc (p->g.n_src, 1);
  p->blocks = calloc (p->g.n_blocks, sizeof *p->blocks);
  if (p->buf == NULL || p->have == NULL || p->blocks == NULL) {
    free (p->buf);
    free (p->have);
    free (p->blocks);
    free (p);
    return NULL;
  }
  /* a reused buffer holds an older chunk: every symbol is overwritten when
   * it arrives or is decoded, but the coding pad after the chunk's last
   * byte must be zero */
  memset (p->buf + p->g.len, 0, (size_t) p->g.n_src * r->S - p->g.len);
  for (int b = 0; b < p->g.n_blocks; b++)
    p->blocks[b].k = smc_geom_k (&p->g, (uint8_t) b);
  if (r->win != NULL)
    p->g.n_blocks = 0;  /* window mode: no Reed-Solomon blocks */
  r->plist[r->np++] = p;
  if (r->np > r->st.max_pending)
    r->st.max_pending = r->np;
  r->by_idx[idx] = p;
  r->cstate[idx] = SMC_CHUNK_PENDING;
  return p;
}

/* an assembled chunk joins the ready list, to be verified with the rest
 * of its group (ready_due); the buffer goes with it, the window slot is
 * free at once */
static void
finish_chunk (smc_receiver *r, pend *p)
{
  uint32_t idx = p->idx;
  if (r->n_ready == r->ready_cap)
    flush_ready (r);
  if (r->n_ready == 0)
    r->ready_since = smc_now_ns ();
  r->ready[r->n_ready++] = (vjob) { .idx = idx, .buf = p->buf, .len = p->g.len };
  p->buf = NULL;
  pend_free (r, p);
  r->cstate[idx] = SMC_CHUNK_VERIFYING;
}

static void
decode_block (smc_receiver *r, pend *p, uint8_t b)
{
  blk *bk = &p->blocks[b];
  uint16_t start = smc_geom_start (&p->g, b);
  const uint8_t *src[256];
  uint8_t *out[256];
  int e = 0;
  for (int i = 0; i < bk->k; i++) {
    if (p->have[start + i]) {
      src[i] = p->buf + (size_t) (start + i) * r->S;
    } else {
      src[i] = NULL;
      out[e++] = p->buf + (size_t) (start + i) * r->S;
    }
  }
  if (e > 0) {
    if (smc_fec_decode (bk->k, src, e, bk->pj, (const uint8_t *const *) bk->pbuf, out, r->S) < 0)
      return;
    r->st.decodes++;
    r->st.parity_used += (uint64_t) e;
    for (int i = 0; i < bk->k; i++)
      p->have[start + i] = 1;
  }
  for (int j = 0; j < bk->n_par; j++)
    free (bk->pbuf[j]);
  bk->n_par = 0;
  bk->src_have = bk->k;
  bk->done = 1;
  bk->due = 0;
  if (++p->blocks_done == p->g.n_blocks)
    finish_chunk (r, p);
}

/* symbols the block still needs before it can be decoded */
static int
blk_need (const blk *bk)
{
  return bk->k - bk->src_have - bk->n_par;
}

/* parity indices above the highest this receiver has seen: what parity
 * the sender can still send it that is new */
static int
blk_parity_left (const blk *bk)
{
  return smc_fec_max_parity (bk->k) - bk->pnext;
}

/* the sender says this receiver is the only one it still repairs
 * (SMC_ANN_SOLO): the source symbols it lacks are the cheapest repair */
static int
solo (const smc_receiver *r)
{
  return (r->ann.flags & (SMC_ANN_SRCREQ | SMC_ANN_SOLO)) == (SMC_ANN_SRCREQ | SMC_ANN_SOLO);
}

/* a block is repaired the way its first request asked: one NACKed for
 * parity before the receiver was left alone keeps asking for parity (the
 * parity in flight for it would otherwise come on top of its sources) */
static int
blk_solo (const smc_receiver *r, const blk *bk)
{
  return bk->nacks == 0 ? solo (r) : bk->solo;
}

/* asks for source symbols by index (SRCREQ), from a sender that resends
 * them: alone in the session, or when the block needs more than the parity
 * it has not seen yet can give (a burst took more of it than the code
 * repairs) */
static int
blk_wants_sources (const smc_receiver *r, const blk *bk)
{
  if (!(r->ann.flags & SMC_ANN_SRCREQ) || bk->done)
    return 0;
  return blk_need (bk) > (blk_solo (r, bk) ? 0 : blk_parity_left (bk));
}

/* the source symbols to ask for: the first (need - parity left) missing
 * ones, so that receivers that lost the same burst ask for the same
 * symbols and one request covers them all. Fills map (bit i: symbol i of
 * the block) and returns its length in bytes, 0 when nothing is asked. */
static uint8_t
blk_source_map (const smc_receiver *r, const pend *p, uint8_t b, const blk *bk, uint8_t map[SMC_SRCREQ_MAX_MAP])
{
  int want = blk_need (bk) - (blk_solo (r, bk) ? 0 : blk_parity_left (bk)), last = -1;
  uint16_t start = smc_geom_start (&p->g, b);
  memset (map, 0, SMC_SRCREQ_MAX_MAP);
  for (int i = 0; i < bk->k && want > 0; i++)
    if (!p->have[start + i]) {
      map[i / 8] |= (uint8_t) (1u << (i % 8));
      want--;
      last = i;
    }
  return last < 0 ? 0 : (uint8_t) (last / 8 + 1);
}

/* the first NACK for a block: after a random delay, shorter the more the
 * block needs (a receiver that needs 4 symbols waits at most a quarter of
 * the window), so the most needy receiver tends to speak first and its
 * NACK, overheard, silences everyone who needs as much or less */
static void
schedule (smc_receiver *r, blk *bk, uint64_t now)
{
  int need;
  if (bk->done || bk->due != 0)
    return;
  need = blk_need (bk);
  if (solo (r))
    bk->due = now + 1;  /* nobody to overhear */
  else
    bk->due = now + 1 + rnd (r) % ((uint64_t) r->cfg.nack_backoff_us * 1000 / (need > 1 ? (unsigned) need : 1u) + 1);
  /* DATA came before any ANNOUNCE saying the sender sends (the one sent
   * as it began was lost), so none has said yet how to ask: alone, by
   * source index, or by parity; a block keeps the way its first request
   * took (blk_solo). When that changes the sender says so three times,
   * 5 ms apart: wait for them (a receiver alone at 5 % loss asked for
   * parity in 5 of 300 sessions of net case solo) */
  if (r->ann.state < SMC_STATE_SENDING && bk->due < now + FLAGS_WAIT_MS * MS)
    bk->due = now + FLAGS_WAIT_MS * MS;
}

/* the first pass has reached its last group of chunks, as far as seen */
static int
in_last_group (const smc_receiver *r)
{
  uint32_t nz = r->rank != NULL ? r->rank[r->m->n_chunks] : 0, L = r->lanes ? r->lanes : 1;
  return r->cursor_valid && nz > 0 && r->cursor_grp >= (nz - 1) / L;
}

/* every incomplete block whose source symbols the sender has all sent,
 * as seen from symbol esi of chunk c (block b, geometry gc), gets a NACK
 * timer: those of earlier groups, and those of c's group whose last round
 * came before this symbol's. A round is symbol i of every chunk of the
 * group or, with blocks interleaved, symbol i of every block of every
 * chunk. The scan runs when the first pass reaches a new block of a group
 * (blocks one after the other) or a new round (interleaved: the group's
 * blocks end together, in its last rounds). */
static void
advance_cursor (smc_receiver *r, uint32_t c, const smc_geom *gc, uint16_t esi, uint8_t b, uint64_t now)
{
  uint32_t g = r->rank[c] / r->lanes;
  int il = (r->ann.flags & SMC_ANN_INTERLEAVED) != 0;
  uint16_t round = il ? (uint16_t) (esi - smc_geom_start (gc, b)) : esi, pos = il ? round : b;
  if (r->cursor_valid && (g < r->cursor_grp || (g == r->cursor_grp && pos <= r->cursor_pos)))
    return;
  r->cursor_valid = 1;
  r->cursor_grp = g;
  r->cursor_pos = pos;
  /* chunks skipped entirely (every packet lost) */
  for (; r->cursor_scan < r->m->n_chunks && r->rank[r->cursor_scan] / r->lanes < g; r->cursor_scan++)
    if (r->cstate[r->cursor_scan] == SMC_CHUNK_NEEDED && pend_alloc (r, r->cursor_scan) == NULL)
      settle (r, r->cursor_scan, SMC_CHUNK_EXTERNAL);
  for (uint32_t i = 0; i < r->np; i++) {
    pend *p = r->plist[i];
    uint32_t pg = r->rank[p->idx] / r->lanes;
    if (pg > g)
      continue;
    for (int k = 0; k < p->g.n_blocks; k++) {
      int last = smc_geom_k (&p->g, (uint8_t) k) - 1 + (il ? 0 : smc_geom_start (&p->g, (uint8_t) k));
      if (pg < g || last < round)
        schedule (r, &p->blocks[k], now);
    }
  }
}

static void leave_for_unicast (smc_receiver *r, uint8_t reason);

/* ANNOUNCEs come and say the sender sends, and maybe short DATA packets
 * (a chunk's last symbol), but not one full-size DATA packet: reported with
 * the loss that gets it evicted, as a hint (they are larger than an MTU on
 * its path, a switch port's?) */
static int
path_mtu_hint (const smc_receiver *r)
{
  return r->sending_seen && !r->full_data;
}

/* the chunk a symbol came for, in assembly (allocated now if it was not);
 * NULL when it is not needed (a duplicate), or without memory */
static pend *
data_pend (smc_receiver *r, uint32_t chunk)
{
  pend *p;
  if (r->cstate[chunk] != SMC_CHUNK_NEEDED && r->cstate[chunk] != SMC_CHUNK_PENDING) {
    r->st.dup++;
    return NULL;
  }
  p = r->by_idx[chunk];
  return p != NULL ? p : pend_alloc (r, chunk);
}

static void
handle_data (smc_receiver *r, const uint8_t *buf, size_t len, uint64_t now)
{
  smc_data d;
  pend *p;
  blk *bk;
  uint8_t b, j = 0;
  int parity;
  if (!r->have_ann || smc_parse_data (buf, len, &d) < 0 || d.chunk >= r->m->n_chunks) {
    r->st.bad++;
    return;
  }
  r->st.data_pkts++;
  if (d.payload_len == r->S)
    r->full_data = 1;
  else if (d.esi < 0x8000 && ++r->short_data >= 3 && !r->full_data && r->rx_state == SMC_RX_RECEIVING) {
    /* the last, short symbols of three chunks and not one full-size
     * packet: these do not fit the path (a switch port with a smaller MTU
     * than the session's): take the image by unicast rather than ask for
     * repair that could not reach us either, until evicted (or, with the
     * policy "wait", slow the group down to nothing) */
    vlog (r, "no full-size packet of %u bytes came, only short ones: finishing by unicast",
          (uint32_t) r->S + SMC_DATA_OVERHEAD + SMC_IPUDP_OVERHEAD);
    leave_for_unicast (r, SMC_REASON_PATH_MTU);
    return;
  }
  if ((p = data_pend (r, d.chunk)) == NULL)
    return;
  parity = (d.esi & SMC_PARITY_FLAG) != 0;
  if (parity) {
    b = (uint8_t) ((d.esi >> 8) & 0x7f);
    j = (uint8_t) d.esi;
    if (b >= p->g.n_blocks || j >= smc_fec_max_parity (p->blocks[b].k) || d.payload_len != r->S) {
      r->st.bad++;
      return;
    }
  } else {
    uint32_t off = (uint32_t) d.esi * r->S;
    if (d.esi >= p->g.n_src || d.payload_len != (p->g.len - off < r->S ? p->g.len - off : r->S)) {
      r->st.bad++;
      return;
    }
    b = smc_geom_block_of (&p->g, d.esi);
    advance_cursor (r, d.chunk, &p->g, d.esi, b, now);
  }
  bk = &p->blocks[b];
  if (bk->done) {
    r->st.dup++;
    return;
  }
  if (!parity) {
    if (p->have[d.esi]) {
      r->st.dup++;
      return;
    }
    memcpy (p->buf + (size_t) d.esi * r->S, d.payload, d.payload_len);
    p->have[d.esi] = 1;
    bk->src_have++;
    /* a source symbol of a block already asked for is an answer: the
     * sender answers in the order it was asked */
    if (bk->req > r->req_answered)
      r->req_answered = bk->req;
  } else {
    for (int i = 0; i < bk->n_par; i++)
      if (bk->pj[i] == j) {
        r->st.dup++;
        return;
      }
    if (bk->pnext < j + 1)
      bk->pnext = (uint8_t) (j + 1);
    if (blk_need (bk) <= 0)
      return;
    bk->pbuf[bk->n_par] = malloc (r->S);
    if (bk->pbuf[bk->n_par] == NULL)
      return;
    memcpy (bk->pbuf[bk->n_par], d.payload, r->S);
    bk->pj[bk->n_par++] = j;
  }
  if (blk_need (bk) <= 0)
    decode_block (r, p, b);
}

/* ---------------- window mode: the window code ---------------- */

/* the ranks of window w's chunks: [*r0, *r1) */
static void
window_ranks (const smc_receiver *r, uint32_t w, uint32_t *r0, uint32_t *r1)
{
  uint32_t nz = r->rank[r->m->n_chunks];
  *r0 = w * r->wc;
  *r1 = *r0 + r->wc < nz ? *r0 + r->wc : nz;
}

/* window w leaves the open state for `state`: no NACK, no repair symbols
 * held; the ranks of its chunks in *r0, *r1 */
static void
window_close (smc_receiver *r, uint32_t w, uint8_t state, uint32_t *r0, uint32_t *r1)
{
  wnd *x = &r->win[w];
  x->state = state;
  x->due = 0;
  smc_wc_dec_free (x->dec);
  x->dec = NULL;
  window_ranks (r, w, r0, r1);
}

/* every chunk of a solved (or whole) window goes to be verified */
static void
window_done (smc_receiver *r, uint32_t w)
{
  uint32_t r0, r1;
  window_close (r, w, WND_DONE, &r0, &r1);
  for (uint32_t k = r0; k < r1; k++) {
    pend *p = r->by_idx[r->byrank[k]];
    if (p != NULL)
      finish_chunk (r, p);
  }
}

/* the window cannot be solved (a chunk of it is not held, or its repair
 * does not get through): its whole chunks go to be verified, the others
 * finish by source symbols still to come, or by unicast once the first
 * pass has passed them (or at once: all) */
static void
window_lost (smc_receiver *r, uint32_t w, int all)
{
  wnd *x = &r->win[w];
  uint32_t r0, r1;
  if (x->state != WND_OPEN)
    return;
  window_close (r, w, WND_LOST, &r0, &r1);
  for (uint32_t k = r0; k < r1; k++) {
    uint32_t c = r->byrank[k];
    pend *p = r->by_idx[c];
    if (p != NULL && p->got == p->g.n_src)
      finish_chunk (r, p);
    else if ((all || x->passed) && (r->cstate[c] == SMC_CHUNK_NEEDED || r->cstate[c] == SMC_CHUNK_PENDING))
      settle (r, c, SMC_CHUNK_EXTERNAL);
  }
}

/* solves window w from the repair symbols it holds, every chunk of it in
 * memory (those of which nothing came are allocated now) */
static void
window_solve (smc_receiver *r, uint32_t w)
{
  wnd *x = &r->win[w];
  uint32_t r0, r1, n = 0;
  int rc;
  x->dirty = 0;
  if (x->dec == NULL || x->state != WND_OPEN)
    return;
  x->solve_at = smc_wc_dec_held (x->dec) + 1;
  window_ranks (r, w, &r0, &r1);
  for (uint32_t k = r0; k < r1; k++) {
    uint32_t c = r->byrank[k];
    if (r->cstate[c] == SMC_CHUNK_NEEDED && (r->np >= window_now (r) || pend_alloc (r, c) == NULL))
      return;  /* no room now: asked again at the next NACK */
  }
  for (uint32_t k = r0; k < r1; k++) {
    pend *p = r->by_idx[r->byrank[k]];
    if (p == NULL)
      return;
    for (uint32_t j = 0; j < p->g.n_src; j++, n++) {
      r->wsym[n] = p->buf + (size_t) j * r->S;
      r->whave[n] = p->have[j];
    }
  }
  rc = smc_wc_dec_solve (x->dec, r->wsym, r->whave, NULL);
  if (rc == 0) {
    r->st.decodes++;
    r->st.parity_used += x->missing;
    for (uint32_t k = r0; k < r1; k++) {
      pend *p = r->by_idx[r->byrank[k]];
      memset (p->have, 1, p->g.n_src);
      p->got = p->g.n_src;
    }
    x->missing = 0;
    window_done (r, w);
  } else if (rc > 0) {
    x->solve_at = smc_wc_dec_held (x->dec) + (uint32_t) rc;
  } else {
    vlog (r, "window %u: %u symbols missing, more than a solve takes: left for unicast", w, x->missing);
    window_lost (r, w, 1);
  }
}

/* independent repair symbols window w still needs */
static uint32_t
window_need (const smc_receiver *r, uint32_t w)
{
  const wnd *x = &r->win[w];
  uint32_t held = x->dec != NULL ? smc_wc_dec_held (x->dec) : 0;
  if (held < x->missing)
    return x->missing - held;
  return x->solve_at > held ? x->solve_at - held : 1;
}

/* the first NACK for a window, after a random delay shorter the more it
 * needs (as for a block: the neediest tends to speak first and silence
 * the others) */
static void
wschedule (smc_receiver *r, uint32_t w, uint64_t now)
{
  wnd *x = &r->win[w];
  if (x->state != WND_OPEN || x->due != 0 || x->missing == 0)
    return;
  x->due = now + 1 + rnd (r) % ((uint64_t) r->cfg.nack_backoff_us * 1000 / window_need (r, w) + 1);
}

/* the first pass has sent every symbol of window w */
static void
window_passed (smc_receiver *r, uint32_t w, uint64_t now)
{
  wnd *x = &r->win[w];
  uint32_t r0, r1;
  x->passed = 1;
  if (x->state == WND_OPEN) {
    wschedule (r, w, now);
    return;
  }
  if (x->state != WND_LOST)
    return;
  window_ranks (r, w, &r0, &r1);
  for (uint32_t k = r0; k < r1; k++) {
    uint32_t c = r->byrank[k];
    if (r->cstate[c] == SMC_CHUNK_NEEDED || r->cstate[c] == SMC_CHUNK_PENDING)
      settle (r, c, SMC_CHUNK_EXTERNAL);
  }
}

/* A packet other than a repair symbol of window wrun came (any but
 * w_except + 1): the sender's answer to its last NACK is over, since it
 * sends a window's repair symbols back to back. Still short, it asks
 * again now, not a retry time and its queue's delay later (a receiver
 * behind a queue of 400 ms asked for the second round of its oldest
 * window 400 ms after the first had come, and left it to unicast when
 * it had to make room for the next). */
static void
wrun_end (smc_receiver *r, uint32_t w_except, uint64_t now)
{
  wnd *x;
  if (r->wrun == 0 || r->wrun == w_except + 1)
    return;
  x = &r->win[r->wrun - 1];
  r->wrun = 0;
  if (x->state == WND_OPEN && x->due > now && x->nacks > 0 && !x->early)
    x->due = now;
}

/* a symbol of chunk c came: the windows before c's were passed */
static void
wadvance (smc_receiver *r, uint32_t c, uint64_t now)
{
  uint32_t w = r->rank[c] / r->wc;
  r->cursor_valid = 1;
  if (r->rank[c] / r->lanes > r->cursor_grp)
    r->cursor_grp = r->rank[c] / r->lanes;
  for (; r->wcursor < w; r->wcursor++)
    window_passed (r, r->wcursor, now);
}

/* the windows at the first ANNOUNCE: a window with a chunk already had
 * (before the session, from elsewhere) cannot be solved. The chunks held
 * at once are three windows and a group at least, six while the socket's
 * queue is a tenth full or more: a receiver behind its queue asks for a
 * window's repair when it reads the next window, and the repair comes
 * behind what the queue holds (the sender slows down when it is half
 * full: two windows of 16 MiB in 64 MiB); with two, such receivers (150
 * MB/s at MTU 9000 and 5 %, the sender capped at 10 Gbit/s) left whole
 * windows to unicast just before their repair was read */
static int
windows_init (smc_receiver *r)
{
  uint32_t nz = r->rank[r->m->n_chunks], need;
  r->n_windows = (nz + r->wc - 1) / r->wc;
  r->win = calloc (r->n_windows ? r->n_windows : 1, sizeof *r->win);
  if (r->win == NULL)
    return -1;
  for (uint32_t k = 0; k < nz; k++) {
    smc_geom g;
    uint32_t c = r->byrank[k];
    wnd *x = &r->win[k / r->wc];
    if (smc_geom_init (&g, smc_manifest_chunk_len (r->m, c), r->S, r->ann.max_k) < 0)
      return -1;
    x->k += g.n_src;
    x->missing += g.n_src;
    if (x->k > r->wk_max)
      r->wk_max = x->k;
  }
  r->wsym = malloc (((size_t) r->wk_max + 1) * sizeof *r->wsym);
  r->whave = malloc ((size_t) r->wk_max + 1);
  if (r->wsym == NULL || r->whave == NULL)
    return -1;
  need = 3 * r->wc + r->lanes;
  if (r->cfg.window_chunks > need)
    need = r->cfg.window_chunks;
  {
    pend **pl = realloc (r->plist, (size_t) need * 3 * sizeof *pl);
    uint8_t **pool = pl != NULL ? realloc (r->pool, (size_t) need * sizeof *pool) : NULL;
    if (pl != NULL)
      r->plist = pl;
    if (pool == NULL)
      return -1;
    r->pool = pool;
    r->cfg.window_chunks = need;
  }
  for (uint32_t k = 0; k < nz; k++) {
    uint32_t c = r->byrank[k];
    if (r->cstate[c] != SMC_CHUNK_NEEDED)
      window_lost (r, k / r->wc, 0);
  }
  return 0;
}

static void
handle_sdata (smc_receiver *r, const uint8_t *buf, size_t len, uint64_t now)
{
  smc_sdata d;
  pend *p;
  wnd *x;
  uint32_t off, w;
  if (!r->have_ann || r->win == NULL || smc_parse_sdata (buf, len, &d) < 0 || d.chunk >= r->m->n_chunks ||
      (r->m->flags[d.chunk] & SMC_CHUNK_ZERO)) {
    r->st.bad++;
    return;
  }
  r->st.data_pkts++;
  if (d.payload_len == r->S)
    r->full_data = 1;
  else if (++r->short_data >= 3 && !r->full_data && r->rx_state == SMC_RX_RECEIVING) {
    vlog (r, "no full-size packet of %u bytes came, only short ones: finishing by unicast",
          (uint32_t) r->S + SMC_SHORT_OVERHEAD + SMC_IPUDP_OVERHEAD);
    leave_for_unicast (r, SMC_REASON_PATH_MTU);
    return;
  }
  wadvance (r, d.chunk, now);
  wrun_end (r, UINT32_MAX, now);
  if ((p = data_pend (r, d.chunk)) == NULL)
    return;
  off = d.esi * r->S;
  if (d.esi >= p->g.n_src || d.payload_len != (p->g.len - off < r->S ? p->g.len - off : r->S)) {
    r->st.bad++;
    return;
  }
  if (p->have[d.esi]) {
    r->st.dup++;
    return;
  }
  memcpy (p->buf + off, d.payload, d.payload_len);
  p->have[d.esi] = 1;
  p->got++;
  w = r->rank[d.chunk] / r->wc;
  x = &r->win[w];
  if (x->state == WND_OPEN) {
    x->missing--;
    if (x->missing == 0)
      window_done (r, w);
    else if (x->dec != NULL && smc_wc_dec_held (x->dec) >= x->missing && smc_wc_dec_held (x->dec) >= x->solve_at)
      x->dirty = 1;
  } else if (p->got == p->g.n_src) {
    finish_chunk (r, p);
  }
}

static void
handle_repair (smc_receiver *r, const uint8_t *buf, size_t len, uint64_t now)
{
  smc_sdata d;
  wnd *x;
  uint32_t serial;
  if (!r->have_ann || r->win == NULL || smc_parse_sdata (buf, len, &d) < 0 || d.chunk >= r->n_windows ||
      d.payload_len != r->S) {
    r->st.bad++;
    return;
  }
  r->st.data_pkts++;
  r->full_data = 1;
  wrun_end (r, d.chunk, now);
  r->wrun = d.chunk + 1;
  x = &r->win[d.chunk];
  serial = d.esi & SMC_WC_SERIAL_MASK;
  /* the window's serials are consecutive: a gap is loss, or an outage
   * after a silence (as track_seq); the first repair of a window seen
   * gives no gap (this receiver may have joined after its first ones) */
  r->rep_got++;
  if (serial >= x->next) {
    uint32_t gap = x->next > 0 ? serial - x->next : 0;
    r->rep_expected += gap + 1;
    if (gap > 0 && r->after_silence) {
      r->rep_outage += gap;
      r->st.outages += !r->outage_counted;
      r->outage_counted = 1;
      r->st.outage_pkts += gap;
    }
    x->next = serial + 1;
  }
  if (x->state != WND_OPEN) {
    r->st.dup++;
    return;
  }
  if (x->dec == NULL && (x->dec = smc_wc_dec_new (smc_window_seed (r->m->id, d.chunk), x->k, r->S)) == NULL)
    return;
  if (smc_wc_dec_add (x->dec, d.esi, d.payload) != 0) {
    r->st.dup++;
    return;
  }
  if (smc_wc_dec_held (x->dec) >= x->missing && smc_wc_dec_held (x->dec) >= x->solve_at)
    window_solve (r, d.chunk);
}

/* another receiver's WNACK: asking for as much as this one would, or more,
 * silences its own (any new repair symbol serves every receiver) */
static void
handle_wnack_overheard (smc_receiver *r, const uint8_t *buf, size_t len, uint64_t now)
{
  smc_nack n;
  if (r->win == NULL || smc_parse_wnack (buf, len, &n) < 0 || n.node == r->node)
    return;
  for (uint16_t i = 0; i < n.count; i++) {
    smc_wnack_entry e;
    wnd *x;
    smc_wnack_entry_get (&n, i, &e);
    if (e.window >= r->n_windows)
      continue;
    x = &r->win[e.window];
    if (x->state != WND_OPEN || x->due == 0)
      continue;
    if (e.need >= window_need (r, e.window)) {
      x->due = now + r->cfg.nack_retry_ms * MS;
      r->st.nacks_suppressed++;
    }
  }
}

/* ---------------- control ---------------- */

static void
settle_all_external (smc_receiver *r, uint32_t from)
{
  for (uint32_t i = from; i < r->m->n_chunks; i++)
    if (r->cstate[i] == SMC_CHUNK_NEEDED || r->cstate[i] == SMC_CHUNK_PENDING)
      settle (r, i, SMC_CHUNK_EXTERNAL);
}

static void
drain_schedule (smc_receiver *r, uint64_t now)
{
  if (r->win != NULL) {
    for (; r->wcursor < r->n_windows; r->wcursor++)
      window_passed (r, r->wcursor, now);
    return;
  }
  for (uint32_t i = 0; i < r->m->n_chunks; i++) {
    if (r->cstate[i] != SMC_CHUNK_NEEDED)
      continue;
    if (r->np >= window_now (r) || pend_alloc (r, i) == NULL)
      settle (r, i, SMC_CHUNK_EXTERNAL);
  }
  for (uint32_t i = 0; i < r->np; i++)
    for (int b = 0; b < r->plist[i]->g.n_blocks; b++)
      schedule (r, &r->plist[i]->blocks[b], now);
}

static void
handle_announce (smc_receiver *r, const uint8_t *buf, size_t len, const struct sockaddr_in *from, uint64_t now)
{
  smc_announce a;
  if (smc_parse_announce (buf, len, &a) < 0) {
    r->st.bad++;
    return;
  }
  if (memcmp (a.manifest_hash, r->m->id, SMC_HASH_LEN) != 0 || a.image_size != r->m->image_size ||
      a.chunk_size != r->m->chunk_size) {
    r->st.wrong_image++;
    return;
  }
  if (!r->have_ann) {
    uint32_t nz = 0;
    r->rank = malloc (((size_t) r->m->n_chunks + 1) * sizeof *r->rank);
    r->byrank = malloc (((size_t) r->m->n_chunks + 1) * sizeof *r->byrank);
    if (r->rank == NULL || r->byrank == NULL) {
      free (r->rank);
      free (r->byrank);
      r->rank = r->byrank = NULL;
      return;
    }
    for (uint32_t i = 0; i < r->m->n_chunks; i++) {
      r->rank[i] = nz;
      if (!(r->m->flags[i] & SMC_CHUNK_ZERO))
        r->byrank[nz++] = i;
    }
    r->rank[r->m->n_chunks] = nz;
    r->lanes = a.lanes;
    r->ann = a;
    r->S = a.symbol_size;
    if ((a.flags & SMC_ANN_WINDOW) && (a.window_chunks % r->lanes != 0 || (r->wc = a.window_chunks, windows_init (r) < 0))) {
      /* a window of part of a group, or no memory: this receiver cannot
       * take part; it waits for an ANNOUNCE it can use */
      r->wc = 0;
      free (r->win);
      free (r->wsym);
      free (r->whave);
      free (r->rank);
      free (r->byrank);
      r->win = NULL;
      r->wsym = NULL;
      r->whave = NULL;
      r->rank = r->byrank = NULL;
      r->st.bad++;
      return;
    }
    r->have_ann = 1;
    /* STATUS goes back to the sender's transmit port (one per session) */
    r->sender = *from;
    r->rx_state = SMC_RX_RECEIVING;
    r->next_status = now;
    vlog (r, "joined session %u: state %u position %u", r->cfg.join.session, a.state, a.position);
    r->st.path_mtu = r->sock.tap != NULL ? 0 : (uint32_t) smc_path_mtu (from);
    if (r->st.path_mtu != 0 && (uint32_t) a.symbol_size + (r->win != NULL ? SMC_SHORT_OVERHEAD : SMC_DATA_OVERHEAD) + SMC_IPUDP_OVERHEAD > r->st.path_mtu) {
      /* no DATA packet would reach us (the sender's LAN has jumbo frames,
       * this host's interface not): rather than lose them all and ask for
       * repair until the sender evicts us, say so and take it by unicast */
      vlog (r, "the session's packets (%u bytes) exceed the MTU toward the sender (%u): finishing by unicast",
            (uint32_t) a.symbol_size + (r->win != NULL ? SMC_SHORT_OVERHEAD : SMC_DATA_OVERHEAD) + SMC_IPUDP_OVERHEAD,
            r->st.path_mtu);
      leave_for_unicast (r, SMC_REASON_MTU);
      return;
    }
    if (a.state >= SMC_STATE_SENDING) {
      /* late joiner: what was already sent comes by unicast */
      uint32_t upto = a.state >= SMC_STATE_DRAIN || a.position >= r->m->n_chunks ? r->m->n_chunks
                                                                                  : a.position + 1;
      /* window mode: the windows of those cannot be solved, but the
       * chunks of the window being sent still to come can come whole */
      for (uint32_t w = 0; r->win != NULL && r->rank[upto] > 0 && w <= (r->rank[upto] - 1) / r->wc; w++)
        window_lost (r, w, 0);
      for (uint32_t i = 0; i < upto; i++)
        if (r->cstate[i] == SMC_CHUNK_NEEDED)
          settle (r, i, SMC_CHUNK_EXTERNAL);
      r->cursor_valid = 1;
      r->cursor_grp = r->rank[upto] / r->lanes;
      r->cursor_pos = 0;
      r->cursor_scan = upto;
      if (r->win != NULL)
        for (; r->wcursor < r->n_windows && r->wcursor < r->rank[upto] / r->wc; r->wcursor++)
          window_passed (r, r->wcursor, now);
    }
  }
  r->ann.state = a.state;
  if (a.state == SMC_STATE_SENDING)
    r->sending_seen = 1;
  r->ann.position = a.position;
  r->ann.receivers = a.receivers;
  r->ann.flags = (uint8_t) ((r->ann.flags & ~SMC_ANN_SOLO) | (a.flags & SMC_ANN_SOLO));
  r->ann.rate_kbps = a.rate_kbps;
  if (a.state == SMC_STATE_DRAIN && !r->drained) {
    r->drained = 1;
    drain_schedule (r, now);
  } else if (a.state == SMC_STATE_END) {
    settle_all_external (r, 0);
    r->finished = 1;
  }
}

static void
handle_nack_overheard (smc_receiver *r, const uint8_t *buf, size_t len, uint64_t now)
{
  smc_nack n;
  if (smc_parse_nack (buf, len, &n) < 0 || n.node == r->node)
    return;
  for (uint16_t i = 0; i < n.count; i++) {
    smc_nack_entry e;
    pend *p;
    blk *bk;
    smc_nack_entry_get (&n, i, &e);
    if (e.chunk >= r->m->n_chunks || (p = r->by_idx[e.chunk]) == NULL || e.block >= p->g.n_blocks)
      continue;
    bk = &p->blocks[e.block];
    /* a timer that fell due while this receiver was not running still
     * counts: its NACK is not sent yet, and this one covers it. A block
     * that needs source symbols asks for them whatever parity others ask
     * for (that parity is what it has, sent again). */
    if (bk->done || bk->due == 0 || blk_wants_sources (r, bk))
      continue;
    if (e.need >= blk_need (bk)) {
      bk->due = now + r->cfg.nack_retry_ms * MS;
      r->st.nacks_suppressed++;
    }
  }
}

/* another receiver's SRCREQ: asking for the symbols this one would ask
 * for (or more) silences its own request, as an overheard NACK does */
static void
handle_srcreq_overheard (smc_receiver *r, const uint8_t *buf, size_t len, uint64_t now)
{
  smc_srcreq q;
  pend *p;
  blk *bk;
  uint8_t map[SMC_SRCREQ_MAX_MAP], ml;
  if (smc_parse_srcreq (buf, len, &q) < 0 || q.node == r->node || q.chunk >= r->m->n_chunks ||
      (p = r->by_idx[q.chunk]) == NULL || q.block >= p->g.n_blocks)
    return;
  bk = &p->blocks[q.block];
  if (bk->due == 0 || !blk_wants_sources (r, bk))
    return;
  ml = blk_source_map (r, p, q.block, bk, map);
  for (uint8_t i = 0; i < ml; i++)
    if (map[i] & ~(i < q.map_len ? q.map[i] : 0))
      return;
  bk->due = now + r->cfg.nack_retry_ms * MS;
  r->st.nacks_suppressed++;
}

/* the socket's drops for the sender, which slows down on them: what
 * SO_MEMINFO counts now, or what the packets read so far carry
 * (SO_RXQ_OVFL) if more. The packets' count comes a whole queue late
 * (0.4 s from a 64 MiB buffer at 150 MB/s, all of it at the rate that
 * overflowed); the loss takes it still, since it meets the gaps the drops
 * leave as they are read */
static uint32_t
overflow_now (const smc_receiver *r)
{
  return (int32_t) (r->drops - r->rx.overflow) > 0 ? r->drops : r->rx.overflow;
}

static void send_status (smc_receiver *r);

/* one packet of ours, signed with the session key: to the sender (dst), or
 * the group (NULL) */
static void
send_signed (smc_receiver *r, uint8_t *buf, size_t len, const struct sockaddr_in *dst)
{
  if (r->auth != NULL)
    smc_auth_sign (r->auth, buf, len);
  smc_send_batch (&r->sock, &buf, &len, 1, dst);
}

/* everything not verified yet comes by unicast; the sender hears it (three
 * times: STATUS may be lost) with why, when it was not evicted */
static void
leave_for_unicast (smc_receiver *r, uint8_t reason)
{
  settle_all_external (r, 0);
  r->rx_state = SMC_RX_EVICTED;
  r->st.left_reason = reason;
  for (int i = 0; i < 3; i++)
    send_status (r);
  r->finished = 1;
}

static void
handle_control (smc_receiver *r, const uint8_t *buf, size_t len)
{
  smc_control c;
  if (smc_parse_control (buf, len, &c) < 0 || c.node != r->node)
    return;
  if (c.op == SMC_CTL_ACK_COMPLETE && r->rx_state == SMC_RX_COMPLETE) {
    r->acked = 1;
    r->finished = 1;
  } else if (c.op == SMC_CTL_EVICT && r->rx_state == SMC_RX_RECEIVING) {
    int hint = path_mtu_hint (r);
    vlog (r, "evicted: finishing by unicast%s", hint ? " (no full-size DATA packet came)" : "");
    leave_for_unicast (r, hint ? SMC_REASON_PATH_MTU : SMC_REASON_NONE);
  }
}

static void
track_seq (smc_receiver *r, uint32_t seq, uint64_t now)
{
  if (!r->seq_valid) {
    r->seq_valid = 1;
    r->seq_first = seq;
    r->seq_max = seq;
    r->seq_got = 0;
  } else if ((int32_t) (seq - r->seq_max) > 1 && r->after_silence) {
    /* reported apart from loss: an outage does not mean the sender is too
     * fast for the path (nor this receiver too slow for the group); the
     * repair it needs is asked for as usual */
    r->seq_outage += seq - r->seq_max - 1;
    r->st.outages += !r->outage_counted;
    r->st.outage_pkts += seq - r->seq_max - 1;
  }
  r->after_silence = r->outage_counted = 0;
  if ((int32_t) (seq - r->seq_max) > 0)
    r->seq_max = seq;
  r->seq_got++;
  r->seq_last_ns = now;
}

static void
handle_packet (smc_receiver *r, const uint8_t *buf, size_t len, const struct sockaddr_in *from, uint64_t now)
{
  smc_hdr h;
  r->st.pkts++;
  if (smc_parse_hdr (buf, len, &h) < 0) {
    r->st.bad++;
    return;
  }
  if (h.type == SMC_PKT_SDATA || h.type == SMC_PKT_REPAIR ? h.session != (uint8_t) r->cfg.join.session
                                                           : h.session != r->cfg.join.session) {
    r->st.wrong_session++;
    return;
  }
  if (r->auth != NULL && smc_auth_verify (r->auth, buf, len) < 0) {
    r->st.forged++;
    return;
  }
  if (h.type == SMC_PKT_DATA || h.type == SMC_PKT_ANNOUNCE || h.type == SMC_PKT_CONTROL ||
      h.type == SMC_PKT_SDATA || h.type == SMC_PKT_REPAIR) {
    if (r->have_ann && from->sin_addr.s_addr != r->sender.sin_addr.s_addr && r->auth == NULL) {
      r->st.forged++;  /* without a key, only the announcing sender is trusted */
      return;
    }
    r->last_sender = now;
    if (h.type != SMC_PKT_CONTROL && now - r->seq_last_ns >= OUTAGE_MS * MS)
      r->after_silence = 1;
  }
  switch (h.type) {
  case SMC_PKT_DATA:
    track_seq (r, h.seq, now);
    handle_data (r, buf, len, now);
    break;
  case SMC_PKT_ANNOUNCE:
    track_seq (r, h.seq, now);
    if (r->win != NULL)
      wrun_end (r, UINT32_MAX, now);
    handle_announce (r, buf, len, from, now);
    break;
  case SMC_PKT_SDATA:
    /* its sequence number is the low 16 bits of the sender's counter:
     * the nearest to the highest seen (an ANNOUNCE, sent first, gives
     * all 32) */
    if (r->seq_valid)
      track_seq (r, r->seq_max + (uint32_t) (int32_t) (int16_t) (uint16_t) (h.seq - r->seq_max), now);
    handle_sdata (r, buf, len, now);
    break;
  case SMC_PKT_REPAIR:
    handle_repair (r, buf, len, now);
    r->seq_last_ns = now;
    break;
  case SMC_PKT_WNACK:
    handle_wnack_overheard (r, buf, len, now);
    break;
  case SMC_PKT_NACK:
    handle_nack_overheard (r, buf, len, now);
    break;
  case SMC_PKT_SRCREQ:
    handle_srcreq_overheard (r, buf, len, now);
    break;
  case SMC_PKT_CONTROL:
    handle_control (r, buf, len);
    break;
  default:
    break;
  }
}

/* ---------------- feedback ---------------- */

static void
send_status (smc_receiver *r)
{
  uint8_t buf[128];
  smc_hdr h = { .session = r->cfg.join.session, .seq = ++r->uc_seq };
  smc_status s = { 0 };
  size_t len;
  uint32_t expected;
  if (!r->have_ann)
    return;
  if (r->seq_valid) {
    uint32_t seq_expected = r->seq_max - r->seq_first + 1;
    expected = seq_expected + r->rep_expected;
    if (expected >= 50) {
      /* wire loss only: drops in our own socket (the sender outran us) are
       * reported as overflow, which slows the sender, not as loss, which
       * could get us evicted */
      uint64_t missing = r->seq_got >= seq_expected ? 0 : seq_expected - r->seq_got;
      uint32_t ovfl = r->rx.overflow - r->loss_overflow_base;
      missing += r->rep_got >= r->rep_expected ? 0 : r->rep_expected - r->rep_got;
      missing = missing > ovfl ? missing - ovfl : 0;
      missing = missing > (uint64_t) r->seq_outage + r->rep_outage ? missing - r->seq_outage - r->rep_outage : 0;
      r->loss_permille = (uint16_t) (missing * 1000ull / expected);
      r->seq_first = r->seq_max + 1;
      r->seq_got = 0;
      r->seq_outage = 0;
      r->rep_expected = r->rep_got = r->rep_outage = 0;
      r->loss_overflow_base = r->rx.overflow;
    }
  }
  s.node = r->node;
  s.state = (uint8_t) r->rx_state;
  s.reason = (uint8_t) (r->rx_state == SMC_RX_EVICTED ? r->st.left_reason
                        : path_mtu_hint (r)               ? SMC_REASON_PATH_MTU
                                                          : SMC_REASON_NONE);
  s.loss_permille = r->loss_permille;
  s.chunks_done = r->n_done;
  s.chunks_pending = r->np;
  s.ext_missing = r->n_ext;
  s.rx_overflow = overflow_now (r);
  s.bytes_written = r->st.bytes_written;
  s.nacks_sent = (uint32_t) r->st.nacks_sent;
  s.forged = (uint32_t) r->st.forged;
  s.backlog_permille = r->backlog;
  {
    uint64_t now = smc_now_ns ();
    if (r->intake_since != 0 && now > r->intake_since)
      s.intake_kBps = (uint32_t) (r->intake_bytes * 1000000ull / (now - r->intake_since));
    r->intake_bytes = 0;
    r->intake_since = now;
  }
  /* what the hash-and-write path took, over the time it was busy: a disk
   * slower than the group shows here, whatever the sender's rate */
  if (r->drain_bytes != 0) {
    if (!r->drain_measured)
      s.drain_kBps = r->drain_model_kBps;
    else if (r->drain_ns != 0) {
      uint64_t kBps = r->drain_bytes * 1000000ull / r->drain_ns;
      s.drain_kBps = kBps > UINT32_MAX ? UINT32_MAX : (uint32_t) kBps;
    }
  }
  r->drain_bytes = 0;
  r->drain_ns = 0;
  len = smc_build_status (buf, sizeof buf, &h, &s);
  send_signed (r, buf, len, &r->sender);
}

/* the NACK or WNACK of n entries in nack_buf (window mode: wnack_entries) */
static void
flush_nacks (smc_receiver *r, size_t n)
{
  smc_hdr h = { .session = r->cfg.join.session, .seq = ++r->mc_seq };
  size_t len = r->win != NULL
             ? smc_build_wnack (r->nack_buf, 65536, &h, r->node, r->seq_max, r->wnack_entries, (uint16_t) n)
             : smc_build_nack (r->nack_buf, 65536, &h, r->node, r->seq_max, r->nack_entries, (uint16_t) n);
  send_signed (r, r->nack_buf, len, NULL);
  r->st.nacks_sent++;
  r->st.nack_entries_sent += n;
}

/* returns the number of source symbols asked for */
static unsigned
send_srcreq (smc_receiver *r, uint32_t chunk, uint8_t block, const uint8_t *map, uint8_t map_len)
{
  uint8_t buf[SMC_HDR_LEN + SMC_SRCREQ_BODY_LEN + SMC_SRCREQ_MAX_MAP + SMC_TAG_LEN];
  smc_hdr h = { .session = r->cfg.join.session, .seq = ++r->mc_seq };
  size_t len = smc_build_srcreq (buf, sizeof buf, &h, r->node, chunk, block, map, map_len);
  unsigned n = 0;
  if (len == 0)
    return 0;
  send_signed (r, buf, len, NULL);
  for (uint8_t i = 0; i < map_len; i++)
    n += (unsigned) __builtin_popcount (map[i]);
  r->st.srcreqs_sent++;
  r->st.sources_asked += n;
  return n;
}

/* The sender answers SRCREQs in the order they come: once a later one of
 * this receiver's was answered, what this block asked for and still lacks
 * was lost on the way (and is not queued in the socket) */
static int
blk_answer_lost (const smc_receiver *r, const blk *bk)
{
  return bk->req != 0 && bk->req < r->req_answered;
}

/* queue_empty: the last receive took all the socket held. A receiver
 * alone asks again for the source symbols of a block only then: behind the
 * sender (two cores shared with it) it asked for symbols queued in its
 * socket and got them twice (500 duplicates of 800 losses at MTU 9000).
 * (Not for a group: 128 receivers whose sockets empty together asked all
 * at once, 12,000 NACKs instead of 1,000)
 * Or as soon as the answer to a later request came (blk_answer_lost): a
 * receiver that stays behind never empties its socket, and the chunks
 * whose resent symbols were lost again waited until the window left them
 * to unicast (16-132 of 512 at MTU 9000, 5 % loss). */
/* window mode: the windows whose NACK is due ask for what they need (a
 * solve first, when repair symbols came since the last); a window NACKed
 * for NACK_GIVEUP_MS without its repair goes to unicast */
static void
wnack_scan (smc_receiver *r, uint64_t now)
{
  size_t n = 0, max = ((size_t) r->S + SMC_SHORT_HDR_LEN - SMC_HDR_LEN - SMC_NACK_BODY_LEN) / SMC_WNACK_ENTRY_LEN;
  uint32_t end = r->wcursor + 1 < r->n_windows ? r->wcursor + 1 : r->n_windows;
  if (r->nack_buf == NULL && (r->nack_buf = malloc (65536)) == NULL)
    return;
  if (r->wnack_entries == NULL && (r->wnack_entries = calloc (max, sizeof *r->wnack_entries)) == NULL)
    return;
  while (r->wlow < r->n_windows && r->win[r->wlow].state != WND_OPEN)
    r->wlow++;
  for (uint32_t w = r->wlow; w < end; w++) {
    wnd *x = &r->win[w];
    uint32_t need;
    int first;
    if (x->state != WND_OPEN || x->due == 0 || x->due > now)
      continue;
    if (x->dirty) {
      window_solve (r, w);
      if (x->state != WND_OPEN)
        continue;
    }
    need = window_need (r, w);
    first = x->nacks == 0;
    if (!x->early && (first || r->backlog < WINDOW_GROW_PERMILLE))
      x->nacks++;
    if (!x->early && x->nacks > NACK_GIVEUP_MS / (r->cfg.nack_retry_ms ? r->cfg.nack_retry_ms : 1) + 1) {
      vlog (r, "window %u: no repair after %u ms of NACKs, left for unicast", w, NACK_GIVEUP_MS);
      window_lost (r, w, 1);
      continue;
    }
    x->due = x->early ? 0 : now + r->cfg.nack_retry_ms * MS + r->qdelay;
    x->early = 0;
    if (!first)
      r->st.nack_entries_retry++;
    r->wnack_entries[n++] = (smc_wnack_entry) { .window = w, .next = x->next,
                                                .need = (uint16_t) (need > UINT16_MAX ? UINT16_MAX : need),
                                                .missing = (uint16_t) (x->missing > UINT16_MAX ? UINT16_MAX : x->missing) };
    if (n == max) {
      flush_nacks (r, n);
      n = 0;
    }
  }
  if (n > 0)
    flush_nacks (r, n);
}

static void
nack_scan (smc_receiver *r, uint64_t now, int queue_empty)
{
  size_t n = 0;
  uint64_t asked = 0;
  if (r->win != NULL) {
    wnack_scan (r, now);
    return;
  }
  if (r->nack_buf == NULL) {
    r->nack_max = (size_t) (r->ann.symbol_size + SMC_DATA_HDR_LEN - SMC_HDR_LEN - SMC_NACK_BODY_LEN) / SMC_NACK_ENTRY_LEN;
    r->nack_buf = malloc (65536);
    r->nack_entries = calloc (r->nack_max, sizeof *r->nack_entries);
    if (r->nack_buf == NULL || r->nack_entries == NULL)
      return;
  }
  for (uint32_t i = 0; i < r->np; i++) {
    pend *p = r->plist[i];
    for (int b = 0; b < p->g.n_blocks; b++) {
      blk *bk = &p->blocks[b];
      int need, first, lost = blk_answer_lost (r, bk);
      if (bk->done || bk->due == 0 || (bk->due > now && !lost) ||
          (bk->nacks > 0 && blk_solo (r, bk) && !queue_empty && !lost))
        continue;
      bk->req = 0;  /* asked again below, or not by index */
      need = blk_need (bk);
      first = bk->nacks == 0;
      if (first)
        bk->solo = (uint8_t) solo (r);
      /* a request while the socket's queue is a tenth full or more is not
       * counted toward giving up (the first always counts: it marks the
       * block as asked for): the repair may be in that queue, behind
       * seconds of data when this receiver is slow (a disk at 20 MB/s
       * behind a 64 MiB buffer). The window still bounds how long the
       * chunk can wait */
      if (!bk->early && (first || r->backlog < WINDOW_GROW_PERMILLE))
        bk->nacks++;
      if (!bk->early && bk->nacks > NACK_GIVEUP_MS / (r->cfg.nack_retry_ms ? r->cfg.nack_retry_ms : 1) + 1) {
        /* repair does not get through (about a second of NACKs): the
         * chunk goes to unicast rather than holding the session */
        vlog (r, "chunk %u block %d: no repair after %u ms of NACKs, left for unicast", p->idx, b, NACK_GIVEUP_MS);
        settle (r, p->idx, SMC_CHUNK_EXTERNAL);
        i--;
        break;
      }
      /* a silence's request is not retried nor counted toward giving up:
       * the block waits for the next silence, or to be seen passed.
       * Others are asked again once the answer could have come through
       * the socket's queue (qdelay): a receiver whose disk took 5 MB/s,
       * its 64 MiB buffer holding the whole image, asked every 10 ms for
       * 13 s, used up its blocks' parity and had 6,032 source symbols
       * resent (egress 1.27 instead of 1.13; shoal-mcast-sim --size 64
       * --receivers 8 --loss 5 --rate 10000 --slow 1:5) */
      bk->due = bk->early ? 0 : now + r->cfg.nack_retry_ms * MS + r->qdelay;
      bk->early = 0;
      if (blk_wants_sources (r, bk)) {
        /* the parity not sent yet, by NACK, and the rest by index */
        uint8_t map[SMC_SRCREQ_MAX_MAP], ml = blk_source_map (r, p, (uint8_t) b, bk, map);
        if (ml > 0) {
          asked += send_srcreq (r, p->idx, (uint8_t) b, map, ml);
          bk->asked = 1;
          bk->req = ++r->req_serial;
        }
        need = blk_solo (r, bk) ? 0 : blk_parity_left (bk);
        if (need == 0)
          continue;
      }
      if (!first)
        r->st.nack_entries_retry++;
      r->nack_entries[n++] = (smc_nack_entry) { .chunk = p->idx, .block = (uint8_t) b,
                                                .need = (uint8_t) need, .pnext = bk->pnext };
      if (n == r->nack_max) {
        flush_nacks (r, n);
        n = 0;
      }
    }
  }
  if (n > 0)
    flush_nacks (r, n);
  if (asked > 0 && r->ann.rate_kbps > 0) {
    /* after a long outage a receiver asks for thousands of symbols: ask
     * again once the sender could have sent them all at its rate, not
     * every retry time (the sender would drop the copies, but each takes
     * a packet and counts toward giving up to unicast) */
    uint64_t wait = asked * r->S * 8000ull / r->ann.rate_kbps * 1000ull;  /* ns */
    for (uint32_t i = 0; i < r->np; i++)
      for (int b = 0; b < r->plist[i]->g.n_blocks; b++) {
        blk *bk = &r->plist[i]->blocks[b];
        if (bk->asked && !bk->done && bk->due != 0)
          bk->due += wait;
        bk->asked = 0;
      }
  }
}

/* STATUS when due: periodic, or at once when the socket overflowed or its
 * queue is filling up */
static void
status_tick (smc_receiver *r, uint64_t now)
{
  /* every turn, not every 5 ms: at 10 Gbit/s, 5 ms is 700 jumbo frames
   * dropped before the sender hears of it. Only with the queue half full
   * (as read at most 5 ms ago): a socket drops only when full, and below
   * that the count the packets carry is late by no more than that queue */
  if (r->have_ann && r->backlog >= SMC_BACKLOG_HIGH)
    r->drops = smc_sock_drops (&r->sock);
  if (r->have_ann && overflow_now (r) != r->reported_overflow && now >= r->last_overflow_report + 20 * MS) {
    /* the socket overflowed: tell the sender now, it slows down */
    r->reported_overflow = overflow_now (r);
    r->last_overflow_report = now;
    r->next_status = now;
  }
  if (r->have_ann && now >= r->backlog_read + 5 * MS) {
    r->backlog = smc_sock_backlog_permille (&r->sock);
    r->backlog_read = now;
    if (r->backlog >= WINDOW_GROW_PERMILLE)
      r->backlog_hi = now;
    /* with a queue a tenth full the packet read last is a recent one */
    r->qdelay = r->backlog >= WINDOW_GROW_PERMILLE ? smc_sock_queue_delay_ns (&r->sock) : 0;
    if (r->qdelay < QDELAY_MIN_MS * MS)
      r->qdelay = 0;
  }
  if (r->have_ann && r->backlog >= SMC_BACKLOG_HIGH && now >= r->last_backlog_report + 20 * MS) {
    /* packets pile up faster than this receiver takes them: the sender
     * slows down before the socket has to drop any */
    r->last_backlog_report = now;
    r->st.backlog_reports++;
    r->next_status = now;
  }
  if (r->have_ann && now >= r->next_status) {
    send_status (r);
    /* reports come four times as often in the first 300 ms of data: a
     * receiver on a link far slower than the group's rate is known (and
     * its NACKs ignored) before it can ask for much repair */
    r->next_status = now + (r->st.first_pkt_ns != 0 && now - r->st.first_pkt_ns < 300 * MS
                            ? r->cfg.status_ms / 4 : r->cfg.status_ms) * MS;
  }
}

/* How long a due NACK may wait for the socket's queue to be read: what is
 * queued may hold another receiver's NACK that makes it unnecessary. Only
 * as long as there are others to hear from, 1 ms per receiver, 20 at most
 * (or when the sender does not say how many): a receiver alone, or one of
 * a few, that falls behind the sender would otherwise ask for each repair
 * 20 ms late, pile up dozens of incomplete chunks, and finish with all of
 * them at the end (MTU 9000, one receiver, 5 % loss: NACKs every 15-30 ms,
 * 35 chunks waiting at the end of the first pass, and 28 ms of a 0.17 s
 * session after it). */
static uint64_t
nack_defer_max (const smc_receiver *r)
{
  uint32_t n = r->ann.receivers;
  return (n == 0 || n > 20 ? 20 : n) * MS;
}

/* queue_empty: the last receive took what the socket held. Due NACKs wait
 * until it did (nack_defer_max at most): the packets still queued may hold
 * the repair, or another receiver's NACK that makes this one unnecessary. */
static uint64_t
timers (smc_receiver *r, uint64_t now, int queue_empty)
{
  uint64_t next = now + 20 * MS;
  status_tick (r, now);
  if (r->next_status < next && r->have_ann)
    next = r->next_status;
  for (uint32_t i = 0; i < r->np; i++)
    for (int b = 0; b < r->plist[i]->g.n_blocks; b++) {
      const blk *bk = &r->plist[i]->blocks[b];
      uint64_t due = blk_answer_lost (r, bk) ? now : bk->due;
      if (bk->due != 0 && !bk->done && due < next)
        next = due;
    }
  for (uint32_t w = r->wlow; r->win != NULL && w < r->n_windows && w <= r->wcursor; w++)
    if (r->win[w].state == WND_OPEN && r->win[w].due != 0 && r->win[w].due < next)
      next = r->win[w].due;
  if (next <= now) {
    if (!queue_empty && r->nack_defer_since == 0)
      r->nack_defer_since = now;
    if (queue_empty || now - r->nack_defer_since >= nack_defer_max (r)) {
      nack_scan (r, now, queue_empty);
      r->nack_defer_since = 0;
    }
    next = now + MS;
  }
  if (r->have_ann && r->rx_state == SMC_RX_RECEIVING && !r->drained && r->np > 0 && in_last_group (r) &&
      now - r->last_sender >= SILENCE_MS * MS && now - r->silence_scan >= SILENCE_MS * MS) {
    /* its incomplete blocks get their repair now instead of when the next
     * ANNOUNCE gets through (a burst of 250 packets that took the end of
     * the pass took the DRAIN announces after it too: 3.5 s at 20-100 ms
     * each). Earlier in the pass a silence is an outage: what it took is
     * asked for when packets come again */
    r->silence_scan = now;
    for (uint32_t w = r->wcursor; r->win != NULL && w < r->n_windows; w++)
      if (r->win[w].state == WND_OPEN && r->win[w].due == 0 && r->win[w].missing > 0 && r->win[w].missing < r->win[w].k) {
        r->win[w].early = 1;
        wschedule (r, w, now);
      }
    for (uint32_t i = 0; i < r->np; i++)
      for (int b = 0; b < r->plist[i]->g.n_blocks; b++) {
        blk *bk = &r->plist[i]->blocks[b];
        if (!bk->done && bk->due == 0) {
          /* not seen passed: perhaps not sent yet (the sender paused:
           * 128 receivers share its two cores), and then its NACK is
           * ignored; asked for once per silence, so that a pause does not
           * become a NACK every 10 ms from every receiver */
          bk->early = 1;
          schedule (r, bk, now);
        }
      }
  }
  if (r->rx_state == SMC_RX_RECEIVING && r->n_settled == r->m->n_chunks) {
    r->rx_state = SMC_RX_COMPLETE;
    r->complete_since = now;
    r->st.complete_ns = now;
    vlog (r, "complete: %u chunks by multicast, %u for unicast", r->n_done, r->n_ext);
    send_status (r);
    r->next_status = now + 20 * MS;
  }
  if (r->rx_state == SMC_RX_COMPLETE && now - r->complete_since > 2000 * MS)
    r->finished = 1;  /* no ack: the sender is gone or the acks were lost */
  if (!r->have_ann && now - r->start > r->cfg.join_timeout_ms * MS) {
    vlog (r, "no sender seen: giving up");
    r->rc = -1;
    r->finished = 1;
  } else if (r->have_ann && r->rx_state == SMC_RX_RECEIVING && now - r->last_sender > r->cfg.idle_timeout_ms * MS) {
    vlog (r, "sender silent for %u ms: giving up", r->cfg.idle_timeout_ms);
    r->rx_state = SMC_RX_FAILED;
    send_status (r);
    r->rc = -1;
    r->finished = 1;
  }
  if (__atomic_load_n (&r->cancelled, __ATOMIC_SEQ_CST)) {
    r->rc = -1;
    r->finished = 1;
  }
  return next;
}

/* one turn of the receive loop, after n packets taken at now (queue_empty:
 * none left): returns when the next is due */
static uint64_t
turn (smc_receiver *r, int n, int queue_empty, uint64_t now)
{
  uint64_t next;
  if (n > 0 && r->st.first_pkt_ns == 0)
    r->st.first_pkt_ns = now;
  if (ready_due (r, now))
    flush_ready (r);
  collect_results (r);
  r->st.rx_overflow = overflow_now (r);
  next = timers (r, now, queue_empty);
  if (r->n_ready > 0 && ready_deadline (r) < next)
    next = ready_deadline (r);
  return next;
}

/* chunks still being verified and written settle; what the multicast
 * part did not bring is left for unicast */
static int
finish (smc_receiver *r)
{
  flush_ready (r);
  while (r->n_verifying > 0)
    wait_results (r);
  if (r->rx_state == SMC_RX_RECEIVING || r->rx_state == SMC_RX_JOINING)
    settle_all_external (r, 0);
  return r->rc;
}

int
smc_receiver_run (smc_receiver *r)
{
  smc_receiver_start (r, smc_now_ns ());
  while (!r->finished) {
    int n = smc_rxbatch_recv (&r->sock, &r->rx);
    uint64_t now = smc_now_ns (), next;
    for (int i = 0; i < n; i++) {
      handle_packet (r, r->rx.bufs[i], r->rx.msgs[i].msg_len, &r->rx.from[i], now);
      r->intake_bytes += r->rx.msgs[i].msg_len;
    }
    next = turn (r, n, n < SMC_BATCH, now);
    if (n < SMC_BATCH && !r->finished) {
      /* the socket, and the verify thread's results */
      struct pollfd pf[2] = { { .fd = r->sock.fd, .events = POLLIN }, { .fd = r->vfd, .events = POLLIN } };
      uint64_t wait = next > now ? next - now : 0;
      struct timespec ts;
      if (n > 0 && r->cfg.coalesce_us > 0) {
        /* data is flowing: let it pile up in the socket buffer and take it
         * in batches; on a shared CPU one wake-up per packet costs more
         * than the packet (the buffer holds far more than this interval) */
        if (wait > (uint64_t) r->cfg.coalesce_us * 1000)
          wait = (uint64_t) r->cfg.coalesce_us * 1000;
        ts = (struct timespec) { .tv_sec = 0, .tv_nsec = (long) wait };
        nanosleep (&ts, NULL);
        r->st.wakeups++;
      } else if (n == 0) {
        ts = (struct timespec) { .tv_sec = (time_t) (wait / 1000000000ull), .tv_nsec = (long) (wait % 1000000000ull) };
        ppoll (pf, r->vt_on ? 2 : 1, &ts, NULL);
        r->st.wakeups++;
      }
    }
  }
  return finish (r);
}

/* ---------------- offline (shoal-mcast-sim.h) ---------------- */

void
smc_receiver_start (smc_receiver *r, uint64_t now)
{
  r->start = now;
  r->last_sender = now;
}

void
smc_receiver_input (smc_receiver *r, const uint8_t *pkt, size_t len, const struct sockaddr_in *from, uint64_t now)
{
  if (r->finished)
    return;
  handle_packet (r, pkt, len, from, now);
  r->intake_bytes += len;
}

void
smc_receiver_set_socket (smc_receiver *r, uint16_t backlog_permille, uint64_t delay_ns, uint32_t drops,
                         uint32_t overflow)
{
  r->sock.offline_backlog = backlog_permille;
  r->sock.offline_delay_ns = delay_ns;
  r->sock.offline_drops = drops;
  r->rx.overflow = overflow;
}

void
smc_receiver_set_drain (smc_receiver *r, uint32_t kBps)
{
  r->drain_model_kBps = kBps;
}

uint64_t
smc_receiver_step (smc_receiver *r, int n, int queue_empty, uint64_t now)
{
  return r->finished ? UINT64_MAX : turn (r, n, queue_empty, now);
}

int
smc_receiver_finished (const smc_receiver *r)
{
  return r->finished;
}

int
smc_receiver_end (smc_receiver *r)
{
  return finish (r);
}
