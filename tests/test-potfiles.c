/* test-potfiles.c: every source file with a string marked for translation
 * is listed in po/POTFILES.in, so that the template (ninja shoal-pot)
 * carries all of them
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>
#include <string.h>

static void
collect (const gchar *root,
         const gchar *rel,
         GPtrArray   *marked)
{
  g_autofree gchar *path = g_build_filename (root, rel, NULL);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  if (dir == NULL)
    return;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *child_rel = g_build_filename (rel, name, NULL);
      g_autofree gchar *child = g_build_filename (root, child_rel, NULL);
      g_autofree gchar *text = NULL;

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        {
          collect (root, child_rel, marked);
          continue;
        }
      if (!g_str_has_suffix (name, ".c") || !g_file_get_contents (child, &text, NULL, NULL))
        continue;
      if (strstr (text, "_(\"") != NULL || strstr (text, "N_(\"") != NULL)
        g_ptr_array_add (marked, g_steal_pointer (&child_rel));
    }
}

static void
test_potfiles_complete (void)
{
  const gchar *root = g_getenv ("SHOAL_SOURCE_ROOT");
  g_autofree gchar *potfiles_path = NULL;
  g_autofree gchar *potfiles = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GHashTable) listed = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) marked = g_ptr_array_new_with_free_func (g_free);
  static const gchar *const dirs[] = { "core", "plugins" };
  guint missing = 0;

  g_assert_nonnull (root);
  potfiles_path = g_build_filename (root, "po", "POTFILES.in", NULL);
  g_assert_true (g_file_get_contents (potfiles_path, &potfiles, NULL, NULL));
  lines = g_strsplit (potfiles, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_strstrip (lines[i]);
      if (lines[i][0] != '\0' && lines[i][0] != '#')
        g_hash_table_add (listed, lines[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    collect (root, dirs[i], marked);
  g_assert_cmpuint (marked->len, >, 10);
  for (guint i = 0; i < marked->len; i++)
    if (!g_hash_table_contains (listed, g_ptr_array_index (marked, i)))
      {
        g_printerr ("%s marks strings for translation but is not in po/POTFILES.in\n",
                    (const gchar *) g_ptr_array_index (marked, i));
        missing++;
      }
  g_assert_cmpuint (missing, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/po/potfiles-complete", test_potfiles_complete);
  return g_test_run ();
}
