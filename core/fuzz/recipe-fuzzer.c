/* recipe-fuzzer.c: libFuzzer harness for recipe parsing and matching
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Feeds arbitrary bytes to shoal_recipe_new_from_data() (JSON parsing,
 * the nesting guard, schema validation against schemas/recipe.schema.json
 * and the recipe checks). A recipe that parses is serialized and parsed
 * again (it must still be valid and equal), its accessors are walked,
 * and it is matched against a device with MACs and an inventory.
 *
 * Build (clang), from the build directory of a -Dfuzzing=true build, or
 * by hand:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I<build> -Icore \
 *     core/fuzz/recipe-fuzzer.c core/shoal-recipe.c core/shoal-recipe-match.c \
 *     core/shoal-json-schema.c core/shoal-error.c core/shoal-device.c \
 *     core/shoal-journal-entry.c <build>/core/shoal-enums.c \
 *     $(pkg-config --cflags --libs gio-2.0 json-glib-1.0) -lm -o recipe-fuzzer
 * Run with a seed corpus of valid recipes:
 *   SHOAL_SCHEMA_DIR=schemas ./recipe-fuzzer -max_total_time=60 -max_len=8192 \
 *     corpus/ data/recipes tests/data/recipes
 */
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <stdint.h>

#include "shoal-device.h"
#include "shoal-recipe.h"

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

static ShoalDevice *device = NULL;
static GPtrArray *others = NULL;

static void
setup (void)
{
  const gchar *macs[] = { "52:54:00:12:34:56", "AA:BB:CC:DD:EE:01", NULL };
  g_autoptr(JsonNode) inventory = json_from_string (
    "{\"memory\":{\"total_bytes\":17179869184},"
    "\"cpu\":{\"model\":\"Intel(R) Xeon(R)\",\"cores\":8,\"flags\":[\"sse4_2\",\"avx2\"]},"
    "\"pci\":[{\"vendor\":\"8086\",\"device\":\"10d3\"},{\"vendor\":\"10de\",\"device\":\"1eb8\"}],"
    "\"disks\":[{\"name\":\"sda\",\"size\":\"500107862016\"}],\"a\":[[1,[2,[3]]],{\"b\":null}]}",
    NULL);

  device = shoal_device_new ("fuzz");
  shoal_device_set_macs (device, macs);
  shoal_device_set_inventory (device, inventory);
  others = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (others, shoal_recipe_new_from_data (
    "{\"name\":\"fallback\",\"default\":true,\"steps\":[\"sim\"]}", -1, "fallback.json", NULL));
}

static void
walk (ShoalRecipe *recipe)
{
  for (guint i = 0; i <= shoal_recipe_get_n_steps (recipe); i++)
    {
      (void) shoal_recipe_get_step_name (recipe, i);
      (void) shoal_recipe_get_step_id (recipe, i);
      (void) shoal_recipe_get_step_max_parallel (recipe, i);
      (void) shoal_recipe_get_step_timeout (recipe, i);
      if (i < shoal_recipe_get_n_steps (recipe) && shoal_recipe_get_step_options (recipe, i) == NULL)
        __builtin_trap ();
    }
  (void) shoal_recipe_get_image_name (recipe);
  (void) shoal_recipe_get_group_min (recipe);
  (void) shoal_recipe_get_group_max (recipe);
  (void) shoal_recipe_get_late_fallback (recipe);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(ShoalRecipe) recipe = NULL;
  g_autoptr(ShoalRecipe) again = NULL;
  g_autofree gchar *text = NULL;

  if (device == NULL)
    setup ();

  recipe = shoal_recipe_new_from_data ((const gchar *) data, (gssize) size, "fuzz.json", NULL);
  if (recipe == NULL)
    return 0;

  walk (recipe);
  text = shoal_recipe_to_data (recipe);
  again = shoal_recipe_new_from_data (text, -1, "again.json", NULL);
  if (again == NULL || !json_node_equal (shoal_recipe_get_json (recipe), shoal_recipe_get_json (again)))
    __builtin_trap ();

  (void) shoal_recipe_matches (recipe, device);
  g_ptr_array_add (others, g_object_ref (recipe));
  if (shoal_recipe_select (others, device) == NULL)
    __builtin_trap ();
  g_ptr_array_remove_index (others, others->len - 1);
  return 0;
}
