/* shoal-daemon.c: shoald put together
 *
 * Start-up order: configuration, state directory, the bus (connected;
 * a daemon whose name another one owns stops there), plugin engine
 * (every plugin loaded), controller (state directory locked, store
 * opened, devices resumed), recipes,
 * HTTP server, plugin services, then the bus: objects exported first,
 * the name owned last, so a client that sees the name sees everything.
 *
 * The daemon emits ::quit when it can no longer serve (the bus name was
 * taken or lost, the bus went away); shoald then stops it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>

#include "shoal-controller-private.h"
#include "shoal-daemon.h"
#include "shoal-daemon-recipes.h"
#include "shoal-dbus-auth.h"
#include "shoal-dbus-fleet.h"
#include "shoal-dbus-manager-exporter.h"
#include "shoal-dbus-util.h"
#include "shoal-error.h"
#include "shoal-http.h"
#include "shoal-image-store.h"
#include "shoal-plugin-engine.h"

#define SHOAL_DAEMON_HTTP_PORT_DEFAULT 8070
/* how long interrupted deployments wait for the first fetch of the recipes */
#define SHOAL_DAEMON_FIRST_SYNC_TIMEOUT_S 30

struct _ShoalDaemon
{
  GObject                   parent_instance;

  ShoalDaemonOptions        options;
  GKeyFile                 *config;
  gchar                    *state_dir;
  gchar                    *server_url;
  ShoalPluginEngine        *engine;
  ShoalController          *controller;
  ShoalDaemonRecipes       *recipes;
  SoupServer               *http;
  GDBusConnection          *connection;
  ShoalDBusAuth            *auth;
  ShoalDBusObjectManager   *object_manager;
  ShoalDBusFleet           *fleet;
  ShoalDBusManagerExporter *manager;
  guint                     owner_id;
  gulong                    closed_id;
  guint                     first_sync_timeout_id;
  gboolean                  served;
  gboolean                  name_acquired;
  gboolean                  stopping;
  gboolean                  closed;
};

enum {
  SIGNAL_QUIT,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_TYPE (ShoalDaemon, shoal_daemon, G_TYPE_OBJECT)

static void
shoal_daemon_dispose (GObject *object)
{
  ShoalDaemon *self = SHOAL_DAEMON (object);

  if (self->owner_id != 0)
    g_bus_unown_name (self->owner_id);
  self->owner_id = 0;
  g_clear_handle_id (&self->first_sync_timeout_id, g_source_remove);
  if (self->connection != NULL)
    g_clear_signal_handler (&self->closed_id, self->connection);
  g_clear_object (&self->manager);
  g_clear_object (&self->fleet);
  g_clear_object (&self->object_manager);
  g_clear_object (&self->auth);
  g_clear_object (&self->connection);
  g_clear_object (&self->recipes);
  if (self->controller != NULL && !self->closed)
    shoal_controller_close (self->controller);
  g_clear_object (&self->controller);
  if (self->http != NULL)
    soup_server_disconnect (self->http);
  g_clear_object (&self->http);
  g_clear_object (&self->engine);
  G_OBJECT_CLASS (shoal_daemon_parent_class)->dispose (object);
}

static void
shoal_daemon_finalize (GObject *object)
{
  ShoalDaemon *self = SHOAL_DAEMON (object);

  g_free (self->options.address);
  g_free (self->options.state_dir);
  g_free (self->options.config_file);
  g_strfreev (self->options.plugin_dirs);
  g_clear_pointer (&self->config, g_key_file_unref);
  g_free (self->state_dir);
  g_free (self->server_url);
  G_OBJECT_CLASS (shoal_daemon_parent_class)->finalize (object);
}

static void
shoal_daemon_class_init (ShoalDaemonClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = shoal_daemon_dispose;
  object_class->finalize = shoal_daemon_finalize;

  /**
   * ShoalDaemon::quit:
   * @self: the daemon
   * @reason: why it cannot go on
   *
   * Emitted when the daemon can no longer serve; stop it.
   */
  signals[SIGNAL_QUIT] = g_signal_new ("quit", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                       0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
shoal_daemon_init (ShoalDaemon *self)
{
}

/**
 * shoal_daemon_new:
 * @options: how shoald was started
 *
 * Returns: (transfer full): a new #ShoalDaemon; start it with
 *   shoal_daemon_start()
 */
ShoalDaemon *
shoal_daemon_new (const ShoalDaemonOptions *options)
{
  ShoalDaemon *self = g_object_new (SHOAL_TYPE_DAEMON, NULL);

  self->options.bus_type = options->bus_type;
  self->options.address = g_strdup (options->address);
  self->options.state_dir = g_strdup (options->state_dir);
  self->options.config_file = g_strdup (options->config_file);
  self->options.plugin_dirs = g_strdupv (options->plugin_dirs);
  self->options.http_port = options->http_port;
  self->options.uninstalled = options->uninstalled;
  return self;
}

static void
shoal_daemon_quit (ShoalDaemon *self, const gchar *reason)
{
  if (self->stopping)
    return;
  g_signal_emit (self, signals[SIGNAL_QUIT], 0, reason);
}

/* ---- configuration and state --------------------------------------------- */

/* A state directory that others may enter: what shoald creates in it is
 * private (umask 077), but what an older shoald or another tool left
 * there may not be. Said once at start (not a warning: it is no fault of
 * shoald's, and warnings are fatal in the tests) */
static void
shoal_daemon_check_state_dir_mode (const gchar *state_dir)
{
  GStatBuf st;

  if (g_stat (state_dir, &st) != 0 || (st.st_mode & 077) == 0)
    return;
  g_message ("the state directory %s has mode %04o: other users may read what is in it (the "
             "store holds the device tokens); chmod 700 it", state_dir, (guint) (st.st_mode & 07777));
}

static gboolean
shoal_daemon_load_config (ShoalDaemon *self, GError **error)
{
  g_autofree gchar *system_file = g_build_filename (SHOAL_SYSCONFDIR, "shoald.conf", NULL);
  const gchar *path = self->options.config_file;
  g_autofree gchar *state_dir = NULL;

  self->config = g_key_file_new ();
  if (path == NULL && g_file_test (system_file, G_FILE_TEST_EXISTS))
    path = system_file;
  if (path != NULL && !g_key_file_load_from_file (self->config, path, G_KEY_FILE_NONE, error))
    {
      g_prefix_error (error, "reading the configuration %s: ", path);
      return FALSE;
    }

  state_dir = g_key_file_get_string (self->config, "daemon", "state-dir", NULL);
  if (self->options.state_dir != NULL)
    self->state_dir = g_strdup (self->options.state_dir);
  else if (state_dir != NULL && state_dir[0] != '\0')
    self->state_dir = g_steal_pointer (&state_dir);
  else
    self->state_dir = g_strdup (SHOAL_LOCALSTATEDIR);
  if (g_mkdir_with_parents (self->state_dir, 0700) != 0)
    {
      int errsv = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "creating the state directory %s: %s", self->state_dir, g_strerror (errsv));
      return FALSE;
    }
  shoal_daemon_check_state_dir_mode (self->state_dir);
  return TRUE;
}

static void
shoal_daemon_load_plugins (ShoalDaemon *self)
{
  self->engine = shoal_plugin_engine_new ();
  for (guint i = 0; self->options.plugin_dirs != NULL && self->options.plugin_dirs[i] != NULL; i++)
    shoal_plugin_engine_add_search_path (self->engine, self->options.plugin_dirs[i]);
  if (self->options.uninstalled)
    shoal_plugin_engine_add_search_path (self->engine, SHOAL_BUILD_PLUGINDIR);
  /* the engine adds $SHOAL_PLUGIN_PATH and the system directory itself */
  shoal_plugin_engine_load_all (self->engine);
}

/* [daemon] journal-keep: the entries each device's journal keeps */
static gboolean
shoal_daemon_set_journal_keep (ShoalDaemon *self, GError **error)
{
  g_autoptr(GError) error_local = NULL;
  gint64 keep;

  if (!g_key_file_has_key (self->config, "daemon", "journal-keep", NULL))
    return TRUE;
  keep = g_key_file_get_int64 (self->config, "daemon", "journal-keep", &error_local);
  if (error_local != NULL || keep < 0 || keep > G_MAXINT)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("[daemon] journal-keep: not a number of entries (0 to %d)"), G_MAXINT);
      return FALSE;
    }
  shoal_store_set_journal_keep (shoal_controller_get_store (self->controller), (guint) keep);
  return TRUE;
}

static gboolean
shoal_daemon_open_controller (ShoalDaemon *self, GError **error)
{
  g_autoptr(GError) error_local = NULL;

  self->controller = shoal_controller_new (self->engine, self->state_dir);
  shoal_controller_set_config (self->controller, self->config);
  if (!shoal_daemon_set_journal_keep (self, error))
    return FALSE;
  shoal_controller_set_data_dir (self->controller,
                                 self->options.uninstalled ? SHOAL_SOURCE_DATADIR : SHOAL_PKGDATADIR);
  if (!shoal_controller_open (self->controller, error))
    {
      /* that one names the directory itself */
      if (!g_error_matches (*error, SHOAL_ERROR, SHOAL_ERROR_BUSY))
        g_prefix_error (error, "opening the store in %s: ", self->state_dir);
      return FALSE;
    }
  self->recipes = shoal_daemon_recipes_new (self->controller, self->config, self->state_dir);
  if (shoal_daemon_recipes_load_dir (self->recipes, &error_local) == G_MAXUINT)
    g_warning ("%s", error_local->message);
  /* the repository's, as the start-up fetch will bring them, in case it
   * fails */
  shoal_daemon_recipes_load_last_good (self->recipes);
  /* after the directory: those were added over D-Bus since it was read;
   * the start-up fetch of a repository leaves them in service */
  shoal_controller_load_stored_recipes (self->controller);
  return TRUE;
}

/* ---- HTTP ---------------------------------------------------------------- */

static gchar *
shoal_daemon_config_string (ShoalDaemon *self, const gchar *group, const gchar *key)
{
  g_autofree gchar *value = g_key_file_get_string (self->config, group, key, NULL);

  if (value != NULL)
    g_strstrip (value);
  if (value == NULL || value[0] == '\0')
    return NULL;
  return g_steal_pointer (&value);
}

static gboolean
shoal_daemon_listen (ShoalDaemon *self, const gchar *address, guint port, guint *bound_port, GError **error)
{
  g_autoptr(GInetAddress) inet = NULL;

  if (address != NULL && (inet = g_inet_address_new_from_string (address)) == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("[daemon] http-address: “%s” is not an IP address"), address);
      return FALSE;
    }
  return shoal_http_server_listen (self->http, inet, port, bound_port, error);
}

/* [group] key, a count of at most G_MAXINT, or fallback when unset */
static gboolean
shoal_daemon_config_count (ShoalDaemon *self, const gchar *group, const gchar *key, guint fallback,
                           guint *value, GError **error)
{
  g_autoptr(GError) error_local = NULL;
  gint64 n;

  *value = fallback;
  if (!g_key_file_has_key (self->config, group, key, NULL))
    return TRUE;
  n = g_key_file_get_int64 (self->config, group, key, &error_local);
  if (error_local != NULL || n < 0 || n > G_MAXINT)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("[%s] %s: not a number of 0 or more"), group, key);
      return FALSE;
    }
  *value = (guint) n;
  return TRUE;
}

static gchar *
shoal_daemon_build_url (ShoalDaemon *self, const gchar *address, guint port)
{
  g_autofree gchar *configured = shoal_daemon_config_string (self, "daemon", "server-url");
  const gchar *host = address != NULL ? address : g_get_host_name ();
  gchar *url;

  if (configured != NULL)
    {
      gsize len = strlen (configured);

      while (len > 0 && configured[len - 1] == '/')
        configured[--len] = '\0';
      return g_steal_pointer (&configured);
    }
  if (strchr (host, ':') != NULL)
    url = g_strdup_printf ("http://[%s]:%u", host, port);
  else
    url = g_strdup_printf ("http://%s:%u", host, port);
  return url;
}

static gboolean
shoal_daemon_start_http (ShoalDaemon *self, GError **error)
{
  g_autofree gchar *address = shoal_daemon_config_string (self, "daemon", "http-address");
  g_autoptr(GError) error_local = NULL;
  gint64 port = SHOAL_DAEMON_HTTP_PORT_DEFAULT;
  guint bound_port = 0;
  guint idle_timeout, header_timeout, send_timeout, max_connections, max_per_peer;

  if (self->options.http_port >= 0)
    port = self->options.http_port;
  else if (g_key_file_has_key (self->config, "daemon", "http-port", NULL))
    {
      port = g_key_file_get_int64 (self->config, "daemon", "http-port", &error_local);
      if (error_local != NULL || port < 0 || port > G_MAXUINT16)
        {
          g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                               _("[daemon] http-port: not a port number (0 to 65535)"));
          return FALSE;
        }
    }
  if (!shoal_daemon_config_count (self, "daemon", "http-idle-timeout", SHOAL_HTTP_IDLE_TIMEOUT_DEFAULT,
                                  &idle_timeout, error) ||
      !shoal_daemon_config_count (self, "daemon", "http-header-timeout", SHOAL_HTTP_HEADER_TIMEOUT_DEFAULT,
                                  &header_timeout, error) ||
      !shoal_daemon_config_count (self, "daemon", "http-send-timeout", SHOAL_HTTP_SEND_TIMEOUT_DEFAULT,
                                  &send_timeout, error) ||
      !shoal_daemon_config_count (self, "daemon", "http-max-connections", SHOAL_HTTP_MAX_CONNECTIONS_DEFAULT,
                                  &max_connections, error) ||
      !shoal_daemon_config_count (self, "daemon", "http-max-connections-per-client", SHOAL_HTTP_MAX_PER_PEER_DEFAULT,
                                  &max_per_peer, error))
    return FALSE;
  self->http = shoal_http_server_new ("shoald/" PACKAGE_VERSION " ");
  shoal_http_server_set_limits (self->http, idle_timeout, max_connections, max_per_peer);
  shoal_http_server_set_header_timeout (self->http, header_timeout);
  shoal_http_server_set_send_timeout (self->http, send_timeout);
  if (!shoal_daemon_listen (self, address, (guint) port, &bound_port, error))
    {
      g_prefix_error (error, "starting the HTTP server on %s port %u: ",
                      address != NULL ? address : "every address", (guint) port);
      return FALSE;
    }
  self->server_url = shoal_daemon_build_url (self, address, bound_port);
  g_print ("shoald: HTTP server at %s\n", self->server_url);
  shoal_controller_set_http_server (self->controller, self->http, self->server_url);
  if (!shoal_controller_start_services (self->controller, error))
    {
      g_prefix_error (error, "starting the plugins' services: ");
      return FALSE;
    }
  return TRUE;
}

/* ---- the bus ------------------------------------------------------------- */

static const struct
{
  const gchar *interface;
  const gchar *method;
} read_only_methods[] = {
  { "org.shoal.Shoal1.Manager", "ListSteps" },
  { "org.shoal.Shoal1.Manager", "ListPlugins" },
  { "org.shoal.Shoal1.Manager", "ListRecipes" },
  { "org.shoal.Shoal1.Manager", "DiffRecipe" },
  { "org.shoal.Shoal1.Manager", "GetStats" },
  { "org.shoal.Shoal1.Manager", "ListImages" },
  { "org.shoal.Shoal1.Manager", "InspectImage" },
  { "org.shoal.Shoal1.Device", "GetJournal" },
};

static void
shoal_daemon_on_name_acquired (GDBusConnection *connection,
                               const gchar     *name,
                               gpointer         user_data)
{
  ShoalDaemon *self = SHOAL_DAEMON (user_data);

  self->name_acquired = TRUE;
  shoal_dbus_manager_exporter_set_daemon_state (self->manager, "running");
  g_info ("owning %s", name);
}

static void
shoal_daemon_on_name_lost (GDBusConnection *connection,
                           const gchar     *name,
                           gpointer         user_data)
{
  ShoalDaemon *self = SHOAL_DAEMON (user_data);
  g_autofree gchar *reason = NULL;

  if (self->name_acquired)
    reason = g_strdup_printf (_("Lost the bus name %s"), name);
  else
    reason = g_strdup_printf (_("Could not own the bus name %s: another shoald owns it, "
                                "or the bus does not let this user own it"), name);
  shoal_daemon_quit (self, reason);
}

static void
shoal_daemon_on_connection_closed (GDBusConnection *connection,
                                   gboolean         remote_peer_vanished,
                                   GError          *error,
                                   gpointer         user_data)
{
  shoal_daemon_quit (SHOAL_DAEMON (user_data), _("The bus connection was closed"));
}

static gboolean
shoal_daemon_connect (ShoalDaemon *self, GError **error)
{
  if (self->connection != NULL)
    return TRUE;
  if (self->options.address != NULL)
    self->connection = g_dbus_connection_new_for_address_sync (self->options.address,
                                                               G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                               G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                               NULL, NULL, error);
  else
    self->connection = g_bus_get_sync (self->options.bus_type, NULL, error);
  if (self->connection == NULL)
    {
      g_prefix_error (error, "connecting to the bus: ");
      return FALSE;
    }
  g_dbus_connection_set_exit_on_close (self->connection, FALSE);
  self->closed_id = g_signal_connect (self->connection, "closed",
                                      G_CALLBACK (shoal_daemon_on_connection_closed), self);
  return TRUE;
}

/* Before anything is opened: a daemon that will not get the bus name
 * (another shoald has it) stops here, before it touches its state
 * directory or starts a service. The name is still owned last; one that
 * another daemon takes in between is reported by on_name_lost. */
static gboolean
shoal_daemon_check_name (ShoalDaemon *self, GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  gboolean has_owner = FALSE;

  if (!shoal_daemon_connect (self, error))
    return FALSE;
  reply = g_dbus_connection_call_sync (self->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", SHOAL_DBUS_NAME), G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has_owner);
  if (has_owner)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY,
                   _("Could not own the bus name %s: another shoald owns it"), SHOAL_DBUS_NAME);
      return FALSE;
    }
  return TRUE;
}

/* The image store of libshoal, as the image plugins find it: [image-store]
 * path= or <state dir>/image-store; [image-store] chunk-size= for imports
 * that do not choose one. A store that cannot be opened does not stop the
 * daemon: the image methods then answer NotSupported. */
static ShoalImageStore *
shoal_daemon_open_image_store (ShoalDaemon *self)
{
  g_autofree gchar *root = shoal_daemon_config_string (self, "image-store", "path");
  g_autofree gchar *chunk_size = shoal_daemon_config_string (self, "image-store", "chunk-size");
  g_autoptr(ShoalImageStore) store = NULL;
  g_autoptr(GError) error = NULL;

  if (root == NULL)
    root = shoal_image_files_default_root (self->state_dir);
  store = shoal_image_store_new (root, &error);
  if (store == NULL)
    {
      g_warning ("opening the image store %s: %s", root, error->message);
      return NULL;
    }
  shoal_image_store_configure_chunk_size (store, chunk_size);
  g_debug ("image store in %s", root);
  return g_steal_pointer (&store);
}

static gboolean
shoal_daemon_export (ShoalDaemon *self, GError **error)
{
  g_autoptr(ShoalImageStore) image_store = NULL;
  guint image_keep = 0;

  gboolean system_bus = self->options.address == NULL &&
                        self->options.bus_type == G_BUS_TYPE_SYSTEM;

  /* 0: every image of a name stays */
  if (!shoal_daemon_config_count (self, "image-store", "keep-per-name", 0, &image_keep, error))
    return FALSE;
  self->auth = shoal_dbus_auth_new (system_bus, error);
  if (self->auth == NULL)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (read_only_methods); i++)
    shoal_dbus_auth_add_read_only (self->auth, read_only_methods[i].interface,
                                   read_only_methods[i].method);

  /* devices are added before the connection: no InterfacesAdded storm */
  self->object_manager = shoal_dbus_object_manager_new (SHOAL_DBUS_PATH);
  self->fleet = shoal_dbus_fleet_new (self->controller, self->object_manager, self->auth);
  if (g_key_file_has_key (self->config, "daemon", "property-interval-ms", NULL))
    {
      gint64 ms = g_key_file_get_int64 (self->config, "daemon", "property-interval-ms", NULL);

      shoal_dbus_fleet_set_flush_interval (self->fleet, (guint) CLAMP (ms, 0, 60000));
    }
  shoal_dbus_fleet_start (self->fleet);
  if (!shoal_dbus_object_manager_set_connection (self->object_manager, self->connection, error))
    return FALSE;

  self->manager = shoal_dbus_manager_exporter_new (self->controller, self->fleet,
                                                   self->recipes, self->auth);
  shoal_dbus_manager_exporter_set_server_url (self->manager, self->server_url);
  image_store = shoal_daemon_open_image_store (self);
  shoal_dbus_manager_exporter_set_image_store (self->manager, image_store, image_keep);
  if (!shoal_dbus_manager_exporter_export (self->manager, self->connection, error))
    return FALSE;

  self->owner_id = g_bus_own_name_on_connection (self->connection, SHOAL_DBUS_NAME,
                                                 G_BUS_NAME_OWNER_FLAGS_NONE,
                                                 shoal_daemon_on_name_acquired,
                                                 shoal_daemon_on_name_lost,
                                                 self, NULL);
  return TRUE;
}

/* the HTTP server, the plugins' services (which resume interrupted
 * deployments), then the bus */
static gboolean
shoal_daemon_serve (ShoalDaemon *self, GError **error)
{
  self->served = TRUE;
  g_clear_handle_id (&self->first_sync_timeout_id, g_source_remove);
  if (!shoal_daemon_start_http (self, error))
    return FALSE;
  if (!shoal_daemon_connect (self, error))
    return FALSE;
  if (!shoal_daemon_export (self, error))
    return FALSE;
  shoal_daemon_recipes_start_timer (self->recipes);
  return TRUE;
}

/* serves with the recipes at hand; the deployments to resume read
 * theirs from the local clone (shoal_controller_set_recipe_loader()) */
static void
shoal_daemon_serve_offline (ShoalDaemon *self)
{
  g_autoptr(GError) error = NULL;

  if (self->served || self->stopping)
    return;
  if (!shoal_daemon_serve (self, &error))
    shoal_daemon_quit (self, error->message);
}

static gboolean
shoal_daemon_first_sync_timeout_cb (gpointer user_data)
{
  ShoalDaemon *self = SHOAL_DAEMON (user_data);

  self->first_sync_timeout_id = 0;
  g_warning ("no answer from the recipe repository after %u s: resuming with the local clone's recipes",
             (guint) SHOAL_DAEMON_FIRST_SYNC_TIMEOUT_S);
  shoal_daemon_serve_offline (self);
  return G_SOURCE_REMOVE;
}

static void
shoal_daemon_first_sync_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(ShoalDaemon) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!shoal_daemon_recipes_sync_finish (SHOAL_DAEMON_RECIPES (source), result, &error))
    {
      g_warning ("recipe sync at start-up: %s", error->message);
      shoal_daemon_serve_offline (self);
      return;
    }
  if (self->served || self->stopping)
    return;
  if (!shoal_daemon_serve (self, &error))
    shoal_daemon_quit (self, error->message);
}

static gboolean
shoal_daemon_has_deployments_to_resume (ShoalDaemon *self)
{
  g_autoptr(GPtrArray) devices = shoal_controller_get_devices (self->controller);

  for (guint i = 0; i < devices->len; i++)
    {
      if (shoal_device_state_is_active (shoal_device_get_state (g_ptr_array_index (devices, i))))
        return TRUE;
    }
  return FALSE;
}

/**
 * shoal_daemon_start:
 * @self: a #ShoalDaemon
 * @error: a #GError
 *
 * Starts everything; the daemon then serves from the main loop.
 *
 * With a recipe repository and deployments to resume, the first fetch
 * completes (or fails, or takes more than 30 s, and the local clone's
 * recipes are used) before the services start and those deployments
 * resume, so the end of the start-up happens on the main loop; a failure
 * there emits ::quit.
 *
 * Returns: %TRUE on success
 */
gboolean
shoal_daemon_start (ShoalDaemon *self, GError **error)
{
  g_return_val_if_fail (SHOAL_IS_DAEMON (self), FALSE);

  if (!shoal_daemon_load_config (self, error))
    return FALSE;
  if (!shoal_daemon_check_name (self, error))
    return FALSE;
  shoal_daemon_load_plugins (self);
  if (!shoal_daemon_open_controller (self, error))
    return FALSE;
  if (!shoal_daemon_recipes_has_repo (self->recipes))
    return shoal_daemon_serve (self, error);
  if (!shoal_daemon_has_deployments_to_resume (self))
    {
      shoal_daemon_recipes_start_sync_async (self->recipes, NULL, shoal_daemon_first_sync_cb,
                                             g_object_ref (self));
      return shoal_daemon_serve (self, error);
    }
  shoal_daemon_recipes_start_sync_async (self->recipes, NULL, shoal_daemon_first_sync_cb,
                                         g_object_ref (self));
  self->first_sync_timeout_id = g_timeout_add_seconds (SHOAL_DAEMON_FIRST_SYNC_TIMEOUT_S,
                                                       shoal_daemon_first_sync_timeout_cb, self);
  return TRUE;
}

/**
 * shoal_daemon_convert_store:
 * @self: a daemon, not started
 * @error: return location for a #GError
 *
 * Converts the store of the state directory, if it was made without
 * auto-vacuum, to incremental auto-vacuum (shoal_controller_convert_store()):
 * one VACUUM, which rewrites the whole file and may take minutes, hence
 * only on shoald --convert-store, and refused (Busy) while a shoald uses
 * the state directory.
 *
 * Returns: %TRUE when the store uses incremental auto-vacuum
 */
gboolean
shoal_daemon_convert_store (ShoalDaemon *self, GError **error)
{
  g_autoptr(ShoalPluginEngine) engine = NULL;
  g_autoptr(ShoalController) controller = NULL;
  gboolean converted = FALSE;

  g_return_val_if_fail (SHOAL_IS_DAEMON (self), FALSE);
  if (!shoal_daemon_load_config (self, error))
    return FALSE;
  /* no plugin: only the state directory's lock and store */
  engine = shoal_plugin_engine_new ();
  controller = shoal_controller_new (engine, self->state_dir);
  if (!shoal_controller_convert_store (controller, &converted, error))
    return FALSE;
  if (converted)
    g_print (_("shoald: the store in %s now uses incremental auto-vacuum\n"), self->state_dir);
  else
    g_print (_("shoald: the store in %s uses incremental auto-vacuum already: nothing to do\n"),
             self->state_dir);
  return TRUE;
}

static void
shoal_daemon_committed_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  ShoalDaemon *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;

  if (!shoal_controller_commit_finish (SHOAL_CONTROLLER (source), result, &error))
    g_warning ("committing to the store on shutdown: %s", error->message);
  shoal_controller_close (self->controller);
  self->closed = TRUE;
  if (self->http != NULL)
    soup_server_disconnect (self->http);
  if (self->manager != NULL)
    shoal_dbus_manager_exporter_unexport (self->manager);
  if (self->connection != NULL && !g_dbus_connection_is_closed (self->connection))
    g_dbus_connection_flush_sync (self->connection, NULL, NULL);
  g_task_return_boolean (task, TRUE);
}

/**
 * shoal_daemon_stop_async:
 * @self: a #ShoalDaemon
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when stopped
 * @user_data: for @callback
 *
 * Releases the bus name, commits what is pending and closes the store.
 */
void
shoal_daemon_stop_async (ShoalDaemon         *self,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (SHOAL_IS_DAEMON (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, shoal_daemon_stop_async);
  if (self->stopping || self->controller == NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  self->stopping = TRUE;
  if (self->manager != NULL)
    shoal_dbus_manager_exporter_set_daemon_state (self->manager, "stopping");
  if (self->owner_id != 0)
    g_bus_unown_name (self->owner_id);
  self->owner_id = 0;
  if (self->fleet != NULL)
    shoal_dbus_fleet_stop (self->fleet);
  shoal_controller_commit_async (self->controller, cancellable,
                                 shoal_daemon_committed_cb, g_steal_pointer (&task));
}

/**
 * shoal_daemon_stop_finish:
 * @self: a #ShoalDaemon
 * @result: the result
 * @error: a #GError
 *
 * Returns: %TRUE once stopped
 */
gboolean
shoal_daemon_stop_finish (ShoalDaemon *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * shoal_daemon_get_server_url:
 * @self: a #ShoalDaemon
 *
 * Returns: (nullable): the base URL of the HTTP server, once started
 */
const gchar *
shoal_daemon_get_server_url (ShoalDaemon *self)
{
  g_return_val_if_fail (SHOAL_IS_DAEMON (self), NULL);
  return self->server_url;
}
