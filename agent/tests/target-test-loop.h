/* target-test-loop.h: loop devices for the agent's tests (root only)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <unistd.h>

/* @path attached to a loop device of @sector-byte logical sectors; NULL,
 * the test skipped, where there is none (it needs root) */
static inline gchar *
target_test_loop_attach (const gchar *path, guint sector)
{
  g_autofree gchar *ss = g_strdup_printf ("%u", sector);
  const gchar *argv[] = { "losetup", "--find", "--show", "--sector-size", ss, path, NULL };
  g_autofree gchar *out = NULL;
  gint status = 0;

  if (getuid () != 0 || !g_file_test ("/dev/loop-control", G_FILE_TEST_EXISTS))
    {
      g_test_skip ("needs root and loop devices");
      return NULL;
    }
  if (!g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                     &out, NULL, &status, NULL) ||
      !g_spawn_check_wait_status (status, NULL) || !g_str_has_prefix (g_strstrip (out), "/dev/loop"))
    {
      g_test_skip ("no loop device could be attached");
      return NULL;
    }
  g_test_message ("%s over %s", out, path);
  return g_steal_pointer (&out);
}

static inline gboolean
target_test_loop_detach (const gchar *dev)
{
  const gchar *argv[] = { "losetup", "--detach", dev, NULL };
  gint status = 0;

  return g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, NULL) &&
         g_spawn_check_wait_status (status, NULL);
}
