/* sa-gpt.c: moves a written image's backup GPT to the end of the disk
 * (UEFI 2.10, 5.3.2 "GPT Header", 5.3.3 "GPT Partition Entry Array"), and
 * wipes what an earlier system left past the image: the ends of its
 * partitions before the image is written, the disk's last MiB after
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
/* past the image, the disk's last MiB is zeroed (as curtin does) */
#define TAIL_WIPE          (1u << 20)
/* and the first and last MiB of each earlier partition, and the disk's
 * first MiB (as curtin's wipe of superblocks does) */
#define PART_WIPE          (1u << 20)
/* logical partitions followed in an MBR's extended partition */
#define EBR_MAX            64

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
fit_table (int fd, uint64_t disk_size, uint32_t sector, bool check_only, char *msg, size_t msglen)
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
  if (check_only)
    return SA_GPT_LEFT;
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

/* [offset, offset + len) of @fd zeroed: BLKZEROOUT on a block device
 * (its 512-byte aligned part), zeros written otherwise or when it is
 * refused */
static bool
zero_range (int fd, uint64_t offset, uint64_t len)
{
  static const uint8_t zeros[65536];
  struct stat st;

  if (len > 0 && fstat (fd, &st) == 0 && S_ISBLK (st.st_mode))
    {
      uint64_t head = (512 - offset % 512) % 512, range[2];

      if (head < len && (len - head) >= 512)
        {
          range[0] = offset + head;
          range[1] = (len - head) & ~(uint64_t) 511;
          if (ioctl (fd, BLKZEROOUT, range) == 0)
            {
              if (!sa_pwrite_zeros (fd, zeros, sizeof zeros, head, offset))
                return false;
              offset = range[0] + range[1];
              len -= head + range[1];
            }
        }
    }
  return sa_pwrite_zeros (fd, zeros, sizeof zeros, len, offset);
}

/* A GPT backup header at the disk's last LBA, past the image's end: an
 * earlier system's, which the image did not overwrite (zeroed with the
 * disk's last MiB). Both sector sizes where the caller does not know it.
 * Its LBA, or 0 */
static uint64_t
stale_backup (int fd, uint64_t disk_size, uint64_t image_size, uint32_t sector)
{
  static const uint32_t sizes[] = { 512, 4096 };
  uint8_t buf[SECTOR_MAX];

  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    {
      uint32_t ss = sizes[i];
      uint64_t last = disk_size / ss;

      if ((sector != 0 && ss != sector) || last < 2 || (--last) * ss < image_size)
        continue;
      if (sa_pread_all (fd, buf, ss, last * ss) && memcmp (buf, GPT_SIGNATURE, 8) == 0 &&
          get_le64 (buf + H_MY_LBA) == last)
        return last;
    }
  return 0;
}

/* the disk's last MiB past the image zeroed (sa-gpt.h), described in @msg
 * (empty when there was nothing past the image); false on an error
 * (@msg) */
static bool
wipe_past_image (int fd, uint64_t disk_size, uint64_t image_size, uint32_t sector, char *msg, size_t msglen)
{
  uint64_t from, stale;
  size_t used;

  msg[0] = '\0';
  if (image_size >= disk_size)
    return true;
  stale = stale_backup (fd, disk_size, image_size, sector);
  from = disk_size - image_size > TAIL_WIPE ? disk_size - TAIL_WIPE : image_size;
  if (!zero_range (fd, from, disk_size - from) || !sync_disk (fd))
    {
      snprintf (msg, msglen, "zeroing the disk's last %llu bytes past the image: %s",
                (unsigned long long) (disk_size - from), strerror (errno));
      return false;
    }
  snprintf (msg, msglen, "past the image, the disk's last %llu bytes zeroed (where an earlier system's md RAID "
            "superblock, ZFS labels and GPT backup are kept)", (unsigned long long) (disk_size - from));
  used = strlen (msg);
  if (stale != 0)
    snprintf (msg + used, msglen - used, ", an earlier system's GPT backup header at the last LBA %llu among them",
              (unsigned long long) stale);
  return true;
}

/* [from, to) zeroed where it lies past the image, [image_size, disk_size);
 * *any set when some of it does */
static bool
zero_past_image (int fd, uint64_t from, uint64_t to, uint64_t image_size, uint64_t disk_size, bool *any)
{
  if (from < image_size)
    from = image_size;
  if (to > disk_size)
    to = disk_size;
  if (from >= to)
    return true;
  *any = true;
  return zero_range (fd, from, to - from);
}

bool
sa_gpt_wipe_old (int fd, uint64_t disk_size, uint64_t image_size, const SaGptOldTable *old, char *msg,
                 size_t msglen)
{
  unsigned n_parts = 0;
  bool head = false;
  size_t used;
  char numbers[160] = "";

  msg[0] = '\0';
  if (image_size >= disk_size)
    return true;
  /* the whole disk's signatures (an md member, an LVM PV or a file system
   * made on the disk itself) are at its start: inside any image of a MiB
   * or more */
  if (!zero_past_image (fd, 0, PART_WIPE, image_size, disk_size, &head))
    {
      snprintf (msg, msglen, "zeroing the disk's first MiB past the image: %s", strerror (errno));
      return false;
    }
  for (size_t i = 0; old != NULL && i < old->n && i < SA_GPT_OLD_MAX; i++)
    {
      uint64_t start = old->part[i].start, end = old->part[i].end;
      bool wiped = false, ok;

      if (end > disk_size)
        end = disk_size;
      if (start >= end || end <= image_size)
        continue;
      /* its first and last MiB; the whole of a partition of 2 MiB or less */
      if (end - start <= 2 * (uint64_t) PART_WIPE)
        ok = zero_past_image (fd, start, end, image_size, disk_size, &wiped);
      else
        ok = zero_past_image (fd, start, start + PART_WIPE, image_size, disk_size, &wiped) &&
             zero_past_image (fd, end - PART_WIPE, end, image_size, disk_size, &wiped);
      if (!ok)
        {
          snprintf (msg, msglen, "zeroing the ends of an earlier system's partition %u past the image: %s",
                    old->part[i].number, strerror (errno));
          return false;
        }
      if (wiped)
        {
          used = strlen (numbers);
          if (used + 16 < sizeof numbers)
            snprintf (numbers + used, sizeof numbers - used, "%s%u", n_parts > 0 ? ", " : "", old->part[i].number);
          n_parts++;
        }
    }
  if ((head || n_parts > 0) && !sync_disk (fd))
    {
      snprintf (msg, msglen, "syncing the disk: %s", strerror (errno));
      return false;
    }
  if (head)
    snprintf (msg, msglen, "before the image was written, the disk's first MiB past it zeroed");
  used = strlen (msg);
  if (n_parts > 0)
    snprintf (msg + used, msglen - used, "%sbefore the image was written, the first and last MiB of %u earlier "
              "partition%s zeroed where they lie past it (%s), where md RAID superblocks, LVM labels and file "
              "systems' superblocks are kept", used > 0 ? "; " : "", n_parts, n_parts == 1 ? "" : "s", numbers);
  return true;
}

SaGptOutcome
sa_gpt_fit_disk (int fd, uint64_t disk_size, uint64_t image_size, uint32_t sector, char *msg, size_t msglen)
{
  char wiped[512];
  SaGptOutcome outcome;
  size_t used;

  /* a table that reaches the disk's end already (its backup past the
   * image, where it was moved to): nothing to wipe, nothing to move */
  if (fit_table (fd, disk_size, sector, true, msg, msglen) == SA_GPT_AT_END)
    {
      msg[0] = '\0';
      return SA_GPT_AT_END;
    }
  /* wiped first: the table moved to the disk's end goes into the zeroed
   * sectors */
  if (!wipe_past_image (fd, disk_size, image_size, sector, wiped, sizeof wiped))
    {
      snprintf (msg, msglen, "%s", wiped);
      return SA_GPT_ERROR;
    }
  outcome = fit_table (fd, disk_size, sector, false, msg, msglen);
  if (outcome == SA_GPT_ERROR || wiped[0] == '\0')
    return outcome;
  if (outcome == SA_GPT_NO_TABLE || outcome == SA_GPT_AT_END)
    {
      snprintf (msg, msglen, "%s", wiped);
      return outcome == SA_GPT_NO_TABLE ? SA_GPT_STALE_CLEARED : outcome;
    }
  used = strlen (msg);
  snprintf (msg + used, msglen - used, "; %s", wiped);
  return outcome;
}

/* the partitions of a GPT at LBA 1 for sectors of @ss bytes whose CRCs
 * verify, into @old; false when there is none */
static bool
read_old_gpt (int fd, uint64_t disk_size, uint32_t ss, SaGptOldTable *old)
{
  uint8_t hdr[SECTOR_MAX];
  uint32_t hsize, n_entries, entry_size;
  uint64_t array_bytes;
  uint8_t *array;
  bool ok = false;

  if (!has_header (fd, disk_size, ss, hdr))
    return false;
  hsize = get_le32 (hdr + H_SIZE);
  n_entries = get_le32 (hdr + H_N_ENTRIES);
  entry_size = get_le32 (hdr + H_ENTRY_SIZE);
  if (hsize < GPT_HEADER_MIN || hsize > ss || header_crc (hdr, hsize) != get_le32 (hdr + H_CRC) ||
      entry_size < GPT_ENTRY_MIN || entry_size % 8 != 0 || n_entries == 0 ||
      (uint64_t) n_entries * entry_size > GPT_ARRAY_MAX || get_le64 (hdr + H_ENTRIES_LBA) >= disk_size / ss)
    return false;
  array_bytes = (uint64_t) n_entries * entry_size;
  array = malloc (array_bytes);
  if (array == NULL)
    return false;
  if (sa_pread_all (fd, array, array_bytes, get_le64 (hdr + H_ENTRIES_LBA) * ss) &&
      crc32_of (array, array_bytes) == get_le32 (hdr + H_ENTRIES_CRC))
    {
      ok = true;
      for (uint32_t i = 0; i < n_entries && old->n < SA_GPT_OLD_MAX; i++)
        {
          const uint8_t *e = array + (size_t) i * entry_size;
          static const uint8_t unused[16];
          uint64_t first = get_le64 (e + E_FIRST_LBA), last = get_le64 (e + E_LAST_LBA);

          if (memcmp (e, unused, sizeof unused) == 0 || first > last || first >= disk_size / ss)
            continue;
          old->part[old->n].start = first * ss;
          old->part[old->n].end = last >= disk_size / ss ? disk_size : (last + 1) * ss;
          old->part[old->n].number = i + 1;
          old->n++;
        }
    }
  free (array);
  return ok;
}

/* one MBR partition entry @e, relative to LBA @base, into @old */
static void
add_mbr_partition (const uint8_t *e, uint64_t base, uint64_t disk_size, uint32_t ss, unsigned number,
                   SaGptOldTable *old)
{
  uint64_t start = base + get_le32 (e + 8), count = get_le32 (e + 12);

  if (e[4] == 0 || count == 0 || start >= disk_size / ss || old->n >= SA_GPT_OLD_MAX)
    return;
  old->part[old->n].start = start * ss;
  old->part[old->n].end = start + count > disk_size / ss ? disk_size : (start + count) * ss;
  old->part[old->n].number = number;
  old->n++;
}

static bool
is_extended (uint8_t type)
{
  return type == 0x05 || type == 0x0f || type == 0x85;
}

/* the partitions of an MBR for sectors of @ss bytes: its primary ones
 * (numbered 1 to 4) and the logical ones (from 5) */
static void
read_old_mbr (int fd, uint64_t disk_size, uint32_t ss, SaGptOldTable *old)
{
  uint8_t mbr[512], ebr[512];
  unsigned logical = 5;

  if (disk_size < ss || !sa_pread_all (fd, mbr, sizeof mbr, 0) || mbr[510] != 0x55 || mbr[511] != 0xaa)
    return;
  for (int i = 0; i < 4; i++)
    {
      const uint8_t *e = mbr + 446 + 16 * i;

      /* a boot sector's code is no table: each entry's status is 0 or
       * 0x80 */
      if ((e[0] & 0x7f) != 0 || e[4] == 0xee)
        return;
    }
  for (int i = 0; i < 4; i++)
    {
      const uint8_t *e = mbr + 446 + 16 * i;
      uint64_t ext, next;

      if (!is_extended (e[4]))
        {
          add_mbr_partition (e, 0, disk_size, ss, (unsigned) i + 1, old);
          continue;
        }
      /* the chain of extended boot records: each a logical partition
       * (relative to itself) and the next record (relative to the
       * extended partition) */
      ext = get_le32 (e + 8);
      next = ext;
      for (int k = 0; k < EBR_MAX && next != 0 && next < disk_size / ss; k++)
        {
          if (!sa_pread_all (fd, ebr, sizeof ebr, next * ss) || ebr[510] != 0x55 || ebr[511] != 0xaa)
            break;
          add_mbr_partition (ebr + 446, next, disk_size, ss, logical++, old);
          if (!is_extended (ebr[446 + 16 + 4]) || get_le32 (ebr + 446 + 16 + 8) == 0)
            break;
          next = ext + get_le32 (ebr + 446 + 16 + 8);
        }
    }
}

void
sa_gpt_read_old (int fd, uint64_t disk_size, uint32_t sector, SaGptOldTable *old)
{
  old->n = 0;
  if (sector != 0 && sector != 512 && sector != 4096)
    return;
  if (sector == 0)
    {
      if (!read_old_gpt (fd, disk_size, 512, old) && !read_old_gpt (fd, disk_size, 4096, old))
        read_old_mbr (fd, disk_size, 512, old);
    }
  else if (!read_old_gpt (fd, disk_size, sector, old))
    read_old_mbr (fd, disk_size, sector, old);
}

/* The size of the disk open as @fd and its logical sector size (0 for a
 * regular file); false with errno when the kernel does not tell them,
 * false with errno 0 when @fd is neither a block device nor a regular
 * file */
static bool
disk_geometry (int fd, uint64_t *size, uint32_t *sector, bool *block)
{
  struct stat st;
  int ssz = 0;

  *size = 0;
  *sector = 0;
  *block = false;
  if (fstat (fd, &st) < 0)
    return false;
  *block = S_ISBLK (st.st_mode);
  if (*block)
    {
      if (ioctl (fd, BLKGETSIZE64, size) < 0 || ioctl (fd, BLKSSZGET, &ssz) < 0)
        return false;
      *sector = (uint32_t) ssz;
      return true;
    }
  if (S_ISREG (st.st_mode))
    {
      *size = (uint64_t) st.st_size;
      return true;
    }
  errno = 0;
  return false;
}

/* @path opened with @flags, its size and logical sector size (0 for a
 * regular file); -1 (@msg) when it cannot be, or is neither a block
 * device nor a regular file (@msg empty) */
static int
open_disk (const char *path, int flags, uint64_t *size, uint32_t *sector, bool *block, char *msg, size_t msglen)
{
  int fd = open (path, flags | O_CLOEXEC);

  msg[0] = '\0';
  if (fd < 0)
    {
      snprintf (msg, msglen, "opening %s: %s", path, strerror (errno));
      return -1;
    }
  if (!disk_geometry (fd, size, sector, block))
    {
      if (errno != 0)
        snprintf (msg, msglen, "the size of %s: %s", path, strerror (errno));
      close (fd);
      return -1;
    }
  return fd;
}

bool
sa_gpt_wipe_earlier (int fd, uint64_t image_size, char *msg, size_t msglen)
{
  SaGptOldTable old = { 0 };
  uint64_t size;
  uint32_t sector;
  bool block;

  msg[0] = '\0';
  if (!disk_geometry (fd, &size, &sector, &block))
    {
      if (errno != 0)
        {
          snprintf (msg, msglen, "the size of the disk: %s", strerror (errno));
          return false;
        }
      return true;
    }
  /* on a write-only @fd every read fails: no partitions */
  sa_gpt_read_old (fd, size, sector, &old);
  return sa_gpt_wipe_old (fd, size, image_size, &old, msg, msglen);
}

SaGptOutcome
sa_gpt_fit_path (const char *path, uint64_t image_size, char *msg, size_t msglen)
{
  uint64_t size;
  uint32_t sector;
  bool block = false;
  int fd = open_disk (path, O_RDWR, &size, &sector, &block, msg, msglen);
  SaGptOutcome outcome;

  if (fd < 0)
    return msg[0] != '\0' ? SA_GPT_ERROR : SA_GPT_NO_TABLE;
  outcome = sa_gpt_fit_disk (fd, size, image_size, sector, msg, msglen);
  /* the kernel reads the partition table again (busy when something has a
   * partition open: then at the next boot) */
  if ((outcome == SA_GPT_MOVED || outcome == SA_GPT_STALE_CLEARED) && block)
    (void) ioctl (fd, BLKRRPART, 0);
  close (fd);
  return outcome;
}
