/* shoal-pxe-http.h: serve boot files over HTTP with Range support
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

gboolean shoal_pxe_http_serve_file  (SoupServerMessage *msg,
                                     gint               root_fd,
                                     const gchar       *path,
                                     GError           **error);

G_END_DECLS
