/* agent-gpt-fuzzer.c: the agent's GPT reader and relocation, and its
 * reader of an earlier system's GPT or MBR (sa-gpt.c), on any disk
 * contents
 *
 * Input: a flags byte (bit 0: give the header at LBA 1 its right CRC,
 * bit 1: give the partition entries theirs, so that inputs reach the
 * checks behind the CRCs; bits 2-3: the sector size passed, 0 (a file),
 * 512, 4096 or 1000), two bytes of sectors the disk has past the input
 * (little-endian), then the disk's first bytes. The disk is a memfd.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "sa-gpt.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static uint64_t
rd_le (const uint8_t *p, int n)
{
  uint64_t v = 0;

  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static void
wr_le32 (uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t) (v >> (8 * i));
}

/* the CRCs the flags ask for, in the header at @ss of @disk */
static void
fix_crcs (uint8_t *disk, size_t len, unsigned flags, uint32_t ss)
{
  uint8_t *hdr = disk + ss;
  uint32_t hsize;

  if (len < 2 * (size_t) ss)
    return;
  if (flags & 2)
    {
      uint64_t lba = rd_le (hdr + 72, 8), n = rd_le (hdr + 80, 4), esz = rd_le (hdr + 84, 4);

      if (lba < len / ss && n * esz <= len - lba * ss)
        wr_le32 (hdr + 88, (uint32_t) crc32 (0L, disk + lba * ss, (uInt) (n * esz)));
    }
  hsize = (uint32_t) rd_le (hdr + 12, 4);
  if ((flags & 1) && hsize >= 92 && hsize <= ss)
    {
      memset (hdr + 16, 0, 4);
      wr_le32 (hdr + 16, (uint32_t) crc32 (0L, hdr, hsize));
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const uint32_t sectors[] = { 0, 512, 4096, 1000 };
  uint8_t *disk;
  size_t len;
  uint32_t sector;
  uint64_t disk_size;
  SaGptOldTable old;
  char msg[1024];
  int fd;

  if (size < 3 || size > (8u << 20))
    return 0;
  sector = sectors[(data[0] >> 2) & 3];
  len = size - 3;
  disk = malloc (len + 1);
  if (disk == NULL)
    return 0;
  memcpy (disk, data + 3, len);
  fix_crcs (disk, len, data[0], sector == 4096 ? 4096 : 512);
  disk_size = len + rd_le (data + 1, 2) * (sector == 0 ? 512 : sector);
  fd = memfd_create ("shoal-gpt-fuzz", MFD_CLOEXEC);
  if (fd < 0)
    abort ();
  if (ftruncate (fd, (off_t) disk_size) < 0 || pwrite (fd, disk, len, 0) != (ssize_t) len)
    abort ();
  /* the earlier table read as the agent reads it before writing, then
   * wiped past the "image" (the input) */
  sa_gpt_read_old (fd, disk_size, sector, &old);
  if (old.n > SA_GPT_OLD_MAX)
    abort ();
  for (size_t i = 0; i < old.n; i++)
    if (old.part[i].start >= old.part[i].end || old.part[i].end > disk_size)
      abort ();
  (void) sa_gpt_wipe_old (fd, disk_size, len, &old, msg, sizeof msg);
  if (memchr (msg, '\0', sizeof msg) == NULL)
    abort ();
  (void) sa_gpt_fit_disk (fd, disk_size, len, sector, msg, sizeof msg);
  if (memchr (msg, '\0', sizeof msg) == NULL)
    abort ();
  close (fd);
  free (disk);
  return 0;
}
