/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-proto.c: wire format, manifest, join string, packet auth */
#include "shoal-mcast-proto.h"
#include "shoal-mcast-gmac.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static inline void put16 (uint8_t *p, uint16_t v) { p[0] = (uint8_t) (v >> 8); p[1] = (uint8_t) v; }
static inline void put32 (uint8_t *p, uint32_t v) { put16 (p, (uint16_t) (v >> 16)); put16 (p + 2, (uint16_t) v); }
static inline void put64 (uint8_t *p, uint64_t v) { put32 (p, (uint32_t) (v >> 32)); put32 (p + 4, (uint32_t) v); }
static inline uint16_t get16 (const uint8_t *p) { return (uint16_t) ((p[0] << 8) | p[1]); }
static inline uint32_t get32 (const uint8_t *p) { return ((uint32_t) get16 (p) << 16) | get16 (p + 2); }
static inline uint64_t get64 (const uint8_t *p) { return ((uint64_t) get32 (p) << 32) | get32 (p + 4); }

static uint64_t (*clock_fn) (void *user);
static void *clock_user;

void
smc_set_clock (uint64_t (*now) (void *user), void *user)
{
  clock_fn = now;
  clock_user = user;
}

uint64_t
smc_now_ns (void)
{
  struct timespec ts;
  if (clock_fn != NULL)
    return clock_fn (clock_user);
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

/* ---------------- header ---------------- */

static size_t
put_hdr (uint8_t *buf, const smc_hdr *h, uint8_t type)
{
  buf[0] = (uint8_t) ((SMC_VERSION << 4) | (type & 0x0f));
  buf[1] = h->flags;
  put16 (buf + 2, h->session);
  put32 (buf + 4, h->seq);
  return SMC_HDR_LEN;
}

static int
is_short (uint8_t type)
{
  return type == SMC_PKT_SDATA || type == SMC_PKT_REPAIR;
}

int
smc_parse_hdr (const uint8_t *buf, size_t len, smc_hdr *h)
{
  if (len < SMC_SHORT_OVERHEAD || len > SMC_MAX_PACKET)
    return -1;
  if ((buf[0] >> 4) != SMC_VERSION)
    return -1;
  h->type = buf[0] & 0x0f;
  if (h->type < SMC_PKT_DATA || h->type > SMC_PKT_WNACK)
    return -1;
  if (is_short (h->type)) {
    /* ver|type, session (low byte), then SDATA: seq (low 16 bits), chunk,
     * esi; REPAIR: window, id */
    h->flags = 0;
    h->session = buf[1];
    h->seq = h->type == SMC_PKT_SDATA ? get16 (buf + 2) : 0;
    return 0;
  }
  if (len < SMC_HDR_LEN + SMC_TAG_LEN)
    return -1;
  h->flags = buf[1];
  h->session = get16 (buf + 2);
  h->seq = get32 (buf + 4);
  return 0;
}

static int
check_type (const uint8_t *buf, size_t len, uint8_t type, size_t body_min)
{
  smc_hdr h;
  if (smc_parse_hdr (buf, len, &h) < 0 || h.type != type)
    return -1;
  if (len < SMC_HDR_LEN + body_min + SMC_TAG_LEN)
    return -1;
  return 0;
}

/* ---------------- DATA ---------------- */

size_t
smc_build_data (uint8_t *buf, size_t cap, const smc_hdr *h, uint32_t chunk,
                uint16_t esi, const uint8_t *payload, size_t len)
{
  size_t total = SMC_DATA_OVERHEAD + len;
  if (cap < total || total > SMC_MAX_PACKET)
    return 0;
  smc_build_data_head (buf, h, chunk, esi);
  if (payload != buf + SMC_DATA_HDR_LEN)
    memcpy (buf + SMC_DATA_HDR_LEN, payload, len);
  memset (buf + total - SMC_TAG_LEN, 0, SMC_TAG_LEN);
  return total;
}

void
smc_build_data_head (uint8_t *buf, const smc_hdr *h, uint32_t chunk, uint16_t esi)
{
  put_hdr (buf, h, SMC_PKT_DATA);
  put32 (buf + 8, chunk);
  put16 (buf + 12, esi);
}

int
smc_parse_data (const uint8_t *buf, size_t len, smc_data *d)
{
  if (check_type (buf, len, SMC_PKT_DATA, 6 + 1) < 0)
    return -1;
  d->chunk = get32 (buf + 8);
  d->esi = get16 (buf + 12);
  d->payload = buf + SMC_DATA_HDR_LEN;
  d->payload_len = len - SMC_DATA_OVERHEAD;
  return 0;
}

/* ---------------- SDATA, REPAIR (window mode) ---------------- */

void
smc_build_sdata_head (uint8_t *buf, uint16_t session, uint32_t seq, uint32_t chunk, uint16_t esi)
{
  buf[0] = (uint8_t) ((SMC_VERSION << 4) | SMC_PKT_SDATA);
  buf[1] = (uint8_t) session;
  put16 (buf + 2, (uint16_t) seq);
  put32 (buf + 4, chunk);
  put16 (buf + 8, esi);
}

void
smc_build_repair_head (uint8_t *buf, uint16_t session, uint32_t window, uint32_t id)
{
  buf[0] = (uint8_t) ((SMC_VERSION << 4) | SMC_PKT_REPAIR);
  buf[1] = (uint8_t) session;
  put32 (buf + 2, window);
  put32 (buf + 6, id);
}

int
smc_parse_sdata (const uint8_t *buf, size_t len, smc_sdata *d)
{
  smc_hdr h;
  if (smc_parse_hdr (buf, len, &h) < 0 || !is_short (h.type) || len < SMC_SHORT_OVERHEAD + 1)
    return -1;
  if (h.type == SMC_PKT_SDATA) {
    d->chunk = get32 (buf + 4);
    d->esi = get16 (buf + 8);
    if (d->esi >= 0x8000)
      return -1;
  } else {
    d->chunk = get32 (buf + 2);
    d->esi = get32 (buf + 6);
  }
  d->payload = buf + SMC_SHORT_HDR_LEN;
  d->payload_len = len - SMC_SHORT_OVERHEAD;
  return 0;
}

uint64_t
smc_window_seed (const uint8_t id[SMC_HASH_LEN], uint32_t w)
{
  return get64 (id) ^ ((uint64_t) w + 1) * 0x9e3779b97f4a7c15ull;
}

uint32_t
smc_window_chunks_for (uint64_t window_bytes, uint32_t chunk_size)
{
  uint64_t n = chunk_size ? (window_bytes + chunk_size / 2) / chunk_size : 1;
  return n < 1 ? 1 : n > SMC_MAX_WINDOW_CHUNKS ? SMC_MAX_WINDOW_CHUNKS : (uint32_t) n;
}

uint64_t
smc_default_window_bytes (uint16_t mtu, uint32_t receivers)
{
  if (mtu == 0)
    mtu = 1500;
  if ((uint32_t) mtu - SMC_IPUDP_OVERHEAD - SMC_SHORT_OVERHEAD >= 4096)
    return receivers <= 4 ? 0 : 2u << 20;
  return receivers <= 4 ? 8u << 20 : 16u << 20;
}

uint32_t
smc_session_window_chunks (long window_mib, uint16_t mtu, uint32_t receivers, uint32_t chunk_size)
{
  uint64_t bytes = window_mib < 0 ? smc_default_window_bytes (mtu, receivers)
                                  : (uint64_t) (window_mib > 1024 ? 1024 : window_mib) << 20;
  return bytes > 0 ? smc_window_chunks_for (bytes, chunk_size) : 0;
}

/* ---------------- ANNOUNCE ---------------- */
#define ANN_BODY 64

size_t
smc_build_announce (uint8_t *buf, size_t cap, const smc_hdr *h, const smc_announce *a)
{
  size_t total = SMC_HDR_LEN + ANN_BODY + SMC_TAG_LEN;
  uint8_t *p = buf + SMC_HDR_LEN;
  if (cap < total)
    return 0;
  put_hdr (buf, h, SMC_PKT_ANNOUNCE);
  memcpy (p, a->manifest_hash, SMC_HASH_LEN);
  put64 (p + 32, a->image_size);
  put32 (p + 40, a->chunk_size);
  put32 (p + 44, a->n_chunks);
  put16 (p + 48, a->symbol_size);
  p[50] = (a->flags & SMC_ANN_WINDOW) ? a->window_chunks : a->max_k;
  p[51] = a->state;
  put32 (p + 52, a->position);
  put32 (p + 56, a->rate_kbps);
  p[60] = a->lanes;
  p[61] = a->flags;
  put16 (p + 62, a->receivers);
  memset (buf + total - SMC_TAG_LEN, 0, SMC_TAG_LEN);
  return total;
}

int
smc_parse_announce (const uint8_t *buf, size_t len, smc_announce *a)
{
  const uint8_t *p = buf + SMC_HDR_LEN;
  if (check_type (buf, len, SMC_PKT_ANNOUNCE, ANN_BODY) < 0)
    return -1;
  memcpy (a->manifest_hash, p, SMC_HASH_LEN);
  a->image_size = get64 (p + 32);
  a->chunk_size = get32 (p + 40);
  a->n_chunks = get32 (p + 44);
  a->symbol_size = get16 (p + 48);
  a->max_k = p[50];
  a->state = p[51];
  a->position = get32 (p + 52);
  a->rate_kbps = get32 (p + 56);
  a->lanes = p[60] ? p[60] : 1;
  a->flags = p[61];
  a->receivers = get16 (p + 62);
  a->window_chunks = 0;
  if (a->flags & SMC_ANN_WINDOW) {
    /* the byte is the window's chunks; the geometry's blocks do not
     * matter (no Reed-Solomon) */
    a->window_chunks = a->max_k;
    a->max_k = SMC_DEFAULT_K;
    if (a->window_chunks == 0 || (uint32_t) a->symbol_size + SMC_SHORT_OVERHEAD > SMC_MAX_PACKET)
      return -1;
  }
  /* semantic checks: the geometry must be usable */
  if (a->chunk_size == 0 || a->symbol_size < 64 || a->max_k == 0 || a->max_k > SMC_MAX_K ||
      a->state > SMC_STATE_END || a->lanes > SMC_MAX_LANES)
    return -1;
  if (a->image_size == 0 || a->image_size > UINT64_MAX / 2 ||
      (a->image_size + a->chunk_size - 1) / a->chunk_size != a->n_chunks)
    return -1;
  {
    smc_geom g;
    if (smc_geom_init (&g, a->chunk_size, a->symbol_size, a->max_k) < 0)
      return -1;
  }
  return 0;
}

/* ---------------- NACK, WNACK ---------------- */

/* the header and body head of a NACK or WNACK of count entries of
 * entry_len bytes: the packet's length, 0 when cap is too small; *entries:
 * where they go */
static size_t
put_nack_head (uint8_t *buf, size_t cap, const smc_hdr *h, uint8_t type, uint32_t node, uint32_t seen,
               uint16_t count, size_t entry_len, uint8_t **entries)
{
  size_t total = SMC_HDR_LEN + SMC_NACK_BODY_LEN + (size_t) count * entry_len + SMC_TAG_LEN;
  uint8_t *p = buf + SMC_HDR_LEN;
  if (cap < total)
    return 0;
  put_hdr (buf, h, type);
  put32 (p, node);
  put16 (p + 4, count);
  put32 (p + 6, seen);
  *entries = p + SMC_NACK_BODY_LEN;
  memset (buf + total - SMC_TAG_LEN, 0, SMC_TAG_LEN);
  return total;
}

static int
parse_nack_body (const uint8_t *buf, size_t len, smc_nack *n, uint8_t type, size_t entry_len)
{
  const uint8_t *p = buf + SMC_HDR_LEN;
  if (check_type (buf, len, type, SMC_NACK_BODY_LEN) < 0)
    return -1;
  n->node = get32 (p);
  n->count = get16 (p + 4);
  n->seen = get32 (p + 6);
  if (n->node == 0)
    return -1;
  if (len != SMC_HDR_LEN + SMC_NACK_BODY_LEN + (size_t) n->count * entry_len + SMC_TAG_LEN)
    return -1;
  n->entries = p + SMC_NACK_BODY_LEN;
  return 0;
}

size_t
smc_build_nack (uint8_t *buf, size_t cap, const smc_hdr *h, uint32_t node,
                uint32_t seen, const smc_nack_entry *e, uint16_t count)
{
  uint8_t *p;
  size_t total = put_nack_head (buf, cap, h, SMC_PKT_NACK, node, seen, count, SMC_NACK_ENTRY_LEN, &p);
  if (total == 0)
    return 0;
  for (uint16_t i = 0; i < count; i++, p += SMC_NACK_ENTRY_LEN) {
    put32 (p, e[i].chunk);
    p[4] = e[i].block;
    p[5] = e[i].need;
    p[6] = e[i].pnext;
    p[7] = 0;
  }
  return total;
}

int
smc_parse_nack (const uint8_t *buf, size_t len, smc_nack *n)
{
  return parse_nack_body (buf, len, n, SMC_PKT_NACK, SMC_NACK_ENTRY_LEN);
}

void
smc_nack_entry_get (const smc_nack *n, uint16_t i, smc_nack_entry *e)
{
  const uint8_t *p = n->entries + (size_t) i * SMC_NACK_ENTRY_LEN;
  e->chunk = get32 (p);
  e->block = p[4];
  e->need = p[5];
  e->pnext = p[6];
}

/* window mode: a NACK whose entries name windows */
size_t
smc_build_wnack (uint8_t *buf, size_t cap, const smc_hdr *h, uint32_t node,
                 uint32_t seen, const smc_wnack_entry *e, uint16_t count)
{
  uint8_t *p;
  size_t total = put_nack_head (buf, cap, h, SMC_PKT_WNACK, node, seen, count, SMC_WNACK_ENTRY_LEN, &p);
  if (total == 0)
    return 0;
  for (uint16_t i = 0; i < count; i++, p += SMC_WNACK_ENTRY_LEN) {
    put32 (p, e[i].window);
    put32 (p + 4, e[i].next);
    put16 (p + 8, e[i].need);
    put16 (p + 10, e[i].missing);
  }
  return total;
}

int
smc_parse_wnack (const uint8_t *buf, size_t len, smc_nack *n)
{
  return parse_nack_body (buf, len, n, SMC_PKT_WNACK, SMC_WNACK_ENTRY_LEN);
}

void
smc_wnack_entry_get (const smc_nack *n, uint16_t i, smc_wnack_entry *e)
{
  const uint8_t *p = n->entries + (size_t) i * SMC_WNACK_ENTRY_LEN;
  e->window = get32 (p);
  e->next = get32 (p + 4);
  e->need = get16 (p + 8);
  e->missing = get16 (p + 10);
}

/* ---------------- SRCREQ ---------------- */

size_t
smc_build_srcreq (uint8_t *buf, size_t cap, const smc_hdr *h, uint32_t node, uint32_t chunk,
                  uint8_t block, const uint8_t *map, uint8_t map_len)
{
  size_t total = SMC_HDR_LEN + SMC_SRCREQ_BODY_LEN + (size_t) map_len + SMC_TAG_LEN;
  uint8_t *p = buf + SMC_HDR_LEN;
  if (cap < total || map_len == 0 || map_len > SMC_SRCREQ_MAX_MAP)
    return 0;
  put_hdr (buf, h, SMC_PKT_SRCREQ);
  put32 (p, node);
  put32 (p + 4, chunk);
  p[8] = block;
  p[9] = map_len;
  memcpy (p + SMC_SRCREQ_BODY_LEN, map, map_len);
  memset (buf + total - SMC_TAG_LEN, 0, SMC_TAG_LEN);
  return total;
}

int
smc_parse_srcreq (const uint8_t *buf, size_t len, smc_srcreq *q)
{
  const uint8_t *p = buf + SMC_HDR_LEN;
  if (check_type (buf, len, SMC_PKT_SRCREQ, SMC_SRCREQ_BODY_LEN + 1) < 0)
    return -1;
  q->node = get32 (p);
  q->chunk = get32 (p + 4);
  q->block = p[8];
  q->map_len = p[9];
  if (q->node == 0 || q->map_len == 0 || q->map_len > SMC_SRCREQ_MAX_MAP ||
      len != SMC_HDR_LEN + SMC_SRCREQ_BODY_LEN + (size_t) q->map_len + SMC_TAG_LEN)
    return -1;
  q->map = p + SMC_SRCREQ_BODY_LEN;
  return 0;
}

/* ---------------- STATUS ---------------- */
#define STATUS_BODY 40        /* without the backlog field (first receivers) */
#define STATUS_BODY_INTAKE 46  /* + backlog ‰ (u16) and intake kB/s (u32) */
#define STATUS_BODY_FULL 50    /* + drain kB/s (u32) */

size_t
smc_build_status (uint8_t *buf, size_t cap, const smc_hdr *h, const smc_status *s)
{
  size_t total = SMC_HDR_LEN + STATUS_BODY_FULL + SMC_TAG_LEN;
  uint8_t *p = buf + SMC_HDR_LEN;
  if (cap < total)
    return 0;
  put_hdr (buf, h, SMC_PKT_STATUS);
  put32 (p, s->node);
  p[4] = s->state;
  p[5] = s->reason;
  put16 (p + 6, s->loss_permille);
  put32 (p + 8, s->chunks_done);
  put32 (p + 12, s->chunks_pending);
  put32 (p + 16, s->ext_missing);
  put32 (p + 20, s->rx_overflow);
  put64 (p + 24, s->bytes_written);
  put32 (p + 32, s->nacks_sent);
  put32 (p + 36, s->forged);
  put16 (p + 40, s->backlog_permille);
  put32 (p + 42, s->intake_kBps);
  put32 (p + 46, s->drain_kBps);
  memset (buf + total - SMC_TAG_LEN, 0, SMC_TAG_LEN);
  return total;
}

int
smc_parse_status (const uint8_t *buf, size_t len, smc_status *s)
{
  const uint8_t *p = buf + SMC_HDR_LEN;
  if (check_type (buf, len, SMC_PKT_STATUS, STATUS_BODY) < 0)
    return -1;
  s->node = get32 (p);
  s->state = p[4];
  s->reason = p[5];
  s->loss_permille = get16 (p + 6);
  s->chunks_done = get32 (p + 8);
  s->chunks_pending = get32 (p + 12);
  s->ext_missing = get32 (p + 16);
  s->rx_overflow = get32 (p + 20);
  s->bytes_written = get64 (p + 24);
  s->nacks_sent = get32 (p + 32);
  s->forged = get32 (p + 36);
  s->backlog_permille = 0;
  s->intake_kBps = 0;
  s->drain_kBps = 0;
  if (len >= SMC_HDR_LEN + STATUS_BODY_INTAKE + SMC_TAG_LEN) {
    s->backlog_permille = get16 (p + 40);
    s->intake_kBps = get32 (p + 42);
  }
  if (len >= SMC_HDR_LEN + STATUS_BODY_FULL + SMC_TAG_LEN)
    s->drain_kBps = get32 (p + 46);
  if (s->node == 0 || s->state > SMC_RX_FAILED || s->backlog_permille > 1000)
    return -1;
  return 0;
}

/* ---------------- CONTROL ---------------- */

size_t
smc_build_control (uint8_t *buf, size_t cap, const smc_hdr *h, const smc_control *c)
{
  size_t total = SMC_HDR_LEN + 8 + SMC_TAG_LEN;
  uint8_t *p = buf + SMC_HDR_LEN;
  if (cap < total)
    return 0;
  put_hdr (buf, h, SMC_PKT_CONTROL);
  put32 (p, c->node);
  p[4] = c->op;
  memset (p + 5, 0, 3);
  memset (buf + total - SMC_TAG_LEN, 0, SMC_TAG_LEN);
  return total;
}

int
smc_parse_control (const uint8_t *buf, size_t len, smc_control *c)
{
  const uint8_t *p = buf + SMC_HDR_LEN;
  if (check_type (buf, len, SMC_PKT_CONTROL, 8) < 0)
    return -1;
  c->node = get32 (p);
  c->op = p[4];
  if (c->node == 0 || c->op < SMC_CTL_ACK_COMPLETE || c->op > SMC_CTL_EVICT)
    return -1;
  return 0;
}

uint32_t
smc_packet_node (const uint8_t *buf, size_t len)
{
  smc_hdr h;
  if (smc_parse_hdr (buf, len, &h) < 0 || h.type < SMC_PKT_NACK || len < SMC_HDR_LEN + 4 + SMC_TAG_LEN)
    return 0;
  /* CONTROL carries the destination node: the sender (node 0) signs it */
  if (h.type == SMC_PKT_CONTROL || is_short (h.type))
    return 0;
  return get32 (buf + SMC_HDR_LEN);
}

/* ---------------- auth ---------------- */

struct smc_auth {
  EVP_CIPHER_CTX *ctx;
  smc_gmac *fast;   /* AES-NI + VPCLMULQDQ, when the CPU has them; else ctx */
  uint8_t hash[SMC_HASH_LEN];
};

static int auth_openssl_only;

void
smc_auth_set_openssl_only (int on)
{
  auth_openssl_only = on;
}

const char *
smc_auth_backend_name (void)
{
  return !auth_openssl_only && smc_gmac_available () ? "aesni-vpclmul" : "openssl";
}

const char *
smc_auth_select (const char *name)
{
  if (strcmp (name, "auto") != 0 && strcmp (name, "openssl") != 0)
    return "unknown MAC backend (auto or openssl)";
  smc_auth_set_openssl_only (strcmp (name, "openssl") == 0);
  return NULL;
}

smc_auth *
smc_auth_new (const uint8_t key[SMC_KEY_LEN], const uint8_t manifest_hash[SMC_HASH_LEN])
{
  smc_auth *a = calloc (1, sizeof *a);
  if (a == NULL)
    return NULL;
  memcpy (a->hash, manifest_hash, SMC_HASH_LEN);
  if (!auth_openssl_only && (a->fast = smc_gmac_new (key, manifest_hash)) != NULL)
    return a;
  a->ctx = EVP_CIPHER_CTX_new ();
  if (a->ctx == NULL || EVP_EncryptInit_ex (a->ctx, EVP_aes_128_gcm (), NULL, key, NULL) != 1) {
    smc_auth_free (a);
    return NULL;
  }
  return a;
}

void
smc_auth_free (smc_auth *a)
{
  if (a == NULL)
    return;
  EVP_CIPHER_CTX_free (a->ctx);
  smc_gmac_free (a->fast);
  free (a);
}

/* GMAC over manifest hash ‖ p1 ‖ p2; p1 starts with the packet header */
static int
gmac2 (smc_auth *a, uint32_t node, const uint8_t *p1, size_t n1, const uint8_t *p2, size_t n2,
       uint8_t tag[16])
{
  uint8_t iv[12];
  int outl = 0;
  /* nonce: session(2) type(1) 0(1) node(4) seq(4) */
  memcpy (iv, p1 + 2, 2);
  iv[2] = p1[0];
  iv[3] = 0;
  put32 (iv + 4, node);
  memcpy (iv + 8, p1 + 4, 4);
  if (a->fast != NULL) {
    smc_gmac_tag (a->fast, iv, p1, n1, p2, n2, tag);
    return 0;
  }
  if (EVP_EncryptInit_ex (a->ctx, NULL, NULL, NULL, iv) != 1 ||
      EVP_EncryptUpdate (a->ctx, NULL, &outl, a->hash, SMC_HASH_LEN) != 1 ||
      EVP_EncryptUpdate (a->ctx, NULL, &outl, p1, (int) n1) != 1 ||
      (n2 > 0 && EVP_EncryptUpdate (a->ctx, NULL, &outl, p2, (int) n2) != 1) ||
      EVP_EncryptFinal_ex (a->ctx, tag, &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl (a->ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
    return -1;
  return 0;
}

/* a short packet's GMAC: nonce session(1) 0x5a ver|type(1) 0 then the 8
 * bytes after the first two of its head (SDATA: seq16 chunk esi; REPAIR:
 * window id). The ver|type byte keeps it apart from every long packet's
 * nonce (types 1 to 6, 9) */
static int
gmac_short (smc_auth *a, const uint8_t *head, const uint8_t *payload, size_t len, uint8_t tag[16])
{
  uint8_t iv[12];
  int outl = 0;
  iv[0] = head[1];
  iv[1] = 0x5a;
  iv[2] = head[0];
  iv[3] = 0;
  memcpy (iv + 4, head + 2, 8);
  if (a->fast != NULL) {
    smc_gmac_tag (a->fast, iv, head, SMC_SHORT_HDR_LEN, payload, len, tag);
    return 0;
  }
  if (EVP_EncryptInit_ex (a->ctx, NULL, NULL, NULL, iv) != 1 ||
      EVP_EncryptUpdate (a->ctx, NULL, &outl, a->hash, SMC_HASH_LEN) != 1 ||
      EVP_EncryptUpdate (a->ctx, NULL, &outl, head, SMC_SHORT_HDR_LEN) != 1 ||
      (len > 0 && EVP_EncryptUpdate (a->ctx, NULL, &outl, payload, (int) len) != 1) ||
      EVP_EncryptFinal_ex (a->ctx, tag, &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl (a->ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
    return -1;
  return 0;
}

int
smc_auth_sign_short (smc_auth *a, const uint8_t *head, const uint8_t *payload, size_t len,
                     uint8_t tag_out[SMC_SHORT_TAG_LEN])
{
  uint8_t tag[16];
  if (gmac_short (a, head, payload, len, tag) < 0)
    return -1;
  memcpy (tag_out, tag, SMC_SHORT_TAG_LEN);
  return 0;
}

static int
gmac (smc_auth *a, const uint8_t *pkt, size_t len, uint8_t tag[16])
{
  return gmac2 (a, smc_packet_node (pkt, len), pkt, len - SMC_TAG_LEN, NULL, 0, tag);
}

int
smc_auth_sign_split (smc_auth *a, const uint8_t *head, size_t head_len, uint32_t node,
                     const uint8_t *payload, size_t len, uint8_t tag_out[SMC_TAG_LEN])
{
  uint8_t tag[16];
  if (head_len < SMC_HDR_LEN || gmac2 (a, node, head, head_len, payload, len, tag) < 0)
    return -1;
  memcpy (tag_out, tag, SMC_TAG_LEN);
  return 0;
}

int
smc_auth_sign (smc_auth *a, uint8_t *pkt, size_t len)
{
  uint8_t tag[16];
  if (len >= SMC_SHORT_OVERHEAD && is_short (pkt[0] & 0x0f))
    return smc_auth_sign_short (a, pkt, pkt + SMC_SHORT_HDR_LEN, len - SMC_SHORT_OVERHEAD, pkt + len - SMC_SHORT_TAG_LEN);
  if (len < SMC_HDR_LEN + SMC_TAG_LEN || gmac (a, pkt, len, tag) < 0)
    return -1;
  memcpy (pkt + len - SMC_TAG_LEN, tag, SMC_TAG_LEN);
  return 0;
}

int
smc_auth_verify (smc_auth *a, const uint8_t *pkt, size_t len)
{
  uint8_t tag[16];
  uint8_t diff = 0;
  size_t tl = SMC_TAG_LEN;
  if (len >= SMC_SHORT_OVERHEAD && is_short (pkt[0] & 0x0f)) {
    tl = SMC_SHORT_TAG_LEN;
    if (gmac_short (a, pkt, pkt + SMC_SHORT_HDR_LEN, len - SMC_SHORT_OVERHEAD, tag) < 0)
      return -1;
  } else if (len < SMC_HDR_LEN + SMC_TAG_LEN || gmac (a, pkt, len, tag) < 0) {
    return -1;
  }
  for (size_t i = 0; i < tl; i++)
    diff |= (uint8_t) (tag[i] ^ pkt[len - tl + i]);
  return diff == 0 ? 0 : -1;
}

/* ---------------- geometry ---------------- */

int
smc_geom_init (smc_geom *g, uint32_t chunk_len, uint16_t symbol_size, uint8_t max_k)
{
  uint64_t n_src, nb;
  if (chunk_len == 0 || symbol_size == 0 || max_k == 0)
    return -1;
  n_src = ((uint64_t) chunk_len + symbol_size - 1) / symbol_size;
  if (n_src > SMC_MAX_SRC_SYMBOLS)
    return -1;
  nb = (n_src + max_k - 1) / max_k;
  if (nb > SMC_MAX_BLOCKS)
    return -1;
  g->len = chunk_len;
  g->n_src = (uint16_t) n_src;
  g->n_blocks = (uint8_t) nb;
  g->base_k = (uint8_t) (n_src / nb);
  g->rem = (uint8_t) (n_src % nb);
  return 0;
}

uint8_t
smc_geom_block_of (const smc_geom *g, uint16_t i)
{
  uint32_t big = (uint32_t) g->rem * (g->base_k + 1u);
  if (i < big)
    return (uint8_t) (i / (g->base_k + 1u));
  return (uint8_t) (g->rem + (i - big) / g->base_k);
}

/* ---------------- manifest ---------------- */

void
smc_sha256 (const uint8_t *data, size_t len, uint8_t out[SMC_HASH_LEN])
{
  unsigned int olen = SMC_HASH_LEN;
  EVP_Digest (data, len, out, &olen, EVP_sha256 (), NULL);
}

smc_manifest *
smc_manifest_new (uint64_t image_size, uint32_t chunk_size)
{
  smc_manifest *m;
  uint64_t n;
  if (image_size == 0 || chunk_size == 0 || image_size > UINT64_MAX / 2)
    return NULL;
  n = (image_size + chunk_size - 1) / chunk_size;
  if (n > UINT32_MAX / 2)
    return NULL;
  m = calloc (1, sizeof *m);
  if (m == NULL)
    return NULL;
  m->image_size = image_size;
  m->chunk_size = chunk_size;
  m->n_chunks = (uint32_t) n;
  m->hashes = calloc (n, SMC_HASH_LEN);
  m->flags = calloc (n, 1);
  if (m->hashes == NULL || m->flags == NULL) {
    smc_manifest_free (m);
    return NULL;
  }
  return m;
}

void
smc_manifest_free (smc_manifest *m)
{
  if (m == NULL)
    return;
  free (m->hashes);
  free (m->flags);
  free (m);
}

uint32_t
smc_manifest_chunk_len (const smc_manifest *m, uint32_t idx)
{
  uint64_t off = (uint64_t) idx * m->chunk_size;
  if (idx >= m->n_chunks)
    return 0;
  return (uint32_t) (m->image_size - off < m->chunk_size ? m->image_size - off : m->chunk_size);
}

static int
all_zero (const uint8_t *p, size_t len)
{
  static const uint8_t zero[4096];
  while (len > 0) {
    size_t n = len < sizeof zero ? len : sizeof zero;
    if (memcmp (p, zero, n) != 0)
      return 0;
    p += n;
    len -= n;
  }
  return 1;
}

void
smc_manifest_set_chunk (smc_manifest *m, uint32_t idx, const uint8_t *data, size_t len)
{
  smc_sha256 (data, len, m->hashes[idx]);
  m->flags[idx] = all_zero (data, len) ? SMC_CHUNK_ZERO : 0;
}

#define MAN_MAGIC "SHMCMAN1"

uint8_t *
smc_manifest_serialize (const smc_manifest *m, size_t *len)
{
  size_t total = 8 + 8 + 4 + 4 + (size_t) m->n_chunks * (1 + SMC_HASH_LEN);
  uint8_t *buf = malloc (total), *p;
  if (buf == NULL)
    return NULL;
  memcpy (buf, MAN_MAGIC, 8);
  put64 (buf + 8, m->image_size);
  put32 (buf + 16, m->chunk_size);
  put32 (buf + 20, m->n_chunks);
  p = buf + 24;
  for (uint32_t i = 0; i < m->n_chunks; i++) {
    *p++ = m->flags[i];
    memcpy (p, m->hashes[i], SMC_HASH_LEN);
    p += SMC_HASH_LEN;
  }
  *len = total;
  return buf;
}

smc_manifest *
smc_manifest_parse (const uint8_t *buf, size_t len)
{
  smc_manifest *m;
  const uint8_t *p;
  if (len < 24 || memcmp (buf, MAN_MAGIC, 8) != 0)
    return NULL;
  /* check the sizes and the length before allocating the table */
  if (len != 24 + (size_t) get32 (buf + 20) * (1 + SMC_HASH_LEN) || get32 (buf + 16) == 0 ||
      get64 (buf + 8) == 0 || get64 (buf + 8) > UINT64_MAX / 2 ||
      (get64 (buf + 8) + get32 (buf + 16) - 1) / get32 (buf + 16) != get32 (buf + 20))
    return NULL;
  m = smc_manifest_new (get64 (buf + 8), get32 (buf + 16));
  if (m == NULL)
    return NULL;
  if (m->n_chunks != get32 (buf + 20) || len != 24 + (size_t) m->n_chunks * (1 + SMC_HASH_LEN)) {
    smc_manifest_free (m);
    return NULL;
  }
  p = buf + 24;
  for (uint32_t i = 0; i < m->n_chunks; i++) {
    m->flags[i] = *p++ & SMC_CHUNK_ZERO;
    memcpy (m->hashes[i], p, SMC_HASH_LEN);
    p += SMC_HASH_LEN;
  }
  smc_sha256 (buf, len, m->id);
  return m;
}

void
smc_manifest_compute_id (smc_manifest *m)
{
  size_t len;
  uint8_t *buf = smc_manifest_serialize (m, &len);
  if (buf != NULL)
    smc_sha256 (buf, len, m->id);
  free (buf);
}

/* 1 when the file has no data in [off, off + len): a hole of a sparse
 * file (SEEK_DATA; a file system without it reports the whole file as
 * data, and an error means "read it") */
static int
in_hole (int fd, off_t off, off_t len)
{
  off_t data = lseek (fd, off, SEEK_DATA);
  return data >= off + len || (data < 0 && errno == ENXIO);
}

smc_manifest *
smc_manifest_from_fd (int fd, uint32_t chunk_size)
{
  off_t size = lseek (fd, 0, SEEK_END);
  smc_manifest *m;
  uint8_t *buf, *zero;
  uint8_t zero_hash[SMC_HASH_LEN];
  uint32_t zero_len = 0;
  int ok = 1;
  if (size <= 0 || (m = smc_manifest_new ((uint64_t) size, chunk_size)) == NULL)
    return NULL;
  buf = malloc (chunk_size);
  zero = calloc (1, chunk_size);
  ok = buf != NULL && zero != NULL;
  for (uint32_t i = 0; ok && i < m->n_chunks; i++) {
    uint32_t len = smc_manifest_chunk_len (m, i);
    /* a chunk in a hole is neither read nor hashed again: a sparse image
     * of many GiB takes the time of its data */
    if (in_hole (fd, (off_t) i * chunk_size, len)) {
      if (len != zero_len) {
        smc_manifest_set_chunk (m, i, zero, len);
        memcpy (zero_hash, m->hashes[i], SMC_HASH_LEN);
        zero_len = len;
      }
      memcpy (m->hashes[i], zero_hash, SMC_HASH_LEN);
      m->flags[i] = SMC_CHUNK_ZERO;
      continue;
    }
    if (pread (fd, buf, len, (off_t) i * chunk_size) != (ssize_t) len)
      ok = 0;
    else
      smc_manifest_set_chunk (m, i, buf, len);
  }
  free (buf);
  free (zero);
  if (!ok) {
    smc_manifest_free (m);
    return NULL;
  }
  smc_manifest_compute_id (m);
  return m;
}

char *
smc_read_file (const char *path, size_t max, size_t *len)
{
  FILE *f = fopen (path, "rb");
  char *buf = NULL;
  long n;
  if (f == NULL)
    return NULL;
  if (fseek (f, 0, SEEK_END) == 0 && (n = ftell (f)) > 0 && (size_t) n <= max && fseek (f, 0, SEEK_SET) == 0 &&
      (buf = malloc ((size_t) n + 1)) != NULL) {
    if (fread (buf, 1, (size_t) n, f) != (size_t) n) {
      free (buf);
      buf = NULL;
    } else {
      buf[n] = '\0';
      *len = (size_t) n;
    }
  }
  fclose (f);
  return buf;
}

int
smc_manifest_preallocate (const smc_manifest *m, int fd)
{
  struct stat sb;
  uint32_t i = 0;
  if (fstat (fd, &sb) < 0)
    return -1;
  if (!S_ISREG (sb.st_mode))
    return 0;
  while (i < m->n_chunks) {
    uint32_t end;
    off_t off, len;
    if (m->flags[i] & SMC_CHUNK_ZERO) {
      i++;
      continue;
    }
    for (end = i + 1; end < m->n_chunks && !(m->flags[end] & SMC_CHUNK_ZERO); end++)
      ;
    off = (off_t) i * m->chunk_size;
    len = (off_t) ((uint64_t) (end - 1) * m->chunk_size + smc_manifest_chunk_len (m, end - 1)) - off;
    if (fallocate (fd, 0, off, len) < 0) {
      /* a file system without fallocate allocates as the chunks come */
      if (errno == EOPNOTSUPP || errno == ENOSYS)
        return 0;
      return -1;
    }
    i = end;
  }
  return 0;
}

int
smc_manifest_check_hash (const smc_manifest *m, uint32_t idx, size_t len, const uint8_t hash[SMC_HASH_LEN])
{
  if (idx >= m->n_chunks || len != smc_manifest_chunk_len (m, idx))
    return -1;
  return memcmp (hash, m->hashes[idx], SMC_HASH_LEN) == 0 ? 0 : -1;
}

int
smc_manifest_verify_chunk (const smc_manifest *m, uint32_t idx, const uint8_t *data, size_t len)
{
  uint8_t h[SMC_HASH_LEN];
  if (idx >= m->n_chunks || len != smc_manifest_chunk_len (m, idx))
    return -1;
  smc_sha256 (data, len, h);
  return smc_manifest_check_hash (m, idx, len, h);
}

/* ---------------- hex / join ---------------- */

void
smc_hex (const uint8_t *in, size_t len, char *out)
{
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = d[in[i] >> 4];
    out[2 * i + 1] = d[in[i] & 15];
  }
  out[2 * len] = '\0';
}

static int
nib (char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int
smc_unhex (const char *in, uint8_t *out, size_t len)
{
  if (strlen (in) != 2 * len)
    return -1;
  for (size_t i = 0; i < len; i++) {
    int hi = nib (in[2 * i]), lo = nib (in[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    out[i] = (uint8_t) ((hi << 4) | lo);
  }
  return 0;
}

int
smc_join_format (const smc_join *j, char *out, size_t cap)
{
  char mh[2 * SMC_HASH_LEN + 1], key[2 * SMC_KEY_LEN + 1] = "";
  int n;
  smc_hex (j->manifest_hash, SMC_HASH_LEN, mh);
  if (j->has_key)
    smc_hex (j->key, SMC_KEY_LEN, key);
  n = snprintf (out, cap, "v=1;group=%s;port=%u;session=%u;manifest=%s%s%s%s%s%s%s;node=%u",
                j->group, j->port, j->session, mh,
                j->has_key ? ";key=" : "", key,
                j->sender[0] ? ";sender=" : "", j->sender,
                j->iface[0] ? ";iface=" : "", j->iface, j->node);
  if (n < 0 || (size_t) n >= cap)
    return -1;
  return n;
}

static int
join_set (smc_join *j, const char *k, const char *v, unsigned *seen)
{
  char *end = NULL;
  unsigned long n;
  if (strcmp (k, "v") == 0)
    return strcmp (v, "1") == 0 ? 0 : -1;
  if (strcmp (k, "group") == 0 || strcmp (k, "sender") == 0) {
    char *dst = k[0] == 'g' ? j->group : j->sender;
    if (strlen (v) >= sizeof j->group || strspn (v, "0123456789.:abcdefABCDEF") != strlen (v))
      return -1;
    strcpy (dst, v);
    *seen |= k[0] == 'g' ? 1u : 0u;
    return 0;
  }
  if (strcmp (k, "iface") == 0) {
    if (strlen (v) >= sizeof j->iface)
      return -1;
    strcpy (j->iface, v);
    return 0;
  }
  if (strcmp (k, "manifest") == 0) {
    *seen |= 2u;
    return smc_unhex (v, j->manifest_hash, SMC_HASH_LEN);
  }
  if (strcmp (k, "key") == 0) {
    j->has_key = 1;
    return smc_unhex (v, j->key, SMC_KEY_LEN);
  }
  n = strtoul (v, &end, 10);
  if (*v == '\0' || end == NULL || *end != '\0')
    return -1;
  if (strcmp (k, "port") == 0 && n > 0 && n <= 65535) {
    j->port = (uint16_t) n;
    *seen |= 4u;
    return 0;
  }
  if (strcmp (k, "session") == 0 && n <= 65535) {
    j->session = (uint16_t) n;
    *seen |= 8u;
    return 0;
  }
  if (strcmp (k, "node") == 0 && n <= UINT32_MAX) {
    j->node = (uint32_t) n;
    return 0;
  }
  return 0;  /* unknown keys are ignored: newer senders may add some */
}

int
smc_join_parse (const char *str, smc_join *j)
{
  char buf[1024];
  char *save = NULL, *tok;
  unsigned seen = 0;
  if (strlen (str) >= sizeof buf)
    return -1;
  memset (j, 0, sizeof *j);
  strcpy (buf, str);
  for (tok = strtok_r (buf, ";", &save); tok != NULL; tok = strtok_r (NULL, ";", &save)) {
    char *eq = strchr (tok, '=');
    if (eq == NULL)
      return -1;
    *eq = '\0';
    if (join_set (j, tok, eq + 1, &seen) < 0)
      return -1;
  }
  return seen == 15u ? 0 : -1;
}
