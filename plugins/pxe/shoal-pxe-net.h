/* shoal-pxe-net.h: socket helpers shared by the DHCP and TFTP servers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

GSocket  *shoal_pxe_net_udp_socket        (const gchar   *address,
                                           guint16        port,
                                           const gchar   *interface,
                                           gboolean       broadcast,
                                           GError       **error);
gboolean  shoal_pxe_net_interface_address (const gchar   *interface,
                                           guint32       *address,
                                           guint32       *netmask,
                                           GError       **error);
gchar    *shoal_pxe_net_ip_to_string      (guint32        address);
gboolean  shoal_pxe_net_ip_from_string    (const gchar   *str,
                                           guint32       *address);

G_END_DECLS
