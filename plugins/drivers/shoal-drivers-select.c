/* shoal-drivers-select.c: picks kernel modules for an inventory
 *
 * Each PCI device of a wanted class is matched by its modalias against the
 * kernel's modules.alias (fnmatch, as modprobe does). Two aliases the
 * loader cannot always report are derived from the PCI IDs: the virtio
 * device behind a virtio PCI function ("virtio:d<type>v00001AF4", so
 * virtio_net and virtio_blk are picked, not only virtio_pci), and the SCSI
 * disk alias ("scsi:t-0x00" -> sd_mod) behind an IDE/SATA/SCSI
 * controller. Reported "devices" of the virtio bus are matched too.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-drivers-select.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "shoal-error.h"

static const gchar * const default_classes[] = { "01", "02", NULL };

/* virtio device types the agent needs: net, block, SCSI host */
static const guint virtio_wanted[] = { 1, 2, 8 };

void
shoal_drivers_selection_free (ShoalDriversSelection *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->modules, g_ptr_array_unref);
  g_clear_pointer (&self->picked, g_ptr_array_unref);
  g_clear_pointer (&self->matched, g_ptr_array_unref);
  g_clear_pointer (&self->unmatched, g_ptr_array_unref);
  g_clear_pointer (&self->forbidden, g_ptr_array_unref);
  g_free (self);
}

static guint
hex_member (JsonObject *o, const gchar *name)
{
  const gchar *s = json_object_get_string_member_with_default (o, name, "0");

  return (guint) g_ascii_strtoull (s, NULL, 16);
}

/**
 * shoal_drivers_pci_modalias:
 *
 * The device's modalias as reported, or built from its IDs the way the
 * kernel writes it.
 */
gchar *
shoal_drivers_pci_modalias (JsonObject *pci)
{
  const gchar *reported = json_object_get_string_member_with_default (pci, "modalias", NULL);
  guint klass = hex_member (pci, "class");

  if (reported != NULL && *reported != '\0')
    return g_strdup (reported);
  return g_strdup_printf ("pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X",
                          hex_member (pci, "vendor"), hex_member (pci, "device"),
                          hex_member (pci, "subsystem_vendor"), hex_member (pci, "subsystem_device"),
                          (klass >> 16) & 0xff, (klass >> 8) & 0xff, klass & 0xff);
}

static gboolean
is_forbidden (const ShoalDriversOptions *options, const gchar *module)
{
  for (guint i = 0; options->forbid != NULL && options->forbid[i] != NULL; i++)
    {
      g_autofree gchar *norm = shoal_mod_index_normalize_name (options->forbid[i]);

      if (fnmatch (norm, module, 0) == 0)
        return TRUE;
    }
  return FALSE;
}

static void
add_unique (GPtrArray *array, const gchar *str)
{
  if (!g_ptr_array_find_with_equal_func (array, str, g_str_equal, NULL))
    g_ptr_array_add (array, g_strdup (str));
}

/* Matches one alias for a device labelled @ids; TRUE if a module was
 * picked, or one built into the kernel matched (nothing to load) */
static gboolean
match_alias (ShoalModIndex *index, const ShoalDriversOptions *options, const gchar *alias,
             const gchar *ids, ShoalDriversSelection *sel)
{
  g_autoptr(GPtrArray) mods = shoal_mod_index_match (index, alias);
  gboolean picked = FALSE;

  for (guint i = 0; i < mods->len; i++)
    {
      const gchar *m = g_ptr_array_index (mods, i);
      g_autofree gchar *line = g_strdup_printf ("%s %s", ids, m);

      if (shoal_mod_index_is_builtin (index, m))
        {
          g_autofree gchar *builtin = g_strdup_printf ("%s (built-in)", line);

          add_unique (sel->matched, builtin);
          picked = TRUE;
          continue;
        }
      if (is_forbidden (options, m))
        {
          g_autofree gchar *f = g_strdup_printf ("%s (%s)", m, ids);

          add_unique (sel->forbidden, f);
          continue;
        }
      add_unique (sel->matched, line);
      add_unique (sel->picked, m);
      picked = TRUE;
    }
  return picked;
}

static gboolean
class_wanted (const ShoalDriversOptions *options, const gchar *klass)
{
  const gchar * const *classes = options->classes ? options->classes : default_classes;

  for (guint i = 0; classes[i] != NULL; i++)
    {
      if (g_str_has_prefix (klass, classes[i]))
        return TRUE;
    }
  return FALSE;
}

static guint
virtio_type_of (guint device, guint subsystem_device)
{
  if (device >= 0x1000 && device < 0x1040)
    return subsystem_device;
  if (device >= 0x1040 && device < 0x1080)
    return device - 0x1040;
  return 0;
}

static gboolean
virtio_type_wanted (guint type)
{
  for (guint i = 0; i < G_N_ELEMENTS (virtio_wanted); i++)
    {
      if (virtio_wanted[i] == type)
        return TRUE;
    }
  return FALSE;
}

/* Aliases derived from a PCI function's IDs (see the top of this file) */
static void
derived_aliases (JsonObject *pci, GPtrArray *aliases)
{
  guint vendor = hex_member (pci, "vendor");
  guint device = hex_member (pci, "device");
  guint klass = hex_member (pci, "class");

  if (vendor == 0x1af4)
    {
      guint type = virtio_type_of (device, hex_member (pci, "subsystem_device"));

      if (virtio_type_wanted (type))
        g_ptr_array_add (aliases, g_strdup_printf ("virtio:d%08Xv%08X", type, 0x1af4));
      if (type == 8)
        g_ptr_array_add (aliases, g_strdup ("scsi:t-0x00"));
      return;
    }
  /* IDE, SCSI, SATA, SAS: disks behind them need sd_mod */
  if ((klass >> 16) == 0x01 && ((klass >> 8) & 0xff) != 0x08 && ((klass >> 8) & 0xff) != 0x80)
    g_ptr_array_add (aliases, g_strdup ("scsi:t-0x00"));
}

static void
select_pci (ShoalModIndex *index, const ShoalDriversOptions *options, JsonObject *pci,
            ShoalDriversSelection *sel)
{
  const gchar *klass = json_object_get_string_member_with_default (pci, "class", "");
  g_autofree gchar *ids = g_strdup_printf ("%s:%s",
                                           json_object_get_string_member_with_default (pci, "vendor", "?"),
                                           json_object_get_string_member_with_default (pci, "device", "?"));
  g_autofree gchar *modalias = NULL;
  g_autoptr(GPtrArray) derived = g_ptr_array_new_with_free_func (g_free);
  gboolean any;

  if (!class_wanted (options, klass))
    return;
  modalias = shoal_drivers_pci_modalias (pci);
  any = match_alias (index, options, modalias, ids, sel);
  derived_aliases (pci, derived);
  for (guint i = 0; i < derived->len; i++)
    any |= match_alias (index, options, g_ptr_array_index (derived, i), ids, sel);
  if (!any)
    {
      g_autofree gchar *line = g_strdup_printf ("%s (class %s, %s)", ids, klass,
                                                json_object_get_string_member_with_default (pci, "slot", "?"));
      add_unique (sel->unmatched, line);
    }
}

static void
select_bus_device (ShoalModIndex *index, const ShoalDriversOptions *options, JsonObject *dev,
                   ShoalDriversSelection *sel)
{
  const gchar *bus = json_object_get_string_member_with_default (dev, "bus", "");
  const gchar *alias = json_object_get_string_member_with_default (dev, "modalias", "");
  guint type = 0;

  if (g_strcmp0 (bus, "virtio") != 0 || sscanf (alias, "virtio:d%08Xv", &type) != 1
      || !virtio_type_wanted (type))
    return;
  if (!match_alias (index, options, alias, alias, sel))
    add_unique (sel->unmatched, alias);
}

static gboolean
add_requested (ShoalModIndex *index, const ShoalDriversOptions *options, ShoalDriversSelection *sel,
               GError **error)
{
  for (guint i = 0; options->add != NULL && options->add[i] != NULL; i++)
    {
      g_autofree gchar *norm = shoal_mod_index_normalize_name (options->add[i]);

      if (!shoal_mod_index_has_module (index, norm) && !shoal_mod_index_is_builtin (index, norm))
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                       "the recipe adds driver %s, which kernel %s does not have",
                       norm, shoal_mod_index_get_release (index));
          return FALSE;
        }
      add_unique (sel->picked, norm);
    }
  return TRUE;
}

static void
for_each_object (JsonObject *root, const gchar *member, ShoalModIndex *index,
                 const ShoalDriversOptions *options, ShoalDriversSelection *sel,
                 void (*func) (ShoalModIndex *, const ShoalDriversOptions *, JsonObject *, ShoalDriversSelection *))
{
  JsonNode *node = json_object_get_member (root, member);
  JsonArray *array;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    return;
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *elem = json_array_get_element (array, i);

      if (JSON_NODE_HOLDS_OBJECT (elem))
        func (index, options, json_node_get_object (elem), sel);
    }
}

/**
 * shoal_drivers_select:
 *
 * Picks the modules for @inventory (a JSON object valid against
 * schemas/inventory.schema.json).
 */
ShoalDriversSelection *
shoal_drivers_select (ShoalModIndex             *index,
                      JsonNode                  *inventory,
                      const ShoalDriversOptions *options,
                      GError                   **error)
{
  g_autoptr(ShoalDriversSelection) sel = g_new0 (ShoalDriversSelection, 1);
  JsonObject *root;

  if (inventory == NULL || !JSON_NODE_HOLDS_OBJECT (inventory))
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                           "the device has no inventory to pick drivers for");
      return NULL;
    }
  root = json_node_get_object (inventory);
  sel->picked = g_ptr_array_new_with_free_func (g_free);
  sel->matched = g_ptr_array_new_with_free_func (g_free);
  sel->unmatched = g_ptr_array_new_with_free_func (g_free);
  sel->forbidden = g_ptr_array_new_with_free_func (g_free);
  for_each_object (root, "pci", index, options, sel, select_pci);
  for_each_object (root, "devices", index, options, sel, select_bus_device);
  if (!add_requested (index, options, sel, error))
    return NULL;
  sel->modules = shoal_mod_index_resolve (index, sel->picked, error);
  if (sel->modules == NULL)
    {
      g_prefix_error (error, "resolving module dependencies: ");
      return NULL;
    }
  return g_steal_pointer (&sel);
}
