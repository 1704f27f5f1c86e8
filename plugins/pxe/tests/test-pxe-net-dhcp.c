/* test-pxe-net-dhcp.c: the DHCP server against busybox udhcpc (both
 * modes), beside a real dnsmasq (ProxyDHCP), and a raw PXE client
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "pxe-netns.h"
#include "shoal-pxe-dhcp-server.h"
#include "shoal-pxe-net.h"

typedef struct {
  PxeNetns           *ns;
  gchar              *dir;
  ShoalPxeDhcpServer *server;
  GHashTable         *kv;
  guint               replies;
  GSubprocess        *dnsmasq;
} Fixture;

static const ShoalPxeBootConfig boot = { (gchar *) "undionly.kpxe", (gchar *) "ipxe.efi",
                                         (gchar *) "http://10.77.0.1:8080" };

static void
on_replied (ShoalPxeDhcpServer *server, const gchar *mac, const gchar *type,
            const gchar *address, const gchar *file, gpointer user_data)
{
  Fixture *f = user_data;

  g_test_message ("shoal replied %s to %s: %s %s", type, mac, address, file);
  f->replies++;
}

static void
store_lease (const gchar *mac, const gchar *value, gpointer user_data)
{
  Fixture *f = user_data;

  if (value != NULL)
    g_hash_table_replace (f->kv, g_strdup (mac), g_strdup (value));
  else
    g_hash_table_remove (f->kv, mac);
}

static void
start_server (Fixture *f, ShoalPxeDhcpMode mode)
{
  g_autoptr(GError) error = NULL;

  f->server = shoal_pxe_dhcp_server_new (mode);
  shoal_pxe_dhcp_server_set_interface (f->server, "br0");
  shoal_pxe_dhcp_server_set_boot_config (f->server, &boot);
  if (mode == SHOAL_PXE_DHCP_MODE_AUTHORITATIVE)
    {
      ShoalPxeLeasePool *pool = shoal_pxe_lease_pool_new (inet_addr ("10.77.0.150"),
                                                          inet_addr ("10.77.0.160"), 3600);
      shoal_pxe_lease_pool_set_store (pool, store_lease, f);
      shoal_pxe_dhcp_server_set_pool (f->server, pool);
    }
  g_signal_connect (f->server, "replied", G_CALLBACK (on_replied), f);
  g_assert_true (shoal_pxe_dhcp_server_start (f->server, &error));
  g_assert_no_error (error);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autofree gchar *reason = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *script = NULL;
  g_autofree gchar *path = NULL;

  f->kv = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (!pxe_netns_available (&reason) || !pxe_netns_have_program ("busybox"))
    return;
  f->ns = pxe_netns_new ("shoal-dhcp", 2, FALSE, &error);
  g_assert_no_error (error);
  f->dir = pxe_netns_tmpdir ("shoal-dhcp");
  /* udhcpc's script: record what it was given */
  path = g_build_filename (f->dir, "script", NULL);
  script = g_strdup_printf ("#!/bin/sh\n"
                            "[ \"$1\" = bound ] || exit 0\n"
                            "echo \"ip=$ip siaddr=$siaddr boot_file=$boot_file serverid=$serverid\" > %s/lease-$interface\n",
                            f->dir);
  g_assert_true (g_file_set_contents (path, script, -1, NULL));
  g_chmod (path, 0755);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->dnsmasq != NULL)
    {
      g_subprocess_force_exit (f->dnsmasq);
      g_subprocess_wait (f->dnsmasq, NULL, NULL);
      g_clear_object (&f->dnsmasq);
    }
  g_clear_object (&f->server);
  g_clear_pointer (&f->ns, pxe_netns_free);
  if (f->dir != NULL)
    {
      g_autofree gchar *cmd = g_strdup_printf ("rm -rf %s", f->dir);
      (void) g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
    }
  g_free (f->dir);
  g_hash_table_unref (f->kv);
}

static gboolean
skip_without (Fixture *f, const gchar *program)
{
  if (f->ns == NULL)
    {
      g_test_skip ("needs root, iproute2 and busybox");
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

static const gchar *
client (Fixture *f, guint i)
{
  return g_ptr_array_index (f->ns->client_ns, i);
}

/* runs udhcpc once in client @i; returns the "ip=... boot_file=..." line */
static gchar *
udhcpc (Fixture *f, guint i, const gchar * const *extra)
{
  g_autofree gchar *script = g_build_filename (f->dir, "script", NULL);
  g_autofree gchar *lease = g_build_filename (f->dir, "lease-eth0", NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree gchar *output = NULL;
  gchar *result = NULL;

  g_unlink (lease);
  for (const gchar *const *a = (const gchar *[]) { "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
                                                   "-t", "4", "-T", "1", "-A", "1", "-s", NULL };
       *a != NULL; a++)
    g_ptr_array_add (argv, (gpointer) *a);
  g_ptr_array_add (argv, script);
  for (guint k = 0; extra != NULL && extra[k] != NULL; k++)
    g_ptr_array_add (argv, (gpointer) extra[k]);
  g_ptr_array_add (argv, NULL);
  if (!pxe_netns_run (client (f, i), (const gchar * const *) argv->pdata, 30, &output, &error))
    {
      g_test_message ("udhcpc: %s", error->message);
      return NULL;
    }
  g_test_message ("udhcpc: %s", output);
  if (!g_file_get_contents (lease, &result, NULL, NULL))
    return NULL;
  g_test_message ("lease: %s", result);
  return result;
}

static void
test_authoritative_udhcpc (Fixture *f, gconstpointer data)
{
  const gchar *plain[] = { "-V", "e2e-initramfs", "-x", "hostname:e2e-host", NULL };
  const gchar *pxe[] = { "-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000", NULL };
  const gchar *ipxe[] = { "-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000",
                          "-x", "0x4d:69505845", NULL };
  const gchar *uefi[] = { "-V", "PXEClient:Arch:00007:UNDI:003010", "-x", "0x5d:0007", NULL };
  g_autofree gchar *r1 = NULL;
  g_autofree gchar *r2 = NULL;
  g_autofree gchar *r3 = NULL;
  g_autofree gchar *r4 = NULL;

  if (skip_without (f, NULL))
    return;
  start_server (f, SHOAL_PXE_DHCP_MODE_AUTHORITATIVE);
  /* an initramfs's udhcpc: an address, no boot file */
  r1 = udhcpc (f, 0, plain);
  g_assert_nonnull (r1);
  g_assert_true (g_str_has_prefix (r1, "ip=10.77.0.15"));
  g_assert_nonnull (strstr (r1, "boot_file= "));
  g_assert_nonnull (g_hash_table_lookup (f->kv, "52:54:00:77:00:01"));
  /* a BIOS PXE client: the same address again, and the iPXE loader */
  r2 = udhcpc (f, 0, pxe);
  g_assert_nonnull (r2);
  g_assert_cmpstr (r1, !=, r2);
  g_assert_nonnull (strstr (r2, "siaddr=10.77.0.1 boot_file=undionly.kpxe"));
  g_assert_true (g_str_has_prefix (r2, "ip=10.77.0.15"));
  /* iPXE already: the HTTP script of this MAC */
  r3 = udhcpc (f, 1, ipxe);
  g_assert_nonnull (r3);
  g_assert_nonnull (strstr (r3, "boot_file=http://10.77.0.1:8080/boot/ipxe?mac=52:54:00:77:00:02"));
  /* UEFI x64 */
  r4 = udhcpc (f, 1, uefi);
  g_assert_nonnull (strstr (r4, "boot_file=ipxe.efi"));
  g_assert_cmpuint (g_hash_table_size (f->kv), ==, 2);
}

static void
start_dnsmasq (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *leases = g_build_filename (f->dir, "dnsmasq.leases", NULL);
  g_autofree gchar *leasefile = g_strdup_printf ("--dhcp-leasefile=%s", leases);
  const gchar *argv[] = { "dnsmasq", "--keep-in-foreground", "--no-daemon", "--conf-file=/dev/null",
                          "--port=0", "--interface=eth0", "--bind-interfaces", "--no-ping",
                          "--dhcp-range=10.77.0.50,10.77.0.60,255.255.255.0,1h", leasefile,
                          "--pid-file=", "--log-dhcp", NULL };

  g_assert_true (pxe_netns_sh (client (f, 1), "ip addr add 10.77.0.2/24 dev eth0", &error));
  f->dnsmasq = pxe_netns_spawn (client (f, 1), argv, &error);
  g_assert_no_error (error);
  pxe_netns_iterate_until ((gboolean[]) { FALSE }, 500);
}

static void
test_proxy_dnsmasq_udhcpc (Fixture *f, gconstpointer data)
{
  const gchar *plain[] = { "-V", "e2e-initramfs", NULL };
  g_autofree gchar *r = NULL;

  if (skip_without (f, "dnsmasq"))
    return;
  start_dnsmasq (f);
  start_server (f, SHOAL_PXE_DHCP_MODE_PROXY);
  /* a plain client: its address from dnsmasq, not a word from shoal */
  r = udhcpc (f, 0, plain);
  g_assert_nonnull (r);
  g_assert_true (g_str_has_prefix (r, "ip=10.77.0.5"));
  g_assert_nonnull (strstr (r, "serverid=10.77.0.2"));
  g_assert_cmpuint (f->replies, ==, 0);
}

/* a raw DHCP socket on port 68 in client @i */
static gint
raw_socket (Fixture *f, guint i)
{
  g_autofree gchar *path = g_strdup_printf ("/var/run/netns/%s", client (f, i));
  gint ns_fd = open (path, O_RDONLY | O_CLOEXEC);
  gint self_fd = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons (68) };
  gint one = 1;
  gint fd;

  g_assert_cmpint (setns (ns_fd, CLONE_NEWNET), ==, 0);
  fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  g_assert_cmpint (setsockopt (fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one), ==, 0);
  g_assert_cmpint (setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), ==, 0);
  g_assert_cmpint (setsockopt (fd, SOL_SOCKET, SO_BINDTODEVICE, "eth0", 4), ==, 0);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &any, sizeof any), ==, 0);
  g_assert_cmpint (setns (self_fd, CLONE_NEWNET), ==, 0);
  close (ns_fd);
  close (self_fd);
  return fd;
}

static GBytes *
pxe_request (ShoalPxeDhcpType type, gboolean ipxe, guint32 requested, guint32 server_id, guint32 ciaddr)
{
  g_autoptr(ShoalPxeDhcpMessage) msg = shoal_pxe_dhcp_message_new ();
  const guint8 mac[6] = { 0x52, 0x54, 0, 0x77, 0, 0x01 };
  const guint8 arch[2] = { 0, 0 };

  msg->op = 1;
  msg->htype = 1;
  msg->hlen = 6;
  msg->xid = 0x5eed;
  msg->flags = 0x8000;
  msg->ciaddr = ciaddr;
  memcpy (msg->chaddr, mac, 6);
  shoal_pxe_dhcp_message_set_u8 (msg, SHOAL_PXE_OPT_MESSAGE_TYPE, type);
  shoal_pxe_dhcp_message_set_option (msg, SHOAL_PXE_OPT_CLIENT_ARCH, arch, 2);
  shoal_pxe_dhcp_message_set_string (msg, SHOAL_PXE_OPT_VENDOR_CLASS, "PXEClient:Arch:00000:UNDI:002001");
  if (ipxe)
    shoal_pxe_dhcp_message_set_string (msg, SHOAL_PXE_OPT_USER_CLASS, "iPXE");
  if (requested != 0)
    shoal_pxe_dhcp_message_set_u32 (msg, SHOAL_PXE_OPT_REQUESTED_IP, requested);
  if (server_id != 0)
    shoal_pxe_dhcp_message_set_u32 (msg, SHOAL_PXE_OPT_SERVER_ID, server_id);
  return shoal_pxe_dhcp_message_to_bytes (msg, 1472, NULL);
}

static void
raw_send (gint fd, GBytes *packet, const gchar *to, guint16 port)
{
  struct sockaddr_in dest = { .sin_family = AF_INET, .sin_port = htons (port) };

  inet_pton (AF_INET, to, &dest.sin_addr);
  g_assert_cmpint (sendto (fd, g_bytes_get_data (packet, NULL), g_bytes_get_size (packet), 0,
                           (struct sockaddr *) &dest, sizeof dest), >, 0);
}

/* every reply within @timeout_ms, parsed */
static GPtrArray *
raw_collect (gint fd, guint timeout_ms)
{
  GPtrArray *replies = g_ptr_array_new_with_free_func ((GDestroyNotify) shoal_pxe_dhcp_message_free);
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  guint8 buf[2048];

  while (g_get_monotonic_time () < end)
    {
      gssize len = recv (fd, buf, sizeof buf, 0);
      ShoalPxeDhcpMessage *msg;

      if (len < 0)
        {
          if (!g_main_context_iteration (NULL, FALSE))
            g_usleep (1000);
          continue;
        }
      msg = shoal_pxe_dhcp_message_parse (buf, (gsize) len, NULL);
      if (msg != NULL && msg->op == SHOAL_PXE_DHCP_BOOTREPLY && msg->xid == 0x5eed)
        g_ptr_array_add (replies, msg);
      else
        shoal_pxe_dhcp_message_free (msg);
    }
  return replies;
}

static ShoalPxeDhcpMessage *
find_reply (GPtrArray *replies, gboolean with_address)
{
  for (guint i = 0; i < replies->len; i++)
    {
      ShoalPxeDhcpMessage *m = g_ptr_array_index (replies, i);
      if ((m->yiaddr != 0) == with_address)
        return m;
    }
  return NULL;
}

static void
test_proxy_dnsmasq_pxe (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) discover = pxe_request (SHOAL_PXE_DHCP_DISCOVER, TRUE, 0, 0, 0);
  g_autoptr(GPtrArray) offers = NULL;
  g_autoptr(GPtrArray) acks = NULL;
  g_autoptr(GPtrArray) proxy_acks = NULL;
  ShoalPxeDhcpMessage *from_dnsmasq, *from_shoal, *ack;
  g_autofree gchar *addr = NULL;
  g_autofree gchar *file = NULL;
  g_autofree gchar *cmd = NULL;
  gsize len;
  gint fd;

  if (skip_without (f, "dnsmasq"))
    return;
  start_dnsmasq (f);
  start_server (f, SHOAL_PXE_DHCP_MODE_PROXY);
  fd = raw_socket (f, 0);
  /* DISCOVER: an address from dnsmasq, the boot file from shoal */
  raw_send (fd, discover, "255.255.255.255", 67);
  offers = raw_collect (fd, 1500);
  from_dnsmasq = find_reply (offers, TRUE);
  from_shoal = find_reply (offers, FALSE);
  g_assert_nonnull (from_dnsmasq);
  g_assert_nonnull (from_shoal);
  addr = shoal_pxe_net_ip_to_string (from_dnsmasq->yiaddr);
  g_assert_true (g_str_has_prefix (addr, "10.77.0.5"));
  g_assert_cmpstr (from_shoal->file, ==, "http://10.77.0.1:8080/boot/ipxe?mac=52:54:00:77:00:01");
  g_assert_nonnull (shoal_pxe_dhcp_message_get_option (from_shoal, SHOAL_PXE_OPT_IPXE, NULL));
  /* REQUEST to dnsmasq: the lease */
  {
    g_autoptr(GBytes) request = pxe_request (SHOAL_PXE_DHCP_REQUEST, TRUE, from_dnsmasq->yiaddr,
                                             inet_addr ("10.77.0.2"), 0);
    raw_send (fd, request, "255.255.255.255", 67);
    acks = raw_collect (fd, 1000);
    ack = find_reply (acks, TRUE);
    g_assert_nonnull (ack);
    g_assert_cmpint (shoal_pxe_dhcp_message_get_type (ack), ==, SHOAL_PXE_DHCP_ACK);
  }
  /* ProxyDHCP REQUEST to shoal's port 4011 from the new address */
  cmd = g_strdup_printf ("ip addr add %s/24 dev eth0", addr);
  g_assert_true (pxe_netns_sh (client (f, 0), cmd, NULL));
  {
    g_autoptr(GBytes) request = pxe_request (SHOAL_PXE_DHCP_REQUEST, FALSE, 0, 0, from_dnsmasq->yiaddr);
    raw_send (fd, request, PXE_NETNS_SERVER_IP, 4011);
    proxy_acks = raw_collect (fd, 1000);
    g_assert_cmpuint (proxy_acks->len, ==, 1);
    ack = g_ptr_array_index (proxy_acks, 0);
    g_assert_cmpint (shoal_pxe_dhcp_message_get_type (ack), ==, SHOAL_PXE_DHCP_ACK);
    g_assert_cmpuint (ack->yiaddr, ==, 0);
    file = g_strndup ((const gchar *) shoal_pxe_dhcp_message_get_option (ack, SHOAL_PXE_OPT_BOOTFILE, &len), 13);
    g_assert_cmpstr (file, ==, "undionly.kpxe");
  }
  close (fd);
}

static void
test_bad_packets (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) good = pxe_request (SHOAL_PXE_DHCP_DISCOVER, FALSE, 0, 0, 0);
  g_autoptr(GBytes) offer = pxe_request (SHOAL_PXE_DHCP_OFFER, FALSE, 0, 0, 0);
  g_autoptr(GBytes) unknown = pxe_request (99, FALSE, 0, 0, 0);
  g_autoptr(GPtrArray) none = NULL;
  g_autoptr(GPtrArray) replies = NULL;
  const guint8 *d = g_bytes_get_data (good, NULL);
  gsize n = g_bytes_get_size (good);
  g_autofree guint8 *overflow = g_memdup2 (d, n);
  gint fd;

  if (skip_without (f, NULL))
    return;
  start_server (f, SHOAL_PXE_DHCP_MODE_AUTHORITATIVE);
  fd = raw_socket (f, 0);
  /* truncated headers and options, an option running past the end, a
   * server message type, an unknown type, garbage */
  for (gsize cut = 0; cut < 280; cut += 7)
    {
      g_autoptr(GBytes) part = g_bytes_new (d, cut);
      if (cut > 0)
        raw_send (fd, part, "255.255.255.255", 67);
    }
  overflow[243] = 250;
  {
    g_autoptr(GBytes) b = g_bytes_new (overflow, 260);
    raw_send (fd, b, "255.255.255.255", 67);
  }
  raw_send (fd, offer, "255.255.255.255", 67);
  raw_send (fd, unknown, "255.255.255.255", 67);
  none = raw_collect (fd, 500);
  g_assert_cmpuint (none->len, ==, 0);
  /* and it still serves */
  raw_send (fd, good, "255.255.255.255", 67);
  replies = raw_collect (fd, 1000);
  g_assert_cmpuint (replies->len, ==, 1);
  g_assert_cmpstr (((ShoalPxeDhcpMessage *) g_ptr_array_index (replies, 0))->file, ==, "undionly.kpxe");
  close (fd);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add ("/shoal/pxe/net/dhcp/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("authoritative-udhcpc", test_authoritative_udhcpc);
  ADD ("proxy-dnsmasq-udhcpc", test_proxy_dnsmasq_udhcpc);
  ADD ("proxy-dnsmasq-pxe", test_proxy_dnsmasq_pxe);
  ADD ("bad-packets", test_bad_packets);
#undef ADD
  return g_test_run ();
}
