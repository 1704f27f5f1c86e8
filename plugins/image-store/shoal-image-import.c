/* shoal-image-import.c: importing images into the store (the disk any file
 * shoal-image-source.c reads holds), and removing them
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The import reads the image once. Each chunk is checked for zeros, hashed,
 * and written under its SHA-256 unless the store has it already; a second
 * thread hashes the whole image at the same time (SHA-256 is the cost here,
 * so on two cores the two hashes run side by side).
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shoal-error.h"
#include "shoal-image-files.h"
#include "shoal-image-files-private.h"
#include "shoal-image-source.h"

#define N_BUFFERS 4

/* --- The whole-image hasher thread -------------------------------------------- */

typedef struct {
  guint8 *data;
  gsize   len;
  gboolean stop;
} Buffer;

typedef struct {
  GAsyncQueue       *todo;
  GAsyncQueue       *free;
  ShoalManifestHash *hash;
  GThread           *thread;
  Buffer             buffers[N_BUFFERS];
  Buffer             stop;
} Hasher;

static gpointer
hasher_thread (gpointer data)
{
  Hasher *h = data;

  for (;;)
    {
      Buffer *b = g_async_queue_pop (h->todo);

      if (b->stop)
        break;
      shoal_manifest_hash_update (h->hash, b->data, b->len);
      g_async_queue_push (h->free, b);
    }
  return NULL;
}

static void
hasher_start (Hasher  *h,
              guint32  chunk_size)
{
  h->todo = g_async_queue_new ();
  h->free = g_async_queue_new ();
  h->hash = shoal_manifest_hash_new ();
  h->stop.stop = TRUE;
  for (guint i = 0; i < N_BUFFERS; i++)
    {
      h->buffers[i].data = g_malloc (chunk_size);
      g_async_queue_push (h->free, &h->buffers[i]);
    }
  h->thread = g_thread_new ("shoal-image-hash", hasher_thread, h);
}

/* Stops the thread; writes the digest if @digest is not NULL. */
static void
hasher_finish (Hasher *h,
               guint8 *digest)
{
  g_async_queue_push (h->todo, &h->stop);
  g_thread_join (h->thread);
  if (digest != NULL)
    shoal_manifest_hash_final (h->hash, digest);
  shoal_manifest_hash_free (h->hash);
  for (guint i = 0; i < N_BUFFERS; i++)
    g_free (h->buffers[i].data);
  g_async_queue_unref (h->todo);
  g_async_queue_unref (h->free);
}

/* --- Chunks ----------------------------------------------------------------- */

/* Stores one chunk unless the store has it; TRUE in *written if it wrote. */
static gboolean
store_chunk (const gchar   *root,
             const gchar   *hex,
             const guint8  *data,
             gsize          len,
             gboolean      *written,
             GError       **error)
{
  g_autofree gchar *path = shoal_image_files_chunk_path (root, hex);
  g_autofree gchar *dir = g_path_get_dirname (path);
  g_autofree gchar *tmp = NULL;
  GStatBuf st;
  gboolean written_ok;
  int fd;
  int saved;

  *written = FALSE;
  if (g_stat (path, &st) == 0 && (gsize) st.st_size == len)
    return TRUE;
  if (g_mkdir (dir, 0755) < 0 && errno != EEXIST)
    {
      saved = errno;
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
                   _("Cannot create chunk folder %s: %s"), dir, g_strerror (saved));
      return FALSE;
    }
  tmp = g_strdup_printf ("%s/.tmp-%s-%08x", dir, hex, g_random_int ());
  fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  written_ok = fd >= 0 && shoal_image_files_write_all (fd, data, len);
  /* a hint: start the writeback now, so the disk works while the next chunks
   * are hashed and the syncfs before the manifest has little left to do */
  if (written_ok)
    sync_file_range (fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  saved = errno;
  if (fd >= 0 && close (fd) != 0 && written_ok)
    {
      written_ok = FALSE;
      saved = errno;
    }
  if (written_ok && g_rename (tmp, path) == 0)
    {
      *written = TRUE;
      return TRUE;
    }
  if (written_ok)
    saved = errno;
  if (fd >= 0)
    g_unlink (tmp);
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
               _("Cannot write chunk %s: %s"), path, g_strerror (saved));
  return FALSE;
}

/* --- Import ------------------------------------------------------------------- */

typedef struct {
  const gchar      *root;
  guint32           chunk_size;
  GArray           *digests;      /* guint8[32] per chunk */
  GArray           *zero;         /* guint8 per chunk */
  guint64           size;
  ShoalImportStats *stats;
} Import;

static gboolean
import_chunk (Import       *imp,
              const guint8 *data,
              gsize         len,
              GError      **error)
{
  guint8 digest[SHOAL_MANIFEST_DIGEST_LEN] = { 0 };
  char hex[SHOAL_MANIFEST_HEX_LEN + 1];
  guint8 is_zero = shoal_manifest_is_zero (data, len) ? 1 : 0;
  gboolean written = FALSE;

  imp->stats->n_chunks++;
  if (is_zero)
    imp->stats->n_zero++;
  else
    {
      shoal_manifest_digest (data, len, digest);
      shoal_manifest_digest_to_hex (digest, hex);
      if (!store_chunk (imp->root, hex, data, len, &written, error))
        return FALSE;
      imp->stats->n_written += written;
      imp->stats->n_deduplicated += !written;
      imp->stats->bytes_written += written ? len : 0;
    }
  g_array_append_vals (imp->digests, digest, 1);
  g_array_append_val (imp->zero, is_zero);
  imp->size += len;
  return TRUE;
}

/* a manifest holds at most SHOAL_MANIFEST_MAX_CHUNKS chunks: a disk larger
 * than that is refused before it is read (a qcow2 image may say 64 PiB),
 * or, compressed, as soon as it passes the limit */
static gboolean
check_disk_size (Import            *imp,
                 guint64            size,
                 ShoalImageSource  *src,
                 GError           **error)
{
  guint64 limit = (guint64) imp->chunk_size * SHOAL_MANIFEST_MAX_CHUNKS;

  if (size <= limit)
    return TRUE;
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
               _("Image %s holds more than %llu bytes, the most %u chunks of %u bytes describe (a larger chunk size takes more)"),
               shoal_image_source_get_path (src), (unsigned long long) limit, SHOAL_MANIFEST_MAX_CHUNKS, imp->chunk_size);
  return FALSE;
}

static gboolean
import_chunks (Import                  *imp,
               ShoalImageSource        *src,
               guint8                  *image_digest,
               ShoalImportProgressFunc  progress,
               gpointer                 progress_data,
               GCancellable            *cancellable,
               GError                 **error)
{
  Hasher h = { 0 };
  gboolean ok = TRUE;

  if (!check_disk_size (imp, shoal_image_source_disk_size (src), src, error))
    return FALSE;
  hasher_start (&h, imp->chunk_size);
  while (ok)
    {
      Buffer *b = g_async_queue_pop (h.free);
      gssize n;

      ok = !g_cancellable_set_error_if_cancelled (cancellable, error);
      n = ok ? shoal_image_source_fill (src, b->data, imp->chunk_size, error) : -1;
      if (n <= 0)
        {
          ok = n == 0;
          g_async_queue_push (h.free, b);
          break;
        }
      b->len = (gsize) n;
      ok = check_disk_size (imp, imp->stats->n_chunks * (guint64) imp->chunk_size + (guint64) n, src, error) &&
           import_chunk (imp, b->data, b->len, error);
      g_async_queue_push (h.todo, b);
      if (progress != NULL)
        {
          guint64 total, done = shoal_image_source_position (src, &total);

          progress (done, total, progress_data);
        }
      if ((gsize) n < imp->chunk_size)
        break;
    }
  hasher_finish (&h, ok ? image_digest : NULL);
  return ok;
}

static gchar *
write_manifest (const gchar    *root,
                ShoalManifest  *m,
                GError        **error)
{
  gsize len = 0;
  g_autofree gchar *text = shoal_manifest_serialize (m, &len);
  char id[SHOAL_MANIFEST_HEX_LEN + 1];
  g_autofree gchar *path = NULL;
  g_autofree gchar *root_dir = g_build_filename (root, "chunks", NULL);
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GBytes) existing = NULL;
  int fd;

  shoal_manifest_compute_id (text, len, id);
  path = shoal_image_files_manifest_path (root, id);
  /* The same image imported again: the manifest there is this text (its
   * name is its SHA-256) and stays. Renaming a new file over it would
   * drop the holds of transfers running from it (a hold is a lock on that
   * file), and a removal could then delete the chunks they send. Only its
   * time changes: it is the newest import under its name. A manifest there
   * that does not match its name is corrupt, and is replaced. */
  existing = shoal_image_files_load_manifest_bytes (root, id, NULL);
  if (existing != NULL)
    {
      if (utimensat (AT_FDCWD, path, NULL, 0) < 0)
        g_debug ("Cannot update the time of %s: %s", path, g_strerror (errno));
      return g_strdup (id);
    }
  /* Chunks reach the disk before the manifest that names them */
  fd = open (root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0)
    {
      syncfs (fd);
      close (fd);
    }
  if (!g_file_set_contents_full (path, text, (gssize) len,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0644, &local_error))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
                   _("Cannot write manifest %s: %s"), path, local_error->message);
      return NULL;
    }
  return g_strdup (id);
}

static gchar *
name_from_path (const gchar *path)
{
  g_autofree gchar *base = g_path_get_basename (path);
  static const gchar *suffixes[] = { ".zst", ".xz", ".gz", ".bz2", ".qcow2", ".img", ".raw", ".bin" };
  GString *name = g_string_new (NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (suffixes); i++)
    if (g_str_has_suffix (base, suffixes[i]) && strlen (base) > strlen (suffixes[i]))
      base[strlen (base) - strlen (suffixes[i])] = '\0';
  for (const gchar *p = base; *p != '\0' && name->len < SHOAL_MANIFEST_NAME_MAX; p++)
    g_string_append_c (name, (g_ascii_isalnum (*p) || strchr ("._+:@-", *p) != NULL) ? *p : '_');
  while (name->len > 0 && (name->str[0] == '.' || name->str[0] == '-'))
    g_string_erase (name, 0, 1);
  return g_string_free (name, FALSE);
}

static ShoalManifest *
build_manifest (Import        *imp,
                const gchar   *name,
                const guint8  *image_digest,
                GError       **error)
{
  ShoalManifestError merr = { 0 };
  ShoalManifest *m = shoal_manifest_new (name, imp->size, imp->chunk_size, &merr);

  if (m == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("Cannot make a manifest for image “%s”: %s"), name, merr.message);
      return NULL;
    }
  for (guint64 i = 0; i < m->n_chunks; i++)
    {
      const guint8 *digest = &g_array_index (imp->digests, guint8, i * SHOAL_MANIFEST_DIGEST_LEN);

      shoal_manifest_set_chunk (m, i, g_array_index (imp->zero, guint8, i) ? NULL : digest);
    }
  shoal_manifest_set_image_sha256 (m, image_digest);
  return m;
}

static gboolean
check_import_args (const gchar  *name,
                   guint32       chunk_size,
                   GError      **error)
{
  if (!shoal_manifest_is_valid_name (name))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("“%s” is not a valid image name (1 to %d characters from A-Z a-z 0-9 . _ + : @ -)"),
                   name, SHOAL_MANIFEST_NAME_MAX);
      return FALSE;
    }
  if (!shoal_manifest_chunk_size_is_valid (chunk_size))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("Chunk size %u is not a power of two between %u and %u"),
                   chunk_size, SHOAL_MANIFEST_MIN_CHUNK_SIZE, SHOAL_MANIFEST_MAX_CHUNK_SIZE);
      return FALSE;
    }
  return TRUE;
}

/**
 * shoal_image_files_import:
 * @name: (nullable): the image name; %NULL derives it from the file name
 * @chunk_size: bytes per chunk, 0 for the default (1 MiB)
 *
 * Imports the disk an image file holds: a raw disk image, one compressed
 * with zstd, xz, gzip or bzip2, or a qcow2 image (told by their first bytes;
 * shoal-image-source.c). @path may be an http:// or https:// URL, ending
 * with #sha256=HEX to have the file checked (shoal-image-fetch.c). Importing the same image
 * again is harmless and returns the same id.
 *
 * Returns: the image id, or %NULL with @error set
 */
gchar *
shoal_image_files_import (const gchar              *root,
                          const gchar              *path,
                          const gchar              *name,
                          guint32                   chunk_size,
                          ShoalImportStats         *stats,
                          ShoalImportProgressFunc   progress,
                          gpointer                  progress_data,
                          GCancellable             *cancellable,
                          GError                  **error)
{
  gboolean is_uri = shoal_image_files_is_uri (path);
  g_autofree gchar *url_name = is_uri ? shoal_image_fetch_name (path) : NULL;
  g_autofree gchar *derived = name == NULL ? name_from_path (is_uri ? url_name : path) : NULL;
  g_autofree gchar *download = NULL;
  g_autofree gchar *shown = is_uri ? shoal_image_fetch_display (path) : g_strdup (path);
  ShoalImportStats local_stats = { 0 };
  g_autoptr(ShoalImageSource) src = NULL;
  Import imp = { .root = root, .stats = stats != NULL ? stats : &local_stats };
  g_autoptr(ShoalManifest) m = NULL;
  guint8 image_digest[SHOAL_MANIFEST_DIGEST_LEN];
  gchar *id;
  gboolean ok;
  int lock_fd;

  name = name != NULL ? name : derived;
  imp.chunk_size = chunk_size != 0 ? chunk_size : SHOAL_MANIFEST_DEFAULT_CHUNK_SIZE;
  memset (imp.stats, 0, sizeof *imp.stats);
  if (!check_import_args (name, imp.chunk_size, error) || !shoal_image_files_ensure (root, error))
    return NULL;
  lock_fd = shoal_image_files_lock (root, LOCK_SH, error);
  if (lock_fd < 0)
    return NULL;
  imp.digests = g_array_new (FALSE, FALSE, SHOAL_MANIFEST_DIGEST_LEN);
  imp.zero = g_array_new (FALSE, FALSE, 1);
  if (is_uri)
    {
      /* the file is deleted once open: nothing is left behind, whatever happens */
      download = shoal_image_fetch (root, path, progress, progress_data, cancellable, error);
      if (download != NULL)
        {
          int fd = open (download, O_RDONLY | O_CLOEXEC);
          int saved = errno;

          g_unlink (download);
          if (fd >= 0)
            src = shoal_image_source_open_fd (fd, shown, error);
          else
            g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE, _("Cannot open the download of %s: %s"),
                         shown, g_strerror (saved));
        }
    }
  else
    src = shoal_image_source_open (path, error);
  ok = src != NULL &&
       import_chunks (&imp, src, image_digest, progress, progress_data, cancellable, error);
  imp.stats->bytes_read = src != NULL ? shoal_image_source_bytes_read (src) : 0;
  g_clear_pointer (&src, shoal_image_source_free);
  if (ok && imp.size == 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA, _("Image %s is empty"), shown);
      ok = FALSE;
    }
  if (ok)
    m = build_manifest (&imp, name, image_digest, error);
  g_array_unref (imp.digests);
  g_array_unref (imp.zero);
  id = m != NULL ? write_manifest (root, m, error) : NULL;
  close (lock_fd);
  return id;
}
