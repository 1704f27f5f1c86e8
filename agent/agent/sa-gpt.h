/* sa-gpt.h: after a whole-disk image is written to a larger disk, moves
 * the image's backup GPT to the end of the disk
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

#include <stddef.h>
#include <stdint.h>

typedef enum {
  SA_GPT_NO_TABLE,  /* no GPT header at LBA 1: nothing to do */
  SA_GPT_AT_END,    /* the backup header is at the disk's last LBA already */
  SA_GPT_MOVED,     /* moved: the message says from where to where */
  SA_GPT_LEFT,      /* a GPT this does not change (the message says why);
                       the disk is as it was */
  SA_GPT_ERROR,     /* reading or writing the disk failed (the message) */
  SA_GPT_STALE_CLEARED, /* the image has no GPT; an earlier system's backup
                           header at the disk's last LBA was cleared */
} SaGptOutcome;

/* @fd: the disk, open for reading and writing; @disk_size its size in
 * bytes; @image_size the bytes of the image just written at its start;
 * @sector its logical sector size (512 or 4096), or 0 for a disk image
 * file (512-byte sectors, or 4096 when the GPT is found there).
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
 * Otherwise (no GPT in the image, or one left as it is), a GPT backup
 * header at the disk's last LBA past the image, an earlier system's, is
 * cleared, as Ironic's agent and curtin wipe an earlier system's
 * metadata: gdisk would offer to restore that system's table from it. */
SaGptOutcome sa_gpt_fit_disk (int fd, uint64_t disk_size, uint64_t image_size, uint32_t sector,
                              char *msg, size_t msglen);

/* The same for the disk at @path: a block device (its size and logical
 * sector size from the kernel) or a regular file; anything else is
 * SA_GPT_NO_TABLE */
SaGptOutcome sa_gpt_fit_path (const char *path, uint64_t image_size, char *msg, size_t msglen);
