/* test-plugin-engine.c: plugins in C and Python, and plugins that fail to load
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-controller-private.h"
#include "shoal-test-util.h"

static ShoalPluginEngine *
engine_with_fixtures (void)
{
  /* libpeas warns about every plugin that fails to load: expected here */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  return shoal_test_engine_new (TRUE);
}

static ShoalPluginInfo *
find_plugin (GPtrArray   *plugins,
             const gchar *module)
{
  for (guint i = 0; i < plugins->len; i++)
    {
      ShoalPluginInfo *info = g_ptr_array_index (plugins, i);

      if (g_strcmp0 (info->module, module) == 0)
        return info;
    }
  return NULL;
}

static void
test_engine_list (void)
{
  g_autoptr(ShoalPluginEngine) engine = engine_with_fixtures ();
  g_autoptr(GPtrArray) plugins = shoal_plugin_engine_list_plugins (engine);
  g_auto(GStrv) steps = shoal_plugin_engine_list_steps (engine);
  ShoalPluginInfo *info;

  g_assert_true (g_strv_contains ((const gchar * const *) steps, "sim"));
  g_assert_true (g_strv_contains ((const gchar * const *) steps, "sim-group"));
  g_assert_false (g_strv_contains ((const gchar * const *) steps, "test-broken"));
  g_assert_cmpstr (shoal_plugin_engine_get_step_module (engine, "sim"), ==, "shoal-sim");

  info = find_plugin (plugins, "shoal-sim");
  g_assert_nonnull (info);
  g_assert_true (info->loaded);
  g_assert_null (info->error);
  g_assert_cmpstr (info->steps[0], ==, "sim");

  for (guint i = 0; i < 4; i++)
    {
      const gchar *broken[] = { "shoal-test-missing-module", "shoal-test-broken-symbol",
                                "shoal-test-no-step", "python_failing" };

      info = find_plugin (plugins, broken[i]);
      g_assert_nonnull (info);
      g_assert_nonnull (info->error);
    }
  g_assert_nonnull (strstr (find_plugin (plugins, "shoal-test-no-step")->error, "registers no ShoalStep"));
}

/* the reason of each fixture's failure, from a fresh engine */
static void
assert_load_reasons (void)
{
  g_autoptr(ShoalPluginEngine) engine = engine_with_fixtures ();
  g_autoptr(GPtrArray) plugins = shoal_plugin_engine_list_plugins (engine);
  ShoalPluginInfo *python_example = find_plugin (plugins, "shoal_python_example");
  const gchar *reason;

  reason = find_plugin (plugins, "shoal-test-broken-symbol")->error;
  g_test_message ("broken-symbol: %s", reason);
  g_assert_nonnull (strstr (reason, "libshoal-test-broken-symbol.so"));
  g_assert_nonnull (strstr (reason, "undefined symbol: shoal_test_symbol_that_does_not_exist"));
  reason = find_plugin (plugins, "shoal-test-missing-module")->error;
  g_test_message ("missing-module: %s", reason);
  g_assert_nonnull (strstr (reason, "libshoal-test-missing-module.so"));
  /* the Python loader is there when the Python example loads */
  if (python_example != NULL && python_example->loaded)
    {
      reason = find_plugin (plugins, "python_failing")->error;
      g_test_message ("python_failing: %s", reason);
      g_assert_nonnull (strstr (reason, "ImportError: this fixture fails on purpose"));
      g_assert_null (strchr (reason, '\n'));
    }
}

/* A plugin that fails to load is listed with the reason libpeas gives in
 * its warnings, where it was only "Failed to load"; a second engine of
 * the process, whose loaders say nothing this time, gives it too */
static void
test_engine_load_reasons (void)
{
  assert_load_reasons ();
  assert_load_reasons ();
}

static void
assert_step_flags (ShoalPluginEngine *engine,
                   const gchar       *name,
                   ShoalStepFlags     flags)
{
  ShoalStep *step = shoal_plugin_engine_lookup_step (engine, name, NULL);

  g_assert_nonnull (step);
  g_assert_cmpint (shoal_step_get_flags (step), ==, flags);
}

/* whether a step reads its recipe's image is a flag of the step, whatever
 * its name: unicast sets it, so does a Python step of a name of its own,
 * and a step without it (sim, a Python step that does not say) has none */
static void
test_engine_step_flags (void)
{
  g_autoptr(ShoalPluginEngine) engine = engine_with_fixtures ();
  g_autoptr(GPtrArray) plugins = shoal_plugin_engine_list_plugins (engine);
  ShoalPluginInfo *python_example = find_plugin (plugins, "shoal_python_example");

  assert_step_flags (engine, "unicast", SHOAL_STEP_FLAGS_READS_IMAGE);
  assert_step_flags (engine, "sim", SHOAL_STEP_FLAGS_NONE);
  if (python_example == NULL || !python_example->loaded)
    {
      g_test_skip ("no Python loader");
      return;
    }
  assert_step_flags (engine, "test-image-reader", SHOAL_STEP_FLAGS_READS_IMAGE);
  assert_step_flags (engine, "test-image-plain", SHOAL_STEP_FLAGS_NONE);
}

static void
test_engine_unknown_step_reason (void)
{
  g_autoptr(ShoalPluginEngine) engine = engine_with_fixtures ();
  g_autoptr(GError) error = NULL;

  g_assert_null (shoal_plugin_engine_lookup_step (engine, "test-broken", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_UNKNOWN_STEP);
  g_assert_nonnull (strstr (error->message, "shoal-test-broken-symbol failed to load"));
  g_assert_nonnull (strstr (error->message, "undefined symbol: shoal_test_symbol_that_does_not_exist"));
  g_clear_error (&error);
  g_assert_null (shoal_plugin_engine_lookup_step (engine, "nothing-provides-this", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_UNKNOWN_STEP);
  g_assert_nonnull (strstr (error->message, "nothing-provides-this"));
}

static gboolean
settled (gpointer data)
{
  ShoalDevice *device = data;

  return !shoal_device_state_is_active (shoal_device_get_state (device));
}

static void
run_python_recipe (const gchar      *options,
                   ShoalDeviceState  expected,
                   const gchar      *expected_text)
{
  g_autoptr(ShoalPluginEngine) engine = engine_with_fixtures ();
  g_autofree gchar *state_dir = shoal_test_mkdtemp ();
  g_autoptr(ShoalController) controller = shoal_controller_new (engine, state_dir);
  g_autofree gchar *json = g_strdup_printf ("{\"name\": \"py\", \"steps\": ["
                                            "{\"step\": \"sim\", \"options\": {\"min-ms\": 1, \"max-ms\": 2}},"
                                            "{\"step\": \"python-example\", \"options\": %s}]}", options);
  g_autoptr(ShoalRecipe) recipe = shoal_test_recipe_new (json);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) entries = NULL;
  gboolean found = FALSE;
  ShoalDevice *device;

  if (shoal_plugin_engine_lookup_step (engine, "python-example", NULL) == NULL)
    {
      g_test_skip ("the python-example plugin is not built (needs -Dintrospection=enabled)");
      return;
    }
  g_assert_true (shoal_controller_open (controller, &error));
  g_assert_true (shoal_controller_add_recipe (controller, recipe, &error));
  g_assert_no_error (error);
  device = shoal_controller_enroll_device (controller, "py-1", NULL, NULL, &error);
  g_assert_true (shoal_controller_assign_recipe (controller, device, "py", &error));
  g_assert_true (shoal_controller_deploy (controller, device, &error));
  g_assert_no_error (error);
  g_assert_true (shoal_test_wait_until (settled, device, 20000));
  g_assert_true (shoal_store_flush (shoal_controller_get_store (controller), NULL));
  g_assert_cmpint (shoal_device_get_state (device), ==, expected);
  entries = shoal_controller_get_journal (controller, device, 0, &error);
  for (guint i = 0; i < entries->len; i++)
    if (strstr (shoal_journal_entry_get_message (g_ptr_array_index (entries, i)), expected_text) != NULL)
      found = TRUE;
  g_assert_true (found);
  shoal_controller_close (controller);
  shoal_test_rm_rf (state_dir);
}

static void
test_engine_python_step (void)
{
  run_python_recipe ("{\"message\": \"written in Python\"}", SHOAL_DEVICE_STATE_INSTALLED,
                     "written in Python (device py-1)");
}

static void
test_engine_python_step_error (void)
{
  run_python_recipe ("{\"fail\": true}", SHOAL_DEVICE_STATE_FAILED, "told to fail");
}

/* a plain exception fails the step, and the journal says where to look */
static void
test_engine_python_step_exception (void)
{
#ifdef __SANITIZE_ADDRESS__
  /* PyGObject prints the exception with PyErr_Print, which keeps it in
   * sys.last_traceback: its frames keep the step, and through it the
   * plugin engine, alive until exit, which LeakSanitizer reports */
  g_test_skip ("a Python exception is kept until exit (sys.last_traceback)");
  return;
#endif
  run_python_recipe ("{\"raise\": true}", SHOAL_DEVICE_STATE_FAILED,
                     "step python-example failed without saying why (a step in Python says why by raising GLib.Error");
}

static void
test_engine_python_bad_options (void)
{
  g_autoptr(ShoalPluginEngine) engine = engine_with_fixtures ();
  ShoalStep *step = shoal_plugin_engine_lookup_step (engine, "python-example", NULL);
  g_autoptr(JsonNode) node = json_from_string ("{\"message\": 42}", NULL);
  g_autoptr(GError) error = NULL;

  if (step == NULL)
    {
      g_test_skip ("the python-example plugin is not built");
      return;
    }
  g_assert_cmpint (shoal_step_get_phase (step), ==, SHOAL_STEP_PHASE_FINISH);
  g_assert_false (shoal_step_validate_options (step, json_node_get_object (node), &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
  g_assert_nonnull (strstr (error->message, "message"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/plugin-engine/list", test_engine_list);
  g_test_add_func ("/shoal/plugin-engine/load-reasons", test_engine_load_reasons);
  g_test_add_func ("/shoal/plugin-engine/unknown-step-reason", test_engine_unknown_step_reason);
  g_test_add_func ("/shoal/plugin-engine/step-flags", test_engine_step_flags);
  g_test_add_func ("/shoal/plugin-engine/python-step", test_engine_python_step);
  g_test_add_func ("/shoal/plugin-engine/python-step-error", test_engine_python_step_error);
  g_test_add_func ("/shoal/plugin-engine/python-step-exception", test_engine_python_step_exception);
  g_test_add_func ("/shoal/plugin-engine/python-bad-options", test_engine_python_bad_options);
  return g_test_run ();
}
