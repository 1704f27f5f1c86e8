/* sa-gpt.c: moves a written image's backup GPT to the end of the disk
 * (UEFI 2.10, 5.3.2 "GPT Header", 5.3.3 "GPT Partition Entry Array")
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "sa-gpt.h"
#include "sa-util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define GPT_SIGNATURE      "EFI PART"
#define GPT_REVISION_1_0   0x00010000u
#define GPT_HEADER_MIN     92u
#define GPT_ENTRY_MIN      128u
/* a partition entry array larger than this is not believed (the usual one
 * is 128 entries of 128 bytes: 16 KiB) */
#define GPT_ARRAY_MAX      (4u << 20)
#define SECTOR_MAX         4096u

/* header fields (byte offsets) */
enum {
  H_REVISION = 8,
  H_SIZE = 12,
  H_CRC = 16,
  H_MY_LBA = 24,
  H_ALTERNATE_LBA = 32,
  H_FIRST_USABLE = 40,
  H_LAST_USABLE = 48,
  H_ENTRIES_LBA = 72,
  H_N_ENTRIES = 80,
  H_ENTRY_SIZE = 84,
  H_ENTRIES_CRC = 88,
};

/* a partition entry: type GUID (16 bytes, all zero when unused), unique
 * GUID, first LBA, last LBA (inclusive), attributes, name */
enum {
  E_FIRST_LBA = 32,
  E_LAST_LBA = 40,
};

static uint32_t
get_le32 (const uint8_t *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint64_t
get_le64 (const uint8_t *p)
{
  return (uint64_t) get_le32 (p) | (uint64_t) get_le32 (p + 4) << 32;
}

static void
put_le32 (uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t) (v >> (8 * i));
}

static void
put_le64 (uint8_t *p, uint64_t v)
{
  put_le32 (p, (uint32_t) v);
  put_le32 (p + 4, (uint32_t) (v >> 32));
}

/* the arrays here are at most GPT_ARRAY_MAX bytes: one call of zlib's */
static uint32_t
crc32_of (const uint8_t *data, size_t len)
{
  return (uint32_t) crc32 (0L, data, (uInt) len);
}

/* the header's CRC: over its HeaderSize bytes with the CRC field zeroed */
static uint32_t
header_crc (const uint8_t *hdr, uint32_t size)
{
  uint8_t copy[SECTOR_MAX];

  memcpy (copy, hdr, size);
  memset (copy + H_CRC, 0, 4);
  return crc32_of (copy, size);
}

/* fdatasync, where the file supports it */
static bool
sync_disk (int fd)
{
  return fdatasync (fd) == 0 || errno == EINVAL || errno == EROFS;
}

/* The GPT header at LBA 1 for sectors of @ss bytes, read into @hdr */
static bool
has_header (int fd, uint64_t disk_size, uint32_t ss, uint8_t *hdr)
{
  return disk_size >= 2 * (uint64_t) ss && sa_pread_all (fd, hdr, ss, ss) &&
         memcmp (hdr, GPT_SIGNATURE, 8) == 0;
}

/* The size a protective MBR gives its 0xEE partition on a disk whose last
 * LBA is @last; the MBR (LBA 0's first 512 bytes) in @mbr. False when
 * @mbr is not a protective MBR of exactly one 0xEE partition from LBA 1
 * (a hybrid MBR, or none): it is then left alone */
static bool
protective_mbr_size (uint8_t mbr[512], uint64_t last, uint32_t *size)
{
  int found = -1;

  if (mbr[510] != 0x55 || mbr[511] != 0xaa)
    return false;
  for (int i = 0; i < 4; i++)
    {
      const uint8_t *e = mbr + 446 + 16 * i;

      if (e[4] == 0)
        continue;
      if (e[4] != 0xee || found >= 0 || get_le32 (e + 8) != 1)
        return false;
      found = i;
    }
  if (found < 0)
    return false;
  *size = last > 0xffffffffu ? 0xffffffffu : (uint32_t) last;
  if (get_le32 (mbr + 446 + 16 * found + 12) == *size)
    return false;
  put_le32 (mbr + 446 + 16 * found + 12, *size);
  return true;
}

/* the image's own table moved to the disk's end (the outcome), or why
 * not */
static SaGptOutcome
fit_table (int fd, uint64_t disk_size, uint32_t sector, char *msg, size_t msglen)
{
  uint8_t hdr[SECTOR_MAX], backup[SECTOR_MAX], old[SECTOR_MAX], mbr[512];
  uint32_t ss = sector, other, hsize, n_entries, entry_size, mbr_size = 0;
  uint64_t last, alternate, first_usable, last_usable, entries_lba, array_bytes, array_sectors;
  uint64_t new_entries_lba, new_last_usable;
  uint8_t *array = NULL;
  SaGptOutcome outcome = SA_GPT_LEFT;

  msg[0] = '\0';
  if (ss != 0 && ss != 512 && ss != 4096)
    {
      snprintf (msg, msglen, "GPT not checked: sectors of %u bytes", ss);
      return SA_GPT_LEFT;
    }
  if (ss == 0)
    {
      /* a disk image file: 512-byte sectors unless the table is at 4096 */
      if (has_header (fd, disk_size, 512, hdr))
        ss = 512;
      else if (has_header (fd, disk_size, 4096, hdr))
        ss = 4096;
      else
        return SA_GPT_NO_TABLE;
    }
  else if (!has_header (fd, disk_size, ss, hdr))
    {
      other = ss == 512 ? 4096 : 512;
      if (!has_header (fd, disk_size, other, hdr))
        return SA_GPT_NO_TABLE;
      snprintf (msg, msglen, "the image's GPT is made for %u-byte sectors, the disk has %u-byte sectors: "
                "left as it is (the system will not find its partitions)", other, ss);
      return SA_GPT_LEFT;
    }
  last = disk_size / ss - 1;

  /* the primary header, checked as firmware checks it */
  hsize = get_le32 (hdr + H_SIZE);
  if (get_le32 (hdr + H_REVISION) != GPT_REVISION_1_0 || hsize < GPT_HEADER_MIN || hsize > ss)
    {
      snprintf (msg, msglen, "GPT header of revision 0x%08x, %u bytes: left as it is",
                get_le32 (hdr + H_REVISION), hsize);
      return SA_GPT_LEFT;
    }
  if (header_crc (hdr, hsize) != get_le32 (hdr + H_CRC))
    {
      snprintf (msg, msglen, "the primary GPT header's CRC does not match: left as it is");
      return SA_GPT_LEFT;
    }
  alternate = get_le64 (hdr + H_ALTERNATE_LBA);
  first_usable = get_le64 (hdr + H_FIRST_USABLE);
  last_usable = get_le64 (hdr + H_LAST_USABLE);
  entries_lba = get_le64 (hdr + H_ENTRIES_LBA);
  n_entries = get_le32 (hdr + H_N_ENTRIES);
  entry_size = get_le32 (hdr + H_ENTRY_SIZE);
  if (get_le64 (hdr + H_MY_LBA) != 1)
    {
      snprintf (msg, msglen, "the GPT header at LBA 1 says it is at LBA %llu: left as it is",
                (unsigned long long) get_le64 (hdr + H_MY_LBA));
      return SA_GPT_LEFT;
    }
  if (alternate == last)
    return SA_GPT_AT_END;
  if (alternate > last)
    {
      snprintf (msg, msglen, "the GPT's backup header is at LBA %llu, past the disk's last LBA %llu: left as it is",
                (unsigned long long) alternate, (unsigned long long) last);
      return SA_GPT_LEFT;
    }
  if (entry_size < GPT_ENTRY_MIN || entry_size % 8 != 0 || n_entries == 0 ||
      (uint64_t) n_entries * entry_size > GPT_ARRAY_MAX)
    {
      snprintf (msg, msglen, "GPT of %u partition entries of %u bytes: left as it is", n_entries, entry_size);
      return SA_GPT_LEFT;
    }
  array_bytes = (uint64_t) n_entries * entry_size;
  array_sectors = (array_bytes + ss - 1) / ss;
  if (last_usable >= alternate || entries_lba < 2 || entries_lba > last ||
      entries_lba + array_sectors > first_usable || first_usable > last_usable + 1)
    {
      snprintf (msg, msglen, "the GPT's layout is inconsistent (entries at LBA %llu, usable LBAs %llu to %llu, "
                "backup at %llu): left as it is", (unsigned long long) entries_lba,
                (unsigned long long) first_usable, (unsigned long long) last_usable,
                (unsigned long long) alternate);
      return SA_GPT_LEFT;
    }
  /* the backup goes to the last LBA, its entries just before it */
  if (last - alternate <= array_sectors)
    {
      snprintf (msg, msglen, "the disk is only %llu sectors larger than the image, too few for a second "
                "copy of the GPT's backup: left as it is", (unsigned long long) (last - alternate));
      return SA_GPT_LEFT;
    }
  new_entries_lba = last - array_sectors;
  new_last_usable = new_entries_lba - 1;

  array = calloc (1, array_sectors * ss);
  if (array == NULL)
    {
      snprintf (msg, msglen, "GPT: out of memory");
      return SA_GPT_ERROR;
    }
  if (!sa_pread_all (fd, array, array_sectors * ss, entries_lba * ss))
    {
      snprintf (msg, msglen, "reading the GPT's partition entries: %s", strerror (errno));
      outcome = SA_GPT_ERROR;
      goto out;
    }
  if (crc32_of (array, array_bytes) != get_le32 (hdr + H_ENTRIES_CRC))
    {
      snprintf (msg, msglen, "the CRC of the GPT's partition entries does not match: left as it is");
      goto out;
    }
  for (uint32_t i = 0; i < n_entries; i++)
    {
      const uint8_t *e = array + (size_t) i * entry_size;
      static const uint8_t unused[16];

      if (memcmp (e, unused, sizeof unused) == 0)
        continue;
      if (get_le64 (e + E_FIRST_LBA) > get_le64 (e + E_LAST_LBA) || get_le64 (e + E_FIRST_LBA) < first_usable ||
          get_le64 (e + E_LAST_LBA) > last_usable)
        {
          snprintf (msg, msglen, "GPT partition %u (LBAs %llu to %llu) is outside the usable LBAs %llu to %llu: "
                    "left as it is", i + 1, (unsigned long long) get_le64 (e + E_FIRST_LBA),
                    (unsigned long long) get_le64 (e + E_LAST_LBA), (unsigned long long) first_usable,
                    (unsigned long long) last_usable);
          goto out;
        }
    }

  /* 1. the new backup: entries, then its header; synced before the
   * primary points at it */
  memset (backup, 0, ss);
  memcpy (backup, hdr, hsize);
  put_le64 (backup + H_MY_LBA, last);
  put_le64 (backup + H_ALTERNATE_LBA, 1);
  put_le64 (backup + H_LAST_USABLE, new_last_usable);
  put_le64 (backup + H_ENTRIES_LBA, new_entries_lba);
  put_le32 (backup + H_CRC, header_crc (backup, hsize));
  if (!sa_pwrite_all (fd, array, array_sectors * ss, new_entries_lba * ss) ||
      !sa_pwrite_all (fd, backup, ss, last * ss) || !sync_disk (fd))
    {
      snprintf (msg, msglen, "writing the GPT's backup at the end of the disk: %s", strerror (errno));
      outcome = SA_GPT_ERROR;
      goto out;
    }
  /* 2. the primary */
  put_le64 (hdr + H_ALTERNATE_LBA, last);
  put_le64 (hdr + H_LAST_USABLE, new_last_usable);
  put_le32 (hdr + H_CRC, header_crc (hdr, hsize));
  if (!sa_pwrite_all (fd, hdr, ss, ss) || !sync_disk (fd))
    {
      snprintf (msg, msglen, "writing the primary GPT header: %s", strerror (errno));
      outcome = SA_GPT_ERROR;
      goto out;
    }
  /* 3. the old backup header, now inside the usable space, is cleared so
   * that nothing takes it for a table; and the protective MBR covers the
   * disk */
  if (sa_pread_all (fd, old, ss, alternate * ss) && memcmp (old, GPT_SIGNATURE, 8) == 0 &&
      get_le64 (old + H_MY_LBA) == alternate)
    {
      memset (old, 0, ss);
      if (!sa_pwrite_all (fd, old, ss, alternate * ss))
        {
          snprintf (msg, msglen, "clearing the old GPT backup header: %s", strerror (errno));
          outcome = SA_GPT_ERROR;
          goto out;
        }
    }
  if (sa_pread_all (fd, mbr, sizeof mbr, 0) && protective_mbr_size (mbr, last, &mbr_size) &&
      !sa_pwrite_all (fd, mbr, sizeof mbr, 0))
    {
      snprintf (msg, msglen, "writing the protective MBR: %s", strerror (errno));
      outcome = SA_GPT_ERROR;
      goto out;
    }
  if (!sync_disk (fd))
    {
      snprintf (msg, msglen, "syncing the disk: %s", strerror (errno));
      outcome = SA_GPT_ERROR;
      goto out;
    }
  snprintf (msg, msglen, "GPT backup moved from LBA %llu to the disk's last LBA %llu; last usable LBA %llu, "
            "was %llu (%u-byte sectors)%s", (unsigned long long) alternate, (unsigned long long) last,
            (unsigned long long) new_last_usable, (unsigned long long) last_usable, ss,
            mbr_size != 0 ? "; protective MBR resized" : "");
  outcome = SA_GPT_MOVED;
out:
  free (array);
  return outcome;
}

/* A GPT backup header at the disk's last LBA, past the image's end: an
 * earlier system's, which the image did not overwrite. Cleared, so that
 * no tool takes it for this disk's table (gdisk offers to restore a GPT
 * from it, over the new system's MBR). Both sector sizes where the
 * caller does not know it. The LBA cleared in *lba; 1 when cleared, 0
 * when there was none, -1 on an I/O error (@msg) */
static int
clear_stale_backup (int fd, uint64_t disk_size, uint64_t image_size, uint32_t sector, uint64_t *lba,
                    char *msg, size_t msglen)
{
  static const uint32_t sizes[] = { 512, 4096 };
  uint8_t buf[SECTOR_MAX];

  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    {
      uint32_t ss = sizes[i];
      uint64_t last = disk_size / ss;

      if ((sector != 0 && ss != sector) || last < 2 || (--last) * ss < image_size)
        continue;
      if (!sa_pread_all (fd, buf, ss, last * ss))
        {
          snprintf (msg, msglen, "reading the disk's last LBA: %s", strerror (errno));
          return -1;
        }
      if (memcmp (buf, GPT_SIGNATURE, 8) != 0 || get_le64 (buf + H_MY_LBA) != last)
        continue;
      memset (buf, 0, ss);
      if (!sa_pwrite_all (fd, buf, ss, last * ss) || !sync_disk (fd))
        {
          snprintf (msg, msglen, "clearing an earlier system's GPT backup header at the disk's last LBA: %s",
                    strerror (errno));
          return -1;
        }
      *lba = last;
      return 1;
    }
  return 0;
}

SaGptOutcome
sa_gpt_fit_disk (int fd, uint64_t disk_size, uint64_t image_size, uint32_t sector, char *msg, size_t msglen)
{
  SaGptOutcome outcome = fit_table (fd, disk_size, sector, msg, msglen);
  uint64_t lba = 0;
  size_t used;
  int cleared;

  /* moved: the image's backup is at the end now; at the end: the image
   * reaches it */
  if (outcome == SA_GPT_MOVED || outcome == SA_GPT_AT_END || outcome == SA_GPT_ERROR)
    return outcome;
  cleared = clear_stale_backup (fd, disk_size, image_size, sector, &lba, msg, msglen);
  if (cleared < 0)
    return SA_GPT_ERROR;
  if (cleared == 0)
    return outcome;
  if (outcome == SA_GPT_NO_TABLE)
    {
      snprintf (msg, msglen, "the disk's last LBA %llu held an earlier system's GPT backup header: cleared "
                "(the image has no GPT)", (unsigned long long) lba);
      return SA_GPT_STALE_CLEARED;
    }
  used = strlen (msg);
  snprintf (msg + used, msglen - used, "; an earlier system's GPT backup header at the disk's last LBA %llu cleared",
            (unsigned long long) lba);
  return outcome;
}

SaGptOutcome
sa_gpt_fit_path (const char *path, uint64_t image_size, char *msg, size_t msglen)
{
  struct stat st;
  uint64_t size = 0;
  int ssz = 0;
  int fd = open (path, O_RDWR | O_CLOEXEC);
  SaGptOutcome outcome;

  msg[0] = '\0';
  if (fd < 0 || fstat (fd, &st) < 0)
    {
      snprintf (msg, msglen, "opening %s: %s", path, strerror (errno));
      if (fd >= 0)
        close (fd);
      return SA_GPT_ERROR;
    }
  if (S_ISBLK (st.st_mode))
    {
      if (ioctl (fd, BLKGETSIZE64, &size) < 0 || ioctl (fd, BLKSSZGET, &ssz) < 0)
        {
          snprintf (msg, msglen, "the size of %s: %s", path, strerror (errno));
          close (fd);
          return SA_GPT_ERROR;
        }
    }
  else if (S_ISREG (st.st_mode))
    size = (uint64_t) st.st_size;
  else
    {
      close (fd);
      return SA_GPT_NO_TABLE;
    }
  outcome = sa_gpt_fit_disk (fd, size, image_size, (uint32_t) ssz, msg, msglen);
  /* the kernel reads the partition table again (busy when something has a
   * partition open: then at the next boot) */
  if ((outcome == SA_GPT_MOVED || outcome == SA_GPT_STALE_CLEARED) && S_ISBLK (st.st_mode))
    (void) ioctl (fd, BLKRRPART, 0);
  close (fd);
  return outcome;
}
