/* test-http.c: the HTTP server of shoal's programs releases every
 * connection its clients close
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>
#include <stdio.h>
#include <string.h>

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

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/http/closed-connections-released", test_closed_connections_released);
  return g_test_run ();
}
