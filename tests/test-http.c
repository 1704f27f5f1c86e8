/* test-http.c: the HTTP server of shoal's programs releases every
 * connection its clients close, and streams files
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shoal-http.h"

static void
on_hello (SoupServer        *server,
          SoupServerMessage *msg,
          const char        *path,
          GHashTable        *query,
          gpointer           user_data)
{
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC, "hello\n", 6);
}

/* the server's ends of connections on port that still hold a
 * descriptor: established, or closed by the client and not yet by the
 * server (CLOSE-WAIT), from /proc/net/tcp */
static guint
count_open_server_ends (guint port)
{
  g_autofree gchar *text = NULL;
  g_auto(GStrv) lines = NULL;
  guint n = 0;

  g_assert_true (g_file_get_contents ("/proc/net/tcp", &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 1; lines[i] != NULL; i++)
    {
      guint local_port, state;

      /* "  1: 0100007F:A1B2 0100007F:C3D4 08 ..." */
      if (sscanf (lines[i], "%*s %*[0-9A-F]:%x %*s %x", &local_port, &state) == 2 &&
          local_port == port && (state == 0x01 || state == 0x08))
        n++;
    }
  return n;
}

/* A client that keeps its connection alive (HTTP/1.1, no Connection:
 * close), reads a response and closes: the server must close its end too.
 * libsoup 3.2 left each such connection in CLOSE-WAIT, its descriptor open
 * for good. */
static void
test_closed_connections_released (void)
{
  g_autoptr(SoupServer) server = shoal_http_server_new ("shoal-test ");
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  GSList *uris;
  guint port;

  soup_server_add_handler (server, "/hello", on_hello, NULL, NULL);
  g_assert_true (soup_server_listen (server, any, 0, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (server);
  port = g_uri_get_port (uris->data);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(GSocketConnection) conn = g_socket_client_connect_to_host (client, "127.0.0.1", (guint16) port,
                                                                           NULL, &error);
      g_autoptr(GString) response = g_string_new (NULL);
      const gchar *request = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
      GOutputStream *out;
      GInputStream *in;
      gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

      g_assert_no_error (error);
      out = g_io_stream_get_output_stream (G_IO_STREAM (conn));
      in = g_io_stream_get_input_stream (G_IO_STREAM (conn));
      g_assert_true (g_output_stream_write_all (out, request, strlen (request), NULL, NULL, &error));
      g_assert_no_error (error);
      /* the server answers from this thread's main context */
      g_socket_set_blocking (g_socket_connection_get_socket (conn), FALSE);
      while (strstr (response->str, "hello\n") == NULL)
        {
          gchar buf[1024];
          gssize n;

          g_assert_cmpint (g_get_monotonic_time (), <, deadline);
          g_main_context_iteration (NULL, FALSE);
          n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (in), buf, sizeof buf, NULL, NULL);
          if (n > 0)
            g_string_append_len (response, buf, n);
          else
            g_usleep (1000);
        }
      g_assert_nonnull (strstr (response->str, "HTTP/1.1 200"));
      g_assert_true (g_io_stream_close (G_IO_STREAM (conn), NULL, &error));
      g_assert_no_error (error);
    }

  /* every server end is closed (within 5 s) */
  for (guint i = 0; i < 500 && count_open_server_ends (port) > 0; i++)
    {
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (10000);
    }
  g_assert_cmpuint (count_open_server_ends (port), ==, 0);
}

typedef struct {
  gchar   *paths[2];
  goffset  offsets[2];
  goffset  lengths[2];   /* served */
  goffset  declared;     /* Content-Length */
  gint     done_calls;
  gboolean complete;
} StreamTest;

static void
on_stream_done (SoupServerMessage *msg, gboolean complete, gpointer user_data)
{
  StreamTest *t = user_data;

  t->done_calls++;
  t->complete = complete;
}

static void
on_stream (SoupServer        *server,
           SoupServerMessage *msg,
           const char        *path,
           GHashTable        *query,
           gpointer           user_data)
{
  StreamTest *t = user_data;
  ShoalHttpPart parts[2];

  for (guint i = 0; i < 2; i++)
    {
      parts[i] = (ShoalHttpPart) { .fd = open (t->paths[i], O_RDONLY | O_CLOEXEC), .offset = t->offsets[i],
                                   .length = t->lengths[i], .name = t->paths[i] };
      g_assert_cmpint (parts[i].fd, >=, 0);
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_length (soup_server_message_get_response_headers (msg), t->declared);
  shoal_http_stream_parts (msg, parts, 2, on_stream_done, t, NULL);
}

static void
on_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GBytes **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  if (*out == NULL)
    *out = g_bytes_new (NULL, 0);   /* the body was cut */
}

/* GETs /stream from @server; the body received */
static GBytes *
fetch_stream (SoupServer *server, StreamTest *t)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  GSList *uris = soup_server_get_uris (server);
  g_autofree gchar *uri = g_strdup_printf ("http://127.0.0.1:%d/stream", g_uri_get_port (uris->data));
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  GBytes *body = NULL;
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, on_read, &body);
  while ((body == NULL || t->done_calls == 0) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (body);
  return body;
}

static gchar *
write_pattern (const gchar *dir, const gchar *name, gsize size, guint8 seed)
{
  g_autofree guint8 *data = g_malloc (size);
  gchar *path = g_build_filename (dir, name, NULL);

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) (i * 7 + seed + i / 251);
  g_assert_true (g_file_set_contents (path, (gchar *) data, (gssize) size, NULL));
  return path;
}

/* Two parts, each from an offset of its own file, larger than one read
 * (256 kB): the body is the two ranges one after the other, and done is
 * told once, complete. Then a part longer than its file: the body ends
 * short and done is told it is not complete. */
static void
test_stream_parts (void)
{
  g_autoptr(SoupServer) server = shoal_http_server_new ("shoal-test ");
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("shoal-http-XXXXXX", &error);
  g_autofree gchar *a = NULL, *b = NULL;
  g_autofree gchar *da = NULL, *db = NULL;
  gsize la, lb;
  StreamTest t = { 0 };
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GBytes) cut = NULL;
  const guint8 *got;
  gsize n;

  g_assert_no_error (error);
  a = write_pattern (dir, "a", 700 * 1024 + 3, 1);
  b = write_pattern (dir, "b", 300 * 1024, 99);
  g_assert_true (g_file_get_contents (a, &da, &la, NULL));
  g_assert_true (g_file_get_contents (b, &db, &lb, NULL));
  soup_server_add_handler (server, "/stream", on_stream, &t, NULL);
  g_assert_true (soup_server_listen (server, any, 0, &error));
  g_assert_no_error (error);

  t.paths[0] = a;
  t.paths[1] = b;
  t.offsets[0] = 5;
  t.lengths[0] = (goffset) la - 5;
  t.offsets[1] = 1000;
  t.lengths[1] = 200 * 1024;
  t.declared = t.lengths[0] + t.lengths[1];
  body = fetch_stream (server, &t);
  got = g_bytes_get_data (body, &n);
  g_assert_cmpuint (n, ==, (gsize) t.declared);
  g_assert_true (memcmp (got, da + 5, la - 5) == 0);
  g_assert_true (memcmp (got + la - 5, db + 1000, 200 * 1024) == 0);
  g_assert_cmpint (t.done_calls, ==, 1);
  g_assert_true (t.complete);

  /* the second part runs past the end of its file */
  t.done_calls = 0;
  t.lengths[1] = (goffset) lb;   /* from offset 1000: 1000 bytes too many */
  t.declared = t.lengths[0] + t.lengths[1];
  cut = fetch_stream (server, &t);
  g_assert_cmpuint (g_bytes_get_size (cut), <, (gsize) t.declared);
  g_assert_cmpint (t.done_calls, ==, 1);
  g_assert_false (t.complete);

  g_assert_cmpint (g_unlink (a), ==, 0);
  g_assert_cmpint (g_unlink (b), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

/* --- request bodies ---------------------------------------------------- */

static guint
server_port (SoupServer *server)
{
  GSList *uris = soup_server_get_uris (server);
  guint port = g_uri_get_port (uris->data);

  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  return port;
}

/* sends @request (headers only) on a new connection to @port and reads the
 * answer until the server closes, running this thread's main context */
static gchar *
raw_exchange (guint        port,
              const gchar *request)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) conn = g_socket_client_connect_to_host (client, "127.0.0.1", (guint16) port,
                                                                       NULL, &error);
  GString *response = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  GInputStream *in;

  g_assert_no_error (error);
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), request,
                                            strlen (request), NULL, NULL, &error));
  g_assert_no_error (error);
  in = g_io_stream_get_input_stream (G_IO_STREAM (conn));
  g_socket_set_blocking (g_socket_connection_get_socket (conn), FALSE);
  for (;;)
    {
      gchar buf[1024];
      gssize n;

      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      while (g_main_context_iteration (NULL, FALSE))
        ;
      n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (in), buf, sizeof buf, NULL, NULL);
      if (n == 0)
        break;
      if (n > 0)
        g_string_append_len (response, buf, n);
      else
        g_usleep (1000);
    }
  return g_string_free (response, FALSE);
}

static void
on_upload (SoupServer        *server,
           SoupServerMessage *msg,
           const char        *path,
           GHashTable        *query,
           gpointer           user_data)
{
  g_autofree gchar *text = g_strdup_printf ("got %" G_GOFFSET_FORMAT "\n",
                                            soup_server_message_get_request_body (msg)->length);

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_COPY, text, strlen (text));
}

/* libsoup reads a whole request body into memory before the handler runs:
 * a 300 MB POST to a route that takes no body (or to none at all) was
 * read whole, then answered. Such a request is now refused from its
 * headers: the body is never sent here, and the answer must come anyway */
static void
test_body_refused_before_read (void)
{
  g_autoptr(SoupServer) server = shoal_http_server_new ("shoal-test ");
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  g_autoptr(GError) error = NULL;
  struct {
    const gchar *request;
    const gchar *status;
  } cases[] = {
    { "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n", "HTTP/1.1 413 " },
    { "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n", "HTTP/1.1 413 " },
    { "PUT /no/such/route HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n", "HTTP/1.1 413 " },
    { "POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 413 " },
    { "POST /upload/x HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n", "HTTP/1.1 413 " },
    { "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 411 " },
    { "POST /uploads HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n", "HTTP/1.1 413 " },
    /* routes that check their bodies themselves are left to them */
    { "POST /own/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n12345", "HTTP/1.1 200 " },
    /* a route that takes bodies with POST alone */
    { "GET /post-only HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n12345", "HTTP/1.1 413 " },
    { "DELETE /post-only/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n12345", "HTTP/1.1 413 " },
    { "POST /post-only/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n12345", "HTTP/1.1 200 " },
    { "DELETE /post-only/x HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 " },
    /* and what a route allows goes through */
    { "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", NULL },
    { "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 200 " },
  };
  guint port;

  soup_server_add_handler (server, "/hello", on_hello, NULL, NULL);
  soup_server_add_handler (server, "/upload", on_upload, NULL, NULL);
  soup_server_add_handler (server, "/own", on_upload, NULL, NULL);
  shoal_http_server_allow_body (server, "/upload", 100);
  shoal_http_server_allow_body (server, "/own", SHOAL_HTTP_BODY_ROUTE_CHECKS);
  soup_server_add_handler (server, "/post-only", on_upload, NULL, NULL);
  shoal_http_server_allow_body_full (server, "/post-only", (const gchar *[]) { "POST", NULL }, 100);
  g_assert_true (soup_server_listen (server, any, 0, &error));
  g_assert_no_error (error);
  port = server_port (server);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree gchar *full = NULL;
      g_autofree gchar *response = NULL;

      if (cases[i].status == NULL)
        {
          /* the body of 100 bytes follows the headers */
          full = g_strconcat (cases[i].request, "0123456789012345678901234567890123456789"
                              "0123456789012345678901234567890123456789" "01234567890123456789", NULL);
          response = raw_exchange (port, full);
          g_assert_true (g_str_has_prefix (response, "HTTP/1.1 200 "));
          g_assert_nonnull (strstr (response, "got 100\n"));
          continue;
        }
      response = raw_exchange (port, cases[i].request);
      g_test_message ("%s-> %.20s", cases[i].request, response);
      g_assert_true (g_str_has_prefix (response, cases[i].status));
    }
  /* a route no longer served takes bodies no longer */
  shoal_http_server_allow_body (server, "/upload", 0);
  {
    g_autofree gchar *response = raw_exchange (port, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n");

    g_assert_true (g_str_has_prefix (response, "HTTP/1.1 413 "));
  }
}

/* --- connections -------------------------------------------------------- */

static SoupServer *
listening_server (guint  idle_timeout,
                  guint  max_connections,
                  guint  max_per_peer,
                  guint *port)
{
  SoupServer *server = shoal_http_server_new ("shoal-test ");
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GError) error = NULL;

  soup_server_add_handler (server, "/hello", on_hello, NULL, NULL);
  shoal_http_server_set_limits (server, idle_timeout, max_connections, max_per_peer);
  g_assert_true (shoal_http_server_listen (server, loopback, 0, port, &error));
  g_assert_no_error (error);
  return server;
}

/* a connection to port on which the client sent the start of a request */
static GSocket *
partial_request (guint port)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new (loopback, (guint16) port);
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  const gchar *start = "GET /hello HTTP/1.1\r\nHo";

  g_assert_no_error (error);
  g_assert_true (g_socket_connect (socket, addr, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_socket_send (socket, start, strlen (start), NULL, &error), ==, (gssize) strlen (start));
  g_socket_set_blocking (socket, FALSE);
  return socket;
}

/* whether the server closed socket (the client reads its end), running
 * the main context; no wait */
static gboolean
closed_by_server (GSocket *socket)
{
  gchar buf[256];
  gssize n;
  g_autoptr(GError) error = NULL;

  while (g_main_context_iteration (NULL, FALSE))
    ;
  n = g_socket_receive (socket, buf, sizeof buf, NULL, &error);
  return n == 0 || (n < 0 && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK));
}

/* runs the main context for at most seconds, until every socket is closed
 * by the server; returns how many are still open */
static guint
wait_closed (GSocket **sockets,
             guint     n,
             gdouble   seconds)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  guint open;

  do
    {
      open = 0;
      for (guint i = 0; i < n; i++)
        if (sockets[i] != NULL && !closed_by_server (sockets[i]))
          open++;
      if (open > 0)
        g_usleep (5000);
    }
  while (open > 0 && g_get_monotonic_time () < deadline);
  return open;
}

/* 100 connections that sent part of their headers and nothing more stayed
 * open for good: a connection idle for the idle timeout is closed */
static void
test_idle_timeout (void)
{
  guint port;
  G_GNUC_UNUSED g_autoptr(SoupServer) server = listening_server (1, 0, 0, &port);
  GSocket *sockets[20];
  gint64 start = g_get_monotonic_time ();
  g_autofree gchar *hello = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (sockets); i++)
    sockets[i] = partial_request (port);
  /* open for a while yet */
  g_assert_cmpuint (wait_closed (sockets, G_N_ELEMENTS (sockets), 0.5), ==, G_N_ELEMENTS (sockets));
  /* closed after the timeout */
  g_assert_cmpuint (wait_closed (sockets, G_N_ELEMENTS (sockets), 5), ==, 0);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, G_USEC_PER_SEC);
  for (guint i = 0; i < G_N_ELEMENTS (sockets); i++)
    g_object_unref (sockets[i]);
  /* a request that comes whole is served */
  hello = raw_exchange (port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  g_assert_true (g_str_has_prefix (hello, "HTTP/1.1 200 "));
}

/* a client that trickled its request headers, a byte every 100 ms, kept
 * its connection for as long as it liked: each byte reset the idle
 * timeout. The whole head must come within the header timeout */
static void
test_header_deadline (void)
{
  guint port;
  G_GNUC_UNUSED g_autoptr(SoupServer) server = listening_server (2, 0, 0, &port);
  GSocket *socket;
  gint64 start;
  gint64 closed_after = -1;
  g_autofree gchar *hello = NULL;

  shoal_http_server_set_header_timeout (server, 1);
  start = g_get_monotonic_time ();
  socket = partial_request (port);
  g_assert_cmpint (g_socket_send (socket, "st: x\r\nX-Slow: ", 15, NULL, NULL), ==, 15);
  /* for 4 s at most: twice the idle timeout, four times the deadline */
  for (guint i = 0; i < 40; i++)
    {
      if (wait_closed (&socket, 1, 0.1) == 0)
        {
          closed_after = g_get_monotonic_time () - start;
          break;
        }
      g_socket_send (socket, "a", 1, NULL, NULL);
    }
  g_object_unref (socket);
  g_test_message ("closed after %" G_GINT64_FORMAT " ms", closed_after / 1000);
  g_assert_cmpint (closed_after, >=, G_USEC_PER_SEC - G_USEC_PER_SEC / 10);
  g_assert_cmpint (closed_after, <, 2 * G_USEC_PER_SEC);
  /* headers that come whole in time, even in pieces, are served */
  hello = raw_exchange (port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  g_assert_true (g_str_has_prefix (hello, "HTTP/1.1 200 "));
}

#define BIG_SIZE (16 * 1024 * 1024)

static void
on_big (SoupServer        *server,
        SoupServerMessage *msg,
        const char        *path,
        GHashTable        *query,
        gpointer           user_data)
{
  ShoalHttpPart part = { .fd = open (user_data, O_RDONLY | O_CLOEXEC), .offset = 0, .length = BIG_SIZE,
                         .name = user_data };

  g_assert_cmpint (part.fd, >=, 0);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_length (soup_server_message_get_response_headers (msg), BIG_SIZE);
  shoal_http_stream_parts (msg, &part, 1, NULL, NULL, NULL);
}

typedef struct {
  guint   port;
  gsize   chunk;        /* read at a time... */
  guint   interval_ms;  /* ...every interval_ms */
  gsize   pause_at;     /* after that many bytes (0: never)... */
  guint   pause_ms;     /* ...reads nothing for that long */
  gsize   body;         /* out: the bytes of the body received */
  gint    done;         /* atomic */
} Download;

/* GET /big on a socket with a small receive buffer, read as @d says */
static gpointer
download_thread (gpointer data)
{
  Download *d = data;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new (loopback, (guint16) d->port);
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  const gchar *request = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  g_autofree gchar *buf = g_malloc (d->chunk);
  g_autoptr(GString) head = g_string_new (NULL);
  gsize total = 0;
  gboolean paused = FALSE;

  g_assert_true (g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, 64 * 1024, NULL));
  g_socket_set_timeout (socket, 10);
  g_assert_true (g_socket_connect (socket, addr, NULL, NULL));
  g_assert_cmpint (g_socket_send (socket, request, strlen (request), NULL, NULL), ==, (gssize) strlen (request));
  /* bounded: the socket's timeout, and at most BIG_SIZE / 1 KiB reads */
  for (guint i = 0; i < BIG_SIZE / 1024; i++)
    {
      gssize n = g_socket_receive (socket, buf, d->chunk, NULL, NULL);

      if (n <= 0)
        break;
      if (d->body == 0 && head->len < 4096 && strstr (head->str, "\r\n\r\n") == NULL)
        {
          const gchar *end;

          g_string_append_len (head, buf, n);
          end = strstr (head->str, "\r\n\r\n");
          if (end != NULL)
            d->body = head->len - (gsize) (end + 4 - head->str);
          continue;
        }
      d->body += (gsize) n;
      total += (gsize) n;
      if (d->pause_at > 0 && !paused && total >= d->pause_at)
        {
          paused = TRUE;
          g_usleep ((gulong) d->pause_ms * 1000);
        }
      else if (d->interval_ms > 0)
        g_usleep ((gulong) d->interval_ms * 1000);
    }
  g_atomic_int_set (&d->done, 1);
  return NULL;
}

/* runs @d's download against the main context's server; its duration */
static gint64
download (Download *d)
{
  gint64 start = g_get_monotonic_time ();
  gint64 deadline = start + 30 * G_USEC_PER_SEC;
  GThread *thread = g_thread_new ("download", download_thread, d);

  while (!g_atomic_int_get (&d->done) && g_get_monotonic_time () < deadline)
    {
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (1000);
    }
  g_assert_true (g_atomic_int_get (&d->done));
  g_thread_join (thread);
  return g_get_monotonic_time () - start;
}

/* The idle timeout cut a client that paused its reading of a download for
 * longer: writes have their own timeout, the longest wait for room between
 * two writes. A client that reads slowly but steadily gets the whole answer
 * however long it takes; one that stops reading is cut */
static void
test_send_timeout (void)
{
  g_autofree gchar *dir = g_dir_make_tmp ("shoal-http-send-XXXXXX", NULL);
  g_autofree gchar *path = g_build_filename (dir, "big", NULL);
  guint port;
  G_GNUC_UNUSED g_autoptr(SoupServer) server = listening_server (1, 0, 0, &port);
  gint fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  Download steady = { .chunk = 256 * 1024, .interval_ms = 15 };
  Download pausing = { .chunk = 256 * 1024, .pause_at = 1024 * 1024, .pause_ms = 1600 };
  Download stopping = { .chunk = 256 * 1024, .pause_at = 1024 * 1024, .pause_ms = 4000 };
  gint64 took;

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (ftruncate (fd, BIG_SIZE), ==, 0);
  close (fd);
  shoal_http_server_set_send_timeout (server, 2);
  soup_server_add_handler (server, "/big", on_big, path, NULL);
  steady.port = pausing.port = stopping.port = port;

  /* longer than both timeouts, a wait of 20 ms at a time */
  took = download (&steady);
  g_test_message ("steady: %" G_GSIZE_FORMAT " bytes in %" G_GINT64_FORMAT " ms", steady.body, took / 1000);
  g_assert_cmpuint (steady.body, ==, BIG_SIZE);
  g_assert_cmpint (took, >, 2 * G_USEC_PER_SEC);
  /* a pause longer than the idle timeout, shorter than the send timeout */
  took = download (&pausing);
  g_test_message ("pausing: %" G_GSIZE_FORMAT " bytes in %" G_GINT64_FORMAT " ms", pausing.body, took / 1000);
  g_assert_cmpuint (pausing.body, ==, BIG_SIZE);
  /* a pause longer than the send timeout: the answer is cut */
  took = download (&stopping);
  g_test_message ("stopping: %" G_GSIZE_FORMAT " bytes in %" G_GINT64_FORMAT " ms", stopping.body, took / 1000);
  g_assert_cmpuint (stopping.body, <, BIG_SIZE);
  g_assert_cmpint (g_unlink (path), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

/* connections beyond the per-client cap are closed at once; one freed
 * makes room */
static void
test_connection_caps (void)
{
  guint port;
  G_GNUC_UNUSED g_autoptr(SoupServer) server = listening_server (0, 0, 3, &port);
  GSocket *sockets[3];
  GSocket *extra;
  g_autofree gchar *hello = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (sockets); i++)
    sockets[i] = partial_request (port);
  /* accepted, and kept */
  g_assert_cmpuint (wait_closed (sockets, G_N_ELEMENTS (sockets), 0.3), ==, G_N_ELEMENTS (sockets));
  extra = partial_request (port);
  g_assert_cmpuint (wait_closed (&extra, 1, 5), ==, 0);
  g_assert_cmpuint (wait_closed (sockets, G_N_ELEMENTS (sockets), 0.1), ==, G_N_ELEMENTS (sockets));
  g_object_unref (extra);
  /* the server closes its end of a connection its client closed */
  g_socket_close (sockets[0], NULL);
  g_clear_object (&sockets[0]);
  for (guint i = 0; i < 100; i++)
    {
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_usleep (10000);
    }
  hello = raw_exchange (port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  g_assert_true (g_str_has_prefix (hello, "HTTP/1.1 200 "));
  g_clear_object (&sockets[1]);
  g_clear_object (&sockets[2]);
}

/* libsoup 3.2's listener gave up at the first failed accept: with the
 * descriptors used up once, the server never accepted again. Run in a
 * subprocess, whose descriptor limit is lowered */
static void
test_accept_survives_emfile (void)
{
  if (g_test_subprocess ())
    {
      guint port;
      G_GNUC_UNUSED g_autoptr(SoupServer) server = listening_server (0, 0, 0, &port);
      g_autoptr(GError) error = NULL;
      g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
      g_autoptr(GSocketAddress) addr = g_inet_socket_address_new (loopback, (guint16) port);
      g_autoptr(GSocket) socket = NULL;
      g_autoptr(GString) response = g_string_new (NULL);
      g_autoptr(GArray) fillers = g_array_new (FALSE, FALSE, sizeof (gint));
      struct rlimit limit = { 64, 64 };
      const gchar *request = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
      gint64 deadline;
      gint fd;

      g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);
      while ((fd = dup (0)) >= 0)
        g_array_append_val (fillers, fd);
      /* one descriptor for the client: none left for the server's accept */
      close (g_array_index (fillers, gint, fillers->len - 1));
      g_array_set_size (fillers, fillers->len - 1);
      socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
      g_assert_no_error (error);
      g_assert_true (g_socket_connect (socket, addr, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpint (g_socket_send (socket, request, strlen (request), NULL, &error), ==, (gssize) strlen (request));
      /* accept fails for a while */
      deadline = g_get_monotonic_time () + G_USEC_PER_SEC / 2;
      while (g_get_monotonic_time () < deadline)
        {
          g_main_context_iteration (NULL, FALSE);
          g_usleep (5000);
        }
      for (guint i = 0; i < fillers->len; i++)
        close (g_array_index (fillers, gint, i));
      /* and the waiting connection is served once descriptors are free */
      g_socket_set_blocking (socket, FALSE);
      deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
      for (;;)
        {
          gchar buf[1024];
          gssize n;

          g_assert_cmpint (g_get_monotonic_time (), <, deadline);
          while (g_main_context_iteration (NULL, FALSE))
            ;
          n = g_socket_receive (socket, buf, sizeof buf, NULL, NULL);
          if (n == 0)
            break;
          if (n > 0)
            g_string_append_len (response, buf, n);
          else
            g_usleep (5000);
        }
      g_assert_true (g_str_has_prefix (response->str, "HTTP/1.1 200 "));
      return;
    }
  g_test_trap_subprocess (NULL, 20 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/http/closed-connections-released", test_closed_connections_released);
  g_test_add_func ("/shoal/http/stream-parts", test_stream_parts);
  g_test_add_func ("/shoal/http/body-refused-before-read", test_body_refused_before_read);
  g_test_add_func ("/shoal/http/idle-timeout", test_idle_timeout);
  g_test_add_func ("/shoal/http/header-deadline", test_header_deadline);
  g_test_add_func ("/shoal/http/send-timeout", test_send_timeout);
  g_test_add_func ("/shoal/http/connection-caps", test_connection_caps);
  g_test_add_func ("/shoal/http/accept-survives-emfile", test_accept_survives_emfile);
  return g_test_run ();
}
