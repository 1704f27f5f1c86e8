/* sa-gpt.h: before a whole-disk image is written to a larger disk, wipes
 * what an earlier system keeps at its partitions' ends past the image;
 * after, wipes the disk's last MiB and moves the image's backup GPT to the
 * end of the disk
 *
 * A whole-disk image (a cloud image, a disk made in a VM) carries its GPT
 * backup header and partition entries in its own last sectors. Written to
 * a larger disk, they sit in the middle of it: firmware and the kernel
 * find no backup where UEFI says it is (the last LBA), report a damaged
 * table, and the space after the image is not usable for partitions.
 * Ironic's agent and MAAS's curtin relocate it after writing; so does
 * shoal's agent. UEFI 2.10, section 5.3 ("GUID Partition Table Disk
 * Layout").
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  SA_GPT_NO_TABLE,  /* no GPT header at LBA 1: nothing to do */
  SA_GPT_AT_END,    /* the backup header is at the disk's last LBA already */
  SA_GPT_MOVED,     /* moved: the message says from where to where */
  SA_GPT_LEFT,      /* a GPT this does not change (the message says why);
                       the disk is as it was */
  SA_GPT_ERROR,     /* reading or writing the disk failed (the message) */
  SA_GPT_STALE_CLEARED, /* the image has no GPT; what an earlier system left
                           past it was wiped (the message says what) */
} SaGptOutcome;

/* An earlier system's partitions, read from the disk before the image is
 * written over its table: byte ranges [start, end), and their numbers */
#define SA_GPT_OLD_MAX 128
typedef struct {
  size_t n;
  struct {
    uint64_t start, end;
    unsigned number;
  } part[SA_GPT_OLD_MAX];
} SaGptOldTable;

/* The partitions of the table on @fd (@disk_size bytes, logical sectors
 * of @sector bytes, 0 for a disk image file: 512, or 4096 when the GPT is
 * found there): a GPT whose header and entries' CRCs verify, else an MBR
 * (its primary partitions and the logical ones of its extended
 * partition). Partitions reaching past the disk are cut at its end; none
 * (old->n == 0) when there is no table, or on a read error */
void sa_gpt_read_old (int fd, uint64_t disk_size, uint32_t sector, SaGptOldTable *old);

/* What an earlier system keeps at the ends of its partitions, zeroed
 * before an image of @image_size bytes is written to @fd (@disk_size
 * bytes); @old: the partitions of the table the image replaces
 * (sa_gpt_read_old). Of each partition, its first and last MiB, and of
 * the whole disk its first MiB, are zeroed where they lie past the image
 * (BLKZEROOUT on a block device, zeros written otherwise or when it is
 * refused), then synced: md RAID superblocks of every version (1.1 at a
 * partition's start, 1.2 4 KiB into it, 0.90 and 1.0 in its last 128
 * KiB), LVM PV labels (its first four sectors), the file systems'
 * superblocks (xfs at 0, ext2/3/4 at 1 KiB, swap's signature at the end
 * of its first page, btrfs at 64 KiB, among them), ZFS labels (two at
 * each end, within 768 KiB of it), bcache and LUKS headers, an NTFS
 * backup boot sector at the end. As curtin wipes the superblocks of a
 * disk and its partitions (the first and last MiB of each). Nothing in
 * the image's own range is touched: the image writes every byte of it,
 * its zero chunks too (zeroed), so whatever was there is gone, and a
 * chunk already written there by an interrupted run is never undone. The
 * message says what was zeroed (empty when nothing lay past the image);
 * false on an error (@msg) */
bool sa_gpt_wipe_old (int fd, uint64_t disk_size, uint64_t image_size, const SaGptOldTable *old,
                      char *msg, size_t msglen);

/* The same for the disk open as @fd (a block device, its size and sector
 * size from the kernel, or a regular file), its table read from it first.
 * Called before the first byte of the image is written: that byte may
 * overwrite the old table, and an agent restarted after it finds the
 * image's table there, not the earlier system's; the places were zeroed
 * and synced by then. On an @fd that does not read no partitions are
 * read: only the disk's first MiB past the image is zeroed; on anything
 * else than a block device or a regular file, nothing */
bool sa_gpt_wipe_earlier (int fd, uint64_t image_size, char *msg, size_t msglen);

/* @fd: the disk, open for reading and writing; @disk_size its size in
 * bytes; @image_size the bytes of the image just written at its start;
 * @sector its logical sector size (512 or 4096), or 0 for a disk image
 * file (512-byte sectors, or 4096 when the GPT is found there).
 *
 * First what an earlier system left past the image at the disk's end is
 * wiped, unless the image's GPT reaches the disk's end already: the
 * disk's last MiB past the image, [max(image end, disk end - 1 MiB), disk
 * end), is zeroed (BLKZEROOUT on a block device, zeros written otherwise
 * or when it is refused), as Ironic's agent (wipefs --all, both ends of a
 * GPT zapped) and curtin (the first and last MiB zeroed) do: md RAID
 * superblocks of versions 0.90 (64 KiB from a whole disk's end) and 1.0
 * (8 KiB from it), ZFS labels L2 and L3 (the last 512 KiB), a GPT backup
 * header at the last LBA. (The earlier system's partitions were wiped
 * before the image was written: sa_gpt_wipe_earlier.) The message says
 * what was wiped.
 *
 * When LBA 1 holds a GPT header whose CRCs verify and whose backup is
 * before the disk's last LBA: writes the partition entry array just
 * before the last LBA and the backup header on it, extends the last
 * usable LBA to the sector before that array, points the primary header
 * at the new backup (in that order, each step synced, so that a crash
 * leaves a valid primary and a valid backup), clears the old backup
 * header, and sets the size of a protective MBR's one 0xEE partition to
 * cover the disk (a hybrid MBR is left as it is). Partitions are not
 * changed.
 *
 * Otherwise (no GPT in the image, or one left as it is), the outcome is
 * SA_GPT_STALE_CLEARED when the image has no GPT and something was wiped
 * (the message says what; among it a GPT backup header at the disk's
 * last LBA, an earlier system's, from which gdisk would offer to restore
 * that system's table). */
SaGptOutcome sa_gpt_fit_disk (int fd, uint64_t disk_size, uint64_t image_size, uint32_t sector,
                              char *msg, size_t msglen);

/* The same for the disk at @path: a block device (its size and logical
 * sector size from the kernel) or a regular file; anything else is
 * SA_GPT_NO_TABLE */
SaGptOutcome sa_gpt_fit_path (const char *path, uint64_t image_size, char *msg, size_t msglen);
