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

/* msgids cut by a G_*_FORMAT macro in a string marked with _(): xgettext
 * does not expand macros, so the template gets the text up to it and the
 * whole string is never translated (PRI* macros are known to xgettext) */
static guint
macro_msgids (const gchar *rel,   /* NULL: count, do not report */
              const gchar *text)
{
  guint bad = 0;

  for (const gchar *p = strstr (text, "_(\""); p != NULL; p = strstr (p + 1, "_(\""))
    {
      const gchar *q = p + 2;   /* the opening quote */

      for (;;)
        {
          q++;
          while (*q != '\0' && *q != '"')
            q += (*q == '\\' && q[1] != '\0') ? 2 : 1;
          if (*q == '\0')
            break;
          q++;
          while (g_ascii_isspace (*q))
            q++;
          if (*q == '"')
            continue;   /* the literal goes on */
          if (g_str_has_prefix (q, "G_G"))
            {
              const gchar *e = q;

              while (g_ascii_isalnum (*e) || *e == '_')
                e++;
              if (e - q > 7 && strncmp (e - 7, "_FORMAT", 7) == 0)
                {
                  if (rel != NULL)
                    g_printerr ("%s: a G_*_FORMAT macro inside _(): %.60s\n", rel, p);
                  bad++;
                }
            }
          break;
        }
    }
  return bad;
}

static void
test_no_macro_msgids (void)
{
  const gchar *root = g_getenv ("SHOAL_SOURCE_ROOT");
  g_autoptr(GPtrArray) marked = g_ptr_array_new_with_free_func (g_free);
  static const gchar *const dirs[] = { "core", "plugins" };
  guint bad = 0;

  g_assert_nonnull (root);
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    collect (root, dirs[i], marked);
  g_assert_cmpuint (macro_msgids (NULL, "_(\"at least %\" G_GINT64_FORMAT \" devices\")"), ==, 1);
  g_assert_cmpuint (macro_msgids (NULL, "_(\"one \"\n  \"two %d\"), G_GINT64_FORMAT"), ==, 0);
  for (guint i = 0; i < marked->len; i++)
    {
      const gchar *rel = g_ptr_array_index (marked, i);
      g_autofree gchar *path = g_build_filename (root, rel, NULL);
      g_autofree gchar *text = NULL;

      g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
      bad += macro_msgids (rel, text);
    }
  g_assert_cmpuint (bad, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/po/potfiles-complete", test_potfiles_complete);
  g_test_add_func ("/shoal/po/no-macros-in-msgids", test_no_macro_msgids);
  return g_test_run ();
}
