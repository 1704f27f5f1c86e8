/* shoal-http.h: the HTTP server shoal's programs serve devices from
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

SoupServer *shoal_http_server_new (const gchar *server_header);

G_END_DECLS
