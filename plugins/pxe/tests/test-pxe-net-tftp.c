/* test-pxe-net-tftp.c: the TFTP server against real clients (tftp-hpa,
 * curl, atftp) and a raw client, in network namespaces
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "pxe-netns.h"
#include "shoal-pxe-tftp-packet.h"
#include "shoal-pxe-tftp-server.h"

typedef struct {
  PxeNetns           *ns;
  gchar              *root;
  gchar              *outside;
  ShoalPxeTftpServer *server;
  guint               finished;
  guint               failed;
} Fixture;

static void
write_random (const gchar *path, gsize size)
{
  g_autofree guint8 *buf = g_malloc (size);

  for (gsize i = 0; i < size; i++)
    buf[i] = (guint8) g_random_int ();
  g_assert_true (g_file_set_contents (path, (const gchar *) buf, (gssize) size, NULL));
}

static GBytes *
virtual_file (ShoalPxeTftpServer *server, const gchar *path, const gchar *client, gpointer data)
{
  if (!g_str_equal (path, "boot.ipxe"))
    return NULL;
  return g_bytes_new_take (g_strdup_printf ("#!ipxe\necho hello %s\n", client),
                           strlen ("#!ipxe\necho hello \n") + strlen (client));
}

static void
on_finished (ShoalPxeTftpServer *server, const gchar *client, const gchar *path,
             guint64 bytes, const gchar *error, gpointer user_data)
{
  Fixture *f = user_data;

  f->finished++;
  if (error != NULL)
    f->failed++;
}

static void
make_tree (Fixture *f)
{
  g_autofree gchar *p = NULL;

  f->root = pxe_netns_tmpdir ("shoal-tftp-root");
  f->outside = pxe_netns_tmpdir ("shoal-tftp-outside");
  write_random ((p = g_build_filename (f->root, "small.bin", NULL)), 3000);
  g_free (p);
  write_random ((p = g_build_filename (f->root, "exact.bin", NULL)), 1024);
  g_free (p);
  write_random ((p = g_build_filename (f->root, "big.bin", NULL)), 2 * 1024 * 1024);
  g_free (p);
  write_random ((p = g_build_filename (f->outside, "secret", NULL)), 100);
  g_free (p);
  p = g_build_filename (f->outside, "secret", NULL);
  {
    g_autofree gchar *link = g_build_filename (f->root, "escape", NULL);
    g_autofree gchar *inner = g_build_filename (f->root, "inner", NULL);
    g_autofree gchar *rel = g_build_filename (f->root, "relescape", NULL);
    g_autofree gchar *sub = g_build_filename (f->root, "sub", NULL);
    g_assert_cmpint (symlink (p, link), ==, 0);
    g_assert_cmpint (symlink ("small.bin", inner), ==, 0);
    g_assert_cmpint (symlink ("../../../../../../../../etc/passwd", rel), ==, 0);
    g_assert_cmpint (g_mkdir (sub, 0755), ==, 0);
  }
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autofree gchar *reason = NULL;
  g_autoptr(GError) error = NULL;

  if (!pxe_netns_available (&reason))
    return;
  f->ns = pxe_netns_new ("shoal-tftp", 2, TRUE, &error);
  g_assert_no_error (error);
  make_tree (f);
  f->server = shoal_pxe_tftp_server_new (f->root);
  shoal_pxe_tftp_server_set_interface (f->server, "br0");
  shoal_pxe_tftp_server_set_limits (f->server, 65464, 64, 2000, 3);
  shoal_pxe_tftp_server_set_virtual_func (f->server, virtual_file, NULL, NULL);
  g_signal_connect (f->server, "transfer-finished", G_CALLBACK (on_finished), f);
  g_assert_true (shoal_pxe_tftp_server_start (f->server, NULL, 69, &error));
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->server);
  g_clear_pointer (&f->ns, pxe_netns_free);
  if (f->root != NULL)
    {
      g_autofree gchar *cmd = g_strdup_printf ("rm -rf %s %s", f->root, f->outside);
      (void) g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
    }
  g_free (f->root);
  g_free (f->outside);
}

static gboolean
skip_without (Fixture *f, const gchar *program)
{
  if (f->ns == NULL)
    {
      g_test_skip ("needs root and iproute2 for network namespaces");
      return TRUE;
    }
  if (program != NULL && !pxe_netns_have_program (program))
    {
      g_autofree gchar *msg = g_strdup_printf ("%s is not installed", program);
      g_test_skip (msg);
      return TRUE;
    }
  return FALSE;
}

static void
assert_same_file (Fixture *f, const gchar *name, const gchar *copy)
{
  g_autofree gchar *orig = g_build_filename (f->root, name, NULL);
  g_autofree gchar *a = NULL;
  g_autofree gchar *b = NULL;
  gsize alen, blen;

  g_assert_true (g_file_get_contents (orig, &a, &alen, NULL));
  g_assert_true (g_file_get_contents (copy, &b, &blen, NULL));
  g_assert_cmpmem (a, alen, b, blen);
}

/* transfers end on their worker, then report on the main context */
static guint
transfers_after_settling (Fixture *f)
{
  for (guint i = 0; i < 200 && shoal_pxe_tftp_server_get_n_transfers (f->server) > 0; i++)
    pxe_netns_iterate_until ((gboolean[]) { FALSE }, 10);
  return shoal_pxe_tftp_server_get_n_transfers (f->server);
}

static const gchar *
client (Fixture *f, guint i)
{
  return g_ptr_array_index (f->ns->client_ns, i);
}

static void
test_tftp_hpa (Fixture *f, gconstpointer data)
{
  const gchar *names[] = { "small.bin", "exact.bin", "big.bin", "inner", NULL };
  g_autofree gchar *out = g_build_filename (f->root, "..", "hpa-out", NULL);
  g_autoptr(GError) error = NULL;

  if (skip_without (f, "tftp"))
    return;
  for (guint i = 0; names[i] != NULL; i++)
    {
      const gchar *argv[] = { "tftp", "-m", "binary", PXE_NETNS_SERVER_IP, "-c", "get", names[i], out, NULL };
      g_assert_true (pxe_netns_run (client (f, 0), argv, 30, NULL, &error));
      g_assert_no_error (error);
      assert_same_file (f, g_str_equal (names[i], "inner") ? "small.bin" : names[i], out);
    }
  {
    /* the virtual file hook */
    const gchar *argv[] = { "tftp", "-m", "binary", PXE_NETNS_SERVER_IP, "-c", "get", "boot.ipxe", out, NULL };
    g_autofree gchar *contents = NULL;
    g_assert_true (pxe_netns_run (client (f, 0), argv, 30, NULL, &error));
    g_assert_true (g_file_get_contents (out, &contents, NULL, NULL));
    g_assert_cmpstr (contents, ==, "#!ipxe\necho hello 10.77.0.100\n");
  }
  g_unlink (out);
  g_assert_cmpuint (transfers_after_settling (f), ==, 0);
  g_assert_cmpuint (f->failed, ==, 0);
  g_assert_cmpuint (transfers_after_settling (f), ==, 0);
}

static void
test_curl_blksize (Fixture *f, gconstpointer data)
{
  g_autofree gchar *out = g_build_filename (f->root, "..", "curl-out", NULL);
  const gchar *argv[] = { "curl", "-sS", "--max-time", "30", "--tftp-blksize", "1432", "-o", out,
                          "tftp://" PXE_NETNS_SERVER_IP "/big.bin", NULL };
  g_autoptr(GError) error = NULL;

  if (skip_without (f, "curl"))
    return;
  g_assert_true (pxe_netns_run (client (f, 1), argv, 40, NULL, &error));
  g_assert_no_error (error);
  assert_same_file (f, "big.bin", out);
  g_unlink (out);
}

static void
test_atftp_windowsize (Fixture *f, gconstpointer data)
{
  GSubprocess *procs[8];
  gchar *outs[8];

  if (skip_without (f, "atftp"))
    return;
  /* eight concurrent windowed transfers from two clients */
  for (guint i = 0; i < G_N_ELEMENTS (procs); i++)
    {
      g_autoptr(GError) error = NULL;
      const gchar *argv[] = { "atftp", "--option", "blksize 1432", "--option", "windowsize 16",
                              "--option", "tsize 0", "-g", "-r", "big.bin", "-l", NULL,
                              PXE_NETNS_SERVER_IP, NULL };
      outs[i] = g_strdup_printf ("%s/../atftp-out-%u", f->root, i);
      argv[11] = outs[i];
      procs[i] = pxe_netns_spawn (client (f, i % 2), argv, &error);
      g_assert_no_error (error);
    }
  for (guint i = 0; i < G_N_ELEMENTS (procs); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree gchar *output = NULL;
      gboolean ok = pxe_netns_wait (procs[i], 60, &output, &error);
      g_assert_no_error (error);
      g_assert_true (ok);
      assert_same_file (f, "big.bin", outs[i]);
      g_unlink (outs[i]);
      g_free (outs[i]);
      g_object_unref (procs[i]);
    }
  g_assert_cmpuint (f->failed, ==, 0);
}

/* a UDP socket in client namespace @i, bound to its address */
static gint
raw_socket (Fixture *f, guint i)
{
  g_autofree gchar *path = g_strdup_printf ("/var/run/netns/%s", client (f, i));
  gint ns_fd = open (path, O_RDONLY | O_CLOEXEC);
  gint self_fd = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  gint fd;

  g_assert_cmpint (setns (ns_fd, CLONE_NEWNET), ==, 0);
  fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  g_assert_cmpint (setns (self_fd, CLONE_NEWNET), ==, 0);
  close (ns_fd);
  close (self_fd);
  return fd;
}

static void
raw_send (gint fd, GBytes *packet, guint16 port)
{
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (port) };

  inet_pton (AF_INET, PXE_NETNS_SERVER_IP, &to.sin_addr);
  g_assert_cmpint (sendto (fd, g_bytes_get_data (packet, NULL), g_bytes_get_size (packet), 0,
                           (struct sockaddr *) &to, sizeof to), >, 0);
}

/* the next packet within @timeout_ms (the servers run meanwhile), and
 * the port it came from */
static GBytes *
raw_recv (gint fd, guint timeout_ms, guint16 *port)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  guint8 buf[70000];

  while (g_get_monotonic_time () < end)
    {
      struct sockaddr_in from;
      socklen_t flen = sizeof from;
      gssize len = recvfrom (fd, buf, sizeof buf, 0, (struct sockaddr *) &from, &flen);

      if (len >= 0)
        {
          if (port != NULL)
            *port = ntohs (from.sin_port);
          return g_bytes_new (buf, (gsize) len);
        }
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (500);
    }
  return NULL;
}

static void
expect_error (gint fd, GBytes *request, guint16 code)
{
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(ShoalPxeTftpPacket) packet = NULL;

  raw_send (fd, request, 69);
  reply = raw_recv (fd, 2000, NULL);
  g_assert_nonnull (reply);
  packet = shoal_pxe_tftp_packet_parse (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply), NULL);
  g_assert_nonnull (packet);
  g_assert_cmpuint (packet->opcode, ==, SHOAL_PXE_TFTP_ERROR);
  g_test_message ("error %u: %s", packet->error_code, packet->error_message);
  g_assert_cmpuint (packet->error_code, ==, code);
}

static void
expect_rrq_error (gint fd, const gchar *name, const gchar * const *options, guint16 code)
{
  g_autoptr(GBytes) rrq = shoal_pxe_tftp_build_request (SHOAL_PXE_TFTP_RRQ, name, "octet", options);

  expect_error (fd, rrq, code);
}

static void
test_traversal (Fixture *f, gconstpointer data)
{
  gint fd;

  if (skip_without (f, NULL))
    return;
  fd = raw_socket (f, 0);
  expect_rrq_error (fd, "../secret", NULL, SHOAL_PXE_TFTP_ERR_ACCESS);
  expect_rrq_error (fd, "sub/../../etc/passwd", NULL, SHOAL_PXE_TFTP_ERR_ACCESS);
  expect_rrq_error (fd, "/etc/passwd", NULL, SHOAL_PXE_TFTP_ERR_ACCESS);
  expect_rrq_error (fd, "escape", NULL, SHOAL_PXE_TFTP_ERR_ACCESS);
  expect_rrq_error (fd, "relescape", NULL, SHOAL_PXE_TFTP_ERR_ACCESS);
  expect_rrq_error (fd, "sub", NULL, SHOAL_PXE_TFTP_ERR_ACCESS);
  expect_rrq_error (fd, "missing", NULL, SHOAL_PXE_TFTP_ERR_NOT_FOUND);
  close (fd);
  if (pxe_netns_have_program ("tftp"))
    {
      g_autofree gchar *out = g_build_filename (f->root, "..", "hpa-escape", NULL);
      const gchar *argv[] = { "tftp", "-m", "binary", PXE_NETNS_SERVER_IP, "-c", "get", "../../../../etc/passwd", out, NULL };
      g_autofree gchar *output = NULL;
      (void) pxe_netns_run (client (f, 0), argv, 30, &output, NULL);
      g_test_message ("tftp-hpa: %s", output);
      g_assert_nonnull (strstr (output, "Error code 2"));
      g_unlink (out);
    }
}

static void
test_bad_requests (Fixture *f, gconstpointer data)
{
  const gchar *zero_blksize[] = { "blksize", "0", NULL };
  const gchar *huge_blksize[] = { "blksize", "4294967296000", NULL };
  const gchar *zero_window[] = { "windowsize", "0", NULL };
  const gchar *huge_window[] = { "windowsize", "100000", NULL };
  const gchar *bad_timeout[] = { "timeout", "999", NULL };
  g_autoptr(GBytes) wrq = shoal_pxe_tftp_build_request (SHOAL_PXE_TFTP_WRQ, "x", "octet", NULL);
  g_autoptr(GBytes) mail = shoal_pxe_tftp_build_request (SHOAL_PXE_TFTP_RRQ, "x", "mail", NULL);
  g_autoptr(GBytes) unknown = g_bytes_new ("\0\x09xyz", 5);
  g_autoptr(GBytes) unterminated = g_bytes_new ("\0\x01small.bin", 11);
  g_autoptr(GBytes) ack = shoal_pxe_tftp_build_ack (1);
  gint fd;

  if (skip_without (f, NULL))
    return;
  fd = raw_socket (f, 1);
  expect_error (fd, wrq, SHOAL_PXE_TFTP_ERR_ACCESS);
  expect_error (fd, mail, SHOAL_PXE_TFTP_ERR_ILLEGAL_OP);
  expect_error (fd, unknown, SHOAL_PXE_TFTP_ERR_ILLEGAL_OP);
  expect_error (fd, unterminated, SHOAL_PXE_TFTP_ERR_ILLEGAL_OP);
  expect_error (fd, ack, SHOAL_PXE_TFTP_ERR_ILLEGAL_OP);
  expect_rrq_error (fd, "small.bin", zero_blksize, SHOAL_PXE_TFTP_ERR_OPTION);
  expect_rrq_error (fd, "small.bin", huge_blksize, SHOAL_PXE_TFTP_ERR_OPTION);
  expect_rrq_error (fd, "small.bin", zero_window, SHOAL_PXE_TFTP_ERR_OPTION);
  expect_rrq_error (fd, "small.bin", huge_window, SHOAL_PXE_TFTP_ERR_OPTION);
  expect_rrq_error (fd, "small.bin", bad_timeout, SHOAL_PXE_TFTP_ERR_OPTION);
  close (fd);
  g_assert_cmpuint (transfers_after_settling (f), ==, 0);
  /* and the server still serves */
  test_tftp_hpa (f, data);
}

static guint16
data_block (GBytes *packet)
{
  const guint8 *p = g_bytes_get_data (packet, NULL);

  g_assert_cmpuint (g_bytes_get_size (packet), >=, 4);
  g_assert_cmpuint (p[1], ==, SHOAL_PXE_TFTP_DATA);
  return (guint16) ((p[2] << 8) | p[3]);
}

static void
send_ack (gint fd, guint16 port, guint16 block)
{
  g_autoptr(GBytes) ack = shoal_pxe_tftp_build_ack (block);

  raw_send (fd, ack, port);
}

static void
test_duplicate_ack (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) rrq = shoal_pxe_tftp_build_request (SHOAL_PXE_TFTP_RRQ, "small.bin", "octet", NULL);
  g_autoptr(GByteArray) got = g_byte_array_new ();
  guint16 port = 0;
  guint data_packets = 0;
  GBytes *cur;
  gint fd;

  if (skip_without (f, NULL))
    return;
  fd = raw_socket (f, 0);
  raw_send (fd, rrq, 69);
  /* 3000 bytes = 5 blocks of 512 and one of 440; ACK each block 3 times:
   * the duplicates must not produce a second copy of the next block */
  cur = raw_recv (fd, 1500, &port);
  for (guint16 b = 1; b <= 6; b++)
    {
      GBytes *next;
      g_autoptr(GBytes) extra = NULL;

      g_assert_nonnull (cur);
      g_assert_cmpuint (data_block (cur), ==, b);
      data_packets++;
      g_byte_array_append (got, (const guint8 *) g_bytes_get_data (cur, NULL) + 4,
                           (guint) g_bytes_get_size (cur) - 4);
      for (guint i = 0; i < 3; i++)
        send_ack (fd, port, b);
      if (b == 6)
        break;
      next = raw_recv (fd, 1500, NULL);
      extra = raw_recv (fd, 150, NULL);
      g_assert_null (extra);
      g_bytes_unref (cur);
      cur = next;
    }
  g_bytes_unref (cur);
  g_assert_cmpuint (got->len, ==, 3000);
  g_assert_cmpuint (data_packets, ==, 6);
  g_assert_cmpuint (transfers_after_settling (f), ==, 0);
  g_assert_cmpuint (f->failed, ==, 0);
  close (fd);
}

static void
test_retransmit (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) rrq = shoal_pxe_tftp_build_request (SHOAL_PXE_TFTP_RRQ, "small.bin", "octet",
                                                        (const gchar *[]) { "timeout", "1", NULL });
  guint copies = 0;
  gint fd;

  if (skip_without (f, NULL))
    return;
  shoal_pxe_tftp_server_set_limits (f->server, 65464, 64, 100, 2);
  fd = raw_socket (f, 0);
  raw_send (fd, rrq, 69);
  /* the OACK comes 1 + 2 times, one second apart, then the server gives up */
  for (;;)
    {
      g_autoptr(GBytes) packet = raw_recv (fd, 1600, NULL);
      if (packet == NULL)
        break;
      g_assert_cmpuint (((const guint8 *) g_bytes_get_data (packet, NULL))[1], ==, SHOAL_PXE_TFTP_OACK);
      copies++;
      g_assert_cmpuint (copies, <=, 3);
    }
  g_assert_cmpuint (copies, ==, 3);
  g_assert_cmpuint (transfers_after_settling (f), ==, 0);
  g_assert_cmpuint (f->failed, ==, 1);
  close (fd);
}

static void
test_window_gap (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) rrq = shoal_pxe_tftp_build_request (SHOAL_PXE_TFTP_RRQ, "small.bin", "octet",
                                                        (const gchar *[]) { "windowsize", "4", NULL });
  g_autoptr(GBytes) oack = NULL;
  guint16 port = 0;
  gint fd;

  if (skip_without (f, NULL))
    return;
  fd = raw_socket (f, 0);
  raw_send (fd, rrq, 69);
  oack = raw_recv (fd, 1000, &port);
  g_assert_nonnull (oack);
  send_ack (fd, port, 0);
  for (guint16 b = 1; b <= 4; b++)
    {
      g_autoptr(GBytes) packet = raw_recv (fd, 1000, NULL);
      g_assert_cmpuint (data_block (packet), ==, b);
    }
  /* pretend block 3 was lost: ACK 2, the server resumes at 3 */
  send_ack (fd, port, 2);
  for (guint16 b = 3; b <= 6; b++)
    {
      g_autoptr(GBytes) packet = raw_recv (fd, 1000, NULL);
      g_assert_cmpuint (data_block (packet), ==, b);
    }
  send_ack (fd, port, 6);
  g_assert_cmpuint (transfers_after_settling (f), ==, 0);
  g_assert_cmpuint (f->failed, ==, 0);
  close (fd);
}

/* CPU seconds of this process (the server's worker threads included) */
static gdouble
cpu_seconds (void)
{
  struct rusage ru;

  g_assert_cmpint (getrusage (RUSAGE_SELF, &ru), ==, 0);
  return (gdouble) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (gdouble) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* the client closes its socket after block 1: the retransmission of
 * block 1 (after 200 ms) draws an ICMP port unreachable, which must end
 * the transfer at once instead of leaving an error on the socket that
 * wakes its loop until the next retransmission, ten times over */
static void
test_client_gone (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) rrq = shoal_pxe_tftp_build_request (SHOAL_PXE_TFTP_RRQ, "big.bin", "octet", NULL);
  g_autoptr(GBytes) block1 = NULL;
  gint64 start;
  gdouble cpu_before, cpu_used, elapsed;
  gint fd;

  if (skip_without (f, NULL))
    return;
  shoal_pxe_tftp_server_set_limits (f->server, 65464, 64, 200, 10);
  fd = raw_socket (f, 0);
  raw_send (fd, rrq, 69);
  block1 = raw_recv (fd, 1500, NULL);
  g_assert_nonnull (block1);
  g_assert_cmpuint (data_block (block1), ==, 1);
  close (fd);
  cpu_before = cpu_seconds ();
  start = g_get_monotonic_time ();
  for (guint i = 0; i < 300 && shoal_pxe_tftp_server_get_n_transfers (f->server) > 0; i++)
    pxe_netns_iterate_until ((gboolean[]) { FALSE }, 10);
  elapsed = (gdouble) (g_get_monotonic_time () - start) / 1e6;
  /* a second more, to see nothing keeps burning */
  pxe_netns_iterate_until ((gboolean[]) { FALSE }, 1000);
  cpu_used = cpu_seconds () - cpu_before;
  g_test_message ("transfer ended after %.3f s; %.3f s of CPU in %.3f s",
                  elapsed, cpu_used, elapsed + 1.0);
  g_assert_cmpuint (shoal_pxe_tftp_server_get_n_transfers (f->server), ==, 0);
  g_assert_cmpuint (f->failed, ==, 1);
  /* the first retransmission ends it; the tenth would come after 2.2 s */
  g_assert_cmpfloat (elapsed, <, 1.0);
  g_assert_cmpfloat (cpu_used, <, 0.3);
}

/* the file is truncated between two windows: the next window cannot be
 * read, and the client gets a TFTP error (through a mapping, the server
 * died of SIGBUS) */
static void
test_truncated (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) rrq = shoal_pxe_tftp_build_request (SHOAL_PXE_TFTP_RRQ, "big.bin", "octet",
                                                        (const gchar *[]) { "blksize", "1400",
                                                                            "windowsize", "16", NULL });
  g_autoptr(GBytes) oack = NULL;
  g_autoptr(ShoalPxeTftpPacket) packet = NULL;
  g_autofree gchar *path = g_build_filename (f->root, "big.bin", NULL);
  GBytes *reply = NULL;
  guint16 port = 0;
  gint fd;

  if (skip_without (f, NULL))
    return;
  fd = raw_socket (f, 0);
  raw_send (fd, rrq, 69);
  oack = raw_recv (fd, 1000, &port);
  g_assert_nonnull (oack);
  g_assert_cmpuint (((const guint8 *) g_bytes_get_data (oack, NULL))[1], ==, SHOAL_PXE_TFTP_OACK);
  send_ack (fd, port, 0);
  for (guint16 b = 1; b <= 16; b++)
    {
      g_autoptr(GBytes) block = raw_recv (fd, 1000, NULL);
      g_assert_nonnull (block);
      g_assert_cmpuint (data_block (block), ==, b);
    }
  g_assert_cmpint (truncate (path, 0), ==, 0);
  send_ack (fd, port, 16);
  /* the one packet that follows is an error */
  reply = raw_recv (fd, 1000, NULL);
  g_assert_nonnull (reply);
  packet = shoal_pxe_tftp_packet_parse (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply), NULL);
  g_bytes_unref (reply);
  g_assert_nonnull (packet);
  g_assert_cmpuint (packet->opcode, ==, SHOAL_PXE_TFTP_ERROR);
  g_test_message ("error %u: %s", packet->error_code, packet->error_message);
  g_assert_nonnull (strstr (packet->error_message, "shrank"));
  g_assert_cmpuint (transfers_after_settling (f), ==, 0);
  g_assert_cmpuint (f->failed, ==, 1);
  close (fd);
}

/* one address may run eight transfers at once: a ninth request from it
 * (from a ninth port) gets an error, while another address is served */
static void
test_per_client (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) rrq = shoal_pxe_tftp_build_request (SHOAL_PXE_TFTP_RRQ, "big.bin", "octet", NULL);
  g_autoptr(GBytes) refused = NULL;
  g_autoptr(GBytes) served = NULL;
  g_autoptr(ShoalPxeTftpPacket) packet = NULL;
  gint fds[9];
  gint other;

  if (skip_without (f, NULL))
    return;
  for (guint i = 0; i < G_N_ELEMENTS (fds); i++)
    {
      fds[i] = raw_socket (f, 0);
      raw_send (fds[i], rrq, 69);
      if (i < 8)
        {
          g_autoptr(GBytes) block = raw_recv (fds[i], 1000, NULL);
          g_assert_nonnull (block);
          g_assert_cmpuint (data_block (block), ==, 1);
        }
    }
  refused = raw_recv (fds[8], 1000, NULL);
  g_assert_nonnull (refused);
  packet = shoal_pxe_tftp_packet_parse (g_bytes_get_data (refused, NULL), g_bytes_get_size (refused), NULL);
  g_assert_nonnull (packet);
  g_assert_cmpuint (packet->opcode, ==, SHOAL_PXE_TFTP_ERROR);
  g_assert_cmpuint (packet->error_code, ==, SHOAL_PXE_TFTP_ERR_UNDEFINED);
  g_test_message ("refused: %s", packet->error_message);
  g_assert_cmpuint (shoal_pxe_tftp_server_get_n_transfers (f->server), ==, 8);
  other = raw_socket (f, 1);
  raw_send (other, rrq, 69);
  served = raw_recv (other, 1000, NULL);
  g_assert_nonnull (served);
  g_assert_cmpuint (data_block (served), ==, 1);
  g_assert_cmpuint (shoal_pxe_tftp_server_get_n_transfers (f->server), ==, 9);
  close (other);
  for (guint i = 0; i < G_N_ELEMENTS (fds); i++)
    close (fds[i]);
}

/* a client that asks for the longest timeout (255 s, four times over
 * with the retries here) and never ACKs holds its slot for the first-ACK
 * limit (500 ms here, 30 s by default), not for 17 minutes */
static void
test_first_ack_limit (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) rrq = shoal_pxe_tftp_build_request (SHOAL_PXE_TFTP_RRQ, "small.bin", "octet",
                                                        (const gchar *[]) { "timeout", "255", NULL });
  g_autoptr(GBytes) oack = NULL;
  gint64 start;
  gint fd;

  if (skip_without (f, NULL))
    return;
  shoal_pxe_tftp_server_set_first_ack_limit (f->server, 500);
  fd = raw_socket (f, 0);
  raw_send (fd, rrq, 69);
  start = g_get_monotonic_time ();
  oack = raw_recv (fd, 1000, NULL);
  g_assert_nonnull (oack);
  g_assert_cmpuint (((const guint8 *) g_bytes_get_data (oack, NULL))[1], ==, SHOAL_PXE_TFTP_OACK);
  g_assert_cmpuint (transfers_after_settling (f), ==, 0);
  g_test_message ("the transfer ended after %.3f s", (gdouble) (g_get_monotonic_time () - start) / 1e6);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 2 * G_USEC_PER_SEC);
  g_assert_cmpuint (f->failed, ==, 1);
  close (fd);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add ("/shoal/pxe/net/tftp/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("tftp-hpa", test_tftp_hpa);
  ADD ("curl-blksize", test_curl_blksize);
  ADD ("atftp-windowsize", test_atftp_windowsize);
  ADD ("traversal", test_traversal);
  ADD ("bad-requests", test_bad_requests);
  ADD ("duplicate-ack", test_duplicate_ack);
  ADD ("retransmit", test_retransmit);
  ADD ("window-gap", test_window_gap);
  ADD ("client-gone", test_client_gone);
  ADD ("truncated", test_truncated);
  ADD ("per-client", test_per_client);
  ADD ("first-ack-limit", test_first_ack_limit);
#undef ADD
  return g_test_run ();
}
