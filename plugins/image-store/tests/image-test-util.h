/* image-test-util.h: helpers of the image store's tests on disk
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "shoal-error.h"
#include "shoal-image-files.h"

/* removes a folder and everything in it */
static inline void
image_test_rm_rf (const gchar *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *entry;

  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *child = g_build_filename (path, entry, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        image_test_rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

/* len bytes that do not compress, the same for the same seed */
static inline void
image_test_fill_random (guint8 *p,
                        gsize   len,
                        guint32 seed)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (seed);

  for (gsize i = 0; i < len; i += 4)
    {
      guint32 v = g_rand_int (rand);

      memcpy (p + i, &v, MIN (4, len - i));
    }
}

/* TRUE if tool is on the PATH; else the test is skipped (FALSE) */
static inline gboolean
image_test_have (const gchar *tool)
{
  g_autofree gchar *path = g_find_program_in_path (tool);

  if (path == NULL)
    {
      g_autofree gchar *why = g_strdup_printf ("%s is missing", tool);

      g_test_skip (why);
    }
  return path != NULL;
}

/* runs argv (found on the PATH) in folder cwd (NULL: here); it must succeed */
static inline void
image_test_spawn (const gchar        *cwd,
                  const gchar *const *argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *err = NULL;
  gint status = 0;

  g_spawn_sync (cwd, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                NULL, NULL, NULL, &err, &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("%s failed: %s", argv[0], err);
}

/* imports path into the store at root, which must fail with code and a
 * message holding what, and leave the store with images images */
static inline void
image_test_expect_import_error (const gchar *root,
                                const gchar *path,
                                gint         code,
                                const gchar *what,
                                guint        images)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autofree gchar *id = shoal_image_files_import (root, path, "broken", 4096, NULL, NULL, NULL, NULL, &error);

  g_assert_null (id);
  g_assert_error (error, SHOAL_ERROR, code);
  g_test_message ("%s", error->message);
  if (strstr (error->message, what) == NULL)
    g_error ("“%s” does not say “%s”", error->message, what);
  g_clear_error (&error);
  list = shoal_image_files_list (root, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, images);
}
