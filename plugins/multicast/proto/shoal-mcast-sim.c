/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-sim.c: a session in one process, in virtual time (shoal-mcast-sim.h) */
#include "shoal-mcast-sim.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000ull
#define WIRE_OVERHEAD 42   /* Ethernet 14 + IPv4 20 + UDP 8, as the sender counts */
#define SIM_PORT 6100
#define SIM_GROUP "239.77.9.1"
#define PKT_CAP 65536
/* turns of the loop at one instant before time is moved on by 1 µs (a
 * party that keeps asking for "now" must not stop the clock) */
#define SAME_INSTANT_MAX 4096
/* what a packet costs in a socket's receive buffer beyond its bytes (the
 * kernel charges its whole buffer, sk_buff and all) */
#define SKB_COST 768

typedef struct {
  uint64_t t, order;
  uint32_t from, to;
  uint32_t len;
  uint32_t drops;           /* its receiver's drops when it was queued (SO_RXQ_OVFL) */
  uint8_t *pkt;
} ev;

typedef struct {
  smc_sim *sim;
  uint32_t id;              /* 0: the sender, i: receiver i */
} party;

typedef struct {
  smc_receiver *r;
  uint64_t next;
  uint64_t rng;
  int dead, ended, n_in;
  int dropped;              /* its node dropped from the sender (drop_ns) */
  uint32_t writes, bad_writes;
  /* with an intake rate: its socket's queue, the packets in it and when
   * the last of them will have been taken; what it dropped */
  uint64_t queued, busy_until;
  uint32_t overflow;
  uint32_t overflow_read;   /* the drops the packets it read carried */
} rcv;

struct smc_sim {
  const smc_sim_config *cfg;
  smc_sim_result *res;
  smc_manifest *m;
  smc_sender *s;
  smc_auth *auth;
  uint64_t now, order, snext;
  int s_in;
  rcv r[SMC_SIM_MAX_RECEIVERS + 1];
  party p[SMC_SIM_MAX_RECEIVERS + 1];
  ev *heap;
  size_t n_ev, cap_ev;
  int oom;
};

static uint64_t
splitmix (uint64_t *x)
{
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t
sim_clock (void *user)
{
  return ((smc_sim *) user)->now;
}

/* every party's address: the sender 10.77.9.1, receiver i 10.77.10.i (i < 256) */
static struct sockaddr_in
addr_of (uint32_t id)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons (SIM_PORT) };
  a.sin_addr.s_addr = htonl (id == 0 ? 0x0a4d0901u : 0x0a4d0a00u + id);
  return a;
}

static uint32_t
id_of (const struct sockaddr_in *a)
{
  uint32_t ip = ntohl (a->sin_addr.s_addr);
  if (ip == 0x0a4d0901u)
    return 0;
  if ((ip & 0xffffff00u) == 0x0a4d0a00u)
    return ip & 0xff;
  return UINT32_MAX;
}

/* ---------------- the event heap, by time then order of sending ---------------- */

static int
ev_before (const ev *a, const ev *b)
{
  return a->t < b->t || (a->t == b->t && a->order < b->order);
}

static void
heap_push (smc_sim *sim, const ev *e)
{
  size_t i;
  if (sim->n_ev == sim->cap_ev) {
    size_t cap = sim->cap_ev ? sim->cap_ev * 2 : 4096;
    ev *h = realloc (sim->heap, cap * sizeof *h);
    if (h == NULL) {
      sim->oom = 1;
      free (e->pkt);
      return;
    }
    sim->heap = h;
    sim->cap_ev = cap;
  }
  i = sim->n_ev++;
  while (i > 0 && ev_before (e, &sim->heap[(i - 1) / 2])) {
    sim->heap[i] = sim->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  sim->heap[i] = *e;
}

static ev
heap_pop (smc_sim *sim)
{
  ev top = sim->heap[0], last = sim->heap[--sim->n_ev];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= sim->n_ev)
      break;
    if (c + 1 < sim->n_ev && ev_before (&sim->heap[c + 1], &sim->heap[c]))
      c++;
    if (!ev_before (&sim->heap[c], &last))
      break;
    sim->heap[i] = sim->heap[c];
    i = c;
  }
  if (sim->n_ev > 0)
    sim->heap[i] = last;
  return top;
}

/* ---------------- packets on their way ---------------- */

/* a receiver with an intake rate takes its packets one after the other
 * at that rate: e is handed to it when it has taken those before it, or
 * dropped (0) when its socket buffer is full */
static int
enqueue (smc_sim *sim, rcv *r, ev *e)
{
  uint64_t rate = sim->cfg->intake_Bps[r - sim->r], cost = e->len + SKB_COST;
  if (rate == 0)
    return 1;
  if (r->queued + cost > sim->cfg->rcvbuf) {
    r->overflow++;
    return 0;
  }
  r->queued += cost;
  e->drops = r->overflow;
  if (r->busy_until < e->t)
    r->busy_until = e->t;
  r->busy_until += (uint64_t) e->len * 1000000000ull / rate;
  e->t = r->busy_until;
  return 1;
}

/* one copy of pkt on its way from `from` to `to`, unless lost or filtered */
static void
send_one (smc_sim *sim, uint32_t from, uint32_t to, const uint8_t *pkt, size_t len)
{
  const smc_sim_config *c = sim->cfg;
  ev e = { .t = sim->now + c->latency_ns, .order = sim->order++, .from = from, .to = to };
  size_t n = len, cap = c->filter != NULL ? PKT_CAP : len;
  if (to != 0 && from == 0 && c->loss_ppm > 0 && splitmix (&sim->r[to].rng) % 1000000u < c->loss_ppm)
    return;
  if (len > PKT_CAP || (e.pkt = malloc (cap > 0 ? cap : 1)) == NULL) {
    sim->oom = 1;
    return;
  }
  memcpy (e.pkt, pkt, len);
  if (c->filter != NULL && c->filter (c->user, sim, from, to, e.pkt, &n, PKT_CAP) != SMC_SIM_DELIVER) {
    free (e.pkt);
    return;
  }
  e.len = (uint32_t) (n > cap ? cap : n);
  if (to != 0 && !enqueue (sim, &sim->r[to], &e)) {
    free (e.pkt);
    return;
  }
  heap_push (sim, &e);
}

/* `to`: a party, or UINT32_MAX: every receiver (but the sending one) */
static void
route (smc_sim *sim, uint32_t from, uint32_t to, const uint8_t *pkt, size_t len)
{
  if (to != UINT32_MAX) {
    if (to <= sim->cfg->receivers && to != from)
      send_one (sim, from, to, pkt, len);
    return;
  }
  for (uint32_t i = 1; i <= sim->cfg->receivers; i++)
    if (i != from)
      send_one (sim, from, i, pkt, len);
}

static void
tap (void *user, const uint8_t *pkt, size_t len, const struct sockaddr_in *dst)
{
  party *p = user;
  smc_sim *sim = p->sim;
  if (p->id == 0) {
    sim->res->egress_bytes += len + WIRE_OVERHEAD;
    sim->res->egress_pkts++;
  }
  if (dst == NULL) {
    /* to the group: every receiver, and the sender hears receivers' NACKs
     * and SRCREQs there */
    route (sim, p->id, UINT32_MAX, pkt, len);
    if (p->id != 0)
      route (sim, p->id, 0, pkt, len);
  } else {
    route (sim, p->id, id_of (dst), pkt, len);
  }
}

void
smc_sim_inject (smc_sim *sim, uint32_t from, uint32_t to, const uint8_t *pkt, size_t len, int sign)
{
  uint8_t *copy;
  ev e = { .t = sim->now + sim->cfg->latency_ns, .from = from };
  if (len > PKT_CAP || (copy = malloc (len > 0 ? len : 1)) == NULL)
    return;
  memcpy (copy, pkt, len);
  if (sign && sim->auth != NULL)
    smc_auth_sign (sim->auth, copy, len);
  for (uint32_t i = to == UINT32_MAX ? 1 : to; i <= (to == UINT32_MAX ? sim->cfg->receivers : to); i++) {
    if (i > sim->cfg->receivers || (e.pkt = malloc (len > 0 ? len : 1)) == NULL)
      break;
    memcpy (e.pkt, copy, len);
    e.to = i;
    e.len = (uint32_t) len;
    e.order = sim->order++;
    e.t = sim->now + sim->cfg->latency_ns;
    if (!enqueue (sim, &sim->r[i], &e)) {
      free (e.pkt);
      continue;
    }
    heap_push (sim, &e);
  }
  free (copy);
}

void
smc_sim_sign (smc_sim *sim, uint8_t *pkt, size_t len)
{
  if (sim->auth != NULL)
    smc_auth_sign (sim->auth, pkt, len);
}

uint64_t
smc_sim_now (const smc_sim *sim)
{
  return sim->now;
}

/* ---------------- the parties ---------------- */

static int
read_chunk (void *user, uint32_t idx, uint8_t *buf, size_t len)
{
  smc_sim *sim = user;
  uint64_t off = (uint64_t) idx * sim->m->chunk_size;
  if (off + len > sim->cfg->image_len)
    return -1;
  memcpy (buf, sim->cfg->image + off, len);
  return 0;
}

static int
write_chunk (void *user, uint32_t idx, const uint8_t *data, size_t len)
{
  party *p = user;
  smc_sim *sim = p->sim;
  uint64_t off = (uint64_t) idx * sim->m->chunk_size;
  rcv *r = &sim->r[p->id];
  r->writes++;
  if (idx >= sim->m->n_chunks || off + len > sim->cfg->image_len || len != smc_manifest_chunk_len (sim->m, idx) ||
      memcmp (data, sim->cfg->image + off, len) != 0)
    r->bad_writes++;
  return 0;
}

void
smc_sim_fill (uint8_t *buf, size_t len, uint64_t seed)
{
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 0x243f6a8885a308d3ull;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = (uint8_t) x;
  }
}

void
smc_sim_config_init (smc_sim_config *c)
{
  memset (c, 0, sizeof *c);
  c->chunk_size = 1024 * 1024;
  c->mtu = 1500;
  c->receivers = 1;
  c->rate_bps = 1000000000ull;
  c->latency_ns = 50000;
  c->time_limit_ns = 120000 * MS;
  c->rcvbuf = 64u << 20;
  c->slow_ratio_permille = 500;
}

static int
setup (smc_sim *sim, char *err, size_t errlen)
{
  const smc_sim_config *c = sim->cfg;
  smc_sender_config sc;
  char join[512];
  sim->m = smc_manifest_new (c->image_len, c->chunk_size);
  if (sim->m == NULL) {
    snprintf (err, errlen, "no manifest for %zu bytes in chunks of %u", c->image_len, c->chunk_size);
    return -1;
  }
  for (uint32_t i = 0; i < sim->m->n_chunks; i++)
    smc_manifest_set_chunk (sim->m, i, c->image + (size_t) i * c->chunk_size, smc_manifest_chunk_len (sim->m, i));
  smc_manifest_compute_id (sim->m);
  smc_sender_config_init (&sc);
  sc.group = SIM_GROUP;
  sc.port = SIM_PORT;
  sc.session = (uint16_t) (1 + c->seed % 65535);
  sc.has_key = !c->no_key;
  for (int i = 0; i < SMC_KEY_LEN; i++)
    sc.key[i] = (uint8_t) (c->seed >> (8 * (i % 8))) ^ (uint8_t) (0xa5 + i);
  sc.manifest = sim->m;
  sc.mtu = c->mtu;
  sc.rate_max_bps = c->rate_bps;
  sc.rate_min_bps = c->rate_min_bps;
  sc.slow_ratio_permille = c->slow_ratio_permille;
  sc.window_chunks = c->window_chunks;
  sc.expected = c->receivers;
  sc.verbose = c->verbose;
  sc.read_chunk = read_chunk;
  sc.user = sim;
  sim->p[0] = (party) { sim, 0 };
  sim->s = smc_sender_new_offline (&sc, tap, &sim->p[0], err, errlen);
  if (sim->s == NULL)
    return -1;
  if (sc.has_key && (sim->auth = smc_auth_new (sc.key, sim->m->id)) == NULL) {
    snprintf (err, errlen, "cannot set up packet authentication");
    return -1;
  }
  for (uint32_t i = 1; i <= c->receivers; i++) {
    smc_receiver_config rc;
    smc_receiver_config_init (&rc);
    if (smc_sender_join_string (sim->s, 100 + i, join, sizeof join) < 0 || smc_join_parse (join, &rc.join) < 0) {
      snprintf (err, errlen, "the sender's join string does not parse");
      return -1;
    }
    rc.manifest = sim->m;
    rc.verbose = c->verbose;
    rc.write_chunk = write_chunk;
    sim->p[i] = (party) { sim, i };
    rc.user = &sim->p[i];
    sim->r[i].rng = c->seed * 0x100000001b3ull + i;
    sim->r[i].r = smc_receiver_new_offline (&rc, tap, &sim->p[i], err, errlen);
    if (sim->r[i].r == NULL)
      return -1;
    smc_receiver_set_drain (sim->r[i].r, (uint32_t) (c->drain_Bps[i] / 1000));
  }
  return 0;
}

static void
deliver (smc_sim *sim, const ev *e)
{
  struct sockaddr_in from = addr_of (e->from);
  if (e->to == 0) {
    smc_sender_input (sim->s, e->pkt, e->len, &from, sim->now);
    sim->s_in = 1;
  } else {
    rcv *r = &sim->r[e->to];
    if (sim->cfg->intake_Bps[e->to] != 0) {
      r->queued -= e->len + SKB_COST;
      r->overflow_read = e->drops;
    }
    if (!r->dead && !r->ended) {
      smc_receiver_input (r->r, e->pkt, e->len, &from, sim->now);
      r->n_in++;
    }
  }
}

/* the receivers whose multicast part is over, and the killed */
static void
end_receivers (smc_sim *sim)
{
  for (uint32_t i = 1; i <= sim->cfg->receivers; i++) {
    rcv *r = &sim->r[i];
    if (!r->ended && !r->dead && smc_receiver_finished (r->r)) {
      r->ended = 1;
      sim->res->rcv[i].finished_ns = sim->now;
    }
    if (!r->dead && sim->cfg->kill_ns[i] != 0 && sim->now >= sim->cfg->kill_ns[i])
      r->dead = 1;
  }
}

static int
all_over (smc_sim *sim)
{
  if (sim->snext != UINT64_MAX)
    return 0;
  for (uint32_t i = 1; i <= sim->cfg->receivers; i++)
    if (!sim->r[i].ended && !sim->r[i].dead)
      return 0;
  return 1;
}

static void
loop (smc_sim *sim)
{
  uint32_t same = 0;
  sim->now = 0;
  smc_sender_start (sim->s, 0);
  for (uint32_t i = 1; i <= sim->cfg->receivers; i++)
    smc_receiver_start (sim->r[i].r, 0);
  sim->snext = 0;
  while (!all_over (sim) && !sim->oom) {
    uint64_t t = sim->snext;
    for (uint32_t i = 1; i <= sim->cfg->receivers; i++)
      if (!sim->r[i].dead && !sim->r[i].ended && sim->r[i].next < t)
        t = sim->r[i].next;
    for (uint32_t i = 1; i <= sim->cfg->receivers; i++)
      if (sim->cfg->drop_ns[i] != 0 && !sim->r[i].dropped && sim->snext != UINT64_MAX && sim->cfg->drop_ns[i] < t)
        t = sim->cfg->drop_ns[i];
    if (sim->n_ev > 0 && sim->heap[0].t < t)
      t = sim->heap[0].t;
    if (t == UINT64_MAX)
      break;
    if (t <= sim->now) {
      if (++same > SAME_INSTANT_MAX) {
        sim->now += 1000;
        same = 0;
      }
    } else {
      sim->now = t;
      same = 0;
    }
    if (sim->now > sim->cfg->time_limit_ns)
      break;
    end_receivers (sim);
    while (sim->n_ev > 0 && sim->heap[0].t <= sim->now) {
      ev e = heap_pop (sim);
      deliver (sim, &e);
      free (e.pkt);
    }
    for (uint32_t i = 1; i <= sim->cfg->receivers; i++) {
      rcv *r = &sim->r[i];
      if (r->dead || r->ended || (r->n_in == 0 && r->next > sim->now))
        continue;
      smc_receiver_set_socket (r->r, (uint16_t) (r->queued >= sim->cfg->rcvbuf ? 1000 : r->queued * 1000 / sim->cfg->rcvbuf),
                               r->busy_until > sim->now ? r->busy_until - sim->now : 0, r->overflow,
                               r->overflow_read);
      r->next = smc_receiver_step (r->r, r->n_in, r->queued == 0, sim->now);
      r->n_in = 0;
    }
    end_receivers (sim);
    for (uint32_t i = 1; i <= sim->cfg->receivers; i++)
      if (sim->cfg->drop_ns[i] != 0 && !sim->r[i].dropped && sim->now >= sim->cfg->drop_ns[i]) {
        sim->r[i].dropped = 1;
        if (smc_sender_drop_node (sim->s, 100 + i) < 0)
          sim->oom = 1;
        sim->s_in = 1;
      }
    if (sim->snext != UINT64_MAX && (sim->s_in || sim->snext <= sim->now)) {
      sim->snext = smc_sender_step (sim->s, sim->now);
      sim->s_in = 0;
      if (sim->snext == UINT64_MAX)
        sim->res->end_ns = sim->now;
    }
  }
}

/* what the multicast part left for unicast comes from the image, as the
 * agent's unicast fetch would bring it */
static void
unicast_rest (smc_sim *sim, uint32_t i)
{
  smc_sim_receiver_result *out = &sim->res->rcv[i];
  uint32_t n = smc_receiver_missing (sim->r[i].r, NULL, 0), *idx;
  out->chunks_unicast = n;
  idx = calloc (n > 0 ? n : 1, sizeof *idx);
  if (idx == NULL)
    return;
  n = smc_receiver_missing (sim->r[i].r, idx, n);
  for (uint32_t k = 0; k < n; k++) {
    uint64_t off = (uint64_t) idx[k] * sim->m->chunk_size;
    smc_receiver_supply_chunk (sim->r[i].r, idx[k], sim->cfg->image + off, smc_manifest_chunk_len (sim->m, idx[k]));
  }
  free (idx);
  out->complete = smc_receiver_is_complete (sim->r[i].r);
}

int
smc_sim_run (const smc_sim_config *c, smc_sim_result *res, char *err, size_t errlen)
{
  smc_sim *sim;
  const smc_node_info *nodes;
  int rc = 0;
  memset (res, 0, sizeof *res);
  if (c->receivers < 1 || c->receivers > SMC_SIM_MAX_RECEIVERS || c->image == NULL || c->image_len == 0) {
    snprintf (err, errlen, "a simulation needs an image and 1 to %d receivers", SMC_SIM_MAX_RECEIVERS);
    return -1;
  }
  sim = calloc (1, sizeof *sim);
  if (sim == NULL) {
    snprintf (err, errlen, "out of memory");
    return -1;
  }
  sim->cfg = c;
  sim->res = res;
  smc_set_clock (sim_clock, sim);
  if (setup (sim, err, errlen) < 0) {
    rc = -1;
  } else {
    loop (sim);
    if (sim->oom) {
      snprintf (err, errlen, "out of memory");
      rc = -1;
    }
    res->sender_rc = smc_sender_outcome (sim->s);
    res->sender = *smc_sender_get_stats (sim->s);
    res->n_nodes = (uint32_t) smc_sender_get_nodes (sim->s, &nodes);
    if (res->n_nodes > SMC_SIM_MAX_RECEIVERS)
      res->n_nodes = SMC_SIM_MAX_RECEIVERS;
    if (res->n_nodes > 0)   /* none joined: nodes may be NULL */
      memcpy (res->nodes, nodes, res->n_nodes * sizeof *nodes);
    for (uint32_t i = 1; i <= c->receivers; i++) {
      smc_sim_receiver_result *out = &res->rcv[i];
      out->rc = smc_receiver_end (sim->r[i].r);
      out->st = *smc_receiver_get_stats (sim->r[i].r);
      unicast_rest (sim, i);
      out->writes = sim->r[i].writes;
      out->overflow = sim->r[i].overflow;
      out->bad_writes = sim->r[i].bad_writes;
    }
  }
  smc_set_clock (NULL, NULL);
  while (sim->n_ev > 0) {
    ev e = heap_pop (sim);
    free (e.pkt);
  }
  free (sim->heap);
  for (uint32_t i = 1; i <= c->receivers; i++)
    if (sim->r[i].r != NULL)
      smc_receiver_free (sim->r[i].r);
  if (sim->s != NULL)
    smc_sender_free (sim->s);
  if (sim->auth != NULL)
    smc_auth_free (sim->auth);
  smc_manifest_free (sim->m);
  free (sim);
  return rc;
}
