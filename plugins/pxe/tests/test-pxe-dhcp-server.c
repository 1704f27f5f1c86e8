/* test-pxe-dhcp-server.c: DHCP decisions (both modes) and the lease pool,
 * without sockets
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#include "shoal-error.h"
#include "shoal-pxe-clock.h"
#include "shoal-pxe-dhcp-server.h"
#include "shoal-pxe-net.h"

static const ShoalPxeBootConfig boot = { (gchar *) "undionly.kpxe", (gchar *) "ipxe.efi",
                                         (gchar *) "http://10.9.0.1:8080" };

typedef enum { CLIENT_PLAIN, CLIENT_BIOS, CLIENT_UEFI, CLIENT_IPXE, CLIENT_HTTP } Client;

static GBytes *
make_request (Client client, ShoalPxeDhcpType type, guint8 last_mac, guint32 requested, guint32 server_id)
{
  g_autoptr(ShoalPxeDhcpMessage) msg = shoal_pxe_dhcp_message_new ();
  const guint8 mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, last_mac };
  guint8 arch[2] = { 0, client == CLIENT_UEFI ? 7 : (client == CLIENT_HTTP ? 16 : 0) };

  msg->op = 1;
  msg->htype = 1;
  msg->hlen = 6;
  msg->xid = 42;
  memcpy (msg->chaddr, mac, 6);
  shoal_pxe_dhcp_message_set_u8 (msg, SHOAL_PXE_OPT_MESSAGE_TYPE, type);
  if (client != CLIENT_PLAIN)
    shoal_pxe_dhcp_message_set_option (msg, SHOAL_PXE_OPT_CLIENT_ARCH, arch, 2);
  if (client == CLIENT_BIOS || client == CLIENT_UEFI || client == CLIENT_IPXE)
    shoal_pxe_dhcp_message_set_string (msg, SHOAL_PXE_OPT_VENDOR_CLASS, "PXEClient:Arch:00000:UNDI:002001");
  if (client == CLIENT_HTTP)
    shoal_pxe_dhcp_message_set_string (msg, SHOAL_PXE_OPT_VENDOR_CLASS, "HTTPClient:Arch:00016:UNDI:003001");
  if (client == CLIENT_IPXE)
    shoal_pxe_dhcp_message_set_string (msg, SHOAL_PXE_OPT_USER_CLASS, "iPXE");
  if (client == CLIENT_PLAIN)
    shoal_pxe_dhcp_message_set_string (msg, SHOAL_PXE_OPT_VENDOR_CLASS, "e2e-initramfs");
  if (requested != 0)
    shoal_pxe_dhcp_message_set_u32 (msg, SHOAL_PXE_OPT_REQUESTED_IP, requested);
  if (server_id != 0)
    shoal_pxe_dhcp_message_set_u32 (msg, SHOAL_PXE_OPT_SERVER_ID, server_id);
  return shoal_pxe_dhcp_message_to_bytes (msg, 1472, NULL);
}

static ShoalPxeDhcpMessage *
exchange (ShoalPxeDhcpServer *server, GBytes *request, gboolean proxy_port, guint32 *dest)
{
  g_autoptr(GError) error = NULL;
  guint32 d = 0;
  guint16 port = 0;
  g_autoptr(GBytes) reply = shoal_pxe_dhcp_server_handle (server, g_bytes_get_data (request, NULL),
                                                          g_bytes_get_size (request), proxy_port,
                                                          proxy_port ? inet_addr ("10.9.0.77") : 0, 68,
                                                          &d, &port, &error);
  g_assert_no_error (error);
  if (dest != NULL)
    *dest = d;
  if (reply == NULL)
    return NULL;
  return shoal_pxe_dhcp_message_parse (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply), NULL);
}

static gchar *
bootfile (const ShoalPxeDhcpMessage *msg)
{
  gsize len;
  const guint8 *p = shoal_pxe_dhcp_message_get_option (msg, SHOAL_PXE_OPT_BOOTFILE, &len);

  return p != NULL ? g_strndup ((const gchar *) p, len) : NULL;
}

static void
store_lease (const gchar *mac, const gchar *value, gpointer user_data)
{
  GHashTable *kv = user_data;

  if (value != NULL)
    g_hash_table_replace (kv, g_strdup (mac), g_strdup (value));
  else
    g_hash_table_remove (kv, mac);
}

static ShoalPxeDhcpServer *
new_server (ShoalPxeDhcpMode mode, GHashTable *kv)
{
  ShoalPxeDhcpServer *server = shoal_pxe_dhcp_server_new (mode);

  shoal_pxe_dhcp_server_set_address (server, "10.9.0.1");
  shoal_pxe_dhcp_server_set_boot_config (server, &boot);
  shoal_pxe_dhcp_server_set_ports (server, 0, 0, 68);
  if (mode == SHOAL_PXE_DHCP_MODE_AUTHORITATIVE)
    {
      ShoalPxeLeasePool *pool = shoal_pxe_lease_pool_new (inet_addr ("10.9.0.100"), inet_addr ("10.9.0.102"), 600);
      if (kv != NULL)
        {
          GHashTableIter iter;
          gpointer k, v;
          shoal_pxe_lease_pool_set_store (pool, store_lease, kv);
          g_hash_table_iter_init (&iter, kv);
          while (g_hash_table_iter_next (&iter, &k, &v))
            g_assert_true (shoal_pxe_lease_pool_load (pool, k, v));
        }
      shoal_pxe_dhcp_server_set_pool (server, pool);
    }
  /* port 0: the test only calls handle(); start binds real ports */
  return server;
}

static void
assert_boot (ShoalPxeDhcpMessage *reply, const gchar *file, const gchar *vendor)
{
  g_autofree gchar *f = bootfile (reply);
  g_autofree gchar *v = shoal_pxe_dhcp_message_get_vendor_class (reply);

  g_assert_cmpstr (f, ==, file);
  g_assert_cmpstr (v, ==, vendor);
}

static void
test_boot_choice (void)
{
  struct { Client client; const gchar *file; const gchar *vendor; } cases[] = {
    { CLIENT_BIOS, "undionly.kpxe", "PXEClient" },
    { CLIENT_UEFI, "ipxe.efi", "PXEClient" },
    { CLIENT_IPXE, "http://10.9.0.1:8080/boot/ipxe?mac=52:54:00:12:34:02", "PXEClient" },
    { CLIENT_HTTP, "http://10.9.0.1:8080/boot/files/ipxe.efi", "HTTPClient" },
    { CLIENT_PLAIN, NULL, NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(ShoalPxeDhcpServer) server = new_server (SHOAL_PXE_DHCP_MODE_AUTHORITATIVE, NULL);
      g_autoptr(GBytes) req = make_request (cases[i].client, SHOAL_PXE_DHCP_DISCOVER, (guint8) i, 0, 0);
      g_autoptr(ShoalPxeDhcpMessage) reply = exchange (server, req, FALSE, NULL);
      gsize len;
      const guint8 *encap;

      g_assert_nonnull (reply);
      g_assert_cmpint (shoal_pxe_dhcp_message_get_type (reply), ==, SHOAL_PXE_DHCP_OFFER);
      g_assert_cmpuint (reply->yiaddr, !=, 0);
      assert_boot (reply, cases[i].file, cases[i].vendor);
      encap = shoal_pxe_dhcp_message_get_option (reply, SHOAL_PXE_OPT_IPXE, &len);
      if (cases[i].client == CLIENT_IPXE)
        g_assert_cmpmem (encap, len, "\xb0\x01\x01", 3);
      else
        g_assert_null (encap);
    }
}

static void
test_proxy (void)
{
  g_autoptr(ShoalPxeDhcpServer) server = new_server (SHOAL_PXE_DHCP_MODE_PROXY, NULL);
  g_autoptr(GBytes) plain = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_DISCOVER, 1, 0, 0);
  g_autoptr(GBytes) pxe = make_request (CLIENT_BIOS, SHOAL_PXE_DHCP_DISCOVER, 2, 0, 0);
  g_autoptr(GBytes) req67 = make_request (CLIENT_BIOS, SHOAL_PXE_DHCP_REQUEST, 2, inet_addr ("10.9.0.77"), 0);
  g_autoptr(ShoalPxeDhcpMessage) none = exchange (server, plain, FALSE, NULL);
  g_autoptr(ShoalPxeDhcpMessage) offer = exchange (server, pxe, FALSE, NULL);
  g_autoptr(ShoalPxeDhcpMessage) none67 = exchange (server, req67, FALSE, NULL);
  g_autoptr(ShoalPxeDhcpMessage) ack = NULL;
  g_autofree gchar *mac = NULL;
  guint32 dest = 0;

  g_assert_null (none);
  g_assert_null (none67);
  g_assert_nonnull (offer);
  g_assert_cmpint (shoal_pxe_dhcp_message_get_type (offer), ==, SHOAL_PXE_DHCP_OFFER);
  g_assert_cmpuint (offer->yiaddr, ==, 0);
  g_assert_cmpuint (offer->siaddr, ==, inet_addr ("10.9.0.1"));
  g_assert_cmpstr (offer->file, ==, "undionly.kpxe");
  assert_boot (offer, "undionly.kpxe", "PXEClient");
  ack = exchange (server, req67, TRUE, &dest);
  g_assert_nonnull (ack);
  g_assert_cmpint (shoal_pxe_dhcp_message_get_type (ack), ==, SHOAL_PXE_DHCP_ACK);
  g_assert_cmpuint (ack->yiaddr, ==, 0);
  g_assert_cmpuint (dest, ==, inet_addr ("10.9.0.77"));
  assert_boot (ack, "undionly.kpxe", "PXEClient");
  mac = shoal_pxe_dhcp_server_lookup_mac (server, "10.9.0.77");
  g_assert_cmpstr (mac, ==, "52:54:00:12:34:02");
  g_clear_pointer (&mac, g_free);

  /* what was seen on the proxy port is a hint for an hour, no longer */
  shoal_pxe_clock_skip (3590);
  mac = shoal_pxe_dhcp_server_lookup_mac (server, "10.9.0.77");
  g_assert_cmpstr (mac, ==, "52:54:00:12:34:02");
  g_clear_pointer (&mac, g_free);
  shoal_pxe_clock_skip (20);
  mac = shoal_pxe_dhcp_server_lookup_mac (server, "10.9.0.77");
  g_assert_null (mac);
}

static void
test_lease_cycle (void)
{
  g_autoptr(GHashTable) kv = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(ShoalPxeDhcpServer) server = new_server (SHOAL_PXE_DHCP_MODE_AUTHORITATIVE, kv);
  g_autoptr(GBytes) discover = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_DISCOVER, 1, 0, 0);
  g_autoptr(ShoalPxeDhcpMessage) offer = exchange (server, discover, FALSE, NULL);
  g_autoptr(GBytes) request = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_REQUEST, 1, offer->yiaddr, inet_addr ("10.9.0.1"));
  g_autoptr(ShoalPxeDhcpMessage) ack = exchange (server, request, FALSE, NULL);
  g_autoptr(GBytes) other = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_REQUEST, 2, offer->yiaddr, inet_addr ("10.9.0.1"));
  g_autoptr(ShoalPxeDhcpMessage) nak = exchange (server, other, FALSE, NULL);
  g_autoptr(GBytes) foreign = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_REQUEST, 3, inet_addr ("10.9.0.101"), inet_addr ("10.9.0.99"));
  g_autoptr(ShoalPxeDhcpMessage) silent = exchange (server, foreign, FALSE, NULL);
  g_autoptr(ShoalPxeDhcpServer) restarted = NULL;
  g_autoptr(ShoalPxeDhcpMessage) again = NULL;
  guint32 lease;

  g_assert_cmpuint (offer->yiaddr, ==, inet_addr ("10.9.0.100"));
  g_assert_nonnull (ack);
  g_assert_cmpint (shoal_pxe_dhcp_message_get_type (ack), ==, SHOAL_PXE_DHCP_ACK);
  g_assert_true (shoal_pxe_dhcp_message_get_u32 (ack, SHOAL_PXE_OPT_LEASE_TIME, &lease));
  g_assert_cmpuint (ntohl (lease), ==, 600);
  g_assert_null (shoal_pxe_dhcp_message_get_option (ack, SHOAL_PXE_OPT_BOOTFILE, NULL));
  g_assert_cmpint (shoal_pxe_dhcp_message_get_type (nak), ==, SHOAL_PXE_DHCP_NAK);
  g_assert_null (silent);   /* it chose another server */
  g_assert_nonnull (g_hash_table_lookup (kv, "52:54:00:12:34:01"));
  /* a new server with the same store remembers the lease */
  restarted = new_server (SHOAL_PXE_DHCP_MODE_AUTHORITATIVE, kv);
  {
    g_autoptr(GBytes) d2 = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_DISCOVER, 9, 0, 0);
    again = exchange (restarted, d2, FALSE, NULL);
    g_assert_cmpuint (again->yiaddr, ==, inet_addr ("10.9.0.101"));
  }
  {
    g_autoptr(GBytes) release = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_RELEASE, 1, 0, 0);
    g_autoptr(ShoalPxeDhcpMessage) r = exchange (restarted, release, FALSE, NULL);
    g_assert_null (r);
    g_assert_null (g_hash_table_lookup (kv, "52:54:00:12:34:01"));
  }
}

static GBytes *
relayed (GBytes *request)
{
  g_autoptr(ShoalPxeDhcpMessage) msg = shoal_pxe_dhcp_message_parse (g_bytes_get_data (request, NULL),
                                                                     g_bytes_get_size (request), NULL);

  msg->giaddr = inet_addr ("10.9.0.254");
  return shoal_pxe_dhcp_message_to_bytes (msg, 1472, NULL);
}

/* RFC 2131 4.3.2: a NAK through a relay has the broadcast bit set, the
 * client may be on another subnet; an ACK keeps the client's flags */
static void
test_relayed_nak (void)
{
  g_autoptr(ShoalPxeDhcpServer) server = new_server (SHOAL_PXE_DHCP_MODE_AUTHORITATIVE, NULL);
  g_autoptr(GBytes) bad = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_REQUEST, 1, inet_addr ("10.9.0.50"),
                                        inet_addr ("10.9.0.1"));
  g_autoptr(GBytes) bad_relayed = relayed (bad);
  g_autoptr(GBytes) good = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_REQUEST, 2, inet_addr ("10.9.0.101"),
                                         inet_addr ("10.9.0.1"));
  g_autoptr(GBytes) good_relayed = relayed (good);
  g_autoptr(ShoalPxeDhcpMessage) nak = exchange (server, bad_relayed, FALSE, NULL);
  g_autoptr(ShoalPxeDhcpMessage) direct_nak = exchange (server, bad, FALSE, NULL);
  g_autoptr(ShoalPxeDhcpMessage) ack = exchange (server, good_relayed, FALSE, NULL);

  g_assert_cmpint (shoal_pxe_dhcp_message_get_type (nak), ==, SHOAL_PXE_DHCP_NAK);
  g_assert_cmpuint (nak->giaddr, ==, inet_addr ("10.9.0.254"));
  g_assert_cmphex (nak->flags & 0x8000, ==, 0x8000);
  g_assert_cmpint (shoal_pxe_dhcp_message_get_type (direct_nak), ==, SHOAL_PXE_DHCP_NAK);
  g_assert_cmphex (direct_nak->flags & 0x8000, ==, 0);
  g_assert_cmpint (shoal_pxe_dhcp_message_get_type (ack), ==, SHOAL_PXE_DHCP_ACK);
  g_assert_cmphex (ack->flags & 0x8000, ==, 0);
}

static void
test_decline_inform_exhaust (void)
{
  g_autoptr(ShoalPxeDhcpServer) server = new_server (SHOAL_PXE_DHCP_MODE_AUTHORITATIVE, NULL);
  g_autoptr(GBytes) discover = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_DISCOVER, 1, 0, 0);
  g_autoptr(ShoalPxeDhcpMessage) offer = exchange (server, discover, FALSE, NULL);
  g_autoptr(GBytes) decline = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_DECLINE, 1, inet_addr ("10.9.0.100"),
                                            inet_addr ("10.9.0.1"));
  g_autoptr(ShoalPxeDhcpMessage) none = exchange (server, decline, FALSE, NULL);
  g_autoptr(ShoalPxeDhcpMessage) inform_ack = NULL;
  g_autoptr(ShoalPxeDhcpMessage) inform = shoal_pxe_dhcp_message_new ();
  g_autoptr(GBytes) inform_bytes = NULL;

  g_assert_cmpuint (offer->yiaddr, ==, inet_addr ("10.9.0.100"));
  g_assert_null (none);
  /* 10.9.0.100 is declined: the pool offers .101, .102, then runs out */
  for (guint8 i = 10; i < 13; i++)
    {
      g_autoptr(GBytes) d = make_request (CLIENT_BIOS, SHOAL_PXE_DHCP_DISCOVER, i, 0, 0);
      g_autoptr(ShoalPxeDhcpMessage) o = exchange (server, d, FALSE, NULL);
      if (i < 12)
        g_assert_cmpuint (o->yiaddr, ==, inet_addr (i == 10 ? "10.9.0.101" : "10.9.0.102"));
      else
        g_assert_null (o);
    }
  inform->op = 1;
  inform->htype = 1;
  inform->hlen = 6;
  inform->ciaddr = inet_addr ("10.9.0.200");
  shoal_pxe_dhcp_message_set_u8 (inform, SHOAL_PXE_OPT_MESSAGE_TYPE, SHOAL_PXE_DHCP_INFORM);
  inform_bytes = shoal_pxe_dhcp_message_to_bytes (inform, 576, NULL);
  {
    guint32 dest = 0;
    guint32 lease;
    inform_ack = exchange (server, inform_bytes, FALSE, &dest);
    g_assert_cmpint (shoal_pxe_dhcp_message_get_type (inform_ack), ==, SHOAL_PXE_DHCP_ACK);
    g_assert_cmpuint (inform_ack->yiaddr, ==, 0);
    g_assert_false (shoal_pxe_dhcp_message_get_u32 (inform_ack, SHOAL_PXE_OPT_LEASE_TIME, &lease));
    g_assert_cmpuint (dest, ==, inet_addr ("10.9.0.200"));
  }
}

/* a DECLINE counts only with this server's identifier, for the address
 * offered or leased to that client: anything else changes nothing */
static void
test_decline_ignored (void)
{
  g_autoptr(ShoalPxeDhcpServer) server = new_server (SHOAL_PXE_DHCP_MODE_AUTHORITATIVE, NULL);
  g_autoptr(GBytes) discover = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_DISCOVER, 1, 0, 0);
  g_autoptr(ShoalPxeDhcpMessage) offer = exchange (server, discover, FALSE, NULL);
  struct { guint8 mac; const gchar *ip; const gchar *server_id; } cases[] = {
    { 1, "10.9.0.100", NULL },             /* no server identifier */
    { 1, "10.9.0.100", "10.9.0.99" },      /* another server's */
    { 2, "10.9.0.100", "10.9.0.1" },       /* another client's address */
    { 2, "10.9.0.200", "10.9.0.1" },       /* outside the pool */
    { 1, "10.9.0.101", "10.9.0.1" },       /* not the one offered to it */
  };

  g_assert_cmpuint (offer->yiaddr, ==, inet_addr ("10.9.0.100"));
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) d = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_DECLINE, cases[i].mac, inet_addr (cases[i].ip),
                                          cases[i].server_id != NULL ? inet_addr (cases[i].server_id) : 0);
      g_autoptr(ShoalPxeDhcpMessage) r = exchange (server, d, FALSE, NULL);
      g_assert_null (r);
    }
  /* every address is still there: client 1 keeps .100, two more get .101, .102 */
  {
    g_autoptr(GBytes) request = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_REQUEST, 1, inet_addr ("10.9.0.100"),
                                              inet_addr ("10.9.0.1"));
    g_autoptr(ShoalPxeDhcpMessage) ack = exchange (server, request, FALSE, NULL);
    g_assert_cmpint (shoal_pxe_dhcp_message_get_type (ack), ==, SHOAL_PXE_DHCP_ACK);
  }
  for (guint8 i = 2; i < 4; i++)
    {
      g_autoptr(GBytes) d = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_DISCOVER, i, 0, 0);
      g_autoptr(ShoalPxeDhcpMessage) o = exchange (server, d, FALSE, NULL);
      g_assert_nonnull (o);
      g_assert_cmpuint (o->yiaddr, ==, inet_addr (i == 2 ? "10.9.0.101" : "10.9.0.102"));
    }
}

/* the declined table holds only addresses of the pool offered to their
 * decliner: a flood of declines of other addresses adds nothing */
static void
test_decline_table (void)
{
  g_autoptr(ShoalPxeLeasePool) pool = shoal_pxe_lease_pool_new (inet_addr ("10.9.0.100"), inet_addr ("10.9.0.102"), 600);
  g_autoptr(GError) error = NULL;
  guint32 ip;

  for (guint i = 0; i < 10000; i++)
    {
      g_autoptr(GError) ignored = NULL;
      g_autofree gchar *mac = g_strdup_printf ("52:54:00:00:%02x:%02x", i >> 8 & 0xff, i & 0xff);
      g_assert_false (shoal_pxe_lease_pool_decline (pool, mac, htonl (0x0a000000 + i), &ignored));
      g_assert_error (ignored, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
    }
  g_assert_cmpuint (shoal_pxe_lease_pool_get_n_declined (pool), ==, 0);
  ip = shoal_pxe_lease_pool_offer (pool, "52:54:00:00:00:01", 0, &error);
  g_assert_no_error (error);
  g_assert_true (shoal_pxe_lease_pool_decline (pool, "52:54:00:00:00:01", ip, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (shoal_pxe_lease_pool_get_n_declined (pool), ==, 1);
  /* the declined address is skipped */
  g_assert_cmpuint (shoal_pxe_lease_pool_offer (pool, "52:54:00:00:00:01", 0, &error), !=, ip);
  g_assert_no_error (error);

  /* for ten minutes (the others are taken meanwhile), then it is offered
   * again and its entry goes */
  shoal_pxe_clock_skip (590);
  g_assert_cmpuint (shoal_pxe_lease_pool_offer (pool, "52:54:00:00:00:02", 0, &error), !=, ip);
  g_assert_no_error (error);
  g_assert_cmpuint (shoal_pxe_lease_pool_offer (pool, "52:54:00:00:00:03", 0, &error), !=, ip);
  g_assert_no_error (error);
  g_assert_cmpuint (shoal_pxe_lease_pool_offer (pool, "52:54:00:00:00:04", 0, &error), ==, 0);
  g_clear_error (&error);
  g_assert_cmpuint (shoal_pxe_lease_pool_get_n_declined (pool), ==, 1);
  shoal_pxe_clock_skip (20);
  g_assert_cmpuint (shoal_pxe_lease_pool_offer (pool, "52:54:00:00:00:05", 0, &error), ==, ip);
  g_assert_no_error (error);
  g_assert_cmpuint (shoal_pxe_lease_pool_get_n_declined (pool), ==, 0);
}

static void
store_to_table (const gchar *mac, const gchar *value, gpointer user_data)
{
  if (value != NULL)
    g_hash_table_replace (user_data, g_strdup (mac), g_strdup (value));
  else
    g_hash_table_remove (user_data, mac);
}

/* NTP steps the wall clock: +2 h used to expire every lease at once (the
 * addresses offered to other clients: duplicates on the LAN) and -1 day
 * to hold offers and DECLINEs for a day (the pool exhausted). A step
 * changes nothing now; time passing (the monotonic clock) still expires
 * them, and a saved lease is saved and loaded back in wall time */
static void
test_wall_clock_step (void)
{
  g_autoptr(ShoalPxeLeasePool) pool = shoal_pxe_lease_pool_new (inet_addr ("10.9.0.100"), inet_addr ("10.9.0.102"), 600);
  g_autoptr(ShoalPxeLeasePool) reloaded = NULL;
  g_autoptr(GHashTable) saved = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GError) error = NULL;
  const gchar *a = "52:54:00:00:0a:01", *b = "52:54:00:00:0a:02", *c = "52:54:00:00:0a:03";
  guint32 ip_a, ip_b, ip_c;
  gint64 saved_expiry;

  shoal_pxe_lease_pool_set_store (pool, store_to_table, saved);
  ip_a = shoal_pxe_lease_pool_offer (pool, a, 0, &error);
  g_assert_no_error (error);
  g_assert_true (shoal_pxe_lease_pool_commit (pool, a, ip_a, &error));
  g_assert_no_error (error);
  ip_b = shoal_pxe_lease_pool_offer (pool, b, 0, &error);   /* held for a minute */
  g_assert_no_error (error);
  ip_c = shoal_pxe_lease_pool_offer (pool, c, 0, &error);
  g_assert_no_error (error);
  g_assert_true (shoal_pxe_lease_pool_decline (pool, c, ip_c, &error));   /* skipped ten minutes */
  g_assert_no_error (error);

  /* +2 h: A's lease, B's offer and C's DECLINE all hold */
  shoal_pxe_clock_step_wall (2 * 3600);
  g_assert_cmpuint (shoal_pxe_lease_pool_lookup (pool, a), ==, ip_a);
  g_assert_cmpstr (shoal_pxe_lease_pool_lookup_owner (pool, ip_a), ==, a);
  g_assert_cmpuint (shoal_pxe_lease_pool_offer (pool, "52:54:00:00:0a:04", ip_a, &error), ==, 0);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);   /* B's offer and C's decline hold too */
  g_clear_error (&error);
  g_assert_cmpuint (shoal_pxe_lease_pool_get_n_declined (pool), ==, 1);

  /* a lease committed now is saved in the stepped wall time, and a pool
   * that loads it (the wall clock as it was saved) gets what is left */
  g_assert_true (shoal_pxe_lease_pool_commit (pool, a, ip_a, &error));
  g_assert_no_error (error);
  saved_expiry = g_ascii_strtoll (strchr (g_hash_table_lookup (saved, a), ' ') + 1, NULL, 10);
  g_assert_cmpint (saved_expiry - shoal_pxe_clock_real_s (), >=, 599);
  g_assert_cmpint (saved_expiry - shoal_pxe_clock_real_s (), <=, 600);

  /* -1 day (from +2 h): the offer and the DECLINE end after their minute
   * and ten minutes of time passing, not a day later; the lease after
   * its ten */
  shoal_pxe_clock_step_wall (-2 * 3600 - 86400);
  g_assert_cmpuint (shoal_pxe_lease_pool_lookup (pool, a), ==, ip_a);
  shoal_pxe_clock_skip (61);
  g_assert_cmpuint (shoal_pxe_lease_pool_offer (pool, "52:54:00:00:0a:05", ip_b, &error), ==, ip_b);
  g_assert_no_error (error);
  shoal_pxe_clock_skip (540);
  g_assert_cmpuint (shoal_pxe_lease_pool_offer (pool, "52:54:00:00:0a:06", ip_c, &error), ==, ip_c);
  g_assert_no_error (error);
  g_assert_cmpuint (shoal_pxe_lease_pool_get_n_declined (pool), ==, 0);
  g_assert_cmpuint (shoal_pxe_lease_pool_lookup (pool, a), ==, 0);
  g_assert_null (shoal_pxe_lease_pool_lookup_owner (pool, ip_a));

  /* loaded back with the wall clock of its saving: 600 s less the 601
   * that passed, gone; with 601 s given back, it holds for what is left */
  shoal_pxe_clock_step_wall (86400 + 2 * 3600);
  reloaded = shoal_pxe_lease_pool_new (inet_addr ("10.9.0.100"), inet_addr ("10.9.0.102"), 600);
  g_assert_false (shoal_pxe_lease_pool_load (reloaded, a, g_hash_table_lookup (saved, a)));
  shoal_pxe_clock_step_wall (-601 + 300);
  g_assert_true (shoal_pxe_lease_pool_load (reloaded, a, g_hash_table_lookup (saved, a)));
  g_assert_cmpuint (shoal_pxe_lease_pool_lookup (reloaded, a), ==, ip_a);
  shoal_pxe_clock_step_wall (3600);   /* a step after loading changes nothing either */
  g_assert_cmpuint (shoal_pxe_lease_pool_lookup (reloaded, a), ==, ip_a);
  shoal_pxe_clock_skip (299);
  g_assert_cmpuint (shoal_pxe_lease_pool_lookup (reloaded, a), ==, ip_a);
  shoal_pxe_clock_skip (2);
  g_assert_cmpuint (shoal_pxe_lease_pool_lookup (reloaded, a), ==, 0);
  shoal_pxe_clock_step_wall (-2 * 3600 + 601 - 300 - 3600);   /* back to the real wall clock */
}

/* the pool skips the server's address, the router's and the subnet's
 * network and broadcast addresses, even inside its range */
static void
test_reserved (void)
{
  g_autoptr(ShoalPxeDhcpServer) server = new_server (SHOAL_PXE_DHCP_MODE_AUTHORITATIVE, NULL);
  const gchar *expected[] = { "10.9.0.3", "10.9.0.254", NULL };
  guint8 mac = 1;

  shoal_pxe_dhcp_server_set_router (server, "10.9.0.2");
  /* 10.9.0.0 network, .1 server, .2 router, .3 free; .254 free, .255 broadcast */
  shoal_pxe_dhcp_server_set_pool (server, shoal_pxe_lease_pool_new (inet_addr ("10.9.0.0"), inet_addr ("10.9.0.3"), 600));
  for (guint round = 0; round < 2; round++)
    {
      for (guint i = 0; i < 2; i++, mac++)
        {
          g_autoptr(GBytes) d = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_DISCOVER, mac, 0, 0);
          g_autoptr(ShoalPxeDhcpMessage) o = exchange (server, d, FALSE, NULL);
          if (i == 0)
            {
              g_assert_nonnull (o);
              g_assert_cmpuint (o->yiaddr, ==, inet_addr (expected[round]));
            }
          else
            g_assert_null (o);   /* exhausted */
        }
      shoal_pxe_dhcp_server_set_pool (server, shoal_pxe_lease_pool_new (inet_addr ("10.9.0.254"),
                                                                        inet_addr ("10.9.0.255"), 600));
    }
  /* and a client that asks for the server's address is refused */
  {
    g_autoptr(GBytes) request = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_REQUEST, 9, inet_addr ("10.9.0.1"),
                                              inet_addr ("10.9.0.1"));
    g_autoptr(ShoalPxeDhcpMessage) nak = NULL;
    shoal_pxe_dhcp_server_set_pool (server, shoal_pxe_lease_pool_new (inet_addr ("10.9.0.1"), inet_addr ("10.9.0.10"), 600));
    nak = exchange (server, request, FALSE, NULL);
    g_assert_cmpint (shoal_pxe_dhcp_message_get_type (nak), ==, SHOAL_PXE_DHCP_NAK);
  }
}

static void
assert_mac_at (ShoalPxeDhcpServer *server, const gchar *ip, const gchar *expected)
{
  g_autofree gchar *mac = shoal_pxe_dhcp_server_lookup_mac (server, ip);

  g_assert_cmpstr (mac, ==, expected);
}

/* authoritative: the device at an address is the holder of this server's
 * lease on it, never whoever named the address in an INFORM or sent a
 * packet from it */
static void
test_ip_owner (void)
{
  g_autoptr(ShoalPxeDhcpServer) server = new_server (SHOAL_PXE_DHCP_MODE_AUTHORITATIVE, NULL);
  g_autoptr(ShoalPxeDhcpMessage) inform = shoal_pxe_dhcp_message_new ();
  g_autoptr(GBytes) inform_bytes = NULL;
  g_autoptr(GBytes) discover = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_DISCOVER, 1, 0, 0);
  g_autoptr(ShoalPxeDhcpMessage) offer = exchange (server, discover, FALSE, NULL);
  g_autoptr(GBytes) request = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_REQUEST, 1, offer->yiaddr, inet_addr ("10.9.0.1"));
  g_autoptr(ShoalPxeDhcpMessage) ack = NULL;
  g_autoptr(GBytes) proxy = make_request (CLIENT_BIOS, SHOAL_PXE_DHCP_REQUEST, 3, 0, 0);
  g_autoptr(GBytes) release = make_request (CLIENT_PLAIN, SHOAL_PXE_DHCP_RELEASE, 1, 0, 0);
  g_autoptr(ShoalPxeDhcpMessage) none = NULL;
  const guint8 other[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x02 };

  assert_mac_at (server, "10.9.0.100", NULL);   /* offered, not committed */
  ack = exchange (server, request, FALSE, NULL);
  g_assert_cmpint (shoal_pxe_dhcp_message_get_type (ack), ==, SHOAL_PXE_DHCP_ACK);
  assert_mac_at (server, "10.9.0.100", "52:54:00:12:34:01");
  /* another device claims .100 and an address outside the pool */
  inform->op = 1;
  inform->htype = 1;
  inform->hlen = 6;
  memcpy (inform->chaddr, other, 6);
  shoal_pxe_dhcp_message_set_u8 (inform, SHOAL_PXE_OPT_MESSAGE_TYPE, SHOAL_PXE_DHCP_INFORM);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(ShoalPxeDhcpMessage) r = NULL;
      inform->ciaddr = inet_addr (i == 0 ? "10.9.0.100" : "10.9.0.200");
      g_clear_pointer (&inform_bytes, g_bytes_unref);
      inform_bytes = shoal_pxe_dhcp_message_to_bytes (inform, 576, NULL);
      r = exchange (server, inform_bytes, FALSE, NULL);
      g_assert_nonnull (r);
    }
  assert_mac_at (server, "10.9.0.100", "52:54:00:12:34:01");
  assert_mac_at (server, "10.9.0.200", NULL);
  /* a packet to the proxy port from 10.9.0.77 proves nothing either */
  none = exchange (server, proxy, TRUE, NULL);
  g_assert_null (none);
  assert_mac_at (server, "10.9.0.77", NULL);
  g_clear_pointer (&none, shoal_pxe_dhcp_message_free);
  none = exchange (server, release, FALSE, NULL);
  assert_mac_at (server, "10.9.0.100", NULL);
}

/* ProxyDHCP: the addresses seen on the proxy port are remembered, at most
 * 4096 of them, the oldest forgotten first */
static void
test_ip_seen_bounded (void)
{
  g_autoptr(ShoalPxeDhcpServer) server = new_server (SHOAL_PXE_DHCP_MODE_PROXY, NULL);
  g_autoptr(GBytes) request = make_request (CLIENT_BIOS, SHOAL_PXE_DHCP_REQUEST, 2, 0, 0);

  for (guint32 i = 0; i < 5000; i++)
    {
      g_autoptr(GError) error = NULL;
      guint32 dest;
      guint16 port;
      g_autoptr(GBytes) reply = shoal_pxe_dhcp_server_handle (server, g_bytes_get_data (request, NULL),
                                                              g_bytes_get_size (request), TRUE,
                                                              htonl (0x0a400000 + i), 68, &dest, &port, &error);
      g_assert_no_error (error);
      g_assert_nonnull (reply);
    }
  assert_mac_at (server, "10.64.0.0", NULL);
  assert_mac_at (server, "10.64.3.135", NULL);          /* the 904th: forgotten */
  assert_mac_at (server, "10.64.3.136", "52:54:00:12:34:02");
  assert_mac_at (server, "10.64.19.135", "52:54:00:12:34:02");   /* the last */
}

static gboolean
ignore_all (ShoalPxeDhcpServer *server, const ShoalPxeDhcpMessage *request,
            ShoalPxeBootChoice *choice, gpointer user_data)
{
  return FALSE;
}

static void
test_bad_input (void)
{
  g_autoptr(ShoalPxeDhcpServer) server = new_server (SHOAL_PXE_DHCP_MODE_AUTHORITATIVE, NULL);
  g_autoptr(GBytes) ok = make_request (CLIENT_BIOS, SHOAL_PXE_DHCP_DISCOVER, 1, 0, 0);
  g_autoptr(GBytes) offer_type = make_request (CLIENT_BIOS, SHOAL_PXE_DHCP_OFFER, 1, 0, 0);
  g_autoptr(GBytes) unknown = make_request (CLIENT_BIOS, 77, 1, 0, 0);
  guint32 dest;
  guint16 port;
  struct { GBytes *b; gsize len; gint code; } cases[] = {
    { ok, 100, SHOAL_ERROR_INVALID_DATA },       /* truncated */
    { offer_type, 0, SHOAL_ERROR_NOT_SUPPORTED },
    { unknown, 0, SHOAL_ERROR_NOT_SUPPORTED },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      gsize len = cases[i].len ? cases[i].len : g_bytes_get_size (cases[i].b);
      g_autoptr(GBytes) r = shoal_pxe_dhcp_server_handle (server, g_bytes_get_data (cases[i].b, NULL), len,
                                                          FALSE, 0, 0, &dest, &port, &error);
      g_assert_null (r);
      g_assert_error (error, SHOAL_ERROR, cases[i].code);
    }
  /* the policy can ignore a device entirely */
  shoal_pxe_dhcp_server_set_policy (server, ignore_all, NULL, NULL);
  g_assert_null (exchange (server, ok, FALSE, NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/pxe/dhcp-server/boot-choice", test_boot_choice);
  g_test_add_func ("/shoal/pxe/dhcp-server/proxy", test_proxy);
  g_test_add_func ("/shoal/pxe/dhcp-server/lease-cycle", test_lease_cycle);
  g_test_add_func ("/shoal/pxe/dhcp-server/decline-inform-exhaust", test_decline_inform_exhaust);
  g_test_add_func ("/shoal/pxe/dhcp-server/bad-input", test_bad_input);
  g_test_add_func ("/shoal/pxe/dhcp-server/relayed-nak", test_relayed_nak);
  g_test_add_func ("/shoal/pxe/dhcp-server/decline-ignored", test_decline_ignored);
  g_test_add_func ("/shoal/pxe/dhcp-server/decline-table", test_decline_table);
  g_test_add_func ("/shoal/pxe/dhcp-server/wall-clock-step", test_wall_clock_step);
  g_test_add_func ("/shoal/pxe/dhcp-server/reserved", test_reserved);
  g_test_add_func ("/shoal/pxe/dhcp-server/ip-owner", test_ip_owner);
  g_test_add_func ("/shoal/pxe/dhcp-server/ip-seen-bounded", test_ip_seen_bounded);
  return g_test_run ();
}
