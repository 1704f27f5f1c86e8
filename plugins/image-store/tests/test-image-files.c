/* test-image-files.c: the image store on disk: import (raw, zstd), sparse
 * chunks, deduplication, verification, removal, pruning and the
 * shoal-image tool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <utime.h>
#include <zstd.h>

#include "shoal-error.h"
#include "shoal-image-files.h"
#include "shoal-image-files-private.h"
#include "image-test-util.h"

#define CHUNK 65536

typedef struct {
  gchar *dir;
  gchar *root;
} Fixture;


static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->dir = g_dir_make_tmp ("shoal-image-files-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->root = g_build_filename (f->dir, "store", NULL);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  image_test_rm_rf (f->dir);
  g_free (f->dir);
  g_free (f->root);
}


/* Chunks: A 0 B A 0 C, then a tail of 1000 random bytes: 7 chunks, 2 zero,
 * 4 distinct data chunks (A twice). */
static GBytes *
make_image (guint32 seed_c)
{
  gsize len = 6 * CHUNK + 1000;
  guint8 *p = g_malloc0 (len);

  image_test_fill_random (p, CHUNK, 1);
  image_test_fill_random (p + 2 * CHUNK, CHUNK, 2);
  memcpy (p + 3 * CHUNK, p, CHUNK);
  image_test_fill_random (p + 5 * CHUNK, CHUNK, seed_c);
  image_test_fill_random (p + 6 * CHUNK, 1000, seed_c + 1);
  return g_bytes_new_take (p, len);
}

static gchar *
write_file (Fixture     *f,
            const gchar *name,
            const void  *data,
            gsize        len)
{
  gchar *path = g_build_filename (f->dir, name, NULL);

  g_assert_true (g_file_set_contents (path, data, (gssize) len, NULL));
  return path;
}

static gchar *
write_zstd (Fixture     *f,
            const gchar *name,
            GBytes      *image,
            guint        frames)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (image, &len);
  g_autoptr(GByteArray) out = g_byte_array_new ();
  gsize part = len / frames;

  for (guint i = 0; i < frames; i++)
    {
      gsize in_len = i + 1 == frames ? len - i * part : part;
      gsize cap = ZSTD_compressBound (in_len);
      gsize old = out->len;
      gsize n;

      g_byte_array_set_size (out, (guint) (old + cap));
      n = ZSTD_compress (out->data + old, cap, data + i * part, in_len, 3);
      g_assert_false (ZSTD_isError (n));
      g_byte_array_set_size (out, (guint) (old + n));
    }
  return write_file (f, name, out->data, out->len);
}

static guint
count_chunk_files (Fixture *f)
{
  g_autofree gchar *chunks = g_build_filename (f->root, "chunks", NULL);
  g_autoptr(GDir) dir = g_dir_open (chunks, 0, NULL);
  const gchar *entry;
  guint n = 0;

  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *sub = g_build_filename (chunks, entry, NULL);
      g_autoptr(GDir) subdir = g_dir_open (sub, 0, NULL);

      while (subdir != NULL && g_dir_read_name (subdir) != NULL)
        n++;
    }
  return n;
}

static void
check_whole_image (const gchar *id,
                   Fixture     *f,
                   GBytes      *image)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalManifest) m = shoal_image_files_load_manifest (f->root, id, &error);
  g_autofree guint8 *buf = g_malloc (CHUNK);
  const guint8 *data = g_bytes_get_data (image, NULL);
  guint8 digest[32];

  g_assert_no_error (error);
  g_assert_cmpuint (m->size, ==, g_bytes_get_size (image));
  for (guint64 i = 0; i < m->n_chunks; i++)
    {
      g_assert_true (shoal_image_files_read_chunk (f->root, m, i, buf, &error));
      g_assert_no_error (error);
      g_assert_cmpmem (buf, shoal_manifest_chunk_length (m, i),
                       data + i * CHUNK, shoal_manifest_chunk_length (m, i));
    }
  shoal_manifest_digest (data, g_bytes_get_size (image), digest);
  g_assert_cmpmem (digest, 32, m->image_sha256, 32);
  g_assert_true (shoal_image_files_verify (f->root, id, NULL, &error));
  g_assert_no_error (error);
}

static void
test_import_raw (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GBytes) image = make_image (3);
  g_autofree gchar *path = write_file (f, "disk.img", g_bytes_get_data (image, NULL), g_bytes_get_size (image));
  g_autoptr(GError) error = NULL;
  ShoalImportStats stats = { 0 };
  g_autofree gchar *id = shoal_image_files_import (f->root, path, NULL, CHUNK, &stats, NULL, NULL, NULL, &error);
  g_autoptr(ShoalImageInfo) info = NULL;
  g_autofree gchar *again = NULL;

  g_assert_no_error (error);
  g_assert_true (shoal_manifest_is_valid_id (id));
  g_assert_cmpuint (stats.n_chunks, ==, 7);
  g_assert_cmpuint (stats.n_zero, ==, 2);
  g_assert_cmpuint (stats.n_written, ==, 4);
  g_assert_cmpuint (stats.n_deduplicated, ==, 1);
  g_assert_cmpuint (stats.bytes_written, ==, 3 * CHUNK + 1000);
  g_assert_cmpuint (count_chunk_files (f), ==, 4);

  info = shoal_image_files_inspect (f->root, "disk", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (info->id, ==, id);
  g_assert_cmpstr (info->name, ==, "disk");
  g_assert_cmpuint (info->n_zero_chunks, ==, 2);
  g_assert_cmpuint (info->data_bytes, ==, 4 * CHUNK + 1000);
  check_whole_image (id, f, image);

  /* again: same id, nothing written */
  again = shoal_image_files_import (f->root, path, "disk", CHUNK, &stats, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (again, ==, id);
  g_assert_cmpuint (stats.n_written, ==, 0);
  g_assert_cmpuint (stats.n_deduplicated, ==, 5);
}

/* A sparse raw image: the zero chunks of make_image () and the first half
 * of its chunk 5 (zeroed in the image for it) are holes, written around.
 * Its holes are not read; its manifest is that of the same bytes written
 * out in full. */
static void
test_import_sparse (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GBytes) full = make_image (3);
  gsize len = g_bytes_get_size (full);
  guint8 *bytes = g_memdup2 (g_bytes_get_data (full, NULL), len);
  g_autoptr(GBytes) image = NULL;
  g_autofree gchar *dense = NULL;
  g_autofree gchar *sparse = g_build_filename (f->dir, "sparse.img", NULL);
  const gsize keep[][2] = { { 0, CHUNK }, { 2 * CHUNK, 2 * CHUNK }, { 5 * CHUNK + CHUNK / 2, CHUNK / 2 + 1000 } };
  g_autoptr(GError) error = NULL;
  ShoalImportStats stats = { 0 };
  g_autofree gchar *id_dense = NULL;
  g_autofree gchar *id_sparse = NULL;
  GStatBuf st;
  int fd;

  memset (bytes + 5 * CHUNK, 0, CHUNK / 2);
  image = g_bytes_new_take (bytes, len);
  dense = write_file (f, "dense.img", bytes, len);
  fd = g_open (sparse, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (ftruncate (fd, (off_t) len), ==, 0);
  for (gsize i = 0; i < G_N_ELEMENTS (keep); i++)
    g_assert_cmpint (pwrite (fd, bytes + keep[i][0], keep[i][1], (off_t) keep[i][0]), ==, (gssize) keep[i][1]);
  g_assert_cmpint (close (fd), ==, 0);

  id_sparse = shoal_image_files_import (f->root, sparse, "disk", CHUNK, &stats, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (stats.n_chunks, ==, 7);
  g_assert_cmpuint (stats.n_zero, ==, 2);
  g_assert_cmpint (g_stat (sparse, &st), ==, 0);
  if ((gsize) st.st_blocks * 512 < len)
    /* the file system keeps the holes: only the data was read */
    g_assert_cmpuint (stats.bytes_read, <=, (gsize) st.st_blocks * 512);
  else
    g_test_message ("%s: no holes on this file system, only the data checks ran", sparse);
  check_whole_image (id_sparse, f, image);

  id_dense = shoal_image_files_import (f->root, dense, "disk", CHUNK, &stats, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (id_dense, ==, id_sparse);
  g_assert_cmpuint (stats.bytes_read, ==, len);
}

static void
test_import_zstd (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GBytes) image = make_image (3);
  g_autofree gchar *raw = write_file (f, "disk.img", g_bytes_get_data (image, NULL), g_bytes_get_size (image));
  g_autofree gchar *zst = write_zstd (f, "disk.img.zst", image, 1);
  g_autofree gchar *zst3 = write_zstd (f, "three-frames.zst", image, 3);
  g_autoptr(GError) error = NULL;
  ShoalImportStats stats = { 0 };
  g_autofree gchar *id_zst = NULL;
  g_autofree gchar *id_raw = NULL;
  g_autofree gchar *id_zst3 = NULL;

  id_zst = shoal_image_files_import (f->root, zst, NULL, CHUNK, &stats, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (stats.n_zero, ==, 2);
  g_assert_cmpuint (stats.n_written, ==, 4);
  g_assert_cmpuint (stats.bytes_read, <, g_bytes_get_size (image));
  check_whole_image (id_zst, f, image);

  /* the same image, raw, under the same name: the same id */
  id_raw = shoal_image_files_import (f->root, raw, "disk", CHUNK, &stats, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (id_raw, ==, id_zst);
  g_assert_cmpuint (stats.n_written, ==, 0);

  id_zst3 = shoal_image_files_import (f->root, zst3, "disk", CHUNK, &stats, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (id_zst3, ==, id_zst);
}

static void
test_dedup_and_remove (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(GBytes) one = make_image (3);
  g_autoptr(GBytes) two = make_image (7);  /* shares A and B, differs in C and the tail */
  g_autofree gchar *p1 = write_file (f, "one.raw", g_bytes_get_data (one, NULL), g_bytes_get_size (one));
  g_autofree gchar *p2 = write_file (f, "two.raw", g_bytes_get_data (two, NULL), g_bytes_get_size (two));
  g_autoptr(GError) error = NULL;
  ShoalImportStats stats = { 0 };
  g_autofree gchar *id1 = shoal_image_files_import (f->root, p1, NULL, CHUNK, NULL, NULL, NULL, NULL, &error);
  g_autofree gchar *id2 = NULL;
  g_autoptr(GPtrArray) list = NULL;
  guint64 freed = 0;

  g_assert_no_error (error);
  id2 = shoal_image_files_import (f->root, p2, NULL, CHUNK, &stats, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (id1, !=, id2);
  g_assert_cmpuint (stats.n_written, ==, 2);       /* C and the tail */
  g_assert_cmpuint (stats.n_deduplicated, ==, 3);  /* A, B, A */
  g_assert_cmpuint (count_chunk_files (f), ==, 6);

  list = shoal_image_files_list (f->root, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 2);

  g_assert_true (shoal_image_files_remove (f->root, id1, &freed, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (freed, ==, CHUNK + 1000);
  g_assert_cmpuint (count_chunk_files (f), ==, 4);
  check_whole_image (id2, f, two);

  g_assert_false (shoal_image_files_remove (f->root, id1, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_true (shoal_image_files_remove (f->root, id2, &freed, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_chunk_files (f), ==, 0);
}

/* A manifest the store cannot read (one byte changed) keeps every chunk:
 * removing another image deleted the chunks of both before */
static void
test_remove_keeps_unreadable (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(GBytes) one = make_image (3);
  g_autoptr(GBytes) two = make_image (7);
  g_autofree gchar *p1 = write_file (f, "one.raw", g_bytes_get_data (one, NULL), g_bytes_get_size (one));
  g_autofree gchar *p2 = write_file (f, "two.raw", g_bytes_get_data (two, NULL), g_bytes_get_size (two));
  g_autoptr(GError) error = NULL;
  g_autofree gchar *id1 = shoal_image_files_import (f->root, p1, NULL, CHUNK, NULL, NULL, NULL, NULL, &error);
  g_autofree gchar *id2 = shoal_image_files_import (f->root, p2, NULL, CHUNK, NULL, NULL, NULL, NULL, &error);
  g_autofree gchar *manifest = shoal_image_files_manifest_path (f->root, id2);
  g_autofree gchar *text = NULL;
  gsize len = 0;
  guint64 freed = 0;

  g_assert_no_error (error);
  g_assert_true (g_file_get_contents (manifest, &text, &len, NULL));
  text[len / 2] ^= 1;
  g_assert_true (g_file_set_contents (manifest, text, (gssize) len, NULL));

  g_assert_false (shoal_image_files_remove (f->root, id1, &freed, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "removed, but its chunks were kept"));
  g_assert_nonnull (strstr (error->message, "is corrupt"));
  g_clear_error (&error);
  g_assert_cmpuint (freed, ==, 0);
  g_assert_cmpuint (count_chunk_files (f), ==, 6);
  g_assert_false (shoal_image_files_gc (f->root, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_clear_error (&error);

  /* a file in images/ not named by an id: nothing is guessed either */
  text[len / 2] ^= 1;
  g_assert_true (g_file_set_contents (manifest, text, (gssize) len, NULL));
  g_free (write_file (f, "store/images/stray.manifest", "x", 1));
  g_assert_false (shoal_image_files_gc (f->root, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "stray.manifest is not named by an image id"));
  g_clear_error (&error);
  g_assert_cmpuint (count_chunk_files (f), ==, 6);

  /* mended: the first image's own chunks go, the second stays whole */
  {
    g_autofree gchar *stray = g_build_filename (f->root, "images", "stray.manifest", NULL);

    g_assert_cmpint (g_unlink (stray), ==, 0);
  }
  g_assert_true (shoal_image_files_gc (f->root, &freed, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (freed, ==, CHUNK + 1000);
  g_assert_cmpuint (count_chunk_files (f), ==, 4);
  check_whole_image (id2, f, two);
}

static void
test_bad_input (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GBytes) image = make_image (3);
  g_autofree gchar *zst = write_zstd (f, "disk.zst", image, 1);
  g_autofree gchar *empty = write_file (f, "empty.img", "", 0);
  g_autofree gchar *raw = write_file (f, "disk.img", g_bytes_get_data (image, NULL), g_bytes_get_size (image));
  g_autofree gchar *zst_data = NULL;
  g_autofree gchar *truncated = NULL;
  g_autofree gchar *garbage = NULL;
  gsize zst_len = 0;
  g_autoptr(GError) error = NULL;
  gchar *id;

  id = shoal_image_files_import (f->root, "/nonexistent/disk.img", NULL, 0, NULL, NULL, NULL, NULL, &error);
  g_assert_null (id);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_clear_error (&error);

  id = shoal_image_files_import (f->root, empty, NULL, 0, NULL, NULL, NULL, NULL, &error);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_clear_error (&error);

  g_assert_true (g_file_get_contents (zst, &zst_data, &zst_len, NULL));
  truncated = write_file (f, "truncated.zst", zst_data, zst_len / 2);
  id = shoal_image_files_import (f->root, truncated, NULL, CHUNK, NULL, NULL, NULL, NULL, &error);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "truncated"));
  g_clear_error (&error);

  memset (zst_data + 8, 0xff, 64);
  garbage = write_file (f, "garbage.zst", zst_data, zst_len);
  id = shoal_image_files_import (f->root, garbage, NULL, CHUNK, NULL, NULL, NULL, NULL, &error);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_clear_error (&error);

  id = shoal_image_files_import (f->root, raw, "no spaces", CHUNK, NULL, NULL, NULL, NULL, &error);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  id = shoal_image_files_import (f->root, raw, NULL, 1000, NULL, NULL, NULL, NULL, &error);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  id = shoal_image_files_import (f->root, f->dir, NULL, 0, NULL, NULL, NULL, NULL, &error);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_null (shoal_image_files_inspect (f->root, "../../etc/passwd", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_false (shoal_image_files_remove (f->root, "../x", NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  /* the failed zstd imports left chunks no manifest names: gc deletes them */
  g_assert_cmpuint (count_chunk_files (f), >, 0);
  g_assert_true (shoal_image_files_gc (f->root, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_chunk_files (f), ==, 0);
}

static void
test_corrupt (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GBytes) image = make_image (3);
  g_autofree gchar *raw = write_file (f, "disk.img", g_bytes_get_data (image, NULL), g_bytes_get_size (image));
  g_autoptr(GError) error = NULL;
  g_autofree gchar *id = shoal_image_files_import (f->root, raw, NULL, CHUNK, NULL, NULL, NULL, NULL, &error);
  g_autoptr(ShoalManifest) m = shoal_image_files_load_manifest (f->root, id, &error);
  g_autofree gchar *chunk_path = NULL;
  g_autofree gchar *manifest_path = NULL;
  char hex[65];

  g_assert_no_error (error);
  shoal_manifest_digest_to_hex (shoal_manifest_chunk_digest (m, 2), hex);
  chunk_path = shoal_image_files_chunk_path (f->root, hex);
  g_assert_true (g_file_set_contents (chunk_path, "not the chunk", -1, NULL));
  g_assert_false (shoal_image_files_verify (f->root, id, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "corrupt"));
  g_clear_error (&error);

  /* a manifest whose content is not its name */
  manifest_path = shoal_image_files_manifest_path (f->root, id);
  g_assert_true (g_file_set_contents (manifest_path, "shoal-manifest 1\n", -1, NULL));
  g_assert_null (shoal_image_files_load_manifest (f->root, id, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
}

static gchar *
run_tool (Fixture     *f,
          gint         expect_status,
          const gchar *arg1,
          const gchar *arg2)
{
  const gchar *tool = g_getenv ("SHOAL_IMAGE_TOOL");
  const gchar *argv[] = { tool, "--store", f->root, arg1, arg2, NULL };
  g_autoptr(GError) error = NULL;
  gchar *out = NULL;
  gint status = 0;

  g_assert_true (g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
                               NULL, NULL, &out, NULL, &status, &error));
  g_assert_no_error (error);
  if (expect_status == 0)
    g_assert_true (g_spawn_check_wait_status (status, NULL));
  else
    g_assert_false (g_spawn_check_wait_status (status, NULL));
  return out;
}

static void
test_tool (Fixture       *f,
           gconstpointer  data)
{
  g_autoptr(GBytes) image = make_image (3);
  g_autofree gchar *zst = write_zstd (f, "tool.img.zst", image, 1);
  g_autofree gchar *id = NULL;
  g_autofree gchar *list = NULL;
  g_autofree gchar *inspect = NULL;
  g_autofree gchar *verify = NULL;
  g_autofree gchar *rm = NULL;
  g_autofree gchar *after = NULL;
  g_autofree gchar *bad = NULL;

  if (g_getenv ("SHOAL_IMAGE_TOOL") == NULL)
    {
      g_test_skip ("SHOAL_IMAGE_TOOL is not set");
      return;
    }
  id = run_tool (f, 0, "import", zst);
  g_strstrip (id);
  g_assert_true (shoal_manifest_is_valid_id (id));
  list = run_tool (f, 0, "list", NULL);
  g_assert_nonnull (strstr (list, id));
  g_assert_nonnull (strstr (list, "tool"));
  inspect = run_tool (f, 0, "inspect", "tool");
  g_assert_nonnull (strstr (inspect, "zero-chunks: 0"));  /* 1 MiB default chunk: no zero chunk */
  verify = run_tool (f, 0, "verify", id);
  rm = run_tool (f, 0, "rm", "tool");
  after = run_tool (f, 0, "list", NULL);
  g_assert_cmpstr (after, ==, "");
  bad = run_tool (f, 1, "inspect", "tool");
}

static gpointer
gc_thread (gpointer data)
{
  Fixture *f = data;
  g_autoptr(GError) error = NULL;

  g_assert_true (shoal_image_files_gc (f->root, NULL, &error));
  g_assert_no_error (error);
  return NULL;
}

/* The download of a URL import that a crash interrupted (kill -9 of
 * shoald: nothing deleted it) is deleted by the next collection, which
 * the image-store service runs at start; it used to stay in tmp/ for
 * ever. Nothing else in tmp/ is touched, and a download in progress (its
 * import holds the store lock shared) is not either. */
static void
test_gc_downloads (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *left = NULL;
  g_autofree gchar *other = NULL;
  g_autofree gchar *short_name = NULL;
  g_autofree gchar *subdir = g_build_filename (f->dir, "store", "tmp", "download-dir123", NULL);
  g_autofree gchar *link = g_build_filename (f->dir, "store", "tmp", "download-link12", NULL);
  g_autofree gchar *target = write_file (f, "outside", "keep", 4);
  g_autofree gchar *live = NULL;
  g_autofree gchar *zeros = g_malloc0 (1000);
  GThread *thread;
  guint64 freed = 1;
  int lock_fd;

  g_assert_true (shoal_image_files_ensure (f->root, &error));
  g_assert_no_error (error);
  left = write_file (f, "store/tmp/download-Ab3xYz", zeros, 1000);
  other = write_file (f, "store/tmp/notes.txt", "x", 1);
  short_name = write_file (f, "store/tmp/download-abc", "x", 1);
  g_assert_cmpint (g_mkdir (subdir, 0700), ==, 0);
  g_assert_cmpint (symlink (target, link), ==, 0);

  g_assert_true (shoal_image_files_gc (f->root, &freed, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (freed, ==, 0);
  g_assert_false (g_file_test (left, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (other, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (short_name, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (subdir, G_FILE_TEST_IS_DIR));
  g_assert_true (g_file_test (link, G_FILE_TEST_IS_SYMLINK));
  g_assert_true (g_file_test (target, G_FILE_TEST_IS_REGULAR));

  /* an import in progress: the collection waits for it */
  lock_fd = shoal_image_files_lock (f->root, LOCK_SH, &error);
  g_assert_no_error (error);
  g_assert_cmpint (lock_fd, >=, 0);
  live = write_file (f, "store/tmp/download-Q1w2E3", "x", 1);
  thread = g_thread_new ("gc", gc_thread, f);
  g_usleep (G_USEC_PER_SEC / 5);
  g_assert_true (g_file_test (live, G_FILE_TEST_IS_REGULAR));
  /* the import ends (it unlinks its download itself when it completes;
   * here, as if it had been killed after writing it) */
  close (lock_fd);
  g_thread_join (thread);
  g_assert_false (g_file_test (live, G_FILE_TEST_EXISTS));
}

/* A transfer's hold keeps an image from removal, in this process or
 * another (the tool) */
/* writes the manifest of @id under another name; returns the new id */
static gchar *
write_renamed_manifest (Fixture *f, ShoalManifest *m, const gchar *name)
{
  g_autofree gchar *text = NULL;
  g_autofree gchar *path = NULL;
  char id[SHOAL_MANIFEST_HEX_LEN + 1];
  size_t len = 0;

  g_strlcpy (m->name, name, sizeof m->name);
  text = shoal_manifest_serialize (m, &len);
  shoal_manifest_compute_id (text, len, id);
  path = shoal_image_files_manifest_path (f->root, id);
  g_assert_true (g_file_set_contents (path, text, (gssize) len, NULL));
  return g_strdup (id);
}

/* The ids shoalctl images shows (12 digits) name an image wherever an id
 * or name is taken: they gave "No image named" and the older of two
 * images of one name could not be reached but by its full id. An
 * ambiguous start lists the images it starts. */
static void
test_id_prefix (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GBytes) image1 = make_image (3);
  g_autoptr(GBytes) image2 = make_image (4);
  g_autofree gchar *path1 = write_file (f, "a.img", g_bytes_get_data (image1, NULL), g_bytes_get_size (image1));
  g_autofree gchar *path2 = write_file (f, "b.img", g_bytes_get_data (image2, NULL), g_bytes_get_size (image2));
  g_autoptr(GError) error = NULL;
  g_autofree gchar *id1 = NULL;
  g_autofree gchar *id2 = NULL;
  g_autofree gchar *short1 = NULL;
  g_autofree gchar *resolved = NULL;
  g_autoptr(ShoalImageInfo) info = NULL;
  g_autoptr(ShoalManifest) m = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autofree gchar *twin_a = NULL;
  g_autofree gchar *twin_b = NULL;
  g_autofree gchar *prefix = NULL;
  g_autofree gchar *mpath = NULL;
  struct utimbuf old = { 1000, 1000 };

  id1 = shoal_image_files_import (f->root, path1, "fleet-os", CHUNK, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  id2 = shoal_image_files_import (f->root, path2, "fleet-os", CHUNK, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  /* id1 the older (both were imported within the same second) */
  mpath = shoal_image_files_manifest_path (f->root, id1);
  g_assert_cmpint (g_utime (mpath, &old), ==, 0);
  info = shoal_image_files_inspect (f->root, "fleet-os", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (info->id, ==, id2);
  g_clear_pointer (&info, shoal_image_info_free);

  short1 = g_strndup (id1, 12);
  info = shoal_image_files_inspect (f->root, short1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (info->id, ==, id1);
  g_clear_pointer (&info, shoal_image_info_free);
  /* any case, 8 digits at least */
  g_free (short1);
  short1 = g_ascii_strup (id1, 8);
  resolved = shoal_image_files_resolve (f->root, short1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (resolved, ==, id1);
  g_free (short1);
  short1 = g_strndup (id1, 7);
  g_assert_null (shoal_image_files_inspect (f->root, short1, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (shoal_image_files_inspect (f->root, "0123456789abcdef", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* two manifests whose ids start with the same 8 digits: renamed copies
   * of one, until two ids agree (about 80000 tries) */
  m = shoal_image_files_load_manifest (f->root, id1, &error);
  g_assert_no_error (error);
  for (guint i = 0; twin_b == NULL; i++)
    {
      g_autofree gchar *name = g_strdup_printf ("t%u", i);
      g_autofree gchar *text = NULL;
      char id[SHOAL_MANIFEST_HEX_LEN + 1];
      size_t len = 0;
      const gchar *other;

      g_assert_cmpuint (i, <, 4000000);
      g_strlcpy (m->name, name, sizeof m->name);
      text = shoal_manifest_serialize (m, &len);
      shoal_manifest_compute_id (text, len, id);
      id[8] = '\0';
      other = g_hash_table_lookup (seen, id);
      if (other != NULL)
        {
          twin_a = write_renamed_manifest (f, m, other);
          twin_b = write_renamed_manifest (f, m, name);
          prefix = g_strdup (id);
        }
      else
        g_hash_table_insert (seen, g_strdup (id), g_steal_pointer (&name));
    }
  g_assert_null (shoal_image_files_inspect (f->root, prefix, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, twin_a));
  g_assert_nonnull (strstr (error->message, twin_b));
  g_clear_error (&error);
  /* one more digit tells them apart, unless they share it too */
  if (twin_a[8] != twin_b[8])
    {
      g_autofree gchar *longer = g_strndup (twin_b, 9);

      info = shoal_image_files_inspect (f->root, longer, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (info->id, ==, twin_b);
    }
}

static void
test_hold (Fixture       *f,
           gconstpointer  data)
{
  g_autoptr(GBytes) image = make_image (4);
  g_autofree gchar *path = write_file (f, "held.img", g_bytes_get_data (image, NULL), g_bytes_get_size (image));
  g_autofree gchar *id = NULL;
  g_autofree gchar *manifest = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImageInfo) info = NULL;
  int hold1, hold2, removing;

  id = shoal_image_files_import (f->root, path, "held", CHUNK, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  hold1 = shoal_image_files_hold (f->root, id, &error);
  g_assert_no_error (error);
  hold2 = shoal_image_files_hold (f->root, id, &error);
  g_assert_no_error (error);
  g_assert_cmpint (hold1, >=, 0);
  g_assert_cmpint (hold2, >=, 0);

  g_assert_false (shoal_image_files_remove (f->root, id, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "is in use: a transfer to devices reads it"));
  g_clear_error (&error);
  if (g_getenv ("SHOAL_IMAGE_TOOL") != NULL)
    g_free (run_tool (f, 1, "rm", id));
  /* imported again: the same id, and the holds still hold (a new
   * manifest renamed over the held one let the removal through) */
  {
    g_autofree gchar *again = shoal_image_files_import (f->root, path, "held", CHUNK, NULL, NULL, NULL, NULL, &error);

    g_assert_no_error (error);
    g_assert_cmpstr (again, ==, id);
  }
  g_assert_false (shoal_image_files_remove (f->root, id, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);
  g_clear_error (&error);
  shoal_image_files_release (hold1);
  g_assert_false (shoal_image_files_remove (f->root, id, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);
  g_clear_error (&error);
  /* still whole */
  g_assert_true (shoal_image_files_verify (f->root, id, NULL, &error));
  g_assert_no_error (error);

  shoal_image_files_release (hold2);
  g_assert_true (shoal_image_files_remove (f->root, id, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (shoal_image_files_hold (f->root, id, &error), ==, -1);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* while a removal has it, a transfer cannot begin on it */
  g_free (id);
  id = shoal_image_files_import (f->root, path, "held", CHUNK, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  manifest = shoal_image_files_manifest_path (f->root, id);
  removing = open (manifest, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (removing, >=, 0);
  g_assert_cmpint (flock (removing, LOCK_EX), ==, 0);
  g_assert_cmpint (shoal_image_files_hold (f->root, id, &error), ==, -1);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "is being removed"));
  g_clear_error (&error);
  close (removing);
  info = shoal_image_files_inspect (f->root, "held", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (info->id, ==, id);
}

/* imports @image as @name, its manifest dated @mtime (imports within one
 * second are ordered by their ids otherwise) */
static gchar *
import_dated (Fixture *f, GBytes *image, const gchar *name, time_t mtime)
{
  g_autofree gchar *file = g_strdup_printf ("%s-%ld.img", name, (long) mtime);
  g_autofree gchar *path = write_file (f, file, g_bytes_get_data (image, NULL), g_bytes_get_size (image));
  g_autoptr(GError) error = NULL;
  gchar *id = shoal_image_files_import (f->root, path, name, CHUNK, NULL, NULL, NULL, NULL, &error);
  g_autofree gchar *manifest = NULL;
  struct utimbuf times = { mtime, mtime };

  g_assert_no_error (error);
  manifest = shoal_image_files_manifest_path (f->root, id);
  g_assert_cmpint (g_utime (manifest, &times), ==, 0);
  return id;
}

static gboolean
has_manifest (Fixture *f, const gchar *id)
{
  g_autofree gchar *manifest = shoal_image_files_manifest_path (f->root, id);

  return g_file_test (manifest, G_FILE_TEST_EXISTS);
}

/* the ids of @images (ShoalImageInfo *), joined by spaces */
static gchar *
ids_of (GPtrArray *images)
{
  g_autoptr(GString) ids = g_string_new (NULL);

  for (guint i = 0; i < images->len; i++)
    g_string_append_printf (ids, "%s%s", i > 0 ? " " : "", ((ShoalImageInfo *) g_ptr_array_index (images, i))->id);
  return g_string_free (g_steal_pointer (&ids), FALSE);
}

/* Retention: four imports of debian-12 kept every version and its chunks;
 * pruning keeps the newest of each name, an older one a reference names
 * (an id, the start of one) or a transfer holds, removes the others and
 * the chunks only they used; a dry run says the same and removes
 * nothing; a manifest it cannot read stops it before it removes anything */
static void
test_prune (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(GBytes) b1 = make_image (3);
  g_autoptr(GBytes) b2 = make_image (5);
  g_autoptr(GBytes) b3 = make_image (7);
  g_autoptr(GBytes) b4 = make_image (9);
  g_autoptr(GBytes) bo = make_image (11);
  g_autofree gchar *v1 = import_dated (f, b1, "debian-12", 1000);
  g_autofree gchar *v2 = import_dated (f, b2, "debian-12", 2000);
  g_autofree gchar *v3 = import_dated (f, b3, "debian-12", 3000);
  g_autofree gchar *v4 = import_dated (f, b4, "debian-12", 4000);
  g_autofree gchar *other = import_dated (f, bo, "alma-9", 500);
  g_autoptr(GHashTable) in_use = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(ShoalImagePrune) dry = NULL;
  g_autoptr(ShoalImagePrune) prune = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *removed = NULL;
  g_autofree gchar *kept = NULL;
  g_autofree gchar *short1 = g_strndup (v1, 12);
  g_autofree gchar *manifest = NULL;
  g_autofree gchar *text = NULL;
  gsize len = 0;
  int hold;

  /* A, B shared by all; C and the tail of each its own */
  g_assert_cmpuint (count_chunk_files (f), ==, 2 + 5 * 2);
  g_hash_table_insert (in_use, v1, "recipe pinned");
  g_hash_table_insert (in_use, "debian-12", "recipe latest");
  g_hash_table_insert (in_use, "no-such-image", "recipe missing");
  hold = shoal_image_files_hold (f->root, v2, &error);
  g_assert_no_error (error);

  g_assert_null (shoal_image_files_prune (f->root, NULL, 0, NULL, FALSE, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  dry = shoal_image_files_prune (f->root, NULL, 1, in_use, TRUE, &error);
  g_assert_no_error (error);
  removed = ids_of (dry->removed);
  g_assert_cmpstr (removed, ==, v3);
  kept = ids_of (dry->kept);
  g_assert_nonnull (strstr (kept, v1));
  g_assert_nonnull (strstr (kept, v2));
  g_assert_cmpuint (dry->kept->len, ==, 2);
  for (guint i = 0; i < dry->kept->len; i++)
    {
      ShoalImageInfo *info = g_ptr_array_index (dry->kept, i);

      g_assert_cmpstr (g_ptr_array_index (dry->reasons, i), ==,
                       g_str_equal (info->id, v1) ? "recipe pinned" : "a transfer to devices reads it");
    }
  g_assert_cmpuint (dry->freed_bytes, ==, CHUNK + 1000);
  g_assert_true (has_manifest (f, v3));
  g_assert_cmpuint (count_chunk_files (f), ==, 12);

  prune = shoal_image_files_prune (f->root, NULL, 1, in_use, FALSE, &error);
  g_assert_no_error (error);
  g_clear_pointer (&removed, g_free);
  removed = ids_of (prune->removed);
  g_assert_cmpstr (removed, ==, v3);
  g_assert_cmpuint (prune->kept->len, ==, 2);
  g_assert_cmpuint (prune->freed_bytes, ==, dry->freed_bytes);
  g_assert_false (has_manifest (f, v3));
  g_assert_true (has_manifest (f, v1) && has_manifest (f, v2) && has_manifest (f, v4) && has_manifest (f, other));
  g_assert_cmpuint (count_chunk_files (f), ==, 10);
  check_whole_image (v1, f, b1);
  check_whole_image (v4, f, b4);
  g_clear_pointer (&prune, shoal_image_prune_free);

  /* released, and v1 named by the start of its id: v2 goes; of another
   * name, nothing */
  shoal_image_files_release (hold);
  g_hash_table_remove (in_use, v1);
  g_hash_table_insert (in_use, short1, "recipe short");
  prune = shoal_image_files_prune (f->root, "alma-9", 1, in_use, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (prune->removed->len, ==, 0);
  g_clear_pointer (&prune, shoal_image_prune_free);
  prune = shoal_image_files_prune (f->root, "debian-12", 1, in_use, FALSE, &error);
  g_assert_no_error (error);
  g_clear_pointer (&removed, g_free);
  removed = ids_of (prune->removed);
  g_assert_cmpstr (removed, ==, v2);
  g_assert_cmpuint (prune->kept->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (prune->reasons, 0), ==, "recipe short");
  g_clear_pointer (&prune, shoal_image_prune_free);

  /* a manifest that cannot be read: nothing is pruned */
  manifest = shoal_image_files_manifest_path (f->root, other);
  g_assert_true (g_file_get_contents (manifest, &text, &len, NULL));
  text[len / 2] ^= 1;
  g_assert_true (g_file_set_contents (manifest, text, (gssize) len, NULL));
  g_assert_null (shoal_image_files_prune (f->root, NULL, 1, NULL, FALSE, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "Nothing was pruned"));
  g_clear_error (&error);
  g_assert_true (has_manifest (f, v1));

  text[len / 2] ^= 1;
  g_assert_true (g_file_set_contents (manifest, text, (gssize) len, NULL));
  prune = shoal_image_files_prune (f->root, NULL, 1, NULL, FALSE, &error);
  g_assert_no_error (error);
  g_clear_pointer (&removed, g_free);
  removed = ids_of (prune->removed);
  g_assert_cmpstr (removed, ==, v1);
  g_assert_cmpuint (prune->freed_bytes, ==, CHUNK + 1000);
  g_assert_cmpuint (count_chunk_files (f), ==, 6);
  check_whole_image (v4, f, b4);
  check_whole_image (other, f, bo);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/shoal/image-store/import-raw", Fixture, NULL, fixture_setup, test_import_raw, fixture_teardown);
  g_test_add ("/shoal/image-store/import-sparse", Fixture, NULL, fixture_setup, test_import_sparse, fixture_teardown);
  g_test_add ("/shoal/image-store/import-zstd", Fixture, NULL, fixture_setup, test_import_zstd, fixture_teardown);
  g_test_add ("/shoal/image-store/dedup-and-remove", Fixture, NULL, fixture_setup, test_dedup_and_remove, fixture_teardown);
  g_test_add ("/shoal/image-store/remove-keeps-unreadable", Fixture, NULL, fixture_setup, test_remove_keeps_unreadable,
              fixture_teardown);
  g_test_add ("/shoal/image-store/bad-input", Fixture, NULL, fixture_setup, test_bad_input, fixture_teardown);
  g_test_add ("/shoal/image-store/corrupt", Fixture, NULL, fixture_setup, test_corrupt, fixture_teardown);
  g_test_add ("/shoal/image-store/tool", Fixture, NULL, fixture_setup, test_tool, fixture_teardown);
  g_test_add ("/shoal/image-store/hold", Fixture, NULL, fixture_setup, test_hold, fixture_teardown);
  g_test_add ("/shoal/image-store/prune", Fixture, NULL, fixture_setup, test_prune, fixture_teardown);
  g_test_add ("/shoal/image-store/id-prefix", Fixture, NULL, fixture_setup, test_id_prefix, fixture_teardown);
  g_test_add ("/shoal/image-store/gc-downloads", Fixture, NULL, fixture_setup, test_gc_downloads,
              fixture_teardown);
  return g_test_run ();
}
