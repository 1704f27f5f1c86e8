/* test-drivers-select.c: modalias matching, dependency order and driver
 * selection, against a synthetic index and the real Debian kernel's
 * modules.alias/modules.dep (from scripts/fetch-kernel.sh)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>

#include "shoal-drivers-modindex.h"
#include "shoal-drivers-select.h"
#include "shoal-error.h"

/* The real kernel's lib/modules/<release>, or NULL (then the test skips) */
static gchar *
real_release_dir (void)
{
  const gchar *cache = g_getenv ("SHOAL_KERNEL_CACHE");
  g_autofree gchar *kernels = NULL;
  const gchar *roots[2] = { NULL, NULL };
  g_autofree gchar *release = NULL;
  g_autofree gchar *current = NULL;

  if (cache == NULL)
    return NULL;
  kernels = g_build_filename (cache, "kernel", NULL);
  current = g_build_filename (kernels, "current", "version", NULL);
  if (!g_file_get_contents (current, &release, NULL, NULL))
    return NULL;
  g_strstrip (release);
  roots[0] = kernels;
  return shoal_mod_index_find_release_dir (release, roots, NULL);
}

static ShoalModIndex *
real_index (void)
{
  g_autofree gchar *dir = real_release_dir ();
  g_autoptr(GError) error = NULL;
  ShoalModIndex *index;

  if (dir == NULL)
    {
      g_test_skip ("no kernel in the build cache: run scripts/fetch-kernel.sh (SHOAL_KERNEL_CACHE)");
      return NULL;
    }
  index = shoal_mod_index_new (dir, &error);
  g_assert_no_error (error);
  return index;
}

static gboolean
contains (GPtrArray *array, const gchar *str)
{
  return g_ptr_array_find_with_equal_func (array, str, g_str_equal, NULL);
}

static guint
position (GPtrArray *array, const gchar *str)
{
  guint idx = G_MAXUINT;

  g_assert_true (g_ptr_array_find_with_equal_func (array, str, g_str_equal, &idx));
  return idx;
}

static void
test_match_real (void)
{
  g_autoptr(ShoalModIndex) index = real_index ();
  struct { const gchar *alias; const gchar *module; } cases[] = {
    { "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00", "e1000" },
    { "pci:v000010ECd00008139sv00001AF4sd00001100bc02sc00i00", "8139cp" },
    { "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "virtio_pci" },
    { "virtio:d00000001v00001AF4", "virtio_net" },
    { "virtio:d00000002v00001AF4", "virtio_blk" },
    { "pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80", "ata_piix" },
    { "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", "ahci" },
    { "scsi:t-0x00", "sd_mod" },
  };

  if (index == NULL)
    return;
  g_assert_cmpuint (shoal_mod_index_get_n_aliases (index), >, 10000);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GPtrArray) mods = shoal_mod_index_match (index, cases[i].alias);

      g_test_message ("%s -> %u modules", cases[i].alias, mods->len);
      g_assert_true (contains (mods, cases[i].module));
    }
  /* e1000 matches exactly one module, not e1000e */
  {
    g_autoptr(GPtrArray) mods = shoal_mod_index_match (index, cases[0].alias);

    g_assert_cmpuint (mods->len, ==, 1);
  }
  /* a made-up device matches nothing */
  {
    g_autoptr(GPtrArray) mods = shoal_mod_index_match (index, "pci:v0000ABCDd00001234sv00000000sd00000000bc02sc00i00");

    g_assert_cmpuint (mods->len, ==, 0);
  }
}

static void
test_resolve_real (void)
{
  g_autoptr(ShoalModIndex) index = real_index ();
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  g_autoptr(GPtrArray) order = NULL;
  g_autoptr(GError) error = NULL;

  if (index == NULL)
    return;
  g_ptr_array_add (names, "virtio_net");
  g_ptr_array_add (names, "virtio_pci");
  g_ptr_array_add (names, "8139cp");
  order = shoal_mod_index_resolve (index, names, &error);
  g_assert_no_error (error);
  /* dependencies first */
  g_assert_cmpuint (position (order, "virtio_ring"), <, position (order, "virtio"));
  g_assert_cmpuint (position (order, "virtio"), <, position (order, "virtio_net"));
  g_assert_cmpuint (position (order, "failover"), <, position (order, "net_failover"));
  g_assert_cmpuint (position (order, "net_failover"), <, position (order, "virtio_net"));
  g_assert_cmpuint (position (order, "mii"), <, position (order, "8139cp"));
  g_assert_cmpuint (position (order, "virtio_pci_modern_dev"), <, position (order, "virtio_pci"));
  g_assert_nonnull (shoal_mod_index_get_path (index, "virtio-net"));
  /* each once */
  for (guint i = 0; i < order->len; i++)
    g_assert_cmpuint (position (order, g_ptr_array_index (order, i)), ==, i);
}

static gchar *
synthetic_dir (void)
{
  g_autoptr(GError) error = NULL;
  gchar *dir = g_dir_make_tmp ("shoal-modindex-XXXXXX", &error);
  g_autofree gchar *alias = g_build_filename (dir, "modules.alias", NULL);
  g_autofree gchar *dep = g_build_filename (dir, "modules.dep", NULL);
  g_autofree gchar *builtin = g_build_filename (dir, "modules.builtin", NULL);

  g_assert_no_error (error);
  g_file_set_contents (alias,
                       "# Aliases extracted from modules themselves.\n"
                       "alias pci:v00001111d*sv*sd*bc*sc*i* top_mod\n"
                       "alias pci:v*d*sv*sd*bc02sc*i* generic_net\n"
                       "alias pci:v00001111d0000000[1-3]sv*sd*bc*sc*i* range-mod\n"
                       "alias broken-line\n", -1, &error);
  g_assert_no_error (error);
  g_file_set_contents (dep,
                       "kernel/top_mod.ko: kernel/mid.ko kernel/leaf.ko\n"
                       "kernel/mid.ko: kernel/leaf.ko\n"
                       "kernel/leaf.ko:\n"
                       "kernel/generic_net.ko.xz:\n"
                       "kernel/range-mod.ko:\n"
                       "kernel/cyc_a.ko: kernel/cyc_b.ko\n"
                       "kernel/cyc_b.ko: kernel/cyc_a.ko\n"
                       "kernel/needs_builtin.ko: kernel/in_kernel.ko\n", -1, &error);
  g_assert_no_error (error);
  g_file_set_contents (builtin, "kernel/in_kernel.ko\n", -1, &error);
  g_assert_no_error (error);
  return dir;
}

static void
remove_synthetic (const gchar *dir)
{
  const gchar *files[] = { "modules.alias", "modules.dep", "modules.builtin" };

  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree gchar *path = g_build_filename (dir, files[i], NULL);

      g_unlink (path);
    }
  g_rmdir (dir);
}

static void
test_synthetic (void)
{
  g_autofree gchar *dir = synthetic_dir ();
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalModIndex) index = shoal_mod_index_new (dir, &error);
  g_autoptr(GPtrArray) mods = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  g_autoptr(GPtrArray) order = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (shoal_mod_index_get_n_aliases (index), ==, 3);
  mods = shoal_mod_index_match (index, "pci:v00001111d00000002sv00000000sd00000000bc02sc00i00");
  g_assert_cmpuint (mods->len, ==, 3);
  g_assert_cmpstr (g_ptr_array_index (mods, 0), ==, "top_mod");
  g_assert_cmpstr (g_ptr_array_index (mods, 2), ==, "range_mod");
  g_clear_pointer (&mods, g_ptr_array_unref);
  mods = shoal_mod_index_match (index, "pci:v00001111d00000009sv00000000sd00000000bc03sc00i00");
  g_assert_cmpuint (mods->len, ==, 1);

  g_ptr_array_add (names, "top_mod");
  g_ptr_array_add (names, "mid");
  g_ptr_array_add (names, "needs_builtin");
  order = shoal_mod_index_resolve (index, names, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (order->len, ==, 4);
  g_assert_cmpstr (g_ptr_array_index (order, 0), ==, "leaf");
  g_assert_cmpstr (g_ptr_array_index (order, 1), ==, "mid");
  g_assert_cmpstr (g_ptr_array_index (order, 2), ==, "top_mod");
  g_assert_cmpstr (g_ptr_array_index (order, 3), ==, "needs_builtin");
  g_assert_cmpstr (shoal_mod_index_get_path (index, "generic-net"), ==, "kernel/generic_net.ko.xz");

  g_ptr_array_set_size (names, 0);
  g_ptr_array_add (names, "cyc_a");
  g_clear_pointer (&order, g_ptr_array_unref);
  order = shoal_mod_index_resolve (index, names, &error);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_assert_null (order);
  g_clear_error (&error);

  g_ptr_array_set_size (names, 0);
  g_ptr_array_add (names, "no_such_mod");
  order = shoal_mod_index_resolve (index, names, &error);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no_such_mod"));
  g_clear_error (&error);

  g_clear_pointer (&index, shoal_mod_index_free);
  remove_synthetic (dir);
  index = shoal_mod_index_new (dir, &error);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_nonnull (strstr (error->message, "modules.alias"));
}

/* A QEMU i440fx machine's PCI functions with the given NIC */
static JsonNode *
vm_inventory (const gchar *nic_vendor, const gchar *nic_device, const gchar *nic_subdev)
{
  g_autofree gchar *json = g_strdup_printf (
    "{\"version\":1,\"firmware\":{\"type\":\"bios\"},\"cpu\":{\"count\":1},"
    "\"memory\":{\"total_bytes\":268435456},\"disks\":[],\"nics\":[],"
    "\"pci\":["
    "{\"slot\":\"0000:00:00.0\",\"vendor\":\"8086\",\"device\":\"1237\",\"class\":\"060000\","
    " \"modalias\":\"pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00\"},"
    "{\"slot\":\"0000:00:01.1\",\"vendor\":\"8086\",\"device\":\"7010\",\"class\":\"010180\","
    " \"modalias\":\"pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80\"},"
    "{\"slot\":\"0000:00:02.0\",\"vendor\":\"1234\",\"device\":\"1111\",\"class\":\"030000\","
    " \"modalias\":\"pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00\"},"
    "{\"slot\":\"0000:00:03.0\",\"vendor\":\"%s\",\"device\":\"%s\",\"subsystem_vendor\":\"1af4\","
    " \"subsystem_device\":\"%s\",\"class\":\"020000\"}"
    "]}", nic_vendor, nic_device, nic_subdev);
  g_autoptr(GError) error = NULL;
  JsonNode *node = json_from_string (json, &error);

  g_assert_no_error (error);
  return node;
}

static ShoalDriversSelection *
select_for (ShoalModIndex *index, JsonNode *inv, const ShoalDriversOptions *options)
{
  g_autoptr(GError) error = NULL;
  ShoalDriversSelection *sel = shoal_drivers_select (index, inv, options, &error);

  g_assert_no_error (error);
  for (guint i = 0; i < sel->modules->len; i++)
    g_test_message ("module %s", (const gchar *) g_ptr_array_index (sel->modules, i));
  return sel;
}

static void
test_select_three_nics (void)
{
  g_autoptr(ShoalModIndex) index = real_index ();
  g_autoptr(JsonNode) e1000 = vm_inventory ("8086", "100e", "1100");
  g_autoptr(JsonNode) virtio = vm_inventory ("1af4", "1000", "0001");
  g_autoptr(JsonNode) rtl = vm_inventory ("10ec", "8139", "1100");
  ShoalDriversOptions options = { 0 };
  g_autoptr(ShoalDriversSelection) a = NULL;
  g_autoptr(ShoalDriversSelection) b = NULL;
  g_autoptr(ShoalDriversSelection) c = NULL;

  if (index == NULL)
    return;
  a = select_for (index, e1000, &options);
  b = select_for (index, virtio, &options);
  c = select_for (index, rtl, &options);
  g_assert_true (contains (a->modules, "e1000"));
  g_assert_false (contains (a->modules, "virtio_net"));
  g_assert_true (contains (b->modules, "virtio_net"));
  g_assert_true (contains (b->modules, "virtio_pci"));
  g_assert_false (contains (b->modules, "e1000"));
  g_assert_true (contains (c->modules, "8139cp"));
  g_assert_true (contains (c->modules, "mii"));
  /* the IDE controller: ata_piix and the SCSI disk driver, for every VM */
  g_assert_true (contains (a->modules, "ata_piix"));
  g_assert_true (contains (a->modules, "sd_mod"));
  g_assert_cmpuint (position (a->modules, "libata"), <, position (a->modules, "ata_piix"));
  /* the VGA adapter is not of a wanted class: no drm */
  g_assert_false (contains (a->modules, "bochs"));
  g_assert_cmpuint (a->unmatched->len, ==, 0);
  g_assert_true (contains (a->matched, "8086:100e e1000"));
}

static void
test_select_options (void)
{
  g_autoptr(ShoalModIndex) index = real_index ();
  g_autoptr(JsonNode) rtl = vm_inventory ("10ec", "8139", "1100");
  g_autoptr(JsonNode) unknown = vm_inventory ("abcd", "1234", "0000");
  const gchar *forbid[] = { "8139too", "ata_*", NULL };
  const gchar *add[] = { "virtio-blk", NULL };
  const gchar *bad_add[] = { "no_such_driver", NULL };
  ShoalDriversOptions options = { add, forbid, NULL };
  g_autoptr(ShoalDriversSelection) sel = NULL;
  g_autoptr(GError) error = NULL;

  if (index == NULL)
    return;
  sel = select_for (index, rtl, &options);
  g_assert_false (contains (sel->modules, "8139too"));
  g_assert_false (contains (sel->modules, "ata_generic"));
  g_assert_true (contains (sel->modules, "8139cp"));
  g_assert_true (contains (sel->modules, "virtio_blk"));
  g_assert_true (contains (sel->forbidden, "8139too (10ec:8139)"));
  g_clear_pointer (&sel, shoal_drivers_selection_free);

  options = (ShoalDriversOptions) { NULL, NULL, NULL };
  sel = select_for (index, unknown, &options);
  g_assert_cmpuint (sel->unmatched->len, ==, 1);
  g_assert_true (g_str_has_prefix (g_ptr_array_index (sel->unmatched, 0), "abcd:1234"));
  g_clear_pointer (&sel, shoal_drivers_selection_free);

  options = (ShoalDriversOptions) { bad_add, NULL, NULL };
  sel = shoal_drivers_select (index, rtl, &options, &error);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no_such_driver"));
  g_assert_null (sel);
}

static void
write_index_file (const gchar *dir, const gchar *name, const gchar *text, gssize len)
{
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, text, len, &error);
  g_assert_no_error (error);
}

static void
remove_dir (const gchar *dir)
{
  g_autofree gchar *rm = g_strdup_printf ("rm -rf %s", dir);

  g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
}

/* modules.softdep: "pre:" modules, with their own dependencies, before the
 * module, "post:" ones after it; names that are aliases; names nothing
 * stands for skipped; names before "pre:" ignored, as kmod does */
static void
test_softdep (void)
{
  g_autofree gchar *dir = g_dir_make_tmp ("shoal-softdep-XXXXXX", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalModIndex) index = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  g_autoptr(GPtrArray) order = NULL;
  const gchar *want[] = { "mdio", "phy_lib", "phy_drv", "nic", "crc_generic", "crc_fast", "helper", "nic_extra" };

  write_index_file (dir, "modules.alias", "alias crypto-crc crc_generic\nalias crypto-crc crc_fast\n", -1);
  write_index_file (dir, "modules.dep",
                    "kernel/nic.ko: kernel/mdio.ko\n"
                    "kernel/mdio.ko:\n"
                    "kernel/phy-drv.ko: kernel/phy_lib.ko\n"
                    "kernel/phy_lib.ko:\n"
                    "kernel/crc_generic.ko:\n"
                    "kernel/crc_fast.ko:\n"
                    "kernel/helper.ko:\n"
                    "kernel/nic_extra.ko: kernel/nic.ko\n"
                    "kernel/unused.ko:\n", -1);
  write_index_file (dir, "modules.softdep",
                    "# Soft dependencies extracted from modules themselves.\n"
                    "softdep nic pre: phy-drv no_such_module platform:none\n"
                    "softdep nic post: crypto-crc helper nic_extra\n"
                    "softdep nic_extra pre: nic\n"
                    "softdep helper unused\n", -1);
  index = shoal_mod_index_new (dir, &error);
  g_assert_no_error (error);
  g_ptr_array_add (names, "nic");
  order = shoal_mod_index_resolve (index, names, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (order->len, ==, G_N_ELEMENTS (want));
  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    g_assert_cmpstr (g_ptr_array_index (order, i), ==, want[i]);
  g_clear_pointer (&order, g_ptr_array_unref);
  /* modules.dep only */
  order = shoal_mod_index_resolve_deps (index, names, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (order->len, ==, 2);
  g_assert_cmpstr (g_ptr_array_index (order, 1), ==, "nic");
  g_clear_pointer (&index, shoal_mod_index_free);
  remove_dir (dir);
}

/* The selection for the inventory @json with the real kernel and no
 * options; NULL (the test skipped) without the kernel */
static ShoalDriversSelection *
select_real (const gchar *json)
{
  g_autoptr(ShoalModIndex) index = real_index ();
  g_autoptr(JsonNode) inv = NULL;
  ShoalDriversOptions options = { 0 };

  if (index == NULL)
    return NULL;
  inv = json_from_string (json, NULL);
  g_assert_nonnull (inv);
  return select_for (index, inv, &options);
}

/* Realtek RTL8111/8168: "softdep r8169 pre: realtek", the PHY driver
 * without which r8169 does not probe */
static void
test_softdep_real (void)
{
  g_autoptr(ShoalDriversSelection) sel =
    select_real ("{\"pci\":[{\"slot\":\"0000:02:00.0\",\"vendor\":\"10ec\",\"device\":\"8168\","
                 "\"class\":\"020000\",\"modalias\":\"pci:v000010ECd00008168sv00001043sd00008677bc02sc00i00\"}]}");

  if (sel == NULL)
    return;
  g_assert_true (contains (sel->modules, "r8169"));
  g_assert_true (contains (sel->modules, "realtek"));
  g_assert_cmpuint (position (sel->modules, "libphy"), <, position (sel->modules, "realtek"));
  g_assert_cmpuint (position (sel->modules, "realtek"), <, position (sel->modules, "r8169"));
}

/* A kernel with virtio_pci, virtio_net, ahci and sd_mod built in: their
 * aliases are in modules.builtin.modinfo, not modules.alias; a match
 * counts, and adds no module */
static void
test_builtin_modinfo (void)
{
  g_autofree gchar *dir = g_dir_make_tmp ("shoal-builtin-XXXXXX", NULL);
  static const char modinfo[] = "virtio_pci.alias=pci:v00001AF4d*sv*sd*bc*sc*i*\0virtio_pci.license=GPL\0"
                                "virtio-net.alias=virtio:d00000001v*\0ahci.alias=pci:v*d*sv*sd*bc01sc06i01*\0"
                                "sd_mod.alias=scsi:t-0x00*\0broken\0.alias=x\0sd_mod.alias=\0";
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalModIndex) index = NULL;
  g_autoptr(JsonNode) inv = json_from_string ("{\"pci\":["
    "{\"slot\":\"0000:00:03.0\",\"vendor\":\"1af4\",\"device\":\"1041\",\"class\":\"020000\","
    "\"modalias\":\"pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00\"},"
    "{\"slot\":\"0000:00:1f.2\",\"vendor\":\"8086\",\"device\":\"2922\",\"class\":\"010601\","
    "\"modalias\":\"pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01\"},"
    "{\"slot\":\"0000:00:04.0\",\"vendor\":\"8086\",\"device\":\"1533\",\"class\":\"020000\","
    "\"modalias\":\"pci:v00008086d00001533sv00008086sd00000001bc02sc00i00\"}]}", NULL);
  ShoalDriversOptions options = { 0 };
  g_autoptr(ShoalDriversSelection) sel = NULL;

  write_index_file (dir, "modules.alias", "alias pci:v00008086d00001533sv*sd*bc*sc*i* igb\n", -1);
  write_index_file (dir, "modules.dep", "kernel/drivers/net/ethernet/intel/igb/igb.ko:\n", -1);
  write_index_file (dir, "modules.builtin", "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/net/virtio_net.ko\n"
                    "kernel/drivers/ata/ahci.ko\nkernel/drivers/scsi/sd_mod.ko\n", -1);
  write_index_file (dir, "modules.builtin.modinfo", modinfo, sizeof modinfo - 1);
  index = shoal_mod_index_new (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (shoal_mod_index_get_n_aliases (index), ==, 5);
  sel = select_for (index, inv, &options);
  g_assert_cmpuint (sel->unmatched->len, ==, 0);
  g_assert_true (contains (sel->matched, "1af4:1041 virtio_pci (built-in)"));
  g_assert_true (contains (sel->matched, "1af4:1041 virtio_net (built-in)"));
  g_assert_true (contains (sel->matched, "8086:2922 ahci (built-in)"));
  g_assert_true (contains (sel->matched, "8086:2922 sd_mod (built-in)"));
  g_assert_cmpuint (sel->picked->len, ==, 1);
  g_assert_cmpuint (sel->modules->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (sel->modules, 0), ==, "igb");
  g_clear_pointer (&index, shoal_mod_index_free);
  remove_dir (dir);
}

/* Devices on buses other than PCI and virtio, matched by modalias: a
 * Hyper-V VM's NIC and disk on vmbus, a USB NIC with a vendor-specific
 * interface (picked as its driver is a network one), a USB disk, and
 * devices of no wanted class; a SCSI device nothing drives is unmatched */
static void
test_select_other_buses (void)
{
  g_autoptr(ShoalDriversSelection) sel = select_real ("{\"pci\":[],\"devices\":["
    "{\"bus\":\"vmbus\",\"name\":\"f8615163-0000-1000-2000-000d3a6e3c0e\","
    "\"modalias\":\"vmbus:635161f83edfc546913ff2d2f965ed0e\"},"
    "{\"bus\":\"vmbus\",\"modalias\":\"vmbus:d96361baa104294db60572e2ffb1dc7f\"},"
    "{\"bus\":\"vmbus\",\"modalias\":\"vmbus:e34bd134e4dec8419ae76b174977c192\"},"
    "{\"bus\":\"usb\",\"name\":\"2-1:1.0\",\"modalias\":\"usb:v0BDAp8153d3000dc00dsc00dp00icFFisc00ip00in00\"},"
    "{\"bus\":\"usb\",\"name\":\"2-2:1.0\",\"modalias\":\"usb:v0781p5581d0100dc00dsc00dp00ic08isc06ip50in00\"},"
    "{\"bus\":\"usb\",\"name\":\"1-1:1.0\",\"modalias\":\"usb:v046DpC077d7200dc00dsc00dp00ic03isc01ip02in00\"},"
    "{\"bus\":\"acpi\",\"name\":\"PNP0C0A:00\",\"modalias\":\"acpi:PNP0C0A:\"},"
    "{\"bus\":\"scsi\",\"name\":\"0:0:0:0\",\"modalias\":\"scsi:t-0x1f\"}]}");

  if (sel == NULL)
    return;
  g_assert_true (contains (sel->picked, "hv_netvsc"));
  g_assert_true (contains (sel->picked, "hv_storvsc"));
  g_assert_true (contains (sel->picked, "r8152"));
  g_assert_true (contains (sel->picked, "usb_storage"));
  g_assert_false (contains (sel->modules, "hv_utils"));
  g_assert_false (contains (sel->modules, "battery"));
  g_assert_false (contains (sel->modules, "usbhid"));
  g_assert_true (contains (sel->matched, "vmbus:635161f83edfc546913ff2d2f965ed0e hv_netvsc"));
  g_assert_cmpuint (sel->unmatched->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (sel->unmatched, 0), ==, "scsi:t-0x1f (scsi device 0:0:0:0)");
}

/* forbid patterns: '-' is '_' outside character classes only, as kmod's
 * alias_normalize() has it, so "bnx[0-9]*" forbids bnx2x */
static void
test_forbid_pattern (void)
{
  struct { const gchar *in, *out; } cases[] = {
    { "bnx[0-9]*", "bnx[0-9]*" },
    { "e1000-*", "e1000_*" },
    { "a-[x-z]-b[!-]-c[]-]-d", "a_[x-z]_b[!-]_c[]-]_d" },
    { "open[-x", "open[_x" },
  };
  g_autoptr(ShoalModIndex) index = real_index ();
  g_autoptr(JsonNode) inv = NULL;
  const gchar *forbid[] = { "bnx[0-9]*", NULL };
  ShoalDriversOptions options = { NULL, forbid, NULL };
  g_autoptr(ShoalDriversSelection) sel = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree gchar *norm = shoal_mod_index_normalize_pattern (cases[i].in);

      g_assert_cmpstr (norm, ==, cases[i].out);
    }
  if (index == NULL)
    return;
  /* Broadcom BCM57810 */
  inv = json_from_string ("{\"pci\":[{\"slot\":\"0000:02:00.0\",\"vendor\":\"14e4\",\"device\":\"168e\","
                          "\"class\":\"020000\",\"modalias\":\"pci:v000014E4d0000168Esv0000103Csd00001798bc02sc00i00\"}]}",
                          NULL);
  sel = select_for (index, inv, &options);
  g_assert_false (contains (sel->modules, "bnx2x"));
  g_assert_true (contains (sel->forbidden, "bnx2x (14e4:168e)"));
}

/* An absolute "kernel" path holding several releases is refused, naming
 * them; one holding one is that one */
static void
test_several_releases (void)
{
  g_autofree gchar *root = g_dir_make_tmp ("shoal-tree-XXXXXX", NULL);
  const gchar *releases[] = { "6.12.0-1-amd64", "6.1.0-56-amd64", "5.10.0-30-amd64" };
  g_autofree gchar *one = NULL;
  g_autofree gchar *got = NULL;
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (releases); i++)
    {
      g_autofree gchar *dir = g_build_filename (root, "lib", "modules", releases[i], NULL);

      g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
      write_index_file (dir, "modules.dep", "", 0);
      if (i == 0)
        {
          got = shoal_mod_index_find_release_dir (root, NULL, &error);
          g_assert_no_error (error);
          one = g_build_filename (root, "lib", "modules", releases[0], NULL);
          g_assert_cmpstr (got, ==, one);
          g_clear_pointer (&got, g_free);
        }
    }
  got = shoal_mod_index_find_release_dir (root, NULL, &error);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_assert_null (got);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "(5.10.0-30-amd64, 6.1.0-56-amd64, 6.12.0-1-amd64)"));
  g_assert_nonnull (strstr (error->message, "name one"));
  remove_dir (root);
}

/* "classes" in any case: the kernel's modalias spells them in upper case
 * (bc0C), the inventory in lower case */
static void
test_classes_case (void)
{
  g_autoptr(ShoalModIndex) index = real_index ();
  g_autoptr(JsonNode) inv = NULL;
  const gchar *lower[] = { "0c03", NULL };
  const gchar *upper[] = { "0C03", NULL };
  const gchar *full[] = { "0C0330", NULL };
  const gchar * const *cases[] = { lower, upper, full };

  if (index == NULL)
    return;
  /* Intel xHCI controller */
  inv = json_from_string ("{\"pci\":[{\"slot\":\"0000:00:14.0\",\"vendor\":\"8086\",\"device\":\"a36d\","
                          "\"class\":\"0c0330\",\"modalias\":\"pci:v00008086d0000A36Dsv00001028sd00000869bc0Csc03i30\"}]}",
                          NULL);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      ShoalDriversOptions options = { NULL, NULL, cases[i] };
      g_autoptr(ShoalDriversSelection) sel = select_for (index, inv, &options);

      g_assert_true (contains (sel->picked, "xhci_pci"));
      g_assert_cmpuint (sel->unmatched->len, ==, 0);
    }
}

/* forbid patterns are removed after the adds: an added module a pattern
 * forbids is not picked, and is journaled as forbidden */
static void
test_add_forbidden (void)
{
  g_autoptr(ShoalModIndex) index = real_index ();
  g_autoptr(JsonNode) inv = NULL;
  const gchar *add[] = { "e1000e", "virtio_blk", "no_such_driver", NULL };
  const gchar *forbid[] = { "e1000*", "no_such_*", NULL };
  ShoalDriversOptions options = { add, forbid, NULL };
  g_autoptr(ShoalDriversSelection) sel = NULL;

  if (index == NULL)
    return;
  inv = json_from_string ("{\"pci\":[]}", NULL);
  sel = select_for (index, inv, &options);
  g_assert_false (contains (sel->modules, "e1000e"));
  g_assert_true (contains (sel->modules, "virtio_blk"));
  g_assert_true (contains (sel->forbidden, "e1000e (added by the recipe)"));
  g_assert_true (contains (sel->forbidden, "no_such_driver (added by the recipe)"));
}

static void
test_modalias_from_ids (void)
{
  g_autoptr(JsonNode) node = json_from_string ("{\"vendor\":\"8086\",\"device\":\"100e\","
                                               "\"subsystem_vendor\":\"1af4\",\"subsystem_device\":\"1100\","
                                               "\"class\":\"020000\"}", NULL);
  g_autofree gchar *alias = shoal_drivers_pci_modalias (json_node_get_object (node));

  g_assert_cmpstr (alias, ==, "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/drivers/modalias-from-ids", test_modalias_from_ids);
  g_test_add_func ("/shoal/drivers/synthetic-index", test_synthetic);
  g_test_add_func ("/shoal/drivers/match-real-kernel", test_match_real);
  g_test_add_func ("/shoal/drivers/resolve-real-kernel", test_resolve_real);
  g_test_add_func ("/shoal/drivers/select-three-nics", test_select_three_nics);
  g_test_add_func ("/shoal/drivers/select-options", test_select_options);
  g_test_add_func ("/shoal/drivers/softdep", test_softdep);
  g_test_add_func ("/shoal/drivers/softdep-real-kernel", test_softdep_real);
  g_test_add_func ("/shoal/drivers/builtin-modinfo", test_builtin_modinfo);
  g_test_add_func ("/shoal/drivers/select-other-buses", test_select_other_buses);
  g_test_add_func ("/shoal/drivers/forbid-pattern", test_forbid_pattern);
  g_test_add_func ("/shoal/drivers/several-releases", test_several_releases);
  g_test_add_func ("/shoal/drivers/classes-case", test_classes_case);
  g_test_add_func ("/shoal/drivers/add-forbidden", test_add_forbidden);
  return g_test_run ();
}
