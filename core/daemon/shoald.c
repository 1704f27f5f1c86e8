/* shoald.c: the shoal daemon
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <girepository.h>
#include <glib-unix.h>
#include <stdlib.h>
#include <locale.h>
#include <signal.h>
#include <sys/stat.h>

#include "shoal-daemon.h"

typedef struct
{
  GMainLoop   *loop;
  ShoalDaemon *daemon;
  gint         exit_status;
  gboolean     stopping;
} Shoald;

static void
shoald_stopped_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Shoald *shoald = user_data;
  g_autoptr(GError) error = NULL;

  if (!shoal_daemon_stop_finish (SHOAL_DAEMON (source), result, &error))
    {
      g_printerr ("shoald: %s\n", error->message);
      shoald->exit_status = 1;
    }
  g_main_loop_quit (shoald->loop);
}

static void
shoald_stop (Shoald *shoald)
{
  if (shoald->stopping)
    return;
  shoald->stopping = TRUE;
  shoal_daemon_stop_async (shoald->daemon, NULL, shoald_stopped_cb, shoald);
}

static gboolean
shoald_on_signal (gpointer user_data)
{
  Shoald *shoald = user_data;

  g_info ("stopping on signal");
  shoald_stop (shoald);
  return G_SOURCE_CONTINUE;
}

static void
shoald_on_quit (ShoalDaemon *daemon, const gchar *reason, gpointer user_data)
{
  Shoald *shoald = user_data;

  g_printerr ("shoald: %s\n", reason);
  shoald->exit_status = 1;
  shoald_stop (shoald);
}

/* running from the build tree, or told so: use its plugins and data */
static gboolean
shoald_is_uninstalled (void)
{
  g_autofree gchar *exe = NULL;
  g_autofree gchar *build_root = NULL;
  g_autofree gchar *prefix = NULL;

  if (g_strcmp0 (g_getenv ("SHOAL_UNINSTALLED"), "1") == 0)
    return TRUE;
  exe = g_file_read_link ("/proc/self/exe", NULL);
  if (exe == NULL)
    return FALSE;
  build_root = g_path_get_dirname (SHOAL_BUILD_PLUGINDIR);
  prefix = g_strconcat (build_root, "/", NULL);
  return g_str_has_prefix (exe, prefix);
}

static gboolean
shoald_parse_options (int *argc, char ***argv, ShoalDaemonOptions *options, GError **error)
{
  gboolean session = FALSE;
  gboolean system = FALSE;
  gboolean verbose = FALSE;
  gboolean version = FALSE;
  const GOptionEntry entries[] = {
    { "system", 0, 0, G_OPTION_ARG_NONE, &system,
      N_("Serve on the system bus (the default)"), NULL },
    { "session", 0, 0, G_OPTION_ARG_NONE, &session,
      N_("Serve on the session bus"), NULL },
    { "address", 0, 0, G_OPTION_ARG_STRING, &options->address,
      N_("Serve on the bus at this D-Bus address"), N_("ADDRESS") },
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &options->state_dir,
      N_("Keep the store and caches in this directory"), N_("DIR") },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &options->config_file,
      N_("Read the configuration from this file"), N_("FILE") },
    { "plugin-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &options->plugin_dirs,
      N_("Look for plugins in this directory first (repeatable)"), N_("DIR") },
    { "http-port", 0, 0, G_OPTION_ARG_INT, &options->http_port,
      N_("Serve HTTP on this port (0 picks a free one)"), N_("PORT") },
    { "convert-store", 0, 0, G_OPTION_ARG_NONE, &options->convert_store,
      N_("Convert a store made without auto-vacuum to incremental auto-vacuum (one VACUUM, "
         "which may take minutes; stop shoald first), then exit"), NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose,
      N_("Log what the daemon does"), NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version,
      N_("Print the version and exit"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);

  g_option_context_set_summary (context, _("Deploys operating systems on fleets of machines."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, argc, argv, error))
    return FALSE;
  if (version)
    {
      g_print ("shoald %s\n", PACKAGE_VERSION);
      exit (EXIT_SUCCESS);
    }
  if (session && system)
    {
      g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           _("--session and --system exclude each other"));
      return FALSE;
    }
  if (options->http_port > G_MAXUINT16)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("--http-port: %d is not a port number"), options->http_port);
      return FALSE;
    }
  options->bus_type = session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM;
  if (verbose)
    g_log_set_debug_enabled (TRUE);
  return TRUE;
}

static void
shoald_options_clear (ShoalDaemonOptions *options)
{
  g_free (options->address);
  g_free (options->state_dir);
  g_free (options->config_file);
  g_strfreev (options->plugin_dirs);
}

int
main (int argc, char **argv)
{
  ShoalDaemonOptions options = { .http_port = -1 };
  Shoald shoald = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(ShoalDaemon) daemon = NULL;

  /* everything shoald creates is its own alone (the store holds the
   * device tokens, the image store its admin token) unless made
   * otherwise on purpose: SQLite made shoal.db 0644 */
  umask (077);
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  if (!shoald_parse_options (&argc, &argv, &options, &error))
    {
      g_printerr ("shoald: %s\n", error->message);
      shoald_options_clear (&options);
      return EXIT_FAILURE;
    }
  options.uninstalled = shoald_is_uninstalled ();
  /* Python plugins import Shoal-1.0: find it where it was built or
   * installed, which need not be on GObject Introspection's own path
   * (the default prefix is /usr/local) */
  g_irepository_prepend_search_path (options.uninstalled ? SHOAL_BUILD_TYPELIBDIR : SHOAL_TYPELIBDIR);
  daemon = shoal_daemon_new (&options);
  shoald_options_clear (&options);

  /* the options' strings are freed, not the flags */
  if (options.convert_store)
    {
      if (!shoal_daemon_convert_store (daemon, &error))
        {
          g_printerr ("shoald: %s\n", error->message);
          return EXIT_FAILURE;
        }
      return EXIT_SUCCESS;
    }
  loop = g_main_loop_new (NULL, FALSE);
  shoald.loop = loop;
  shoald.daemon = daemon;
  g_signal_connect (daemon, "quit", G_CALLBACK (shoald_on_quit), &shoald);
  g_unix_signal_add (SIGTERM, shoald_on_signal, &shoald);
  g_unix_signal_add (SIGINT, shoald_on_signal, &shoald);

  if (!shoal_daemon_start (daemon, &error))
    {
      g_printerr ("shoald: %s\n", error->message);
      return EXIT_FAILURE;
    }
  g_main_loop_run (loop);
  return shoald.exit_status;
}
