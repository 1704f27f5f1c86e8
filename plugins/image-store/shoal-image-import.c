/* shoal-image-import.c: importing raw, zstd and qcow2 images into the store,
 * and removing them
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
#include <zstd.h>

#include "shoal-error.h"
#include "shoal-image-files.h"
#include "shoal-image-files-private.h"
#include "shoal-image-qcow2.h"

#define N_BUFFERS 4

/* --- The source: a raw image, a zstd stream or a qcow2 disk -------------------- */

typedef struct {
  int             fd;
  const gchar    *path;
  guint64         file_size;
  guint64         consumed;      /* position in the source file */
  guint64         read;          /* bytes read (a raw image's holes are not) */
  guint64         data_start;    /* raw: the current extent of data, from */
  guint64         data_end;      /* SEEK_DATA and SEEK_HOLE */
  ZSTD_DCtx      *dctx;
  guint8         *in_buf;
  gsize           in_cap;
  ZSTD_inBuffer   in;
  gboolean        in_eof;
  gsize           last_ret;      /* 0 when the last zstd frame ended */
  ShoalQcow2     *qcow2;
  guint64         virtual_pos;   /* qcow2: where in its virtual disk */
} Source;

static void
source_clear (Source *s)
{
  if (s->fd >= 0)
    close (s->fd);
  ZSTD_freeDCtx (s->dctx);
  g_free (s->in_buf);
  g_clear_pointer (&s->qcow2, shoal_qcow2_free);
}

static gboolean
source_open (Source       *s,
             const gchar  *path,
             GError      **error)
{
  static const guint8 zstd_magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
  guint8 magic[4] = { 0 };
  struct stat st;

  s->fd = open (path, O_RDONLY | O_CLOEXEC);
  s->path = path;
  if (s->fd < 0 || fstat (s->fd, &st) < 0)
    {
      int saved = errno;

      g_set_error (error, SHOAL_ERROR, saved == ENOENT ? SHOAL_ERROR_NOT_FOUND : SHOAL_ERROR_FAILED,
                   _("Cannot open image %s: %s"), path, g_strerror (saved));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("Image %s is not a regular file"), path);
      return FALSE;
    }
  s->file_size = (guint64) st.st_size;
  posix_fadvise (s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  if (pread (s->fd, magic, sizeof magic, 0) == sizeof magic && memcmp (magic, zstd_magic, 4) == 0)
    {
      s->dctx = ZSTD_createDCtx ();
      s->in_cap = ZSTD_DStreamInSize ();
      s->in_buf = g_malloc (s->in_cap);
      s->in.src = s->in_buf;
      s->last_ret = 1;
      g_debug ("%s is zstd-compressed", path);
    }
  else if (shoal_qcow2_probe (magic, sizeof magic))
    {
      s->qcow2 = shoal_qcow2_open (s->fd, s->file_size, path, error);
      return s->qcow2 != NULL;
    }
  return TRUE;
}

static gssize
read_some (Source  *s,
           guint8  *buf,
           gsize    len,
           GError **error)
{
  for (;;)
    {
      /* at the position: a raw image skips its holes */
      gssize n = pread (s->fd, buf, len, (off_t) s->consumed);

      if (n >= 0)
        {
          s->consumed += (guint64) n;
          s->read += (guint64) n;
          return n;
        }
      if (errno != EINTR)
        {
          int saved = errno;

          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                       _("Cannot read image %s: %s"), s->path, g_strerror (saved));
          return -1;
        }
    }
}

/* A raw image up to the size it had when opened. The holes of a sparse
 * file are zeros that are not read: a 20 GiB disk image holding 3 GiB
 * costs the reads of 3 GiB (the whole-image hash still covers every byte) */
static gssize
fill_raw (Source  *s,
          guint8  *buf,
          gsize    len,
          GError **error)
{
  gsize done = 0;

  while (done < len && s->consumed < s->file_size)
    {
      guint64 want = MIN ((guint64) (len - done), s->file_size - s->consumed);
      gssize n;

      if (s->consumed >= s->data_end)
        shoal_manifest_data_extent (s->fd, s->consumed, s->file_size, &s->data_start, &s->data_end);
      if (s->consumed < s->data_start)
        {
          n = (gssize) MIN (want, s->data_start - s->consumed);
          memset (buf + done, 0, (gsize) n);
          s->consumed += (guint64) n;
        }
      else
        {
          n = read_some (s, buf + done, (gsize) MIN (want, s->data_end - s->consumed), error);
          if (n < 0)
            return -1;
          if (n == 0)
            break;      /* the file shrank */
        }
      done += (gsize) n;
    }
  return (gssize) done;
}

static gssize
fill_zstd (Source  *s,
           guint8  *buf,
           gsize    len,
           GError **error)
{
  ZSTD_outBuffer out = { buf, len, 0 };

  while (out.pos < out.size)
    {
      if (s->in.pos == s->in.size && !s->in_eof)
        {
          gssize n = read_some (s, s->in_buf, s->in_cap, error);

          if (n < 0)
            return -1;
          s->in.size = (gsize) n;
          s->in.pos = 0;
          s->in_eof = n == 0;
        }
      if (s->in.pos == s->in.size && s->in_eof)
        {
          if (s->last_ret != 0)
            {
              g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                           _("Image %s is a truncated zstd stream"), s->path);
              return -1;
            }
          break;
        }
      s->last_ret = ZSTD_decompressStream (s->dctx, &out, &s->in);
      if (ZSTD_isError (s->last_ret))
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                       _("Cannot decompress image %s: %s"), s->path,
                       ZSTD_getErrorName (s->last_ret));
          return -1;
        }
    }
  return (gssize) out.pos;
}

static gssize
fill_qcow2 (Source  *s,
            guint8  *buf,
            gsize    len,
            GError **error)
{
  gsize n = (gsize) MIN ((guint64) len, shoal_qcow2_get_size (s->qcow2) - s->virtual_pos);

  if (!shoal_qcow2_read (s->qcow2, s->virtual_pos, buf, n, error))
    return -1;
  s->virtual_pos += n;
  return (gssize) n;
}

/* Fills @buf up to @len bytes; fewer only at the end of the image. */
static gssize
source_fill (Source  *s,
             guint8  *buf,
             gsize    len,
             GError **error)
{
  if (s->qcow2 != NULL)
    return fill_qcow2 (s, buf, len, error);
  return s->dctx != NULL ? fill_zstd (s, buf, len, error) : fill_raw (s, buf, len, error);
}

/* how far the import is, of *total */
static guint64
source_position (Source  *s,
                 guint64 *total)
{
  if (s->qcow2 != NULL)
    {
      *total = shoal_qcow2_get_size (s->qcow2);
      return s->virtual_pos;
    }
  *total = s->file_size;
  return s->consumed;
}

/* bytes read from the file (not the holes of a sparse one, nor a qcow2
 * image's unallocated clusters) */
static guint64
source_bytes_read (Source *s)
{
  return s->qcow2 != NULL ? shoal_qcow2_get_bytes_read (s->qcow2) : s->read;
}

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

static gboolean
write_all (int           fd,
           const guint8 *data,
           gsize         len)
{
  while (len > 0)
    {
      gssize n = write (fd, data, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

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
  written_ok = fd >= 0 && write_all (fd, data, len);
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

static gboolean
import_chunks (Import                  *imp,
               Source                  *src,
               guint8                  *image_digest,
               ShoalImportProgressFunc  progress,
               gpointer                 progress_data,
               GCancellable            *cancellable,
               GError                 **error)
{
  Hasher h = { 0 };
  gboolean ok = TRUE;

  hasher_start (&h, imp->chunk_size);
  while (ok)
    {
      Buffer *b = g_async_queue_pop (h.free);
      gssize n;

      ok = !g_cancellable_set_error_if_cancelled (cancellable, error);
      n = ok ? source_fill (src, b->data, imp->chunk_size, error) : -1;
      if (n <= 0)
        {
          ok = n == 0;
          g_async_queue_push (h.free, b);
          break;
        }
      b->len = (gsize) n;
      ok = import_chunk (imp, b->data, b->len, error);
      g_async_queue_push (h.todo, b);
      if (progress != NULL)
        {
          guint64 total, done = source_position (src, &total);

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
  int fd;

  shoal_manifest_compute_id (text, len, id);
  path = shoal_image_files_manifest_path (root, id);
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
  static const gchar *suffixes[] = { ".zst", ".qcow2", ".img", ".raw" };
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
 * Imports a raw disk image, a zstd-compressed one, or the disk a qcow2
 * image holds (detected by their magic numbers). Importing the same image
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
  g_autofree gchar *derived = name == NULL ? name_from_path (path) : NULL;
  ShoalImportStats local_stats = { 0 };
  Source src = { .fd = -1 };
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
  ok = source_open (&src, path, error) &&
       import_chunks (&imp, &src, image_digest, progress, progress_data, cancellable, error);
  imp.stats->bytes_read = source_bytes_read (&src);
  source_clear (&src);
  if (ok && imp.size == 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA, _("Image %s is empty"), path);
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
