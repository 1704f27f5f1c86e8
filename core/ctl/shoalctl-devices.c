/* shoalctl-devices.c: the device commands of shoalctl
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>

#include "shoalctl.h"

typedef struct
{
  const gchar *id;
  const gchar *state;
  const gchar *step;
  gdouble      progress;
  const gchar *recipe;
} DeviceRow;

static gint
compare_rows (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (((const DeviceRow *) a)->id, ((const DeviceRow *) b)->id);
}

static void
read_row (GVariant *props, DeviceRow *row)
{
  row->id = row->state = row->step = row->recipe = "";
  row->progress = 0.0;
  g_variant_lookup (props, "Id", "&s", &row->id);
  g_variant_lookup (props, "State", "&s", &row->state);
  g_variant_lookup (props, "CurrentStep", "&s", &row->step);
  g_variant_lookup (props, "Progress", "d", &row->progress);
  g_variant_lookup (props, "Recipe", "&s", &row->recipe);
}

gboolean
shoalctl_cmd_devices (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autoptr(GVariant) objects = NULL;
  g_autoptr(GArray) rows = g_array_new (FALSE, TRUE, sizeof (DeviceRow));
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_autoptr(ShoalCtlTable) table = NULL;
  GVariantIter iter;
  GVariant *ifaces;

  if (!shoalctl_check_args (args, 0, 0, "devices", error))
    return FALSE;
  objects = shoalctl_get_managed_objects (ctl, error);
  if (objects == NULL)
    return FALSE;
  g_variant_iter_init (&iter, objects);
  while (g_variant_iter_next (&iter, "{&o@a{sa{sv}}}", NULL, &ifaces))
    {
      GVariant *props = g_variant_lookup_value (ifaces, SHOALCTL_DEVICE_IFACE, G_VARIANT_TYPE ("a{sv}"));
      DeviceRow row;

      g_variant_unref (ifaces);
      if (props == NULL)
        continue;
      g_ptr_array_add (keep, props);
      read_row (props, &row);
      g_array_append_val (rows, row);
    }
  g_array_sort (rows, compare_rows);

  table = shoalctl_table_new (_("ID"), _("STATE"), _("STEP"), _("PROGRESS"), _("RECIPE"), NULL);
  for (guint i = 0; i < rows->len; i++)
    {
      DeviceRow *row = &g_array_index (rows, DeviceRow, i);
      g_autofree gchar *progress = g_strdup_printf ("%3.0f%%", row->progress * 100.0);

      shoalctl_table_add_row (table, row->id, row->state,
                              row->step[0] != '\0' ? row->step : "-", progress,
                              row->recipe[0] != '\0' ? row->recipe : "-", NULL);
    }
  shoalctl_table_print (table);
  g_print (g_dngettext (GETTEXT_PACKAGE, "%u device\n", "%u devices\n", rows->len), rows->len);
  return TRUE;
}

static GVariant *
get_device_properties (ShoalCtl *ctl, const gchar *id, GError **error)
{
  g_autofree gchar *path = shoalctl_device_path (id);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error_local = NULL;

  reply = g_dbus_connection_call_sync (ctl->connection, SHOALCTL_BUS_NAME, path,
                                       "org.freedesktop.DBus.Properties", "GetAll",
                                       g_variant_new ("(s)", SHOALCTL_DEVICE_IFACE),
                                       G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE,
                                       -1, NULL, &error_local);
  if (reply == NULL)
    {
      shoalctl_device_error (id, error, g_steal_pointer (&error_local));
      return NULL;
    }
  return g_variant_get_child_value (reply, 0);
}

static gchar *
summarize_json (JsonNode *node)
{
  if (JSON_NODE_HOLDS_VALUE (node))
    {
      GValue value = G_VALUE_INIT;
      g_autofree gchar *str = NULL;

      json_node_get_value (node, &value);
      if (G_VALUE_HOLDS_STRING (&value))
        str = g_value_dup_string (&value);
      else
        str = g_strdup_value_contents (&value);
      g_value_unset (&value);
      return g_steal_pointer (&str);
    }
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      guint n = json_array_get_length (json_node_get_array (node));

      return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u item", "%u items", n), n);
    }
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      g_autoptr(GList) members = json_object_get_members (json_node_get_object (node));
      g_autoptr(GString) keys = g_string_new (NULL);

      for (GList *l = members; l != NULL; l = l->next)
        g_string_append_printf (keys, "%s%s", keys->len > 0 ? ", " : "", (const gchar *) l->data);
      return g_strdup_printf ("{ %s }", keys->str);
    }
  return g_strdup ("null");
}

static JsonObject *
member_object (JsonObject *obj, const gchar *name)
{
  JsonNode *node = json_object_get_member (obj, name);

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static JsonArray *
member_array (JsonObject *obj, const gchar *name)
{
  JsonNode *node = json_object_get_member (obj, name);

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

/* "sda 512.1 GB Samsung SSD, sdb ..." from the members @keys of each element */
static gchar *
summarize_items (JsonArray *items, const gchar * const *keys)
{
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; i < json_array_get_length (items); i++)
    {
      JsonNode *node = json_array_get_element (items, i);
      JsonObject *item = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;

      if (item == NULL)
        continue;
      g_string_append (out, out->len > 0 ? "; " : "");
      for (guint k = 0; keys[k] != NULL; k++)
        {
          JsonNode *value = json_object_get_member (item, keys[k]);
          g_autofree gchar *text = NULL;

          if (value == NULL || !JSON_NODE_HOLDS_VALUE (value))
            continue;
          if (g_str_has_suffix (keys[k], "_bytes"))
            text = g_format_size (json_node_get_int (value));
          else
            text = summarize_json (value);
          g_string_append_printf (out, "%s%s", k > 0 ? " " : "", text);
        }
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* "  label          value": the inventory is the agent's, both escaped */
static void
print_inventory_line (const gchar *label, const gchar *value)
{
  g_autofree gchar *label_shown = shoalctl_escape (label);
  g_autofree gchar *value_shown = shoalctl_escape (value);

  g_print ("  %-14s %s\n", label_shown, value_shown);
}

/* the well-known parts of an inventory (schemas/inventory.schema.json) */
static void
print_known_inventory (JsonObject *obj, GHashTable *shown)
{
  JsonObject *dmi = member_object (obj, "dmi");
  JsonObject *firmware = member_object (obj, "firmware");
  JsonObject *cpu = member_object (obj, "cpu");
  JsonObject *memory = member_object (obj, "memory");
  JsonArray *disks = member_array (obj, "disks");
  JsonArray *nics = member_array (obj, "nics");
  JsonArray *pci = member_array (obj, "pci");
  const gchar *disk_keys[] = { "name", "size_bytes", "model", NULL };
  const gchar *nic_keys[] = { "name", "mac", "driver", NULL };

  if (dmi != NULL)
    {
      g_autofree gchar *text = g_strdup_printf ("%s %s",
                                                json_object_get_string_member_with_default (dmi, "sys_vendor", ""),
                                                json_object_get_string_member_with_default (dmi, "product_name", ""));

      print_inventory_line (_("system"), text);
    }
  if (firmware != NULL)
    print_inventory_line (_("firmware"), json_object_get_string_member_with_default (firmware, "type", "?"));
  if (cpu != NULL)
    {
      g_autofree gchar *text = g_strdup_printf ("%" G_GINT64_FORMAT " × %s",
                                                json_object_get_int_member_with_default (cpu, "count", 0),
                                                json_object_get_string_member_with_default (cpu, "model", "?"));

      print_inventory_line (_("cpu"), text);
    }
  if (memory != NULL)
    {
      g_autofree gchar *size = g_format_size (json_object_get_int_member_with_default (memory, "total_bytes", 0));

      print_inventory_line (_("memory"), size);
    }
  if (disks != NULL)
    {
      g_autofree gchar *text = summarize_items (disks, disk_keys);

      print_inventory_line (_("disks"), text);
    }
  if (nics != NULL)
    {
      g_autofree gchar *text = summarize_items (nics, nic_keys);

      print_inventory_line (_("nics"), text);
    }
  if (pci != NULL)
    {
      g_autofree gchar *text = g_strdup_printf ("%u", json_array_get_length (pci));

      print_inventory_line (_("pci devices"), text);
    }
  for (const gchar * const *k = (const gchar *[]) { "dmi", "firmware", "cpu", "memory", "disks", "nics", "pci", NULL };
       *k != NULL; k++)
    g_hash_table_add (shown, (gpointer) *k);
}

static void
print_inventory (const gchar *text)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GList) members = NULL;
  g_autoptr(GHashTable) shown = g_hash_table_new (g_str_hash, g_str_equal);
  JsonObject *obj;

  if (text == NULL || text[0] == '\0')
    {
      g_print ("  %s\n", _("(no inventory reported)"));
      return;
    }
  root = json_from_string (text, NULL);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_autofree gchar *raw = shoalctl_escape (text);

      g_print ("  %s\n", raw);
      return;
    }
  obj = json_node_get_object (root);
  print_known_inventory (obj, shown);
  members = json_object_get_members (obj);
  for (GList *l = members; l != NULL; l = l->next)
    {
      g_autofree gchar *summary = NULL;

      if (g_hash_table_contains (shown, l->data))
        continue;
      summary = summarize_json (json_object_get_member (obj, l->data));
      print_inventory_line (l->data, summary);
    }
}

gboolean
shoalctl_cmd_show (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autoptr(GVariant) props = NULL;
  g_autofree const gchar **macs = NULL;
  g_autofree gchar *macs_str = NULL;
  g_autofree gchar *bar = NULL;
  const gchar *commit = "", *inventory = "", *uuid = "", *group = "", *boot = "";
  DeviceRow row;

  if (!shoalctl_check_args (args, 1, 1, "show <id>", error))
    return FALSE;
  props = get_device_properties (ctl, args[0], error);
  if (props == NULL)
    return FALSE;
  read_row (props, &row);
  g_variant_lookup (props, "Macs", "^a&s", &macs);
  g_variant_lookup (props, "Uuid", "&s", &uuid);
  g_variant_lookup (props, "RecipeCommit", "&s", &commit);
  g_variant_lookup (props, "Group", "&s", &group);
  g_variant_lookup (props, "BootAction", "&s", &boot);
  g_variant_lookup (props, "Inventory", "&s", &inventory);
  macs_str = macs != NULL && macs[0] != NULL ? g_strjoinv (", ", (gchar **) macs) : g_strdup ("-");
  bar = shoalctl_progress_bar (row.progress, 30);

  shoalctl_print_field (_("Id:"), row.id);
  shoalctl_print_field (_("MACs:"), macs_str);
  shoalctl_print_field (_("UUID:"), uuid);
  shoalctl_print_field (_("State:"), row.state);
  shoalctl_print_field (_("Step:"), row.step);
  shoalctl_print_field (_("Progress:"), bar);
  shoalctl_print_field (_("Recipe:"), row.recipe);
  shoalctl_print_field (_("Commit:"), commit);
  shoalctl_print_field (_("Group:"), group);
  shoalctl_print_field (_("Boot action:"), boot);
  g_print ("%s\n", _("Inventory:"));
  print_inventory (inventory);
  return TRUE;
}

/* a locally administered MAC derived from the id, stable across runs */
static gchar *
mac_for_id (const gchar *id)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize len = sizeof (digest);

  g_checksum_update (sum, (const guchar *) id, -1);
  g_checksum_get_digest (sum, digest, &len);
  return g_strdup_printf ("02:%02x:%02x:%02x:%02x:%02x",
                          digest[0], digest[1], digest[2], digest[3], digest[4]);
}

static GVariant *
build_batch (ShoalCtl *ctl)
{
  GVariantBuilder builder;
  guint digits = 1;

  for (gint n = ctl->count; n >= 10; n /= 10)
    digits++;
  digits = MAX (digits, 4);
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sass)"));
  for (gint i = 1; i <= ctl->count; i++)
    {
      g_autofree gchar *id = g_strdup_printf ("%s%0*d", ctl->prefix, (gint) digits, i);
      g_autofree gchar *mac = mac_for_id (id);
      const gchar *macs[] = { mac, NULL };

      g_variant_builder_add (&builder, "(s^ass)", id, macs, "");
    }
  return g_variant_builder_end (&builder);
}

gboolean
shoalctl_cmd_enroll (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autoptr(GVariant) devices = NULL;
  g_auto(GStrv) paths = NULL;
  const gchar * const no_macs[] = { NULL };

  if (ctl->count > 0)
    {
      if (!shoalctl_check_args (args, 0, 0, "enroll --count N --prefix PREFIX", error))
        return FALSE;
      if (ctl->prefix == NULL)
        ctl->prefix = g_strdup ("sim-");
      devices = g_variant_ref_sink (build_batch (ctl));
    }
  else
    {
      if (!shoalctl_check_args (args, 1, 1, "enroll <id> [--mac MAC]... [--uuid UUID]", error))
        return FALSE;
      devices = g_variant_ref_sink (g_variant_new_parsed ("[(%s, %^as, %s)]", args[0],
                                                          ctl->macs != NULL ? (const gchar * const *) ctl->macs : no_macs,
                                                          ctl->uuid != NULL ? ctl->uuid : ""));
    }
  if (!shoal_dbus_manager_call_enroll_devices_sync (ctl->manager, devices, &paths, NULL, error))
    return FALSE;
  if (ctl->count > 0)
    g_print (g_dngettext (GETTEXT_PACKAGE, "Enrolled %u device\n", "Enrolled %u devices\n",
                          g_strv_length (paths)), g_strv_length (paths));
  else
    g_print (_("Enrolled %s at %s\n"), args[0], paths[0]);
  return TRUE;
}

gboolean
shoalctl_cmd_remove (ShoalCtl *ctl, gchar **args, GError **error)
{
  if (!shoalctl_check_args (args, 1, 1, "remove <id>", error))
    return FALSE;
  if (!shoal_dbus_manager_call_remove_device_sync (ctl->manager, args[0], NULL, error))
    return FALSE;
  g_print (_("Removed %s\n"), args[0]);
  return TRUE;
}

/* the ids named, or every device with --all */
static gchar **
resolve_ids (ShoalCtl *ctl, gchar **ids, const gchar *usage, GError **error)
{
  guint n = ids != NULL ? g_strv_length (ids) : 0;

  if (ctl->all && n > 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("Name devices or give --all, not both (usage: shoalctl %s)"), usage);
      return NULL;
    }
  if (ctl->all)
    return shoalctl_list_device_ids (ctl, error);
  if (n == 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("Name the devices, or give --all (usage: shoalctl %s)"), usage);
      return NULL;
    }
  return g_strdupv (ids);
}

gboolean
shoalctl_cmd_assign (ShoalCtl *ctl, gchar **args, GError **error)
{
  const gchar *usage = "assign <recipe|--auto> <id...|--all>";
  const gchar *recipe = "";
  g_auto(GStrv) ids = NULL;

  if (!ctl->auto_recipe)
    {
      if (!shoalctl_check_args (args, 1, G_MAXUINT, usage, error))
        return FALSE;
      recipe = args[0];
      args++;
    }
  ids = resolve_ids (ctl, args, usage, error);
  if (ids == NULL)
    return FALSE;
  if (ids[0] == NULL)
    {
      g_print ("%s\n", _("No device to assign"));
      return TRUE;
    }
  if (!shoal_dbus_manager_call_assign_recipe_sync (ctl->manager, (const gchar * const *) ids,
                                                   recipe, NULL, error))
    return FALSE;
  if (recipe[0] != '\0')
    g_print (g_dngettext (GETTEXT_PACKAGE, "Assigned %s to %u device\n",
                          "Assigned %s to %u devices\n", g_strv_length (ids)),
             recipe, g_strv_length (ids));
  else
    g_print (g_dngettext (GETTEXT_PACKAGE, "Assigned the matching recipe to %u device\n",
                          "Assigned the matching recipes to %u devices\n", g_strv_length (ids)),
             g_strv_length (ids));
  return TRUE;
}

/* a device Deploy with no ids would start: a recipe, not running a
 * deployment, not installed */
static gboolean
is_deployable (GVariant *props)
{
  const gchar *state = NULL;
  const gchar *recipe = NULL;

  return g_variant_lookup (props, "State", "&s", &state) &&
         g_variant_lookup (props, "Recipe", "&s", &recipe) &&
         recipe[0] != '\0' && !shoalctl_state_is_active (state) &&
         g_strcmp0 (state, "installed") != 0;
}

static gboolean
run_on_devices (ShoalCtl *ctl, gchar **args, gboolean deploy, GError **error)
{
  const gchar *usage = deploy ? "deploy <id...|--all>" : "cancel <id...|--all>";
  const gchar * const none[] = { NULL };
  g_auto(GStrv) deployable = NULL;
  guint n = args != NULL ? g_strv_length (args) : 0;
  gboolean ok;

  if ((ctl->all && n > 0) || (!ctl->all && n == 0))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("Name the devices, or give --all (usage: shoalctl %s)"), usage);
      return FALSE;
    }
  /* deploy --all names the devices it starts, so that it can say how many
   * did (Deploy tells none); a device that changed in between is in the
   * error */
  if (deploy && ctl->all)
    {
      deployable = shoalctl_list_device_ids_where (ctl, is_deployable, error);
      if (deployable == NULL)
        return FALSE;
      n = g_strv_length (deployable);
      if (n == 0)
        {
          g_print ("%s\n", _("No device to deploy: every device is installed, being deployed or without a recipe"));
          return TRUE;
        }
      args = deployable;
    }
  /* an empty list asks shoald for every running deployment */
  if (deploy)
    ok = shoal_dbus_manager_call_deploy_sync (ctl->manager, (const gchar * const *) args, NULL, error);
  else
    ok = shoal_dbus_manager_call_cancel_sync (ctl->manager, ctl->all ? none : (const gchar * const *) args,
                                              NULL, error);
  if (!ok)
    return FALSE;
  if (!deploy && ctl->all)
    g_print ("%s\n", _("Cancelling every running deployment"));
  else
    g_print (deploy ? g_dngettext (GETTEXT_PACKAGE, "Deploying %u device\n", "Deploying %u devices\n", n)
                    : g_dngettext (GETTEXT_PACKAGE, "Cancelled %u device\n", "Cancelled %u devices\n", n),
             n);
  return TRUE;
}

gboolean
shoalctl_cmd_deploy (ShoalCtl *ctl, gchar **args, GError **error)
{
  return run_on_devices (ctl, args, TRUE, error);
}

gboolean
shoalctl_cmd_cancel (ShoalCtl *ctl, gchar **args, GError **error)
{
  return run_on_devices (ctl, args, FALSE, error);
}

/* calls @method (@arg) of device @id's object */
static gboolean
call_device_method (ShoalCtl     *ctl,
                    const gchar  *id,
                    const gchar  *method,
                    const gchar  *arg,
                    GError      **error)
{
  g_autofree gchar *path = shoalctl_device_path (id);
  g_autoptr(GVariant) reply = NULL;
  GError *error_local = NULL;

  reply = g_dbus_connection_call_sync (ctl->connection, SHOALCTL_BUS_NAME, path,
                                       SHOALCTL_DEVICE_IFACE, method,
                                       g_variant_new ("(s)", arg), NULL,
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error_local);
  if (reply == NULL)
    return shoalctl_device_error (id, error, error_local);
  return TRUE;
}

gboolean
shoalctl_cmd_boot_action (ShoalCtl *ctl, gchar **args, GError **error)
{
  if (!shoalctl_check_args (args, 2, 2, "boot-action <id> <deploy|local|ignore>", error) ||
      !call_device_method (ctl, args[0], "SetBootAction", args[1], error))
    return FALSE;
  g_print (_("Boot action of %s set to %s\n"), args[0], args[1]);
  return TRUE;
}

gboolean
shoalctl_cmd_remove_mac (ShoalCtl *ctl, gchar **args, GError **error)
{
  if (!shoalctl_check_args (args, 2, 2, "remove-mac <id> <mac>", error) ||
      !call_device_method (ctl, args[0], "RemoveMac", args[1], error))
    return FALSE;
  g_print (_("MAC %s removed from %s\n"), args[1], args[0]);
  return TRUE;
}
