/* shoal-dbus-device-exporter.c: one device on the bus
 *
 * Mirrors a ShoalDevice onto an org.shoal.Shoal1.Device skeleton. The
 * device's notify:: signals only mark the exporter dirty; the owner calls
 * shoal_dbus_device_exporter_flush() on its own schedule (every 100 ms),
 * which copies every property and sends one PropertiesChanged signal with
 * what differs, so a device that changes a thousand times a second costs
 * the bus ten signals.
 *
 * The exporter is the org.shoal.Shoal1.Device skeleton itself (a subclass
 * overriding the method vfuncs; shoal_dbus_auth_watch() queues and checks
 * its calls) rather than an
 * object holding a skeleton and connecting to its signals: with tens of
 * thousands of devices every closure per device counts.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-controller-private.h"
#include "shoal-dbus-device-exporter.h"
#include "shoal-dbus-util.h"
#include "shoal-error.h"
#include "shoal-store-private.h"

struct _ShoalDBusDeviceExporter
{
  ShoalDBusDeviceSkeleton     parent_instance;

  ShoalController            *controller;   /* owned */
  ShoalDevice                *device;       /* owned */
  ShoalDBusAuth              *auth;         /* owned */
  gchar                      *path;
  gulong                      notify_id;
  ShoalDBusDeviceChangedFunc  changed_func;
  gpointer                    changed_data;
  guint                       n_changes;    /* notify:: received */
  gboolean                    dirty;
  gboolean                    inventory_dirty;
  gboolean                    detached;
};

static void shoal_dbus_device_exporter_iface_init (ShoalDBusDeviceIface *iface);

G_DEFINE_TYPE_WITH_CODE (ShoalDBusDeviceExporter, shoal_dbus_device_exporter,
                         SHOAL_DBUS_TYPE_DEVICE_SKELETON,
                         G_IMPLEMENT_INTERFACE (SHOAL_DBUS_TYPE_DEVICE,
                                                shoal_dbus_device_exporter_iface_init))

static void
shoal_dbus_device_exporter_dispose (GObject *object)
{
  ShoalDBusDeviceExporter *self = SHOAL_DBUS_DEVICE_EXPORTER (object);

  shoal_dbus_device_exporter_detach (self);
  g_clear_object (&self->device);
  g_clear_object (&self->controller);
  g_clear_object (&self->auth);
  G_OBJECT_CLASS (shoal_dbus_device_exporter_parent_class)->dispose (object);
}

static void
shoal_dbus_device_exporter_finalize (GObject *object)
{
  ShoalDBusDeviceExporter *self = SHOAL_DBUS_DEVICE_EXPORTER (object);

  g_free (self->path);
  G_OBJECT_CLASS (shoal_dbus_device_exporter_parent_class)->finalize (object);
}

static void
shoal_dbus_device_exporter_class_init (ShoalDBusDeviceExporterClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = shoal_dbus_device_exporter_dispose;
  object_class->finalize = shoal_dbus_device_exporter_finalize;
}

static void
shoal_dbus_device_exporter_init (ShoalDBusDeviceExporter *self)
{
}

static const gchar *
nonnull (const gchar *str)
{
  return str != NULL ? str : "";
}

/* (txssss): the JournalEntry signal's arguments, and one entry of
 * GetJournal's reply; built here alone, so the two cannot differ */
static GVariant *
journal_entry_to_variant (ShoalJournalEntry *entry)
{
  return g_variant_new ("(txssss)",
                        shoal_journal_entry_get_seq (entry),
                        shoal_journal_entry_get_time (entry),
                        nonnull (shoal_journal_entry_get_source (entry)),
                        nonnull (shoal_journal_entry_get_operation (entry)),
                        shoal_journal_result_to_string (shoal_journal_entry_get_result (entry)),
                        nonnull (shoal_journal_entry_get_message (entry)));
}

static void
shoal_dbus_device_exporter_sync_inventory (ShoalDBusDeviceExporter *self)
{
  ShoalDBusDevice *skeleton = SHOAL_DBUS_DEVICE (self);
  JsonNode *inventory = shoal_device_get_inventory (self->device);
  g_autofree gchar *text = NULL;

  if (inventory != NULL)
    text = json_to_string (inventory, FALSE);
  shoal_dbus_device_set_inventory (skeleton, nonnull (text));
  self->inventory_dirty = FALSE;
}

static void
shoal_dbus_device_exporter_sync (ShoalDBusDeviceExporter *self)
{
  ShoalDBusDevice *skeleton = SHOAL_DBUS_DEVICE (self);
  ShoalDevice *dev = self->device;
  const gchar * const empty[] = { NULL };
  const gchar * const *macs = shoal_device_get_macs (dev);

  shoal_dbus_device_set_id (skeleton, shoal_device_get_id (dev));
  shoal_dbus_device_set_macs (skeleton, macs != NULL ? macs : empty);
  shoal_dbus_device_set_uuid (skeleton, nonnull (shoal_device_get_uuid (dev)));
  shoal_dbus_device_set_state (skeleton,
                               shoal_device_state_to_string (shoal_device_get_state (dev)));
  shoal_dbus_device_set_current_step (skeleton, nonnull (shoal_device_get_current_step (dev)));
  shoal_dbus_device_set_progress (skeleton, shoal_device_get_progress (dev));
  shoal_dbus_device_set_recipe (skeleton, nonnull (shoal_device_get_recipe (dev)));
  shoal_dbus_device_set_recipe_commit (skeleton, nonnull (shoal_device_get_recipe_commit (dev)));
  shoal_dbus_device_set_group (skeleton, nonnull (shoal_device_get_group (dev)));
  shoal_dbus_device_set_boot_action (skeleton,
                                     shoal_boot_action_to_string (shoal_device_get_boot_action (dev)));
  if (self->inventory_dirty)
    shoal_dbus_device_exporter_sync_inventory (self);
}

static void
shoal_dbus_device_exporter_on_notify (GObject    *object,
                                      GParamSpec *pspec,
                                      gpointer    user_data)
{
  ShoalDBusDeviceExporter *self = SHOAL_DBUS_DEVICE_EXPORTER (user_data);

  self->n_changes++;
  if (g_strcmp0 (g_param_spec_get_name (pspec), "inventory") == 0)
    self->inventory_dirty = TRUE;
  if (self->dirty || self->detached)
    return;
  self->dirty = TRUE;
  if (self->changed_func != NULL)
    self->changed_func (self, self->changed_data);
}

static void
shoal_dbus_device_exporter_flush_cb (gpointer user_data)
{
  shoal_dbus_device_exporter_flush (SHOAL_DBUS_DEVICE_EXPORTER (user_data));
}

typedef struct {
  ShoalDBusDeviceExporter *exporter;
  GDBusMethodInvocation   *invocation;
  guint64                  since_seq;
} JournalRead;

/* answers a GetJournal from the store */
static void
journal_read_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  JournalRead *read = user_data;
  ShoalDBusDeviceExporter *self = read->exporter;
  g_autoptr(GPtrArray) entries = NULL;
  g_autoptr(GError) error = NULL;
  GVariantBuilder builder;

  /* a store that cannot write now: what is durable is answered */
  shoal_store_flush_finish (SHOAL_STORE (source), result, NULL);
  entries = shoal_store_get_journal (shoal_controller_get_store (self->controller),
                                     shoal_device_get_id (self->device), read->since_seq,
                                     SHOAL_DBUS_JOURNAL_PAGE, &error);
  if (entries == NULL)
    shoal_dbus_return_error (read->invocation, error);
  else
    {
      g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(txssss)"));
      for (guint i = 0; i < entries->len; i++)
        g_variant_builder_add_value (&builder, journal_entry_to_variant (g_ptr_array_index (entries, i)));
      shoal_dbus_device_complete_get_journal (SHOAL_DBUS_DEVICE (self), read->invocation,
                                              g_variant_builder_end (&builder));
    }
  g_object_unref (read->exporter);
  g_free (read);
}

/* GetJournal answers once what was written before the call is durable:
 * the device's properties are sent without waiting for the store, so a
 * client that saw it "installed" and asks at once finds the entry that
 * says so */
static gboolean
shoal_dbus_device_exporter_handle_get_journal (ShoalDBusDevice       *skeleton,
                                               GDBusMethodInvocation *invocation,
                                               guint64                since_seq)
{
  ShoalDBusDeviceExporter *self = SHOAL_DBUS_DEVICE_EXPORTER (skeleton);
  JournalRead *read = g_new0 (JournalRead, 1);

  read->exporter = g_object_ref (self);
  read->invocation = invocation;
  read->since_seq = since_seq;
  shoal_store_flush_full_async (shoal_controller_get_store (self->controller), SHOAL_STORE_FLUSH_FAIL_FAST,
                                NULL, journal_read_cb, read);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
shoal_dbus_device_exporter_commit_and_return (ShoalDBusDeviceExporter *self,
                                              GDBusMethodInvocation   *invocation)
{
  shoal_dbus_commit_and_return (self->controller, invocation, NULL,
                                shoal_dbus_device_exporter_flush_cb,
                                g_object_ref (self), g_object_unref);
}

static gboolean
shoal_dbus_device_exporter_handle_deploy (ShoalDBusDevice       *skeleton,
                                          GDBusMethodInvocation *invocation)
{
  ShoalDBusDeviceExporter *self = SHOAL_DBUS_DEVICE_EXPORTER (skeleton);
  g_autoptr(GError) error = NULL;

  if (!shoal_controller_deploy (self->controller, self->device, &error))
    {
      shoal_dbus_return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  shoal_dbus_device_exporter_commit_and_return (self, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
shoal_dbus_device_exporter_handle_cancel (ShoalDBusDevice       *skeleton,
                                          GDBusMethodInvocation *invocation)
{
  ShoalDBusDeviceExporter *self = SHOAL_DBUS_DEVICE_EXPORTER (skeleton);
  g_autoptr(GError) error = NULL;

  if (!shoal_controller_cancel (self->controller, self->device, &error))
    {
      shoal_dbus_return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  shoal_dbus_device_exporter_commit_and_return (self, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
shoal_dbus_device_exporter_handle_set_boot_action (ShoalDBusDevice       *skeleton,
                                                   GDBusMethodInvocation *invocation,
                                                   const gchar           *action_str)
{
  ShoalDBusDeviceExporter *self = SHOAL_DBUS_DEVICE_EXPORTER (skeleton);
  ShoalBootAction action;
  g_autoptr(GError) error = NULL;

  if (!shoal_boot_action_from_string (action_str, &action))
    {
      g_dbus_method_invocation_return_error (invocation, SHOAL_ERROR,
                                             SHOAL_ERROR_INVALID_ARGUMENT,
                                             _("action: “%s” is not one of deploy, local, ignore"),
                                             action_str);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (!shoal_controller_set_boot_action (self->controller, self->device, action, "dbus",
                                         g_dbus_method_invocation_get_sender (invocation), &error))
    {
      shoal_dbus_return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  shoal_dbus_device_exporter_commit_and_return (self, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
shoal_dbus_device_exporter_handle_remove_mac (ShoalDBusDevice       *skeleton,
                                              GDBusMethodInvocation *invocation,
                                              const gchar           *mac_arg)
{
  ShoalDBusDeviceExporter *self = SHOAL_DBUS_DEVICE_EXPORTER (skeleton);
  g_autofree gchar *mac = shoal_dbus_normalize_mac (mac_arg);
  g_autoptr(GError) error = NULL;

  if (mac == NULL)
    {
      g_dbus_method_invocation_return_error (invocation, SHOAL_ERROR,
                                             SHOAL_ERROR_INVALID_ARGUMENT,
                                             _("mac: “%s” is not a MAC address"), mac_arg);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (!shoal_controller_remove_mac (self->controller, self->device, mac, "dbus",
                                    g_dbus_method_invocation_get_sender (invocation), &error))
    {
      shoal_dbus_return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  shoal_dbus_device_exporter_commit_and_return (self, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
shoal_dbus_device_exporter_iface_init (ShoalDBusDeviceIface *iface)
{
  iface->handle_get_journal = shoal_dbus_device_exporter_handle_get_journal;
  iface->handle_deploy = shoal_dbus_device_exporter_handle_deploy;
  iface->handle_cancel = shoal_dbus_device_exporter_handle_cancel;
  iface->handle_set_boot_action = shoal_dbus_device_exporter_handle_set_boot_action;
  iface->handle_remove_mac = shoal_dbus_device_exporter_handle_remove_mac;
}

/**
 * shoal_dbus_device_exporter_new:
 * @controller: the controller
 * @device: the device to export
 * @auth: decides who may call the mutating methods
 * @changed_func: (nullable): called when the device first changes after a flush
 * @user_data: for @changed_func
 *
 * Returns: (transfer full): a new exporter (the skeleton itself), with
 *   every property set; the caller exports it at its path
 */
ShoalDBusDeviceExporter *
shoal_dbus_device_exporter_new (ShoalController           *controller,
                                ShoalDevice               *device,
                                ShoalDBusAuth             *auth,
                                ShoalDBusDeviceChangedFunc changed_func,
                                gpointer                   user_data)
{
  ShoalDBusDeviceExporter *self;

  g_return_val_if_fail (SHOAL_IS_CONTROLLER (controller), NULL);
  g_return_val_if_fail (SHOAL_IS_DEVICE (device), NULL);

  self = g_object_new (SHOAL_TYPE_DBUS_DEVICE_EXPORTER, NULL);
  self->controller = g_object_ref (controller);
  self->device = g_object_ref (device);
  self->auth = g_object_ref (auth);
  shoal_dbus_auth_watch (auth, G_DBUS_INTERFACE_SKELETON (self));
  self->changed_func = changed_func;
  self->changed_data = user_data;
  self->path = shoal_dbus_device_path (shoal_device_get_id (device));
  self->inventory_dirty = TRUE;
  shoal_dbus_device_exporter_sync (self);
  self->notify_id = g_signal_connect (device, "notify",
                                      G_CALLBACK (shoal_dbus_device_exporter_on_notify), self);
  return self;
}

/**
 * shoal_dbus_device_exporter_get_device:
 * @self: a #ShoalDBusDeviceExporter
 *
 * Returns: (transfer none): the device
 */
ShoalDevice *
shoal_dbus_device_exporter_get_device (ShoalDBusDeviceExporter *self)
{
  g_return_val_if_fail (SHOAL_IS_DBUS_DEVICE_EXPORTER (self), NULL);
  return self->device;
}

/**
 * shoal_dbus_device_exporter_get_path:
 * @self: a #ShoalDBusDeviceExporter
 *
 * Returns: the device's object path
 */
const gchar *
shoal_dbus_device_exporter_get_path (ShoalDBusDeviceExporter *self)
{
  g_return_val_if_fail (SHOAL_IS_DBUS_DEVICE_EXPORTER (self), NULL);
  return self->path;
}

/**
 * shoal_dbus_device_exporter_is_dirty:
 * @self: a #ShoalDBusDeviceExporter
 *
 * Returns: whether the device changed since the last flush
 */
gboolean
shoal_dbus_device_exporter_is_dirty (ShoalDBusDeviceExporter *self)
{
  g_return_val_if_fail (SHOAL_IS_DBUS_DEVICE_EXPORTER (self), FALSE);
  return self->dirty;
}

/**
 * shoal_dbus_device_exporter_get_n_changes:
 * @self: a #ShoalDBusDeviceExporter
 *
 * Returns: how many property changes of the device it saw (each would have
 *   been a PropertiesChanged signal without coalescing)
 */
guint
shoal_dbus_device_exporter_get_n_changes (ShoalDBusDeviceExporter *self)
{
  g_return_val_if_fail (SHOAL_IS_DBUS_DEVICE_EXPORTER (self), 0);
  return self->n_changes;
}

/**
 * shoal_dbus_device_exporter_flush:
 * @self: a #ShoalDBusDeviceExporter
 *
 * Copies the device's properties to the bus and sends the changes now.
 *
 * Returns: %TRUE if the device had changed
 */
gboolean
shoal_dbus_device_exporter_flush (ShoalDBusDeviceExporter *self)
{
  g_return_val_if_fail (SHOAL_IS_DBUS_DEVICE_EXPORTER (self), FALSE);

  if (!self->dirty || self->detached)
    return FALSE;
  self->dirty = FALSE;
  shoal_dbus_device_exporter_sync (self);
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (self));
  return TRUE;
}

/**
 * shoal_dbus_device_exporter_emit_journal_entry:
 * @self: a #ShoalDBusDeviceExporter
 * @entry: an entry of the device's journal, durable
 *
 * Sends the JournalEntry signal on the skeleton's connections, with the
 * arguments GetJournal gives the entry (journal_entry_to_variant()),
 * straight to the bus rather than through the generated emitter, which
 * splits them into GObject signal arguments and builds them again.
 */
void
shoal_dbus_device_exporter_emit_journal_entry (ShoalDBusDeviceExporter *self,
                                               ShoalJournalEntry       *entry)
{
  GDBusInterfaceSkeleton *skeleton;
  g_autoptr(GVariant) args = NULL;
  GList *connections;

  g_return_if_fail (SHOAL_IS_DBUS_DEVICE_EXPORTER (self));

  if (self->detached)
    return;
  skeleton = G_DBUS_INTERFACE_SKELETON (self);
  connections = g_dbus_interface_skeleton_get_connections (skeleton);
  if (connections != NULL)
    args = g_variant_ref_sink (journal_entry_to_variant (entry));
  for (GList *l = connections; l != NULL; l = l->next)
    g_dbus_connection_emit_signal (l->data, NULL, g_dbus_interface_skeleton_get_object_path (skeleton),
                                   g_dbus_interface_skeleton_get_info (skeleton)->name, "JournalEntry",
                                   args, NULL);
  g_list_free_full (connections, g_object_unref);
}

/**
 * shoal_dbus_device_exporter_detach:
 * @self: a #ShoalDBusDeviceExporter
 *
 * Stops following the device (it was removed, or the daemon stops);
 * flushes and journal signals become no-ops.
 */
void
shoal_dbus_device_exporter_detach (ShoalDBusDeviceExporter *self)
{
  g_return_if_fail (SHOAL_IS_DBUS_DEVICE_EXPORTER (self));

  self->detached = TRUE;
  if (self->notify_id != 0 && self->device != NULL)
    g_clear_signal_handler (&self->notify_id, self->device);
}
