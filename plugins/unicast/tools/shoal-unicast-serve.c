/* shoal-unicast-serve.c: serve an image store's /images routes outside shoald
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   shoal-unicast-serve --store DIR [--port N] [--address A] --token T
 *
 * For benchmarks and demos: one fixed device token instead of the device
 * registry. Runs until SIGINT or SIGTERM.
 */
#include "config.h"

#include <glib-unix.h>
#include <locale.h>

#include "shoal-http.h"
#include "shoal-unicast-server.h"

static gchar *opt_store = NULL;
static gchar *opt_token = NULL;
static gchar *opt_address = NULL;
static gint opt_port = 8080;

static const GOptionEntry entries[] = {
  { "store", 's', 0, G_OPTION_ARG_FILENAME, &opt_store, "Image store folder", "DIR" },
  { "token", 't', 0, G_OPTION_ARG_STRING, &opt_token, "The device token clients must present", "TOKEN" },
  { "address", 'a', 0, G_OPTION_ARG_STRING, &opt_address, "Address to listen on (default 127.0.0.1)", "ADDR" },
  { "port", 'p', 0, G_OPTION_ARG_INT, &opt_port, "Port (default 8080)", "PORT" },
  { NULL }
};

static guint
auth (const gchar         *token,
      ShoalUnicastRequest  request,
      const gchar         *image_id,
      SoupServerMessage   *msg,
      gpointer             user_data)
{
  return g_strcmp0 (token, opt_token) == 0 ? SOUP_STATUS_OK : SOUP_STATUS_UNAUTHORIZED;
}

static gboolean
quit (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("");
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupServer) server = NULL;
  g_autoptr(ShoalUnicastServer) unicast = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GInetAddress) inet = NULL;
  g_autoptr(GSocketAddress) addr = NULL;

  setlocale (LC_ALL, "");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || opt_store == NULL || opt_token == NULL)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "--store and --token are required");
      return 2;
    }
  inet = g_inet_address_new_from_string (opt_address != NULL ? opt_address : "127.0.0.1");
  if (inet == NULL)
    {
      g_printerr ("Bad address %s\n", opt_address);
      return 2;
    }
  addr = g_inet_socket_address_new (inet, (guint16) opt_port);
  server = shoal_http_server_new (NULL);
  unicast = shoal_unicast_server_new (opt_store, auth, NULL);
  soup_server_add_handler (server, "/images", shoal_unicast_server_handle, unicast, NULL);
  if (!soup_server_listen (server, addr, 0, &error))
    {
      g_printerr ("Cannot listen: %s\n", error->message);
      return 1;
    }
  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, quit, loop);
  g_unix_signal_add (SIGTERM, quit, loop);
  g_print ("serving %s on http://%s:%d/images\n", opt_store, opt_address != NULL ? opt_address : "127.0.0.1", opt_port);
  g_main_loop_run (loop);
  soup_server_disconnect (server);
  g_print ("sent %" G_GUINT64_FORMAT " bytes\n", shoal_unicast_server_get_bytes_sent (unicast));
  return 0;
}
