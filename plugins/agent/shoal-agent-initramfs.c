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

gchar *
shoal_agent_initramfs_cache_key (const gchar           *agent_binary_sha256,
                                 const gchar           *release,
                                 GPtrArray             *modules,
                                 ShoalAgentCompression  compression)
{
  g_autoptr(GString) in = g_string_new ("shoal-agent-base-v1\n");

  g_string_append_printf (in, "agent %s\nkernel %s\ncompression %d\nmodules",
                          agent_binary_sha256, release, compression);
  for (guint i = 0; i < modules->len; i++)
    g_string_append_printf (in, " %s", (const gchar *) g_ptr_array_index (modules, i));
  return shoal_agent_sha256_data (in->str, in->len);
}

static ShoalArchiveWriter *
open_writer (const gchar *path, ShoalAgentCompression compression, GError **error)
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
    r = archive_write_open_filename (a, path);
  if (r != ARCHIVE_OK)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED, "writing %s: %s", path, archive_error_string (a));
      return NULL;
    }
  return g_steal_pointer (&a);
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
      order = shoal_mod_index_resolve (index, one, error);
      if (order == NULL)
        return NULL;
      g_string_append_printf (dep, "%s:", shoal_mod_index_get_path (index, name));
      /* modules.dep lists the dependencies last-loaded first */
      for (guint j = order->len - 1; j > 0; j--)
        g_string_append_printf (dep, " %s", shoal_mod_index_get_path (index, g_ptr_array_index (order, j - 1)));
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
      g_autofree gchar *src = NULL;
      g_autofree gchar *dst = NULL;

      if (rel == NULL)
        continue; /* built in */
      src = g_build_filename (shoal_mod_index_get_dir (index), rel, NULL);
      dst = g_build_filename (moddir, rel, NULL);
      if (!add_file (a, seen, dst, src, 0644, error))
        return FALSE;
    }
  if (!add_data (a, seen, dep_name, dep, 0644, error))
    return FALSE;
  return close_writer (a, path, error);
}

gboolean
shoal_agent_initramfs_write_config (const gchar           *path,
                                    const gchar           *config_text,
                                    ShoalAgentCompression  compression,
                                    GError               **error)
{
  g_autoptr(ShoalArchiveWriter) a = open_writer (path, compression, error);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  if (a == NULL)
    return FALSE;
  if (!add_data (a, seen, "etc/shoal/agent.conf", config_text, 0600, error))
    return FALSE;
  return close_writer (a, path, error);
}
