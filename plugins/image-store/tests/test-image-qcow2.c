/* test-image-qcow2.c: importing qcow2 images made by qemu-img: the same
 * image as the raw disk they hold, whatever their version, cluster size and
 * compression; refused and corrupt ones end in a clear error
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "shoal-error.h"
#include "shoal-image-files.h"
#include "image-test-util.h"

#define CHUNK 65536

typedef struct {
  gchar *dir;
  gchar *root;
  gchar *raw;       /* the disk of every qcow2 image below */
  gchar *raw_id;    /* its id, imported as "disk" */
} Fixture;



/* random, zeros, text that compresses, zeros, a random tail: 7 chunks of
 * 64 KiB and 1 KiB (qcow2 disks are whole 512-byte sectors) */
static void
write_raw (Fixture *f)
{
  gsize len = 7 * CHUNK + 1024;
  g_autofree guint8 *p = g_malloc0 (len);

  image_test_fill_random (p, 2 * CHUNK, 1);
  for (gsize i = 3 * CHUNK; i < 5 * CHUNK + 100; i++)
    p[i] = "a shoal of fish "[i % 16];
  image_test_fill_random (p + 7 * CHUNK, 1024, 2);
  f->raw = g_build_filename (f->dir, "disk.raw", NULL);
  g_assert_true (g_file_set_contents (f->raw, (const gchar *) p, (gssize) len, NULL));
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp ("shoal-image-qcow2-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->root = g_build_filename (f->dir, "store", NULL);
  write_raw (f);
  f->raw_id = shoal_image_files_import (f->root, f->raw, "disk", CHUNK, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  image_test_rm_rf (f->dir);
  g_free (f->dir);
  g_free (f->root);
  g_free (f->raw);
  g_free (f->raw_id);
}

static gboolean
have_qemu_img (void)
{
  return image_test_have ("qemu-img") && image_test_have ("qemu-io");
}

/* runs argv (NULL-terminated), which must succeed */
static void
run (const gchar * const *argv)
{
  image_test_spawn (NULL, argv);
}

/* qemu-img convert -f raw -O qcow2 [opts] disk.raw name */
static gchar *
convert (Fixture     *f,
         const gchar *name,
         const gchar *options,
         gboolean     compress)
{
  gchar *path = g_build_filename (f->dir, name, NULL);
  const gchar *argv[] = { "qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", options,
                          f->raw, path, compress ? "-c" : NULL, NULL };

  run (argv);
  return path;
}

static void
import_equals_raw (Fixture     *f,
                   const gchar *path,
                   gboolean     sparse)
{
  g_autoptr(GError) error = NULL;
  ShoalImportStats stats = { 0 };
  g_autofree gchar *id = NULL;

  id = shoal_image_files_import (f->root, path, "disk", CHUNK, &stats, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (id, ==, f->raw_id);
  g_assert_cmpuint (stats.n_chunks, ==, 8);
  g_assert_cmpuint (stats.n_zero, ==, 2);      /* 2 and 6 (5 holds 100 bytes of text) */
  g_assert_cmpuint (stats.n_written, ==, 0);   /* every chunk is the raw image's */
  if (sparse)
    g_assert_cmpuint (stats.bytes_read, <, 7 * CHUNK);
}

static void
test_same_as_raw (Fixture       *f,
                  gconstpointer  data)
{
  static const struct {
    const gchar *options;
    gboolean     compress;
  } variants[] = {
    { "compat=1.1", FALSE },
    { "compat=0.10", FALSE },
    { "cluster_size=512", FALSE },
    { "cluster_size=2M", FALSE },
    { "compat=1.1", TRUE },                         /* deflate */
    { "compat=0.10,cluster_size=4096", TRUE },
    { "compression_type=zstd", TRUE },
    { "compression_type=zstd,cluster_size=2M", TRUE },
  };

  if (!have_qemu_img ())
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (variants); i++)
    {
      g_autofree gchar *name = g_strdup_printf ("disk-%" G_GSIZE_FORMAT ".qcow2", i);
      g_autofree gchar *path = convert (f, name, variants[i].options, variants[i].compress);

      g_test_message ("qemu-img convert -o %s%s", variants[i].options, variants[i].compress ? " -c" : "");
      /* a 2 MiB cluster holds the whole disk: nothing unallocated */
      import_equals_raw (f, path, !variants[i].compress && strstr (variants[i].options, "2M") == NULL);
    }
}

/* A file that ends inside its last data cluster, which qemu reads as if
 * zeros followed: the same image whatever the chunk size. A read beginning
 * in that cluster past the file's end (a 1 MiB chunk at 7 MiB, in a 2 MiB
 * cluster of which the file holds 4 KiB) was refused as corrupt. */
static void
test_ends_inside_cluster (Fixture       *f,
                          gconstpointer  data)
{
  g_autofree gchar *path = g_build_filename (f->dir, "short.qcow2", NULL);
  g_autofree gchar *raw = g_build_filename (f->dir, "short.raw", NULL);
  const gchar *create[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", path, "8M", NULL };
  const gchar *io[] = { "qemu-io", "-c", "write -P 0x5a 0 4k", "-c", "write -P 0x33 6M 4k", path, NULL };
  const gchar *to_raw[] = { "qemu-img", "convert", "-f", "qcow2", "-O", "raw", path, raw, NULL };
  static const guint32 chunk_sizes[] = { CHUNK, 1048576, 2097152 };
  g_autoptr(GError) error = NULL;
  g_autofree gchar *id_raw = NULL;
  GStatBuf st;

  if (!have_qemu_img ())
    return;
  run (create);
  run (io);
  /* the last cluster (6 MiB) is the file's last 2 MiB: keep 4 KiB of it */
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (truncate (path, st.st_size - 2097152 + 4096), ==, 0);
  run (to_raw);
  for (gsize i = 0; i < G_N_ELEMENTS (chunk_sizes); i++)
    {
      g_autofree gchar *id = NULL;

      g_free (id_raw);
      id_raw = shoal_image_files_import (f->root, raw, "short", chunk_sizes[i], NULL, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      id = shoal_image_files_import (f->root, path, "short", chunk_sizes[i], NULL, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (id, ==, id_raw);
    }
}

typedef struct {
  guint64 done, total, calls;
} Progress;

static void
on_progress (guint64  done,
             guint64  total,
             gpointer user_data)
{
  Progress *p = user_data;

  g_assert_cmpuint (done, >=, p->done);
  p->done = done;
  p->total = total;
  p->calls++;
}

/* zero clusters (version 3's flag), clusters never written, a disk larger
 * than its data, the name taken from the file name, progress in the
 * virtual disk's bytes */
static void
test_zero_clusters (Fixture       *f,
                    gconstpointer  data)
{
  g_autofree gchar *path = g_build_filename (f->dir, "fleet-os.qcow2", NULL);
  g_autofree gchar *raw = g_build_filename (f->dir, "fleet-os.raw", NULL);
  const gchar *create[] = { "qemu-img", "create", "-q", "-f", "qcow2", path, "64M", NULL };
  /* 9M before 8M: the file holds their clusters out of order */
  const gchar *io[] = { "qemu-io", "-c", "write -P 0x5a 0 4M", "-c", "write -z 1M 1M",
                        "-c", "write -P 0x22 9M 64k", "-c", "write -P 0x33 8M 192k",
                        "-c", "write -P 0x11 50M 12k", path, NULL };
  const gchar *to_raw[] = { "qemu-img", "convert", "-f", "qcow2", "-O", "raw", path, raw, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImageInfo) info = NULL;
  ShoalImportStats stats = { 0 };
  Progress progress = { 0 };
  g_autofree gchar *id = NULL;
  g_autofree gchar *id_raw = NULL;

  if (!have_qemu_img ())
    return;
  run (create);
  run (io);
  run (to_raw);
  id = shoal_image_files_import (f->root, path, NULL, 0, &stats, on_progress, &progress, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (stats.n_chunks, ==, 64);
  g_assert_cmpuint (stats.n_zero, ==, 64 - 6);      /* 0 2 3 8 9 and 50 hold data */
  g_assert_cmpuint (stats.bytes_read, <, 4 * 1048576);
  g_assert_cmpuint (progress.total, ==, 64 * 1048576);
  g_assert_cmpuint (progress.done, ==, progress.total);
  info = shoal_image_files_inspect (f->root, id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (info->name, ==, "fleet-os");
  g_assert_cmpuint (info->size, ==, 64 * 1048576);

  id_raw = shoal_image_files_import (f->root, raw, "fleet-os", 0, &stats, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (id_raw, ==, id);
  g_assert_true (shoal_image_files_verify (f->root, id, NULL, &error));
  g_assert_no_error (error);
}

static GByteArray *
read_file (const gchar *path)
{
  gchar *data = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  return g_byte_array_new_take ((guint8 *) data, len);
}

static guint64
get64 (GByteArray *b,
       gsize       at)
{
  guint64 v;

  memcpy (&v, b->data + at, 8);
  return GUINT64_FROM_BE (v);
}

static void
put64 (GByteArray *b,
       gsize       at,
       guint64     v)
{
  v = GUINT64_TO_BE (v);
  memcpy (b->data + at, &v, 8);
}

static void
put32 (GByteArray *b,
       gsize       at,
       guint32     v)
{
  v = GUINT32_TO_BE (v);
  memcpy (b->data + at, &v, 4);
}

/* imports path, which must fail with code and a message holding what;
 * nothing is added to the store (the fixture's raw disk is there) */
static void
expect_error (Fixture     *f,
              const gchar *path,
              gint         code,
              const gchar *what)
{
  image_test_expect_import_error (f->root, path, code, what, 1);
}

/* writes b to name in the fixture's folder */
static gchar *
save (Fixture     *f,
      const gchar *name,
      GByteArray  *b)
{
  gchar *path = g_build_filename (f->dir, name, NULL);

  g_assert_true (g_file_set_contents (path, (const gchar *) b->data, (gssize) b->len, NULL));
  return path;
}

static void
test_refused (Fixture       *f,
              gconstpointer  data)
{
  g_autofree gchar *base = NULL;
  g_autofree gchar *top = NULL;
  g_autofree gchar *ext = NULL;
  g_autofree gchar *external = NULL;
  g_autofree gchar *data_file = NULL;
  g_autoptr(GByteArray) b = NULL;
  g_autofree gchar *enc = NULL, *feature = NULL, *v4 = NULL, *marked = NULL, *big = NULL;
  g_autoptr(GTimer) timer = NULL;

  if (!have_qemu_img ())
    return;
  base = convert (f, "base.qcow2", "compat=1.1", FALSE);
  top = g_build_filename (f->dir, "top.qcow2", NULL);
  run ((const gchar *[]) { "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top, NULL });
  expect_error (f, top, SHOAL_ERROR_NOT_SUPPORTED, "backing file");

  ext = convert (f, "subclusters.qcow2", "extended_l2=on", FALSE);
  expect_error (f, ext, SHOAL_ERROR_NOT_SUPPORTED, "extended L2");

  /* qemu-img creates the data file where it is named: in the test's folder */
  external = g_build_filename (f->dir, "external.qcow2", NULL);
  data_file = g_strdup_printf ("data_file=%s/external.data", f->dir);
  run ((const gchar *[]) { "qemu-img", "create", "-q", "-f", "qcow2", "-o", data_file, external, "1M", NULL });
  expect_error (f, external, SHOAL_ERROR_NOT_SUPPORTED, "external data file");

  b = read_file (base);
  put32 (b, 32, 1);                           /* crypt_method AES */
  enc = save (f, "encrypted.qcow2", b);
  expect_error (f, enc, SHOAL_ERROR_NOT_SUPPORTED, "encrypted");
  put32 (b, 32, 0);

  put64 (b, 72, G_GUINT64_CONSTANT (1) << 5);  /* an incompatible feature of tomorrow */
  feature = save (f, "feature.qcow2", b);
  expect_error (f, feature, SHOAL_ERROR_NOT_SUPPORTED, "0x20");

  put64 (b, 72, 2);                           /* qemu found it corrupt */
  marked = save (f, "marked.qcow2", b);
  expect_error (f, marked, SHOAL_ERROR_INVALID_DATA, "qemu marked it corrupt");
  put64 (b, 72, 0);

  put32 (b, 4, 4);
  v4 = save (f, "v4.qcow2", b);
  expect_error (f, v4, SHOAL_ERROR_NOT_SUPPORTED, "version 4");

  /* 100 GiB: more than 2^24 chunks of 4 KiB, refused before anything is read */
  big = g_build_filename (f->dir, "big.qcow2", NULL);
  run ((const gchar *[]) { "qemu-img", "create", "-q", "-f", "qcow2", big, "100G", NULL });
  timer = g_timer_new ();
  expect_error (f, big, SHOAL_ERROR_INVALID_DATA, "holds more than 68719476736 bytes");
  g_assert_cmpfloat (g_timer_elapsed (timer, NULL), <, 5.0);
}

/* the offset of the first L2 table and the entry of the first allocated
 * cluster in it (the first compressed one) */
static void
first_l2 (GByteArray *b,
          gboolean    compressed,
          gsize      *l2,
          gsize      *entry)
{
  guint64 l1 = get64 (b, 40);
  guint cluster = 1u << (b->data[23]);

  *l2 = (gsize) (get64 (b, l1) & G_GUINT64_CONSTANT (0x00fffffffffffe00));
  g_assert_cmpuint (*l2, !=, 0);
  for (*entry = *l2; *entry < *l2 + cluster; *entry += 8)
    if (get64 (b, *entry) != 0 && (!compressed || (get64 (b, *entry) & (G_GUINT64_CONSTANT (1) << 62))))
      return;
  g_assert_not_reached ();
}

static void
test_corrupt (Fixture       *f,
              gconstpointer  data)
{
  g_autofree gchar *plain = NULL, *packed = NULL;
  g_autoptr(GByteArray) b = NULL;
  g_autoptr(GByteArray) z = NULL;
  g_autofree gchar *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL, *p5 = NULL, *p6 = NULL, *p7 = NULL;
  gsize l2, entry;
  guint64 l1;

  if (!have_qemu_img ())
    return;
  plain = convert (f, "plain.qcow2", "compat=1.1", FALSE);
  packed = convert (f, "packed.qcow2", "compat=1.1", TRUE);
  b = read_file (plain);
  l1 = get64 (b, 40);
  first_l2 (b, FALSE, &l2, &entry);

  g_byte_array_set_size (b, (guint) l2 + 100);     /* ends inside the L2 table */
  p1 = save (f, "truncated.qcow2", b);
  expect_error (f, p1, SHOAL_ERROR_INVALID_DATA, "past its end");
  g_byte_array_unref (b);

  b = read_file (plain);
  g_byte_array_set_size (b, 90);
  p2 = save (f, "header.qcow2", b);
  expect_error (f, p2, SHOAL_ERROR_INVALID_DATA, "inside its header");
  g_byte_array_unref (b);

  b = read_file (plain);
  put64 (b, 40, (guint64) b->len * 4);             /* L1 table past the end */
  p3 = save (f, "l1.qcow2", b);
  expect_error (f, p3, SHOAL_ERROR_INVALID_DATA, "past its end");
  put64 (b, 40, l1);

  put64 (b, l1, get64 (b, l1) + 512);              /* L2 table off its boundary */
  p4 = save (f, "l2.qcow2", b);
  expect_error (f, p4, SHOAL_ERROR_INVALID_DATA, "not a cluster boundary");
  put64 (b, l1, get64 (b, l1) - 512);

  put64 (b, entry, get64 (b, entry) | 0x10);       /* reserved bit of an L2 entry */
  p5 = save (f, "reserved.qcow2", b);
  expect_error (f, p5, SHOAL_ERROR_INVALID_DATA, "reserved bits");

  put64 (b, l1, 0);
  put32 (b, 36, 0);                                /* no L1 entry for a 449 KiB disk */
  p6 = save (f, "l1-size.qcow2", b);
  expect_error (f, p6, SHOAL_ERROR_INVALID_DATA, "L1 table has 0 entries");

  z = read_file (packed);
  first_l2 (z, TRUE, &l2, &entry);  /* random clusters stay plain */
  {
    guint shift = 62 - (z->data[23] - 8);
    gsize at = (gsize) (get64 (z, entry) & ((G_GUINT64_CONSTANT (1) << shift) - 1));

    for (gsize i = at; i < at + 64 && i < z->len; i++)
      z->data[i] ^= 0x55;                          /* the deflate stream */
  }
  p7 = save (f, "garbled.qcow2", z);
  expect_error (f, p7, SHOAL_ERROR_INVALID_DATA, "does not decompress");
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/shoal/image-store/qcow2/same-as-raw", Fixture, NULL, fixture_setup, test_same_as_raw, fixture_teardown);
  g_test_add ("/shoal/image-store/qcow2/ends-inside-cluster", Fixture, NULL, fixture_setup, test_ends_inside_cluster,
              fixture_teardown);
  g_test_add ("/shoal/image-store/qcow2/zero-clusters", Fixture, NULL, fixture_setup, test_zero_clusters, fixture_teardown);
  g_test_add ("/shoal/image-store/qcow2/refused", Fixture, NULL, fixture_setup, test_refused, fixture_teardown);
  g_test_add ("/shoal/image-store/qcow2/corrupt", Fixture, NULL, fixture_setup, test_corrupt, fixture_teardown);
  return g_test_run ();
}
