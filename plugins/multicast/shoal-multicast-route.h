/* shoal-multicast-route.h: which local interface reaches an address
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gchar *shoal_multicast_route_iface (const gchar  *address,
                                    GError      **error);

G_END_DECLS
