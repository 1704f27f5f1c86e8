/* shoal-agent-initramfs.c: writes the parts of a device's agent initramfs
 * with libarchive (newc, zstd or gzip)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-agent-initramfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shoal-error.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_MD_CTX, EVP_MD_CTX_free)

typedef struct archive ShoalArchiveWriter;
typedef struct archive_entry ShoalArchiveEntry;

static void
shoal_archive_writer_free (ShoalArchiveWriter *a)
{
  archive_write_free (a);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalArchiveWriter, shoal_archive_writer_free)

typedef struct archive ShoalArchiveReader;

static void
shoal_archive_reader_free (ShoalArchiveReader *r)
{
  archive_read_free (r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalArchiveReader, shoal_archive_reader_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalArchiveEntry, archive_entry_free)

gboolean
shoal_agent_compression_from_string (const gchar *str, ShoalAgentCompression *out)
{
  if (str == NULL || g_strcmp0 (str, "zstd") == 0)
    *out = SHOAL_AGENT_COMPRESSION_ZSTD;
  else if (g_strcmp0 (str, "gzip") == 0)
    *out = SHOAL_AGENT_COMPRESSION_GZIP;
  else
    return FALSE;
  return TRUE;
}

static gchar *
hex_of (const guchar *md, guint len)
{
  GString *s = g_string_sized_new (len * 2);

  for (guint i = 0; i < len; i++)
    g_string_append_printf (s, "%02x", md[i]);
  return g_string_free (s, FALSE);
}

gchar *
shoal_agent_sha256_data (const void *data, gsize len)
{
  guchar md[EVP_MAX_MD_SIZE];
  guint mdlen = 0;

  EVP_Digest (data, len, md, &mdlen, EVP_sha256 (), NULL);
  return hex_of (md, mdlen);
}

gchar *
shoal_agent_sha256_file (const gchar *path, guint64 *size, GError **error)
{
  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  guchar md[EVP_MAX_MD_SIZE];
  guint mdlen = 0;
  g_autofree guchar *buf = g_malloc (1 << 20);
  guint64 total = 0;
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  gssize n;

  if (fd < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   "opening %s: %s", path, g_strerror (errno));
      return NULL;
    }
  EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL);
  while ((n = read (fd, buf, 1 << 20)) > 0)
    {
      EVP_DigestUpdate (ctx, buf, (gsize) n);
      total += (guint64) n;
    }
  close (fd);
  if (n < 0)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO, "reading %s", path);
      return NULL;
    }
  EVP_DigestFinal_ex (ctx, md, &mdlen);
  if (size != NULL)
    *size = total;
  return hex_of (md, mdlen);
}

static void
append_stamp (GString *s, const gchar *dir, const gchar *rel)
{
  g_autofree gchar *path = g_build_filename (dir, rel, NULL);
  struct stat st;

  if (stat (path, &st) != 0)
    {
      g_string_append_printf (s, "%s missing\n", rel);
      return;
    }
  g_string_append_printf (s, "%s %" G_GINT64_FORMAT " %" G_GINT64_FORMAT ".%09ld %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n",
                          rel, (gint64) st.st_size, (gint64) st.st_mtim.tv_sec, (long) st.st_mtim.tv_nsec,
                          (guint64) st.st_dev, (guint64) st.st_ino);
}

/**
 * shoal_agent_initramfs_tree_stamp:
 * @modules: (element-type utf8): module names, as for the base part
 *
 * What identifies the kernel tree's files a base part is built from: the
 * tree's path, and the size, modification time, device and inode of its
 * modules.dep and of each module file, so that another tree of the same
 * release name, or a module or modules.dep replaced in place, gives
 * another cache key.
 */
gchar *
shoal_agent_initramfs_tree_stamp (ShoalModIndex *index, GPtrArray *modules)
{
  const gchar *dir = shoal_mod_index_get_dir (index);
  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "tree %s\n", dir);
  append_stamp (s, dir, "modules.dep");
  for (guint i = 0; i < modules->len; i++)
    {
      const gchar *rel = shoal_mod_index_get_path (index, g_ptr_array_index (modules, i));

      if (rel != NULL)
        append_stamp (s, dir, rel);
    }
  return g_string_free (s, FALSE);
}

gchar *
shoal_agent_initramfs_cache_key (const gchar           *agent_binary_sha256,
                                 const gchar           *release,
                                 const gchar           *tree_stamp,
                                 GPtrArray             *modules,
                                 ShoalAgentCompression  compression)
{
  g_autoptr(GString) in = g_string_new ("shoal-agent-base-v3\n");

  g_string_append_printf (in, "agent %s\nkernel %s\ncompression %d\n%smodules",
                          agent_binary_sha256, release, compression, tree_stamp);
  for (guint i = 0; i < modules->len; i++)
    g_string_append_printf (in, " %s", (const gchar *) g_ptr_array_index (modules, i));
  return shoal_agent_sha256_data (in->str, in->len);
}

/* Writes to @fd when it is not -1 (the caller closes it), else creates @path */
static ShoalArchiveWriter *
open_writer_fd (const gchar *path, gint fd, ShoalAgentCompression compression, GError **error)
{
  g_autoptr(ShoalArchiveWriter) a = archive_write_new ();
  int r;

  archive_write_set_format_cpio_newc (a);
  r = compression == SHOAL_AGENT_COMPRESSION_ZSTD ? archive_write_add_filter_zstd (a)
                                                  : archive_write_add_filter_gzip (a);
  if (r == ARCHIVE_OK && compression == SHOAL_AGENT_COMPRESSION_GZIP)
    r = archive_write_set_filter_option (a, "gzip", "timestamp", NULL);
  if (r == ARCHIVE_OK)
    r = archive_write_set_bytes_in_last_block (a, 1);
  if (r == ARCHIVE_OK)
    r = fd >= 0 ? archive_write_open_fd (a, fd) : archive_write_open_filename (a, path);
  if (r != ARCHIVE_OK)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED, "writing %s: %s", path, archive_error_string (a));
      return NULL;
    }
  return g_steal_pointer (&a);
}

static ShoalArchiveWriter *
open_writer (const gchar *path, ShoalAgentCompression compression, GError **error)
{
  return open_writer_fd (path, -1, compression, error);
}

static gboolean
add_entry (ShoalArchiveWriter *a, const gchar *name, mode_t type, mode_t perm,
           const void *data, gsize size, GError **error)
{
  g_autoptr(ShoalArchiveEntry) e = archive_entry_new ();

  archive_entry_set_pathname (e, name);
  archive_entry_set_filetype (e, type);
  archive_entry_set_perm (e, perm);
  archive_entry_set_size (e, type == AE_IFREG ? (la_int64_t) size : 0);
  archive_entry_set_mtime (e, 0, 0);
  archive_entry_set_nlink (e, type == AE_IFDIR ? 2 : 1);
  if (archive_write_header (a, e) != ARCHIVE_OK
      || (size > 0 && archive_write_data (a, data, size) != (la_ssize_t) size))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED, "adding %s to the initramfs: %s",
                   name, archive_error_string (a));
      return FALSE;
    }
  return TRUE;
}

/* Adds @name and the directories above it, each once */
static gboolean
add_dirs (ShoalArchiveWriter *a, GHashTable *seen, const gchar *name, GError **error)
{
  g_autofree gchar *dir = g_path_get_dirname (name);

  if (g_strcmp0 (dir, ".") == 0 || g_hash_table_contains (seen, dir))
    return TRUE;
  if (!add_dirs (a, seen, dir, error))
    return FALSE;
  g_hash_table_add (seen, g_strdup (dir));
  return add_entry (a, dir, AE_IFDIR, 0755, NULL, 0, error);
}

static gboolean
add_file (ShoalArchiveWriter *a, GHashTable *seen, const gchar *name, const gchar *src,
          mode_t perm, GError **error)
{
  g_autofree gchar *contents = NULL;
  gsize len = 0;

  if (!g_file_get_contents (src, &contents, &len, error))
    {
      g_prefix_error (error, "adding %s to the initramfs: ", name);
      return FALSE;
    }
  return add_dirs (a, seen, name, error) && add_entry (a, name, AE_IFREG, perm, contents, len, error);
}

static gboolean
add_data (ShoalArchiveWriter *a, GHashTable *seen, const gchar *name, const gchar *text,
          mode_t perm, GError **error)
{
  return add_dirs (a, seen, name, error)
         && add_entry (a, name, AE_IFREG, perm, text, strlen (text), error);
}

static gboolean
close_writer (ShoalArchiveWriter *a, const gchar *path, GError **error)
{
  if (archive_write_close (a) != ARCHIVE_OK)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED, "writing %s: %s", path, archive_error_string (a));
      return FALSE;
    }
  return TRUE;
}

/* The largest module decompressed (the biggest in Debian's kernels are a
 * few MiB) */
#define MAX_MODULE_SIZE (256u << 20)

static const gchar *const module_compressions[] = { ".ko.xz", ".ko.zst", ".ko.gz" };
static const int module_filters[] = { ARCHIVE_FILTER_XZ, ARCHIVE_FILTER_ZSTD, ARCHIVE_FILTER_GZIP };

/* A compressed module's path with the ".ko" it decompresses to; NULL for
 * an uncompressed one */
static gchar *
decompressed_name (const gchar *rel)
{
  for (guint i = 0; i < G_N_ELEMENTS (module_compressions); i++)
    {
      if (g_str_has_suffix (rel, module_compressions[i]))
        return g_strndup (rel, strlen (rel) - strlen (module_compressions[i]) + 3);
    }
  return NULL;
}

/* The name a module has in the initramfs: compressed ones are stored
 * decompressed */
static gchar *
module_name (const gchar *rel)
{
  gchar *plain = decompressed_name (rel);

  return plain != NULL ? plain : g_strdup (rel);
}

/* Decompresses @src (xz, zstd or gzip, as its name says, read with
 * libarchive's raw format) */
static GBytes *
decompress_module (const gchar *src, GError **error)
{
  int filter = ARCHIVE_FILTER_NONE;
  g_autoptr(ShoalArchiveReader) r = archive_read_new ();
  g_autoptr(GByteArray) out = g_byte_array_new ();
  struct archive_entry *e = NULL;
  guint8 buf[65536];
  la_ssize_t n;

  for (guint i = 0; i < G_N_ELEMENTS (module_compressions); i++)
    {
      if (g_str_has_suffix (src, module_compressions[i]))
        filter = module_filters[i];
    }
  archive_read_support_filter_all (r);
  archive_read_support_format_raw (r);
  if (archive_read_open_filename (r, src, sizeof buf) != ARCHIVE_OK || archive_read_next_header (r, &e) != ARCHIVE_OK)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED, "decompressing %s: %s", src, archive_error_string (r));
      return NULL;
    }
  /* the raw format reads anything: what is not in the compression the
   * name says would be copied as it is */
  if (archive_filter_code (r, 0) != filter)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED, "decompressing %s: not in the compression its name says",
                   src);
      return NULL;
    }
  while ((n = archive_read_data (r, buf, sizeof buf)) > 0)
    {
      if (out->len + (gsize) n > MAX_MODULE_SIZE)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED, "decompressing %s: more than %u MiB",
                       src, MAX_MODULE_SIZE >> 20);
          return NULL;
        }
      g_byte_array_append (out, buf, (guint) n);
    }
  if (n < 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED, "decompressing %s: %s", src, archive_error_string (r));
      return NULL;
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

/* Adds the module @rel of @index as @dst, decompressed if it is not
 * a plain .ko: finit_module takes a compressed module only from kernel
 * 5.17 on and only with CONFIG_MODULE_DECOMPRESS, and the agent has no
 * xz decoder, so the initramfs holds the modules as any kernel loads them */
static gboolean
add_module (ShoalArchiveWriter *a, GHashTable *seen, ShoalModIndex *index, const gchar *rel, GError **error)
{
  g_autofree gchar *src = g_build_filename (shoal_mod_index_get_dir (index), rel, NULL);
  g_autofree gchar *plain = decompressed_name (rel);
  g_autofree gchar *dst = NULL;
  g_autoptr(GBytes) data = NULL;

  if (plain == NULL)
    {
      dst = g_build_filename ("lib/modules", shoal_mod_index_get_release (index), rel, NULL);
      return add_file (a, seen, dst, src, 0644, error);
    }
  dst = g_build_filename ("lib/modules", shoal_mod_index_get_release (index), plain, NULL);
  data = decompress_module (src, error);
  if (data == NULL)
    {
      g_prefix_error (error, "adding %s to the initramfs: ", dst);
      return FALSE;
    }
  return add_dirs (a, seen, dst, error)
         && add_entry (a, dst, AE_IFREG, 0644, g_bytes_get_data (data, NULL), g_bytes_get_size (data), error);
}

/* modules.dep for exactly @modules, paths as the kernel's, deps restricted to them */
static gchar *
subset_modules_dep (ShoalModIndex *index, GPtrArray *modules, GError **error)
{
  g_autoptr(GString) dep = g_string_new (NULL);

  for (guint i = 0; i < modules->len; i++)
    {
      const gchar *name = g_ptr_array_index (modules, i);
      g_autoptr(GPtrArray) one = g_ptr_array_new ();
      g_autoptr(GPtrArray) order = NULL;

      g_ptr_array_add (one, (gpointer) name);
      order = shoal_mod_index_resolve_deps (index, one, error);
      if (order == NULL)
        return NULL;
      g_autofree gchar *path = module_name (shoal_mod_index_get_path (index, name));

      g_string_append_printf (dep, "%s:", path);
      /* modules.dep lists the dependencies last-loaded first */
      for (guint j = order->len - 1; j > 0; j--)
        {
          g_autofree gchar *dep_path = module_name (shoal_mod_index_get_path (index, g_ptr_array_index (order, j - 1)));

          g_string_append_printf (dep, " %s", dep_path);
        }
      g_string_append_c (dep, '\n');
    }
  return g_string_free (g_steal_pointer (&dep), FALSE);
}

/**
 * shoal_agent_initramfs_write_base:
 * @modules: (element-type utf8): module names in load order, dependencies
 *   included (as plugins/drivers stores them)
 */
gboolean
shoal_agent_initramfs_write_base (const gchar           *path,
                                  const gchar           *agent_binary,
                                  ShoalModIndex         *index,
                                  GPtrArray             *modules,
                                  ShoalAgentCompression  compression,
                                  GError               **error)
{
  g_autoptr(ShoalArchiveWriter) a = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree gchar *moddir = g_build_filename ("lib/modules", shoal_mod_index_get_release (index), NULL);
  g_autofree gchar *dep = subset_modules_dep (index, modules, error);
  g_autofree gchar *dep_name = g_build_filename (moddir, "modules.dep", NULL);

  if (dep == NULL)
    return FALSE;
  a = open_writer (path, compression, error);
  if (a == NULL)
    return FALSE;
  if (!add_file (a, seen, "usr/sbin/shoal-agent", agent_binary, 0755, error))
    return FALSE;
  for (guint i = 0; i < modules->len; i++)
    {
      const gchar *rel = shoal_mod_index_get_path (index, g_ptr_array_index (modules, i));

      if (rel == NULL)
        continue; /* built in */
      if (!add_module (a, seen, index, rel, error))
        return FALSE;
    }
  if (!add_data (a, seen, dep_name, dep, 0644, error))
    return FALSE;
  return close_writer (a, path, error);
}

static gboolean
write_config_fd (const gchar *path, gint fd, const gchar *config_text, ShoalAgentCompression compression,
                 GError **error)
{
  g_autoptr(ShoalArchiveWriter) a = open_writer_fd (path, fd, compression, error);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  if (a == NULL)
    return FALSE;
  if (!add_data (a, seen, "etc/shoal/agent.conf", config_text, 0600, error))
    return FALSE;
  return close_writer (a, path, error);
}

/**
 * shoal_agent_initramfs_write_config:
 *
 * Writes the device part (it holds the device's token) to a temporary
 * file created 0600 beside @path and renames it into place, so that a
 * download served meanwhile reads the old part or the new one, whole,
 * and the token is never readable by others.
 */
gboolean
shoal_agent_initramfs_write_config (const gchar           *path,
                                    const gchar           *config_text,
                                    ShoalAgentCompression  compression,
                                    GError               **error)
{
  g_autofree gchar *tmp = g_strdup_printf ("%s.tmp-XXXXXX", path);
  gint fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0600);
  gboolean ok;

  if (fd < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   "creating %s: %s", tmp, g_strerror (errno));
      return FALSE;
    }
  ok = write_config_fd (tmp, fd, config_text, compression, error);
  if (!g_close (fd, ok ? error : NULL))
    ok = FALSE;
  if (ok && g_rename (tmp, path) != 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   "renaming %s: %s", tmp, g_strerror (errno));
      ok = FALSE;
    }
  if (!ok)
    g_unlink (tmp);
  return ok;
}
