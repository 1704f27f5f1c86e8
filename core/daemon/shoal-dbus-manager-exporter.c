/* shoal-dbus-manager-exporter.c: the org.shoal.Shoal1.Manager object
 *
 * Exports the manager interface at /org/shoal/Shoal1 and answers its
 * methods by driving the controller. Arguments are checked first, for
 * every entry of a batch, so that a bad call changes nothing and its error
 * names the argument at fault. A change is committed to the store, and the
 * property changes it caused are sent, before the method returns.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-controller-private.h"
#include "shoal-dbus-images.h"
#include "shoal-dbus-manager-exporter.h"
#include "shoal-dbus-util.h"
#include "shoal-error.h"

#define SHOAL_DEVICE_ID_MAX 64

struct _ShoalDBusManagerExporter
{
  GObject             parent_instance;

  ShoalController    *controller;
  ShoalDBusFleet     *fleet;
  ShoalDaemonRecipes *recipes;
  ShoalDBusAuth      *auth;
  ShoalDBusManager   *skeleton;
  ShoalDBusImages    *images;
  guint               n_devices;
  gint64              started_us;
};

G_DEFINE_TYPE (ShoalDBusManagerExporter, shoal_dbus_manager_exporter, G_TYPE_OBJECT)

static void
shoal_dbus_manager_exporter_dispose (GObject *object)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (object);

  if (self->skeleton != NULL)
    shoal_dbus_manager_exporter_unexport (self);
  g_clear_object (&self->images);
  g_clear_object (&self->skeleton);
  g_clear_object (&self->controller);
  g_clear_object (&self->fleet);
  g_clear_object (&self->recipes);
  g_clear_object (&self->auth);
  G_OBJECT_CLASS (shoal_dbus_manager_exporter_parent_class)->dispose (object);
}

static void
shoal_dbus_manager_exporter_class_init (ShoalDBusManagerExporterClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = shoal_dbus_manager_exporter_dispose;
}

static void
shoal_dbus_manager_exporter_init (ShoalDBusManagerExporter *self)
{
  self->started_us = g_get_monotonic_time ();
}

static const gchar *
nonnull (const gchar *str)
{
  return str != NULL ? str : "";
}

static void
flush_fleet_cb (gpointer user_data)
{
  shoal_dbus_fleet_flush (SHOAL_DBUS_FLEET (user_data));
}

/* answers once every change is durable and its property changes are sent */
static void
commit_and_return (ShoalDBusManagerExporter *self,
                   GDBusMethodInvocation    *invocation,
                   GVariant                 *reply)
{
  shoal_dbus_commit_and_return (self->controller, invocation, reply,
                                flush_fleet_cb, g_object_ref (self->fleet), g_object_unref);
}

static void
return_invalid (GDBusMethodInvocation *invocation, const gchar *format, ...) G_GNUC_PRINTF (2, 3);

static void
return_invalid (GDBusMethodInvocation *invocation, const gchar *format, ...)
{
  va_list args;
  g_autofree gchar *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_dbus_method_invocation_return_error_literal (invocation, SHOAL_ERROR,
                                                 SHOAL_ERROR_INVALID_ARGUMENT, message);
}

/* ---- checking arguments ------------------------------------------------- */

static gboolean
device_id_is_valid (const gchar *id)
{
  gsize len = strlen (id);

  if (len == 0 || len > SHOAL_DEVICE_ID_MAX)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      if (!g_ascii_isalnum (id[i]) && strchr ("._:-", id[i]) == NULL)
        return FALSE;
    }
  return TRUE;
}

typedef struct
{
  GVariant     *tuple;  /* owns the strings below */
  const gchar  *id;
  gchar       **macs;   /* normalized */
  const gchar  *uuid;   /* NULL when not given */
} EnrollEntry;

static void
enroll_entry_clear (EnrollEntry *entry)
{
  g_clear_pointer (&entry->tuple, g_variant_unref);
  g_strfreev (entry->macs);
}

static gboolean
check_enroll_entry (ShoalDBusManagerExporter *self,
                    guint                     index,
                    GHashTable               *seen,
                    EnrollEntry              *entry,
                    GError                  **error)
{
  g_autofree const gchar **macs = NULL;
  g_autoptr(GPtrArray) normalized = g_ptr_array_new_with_free_func (g_free);

  g_variant_get (entry->tuple, "(&s^a&s&s)", &entry->id, &macs, &entry->uuid);
  if (!device_id_is_valid (entry->id))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("devices[%u].id: “%s” is not a valid device id (1 to %u letters, digits or . _ : -)"),
                   index, entry->id, (guint) SHOAL_DEVICE_ID_MAX);
      return FALSE;
    }
  if (!g_hash_table_add (seen, g_strdup (entry->id)))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("devices[%u].id: “%s” is given twice"), index, entry->id);
      return FALSE;
    }
  if (shoal_controller_lookup_device (self->controller, entry->id) != NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS,
                   _("devices[%u].id: device “%s” is already enrolled"), index, entry->id);
      return FALSE;
    }
  for (guint i = 0; macs[i] != NULL; i++)
    {
      gchar *mac = shoal_dbus_normalize_mac (macs[i]);

      ShoalDevice *owner;

      if (mac == NULL)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                       _("devices[%u].macs[%u]: “%s” is not a MAC address"), index, i, macs[i]);
          return FALSE;
        }
      g_ptr_array_add (normalized, mac);
      owner = shoal_controller_lookup_device_by_mac (self->controller, mac);
      /* "/" cannot start an id: MACs and ids share the table */
      if (owner != NULL || !g_hash_table_add (seen, g_strconcat ("/", mac, NULL)))
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS,
                       _("devices[%u].macs[%u]: %s already belongs to device “%s”"), index, i, mac,
                       owner != NULL ? shoal_device_get_id (owner) : _("another device of this batch"));
          return FALSE;
        }
    }
  g_ptr_array_add (normalized, NULL);
  entry->macs = (gchar **) g_ptr_array_free (g_steal_pointer (&normalized), FALSE);
  if (entry->uuid[0] == '\0')
    entry->uuid = NULL;
  else if (!shoal_controller_uuid_is_valid (entry->uuid))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("devices[%u].uuid: “%s” is not a UUID"), index, entry->uuid);
      return FALSE;
    }
  else if (!shoal_controller_uuid_is_placeholder (entry->uuid))
    {
      /* a UUID is unique; "%" cannot start an id */
      ShoalDevice *owner = shoal_controller_lookup_device_by_uuid (self->controller, entry->uuid);
      g_autofree gchar *key = g_ascii_strdown (entry->uuid, -1);

      if (owner != NULL || !g_hash_table_add (seen, g_strconcat ("%", key, NULL)))
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS,
                       _("devices[%u].uuid: %s already belongs to device “%s”"), index, entry->uuid,
                       owner != NULL ? shoal_device_get_id (owner) : _("another device of this batch"));
          return FALSE;
        }
    }
  return TRUE;
}

/* looks up every id of @ids, or fails naming the first unknown one or
 * the first one given twice (a device is named once: a second Deploy of
 * it in one call would fail after the first started it) */
static GPtrArray *
lookup_devices (ShoalDBusManagerExporter *self,
                const gchar * const      *ids,
                GError                  **error)
{
  g_autoptr(GPtrArray) devices = g_ptr_array_new ();
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; ids[i] != NULL; i++)
    {
      ShoalDevice *device = shoal_controller_lookup_device (self->controller, ids[i]);

      if (device == NULL)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                       _("ids[%u]: no device “%s”"), i, ids[i]);
          return NULL;
        }
      if (!g_hash_table_add (seen, (gpointer) ids[i]))
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                       _("ids[%u]: device “%s” is named twice"), i, ids[i]);
          return NULL;
        }
      g_ptr_array_add (devices, device);
    }
  return g_steal_pointer (&devices);
}

/* ---- devices ------------------------------------------------------------- */

static gboolean
handle_enroll_devices (ShoalDBusManager      *skeleton,
                       GDBusMethodInvocation *invocation,
                       GVariant              *devices,
                       gpointer               user_data)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (user_data);
  gsize n = g_variant_n_children (devices);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GArray) entries = g_array_sized_new (FALSE, TRUE, sizeof (EnrollEntry), n);
  g_autoptr(GError) error = NULL;
  GVariantBuilder paths;

  g_array_set_clear_func (entries, (GDestroyNotify) enroll_entry_clear);
  g_array_set_size (entries, n);
  for (gsize i = 0; i < n; i++)
    {
      EnrollEntry *entry = &g_array_index (entries, EnrollEntry, i);

      entry->tuple = g_variant_get_child_value (devices, i);
      if (!check_enroll_entry (self, i, seen, entry, &error))
        {
          g_dbus_method_invocation_return_gerror (invocation, error);
          return G_DBUS_METHOD_INVOCATION_HANDLED;
        }
    }

  g_variant_builder_init (&paths, G_VARIANT_TYPE ("ao"));
  for (gsize i = 0; i < n; i++)
    {
      EnrollEntry *entry = &g_array_index (entries, EnrollEntry, i);
      g_autofree gchar *path = NULL;
      ShoalDevice *device;

      device = shoal_controller_enroll_device (self->controller, entry->id,
                                               (const gchar * const *) entry->macs,
                                               entry->uuid, &error);
      if (device == NULL)
        {
          /* keep what was enrolled: it is in the store either way */
          g_prefix_error (&error, "devices[%u]: ", (guint) i);
          g_variant_builder_clear (&paths);
          shoal_dbus_return_error (invocation, error);
          shoal_controller_commit_async (self->controller, NULL, NULL, NULL);
          return G_DBUS_METHOD_INVOCATION_HANDLED;
        }
      path = shoal_dbus_device_path (entry->id);
      g_variant_builder_add (&paths, "o", path);
    }
  g_info ("enrolled %" G_GSIZE_FORMAT " devices for %s", n,
          g_dbus_method_invocation_get_sender (invocation));
  commit_and_return (self, invocation, g_variant_new ("(ao)", &paths));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_remove_device (ShoalDBusManager      *skeleton,
                      GDBusMethodInvocation *invocation,
                      const gchar           *id,
                      gpointer               user_data)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (user_data);
  g_autoptr(GError) error = NULL;

  if (id[0] == '\0')
    {
      return_invalid (invocation, _("id: no device given"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (!shoal_controller_remove_device (self->controller, id, &error))
    {
      shoal_dbus_return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  commit_and_return (self, invocation, NULL);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* picks the recipe of each device: @recipe, or by matching when empty */
static GPtrArray *
choose_recipes (ShoalDBusManagerExporter *self,
                const gchar * const      *ids,
                GPtrArray                *devices,
                const gchar              *recipe,
                GError                  **error)
{
  g_autoptr(GPtrArray) chosen = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) recipes = NULL;
  ShoalRecipe *named = NULL;

  if (recipe[0] != '\0')
    {
      named = shoal_controller_lookup_recipe (self->controller, recipe);
      if (named == NULL)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                       _("recipe: no recipe “%s”"), recipe);
          return NULL;
        }
    }
  else
    recipes = shoal_controller_get_recipes (self->controller);

  for (guint i = 0; i < devices->len; i++)
    {
      ShoalRecipe *r = named;

      if (r == NULL)
        r = shoal_recipe_select (recipes, g_ptr_array_index (devices, i));
      if (r == NULL)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                       _("ids[%u]: no recipe matches device “%s”"), i, ids[i]);
          return NULL;
        }
      g_ptr_array_add (chosen, g_object_ref (r));
    }
  return g_steal_pointer (&chosen);
}

static gboolean
handle_assign_recipe (ShoalDBusManager      *skeleton,
                      GDBusMethodInvocation *invocation,
                      const gchar * const   *ids,
                      const gchar           *recipe,
                      gpointer               user_data)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (user_data);
  g_autoptr(GPtrArray) devices = NULL;
  g_autoptr(GPtrArray) chosen = NULL;
  g_autoptr(GError) error = NULL;

  if (ids[0] == NULL)
    {
      return_invalid (invocation, _("ids: no device given"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  devices = lookup_devices (self, ids, &error);
  if (devices != NULL)
    chosen = choose_recipes (self, ids, devices, recipe, &error);
  if (chosen == NULL)
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  /* a busy device fails the call before any device is changed */
  for (guint i = 0; i < devices->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (devices, i);

      if (shoal_device_state_is_active (shoal_device_get_state (device)))
        {
          g_dbus_method_invocation_return_error (invocation, SHOAL_ERROR, SHOAL_ERROR_BUSY,
                                                 _("ids[%u]: device %s is being deployed; cancel it first"),
                                                 i, shoal_device_get_id (device));
          return G_DBUS_METHOD_INVOCATION_HANDLED;
        }
    }
  for (guint i = 0; i < devices->len; i++)
    {
      ShoalRecipe *r = g_ptr_array_index (chosen, i);

      /* by matching: chosen again (the same), and marked so */
      if (!shoal_controller_assign_recipe (self->controller, g_ptr_array_index (devices, i),
                                           recipe[0] != '\0' ? shoal_recipe_get_name (r) : NULL, &error))
        {
          g_prefix_error (&error, "ids[%u]: ", i);
          shoal_dbus_return_error (invocation, error);
          shoal_controller_commit_async (self->controller, NULL, NULL, NULL);
          return G_DBUS_METHOD_INVOCATION_HANDLED;
        }
    }
  commit_and_return (self, invocation, NULL);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

typedef gboolean (*DeviceOperation) (ShoalDBusManagerExporter *self,
                                     ShoalDevice              *device,
                                     GHashTable               *recipes_checked,
                                     GError                  **error);

static void
error_free_nullable (gpointer error)
{
  if (error != NULL)
    g_error_free (error);
}

/* Deploy of one device: first whether its recipe's image is in the store
 * (once per recipe and call: @recipes_checked maps a recipe name to its
 * error, or NULL when the image is there) */
static gboolean
deploy_device (ShoalDBusManagerExporter *self,
               ShoalDevice              *device,
               GHashTable               *recipes_checked,
               GError                  **error)
{
  const gchar *name = shoal_device_get_recipe (device);
  ShoalRecipe *recipe = name != NULL ? shoal_controller_lookup_recipe (self->controller, name) : NULL;
  const GError *image_error = NULL;

  /* (a running device, one without a recipe: shoal_controller_deploy says) */
  if (recipe != NULL && self->images != NULL &&
      !shoal_device_state_is_active (shoal_device_get_state (device)))
    {
      gpointer value = NULL;

      if (!g_hash_table_lookup_extended (recipes_checked, name, NULL, &value))
        {
          GError *local = NULL;

          shoal_dbus_images_check_recipe (self->images, recipe, &local);
          g_hash_table_insert (recipes_checked, g_strdup (name), local);
          value = local;
        }
      image_error = value;
    }
  if (image_error != NULL)
    {
      g_propagate_error (error, g_error_copy (image_error));
      return FALSE;
    }
  return shoal_controller_deploy (self->controller, device, error);
}

static gboolean
cancel_device (ShoalDBusManagerExporter *self,
               ShoalDevice              *device,
               GHashTable               *recipes_checked,
               GError                  **error)
{
  return shoal_controller_cancel (self->controller, device, error);
}

/* runs @op on every device; the error tells the first failure and counts */
static gboolean
apply_to_devices (ShoalDBusManagerExporter *self,
                  GPtrArray                *devices,
                  DeviceOperation           op,
                  const gchar              *verb,
                  GError                  **error)
{
  g_autoptr(GError) first = NULL;
  g_autoptr(GHashTable) recipes_checked = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                                 error_free_nullable);
  guint n_failed = 0;

  for (guint i = 0; i < devices->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (devices, i);
      g_autoptr(GError) error_local = NULL;

      if (op (self, device, recipes_checked, &error_local))
        continue;
      n_failed++;
      if (first == NULL)
        {
          first = g_steal_pointer (&error_local);
          g_prefix_error (&first, "%s: ", shoal_device_get_id (device));
        }
    }
  if (first == NULL)
    return TRUE;
  if (n_failed == 1 && devices->len == 1)
    {
      g_propagate_error (error, g_steal_pointer (&first));
      return FALSE;
    }
  /* TRANSLATORS: e.g. "3 of 10 devices could not deploy; dev-1: no recipe" */
  g_set_error (error, first->domain, first->code,
               _("%u of %u devices could not %s; %s"),
               n_failed, devices->len, verb, first->message);
  return FALSE;
}

static GPtrArray *
select_devices (ShoalDBusManagerExporter *self, gboolean for_deploy)
{
  g_autoptr(GPtrArray) all = shoal_controller_get_devices (self->controller);
  g_autoptr(GPtrArray) out = g_ptr_array_new ();

  for (guint i = 0; all != NULL && i < all->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (all, i);
      ShoalDeviceState state = shoal_device_get_state (device);
      gboolean active = shoal_device_state_is_active (state);

      if (for_deploy && !active && state != SHOAL_DEVICE_STATE_INSTALLED &&
          shoal_device_get_recipe (device) != NULL)
        g_ptr_array_add (out, device);
      else if (!for_deploy && active)
        g_ptr_array_add (out, device);
    }
  return g_steal_pointer (&out);
}

static void
handle_device_operation (ShoalDBusManagerExporter *self,
                         GDBusMethodInvocation    *invocation,
                         const gchar * const      *ids,
                         gboolean                  deploy)
{
  g_autoptr(GPtrArray) devices = NULL;
  g_autoptr(GError) error = NULL;
  gboolean ok;

  if (ids[0] == NULL)
    devices = select_devices (self, deploy);
  else
    devices = lookup_devices (self, ids, &error);
  if (devices == NULL)
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }
  if (deploy)
    ok = apply_to_devices (self, devices, deploy_device, _("deploy"), &error);
  else
    ok = apply_to_devices (self, devices, cancel_device, _("cancel"), &error);
  g_info ("%s %u devices for %s", deploy ? "deploying" : "cancelling", devices->len,
          g_dbus_method_invocation_get_sender (invocation));
  if (!ok)
    {
      shoal_dbus_fleet_flush (self->fleet);
      shoal_dbus_return_error (invocation, error);
      shoal_controller_commit_async (self->controller, NULL, NULL, NULL);
      return;
    }
  commit_and_return (self, invocation, NULL);
}

static gboolean
handle_deploy (ShoalDBusManager      *skeleton,
               GDBusMethodInvocation *invocation,
               const gchar * const   *ids,
               gpointer               user_data)
{
  handle_device_operation (SHOAL_DBUS_MANAGER_EXPORTER (user_data), invocation, ids, TRUE);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_cancel (ShoalDBusManager      *skeleton,
               GDBusMethodInvocation *invocation,
               const gchar * const   *ids,
               gpointer               user_data)
{
  handle_device_operation (SHOAL_DBUS_MANAGER_EXPORTER (user_data), invocation, ids, FALSE);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- steps and plugins --------------------------------------------------- */

static gboolean
handle_list_steps (ShoalDBusManager      *skeleton,
                   GDBusMethodInvocation *invocation,
                   gpointer               user_data)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (user_data);
  ShoalPluginEngine *engine = shoal_controller_get_engine (self->controller);
  g_auto(GStrv) names = shoal_plugin_engine_list_steps (engine);
  g_autoptr(GPtrArray) plugins = shoal_plugin_engine_list_plugins (engine);
  g_autoptr(GHashTable) descriptions = g_hash_table_new (g_str_hash, g_str_equal);
  GVariantBuilder builder;

  for (guint i = 0; plugins != NULL && i < plugins->len; i++)
    {
      ShoalPluginInfo *info = g_ptr_array_index (plugins, i);

      g_hash_table_insert (descriptions, info->module, (gpointer) nonnull (info->description));
    }
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sssss)"));
  for (guint i = 0; names != NULL && names[i] != NULL; i++)
    {
      const gchar *module = shoal_plugin_engine_get_step_module (engine, names[i]);
      ShoalStep *step = shoal_plugin_engine_lookup_step (engine, names[i], NULL);

      if (step == NULL)
        continue;
      g_variant_builder_add (&builder, "(sssss)", names[i], nonnull (module),
                             shoal_step_scope_to_string (shoal_step_get_scope (step)),
                             shoal_step_phase_to_string (shoal_step_get_phase (step)),
                             module != NULL ? nonnull (g_hash_table_lookup (descriptions, module)) : "");
    }
  shoal_dbus_manager_complete_list_steps (skeleton, invocation, g_variant_builder_end (&builder));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_list_plugins (ShoalDBusManager      *skeleton,
                     GDBusMethodInvocation *invocation,
                     gpointer               user_data)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (user_data);
  ShoalPluginEngine *engine = shoal_controller_get_engine (self->controller);
  g_autoptr(GPtrArray) plugins = shoal_plugin_engine_list_plugins (engine);
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sssbs)"));
  for (guint i = 0; plugins != NULL && i < plugins->len; i++)
    {
      ShoalPluginInfo *info = g_ptr_array_index (plugins, i);

      g_variant_builder_add (&builder, "(sssbs)", nonnull (info->module), nonnull (info->name),
                             nonnull (info->description), info->loaded, nonnull (info->error));
    }
  shoal_dbus_manager_complete_list_plugins (skeleton, invocation, g_variant_builder_end (&builder));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- recipes ------------------------------------------------------------- */

static gboolean
handle_list_recipes (ShoalDBusManager      *skeleton,
                     GDBusMethodInvocation *invocation,
                     gpointer               user_data)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (user_data);
  g_autoptr(GPtrArray) recipes = shoal_controller_get_recipes (self->controller);
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sssss)"));
  for (guint i = 0; recipes != NULL && i < recipes->len; i++)
    {
      ShoalRecipe *r = g_ptr_array_index (recipes, i);

      g_variant_builder_add (&builder, "(sssss)", shoal_recipe_get_name (r),
                             nonnull (shoal_recipe_get_commit (r)),
                             nonnull (shoal_recipe_get_image_name (r)),
                             nonnull (shoal_recipe_get_source (r)),
                             nonnull (shoal_recipe_get_description (r)));
    }
  shoal_dbus_manager_complete_list_recipes (skeleton, invocation, g_variant_builder_end (&builder));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_add_recipe (ShoalDBusManager      *skeleton,
                   GDBusMethodInvocation *invocation,
                   const gchar           *json,
                   gpointer               user_data)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (user_data);
  g_autoptr(ShoalRecipe) recipe = NULL;
  g_autoptr(GError) error = NULL;

  if (json[0] == '\0')
    {
      return_invalid (invocation, _("json: empty recipe"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  recipe = shoal_recipe_new_from_data (json, -1, "D-Bus", &error);
  if (recipe == NULL || !shoal_controller_add_stored_recipe (self->controller, recipe, &error))
    {
      shoal_dbus_return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_info ("recipe %s added by %s", shoal_recipe_get_name (recipe),
          g_dbus_method_invocation_get_sender (invocation));
  commit_and_return (self, invocation, NULL);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
recipes_synced_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GDBusMethodInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;

  if (!shoal_daemon_recipes_sync_finish (SHOAL_DAEMON_RECIPES (source), result, &error))
    {
      shoal_dbus_return_error (invocation, error);
      return;
    }
  g_dbus_method_invocation_return_value (invocation, NULL);
}

static gboolean
handle_sync_recipes (ShoalDBusManager      *skeleton,
                     GDBusMethodInvocation *invocation,
                     gpointer               user_data)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (user_data);

  shoal_daemon_recipes_sync_async (self->recipes, NULL, recipes_synced_cb,
                                   g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
recipe_ref_set_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GDBusMethodInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;

  if (!shoal_daemon_recipes_set_ref_finish (SHOAL_DAEMON_RECIPES (source), result, &error))
    {
      shoal_dbus_return_error (invocation, error);
      return;
    }
  g_dbus_method_invocation_return_value (invocation, NULL);
}

static gboolean
handle_set_recipe_ref (ShoalDBusManager      *skeleton,
                       GDBusMethodInvocation *invocation,
                       const gchar           *ref,
                       gpointer               user_data)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (user_data);

  if (ref[0] == '\0')
    {
      return_invalid (invocation, _("ref: no branch, tag or commit given"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  shoal_daemon_recipes_set_ref_async (self->recipes, ref, NULL, recipe_ref_set_cb,
                                      g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
recipe_diffed_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GDBusMethodInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *diff = NULL;

  diff = shoal_daemon_recipes_diff_finish (SHOAL_DAEMON_RECIPES (source), result, &error);
  if (diff == NULL)
    {
      shoal_dbus_return_error (invocation, error);
      return;
    }
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(s)", diff));
}

static gboolean
handle_diff_recipe (ShoalDBusManager      *skeleton,
                    GDBusMethodInvocation *invocation,
                    const gchar           *name,
                    const gchar           *from_commit,
                    const gchar           *to_commit,
                    gpointer               user_data)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (user_data);

  if (name[0] == '\0' || from_commit[0] == '\0' || to_commit[0] == '\0')
    {
      return_invalid (invocation, _("%s: must not be empty"),
                      name[0] == '\0' ? "name" : from_commit[0] == '\0' ? "from_commit" : "to_commit");
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  shoal_daemon_recipes_diff_async (self->recipes, name, from_commit, to_commit, NULL,
                                   recipe_diffed_cb, g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- statistics ---------------------------------------------------------- */

/* reads a "VmRSS:   1234 kB" line of /proc/self/status, in bytes */
static guint64
read_proc_status_kb (const gchar *status, const gchar *key)
{
  const gchar *line = status != NULL ? strstr (status, key) : NULL;

  if (line == NULL)
    return 0;
  return g_ascii_strtoull (line + strlen (key), NULL, 10) * 1024;
}

static GVariant *
build_states (ShoalDBusManagerExporter *self)
{
  g_autoptr(GPtrArray) devices = shoal_controller_get_devices (self->controller);
  guint counts[SHOAL_DEVICE_STATE_CANCELLED + 1] = { 0 };
  GVariantBuilder builder;

  for (guint i = 0; devices != NULL && i < devices->len; i++)
    {
      ShoalDeviceState state = shoal_device_get_state (g_ptr_array_index (devices, i));

      if (state <= SHOAL_DEVICE_STATE_CANCELLED)
        counts[state]++;
    }
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{su}"));
  for (guint s = 0; s <= SHOAL_DEVICE_STATE_CANCELLED; s++)
    g_variant_builder_add (&builder, "{su}", shoal_device_state_to_string (s), counts[s]);
  return g_variant_builder_end (&builder);
}

static void
add_store_stats (ShoalDBusManagerExporter *self,
                 GVariantBuilder          *builder)
{
  ShoalStore *store = shoal_controller_get_store (self->controller);
  g_autofree gchar *last_error = NULL;
  guint64 errors = 0;
  guint pending = 0;
  gboolean ok;

  ok = shoal_store_get_health (store, &errors, &pending, &last_error);
  g_variant_builder_add (builder, "{sv}", "store-ok", g_variant_new_boolean (ok));
  g_variant_builder_add (builder, "{sv}", "store-errors", g_variant_new_uint64 (errors));
  g_variant_builder_add (builder, "{sv}", "store-pending", g_variant_new_uint32 (pending));
  g_variant_builder_add (builder, "{sv}", "store-last-error",
                         g_variant_new_string (last_error != NULL ? last_error : ""));
}

static gboolean
handle_get_stats (ShoalDBusManager      *skeleton,
                  GDBusMethodInvocation *invocation,
                  gpointer               user_data)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (user_data);
  g_autofree gchar *status = NULL;
  GVariantBuilder builder;

  g_file_get_contents ("/proc/self/status", &status, NULL, NULL);
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&builder, "{sv}", "transitions",
                         g_variant_new_uint64 (shoal_controller_get_transitions (self->controller)));
  g_variant_builder_add (&builder, "{sv}", "discover-refused",
                         g_variant_new_uint64 (shoal_controller_get_discover_refused (self->controller)));
  g_variant_builder_add (&builder, "{sv}", "devices",
                         g_variant_new_uint32 (shoal_dbus_fleet_get_n_devices (self->fleet)));
  g_variant_builder_add (&builder, "{sv}", "states", build_states (self));
  g_variant_builder_add (&builder, "{sv}", "rss",
                         g_variant_new_uint64 (read_proc_status_kb (status, "VmRSS:")));
  g_variant_builder_add (&builder, "{sv}", "peak-rss",
                         g_variant_new_uint64 (read_proc_status_kb (status, "VmHWM:")));
  g_variant_builder_add (&builder, "{sv}", "property-flushes",
                         g_variant_new_uint64 (shoal_dbus_fleet_get_n_flushes (self->fleet)));
  g_variant_builder_add (&builder, "{sv}", "property-changes",
                         g_variant_new_uint64 (shoal_dbus_fleet_get_n_changes (self->fleet)));
  g_variant_builder_add (&builder, "{sv}", "journal-signals",
                         g_variant_new_uint64 (shoal_dbus_fleet_get_n_journal_signals (self->fleet)));
  g_variant_builder_add (&builder, "{sv}", "denied-calls",
                         g_variant_new_uint64 (shoal_dbus_auth_get_n_denied (self->auth)));
  add_store_stats (self, &builder);
  g_variant_builder_add (&builder, "{sv}", "uptime",
                         g_variant_new_uint64 ((g_get_monotonic_time () - self->started_us) / G_USEC_PER_SEC));
  shoal_dbus_manager_complete_get_stats (skeleton, invocation, g_variant_builder_end (&builder));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- the object ---------------------------------------------------------- */

static void
on_device_added (ShoalController *controller, ShoalDevice *device, gpointer user_data)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (user_data);

  shoal_dbus_manager_set_device_count (self->skeleton, ++self->n_devices);
}

static void
on_device_removed (ShoalController *controller, ShoalDevice *device, gpointer user_data)
{
  ShoalDBusManagerExporter *self = SHOAL_DBUS_MANAGER_EXPORTER (user_data);

  if (self->n_devices > 0)
    self->n_devices--;
  shoal_dbus_manager_set_device_count (self->skeleton, self->n_devices);
}

static const struct
{
  const gchar *signal;
  GCallback    callback;
} manager_handlers[] = {
  { "handle-enroll-devices", G_CALLBACK (handle_enroll_devices) },
  { "handle-remove-device", G_CALLBACK (handle_remove_device) },
  { "handle-assign-recipe", G_CALLBACK (handle_assign_recipe) },
  { "handle-deploy", G_CALLBACK (handle_deploy) },
  { "handle-cancel", G_CALLBACK (handle_cancel) },
  { "handle-list-steps", G_CALLBACK (handle_list_steps) },
  { "handle-list-plugins", G_CALLBACK (handle_list_plugins) },
  { "handle-list-recipes", G_CALLBACK (handle_list_recipes) },
  { "handle-add-recipe", G_CALLBACK (handle_add_recipe) },
  { "handle-sync-recipes", G_CALLBACK (handle_sync_recipes) },
  { "handle-diff-recipe", G_CALLBACK (handle_diff_recipe) },
  { "handle-set-recipe-ref", G_CALLBACK (handle_set_recipe_ref) },
  { "handle-get-stats", G_CALLBACK (handle_get_stats) },
};

/**
 * shoal_dbus_manager_exporter_new:
 * @controller: the controller
 * @fleet: the device objects
 * @recipes: the recipe sources
 * @auth: the authorization of method calls
 *
 * Returns: (transfer full): a new exporter; export it with
 *   shoal_dbus_manager_exporter_export()
 */
ShoalDBusManagerExporter *
shoal_dbus_manager_exporter_new (ShoalController    *controller,
                                 ShoalDBusFleet     *fleet,
                                 ShoalDaemonRecipes *recipes,
                                 ShoalDBusAuth      *auth)
{
  ShoalDBusManagerExporter *self = g_object_new (SHOAL_TYPE_DBUS_MANAGER_EXPORTER, NULL);
  g_autoptr(GPtrArray) devices = shoal_controller_get_devices (controller);

  self->controller = g_object_ref (controller);
  self->fleet = g_object_ref (fleet);
  self->recipes = g_object_ref (recipes);
  self->auth = g_object_ref (auth);
  self->n_devices = devices != NULL ? devices->len : 0;
  self->skeleton = shoal_dbus_manager_skeleton_new ();
  shoal_dbus_manager_set_version (self->skeleton, PACKAGE_VERSION);
  shoal_dbus_manager_set_daemon_state (self->skeleton, "starting");
  shoal_dbus_manager_set_server_url (self->skeleton, "");
  shoal_dbus_manager_set_device_count (self->skeleton, self->n_devices);
  for (guint i = 0; i < G_N_ELEMENTS (manager_handlers); i++)
    g_signal_connect_object (self->skeleton, manager_handlers[i].signal,
                             manager_handlers[i].callback, self, 0);
  g_signal_connect_object (controller, "device-added", G_CALLBACK (on_device_added), self, 0);
  g_signal_connect_object (controller, "device-removed", G_CALLBACK (on_device_removed), self, 0);
  shoal_dbus_auth_watch (auth, G_DBUS_INTERFACE_SKELETON (self->skeleton));
  return self;
}

/**
 * shoal_dbus_manager_exporter_export:
 * @self: a #ShoalDBusManagerExporter
 * @connection: the bus connection
 * @error: a #GError
 *
 * Exports the manager at /org/shoal/Shoal1.
 *
 * Returns: %TRUE on success
 */
gboolean
shoal_dbus_manager_exporter_export (ShoalDBusManagerExporter *self,
                                    GDBusConnection          *connection,
                                    GError                  **error)
{
  g_return_val_if_fail (SHOAL_IS_DBUS_MANAGER_EXPORTER (self), FALSE);

  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->skeleton),
                                         connection, SHOAL_DBUS_PATH, error))
    {
      g_prefix_error (error, "exporting %s: ", SHOAL_DBUS_PATH);
      return FALSE;
    }
  return TRUE;
}

/**
 * shoal_dbus_manager_exporter_unexport:
 * @self: a #ShoalDBusManagerExporter
 *
 * Removes the manager from the bus.
 */
void
shoal_dbus_manager_exporter_unexport (ShoalDBusManagerExporter *self)
{
  g_return_if_fail (SHOAL_IS_DBUS_MANAGER_EXPORTER (self));

  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (self->skeleton));
  if (g_dbus_interface_skeleton_get_connection (G_DBUS_INTERFACE_SKELETON (self->skeleton)) != NULL)
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->skeleton));
}

/**
 * shoal_dbus_manager_exporter_set_daemon_state:
 * @self: a #ShoalDBusManagerExporter
 * @state: "starting", "running" or "stopping"
 */
void
shoal_dbus_manager_exporter_set_daemon_state (ShoalDBusManagerExporter *self,
                                              const gchar              *state)
{
  g_return_if_fail (SHOAL_IS_DBUS_MANAGER_EXPORTER (self));
  shoal_dbus_manager_set_daemon_state (self->skeleton, state);
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (self->skeleton));
}

/**
 * shoal_dbus_manager_exporter_set_server_url:
 * @self: a #ShoalDBusManagerExporter
 * @url: the base URL of the HTTP server
 */
void
shoal_dbus_manager_exporter_set_server_url (ShoalDBusManagerExporter *self,
                                            const gchar              *url)
{
  g_return_if_fail (SHOAL_IS_DBUS_MANAGER_EXPORTER (self));
  shoal_dbus_manager_set_server_url (self->skeleton, nonnull (url));
}

/**
 * shoal_dbus_manager_exporter_set_image_store:
 * @self: a #ShoalDBusManagerExporter
 * @store: (nullable): the image store, or %NULL if it could not be opened
 * @keep: images of a name kept after an import ([image-store]
 *   keep-per-name; 0: every image)
 *
 * Answers the image methods with @store (with NotSupported when it is
 * %NULL). Call it once, before the manager is exported.
 */
void
shoal_dbus_manager_exporter_set_image_store (ShoalDBusManagerExporter *self,
                                             ShoalImageStore          *store,
                                             guint                     keep)
{
  g_return_if_fail (SHOAL_IS_DBUS_MANAGER_EXPORTER (self));
  g_return_if_fail (self->images == NULL);

  self->images = shoal_dbus_images_new (store, self->controller, keep);
  shoal_dbus_images_attach (self->images, self->skeleton);
}
