/* shoal-image-qcow2.c: reading the virtual disk of a qcow2 image
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Cloud images come as qcow2 (Debian's "generic" images, Ironic's and
 * OpenStack's default). The import reads the guest-visible disk the file
 * describes, in order: through the L1 and L2 tables to each cluster, which
 * is data in the file, compressed data (deflate or zstd), all zeros, or not
 * allocated (zeros: an image without a backing file). Unallocated and zero
 * clusters are never read from the file, so the store sees the same zeros
 * as in a sparse raw image and never sends them.
 *
 * Format: qemu's docs/interop/qcow2.txt, versions 2 and 3. Refused with an
 * error that says why: a backing file (flatten it first), encryption, an
 * external data file, extended L2 entries (subclusters), a feature bit this
 * reader does not know, an image qemu marked corrupt, and any table or
 * cluster that is unaligned, reserved bits set, or outside the file. The
 * "dirty" bit concerns only refcounts, which reading does not use.
 * Internal snapshots are ignored: the active L1 table is the disk.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "shoal-error.h"
#include "shoal-image-qcow2.h"

#define QCOW2_MAGIC          0x514649fbu
#define QCOW2_V2_HEADER_LEN  72
#define QCOW2_V3_HEADER_LEN  104
#define MIN_CLUSTER_BITS     9
#define MAX_CLUSTER_BITS     21
#define MAX_L1_BYTES         (32u << 20)       /* as qemu: QCOW_MAX_L1_SIZE */
#define MAX_VIRTUAL_SIZE     (G_GUINT64_CONSTANT (1) << 56)
#define L2_SLICE_BYTES       4096u             /* read of an L2 table at a time */

#define INCOMPAT_DIRTY       (1u << 0)
#define INCOMPAT_CORRUPT     (1u << 1)
#define INCOMPAT_DATA_FILE   (1u << 2)
#define INCOMPAT_COMPRESSION (1u << 3)
#define INCOMPAT_EXTL2       (1u << 4)
#define INCOMPAT_KNOWN       (INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | \
                              INCOMPAT_COMPRESSION | INCOMPAT_EXTL2)

#define OFLAG_COMPRESSED     (G_GUINT64_CONSTANT (1) << 62)
#define OFLAG_ZERO           G_GUINT64_CONSTANT (1)
#define OFFSET_MASK          G_GUINT64_CONSTANT (0x00fffffffffffe00)
/* bits that must be zero: L1 entries 0-8 and 56-62, standard L2 entries
 * 1-8 and 56-61 */
#define L1E_RESERVED         G_GUINT64_CONSTANT (0x7f000000000001ff)
#define L2E_RESERVED         G_GUINT64_CONSTANT (0x3f000000000001fe)

enum { COMPRESSION_ZLIB = 0, COMPRESSION_ZSTD = 1 };

/* numbers in translated messages (gettext knows %llu, not G_GUINT64_FORMAT) */
typedef unsigned long long ull;

struct _ShoalQcow2 {
  int          fd;
  gchar       *path;
  guint64      file_size;
  guint64      size;              /* of the virtual disk */
  guint        version;
  guint        cluster_bits;
  guint64      cluster_size;
  guint        l2_bits;           /* log2 of the entries in an L2 table */
  guint        compression;
  guint64     *l1;                /* host byte order */
  guint32      l1_size;
  guint64     *l2;                /* the slice of an L2 table last read (big-endian) */
  guint64      l2_offset;         /* its offset in the file (0: none) */
  guint        l2_slice_bits;     /* log2 of the entries in a slice */
  guint8      *cluster;           /* the compressed cluster last inflated */
  guint64      cluster_index;     /* its index in the virtual disk */
  gboolean     cluster_valid;
  guint8      *compressed;        /* room for a compressed cluster */
  z_stream     zs;
  gboolean     zs_ready;
  ZSTD_DCtx   *zstd;
  guint64      bytes_read;        /* from the file */
};

static guint64
be64 (const guint8 *p)
{
  guint64 v;

  memcpy (&v, p, sizeof v);
  return GUINT64_FROM_BE (v);
}

static guint32
be32 (const guint8 *p)
{
  guint32 v;

  memcpy (&v, p, sizeof v);
  return GUINT32_FROM_BE (v);
}

gboolean
shoal_qcow2_probe (const guint8 *head,
                   gsize         len)
{
  return len >= SHOAL_QCOW2_MAGIC_LEN && be32 (head) == QCOW2_MAGIC;
}

static gboolean G_GNUC_PRINTF (3, 4)
set_corrupt (ShoalQcow2   *q,
             GError      **error,
             const gchar  *format,
             ...)
{
  g_autofree gchar *what = NULL;
  va_list ap;

  va_start (ap, format);
  what = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
               _("qcow2 image %s is corrupt: %s"), q->path, what);
  return FALSE;
}

/* Reads exactly len bytes at offset; past the end of the file is an error
 * unless zero_past_end, where it reads as zeros (qemu's own reading of a
 * cluster the file ends inside). */
static gboolean
pread_all (ShoalQcow2  *q,
           guint8      *buf,
           gsize        len,
           guint64      offset,
           gboolean     zero_past_end,
           GError     **error)
{
  gsize done = 0;

  if (zero_past_end && offset >= q->file_size)
    {
      /* a read that begins in a cluster past the file's end (the last
       * cluster of a file that ends inside it, read from partway in) */
      memset (buf, 0, len);
      return TRUE;
    }
  if (offset > q->file_size || (!zero_past_end && len > q->file_size - offset))
    return set_corrupt (q, error, _("%llu bytes at offset %llu are past its end (%llu bytes)"),
                        (ull) len, (ull) offset, (ull) q->file_size);
  while (done < len)
    {
      gssize n = pread (q->fd, buf + done, len - done, (off_t) (offset + done));

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;

          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                       _("Cannot read image %s: %s"), q->path, g_strerror (saved));
          return FALSE;
        }
      if (n == 0)
        break;
      done += (gsize) n;
      q->bytes_read += (guint64) n;
    }
  if (done < len && !zero_past_end)
    return set_corrupt (q, error, _("it shrank to %llu bytes while being read"),
                        (ull) (offset + done));
  memset (buf + done, 0, len - done);
  return TRUE;
}

static gboolean
refuse (ShoalQcow2   *q,
        const gchar  *why,
        GError      **error)
{
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_SUPPORTED,
               _("qcow2 image %s cannot be imported: %s"), q->path, why);
  return FALSE;
}

static gboolean
check_features (ShoalQcow2    *q,
                const guint8  *h,
                guint32        header_len,
                GError       **error)
{
  guint64 incompat = be64 (h + 72);

  if (incompat & ~(guint64) INCOMPAT_KNOWN)
    {
      g_autofree gchar *why = g_strdup_printf (_("it uses incompatible features this reader does not know (0x%llx)"),
                                               (ull) (incompat & ~(guint64) INCOMPAT_KNOWN));
      return refuse (q, why, error);
    }
  if (incompat & INCOMPAT_CORRUPT)
    return set_corrupt (q, error, _("qemu marked it corrupt (check it with qemu-img check -r all)"));
  if (incompat & INCOMPAT_DATA_FILE)
    return refuse (q, _("its data is in an external data file (convert it with qemu-img convert -O qcow2)"), error);
  if (incompat & INCOMPAT_EXTL2)
    return refuse (q, _("it uses extended L2 entries (convert it with qemu-img convert -O qcow2)"), error);
  if (incompat & INCOMPAT_COMPRESSION)
    {
      if (header_len <= QCOW2_V3_HEADER_LEN)
        return set_corrupt (q, error, _("a compression type is announced but the header has none"));
      q->compression = h[104];
      if (q->compression != COMPRESSION_ZLIB && q->compression != COMPRESSION_ZSTD)
        {
          g_autofree gchar *why = g_strdup_printf (_("unknown compression type %u"), q->compression);
          return refuse (q, why, error);
        }
    }
  return TRUE;
}

/* the fields of the header, checked; h holds QCOW2_V3_HEADER_LEN + 8 bytes */
static gboolean
parse_header (ShoalQcow2    *q,
              const guint8  *h,
              GError       **error)
{
  guint32 header_len = QCOW2_V2_HEADER_LEN;
  guint64 l1_offset, l1_needed, span;

  q->version = be32 (h + 4);
  if (q->version != 2 && q->version != 3)
    {
      g_autofree gchar *why = g_strdup_printf (_("version %u (only 2 and 3 are known)"), q->version);
      return refuse (q, why, error);
    }
  if (be64 (h + 8) != 0)
    return refuse (q, _("it has a backing file (flatten it with qemu-img convert -O qcow2)"), error);
  q->cluster_bits = be32 (h + 20);
  if (q->cluster_bits < MIN_CLUSTER_BITS || q->cluster_bits > MAX_CLUSTER_BITS)
    return set_corrupt (q, error, _("cluster size 2^%u is outside 2^%u to 2^%u"),
                        q->cluster_bits, MIN_CLUSTER_BITS, MAX_CLUSTER_BITS);
  q->cluster_size = G_GUINT64_CONSTANT (1) << q->cluster_bits;
  q->l2_bits = q->cluster_bits - 3;
  q->size = be64 (h + 24);
  if (q->size == 0 || q->size > MAX_VIRTUAL_SIZE)
    return set_corrupt (q, error, _("virtual size %llu is not between 1 and 2^56"), (ull) q->size);
  if (be32 (h + 32) != 0)
    return refuse (q, _("it is encrypted (decrypt it with qemu-img convert)"), error);
  if (q->version == 3)
    {
      header_len = be32 (h + 100);
      if (header_len < QCOW2_V3_HEADER_LEN || header_len > q->cluster_size)
        return set_corrupt (q, error, _("header length %u"), header_len);
      if (!check_features (q, h, header_len, error))
        return FALSE;
    }
  q->l1_size = be32 (h + 36);
  l1_offset = be64 (h + 40);
  span = q->cluster_bits + q->l2_bits;      /* virtual bytes per L1 entry: 2^span */
  l1_needed = (q->size + (G_GUINT64_CONSTANT (1) << span) - 1) >> span;
  if (q->l1_size < l1_needed)
    return set_corrupt (q, error, _("its L1 table has %u entries, a disk of %llu bytes needs %llu"),
                        q->l1_size, (ull) q->size, (ull) l1_needed);
  if ((guint64) q->l1_size * 8 > MAX_L1_BYTES)
    return set_corrupt (q, error, _("its L1 table has %u entries, more than 32 MiB"), q->l1_size);
  if (l1_offset == 0 || (l1_offset & (q->cluster_size - 1)) != 0)
    return set_corrupt (q, error, _("its L1 table offset %llu is not a cluster boundary"),
                        (ull) l1_offset);
  q->l1_size = (guint32) l1_needed;         /* entries past the disk are never used */
  q->l1 = g_new (guint64, MAX (q->l1_size, 1));
  if (!pread_all (q, (guint8 *) q->l1, (gsize) q->l1_size * 8, l1_offset, FALSE, error))
    return FALSE;
  for (guint32 i = 0; i < q->l1_size; i++)
    q->l1[i] = GUINT64_FROM_BE (q->l1[i]);
  return TRUE;
}

/**
 * shoal_qcow2_open:
 * @fd: the image file, open for reading (not closed by the reader)
 * @file_size: its size
 * @path: its name, for messages
 *
 * Reads and checks the header and the L1 table.
 *
 * Returns: (transfer full): the reader, or %NULL with @error set
 */
ShoalQcow2 *
shoal_qcow2_open (int           fd,
                  guint64       file_size,
                  const gchar  *path,
                  GError      **error)
{
  g_autoptr(ShoalQcow2) q = g_new0 (ShoalQcow2, 1);
  guint8 h[QCOW2_V3_HEADER_LEN + 8] = { 0 };

  q->fd = fd;
  q->path = g_strdup (path);
  q->file_size = file_size;
  if (!pread_all (q, h, QCOW2_V2_HEADER_LEN, 0, FALSE, error))
    return NULL;
  if (be32 (h) != QCOW2_MAGIC)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA, _("%s is not a qcow2 image"), path);
      return NULL;
    }
  if (be32 (h + 4) >= 3 && file_size < QCOW2_V3_HEADER_LEN)
    {
      set_corrupt (q, error, _("it ends inside its header, at %llu bytes"), (ull) file_size);
      return NULL;
    }
  if (be32 (h + 4) >= 3 && !pread_all (q, h, sizeof h, 0, TRUE, error))
    return NULL;
  if (!parse_header (q, h, error))
    return NULL;
  q->l2_slice_bits = MIN (q->l2_bits, (guint) g_bit_nth_msf (L2_SLICE_BYTES / 8, -1));
  q->l2 = g_new (guint64, G_GUINT64_CONSTANT (1) << q->l2_slice_bits);
  q->cluster = g_malloc (q->cluster_size);
  /* a compressed cluster spans up to 2^(cluster_bits - 8) sectors of 512
   * bytes past the one it starts in */
  q->compressed = g_malloc (q->cluster_size * 2 + 512);
  g_debug ("%s: qcow2 v%u, %" G_GUINT64_FORMAT " bytes, clusters of %" G_GUINT64_FORMAT,
           path, q->version, q->size, q->cluster_size);
  return g_steal_pointer (&q);
}

guint64
shoal_qcow2_get_size (ShoalQcow2 *q)
{
  return q->size;
}

guint64
shoal_qcow2_get_bytes_read (ShoalQcow2 *q)
{
  return q->bytes_read;
}

void
shoal_qcow2_free (ShoalQcow2 *q)
{
  if (q == NULL)
    return;
  if (q->zs_ready)
    inflateEnd (&q->zs);
  ZSTD_freeDCtx (q->zstd);
  g_free (q->path);
  g_free (q->l1);
  g_free (q->l2);
  g_free (q->cluster);
  g_free (q->compressed);
  g_free (q);
}

/* The L2 entry of a cluster of the virtual disk (0: not allocated); the
 * table must lie whole inside the file */
static gboolean
l2_entry (ShoalQcow2  *q,
          guint64      cluster_index,
          guint64     *entry,
          GError     **error)
{
  guint64 l1e = q->l1[cluster_index >> q->l2_bits];
  guint64 l2_offset = l1e & OFFSET_MASK;
  guint64 in_table = cluster_index & ((G_GUINT64_CONSTANT (1) << q->l2_bits) - 1);
  guint64 slice_len = G_GUINT64_CONSTANT (8) << q->l2_slice_bits;
  guint64 slice_offset;

  if (l1e & L1E_RESERVED)
    return set_corrupt (q, error, _("L1 entry %llu has reserved bits set"),
                        (ull) (cluster_index >> q->l2_bits));
  if (l2_offset == 0)
    {
      *entry = 0;
      return TRUE;
    }
  if ((l2_offset & (q->cluster_size - 1)) != 0)
    return set_corrupt (q, error, _("L2 table offset %llu is not a cluster boundary"),
                        (ull) l2_offset);
  if (l2_offset >= q->file_size || q->cluster_size > q->file_size - l2_offset)
    return set_corrupt (q, error, _("the L2 table at %llu is past its end"), (ull) l2_offset);
  /* a slice of the table at a time: a 2 MiB table maps 512 GiB */
  slice_offset = l2_offset + (in_table >> q->l2_slice_bits) * slice_len;
  if (slice_offset != q->l2_offset)
    {
      q->l2_offset = 0;
      if (!pread_all (q, (guint8 *) q->l2, (gsize) slice_len, slice_offset, FALSE, error))
        return FALSE;
      q->l2_offset = slice_offset;
    }
  *entry = GUINT64_FROM_BE (q->l2[in_table & ((G_GUINT64_CONSTANT (1) << q->l2_slice_bits) - 1)]);
  return TRUE;
}

static gboolean
inflate_zlib (ShoalQcow2 *q,
              gsize       in_len)
{
  int ret;

  if (!q->zs_ready)
    {
      /* raw deflate; qemu writes a 4 KiB window (-12), 32 KiB reads it too */
      if (inflateInit2 (&q->zs, -MAX_WBITS) != Z_OK)
        return FALSE;
      q->zs_ready = TRUE;
    }
  else
    inflateReset (&q->zs);
  q->zs.next_in = q->compressed;
  q->zs.avail_in = (uInt) in_len;
  q->zs.next_out = q->cluster;
  q->zs.avail_out = (uInt) q->cluster_size;
  ret = inflate (&q->zs, Z_FINISH);
  /* the compressed length is known to a sector: what follows the stream in
   * its last sector is not part of it (Z_BUF_ERROR with the output full) */
  return (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && q->zs.avail_out == 0;
}

static gboolean
inflate_zstd (ShoalQcow2  *q,
              gsize        in_len)
{
  ZSTD_inBuffer in = { q->compressed, in_len, 0 };
  ZSTD_outBuffer out = { q->cluster, q->cluster_size, 0 };

  if (q->zstd == NULL)
    q->zstd = ZSTD_createDCtx ();
  if (q->zstd == NULL)
    return FALSE;
  ZSTD_DCtx_reset (q->zstd, ZSTD_reset_session_only);
  while (out.pos < out.size)
    {
      gsize in_pos = in.pos, out_pos = out.pos;
      gsize ret = ZSTD_decompressStream (q->zstd, &out, &in);

      if (ZSTD_isError (ret) || (in.pos == in_pos && out.pos == out_pos))
        return FALSE;
    }
  return TRUE;
}

/* Inflates compressed cluster cluster_index (its L2 entry: entry) into
 * q->cluster */
static gboolean
read_compressed (ShoalQcow2  *q,
                 guint64      cluster_index,
                 guint64      entry,
                 GError     **error)
{
  guint shift = 62 - (q->cluster_bits - 8);
  guint64 offset = entry & ((G_GUINT64_CONSTANT (1) << shift) - 1);
  guint64 sectors = ((entry >> shift) & ((G_GUINT64_CONSTANT (1) << (q->cluster_bits - 8)) - 1)) + 1;
  gsize len = (gsize) (sectors * 512 - (offset & 511));
  gboolean ok;

  if (q->cluster_valid && q->cluster_index == cluster_index)
    return TRUE;
  q->cluster_valid = FALSE;
  if (offset >= q->file_size)
    return set_corrupt (q, error, _("compressed cluster %llu starts past its end"),
                        (ull) cluster_index);
  /* the last sector may end past the file's end: only what is there */
  len = (gsize) MIN ((guint64) len, q->file_size - offset);
  if (!pread_all (q, q->compressed, len, offset, FALSE, error))
    return FALSE;
  if (q->compression == COMPRESSION_ZSTD)
    ok = inflate_zstd (q, len);
  else
    ok = inflate_zlib (q, len);
  if (!ok)
    return set_corrupt (q, error, _("compressed cluster %llu does not decompress to %llu bytes"),
                        (ull) cluster_index, (ull) q->cluster_size);
  q->cluster_index = cluster_index;
  q->cluster_valid = TRUE;
  return TRUE;
}

typedef enum {
  CLUSTER_ZERO,        /* not allocated, or flagged as zeros */
  CLUSTER_DATA,        /* at *host in the file */
  CLUSTER_COMPRESSED,
} ClusterKind;

/* where cluster cluster_index is, checked */
static gboolean
locate (ShoalQcow2   *q,
        guint64       cluster_index,
        ClusterKind  *kind,
        guint64      *entry,
        guint64      *host,
        GError      **error)
{
  if (!l2_entry (q, cluster_index, entry, error))
    return FALSE;
  if (*entry & OFLAG_COMPRESSED)
    {
      *kind = CLUSTER_COMPRESSED;
      return TRUE;
    }
  if (*entry & L2E_RESERVED)
    return set_corrupt (q, error, _("the L2 entry of cluster %llu has reserved bits set"),
                        (ull) cluster_index);
  if ((*entry & OFLAG_ZERO) && q->version < 3)
    return set_corrupt (q, error, _("cluster %llu has the zero flag of version 3"),
                        (ull) cluster_index);
  *host = *entry & OFFSET_MASK;
  *kind = (*entry & OFLAG_ZERO) || *host == 0 ? CLUSTER_ZERO : CLUSTER_DATA;
  if (*kind == CLUSTER_ZERO)
    return TRUE;
  if ((*host & (q->cluster_size - 1)) != 0)
    return set_corrupt (q, error, _("cluster %llu is at offset %llu, not a cluster boundary"),
                        (ull) cluster_index, (ull) *host);
  if (*host >= q->file_size)
    return set_corrupt (q, error, _("cluster %llu is past its end"), (ull) cluster_index);
  return TRUE;
}

/* How many of len bytes, from a data cluster at host, the clusters after it
 * continue in the file (one read for them all: qemu-img lays a disk out in
 * order) */
static gboolean
contiguous (ShoalQcow2  *q,
            guint64      cluster_index,
            guint64      host,
            gsize        first,
            gsize        len,
            gsize       *n,
            GError     **error)
{
  *n = first;
  for (guint64 next = cluster_index + 1; *n < len; next++)
    {
      ClusterKind kind;
      guint64 entry, next_host = 0;

      if (!locate (q, next, &kind, &entry, &next_host, error))
        return FALSE;
      if (kind != CLUSTER_DATA || next_host != host + (next - cluster_index) * q->cluster_size)
        break;
      *n += (gsize) MIN ((guint64) (len - *n), q->cluster_size);
    }
  return TRUE;
}

/**
 * shoal_qcow2_read:
 * @offset: where in the virtual disk
 * @len: bytes; @offset + @len must not pass shoal_qcow2_get_size()
 *
 * Reads the guest-visible bytes: zeros where nothing is allocated.
 *
 * Returns: %TRUE, or %FALSE with @error set
 */
gboolean
shoal_qcow2_read (ShoalQcow2  *q,
                  guint64      offset,
                  guint8      *buf,
                  gsize        len,
                  GError     **error)
{
  g_return_val_if_fail (offset <= q->size && len <= q->size - offset, FALSE);

  while (len > 0)
    {
      guint64 cluster_index = offset >> q->cluster_bits;
      guint64 within = offset & (q->cluster_size - 1);
      gsize n = (gsize) MIN ((guint64) len, q->cluster_size - within);
      ClusterKind kind;
      guint64 entry = 0, host = 0;

      if (!locate (q, cluster_index, &kind, &entry, &host, error))
        return FALSE;
      if (kind == CLUSTER_ZERO)
        memset (buf, 0, n);
      else if (kind == CLUSTER_COMPRESSED)
        {
          if (!read_compressed (q, cluster_index, entry, error))
            return FALSE;
          memcpy (buf, q->cluster + within, n);
        }
      else if (!contiguous (q, cluster_index, host, n, len, &n, error) ||
               !pread_all (q, buf, n, host + within, TRUE, error))
        return FALSE;
      buf += n;
      offset += n;
      len -= n;
    }
  return TRUE;
}
