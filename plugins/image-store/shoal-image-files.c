/* shoal-image-files.c: the image store on disk (no GType, blocking calls)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "shoal-error.h"
#include "shoal-image-files.h"
#include "shoal-image-files-private.h"

void
shoal_image_info_free (ShoalImageInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->id);
  g_free (info->name);
  g_free (info->image_sha256);
  g_free (info);
}

ShoalImageInfo *
shoal_image_info_copy (const ShoalImageInfo *info)
{
  ShoalImageInfo *copy = g_memdup2 (info, sizeof (ShoalImageInfo));

  copy->id = g_strdup (info->id);
  copy->name = g_strdup (info->name);
  copy->image_sha256 = g_strdup (info->image_sha256);
  return copy;
}

/**
 * shoal_image_info_to_variant:
 *
 * Returns: (transfer floating): an `a{sv}` with the keys id, name, size,
 *   chunk-size, chunks, zero-chunks, data-bytes, image-sha256, imported
 */
GVariant *
shoal_image_info_to_variant (const ShoalImageInfo *info)
{
  g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&b, "{sv}", "id", g_variant_new_string (info->id));
  g_variant_builder_add (&b, "{sv}", "name", g_variant_new_string (info->name));
  g_variant_builder_add (&b, "{sv}", "size", g_variant_new_uint64 (info->size));
  g_variant_builder_add (&b, "{sv}", "chunk-size", g_variant_new_uint32 (info->chunk_size));
  g_variant_builder_add (&b, "{sv}", "chunks", g_variant_new_uint64 (info->n_chunks));
  g_variant_builder_add (&b, "{sv}", "zero-chunks", g_variant_new_uint64 (info->n_zero_chunks));
  g_variant_builder_add (&b, "{sv}", "data-bytes", g_variant_new_uint64 (info->data_bytes));
  g_variant_builder_add (&b, "{sv}", "image-sha256", g_variant_new_string (info->image_sha256));
  g_variant_builder_add (&b, "{sv}", "imported", g_variant_new_int64 (info->imported));
  return g_variant_builder_end (&b);
}

gchar *
shoal_image_files_default_root (const gchar *state_dir)
{
  return g_build_filename (state_dir, "image-store", NULL);
}

gboolean
shoal_image_files_ensure (const gchar  *root,
                          GError      **error)
{
  static const gchar *subdirs[] = { "chunks", "images", "tmp" };

  for (gsize i = 0; i < G_N_ELEMENTS (subdirs); i++)
    {
      g_autofree gchar *dir = g_build_filename (root, subdirs[i], NULL);

      if (g_mkdir_with_parents (dir, 0755) < 0)
        {
          int saved = errno;

          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
                       _("Cannot create image store folder %s: %s"), dir, g_strerror (saved));
          return FALSE;
        }
    }
  return TRUE;
}

gchar *
shoal_image_files_chunk_path (const gchar *root,
                              const gchar *chunk_hex)
{
  gchar prefix[3] = { chunk_hex[0], chunk_hex[1], '\0' };

  return g_build_filename (root, "chunks", prefix, chunk_hex, NULL);
}

gchar *
shoal_image_files_manifest_path (const gchar *root,
                                 const gchar *id)
{
  g_autofree gchar *file = g_strconcat (id, ".manifest", NULL);

  return g_build_filename (root, "images", file, NULL);
}

/* Takes the store lock (LOCK_SH or LOCK_EX); returns the fd to close, or -1. */
int
shoal_image_files_lock (const gchar  *root,
                        int           operation,
                        GError      **error)
{
  g_autofree gchar *path = g_build_filename (root, "store.lock", NULL);
  int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

  if (fd < 0 || flock (fd, operation) < 0)
    {
      int saved = errno;

      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
                   _("Cannot lock the image store %s: %s"), path, g_strerror (saved));
      if (fd >= 0)
        close (fd);
      return -1;
    }
  return fd;
}

static gboolean
check_id (const gchar  *id,
          GError      **error)
{
  if (shoal_manifest_is_valid_id (id))
    return TRUE;
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
               _("“%s” is not an image id (64 lowercase hex digits)"), id);
  return FALSE;
}

/* The manifest text, after checking that its SHA-256 is @id. */
GBytes *
shoal_image_files_load_manifest_bytes (const gchar  *root,
                                       const gchar  *id,
                                       GError      **error)
{
  g_autofree gchar *path = NULL;
  g_autofree gchar *text = NULL;
  gsize len = 0;
  char actual[SHOAL_MANIFEST_HEX_LEN + 1];
  g_autoptr(GError) local_error = NULL;

  if (!check_id (id, error))
    return NULL;
  path = shoal_image_files_manifest_path (root, id);
  if (!g_file_get_contents (path, &text, &len, &local_error))
    {
      if (g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("No image with id %s"), id);
      else
        g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
                     _("Cannot read manifest of image %s: %s"), id, local_error->message);
      return NULL;
    }
  shoal_manifest_compute_id (text, len, actual);
  if (g_strcmp0 (actual, id) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   _("Manifest %s is corrupt: its SHA-256 is %s"), path, actual);
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&text), len);
}

ShoalManifest *
shoal_image_files_load_manifest (const gchar  *root,
                                 const gchar  *id,
                                 GError      **error)
{
  g_autoptr(GBytes) bytes = shoal_image_files_load_manifest_bytes (root, id, error);
  ShoalManifestError merr = { 0 };
  ShoalManifest *m;
  gsize len = 0;
  const gchar *data;

  if (bytes == NULL)
    return NULL;
  data = g_bytes_get_data (bytes, &len);
  m = shoal_manifest_parse (data, len, &merr);
  if (m == NULL)
    g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                 _("Manifest of image %s is invalid at line %u: %s"), id, merr.line, merr.message);
  return m;
}

static ShoalImageInfo *
info_new (const gchar         *id,
          const ShoalManifest *m,
          gint64               imported)
{
  ShoalImageInfo *info = g_new0 (ShoalImageInfo, 1);
  char hex[SHOAL_MANIFEST_HEX_LEN + 1];
  guint64 n_data;

  shoal_manifest_digest_to_hex (m->image_sha256, hex);
  n_data = shoal_manifest_count_data_chunks (m, &info->data_bytes);
  info->id = g_strdup (id);
  info->name = g_strdup (m->name);
  info->size = m->size;
  info->chunk_size = m->chunk_size;
  info->n_chunks = m->n_chunks;
  info->n_zero_chunks = m->n_chunks - n_data;
  info->image_sha256 = g_strdup (hex);
  info->imported = imported;
  return info;
}

static ShoalImageInfo *
inspect_id (const gchar  *root,
            const gchar  *id,
            GError      **error)
{
  g_autoptr(ShoalManifest) m = shoal_image_files_load_manifest (root, id, error);
  g_autofree gchar *path = shoal_image_files_manifest_path (root, id);
  GStatBuf st;

  if (m == NULL)
    return NULL;
  if (g_stat (path, &st) < 0)
    st.st_mtime = 0;
  return info_new (id, m, st.st_mtime);
}

static gint
compare_imported (gconstpointer a,
                  gconstpointer b)
{
  const ShoalImageInfo *ia = *(ShoalImageInfo * const *) a;
  const ShoalImageInfo *ib = *(ShoalImageInfo * const *) b;

  if (ia->imported != ib->imported)
    return ia->imported < ib->imported ? -1 : 1;
  return g_strcmp0 (ia->id, ib->id);
}

/* The ids of the images in @root, from their manifests' file names, in
 * no order. A manifest file not named by an id is an error when @strict
 * (whoever needs every image cannot tell what it holds), else skipped
 * with a warning. */
GPtrArray *
shoal_image_files_list_ids (const gchar  *root,
                            gboolean      strict,
                            GError      **error)
{
  g_autofree gchar *dir_path = g_build_filename (root, "images", NULL);
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GDir) dir = g_dir_open (dir_path, 0, &local_error);
  const gchar *entry;

  if (dir == NULL)
    {
      if (g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return g_steal_pointer (&ids);
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
                   _("Cannot list images in %s: %s"), dir_path, local_error->message);
      return NULL;
    }
  while ((entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *id = NULL;

      if (!g_str_has_suffix (entry, ".manifest"))
        continue;
      id = g_strndup (entry, strlen (entry) - strlen (".manifest"));
      if (shoal_manifest_is_valid_id (id))
        g_ptr_array_add (ids, g_steal_pointer (&id));
      else if (strict)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
                       _("%s/%s is not named by an image id: cannot tell which chunks it uses"),
                       dir_path, entry);
          return NULL;
        }
      else
        g_warning ("Skipping image %s: not named by an image id", entry);
    }
  return g_steal_pointer (&ids);
}

/* Every image, oldest import first. A manifest that cannot be loaded is
 * an error when @strict, else skipped with a warning. */
static GPtrArray *
list_images (const gchar  *root,
             gboolean      strict,
             GError      **error)
{
  g_autoptr(GPtrArray) ids = shoal_image_files_list_ids (root, strict, error);
  g_autoptr(GPtrArray) images = g_ptr_array_new_with_free_func ((GDestroyNotify) shoal_image_info_free);

  if (ids == NULL)
    return NULL;
  for (guint i = 0; i < ids->len; i++)
    {
      const gchar *id = g_ptr_array_index (ids, i);
      g_autoptr(GError) item_error = NULL;
      ShoalImageInfo *info = inspect_id (root, id, &item_error);

      if (info == NULL && strict)
        {
          g_propagate_error (error, g_steal_pointer (&item_error));
          return NULL;
        }
      if (info == NULL)
        {
          g_warning ("Skipping image %s: %s", id, item_error->message);
          continue;
        }
      g_ptr_array_add (images, info);
    }
  g_ptr_array_sort (images, compare_imported);
  return g_steal_pointer (&images);
}

/* Every image, oldest import first. A corrupt manifest is skipped with a
 * warning rather than hiding every other image. */
GPtrArray *
shoal_image_files_list (const gchar  *root,
                        GError      **error)
{
  return list_images (root, FALSE, error);
}

/* Every image, oldest import first, or an error when any manifest cannot
 * be loaded: for whoever removes images by what the others are (pruning) */
GPtrArray *
shoal_image_files_list_strict (const gchar  *root,
                               GError      **error)
{
  return list_images (root, TRUE, error);
}

/* whether @str can be the start of an image id given where a name is
 * expected: SHOAL_IMAGE_FILES_MIN_ID_PREFIX to 63 hex digits */
gboolean
shoal_image_files_is_id_prefix (const gchar *str)
{
  gsize len = strlen (str);

  if (len < SHOAL_IMAGE_FILES_MIN_ID_PREFIX || len >= SHOAL_MANIFEST_HEX_LEN)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isxdigit (str[i]))
      return FALSE;
  return TRUE;
}

/* the image of @images (oldest first) whose id starts with @prefix, or
 * NULL with NOT_FOUND, or INVALID_ARGUMENT listing the candidates when
 * several do */
static ShoalImageInfo *
steal_by_id_prefix (GPtrArray    *images,
                    const gchar  *prefix,
                    GError      **error)
{
  g_autofree gchar *lower = g_ascii_strdown (prefix, -1);
  g_autoptr(GString) candidates = g_string_new (NULL);
  gint found = -1;
  guint n = 0;

  for (guint i = 0; i < images->len; i++)
    {
      ShoalImageInfo *info = g_ptr_array_index (images, i);

      if (!g_str_has_prefix (info->id, lower))
        continue;
      found = (gint) i;
      n++;
      g_string_append_printf (candidates, "%s%s (%s)", n > 1 ? ", " : "", info->id, info->name);
    }
  if (n == 1)
    return g_ptr_array_steal_index (images, (guint) found);
  if (n == 0)
    g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                 _("No image named “%s” or with an id starting with it"), prefix);
  else
    g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                 _("“%s” starts the ids of %u images: %s; give more of the id"), prefix, n, candidates->str);
  return NULL;
}

/* A full id names that image; anything else is a name and means the
 * newest image imported under that name; failing that, 8 to 63 hex
 * digits are the start of one image's id (an error listing the images
 * when several ids start so). */
ShoalImageInfo *
shoal_image_files_inspect (const gchar  *root,
                           const gchar  *id_or_name,
                           GError      **error)
{
  g_autoptr(GPtrArray) images = NULL;

  if (shoal_manifest_is_valid_id (id_or_name))
    return inspect_id (root, id_or_name, error);
  images = shoal_image_files_list (root, error);
  if (images == NULL)
    return NULL;
  for (guint i = images->len; i > 0; i--)
    {
      ShoalImageInfo *info = g_ptr_array_index (images, i - 1);

      if (g_strcmp0 (info->name, id_or_name) == 0)
        return g_ptr_array_steal_index (images, i - 1);
    }
  if (shoal_image_files_is_id_prefix (id_or_name))
    return steal_by_id_prefix (images, id_or_name, error);
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND, _("No image named “%s”"), id_or_name);
  return NULL;
}

gchar *
shoal_image_files_resolve (const gchar  *root,
                           const gchar  *id_or_name,
                           GError      **error)
{
  g_autoptr(ShoalImageInfo) info = shoal_image_files_inspect (root, id_or_name, error);

  return info != NULL ? g_steal_pointer (&info->id) : NULL;
}

/* Reads chunk @index into @buffer (chunk_length bytes) and verifies it;
 * zero chunks are filled in without touching the disk. */
gboolean
shoal_image_files_read_chunk (const gchar         *root,
                              const ShoalManifest *manifest,
                              guint64              index,
                              guint8              *buffer,
                              GError             **error)
{
  const guint8 *digest = shoal_manifest_chunk_digest (manifest, index);
  guint32 len = shoal_manifest_chunk_length (manifest, index);
  char hex[SHOAL_MANIFEST_HEX_LEN + 1];
  g_autofree gchar *path = NULL;
  ShoalManifestError merr = { 0 };
  gsize got = 0;

  if (digest == NULL)
    {
      memset (buffer, 0, len);
      return TRUE;
    }
  shoal_manifest_digest_to_hex (digest, hex);
  path = shoal_image_files_chunk_path (root, hex);
  if (!shoal_image_files_read_exact (path, buffer, len, &got, error))
    return FALSE;
  if (shoal_manifest_verify_chunk (manifest, index, buffer, got, &merr) < 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   _("Chunk file %s is corrupt: %s"), path, merr.message);
      return FALSE;
    }
  return TRUE;
}

/* Reads every chunk back and checks it and the SHA-256 of the whole image. */
gboolean
shoal_image_files_verify (const gchar   *root,
                          const gchar   *id,
                          GCancellable  *cancellable,
                          GError       **error)
{
  g_autoptr(ShoalManifest) m = shoal_image_files_load_manifest (root, id, error);
  g_autofree guint8 *buffer = NULL;
  ShoalManifestHash *hash;
  guint8 digest[SHOAL_MANIFEST_DIGEST_LEN];
  gboolean ok = TRUE;

  if (m == NULL)
    return FALSE;
  buffer = g_malloc (m->chunk_size);
  hash = shoal_manifest_hash_new ();
  for (guint64 i = 0; ok && i < m->n_chunks; i++)
    {
      g_autoptr(GError) local = NULL;

      ok = !g_cancellable_set_error_if_cancelled (cancellable, error) &&
           shoal_image_files_read_chunk (root, m, i, buffer, &local);
      if (!ok && local != NULL)
        {
          /* a chunk that is gone is damage to this image, not an unknown image */
          if (g_error_matches (local, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND))
            g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                         _("Chunk %llu of image %s is missing: %s"), (unsigned long long) i, id, local->message);
          else
            g_propagate_prefixed_error (error, g_steal_pointer (&local),
                                        _("Chunk %llu of image %s: "), (unsigned long long) i, id);
        }
      if (ok)
        shoal_manifest_hash_update (hash, buffer, shoal_manifest_chunk_length (m, i));
    }
  if (ok)
    shoal_manifest_hash_final (hash, digest);
  shoal_manifest_hash_free (hash);
  if (ok && memcmp (digest, m->image_sha256, sizeof digest) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   _("Image %s does not match its SHA-256 although every chunk does"), id);
      ok = FALSE;
    }
  return ok;
}

gboolean
shoal_image_files_read_exact (const gchar  *path,
                              guint8       *buffer,
                              gsize         length,
                              gsize        *got,
                              GError      **error)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  gsize done = 0;

  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, SHOAL_ERROR, saved == ENOENT ? SHOAL_ERROR_NOT_FOUND : SHOAL_ERROR_STORE,
                   _("Cannot open %s: %s"), path, g_strerror (saved));
      return FALSE;
    }
  while (done < length)
    {
      gssize n = read (fd, buffer + done, length - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      done += (gsize) n;
    }
  close (fd);
  *got = done;
  return TRUE;
}

/**
 * shoal_image_files_write_all:
 *
 * Writes all @len bytes of @data to @fd, again after EINTR and short writes.
 *
 * Returns: %TRUE, or %FALSE with errno set
 */
gboolean
shoal_image_files_write_all (int           fd,
                             const guint8 *data,
                             gsize         len)
{
  while (len > 0)
    {
      gssize n = write (fd, data, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0)
        errno = EIO;
      if (n <= 0)
        return FALSE;
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}
