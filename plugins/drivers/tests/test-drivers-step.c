/* test-drivers-step.c: the "drivers" step on a device, with the real kernel
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <shoal.h>

#include "shoal-drivers-step.h"

#define TEST_TYPE_MODULE (test_module_get_type ())
G_DECLARE_FINAL_TYPE (TestModule, test_module, TEST, MODULE, GTypeModule)
struct _TestModule { GTypeModule parent_instance; };
G_DEFINE_TYPE (TestModule, test_module, G_TYPE_TYPE_MODULE)

static gboolean test_module_load (GTypeModule *module) { return TRUE; }
static void test_module_unload (GTypeModule *module) { }
static void test_module_init (TestModule *self) { }

static void
test_module_class_init (TestModuleClass *klass)
{
  G_TYPE_MODULE_CLASS (klass)->load = test_module_load;
  G_TYPE_MODULE_CLASS (klass)->unload = test_module_unload;
}

static gchar *
kernel_path (void)
{
  const gchar *cache = g_getenv ("SHOAL_KERNEL_CACHE");
  gchar *path = cache ? g_build_filename (cache, "kernel", "current", NULL) : NULL;

  if (path == NULL || !g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_free (path);
      g_test_skip ("no kernel in the build cache: run scripts/fetch-kernel.sh (SHOAL_KERNEL_CACHE)");
      return NULL;
    }
  return path;
}

static ShoalDevice *
device_with_nic (const gchar *id, const gchar *vendor, const gchar *device_id)
{
  g_autofree gchar *json = g_strdup_printf (
    "{\"version\":1,\"firmware\":{\"type\":\"bios\"},\"cpu\":{\"count\":1},"
    "\"memory\":{\"total_bytes\":268435456},\"disks\":[],\"nics\":[],"
    "\"pci\":[{\"slot\":\"0000:00:03.0\",\"vendor\":\"%s\",\"device\":\"%s\",\"subsystem_vendor\":\"1af4\","
    " \"subsystem_device\":\"1100\",\"class\":\"020000\"}]}", vendor, device_id);
  g_autoptr(JsonNode) node = json_from_string (json, NULL);
  ShoalDevice *device = shoal_device_new (id);

  shoal_device_set_inventory (device, node);
  return device;
}

typedef struct {
  GMainLoop *loop;
  gboolean   ok;
  GError    *error;
} RunData;

static void
run_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  RunData *data = user_data;

  data->ok = shoal_step_run_finish (SHOAL_STEP (source), result, &data->error);
  g_main_loop_quit (data->loop);
}

static gboolean
run_step (ShoalDevice *device, const gchar *options_json, GError **error)
{
  g_autoptr(ShoalStep) step = g_object_new (SHOAL_TYPE_DRIVERS_STEP, NULL);
  g_autoptr(GPtrArray) devices = g_ptr_array_new ();
  g_autoptr(JsonNode) options = json_from_string (options_json, NULL);
  g_autoptr(ShoalStepContext) ctx = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  RunData data = { loop, FALSE, NULL };

  g_ptr_array_add (devices, device);
  g_assert_true (shoal_step_validate_options (step, json_node_get_object (options), NULL));
  ctx = shoal_step_context_new (NULL, NULL, "drivers", json_node_get_object (options), devices, NULL);
  shoal_step_run_async (step, ctx, NULL, run_done_cb, &data);
  g_main_loop_run (loop);
  if (data.error != NULL)
    g_propagate_error (error, data.error);
  return data.ok;
}

static void
test_step (void)
{
  g_autofree gchar *kernel = kernel_path ();
  g_autoptr(ShoalDevice) a = device_with_nic ("vm-e1000", "8086", "100e");
  g_autoptr(ShoalDevice) b = device_with_nic ("vm-rtl", "10ec", "8139");
  g_autoptr(ShoalDevice) c = device_with_nic ("vm-unknown", "abcd", "1234");
  g_autofree gchar *options = NULL;
  g_autofree gchar *fail_options = NULL;
  g_autoptr(GError) error = NULL;

  if (kernel == NULL)
    return;
  options = g_strdup_printf ("{\"kernel\":\"%s\",\"forbid\":[\"8139too\"],\"add\":[\"virtio_blk\"]}", kernel);
  fail_options = g_strdup_printf ("{\"kernel\":\"%s\",\"on-unmatched\":\"fail\"}", kernel);
  g_assert_true (run_step (a, options, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (shoal_device_get_metadata (a, "drivers"), ==, "e1000 virtio_ring virtio virtio_blk");
  g_assert_true (g_str_has_suffix (shoal_device_get_metadata (a, "drivers.kernel"), "-amd64"));
  g_assert_true (run_step (b, options, &error));
  g_assert_cmpstr (shoal_device_get_metadata (b, "drivers"), ==, "mii 8139cp virtio_ring virtio virtio_blk");
  /* unmatched hardware: continue by default, fail when asked */
  g_assert_true (run_step (c, options, &error));
  g_assert_no_error (error);
  g_assert_false (run_step (c, fail_options, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "abcd:1234"));
  g_clear_error (&error);
  /* a kernel that does not exist */
  g_assert_false (run_step (a, "{\"kernel\":\"0.0.0-none\"}", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
}

static void
test_options (void)
{
  g_autoptr(ShoalStep) step = g_object_new (SHOAL_TYPE_DRIVERS_STEP, NULL);
  const gchar *bad[] = { "{\"add\":\"e1000\"}", "{\"forbid\":[1]}", "{\"on-unmatched\":\"maybe\"}",
                         "{\"kernel\":5}", "{\"classes\":[\"02\",\"\"]}", "{\"classes\":[\"2\"]}",
                         "{\"classes\":[\"0x02\"]}", "{\"classes\":[\"0g\"]}", "{\"classes\":[\"0200000\"]}" };
  const gchar *good[] = { "{\"classes\":[\"01\",\"0C03\",\"0c0330\"]}", "{\"classes\":[]}" };

  g_assert_cmpint (shoal_step_get_phase (step), ==, SHOAL_STEP_PHASE_DRIVERS);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(JsonNode) node = json_from_string (bad[i], NULL);
      g_autoptr(GError) error = NULL;

      g_assert_false (shoal_step_validate_options (step, json_node_get_object (node), &error));
      g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
      g_test_message ("%s: %s", bad[i], error->message);
    }
  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(JsonNode) node = json_from_string (good[i], NULL);
      g_autoptr(GError) error = NULL;

      g_assert_true (shoal_step_validate_options (step, json_node_get_object (node), &error));
      g_assert_no_error (error);
    }
}

static void
write_file (const gchar *dir, const gchar *name, const gchar *text)
{
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  g_autofree gchar *parent = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (parent, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

/* lib/modules/@release in a new temporary tree, @tmp (for remove_tree()) */
static gchar *
tmp_release_dir (const gchar *release, gchar **tmp)
{
  g_autoptr(GError) error = NULL;

  *tmp = g_dir_make_tmp ("shoal-drivers-XXXXXX", &error);
  g_assert_no_error (error);
  return g_build_filename (*tmp, "lib/modules", release, NULL);
}

static void
remove_tree (const gchar *tmp)
{
  g_autofree gchar *rm = g_strdup_printf ("rm -rf %s", tmp);

  g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
}

/* A kernel tree whose modules.alias and modules.dep change in place (depmod
 * ran again): the next selection reads them again */
static void
test_tree_refreshed (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *tmp = NULL;
  g_autofree gchar *rel = tmp_release_dir ("9.9.9-test", &tmp);
  g_autofree gchar *options = g_strdup_printf ("{\"kernel\":\"%s\"}", rel);
  g_autoptr(ShoalDevice) device = device_with_nic ("vm-new", "abcd", "1234");

  write_file (rel, "modules.alias", "alias pci:v0000ABCDd00001234sv*sd*bc*sc*i* drv_one\n");
  write_file (rel, "modules.dep", "kernel/drv-one.ko:\n");
  write_file (rel, "kernel/drv-one.ko", "ONE");
  g_assert_true (run_step (device, options, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (shoal_device_get_metadata (device, "drivers"), ==, "drv_one");
  write_file (rel, "modules.alias", "alias pci:v0000ABCDd00001234sv*sd*bc*sc*i* drv_two\n");
  write_file (rel, "modules.dep", "kernel/drv-two.ko:\n");
  write_file (rel, "kernel/drv-two.ko", "TWO");
  g_assert_true (run_step (device, options, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (shoal_device_get_metadata (device, "drivers"), ==, "drv_two");
  remove_tree (tmp);
}

/* A kernel with virtio_pci and virtio_net built in (their aliases in
 * modules.builtin.modinfo): the virtio NIC has its driver, and
 * on-unmatched: fail does not fail */
static void
test_builtin (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *tmp = NULL;
  g_autofree gchar *rel = tmp_release_dir ("9.9.9-builtin", &tmp);
  g_autofree gchar *options = g_strdup_printf ("{\"kernel\":\"%s\",\"on-unmatched\":\"fail\"}", rel);
  g_autofree gchar *modinfo_path = g_build_filename (rel, "modules.builtin.modinfo", NULL);
  static const char modinfo[] = "virtio_pci.alias=pci:v00001AF4d*sv*sd*bc*sc*i*\0virtio_net.alias=virtio:d00000001v*\0";
  g_autoptr(ShoalDevice) device = device_with_nic ("vm-builtin", "1af4", "1041");

  write_file (rel, "modules.alias", "alias pci:v00008086d00001533sv*sd*bc*sc*i* igb\n");
  write_file (rel, "modules.dep", "kernel/drivers/net/ethernet/intel/igb/igb.ko:\n");
  write_file (rel, "modules.builtin", "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/net/virtio_net.ko\n");
  g_assert_true (g_file_set_contents (modinfo_path, modinfo, sizeof modinfo - 1, NULL));
  g_assert_true (run_step (device, options, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (shoal_device_get_metadata (device, "drivers"), ==, "");
  remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  GTypeModule *module;

  g_test_init (&argc, &argv, NULL);
  module = g_object_new (TEST_TYPE_MODULE, NULL);
  g_type_module_use (module);
  shoal_drivers_step_register_types (module);
  g_test_add_func ("/shoal/drivers/step", test_step);
  g_test_add_func ("/shoal/drivers/options", test_options);
  g_test_add_func ("/shoal/drivers/tree-refreshed", test_tree_refreshed);
  g_test_add_func ("/shoal/drivers/builtin", test_builtin);
  return g_test_run ();
}
