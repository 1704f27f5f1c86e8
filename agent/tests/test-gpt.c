/* test-gpt.c: the agent moves a written image's backup GPT to the end of a
 * larger disk (sa-gpt.c); images made by sfdisk, the result checked by
 * sgdisk -v and sfdisk --json
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <unistd.h>

#include "sa-gpt.h"
#include "target-test-loop.h"
#include "target-test-md.h"

#define IMAGE_SIZE (4u << 20)
#define DISK_SIZE  (64u << 20)

static const gchar *table_script =
  "label: gpt\n"
  "size=1MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"EFI\"\n"
  "type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"root\"\n";

/* @argv with @input on its standard input; its standard output (and
 * error, merged) in *out; FALSE when it cannot run or fails */
static gboolean
run (const gchar *const *argv, const gchar *input, gchar **out)
{
  g_autoptr(GSubprocess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *text = NULL;

  p = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                         G_SUBPROCESS_FLAGS_STDERR_MERGE, &error);
  if (p == NULL || !g_subprocess_communicate_utf8 (p, input, NULL, &text, NULL, &error))
    {
      g_test_message ("%s: %s", argv[0], error->message);
      return FALSE;
    }
  g_test_message ("$ %s ...\n%s", argv[0], text != NULL ? text : "");
  if (out != NULL)
    *out = g_steal_pointer (&text);
  return g_subprocess_get_if_exited (p) && g_subprocess_get_exit_status (p) == 0;
}

static gboolean
have_tools (void)
{
  g_autofree gchar *sfdisk = g_find_program_in_path ("sfdisk");
  g_autofree gchar *sgdisk = g_find_program_in_path ("sgdisk");

  if (sfdisk == NULL || sgdisk == NULL)
    {
      g_test_skip ("needs sfdisk (fdisk) and sgdisk (gdisk)");
      return FALSE;
    }
  return TRUE;
}

/* A whole-disk image of IMAGE_SIZE bytes with an EFI and a root partition,
 * made by sfdisk for sectors of @sector bytes, its partitions filled with
 * a pattern */
static guint8 *
make_image (guint sector)
{
  g_autofree gchar *path = NULL, *dev = NULL;
  const gchar *argv[] = { "sfdisk", "-q", NULL, NULL };
  gchar *data = NULL;
  gsize len = 0;
  gboolean made;
  gint fd = g_file_open_tmp ("shoal-gpt-image-XXXXXX", &path, NULL);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (ftruncate (fd, IMAGE_SIZE), ==, 0);
  close (fd);
  /* sfdisk takes a file for 512-byte sectors; other sizes through a loop
   * device of that sector size */
  if (sector != 512 && (dev = target_test_loop_attach (path, sector)) == NULL)
    {
      g_unlink (path);
      return NULL;
    }
  argv[2] = dev != NULL ? dev : path;
  made = run (argv, table_script, NULL);
  if (dev != NULL)
    g_assert_true (target_test_loop_detach (dev));
  g_assert_true (made);
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  g_assert_cmpuint (len, ==, IMAGE_SIZE);
  /* the partitions' contents: from 1 MiB to before the backup entries */
  for (gsize i = 1u << 20; i < IMAGE_SIZE - 33 * sector; i++)
    data[i] = (gchar) (i * 7 + i / 4093);
  g_unlink (path);
  return (guint8 *) data;
}

/* a disk of @disk_size bytes full of a pattern, with @image written at its start */
static gchar *
make_disk (const guint8 *image, gsize image_size, gsize disk_size, guint8 **contents)
{
  gchar *path = NULL;
  guint8 *data = g_malloc (disk_size);
  gint fd = g_file_open_tmp ("shoal-gpt-disk-XXXXXX", &path, NULL);

  g_assert_cmpint (fd, >=, 0);
  for (gsize i = 0; i < disk_size; i++)
    data[i] = (guint8) (i * 13 + 5);
  memcpy (data, image, image_size);
  g_assert_cmpint (write (fd, data, disk_size), ==, (gssize) disk_size);
  close (fd);
  *contents = data;
  return path;
}

static guint8 *
read_disk (const gchar *path, gsize size)
{
  gchar *data = NULL;
  gsize len = 0;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  g_assert_cmpuint (len, ==, size);
  return (guint8 *) data;
}

/* the disk holds @expected, @size bytes, and nothing else */
static void
assert_disk_holds (const gchar *path, const guint8 *expected, gsize size)
{
  g_autofree guint8 *now = read_disk (path, size);

  g_assert_cmpmem (now, size, expected, size);
}

/* sfdisk --json: the table's last usable LBA and its partitions as
 * "start+size" */
static gchar *
sfdisk_layout (const gchar *path, gint64 *lastlba)
{
  const gchar *argv[] = { "sfdisk", "--json", path, NULL };
  g_autofree gchar *out = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GString) layout = g_string_new (NULL);
  JsonObject *table;
  JsonArray *parts;
  const gchar *json;

  g_assert_true (run (argv, NULL, &out));
  /* sfdisk's warnings (merged) come after the document */
  json = strchr (out, '{');
  g_assert_nonnull (json);
  g_assert_true (json_parser_load_from_data (parser, json, (gssize) (strrchr (json, '}') + 1 - json), NULL));
  table = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)), "partitiontable");
  *lastlba = json_object_get_int_member_with_default (table, "lastlba", -1);
  parts = json_object_get_array_member (table, "partitions");
  for (guint i = 0; i < json_array_get_length (parts); i++)
    {
      JsonObject *p = json_array_get_object_element (parts, i);

      g_string_append_printf (layout, "%" G_GINT64_FORMAT "+%" G_GINT64_FORMAT " ",
                              json_object_get_int_member (p, "start"), json_object_get_int_member (p, "size"));
    }
  return g_string_free (g_steal_pointer (&layout), FALSE);
}

/* sgdisk's verdict on the table of @path */
static void
assert_sgdisk_clean (const gchar *path)
{
  const gchar *argv[] = { "sgdisk", "-v", path, NULL };
  g_autofree gchar *out = NULL;

  g_assert_true (run (argv, NULL, &out));
  g_assert_nonnull (strstr (out, "No problems found"));
}

static guint32
le32 (const guint8 *p)
{
  return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

/* what sa_gpt_fit_disk wipes past an image of @image_size bytes on a disk
 * of @disk_size, zeroed in @expected: the disk's last MiB past the image */
static gsize
expect_tail_wiped (guint8 *expected, gsize image_size, gsize disk_size)
{
  gsize from = disk_size - image_size > (1u << 20) ? disk_size - (1u << 20) : image_size;

  if (image_size < disk_size)
    memset (expected + from, 0, disk_size - from);
  return disk_size - from;
}

static const gchar *tail_wiped_message =
  "past the image, the disk's last 1048576 bytes zeroed (where an earlier system's md RAID superblock, "
  "ZFS labels and GPT backup are kept)";

/* @sector: the disk's logical sector size; @on_loop: the disk is a loop
 * device over the file, else the file itself */
static void
check_moved (guint sector, gboolean on_loop)
{
  g_autofree guint8 *image = NULL, *before = NULL, *after = NULL;
  g_autofree gchar *disk = NULL, *layout_image = NULL, *layout_disk = NULL, *image_path = NULL;
  g_autofree gchar *expect = NULL;
  gint64 lastlba_image = 0, lastlba_disk = 0;
  gsize last = DISK_SIZE / sector - 1, old_backup = IMAGE_SIZE / sector - 1;
  gsize array_sectors = 16384 / sector;
  g_autofree gchar *image_dev = NULL, *disk_dev = NULL;
  char msg[1024];
  SaGptOutcome outcome;
  gint fd;

  if (!have_tools () || (image = make_image (sector)) == NULL)
    return;
  fd = g_file_open_tmp ("shoal-gpt-image-XXXXXX", &image_path, NULL);
  g_assert_cmpint (write (fd, image, IMAGE_SIZE), ==, IMAGE_SIZE);
  close (fd);
  disk = make_disk (image, IMAGE_SIZE, DISK_SIZE, &before);
  if (sector != 512 || on_loop)
    {
      /* the tools read a table of other sector sizes through a loop
       * device of that size */
      image_dev = target_test_loop_attach (image_path, sector);
      disk_dev = image_dev != NULL ? target_test_loop_attach (disk, sector) : NULL;
      if (disk_dev == NULL)
        {
          if (image_dev != NULL)
            g_assert_true (target_test_loop_detach (image_dev));
          g_unlink (disk);
          g_unlink (image_path);
          return;
        }
    }
  layout_image = sfdisk_layout (image_dev != NULL ? image_dev : image_path, &lastlba_image);
  /* a file has its sector size found (the GPT at 512 or 4096), a device
   * its own */
  outcome = sa_gpt_fit_path (on_loop ? disk_dev : disk, IMAGE_SIZE, msg, sizeof msg);
  if (disk_dev != NULL)
    layout_disk = sfdisk_layout (disk_dev, &lastlba_disk);
  if (image_dev != NULL)
    g_assert_true (target_test_loop_detach (image_dev));
  if (disk_dev != NULL)
    g_assert_true (target_test_loop_detach (disk_dev));
  g_test_message ("%s", msg);
  g_assert_cmpint (outcome, ==, SA_GPT_MOVED);
  expect = g_strdup_printf ("GPT backup moved from LBA %" G_GSIZE_FORMAT " to the disk's last LBA %" G_GSIZE_FORMAT
                            "; last usable LBA %" G_GSIZE_FORMAT ", was %" G_GINT64_FORMAT " (%u-byte sectors); "
                            "protective MBR resized; %s", old_backup, last, last - array_sectors - 1,
                            lastlba_image, sector, tail_wiped_message);
  g_assert_cmpstr (msg, ==, expect);

  /* the tools find a whole, consistent table reaching the disk's end,
   * with the same partitions */
  if (sector == 512)
    {
      assert_sgdisk_clean (disk);
      g_clear_pointer (&layout_disk, g_free);
      layout_disk = sfdisk_layout (disk, &lastlba_disk);
    }
  g_assert_cmpstr (layout_disk, ==, layout_image);
  g_assert_cmpint (lastlba_disk, ==, (gint64) (last - array_sectors - 1));

  /* what changed: LBA 0 and 1 (the protective MBR's size, the primary
   * header), the old backup header (cleared), the disk's last MiB
   * (zeroed: whatever an earlier system kept there), in it the last
   * sectors (the new backup); nothing else, partitions included */
  after = read_disk (disk, DISK_SIZE);
  g_assert_cmpmem (after + 2 * sector, old_backup * sector - 2 * sector, before + 2 * sector,
                   old_backup * sector - 2 * sector);
  for (gsize i = 0; i < sector; i++)
    g_assert_cmpuint (after[old_backup * sector + i], ==, 0);
  g_assert_cmpmem (after + IMAGE_SIZE, DISK_SIZE - IMAGE_SIZE - (1u << 20), before + IMAGE_SIZE,
                   DISK_SIZE - IMAGE_SIZE - (1u << 20));
  for (gsize i = DISK_SIZE - (1u << 20); i < (last - array_sectors) * sector; i++)
    g_assert_cmpuint (after[i], ==, 0);
  /* the new backup's entries are the primary's */
  g_assert_cmpmem (after + (last - array_sectors) * sector, 16384, after + 2 * sector, 16384);
  /* the protective MBR's 0xEE partition covers the disk */
  g_assert_cmpuint (after[446 + 4], ==, 0xee);
  g_assert_cmpuint (le32 (after + 446 + 12), ==, last);
  g_assert_cmpmem (after, 446, before, 446);

  /* once moved, there is nothing more to do */
  g_assert_cmpint (sa_gpt_fit_path (disk, IMAGE_SIZE, msg, sizeof msg), ==, SA_GPT_AT_END);
  assert_disk_holds (disk, after, DISK_SIZE);
  g_unlink (disk);
  g_unlink (image_path);
}

static void
test_gpt_moved (void)
{
  check_moved (512, FALSE);
}

/* a 4Kn image in a disk image file: the GPT is found at 4096 */
static void
test_gpt_moved_4096 (void)
{
  check_moved (4096, FALSE);
}

/* a block device: its size and sector size from the kernel */
static void
test_gpt_moved_block_device (void)
{
  check_moved (512, TRUE);
  if (!g_test_failed ())
    check_moved (4096, TRUE);
}

/* the disk unchanged but for its last MiB past the image (zeroed), and
 * the outcome and message expected (with what was zeroed after it) */
static void
assert_left (const guint8 *image, gsize disk_size, SaGptOutcome expect, const gchar *message_part)
{
  g_autofree guint8 *before = NULL;
  g_autofree gchar *disk = make_disk (image, MIN (IMAGE_SIZE, disk_size), disk_size, &before);
  g_autofree gchar *wiped = NULL;
  char msg[1024] = "x";
  gsize tail = expect_tail_wiped (before, MIN (IMAGE_SIZE, disk_size), disk_size);

  g_assert_cmpint (sa_gpt_fit_path (disk, IMAGE_SIZE, msg, sizeof msg), ==, expect);
  g_test_message ("%s", msg);
  if (tail > 0)
    wiped = g_strdup_printf ("past the image, the disk's last %" G_GSIZE_FORMAT " bytes zeroed (where an earlier "
                             "system's md RAID superblock, ZFS labels and GPT backup are kept)", tail);
  if (message_part == NULL)
    g_assert_cmpstr (msg, ==, wiped != NULL ? wiped : "");
  else
    {
      g_assert_true (g_str_has_prefix (msg, message_part) || strstr (msg, message_part) != NULL);
      g_assert_true (g_str_has_suffix (msg, wiped));
    }
  assert_disk_holds (disk, before, disk_size);
  g_unlink (disk);
}

static void
test_gpt_left (void)
{
  g_autofree guint8 *image = NULL;
  g_autofree guint8 *bad = g_malloc (IMAGE_SIZE);

  if (!have_tools ())
    return;
  image = make_image (512);
  /* no table: a file system image, or an MBR one (the disk past it
   * wiped all the same) */
  memset (bad, 0x5a, IMAGE_SIZE);
  assert_left (bad, DISK_SIZE, SA_GPT_STALE_CLEARED, NULL);
  /* the image fills the disk */
  assert_left (image, IMAGE_SIZE, SA_GPT_AT_END, NULL);
  /* a damaged header (its disk GUID), or damaged entries */
  memcpy (bad, image, IMAGE_SIZE);
  bad[512 + 60] ^= 1;
  assert_left (bad, DISK_SIZE, SA_GPT_LEFT, "primary GPT header's CRC does not match");
  memcpy (bad, image, IMAGE_SIZE);
  bad[1024 + 200] ^= 1;
  assert_left (bad, DISK_SIZE, SA_GPT_LEFT, "CRC of the GPT's partition entries does not match");
  /* too little room for a second backup after the image's */
  assert_left (image, IMAGE_SIZE + 16 * 512, SA_GPT_LEFT, "only 16 sectors larger than the image");
}

/* an image made for 4096-byte sectors on a disk of 512-byte ones: its
 * partitions cannot be found there, and its table is not touched */
static void
test_gpt_sector_mismatch (void)
{
  g_autofree guint8 *image = NULL, *before = NULL;
  g_autofree gchar *disk = NULL, *dev = NULL;
  char msg[1024] = "";
  SaGptOutcome outcome;

  if (!have_tools () || (image = make_image (4096)) == NULL)
    return;
  disk = make_disk (image, IMAGE_SIZE, DISK_SIZE, &before);
  dev = target_test_loop_attach (disk, 512);
  if (dev == NULL)
    {
      g_unlink (disk);
      return;
    }
  outcome = sa_gpt_fit_path (dev, IMAGE_SIZE, msg, sizeof msg);
  g_assert_true (target_test_loop_detach (dev));
  g_test_message ("%s", msg);
  g_assert_cmpint (outcome, ==, SA_GPT_LEFT);
  g_assert_nonnull (strstr (msg, "made for 4096-byte sectors, the disk has 512-byte sectors"));
  g_assert_true (g_str_has_suffix (msg, tail_wiped_message));
  expect_tail_wiped (before, IMAGE_SIZE, DISK_SIZE);
  assert_disk_holds (disk, before, DISK_SIZE);
  g_unlink (disk);
}

/* An image of IMAGE_SIZE bytes with an MBR (sfdisk's) of one partition
 * written at the start of the disk image file @disk */
static void
write_mbr_image (const gchar *disk)
{
  const gchar *sfdisk[] = { "sfdisk", "-q", NULL, NULL };
  g_autofree gchar *image_path = NULL, *mbr_image = NULL;
  gsize len = 0;
  gint fd = g_file_open_tmp ("shoal-mbr-image-XXXXXX", &image_path, NULL);

  g_assert_cmpint (ftruncate (fd, IMAGE_SIZE), ==, 0);
  close (fd);
  sfdisk[2] = image_path;
  g_assert_true (run (sfdisk, "label: dos\ntype=83\n", NULL));
  g_assert_true (g_file_get_contents (image_path, &mbr_image, &len, NULL));
  g_unlink (image_path);
  g_assert_cmpuint (len, ==, IMAGE_SIZE);
  fd = open (disk, O_WRONLY | O_CLOEXEC);
  g_assert_cmpint (pwrite (fd, mbr_image, IMAGE_SIZE, 0), ==, IMAGE_SIZE);
  close (fd);
}

/* The disk held a system with a GPT fitted to it (its backup at the last
 * LBA); the new image has an MBR and does not reach the end: the disk's
 * last MiB, the earlier backup header in it, is zeroed, and gdisk sees
 * the MBR alone */
static void
test_gpt_stale_backup (void)
{
  g_autofree guint8 *zeros = g_malloc0 (IMAGE_SIZE), *before = NULL, *after = NULL;
  g_autofree gchar *disk = NULL;
  const gchar *sfdisk[] = { "sfdisk", "-q", NULL, NULL };
  const gchar *verify[] = { "sgdisk", "-v", NULL, NULL };
  g_autofree gchar *verdict = NULL;
  gsize last = DISK_SIZE / 512 - 1;
  char msg[1024];
  g_autofree gchar *expect = NULL;
  gint fd;

  if (!have_tools ())
    return;
  /* the earlier system: a GPT over the whole disk */
  disk = make_disk (zeros, IMAGE_SIZE, DISK_SIZE, &before);
  sfdisk[2] = disk;
  g_assert_true (run (sfdisk, table_script, NULL));
  /* the new image: an MBR, written over the disk's first 4 MiB */
  write_mbr_image (disk);
  g_free (before);
  before = read_disk (disk, DISK_SIZE);
  g_assert_cmpmem (before + last * 512, 8, "EFI PART", 8);
  /* as it is, gdisk would rebuild the earlier table from that backup */
  verify[2] = disk;
  run (verify, NULL, &verdict);
  g_assert_nonnull (verdict);
  g_assert_nonnull (strstr (verdict, "invalid main GPT header, but valid backup"));
  g_clear_pointer (&verdict, g_free);

  g_assert_cmpint (sa_gpt_fit_path (disk, IMAGE_SIZE, msg, sizeof msg), ==, SA_GPT_STALE_CLEARED);
  expect = g_strdup_printf ("%s, an earlier system's GPT backup header at the last LBA %" G_GSIZE_FORMAT
                            " among them", tail_wiped_message, last);
  g_assert_cmpstr (msg, ==, expect);
  after = read_disk (disk, DISK_SIZE);
  g_assert_cmpmem (after, DISK_SIZE - (1u << 20), before, DISK_SIZE - (1u << 20));
  for (gsize i = DISK_SIZE - (1u << 20); i < DISK_SIZE; i++)
    g_assert_cmpuint (after[i], ==, 0);
  /* gdisk no longer finds the earlier table to restore over the MBR */
  run (verify, NULL, &verdict);
  g_assert_nonnull (verdict);
  g_assert_nonnull (strstr (verdict, "Found invalid GPT and valid MBR"));
  g_assert_null (strstr (verdict, "backup"));
  /* no backup header left: zeroed again, the same */
  g_assert_cmpint (sa_gpt_fit_path (disk, IMAGE_SIZE, msg, sizeof msg), ==, SA_GPT_STALE_CLEARED);
  g_assert_cmpstr (msg, ==, tail_wiped_message);
  assert_disk_holds (disk, after, DISK_SIZE);
  /* the last LBA of an image that reaches it is the image's: never cleared */
  fd = open (disk, O_WRONLY | O_CLOEXEC);
  g_assert_cmpint (pwrite (fd, before + last * 512, 512, last * 512), ==, 512);
  close (fd);
  memcpy (after + last * 512, before + last * 512, 512);
  g_assert_cmpint (sa_gpt_fit_path (disk, DISK_SIZE, msg, sizeof msg), ==, SA_GPT_NO_TABLE);
  assert_disk_holds (disk, after, DISK_SIZE);
  g_unlink (disk);
}

/* a hybrid MBR (sgdisk -h) is the image maker's choice: kept as it is */
static void
test_gpt_hybrid_mbr (void)
{
  g_autofree guint8 *image = NULL, *before = NULL, *after = NULL;
  g_autofree gchar *disk = NULL;
  const gchar *argv[] = { "sgdisk", "-h", "1", NULL, NULL };
  char msg[1024];

  if (!have_tools ())
    return;
  image = make_image (512);
  disk = make_disk (image, IMAGE_SIZE, IMAGE_SIZE, &before);
  argv[3] = disk;
  g_assert_true (run (argv, NULL, NULL));
  g_free (before);
  before = read_disk (disk, IMAGE_SIZE);
  g_assert_cmpint (truncate (disk, DISK_SIZE), ==, 0);
  g_assert_cmpint (sa_gpt_fit_path (disk, IMAGE_SIZE, msg, sizeof msg), ==, SA_GPT_MOVED);
  g_assert_null (strstr (msg, "protective MBR"));
  after = read_disk (disk, DISK_SIZE);
  g_assert_cmpmem (after, 512, before, 512);
  assert_sgdisk_clean (disk);
  g_unlink (disk);
}

/* blkid -p's report of the bytes [@offset, @offset + @size) of @path */
static gchar *
blkid_probe_at (const gchar *path, guint64 offset, guint64 size)
{
  g_autofree gchar *o = g_strdup_printf ("%" G_GUINT64_FORMAT, offset);
  g_autofree gchar *sz = g_strdup_printf ("%" G_GUINT64_FORMAT, size);
  const gchar *argv[] = { "blkid", "-p", "-O", o, "-S", sz, path, NULL };
  gchar *out = NULL;

  run (argv, NULL, &out);
  return out != NULL ? out : g_strdup ("");
}

/* An earlier system's partitions held md RAID members and LVM PVs; the
 * new image, an MBR one, ends before them: before it is written, the
 * first and last MiB of each old partition, where they lie past it, are
 * zeroed (read from the table the image replaces), and after it the
 * disk's last MiB; nothing else of them changes. @old_script: that table;
 * @sig: the partitions (0-based in sfdisk's list) given a signature (md
 * superblock version 90, 10, 11 or 12; 2: an LVM label); @listed: for
 * each of the @n_parts partitions the agent reads, its place in sfdisk's
 * list (an extended partition is not read: its logical partitions are) */
static void
check_old_partitions (const gchar *old_script, const guint sig[][2], gsize n_sig, const guint *listed,
                      gsize n_parts, const gchar *expect_numbers)
{
  g_autofree guint8 *zeros = g_malloc0 (IMAGE_SIZE), *before = NULL, *after = NULL;
  g_autofree gchar *disk = NULL, *layout = NULL, *expect = NULL;
  g_auto(GStrv) parts = NULL;
  const gchar *sfdisk[] = { "sfdisk", "-q", NULL, NULL };
  SaGptOldTable old;
  gint64 lastlba;
  gsize wiped = 0;
  char msg[1024];
  gint fd;

  if (!have_tools ())
    return;
  disk = make_disk (zeros, IMAGE_SIZE, DISK_SIZE, &before);
  sfdisk[2] = disk;
  g_assert_true (run (sfdisk, old_script, NULL));
  layout = sfdisk_layout (disk, &lastlba);
  parts = g_strsplit (g_strstrip (layout), " ", -1);
  fd = open (disk, O_RDWR | O_CLOEXEC);
  for (gsize i = 0; i < n_sig; i++)
    {
      guint64 start = g_ascii_strtoull (parts[sig[i][0]], NULL, 10) * 512;
      guint64 size = g_ascii_strtoull (strchr (parts[sig[i][0]], '+') + 1, NULL, 10) * 512;
      g_autofree gchar *probe = NULL;

      if (sig[i][1] == 2)
        target_test_lvm_write (fd, start, size);
      else
        target_test_md_write (fd, sig[i][1], start, size);
      probe = blkid_probe_at (disk, start, size);
      g_assert_nonnull (strstr (probe, sig[i][1] == 2 ? "TYPE=\"LVM2_member\"" : "TYPE=\"linux_raid_member\""));
    }
  /* read as the agent reads it before the image is written */
  sa_gpt_read_old (fd, DISK_SIZE, 0, &old);
  g_assert_cmpuint (old.n, ==, n_parts);
  for (gsize i = 0; i < n_parts; i++)
    {
      g_assert_cmpuint (old.part[i].start, ==, g_ascii_strtoull (parts[listed[i]], NULL, 10) * 512);
      g_assert_cmpuint (old.part[i].end - old.part[i].start, ==,
                        g_ascii_strtoull (strchr (parts[listed[i]], '+') + 1, NULL, 10) * 512);
    }
  g_free (before);
  before = read_disk (disk, DISK_SIZE);
  /* wiped before the image is written, then the image: an MBR, written
   * over the disk's first 4 MiB */
  g_assert_true (sa_gpt_wipe_old (fd, DISK_SIZE, IMAGE_SIZE, &old, msg, sizeof msg));
  close (fd);
  g_test_message ("%s", msg);
  expect = g_strdup_printf ("before the image was written, the first and last MiB of %s, where md RAID "
                            "superblocks, LVM labels and file systems' superblocks are kept", expect_numbers);
  g_assert_cmpstr (msg, ==, expect);
  write_mbr_image (disk);
  g_assert_cmpint (sa_gpt_fit_path (disk, IMAGE_SIZE, msg, sizeof msg), ==, SA_GPT_STALE_CLEARED);
  g_test_message ("%s", msg);
  g_assert_true (g_str_has_prefix (msg, tail_wiped_message));
  /* what changed: the image's range, the first and last MiB of each old
   * partition past the image, the disk's last MiB; nothing else */
  after = read_disk (disk, DISK_SIZE);
  memcpy (before, after, IMAGE_SIZE);
  for (gsize i = 0; i < n_parts; i++)
    {
      guint64 start = old.part[i].start, end = old.part[i].end;
      guint64 ends[2][2] = { { start, MIN (start + (1u << 20), end) }, { MAX (end - (1u << 20), start), end } };

      for (gint k = 0; k < 2; k++)
        if (ends[k][1] > IMAGE_SIZE)
          {
            guint64 from = MAX (ends[k][0], IMAGE_SIZE);

            memset (before + from, 0, ends[k][1] - from);
            wiped++;
          }
    }
  g_assert_cmpuint (wiped, >, 0);
  expect_tail_wiped (before, IMAGE_SIZE, DISK_SIZE);
  g_assert_cmpmem (after, DISK_SIZE, before, DISK_SIZE);
  for (gsize i = 0; i < n_sig; i++)
    {
      guint64 start = g_ascii_strtoull (parts[sig[i][0]], NULL, 10) * 512;
      guint64 size = g_ascii_strtoull (strchr (parts[sig[i][0]], '+') + 1, NULL, 10) * 512;
      g_autofree gchar *probe = blkid_probe_at (disk, start, size);

      g_assert_null (strstr (probe, " TYPE="));
    }
  g_unlink (disk);
}

/* a GPT: a partition inside the image, one across its end (md 0.90), one
 * past it (1.0), one reaching the disk's end (1.2) */
static void
test_gpt_old_partitions (void)
{
  static const guint sig[][2] = { { 1, 90 }, { 2, 10 }, { 3, 12 } }, listed[] = { 0, 1, 2, 3 };

  check_old_partitions ("label: gpt\nstart=1MiB, size=2MiB\nsize=5MiB\nsize=32MiB\ntype=L\n", sig, 3, listed, 4,
                        "3 earlier partitions zeroed where they lie past it (2, 3, 4)");
}

/* an MBR: a primary partition across the image's end (md 1.0) and an
 * extended one holding two logical ones (an LVM PV; md 1.0) */
static void
test_gpt_old_partitions_mbr (void)
{
  static const guint sig[][2] = { { 1, 10 }, { 3, 2 }, { 4, 10 } }, listed[] = { 0, 1, 3, 4 };

  check_old_partitions ("label: dos\nstart=1MiB, size=2MiB\nsize=16MiB\ntype=E\nsize=8MiB\nsize=8MiB\n",
                        sig, 3, listed, 4, "3 earlier partitions zeroed where they lie past it (2, 5, 6)");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/target/gpt/moved", test_gpt_moved);
  g_test_add_func ("/shoal/target/gpt/moved-4096", test_gpt_moved_4096);
  g_test_add_func ("/shoal/target/gpt/moved-block-device", test_gpt_moved_block_device);
  g_test_add_func ("/shoal/target/gpt/left", test_gpt_left);
  g_test_add_func ("/shoal/target/gpt/sector-mismatch", test_gpt_sector_mismatch);
  g_test_add_func ("/shoal/target/gpt/hybrid-mbr", test_gpt_hybrid_mbr);
  g_test_add_func ("/shoal/target/gpt/stale-backup", test_gpt_stale_backup);
  g_test_add_func ("/shoal/target/gpt/old-partitions", test_gpt_old_partitions);
  g_test_add_func ("/shoal/target/gpt/old-partitions-mbr", test_gpt_old_partitions_mbr);
  return g_test_run ();
}
