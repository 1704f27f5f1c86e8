/* shoal-pxe-path.c: open a file confined to a root directory
 *
 * Requests name files relative to a root. Absolute names and ".."
 * components are refused before any lookup, and the lookup itself runs
 * with openat2 (RESOLVE_BENEATH), so a symbolic link cannot lead out of
 * the root either.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "shoal-error.h"
#include "shoal-pxe-path.h"

gboolean
shoal_pxe_path_is_safe (const gchar *path, GError **error)
{
  g_auto(GStrv) parts = NULL;

  if (path == NULL || path[0] == '\0')
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT, "empty file name");
      return FALSE;
    }
  if (path[0] == '/' || path[0] == '\\')
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED,
                   "absolute file name %s refused", path);
      return FALSE;
    }
  parts = g_strsplit_set (path, "/\\", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    {
      if (g_str_equal (parts[i], ".."))
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED,
                       "file name %s leaves the root", path);
          return FALSE;
        }
    }
  return TRUE;
}

static gint
open_beneath (gint root_fd, const gchar *path)
{
  struct open_how how = {
    .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
  };

  return (gint) syscall (SYS_openat2, root_fd, path, &how, sizeof how);
}

/**
 * shoal_pxe_path_open_beneath:
 *
 * Opens @path, a name relative to @root_fd, for reading. Only regular
 * files are opened.
 *
 * Returns: a file descriptor, or -1 with @error set
 */
gint
shoal_pxe_path_open_beneath (gint root_fd, const gchar *path, GError **error)
{
  gint fd;
  struct stat st;

  if (!shoal_pxe_path_is_safe (path, error))
    return -1;
  fd = open_beneath (root_fd, path);
  if (fd < 0)
    {
      gint saved = errno;
      gint code = (saved == ENOENT || saved == ENOTDIR) ? SHOAL_ERROR_NOT_FOUND
                                                         : SHOAL_ERROR_PERMISSION_DENIED;
      g_set_error (error, SHOAL_ERROR, code, "cannot open %s: %s", path, g_strerror (saved));
      return -1;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_close (fd, NULL);
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_PERMISSION_DENIED,
                   "%s is not a regular file", path);
      return -1;
    }
  return fd;
}
