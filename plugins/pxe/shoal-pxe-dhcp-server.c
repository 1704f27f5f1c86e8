/* shoal-pxe-dhcp-server.c: ProxyDHCP and authoritative DHCP for network boot
 *
 * ProxyDHCP (PXE spec, beside an existing DHCP server): on port 67 it
 * answers the DISCOVER of PXE clients only, with an offer that carries no
 * address but the boot file; on port 4011 it answers their REQUEST with
 * an ACK carrying the boot file. It never hands out addresses.
 *
 * Authoritative: an address pool (ShoalPxeLeasePool) for an isolated
 * network, with DISCOVER/OFFER, REQUEST/ACK/NAK, DECLINE, RELEASE and
 * INFORM handled; PXE clients get their boot file in the same replies,
 * plain clients get an address only.
 *
 * iPXE clients get 175.176 (no-pxedhcp) = 1 so they do not wait for
 * ProxyDHCP offers that will not come. Every request first goes through
 * the policy function (the plugin asks the controller); it can ignore a
 * device entirely.
 *
 * Signal "replied" (mac, reply type, address or NULL, boot file or NULL).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "shoal-error.h"
#include "shoal-pxe-clock.h"
#include "shoal-pxe-dhcp-server.h"
#include "shoal-pxe-net.h"

/* ProxyDHCP: the addresses seen on the proxy port, for TFTP and HTTP
 * logs; at most this many, each kept for an hour after it was seen */
#define SEEN_MAX 4096
#define SEEN_SECONDS 3600

typedef struct {
  gchar   *mac;
  gint64   when;     /* monotonic seconds */
  guint64  serial;   /* order of arrival */
} Seen;

struct _ShoalPxeDhcpServer
{
  GObject                 parent_instance;
  ShoalPxeDhcpMode        mode;
  gchar                  *interface;
  gchar                  *address_str;
  guint32                 address;      /* network order */
  guint32                 netmask;
  guint32                 router;
  guint32                 dns;
  guint                   ifindex;
  guint16                 server_port;
  guint16                 proxy_port;
  guint16                 client_port;
  ShoalPxeLeasePool      *pool;
  ShoalPxeBootConfig      boot;
  GSocket                *sockets[2];   /* server port, proxy port */
  GSource                *sources[2];
  GHashTable             *seen;   /* ProxyDHCP: ip (network order) -> Seen */
  guint64                 seen_serial;
  ShoalPxeDhcpPolicyFunc  policy;
  gpointer                policy_data;
  GDestroyNotify          policy_destroy;
};

enum { SIGNAL_REPLIED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_TYPE (ShoalPxeDhcpServer, shoal_pxe_dhcp_server, G_TYPE_OBJECT)

static void
boot_config_clear (ShoalPxeBootConfig *boot)
{
  g_clear_pointer (&boot->bios_file, g_free);
  g_clear_pointer (&boot->uefi_file, g_free);
  g_clear_pointer (&boot->http_base, g_free);
}

static void
seen_free (gpointer data)
{
  Seen *seen = data;

  g_free (seen->mac);
  g_free (seen);
}

static void
shoal_pxe_dhcp_server_finalize (GObject *object)
{
  ShoalPxeDhcpServer *self = SHOAL_PXE_DHCP_SERVER (object);

  shoal_pxe_dhcp_server_stop (self);
  if (self->policy_destroy != NULL)
    self->policy_destroy (self->policy_data);
  g_clear_pointer (&self->pool, shoal_pxe_lease_pool_free);
  boot_config_clear (&self->boot);
  g_hash_table_unref (self->seen);
  g_free (self->interface);
  g_free (self->address_str);
  G_OBJECT_CLASS (shoal_pxe_dhcp_server_parent_class)->finalize (object);
}

static void
shoal_pxe_dhcp_server_class_init (ShoalPxeDhcpServerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = shoal_pxe_dhcp_server_finalize;
  signals[SIGNAL_REPLIED] =
    g_signal_new ("replied", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 4, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
}

static void
shoal_pxe_dhcp_server_init (ShoalPxeDhcpServer *self)
{
  self->server_port = 67;
  self->proxy_port = 4011;
  self->client_port = 68;
  self->seen = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, seen_free);
  self->boot.bios_file = g_strdup ("undionly.kpxe");
  self->boot.uefi_file = g_strdup ("ipxe.efi");
  self->boot.http_base = g_strdup ("http://0.0.0.0");
}

ShoalPxeDhcpServer *
shoal_pxe_dhcp_server_new (ShoalPxeDhcpMode mode)
{
  ShoalPxeDhcpServer *self = g_object_new (SHOAL_PXE_TYPE_DHCP_SERVER, NULL);

  self->mode = mode;
  return self;
}

gboolean
shoal_pxe_dhcp_server_parse_mode (const gchar *str, ShoalPxeDhcpMode *mode)
{
  if (g_strcmp0 (str, "proxy") == 0)
    *mode = SHOAL_PXE_DHCP_MODE_PROXY;
  else if (g_strcmp0 (str, "authoritative") == 0)
    *mode = SHOAL_PXE_DHCP_MODE_AUTHORITATIVE;
  else
    return FALSE;
  return TRUE;
}

/* the pool never hands out the server's address, the router's or the
 * DNS server's, nor the subnet's network and broadcast addresses */
static void
update_reserved (ShoalPxeDhcpServer *self)
{
  guint32 reserved[5] = { self->address, self->router, self->dns, 0, 0 };

  if (self->pool == NULL)
    return;
  if (self->address != 0 && ntohl (self->netmask) < 0xfffffffe)
    {
      reserved[3] = self->address & self->netmask;
      reserved[4] = self->address | ~self->netmask;
    }
  shoal_pxe_lease_pool_set_reserved (self->pool, reserved, G_N_ELEMENTS (reserved));
}

void
shoal_pxe_dhcp_server_set_interface (ShoalPxeDhcpServer *self, const gchar *interface)
{
  g_free (self->interface);
  self->interface = g_strdup (interface);
}

void
shoal_pxe_dhcp_server_set_address (ShoalPxeDhcpServer *self, const gchar *address)
{
  g_free (self->address_str);
  self->address_str = g_strdup (address);
  if (!shoal_pxe_net_ip_from_string (address, &self->address))
    self->address = 0;
  if (self->netmask == 0)
    self->netmask = htonl (0xffffff00);
  update_reserved (self);
}

void
shoal_pxe_dhcp_server_set_router (ShoalPxeDhcpServer *self, const gchar *router)
{
  if (!shoal_pxe_net_ip_from_string (router, &self->router))
    self->router = 0;
  update_reserved (self);
}

void
shoal_pxe_dhcp_server_set_dns (ShoalPxeDhcpServer *self, const gchar *dns)
{
  if (!shoal_pxe_net_ip_from_string (dns, &self->dns))
    self->dns = 0;
  update_reserved (self);
}

/* takes @pool */
void
shoal_pxe_dhcp_server_set_pool (ShoalPxeDhcpServer *self, ShoalPxeLeasePool *pool)
{
  g_clear_pointer (&self->pool, shoal_pxe_lease_pool_free);
  self->pool = pool;
  update_reserved (self);
}

void
shoal_pxe_dhcp_server_set_boot_config (ShoalPxeDhcpServer *self, const ShoalPxeBootConfig *config)
{
  boot_config_clear (&self->boot);
  self->boot.bios_file = g_strdup (config->bios_file);
  self->boot.uefi_file = g_strdup (config->uefi_file);
  self->boot.http_base = g_strdup (config->http_base);
}

void
shoal_pxe_dhcp_server_set_ports (ShoalPxeDhcpServer *self, guint16 server_port,
                                 guint16 proxy_port, guint16 client_port)
{
  self->server_port = server_port;
  self->proxy_port = proxy_port;
  self->client_port = client_port;
}

void
shoal_pxe_dhcp_server_set_policy (ShoalPxeDhcpServer    *self,
                                  ShoalPxeDhcpPolicyFunc func,
                                  gpointer               user_data,
                                  GDestroyNotify         destroy)
{
  if (self->policy_destroy != NULL)
    self->policy_destroy (self->policy_data);
  self->policy = func;
  self->policy_data = user_data;
  self->policy_destroy = destroy;
}

const gchar *
shoal_pxe_dhcp_server_get_address (ShoalPxeDhcpServer *self)
{
  return self->address_str;
}

static gint64
now_s (void)
{
  return shoal_pxe_clock_monotonic_s ();
}

/**
 * shoal_pxe_dhcp_server_lookup_mac:
 *
 * The device at @ip, for TFTP and HTTP logs. In authoritative mode, the
 * holder of this server's committed lease on @ip, and nothing else (an
 * INFORM or a packet from some source address proves no ownership). In
 * ProxyDHCP mode another server hands out the addresses: the device
 * whose request came to the proxy port from @ip within the last hour;
 * anyone on the segment could have sent it, so the answer is a hint.
 *
 * Returns: (nullable): its MAC address
 */
gchar *
shoal_pxe_dhcp_server_lookup_mac (ShoalPxeDhcpServer *self, const gchar *ip)
{
  guint32 address;
  Seen *seen;

  if (!shoal_pxe_net_ip_from_string (ip, &address))
    return NULL;
  if (self->mode == SHOAL_PXE_DHCP_MODE_AUTHORITATIVE)
    return self->pool != NULL ? g_strdup (shoal_pxe_lease_pool_lookup_owner (self->pool, address)) : NULL;
  seen = g_hash_table_lookup (self->seen, GUINT_TO_POINTER (address));
  if (seen == NULL || now_s () - seen->when > SEEN_SECONDS)
    return NULL;
  return g_strdup (seen->mac);
}

/* room for one more: the expired entries go, then the oldest */
static void
make_room (ShoalPxeDhcpServer *self)
{
  GHashTableIter iter;
  gpointer key, value;
  gpointer oldest = NULL;
  guint64 oldest_serial = G_MAXUINT64;

  g_hash_table_iter_init (&iter, self->seen);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      Seen *seen = value;
      if (now_s () - seen->when > SEEN_SECONDS)
        g_hash_table_iter_remove (&iter);
      else if (seen->serial < oldest_serial)
        {
          oldest = key;
          oldest_serial = seen->serial;
        }
    }
  if (g_hash_table_size (self->seen) >= SEEN_MAX)
    g_hash_table_remove (self->seen, oldest);
}

static void
remember_ip (ShoalPxeDhcpServer *self, guint32 ip, const gchar *mac)
{
  Seen *seen;

  if (ip == 0 || mac == NULL)
    return;
  if (!g_hash_table_contains (self->seen, GUINT_TO_POINTER (ip)) &&
      g_hash_table_size (self->seen) >= SEEN_MAX)
    make_room (self);
  seen = g_new0 (Seen, 1);
  seen->mac = g_strdup (mac);
  seen->when = now_s ();
  seen->serial = self->seen_serial++;
  g_hash_table_replace (self->seen, GUINT_TO_POINTER (ip), seen);
}

/* the PXE options of a reply to a client that gets a boot file */
static void
add_boot_options (ShoalPxeDhcpServer *self, ShoalPxeDhcpMessage *reply,
                  const ShoalPxeDhcpMessage *request, const ShoalPxeBootChoice *choice)
{
  const guint8 pxe_discovery[] = { 6, 1, 8, 255 };   /* boot from the file name, no menu */
  const guint8 ipxe_no_pxedhcp[] = { SHOAL_PXE_IPXE_NO_PXEDHCP, 1, 1 };
  g_autofree gchar *server = shoal_pxe_net_ip_to_string (self->address);
  gsize uuid_len;
  const guint8 *uuid = shoal_pxe_dhcp_message_get_option (request, SHOAL_PXE_OPT_CLIENT_UUID, &uuid_len);

  reply->siaddr = self->address;
  if (strlen (choice->filename) < sizeof reply->file)
    g_strlcpy (reply->file, choice->filename, sizeof reply->file);
  shoal_pxe_dhcp_message_set_string (reply, SHOAL_PXE_OPT_BOOTFILE, choice->filename);
  shoal_pxe_dhcp_message_set_string (reply, SHOAL_PXE_OPT_VENDOR_CLASS, choice->vendor_class);
  if (choice->kind == SHOAL_PXE_CLIENT_PXE)
    {
      shoal_pxe_dhcp_message_set_string (reply, SHOAL_PXE_OPT_TFTP_SERVER, server);
      shoal_pxe_dhcp_message_set_option (reply, SHOAL_PXE_OPT_VENDOR, pxe_discovery, sizeof pxe_discovery);
    }
  if (choice->kind == SHOAL_PXE_CLIENT_IPXE)
    shoal_pxe_dhcp_message_set_option (reply, SHOAL_PXE_OPT_IPXE, ipxe_no_pxedhcp, sizeof ipxe_no_pxedhcp);
  if (uuid != NULL)
    shoal_pxe_dhcp_message_set_option (reply, SHOAL_PXE_OPT_CLIENT_UUID, uuid, uuid_len);
}

static void
add_network_options (ShoalPxeDhcpServer *self, ShoalPxeDhcpMessage *reply, gboolean with_lease)
{
  shoal_pxe_dhcp_message_set_u32 (reply, SHOAL_PXE_OPT_SUBNET_MASK, self->netmask);
  if (self->router != 0)
    shoal_pxe_dhcp_message_set_u32 (reply, SHOAL_PXE_OPT_ROUTER, self->router);
  if (self->dns != 0)
    shoal_pxe_dhcp_message_set_u32 (reply, SHOAL_PXE_OPT_DNS, self->dns);
  if (with_lease)
    {
      guint lease = shoal_pxe_lease_pool_get_lease_time (self->pool);
      shoal_pxe_dhcp_message_set_u32 (reply, SHOAL_PXE_OPT_LEASE_TIME, htonl (lease));
      shoal_pxe_dhcp_message_set_u32 (reply, SHOAL_PXE_OPT_RENEWAL_TIME, htonl (lease / 2));
      shoal_pxe_dhcp_message_set_u32 (reply, SHOAL_PXE_OPT_REBINDING_TIME, htonl (lease / 8 * 7));
    }
}

static ShoalPxeDhcpMessage *
new_reply (ShoalPxeDhcpServer *self, const ShoalPxeDhcpMessage *request, ShoalPxeDhcpType type)
{
  ShoalPxeDhcpMessage *reply = shoal_pxe_dhcp_message_new_reply (request, type);

  shoal_pxe_dhcp_message_set_u32 (reply, SHOAL_PXE_OPT_SERVER_ID, self->address);
  return reply;
}

static ShoalPxeDhcpMessage *
proxy_reply (ShoalPxeDhcpServer *self, const ShoalPxeDhcpMessage *request,
             const ShoalPxeBootChoice *choice, gboolean proxy_port)
{
  ShoalPxeDhcpType type = shoal_pxe_dhcp_message_get_type (request);
  ShoalPxeDhcpMessage *reply;

  if (choice->filename == NULL)
    return NULL;
  if (!proxy_port && type == SHOAL_PXE_DHCP_DISCOVER)
    reply = new_reply (self, request, SHOAL_PXE_DHCP_OFFER);
  else if (proxy_port && (type == SHOAL_PXE_DHCP_REQUEST || type == SHOAL_PXE_DHCP_INFORM))
    reply = new_reply (self, request, SHOAL_PXE_DHCP_ACK);
  else
    return NULL;   /* the real DHCP server handles the rest */
  add_boot_options (self, reply, request, choice);
  return reply;
}

static ShoalPxeDhcpMessage *
auth_offer (ShoalPxeDhcpServer *self, const ShoalPxeDhcpMessage *request, const gchar *mac,
            const ShoalPxeBootChoice *choice)
{
  g_autoptr(GError) error = NULL;
  guint32 requested = 0;
  guint32 ip;
  ShoalPxeDhcpMessage *reply;

  (void) shoal_pxe_dhcp_message_get_u32 (request, SHOAL_PXE_OPT_REQUESTED_IP, &requested);
  ip = shoal_pxe_lease_pool_offer (self->pool, mac, requested, &error);
  if (ip == 0)
    {
      g_message ("no address for %s: %s", mac, error->message);
      return NULL;
    }
  reply = new_reply (self, request, SHOAL_PXE_DHCP_OFFER);
  reply->yiaddr = ip;
  add_network_options (self, reply, TRUE);
  if (choice->filename != NULL)
    add_boot_options (self, reply, request, choice);
  return reply;
}

static ShoalPxeDhcpMessage *
auth_nak (ShoalPxeDhcpServer *self, const ShoalPxeDhcpMessage *request, const gchar *why)
{
  ShoalPxeDhcpMessage *reply = new_reply (self, request, SHOAL_PXE_DHCP_NAK);

  shoal_pxe_dhcp_message_set_string (reply, SHOAL_PXE_OPT_MESSAGE, why);
  /* RFC 2131 4.3.2: the relay must broadcast a NAK, the client may have
   * moved to another subnet */
  if (request->giaddr != 0)
    reply->flags |= 0x8000;
  return reply;
}

static ShoalPxeDhcpMessage *
auth_request (ShoalPxeDhcpServer *self, const ShoalPxeDhcpMessage *request, const gchar *mac,
              const ShoalPxeBootChoice *choice)
{
  g_autoptr(GError) error = NULL;
  guint32 server_id = 0;
  guint32 requested = 0;
  ShoalPxeDhcpMessage *reply;

  if (shoal_pxe_dhcp_message_get_u32 (request, SHOAL_PXE_OPT_SERVER_ID, &server_id) &&
      server_id != self->address)
    return NULL;   /* the client chose another server */
  if (!shoal_pxe_dhcp_message_get_u32 (request, SHOAL_PXE_OPT_REQUESTED_IP, &requested))
    requested = request->ciaddr;
  if (requested == 0)
    return auth_nak (self, request, "no address requested");
  if (!shoal_pxe_lease_pool_commit (self->pool, mac, requested, &error))
    return auth_nak (self, request, error->message);
  reply = new_reply (self, request, SHOAL_PXE_DHCP_ACK);
  reply->yiaddr = requested;
  reply->ciaddr = request->ciaddr;
  add_network_options (self, reply, TRUE);
  if (choice->filename != NULL)
    add_boot_options (self, reply, request, choice);
  return reply;
}

static ShoalPxeDhcpMessage *
auth_inform (ShoalPxeDhcpServer *self, const ShoalPxeDhcpMessage *request, const gchar *mac,
             const ShoalPxeBootChoice *choice)
{
  ShoalPxeDhcpMessage *reply = new_reply (self, request, SHOAL_PXE_DHCP_ACK);

  reply->ciaddr = request->ciaddr;
  add_network_options (self, reply, FALSE);
  if (choice->filename != NULL)
    add_boot_options (self, reply, request, choice);
  return reply;
}

/* RFC 2131 table 5: a DECLINE carries the server identifier of the
 * server whose offer it declines; one for another server, or without
 * one, is not ours to act on */
static void
auth_decline (ShoalPxeDhcpServer *self, const ShoalPxeDhcpMessage *request, const gchar *mac)
{
  g_autoptr(GError) error = NULL;
  guint32 server_id = 0;
  guint32 declined = 0;

  if (!shoal_pxe_dhcp_message_get_u32 (request, SHOAL_PXE_OPT_SERVER_ID, &server_id) ||
      server_id != self->address)
    {
      g_debug ("DHCP DECLINE from %s ignored: not for this server", mac);
      return;
    }
  if (!shoal_pxe_dhcp_message_get_u32 (request, SHOAL_PXE_OPT_REQUESTED_IP, &declined))
    {
      g_debug ("DHCP DECLINE from %s ignored: no address", mac);
      return;
    }
  if (!shoal_pxe_lease_pool_decline (self->pool, mac, declined, &error))
    g_debug ("DHCP DECLINE from %s ignored: %s", mac, error->message);
}

static ShoalPxeDhcpMessage *
auth_reply (ShoalPxeDhcpServer *self, const ShoalPxeDhcpMessage *request, const gchar *mac,
            const ShoalPxeBootChoice *choice)
{
  switch (shoal_pxe_dhcp_message_get_type (request))
    {
    case SHOAL_PXE_DHCP_DISCOVER:
      return auth_offer (self, request, mac, choice);
    case SHOAL_PXE_DHCP_REQUEST:
      return auth_request (self, request, mac, choice);
    case SHOAL_PXE_DHCP_INFORM:
      return auth_inform (self, request, mac, choice);
    case SHOAL_PXE_DHCP_DECLINE:
      auth_decline (self, request, mac);
      return NULL;
    case SHOAL_PXE_DHCP_RELEASE:
      shoal_pxe_lease_pool_release (self->pool, mac);
      return NULL;
    default:
      return NULL;
    }
}

static void
destination (ShoalPxeDhcpServer *self, const ShoalPxeDhcpMessage *request,
             const ShoalPxeDhcpMessage *reply, gboolean proxy_port,
             guint32 src_addr, guint16 src_port, guint32 *dest, guint16 *dest_port)
{
  *dest = htonl (INADDR_BROADCAST);
  *dest_port = self->client_port;
  if (proxy_port && src_addr != 0)
    {
      *dest = src_addr;
      *dest_port = src_port;
    }
  else if (request->giaddr != 0)
    {
      *dest = request->giaddr;
      *dest_port = self->server_port;
    }
  else if (request->ciaddr != 0 && shoal_pxe_dhcp_message_get_type (reply) != SHOAL_PXE_DHCP_NAK)
    *dest = request->ciaddr;
}

static gboolean
check_request (const ShoalPxeDhcpMessage *msg, GError **error)
{
  ShoalPxeDhcpType type = shoal_pxe_dhcp_message_get_type (msg);

  if (msg->op != SHOAL_PXE_DHCP_BOOTREQUEST)
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA, "not a BOOTREQUEST");
      return FALSE;
    }
  if (type != SHOAL_PXE_DHCP_DISCOVER && type != SHOAL_PXE_DHCP_REQUEST &&
      type != SHOAL_PXE_DHCP_DECLINE && type != SHOAL_PXE_DHCP_RELEASE &&
      type != SHOAL_PXE_DHCP_INFORM)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_SUPPORTED,
                   "DHCP message type %u (%s) is not one a client sends", type,
                   shoal_pxe_dhcp_type_to_string (type));
      return FALSE;
    }
  if (msg->htype != 1 || msg->hlen != 6)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_SUPPORTED,
                   "hardware type %u length %u is not Ethernet", msg->htype, msg->hlen);
      return FALSE;
    }
  return TRUE;
}

static void
emit_replied (ShoalPxeDhcpServer *self, const gchar *mac, const ShoalPxeDhcpMessage *reply)
{
  g_autofree gchar *yiaddr = reply->yiaddr != 0 ? shoal_pxe_net_ip_to_string (reply->yiaddr) : NULL;
  gsize len = 0;
  const guint8 *file = shoal_pxe_dhcp_message_get_option (reply, SHOAL_PXE_OPT_BOOTFILE, &len);
  g_autofree gchar *filename = file != NULL ? g_strndup ((const gchar *) file, len) : NULL;

  g_signal_emit (self, signals[SIGNAL_REPLIED], 0, mac,
                 shoal_pxe_dhcp_type_to_string (shoal_pxe_dhcp_message_get_type (reply)),
                 yiaddr, filename);
}

/**
 * shoal_pxe_dhcp_server_handle:
 * @proxy_port: whether @data came to the ProxyDHCP port (4011)
 * @dest: (out): where the reply goes (network order)
 *
 * Handles one request. Malformed messages, replies and unknown types are
 * errors; a request that gets no answer (policy, mode) returns %NULL
 * without an error.
 */
GBytes *
shoal_pxe_dhcp_server_handle (ShoalPxeDhcpServer *self, const guint8 *data, gsize len,
                              gboolean proxy_port, guint32 src_addr, guint16 src_port,
                              guint32 *dest, guint16 *dest_port, GError **error)
{
  g_autoptr(ShoalPxeDhcpMessage) msg = shoal_pxe_dhcp_message_parse (data, len, error);
  g_autoptr(ShoalPxeDhcpMessage) reply = NULL;
  g_autofree gchar *mac = NULL;
  ShoalPxeBootChoice choice = { 0, };
  GBytes *bytes;

  if (msg == NULL || !check_request (msg, error))
    return NULL;
  mac = shoal_pxe_dhcp_message_get_mac (msg);
  (void) shoal_pxe_boot_choose (msg, &self->boot, &choice);
  if (self->policy != NULL && !self->policy (self, msg, &choice, self->policy_data))
    {
      shoal_pxe_boot_choice_clear (&choice);
      return NULL;
    }
  if (self->mode == SHOAL_PXE_DHCP_MODE_PROXY && proxy_port)
    remember_ip (self, src_addr, mac);
  if (self->mode == SHOAL_PXE_DHCP_MODE_PROXY)
    reply = proxy_reply (self, msg, &choice, proxy_port);
  else if (!proxy_port)
    reply = auth_reply (self, msg, mac, &choice);
  shoal_pxe_boot_choice_clear (&choice);
  if (reply == NULL)
    return NULL;
  destination (self, msg, reply, proxy_port, src_addr, src_port, dest, dest_port);
  bytes = shoal_pxe_dhcp_message_to_bytes (reply, shoal_pxe_dhcp_message_get_max_size (msg), error);
  if (bytes != NULL)
    emit_replied (self, mac, reply);
  return bytes;
}

/* one datagram, with the interface it came in on (IP_PKTINFO) */
static gssize
receive (GSocket *sock, guint8 *buf, gsize size, struct sockaddr_in *from, guint *ifindex)
{
  union { gchar buf[CMSG_SPACE (sizeof (struct in_pktinfo))]; struct cmsghdr align; } control;
  struct iovec iov = { buf, size };
  struct msghdr msg = { from, sizeof *from, &iov, 1, control.buf, sizeof control.buf, 0 };
  gssize len = recvmsg (g_socket_get_fd (sock), &msg, MSG_DONTWAIT);

  *ifindex = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); len >= 0 && c != NULL; c = CMSG_NXTHDR (&msg, c))
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO)
      *ifindex = (guint) ((struct in_pktinfo *) (gpointer) CMSG_DATA (c))->ipi_ifindex;
  return len;
}

static void
send_reply (GSocket *sock, GBytes *reply, guint32 dest, guint16 port)
{
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (port), .sin_addr.s_addr = dest };

  if (sendto (g_socket_get_fd (sock), g_bytes_get_data (reply, NULL), g_bytes_get_size (reply),
              0, (struct sockaddr *) &to, sizeof to) < 0)
    g_warning ("cannot send DHCP reply: %s", g_strerror (errno));
}

static gboolean
on_datagram (GSocket *sock, GIOCondition condition, gpointer user_data)
{
  ShoalPxeDhcpServer *self = user_data;
  gboolean proxy_port = sock == self->sockets[1];

  for (guint i = 0; i < 32; i++)
    {
      guint8 buf[2048];
      struct sockaddr_in from = { 0 };
      guint ifindex;
      gssize len = receive (sock, buf, sizeof buf, &from, &ifindex);
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) reply = NULL;
      guint32 dest;
      guint16 dest_port;

      if (len < 0)
        break;
      if (self->ifindex != 0 && ifindex != 0 && ifindex != self->ifindex)
        continue;
      reply = shoal_pxe_dhcp_server_handle (self, buf, (gsize) len, proxy_port, from.sin_addr.s_addr,
                                            ntohs (from.sin_port), &dest, &dest_port, &error);
      if (error != NULL)
        g_debug ("DHCP packet of %" G_GSSIZE_FORMAT " bytes ignored: %s", len, error->message);
      if (reply != NULL)
        send_reply (sock, reply, dest, dest_port);
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
resolve_address (ShoalPxeDhcpServer *self, GError **error)
{
  guint32 address = 0;

  if (self->interface != NULL)
    {
      self->ifindex = if_nametoindex (self->interface);
      if (!shoal_pxe_net_interface_address (self->interface, &address, &self->netmask, error))
        return FALSE;
    }
  if (self->address_str != NULL && !shoal_pxe_net_ip_from_string (self->address_str, &address))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   "%s is not an IPv4 address", self->address_str);
      return FALSE;
    }
  if (address == 0)
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                           "the DHCP server needs an interface or an address");
      return FALSE;
    }
  self->address = address;
  if (self->netmask == 0)
    self->netmask = htonl (0xffffff00);
  g_free (self->address_str);
  self->address_str = shoal_pxe_net_ip_to_string (address);
  update_reserved (self);
  return TRUE;
}

static gboolean
listen_on (ShoalPxeDhcpServer *self, guint i, guint16 port, GError **error)
{
  self->sockets[i] = shoal_pxe_net_udp_socket (NULL, port, self->interface, TRUE, error);
  if (self->sockets[i] == NULL)
    return FALSE;
  self->sources[i] = g_socket_create_source (self->sockets[i], G_IO_IN, NULL);
  g_source_set_callback (self->sources[i], G_SOURCE_FUNC (on_datagram), self, NULL);
  g_source_attach (self->sources[i], NULL);
  return TRUE;
}

gboolean
shoal_pxe_dhcp_server_start (ShoalPxeDhcpServer *self, GError **error)
{
  if (!resolve_address (self, error))
    return FALSE;
  if (self->mode == SHOAL_PXE_DHCP_MODE_AUTHORITATIVE && self->pool == NULL)
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                           "authoritative DHCP needs an address range");
      return FALSE;
    }
  if (!listen_on (self, 0, self->server_port, error) ||
      (self->mode == SHOAL_PXE_DHCP_MODE_PROXY && !listen_on (self, 1, self->proxy_port, error)))
    {
      g_prefix_error (error, "cannot start the DHCP server: ");
      shoal_pxe_dhcp_server_stop (self);
      return FALSE;
    }
  return TRUE;
}

void
shoal_pxe_dhcp_server_stop (ShoalPxeDhcpServer *self)
{
  for (guint i = 0; i < G_N_ELEMENTS (self->sockets); i++)
    {
      if (self->sources[i] != NULL)
        {
          g_source_destroy (self->sources[i]);
          g_clear_pointer (&self->sources[i], g_source_unref);
        }
      g_clear_object (&self->sockets[i]);
    }
}
