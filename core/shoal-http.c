/* shoal-http.c: the HTTP server shoal's programs serve devices from
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "shoal-http.h"

#define STREAM_CHUNK (256 * 1024)

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

/* --- refusing a request before its body ----------------------------------- */

/* After the answer, the rest of what the client sends is read and dropped
 * (at most LINGER_BYTES, for at most LINGER_SECONDS), as a lingering close:
 * closing with unread data would reset the connection, and a client still
 * sending its body would lose the answer. */
#define LINGER_BYTES (4 * 1024 * 1024)
#define LINGER_SECONDS 10

typedef struct {
  GIOStream    *stream;
  GSocket      *socket;
  GCancellable *cancellable;
  gchar        *text;
  guint         timeout_id;
  gsize         drained;
  gchar         buffer[8192];
} EarlyReply;

static void
early_reply_free (EarlyReply *reply)
{
  g_clear_handle_id (&reply->timeout_id, g_source_remove);
  g_clear_object (&reply->cancellable);
  g_clear_object (&reply->socket);
  g_clear_object (&reply->stream);
  g_free (reply->text);
  g_free (reply);
}

static void
early_closed_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_io_stream_close_finish (G_IO_STREAM (source), result, NULL);
}

static void
early_close (EarlyReply *reply)
{
  g_io_stream_close_async (reply->stream, G_PRIORITY_DEFAULT, NULL, early_closed_cb, NULL);
  early_reply_free (reply);
}

static gboolean
early_timeout_cb (gpointer user_data)
{
  EarlyReply *reply = user_data;

  reply->timeout_id = 0;
  g_cancellable_cancel (reply->cancellable);
  return G_SOURCE_REMOVE;
}

static void
early_drained_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  EarlyReply *reply = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);

  if (n <= 0 || (reply->drained += (gsize) n) > LINGER_BYTES)
    {
      early_close (reply);
      return;
    }
  g_input_stream_read_async (G_INPUT_STREAM (source), reply->buffer, sizeof reply->buffer,
                             G_PRIORITY_DEFAULT, reply->cancellable, early_drained_cb, reply);
}

static void
early_written_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  EarlyReply *reply = user_data;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL) ||
      reply->socket == NULL || !g_socket_shutdown (reply->socket, FALSE, TRUE, NULL))
    {
      early_close (reply);
      return;
    }
  reply->timeout_id = g_timeout_add_seconds (LINGER_SECONDS, early_timeout_cb, reply);
  g_input_stream_read_async (g_io_stream_get_input_stream (reply->stream), reply->buffer,
                             sizeof reply->buffer, G_PRIORITY_DEFAULT, reply->cancellable,
                             early_drained_cb, reply);
}

/**
 * shoal_http_refuse_early:
 * @msg: a message whose headers have been read (from got-headers), not its body
 * @status: the answer's status
 * @content_type: the answer body's type
 * @body: the answer's body
 *
 * libsoup reads a request's whole body into memory before it calls the
 * handler, and answers only once it has read it: a limit checked in the
 * handler bounds nothing. This answers @msg at once on the connection taken
 * from libsoup, which is then closed without reading the body (after a
 * bounded lingering read, so that the client sees the answer). @msg is most
 * likely freed on return.
 */
void
shoal_http_refuse_early (SoupServerMessage *msg,
                         guint              status,
                         const gchar       *content_type,
                         const gchar       *body)
{
  EarlyReply *reply = g_new0 (EarlyReply, 1);
  GSocket *socket = shoal_http_message_get_socket (msg);

  reply->text = g_strdup_printf ("HTTP/1.1 %u %s\r\n"
                                 "Content-Type: %s\r\n"
                                 "Content-Length: %zu\r\n"
                                 "Connection: close\r\n\r\n%s",
                                 status, soup_status_get_phrase (status), content_type, strlen (body), body);
  reply->socket = socket != NULL ? g_object_ref (socket) : NULL;
  reply->cancellable = g_cancellable_new ();
  /* @msg is most likely freed here */
  reply->stream = soup_server_message_steal_connection (msg);
  if (reply->stream == NULL)
    {
      early_reply_free (reply);
      return;
    }
  g_output_stream_write_all_async (g_io_stream_get_output_stream (reply->stream), reply->text,
                                   strlen (reply->text), G_PRIORITY_DEFAULT, reply->cancellable,
                                   early_written_cb, reply);
}

/* --- the bodies routes take ------------------------------------------------ */

#define BODY_LIMITS_KEY "shoal-http-body-limits"

typedef struct {
  gint64  max_bytes;
  GStrv   methods;    /* NULL: every method */
} BodyLimit;

static void
body_limit_free (BodyLimit *limit)
{
  g_strfreev (limit->methods);
  g_free (limit);
}

/**
 * shoal_http_server_allow_body:
 * @server: a server made by shoal_http_server_new()
 * @path: a route: the path itself and every path below it
 * @max_bytes: the largest body a request to @path may have;
 *   %SHOAL_HTTP_BODY_ROUTE_CHECKS when the route refuses bodies before they
 *   are read itself; 0 (the default of every path) forbids bodies
 *
 * A server made by shoal_http_server_new() refuses, from the request's
 * headers and before its body is read, a body larger than its route
 * allows (413) and a body of unknown length (chunked) on a route that takes
 * one (411; 413 on a route that takes none). The longest registered path
 * that contains the request's decides. Every method may send a body:
 * shoal_http_server_allow_body_full() names those that may.
 */
void
shoal_http_server_allow_body (SoupServer  *server,
                              const gchar *path,
                              gint64       max_bytes)
{
  shoal_http_server_allow_body_full (server, path, NULL, max_bytes);
}

/**
 * shoal_http_server_allow_body_full:
 * @server: a server made by shoal_http_server_new()
 * @path: a route: the path itself and every path below it
 * @methods: (nullable) (array zero-terminated=1): the methods whose
 *   requests to @path may have a body ("POST", "PUT"...); %NULL for every
 *   method
 * @max_bytes: as for shoal_http_server_allow_body()
 *
 * As shoal_http_server_allow_body(), for @methods alone: a request of
 * another method to @path that has a body is refused before it is read
 * (413), as on a route that takes none.
 */
void
shoal_http_server_allow_body_full (SoupServer         *server,
                                   const gchar        *path,
                                   const gchar *const *methods,
                                   gint64              max_bytes)
{
  GHashTable *limits;
  BodyLimit *limit;

  g_return_if_fail (SOUP_IS_SERVER (server));
  g_return_if_fail (path != NULL && path[0] == '/');

  limits = g_object_get_data (G_OBJECT (server), BODY_LIMITS_KEY);
  if (limits == NULL)
    {
      limits = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) body_limit_free);
      g_object_set_data_full (G_OBJECT (server), BODY_LIMITS_KEY, limits, (GDestroyNotify) g_hash_table_unref);
    }
  if (max_bytes == 0)
    {
      g_hash_table_remove (limits, path);
      return;
    }
  limit = g_new0 (BodyLimit, 1);
  limit->max_bytes = max_bytes;
  limit->methods = methods != NULL ? g_strdupv ((GStrv) methods) : NULL;
  g_hash_table_replace (limits, g_strdup (path), limit);
}

/* the limit of the route of @path; NULL: none takes a body */
static const BodyLimit *
body_limit (SoupServer  *server,
            const gchar *path)
{
  GHashTable *limits = g_object_get_data (G_OBJECT (server), BODY_LIMITS_KEY);
  g_autofree gchar *prefix = g_strdup (path);
  gchar *slash;

  if (limits == NULL)
    return NULL;
  /* /a/b/c, then /a/b, then /a */
  while (prefix[0] == '/' && prefix[1] != '\0')
    {
      const BodyLimit *limit = g_hash_table_lookup (limits, prefix);

      if (limit != NULL)
        return limit;
      slash = strrchr (prefix, '/');
      *slash = '\0';
    }
  return NULL;
}

static void
refuse_body (SoupServerMessage *msg,
             guint              status,
             const gchar       *reason)
{
  g_autofree gchar *body = g_strconcat (reason, "\n", NULL);

  g_debug ("HTTP %s %s: %u %s (before the body)", soup_server_message_get_method (msg),
           g_uri_get_path (soup_server_message_get_uri (msg)), status, reason);
  shoal_http_refuse_early (msg, status, "text/plain; charset=utf-8", body);
}

static void
on_got_headers (SoupServerMessage *msg,
                SoupServer        *server)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  GUri *uri = soup_server_message_get_uri (msg);
  const gchar *method = soup_server_message_get_method (msg);
  const BodyLimit *route;
  gint64 limit;
  goffset length;

  switch (soup_message_headers_get_encoding (headers))
    {
    case SOUP_ENCODING_NONE:
      return;
    case SOUP_ENCODING_CONTENT_LENGTH:
      length = soup_message_headers_get_content_length (headers);
      if (length == 0)
        return;
      break;
    default:
      length = -1;
      break;
    }
  route = uri != NULL ? body_limit (server, g_uri_get_path (uri)) : NULL;
  limit = route != NULL ? route->max_bytes : 0;
  if (route != NULL && route->methods != NULL &&
      (method == NULL || !g_strv_contains ((const gchar *const *) route->methods, method)))
    {
      g_autofree gchar *reason = g_strdup_printf ("A %s request to this resource takes no body", method);

      refuse_body (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, reason);
      return;
    }
  if (limit == SHOAL_HTTP_BODY_ROUTE_CHECKS || (length >= 0 && length <= limit))
    return;
  if (limit == 0)
    refuse_body (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "This resource takes no request body");
  else if (length < 0)
    refuse_body (msg, SOUP_STATUS_LENGTH_REQUIRED, "A request body must have a Content-Length");
  else
    {
      g_autofree gchar *reason = g_strdup_printf ("The request body exceeds the limit of %" G_GINT64_FORMAT " bytes",
                                                  limit);

      refuse_body (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, reason);
    }
}

static void
on_request_started_bodies (SoupServer        *server,
                           SoupServerMessage *msg,
                           gpointer           user_data)
{
  g_signal_connect_object (msg, "got-headers", G_CALLBACK (on_got_headers), server, 0);
}

/* --- accepting connections ------------------------------------------------ */

/* libsoup 3.2's own listener (soup_server_listen()) stops for good at the
 * first failed accept (EMFILE when the descriptors run out), silently, and
 * keeps every connection for as long as its client likes, even one that
 * never finishes its headers. Connections are therefore accepted here: a
 * failed accept is logged and retried after ACCEPT_RETRY_MS, and
 * connections beyond the total or per-client cap are closed at once.
 *
 * Three timeouts bound what a client makes a connection wait for
 * (nginx's client_header_timeout, client_body_timeout and send_timeout):
 * - the header deadline: a request's head (request line and headers) must
 *   have come whole within header_timeout of the request's start (the
 *   connection's, or the end of the previous request on it), however its
 *   bytes trickle in; else the connection is shut down;
 * - the idle timeout: while a request is read, each wait for the client's
 *   next bytes (its GSocket's timeout);
 * - the send timeout: while the response is written, each wait for room to
 *   write, that is the time between two successful writes, so a client that
 *   reads a long download slowly but steadily is never cut, and one that
 *   stops reading is after send_timeout.
 * The socket's timeout is the idle timeout from a request's start and the
 * send timeout from the end of its body (when the handler runs). */

#define ACCEPT_RETRY_MS 100
#define LOG_INTERVAL_US (10 * G_USEC_PER_SEC)

typedef struct {
  SoupServer      *server;          /* unowned: the state is its data */
  GSocketListener *listener;        /* NULL until shoal_http_server_listen() */
  GCancellable    *cancellable;
  guint            retry_id;
  guint            idle_timeout;    /* seconds, 0: none */
  guint            header_timeout;  /* seconds, 0: none */
  guint            send_timeout;    /* seconds, 0: none */
  guint            max_connections;
  guint            max_per_peer;
  guint            n_connections;
  GHashTable      *peers;           /* address -> count */
  gint64           accept_logged;
  gint64           cap_logged;
  gint64           header_logged;
} HttpState;

typedef struct {
  HttpState *state;                 /* owned */
  GSocket   *socket;                /* unowned: the connection's */
  gchar     *peer;
  gchar     *key;
  guint      header_id;             /* the header deadline */
} Connection;

#define STATE_KEY "shoal-http-state"

/* "local remote" -> the Connection of each connection accepted here, of
 * every server (used from the main context only) */
static GHashTable *connection_sockets;

static void
http_state_clear (gpointer data)
{
  HttpState *st = data;

  g_hash_table_unref (st->peers);
  g_clear_object (&st->cancellable);
}

/* the server is gone: stop accepting */
static void
http_state_release_server (gpointer data)
{
  HttpState *st = data;

  g_cancellable_cancel (st->cancellable);
  g_clear_handle_id (&st->retry_id, g_source_remove);
  if (st->listener != NULL)
    g_socket_listener_close (st->listener);
  g_clear_object (&st->listener);
  st->server = NULL;
  g_atomic_rc_box_release_full (st, http_state_clear);
}

static HttpState *
http_state (SoupServer *server)
{
  HttpState *st = g_object_get_data (G_OBJECT (server), STATE_KEY);

  if (st != NULL)
    return st;
  st = g_atomic_rc_box_new0 (HttpState);
  st->server = server;
  st->cancellable = g_cancellable_new ();
  st->idle_timeout = SHOAL_HTTP_IDLE_TIMEOUT_DEFAULT;
  st->header_timeout = SHOAL_HTTP_HEADER_TIMEOUT_DEFAULT;
  st->send_timeout = SHOAL_HTTP_SEND_TIMEOUT_DEFAULT;
  st->max_connections = SHOAL_HTTP_MAX_CONNECTIONS_DEFAULT;
  st->max_per_peer = SHOAL_HTTP_MAX_PER_PEER_DEFAULT;
  st->peers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_object_set_data_full (G_OBJECT (server), STATE_KEY, st, http_state_release_server);
  return st;
}

/**
 * shoal_http_server_set_limits:
 * @server: a server made by shoal_http_server_new()
 * @idle_timeout: seconds a connection may wait for its client's next
 *   bytes while it reads a request (headers, a body, the next request),
 *   before it is closed; 0 for no limit
 * @max_connections: how many connections may be open at once; 0 for no limit
 * @max_per_peer: how many of them one client address may have; 0 for no limit
 *
 * Sets the limits of the connections shoal_http_server_listen() accepts
 * from then on (by default %SHOAL_HTTP_IDLE_TIMEOUT_DEFAULT,
 * %SHOAL_HTTP_MAX_CONNECTIONS_DEFAULT and %SHOAL_HTTP_MAX_PER_PEER_DEFAULT).
 * A connection over a cap is closed as soon as it is accepted.
 */
void
shoal_http_server_set_limits (SoupServer *server,
                              guint       idle_timeout,
                              guint       max_connections,
                              guint       max_per_peer)
{
  HttpState *st;

  g_return_if_fail (SOUP_IS_SERVER (server));
  st = http_state (server);
  st->idle_timeout = idle_timeout;
  st->max_connections = max_connections;
  st->max_per_peer = max_per_peer;
}

/**
 * shoal_http_server_set_header_timeout:
 * @server: a server made by shoal_http_server_new()
 * @seconds: how long a request's head (request line and headers) may take
 *   to come whole, from the connection's start or the end of the previous
 *   request on it, before the connection is closed; 0 for no limit
 *
 * Sets the header deadline of the connections shoal_http_server_listen()
 * accepts from then on (by default %SHOAL_HTTP_HEADER_TIMEOUT_DEFAULT): a
 * client that trickles its headers is closed after @seconds however often
 * it sends a byte.
 */
void
shoal_http_server_set_header_timeout (SoupServer *server,
                                      guint       seconds)
{
  g_return_if_fail (SOUP_IS_SERVER (server));
  http_state (server)->header_timeout = seconds;
}

/**
 * shoal_http_server_set_send_timeout:
 * @server: a server made by shoal_http_server_new()
 * @seconds: how long an answer may wait for room to write (its client to
 *   read) between two successful writes, before the connection is closed;
 *   0 for no limit
 *
 * Sets the send timeout of the connections shoal_http_server_listen()
 * accepts from then on (by default %SHOAL_HTTP_SEND_TIMEOUT_DEFAULT), in
 * place of the idle timeout while answers are written: a client that reads
 * a long answer slowly but steadily is never cut, one that stops reading is
 * after @seconds.
 */
void
shoal_http_server_set_send_timeout (SoupServer *server,
                                    guint       seconds)
{
  g_return_if_fail (SOUP_IS_SERVER (server));
  http_state (server)->send_timeout = seconds;
}

static gchar *
connection_key (GSocketAddress *local,
                GSocketAddress *remote)
{
  g_autofree gchar *l = g_socket_connectable_to_string (G_SOCKET_CONNECTABLE (local));
  g_autofree gchar *r = g_socket_connectable_to_string (G_SOCKET_CONNECTABLE (remote));

  return g_strconcat (l, " ", r, NULL);
}

/* the connection's last reference is gone: libsoup closed it */
static void
connection_gone (gpointer  data,
                 GObject  *where_the_object_was)
{
  Connection *c = data;
  HttpState *st = c->state;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (st->peers, c->peer));

  st->n_connections--;
  if (n <= 1)
    g_hash_table_remove (st->peers, c->peer);
  else
    g_hash_table_insert (st->peers, g_strdup (c->peer), GUINT_TO_POINTER (n - 1));
  g_hash_table_remove (connection_sockets, c->key);
  g_clear_handle_id (&c->header_id, g_source_remove);
  g_free (c->peer);
  g_free (c->key);
  g_free (c);
  g_atomic_rc_box_release_full (st, http_state_clear);
}

static void
take_connection (HttpState         *st,
                 GSocketConnection *conn)
{
  g_autoptr(GSocketAddress) local = g_socket_connection_get_local_address (conn, NULL);
  g_autoptr(GSocketAddress) remote = g_socket_connection_get_remote_address (conn, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *peer = NULL;
  GSocket *socket = g_socket_connection_get_socket (conn);
  Connection *c;
  guint n;

  if (local == NULL || remote == NULL)
    return;
  peer = G_IS_INET_SOCKET_ADDRESS (remote)
         ? g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)))
         : g_strdup ("?");
  n = GPOINTER_TO_UINT (g_hash_table_lookup (st->peers, peer));
  if ((st->max_connections > 0 && st->n_connections >= st->max_connections) ||
      (st->max_per_peer > 0 && n >= st->max_per_peer))
    {
      gint64 now = g_get_monotonic_time ();

      if (now - st->cap_logged >= LOG_INTERVAL_US)
        {
          st->cap_logged = now;
          g_message ("HTTP: refused a connection from %s: %u open, %u from it (caps %u and %u)",
                     peer, st->n_connections, n, st->max_connections, st->max_per_peer);
        }
      g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
      return;
    }
  g_socket_set_timeout (socket, st->idle_timeout);
  /* known before libsoup starts the first request (request-started) */
  c = g_new0 (Connection, 1);
  c->state = g_atomic_rc_box_acquire (st);
  c->socket = socket;
  c->key = connection_key (local, remote);
  c->peer = g_strdup (peer);
  st->n_connections++;
  g_hash_table_insert (st->peers, g_strdup (c->peer), GUINT_TO_POINTER (n + 1));
  if (connection_sockets == NULL)
    connection_sockets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_insert (connection_sockets, g_strdup (c->key), c);
  g_object_weak_ref (G_OBJECT (conn), connection_gone, c);
  if (!soup_server_accept_iostream (st->server, G_IO_STREAM (conn), local, remote, &error))
    {
      g_message ("HTTP: cannot serve a connection from %s: %s", peer, error->message);
      g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
    }
}

/* --- the timeouts of a request ------------------------------------------- */

/* the connection of @msg, if shoal_http_server_listen() accepted it */
static Connection *
message_connection (SoupServerMessage *msg)
{
  GSocketAddress *local = soup_server_message_get_local_address (msg);
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);
  g_autofree gchar *key = NULL;

  if (local == NULL || remote == NULL || connection_sockets == NULL)
    return NULL;
  key = connection_key (local, remote);
  return g_hash_table_lookup (connection_sockets, key);
}

static gboolean
header_deadline_cb (gpointer user_data)
{
  Connection *c = user_data;
  HttpState *st = c->state;
  gint64 now = g_get_monotonic_time ();

  c->header_id = 0;
  if (now - st->header_logged >= LOG_INTERVAL_US)
    {
      st->header_logged = now;
      g_message ("HTTP: closed a connection from %s: its request headers did not come whole within %u s",
                 c->peer, st->header_timeout);
    }
  /* libsoup, reading, meets the end of the stream and drops the connection */
  g_socket_shutdown (c->socket, TRUE, TRUE, NULL);
  return G_SOURCE_REMOVE;
}

static void
on_timing_got_headers (SoupServerMessage *msg,
                       gpointer           user_data)
{
  Connection *c = message_connection (msg);

  if (c != NULL)
    g_clear_handle_id (&c->header_id, g_source_remove);
}

/* the body is read: what follows is the handler and the answer */
static void
on_timing_got_body (SoupServerMessage *msg,
                    gpointer           user_data)
{
  Connection *c = message_connection (msg);

  if (c != NULL)
    g_socket_set_timeout (c->socket, c->state->send_timeout);
}

static void
on_request_started_timing (SoupServer        *server,
                           SoupServerMessage *msg,
                           gpointer           user_data)
{
  Connection *c = message_connection (msg);

  if (c == NULL)
    return;
  g_socket_set_timeout (c->socket, c->state->idle_timeout);
  g_clear_handle_id (&c->header_id, g_source_remove);
  if (c->state->header_timeout > 0)
    c->header_id = g_timeout_add ((guint) MIN ((guint64) c->state->header_timeout * 1000, G_MAXUINT),
                                  header_deadline_cb, c);
  g_signal_connect (msg, "got-headers", G_CALLBACK (on_timing_got_headers), NULL);
  g_signal_connect (msg, "got-body", G_CALLBACK (on_timing_got_body), NULL);
}

static void accept_next (HttpState *st);

static gboolean
accept_retry_cb (gpointer user_data)
{
  HttpState *st = user_data;

  st->retry_id = 0;
  accept_next (st);
  return G_SOURCE_REMOVE;
}

static void
accepted_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  HttpState *st = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) conn = g_socket_listener_accept_finish (G_SOCKET_LISTENER (source), result,
                                                                       NULL, &error);

  if (g_cancellable_is_cancelled (st->cancellable))
    ;
  else if (conn == NULL)
    {
      gint64 now = g_get_monotonic_time ();

      /* EMFILE, ENFILE, ENOBUFS...: the connection waits in the backlog */
      if (now - st->accept_logged >= LOG_INTERVAL_US)
        {
          st->accept_logged = now;
          g_message ("HTTP: cannot accept a connection (%s), retrying every %d ms",
                     error->message, ACCEPT_RETRY_MS);
        }
      st->retry_id = g_timeout_add (ACCEPT_RETRY_MS, accept_retry_cb, st);
      return;   /* the retry keeps the reference */
    }
  else
    {
      take_connection (st, conn);
      accept_next (g_atomic_rc_box_acquire (st));
    }
  g_atomic_rc_box_release_full (st, http_state_clear);
}

/* consumes a reference to st */
static void
accept_next (HttpState *st)
{
  if (g_cancellable_is_cancelled (st->cancellable))
    {
      g_atomic_rc_box_release_full (st, http_state_clear);
      return;
    }
  g_socket_listener_accept_async (st->listener, st->cancellable, accepted_cb, g_atomic_rc_box_acquire (st));
  g_atomic_rc_box_release_full (st, http_state_clear);
}

/**
 * shoal_http_server_listen:
 * @server: a server made by shoal_http_server_new()
 * @address: (nullable): the address to listen on; %NULL for every address
 *   (IPv4 and IPv6)
 * @port: the TCP port; 0 for any free one
 * @bound_port: (out) (optional): the port listened on
 * @error: return location for a #GError
 *
 * Makes @server listen in place of soup_server_listen(), whose listener
 * stops for good at the first failed accept: here a failed accept (out of
 * descriptors) is logged and retried, and connections are bounded as
 * shoal_http_server_set_limits() says. May be called once per server.
 *
 * Returns: whether @server listens
 */
gboolean
shoal_http_server_listen (SoupServer    *server,
                          GInetAddress  *address,
                          guint          port,
                          guint         *bound_port,
                          GError       **error)
{
  HttpState *st;
  guint16 effective = 0;

  g_return_val_if_fail (SOUP_IS_SERVER (server), FALSE);
  g_return_val_if_fail (port <= G_MAXUINT16, FALSE);
  st = http_state (server);
  g_return_val_if_fail (st->listener == NULL, FALSE);

  st->listener = g_socket_listener_new ();
  /* as libsoup's listener: GSocketListener's default is 10 */
  g_socket_listener_set_backlog (st->listener, SOMAXCONN);
  if (address == NULL && port == 0)
    effective = g_socket_listener_add_any_inet_port (st->listener, NULL, error);
  else if (address == NULL)
    effective = g_socket_listener_add_inet_port (st->listener, (guint16) port, NULL, error) ? (guint16) port : 0;
  else
    {
      g_autoptr(GSocketAddress) want = g_inet_socket_address_new (address, (guint16) port);
      g_autoptr(GSocketAddress) got = NULL;

      if (g_socket_listener_add_address (st->listener, want, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                         NULL, &got, error))
        effective = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (got));
    }
  if (effective == 0)
    {
      g_clear_object (&st->listener);
      return FALSE;
    }
  if (bound_port != NULL)
    *bound_port = effective;
  accept_next (g_atomic_rc_box_acquire (st));
  return TRUE;
}

/**
 * shoal_http_message_get_socket:
 * @msg: a message of a server
 *
 * The socket of @msg's connection: soup_server_message_get_socket(), which
 * has none for a connection of shoal_http_server_listen() (handed to
 * libsoup as a stream), or the socket of that connection.
 *
 * Returns: (transfer none) (nullable): the socket
 */
GSocket *
shoal_http_message_get_socket (SoupServerMessage *msg)
{
  GSocket *socket = soup_server_message_get_socket (msg);
  Connection *c;

  if (socket != NULL)
    return socket;
  c = message_connection (msg);
  return c != NULL ? c->socket : NULL;
}

/**
 * shoal_http_server_new:
 * @server_header: (nullable): the Server header's value, as for
 *   #SoupServer:server-header
 *
 * Creates the HTTP server of a shoal program, not yet listening. With a
 * libsoup older than 3.3, which leaks every kept-alive connection its
 * client closes, each response closes its connection. A request body is
 * refused before it is read unless its route allows it (see
 * shoal_http_server_allow_body()): no route takes one by default.
 *
 * Returns: (transfer full): a new #SoupServer
 */
SoupServer *
shoal_http_server_new (const gchar *server_header)
{
  SoupServer *server = soup_server_new ("server-header", server_header, NULL);

  /* first, so that the header deadline ends before a refusal takes the
   * connection away */
  g_signal_connect (server, "request-started", G_CALLBACK (on_request_started_timing), NULL);
  /* then, so that a refused request reaches no other got-headers handler */
  g_signal_connect (server, "request-started", G_CALLBACK (on_request_started_bodies), NULL);
  if (!soup_check_version (3, 3, 0))
    g_signal_connect (server, "request-started", G_CALLBACK (on_request_started), NULL);
  return server;
}

typedef struct {
  ShoalHttpPart      *parts;     /* names owned */
  guint               n_parts;
  guint               part;      /* being read */
  goffset             done;      /* bytes of it read */
  gboolean            short_read;
  gboolean            wrote_body;
  ShoalHttpStreamDone callback;
  gpointer            user_data;
  GDestroyNotify      notify;
} Stream;

static void
stream_clear (gpointer data)
{
  Stream *s = data;

  for (guint i = 0; i < s->n_parts; i++)
    {
      if (s->parts[i].fd >= 0)
        g_close (s->parts[i].fd, NULL);
      g_free ((gchar *) s->parts[i].name);
    }
  g_free (s->parts);
  if (s->notify != NULL)
    s->notify (s->user_data);
}

static void
stream_closure_unref (gpointer data, GClosure *closure)
{
  g_atomic_rc_box_release_full (data, stream_clear);
}

/* the next chunk of the current part into the response, or its end */
static void
stream_append (SoupServerMessage *msg, Stream *s)
{
  SoupMessageBody *body = soup_server_message_get_response_body (msg);
  g_autofree guint8 *buf = NULL;
  ShoalHttpPart *p;
  gsize want;
  gssize got;

  while (s->part < s->n_parts && s->done == s->parts[s->part].length)
    {
      s->part++;
      s->done = 0;
    }
  if (s->part == s->n_parts)
    {
      soup_message_body_complete (body);
      return;
    }
  p = &s->parts[s->part];
  want = (gsize) MIN (p->length - s->done, STREAM_CHUNK);
  buf = g_malloc (want);
  do
    got = pread (p->fd, buf, want, p->offset + s->done);
  while (got < 0 && errno == EINTR);
  if (got <= 0)
    {
      /* the headers are out: all that is left is to end short and close */
      g_info ("HTTP %s ended %" G_GINT64_FORMAT " bytes short: %s", p->name, (gint64) (p->length - s->done),
              got == 0 ? "the file shrank while it was sent" : g_strerror (errno));
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection", "close");
      s->short_read = TRUE;
      s->part = s->n_parts;
      soup_message_body_complete (body);
      return;
    }
  s->done += got;
  soup_message_body_append_take (body, g_steal_pointer (&buf), (gsize) got);
}

static void
on_stream_wrote_chunk (SoupServerMessage *msg, gpointer user_data)
{
  stream_append (msg, user_data);
}

static void
on_stream_wrote_body (SoupServerMessage *msg, gpointer user_data)
{
  Stream *s = user_data;

  s->wrote_body = TRUE;
}

static void
on_stream_finished (SoupServerMessage *msg, gpointer user_data)
{
  Stream *s = user_data;

  if (s->callback != NULL)
    s->callback (msg, s->wrote_body && !s->short_read, s->user_data);
  s->callback = NULL;
}

/**
 * shoal_http_stream_parts:
 * @msg: a message being answered, its status and headers (with the
 *   Content-Length, the sum of the parts' lengths) already set
 * @parts: (array length=n_parts): the pieces of the body, in order; their
 *   descriptors are taken
 * @n_parts: how many
 * @done: (nullable) (scope notified): called when @msg is finished
 * @user_data: for @done
 * @notify: (nullable): frees @user_data, after @done
 *
 * Answers @msg with @parts read as the answer goes out, 256 kB at a time
 * (the body does not accumulate), so an answer holds one chunk in memory,
 * whatever the size of its files. A file that ends early, or cannot be
 * read, ends the body short and closes the connection: the client sees
 * fewer bytes than the Content-Length said.
 */
void
shoal_http_stream_parts (SoupServerMessage   *msg,
                         const ShoalHttpPart *parts,
                         guint                n_parts,
                         ShoalHttpStreamDone  done,
                         gpointer             user_data,
                         GDestroyNotify       notify)
{
  Stream *s = g_atomic_rc_box_new0 (Stream);

  s->parts = g_new0 (ShoalHttpPart, MAX (n_parts, 1));
  s->n_parts = n_parts;
  for (guint i = 0; i < n_parts; i++)
    {
      s->parts[i] = parts[i];
      s->parts[i].length = MAX (parts[i].length, 0);
      s->parts[i].name = g_strdup (parts[i].name != NULL ? parts[i].name : "(body)");
    }
  s->callback = done;
  s->user_data = user_data;
  s->notify = notify;
  soup_message_body_set_accumulate (soup_server_message_get_response_body (msg), FALSE);
  g_signal_connect_data (msg, "wrote-chunk", G_CALLBACK (on_stream_wrote_chunk), g_atomic_rc_box_acquire (s),
                         stream_closure_unref, 0);
  g_signal_connect_data (msg, "wrote-body", G_CALLBACK (on_stream_wrote_body), g_atomic_rc_box_acquire (s),
                         stream_closure_unref, 0);
  g_signal_connect_data (msg, "finished", G_CALLBACK (on_stream_finished), s, stream_closure_unref, 0);
  stream_append (msg, s);
}
