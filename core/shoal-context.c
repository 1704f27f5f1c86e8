/* shoal-context.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-http.h"

#include "shoal-context.h"
#include "shoal-controller-private.h"
#include "shoal-error.h"

/**
 * ShoalContext:
 *
 * What the daemon offers plugins, and all they may use of it: the HTTP
 * server agents talk to, device look-ups, the first-contact registration
 * of devices, boot decisions, recipes, a persisted key/value store, the
 * configuration, and the state and data directories.
 */
struct _ShoalContext
{
  GObject          parent_instance;

  ShoalController *controller;    /* unowned: the controller owns us */
  GHashTable      *paths;         /* registered HTTP paths */
};

G_DEFINE_FINAL_TYPE (ShoalContext, shoal_context, G_TYPE_OBJECT)

enum {
  SIGNAL_DEVICE_REMOVED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
shoal_context_finalize (GObject *object)
{
  ShoalContext *self = SHOAL_CONTEXT (object);

  g_clear_pointer (&self->paths, g_hash_table_unref);
  G_OBJECT_CLASS (shoal_context_parent_class)->finalize (object);
}

static void
shoal_context_class_init (ShoalContextClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = shoal_context_finalize;

  /**
   * ShoalContext::device-removed:
   * @self: the context
   * @device: the device, no longer in the daemon's record
   *
   * Emitted on the main context when a device has been removed (shoalctl
   * remove, RemoveDevice), so that a plugin deletes what it keeps of it
   * (files in its folder of the state directory, for instance). @device
   * still has its id, token and metadata.
   */
  signals[SIGNAL_DEVICE_REMOVED] =
    g_signal_new ("device-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, SHOAL_TYPE_DEVICE);
}

static void
shoal_context_init (ShoalContext *self)
{
  self->paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

ShoalContext *
shoal_context_new (ShoalController *controller)
{
  ShoalContext *self = g_object_new (SHOAL_TYPE_CONTEXT, NULL);

  self->controller = controller;
  return self;
}

/* the controller's: @device was removed */
void
shoal_context_emit_device_removed (ShoalContext *self, ShoalDevice *device)
{
  g_signal_emit (self, signals[SIGNAL_DEVICE_REMOVED], 0, device);
}

/**
 * shoal_context_get_server_url:
 * @self: a context
 *
 * Returns: (nullable): the base URL of the daemon's HTTP server, as agents reach it
 */
const gchar *
shoal_context_get_server_url (ShoalContext *self)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  return shoal_controller_get_server_url (self->controller);
}

/**
 * shoal_context_get_state_dir:
 * @self: a context
 *
 * Returns: the daemon's state directory; plugins use a folder of their own in it
 */
const gchar *
shoal_context_get_state_dir (ShoalContext *self)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  return shoal_controller_get_state_dir (self->controller);
}

/**
 * shoal_context_get_data_dir:
 * @self: a context
 *
 * Returns: the directory of shoal's installed data (templates, examples)
 */
const gchar *
shoal_context_get_data_dir (ShoalContext *self)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  return shoal_controller_get_data_dir (self->controller);
}

/**
 * shoal_context_get_config_string:
 * @self: a context
 * @group: a group of the configuration file, usually the plugin's name
 * @key: a key
 * @default_value: (nullable): what to return if it is not set
 *
 * Returns: (transfer full) (nullable): the value
 */
gchar *
shoal_context_get_config_string (ShoalContext *self,
                                 const gchar  *group,
                                 const gchar  *key,
                                 const gchar  *default_value)
{
  GKeyFile *config;
  gchar *value;

  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  config = shoal_controller_get_config (self->controller);
  value = g_key_file_get_string (config, group, key, NULL);
  return value != NULL ? value : g_strdup (default_value);
}

gint64
shoal_context_get_config_int (ShoalContext *self,
                              const gchar  *group,
                              const gchar  *key,
                              gint64        default_value)
{
  g_autoptr(GError) error = NULL;
  GKeyFile *config;
  gint64 value;

  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), default_value);
  config = shoal_controller_get_config (self->controller);
  value = g_key_file_get_int64 (config, group, key, &error);
  return error != NULL ? default_value : value;
}

/**
 * shoal_context_add_http_handler:
 * @self: a context
 * @path: the path prefix to serve, such as "/boot"
 * @callback: (scope notified): the handler
 * @user_data: (closure callback): data for @callback
 * @destroy: (destroy user_data) (nullable): frees @user_data
 * @error: return location for a #GError
 *
 * Serves @path on the daemon's HTTP server.
 *
 * Returns: %FALSE if there is no server or @path is taken
 */
gboolean
shoal_context_add_http_handler (ShoalContext        *self,
                                const gchar         *path,
                                SoupServerCallback   callback,
                                gpointer             user_data,
                                GDestroyNotify       destroy,
                                GError             **error)
{
  SoupServer *server;

  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), FALSE);
  g_return_val_if_fail (path != NULL && path[0] == '/', FALSE);
  g_return_val_if_fail (callback != NULL, FALSE);

  server = shoal_controller_get_http_server (self->controller);
  if (server == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_SUPPORTED,
                   _("the daemon runs no HTTP server"));
      return FALSE;
    }
  if (g_hash_table_contains (self->paths, path) || g_str_has_prefix (path, "/agent/v1/inventory") ||
      g_strcmp0 (path, "/agent/v1/event") == 0 || g_strcmp0 (path, "/agent/v1/next") == 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS, _("HTTP path %s is already served"), path);
      return FALSE;
    }
  g_hash_table_add (self->paths, g_strdup (path));
  soup_server_add_handler (server, path, callback, user_data, destroy);
  return TRUE;
}

void
shoal_context_remove_http_handler (ShoalContext *self,
                                   const gchar  *path)
{
  SoupServer *server;

  g_return_if_fail (SHOAL_IS_CONTEXT (self));
  server = shoal_controller_get_http_server (self->controller);
  if (server != NULL && g_hash_table_remove (self->paths, path))
    {
      soup_server_remove_handler (server, path);
      shoal_http_server_allow_body (server, path, 0);
    }
}

/**
 * shoal_context_allow_http_body:
 * @self: a context
 * @path: a path served by a handler of shoal_context_add_http_handler()
 * @max_bytes: the largest request body @path and the paths below it take
 *
 * The daemon's HTTP server refuses, before reading it, any request body
 * that its route does not allow (413): by default, every body. A route that
 * takes bodies says how large they may be here, for every method
 * (shoal_context_allow_http_body_full() names the methods).
 */
void
shoal_context_allow_http_body (ShoalContext *self,
                               const gchar  *path,
                               gint64        max_bytes)
{
  shoal_context_allow_http_body_full (self, path, NULL, max_bytes);
}

/**
 * shoal_context_allow_http_body_full:
 * @self: a context
 * @path: a path served by a handler of shoal_context_add_http_handler()
 * @methods: (nullable) (array zero-terminated=1): the methods whose
 *   requests may have a body ("POST", "PUT"...); %NULL for every method
 * @max_bytes: the largest request body @path and the paths below it take
 *
 * As shoal_context_allow_http_body(), for @methods alone: a request of
 * another method that has a body is refused before it is read (413).
 */
void
shoal_context_allow_http_body_full (ShoalContext       *self,
                                    const gchar        *path,
                                    const gchar *const *methods,
                                    gint64              max_bytes)
{
  SoupServer *server;

  g_return_if_fail (SHOAL_IS_CONTEXT (self));
  g_return_if_fail (max_bytes >= 0);
  server = shoal_controller_get_http_server (self->controller);
  if (server != NULL && g_hash_table_contains (self->paths, path))
    shoal_http_server_allow_body_full (server, path, methods, max_bytes);
}

/**
 * shoal_context_lookup_device:
 * @self: a context
 * @id: a device id
 *
 * Returns: (transfer none) (nullable): the device
 */
ShoalDevice *
shoal_context_lookup_device (ShoalContext *self,
                             const gchar  *id)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  return shoal_controller_lookup_device (self->controller, id);
}

/**
 * shoal_context_lookup_device_by_mac:
 * @self: a context
 * @mac: a MAC address, any case
 *
 * Returns: (transfer none) (nullable): the device
 */
ShoalDevice *
shoal_context_lookup_device_by_mac (ShoalContext *self,
                                    const gchar  *mac)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  return shoal_controller_lookup_device_by_mac (self->controller, mac);
}

/**
 * shoal_context_lookup_device_by_uuid:
 * @self: a context
 * @uuid: an SMBIOS UUID
 *
 * Returns: (transfer none) (nullable): the device, or %NULL when none
 *   has @uuid, when it is a placeholder that many boards report (all
 *   zeros, all FF, ...), or when more than one device has it (a store
 *   written before UUIDs were unique)
 */
ShoalDevice *
shoal_context_lookup_device_by_uuid (ShoalContext *self,
                                     const gchar  *uuid)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  return shoal_controller_lookup_device_by_uuid (self->controller, uuid);
}

/**
 * shoal_context_lookup_device_by_token:
 * @self: a context
 * @token: the token an agent presented
 *
 * Returns: (transfer none) (nullable): the device the token belongs to
 */
ShoalDevice *
shoal_context_lookup_device_by_token (ShoalContext *self,
                                      const gchar  *token)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  return shoal_controller_lookup_device_by_token (self->controller, token);
}

/**
 * shoal_context_device_seen:
 * @self: a context
 * @mac: the MAC address the device used
 * @uuid: (nullable): its SMBIOS UUID
 * @source: what saw it, such as "dhcp"
 * @error: return location for a #GError
 *
 * Reports a device's sign of life; a new device is registered, matched
 * to a recipe and, with auto-deploy on, starts its deployment (claim 15).
 * Fails with %SHOAL_ERROR_EXISTS, journaled on the devices concerned,
 * when @mac and @uuid belong to different devices or @mac's device has
 * another UUID: the machine must then not be deployed as either.
 *
 * Returns: (transfer none) (nullable): the device
 */
ShoalDevice *
shoal_context_device_seen (ShoalContext  *self,
                           const gchar   *mac,
                           const gchar   *uuid,
                           const gchar   *source,
                           GError       **error)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  g_return_val_if_fail (mac != NULL, NULL);
  return shoal_controller_device_seen (self->controller, mac, uuid,
                                       source != NULL ? source : "network", error);
}

ShoalBootAction
shoal_context_get_boot_action (ShoalContext *self,
                               ShoalDevice  *device)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), SHOAL_BOOT_ACTION_IGNORE);
  g_return_val_if_fail (SHOAL_IS_DEVICE (device), SHOAL_BOOT_ACTION_IGNORE);
  return shoal_controller_get_boot_action (self->controller, device);
}

/**
 * shoal_context_issue_boot_token:
 * @self: a context
 * @device: the device a boot script is made for
 *
 * The token a network boot service puts in @device's boot script (kernel
 * command line, boot file URLs): the deployment's token until the
 * device's agent has used it, then a new one each time, the one before
 * refused and the device's journal warned. Ask only for a script that
 * deploys, and put the token in nothing else.
 *
 * A new token is durable only once the store has committed it: send the
 * script after shoal_context_commit_async() has completed, never before
 * (after a crash in between, the store would hold the token before, and
 * the machine's agent one that nobody knows).
 *
 * Returns: (transfer full) (nullable): the token
 */
gchar *
shoal_context_issue_boot_token (ShoalContext *self,
                                ShoalDevice  *device)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  g_return_val_if_fail (SHOAL_IS_DEVICE (device), NULL);
  return shoal_controller_issue_boot_token (self->controller, device);
}

/**
 * shoal_context_lookup_recipe:
 * @self: a context
 * @name: a recipe name
 *
 * Returns: (transfer none) (nullable): the recipe
 */
ShoalRecipe *
shoal_context_lookup_recipe (ShoalContext *self,
                             const gchar  *name)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  return shoal_controller_lookup_recipe (self->controller, name);
}

/**
 * shoal_context_get_devices:
 * @self: a context
 *
 * Returns: (transfer container) (element-type ShoalDevice): every device
 */
GPtrArray *
shoal_context_get_devices (ShoalContext *self)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  return shoal_controller_get_devices (self->controller);
}

/**
 * shoal_context_kv_get:
 * @self: a context
 * @ns: a namespace, usually the plugin's name
 * @key: a key
 *
 * Returns: (transfer full) (nullable): the value
 */
gchar *
shoal_context_kv_get (ShoalContext *self,
                      const gchar  *ns,
                      const gchar  *key)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  return shoal_controller_kv_get (self->controller, ns, key);
}

/**
 * shoal_context_kv_set:
 * @self: a context
 * @ns: a namespace
 * @key: a key
 * @value: (nullable): the value, or %NULL to remove the key
 *
 * Stores a value; it is durable after the next commit
 * (shoal_context_commit_async()).
 */
void
shoal_context_kv_set (ShoalContext *self,
                      const gchar  *ns,
                      const gchar  *key,
                      const gchar  *value)
{
  g_return_if_fail (SHOAL_IS_CONTEXT (self));
  g_return_if_fail (ns != NULL && key != NULL);
  shoal_controller_kv_set (self->controller, ns, key, value);
}

/**
 * shoal_context_kv_list:
 * @self: a context
 * @ns: a namespace
 *
 * Returns: (transfer full) (element-type utf8 utf8): key -> value
 */
GHashTable *
shoal_context_kv_list (ShoalContext *self,
                       const gchar  *ns)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), NULL);
  return shoal_controller_kv_list (self->controller, ns);
}

/**
 * shoal_context_commit_async:
 * @self: a context
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once everything so far is durable
 * @user_data: (closure callback): data for @callback
 */
void
shoal_context_commit_async (ShoalContext        *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_return_if_fail (SHOAL_IS_CONTEXT (self));
  shoal_controller_commit_async (self->controller, cancellable, callback, user_data);
}

gboolean
shoal_context_commit_finish (ShoalContext  *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (SHOAL_IS_CONTEXT (self), FALSE);
  return shoal_controller_commit_finish (self->controller, result, error);
}
