/* shoal-test-util.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>

#include "shoal-test-util.h"

/* An engine that sees the plugins of the build tree and the test fixtures */
ShoalPluginEngine *
shoal_test_engine_new (gboolean with_fixtures)
{
  ShoalPluginEngine *engine = shoal_plugin_engine_new ();
  g_autofree gchar *fixtures = g_test_build_filename (G_TEST_BUILT, "plugins", NULL);

  if (with_fixtures)
    shoal_plugin_engine_add_search_path (engine, fixtures);
  shoal_plugin_engine_add_search_path (engine, SHOAL_BUILD_PLUGINDIR);
  shoal_plugin_engine_load_all (engine);
  return engine;
}

ShoalRecipe *
shoal_test_recipe_new (const gchar *json)
{
  g_autoptr(GError) error = NULL;
  ShoalRecipe *recipe = shoal_recipe_new_from_data (json, -1, "test.json", &error);

  g_assert_no_error (error);
  g_assert_nonnull (recipe);
  return recipe;
}

static gboolean
timeout_cb (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates the main context until @done returns TRUE or @timeout_ms pass */
gboolean
shoal_test_wait_until (gboolean (*done) (gpointer),
                       gpointer   data,
                       guint      timeout_ms)
{
  gboolean timed_out = FALSE;
  guint id = g_timeout_add (timeout_ms, timeout_cb, &timed_out);

  while (!done (data) && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (id);
  return done (data);
}

gchar *
shoal_test_mkdtemp (void)
{
  g_autoptr(GError) error = NULL;
  gchar *dir = g_dir_make_tmp ("shoal-test-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

void
shoal_test_rm_rf (const gchar *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        shoal_test_rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}
