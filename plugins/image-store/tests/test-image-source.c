/* test-image-source.c: the disk an image file holds: raw, and compressed
 * by the zstd, xz, gzip and bzip2 tools (one or several frames, streams, members),
 * read back byte for byte whatever the size of the reads; truncated,
 * corrupt and trailing data end in an error
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <string.h>

#include "shoal-error.h"
#include "shoal-image-files.h"
#include "shoal-image-source.h"
#include "image-test-util.h"

typedef struct {
  gchar  *dir;
  GBytes *disk;
  gchar  *raw;
} Fixture;

/* 300 KiB of text that compresses, 100 KiB of random bytes, 64 KiB of
 * zeros and 777 more bytes */
static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  gsize len = 300 * 1024 + 100 * 1024 + 64 * 1024 + 777;
  guint8 *p = g_malloc0 (len);

  for (gsize i = 0; i < 300 * 1024; i++)
    p[i] = "shoal deploys fleets of machines\n"[i % 33];
  image_test_fill_random (p + 300 * 1024, 100 * 1024, 7);
  image_test_fill_random (p + len - 777, 777, 8);
  f->disk = g_bytes_new_take (p, len);
  f->dir = g_dir_make_tmp ("shoal-image-source-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->raw = g_build_filename (f->dir, "disk.raw", NULL);
  g_assert_true (g_file_set_contents (f->raw, (const gchar *) p, (gssize) len, NULL));
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  image_test_rm_rf (f->dir);
  g_free (f->dir);
  g_free (f->raw);
  g_bytes_unref (f->disk);
}

/* runs a shell command line in the fixture's folder; it must succeed */
static void
sh (Fixture     *f,
    const gchar *command)
{
  image_test_spawn (f->dir, (const gchar *[]) { "/bin/sh", "-ec", command, NULL });
}

/* reads the disk of name in reads of step bytes; NULL with error set */
static GBytes *
read_disk (Fixture      *f,
           const gchar  *name,
           gsize         step,
           const gchar **format,
           GError      **error)
{
  g_autofree gchar *path = g_build_filename (f->dir, name, NULL);
  g_autoptr(ShoalImageSource) s = shoal_image_source_open (path, error);
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autofree guint8 *buf = g_malloc (step);
  gssize n;

  if (s == NULL)
    return NULL;
  *format = shoal_image_source_format (s);
  /* at most a read per byte of the disk and then some */
  for (guint i = 0; i < 1u << 20; i++)
    {
      n = shoal_image_source_fill (s, buf, step, error);
      if (n < 0)
        return NULL;
      g_byte_array_append (out, buf, (guint) n);
      if ((gsize) n < step)
        break;
    }
  /* after the end, the end again */
  g_assert_cmpint (shoal_image_source_fill (s, buf, step, error), ==, 0);
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

static void
assert_reads_disk (Fixture     *f,
                   const gchar *name,
                   const gchar *format)
{
  /* reads that end inside frames, blocks and members, and whole chunks */
  static const gsize steps[] = { 1, 4093, 65536, 1 << 20 };

  for (gsize i = 0; i < G_N_ELEMENTS (steps); i++)
    {
      g_autoptr(GError) error = NULL;
      const gchar *got_format = NULL;
      g_autoptr(GBytes) disk = NULL;

      if (steps[i] == 1 && strcmp (format, "raw") != 0)
        continue;       /* a byte at a time: only the raw file, or it takes minutes */
      disk = read_disk (f, name, steps[i], &got_format, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (got_format, ==, format);
      g_assert_true (g_bytes_equal (disk, f->disk));
    }
}

static void
test_formats (Fixture       *f,
              gconstpointer  data)
{
  if (!image_test_have ("zstd") || !image_test_have ("xz") || !image_test_have ("gzip") ||
      !image_test_have ("bzip2"))
    return;
  /* the disk in halves, each compressed on its own, then concatenated */
  sh (f, "head -c 250000 disk.raw > a; tail -c +250001 disk.raw > b");
  sh (f, "zstd -q -c disk.raw > disk.zst; zstd -q -c a > two.zst; zstd -q -c b >> two.zst");
  sh (f, "xz -c disk.raw > disk.xz; xz -c -1 --check=sha256 a > two.xz; xz -c b >> two.xz");
  sh (f, "gzip -c disk.raw > disk.gz; gzip -1 -c a > two.gz; gzip -9 -c b >> two.gz");
  sh (f, "xz -c --block-size=65536 disk.raw > blocks.xz");
  sh (f, "bzip2 -c disk.raw > disk.bz2; bzip2 -1 -c a > two.bz2; bzip2 -c b >> two.bz2");
  assert_reads_disk (f, "disk.raw", "raw");
  assert_reads_disk (f, "disk.zst", "zstd");
  assert_reads_disk (f, "two.zst", "zstd");
  /* a file that begins with a skippable frame (RFC 8878 3.1.2), as every
   * file pzstd writes does: it was taken for a raw disk */
  sh (f, "printf '\\132\\052\\115\\030\\005\\000\\000\\000shoal' > skip.zst; zstd -q -c disk.raw >> skip.zst");
  assert_reads_disk (f, "skip.zst", "zstd");
  sh (f, "pzstd -q -p 2 disk.raw -o disk.pzst");
  assert_reads_disk (f, "disk.pzst", "zstd");
  assert_reads_disk (f, "disk.xz", "xz");
  assert_reads_disk (f, "two.xz", "xz");
  assert_reads_disk (f, "blocks.xz", "xz");
  assert_reads_disk (f, "disk.gz", "gzip");
  assert_reads_disk (f, "two.gz", "gzip");
  assert_reads_disk (f, "disk.bz2", "bzip2");
  assert_reads_disk (f, "two.bz2", "bzip2");
}

/* every format gives the raw disk's image id; the name drops the suffixes */
static void
test_import (Fixture       *f,
             gconstpointer  data)
{
  static const gchar *files[] = { "disk.raw", "disk.img.xz", "disk.img.gz", "disk.img.zst", "disk.bin.bz2" };
  g_autofree gchar *root = g_build_filename (f->dir, "store", NULL);
  g_autofree gchar *first = NULL;

  if (!image_test_have ("zstd") || !image_test_have ("xz") || !image_test_have ("gzip") ||
      !image_test_have ("bzip2"))
    return;
  sh (f, "xz -c disk.raw > disk.img.xz; gzip -c disk.raw > disk.img.gz; zstd -q -c disk.raw > disk.img.zst");
  sh (f, "bzip2 -c disk.raw > disk.bin.bz2");
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree gchar *path = g_build_filename (f->dir, files[i], NULL);
      g_autoptr(GError) error = NULL;
      g_autoptr(ShoalImageInfo) info = NULL;
      ShoalImportStats stats = { 0 };
      g_autofree gchar *id = shoal_image_files_import (root, path, NULL, 4096, &stats, NULL, NULL, NULL, &error);

      g_assert_no_error (error);
      info = shoal_image_files_inspect (root, id, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (info->name, ==, "disk");
      g_assert_cmpuint (stats.n_zero, ==, 16);
      if (i == 0)
        first = g_strdup (id);
      else
        g_assert_cmpstr (id, ==, first);
    }
}

static void
expect_error (Fixture     *f,
              const gchar *name,
              gint         code,
              const gchar *what)
{
  g_autoptr(GError) error = NULL;
  const gchar *format = NULL;
  g_autoptr(GBytes) disk = read_disk (f, name, 65536, &format, &error);

  g_assert_null (disk);
  g_assert_error (error, SHOAL_ERROR, code);
  g_test_message ("%s: %s", name, error->message);
  if (strstr (error->message, what) == NULL)
    g_error ("“%s” does not say “%s”", error->message, what);
}

static void
test_bad (Fixture       *f,
          gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  const gchar *format = NULL;
  g_autoptr(GBytes) empty = NULL;

  if (!image_test_have ("xz") || !image_test_have ("gzip") || !image_test_have ("zstd") ||
      !image_test_have ("bzip2"))
    return;
  sh (f, "xz -c disk.raw > disk.xz; gzip -c disk.raw > disk.gz; zstd -q -c disk.raw > disk.zst");
  sh (f, "bzip2 -c disk.raw > disk.bz2");
  /* cut anywhere: in the data, in the index or trailer, a byte short */
  sh (f, "head -c 3000 disk.xz > cut.xz; head -c -20 disk.xz > index.xz; head -c -1 disk.xz > byte.xz");
  sh (f, "head -c 3000 disk.gz > cut.gz; head -c -4 disk.gz > trailer.gz; head -c -1 disk.gz > byte.gz");
  sh (f, "head -c -1 disk.zst > byte.zst; head -c 3000 disk.bz2 > cut.bz2; head -c -1 disk.bz2 > byte.bz2");
  expect_error (f, "cut.xz", SHOAL_ERROR_INVALID_DATA, "truncated xz");
  expect_error (f, "index.xz", SHOAL_ERROR_INVALID_DATA, "truncated xz");
  expect_error (f, "byte.xz", SHOAL_ERROR_INVALID_DATA, "truncated xz");
  expect_error (f, "cut.gz", SHOAL_ERROR_INVALID_DATA, "truncated gzip");
  expect_error (f, "trailer.gz", SHOAL_ERROR_INVALID_DATA, "truncated gzip");
  expect_error (f, "byte.gz", SHOAL_ERROR_INVALID_DATA, "truncated gzip");
  expect_error (f, "byte.zst", SHOAL_ERROR_INVALID_DATA, "truncated zstd");
  expect_error (f, "cut.bz2", SHOAL_ERROR_INVALID_DATA, "truncated bzip2");
  expect_error (f, "byte.bz2", SHOAL_ERROR_INVALID_DATA, "truncated bzip2");

  /* a changed byte: the block check (xz) or the CRC (gzip, bzip2) tells */
  sh (f, "cp disk.xz flip.xz; printf 'Z' | dd of=flip.xz bs=1 seek=2000 conv=notrunc 2>/dev/null");
  sh (f, "cp disk.gz flip.gz; printf 'Z' | dd of=flip.gz bs=1 seek=2000 conv=notrunc 2>/dev/null");
  expect_error (f, "flip.xz", SHOAL_ERROR_INVALID_DATA, "Cannot decompress");
  expect_error (f, "flip.gz", SHOAL_ERROR_INVALID_DATA, "Cannot decompress");
  sh (f, "cp disk.bz2 flip.bz2; printf 'Z' | dd of=flip.bz2 bs=1 seek=2000 conv=notrunc 2>/dev/null");
  expect_error (f, "flip.bz2", SHOAL_ERROR_INVALID_DATA, "Cannot decompress");

  /* something after the last stream or member that is not one */
  sh (f, "cat disk.xz > tail.xz; echo 'not a stream header, nor padding' >> tail.xz");
  sh (f, "cat disk.gz > tail.gz; echo 'not a member header' >> tail.gz");
  expect_error (f, "tail.xz", SHOAL_ERROR_INVALID_DATA, "Cannot decompress");
  expect_error (f, "tail.gz", SHOAL_ERROR_INVALID_DATA, "Cannot decompress");
  sh (f, "cat disk.bz2 > tail.bz2; echo 'not a stream header' >> tail.bz2");
  expect_error (f, "tail.bz2", SHOAL_ERROR_INVALID_DATA, "not a bzip2 stream");

  /* a compressed empty file is an empty disk */
  sh (f, "gzip -c < /dev/null > empty.gz");
  empty = read_disk (f, "empty.gz", 65536, &format, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (empty), ==, 0);
}

/* reads name, truncating it to cut bytes after the first read: the
 * source must say it shrank, not end early or read zeros */
static void
expect_shrank (Fixture     *f,
               const gchar *name,
               goffset      cut)
{
  g_autofree gchar *path = g_build_filename (f->dir, name, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImageSource) s = shoal_image_source_open (path, &error);
  g_autofree guint8 *buf = g_malloc (65536);
  gssize n = 0;

  g_assert_no_error (error);
  g_assert_cmpint (shoal_image_source_fill (s, buf, 65536, &error), ==, 65536);
  g_assert_cmpint (truncate (path, cut), ==, 0);
  for (guint i = 0; i < 1000; i++)
    {
      n = shoal_image_source_fill (s, buf, 65536, &error);
      if (n < 65536)
        break;
    }
  g_assert_cmpint (n, ==, -1);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "shrank while being read"));
}

/* a raw file cut while it is read: its data, or the hole at its end */
static void
test_raw_shrinks (Fixture       *f,
                  gconstpointer  data)
{
  sh (f, "cp disk.raw cut.raw; cp disk.raw hole.raw; truncate -s +1M hole.raw");
  expect_shrank (f, "cut.raw", 100 * 1024);
  expect_shrank (f, "hole.raw", (goffset) g_bytes_get_size (f->disk));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/shoal/image-store/source/formats", Fixture, NULL, fixture_setup, test_formats, fixture_teardown);
  g_test_add ("/shoal/image-store/source/import", Fixture, NULL, fixture_setup, test_import, fixture_teardown);
  g_test_add ("/shoal/image-store/source/bad", Fixture, NULL, fixture_setup, test_bad, fixture_teardown);
  g_test_add ("/shoal/image-store/source/raw-shrinks", Fixture, NULL, fixture_setup, test_raw_shrinks,
              fixture_teardown);
  return g_test_run ();
}
