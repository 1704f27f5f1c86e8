/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Network tests of the multicast protocol: each case builds its own
 * namespaces + bridge (bench/multicast/topo.sh) and runs the CLI tools
 * through test-mcast-net.sh. Needs root; skipped otherwise. */
#include <glib.h>
#include <unistd.h>

static void
run_case (gconstpointer data)
{
  const gchar *name = data;
  g_autofree gchar *script = g_test_build_filename (G_TEST_DIST, "test-mcast-net.sh", NULL);
  g_autofree gchar *topo = g_test_build_filename (G_TEST_DIST, "..", "..", "..", "bench", "multicast", "topo.sh", NULL);
  g_autofree gchar *send = g_test_build_filename (G_TEST_BUILT, "..", "shoal-mcast-send", NULL);
  g_autofree gchar *recv = g_test_build_filename (G_TEST_BUILT, "..", "shoal-mcast-recv", NULL);
  g_autofree gchar *out = NULL;
  g_autoptr(GError) error = NULL;
  const gchar *argv[] = { script, name, send, recv, topo, NULL };
  gint status = 0;
  if (geteuid () != 0) {
    g_test_skip ("network namespaces need root");
    return;
  }
  g_assert_true (g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                               &out, NULL, &status, &error));
  g_assert_no_error (error);
  g_test_message ("%s", out);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 77) {
    g_test_skip (out);
    return;
  }
  if (!g_spawn_check_wait_status (status, &error))
    g_printerr ("%s\n", out);
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* 4 receivers, 5% loss each: every output bit-exact, FEC repair used */
  g_test_add_data_func ("/shoal/multicast/net/loss-4-receivers", "loss4", run_case);
  /* 1 receiver, 5% loss: repaired by its missing source symbols, not parity */
  g_test_add_data_func ("/shoal/multicast/net/solo-receiver", "solo", run_case);
  /* an image larger than 4 GiB, sparse: chunks past 4 GiB land where they belong */
  g_test_add_data_func ("/shoal/multicast/net/image-over-4-gib", "large", run_case);
  /* packets with the right session but no key: counted, dropped, never written */
  g_test_add_data_func ("/shoal/multicast/net/forged-packets", "forged", run_case);
  /* one receiver killed (reported failed), one killed and restarted (resumes) */
  g_test_add_data_func ("/shoal/multicast/net/receiver-killed", "killed", run_case);
  /* a receiver joining mid-session: rest by multicast, the missed part by unicast */
  g_test_add_data_func ("/shoal/multicast/net/late-joiner", "late", run_case);
  /* a receiver behind a 100 Mbit/s port is evicted to unicast; the others finish */
  g_test_add_data_func ("/shoal/multicast/net/slow-receiver", "slow", run_case);
  /* two sessions (two images, two groups, one port) side by side */
  g_test_add_data_func ("/shoal/multicast/net/two-sessions", "two", run_case);
  /* a receiver draining slower than the sender sends reports its queue; the sender slows down */
  g_test_add_data_func ("/shoal/multicast/net/receiver-backlog", "backlog", run_case);
  /* the same receiver, with a minimum rate it cannot take: evicted to unicast, the other not held */
  g_test_add_data_func ("/shoal/multicast/net/min-rate", "minrate", run_case);
  /* a receiver whose disk writes under half what the other's does: evicted after 2 s, the
   * other not held to it */
  g_test_add_data_func ("/shoal/multicast/net/slow-disk", "slowdisk", run_case);
  /* a receiver whose disk stalls a write for longer than the node timeout keeps reporting */
  g_test_add_data_func ("/shoal/multicast/net/disk-stall", "stall", run_case);
  /* every receiver behind a link slower than the cap: the group slows down, nobody is evicted */
  g_test_add_data_func ("/shoal/multicast/net/congested-path", "narrow", run_case);
  /* 16 receivers losing 5 % each: NACKs are suppressed, not one per receiver and block */
  g_test_add_data_func ("/shoal/multicast/net/nack-suppression", "many", run_case);
  /* loss bursts longer than a block's parity repairs: spread over a group's blocks by the
   * first pass, repaired by parity */
  g_test_add_data_func ("/shoal/multicast/net/burst-loss", "bursts", run_case);
  /* longer than all of them: the receiver asks for the source symbols by index */
  g_test_add_data_func ("/shoal/multicast/net/long-burst-loss", "burst", run_case);
  /* the same, repaired by the window code: fresh repair symbols of the window */
  g_test_add_data_func ("/shoal/multicast/net/long-burst-loss-window", "wburst", run_case);
  /* a burst that takes the end of the first pass and the DRAIN announces after it: the
   * receiver asks for its last blocks when the sender falls silent, and gets them */
  g_test_add_data_func ("/shoal/multicast/net/burst-at-the-end", "tailburst", run_case);
  /* nothing for 0.2 s (a link flap): every lost symbol comes back about once, by multicast */
  g_test_add_data_func ("/shoal/multicast/net/outage", "outage", run_case);
  /* every receiver at once: told from congestion, the sender keeps its rate */
  g_test_add_data_func ("/shoal/multicast/net/outage-all", "outall", run_case);
  /* the same in window mode (0.05 s: a window gets at most half its
   * symbols and 64 in repair) */
  g_test_add_data_func ("/shoal/multicast/net/outage-window", "woutage", run_case);
  g_test_add_data_func ("/shoal/multicast/net/outage-all-window", "woutall", run_case);
  /* jumbo frames on the LAN, not on one receiver's interface: it says so at once and
   * takes the image by unicast */
  g_test_add_data_func ("/shoal/multicast/net/mtu-mismatch", "mtu", run_case);
  /* its interface has them, its switch port not: only short packets reach it; it leaves
   * for unicast as soon as that is clear */
  g_test_add_data_func ("/shoal/multicast/net/path-mtu-mismatch", "pathmtu", run_case);
  /* the sender's interface has a smaller MTU than it is told to use: GSO refused, one
   * packet per send, every chunk still by multicast */
  g_test_add_data_func ("/shoal/multicast/net/gso-refused", "gsofallback", run_case);
  /* 40 receivers on one host's bridge without loss: GSO bursts stay under what the kernel
   * queues, nothing is lost, nothing repaired */
  g_test_add_data_func ("/shoal/multicast/net/bridge-fanout", "fanout", run_case);
  return g_test_run ();
}
