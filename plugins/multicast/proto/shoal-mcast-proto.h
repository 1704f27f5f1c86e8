/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-proto.h: wire format of the shoal reliable multicast protocol
 * (see plugins/multicast/PROTOCOL.md), image manifest, session parameters.
 *
 * Plain C (no GLib): this code links statically into the agent that runs in
 * a busybox-only initramfs. Only libcrypto (SHA-256, AES-GCM) is needed. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SMC_VERSION          1
#define SMC_HDR_LEN          8      /* ver/type, flags, session, seq */
#define SMC_TAG_LEN          8      /* truncated AES-GMAC tag, last bytes of every packet */
#define SMC_DATA_HDR_LEN     (SMC_HDR_LEN + 6)
#define SMC_DATA_OVERHEAD    (SMC_DATA_HDR_LEN + SMC_TAG_LEN)   /* 22 bytes */
#define SMC_IPUDP_OVERHEAD   28
#define SMC_MAX_PACKET       65507
#define SMC_MAX_BLOCKS       128    /* FEC blocks per chunk */
#define SMC_MAX_K            200    /* source symbols per FEC block (GF(256): k + parity <= 256) */
#define SMC_DEFAULT_K        200
#define SMC_MAX_LANES        4      /* chunks whose first pass is interleaved */
#define SMC_DEFAULT_LANES    2
#define SMC_MAX_SRC_SYMBOLS  0x7fff /* source symbols per chunk */
#define SMC_PARITY_FLAG      0x8000
#define SMC_KEY_LEN          16
#define SMC_HASH_LEN         32
#define SMC_NACK_ENTRY_LEN   8
#define SMC_NACK_BODY_LEN    10     /* node, count, seen; then the entries */
#define SMC_SRCREQ_BODY_LEN  10     /* node, chunk, block, bitmap length; then the bitmap */
#define SMC_SRCREQ_MAX_MAP   32     /* bitmap bytes: one bit per source symbol of a block (k <= 256) */
#define SMC_DEFAULT_CHUNK    (1u << 20)
/* window mode (SMC_ANN_WINDOW): source and repair symbols travel in short
 * packets, a 10-byte header and a 4-byte tag */
#define SMC_SHORT_HDR_LEN    10
#define SMC_SHORT_TAG_LEN    4
#define SMC_SHORT_OVERHEAD   (SMC_SHORT_HDR_LEN + SMC_SHORT_TAG_LEN)   /* 14 bytes */
#define SMC_WNACK_ENTRY_LEN  12
#define SMC_MAX_WINDOW_CHUNKS 255  /* chunks per window (an ANNOUNCE byte) */

typedef enum {
  SMC_PKT_DATA = 1,      /* sender -> group: one source or parity symbol */
  SMC_PKT_ANNOUNCE = 2,  /* sender -> group: session description and state, periodic */
  SMC_PKT_NACK = 3,      /* receiver -> group: FEC blocks that still need symbols */
  SMC_PKT_STATUS = 4,    /* receiver -> sender (unicast): progress, loss, outcome */
  SMC_PKT_CONTROL = 5,   /* sender -> one receiver (unicast): ack completion, evict */
  SMC_PKT_SRCREQ = 6,    /* receiver -> group: source symbols of a block that needs more
                          * than its parity still to come, asked for by index */
  SMC_PKT_SDATA = 7,     /* sender -> group, window mode: one source symbol, short header */
  SMC_PKT_REPAIR = 8,    /* sender -> group, window mode: one repair symbol of a window */
  SMC_PKT_WNACK = 9,     /* receiver -> group, window mode: windows that still need symbols */
} smc_pkt_type;

/* ANNOUNCE flags */
#define SMC_ANN_SRCREQ 0x01  /* the sender resends source symbols asked for by SRCREQ */
#define SMC_ANN_INTERLEAVED 0x02  /* the first pass interleaves each chunk's blocks */
#define SMC_ANN_SOLO 0x04  /* one receiver left to repair: it asks for every
                            * missing source symbol by SRCREQ, no parity */
#define SMC_ANN_WINDOW 0x08  /* window mode: repair by the window code over
                              * windows of window_chunks chunks, in short
                              * packets (SDATA, REPAIR, WNACK) */

typedef enum {
  SMC_STATE_WAITING = 0, /* announce: waiting for receivers to join */
  SMC_STATE_SENDING = 1,
  SMC_STATE_DRAIN = 2,   /* every source symbol sent once; only repairs now */
  SMC_STATE_END = 3,     /* session over: finish what is missing by unicast */
} smc_session_state;

typedef enum {
  SMC_RX_JOINING = 0,
  SMC_RX_RECEIVING = 1,
  SMC_RX_COMPLETE = 2,   /* multicast part done (ext_missing chunks left for unicast) */
  SMC_RX_EVICTED = 3,    /* finishing by unicast: the sender evicted it, or
                          * it left on its own (STATUS reason) */
  SMC_RX_FAILED = 4,
} smc_rx_state;

/* why a receiver left the multicast part on its own (STATUS reason, with
 * state SMC_RX_EVICTED) */
typedef enum {
  SMC_REASON_NONE = 0,   /* it acknowledges the sender's eviction */
  SMC_REASON_MTU = 1,    /* the session's packets are larger than the MTU of
                          * its interface toward the sender: none would reach it */
  SMC_REASON_PATH_MTU = 2,/* (also with state 1) ANNOUNCEs saying the sender
                           * sends reach it, and maybe short DATA packets, but
                           * no full-size one: larger than an MTU on its path
                           * (a switch port's?) */
} smc_leave_reason;

typedef enum {
  SMC_CTL_ACK_COMPLETE = 1,
  SMC_CTL_EVICT = 2,
} smc_ctl_op;

typedef struct {
  uint8_t type;
  uint8_t flags;
  uint16_t session;      /* short packets (SDATA, REPAIR): its low byte */
  uint32_t seq;          /* SDATA: its low 16 bits; REPAIR: 0 */
} smc_hdr;

/* window mode: a source symbol (SDATA) or a repair symbol (REPAIR) */
typedef struct {
  uint32_t chunk;        /* SDATA: the chunk; REPAIR: the window */
  uint32_t esi;          /* SDATA: source symbol index in the chunk (< 0x8000);
                          * REPAIR: the repair id (shoal-mcast-wc.h) */
  const uint8_t *payload;
  size_t payload_len;
} smc_sdata;

/* WNACK entry: a window that needs `need` more symbols */
typedef struct {
  uint32_t window;
  uint32_t next;         /* highest repair serial received + 1 (0: none) */
  uint16_t need;         /* independent repair symbols still needed (saturated) */
  uint16_t missing;      /* source symbols it lacks (saturated) */
} smc_wnack_entry;

typedef struct {
  uint32_t chunk;
  uint16_t esi;          /* < 0x8000: source symbol index in chunk; else parity */
  const uint8_t *payload;
  size_t payload_len;
} smc_data;

typedef struct {
  uint8_t manifest_hash[SMC_HASH_LEN];
  uint64_t image_size;
  uint32_t chunk_size;
  uint32_t n_chunks;
  uint16_t symbol_size;
  uint8_t max_k;
  uint8_t state;         /* smc_session_state */
  uint32_t position;     /* last chunk of the group being sent (or n_chunks when drained) */
  uint32_t rate_kbps;
  uint8_t lanes;         /* chunks interleaved in the first pass (1..SMC_MAX_LANES) */
  uint16_t receivers;    /* receivers in the session, as far as the sender knows (0: not said) */
  uint8_t flags;         /* SMC_ANN_* */
  uint8_t window_chunks; /* with SMC_ANN_WINDOW: chunks per window (1 to
                          * SMC_MAX_WINDOW_CHUNKS, in max_k's byte; max_k
                          * then reads as SMC_DEFAULT_K); else 0 */
} smc_announce;

typedef struct {
  uint32_t chunk;
  uint8_t block;
  uint8_t need;          /* symbols still needed to decode the block */
  uint8_t pnext;         /* highest parity index received + 1 */
} smc_nack_entry;

typedef struct {
  uint32_t node;
  uint16_t count;
  uint32_t seen;          /* highest sender sequence number the receiver had
                           * processed: parity sent after it is still in flight */
  const uint8_t *entries; /* count * SMC_NACK_ENTRY_LEN bytes, read with smc_nack_entry_get */
} smc_nack;

/* SRCREQ: bit i of map (LSB first in each byte) asks for source symbol
 * i of the block (counted from the block's first symbol) */
typedef struct {
  uint32_t node;
  uint32_t chunk;
  uint8_t block;
  uint8_t map_len;       /* 1..SMC_SRCREQ_MAX_MAP */
  const uint8_t *map;
} smc_srcreq;

typedef struct {
  uint32_t node;
  uint8_t state;         /* smc_rx_state */
  uint8_t reason;
  uint16_t loss_permille;
  uint32_t chunks_done;
  uint32_t chunks_pending;
  uint32_t ext_missing;  /* chunks this receiver will fetch by unicast */
  uint32_t rx_overflow;  /* cumulative socket drops (SO_RXQ_OVFL) */
  uint64_t bytes_written;
  uint32_t nacks_sent;
  uint32_t forged;
  uint16_t backlog_permille; /* receive queue fill, ‰ of the socket buffer
                              * (0 from a receiver that does not send it) */
  uint32_t intake_kBps;      /* UDP payload taken from the socket since the
                              * last STATUS, kB/s (0: not sent) */
  uint32_t drain_kBps;       /* the chunks verified and written since the last
                              * STATUS, over the time that took: what its
                              * hash-and-disk path takes when busy, kB/s
                              * (0: none finished, or not sent) */
} smc_status;

/* a receive queue this full (‰) is reported at once and slows the sender,
 * before anything is dropped */
#define SMC_BACKLOG_HIGH 500

typedef struct {
  uint32_t node;
  uint8_t op;            /* smc_ctl_op */
} smc_control;

/* ---- packet build/parse (pure functions, no I/O) ---- */
/* Each builder writes header + body (tag space zeroed) into buf and returns the
 * packet length including the tag, or 0 when buf is too small. */
/* the DATA header alone (SMC_DATA_HDR_LEN bytes), for a payload sent from its own buffer */
void   smc_build_data_head (uint8_t *buf, const smc_hdr *h, uint32_t chunk, uint16_t esi);
size_t smc_build_data     (uint8_t *buf, size_t cap, const smc_hdr *h, uint32_t chunk,
                           uint16_t esi, const uint8_t *payload, size_t len);
size_t smc_build_announce (uint8_t *buf, size_t cap, const smc_hdr *h, const smc_announce *a);
size_t smc_build_nack     (uint8_t *buf, size_t cap, const smc_hdr *h, uint32_t node,
                           uint32_t seen, const smc_nack_entry *e, uint16_t count);
size_t smc_build_srcreq   (uint8_t *buf, size_t cap, const smc_hdr *h, uint32_t node, uint32_t chunk,
                           uint8_t block, const uint8_t *map, uint8_t map_len);
size_t smc_build_status   (uint8_t *buf, size_t cap, const smc_hdr *h, const smc_status *s);
size_t smc_build_control  (uint8_t *buf, size_t cap, const smc_hdr *h, const smc_control *c);

/* window mode: the 10-byte head of an SDATA (chunk, esi < 0x8000, seq:
 * the sender's counter, its low 16 bits go out) or REPAIR packet (window,
 * repair id); payload and SMC_SHORT_TAG_LEN bytes of tag follow */
void   smc_build_sdata_head  (uint8_t *buf, uint16_t session, uint32_t seq, uint32_t chunk, uint16_t esi);
void   smc_build_repair_head (uint8_t *buf, uint16_t session, uint32_t window, uint32_t id);
size_t smc_build_wnack (uint8_t *buf, size_t cap, const smc_hdr *h, uint32_t node,
                        uint32_t seen, const smc_wnack_entry *e, uint16_t count);
/* SDATA or REPAIR (h->type says which) */
int    smc_parse_sdata (const uint8_t *buf, size_t len, smc_sdata *d);
/* a WNACK reads into smc_nack (entries of SMC_WNACK_ENTRY_LEN bytes) */
int    smc_parse_wnack (const uint8_t *buf, size_t len, smc_nack *n);
void   smc_wnack_entry_get (const smc_nack *n, uint16_t i, smc_wnack_entry *e);

/* the window code's seed for window w of the image whose manifest hash is
 * id (shoal-mcast-wc.h): both ends draw the same rows */
uint64_t smc_window_seed (const uint8_t id[SMC_HASH_LEN], uint32_t w);
/* chunks of chunk_size bytes per window for about window_bytes (1 to
 * SMC_MAX_WINDOW_CHUNKS) */
uint32_t smc_window_chunks_for (uint64_t window_bytes, uint32_t chunk_size);
/* The window a session of `receivers` at `mtu` uses by default, bytes; 0:
 * Reed-Solomon blocks. Measured here (bench/multicast/RESULTS.md §23-24),
 * 5 % loss: at MTU 1500 a window of 8 MiB takes one receiver to 110 MB/s
 * at 1.093 x the image (16 MiB: 97 MB/s, the solve's cost), and 16 MiB
 * keeps 16 receivers under 1.10 (8 MiB: 1.0986). At jumbo MTUs a
 * Reed-Solomon block of up to 200 symbols is 1.8 MB already: blocks up to
 * 4 receivers (N = 1: 835-865 MB/s against 703-748 with windows; N = 4:
 * 321 against 299, both under 1.085), windows of 2 MiB above (N = 16: 1.090
 * at 80 MB/s, blocks 1.10-1.104); 16 MiB windows there halved the rate
 * (about ln(L) + 6 multiply-adds a byte, one row at a time) */
uint64_t smc_default_window_bytes (uint16_t mtu, uint32_t receivers);
/* smc_sender_config.window_chunks for windows of window_mib MiB (at most
 * 1024; < 0: smc_default_window_bytes) of chunk_size-byte chunks, in a
 * session of `receivers` at `mtu`: 0 for Reed-Solomon blocks (the tools'
 * --window and the step's window-mib) */
uint32_t smc_session_window_chunks (long window_mib, uint16_t mtu, uint32_t receivers, uint32_t chunk_size);

/* Parse: return 0 on success, -1 if the packet is malformed. The parsed
 * structs point into buf. */
int smc_parse_hdr      (const uint8_t *buf, size_t len, smc_hdr *h);
int smc_parse_data     (const uint8_t *buf, size_t len, smc_data *d);
int smc_parse_announce (const uint8_t *buf, size_t len, smc_announce *a);
int smc_parse_nack     (const uint8_t *buf, size_t len, smc_nack *n);
int smc_parse_srcreq   (const uint8_t *buf, size_t len, smc_srcreq *q);
int smc_parse_status   (const uint8_t *buf, size_t len, smc_status *s);
int smc_parse_control  (const uint8_t *buf, size_t len, smc_control *c);
void smc_nack_entry_get (const smc_nack *n, uint16_t i, smc_nack_entry *e);
/* node id of a receiver packet (NACK/STATUS/SRCREQ), 0 for sender packets
 * (CONTROL names its destination and is the sender's) */
uint32_t smc_packet_node (const uint8_t *buf, size_t len);

/* ---- packet authentication: AES-128-GMAC, truncated to 8 bytes ----
 * The AAD is manifest_hash || packet-without-tag, so a packet only verifies
 * for the session key *and* the image the session is bound to. Nonce:
 * session | type | node | seq (unique per key as long as seq does not wrap). */
typedef struct smc_auth smc_auth;
smc_auth *smc_auth_new  (const uint8_t key[SMC_KEY_LEN], const uint8_t manifest_hash[SMC_HASH_LEN]);
void      smc_auth_free (smc_auth *a);
int       smc_auth_sign (smc_auth *a, uint8_t *pkt, size_t len);          /* fills the tag (4 bytes
                                                                           * of a short packet's) */
/* the tag of the packet head[0..head_len) ‖ payload[0..len) ‖ tag, for a
 * packet sent from separate buffers (same tag as smc_auth_sign of the
 * contiguous packet); node is the packet's node field (0 for the sender) */
int       smc_auth_sign_split (smc_auth *a, const uint8_t *head, size_t head_len, uint32_t node,
                               const uint8_t *payload, size_t len, uint8_t tag[SMC_TAG_LEN]);
int       smc_auth_verify (smc_auth *a, const uint8_t *pkt, size_t len);  /* 0 if genuine */
/* the SMC_SHORT_TAG_LEN-byte tag of a short packet (SDATA, REPAIR) whose
 * head is head[0..SMC_SHORT_HDR_LEN) and payload payload[0..len). Its
 * nonce is made of the head (session, type, then seq, chunk and symbol,
 * or window and repair id), unique as long as a repair id is never sent
 * twice in a window with another payload */
int       smc_auth_sign_short (smc_auth *a, const uint8_t *head, const uint8_t *payload, size_t len,
                               uint8_t tag[SMC_SHORT_TAG_LEN]);
/* Tags come from shoal's AES-NI + VPCLMULQDQ GMAC (shoal-mcast-gmac.h) when
 * the CPU has them, else from OpenSSL; both give the same bytes. on = 1
 * makes every smc_auth created after it use OpenSSL (tests, measurement). */
void        smc_auth_set_openssl_only (int on);
/* what new smc_auth objects use: "aesni-vpclmul" or "openssl" */
const char *smc_auth_backend_name (void);
/* "auto" or "openssl" (the tools' --mac): NULL, or why not */
const char *smc_auth_select (const char *name);

/* ---- chunk / FEC geometry ---- */
typedef struct {
  uint32_t len;          /* bytes in this chunk */
  uint16_t n_src;        /* source symbols */
  uint8_t n_blocks;
  uint8_t base_k;        /* blocks [0, rem) have base_k + 1 symbols, the rest base_k */
  uint8_t rem;
} smc_geom;

int  smc_geom_init (smc_geom *g, uint32_t chunk_len, uint16_t symbol_size, uint8_t max_k);
static inline uint8_t smc_geom_k (const smc_geom *g, uint8_t b) { return (uint8_t) (g->base_k + (b < g->rem)); }
static inline uint16_t smc_geom_start (const smc_geom *g, uint8_t b)
{ return (uint16_t) (b * g->base_k + (b < g->rem ? b : g->rem)); }
uint8_t smc_geom_block_of (const smc_geom *g, uint16_t src_index);
static inline uint16_t smc_parity_esi (uint8_t block, uint8_t j) { return (uint16_t) (SMC_PARITY_FLAG | (block << 8) | j); }

/* ---- manifest: the chunk table a session is bound to ---- */
#define SMC_CHUNK_ZERO 1
typedef struct {
  uint64_t image_size;
  uint32_t chunk_size;
  uint32_t n_chunks;
  uint8_t (*hashes)[SMC_HASH_LEN];  /* n_chunks SHA-256 */
  uint8_t *flags;                   /* n_chunks, SMC_CHUNK_ZERO */
  uint8_t id[SMC_HASH_LEN];         /* manifest hash: sessions are bound to it */
} smc_manifest;

smc_manifest *smc_manifest_new (uint64_t image_size, uint32_t chunk_size);
void smc_manifest_free (smc_manifest *m);
uint32_t smc_manifest_chunk_len (const smc_manifest *m, uint32_t idx);
/* hash one chunk (detects all-zero) into the table */
void smc_manifest_set_chunk (smc_manifest *m, uint32_t idx, const uint8_t *data, size_t len);
/* canonical binary form ("SHMCMAN1", sizes, flags+hash per chunk); id = SHA-256 of it */
uint8_t *smc_manifest_serialize (const smc_manifest *m, size_t *len);
smc_manifest *smc_manifest_parse (const uint8_t *buf, size_t len);
void smc_manifest_compute_id (smc_manifest *m);
/* builds the manifest of a file (reads it in chunk_size pieces) */
smc_manifest *smc_manifest_from_fd (int fd, uint32_t chunk_size);
/* the whole of a regular file of 1 to max bytes, NUL-terminated (a
 * manifest, a join string: the tools, the tests); NULL if it is empty,
 * larger or unreadable */
char *smc_read_file (const char *path, size_t max, size_t *len);
/* Reserves the space of every chunk that is not all-zero when fd is a
 * regular file (nothing for a block device, nor on a file system without
 * fallocate): a disk too small fails here, before the session, and the
 * file system allocates while the receiver waits rather than while it
 * receives. 0, or -1 with errno (ENOSPC...). */
int smc_manifest_preallocate (const smc_manifest *m, int fd);
int smc_manifest_verify_chunk (const smc_manifest *m, uint32_t idx, const uint8_t *data, size_t len);
/* 0 when a chunk of len bytes whose SHA-256 is hash is chunk idx (the
 * hash computed elsewhere, several chunks at once: shoal-mcast-sha.h) */
int smc_manifest_check_hash (const smc_manifest *m, uint32_t idx, size_t len, const uint8_t hash[SMC_HASH_LEN]);

void smc_sha256 (const uint8_t *data, size_t len, uint8_t out[SMC_HASH_LEN]);
void smc_hex (const uint8_t *in, size_t len, char *out);       /* out: 2*len+1 */
int  smc_unhex (const char *in, uint8_t *out, size_t len);     /* 0 on success */

/* ---- join instruction: the session parameters a receiver needs ----
 * Serialized as "key=value;key=value" (group, port, session, manifest, key,
 * sender, mtu, node, iface); the core wraps the same fields in JSON. */
typedef struct {
  char group[64];
  uint16_t port;
  uint16_t session;
  uint8_t manifest_hash[SMC_HASH_LEN];
  int has_key;
  uint8_t key[SMC_KEY_LEN];
  char sender[64];       /* sender's unicast address (where STATUS goes); optional */
  char iface[32];
  uint32_t node;         /* receiver node id (0: pick at random) */
} smc_join;

int  smc_join_format (const smc_join *j, char *out, size_t cap);   /* bytes written or -1 */
int  smc_join_parse  (const char *str, smc_join *j);              /* 0 on success */

uint64_t smc_now_ns (void);
/* a clock of the caller's instead of CLOCK_MONOTONIC, process-wide (NULL:
 * back to it): simulations run sessions in virtual time (shoal-mcast-sim.h) */
void smc_set_clock (uint64_t (*now) (void *user), void *user);

#ifdef __cplusplus
}
#endif
