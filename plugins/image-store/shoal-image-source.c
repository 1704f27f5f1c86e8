/* shoal-image-source.c: the disk an image file holds, read in order
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * An import reads the guest-visible disk, whatever the file stores it as;
 * the format is told by the file's first bytes, never by its name:
 *
 * - raw: the disk itself; the holes of a sparse file are zeros that are
 *   not read (SEEK_DATA/SEEK_HOLE);
 * - zstd, xz, gzip, bzip2: a raw disk compressed (several frames,
 *   streams or members follow each other as one disk, as their tools and
 *   pbzip2 write them);
 *   a stream that ends before its end marker is an error;
 * - qcow2: the virtual disk (shoal-image-qcow2.c).
 */
#define _GNU_SOURCE
#include "config.h"

#include <bzlib.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <lzma.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "shoal-error.h"
#include "shoal-image-qcow2.h"
#include "shoal-image-source.h"
#include "shoal-manifest.h"

typedef enum {
  FORMAT_RAW,
  FORMAT_ZSTD,
  FORMAT_XZ,
  FORMAT_GZIP,
  FORMAT_BZIP2,
  FORMAT_QCOW2,
} Format;

static const gchar *format_names[] = { "raw", "zstd", "xz", "gzip", "bzip2", "qcow2" };

struct _ShoalImageSource {
  int             fd;
  gchar          *path;
  Format          format;
  guint64         file_size;
  gboolean        size_checked;  /* its size at its end compared with file_size */
  guint64         consumed;      /* position in the file */
  guint64         read;          /* bytes read (a raw image's holes are not) */
  guint64         data_start;    /* raw: the current extent of data, from */
  guint64         data_end;      /* SEEK_DATA and SEEK_HOLE */
  /* compressed: the input, in_buf[in_pos, in_len) not decoded yet */
  guint8         *in_buf;
  gsize           in_cap, in_len, in_pos;
  gboolean        in_eof;
  gboolean        ended;         /* the last frame, stream or member ended */
  ZSTD_DCtx      *zstd;
  lzma_stream     xz;
  gboolean        xz_ready;
  z_stream        gz;
  gboolean        gz_ready;
  bz_stream       bz;
  gboolean        bz_ready;
  ShoalQcow2     *qcow2;
  guint64         virtual_pos;   /* qcow2: where in its virtual disk */
};

void
shoal_image_source_free (ShoalImageSource *s)
{
  if (s == NULL)
    return;
  g_clear_pointer (&s->qcow2, shoal_qcow2_free);
  if (s->fd >= 0)
    close (s->fd);
  ZSTD_freeDCtx (s->zstd);
  if (s->xz_ready)
    lzma_end (&s->xz);
  if (s->gz_ready)
    inflateEnd (&s->gz);
  if (s->bz_ready)
    BZ2_bzDecompressEnd (&s->bz);
  g_free (s->in_buf);
  g_free (s->path);
  g_free (s);
}

static Format
detect (const guint8 *magic,
        gsize         len)
{
  static const guint8 zstd_magic[] = { 0x28, 0xb5, 0x2f, 0xfd };
  static const guint8 xz_magic[] = { 0xfd, '7', 'z', 'X', 'Z', 0x00 };
  static const guint8 gzip_magic[] = { 0x1f, 0x8b, 0x08 };    /* deflate */

  if (len >= sizeof zstd_magic && memcmp (magic, zstd_magic, sizeof zstd_magic) == 0)
    return FORMAT_ZSTD;
  /* a zstd skippable frame (RFC 8878 3.1.2: magic 0x184D2A50-5F, little
   * endian), with which pzstd begins every file */
  if (len >= 4 && (magic[0] & 0xf0) == 0x50 && magic[1] == 0x2a && magic[2] == 0x4d && magic[3] == 0x18)
    return FORMAT_ZSTD;
  if (len >= sizeof xz_magic && memcmp (magic, xz_magic, sizeof xz_magic) == 0)
    return FORMAT_XZ;
  if (len >= sizeof gzip_magic && memcmp (magic, gzip_magic, sizeof gzip_magic) == 0)
    return FORMAT_GZIP;
  /* "BZh", the block size 1-9, then a block's magic or the end's (empty) */
  if (len >= 10 && memcmp (magic, "BZh", 3) == 0 && magic[3] >= '1' && magic[3] <= '9' &&
      (memcmp (magic + 4, "\x31\x41\x59\x26\x53\x59", 6) == 0 ||
       memcmp (magic + 4, "\x17\x72\x45\x38\x50\x90", 6) == 0))
    return FORMAT_BZIP2;
  if (shoal_qcow2_probe (magic, len))
    return FORMAT_QCOW2;
  return FORMAT_RAW;
}

static gboolean
start_decoder (ShoalImageSource  *s,
               GError           **error)
{
  gboolean ok = TRUE;

  switch (s->format)
    {
    case FORMAT_ZSTD:
      s->zstd = ZSTD_createDCtx ();
      ok = s->zstd != NULL;
      break;
    case FORMAT_XZ:
      {
        /* as xz -d -T0: any number of streams; the blocks of a file
         * written in blocks (xz -T) decoded on every CPU, in a quarter of
         * the memory at most (else on one) */
        lzma_mt mt = {
          .flags = LZMA_CONCATENATED,
          .threads = MAX (g_get_num_processors (), 1),
          .memlimit_threading = MAX (lzma_physmem () / 4, 64u << 20),
          .memlimit_stop = UINT64_MAX,
        };

        ok = lzma_stream_decoder_mt (&s->xz, &mt) == LZMA_OK;
        s->xz_ready = ok;
      }
      break;
    case FORMAT_GZIP:
      ok = inflateInit2 (&s->gz, 16 + MAX_WBITS) == Z_OK;
      s->gz_ready = ok;
      break;
    case FORMAT_BZIP2:
      ok = BZ2_bzDecompressInit (&s->bz, 0, 0) == BZ_OK;
      s->bz_ready = ok;
      break;
    case FORMAT_RAW:
    case FORMAT_QCOW2:
    default:
      return TRUE;
    }
  if (!ok)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                   _("Cannot start the %s decoder for image %s"), format_names[s->format], s->path);
      return FALSE;
    }
  s->in_cap = s->format == FORMAT_ZSTD ? ZSTD_DStreamInSize () : 1u << 17;
  s->in_buf = g_malloc (s->in_cap);
  return TRUE;
}

/**
 * shoal_image_source_open_fd:
 * @fd: the image file, open for reading; the source closes it, even on error
 * @path: its name, for messages
 *
 * Returns: (transfer full): the source, or %NULL with @error set
 */
ShoalImageSource *
shoal_image_source_open_fd (int           fd,
                            const gchar  *path,
                            GError      **error)
{
  g_autoptr(ShoalImageSource) s = g_new0 (ShoalImageSource, 1);
  guint8 magic[10] = { 0 };
  struct stat st;
  gssize got;

  s->fd = fd;
  s->path = g_strdup (path);
  if (fstat (s->fd, &st) < 0)
    {
      int saved = errno;

      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                   _("Cannot open image %s: %s"), path, g_strerror (saved));
      return NULL;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("Image %s is not a regular file"), path);
      return NULL;
    }
  s->file_size = (guint64) st.st_size;
  posix_fadvise (s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  got = pread (s->fd, magic, sizeof magic, 0);
  s->format = detect (magic, got > 0 ? (gsize) got : 0);
  g_debug ("%s is %s", path, format_names[s->format]);
  if (s->format == FORMAT_QCOW2)
    {
      s->qcow2 = shoal_qcow2_open (s->fd, s->file_size, path, error);
      if (s->qcow2 == NULL)
        return NULL;
    }
  if (!start_decoder (s, error))
    return NULL;
  return g_steal_pointer (&s);
}

/**
 * shoal_image_source_open:
 * @path: an image file
 *
 * Returns: (transfer full): the source, or %NULL with @error set
 */
ShoalImageSource *
shoal_image_source_open (const gchar  *path,
                         GError      **error)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, SHOAL_ERROR, saved == ENOENT ? SHOAL_ERROR_NOT_FOUND : SHOAL_ERROR_FAILED,
                   _("Cannot open image %s: %s"), path, g_strerror (saved));
      return NULL;
    }
  return shoal_image_source_open_fd (fd, path, error);
}

const gchar *
shoal_image_source_format (ShoalImageSource *s)
{
  return format_names[s->format];
}

/* the name given to it, for messages */
const gchar *
shoal_image_source_get_path (ShoalImageSource *s)
{
  return s->path;
}

/**
 * shoal_image_source_disk_size:
 *
 * Returns: the size of the disk when the file says it before it is read
 *   (raw, qcow2), else 0
 */
guint64
shoal_image_source_disk_size (ShoalImageSource *s)
{
  switch (s->format)
    {
    case FORMAT_RAW:
      return s->file_size;
    case FORMAT_QCOW2:
      return shoal_qcow2_get_size (s->qcow2);
    case FORMAT_ZSTD:
    case FORMAT_XZ:
    case FORMAT_GZIP:
    case FORMAT_BZIP2:
    default:
      return 0;
    }
}

static gssize
read_some (ShoalImageSource  *s,
           guint8            *buf,
           gsize              len,
           GError           **error)
{
  for (;;)
    {
      /* at the position: a raw image skips its holes */
      gssize n = pread (s->fd, buf, len, (off_t) s->consumed);

      if (n >= 0)
        {
          s->consumed += (guint64) n;
          s->read += (guint64) n;
          return n;
        }
      if (errno != EINTR)
        {
          int saved = errno;

          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                       _("Cannot read image %s: %s"), s->path, g_strerror (saved));
          return -1;
        }
    }
}

static gssize
shrank (ShoalImageSource  *s,
        GError           **error)
{
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
               _("Image %s shrank while being read: it had %llu bytes"), s->path,
               (unsigned long long) s->file_size);
  return -1;
}

/* A raw image up to the size it had when opened. The holes of a sparse
 * file are zeros that are not read: a 20 GiB disk image holding 3 GiB
 * costs the reads of 3 GiB (the whole-image hash still covers every byte) */
static gssize
fill_raw (ShoalImageSource  *s,
          guint8            *buf,
          gsize              len,
          GError           **error)
{
  gsize done = 0;

  while (done < len && s->consumed < s->file_size)
    {
      guint64 want = MIN ((guint64) (len - done), s->file_size - s->consumed);
      gssize n;

      if (s->consumed >= s->data_end)
        shoal_manifest_data_extent (s->fd, s->consumed, s->file_size, &s->data_start, &s->data_end);
      if (s->consumed < s->data_start)
        {
          n = (gssize) MIN (want, s->data_start - s->consumed);
          memset (buf + done, 0, (gsize) n);
          s->consumed += (guint64) n;
        }
      else
        {
          n = read_some (s, buf + done, (gsize) MIN (want, s->data_end - s->consumed), error);
          if (n < 0)
            return -1;
          if (n == 0)
            return shrank (s, error);
        }
      done += (gsize) n;
    }
  /* at its end, still as long as it was: a file that shrank while read
   * (holes past its new end read as zeros) is not taken for a shorter or
   * zero-filled image */
  if (s->consumed >= s->file_size && !s->size_checked)
    {
      struct stat st;

      s->size_checked = TRUE;
      if (fstat (s->fd, &st) == 0 && (guint64) st.st_size < s->file_size)
        return shrank (s, error);
    }
  return (gssize) done;
}

/* more compressed input when all of it was decoded; FALSE on a read error */
static gboolean
refill (ShoalImageSource  *s,
        GError           **error)
{
  gssize n;

  if (s->in_pos < s->in_len || s->in_eof)
    return TRUE;
  n = read_some (s, s->in_buf, s->in_cap, error);
  if (n < 0)
    return FALSE;
  s->in_len = (gsize) n;
  s->in_pos = 0;
  s->in_eof = n == 0;
  return TRUE;
}

static gboolean
set_truncated (ShoalImageSource  *s,
               GError           **error)
{
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
               _("Image %s is a truncated %s stream"), s->path, format_names[s->format]);
  return FALSE;
}

static gboolean
set_undecodable (ShoalImageSource  *s,
                 const gchar       *why,
                 GError           **error)
{
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
               _("Cannot decompress image %s: %s"), s->path, why);
  return FALSE;
}

/* Decodes from the input into out[*done, len); FALSE with error set on
 * bad data. Input ends only at the end of the file. */
static gboolean
decode_zstd (ShoalImageSource  *s,
             guint8            *out,
             gsize              len,
             gsize             *done,
             GError           **error)
{
  ZSTD_inBuffer in = { s->in_buf, s->in_len, s->in_pos };
  ZSTD_outBuffer o = { out, len, *done };
  gsize ret = ZSTD_decompressStream (s->zstd, &o, &in);

  if (ZSTD_isError (ret))
    return set_undecodable (s, ZSTD_getErrorName (ret), error);
  s->in_pos = in.pos;
  *done = o.pos;
  s->ended = ret == 0;
  return TRUE;
}

static gboolean
decode_xz (ShoalImageSource  *s,
           guint8            *out,
           gsize              len,
           gsize             *done,
           GError           **error)
{
  lzma_ret ret;

  s->xz.next_in = s->in_buf + s->in_pos;
  s->xz.avail_in = s->in_len - s->in_pos;
  s->xz.next_out = out + *done;
  s->xz.avail_out = len - *done;
  /* with LZMA_CONCATENATED the decoder knows the last stream ended only
   * when told that the input has */
  ret = lzma_code (&s->xz, s->in_eof ? LZMA_FINISH : LZMA_RUN);
  s->in_pos = s->in_len - s->xz.avail_in;
  *done = len - s->xz.avail_out;
  switch (ret)
    {
    case LZMA_OK:
      return TRUE;
    case LZMA_STREAM_END:
      s->ended = TRUE;
      return TRUE;
    case LZMA_BUF_ERROR:
      return set_truncated (s, error);
    case LZMA_MEM_ERROR:
      return set_undecodable (s, _("out of memory"), error);
    case LZMA_FORMAT_ERROR:
      return set_undecodable (s, _("not an xz stream"), error);
    case LZMA_OPTIONS_ERROR:
      return set_undecodable (s, _("unsupported xz options"), error);
    case LZMA_DATA_ERROR:
    default:
      return set_undecodable (s, _("corrupt xz data"), error);
    }
}

static gboolean
decode_gzip (ShoalImageSource  *s,
             guint8            *out,
             gsize              len,
             gsize             *done,
             GError           **error)
{
  int ret;

  if (s->ended)
    {
      /* more input after a member: the next member */
      inflateReset (&s->gz);
      s->ended = FALSE;
    }
  s->gz.next_in = s->in_buf + s->in_pos;
  s->gz.avail_in = (uInt) (s->in_len - s->in_pos);
  s->gz.next_out = out + *done;
  s->gz.avail_out = (uInt) (len - *done);
  ret = inflate (&s->gz, Z_NO_FLUSH);
  s->in_pos = s->in_len - s->gz.avail_in;
  *done = len - s->gz.avail_out;
  if (ret == Z_STREAM_END)
    s->ended = TRUE;
  else if (ret != Z_OK && ret != Z_BUF_ERROR)      /* Z_BUF_ERROR: no progress */
    return set_undecodable (s, s->gz.msg != NULL ? s->gz.msg : _("corrupt gzip data"), error);
  return TRUE;
}

static gboolean
decode_bzip2 (ShoalImageSource  *s,
              guint8            *out,
              gsize              len,
              gsize             *done,
              GError           **error)
{
  int ret;

  if (s->ended)
    {
      /* more input after a stream: the next stream (pbzip2 writes many) */
      BZ2_bzDecompressEnd (&s->bz);
      s->bz_ready = BZ2_bzDecompressInit (&s->bz, 0, 0) == BZ_OK;
      if (!s->bz_ready)
        return set_undecodable (s, _("out of memory"), error);
      s->ended = FALSE;
    }
  s->bz.next_in = (char *) s->in_buf + s->in_pos;
  s->bz.avail_in = (unsigned int) (s->in_len - s->in_pos);
  s->bz.next_out = (char *) out + *done;
  s->bz.avail_out = (unsigned int) (len - *done);
  ret = BZ2_bzDecompress (&s->bz);
  s->in_pos = s->in_len - s->bz.avail_in;
  *done = len - s->bz.avail_out;
  switch (ret)
    {
    case BZ_OK:
      return TRUE;
    case BZ_STREAM_END:
      s->ended = TRUE;
      return TRUE;
    case BZ_DATA_ERROR_MAGIC:
      return set_undecodable (s, _("not a bzip2 stream"), error);
    case BZ_MEM_ERROR:
      return set_undecodable (s, _("out of memory"), error);
    case BZ_DATA_ERROR:
    default:
      return set_undecodable (s, _("corrupt bzip2 data"), error);
    }
}

static gssize
fill_compressed (ShoalImageSource  *s,
                 guint8            *buf,
                 gsize              len,
                 GError           **error)
{
  gsize done = 0;

  while (done < len)
    {
      gsize before = done, in_before;
      gboolean ok;

      if (!refill (s, error))
        return -1;
      if (s->ended && s->in_pos == s->in_len && s->in_eof)
        break;          /* the end of the file and of the last frame: of the image */
      in_before = s->in_pos;
      if (s->format == FORMAT_ZSTD)
        ok = decode_zstd (s, buf, len, &done, error);
      else if (s->format == FORMAT_XZ)
        ok = decode_xz (s, buf, len, &done, error);
      else if (s->format == FORMAT_BZIP2)
        ok = decode_bzip2 (s, buf, len, &done, error);
      else
        ok = decode_gzip (s, buf, len, &done, error);
      if (!ok)
        return -1;
      if (done == before && s->in_pos == in_before && !s->ended)
        {
          /* input left at the end of the file, or output held back, are
           * decoded first; nothing more to decode, and no end marker */
          if (s->in_eof && s->in_pos == s->in_len)
            set_truncated (s, error);
          else
            set_undecodable (s, _("the decoder takes no more input"), error);
          return -1;
        }
    }
  return (gssize) done;
}

static gssize
fill_qcow2 (ShoalImageSource  *s,
            guint8            *buf,
            gsize              len,
            GError           **error)
{
  gsize n = (gsize) MIN ((guint64) len, shoal_qcow2_get_size (s->qcow2) - s->virtual_pos);

  if (!shoal_qcow2_read (s->qcow2, s->virtual_pos, buf, n, error))
    return -1;
  s->virtual_pos += n;
  return (gssize) n;
}

/**
 * shoal_image_source_fill:
 *
 * Fills @buf with the next @len bytes of the disk; fewer only at its end.
 *
 * Returns: the bytes filled (0 at the end), or -1 with @error set
 */
gssize
shoal_image_source_fill (ShoalImageSource  *s,
                         guint8            *buf,
                         gsize              len,
                         GError           **error)
{
  switch (s->format)
    {
    case FORMAT_QCOW2:
      return fill_qcow2 (s, buf, len, error);
    case FORMAT_ZSTD:
    case FORMAT_XZ:
    case FORMAT_GZIP:
    case FORMAT_BZIP2:
      return fill_compressed (s, buf, len, error);
    case FORMAT_RAW:
    default:
      return fill_raw (s, buf, len, error);
    }
}

/**
 * shoal_image_source_position:
 * @total: (out): what the position goes up to
 *
 * Returns: how far the reading is: in the file, or in a qcow2 image's disk
 */
guint64
shoal_image_source_position (ShoalImageSource *s,
                             guint64          *total)
{
  if (s->qcow2 != NULL)
    {
      *total = shoal_qcow2_get_size (s->qcow2);
      return s->virtual_pos;
    }
  *total = s->file_size;
  return s->consumed;
}

/**
 * shoal_image_source_bytes_read:
 *
 * Returns: bytes read from the file (not the holes of a sparse one, nor a
 *   qcow2 image's unallocated clusters)
 */
guint64
shoal_image_source_bytes_read (ShoalImageSource *s)
{
  return s->qcow2 != NULL ? shoal_qcow2_get_bytes_read (s->qcow2) : s->read;
}
