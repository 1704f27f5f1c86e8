/* shoal-http.c: the HTTP server shoal's programs serve devices from
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
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
  GSocket *socket = soup_server_message_get_socket (msg);

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
 * that contains the request's decides.
 */
void
shoal_http_server_allow_body (SoupServer  *server,
                              const gchar *path,
                              gint64       max_bytes)
{
  GHashTable *limits;

  g_return_if_fail (SOUP_IS_SERVER (server));
  g_return_if_fail (path != NULL && path[0] == '/');

  limits = g_object_get_data (G_OBJECT (server), BODY_LIMITS_KEY);
  if (limits == NULL)
    {
      limits = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      g_object_set_data_full (G_OBJECT (server), BODY_LIMITS_KEY, limits, (GDestroyNotify) g_hash_table_unref);
    }
  if (max_bytes == 0)
    g_hash_table_remove (limits, path);
  else
    g_hash_table_replace (limits, g_strdup (path), g_memdup2 (&max_bytes, sizeof max_bytes));
}

static gint64
body_limit (SoupServer  *server,
            const gchar *path)
{
  GHashTable *limits = g_object_get_data (G_OBJECT (server), BODY_LIMITS_KEY);
  g_autofree gchar *prefix = g_strdup (path);
  gchar *slash;

  if (limits == NULL)
    return 0;
  /* /a/b/c, then /a/b, then /a */
  while (prefix[0] == '/' && prefix[1] != '\0')
    {
      const gint64 *limit = g_hash_table_lookup (limits, prefix);

      if (limit != NULL)
        return *limit;
      slash = strrchr (prefix, '/');
      *slash = '\0';
    }
  return 0;
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
  limit = uri != NULL ? body_limit (server, g_uri_get_path (uri)) : 0;
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

  /* first, so that a refused request reaches no other got-headers handler */
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
