/* shoal-http.h: the HTTP server shoal's programs serve devices from
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

SoupServer *shoal_http_server_new (const gchar *server_header);

/**
 * SHOAL_HTTP_BODY_ROUTE_CHECKS:
 *
 * For shoal_http_server_allow_body(): the route refuses the bodies it does
 * not take itself, before they are read.
 */
#define SHOAL_HTTP_BODY_ROUTE_CHECKS ((gint64) -1)

void shoal_http_server_allow_body (SoupServer  *server,
                                   const gchar *path,
                                   gint64       max_bytes);
void shoal_http_server_allow_body_full (SoupServer         *server,
                                        const gchar        *path,
                                        const gchar *const *methods,
                                        gint64              max_bytes);
/**
 * SHOAL_HTTP_IDLE_TIMEOUT_DEFAULT:
 *
 * Seconds a connection may wait for its client before it is closed.
 */
#define SHOAL_HTTP_IDLE_TIMEOUT_DEFAULT 60
/**
 * SHOAL_HTTP_HEADER_TIMEOUT_DEFAULT:
 *
 * Seconds a request's headers may take to come whole.
 */
#define SHOAL_HTTP_HEADER_TIMEOUT_DEFAULT 10
/**
 * SHOAL_HTTP_SEND_TIMEOUT_DEFAULT:
 *
 * Seconds an answer may wait for its client to read, between two writes.
 */
#define SHOAL_HTTP_SEND_TIMEOUT_DEFAULT 60
/**
 * SHOAL_HTTP_MAX_CONNECTIONS_DEFAULT:
 *
 * How many connections a server keeps open at once.
 */
#define SHOAL_HTTP_MAX_CONNECTIONS_DEFAULT 512
/**
 * SHOAL_HTTP_MAX_PER_PEER_DEFAULT:
 *
 * How many connections one client address may have open at once.
 */
#define SHOAL_HTTP_MAX_PER_PEER_DEFAULT 32

gboolean shoal_http_server_listen     (SoupServer    *server,
                                       GInetAddress  *address,
                                       guint          port,
                                       guint         *bound_port,
                                       GError       **error);
void     shoal_http_server_set_limits (SoupServer    *server,
                                       guint          idle_timeout,
                                       guint          max_connections,
                                       guint          max_per_peer);
void     shoal_http_server_set_header_timeout (SoupServer *server,
                                               guint       seconds);
void     shoal_http_server_set_send_timeout   (SoupServer *server,
                                               guint       seconds);
GSocket *shoal_http_message_get_socket (SoupServerMessage *msg);
void shoal_http_refuse_early      (SoupServerMessage *msg,
                                   guint              status,
                                   const gchar       *content_type,
                                   const gchar       *body);

/**
 * ShoalHttpPart:
 * @fd: an open descriptor, taken: closed when the answer is done
 * @offset: where the part begins in @fd
 * @length: how many bytes of @fd the part has
 * @name: what the part is called in the log (a path)
 *
 * One piece of a streamed response body.
 */
typedef struct {
  gint         fd;
  goffset      offset;
  goffset      length;
  const gchar *name;
} ShoalHttpPart;

/**
 * ShoalHttpStreamDone:
 * @msg: the message whose answer is done
 * @complete: whether every byte of every part was read and the whole
 *   body written to the client
 * @user_data: the data given to shoal_http_stream_parts()
 *
 * Called once, when @msg is finished.
 */
typedef void (*ShoalHttpStreamDone) (SoupServerMessage *msg,
                                     gboolean           complete,
                                     gpointer           user_data);

void shoal_http_stream_parts (SoupServerMessage   *msg,
                              const ShoalHttpPart *parts,
                              guint                n_parts,
                              ShoalHttpStreamDone  done,
                              gpointer             user_data,
                              GDestroyNotify       notify);

G_END_DECLS
