/* shoal-dbus-object-manager.c: org.freedesktop.DBus.ObjectManager for
 * tens of thousands of objects
 *
 * GDBusObjectManagerServer wraps every object in a GDBusObjectSkeleton
 * with its own signal handlers, and answers GetManagedObjects with one
 * tree of small GVariants: about 4 KiB per device while it builds the
 * reply. This one keeps a plain table of one interface skeleton per
 * object path, exports the skeletons directly, and serializes each
 * object's entry of GetManagedObjects as soon as it is built. It sends
 * InterfacesAdded and InterfacesRemoved as the specification asks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-dbus-object-manager.h"

#define OBJECT_MANAGER_IFACE "org.freedesktop.DBus.ObjectManager"

static const gchar object_manager_xml[] =
  "<node>"
  "  <interface name='org.freedesktop.DBus.ObjectManager'>"
  "    <method name='GetManagedObjects'>"
  "      <arg type='a{oa{sa{sv}}}' name='object_paths_interfaces_and_properties' direction='out'/>"
  "    </method>"
  "    <signal name='InterfacesAdded'>"
  "      <arg type='o' name='object_path'/>"
  "      <arg type='a{sa{sv}}' name='interfaces_and_properties'/>"
  "    </signal>"
  "    <signal name='InterfacesRemoved'>"
  "      <arg type='o' name='object_path'/>"
  "      <arg type='as' name='interfaces'/>"
  "    </signal>"
  "  </interface>"
  "</node>";

struct _ShoalDBusObjectManager
{
  GObject          parent_instance;

  gchar           *object_path;
  GHashTable      *objects;          /* path → GDBusInterfaceSkeleton */
  GDBusConnection *connection;
  GDBusNodeInfo   *node_info;
  guint            registration_id;
};

G_DEFINE_TYPE (ShoalDBusObjectManager, shoal_dbus_object_manager, G_TYPE_OBJECT)

static void
shoal_dbus_object_manager_dispose (GObject *object)
{
  ShoalDBusObjectManager *self = SHOAL_DBUS_OBJECT_MANAGER (object);

  shoal_dbus_object_manager_unexport_all (self);
  if (self->connection != NULL && self->registration_id != 0)
    g_dbus_connection_unregister_object (self->connection, self->registration_id);
  self->registration_id = 0;
  g_clear_object (&self->connection);
  G_OBJECT_CLASS (shoal_dbus_object_manager_parent_class)->dispose (object);
}

static void
shoal_dbus_object_manager_finalize (GObject *object)
{
  ShoalDBusObjectManager *self = SHOAL_DBUS_OBJECT_MANAGER (object);

  g_hash_table_unref (self->objects);
  g_clear_pointer (&self->node_info, g_dbus_node_info_unref);
  g_free (self->object_path);
  G_OBJECT_CLASS (shoal_dbus_object_manager_parent_class)->finalize (object);
}

static void
shoal_dbus_object_manager_class_init (ShoalDBusObjectManagerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = shoal_dbus_object_manager_dispose;
  object_class->finalize = shoal_dbus_object_manager_finalize;
}

static void
shoal_dbus_object_manager_init (ShoalDBusObjectManager *self)
{
  self->objects = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
}

/**
 * shoal_dbus_object_manager_new:
 * @object_path: where the object manager lives; objects go below it
 *
 * Returns: (transfer full): a new #ShoalDBusObjectManager
 */
ShoalDBusObjectManager *
shoal_dbus_object_manager_new (const gchar *object_path)
{
  ShoalDBusObjectManager *self;

  g_return_val_if_fail (g_variant_is_object_path (object_path), NULL);
  self = g_object_new (SHOAL_TYPE_DBUS_OBJECT_MANAGER, NULL);
  self->object_path = g_strdup (object_path);
  return self;
}

/* one entry of GetManagedObjects or the argument of InterfacesAdded */
static GVariant *
interfaces_and_properties (GDBusInterfaceSkeleton *skeleton)
{
  GVariantBuilder builder;
  /* (transfer full), never floating */
  g_autoptr(GVariant) props = g_dbus_interface_skeleton_get_properties (skeleton);

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{sa{sv}}"));
  g_variant_builder_add (&builder, "{s@a{sv}}",
                         g_dbus_interface_skeleton_get_info (skeleton)->name, props);
  return g_variant_builder_end (&builder);
}

static GVariant *
build_managed_objects (ShoalDBusObjectManager *self)
{
  GVariantBuilder builder;
  GHashTableIter iter;
  gpointer key, value;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("(a{oa{sa{sv}}})"));
  g_variant_builder_open (&builder, G_VARIANT_TYPE ("a{oa{sa{sv}}}"));
  g_hash_table_iter_init (&iter, self->objects);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autoptr(GVariant) entry = g_variant_ref_sink (g_variant_new ("{o@a{sa{sv}}}", (const gchar *) key,
                                                                     interfaces_and_properties (value)));

      /* serialize now: drops the tree of small GVariants of this entry */
      (void) g_variant_get_data (entry);
      g_variant_builder_add_value (&builder, entry);
    }
  g_variant_builder_close (&builder);
  return g_variant_builder_end (&builder);
}

static void
shoal_dbus_object_manager_method_call (GDBusConnection       *connection,
                                       const gchar           *sender,
                                       const gchar           *object_path,
                                       const gchar           *interface_name,
                                       const gchar           *method_name,
                                       GVariant              *parameters,
                                       GDBusMethodInvocation *invocation,
                                       gpointer               user_data)
{
  ShoalDBusObjectManager *self = SHOAL_DBUS_OBJECT_MANAGER (user_data);

  if (g_strcmp0 (method_name, "GetManagedObjects") != 0)
    {
      g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                             "No method %s", method_name);
      return;
    }
  g_dbus_method_invocation_return_value (invocation, build_managed_objects (self));
}

static const GDBusInterfaceVTable object_manager_vtable = {
  shoal_dbus_object_manager_method_call, NULL, NULL, { NULL },
};

static void
shoal_dbus_object_manager_emit (ShoalDBusObjectManager *self,
                                const gchar            *signal,
                                GVariant               *params)
{
  g_autoptr(GError) error = NULL;

  if (!g_dbus_connection_emit_signal (self->connection, NULL, self->object_path,
                                      OBJECT_MANAGER_IFACE, signal, params, &error))
    g_warning ("sending %s: %s", signal, error->message);
}

static void
shoal_dbus_object_manager_export_one (ShoalDBusObjectManager *self,
                                      const gchar            *object_path,
                                      GDBusInterfaceSkeleton *skeleton)
{
  g_autoptr(GError) error = NULL;

  if (!g_dbus_interface_skeleton_export (skeleton, self->connection, object_path, &error))
    g_warning ("exporting %s: %s", object_path, error->message);
}

/**
 * shoal_dbus_object_manager_set_connection:
 * @self: a #ShoalDBusObjectManager
 * @connection: the connection to serve on
 * @error: a #GError
 *
 * Exports the object manager and every object added so far on
 * @connection. Can be called once.
 *
 * Returns: %TRUE on success
 */
gboolean
shoal_dbus_object_manager_set_connection (ShoalDBusObjectManager *self,
                                          GDBusConnection        *connection,
                                          GError                **error)
{
  GHashTableIter iter;
  gpointer key, value;

  g_return_val_if_fail (SHOAL_IS_DBUS_OBJECT_MANAGER (self), FALSE);
  g_return_val_if_fail (self->connection == NULL, FALSE);

  self->node_info = g_dbus_node_info_new_for_xml (object_manager_xml, error);
  if (self->node_info == NULL)
    return FALSE;
  self->registration_id = g_dbus_connection_register_object (connection, self->object_path,
                                                             self->node_info->interfaces[0],
                                                             &object_manager_vtable,
                                                             self, NULL, error);
  if (self->registration_id == 0)
    {
      g_prefix_error (error, "exporting the object manager at %s: ", self->object_path);
      return FALSE;
    }
  self->connection = g_object_ref (connection);
  g_hash_table_iter_init (&iter, self->objects);
  while (g_hash_table_iter_next (&iter, &key, &value))
    shoal_dbus_object_manager_export_one (self, key, value);
  return TRUE;
}

/**
 * shoal_dbus_object_manager_export:
 * @self: a #ShoalDBusObjectManager
 * @object_path: a path below the manager's
 * @skeleton: the object's one interface
 *
 * Adds an object (replacing one at the same path); once connected, exports
 * it and sends InterfacesAdded.
 */
void
shoal_dbus_object_manager_export (ShoalDBusObjectManager *self,
                                  const gchar            *object_path,
                                  GDBusInterfaceSkeleton *skeleton)
{
  g_return_if_fail (SHOAL_IS_DBUS_OBJECT_MANAGER (self));
  g_return_if_fail (g_variant_is_object_path (object_path));

  if (g_hash_table_contains (self->objects, object_path))
    shoal_dbus_object_manager_unexport (self, object_path);
  g_hash_table_insert (self->objects, g_strdup (object_path), g_object_ref (skeleton));
  if (self->connection == NULL)
    return;
  shoal_dbus_object_manager_export_one (self, object_path, skeleton);
  shoal_dbus_object_manager_emit (self, "InterfacesAdded",
                                  g_variant_new ("(o@a{sa{sv}})", object_path,
                                                 interfaces_and_properties (skeleton)));
}

/**
 * shoal_dbus_object_manager_unexport:
 * @self: a #ShoalDBusObjectManager
 * @object_path: an object's path
 *
 * Removes the object; once connected, sends InterfacesRemoved.
 */
void
shoal_dbus_object_manager_unexport (ShoalDBusObjectManager *self,
                                    const gchar            *object_path)
{
  GDBusInterfaceSkeleton *skeleton;
  const gchar *iface_name;

  g_return_if_fail (SHOAL_IS_DBUS_OBJECT_MANAGER (self));

  skeleton = g_hash_table_lookup (self->objects, object_path);
  if (skeleton == NULL)
    return;
  iface_name = g_dbus_interface_skeleton_get_info (skeleton)->name;
  if (self->connection != NULL)
    {
      const gchar *names[] = { iface_name, NULL };

      if (g_dbus_interface_skeleton_has_connection (skeleton, self->connection))
        g_dbus_interface_skeleton_unexport_from_connection (skeleton, self->connection);
      shoal_dbus_object_manager_emit (self, "InterfacesRemoved",
                                      g_variant_new ("(o^as)", object_path, names));
    }
  g_hash_table_remove (self->objects, object_path);
}

/**
 * shoal_dbus_object_manager_unexport_all:
 * @self: a #ShoalDBusObjectManager
 *
 * Takes every object off the bus, quietly (for shutdown).
 */
void
shoal_dbus_object_manager_unexport_all (ShoalDBusObjectManager *self)
{
  GHashTableIter iter;
  gpointer value;

  g_return_if_fail (SHOAL_IS_DBUS_OBJECT_MANAGER (self));

  g_hash_table_iter_init (&iter, self->objects);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      if (self->connection != NULL &&
          g_dbus_interface_skeleton_has_connection (value, self->connection))
        g_dbus_interface_skeleton_unexport_from_connection (value, self->connection);
    }
  g_hash_table_remove_all (self->objects);
}

/**
 * shoal_dbus_object_manager_get_n_objects:
 * @self: a #ShoalDBusObjectManager
 *
 * Returns: how many objects it manages
 */
guint
shoal_dbus_object_manager_get_n_objects (ShoalDBusObjectManager *self)
{
  g_return_val_if_fail (SHOAL_IS_DBUS_OBJECT_MANAGER (self), 0);
  return g_hash_table_size (self->objects);
}
