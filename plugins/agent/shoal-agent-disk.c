/* shoal-agent-disk.c: which disk the agent writes, from root device hints
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A machine with several disks must get its system on the right one: the
 * agent step's "root-device" option (Ironic's root device hints) names the
 * properties the disk must have, and the disk is chosen here from the
 * device's inventory, before the agent exists, so the choice is in the
 * journal and a machine without such a disk fails before anything is
 * written. Members (all optional; every one given must hold):
 *
 *   "name"          glob on the kernel name ("nvme*", "sda"; "/dev/" may lead)
 *   "model", "vendor", "serial"   glob on the inventory's strings
 *   "min-size-gib", "max-size-gib" integers, the disk's size in GiB
 *   "rotational"    boolean (false: SSD and NVMe)
 *
 * Never chosen: removable disks, read-only ones ("ro"), disks of size 0
 * (a card reader without a card), an eMMC's hardware boot partitions
 * (mmcblkNbootM: 4 MiB, read-only until unlocked) and its RPMB partition,
 * which the loader reported as disks before it left them out (inventories
 * kept from then still list them, without "ro"). Of the disks that match, the smallest is
 * chosen (the system on the small disk, the large ones left for data),
 * the first by name among equals.
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "shoal-agent-disk.h"
#include "shoal-error.h"

static const gchar *string_hints[] = { "name", "model", "vendor", "serial" };
static const gchar *size_hints[] = { "min-size-gib", "max-size-gib" };

static gboolean
member_is (JsonNode *node,
           GType     type)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == type;
}

/**
 * shoal_agent_disk_hints_validate:
 * @hints: the "root-device" option
 *
 * Returns: %TRUE, or %FALSE with @error (%SHOAL_ERROR_INVALID_RECIPE)
 *   naming what is wrong
 */
gboolean
shoal_agent_disk_hints_validate (JsonNode  *hints,
                                 GError   **error)
{
  JsonObject *object;
  g_autoptr(GList) members = NULL;

  if (hints == NULL || !JSON_NODE_HOLDS_OBJECT (hints))
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                           _("agent: option “root-device” must be an object of hints"));
      return FALSE;
    }
  object = json_node_get_object (hints);
  members = json_object_get_members (object);
  for (GList *l = members; l != NULL; l = l->next)
    {
      const gchar *name = l->data;
      JsonNode *node = json_object_get_member (object, name);
      gboolean known = FALSE, ok = FALSE;

      for (guint i = 0; i < G_N_ELEMENTS (string_hints); i++)
        if (strcmp (name, string_hints[i]) == 0)
          {
            known = TRUE;
            ok = member_is (node, G_TYPE_STRING) && *json_node_get_string (node) != '\0';
          }
      for (guint i = 0; i < G_N_ELEMENTS (size_hints); i++)
        if (strcmp (name, size_hints[i]) == 0)
          {
            known = TRUE;
            ok = member_is (node, G_TYPE_INT64) && json_node_get_int (node) >= 0 &&
                 json_node_get_int (node) <= G_GINT64_CONSTANT (1) << 30;
          }
      if (strcmp (name, "rotational") == 0)
        {
          known = TRUE;
          ok = member_is (node, G_TYPE_BOOLEAN);
        }
      if (!known)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                       _("agent: “root-device” has no hint “%s” (name, model, vendor, serial, "
                         "min-size-gib, max-size-gib, rotational)"), name);
          return FALSE;
        }
      if (!ok)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                       _("agent: root-device hint “%s” must be %s"), name,
                       strcmp (name, "rotational") == 0 ? _("true or false") :
                       g_str_has_suffix (name, "-gib") ? _("a whole number of GiB from 0 to 2^30") :
                       _("a non-empty pattern"));
          return FALSE;
        }
    }
  if (json_object_has_member (object, "min-size-gib") && json_object_has_member (object, "max-size-gib") &&
      json_object_get_int_member (object, "min-size-gib") > json_object_get_int_member (object, "max-size-gib"))
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                           _("agent: root-device hint “min-size-gib” is larger than “max-size-gib”"));
      return FALSE;
    }
  return TRUE;
}

/* NULL when the disk has every hint, else which it lacks */
static const gchar *
mismatch (JsonObject *disk,
          JsonObject *hints)
{
  gint64 size_bytes = json_object_get_int_member_with_default (disk, "size_bytes", 0);
  guint64 size = size_bytes > 0 ? (guint64) size_bytes : 0;
  const gchar *name = json_object_get_string_member_with_default (disk, "name", "");

  if (json_object_get_boolean_member_with_default (disk, "removable", FALSE))
    return "removable";
  if (g_pattern_match_simple ("mmcblk*boot*", name))
    return "eMMC boot partition";
  if (g_str_has_suffix (name, "rpmb"))
    return "RPMB partition";
  if (json_object_get_boolean_member_with_default (disk, "ro", FALSE))
    return "read-only";
  if (size == 0)
    return "size 0";
  for (guint i = 0; i < G_N_ELEMENTS (string_hints); i++)
    {
      const gchar *pattern = json_object_get_string_member_with_default (hints, string_hints[i], NULL);
      const gchar *value = json_object_get_string_member_with_default (disk, string_hints[i], "");

      if (pattern == NULL)
        continue;
      if (i == 0 && g_str_has_prefix (pattern, "/dev/"))
        pattern += 5;
      if (!g_pattern_match_simple (pattern, value))
        return string_hints[i];
    }
  if (json_object_has_member (hints, "min-size-gib") &&
      size < (guint64) json_object_get_int_member (hints, "min-size-gib") << 30)
    return "min-size-gib";
  if (json_object_has_member (hints, "max-size-gib") &&
      size > (guint64) json_object_get_int_member (hints, "max-size-gib") << 30)
    return "max-size-gib";
  if (json_object_has_member (hints, "rotational") &&
      (!json_object_has_member (disk, "rotational") ||
       json_object_get_boolean_member (disk, "rotational") != json_object_get_boolean_member (hints, "rotational")))
    return "rotational";
  return NULL;
}

static gboolean
better (JsonObject *disk,
        JsonObject *best)
{
  gint64 a = json_object_get_int_member_with_default (disk, "size_bytes", 0);
  gint64 b = json_object_get_int_member_with_default (best, "size_bytes", 0);

  if (a != b)
    return a < b;
  return g_strcmp0 (json_object_get_string_member_with_default (disk, "name", ""),
                    json_object_get_string_member_with_default (best, "name", "")) < 0;
}

/**
 * shoal_agent_disk_choose:
 * @inventory: the device's inventory (schemas/inventory.schema.json)
 * @hints: valid root device hints (shoal_agent_disk_hints_validate())
 * @description: (out): the disk chosen, for the journal
 *
 * Returns: (transfer full): "/dev/NAME", or %NULL with @error
 *   (%SHOAL_ERROR_NOT_FOUND) saying, for each disk, the hint it lacks
 */
gchar *
shoal_agent_disk_choose (JsonNode     *inventory,
                         JsonNode     *hints,
                         gchar       **description,
                         GError      **error)
{
  JsonObject *h = json_node_get_object (hints);
  JsonObject *inv = inventory != NULL && JSON_NODE_HOLDS_OBJECT (inventory) ? json_node_get_object (inventory) : NULL;
  JsonArray *disks = inv != NULL && json_object_has_member (inv, "disks") ?
                     json_object_get_array_member (inv, "disks") : NULL;
  g_autoptr(GString) lacks = g_string_new (NULL);
  JsonObject *best = NULL;
  guint n = disks != NULL ? json_array_get_length (disks) : 0;

  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (disks, i);
      JsonObject *disk = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const gchar *why = disk != NULL ? mismatch (disk, h) : "";

      if (disk == NULL || json_object_get_string_member_with_default (disk, "name", NULL) == NULL)
        continue;
      if (why != NULL)
        g_string_append_printf (lacks, "%s%s (%s)", lacks->len > 0 ? ", " : "",
                                json_object_get_string_member (disk, "name"), why);
      else if (best == NULL || better (disk, best))
        best = disk;
    }
  if (best == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                   _("no disk matches the root-device hints: %s"),
                   n == 0 ? _("the inventory lists no disk") : lacks->str);
      return NULL;
    }
  *description = g_strdup_printf (_("/dev/%s, %.1f GiB, model “%s”, serial “%s”"),
                                  json_object_get_string_member (best, "name"),
                                  (double) json_object_get_int_member_with_default (best, "size_bytes", 0) / (1 << 30),
                                  json_object_get_string_member_with_default (best, "model", ""),
                                  json_object_get_string_member_with_default (best, "serial", ""));
  return g_strconcat ("/dev/", json_object_get_string_member (best, "name"), NULL);
}
