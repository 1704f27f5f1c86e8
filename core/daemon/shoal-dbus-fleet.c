/* shoal-dbus-fleet.c: every device of the controller on the bus
 *
 * Exports one object per device under /org/shoal/Shoal1/devices through
 * the object manager, follows the controller's device-added,
 * device-removed and journal-appended signals, and flushes the property
 * changes of the devices that changed, all together, at most every
 * flush interval (100 ms).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-dbus-fleet.h"

#define SHOAL_DBUS_FLEET_FLUSH_INTERVAL_MS 100

struct _ShoalDBusFleet
{
  GObject                   parent_instance;

  ShoalController          *controller;
  ShoalDBusObjectManager   *manager;
  ShoalDBusAuth            *auth;
  GHashTable               *exporters;  /* id → ShoalDBusDeviceExporter */
  GPtrArray                *dirty;      /* ShoalDBusDeviceExporter, refs */
  guint                     flush_id;
  guint                     flush_interval_ms;
  guint64                   n_flushes;
  guint64                   n_journal_signals;
  gboolean                  started;
};

G_DEFINE_TYPE (ShoalDBusFleet, shoal_dbus_fleet, G_TYPE_OBJECT)

static void
shoal_dbus_fleet_dispose (GObject *object)
{
  ShoalDBusFleet *self = SHOAL_DBUS_FLEET (object);

  shoal_dbus_fleet_stop (self);
  g_clear_object (&self->controller);
  g_clear_object (&self->manager);
  g_clear_object (&self->auth);
  G_OBJECT_CLASS (shoal_dbus_fleet_parent_class)->dispose (object);
}

static void
shoal_dbus_fleet_finalize (GObject *object)
{
  ShoalDBusFleet *self = SHOAL_DBUS_FLEET (object);

  g_hash_table_unref (self->exporters);
  g_ptr_array_unref (self->dirty);
  G_OBJECT_CLASS (shoal_dbus_fleet_parent_class)->finalize (object);
}

static void
shoal_dbus_fleet_class_init (ShoalDBusFleetClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = shoal_dbus_fleet_dispose;
  object_class->finalize = shoal_dbus_fleet_finalize;
}

static void
shoal_dbus_fleet_init (ShoalDBusFleet *self)
{
  self->exporters = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->dirty = g_ptr_array_new_with_free_func (g_object_unref);
  self->flush_interval_ms = SHOAL_DBUS_FLEET_FLUSH_INTERVAL_MS;
}

/**
 * shoal_dbus_fleet_new:
 * @controller: the controller
 * @manager: the object manager at /org/shoal/Shoal1
 * @auth: the authorization of method calls
 *
 * Returns: (transfer full): a new #ShoalDBusFleet; call
 *   shoal_dbus_fleet_start() to export the devices
 */
ShoalDBusFleet *
shoal_dbus_fleet_new (ShoalController          *controller,
                      ShoalDBusObjectManager   *manager,
                      ShoalDBusAuth            *auth)
{
  ShoalDBusFleet *self = g_object_new (SHOAL_TYPE_DBUS_FLEET, NULL);

  self->controller = g_object_ref (controller);
  self->manager = g_object_ref (manager);
  self->auth = g_object_ref (auth);
  return self;
}

/**
 * shoal_dbus_fleet_flush:
 * @self: a #ShoalDBusFleet
 *
 * Sends the pending property changes of every device now.
 */
void
shoal_dbus_fleet_flush (ShoalDBusFleet *self)
{
  g_autoptr(GPtrArray) dirty = NULL;

  g_return_if_fail (SHOAL_IS_DBUS_FLEET (self));

  g_clear_handle_id (&self->flush_id, g_source_remove);
  /* a flush may make a device change again: take the list first */
  dirty = g_steal_pointer (&self->dirty);
  self->dirty = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < dirty->len; i++)
    {
      if (shoal_dbus_device_exporter_flush (g_ptr_array_index (dirty, i)))
        self->n_flushes++;
    }
}

static gboolean
shoal_dbus_fleet_flush_cb (gpointer user_data)
{
  ShoalDBusFleet *self = SHOAL_DBUS_FLEET (user_data);

  self->flush_id = 0;
  shoal_dbus_fleet_flush (self);
  return G_SOURCE_REMOVE;
}

static void
shoal_dbus_fleet_on_device_changed (ShoalDBusDeviceExporter *exporter,
                                    gpointer                 user_data)
{
  ShoalDBusFleet *self = SHOAL_DBUS_FLEET (user_data);

  g_ptr_array_add (self->dirty, g_object_ref (exporter));
  if (self->flush_id == 0)
    self->flush_id = g_timeout_add (self->flush_interval_ms, shoal_dbus_fleet_flush_cb, self);
}

static void
shoal_dbus_fleet_export (ShoalDBusFleet *self, ShoalDevice *device)
{
  g_autoptr(ShoalDBusDeviceExporter) exporter = NULL;
  const gchar *id = shoal_device_get_id (device);

  if (g_hash_table_contains (self->exporters, id))
    return;
  exporter = shoal_dbus_device_exporter_new (self->controller, device, self->auth,
                                             shoal_dbus_fleet_on_device_changed, self);
  shoal_dbus_object_manager_export (self->manager,
                                    shoal_dbus_device_exporter_get_path (exporter),
                                    G_DBUS_INTERFACE_SKELETON (exporter));
  g_hash_table_insert (self->exporters, g_strdup (id), g_steal_pointer (&exporter));
}

static void
shoal_dbus_fleet_on_device_added (ShoalController *controller,
                                  ShoalDevice     *device,
                                  gpointer         user_data)
{
  shoal_dbus_fleet_export (SHOAL_DBUS_FLEET (user_data), device);
}

static void
shoal_dbus_fleet_on_device_removed (ShoalController *controller,
                                    ShoalDevice     *device,
                                    gpointer         user_data)
{
  ShoalDBusFleet *self = SHOAL_DBUS_FLEET (user_data);
  ShoalDBusDeviceExporter *exporter;

  exporter = g_hash_table_lookup (self->exporters, shoal_device_get_id (device));
  if (exporter == NULL)
    return;
  shoal_dbus_device_exporter_detach (exporter);
  shoal_dbus_object_manager_unexport (self->manager,
                                      shoal_dbus_device_exporter_get_path (exporter));
  g_hash_table_remove (self->exporters, shoal_device_get_id (device));
}

static void
shoal_dbus_fleet_on_journal_appended (ShoalController   *controller,
                                      ShoalDevice       *device,
                                      ShoalJournalEntry *entry,
                                      gpointer           user_data)
{
  ShoalDBusFleet *self = SHOAL_DBUS_FLEET (user_data);
  ShoalDBusDeviceExporter *exporter;

  exporter = g_hash_table_lookup (self->exporters, shoal_device_get_id (device));
  if (exporter == NULL)
    return;
  shoal_dbus_device_exporter_emit_journal_entry (exporter, entry);
  self->n_journal_signals++;
}

/**
 * shoal_dbus_fleet_start:
 * @self: a #ShoalDBusFleet
 *
 * Exports every device the controller knows and follows its changes.
 */
void
shoal_dbus_fleet_start (ShoalDBusFleet *self)
{
  g_autoptr(GPtrArray) devices = NULL;

  g_return_if_fail (SHOAL_IS_DBUS_FLEET (self));

  if (self->started)
    return;
  self->started = TRUE;
  devices = shoal_controller_get_devices (self->controller);
  for (guint i = 0; devices != NULL && i < devices->len; i++)
    shoal_dbus_fleet_export (self, g_ptr_array_index (devices, i));
  g_signal_connect_object (self->controller, "device-added",
                           G_CALLBACK (shoal_dbus_fleet_on_device_added), self, 0);
  g_signal_connect_object (self->controller, "device-removed",
                           G_CALLBACK (shoal_dbus_fleet_on_device_removed), self, 0);
  g_signal_connect_object (self->controller, "journal-appended",
                           G_CALLBACK (shoal_dbus_fleet_on_journal_appended), self, 0);
}

static void
shoal_dbus_fleet_detach_cb (gpointer key, gpointer value, gpointer user_data)
{
  shoal_dbus_device_exporter_detach (SHOAL_DBUS_DEVICE_EXPORTER (value));
}

/**
 * shoal_dbus_fleet_stop:
 * @self: a #ShoalDBusFleet
 *
 * Sends what is pending and stops following the controller.
 */
void
shoal_dbus_fleet_stop (ShoalDBusFleet *self)
{
  g_return_if_fail (SHOAL_IS_DBUS_FLEET (self));

  if (!self->started)
    return;
  self->started = FALSE;
  shoal_dbus_fleet_flush (self);
  if (self->controller != NULL)
    g_signal_handlers_disconnect_by_data (self->controller, self);
  g_hash_table_foreach (self->exporters, shoal_dbus_fleet_detach_cb, NULL);
  g_clear_handle_id (&self->flush_id, g_source_remove);
}

/**
 * shoal_dbus_fleet_set_flush_interval:
 * @self: a #ShoalDBusFleet
 * @interval_ms: the shortest time between two PropertiesChanged signals
 *   of one device
 */
void
shoal_dbus_fleet_set_flush_interval (ShoalDBusFleet *self, guint interval_ms)
{
  g_return_if_fail (SHOAL_IS_DBUS_FLEET (self));
  self->flush_interval_ms = interval_ms;
}

/**
 * shoal_dbus_fleet_lookup:
 * @self: a #ShoalDBusFleet
 * @id: a device id
 *
 * Returns: (transfer none) (nullable): the exporter of device @id
 */
ShoalDBusDeviceExporter *
shoal_dbus_fleet_lookup (ShoalDBusFleet *self, const gchar *id)
{
  g_return_val_if_fail (SHOAL_IS_DBUS_FLEET (self), NULL);
  return g_hash_table_lookup (self->exporters, id);
}

/**
 * shoal_dbus_fleet_get_n_devices:
 * @self: a #ShoalDBusFleet
 *
 * Returns: how many devices are exported
 */
guint
shoal_dbus_fleet_get_n_devices (ShoalDBusFleet *self)
{
  g_return_val_if_fail (SHOAL_IS_DBUS_FLEET (self), 0);
  return g_hash_table_size (self->exporters);
}

/**
 * shoal_dbus_fleet_get_n_flushes:
 * @self: a #ShoalDBusFleet
 *
 * Returns: how many PropertiesChanged signals were sent for devices
 */
guint64
shoal_dbus_fleet_get_n_flushes (ShoalDBusFleet *self)
{
  g_return_val_if_fail (SHOAL_IS_DBUS_FLEET (self), 0);
  return self->n_flushes;
}

/**
 * shoal_dbus_fleet_get_n_changes:
 * @self: a #ShoalDBusFleet
 *
 * Returns: how many device property changes were seen (of devices still
 *   exported), to compare with shoal_dbus_fleet_get_n_flushes()
 */
guint64
shoal_dbus_fleet_get_n_changes (ShoalDBusFleet *self)
{
  GHashTableIter iter;
  gpointer value;
  guint64 n = 0;

  g_return_val_if_fail (SHOAL_IS_DBUS_FLEET (self), 0);
  g_hash_table_iter_init (&iter, self->exporters);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    n += shoal_dbus_device_exporter_get_n_changes (value);
  return n;
}

/**
 * shoal_dbus_fleet_get_n_journal_signals:
 * @self: a #ShoalDBusFleet
 *
 * Returns: how many JournalEntry signals were sent
 */
guint64
shoal_dbus_fleet_get_n_journal_signals (ShoalDBusFleet *self)
{
  g_return_val_if_fail (SHOAL_IS_DBUS_FLEET (self), 0);
  return self->n_journal_signals;
}
