/* target-test-md.h: md RAID superblocks of versions 0.90, 1.0, 1.1 and
 * 1.2, as mdadm writes them (linux/raid/md_p.h), and LVM PV labels, for
 * the agent's tests of what an earlier system leaves on a disk
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <string.h>
#include <unistd.h>

static inline void
target_test_md_put32 (guint8 *p, guint32 v)
{
  for (gint i = 0; i < 4; i++)
    p[i] = (guint8) (v >> (8 * i));
}

static inline void
target_test_md_put64 (guint8 *p, guint64 v)
{
  target_test_md_put32 (p, (guint32) v);
  target_test_md_put32 (p + 4, (guint32) (v >> 32));
}

static inline guint32
target_test_md_get32 (const guint8 *p)
{
  return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

/* A superblock of @version (90: 0.90, 10: 1.0, 11: 1.1, 12: 1.2) of a
 * two-disk RAID 1 member of @size bytes starting at byte @start of @fd,
 * written where md looks for it (0.90: the last 64 KiB-aligned 64 KiB but
 * one; 1.0: 8 KiB from the end, 4 KiB-aligned; 1.1: at the start; 1.2: 4
 * KiB from it), checksum included; its offset on @fd */
static inline guint64
target_test_md_write (gint fd, guint version, guint64 start, guint64 size)
{
  guint8 sb[4096] = { 0 };
  guint64 off, sum = 0;
  gsize len;

  if (version == 90)
    {
      static const guint32 fields[] = { 0xa92b4efc, 0, 90, 0, 0, 0x11223344, 1700000000, 1, 0, 2, 2, 0 };

      off = (size & ~(guint64) 0xffff) - 0x10000;
      for (gsize i = 0; i < G_N_ELEMENTS (fields); i++)
        target_test_md_put32 (sb + 4 * i, fields[i]);
      target_test_md_put32 (sb + 32, (guint32) (size / 1024 - 64));
      for (gsize i = 0; i < 1024; i++)
        sum += target_test_md_get32 (sb + 4 * i);
      target_test_md_put32 (sb + 38 * 4, (guint32) sum);
      len = 4096;
    }
  else
    {
      /* 1.0: the data before the superblock; 1.1 and 1.2: from 1 MiB */
      guint64 data_offset = version == 10 ? 0 : 2048;
      guint64 data_size;

      g_assert_true (version == 10 || version == 11 || version == 12);
      off = version == 10 ? (size & ~(guint64) 0xfff) - 0x2000 : version == 11 ? 0 : 0x1000;
      data_size = version == 10 ? off / 512 - 64 : size / 512 - data_offset;
      target_test_md_put32 (sb, 0xa92b4efc);
      target_test_md_put32 (sb + 4, 1);
      for (gint i = 0; i < 16; i++)
        sb[16 + i] = (guint8) (i + 1);
      memcpy (sb + 32, "old:root", 8);
      target_test_md_put64 (sb + 64, 1700000000);
      target_test_md_put32 (sb + 72, 1);
      target_test_md_put64 (sb + 80, data_size);
      target_test_md_put32 (sb + 92, 2);
      target_test_md_put64 (sb + 128, data_offset);
      target_test_md_put64 (sb + 136, data_size);
      target_test_md_put64 (sb + 144, off / 512);
      target_test_md_put32 (sb + 220, 2);
      sb[258] = 1;
      for (gsize i = 0; i < (256 + 2 * 2) / 4; i++)
        sum += target_test_md_get32 (sb + 4 * i);
      target_test_md_put32 (sb + 216, (guint32) ((sum & 0xffffffff) + (sum >> 32)));
      len = 1024;
    }
  g_assert_cmpint (pwrite (fd, sb, len, (off_t) (start + off)), ==, (gssize) len);
  return start + off;
}

/* An LVM2 PV label (LABELONE in the second sector, its CRC as LVM computes
 * it, the PV header after it) at the start of the device of @size bytes
 * at byte @start of @fd, as pvcreate writes it; its offset on @fd */
static inline guint64
target_test_lvm_write (gint fd, guint64 start, guint64 size)
{
  guint8 label[512] = { 0 };
  guint32 crc = 0xf597a6cf;

  memcpy (label, "LABELONE", 8);
  target_test_md_put64 (label + 8, 1);
  target_test_md_put32 (label + 20, 32);
  memcpy (label + 24, "LVM2 001", 8);
  /* the PV header: its UUID (32 characters), the device's size, then
   * lists of data and metadata areas, each ended by a zero entry */
  memcpy (label + 32, "0123456789abcdefABCDEFghijklmnop", 32);
  target_test_md_put64 (label + 64, size);
  target_test_md_put64 (label + 72, 1u << 20);
  /* LVM's CRC: reflected CRC-32 from 0xf597a6cf, not inverted, over the
   * label from its offset field on */
  for (gsize i = 20; i < sizeof label; i++)
    {
      crc ^= label[i];
      for (gint k = 0; k < 8; k++)
        crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
    }
  target_test_md_put32 (label + 16, crc);
  g_assert_cmpint (pwrite (fd, label, sizeof label, (off_t) (start + 512)), ==, (gssize) sizeof label);
  return start + 512;
}
