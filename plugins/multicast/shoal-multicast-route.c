/* shoal-multicast-route.c: which local interface reaches an address
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Without an "interface" option or [multicast] interface, a session's
 * multicast would leave by the interface of the route to the group
 * (239.x: usually the default route), which on a server with a separate
 * provisioning network is the wrong one. The step asks here instead which
 * interface the kernel sends the devices' own addresses through: a UDP
 * socket connected to the address (nothing is sent) has the source
 * address the kernel picked, and the interface holding that address is
 * the one.
 */
#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gi18n-lib.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shoal-error.h"
#include "shoal-multicast-route.h"

static gboolean
same_address (const struct sockaddr *a, const struct sockaddr_storage *b)
{
  if (a == NULL || a->sa_family != b->ss_family)
    return FALSE;
  if (a->sa_family == AF_INET)
    return memcmp (&((const struct sockaddr_in *) a)->sin_addr, &((const struct sockaddr_in *) b)->sin_addr,
                   sizeof (struct in_addr)) == 0;
  if (a->sa_family == AF_INET6)
    return memcmp (&((const struct sockaddr_in6 *) a)->sin6_addr, &((const struct sockaddr_in6 *) b)->sin6_addr,
                   sizeof (struct in6_addr)) == 0;
  return FALSE;
}

/**
 * shoal_multicast_route_iface:
 * @address: an IPv4 or IPv6 address literal
 *
 * Returns: (transfer full): the name of the interface the kernel routes
 *   @address through, or %NULL with @error (%SHOAL_ERROR_INVALID_ARGUMENT
 *   for what is no address, %SHOAL_ERROR_NOT_FOUND for no route)
 */
gchar *
shoal_multicast_route_iface (const gchar  *address,
                             GError      **error)
{
  g_autoptr(GInetAddress) inet = address != NULL ? g_inet_address_new_from_string (address) : NULL;
  g_autoptr(GSocketAddress) remote = NULL;
  struct sockaddr_storage dest, local;
  socklen_t local_len = sizeof local;
  struct ifaddrs *ifs = NULL;
  gchar *name = NULL;
  int fd, saved;

  if (inet == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT, _("“%s” is not an IP address"),
                   address != NULL ? address : "");
      return NULL;
    }
  remote = g_inet_socket_address_new (inet, 9);
  if (!g_socket_address_to_native (remote, &dest, sizeof dest, error))
    return NULL;
  fd = socket (dest.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &dest, g_socket_address_get_native_size (remote)) < 0 ||
      getsockname (fd, (struct sockaddr *) &local, &local_len) < 0)
    {
      saved = errno;
      if (fd >= 0)
        close (fd);
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("No route to %s: %s"), address,
                   g_strerror (saved));
      return NULL;
    }
  close (fd);
  if (getifaddrs (&ifs) < 0)
    {
      saved = errno;
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED, _("Cannot list the network interfaces: %s"),
                   g_strerror (saved));
      return NULL;
    }
  for (struct ifaddrs *i = ifs; i != NULL && name == NULL; i = i->ifa_next)
    if (same_address (i->ifa_addr, &local))
      name = g_strdup (i->ifa_name);
  freeifaddrs (ifs);
  if (name == NULL)
    g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                 _("No interface holds the address the kernel sends to %s from"), address);
  return name;
}
