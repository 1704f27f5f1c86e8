/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the multicast wire format, FEC, manifest binding, join string
 * and the socket's queue delay */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shoal-mcast-fec.h"
#include "shoal-mcast-gmac.h"
#include "shoal-mcast-proto.h"
#include "shoal-mcast-keyset.h"
#include "shoal-mcast-net.h"
#include "shoal-mcast-receiver.h"
#include "shoal-mcast-sha.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

static void
test_data_roundtrip (void)
{
  uint8_t buf[2000], payload[1450];
  smc_hdr h = { .session = 0xbeef, .seq = 77 }, h2;
  smc_data d;
  size_t len;
  for (size_t i = 0; i < sizeof payload; i++)
    payload[i] = (uint8_t) i;
  len = smc_build_data (buf, sizeof buf, &h, 12345, smc_parity_esi (3, 9), payload, sizeof payload);
  g_assert_cmpuint (len, ==, sizeof payload + SMC_DATA_OVERHEAD);
  g_assert_cmpint (smc_parse_hdr (buf, len, &h2), ==, 0);
  g_assert_cmpuint (h2.type, ==, SMC_PKT_DATA);
  g_assert_cmpuint (h2.session, ==, 0xbeef);
  g_assert_cmpuint (h2.seq, ==, 77);
  g_assert_cmpint (smc_parse_data (buf, len, &d), ==, 0);
  g_assert_cmpuint (d.chunk, ==, 12345);
  g_assert_cmpuint (d.esi, ==, 0x8000 | (3 << 8) | 9);
  g_assert_cmpmem (d.payload, d.payload_len, payload, sizeof payload);
  /* too small a buffer, truncated packets, wrong version, unknown type */
  g_assert_cmpuint (smc_build_data (buf, 100, &h, 1, 1, payload, sizeof payload), ==, 0);
  g_assert_cmpint (smc_parse_data (buf, SMC_DATA_OVERHEAD, &d), <, 0);
  g_assert_cmpint (smc_parse_hdr (buf, 10, &h2), <, 0);
  buf[0] = 0x21;
  g_assert_cmpint (smc_parse_hdr (buf, len, &h2), <, 0);
  buf[0] = 0x1f;
  g_assert_cmpint (smc_parse_hdr (buf, len, &h2), <, 0);
}

/* several messages hashed at once give OpenSSL's digests: every lane
 * count, lengths around the 64-byte block and its padding boundary (55,
 * 56, 63, 64), unequal lengths in one call, megabyte messages */
static void
test_sha_multi (void)
{
  GRand *rnd = g_rand_new_with_seed (7);
  size_t big = 1u << 20;
  uint8_t *pool = g_malloc (big + 4096);
  for (size_t i = 0; i < big + 4096; i++)
    pool[i] = (uint8_t) g_rand_int (rnd);
  if (!smc_sha256_ni_available ())
    g_test_message ("no SHA-NI: the OpenSSL path is compared with itself");
  if (smc_sha256_batch () < 16)
    g_test_message ("no AVX-512: the sixteen-lane path is not run");
  /* rounds of 14 to 40 messages take the sixteen-lane path (with
   * AVX-512): lengths alike and mixed, a lane past the shortest message
   * of its sixteen finished alone, 14 and 15 messages with idle lanes */
  for (int round = 0; round < 2300; round++) {
    const uint8_t *data[40];
    size_t len[40];
    uint8_t got[40][32], want[40][32];
    size_t n = round < 2000 ? 1 + (size_t) g_rand_int_range (rnd, 0, 7) : (size_t) g_rand_int_range (rnd, 14, 41);
    for (size_t i = 0; i < n; i++) {
      static const size_t edge[] = { 0, 1, 55, 56, 63, 64, 65, 119, 120, 128 };
      if (round < 200 || (round >= 2000 && round < 2100))
        len[i] = edge[g_rand_int_range (rnd, 0, G_N_ELEMENTS (edge))] + 64 * (size_t) g_rand_int_range (rnd, 0, 3);
      else if (round < 220 || (round >= 2100 && round < 2120))
        len[i] = big - (size_t) g_rand_int_range (rnd, 0, 3) * 8950;
      else
        len[i] = (size_t) g_rand_int_range (rnd, 0, 9000);
      data[i] = pool + g_rand_int_range (rnd, 0, 4096);
    }
    smc_sha256_multi (n, data, len, got);
    smc_sha256_multi_openssl (n, data, len, want);
    for (size_t i = 0; i < n; i++)
      g_assert_cmpmem (got[i], 32, want[i], 32);
  }
  {
    /* FIPS 180-2 appendix B.1: "abc" */
    static const uint8_t abc_hash[32] = {
      0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
      0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad };
    const uint8_t *d[2] = { (const uint8_t *) "abc", (const uint8_t *) "abc" };
    size_t l[2] = { 3, 3 };
    uint8_t out[2][32];
    smc_sha256_multi (2, d, l, out);
    g_assert_cmpmem (out[0], 32, abc_hash, 32);
    g_assert_cmpmem (out[1], 32, abc_hash, 32);
  }
  g_free (pool);
  g_rand_free (rnd);
}

/* The vector code leaves the upper halves of ymm0-15/zmm0-15 clean: after
 * it, legacy-SSE code (SHA-NI, OpenSSL's SHA-256, a receiver's chunk
 * hashes) ran 2.6 times slower. XGETBV(1) tells which register state is
 * in use (bit 2: ymm upper halves, bit 6: zmm upper halves). */
#if defined(__x86_64__) && defined(__GNUC__)
static uint64_t
xinuse (void)
{
  uint32_t lo, hi;
  __asm__ volatile ("xgetbv" : "=a" (lo), "=d" (hi) : "c" (1));
  return ((uint64_t) hi << 32) | lo;
}
#endif

static void
test_vector_state_clean (void)
{
#if defined(__x86_64__) && defined(__GNUC__)
  unsigned int a, b, c, d;
  const uint64_t upper = (1u << 2) | (1u << 6);
  uint8_t key[16] = { 1 }, prefix[32] = { 2 }, iv[12] = { 3 }, tag[16];
  uint8_t buf[9000], par[2][2048];
  const uint8_t *src[4] = { buf, buf + 2048, buf + 4096, buf + 6144 };
  uint8_t *out[2] = { par[0], par[1] };
  const uint8_t *psrc[4] = { NULL, src[1], src[2], src[3] };
  const uint8_t pidx[1] = { 0 };
  const uint8_t *pbuf[1] = { par[0] };
  uint8_t rebuilt[2048];
  uint8_t *rout[1] = { rebuilt };
  smc_gmac *g;
  uint64_t x;
  if (!__get_cpuid_count (0xd, 1, &a, &b, &c, &d) || !(a & (1u << 2))) {
    g_test_skip ("this CPU cannot tell which register state is in use (XGETBV 1)");
    return;
  }
  memset (buf, 0x5a, sizeof buf);
  if ((g = smc_gmac_new (key, prefix)) != NULL) {
    x = xinuse ();
    g_assert_cmphex (x & upper, ==, 0);
    smc_gmac_tag (g, iv, buf, 8, buf + 8, 8950, tag);
    x = xinuse ();
    g_assert_cmphex (x & upper, ==, 0);
    smc_gmac_free (g);
  }
  for (int be = SMC_FEC_AUTO + 1; be < SMC_FEC_N_BACKENDS; be++) {
    if (!smc_fec_backend_available (be) || smc_fec_set_backend (be) < 0)
      continue;
    smc_fec_encode (4, src, 0, 2, out, 2048);
    x = xinuse ();
    if ((x & upper) != 0)
      g_error ("FEC backend %s: encoding left the register state 0x%llx", smc_fec_backend_name (),
               (unsigned long long) x);
    smc_fec_decode (4, psrc, 1, pidx, pbuf, rout, 2048);
    x = xinuse ();
    if ((x & upper) != 0)
      g_error ("FEC backend %s: decoding left the register state 0x%llx", smc_fec_backend_name (),
               (unsigned long long) x);
    g_assert_cmpmem (rebuilt, sizeof rebuilt, src[0], 2048);
  }
  smc_fec_set_backend (SMC_FEC_AUTO);
  {
    /* the sixteen-lane SHA-256 (AVX-512) hands back clean registers too */
    const uint8_t *msgs[16];
    size_t lens[16];
    uint8_t digests[16][32];
    for (int i = 0; i < 16; i++) {
      msgs[i] = buf + 64 * i;
      lens[i] = 4096;
    }
    smc_sha256_multi (16, msgs, lens, digests);
    x = xinuse ();
    g_assert_cmphex (x & upper, ==, 0);
  }
#else
  g_test_skip ("x86-64 only");
#endif
}

static void
test_control_roundtrip (void)
{
  uint8_t buf[4096];
  smc_hdr h = { .session = 9, .seq = 1 };
  smc_announce a = { .image_size = 5000000, .chunk_size = 1 << 20, .n_chunks = 5,
                     .symbol_size = 1450, .max_k = 128, .state = SMC_STATE_DRAIN, .position = 5,
                     .lanes = 2, .receivers = 300, .flags = SMC_ANN_SRCREQ | SMC_ANN_INTERLEAVED | SMC_ANN_SOLO }, a2;
  smc_status s = { .node = 42, .state = SMC_RX_COMPLETE, .loss_permille = 51, .chunks_done = 5,
                   .bytes_written = 5000000, .ext_missing = 1, .backlog_permille = 640,
                   .intake_kBps = 123456, .drain_kBps = 654321 }, s2;
  smc_nack_entry e[3] = { { 1, 2, 3, 4 }, { 7, 0, 10, 0 }, { 9, 1, 1, 255 } }, e2;
  smc_nack n;
  smc_srcreq q;
  const uint8_t map[3] = { 0x81, 0x00, 0x40 };
  smc_control c = { .node = 42, .op = SMC_CTL_EVICT }, c2;
  size_t len;
  memset (a.manifest_hash, 0xab, sizeof a.manifest_hash);
  len = smc_build_announce (buf, sizeof buf, &h, &a);
  g_assert_cmpint (smc_parse_announce (buf, len, &a2), ==, 0);
  g_assert_cmpmem (a2.manifest_hash, 32, a.manifest_hash, 32);
  g_assert_cmpuint (a2.image_size, ==, a.image_size);
  g_assert_cmpuint (a2.n_chunks, ==, 5);
  g_assert_cmpuint (a2.state, ==, SMC_STATE_DRAIN);
  g_assert_cmpuint (a2.lanes, ==, 2);
  g_assert_cmpuint (a2.receivers, ==, 300);
  g_assert_cmpuint (a2.flags, ==, SMC_ANN_SRCREQ | SMC_ANN_INTERLEAVED | SMC_ANN_SOLO);
  /* a sender that does not interleave may leave the field zero: one lane */
  a.lanes = 0;
  len = smc_build_announce (buf, sizeof buf, &h, &a);
  g_assert_cmpint (smc_parse_announce (buf, len, &a2), ==, 0);
  g_assert_cmpuint (a2.lanes, ==, 1);
  /* more lanes than a receiver can hash together are refused */
  a.lanes = SMC_MAX_LANES + 1;
  len = smc_build_announce (buf, sizeof buf, &h, &a);
  g_assert_cmpint (smc_parse_announce (buf, len, &a2), <, 0);
  a.lanes = 2;
  /* inconsistent geometry is refused */
  a.n_chunks = 6;
  len = smc_build_announce (buf, sizeof buf, &h, &a);
  g_assert_cmpint (smc_parse_announce (buf, len, &a2), <, 0);

  len = smc_build_status (buf, sizeof buf, &h, &s);
  g_assert_cmpint (smc_parse_status (buf, len, &s2), ==, 0);
  g_assert_cmpuint (s2.node, ==, 42);
  g_assert_cmpuint (s2.bytes_written, ==, 5000000);
  g_assert_cmpuint (s2.loss_permille, ==, 51);
  g_assert_cmpuint (s2.backlog_permille, ==, 640);
  g_assert_cmpuint (smc_packet_node (buf, len), ==, 42);
  g_assert_cmpuint (s2.intake_kBps, ==, 123456);
  g_assert_cmpuint (s2.drain_kBps, ==, 654321);
  /* a STATUS of the receivers before the drain field (4 bytes shorter)
   * parses without it; one of the first receivers (10 bytes shorter: no
   * backlog, no intake either) still parses, without them; one claiming
   * more than 1000 ‰ of backlog is refused, and so is a shorter body */
  memmove (buf + len - SMC_TAG_LEN - 4, buf + len - SMC_TAG_LEN, SMC_TAG_LEN);
  g_assert_cmpint (smc_parse_status (buf, len - 4, &s2), ==, 0);
  g_assert_cmpuint (s2.intake_kBps, ==, 123456);
  g_assert_cmpuint (s2.drain_kBps, ==, 0);
  len -= 4;
  memmove (buf + len - SMC_TAG_LEN - 6, buf + len - SMC_TAG_LEN, SMC_TAG_LEN);
  g_assert_cmpint (smc_parse_status (buf, len - 6, &s2), ==, 0);
  g_assert_cmpuint (s2.backlog_permille, ==, 0);
  g_assert_cmpuint (s2.intake_kBps, ==, 0);
  g_assert_cmpuint (s2.bytes_written, ==, 5000000);
  g_assert_cmpint (smc_parse_status (buf, len - 7, &s2), <, 0);
  s.backlog_permille = 1001;
  len = smc_build_status (buf, sizeof buf, &h, &s);
  g_assert_cmpint (smc_parse_status (buf, len, &s2), <, 0);
  s.backlog_permille = 640;
  /* a receiver leaving on its own says why */
  s.state = SMC_RX_EVICTED;
  s.reason = SMC_REASON_MTU;
  len = smc_build_status (buf, sizeof buf, &h, &s);
  g_assert_cmpint (smc_parse_status (buf, len, &s2), ==, 0);
  g_assert_cmpuint (s2.state, ==, SMC_RX_EVICTED);
  g_assert_cmpuint (s2.reason, ==, SMC_REASON_MTU);

  len = smc_build_nack (buf, sizeof buf, &h, 42, 0xfedcba98u, e, 3);
  g_assert_cmpint (smc_parse_nack (buf, len, &n), ==, 0);
  g_assert_cmpuint (n.count, ==, 3);
  g_assert_cmpuint (n.seen, ==, 0xfedcba98u);
  smc_nack_entry_get (&n, 2, &e2);
  g_assert_cmpuint (e2.chunk, ==, 9);
  g_assert_cmpuint (e2.pnext, ==, 255);
  /* a count that disagrees with the length is refused */
  g_assert_cmpint (smc_parse_nack (buf, len - 8, &n), <, 0);

  /* SRCREQ: source symbols 0, 7 and 22 of block 3 of chunk 77 */
  len = smc_build_srcreq (buf, sizeof buf, &h, 42, 77, 3, map, sizeof map);
  g_assert_cmpuint (len, ==, SMC_HDR_LEN + SMC_SRCREQ_BODY_LEN + 3 + SMC_TAG_LEN);
  g_assert_cmpint (smc_parse_srcreq (buf, len, &q), ==, 0);
  g_assert_cmpuint (q.node, ==, 42);
  g_assert_cmpuint (q.chunk, ==, 77);
  g_assert_cmpuint (q.block, ==, 3);
  g_assert_cmpmem (q.map, q.map_len, map, sizeof map);
  g_assert_cmpuint (smc_packet_node (buf, len), ==, 42);
  g_assert_cmpint (smc_parse_nack (buf, len, &n), <, 0);
  /* a bitmap length that disagrees with the packet, an empty bitmap, one
   * longer than a block has symbols, or node 0 (the sender's) is refused */
  g_assert_cmpint (smc_parse_srcreq (buf, len - 1, &q), <, 0);
  buf[SMC_HDR_LEN + 9] = 0;
  g_assert_cmpint (smc_parse_srcreq (buf, len, &q), <, 0);
  g_assert_cmpuint (smc_build_srcreq (buf, sizeof buf, &h, 42, 77, 3, map, 0), ==, 0);
  {
    uint8_t big[SMC_SRCREQ_MAX_MAP + 1] = { 0 };
    g_assert_cmpuint (smc_build_srcreq (buf, sizeof buf, &h, 42, 77, 3, big, sizeof big), ==, 0);
    len = smc_build_srcreq (buf, sizeof buf, &h, 42, 77, 3, big, SMC_SRCREQ_MAX_MAP);
    g_assert_cmpint (smc_parse_srcreq (buf, len, &q), ==, 0);
    memmove (buf + len - SMC_TAG_LEN + 1, buf + len - SMC_TAG_LEN, SMC_TAG_LEN);
    buf[SMC_HDR_LEN + 9] = SMC_SRCREQ_MAX_MAP + 1;
    g_assert_cmpint (smc_parse_srcreq (buf, len + 1, &q), <, 0);
  }
  len = smc_build_srcreq (buf, sizeof buf, &h, 0, 77, 3, map, sizeof map);
  g_assert_cmpint (smc_parse_srcreq (buf, len, &q), <, 0);

  len = smc_build_control (buf, sizeof buf, &h, &c);
  g_assert_cmpint (smc_parse_control (buf, len, &c2), ==, 0);
  g_assert_cmpuint (c2.op, ==, SMC_CTL_EVICT);
  /* a packet of one type never parses as another */
  g_assert_cmpint (smc_parse_status (buf, len, &s2), <, 0);
}

/* the sender's set of queued source symbols against GHashTable: random
 * adds and deletes (the table grows from 1024 slots, runs of probes wrap
 * around its end, deletions shift later keys back) */
static void
test_keyset (void)
{
  smc_keyset ks;
  g_autoptr(GHashTable) ref = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  g_autoptr(GRand) rand = g_rand_new_with_seed (20261126);
  g_assert_cmpint (smc_keyset_init (&ks), ==, 0);
  for (int round = 0; round < 200000; round++) {
    /* keys from a small range, so that adds find present keys and deletes
     * find them too; grows to ~3000, then shrinks */
    guint64 key = (guint64) g_rand_int_range (rand, 1, round < 100000 ? 6000 : 3000) * 0x10001ull;
    gboolean in = g_hash_table_contains (ref, &key);
    g_assert_cmpint (smc_keyset_has (&ks, key), ==, in);
    if (round < 100000 ? g_rand_int_range (rand, 0, 3) > 0 : g_rand_int_range (rand, 0, 3) == 0) {
      if (!in) {
        g_assert_cmpint (smc_keyset_add (&ks, key), ==, 0);
        g_hash_table_add (ref, g_memdup2 (&key, sizeof key));
      }
    } else {
      smc_keyset_del (&ks, key);
      g_hash_table_remove (ref, &key);
    }
    g_assert_cmpuint (ks.n, ==, g_hash_table_size (ref));
    g_assert_cmpuint (2 * ks.n, <=, ks.cap);
  }
  {
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init (&it, ref);
    while (g_hash_table_iter_next (&it, &k, NULL))
      g_assert_true (smc_keyset_has (&ks, *(guint64 *) k));
  }
  g_assert_cmpuint (ks.cap, >, 1024);
  smc_keyset_clear (&ks);
}

static void
auth_checks (void)
{
  uint8_t key[SMC_KEY_LEN] = { 1, 2, 3 }, hash[32] = { 9 }, other[32] = { 8 };
  uint8_t buf[256], payload[100] = { 0 };
  smc_hdr h = { .session = 1, .seq = 5 };
  smc_auth *a = smc_auth_new (key, hash), *b = smc_auth_new (key, other);
  size_t len = smc_build_data (buf, sizeof buf, &h, 1, 2, payload, sizeof payload);
  g_assert_nonnull (a);
  g_assert_cmpint (smc_auth_sign (a, buf, len), ==, 0);
  g_assert_cmpint (smc_auth_verify (a, buf, len), ==, 0);
  /* the same key bound to another image refuses the packet */
  g_assert_cmpint (smc_auth_verify (b, buf, len), <, 0);
  /* any flipped bit is refused */
  for (size_t i = 0; i < len; i += 7) {
    buf[i] ^= 0x10;
    g_assert_cmpint (smc_auth_verify (a, buf, len), <, 0);
    buf[i] ^= 0x10;
  }
  /* a packet signed from separate header and payload buffers (the sender's
   * zero-copy path) carries the tag of the contiguous packet */
  {
    uint8_t head[SMC_DATA_HDR_LEN], tag[SMC_TAG_LEN];
    for (size_t i = 0; i < sizeof payload; i++)
      payload[i] = (uint8_t) (i * 31);
    len = smc_build_data (buf, sizeof buf, &h, 1, 2, payload, sizeof payload);
    g_assert_cmpint (smc_auth_sign (a, buf, len), ==, 0);
    smc_build_data_head (head, &h, 1, 2);
    g_assert_cmpmem (head, sizeof head, buf, SMC_DATA_HDR_LEN);
    g_assert_cmpint (smc_auth_sign_split (a, head, sizeof head, 0, payload, sizeof payload, tag), ==, 0);
    g_assert_cmpmem (tag, sizeof tag, buf + len - SMC_TAG_LEN, SMC_TAG_LEN);
  }
  smc_auth_free (a);
  smc_auth_free (b);
}

/* the same checks with each tag backend this CPU has */
/* window mode's packets: short SDATA and REPAIR heads, WNACK; their 4-byte
 * tags, each tied to its head (a payload changed, or the same bytes under
 * the other type, does not verify); an SDATA's esi stays under 0x8000 */
static void
test_short_packets (void)
{
  static const uint8_t key[SMC_KEY_LEN] = { 1, 2, 3 }, hash[SMC_HASH_LEN] = { 4, 5, 6 };
  uint8_t pkt[64], pay[40], buf[256];
  smc_auth *a = smc_auth_new (key, hash);
  smc_hdr h;
  smc_sdata d;
  smc_nack n;
  smc_wnack_entry e[2] = { { .window = 7, .next = 300, .need = 65535, .missing = 12 },
                           { .window = 0xfffffffe, .next = 0, .need = 1, .missing = 1 } }, got;
  size_t len = SMC_SHORT_OVERHEAD + sizeof pay;
  for (size_t i = 0; i < sizeof pay; i++)
    pay[i] = (uint8_t) (i * 7);
  smc_build_sdata_head (pkt, 0x1234, 0x56789, 42, 0x7fff);
  memcpy (pkt + SMC_SHORT_HDR_LEN, pay, sizeof pay);
  g_assert_cmpint (smc_auth_sign (a, pkt, len), ==, 0);
  g_assert_cmpint (smc_parse_hdr (pkt, len, &h), ==, 0);
  g_assert_cmpuint (h.type, ==, SMC_PKT_SDATA);
  g_assert_cmpuint (h.session, ==, 0x34);
  g_assert_cmpuint (h.seq, ==, 0x6789);
  g_assert_cmpint (smc_parse_sdata (pkt, len, &d), ==, 0);
  g_assert_cmpuint (d.chunk, ==, 42);
  g_assert_cmpuint (d.esi, ==, 0x7fff);
  g_assert_cmpuint (d.payload_len, ==, sizeof pay);
  g_assert_cmpmem (d.payload, d.payload_len, pay, sizeof pay);
  g_assert_cmpuint (smc_packet_node (pkt, len), ==, 0);
  g_assert_cmpint (smc_auth_verify (a, pkt, len), ==, 0);
  pkt[SMC_SHORT_HDR_LEN + 3] ^= 1;
  g_assert_cmpint (smc_auth_verify (a, pkt, len), <, 0);
  pkt[SMC_SHORT_HDR_LEN + 3] ^= 1;
  /* the same head bytes as a REPAIR: another nonce, another tag */
  pkt[0] = (uint8_t) ((SMC_VERSION << 4) | SMC_PKT_REPAIR);
  g_assert_cmpint (smc_auth_verify (a, pkt, len), <, 0);
  /* an SDATA naming a symbol at 0x8000 or above is malformed */
  smc_build_sdata_head (pkt, 1, 1, 1, 0x8000);
  g_assert_cmpint (smc_parse_sdata (pkt, len, &d), <, 0);
  /* REPAIR: window and a 32-bit id; a payload is required */
  smc_build_repair_head (pkt, 0x1234, 9, 0xab000001);
  g_assert_cmpint (smc_auth_sign (a, pkt, len), ==, 0);
  g_assert_cmpint (smc_auth_verify (a, pkt, len), ==, 0);
  g_assert_cmpint (smc_parse_sdata (pkt, len, &d), ==, 0);
  g_assert_cmpuint (d.chunk, ==, 9);
  g_assert_cmpuint (d.esi, ==, 0xab000001);
  g_assert_cmpint (smc_parse_sdata (pkt, SMC_SHORT_OVERHEAD, &d), <, 0);
  /* WNACK */
  h = (smc_hdr) { .session = 0x1234, .seq = 77 };
  len = smc_build_wnack (buf, sizeof buf, &h, 99, 1000, e, 2);
  g_assert_cmpuint (len, ==, SMC_HDR_LEN + SMC_NACK_BODY_LEN + 2 * SMC_WNACK_ENTRY_LEN + SMC_TAG_LEN);
  g_assert_cmpint (smc_auth_sign (a, buf, len), ==, 0);
  g_assert_cmpint (smc_auth_verify (a, buf, len), ==, 0);
  g_assert_cmpint (smc_parse_wnack (buf, len, &n), ==, 0);
  g_assert_cmpuint (smc_packet_node (buf, len), ==, 99);
  g_assert_cmpuint (n.count, ==, 2);
  g_assert_cmpuint (n.seen, ==, 1000);
  smc_wnack_entry_get (&n, 1, &got);
  g_assert_cmpuint (got.window, ==, 0xfffffffe);
  smc_wnack_entry_get (&n, 0, &got);
  g_assert_cmpuint (got.next, ==, 300);
  g_assert_cmpuint (got.need, ==, 65535);
  g_assert_cmpuint (got.missing, ==, 12);
  g_assert_cmpint (smc_parse_nack (buf, len, &n), <, 0);
  g_assert_cmpint (smc_parse_wnack (buf, len - 1, &n), <, 0);
  g_assert_cmpuint (smc_build_wnack (buf, len - 1, &h, 99, 1000, e, 2), ==, 0);
  smc_auth_free (a);
}

/* window mode in the ANNOUNCE: the window's chunks in max_k's byte */
static void
test_announce_window (void)
{
  uint8_t buf[128];
  smc_hdr h = { .session = 3, .seq = 1 };
  smc_announce a = { .image_size = 10 << 20, .chunk_size = 1 << 20, .n_chunks = 10, .symbol_size = 1458,
                     .max_k = SMC_DEFAULT_K, .lanes = 2, .flags = SMC_ANN_WINDOW, .window_chunks = 16 }, b;
  size_t len = smc_build_announce (buf, sizeof buf, &h, &a);
  g_assert_cmpint (smc_parse_announce (buf, len, &b), ==, 0);
  g_assert_cmpuint (b.flags, ==, SMC_ANN_WINDOW);
  g_assert_cmpuint (b.window_chunks, ==, 16);
  g_assert_cmpuint (b.max_k, ==, SMC_DEFAULT_K);
  a.window_chunks = 0;
  len = smc_build_announce (buf, sizeof buf, &h, &a);
  g_assert_cmpint (smc_parse_announce (buf, len, &b), <, 0);
  g_assert_cmpuint (smc_window_chunks_for (16u << 20, 1 << 20), ==, 16);
  g_assert_cmpuint (smc_window_chunks_for (16u << 20, 64 << 20), ==, 1);
  g_assert_cmpuint (smc_window_chunks_for (1024ull << 20, 1 << 20), ==, SMC_MAX_WINDOW_CHUNKS);
  g_assert_cmpuint (smc_window_seed (buf, 0), !=, smc_window_seed (buf, 1));
  /* the defaults: windows below jumbo frames, blocks for a few receivers
   * at jumbo frames and small windows for more */
  g_assert_cmpuint (smc_default_window_bytes (1500, 1), ==, 8u << 20);
  g_assert_cmpuint (smc_default_window_bytes (0, 4), ==, 8u << 20);
  g_assert_cmpuint (smc_default_window_bytes (1500, 5), ==, 16u << 20);
  g_assert_cmpuint (smc_default_window_bytes (9000, 4), ==, 0);
  g_assert_cmpuint (smc_default_window_bytes (9000, 16), ==, 2u << 20);
  /* what the tools and the step set: auto, MiB (capped at 1024), 0 */
  g_assert_cmpuint (smc_session_window_chunks (-1, 1500, 16, 1 << 20), ==, 16);
  g_assert_cmpuint (smc_session_window_chunks (-1, 9000, 4, 1 << 20), ==, 0);
  g_assert_cmpuint (smc_session_window_chunks (4, 9000, 4, 1 << 20), ==, 4);
  g_assert_cmpuint (smc_session_window_chunks (100000, 1500, 1, 64 << 20), ==, 16);
  g_assert_cmpuint (smc_session_window_chunks (0, 1500, 16, 1 << 20), ==, 0);
}

static void
test_auth (void)
{
  g_assert_nonnull (smc_auth_select ("fast"));
  g_assert_null (smc_auth_select ("openssl"));
  g_assert_cmpstr (smc_auth_backend_name (), ==, "openssl");
  auth_checks ();
  g_assert_null (smc_auth_select ("auto"));
  if (smc_gmac_available ())
    g_assert_cmpstr (smc_auth_backend_name (), ==, "aesni-vpclmul");
  auth_checks ();
}

static void
unhex (const char *s, uint8_t *out)
{
  for (size_t i = 0; s[2 * i] != '\0'; i++)
    out[i] = (uint8_t) (g_ascii_xdigit_value (s[2 * i]) * 16 + g_ascii_xdigit_value (s[2 * i + 1]));
}

/* POLYVAL, the core of the fast GMAC, against RFC 8452 appendix A */
static void
test_gmac_polyval (void)
{
  uint8_t h[16], x[32], want[16], got[16];
  if (!smc_gmac_available ()) {
    g_test_skip ("no AES-NI + VPCLMULQDQ + AVX-512 here");
    return;
  }
  unhex ("25629347589242761d31f826ba4b757b", h);
  unhex ("4f4f95668c83dfb6401762bb2d01a262d1a24ddd2721d006bbe45f20d3c9f362", x);
  unhex ("f7a3b47b846119fae5b7866cf5e5b77e", want);
  smc_gmac_polyval (h, x, sizeof x, got);
  g_assert_cmpmem (got, sizeof got, want, sizeof want);
}

/* shoal's GMAC and OpenSSL's give the same tag for every length (every
 * remainder of 16 and of the 16-block groups, split anywhere between header
 * and payload), key and image; each verifies the other's packets */
static void
test_gmac_agrees (void)
{
  g_autofree uint8_t *pkt = g_malloc (20000);
  GRand *rnd = g_rand_new_with_seed (7);
  if (!smc_gmac_available ()) {
    g_test_skip ("no AES-NI + VPCLMULQDQ + AVX-512 here");
    g_rand_free (rnd);
    return;
  }
  for (int it = 0; it < 3000; it++) {
    uint8_t key[SMC_KEY_LEN], hash[SMC_HASH_LEN], t1[SMC_TAG_LEN], t2[SMC_TAG_LEN];
    size_t len = it < 1000 ? SMC_HDR_LEN + SMC_TAG_LEN + (size_t) it : (size_t) g_rand_int_range (rnd, 16, 20000);
    size_t head = (size_t) g_rand_int_range (rnd, SMC_HDR_LEN, (gint32) (len - SMC_TAG_LEN) + 1);
    smc_auth *fast, *ossl;
    for (size_t i = 0; i < sizeof key; i++)
      key[i] = (uint8_t) g_rand_int (rnd);
    for (size_t i = 0; i < sizeof hash; i++)
      hash[i] = (uint8_t) g_rand_int (rnd);
    for (size_t i = 0; i < len; i++)
      pkt[i] = (uint8_t) g_rand_int (rnd);
    pkt[0] = (uint8_t) (0x10 | (1 + it % 5));   /* version 1, every type */
    smc_auth_set_openssl_only (0);
    fast = smc_auth_new (key, hash);
    smc_auth_set_openssl_only (1);
    ossl = smc_auth_new (key, hash);
    smc_auth_set_openssl_only (0);
    g_assert_nonnull (fast);
    g_assert_nonnull (ossl);
    g_assert_cmpint (smc_auth_sign_split (fast, pkt, head, 77, pkt + head, len - SMC_TAG_LEN - head, t1), ==, 0);
    g_assert_cmpint (smc_auth_sign_split (ossl, pkt, head, 77, pkt + head, len - SMC_TAG_LEN - head, t2), ==, 0);
    g_assert_cmpmem (t1, sizeof t1, t2, sizeof t2);
    g_assert_cmpint (smc_auth_sign (fast, pkt, len), ==, 0);
    g_assert_cmpint (smc_auth_verify (ossl, pkt, len), ==, 0);
    g_assert_cmpint (smc_auth_sign (ossl, pkt, len), ==, 0);
    g_assert_cmpint (smc_auth_verify (fast, pkt, len), ==, 0);
    pkt[len - 1] ^= 1;
    g_assert_cmpint (smc_auth_verify (fast, pkt, len), <, 0);
    smc_auth_free (fast);
    smc_auth_free (ossl);
  }
  g_rand_free (rnd);
}

static void
test_geom (void)
{
  smc_geom g;
  uint32_t total = 0;
  g_assert_cmpint (smc_geom_init (&g, 1 << 20, 1450, 128), ==, 0);
  g_assert_cmpuint (g.n_src, ==, 724);
  g_assert_cmpuint (g.n_blocks, ==, 6);
  for (uint8_t b = 0; b < g.n_blocks; b++) {
    g_assert_cmpuint (smc_geom_start (&g, b), ==, total);
    for (uint16_t i = 0; i < smc_geom_k (&g, b); i++)
      g_assert_cmpuint (smc_geom_block_of (&g, (uint16_t) (total + i)), ==, b);
    total += smc_geom_k (&g, b);
  }
  g_assert_cmpuint (total, ==, 724);
  g_assert_cmpint (smc_geom_init (&g, 1u << 30, 1450, 128), <, 0);
  g_assert_cmpint (smc_geom_init (&g, 0, 1450, 128), <, 0);
}

static void
run_fec (int k, int S, int backend)
{
  GRand *rng = g_rand_new_with_seed ((guint32) (k * 31 + S));
  g_autofree uint8_t *data = g_malloc ((size_t) k * S);
  g_autofree uint8_t *par = g_malloc ((size_t) 40 * S);
  g_autofree uint8_t *rec = g_malloc ((size_t) k * S);
  const uint8_t *src[256];
  uint8_t *out[256];
  uint8_t pidx[256];
  const uint8_t *pp[256];
  int e = k < 20 ? k : 20;
  if (smc_fec_set_backend (backend) != 0) {
    g_test_message ("FEC backend %d not available here", backend);
    g_rand_free (rng);
    return;
  }
  for (int i = 0; i < k * S; i++)
    data[i] = (uint8_t) g_rand_int (rng);
  for (int i = 0; i < k; i++)
    src[i] = data + (size_t) i * S;
  for (int j = 0; j < 40; j++)
    out[j] = par + (size_t) j * S;
  g_assert_cmpint (smc_fec_encode (k, src, 0, 40, out, (size_t) S), ==, 0);
  /* lose e random source symbols, recover them from e random parity symbols */
  for (int trial = 0; trial < 5; trial++) {
    int miss = 0;
    uint8_t lost[256] = { 0 };
    while (miss < e) {
      int c = g_rand_int_range (rng, 0, k);
      if (!lost[c]) {
        lost[c] = 1;
        miss++;
      }
    }
    for (int i = 0, m = 0; i < k; i++) {
      src[i] = lost[i] ? NULL : data + (size_t) i * S;
      if (lost[i])
        out[m++] = rec + (size_t) i * S;
    }
    for (int i = 0; i < e; i++) {
      pidx[i] = (uint8_t) (39 - 2 * i + (i >= 20 ? 40 : 0)) % 40;
      pp[i] = par + (size_t) pidx[i] * S;
    }
    g_assert_cmpint (smc_fec_decode (k, src, e, pidx, pp, out, (size_t) S), ==, 0);
    for (int i = 0; i < k; i++)
      if (lost[i])
        g_assert_cmpmem (rec + (size_t) i * S, S, data + (size_t) i * S, S);
  }
  g_rand_free (rng);
  smc_fec_set_backend (SMC_FEC_AUTO);
}

static void
test_fec (void)
{
  for (int b = 0; b < SMC_FEC_N_BACKENDS; b++) {
    run_fec (1, 64, b);
    run_fec (10, 100, b);
    run_fec (128, 1450, b);
    run_fec (200, 333, b);
    run_fec (7, 8950, b);
    run_fec (118, 8950, b);
    run_fec (3, 77, b);
  }
}

static void
test_fec_backends_agree (void)
{
  /* odd lengths reach every kernel's tail path; 1..7 rows every row-group size */
  static const size_t lens[] = { 1, 63, 64, 65, 257, 1450, 8950 };
  int avail = 0;
  for (size_t li = 0; li < G_N_ELEMENTS (lens); li++) {
    size_t len = lens[li];
    g_autofree uint8_t *data = g_malloc (16 * len);
    g_autofree uint8_t *ref = g_malloc (7 * len);
    g_autofree uint8_t *got = g_malloc (7 * len);
    const uint8_t *src[16];
    uint8_t *o[7];
    for (size_t i = 0; i < 16 * len; i++)
      data[i] = (uint8_t) (i * 37 + i / 7 * 11);
    for (int i = 0; i < 16; i++)
      src[i] = data + i * len;
    for (int rows = 1; rows <= 7; rows++) {
      g_assert_cmpint (smc_fec_set_backend (SMC_FEC_TABLES), ==, 0);
      for (int i = 0; i < rows; i++)
        o[i] = ref + i * len;
      g_assert_cmpint (smc_fec_encode (16, src, 3, rows, o, len), ==, 0);
      for (int b = SMC_FEC_AUTO; b < SMC_FEC_N_BACKENDS; b++) {
        if (smc_fec_set_backend (b) != 0)
          continue;
        avail |= 1 << b;
        memset (got, 0xa5, 7 * len);
        for (int i = 0; i < rows; i++)
          o[i] = got + i * len;
        g_assert_cmpint (smc_fec_encode (16, src, 3, rows, o, len), ==, 0);
        g_assert_cmpmem (got, rows * len, ref, rows * len);
      }
    }
  }
  smc_fec_set_backend (SMC_FEC_AUTO);
  g_test_message ("FEC backends compared: mask 0x%x, auto = %s", avail, smc_fec_backend_name ());
  g_assert_cmpint (smc_fec_set_backend (SMC_FEC_N_BACKENDS), ==, -1);
}

static void
test_receiver_window (void)
{
  /* 64 MiB of chunks: 64 of 1 MiB, 16 of 4 MiB, at least 4, at most 64 */
  g_assert_cmpuint (smc_receiver_default_window (1 << 20), ==, 64);
  g_assert_cmpuint (smc_receiver_default_window (4 << 20), ==, 16);
  g_assert_cmpuint (smc_receiver_default_window (64u << 20), ==, 4);
  g_assert_cmpuint (smc_receiver_default_window (4096), ==, 64);
  g_assert_cmpuint (smc_receiver_default_window (0), ==, 64);
}

/* The manifest of a sparse file: its holes are not read, and it is the
 * manifest of the same bytes written out (same id, same zero chunks), the
 * short last chunk in a hole too */
static void
test_manifest_sparse (void)
{
  const uint32_t cs = 65536;
  const off_t size = 9 * (off_t) cs + 100;
  g_autofree guint8 *img = g_malloc0 ((gsize) size);
  g_autofree gchar *dense = NULL, *sparse = NULL;
  g_autoptr(GError) error = NULL;
  smc_manifest *a, *b;
  int fd_dense, fd_sparse;

  /* data in chunk 0, in the second half of chunk 4 and in the first bytes of chunk 5 */
  for (gsize i = 0; i < cs; i++)
    img[i] = (guint8) (i * 7 + 1);
  for (gsize i = 0; i < cs / 2 + 10; i++)
    img[4 * cs + cs / 2 + i] = (guint8) (i * 13 + 5);
  fd_dense = g_file_open_tmp ("shoal-dense-XXXXXX", &dense, &error);
  g_assert_no_error (error);
  fd_sparse = g_file_open_tmp ("shoal-sparse-XXXXXX", &sparse, &error);
  g_assert_no_error (error);
  g_assert_cmpint (write (fd_dense, img, (size_t) size), ==, (ssize_t) size);
  g_assert_cmpint (ftruncate (fd_sparse, size), ==, 0);
  g_assert_cmpint (pwrite (fd_sparse, img, cs, 0), ==, (ssize_t) cs);
  g_assert_cmpint (pwrite (fd_sparse, img + 4 * cs + cs / 2, cs / 2 + 10, 4 * (off_t) cs + cs / 2), ==,
                   (ssize_t) (cs / 2 + 10));
  a = smc_manifest_from_fd (fd_dense, cs);
  b = smc_manifest_from_fd (fd_sparse, cs);
  g_assert_nonnull (a);
  g_assert_nonnull (b);
  g_assert_cmpuint (b->n_chunks, ==, 10);
  g_assert_cmpmem (a->id, SMC_HASH_LEN, b->id, SMC_HASH_LEN);
  for (uint32_t i = 0; i < b->n_chunks; i++) {
    g_assert_cmpuint (a->flags[i], ==, b->flags[i]);
    g_assert_cmpmem (a->hashes[i], SMC_HASH_LEN, b->hashes[i], SMC_HASH_LEN);
    g_assert_cmpuint (b->flags[i] & SMC_CHUNK_ZERO, ==, (i == 0 || i == 4 || i == 5) ? 0 : SMC_CHUNK_ZERO);
  }
  smc_manifest_free (a);
  smc_manifest_free (b);
  close (fd_dense);
  close (fd_sparse);
  unlink (dense);
  unlink (sparse);
}

/* The receiver reserves the image's space before the session: the chunks
 * that are not all-zero, and nothing else; what a file already holds
 * stays; a file that cannot grow fails with errno; a pipe is left alone */
static void
test_manifest_preallocate (void)
{
  const uint32_t cs = 1u << 20;
  smc_manifest *m = smc_manifest_new (7 * (uint64_t) cs + cs / 2, cs);
  g_autofree uint8_t *chunk = g_malloc (cs), *back = g_malloc (cs);
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  struct rlimit old, lim;
  struct stat sb;
  int fd = g_file_open_tmp ("shoal-prealloc-XXXXXX", &path, &error), pipefd[2];
  g_assert_no_error (error);
  g_assert_cmpint (fd, >=, 0);
  memset (chunk, 0x5a, cs);
  /* chunks 2-5 all-zero: a 4 MiB hole; 0, 1, 6 and the short 7 are data */
  for (uint32_t i = 0; i < m->n_chunks; i++)
    if (i < 2 || i > 5)
      memcpy (m->hashes[i], chunk, SMC_HASH_LEN);
    else
      m->flags[i] = SMC_CHUNK_ZERO;
  g_assert_cmpint (ftruncate (fd, (off_t) m->image_size), ==, 0);
  g_assert_cmpint (pwrite (fd, chunk, cs, 0), ==, (ssize_t) cs);
  g_assert_cmpint (smc_manifest_preallocate (m, fd), ==, 0);
  g_assert_cmpint (fstat (fd, &sb), ==, 0);
  g_assert_cmpint (sb.st_size, ==, (off_t) m->image_size);
  if (sb.st_blocks * 512 > (blkcnt_t) cs) {
    /* the file system has fallocate: 3.5 MiB reserved, the hole kept */
    g_assert_cmpint (sb.st_blocks * 512, >=, (blkcnt_t) (3 * cs + cs / 2));
    g_assert_cmpint (sb.st_blocks * 512, <, (blkcnt_t) (5 * cs));
  } else {
    g_test_message ("%s: no fallocate here, only the data checks ran", path);
  }
  g_assert_cmpint (pread (fd, back, cs, 0), ==, (ssize_t) cs);
  g_assert_cmpmem (back, cs, chunk, cs);
  g_assert_cmpint (pread (fd, back, cs, 6 * (off_t) cs), ==, (ssize_t) cs);
  g_assert_cmpuint (back[0] | back[cs - 1], ==, 0);
  close (fd);
  unlink (path);

  /* a file that may not grow past 2 MiB: the error, before any session */
  g_assert_cmpint (getrlimit (RLIMIT_FSIZE, &old), ==, 0);
  lim = old;
  lim.rlim_cur = 2 * cs;
  signal (SIGXFSZ, SIG_IGN);
  g_clear_pointer (&path, g_free);
  fd = g_file_open_tmp ("shoal-prealloc-XXXXXX", &path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &lim), ==, 0);
  errno = 0;
  g_assert_cmpint (smc_manifest_preallocate (m, fd), ==, -1);
  g_assert_cmpint (errno, ==, EFBIG);
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &old), ==, 0);
  signal (SIGXFSZ, SIG_DFL);
  close (fd);
  unlink (path);

  g_assert_cmpint (pipe (pipefd), ==, 0);
  g_assert_cmpint (smc_manifest_preallocate (m, pipefd[1]), ==, 0);
  close (pipefd[0]);
  close (pipefd[1]);
  smc_manifest_free (m);
}

static void
test_manifest_binding (void)
{
  smc_manifest *m = smc_manifest_new (3 * 1000 + 10, 1000), *m2, *m3;
  uint8_t chunk[1000], zero[1000] = { 0 };
  g_autofree uint8_t *ser = NULL;
  size_t len;
  memset (chunk, 7, sizeof chunk);
  g_assert_cmpuint (m->n_chunks, ==, 4);
  g_assert_cmpuint (smc_manifest_chunk_len (m, 3), ==, 10);
  smc_manifest_set_chunk (m, 0, chunk, 1000);
  smc_manifest_set_chunk (m, 1, zero, 1000);
  smc_manifest_set_chunk (m, 2, chunk, 1000);
  smc_manifest_set_chunk (m, 3, chunk, 10);
  g_assert_cmpuint (m->flags[1], ==, SMC_CHUNK_ZERO);
  g_assert_cmpuint (m->flags[0], ==, 0);
  smc_manifest_compute_id (m);
  ser = smc_manifest_serialize (m, &len);
  m2 = smc_manifest_parse (ser, len);
  g_assert_nonnull (m2);
  g_assert_cmpmem (m2->id, 32, m->id, 32);
  g_assert_cmpint (smc_manifest_verify_chunk (m2, 2, chunk, 1000), ==, 0);
  /* a chunk is only accepted at its own index, with its own length and bytes */
  g_assert_cmpint (smc_manifest_verify_chunk (m2, 1, chunk, 1000), <, 0);
  g_assert_cmpint (smc_manifest_verify_chunk (m2, 3, chunk, 1000), <, 0);
  chunk[500] ^= 1;
  g_assert_cmpint (smc_manifest_verify_chunk (m2, 2, chunk, 1000), <, 0);
  /* any change to the manifest changes its id (the session binding) */
  ser[30] ^= 1;
  m3 = smc_manifest_parse (ser, len);
  g_assert_nonnull (m3);
  g_assert_cmpint (memcmp (m3->id, m->id, 32), !=, 0);
  g_assert_null (smc_manifest_parse (ser, len - 1));
  smc_manifest_free (m);
  smc_manifest_free (m2);
  smc_manifest_free (m3);
}

static void
test_join (void)
{
  smc_join j = { .group = "239.1.2.3", .port = 6100, .session = 77, .has_key = 1, .node = 5 }, j2;
  char buf[1024];
  memset (j.manifest_hash, 0xcd, 32);
  memset (j.key, 0x11, SMC_KEY_LEN);
  g_assert_cmpint (smc_join_format (&j, buf, sizeof buf), >, 0);
  g_assert_cmpint (smc_join_parse (buf, &j2), ==, 0);
  g_assert_cmpstr (j2.group, ==, "239.1.2.3");
  g_assert_cmpuint (j2.port, ==, 6100);
  g_assert_cmpuint (j2.session, ==, 77);
  g_assert_cmpuint (j2.node, ==, 5);
  g_assert_true (j2.has_key);
  g_assert_cmpmem (j2.key, SMC_KEY_LEN, j.key, SMC_KEY_LEN);
  g_assert_cmpmem (j2.manifest_hash, 32, j.manifest_hash, 32);
  g_assert_cmpint (smc_join_parse ("group=239.1.1.1;port=1;session=1", &j2), <, 0);
  g_assert_cmpint (smc_join_parse ("v=2;group=239.1.1.1;port=1;session=1;manifest=00", &j2), <, 0);
  g_assert_cmpint (smc_join_parse ("garbage", &j2), <, 0);
  g_assert_cmpint (smc_join_parse ("v=1;group=239.1.1.1;port=99999;session=1;manifest=", &j2), <, 0);
}

/* how long a packet waited in a socket's queue, from the kernel's stamp
 * of its arrival (what a receiver puts its next NACK off by), on a real
 * socket on loopback: the first call turns stamps on; a packet read 150 ms
 * after it came reads at least that; one read at once, far less */
static void
test_queue_delay (void)
{
  smc_sock s = { .fd = socket (AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0) };
  int tx = socket (AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t alen = sizeof a;
  char buf[64];
  uint64_t d;
  g_assert_cmpint (s.fd, >=, 0);
  g_assert_cmpint (tx, >=, 0);
  g_assert_cmpint (bind (s.fd, (struct sockaddr *) &a, sizeof a), ==, 0);
  g_assert_cmpint (getsockname (s.fd, (struct sockaddr *) &a, &alen), ==, 0);
  g_assert_cmpuint (smc_sock_queue_delay_ns (&s), ==, 0);  /* nothing read yet */
  /* the kernel turns its stamps on a moment later (deferred work): until
   * then a packet comes unstamped and reads as no wait */
  for (int i = 0; i < 5; i++) {
    g_assert_cmpint (sendto (tx, "waits", 5, 0, (struct sockaddr *) &a, sizeof a), ==, 5);
    g_usleep (150000);
    g_assert_cmpint (recv (s.fd, buf, sizeof buf, 0), ==, 5);
    d = smc_sock_queue_delay_ns (&s);
    if (d >= 1000000)
      break;
  }
  g_test_message ("a packet read 150 ms after it came: %.1f ms", d / 1e6);
  g_assert_cmpuint (d, >=, 150000000);
  g_assert_cmpuint (d, <, 10000000000ull);
  g_assert_cmpint (sendto (tx, "at once", 7, 0, (struct sockaddr *) &a, sizeof a), ==, 7);
  for (int i = 0; i < 1000 && recv (s.fd, buf, sizeof buf, 0) < 0; i++)
    g_usleep (1000);
  d = smc_sock_queue_delay_ns (&s);
  g_test_message ("a packet read at once: %.3f ms", d / 1e6);
  g_assert_cmpuint (d, <, 100000000);
  /* offline (the simulation's): what the caller models */
  close (s.fd);
  s = (smc_sock) { .fd = -1, .offline_delay_ns = 1234 };
  g_assert_cmpuint (smc_sock_queue_delay_ns (&s), ==, 1234);
  close (tx);
}

/* a full socket's drops, read at once (the sender slows down on them)
 * rather than when the receiver reads past them */
static void
test_sock_drops (void)
{
  smc_sock s = { .fd = socket (AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0) };
  int tx = socket (AF_INET, SOCK_DGRAM, 0), small = 4096;
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t alen = sizeof a;
  char pkt[1000] = { 0 };
  uint32_t drops;
  g_assert_cmpint (s.fd, >=, 0);
  g_assert_cmpint (tx, >=, 0);
  g_assert_cmpint (setsockopt (s.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), ==, 0);
  g_assert_cmpint (bind (s.fd, (struct sockaddr *) &a, sizeof a), ==, 0);
  g_assert_cmpint (getsockname (s.fd, (struct sockaddr *) &a, &alen), ==, 0);
  g_assert_cmpuint (smc_sock_drops (&s), ==, 0);
  for (int i = 0; i < 200; i++)
    g_assert_cmpint (sendto (tx, pkt, sizeof pkt, 0, (struct sockaddr *) &a, sizeof a), ==, (int) sizeof pkt);
  drops = smc_sock_drops (&s);
  g_test_message ("200 packets into a %d-byte buffer, none read: %u dropped", small, drops);
  g_assert_cmpuint (drops, >, 100);
  g_assert_cmpuint (drops, <, 200);
  close (s.fd);
  s = (smc_sock) { .fd = -1, .offline_drops = 77 };
  g_assert_cmpuint (smc_sock_drops (&s), ==, 77);
  close (tx);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/multicast/proto/data", test_data_roundtrip);
  g_test_add_func ("/shoal/multicast/proto/control", test_control_roundtrip);
  g_test_add_func ("/shoal/multicast/proto/keyset", test_keyset);
  g_test_add_func ("/shoal/multicast/proto/auth", test_auth);
  g_test_add_func ("/shoal/multicast/proto/short-packets", test_short_packets);
  g_test_add_func ("/shoal/multicast/proto/announce-window", test_announce_window);
  g_test_add_func ("/shoal/multicast/gmac/polyval", test_gmac_polyval);
  g_test_add_func ("/shoal/multicast/gmac/agrees-with-openssl", test_gmac_agrees);
  g_test_add_func ("/shoal/multicast/proto/geometry", test_geom);
  g_test_add_func ("/shoal/multicast/sha/agrees-with-openssl", test_sha_multi);
  g_test_add_func ("/shoal/multicast/vector-state-clean", test_vector_state_clean);
  g_test_add_func ("/shoal/multicast/fec/roundtrip", test_fec);
  g_test_add_func ("/shoal/multicast/fec/backends-agree", test_fec_backends_agree);
  g_test_add_func ("/shoal/multicast/manifest/binding", test_manifest_binding);
  g_test_add_func ("/shoal/multicast/manifest/preallocate", test_manifest_preallocate);
  g_test_add_func ("/shoal/multicast/manifest/sparse", test_manifest_sparse);
  g_test_add_func ("/shoal/multicast/join/roundtrip", test_join);
  g_test_add_func ("/shoal/multicast/receiver/window", test_receiver_window);
  g_test_add_func ("/shoal/multicast/net/queue-delay", test_queue_delay);
  g_test_add_func ("/shoal/multicast/net/drops", test_sock_drops);
  return g_test_run ();
}
