/* test-recipe.c: recipe parsing, validation errors and device matching
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "shoal-device.h"
#include "shoal-error.h"
#include "shoal-recipe.h"

static ShoalRecipe *
load_test_recipe (const gchar  *name,
                  GError      **error)
{
  g_autofree gchar *path = g_test_build_filename (G_TEST_DIST, "data", "recipes", name, NULL);

  return shoal_recipe_new_from_file (path, error);
}

static ShoalRecipe *
recipe_from_text (const gchar *text)
{
  g_autoptr(GError) error = NULL;
  ShoalRecipe *recipe = shoal_recipe_new_from_data (text, -1, "inline.json", &error);

  g_assert_no_error (error);
  g_assert_nonnull (recipe);
  return recipe;
}

static void
test_minimal_defaults (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalRecipe) recipe = load_test_recipe ("minimal.json", &error);
  JsonObject *options;

  g_assert_no_error (error);
  g_assert_cmpstr (shoal_recipe_get_name (recipe), ==, "minimal");
  g_assert_null (shoal_recipe_get_description (recipe));
  g_assert_true (g_str_has_suffix (shoal_recipe_get_source (recipe), "minimal.json"));
  g_assert_null (shoal_recipe_get_commit (recipe));
  g_assert_cmpint (shoal_recipe_get_priority (recipe), ==, 0);
  g_assert_false (shoal_recipe_get_is_default (recipe));
  g_assert_cmpuint (shoal_recipe_get_n_steps (recipe), ==, 1);
  g_assert_cmpstr (shoal_recipe_get_step_name (recipe, 0), ==, "sim");
  g_assert_cmpstr (shoal_recipe_get_step_id (recipe, 0), ==, "sim");
  options = shoal_recipe_get_step_options (recipe, 0);
  g_assert_nonnull (options);
  g_assert_cmpuint (json_object_get_size (options), ==, 0);
  g_assert_cmpint (shoal_recipe_get_step_max_parallel (recipe, 0), ==, 0);
  g_assert_cmpint (shoal_recipe_get_step_timeout (recipe, 0), ==, 0);
  g_assert_null (shoal_recipe_get_step_name (recipe, 1));
  g_assert_null (shoal_recipe_get_image (recipe));
  g_assert_null (shoal_recipe_get_image_name (recipe));
  g_assert_null (shoal_recipe_get_match (recipe));
  g_assert_null (shoal_recipe_get_drivers (recipe));
  g_assert_null (shoal_recipe_get_boot (recipe));
  g_assert_cmpuint (shoal_recipe_get_group_min (recipe), ==, 1);
  g_assert_cmpuint (shoal_recipe_get_group_max (recipe), ==, 0);
  g_assert_cmpuint (shoal_recipe_get_group_max_wait (recipe), ==, 60);
  g_assert_false (shoal_recipe_get_group_wait_all (recipe));
  g_assert_false (shoal_recipe_get_late_fallback (recipe));
}

static void
test_full (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalRecipe) recipe = load_test_recipe ("full.json", &error);
  JsonObject *options;

  g_assert_no_error (error);
  g_assert_cmpstr (shoal_recipe_get_description (recipe), ==, "Every member of the format");
  g_assert_cmpint (shoal_recipe_get_priority (recipe), ==, -5);
  g_assert_cmpstr (shoal_recipe_get_image_name (recipe), ==, "debian-12");
  g_assert_cmpstr (json_object_get_string_member (shoal_recipe_get_image (recipe), "file"), ==,
                   "/srv/images/debian-12.img");
  g_assert_cmpstr (json_object_get_string_member (shoal_recipe_get_boot (recipe), "cmdline"), ==,
                   "console=ttyS0");
  g_assert_cmpstr (json_object_get_string_member (shoal_recipe_get_drivers (recipe), "kernel"), ==,
                   "6.1.0-13-amd64");
  g_assert_nonnull (shoal_recipe_get_match (recipe));

  g_assert_cmpuint (shoal_recipe_get_n_steps (recipe), ==, 5);
  g_assert_cmpstr (shoal_recipe_get_step_id (recipe, 0), ==, "pxe-boot");
  g_assert_cmpint (shoal_recipe_get_step_timeout (recipe, 1), ==, 120);
  g_assert_cmpstr (shoal_recipe_get_step_name (recipe, 2), ==, "sim");
  g_assert_cmpstr (shoal_recipe_get_step_id (recipe, 2), ==, "first");
  g_assert_cmpint (shoal_recipe_get_step_max_parallel (recipe, 2), ==, 4);
  options = shoal_recipe_get_step_options (recipe, 2);
  g_assert_cmpint (json_object_get_int_member (options, "max-ms"), ==, 2);
  g_assert_cmpfloat (json_object_get_double_member (options, "fail-rate"), ==, 0.5);
  g_assert_cmpstr (shoal_recipe_get_step_id (recipe, 3), ==, "second");
  g_assert_cmpuint (json_object_get_size (shoal_recipe_get_step_options (recipe, 3)), ==, 0);
  g_assert_cmpint (shoal_recipe_get_step_max_parallel (recipe, 4), ==, 1);
  g_assert_cmpint (shoal_recipe_get_step_timeout (recipe, 4), ==, 3600);

  g_assert_cmpuint (shoal_recipe_get_group_min (recipe), ==, 3);
  g_assert_cmpuint (shoal_recipe_get_group_max (recipe), ==, 3);
  g_assert_cmpuint (shoal_recipe_get_group_max_wait (recipe), ==, 0);
  g_assert_true (shoal_recipe_get_group_wait_all (recipe));
  g_assert_true (shoal_recipe_get_late_fallback (recipe));

  shoal_recipe_set_commit (recipe, "0123456789abcdef0123456789abcdef01234567");
  g_assert_cmpstr (shoal_recipe_get_commit (recipe), ==, "0123456789abcdef0123456789abcdef01234567");
}

static void
test_examples (void)
{
  const gchar *names[] = { "sim-demo.json", "fleet-debian.json", "gpu-workstation.json" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree gchar *path = g_test_build_filename (G_TEST_DIST, "..", "data", "recipes", names[i], NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(ShoalRecipe) recipe = shoal_recipe_new_from_file (path, &error);

      g_assert_no_error (error);
      g_assert_nonnull (recipe);
    }
}

static void
test_sim_demo (void)
{
  g_autofree gchar *path = g_test_build_filename (G_TEST_DIST, "..", "data", "recipes", "sim-demo.json", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalRecipe) recipe = shoal_recipe_new_from_file (path, &error);
  const gchar *ids[] = { "boot", "inventory", "drivers", "agent", "multicast" };

  g_assert_no_error (error);
  g_assert_true (shoal_recipe_get_is_default (recipe));
  g_assert_cmpuint (shoal_recipe_get_n_steps (recipe), ==, G_N_ELEMENTS (ids));
  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      g_assert_cmpstr (shoal_recipe_get_step_id (recipe, i), ==, ids[i]);
      g_assert_cmpstr (shoal_recipe_get_step_name (recipe, i), ==, i < 4 ? "sim" : "sim-group");
      g_assert_true (json_object_has_member (shoal_recipe_get_step_options (recipe, i), "max-ms"));
    }
}

static void
test_errors (void)
{
  struct {
    const gchar *file;
    const gchar *message;  /* after "<path>: " */
    gboolean     prefix;   /* the message only starts so (json-glib's own words follow) */
  } cases[] = {
    { "bad-option-type.json", "$.steps[2].max-parallel: expected integer, got string" },
    { "bad-duplicate-id.json",
      "$.steps[2].id: step id “boot” is already used by $.steps[0]; give each step a unique “id”" },
    { "bad-group.json", "$.group.max-devices: must be 0 (no limit) or at least min-devices (10), got 4" },
    { "bad-json.json", "invalid JSON at 3:", TRUE },
    { "bad-unknown-member.json",
      "$.groups: unknown property (allowed: $schema, name, description, priority, default, image, boot, steps, group, match, drivers)" },
    { "bad-condition.json", "$.match.inventory[0].value: operator “>=” needs a number" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree gchar *path = g_test_build_filename (G_TEST_DIST, "data", "recipes", cases[i].file, NULL);
      g_autofree gchar *expected = g_strdup_printf ("%s: %s", path, cases[i].message);
      g_autoptr(GError) error = NULL;
      g_autoptr(ShoalRecipe) recipe = shoal_recipe_new_from_file (path, &error);

      g_assert_null (recipe);
      g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
      if (cases[i].prefix)
        g_assert_true (g_str_has_prefix (error->message, expected));
      else
        g_assert_cmpstr (error->message, ==, expected);
    }
}

static void
check_invalid (const gchar *text,
               const gchar *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalRecipe) recipe = shoal_recipe_new_from_data (text, -1, "r.json", &error);

  g_assert_null (recipe);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
  g_assert_cmpstr (error->message, ==, expected);
}

static void
test_errors_inline (void)
{
  check_invalid ("", "r.json: the document is empty");
  check_invalid ("[]", "r.json: $: expected object, got array");
  check_invalid ("{\"steps\":[\"sim\"]}", "r.json: $: missing required property “name”");
  check_invalid ("{\"name\":\"a b\",\"steps\":[\"sim\"]}",
                 "r.json: $.name: \"a b\" does not match the pattern ^[A-Za-z0-9][A-Za-z0-9._-]*$");
  check_invalid ("{\"name\":\"a\",\"steps\":[]}", "r.json: $.steps: must have at least 1 items, got 0");
  check_invalid ("{\"name\":\"a\",\"steps\":[\"sim\",\"sim\"]}",
                 "r.json: $.steps[1]: step id “sim” is already used by $.steps[0]; give each step a unique “id”");
  check_invalid ("{\"name\":\"a\",\"steps\":[{\"step\":\"sim\",\"opts\":{}}]}",
                 "r.json: $.steps[0].opts: unknown property (allowed: step, id, options, max-parallel, timeout)");
  check_invalid ("{\"name\":\"a\",\"steps\":[{\"id\":\"x\"}]}",
                 "r.json: $.steps[0]: missing required property “step”");
  check_invalid ("{\"name\":\"a\",\"steps\":[{\"step\":\"sim\",\"options\":[]}]}",
                 "r.json: $.steps[0].options: expected object, got array");
  check_invalid ("{\"name\":\"a\",\"steps\":[{\"step\":\"sim\",\"timeout\":-1}]}",
                 "r.json: $.steps[0].timeout: must be at least 0, got -1");
  check_invalid ("{\"name\":\"a\",\"steps\":[\"sim\"],\"group\":{\"min-devices\":0}}",
                 "r.json: $.group.min-devices: must be at least 1, got 0");
  check_invalid ("{\"name\":\"a\",\"steps\":[\"sim\"],\"group\":{\"late-fallback\":\"multicast\"}}",
                 "r.json: $.group.late-fallback: must be one of \"unicast\", \"next-group\"; got \"multicast\"");
  check_invalid ("{\"name\":\"a\",\"steps\":[\"sim\"],\"image\":{\"id\":\"abc\"}}",
                 "r.json: $.image: missing required property “name”");
  check_invalid ("{\"name\":\"a\",\"steps\":[\"sim\"],\"match\":{\"macs\":[\"52:54:00:*\",\"zz\"]}}",
                 "r.json: $.match.macs[1]: \"zz\" does not match the pattern ^[0-9A-Fa-f:*?!\\[\\]-]+$");
  check_invalid ("{\"name\":\"a\",\"steps\":[\"sim\"],\"match\":{\"inventory\":[{\"path\":\"$.a\",\"op\":\"~\",\"value\":1}]}}",
                 "r.json: $.match.inventory[0].op: must be one of \"==\", \"!=\", \">=\", \"<=\", \">\", \"<\", \"contains\", \"matches\"; got \"~\"");
  check_invalid ("{\"name\":\"a\",\"steps\":[\"sim\"],\"match\":{\"inventory\":[{\"path\":\"$.a\",\"op\":\"matches\",\"value\":1}]}}",
                 "r.json: $.match.inventory[0].value: operator “matches” needs a glob string");
  check_invalid ("{\"name\":\"a\",\"steps\":[\"sim\"],\"drivers\":{\"add\":[\"e1000\",\"e1000\"]}}",
                 "r.json: $.drivers.add: items [0] and [1] are equal; items must be unique");
  /* json-glib reads 1e400 as infinity: refused wherever it is, even where
   * the schema says nothing of the value (a step's options) */
  check_invalid ("{\"name\":\"a\",\"steps\":[{\"step\":\"sim\",\"options\":{\"x\":[1,-1e400]}}]}",
                 "r.json: $.steps[0].options.x[1]: number out of range");
  check_invalid ("{\"name\":\"a\",\"steps\":[\"sim\"],\"priority\":1e400}",
                 "r.json: $.priority: number out of range");
}

static void
test_hostile_input (void)
{
  g_autoptr(GString) deep = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalRecipe) recipe = NULL;

  for (guint i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');
  recipe = shoal_recipe_new_from_data (deep->str, (gssize) deep->len, "deep.json", &error);
  g_assert_null (recipe);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
  g_assert_cmpstr (error->message, ==, "deep.json: JSON nested more than 64 levels deep");
  g_clear_error (&error);

  /* brackets inside strings do not count */
  g_string_assign (deep, "{\"name\":\"a\",\"description\":\"");
  for (guint i = 0; i < 1000; i++)
    g_string_append (deep, "[{\\\"");
  g_string_append (deep, "\",\"steps\":[\"sim\"]}");
  recipe = shoal_recipe_new_from_data (deep->str, (gssize) deep->len, "strings.json", &error);
  g_assert_no_error (error);
  g_assert_nonnull (recipe);
}

static void
test_to_data_roundtrip (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalRecipe) recipe = load_test_recipe ("full.json", &error);
  g_autofree gchar *text = NULL;
  g_autoptr(ShoalRecipe) again = NULL;
  g_autofree gchar *text2 = NULL;

  g_assert_no_error (error);
  text = shoal_recipe_to_data (recipe);
  again = shoal_recipe_new_from_data (text, -1, "again.json", &error);
  g_assert_no_error (error);
  g_assert_true (json_node_equal (shoal_recipe_get_json (recipe), shoal_recipe_get_json (again)));
  text2 = shoal_recipe_to_data (again);
  g_assert_cmpstr (text, ==, text2);
}

/* The digest is the SHA-256 of the canonical JSON (members sorted by
 * name at every level, no whitespace): the same document laid out and
 * ordered otherwise has it, a changed one does not */
static void
test_digest (void)
{
  const gchar *canonical = "{\"group\":{\"max-wait\":5,\"min-devices\":1},\"name\":\"d\","
                           "\"steps\":[{\"options\":{\"max-ms\":2,\"min-ms\":1},\"step\":\"sim\"}]}";
  const gchar *reordered = "{\n  \"steps\": [ {\"step\": \"sim\", \"options\": {\"min-ms\": 1, \"max-ms\": 2}} ],\n"
                           "  \"name\": \"d\", \"group\": {\"min-devices\": 1, \"max-wait\": 5}\n}";
  const gchar *changed = "{\"group\":{\"max-wait\":5,\"min-devices\":1},\"name\":\"d\","
                         "\"steps\":[{\"options\":{\"max-ms\":3,\"min-ms\":1},\"step\":\"sim\"}]}";
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalRecipe) a = shoal_recipe_new_from_data (canonical, -1, NULL, &error);
  g_autoptr(ShoalRecipe) b = shoal_recipe_new_from_data (reordered, -1, NULL, &error);
  g_autoptr(ShoalRecipe) c = shoal_recipe_new_from_data (changed, -1, NULL, &error);
  g_autofree gchar *expected = g_compute_checksum_for_string (G_CHECKSUM_SHA256, canonical, -1);

  g_assert_no_error (error);
  g_assert_cmpstr (shoal_recipe_get_digest (a), ==, expected);
  g_assert_cmpstr (shoal_recipe_get_digest (b), ==, expected);
  g_assert_cmpstr (shoal_recipe_get_digest (c), !=, expected);
  /* the commit is not part of it */
  shoal_recipe_set_commit (b, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  g_assert_cmpstr (shoal_recipe_get_digest (b), ==, expected);
}

static void
test_from_json_copies (void)
{
  g_autoptr(JsonNode) root = json_from_string ("{\"name\":\"a\",\"steps\":[\"sim\"]}", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalRecipe) recipe = shoal_recipe_new_from_json (root, NULL, &error);

  g_assert_no_error (error);
  /* changing the caller's document does not change the recipe */
  json_object_set_string_member (json_node_get_object (root), "name", "b");
  g_assert_cmpstr (shoal_recipe_get_name (recipe), ==, "a");
  g_assert_cmpstr (shoal_recipe_get_source (recipe), ==, "recipe");
}

/* ---------------------------------------------------------------- */
/* Matching                                                         */
/* ---------------------------------------------------------------- */

static ShoalDevice *
make_device (const gchar *mac,
             const gchar *inventory)
{
  ShoalDevice *device = shoal_device_new (mac);
  const gchar *macs[] = { mac, NULL };

  shoal_device_set_macs (device, macs);
  if (inventory != NULL)
    {
      g_autoptr(JsonNode) node = json_from_string (inventory, NULL);

      g_assert_nonnull (node);
      shoal_device_set_inventory (device, node);
    }
  return device;
}

static const gchar *inventory_big =
  "{\"memory\":{\"total_bytes\":17179869184},"
  "\"cpu\":{\"model\":\"Intel(R) Xeon(R) Gold 6230\",\"cores\":20,\"flags\":[\"sse4_2\",\"avx512f\"]},"
  "\"pci\":[{\"vendor\":\"8086\",\"device\":\"10d3\"},{\"vendor\":\"10DE\",\"device\":\"1eb8\"}],"
  "\"disks\":[{\"name\":\"sda\",\"size\":\"500107862016\"}]}";

static const gchar *inventory_small =
  "{\"memory\":{\"total_bytes\":4294967296},"
  "\"cpu\":{\"model\":\"AMD EPYC\",\"cores\":4,\"flags\":[\"sse4_2\"]},"
  "\"pci\":[{\"vendor\":\"1af4\",\"device\":\"1000\"}],"
  "\"disks\":[]}";

static gboolean
condition_holds (const gchar *path,
                 const gchar *op,
                 const gchar *value,
                 const gchar *inventory)
{
  g_autofree gchar *text = g_strdup_printf (
    "{\"name\":\"c\",\"steps\":[\"sim\"],\"match\":{\"inventory\":"
    "[{\"path\":\"%s\",\"op\":\"%s\",\"value\":%s}]}}", path, op, value);
  g_autoptr(ShoalRecipe) recipe = recipe_from_text (text);
  g_autoptr(ShoalDevice) device = make_device ("52:54:00:00:00:01", inventory);

  return shoal_recipe_matches (recipe, device);
}

static void
test_match_inventory_ops (void)
{
  /* >= <= > < on numbers (and numeric strings) */
  g_assert_true (condition_holds ("$.memory.total_bytes", ">=", "8589934592", inventory_big));
  g_assert_false (condition_holds ("$.memory.total_bytes", ">=", "8589934592", inventory_small));
  g_assert_true (condition_holds ("$.memory.total_bytes", "<", "8589934592", inventory_small));
  g_assert_true (condition_holds ("$.cpu.cores", ">", "19", inventory_big));
  g_assert_false (condition_holds ("$.cpu.cores", ">", "20", inventory_big));
  g_assert_true (condition_holds ("$.cpu.cores", "<=", "20", inventory_big));
  g_assert_true (condition_holds ("$.disks[0].size", ">", "1e11", inventory_big));
  /* == and != */
  g_assert_true (condition_holds ("$.cpu.cores", "==", "20", inventory_big));
  g_assert_true (condition_holds ("$.cpu.cores", "==", "20.0", inventory_big));
  g_assert_true (condition_holds ("$.pci[0].vendor", "==", "\"8086\"", inventory_big));
  g_assert_true (condition_holds ("$.pci[1].vendor", "==", "\"10de\"", inventory_big));
  g_assert_false (condition_holds ("$.pci[5].vendor", "==", "\"10de\"", inventory_big));
  g_assert_true (condition_holds ("$.pci[*].vendor", "!=", "\"10de\"", inventory_small));
  g_assert_false (condition_holds ("$.pci[*].vendor", "!=", "\"10de\"", inventory_big));
  /* absent facts never hold, not even != */
  g_assert_false (condition_holds ("$.gpu.model", "!=", "\"x\"", inventory_big));
  g_assert_false (condition_holds ("$.disks[*].name", "==", "\"sda\"", inventory_small));
  /* contains: wildcard sets, arrays, substrings */
  g_assert_true (condition_holds ("$.pci[*].vendor", "contains", "\"8086\"", inventory_big));
  g_assert_false (condition_holds ("$.pci[*].vendor", "contains", "\"8086\"", inventory_small));
  g_assert_true (condition_holds ("$.cpu.flags", "contains", "\"avx512f\"", inventory_big));
  g_assert_false (condition_holds ("$.cpu.flags", "contains", "\"avx512f\"", inventory_small));
  g_assert_true (condition_holds ("$.cpu.model", "contains", "\"xeon\"", inventory_big));
  /* matches: globs */
  g_assert_true (condition_holds ("$.cpu.model", "matches", "\"*Xeon*Gold*\"", inventory_big));
  g_assert_false (condition_holds ("$.cpu.model", "matches", "\"*Xeon*\"", inventory_small));
  g_assert_true (condition_holds ("$.pci[*].device", "matches", "\"1e??\"", inventory_big));
  /* a type mismatch does not hold */
  g_assert_false (condition_holds ("$.cpu.model", ">", "1", inventory_big));
  /* a device without inventory matches no condition */
  g_assert_false (condition_holds ("$.cpu.cores", ">", "0", NULL));
}

static void
test_match_macs (void)
{
  g_autoptr(ShoalRecipe) recipe = recipe_from_text (
    "{\"name\":\"m\",\"steps\":[\"sim\"],\"match\":{\"macs\":[\"52:54:00:*\",\"aa:bb:cc:dd:ee:0[0-4]\"]}}");
  g_autoptr(ShoalDevice) qemu = make_device ("52:54:00:12:34:56", NULL);
  g_autoptr(ShoalDevice) upper = make_device ("52:54:00:AB:CD:EF", NULL);
  g_autoptr(ShoalDevice) range_in = make_device ("AA:BB:CC:DD:EE:03", NULL);
  g_autoptr(ShoalDevice) range_out = make_device ("aa:bb:cc:dd:ee:05", NULL);
  g_autoptr(ShoalDevice) other = make_device ("00:25:90:00:00:01", NULL);
  g_autoptr(ShoalDevice) two_nics = shoal_device_new ("two");
  const gchar *macs[] = { "00:25:90:00:00:02", "52:54:00:00:00:02", NULL };

  shoal_device_set_macs (two_nics, macs);
  g_assert_true (shoal_recipe_matches (recipe, qemu));
  g_assert_true (shoal_recipe_matches (recipe, upper));
  g_assert_true (shoal_recipe_matches (recipe, range_in));
  g_assert_false (shoal_recipe_matches (recipe, range_out));
  g_assert_false (shoal_recipe_matches (recipe, other));
  g_assert_true (shoal_recipe_matches (recipe, two_nics));
}

static void
test_match_all_criteria (void)
{
  g_autoptr(ShoalRecipe) recipe = recipe_from_text (
    "{\"name\":\"m\",\"steps\":[\"sim\"],\"match\":{\"macs\":[\"52:54:00:*\"],\"inventory\":["
    "{\"path\":\"$.memory.total_bytes\",\"op\":\">=\",\"value\":8589934592},"
    "{\"path\":\"$.pci[*].vendor\",\"op\":\"contains\",\"value\":\"8086\"}]}}");
  g_autoptr(ShoalRecipe) no_criteria = recipe_from_text ("{\"name\":\"n\",\"steps\":[\"sim\"]}");
  g_autoptr(ShoalRecipe) empty_match = recipe_from_text ("{\"name\":\"e\",\"steps\":[\"sim\"],\"match\":{}}");
  g_autoptr(ShoalDevice) big = make_device ("52:54:00:00:00:01", inventory_big);
  g_autoptr(ShoalDevice) small = make_device ("52:54:00:00:00:02", inventory_small);
  g_autoptr(ShoalDevice) big_other_mac = make_device ("00:25:90:00:00:01", inventory_big);
  g_autoptr(ShoalDevice) no_inventory = make_device ("52:54:00:00:00:03", NULL);

  g_assert_true (shoal_recipe_matches (recipe, big));
  g_assert_false (shoal_recipe_matches (recipe, small));
  g_assert_false (shoal_recipe_matches (recipe, big_other_mac));
  g_assert_false (shoal_recipe_matches (recipe, no_inventory));
  g_assert_false (shoal_recipe_matches (no_criteria, big));
  g_assert_false (shoal_recipe_matches (empty_match, big));
}

static void
shuffle (GPtrArray *array,
         GRand     *rand)
{
  for (guint i = array->len; i > 1; i--)
    {
      guint j = (guint) g_rand_int_range (rand, 0, (gint32) i);
      gpointer tmp = array->pdata[i - 1];

      array->pdata[i - 1] = array->pdata[j];
      array->pdata[j] = tmp;
    }
}

static void
test_select (void)
{
  g_autoptr(GPtrArray) recipes = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(ShoalDevice) big = make_device ("52:54:00:00:00:01", inventory_big);
  g_autoptr(ShoalDevice) small = make_device ("52:54:00:00:00:02", inventory_small);
  g_autoptr(ShoalDevice) stranger = make_device ("00:25:90:00:00:01", NULL);
  g_autoptr(GRand) rand = g_rand_new_with_seed (42);
  g_autoptr(GPtrArray) none = g_ptr_array_new ();

  /* big machines: two recipes with equal priority (name decides) and one lower */
  g_ptr_array_add (recipes, recipe_from_text (
    "{\"name\":\"big-b\",\"priority\":10,\"steps\":[\"sim\"],\"match\":{\"inventory\":["
    "{\"path\":\"$.memory.total_bytes\",\"op\":\">=\",\"value\":8589934592}]}}"));
  g_ptr_array_add (recipes, recipe_from_text (
    "{\"name\":\"big-a\",\"priority\":10,\"steps\":[\"sim\"],\"match\":{\"inventory\":["
    "{\"path\":\"$.memory.total_bytes\",\"op\":\">=\",\"value\":8589934592}]}}"));
  g_ptr_array_add (recipes, recipe_from_text (
    "{\"name\":\"lab\",\"priority\":5,\"steps\":[\"sim\"],\"match\":{\"macs\":[\"52:54:00:*\"]}}"));
  /* two defaults: the higher priority one is the fallback */
  g_ptr_array_add (recipes, recipe_from_text (
    "{\"name\":\"fallback\",\"default\":true,\"priority\":1,\"steps\":[\"sim\"]}"));
  g_ptr_array_add (recipes, recipe_from_text (
    "{\"name\":\"another-fallback\",\"default\":true,\"steps\":[\"sim\"]}"));
  /* a default recipe with higher priority never beats a matching one */
  g_ptr_array_add (recipes, recipe_from_text (
    "{\"name\":\"zz-default\",\"default\":true,\"priority\":100,\"steps\":[\"sim\"],"
    "\"match\":{\"macs\":[\"ff:*\"]}}"));

  for (guint round = 0; round < 20; round++)
    {
      shuffle (recipes, rand);
      g_assert_cmpstr (shoal_recipe_get_name (shoal_recipe_select (recipes, big)), ==, "big-a");
      g_assert_cmpstr (shoal_recipe_get_name (shoal_recipe_select (recipes, small)), ==, "lab");
      g_assert_cmpstr (shoal_recipe_get_name (shoal_recipe_select (recipes, stranger)), ==, "zz-default");
    }
  /* every default recipe matches */
  for (guint i = 0; i < recipes->len; i++)
    {
      ShoalRecipe *recipe = g_ptr_array_index (recipes, i);

      if (shoal_recipe_get_is_default (recipe))
        g_assert_true (shoal_recipe_matches (recipe, stranger));
    }

  /* without defaults a stranger gets nothing */
  for (guint i = recipes->len; i > 0; i--)
    {
      if (shoal_recipe_get_is_default (g_ptr_array_index (recipes, i - 1)))
        g_ptr_array_remove_index (recipes, i - 1);
    }
  g_assert_null (shoal_recipe_select (recipes, stranger));
  g_assert_null (shoal_recipe_select (none, big));
}

static void
test_select_examples (void)
{
  const gchar *names[] = { "sim-demo.json", "fleet-debian.json", "gpu-workstation.json" };
  g_autoptr(GPtrArray) recipes = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(ShoalDevice) gpu = make_device ("52:54:00:aa:00:01",
    "{\"memory\":{\"total_bytes\":34359738368},\"pci\":[{\"vendor\":\"10de\"}]}");
  g_autoptr(ShoalDevice) server = make_device ("52:54:00:01:00:01",
    "{\"memory\":{\"total_bytes\":34359738368},\"pci\":[{\"vendor\":\"8086\"}]}");
  g_autoptr(ShoalDevice) sim = make_device ("02:00:00:00:00:01", NULL);

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree gchar *path = g_test_build_filename (G_TEST_DIST, "..", "data", "recipes", names[i], NULL);
      g_autoptr(GError) error = NULL;

      g_ptr_array_add (recipes, shoal_recipe_new_from_file (path, &error));
      g_assert_no_error (error);
    }
  g_assert_cmpstr (shoal_recipe_get_name (shoal_recipe_select (recipes, gpu)), ==, "gpu-workstation");
  g_assert_cmpstr (shoal_recipe_get_name (shoal_recipe_select (recipes, server)), ==, "fleet-debian");
  g_assert_cmpstr (shoal_recipe_get_name (shoal_recipe_select (recipes, sim)), ==, "sim-demo");
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/shoal/recipe/minimal-defaults", test_minimal_defaults);
  g_test_add_func ("/shoal/recipe/full", test_full);
  g_test_add_func ("/shoal/recipe/examples", test_examples);
  g_test_add_func ("/shoal/recipe/sim-demo", test_sim_demo);
  g_test_add_func ("/shoal/recipe/errors", test_errors);
  g_test_add_func ("/shoal/recipe/errors-inline", test_errors_inline);
  g_test_add_func ("/shoal/recipe/hostile-input", test_hostile_input);
  g_test_add_func ("/shoal/recipe/to-data", test_to_data_roundtrip);
  g_test_add_func ("/shoal/recipe/from-json-copies", test_from_json_copies);
  g_test_add_func ("/shoal/recipe/digest", test_digest);
  g_test_add_func ("/shoal/recipe/match/inventory-ops", test_match_inventory_ops);
  g_test_add_func ("/shoal/recipe/match/macs", test_match_macs);
  g_test_add_func ("/shoal/recipe/match/all-criteria", test_match_all_criteria);
  g_test_add_func ("/shoal/recipe/select", test_select);
  g_test_add_func ("/shoal/recipe/select-examples", test_select_examples);

  return g_test_run ();
}
