/* shoal-inventory-step.c: the "inventory" step
 *
 * Waits for the device event "inventory" (posted by the core's agent API
 * when the agent loader POSTs /agent/v1/inventory), validates it against
 * schemas/inventory.schema.json, stores it on the device
 * (shoal_device_set_inventory: D-Bus and shoalctl show) and journals a
 * summary. Options: none. Device keys: none (the inventory itself is the
 * device's inventory property).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-inventory-step.h"

struct _ShoalInventoryStep
{
  GObject parent_instance;
};

static void shoal_inventory_step_iface_init (ShoalStepInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalInventoryStep, shoal_inventory_step, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_STEP, shoal_inventory_step_iface_init))

/**
 * shoal_inventory_check:
 *
 * Validates @inventory against the "inventory" schema; the error names the
 * JSON path of the first problem.
 */
gboolean
shoal_inventory_check (JsonNode *inventory, GError **error)
{
  g_autoptr(ShoalJsonSchema) schema = shoal_json_schema_new_for_name ("inventory", error);

  if (schema == NULL)
    return FALSE;
  if (inventory == NULL || JSON_NODE_HOLDS_NULL (inventory))
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA, _("The inventory is empty"));
      return FALSE;
    }
  if (!shoal_json_schema_validate (schema, inventory, error))
    {
      g_prefix_error (error, _("Invalid inventory: "));
      return FALSE;
    }
  return TRUE;
}

/* The object member @name of @object, NULL if it is absent or not an object */
static JsonObject *
object_member (JsonObject *object, const gchar *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

/* The array member @name of @object, NULL if it is absent or not an array */
static JsonArray *
array_member (JsonObject *object, const gchar *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

/* The object element @index of @array, NULL if it is not an object */
static JsonObject *
object_element (JsonArray *array, guint index)
{
  JsonNode *node = json_array_get_element (array, index);

  return JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static const gchar *
string_member (JsonObject *object, const gchar *name, const gchar *def)
{
  return object != NULL ? json_object_get_string_member_with_default (object, name, def) : def;
}

static gint64
int_member (JsonObject *object, const gchar *name)
{
  return object != NULL ? json_object_get_int_member_with_default (object, name, 0) : 0;
}

static guint
array_length (JsonObject *root, const gchar *member)
{
  JsonArray *array = array_member (root, member);

  return array != NULL ? json_array_get_length (array) : 0;
}

static void
append_nics (GString *s, JsonObject *root)
{
  JsonArray *nics = array_member (root, "nics");

  for (guint i = 0; nics != NULL && i < json_array_get_length (nics); i++)
    {
      JsonObject *nic = object_element (nics, i);

      g_string_append_printf (s, "%s %s %s %s (%s, link %s)", i == 0 ? ";" : ",",
                              string_member (nic, "name", "?"),
                              string_member (nic, "mac", "no MAC"),
                              string_member (nic, "driver", "no driver"),
                              string_member (nic, "bus_id", "?"),
                              string_member (nic, "link", "unknown"));
    }
}

static void
append_disks (GString *s, JsonObject *root)
{
  JsonArray *disks = array_member (root, "disks");

  for (guint i = 0; disks != NULL && i < json_array_get_length (disks); i++)
    {
      JsonObject *disk = object_element (disks, i);
      g_autofree gchar *size = g_format_size ((guint64) int_member (disk, "size_bytes"));

      g_string_append_printf (s, "%s %s %s", i == 0 ? ";" : ",", string_member (disk, "name", "?"), size);
    }
}

/**
 * shoal_inventory_summary:
 *
 * One line for the journal: system, firmware, CPUs, memory, PCI devices,
 * disks and NICs; what the report leaves out (all of "dmi", a CPU model)
 * is "?".
 */
gchar *
shoal_inventory_summary (JsonNode *inventory)
{
  JsonObject *root = inventory != NULL && JSON_NODE_HOLDS_OBJECT (inventory) ? json_node_get_object (inventory) : NULL;
  JsonObject *dmi = object_member (root, "dmi");
  JsonObject *cpu = object_member (root, "cpu");
  JsonObject *mem = object_member (root, "memory");
  JsonObject *fw = object_member (root, "firmware");
  g_autofree gchar *memory = g_format_size_full ((guint64) int_member (mem, "total_bytes"), G_FORMAT_SIZE_IEC_UNITS);
  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "%s %s, %s, %" G_GINT64_FORMAT " CPU (%s), %s, %u PCI devices, %u disks, %u NICs",
                          string_member (dmi, "sys_vendor", "?"),
                          string_member (dmi, "product_name", "?"),
                          string_member (fw, "type", "?"),
                          int_member (cpu, "count"),
                          string_member (cpu, "model", "?"),
                          memory, array_length (root, "pci"), array_length (root, "disks"),
                          array_length (root, "nics"));
  append_disks (s, root);
  append_nics (s, root);
  return g_string_free (s, FALSE);
}

static void
inventory_received_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  ShoalStepContext *ctx = g_task_get_task_data (task);
  ShoalDevice *device = SHOAL_DEVICE (source);
  g_autoptr(JsonNode) inventory = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *summary = NULL;

  inventory = shoal_device_wait_event_finish (device, result, &error);
  if (inventory == NULL)
    {
      g_prefix_error (&error, "waiting for the inventory of %s: ", shoal_device_get_id (device));
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (!shoal_inventory_check (inventory, &error))
    {
      shoal_step_context_log (ctx, device, "inventory", SHOAL_JOURNAL_RESULT_FAILED, "%s", error->message);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  shoal_device_set_inventory (device, inventory);
  summary = shoal_inventory_summary (inventory);
  shoal_step_context_log (ctx, device, "inventory", SHOAL_JOURNAL_RESULT_OK, "%s", summary);
  g_task_return_boolean (task, TRUE);
}

static void
shoal_inventory_step_run_async (ShoalStep           *step,
                                ShoalStepContext    *ctx,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (step, cancellable, callback, user_data);
  ShoalDevice *device = shoal_step_context_get_device (ctx);

  g_task_set_source_tag (task, shoal_inventory_step_run_async);
  g_task_set_task_data (task, g_object_ref (ctx), g_object_unref);
  if (device == NULL)
    {
      g_task_return_new_error (task, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                               "the inventory step runs for one device");
      return;
    }
  shoal_step_context_log (ctx, device, "inventory", SHOAL_JOURNAL_RESULT_INFO,
                          "waiting for the agent loader's hardware report");
  shoal_device_wait_event_async (device, "inventory", cancellable, inventory_received_cb,
                                 g_steal_pointer (&task));
}

static ShoalStepPhase
shoal_inventory_step_get_phase (ShoalStep *step)
{
  return SHOAL_STEP_PHASE_INVENTORY;
}

static ShoalStepScope
shoal_inventory_step_get_scope (ShoalStep *step)
{
  return SHOAL_STEP_SCOPE_DEVICE;
}

static void
shoal_inventory_step_iface_init (ShoalStepInterface *iface)
{
  iface->get_scope = shoal_inventory_step_get_scope;
  iface->get_phase = shoal_inventory_step_get_phase;
  iface->run_async = shoal_inventory_step_run_async;
}

static void
shoal_inventory_step_class_init (ShoalInventoryStepClass *klass)
{
}

static void
shoal_inventory_step_class_finalize (ShoalInventoryStepClass *klass)
{
}

static void
shoal_inventory_step_init (ShoalInventoryStep *self)
{
}

void
shoal_inventory_step_register_types (GTypeModule *module)
{
  shoal_inventory_step_register_type (module);
}
