/* shoal-pxe-serve.c: the pxe plugin's servers without the daemon
 *
 * Runs the TFTP server (and, when asked, the DHCP server and the HTTP
 * boot routes) on their own, for benchmarks and for network tests that
 * do not need a controller. Not installed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib-unix.h>
#include <gio/gio.h>

#include "shoal-pxe-tftp-server.h"

static gchar *opt_tftp_root;
static gchar *opt_address;
static gchar *opt_interface;
static gint opt_tftp_port = 69;
static gint opt_max_window = 64;
static gint opt_timeout_ms = 1000;
static gint opt_workers = -1;
static gint opt_max_per_client = 8;

static GOptionEntry entries[] = {
  { "tftp-root", 0, 0, G_OPTION_ARG_FILENAME, &opt_tftp_root, "Directory served over TFTP", "DIR" },
  { "address", 0, 0, G_OPTION_ARG_STRING, &opt_address, "IPv4 address to listen on", "ADDR" },
  { "interface", 0, 0, G_OPTION_ARG_STRING, &opt_interface, "Interface to bind to", "IFNAME" },
  { "tftp-port", 0, 0, G_OPTION_ARG_INT, &opt_tftp_port, "TFTP port (69)", "PORT" },
  { "max-windowsize", 0, 0, G_OPTION_ARG_INT, &opt_max_window, "Largest TFTP window (64)", "N" },
  { "workers", 0, 0, G_OPTION_ARG_INT, &opt_workers, "TFTP worker threads (-1: four per CPU, at most 16)", "N" },
  { "max-per-client", 0, 0, G_OPTION_ARG_INT, &opt_max_per_client, "TFTP transfers one client address may run at once (8)", "N" },
  { "timeout-ms", 0, 0, G_OPTION_ARG_INT, &opt_timeout_ms, "TFTP retransmission timeout", "MS" },
  { NULL }
};

static gboolean
on_signal (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- run shoal's network boot servers");
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(ShoalPxeTftpServer) tftp = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  if (opt_tftp_root != NULL)
    {
      tftp = shoal_pxe_tftp_server_new (opt_tftp_root);
      shoal_pxe_tftp_server_set_interface (tftp, opt_interface);
      shoal_pxe_tftp_server_set_workers (tftp, opt_workers);
      shoal_pxe_tftp_server_set_max_per_client (tftp, (guint) MAX (opt_max_per_client, 1));
      shoal_pxe_tftp_server_set_limits (tftp, 65464, (guint) opt_max_window, (guint) opt_timeout_ms, 5);
      if (!shoal_pxe_tftp_server_start (tftp, opt_address, (guint16) opt_tftp_port, &error))
        {
          g_printerr ("%s\n", error->message);
          return 1;
        }
    }
  g_unix_signal_add (SIGINT, on_signal, loop);
  g_unix_signal_add (SIGTERM, on_signal, loop);
  g_print ("ready\n");
  g_main_loop_run (loop);
  return 0;
}
