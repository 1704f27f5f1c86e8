/* shoal-http.c: the HTTP server shoal's programs serve devices from
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-http.h"

/* libsoup before 3.3 (Debian 12 has 3.2.3) never closes a kept-alive
 * connection that its client closes while idle: it begins reading the
 * next request, meets the end of the stream before any byte of it, and
 * finishes that request without telling the server, which therefore never
 * disconnects. The socket stays in CLOSE-WAIT and its descriptor open for
 * as long as the process runs: one per curl, iPXE or agent connection, a
 * fleet's worth until the daemon runs out of descriptors. There each
 * response closes its connection (Connection: close), which libsoup does
 * handle; a device opens a new one for its next request, on a LAN a
 * fraction of a millisecond. */
static void
on_request_started (SoupServer        *server,
                    SoupServerMessage *msg,
                    gpointer           user_data)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection", "close");
}

/**
 * shoal_http_server_new:
 * @server_header: (nullable): the Server header's value, as for
 *   #SoupServer:server-header
 *
 * Creates the HTTP server of a shoal program, not yet listening. With a
 * libsoup older than 3.3, which leaks every kept-alive connection its
 * client closes, each response closes its connection.
 *
 * Returns: (transfer full): a new #SoupServer
 */
SoupServer *
shoal_http_server_new (const gchar *server_header)
{
  SoupServer *server = soup_server_new ("server-header", server_header, NULL);

  if (!soup_check_version (3, 3, 0))
    g_signal_connect (server, "request-started", G_CALLBACK (on_request_started), NULL);
  return server;
}
