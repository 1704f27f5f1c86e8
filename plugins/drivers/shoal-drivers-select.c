/* shoal-drivers-select.c: picks kernel modules for an inventory
 *
 * Each PCI device of a wanted class is matched by its modalias against the
 * kernel's modules.alias (fnmatch, as modprobe does). Two aliases the
 * loader cannot always report are derived from the PCI IDs: the virtio
 * device behind a virtio PCI function ("virtio:d<type>v00001AF4", so
 * virtio_net and virtio_blk are picked, not only virtio_pci), and the SCSI
 * disk alias ("scsi:t-0x00" -> sd_mod) behind an IDE/SATA/SCSI
 * controller.
 *
 * Reported "devices" of the other buses (virtio, vmbus, usb, xen, scsi,
 * acpi, platform...) are matched by their modalias whatever the bus, as
 * kmod matches them. Their class is what the modalias tells where the bus
 * encodes it (see bus_device_class()); a device of a wanted class has its
 * matching modules picked, and is reported unmatched when none matches.
 * Where the modalias does not tell (a vendor-specific USB interface, an
 * ACPI or platform device), a matching module is picked when its place in
 * the kernel tree is of a wanted class (drivers/net: network; drivers/scsi,
 * ata, block, nvme, mmc, usb/storage: storage), and nothing is reported
 * when none matches.
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

#define CLASS_STORAGE "010000"
#define CLASS_NETWORK "020000"
#define CLASS_OTHER   ""         /* known, and of no class "classes" names */

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
      g_autofree gchar *norm = shoal_mod_index_normalize_pattern (options->forbid[i]);

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

static gboolean class_wanted (const ShoalDriversOptions *options, const gchar *klass);

/* The class of a module by its place in the kernel tree, as a PCI class;
 * NULL if it is none of network and storage (or built in) */
static const gchar *
module_class (ShoalModIndex *index, const gchar *module)
{
  static const struct { const gchar *prefix, *klass; } dirs[] = {
    { "kernel/drivers/net/", CLASS_NETWORK },
    { "kernel/drivers/scsi/", CLASS_STORAGE },
    { "kernel/drivers/ata/", CLASS_STORAGE },
    { "kernel/drivers/block/", CLASS_STORAGE },
    { "kernel/drivers/nvme/", CLASS_STORAGE },
    { "kernel/drivers/mmc/", CLASS_STORAGE },
    { "kernel/drivers/usb/storage/", CLASS_STORAGE },
  };
  const gchar *path = shoal_mod_index_get_path (index, module);

  for (guint i = 0; path != NULL && i < G_N_ELEMENTS (dirs); i++)
    {
      if (g_str_has_prefix (path, dirs[i].prefix))
        return dirs[i].klass;
    }
  return NULL;
}

/* Matches one alias for a device labelled @ids; TRUE if a module was
 * picked, or one built into the kernel matched (nothing to load). With
 * @by_module, only modules whose module_class() is wanted count. */
static gboolean
match_alias (ShoalModIndex *index, const ShoalDriversOptions *options, const gchar *alias,
             const gchar *ids, gboolean by_module, ShoalDriversSelection *sel)
{
  g_autoptr(GPtrArray) mods = shoal_mod_index_match (index, alias);
  gboolean picked = FALSE;

  for (guint i = 0; i < mods->len; i++)
    {
      const gchar *m = g_ptr_array_index (mods, i);
      g_autofree gchar *line = g_strdup_printf ("%s %s", ids, m);
      const gchar *klass = by_module ? module_class (index, m) : NULL;

      if (by_module && (klass == NULL || !class_wanted (options, klass)))
        continue;

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

  /* "01", "0106", "010601": base class, subclass and programming interface, in any case */
  for (guint i = 0; classes[i] != NULL; i++)
    {
      gsize len = strlen (classes[i]);

      if (len > 0 && strlen (klass) >= len && g_ascii_strncasecmp (klass, classes[i], len) == 0)
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
  any = match_alias (index, options, modalias, ids, FALSE, sel);
  derived_aliases (pci, derived);
  for (guint i = 0; i < derived->len; i++)
    any |= match_alias (index, options, g_ptr_array_index (derived, i), ids, FALSE, sel);
  if (!any)
    {
      g_autofree gchar *line = g_strdup_printf ("%s (class %s, %s)", ids, klass,
                                                json_object_get_string_member_with_default (pci, "slot", "?"));
      add_unique (sel->unmatched, line);
    }
}

/* Hyper-V device classes (vmbus modaliases: the class GUID's bytes) */
static const struct { const gchar *alias, *klass; } vmbus_classes[] = {
  { "vmbus:635161f83edfc546913ff2d2f965ed0e", CLASS_NETWORK },  /* network (hv_netvsc) */
  { "vmbus:d96361baa104294db60572e2ffb1dc7f", CLASS_STORAGE },  /* SCSI (hv_storvsc) */
  { "vmbus:32264132cb86a2449b5c50d1417354f5", CLASS_STORAGE },  /* IDE (hv_storvsc) */
  { "vmbus:4acc9b2f6900f34ab76b6fd0be528cda", CLASS_STORAGE },  /* Fibre Channel (hv_storvsc) */
};

/* The class of a device on another bus as its modalias tells it, as a PCI
 * class: network, storage, CLASS_OTHER; NULL where it does not tell */
static const gchar *
bus_device_class (const gchar *alias)
{
  guint type = 0, ic = 0, isc = 0, ip = 0;

  if (g_str_has_prefix (alias, "virtio:"))
    {
      if (sscanf (alias, "virtio:d%08Xv", &type) != 1 || !virtio_type_wanted (type))
        return CLASS_OTHER;
      return type == 1 ? CLASS_NETWORK : CLASS_STORAGE;
    }
  if (g_str_has_prefix (alias, "vmbus:"))
    {
      for (guint i = 0; i < G_N_ELEMENTS (vmbus_classes); i++)
        {
          if (g_ascii_strcasecmp (alias, vmbus_classes[i].alias) == 0)
            return vmbus_classes[i].klass;
        }
      return CLASS_OTHER;
    }
  if (g_str_has_prefix (alias, "xen:"))
    {
      if (g_str_equal (alias, "xen:vif"))
        return CLASS_NETWORK;
      return g_str_equal (alias, "xen:vbd") || g_str_equal (alias, "xen:vscsi") ? CLASS_STORAGE : CLASS_OTHER;
    }
  if (g_str_has_prefix (alias, "scsi:"))
    return CLASS_STORAGE;
  /* usb:vVVVVpPPPPdDDDDdcDCdscSCdpDPicICiscSCipIPinIN: the interface class */
  if (g_str_has_prefix (alias, "usb:")
      && sscanf (alias, "usb:v%*4xp%*4xd%*4xdc%*2xdsc%*2xdp%*2xic%2xisc%2xip%2x", &ic, &isc, &ip) == 3)
    {
      if (ic == 0x08)
        return CLASS_STORAGE;
      /* CDC ECM, EEM, NCM, MBIM; RNDIS */
      if ((ic == 0x02 && (isc == 0x06 || isc == 0x0c || isc == 0x0d || isc == 0x0e))
          || (ic == 0xe0 && isc == 0x01 && ip == 0x03))
        return CLASS_NETWORK;
      return ic == 0xff ? NULL : CLASS_OTHER;
    }
  return NULL;
}

static void
select_bus_device (ShoalModIndex *index, const ShoalDriversOptions *options, JsonObject *dev,
                   ShoalDriversSelection *sel)
{
  const gchar *bus = json_object_get_string_member_with_default (dev, "bus", "");
  const gchar *alias = json_object_get_string_member_with_default (dev, "modalias", "");
  const gchar *klass;

  if (*alias == '\0')
    return;
  klass = bus_device_class (alias);
  if (klass == NULL)
    {
      match_alias (index, options, alias, alias, TRUE, sel);
      return;
    }
  if (!class_wanted (options, klass))
    return;
  if (!match_alias (index, options, alias, alias, FALSE, sel))
    {
      g_autofree gchar *line = g_strdup_printf ("%s (%s device %s)", alias, bus,
                                                json_object_get_string_member_with_default (dev, "name", "?"));

      add_unique (sel->unmatched, line);
    }
}

static gboolean
add_requested (ShoalModIndex *index, const ShoalDriversOptions *options, ShoalDriversSelection *sel,
               GError **error)
{
  for (guint i = 0; options->add != NULL && options->add[i] != NULL; i++)
    {
      g_autofree gchar *norm = shoal_mod_index_normalize_name (options->add[i]);

      /* forbid patterns are removed after the adds */
      if (is_forbidden (options, norm))
        {
          g_autofree gchar *f = g_strdup_printf ("%s (added by the recipe)", norm);

          add_unique (sel->forbidden, f);
          continue;
        }
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
