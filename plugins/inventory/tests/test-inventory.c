/* test-inventory.c: inventory validation (good and bad) and the step
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <shoal.h>

#include "shoal-inventory-step.h"

/* The step is a dynamic type: register it through a type module, as libpeas does */
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

static const gchar *good_json =
  "{\"version\":1,\"agent_version\":\"0.1.0\",\"kernel\":\"6.1.0-56-amd64\","
  "\"firmware\":{\"type\":\"bios\"},"
  "\"dmi\":{\"sys_vendor\":\"QEMU\",\"product_name\":\"Standard PC (i440FX + PIIX, 1996)\","
  "  \"product_uuid\":\"6a1c7d39-0d0e-4f43-9c3b-1e0a6a5e0001\"},"
  "\"cpu\":{\"count\":1,\"model\":\"QEMU Virtual CPU version 2.5+\",\"vendor\":\"AuthenticAMD\"},"
  "\"memory\":{\"total_bytes\":251658240},"
  "\"pci\":[{\"slot\":\"0000:00:03.0\",\"vendor\":\"8086\",\"device\":\"100e\",\"subsystem_vendor\":\"1af4\","
  "  \"subsystem_device\":\"1100\",\"class\":\"020000\","
  "  \"modalias\":\"pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\",\"driver\":\"e1000\"}],"
  "\"devices\":[],"
  "\"disks\":[{\"name\":\"vda\",\"size_bytes\":8388608,\"removable\":false,\"rotational\":true}],"
  "\"nics\":[{\"name\":\"eth0\",\"mac\":\"52:54:00:12:34:56\",\"driver\":\"e1000\",\"link\":\"up\"}]}";

static JsonNode *
parse (const gchar *text)
{
  g_autoptr(GError) error = NULL;
  JsonNode *node = json_from_string (text, &error);

  g_assert_no_error (error);
  return node;
}

/* @good_json with @from replaced by @to */
static JsonNode *
variant (const gchar *from, const gchar *to)
{
  g_autoptr(GString) s = g_string_new (good_json);

  g_assert_nonnull (strstr (s->str, from));
  g_string_replace (s, from, to, 1);
  return parse (s->str);
}

/* The summary of @node (taken), which must be valid */
static gchar *
valid_summary (JsonNode *node)
{
  g_autoptr(JsonNode) owned = node;
  g_autoptr(GError) error = NULL;
  gchar *summary;

  g_assert_true (shoal_inventory_check (owned, &error));
  g_assert_no_error (error);
  summary = shoal_inventory_summary (owned);
  g_test_message ("%s", summary);
  return summary;
}

static void
test_good (void)
{
  g_autofree gchar *summary = valid_summary (parse (good_json));

  g_assert_nonnull (strstr (summary, "QEMU Standard PC"));
  g_assert_nonnull (strstr (summary, "eth0 52:54:00:12:34:56 e1000"));
  g_assert_nonnull (strstr (summary, "1 NICs"));
  g_assert_nonnull (strstr (summary, "; vda 8"));
}

static void
test_bad (void)
{
  struct { const gchar *from, *to, *path; } cases[] = {
    { "\"mac\":\"52:54:00:12:34:56\"", "\"mac\":\"52-54-00-12-34-56\"", "nics[0].mac" },
    { "\"firmware\":{\"type\":\"bios\"}", "\"firmware\":{\"type\":\"coreboot\"}", "firmware.type" },
    { "\"count\":1,", "\"count\":0,", "cpu.count" },
    { "\"vendor\":\"8086\"", "\"vendor\":\"0x8086\"", "pci[0].vendor" },
    { "\"size_bytes\":8388608", "\"size_bytes\":\"8 MiB\"", "disks[0].size_bytes" },
    { "\"version\":1,", "\"version\":1,\"extra\":true,", "extra" },
    { "\"memory\":{\"total_bytes\":251658240},", "", "memory" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(JsonNode) node = variant (cases[i].from, cases[i].to);
      g_autoptr(GError) error = NULL;

      g_assert_false (shoal_inventory_check (node, &error));
      g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, cases[i].path));
    }
  /* not an object at all */
  {
    g_autoptr(JsonNode) node = parse ("[1,2,3]");
    g_autoptr(GError) error = NULL;

    g_assert_false (shoal_inventory_check (node, &error));
    g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  }
}

/* A NIC without a link-layer address (CAN, raw-IP WWAN) has no "mac" */
static void
test_nic_without_mac (void)
{
  g_autofree gchar *summary = valid_summary (variant ("\"nics\":[",
                                                     "\"nics\":[{\"name\":\"can0\",\"link\":\"down\"},"));

  g_assert_nonnull (strstr (summary, "; can0 no MAC no driver"));
  g_assert_nonnull (strstr (summary, ", eth0 52:54:00:12:34:56 e1000"));
}

/* A valid report with none of the optional members (no "dmi", no CPU
 * model, no PCI device, disk or NIC details) is summarized without a
 * CRITICAL (fatal in tests) */
static void
test_minimal (void)
{
  g_autofree gchar *summary = valid_summary (parse ("{\"version\":1,\"firmware\":{\"type\":\"uefi\"},"
                                                    "\"cpu\":{\"count\":4},\"memory\":{\"total_bytes\":4294967296},"
                                                    "\"pci\":[],\"disks\":[{\"name\":\"nvme0n1\",\"size_bytes\":0}],"
                                                    "\"nics\":[{\"name\":\"wwan0\"}]}"));

  g_assert_true (g_str_has_prefix (summary, "? ?, uefi, 4 CPU (?), "));
  g_assert_nonnull (strstr (summary, ", 0 PCI devices, 1 disks, 1 NICs; nvme0n1 0 bytes"));
  g_assert_nonnull (strstr (summary, "; wwan0 no MAC no driver (?, link unknown)"));
}

/* The agent loader's own report of this machine validates */
static void
test_loader_output (void)
{
  const gchar *loader = g_getenv ("SHOAL_LOADER");
  const gchar *argv[] = { loader, "--print-inventory", NULL };
  g_autofree gchar *out = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;
  gint status = 0;

  if (loader == NULL || *loader == '\0' || !g_file_test (loader, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("the static agent loader was not built (target_programs)");
      return;
    }
  g_spawn_sync (NULL, (gchar **) argv, NULL, 0, NULL, NULL, &out, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  node = parse (out);
  g_assert_true (shoal_inventory_check (node, &error));
  g_assert_no_error (error);
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

typedef struct {
  ShoalDevice *device;
  JsonNode    *inventory;
} PostData;

static gboolean
post_cb (gpointer user_data)
{
  PostData *post = user_data;

  shoal_device_post_event (post->device, "inventory", post->inventory);
  return G_SOURCE_REMOVE;
}

/* Runs the step; the loader's report arrives once the step waits for it */
static gboolean
run_step (ShoalDevice *device, JsonNode *inventory, GError **error)
{
  PostData post = { device, inventory };
  g_autoptr(ShoalStep) step = g_object_new (SHOAL_TYPE_INVENTORY_STEP, NULL);
  g_autoptr(GPtrArray) devices = g_ptr_array_new ();
  g_autoptr(ShoalStepContext) ctx = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  RunData data = { loop, FALSE, NULL };

  g_ptr_array_add (devices, device);
  ctx = shoal_step_context_new (NULL, NULL, "inventory", NULL, devices, NULL);
  g_assert_cmpint (shoal_step_get_phase (step), ==, SHOAL_STEP_PHASE_INVENTORY);
  shoal_step_run_async (step, ctx, NULL, run_done_cb, &data);
  g_idle_add (post_cb, &post);
  g_main_loop_run (loop);
  if (data.error != NULL)
    g_propagate_error (error, data.error);
  return data.ok;
}

static void
test_step (void)
{
  g_autoptr(ShoalDevice) device = shoal_device_new ("dev-good");
  g_autoptr(ShoalDevice) bad = shoal_device_new ("dev-bad");
  g_autoptr(JsonNode) node = parse (good_json);
  g_autoptr(JsonNode) bad_node = variant ("\"link\":\"up\"", "\"link\":\"sideways\"");
  g_autoptr(GError) error = NULL;

  g_assert_true (run_step (device, node, &error));
  g_assert_no_error (error);
  g_assert_nonnull (shoal_device_get_inventory (device));
  g_assert_true (json_node_equal (shoal_device_get_inventory (device), node));

  g_assert_false (run_step (bad, bad_node, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "nics[0].link"));
  g_assert_null (shoal_device_get_inventory (bad));
}

int
main (int argc, char **argv)
{
  GTypeModule *module;

  g_test_init (&argc, &argv, NULL);
  module = g_object_new (TEST_TYPE_MODULE, NULL);
  g_type_module_use (module);
  shoal_inventory_step_register_types (module);
  g_test_add_func ("/shoal/inventory/good", test_good);
  g_test_add_func ("/shoal/inventory/bad", test_bad);
  g_test_add_func ("/shoal/inventory/nic-without-mac", test_nic_without_mac);
  g_test_add_func ("/shoal/inventory/minimal", test_minimal);
  g_test_add_func ("/shoal/inventory/loader-output", test_loader_output);
  g_test_add_func ("/shoal/inventory/step", test_step);
  return g_test_run ();
}
