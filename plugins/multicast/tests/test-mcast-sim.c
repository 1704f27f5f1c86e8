/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Whole multicast sessions in virtual time (proto/shoal-mcast-sim.h): the
 * real sender and receivers in one process, loss and faults applied to
 * their packets by the simulation. No network, no root. */
#include <glib.h>
#include <string.h>

#include "shoal-mcast-sim.h"

#define MIB (1024 * 1024)
#define MS 1000000ull

/* the sender's window_chunks in the session setup () makes: 0 under
 * /shoal/multicast/sim/, Reed-Solomon blocks; under /shoal/multicast/sim-window/
 * the window code, as the tools and the step use it */
static uint32_t window_chunks;

/* a session of len bytes (an image of its own for each image_seed) to
 * receivers, each losing loss_ppm per million of the sender's packets */
static void
setup (smc_sim_config *c, size_t len, uint64_t image_seed, uint32_t receivers, uint32_t loss_ppm)
{
  uint8_t *img = g_malloc (len);
  smc_sim_fill (img, len, image_seed);
  smc_sim_config_init (c);
  c->window_chunks = window_chunks;
  c->image = img;
  c->image_len = len;
  c->receivers = receivers;
  c->loss_ppm = loss_ppm;
}

static smc_sim_result *
run (smc_sim_config *c)
{
  smc_sim_result *res = g_new0 (smc_sim_result, 1);
  char err[256];
  if (smc_sim_run (c, res, err, sizeof err) < 0)
    g_error ("simulation: %s", err);
  return res;
}

static double
egress (const smc_sim_config *c, const smc_sim_result *res)
{
  return (double) res->egress_bytes / (double) c->image_len;
}

/* every receiver ended with every chunk (unicast included) and wrote
 * nothing but the image */
static void
assert_intact (const smc_sim_config *c, const smc_sim_result *res)
{
  for (uint32_t i = 1; i <= c->receivers; i++) {
    g_assert_true (res->rcv[i].complete);
    g_assert_cmpuint (res->rcv[i].bad_writes, ==, 0);
  }
}

/* every receiver got every chunk by multicast, bit-exact, nothing else written */
static void
assert_all_by_multicast (const smc_sim_config *c, const smc_sim_result *res)
{
  g_assert_cmpint (res->sender_rc, ==, 0);
  g_assert_cmpuint (res->n_nodes, ==, c->receivers);
  for (uint32_t i = 0; i < res->n_nodes; i++)
    g_assert_cmpint (res->nodes[i].outcome, ==, SMC_NODE_COMPLETE);
  assert_intact (c, res);
  for (uint32_t i = 1; i <= c->receivers; i++) {
    g_assert_cmpint (res->rcv[i].rc, ==, 0);
    g_assert_cmpuint (res->rcv[i].chunks_unicast, ==, 0);
    g_assert_cmpuint (res->rcv[i].writes, ==, (c->image_len + c->chunk_size - 1) / c->chunk_size);
  }
}

static void
test_lossless (void)
{
  smc_sim_config c;
  smc_sim_result *res;
  setup (&c, 8 * MIB, 1, 4, 0);
  res = run (&c);
  assert_all_by_multicast (&c, res);
  /* 1514-byte frames carrying 1450 bytes of image (1458 in window mode,
   * whose packets have 14 bytes of header and tag, not 22), and nothing
   * sent twice */
  g_assert_cmpfloat (egress (&c, res), >=, 1514.0 / (window_chunks ? 1458.0 : 1450.0));
  g_assert_cmpfloat (egress (&c, res), <=, window_chunks ? 1.039 : 1.05);
  g_assert_cmpuint (res->sender.parity_pkts, ==, 0);
  g_assert_cmpuint (res->sender.source_resent, ==, 0);
  /* paced to the 1 Gbit/s cap: 8 MiB take about 70 ms, not less */
  g_assert_cmpuint (res->end_ns, >=, 60 * MS);
  g_assert_cmpuint (res->end_ns, <=, 150 * MS);
  g_free ((void *) c.image);
  g_free (res);
}

/* 5 % independent loss at each of 16 receivers: repaired by parity, one
 * parity packet serving many receivers (egress far below the 1 + N × loss
 * a resend-per-receiver protocol would need) */
static void
test_loss (void)
{
  smc_sim_config c;
  smc_sim_result *res;
  setup (&c, 12 * MIB + 12345, 2, 16, 50000);  /* a short last chunk */
  c.seed = 7;
  res = run (&c);
  g_test_message ("N=16, 5 %%: egress %.4f, parity %llu", egress (&c, res), (unsigned long long) res->sender.parity_pkts);
  assert_all_by_multicast (&c, res);
  g_assert_cmpuint (res->sender.parity_pkts, >, 0);
  g_assert_cmpfloat (egress (&c, res), >, 1.09);
  g_assert_cmpfloat (egress (&c, res), <, 1.16);
  for (uint32_t i = 1; i <= c.receivers; i++) {
    g_assert_cmpuint (res->rcv[i].st.parity_used, >, 0);
    g_assert_cmpuint (res->rcv[i].st.forged, ==, 0);
  }
  g_free ((void *) c.image);
  g_free (res);
}

/* drops the first two ANNOUNCEs saying the sender sends (user: how many
 * were dropped) */
static int
no_sending_announce (void *user, smc_sim *sim, uint32_t from, uint32_t to, uint8_t *pkt, size_t *len, size_t cap)
{
  smc_hdr h;
  smc_announce a;
  int *dropped = user;
  (void) sim;
  (void) cap;
  if (from != 0 || *dropped >= 2 || smc_parse_hdr (pkt, *len, &h) < 0 || h.type != SMC_PKT_ANNOUNCE ||
      smc_parse_announce (pkt, *len, &a) < 0 || a.state != SMC_STATE_SENDING)
    return SMC_SIM_DELIVER;
  (*dropped)++;
  return SMC_SIM_DROP;
}

/* A receiver alone asks for the source symbols it lacks, never for
 * parity, even when the ANNOUNCEs that say it is alone (sent as the
 * sender begins, three 5 ms apart) are lost but the last: its first
 * blocks wait for it rather than ask for parity (net case solo failed 5
 * times in 300 so) */
static void
test_solo_late (void)
{
  smc_sim_config c;
  smc_sim_result *res;
  int dropped = 0;
  setup (&c, 4 * MIB, 3, 1, 50000);
  c.filter = no_sending_announce;
  c.user = &dropped;
  res = run (&c);
  g_test_message ("alone, two ANNOUNCEs lost: %llu NACKs, %llu SRCREQs",
                  (unsigned long long) res->rcv[1].st.nacks_sent, (unsigned long long) res->rcv[1].st.srcreqs_sent);
  g_assert_cmpint (dropped, ==, 2);
  assert_all_by_multicast (&c, res);
  g_assert_cmpuint (res->rcv[1].st.srcreqs_sent, >, 0);
  g_assert_cmpuint (res->rcv[1].st.nacks_sent, ==, 0);
  g_free ((void *) c.image);
  g_free (res);
}

/* a seed replays a session exactly */
static void
test_replay (void)
{
  smc_sim_config c;
  smc_sim_result *a, *b;
  setup (&c, 4 * MIB, 3, 4, 20000);
  c.seed = 11;
  a = run (&c);
  b = run (&c);
  assert_all_by_multicast (&c, a);
  g_assert_cmpuint (a->egress_bytes, ==, b->egress_bytes);
  g_assert_cmpuint (a->end_ns, ==, b->end_ns);
  g_assert_cmpuint (a->sender.parity_pkts, ==, b->sender.parity_pkts);
  c.seed = 12;
  g_free (b);
  b = run (&c);
  g_assert_cmpuint (a->egress_bytes, !=, b->egress_bytes);
  g_free ((void *) c.image);
  g_free (a);
  g_free (b);
}

/* a receiver dies mid-transfer: the others finish at full rate by
 * multicast, the sender marks it failed */
static void
test_killed (void)
{
  smc_sim_config c;
  smc_sim_result *res, *alone;
  setup (&c, 16 * MIB, 4, 3, 10000);
  alone = run (&c);
  assert_all_by_multicast (&c, alone);
  c.receivers = 4;
  c.kill_ns[2] = 40 * MS;
  res = run (&c);
  g_test_message ("killed at 40 ms: receiver 2 left %u chunks; receiver 1 complete at %.3f s (%.3f s without it)",
                  res->rcv[2].chunks_unicast, res->rcv[1].st.complete_ns / 1e9, alone->rcv[1].st.complete_ns / 1e9);
  g_assert_cmpint (res->sender_rc, ==, 1);
  for (uint32_t i = 0; i < res->n_nodes; i++)
    g_assert_cmpint (res->nodes[i].outcome, ==, res->nodes[i].node == 102 ? SMC_NODE_FAILED : SMC_NODE_COMPLETE);
  for (uint32_t i = 1; i <= c.receivers; i++) {
    g_assert_cmpuint (res->rcv[i].bad_writes, ==, 0);
    if (i == 2) {
      g_assert_cmpuint (res->rcv[i].finished_ns, ==, 0);
      g_assert_cmpuint (res->rcv[i].chunks_unicast, >, 0);
      continue;
    }
    g_assert_cmpuint (res->rcv[i].chunks_unicast, ==, 0);
    /* not held back: within the node timeout (3 s) of the group without it */
    g_assert_cmpuint (res->rcv[i].finished_ns, <=, alone->rcv[1].finished_ns + 3500 * MS);
  }
  /* and the data went out at the same pace */
  g_assert_cmpuint (res->rcv[1].st.complete_ns, <=, alone->rcv[1].st.complete_ns + 20 * MS);
  g_free ((void *) c.image);
  g_free (res);
  g_free (alone);
}

/* No receiver joined within the join wait (each one's join failed): the
 * sender ends without sending the image to nobody (before, it sent it all
 * after the wait), and says so */
static void
test_nobody_joined (void)
{
  smc_sim_config c;
  smc_sim_result *res;
  setup (&c, 8 * MIB, 11, 2, 0);
  c.kill_ns[1] = 1;
  c.kill_ns[2] = 1;
  res = run (&c);
  g_assert_cmpuint (res->n_nodes, ==, 0);
  g_assert_cmpint (res->sender_rc, ==, 1);
  g_assert_true (res->sender.no_receiver);
  g_assert_cmpuint (res->sender.data_pkts, ==, 0);
  g_assert_cmpuint (res->sender.parity_pkts, ==, 0);
  g_assert_cmpuint (res->egress_bytes, <, 1 * MIB);
  /* at the end of the join wait (5 s), not later */
  g_assert_cmpuint (res->end_ns, >=, 5000 * MS);
  g_assert_cmpuint (res->end_ns, <, 5500 * MS);
  g_free ((void *) c.image);
  g_free (res);
}

/* A receiver that never joins and is dropped by the sender's caller (its
 * device taken out of the group) is not waited for: the session starts
 * when it is dropped, not at the end of the join wait (5 s) */
static void
test_dropped_absent (void)
{
  smc_sim_config c;
  smc_sim_result *res;
  setup (&c, 8 * MIB, 12, 3, 0);
  c.kill_ns[3] = 1;
  c.drop_ns[3] = 100 * MS;
  res = run (&c);
  g_assert_cmpuint (res->n_nodes, ==, 2);
  for (uint32_t i = 0; i < res->n_nodes; i++)
    g_assert_cmpint (res->nodes[i].outcome, ==, SMC_NODE_COMPLETE);
  g_assert_cmpint (res->sender_rc, ==, 1);   /* not every receiver expected completed */
  g_assert_false (res->sender.no_receiver);
  g_assert_cmpuint (res->sender.data_start_ns, >=, 100 * MS);
  g_assert_cmpuint (res->sender.data_start_ns, <, 200 * MS);
  g_assert_cmpuint (res->end_ns, <, 1000 * MS);
  for (uint32_t i = 1; i <= 2; i++) {
    g_assert_true (res->rcv[i].complete);
    g_assert_cmpuint (res->rcv[i].chunks_unicast, ==, 0);
  }
  g_free ((void *) c.image);
  g_free (res);
}

/* A receiver dropped in the middle of the session is told to leave
 * (CONTROL EVICT: it finishes by unicast, if its machine still wants the
 * image), its outcome is "dropped", and the others finish as fast as
 * without it; when every one left is dropped, nothing more is sent */
static void
test_dropped_joined (void)
{
  smc_sim_config c;
  smc_sim_result *res, *alone;
  setup (&c, 16 * MIB, 13, 2, 0);
  alone = run (&c);
  assert_all_by_multicast (&c, alone);
  c.receivers = 3;
  c.drop_ns[2] = 40 * MS;
  res = run (&c);
  g_assert_cmpint (res->sender_rc, ==, 1);
  g_assert_cmpuint (res->n_nodes, ==, 3);
  for (uint32_t i = 0; i < res->n_nodes; i++)
    g_assert_cmpint (res->nodes[i].outcome, ==, res->nodes[i].node == 102 ? SMC_NODE_DROPPED : SMC_NODE_COMPLETE);
  g_assert_cmpstr (smc_node_outcome_str (SMC_NODE_DROPPED), ==, "dropped");
  g_assert_cmpuint (res->rcv[2].chunks_unicast, >, 0);
  g_assert_cmpuint (res->rcv[2].finished_ns, >, 0);   /* it left when told, it did not hang on */
  g_assert_cmpuint (res->rcv[2].finished_ns, <, 100 * MS);
  for (uint32_t i = 1; i <= c.receivers; i++) {
    g_assert_cmpuint (res->rcv[i].bad_writes, ==, 0);
    g_assert_true (res->rcv[i].complete);
    if (i != 2)
      g_assert_cmpuint (res->rcv[i].chunks_unicast, ==, 0);
  }
  /* the session did not wait for it (a silent one costs the node timeout, 3 s) */
  g_assert_cmpuint (res->end_ns, <=, alone->end_ns + 300 * MS);
  g_free (res);

  /* all of them dropped: the session ends */
  c.drop_ns[1] = c.drop_ns[3] = 40 * MS;
  res = run (&c);
  for (uint32_t i = 0; i < res->n_nodes; i++)
    g_assert_cmpint (res->nodes[i].outcome, ==, SMC_NODE_DROPPED);
  g_assert_cmpuint (res->end_ns, <, 100 * MS);
  g_free ((void *) c.image);
  g_free (res);
  g_free (alone);
}

/* A member of the group holds the session key and can sign anything:
 * DATA packets it alters and signs pass the tag check, and only the
 * manifest's SHA-256 keeps them off the disk. Packets signed with another
 * key are counted as forged. */
typedef struct {
  uint32_t n;
  uint32_t altered, outsider;
} forge_state;

static int
forge (void *user, smc_sim *sim, uint32_t from, uint32_t to, uint8_t *pkt, size_t *len, size_t cap)
{
  forge_state *f = user;
  smc_hdr h;
  smc_data d;
  smc_sdata sd;
  size_t tl = SMC_TAG_LEN;
  (void) cap;
  if (from != 0 || to != 1 || smc_parse_hdr (pkt, *len, &h) < 0)
    return SMC_SIM_DELIVER;
  if (h.type == SMC_PKT_SDATA || h.type == SMC_PKT_REPAIR) {
    if (smc_parse_sdata (pkt, *len, &sd) < 0 || sd.payload_len == 0)
      return SMC_SIM_DELIVER;
    tl = SMC_SHORT_TAG_LEN;
  } else if (h.type != SMC_PKT_DATA || smc_parse_data (pkt, *len, &d) < 0 || d.payload_len == 0) {
    return SMC_SIM_DELIVER;
  }
  if (++f->n % 97 == 0) {
    /* the insider: a changed payload with a valid tag */
    pkt[*len - tl - 1] ^= 0x40;
    smc_sim_sign (sim, pkt, *len);
    f->altered++;
  } else if (f->n % 89 == 0) {
    /* an outsider: a changed payload, the tag left as it was */
    uint8_t copy[9000];
    size_t n = *len < sizeof copy ? *len : sizeof copy;
    memcpy (copy, pkt, n);
    copy[n - tl - 2] ^= 1;
    smc_sim_inject (sim, 0, 1, copy, n, 0);
    f->outsider++;
  }
  return SMC_SIM_DELIVER;
}

static void
test_forged (void)
{
  smc_sim_config c;
  smc_sim_result *res;
  forge_state f = { 0 };
  setup (&c, 8 * MIB, 5, 3, 0);
  c.filter = forge;
  c.user = &f;
  res = run (&c);
  g_test_message ("altered %u, outsider %u; receiver 1: forged %llu, hash failures %llu, unicast %u", f.altered,
                  f.outsider, (unsigned long long) res->rcv[1].st.forged,
                  (unsigned long long) res->rcv[1].st.chunks_hash_fail, res->rcv[1].chunks_unicast);
  g_assert_cmpuint (f.altered, >, 10);
  g_assert_cmpuint (f.outsider, >, 10);
  assert_intact (&c, res);
  /* every outsider packet refused by its tag; the altered ones reached
   * assembly and failed the chunk's hash: those chunks came again */
  g_assert_cmpuint (res->rcv[1].st.forged, ==, f.outsider);
  g_assert_cmpuint (res->rcv[1].st.chunks_hash_fail, >, 0);
  g_assert_cmpuint (res->rcv[2].st.chunks_hash_fail, ==, 0);
  g_assert_cmpuint (res->rcv[2].chunks_unicast, ==, 0);
  g_assert_cmpuint (res->rcv[3].chunks_unicast, ==, 0);
  g_free ((void *) c.image);
  g_free (res);
}

/* A member sending NACKs for everything (need 255 in every block it
 * names): the sender's repair stays bounded by each block's parity and
 * the others finish. */
static int
greedy (void *user, smc_sim *sim, uint32_t from, uint32_t to, uint8_t *pkt, size_t *len, size_t cap)
{
  smc_hdr h;
  (void) user;
  (void) cap;
  if (from != 3 || to != 0 || smc_parse_hdr (pkt, *len, &h) < 0)
    return SMC_SIM_DELIVER;
  if (h.type == SMC_PKT_WNACK) {
    /* entries from byte 18: u32 window, u32 next, u16 need, u16 missing */
    for (size_t off = SMC_HDR_LEN + 10; off + SMC_WNACK_ENTRY_LEN <= *len - SMC_TAG_LEN; off += SMC_WNACK_ENTRY_LEN) {
      pkt[off + 8] = pkt[off + 9] = 0xff;
      pkt[off + 10] = pkt[off + 11] = 0xff;
    }
    smc_sim_sign (sim, pkt, *len);
    return SMC_SIM_DELIVER;
  }
  if (h.type != SMC_PKT_NACK)
    return SMC_SIM_DELIVER;
  /* entries from byte 18: u32 chunk, u8 block, u8 need, u8 pnext, u8 0 */
  for (size_t off = SMC_HDR_LEN + 10; off + 8 <= *len - SMC_TAG_LEN; off += 8)
    pkt[off + 5] = 255;
  smc_sim_sign (sim, pkt, *len);
  return SMC_SIM_DELIVER;
}

static void
test_greedy_nacks (void)
{
  smc_sim_config c;
  smc_sim_result *res;
  setup (&c, 8 * MIB, 6, 4, 20000);
  c.filter = greedy;
  res = run (&c);
  g_test_message ("greedy NACKs: egress %.4f, parity %llu, sources resent %llu", egress (&c, res),
                  (unsigned long long) res->sender.parity_pkts, (unsigned long long) res->sender.source_resent);
  assert_intact (&c, res);
  g_assert_cmpuint (res->rcv[1].chunks_unicast, ==, 0);
  /* its NACKs are held to the parity it has not seen (it could not use
   * more), so at most every block's parity range above its pnext goes out
   * for it (1.256; 1.665 when the sender took need as said, 1.08 with an
   * honest fourth receiver). In window mode a window gets half its size
   * in repair at most (1.57 here; twice the image without the cap) */
  g_assert_cmpfloat (egress (&c, res), <, window_chunks ? 1.6 : 1.35);
  g_free ((void *) c.image);
  g_free (res);
}

/* a jumbo-frame LAN, the sender capped at 10 Gbit/s, every receiver
 * taking intake bytes per second */
static void
setup_slow (smc_sim_config *c, size_t len, uint64_t image_seed, uint32_t receivers, uint32_t loss_ppm,
            uint64_t intake)
{
  setup (c, len, image_seed, receivers, loss_ppm);
  c->mtu = 9000;
  c->rate_bps = 10000000000ull;
  for (uint32_t i = 1; i <= receivers; i++)
    c->intake_Bps[i] = intake;
}

/* the session ended well, no socket overflowed and at most two chunks
 * went to unicast (while the rate came down) */
static void
assert_kept_up (const smc_sim_config *c, const smc_sim_result *res)
{
  uint32_t unicast = 0;
  g_assert_cmpint (res->sender_rc, ==, 0);
  assert_intact (c, res);
  for (uint32_t i = 1; i <= c->receivers; i++) {
    g_assert_cmpuint (res->rcv[i].overflow, ==, 0);
    unicast += res->rcv[i].chunks_unicast;
  }
  g_assert_cmpuint (unicast, <=, 2);
}

/* Every receiver slower than the sender's cap (a slow disk: 300 MB/s
 * against 10 Gbit/s): their queues report it and the sender comes down to
 * what they take before their socket buffers overflow; the image still
 * goes by multicast (at most a chunk or two left for unicast while the
 * rate comes down) */
static void
test_slow_group (void)
{
  smc_sim_config c;
  smc_sim_result *res;
  setup_slow (&c, 128 * MIB, 7, 4, 10000, 300000000);
  c.chunk_size = 4 * MIB;
  res = run (&c);
  g_test_message ("4 receivers at 300 MB/s: egress %.4f, %.3f s, rate at the end %llu Mbit/s", egress (&c, res),
                  res->end_ns / 1e9, (unsigned long long) res->sender.rate_bps / 1000000);
  assert_kept_up (&c, res);
  g_assert_cmpfloat (egress (&c, res), <, 1.05);
  /* at the receivers' pace: 128 MiB at 300 MB/s is 0.45 s */
  g_assert_cmpuint (res->end_ns, <, 600 * MS);
  g_assert_cmpuint (res->sender.rate_bps, <, 3000000000ull);
  g_free ((void *) c.image);
  g_free (res);
}

/* 16 receivers writing to disks that take 60 MB/s, on a 1 Gbit/s LAN at
 * 5 % loss: behind their sockets, they NACK blocks again before the
 * parity already sent for them arrives; the sender counts that parity as
 * in flight and does not send it again */
static void
test_slow_disks (void)
{
  smc_sim_config c;
  smc_sim_result *res;
  setup (&c, 32 * MIB, 8, 16, 50000);
  c.seed = 1;
  for (uint32_t i = 1; i <= c.receivers; i++)
    c.intake_Bps[i] = 60000000;
  res = run (&c);
  g_test_message ("16 receivers at 60 MB/s, 5 %%: egress %.4f, parity %llu, %.3f s", egress (&c, res),
                  (unsigned long long) res->sender.parity_pkts, res->end_ns / 1e9);
  assert_all_by_multicast (&c, res);
  /* as without the slow disks (1.134–1.139); 1.197 when the sender
   * remembered only 4 parity runs per block */
  g_assert_cmpfloat (egress (&c, res), <, 1.165);
  g_free ((void *) c.image);
  g_free (res);
}

/* Four receivers taking 200 MB/s, 4 MiB chunks (a window of 16), a 10
 * Gbit/s cap, 1 % loss: slow start fills their queues before the rate
 * comes down, and then a repair waits behind a queue as long as the
 * window. The window held 16 chunks whatever came: 34 of them went to
 * unicast, just before their repair was read. It now grows to 32 while the
 * queue is a tenth full or more */
static void
test_slow_window (void)
{
  smc_sim_config c;
  smc_sim_result *res;
  setup_slow (&c, 256 * MIB, 10, 4, 10000, 200000000);
  c.chunk_size = 4 * MIB;
  res = run (&c);
  g_test_message ("4 receivers at 200 MB/s, 4 MiB chunks: egress %.4f, %.3f s", egress (&c, res), res->end_ns / 1e9);
  assert_kept_up (&c, res);
  g_free ((void *) c.image);
  g_free (res);
  /* one receiver taking 800 MB/s at 5 %: its queue stays under half full,
   * and with the window grown only past half, 6 chunks went to unicast */
  setup_slow (&c, 512 * MIB, 11, 1, 50000, 800000000);
  c.chunk_size = 4 * MIB;
  res = run (&c);
  assert_all_by_multicast (&c, res);
  g_free ((void *) c.image);
  g_free (res);
}

/* receivers taking 150 MB/s at 5 % loss, a 10 Gbit/s cap: their sockets
 * overflow before their queues' reports bring the rate down.
 * - An overflow cut the rate by 30 % per 50 ms (from 7 Gbit/s): with 16
 *   receivers, 77,000 packets dropped, 843 chunks to unicast, egress 1.81.
 *   It then took the rate under the intake that receiver reports at once.
 * - But not within 50 ms of the cut before (a 30 % backlog cut from 10
 *   Gbit/s): the sockets went on dropping for those 20-40 ms, 1,500
 *   packets each, and egress was 1.31 with 4 receivers, 1.35 with 16.
 *   A socket that drops at a rate far above what it takes now brings the
 *   rate down at once: a few packets each, egress 1.09-1.11. */
static void
test_overflow_intake (void)
{
  static const uint32_t groups[] = { 4, 16 };
  for (size_t g = 0; g < G_N_ELEMENTS (groups); g++) {
    smc_sim_config c;
    smc_sim_result *res;
    uint32_t overflow = 0;
    setup_slow (&c, 128 * MIB, 0, groups[g], 50000, 150000000);
    res = run (&c);
    for (uint32_t i = 1; i <= c.receivers; i++)
      overflow += res->rcv[i].overflow;
    g_test_message ("%u receivers at 150 MB/s, 5 %%: %u packets overflowed, egress %.4f, %.3f s", groups[g],
                    overflow, egress (&c, res), res->end_ns / 1e9);
    assert_all_by_multicast (&c, res);
    g_assert_cmpuint (overflow, <, 20 * c.receivers);
    g_assert_cmpfloat (egress (&c, res), <, 1.13);
    g_free ((void *) c.image);
    g_free (res);
  }
}

/* One receiver whose disk takes 20 MB/s among eight, at 5 % loss and a
 * 10 Gbit/s cap: the group slows down to it, and its 64 MiB socket buffer
 * holds seconds of data. Its repairs wait in that queue; it counted the
 * NACKs it sent meanwhile toward giving up (1.2 s of them) and left 1 to 6
 * chunks to unicast that were on their way (shoal-mcast-sim --size 64
 * --receivers 8 --loss 5 --mtu 9000 --rate 10000 --slow 1:20). */
static void
test_slow_repair (void)
{
  for (uint64_t seed = 0; seed < 2; seed++) {
    smc_sim_config c;
    smc_sim_result *res;
    setup_slow (&c, 64 * MIB, 0, 8, 50000, 0);
    c.seed = seed;
    c.intake_Bps[1] = 20000000;
    res = run (&c);
    g_test_message ("seed %" G_GUINT64_FORMAT ": the slow one finished at %.3f s, %u chunks to unicast, egress %.4f",
                    seed, res->rcv[1].finished_ns / 1e9, res->rcv[1].chunks_unicast, egress (&c, res));
    assert_all_by_multicast (&c, res);
    g_assert_cmpfloat (egress (&c, res), <, 1.12);
    g_free ((void *) c.image);
    g_free (res);
  }
}

/* One receiver whose disk takes 5 MB/s among eight at MTU 1500: its 64 MiB
 * socket buffer holds the whole image, 13 s of it. It asked again every
 * 10 ms for repairs that were in that queue, used up its blocks' parity,
 * and had 6,032 source symbols resent: egress 1.27 instead of 1.13
 * (shoal-mcast-sim --size 64 --receivers 8 --loss 5 --mtu 1500 --rate
 * 10000 --slow 1:5). It now asks again once the answer could have come
 * through its queue. */
static smc_sim_result *
run_with_5mbs_disk (smc_sim_config *c, uint32_t receivers, uint64_t others_intake, uint64_t seed)
{
  /* a 64 MiB image at MTU 1500, 5 % loss, 10 Gbit/s cap; receiver 1 takes
   * 5 MB/s, the others others_intake (0: no limit) */
  setup_slow (c, 64 * MIB, 0, receivers, 50000, others_intake);
  c->mtu = 1500;
  c->seed = seed;
  c->intake_Bps[1] = 5000000;
  return run (c);
}

static void
test_slow_queue (void)
{
  smc_sim_config c;
  smc_sim_result *res = run_with_5mbs_disk (&c, 8, 0, 0);
  g_test_message ("the slow one finished at %.3f s; %" G_GUINT64_FORMAT " source symbols resent, egress %.4f",
                  res->rcv[1].finished_ns / 1e9, res->sender.source_resent, egress (&c, res));
  assert_all_by_multicast (&c, res);
  g_assert_cmpuint (res->sender.source_resent, <, 500);
  g_assert_cmpfloat (egress (&c, res), <, 1.15);
  g_free ((void *) c.image);
  g_free (res);
}

/* One receiver whose disk takes 5 MB/s among receivers taking 150 MB/s, at
 * MTU 1500: its socket drops runs of 40 and 63 packets at 0.05 s, as its
 * queue first fills, and it reads past them 9 s later. The simulation
 * gave receivers the drop count as it was at that moment, where a real
 * one has it with each packet as it was when that packet was queued
 * (SO_RXQ_OVFL): the gaps, seen 9 s later, counted as loss on the wire
 * (407 per mille in one report), and it was evicted as lossy with 30
 * chunks to unicast (shoal-mcast-sim --size 64 --receivers 4 --loss 5
 * --mtu 1500 --rate 10000 --intake 150 --slow 1:5 --seed 1). The model
 * now has both counts, as the receiver does: its loss takes the one its
 * packets carry, its reports to the sender the current one (SO_MEMINFO) */
static void
test_overflow_not_loss (void)
{
  smc_sim_config c;
  smc_sim_result *res = run_with_5mbs_disk (&c, 4, 150000000, 1);
  g_test_message ("the slow one: %u packets overflowed, finished at %.3f s, %u chunks to unicast",
                  res->rcv[1].overflow, res->rcv[1].finished_ns / 1e9, res->rcv[1].chunks_unicast);
  g_assert_cmpuint (res->rcv[1].overflow, >, 0);
  assert_all_by_multicast (&c, res);
  g_free ((void *) c.image);
  g_free (res);
}

/* One receiver whose disk takes 20 MB/s among three that keep up with a
 * 1 Gbit/s LAN. By default the group slows down to it; with a minimum
 * rate (SMC_SLOW_EVICT) the group stays at that rate or above, and the
 * slow one, which cannot take it, is evicted and finishes by unicast */
static void
test_min_rate (void)
{
  smc_sim_config c;
  smc_sim_result *held, *res;
  setup (&c, 128 * MIB, 9, 4, 10000);
  c.intake_Bps[1] = 20000000;
  held = run (&c);
  /* nobody evicted (the slow one may leave a chunk or two to unicast while
   * the rate comes down) */
  g_assert_cmpint (held->sender_rc, ==, 0);
  g_assert_cmpuint (held->rcv[1].chunks_unicast, <=, 2);
  g_assert_cmpuint (held->rcv[2].chunks_unicast, ==, 0);
  /* held to its 20 MB/s, less what its 64 MiB socket buffer lets the
   * others have sooner: 3 s or more for 128 MiB */
  g_assert_cmpuint (held->rcv[2].finished_ns, >, 3000 * MS);
  c.rate_min_bps = 500000000;
  res = run (&c);
  g_test_message ("one receiver at 20 MB/s: the others finish at %.3f s held to it, %.3f s with a 500 Mbit/s minimum "
                  "(it: %u chunks by unicast)", held->rcv[2].finished_ns / 1e9, res->rcv[2].finished_ns / 1e9,
                  res->rcv[1].chunks_unicast);
  g_assert_cmpint (res->sender_rc, ==, 1);
  for (uint32_t i = 0; i < res->n_nodes; i++) {
    g_assert_cmpint (res->nodes[i].outcome, ==, res->nodes[i].node == 101 ? SMC_NODE_EVICTED : SMC_NODE_COMPLETE);
    g_assert_cmpint (res->nodes[i].evict_cause, ==, res->nodes[i].node == 101 ? SMC_EVICT_FLOOR : SMC_EVICT_NONE);
  }
  assert_intact (&c, res);
  for (uint32_t i = 2; i <= c.receivers; i++) {
    g_assert_cmpuint (res->rcv[i].chunks_unicast, ==, 0);
    /* at 500 Mbit/s or more: 128 MiB in 2.2 s at most */
    g_assert_cmpuint (res->rcv[i].finished_ns, <, 2200 * MS);
  }
  g_assert_cmpuint (res->rcv[1].chunks_unicast, >, 64);
  g_assert_cmpuint (res->sender.rate_bps, >=, 500000000);
  g_free ((void *) c.image);
  g_free (held);
  g_free (res);
}

/* a slow disk among fast ones (4 receivers, 1 Gbit/s, 1 % loss): receiver
 * 1 reads what its disk writes, 20 MB/s, and says so; the others' disks
 * take 400 MB/s. */
static void
setup_slow_disk (smc_sim_config *c, uint32_t n_slow)
{
  setup (c, 128 * MIB, 12, 4, 10000);
  c->rcvbuf = 4 * MIB;
  for (uint32_t i = 1; i <= c->receivers; i++) {
    c->drain_Bps[i] = i <= n_slow ? 20000000 : 400000000;
    c->intake_Bps[i] = i <= n_slow ? 20000000 : 0;
  }
}

static void
test_slow_disk (void)
{
  smc_sim_config c;
  smc_sim_result *held, *res;
  /* by default it is evicted once its disk has held the group for 2 s,
   * and the others go on at the cap */
  setup_slow_disk (&c, 1);
  res = run (&c);
  g_assert_cmpint (res->sender_rc, ==, 1);
  g_assert_cmpuint (res->sender.slow_evictions, ==, 1);
  for (uint32_t i = 0; i < res->n_nodes; i++) {
    const smc_node_info *n = &res->nodes[i];
    g_assert_cmpint (n->outcome, ==, n->node == 101 ? SMC_NODE_EVICTED : SMC_NODE_COMPLETE);
    g_assert_cmpint (n->evict_cause, ==, n->node == 101 ? SMC_EVICT_SLOW : SMC_EVICT_NONE);
    if (n->node == 101) {
      /* it wrote 20 MB/s; the group would go at the cap (1 Gbit/s: 119
       * MB/s of image), below the others' 400 */
      g_assert_cmpfloat (n->drain_Bps, <, 21e6);
      g_assert_cmpfloat (n->group_Bps, >, 110e6);
      g_assert_cmpfloat (n->group_Bps, <, 120e6);
      /* not before it had held the group for 2 s */
      g_assert_cmpuint (n->finished_ns - res->sender.data_start_ns, >=, SMC_SLOW_HOLD_MS * MS);
    }
  }
  assert_intact (&c, res);
  /* in window mode it holds more chunks, to be verified with their window */
  g_assert_cmpuint (res->rcv[1].chunks_unicast, >, window_chunks ? 32 : 64);
  for (uint32_t i = 2; i <= c.receivers; i++)
    g_assert_cmpuint (res->rcv[i].chunks_unicast, ==, 0);
  g_free ((void *) c.image);
  /* switched off (slow-disk-percent 0), the group waits for it */
  setup_slow_disk (&c, 1);
  c.slow_ratio_permille = 0;
  held = run (&c);
  g_test_message ("one disk at 20 MB/s among 400: the others finish at %.3f s, %.3f s held to it",
                  res->rcv[2].finished_ns / 1e9, held->rcv[2].finished_ns / 1e9);
  g_assert_cmpint (held->sender_rc, ==, 0);
  g_assert_cmpuint (held->sender.slow_evictions, ==, 0);
  /* 128 MiB at 20 MB/s: 6.7 s; evicted after 2 s (40 MB), the rest at
   * about 115 MB/s: under 3.5 s */
  g_assert_cmpuint (held->rcv[2].finished_ns, >, 6000 * MS);
  g_assert_cmpuint (res->rcv[2].finished_ns, <, 3500 * MS);
  g_free (held);
  g_free (res);
  g_free ((void *) c.image);
  /* two slow disks of four: one is evicted (a quarter of the group at
   * most), the other still holds the group */
  setup_slow_disk (&c, 2);
  res = run (&c);
  g_assert_cmpuint (res->sender.slow_evictions, ==, 1);
  g_assert_cmpuint (res->rcv[3].chunks_unicast, ==, 0);
  g_assert_cmpuint (res->rcv[3].finished_ns, >, 6000 * MS);
  assert_intact (&c, res);
  g_free (res);
  g_free ((void *) c.image);
  /* every disk as slow: a slow group, nobody evicted */
  setup_slow_disk (&c, 4);
  c.image_len = 32 * MIB;
  res = run (&c);
  assert_all_by_multicast (&c, res);
  g_assert_cmpuint (res->sender.slow_evictions, ==, 0);
  g_free (res);
  g_free ((void *) c.image);
}

/* every receiver behind a port slower than the sender's cap: a token
 * bucket per receiver (rate, and a queue of burst bytes) that drops what
 * does not fit, as tbf does in the net test narrow */
typedef struct {
  uint64_t bps, burst;
  uint64_t t[SMC_SIM_MAX_RECEIVERS + 1];
  double tokens[SMC_SIM_MAX_RECEIVERS + 1];
} narrow_ports;

static int
narrow_port (void *user, smc_sim *sim, uint32_t from, uint32_t to, uint8_t *pkt, size_t *len, size_t cap)
{
  narrow_ports *np = user;
  uint64_t now = smc_sim_now (sim);
  double wire = (double) *len + 42;
  (void) pkt;
  (void) cap;
  if (from != 0 || to == 0 || to > SMC_SIM_MAX_RECEIVERS)
    return SMC_SIM_DELIVER;
  np->tokens[to] += (double) (now - np->t[to]) * (double) np->bps / 8e9;
  if (np->tokens[to] > (double) np->burst)
    np->tokens[to] = (double) np->burst;
  np->t[to] = now;
  if (np->tokens[to] < wire)
    return SMC_SIM_DROP;
  np->tokens[to] -= wire;
  return SMC_SIM_DELIVER;
}

/* A congested path: four receivers behind 100 Mbit/s ports, the sender
 * capped at 250. All of them lose much of the first pass at once: the
 * group slows down, and nobody is evicted. In window mode (4-chunk
 * windows here) the repair comes after the first pass, where REPAIR
 * packets carry no sequence number: their loss is measured by their
 * serials. (The receivers once went on reporting the loss of the first
 * pass while only repair came, and the sender, slowing down for it
 * again and again, evicted them: net case narrow, 1 run in 2. Here the
 * repair is short and that did not show; the window cap below did.) */
static void
test_congested_start (void)
{
  smc_sim_config c;
  smc_sim_result *res;
  narrow_ports np = { .bps = 100000000, .burst = 256 * 1024 };
  uint32_t unicast = 0;
  setup (&c, 24 * MIB, 9, 4, 0);
  c.rate_bps = 250000000;
  c.filter = narrow_port;
  c.user = &np;
  if (c.window_chunks)
    c.window_chunks = 4;
  res = run (&c);
  for (uint32_t i = 1; i <= c.receivers; i++)
    unicast += res->rcv[i].chunks_unicast;
  g_test_message ("behind 100 Mbit/s ports: %llu group cuts, rate %llu Mbit/s at the end, %u chunks by unicast, "
                  "egress %.4f, %.3f s", (unsigned long long) res->sender.group_loss_cuts,
                  (unsigned long long) res->sender.rate_bps / 1000000, unicast, egress (&c, res), res->end_ns / 1e9);
  g_assert_cmpint (res->sender_rc, ==, 0);
  assert_intact (&c, res);
  for (uint32_t i = 0; i < res->n_nodes; i++)
    g_assert_cmpint (res->nodes[i].outcome, ==, SMC_NODE_COMPLETE);
  g_assert_cmpuint (res->sender.group_loss_cuts, >, 0);
  /* the first windows, sent too fast, are repaired by multicast too: a
   * window's cap on repair does not count what was sent before the group
   * slowed down (it left the first window of each receiver to unicast, 16
   * chunks in all here) */
  g_assert_cmpuint (unicast, ==, 0);
  /* the rate settles at what the ports carry, not at the floor */
  g_assert_cmpuint (res->sender.rate_bps, >, 50000000);
  g_free ((void *) c.image);
  g_free (res);
}

typedef struct {
  const char *name;
  void (*fn) (void);
} sim_test;

/* a test of /shoal/multicast/sim/ run again with the window code */
static void
in_window_mode (gconstpointer data)
{
  const sim_test *t = data;
  window_chunks = 16;
  t->fn ();
  window_chunks = 0;
}

int
main (int argc, char **argv)
{
  static const sim_test tests[] = {
    { "lossless", test_lossless },
    { "loss", test_loss },
    { "solo-late", test_solo_late },
    { "replay", test_replay },
    { "killed", test_killed },
    { "nobody-joined", test_nobody_joined },
    { "dropped-absent", test_dropped_absent },
    { "dropped-joined", test_dropped_joined },
    { "forged", test_forged },
    { "greedy-nacks", test_greedy_nacks },
    { "slow-group", test_slow_group },
    { "slow-disks", test_slow_disks },
    { "min-rate", test_min_rate },
    { "slow-disk", test_slow_disk },
    { "slow-window", test_slow_window },
    { "overflow-intake", test_overflow_intake },
    { "slow-repair", test_slow_repair },
    { "slow-queue", test_slow_queue },
    { "overflow-not-loss", test_overflow_not_loss },
    { "congested-start", test_congested_start },
  };
  g_test_init (&argc, &argv, NULL);
  for (size_t i = 0; i < G_N_ELEMENTS (tests); i++) {
    g_autofree char *path = g_strdup_printf ("/shoal/multicast/sim/%s", tests[i].name);
    g_test_add_func (path, tests[i].fn);
  }
  /* the same sessions in window mode, but for the one about a receiver
   * left alone asking for source symbols (Reed-Solomon blocks only) */
  for (size_t i = 0; i < G_N_ELEMENTS (tests); i++) {
    g_autofree char *path = g_strdup_printf ("/shoal/multicast/sim-window/%s", tests[i].name);
    if (tests[i].fn != test_solo_late)
      g_test_add_data_func (path, &tests[i], in_window_mode);
  }
  return g_test_run ();
}
