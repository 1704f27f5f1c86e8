/* shoal-pxe-net.c: socket helpers shared by the DHCP and TFTP servers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "shoal-error.h"
#include "shoal-pxe-net.h"

static gboolean
set_int_option (GSocket *sock, gint level, gint name, gint value, GError **error)
{
  if (!g_socket_set_option (sock, level, name, value, error))
    {
      g_prefix_error (error, "cannot set socket option %d: ", name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
bind_to_device (GSocket *sock, const gchar *interface, GError **error)
{
  if (interface == NULL || interface[0] == '\0')
    return TRUE;
  if (setsockopt (g_socket_get_fd (sock), SOL_SOCKET, SO_BINDTODEVICE,
                  interface, (socklen_t) strlen (interface)) != 0)
    {
      gint saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "cannot bind to interface %s: %s", interface, g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

/**
 * shoal_pxe_net_udp_socket:
 * @address: (nullable): the IPv4 address to bind, %NULL for any
 * @interface: (nullable): the interface to bind with SO_BINDTODEVICE
 *
 * A non-blocking UDP socket with SO_REUSEADDR and IP_PKTINFO, bound.
 */
GSocket *
shoal_pxe_net_udp_socket (const gchar  *address,
                          guint16       port,
                          const gchar  *interface,
                          gboolean      broadcast,
                          GError      **error)
{
  g_autoptr(GSocket) sock = NULL;
  g_autoptr(GInetAddress) inet = NULL;
  g_autoptr(GSocketAddress) sa = NULL;

  sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, error);
  if (sock == NULL)
    return NULL;
  g_socket_set_blocking (sock, FALSE);
  if (!set_int_option (sock, SOL_SOCKET, SO_REUSEADDR, 1, error) ||
      !set_int_option (sock, IPPROTO_IP, IP_PKTINFO, 1, error) ||
      (broadcast && !set_int_option (sock, SOL_SOCKET, SO_BROADCAST, 1, error)) ||
      !bind_to_device (sock, interface, error))
    return NULL;
  inet = address != NULL ? g_inet_address_new_from_string (address)
                         : g_inet_address_new_any (G_SOCKET_FAMILY_IPV4);
  if (inet == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   "%s is not an IPv4 address", address);
      return NULL;
    }
  sa = g_inet_socket_address_new (inet, port);
  if (!g_socket_bind (sock, sa, TRUE, error))
    {
      g_prefix_error (error, "cannot bind UDP port %u: ", port);
      return NULL;
    }
  return g_steal_pointer (&sock);
}

/* the first IPv4 address of @interface, both in network order */
gboolean
shoal_pxe_net_interface_address (const gchar  *interface,
                                 guint32      *address,
                                 guint32      *netmask,
                                 GError      **error)
{
  struct ifaddrs *list = NULL;
  gboolean found = FALSE;

  if (getifaddrs (&list) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                   "cannot list interfaces: %s", g_strerror (errno));
      return FALSE;
    }
  for (struct ifaddrs *i = list; i != NULL && !found; i = i->ifa_next)
    {
      if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
          g_strcmp0 (i->ifa_name, interface) != 0)
        continue;
      *address = ((struct sockaddr_in *) (gpointer) i->ifa_addr)->sin_addr.s_addr;
      *netmask = ((struct sockaddr_in *) (gpointer) i->ifa_netmask)->sin_addr.s_addr;
      found = TRUE;
    }
  freeifaddrs (list);
  if (!found)
    g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                 "interface %s has no IPv4 address", interface);
  return found;
}

gchar *
shoal_pxe_net_ip_to_string (guint32 address)
{
  gchar buf[INET_ADDRSTRLEN];
  struct in_addr in = { .s_addr = address };

  return g_strdup (inet_ntop (AF_INET, &in, buf, sizeof buf));
}

gboolean
shoal_pxe_net_ip_from_string (const gchar *str, guint32 *address)
{
  struct in_addr in;

  if (str == NULL || inet_pton (AF_INET, str, &in) != 1)
    return FALSE;
  *address = in.s_addr;
  return TRUE;
}
