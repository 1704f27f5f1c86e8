/* shoal-image-gc.c: removing images and the chunks no image uses any more
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "shoal-error.h"
#include "shoal-image-files.h"
#include "shoal-image-files-private.h"

/* Adds the hex digest of every data chunk of the images @ids to @used. */
gboolean
shoal_image_files_collect_chunks (const gchar  *root,
                                  GPtrArray    *ids,
                                  GHashTable   *used,
                                  GError      **error)
{
  for (guint i = 0; i < ids->len; i++)
    {
      g_autoptr(ShoalManifest) m = shoal_image_files_load_manifest (root, g_ptr_array_index (ids, i), error);

      if (m == NULL)
        return FALSE;
      for (guint64 c = 0; c < m->n_chunks; c++)
        {
          const guint8 *digest = shoal_manifest_chunk_digest (m, c);
          gchar *hex;

          if (digest == NULL)
            continue;
          hex = g_malloc (SHOAL_MANIFEST_HEX_LEN + 1);
          shoal_manifest_digest_to_hex (digest, hex);
          g_hash_table_add (used, hex);
        }
    }
  return TRUE;
}

/* Adds the hex digest of every data chunk of every image to @used. Any
 * manifest it cannot load (unreadable, corrupt, of a later format, not
 * named by an image id) fails the collection: its chunks are unknown, and
 * the sweep would delete them, and those it shares with other images.
 * (shoal_image_files_list skips such a manifest with a warning, which is
 * right for a listing and was wrong here.) */
static gboolean
collect_used (const gchar  *root,
              GHashTable   *used,
              GError      **error)
{
  g_autoptr(GPtrArray) ids = shoal_image_files_list_ids (root, TRUE, error);

  return ids != NULL && shoal_image_files_collect_chunks (root, ids, used, error);
}

static void
sweep_dir (const gchar *dir_path,
           GHashTable  *used,
           guint64     *freed)
{
  g_autoptr(GDir) dir = g_dir_open (dir_path, 0, NULL);
  const gchar *entry;

  if (dir == NULL)
    return;
  while ((entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *path = NULL;
      GStatBuf st;

      /* leftovers of an interrupted import start with ".tmp-" */
      if (g_hash_table_contains (used, entry))
        continue;
      path = g_build_filename (dir_path, entry, NULL);
      if (g_stat (path, &st) == 0 && g_unlink (path) == 0)
        *freed += (guint64) st.st_size;
    }
  g_rmdir (dir_path);
}

static void
sweep_chunks (const gchar *root,
              GHashTable  *used,
              guint64     *freed)
{
  g_autofree gchar *chunks = g_build_filename (root, "chunks", NULL);
  g_autoptr(GDir) dir = g_dir_open (chunks, 0, NULL);
  const gchar *entry;

  if (dir == NULL)
    return;
  while ((entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *sub = g_build_filename (chunks, entry, NULL);

      if (strlen (entry) == 2 && g_file_test (sub, G_FILE_TEST_IS_DIR))
        sweep_dir (sub, used, freed);
    }
}

/* Whether @name is one shoal_image_fetch() makes in tmp/: download-
 * and the six characters of mkstemp */
static gboolean
is_download_name (const gchar *name)
{
  return g_str_has_prefix (name, SHOAL_IMAGE_FILES_DOWNLOAD_PREFIX) &&
         strlen (name) == strlen (SHOAL_IMAGE_FILES_DOWNLOAD_PREFIX) + 6 &&
         strchr (name, '/') == NULL;
}

/* Deletes the downloads of URL imports that a crash (kill -9, power loss)
 * interrupted before they could delete them: an import holds the store
 * lock shared from before its download is created until it has unlinked
 * it, so under the exclusive lock every such file is abandoned. Only
 * regular files of the name fetch gives them; nothing else in tmp/. */
static void
sweep_downloads (const gchar *root)
{
  g_autofree gchar *tmp = g_build_filename (root, "tmp", NULL);
  g_autoptr(GDir) dir = g_dir_open (tmp, 0, NULL);
  const gchar *entry;

  if (dir == NULL)
    return;
  while ((entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *path = NULL;
      GStatBuf st;

      if (!is_download_name (entry))
        continue;
      path = g_build_filename (tmp, entry, NULL);
      if (g_lstat (path, &st) != 0 || !S_ISREG (st.st_mode))
        continue;
      if (g_unlink (path) == 0)
        g_info ("Deleted %s (%" G_GUINT64_FORMAT " bytes), the download of an interrupted import",
                path, (guint64) st.st_size);
    }
}

/* Deletes the downloads interrupted imports left, then every chunk no
 * image uses; the caller holds the lock exclusively. */
gboolean
shoal_image_files_gc_locked (const gchar  *root,
                             guint64      *freed,
                             GError      **error)
{
  g_autoptr(GHashTable) used = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  /* whatever the manifests say: no image refers to a download */
  sweep_downloads (root);

  /* If a manifest cannot be read, keep every chunk rather than guess */
  if (!collect_used (root, used, error))
    return FALSE;
  sweep_chunks (root, used, freed);
  return TRUE;
}

/**
 * shoal_image_files_gc:
 * @freed_bytes: (out) (optional): bytes of chunks deleted
 *
 * Deletes the chunks no image uses (left by failed or interrupted imports)
 * and the downloads in tmp/ that interrupted URL imports left (not counted
 * in @freed_bytes). Waits for imports in progress.
 */
gboolean
shoal_image_files_gc (const gchar  *root,
                      guint64      *freed_bytes,
                      GError      **error)
{
  guint64 freed = 0;
  gboolean ok;
  int lock_fd = shoal_image_files_lock (root, LOCK_EX, error);

  if (lock_fd < 0)
    return FALSE;
  ok = shoal_image_files_gc_locked (root, &freed, error);
  close (lock_fd);
  if (freed_bytes != NULL)
    *freed_bytes = freed;
  return ok;
}

/* The manifest of @id, open, locked with @operation (flock, never
 * waiting), and still the file the store names (a removal may have
 * unlinked it between the open and the lock); -1 with errno */
int
shoal_image_files_lock_manifest (const gchar *root, const gchar *id, int operation)
{
  g_autofree gchar *path = shoal_image_files_manifest_path (root, id);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct stat held, named;
  int saved;

  if (fd < 0)
    return -1;
  if (flock (fd, operation | LOCK_NB) < 0)
    {
      saved = errno;
      close (fd);
      errno = saved;
      return -1;
    }
  if (fstat (fd, &held) < 0 || stat (path, &named) < 0 || held.st_ino != named.st_ino ||
      held.st_dev != named.st_dev)
    {
      close (fd);
      errno = ENOENT;
      return -1;
    }
  return fd;
}

/**
 * shoal_image_files_hold:
 *
 * See shoal-image-files.h: a shared lock on the image's manifest, which a
 * removal tries to take exclusively.
 */
int
shoal_image_files_hold (const gchar  *root,
                        const gchar  *id,
                        GError      **error)
{
  int fd;

  if (!shoal_manifest_is_valid_id (id))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("“%s” is not an image id (64 lowercase hex digits)"), id);
      return -1;
    }
  fd = shoal_image_files_lock_manifest (root, id, LOCK_SH);
  if (fd < 0)
    {
      int saved = errno;

      if (saved == EWOULDBLOCK)
        g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY, _("Image %s is being removed"), id);
      else
        g_set_error (error, SHOAL_ERROR, saved == ENOENT ? SHOAL_ERROR_NOT_FOUND : SHOAL_ERROR_STORE,
                     _("Cannot hold image %s: %s"), id, g_strerror (saved));
      return -1;
    }
  return fd;
}

void
shoal_image_files_release (int hold)
{
  if (hold >= 0)
    close (hold);
}

/* Removes the manifest of image @id, unless a transfer holds it (BUSY);
 * the caller holds the store lock exclusively and collects the chunks. */
gboolean
shoal_image_files_unlink_locked (const gchar  *root,
                                 const gchar  *id,
                                 GError      **error)
{
  g_autofree gchar *path = shoal_image_files_manifest_path (root, id);
  /* held by a transfer: left alone. The exclusive lock is kept until the
   * file is unlinked, so no hold can begin on it in between */
  int manifest_fd = shoal_image_files_lock_manifest (root, id, LOCK_EX);
  int saved;

  if (manifest_fd < 0 && errno == EWOULDBLOCK)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY,
                   _("Image %s is in use: a transfer to devices reads it; remove it when that has ended"), id);
      return FALSE;
    }
  if (g_unlink (path) < 0)
    {
      saved = errno;
      if (manifest_fd >= 0)
        close (manifest_fd);
      g_set_error (error, SHOAL_ERROR, saved == ENOENT ? SHOAL_ERROR_NOT_FOUND : SHOAL_ERROR_STORE,
                   _("Cannot remove image %s: %s"), id, g_strerror (saved));
      return FALSE;
    }
  if (manifest_fd >= 0)
    close (manifest_fd);
  return TRUE;
}

/**
 * shoal_image_files_remove:
 * @freed_bytes: (out) (optional): bytes of chunks deleted
 *
 * Removes image @id, then deletes every chunk no other image uses. Waits
 * for imports in progress (they hold the store lock shared). An image
 * that a transfer holds (shoal_image_files_hold()) is not removed:
 * %SHOAL_ERROR_BUSY.
 */
gboolean
shoal_image_files_remove (const gchar  *root,
                          const gchar  *id,
                          guint64      *freed_bytes,
                          GError      **error)
{
  g_autoptr(GError) local_error = NULL;
  guint64 freed = 0;
  gboolean ok;
  int lock_fd;

  if (!shoal_manifest_is_valid_id (id))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("“%s” is not an image id (64 lowercase hex digits)"), id);
      return FALSE;
    }
  lock_fd = shoal_image_files_lock (root, LOCK_EX, error);
  if (lock_fd < 0)
    return FALSE;
  if (!shoal_image_files_unlink_locked (root, id, error))
    {
      close (lock_fd);
      return FALSE;
    }
  ok = shoal_image_files_gc_locked (root, &freed, &local_error);
  close (lock_fd);
  if (freed_bytes != NULL)
    *freed_bytes = freed;
  if (!ok)
    g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                _("Image %s removed, but its chunks were kept: "), id);
  return ok;
}
