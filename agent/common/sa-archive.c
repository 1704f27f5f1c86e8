/* sa-archive.c: unpacks a (gzip- or zstd-compressed) newc initramfs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "sa-archive.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>
#include <zstd.h>

static bool
gunzip (const unsigned char *data, size_t len, size_t max_out, SaBuf *out, char *err, size_t errlen)
{
  z_stream zs;
  unsigned char tmp[65536];
  int r = Z_OK;

  memset (&zs, 0, sizeof zs);
  if (inflateInit2 (&zs, 16 + MAX_WBITS) != Z_OK)
    {
      snprintf (err, errlen, "gzip: cannot initialise");
      return false;
    }
  zs.next_in = (unsigned char *) data;
  zs.avail_in = (uInt) len;
  while (r != Z_STREAM_END)
    {
      zs.next_out = tmp;
      zs.avail_out = sizeof tmp;
      r = inflate (&zs, Z_NO_FLUSH);
      if (r != Z_OK && r != Z_STREAM_END)
        break;
      sa_buf_append (out, tmp, sizeof tmp - zs.avail_out);
      if (out->len > max_out)
        break;
      if (r == Z_STREAM_END && zs.avail_in > 0 && zs.next_in[0] == 0x1f)
        {
          /* concatenated members (a cached base archive + the device's part) */
          inflateReset (&zs);
          r = Z_OK;
          continue;
        }
      if (r == Z_OK && zs.avail_in == 0 && zs.avail_out != 0)
        break;
    }
  inflateEnd (&zs);
  if (r != Z_STREAM_END)
    snprintf (err, errlen, "gzip: corrupt, truncated or larger than %zu bytes", max_out);
  return r == Z_STREAM_END;
}

static bool
unzstd (const unsigned char *data, size_t len, size_t max_out, SaBuf *out, char *err, size_t errlen)
{
  ZSTD_DStream *ds = ZSTD_createDStream ();
  ZSTD_inBuffer in = { data, len, 0 };
  unsigned char tmp[65536];
  size_t r = 1;

  ZSTD_initDStream (ds);
  while (in.pos < in.size || r != 0)
    {
      ZSTD_outBuffer ob = { tmp, sizeof tmp, 0 };
      size_t before = in.pos;

      r = ZSTD_decompressStream (ds, &ob, &in);
      if (ZSTD_isError (r))
        {
          snprintf (err, errlen, "zstd: %s", ZSTD_getErrorName (r));
          ZSTD_freeDStream (ds);
          return false;
        }
      sa_buf_append (out, tmp, ob.pos);
      if (out->len > max_out || (ob.pos == 0 && in.pos == before && r != 0))
        {
          snprintf (err, errlen, "zstd: truncated or larger than %zu bytes", max_out);
          ZSTD_freeDStream (ds);
          return false;
        }
    }
  ZSTD_freeDStream (ds);
  return true;
}

bool
sa_decompress (const void *data, size_t len, size_t max_out, SaBuf *out, char *err, size_t errlen)
{
  const unsigned char *p = data;

  if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
    return gunzip (p, len, max_out, out, err, errlen);
  if (len >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
    return unzstd (p, len, max_out, out, err, errlen);
  if (len >= 6 && memcmp (p, "070701", 6) == 0)
    {
      sa_buf_append (out, data, len);
      return true;
    }
  snprintf (err, errlen, "not a gzip, zstd or newc archive");
  return false;
}

static bool
hex8 (const char *p, unsigned long *out)
{
  unsigned long v = 0;

  for (int i = 0; i < 8; i++)
    {
      char c = p[i];

      v <<= 4;
      if (c >= '0' && c <= '9') v |= (unsigned long) (c - '0');
      else if (c >= 'a' && c <= 'f') v |= (unsigned long) (c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= (unsigned long) (c - 'A' + 10);
      else return false;
    }
  *out = v;
  return true;
}

static bool
safe_name (const char *name)
{
  const char *p = name;

  if (*name == '/' || *name == '\0')
    return false;
  while (*p)
    {
      const char *slash = strchr (p, '/');
      size_t n = slash ? (size_t) (slash - p) : strlen (p);

      if (n == 2 && p[0] == '.' && p[1] == '.')
        return false;
      p += n;
      if (*p == '/')
        p++;
    }
  return true;
}

static bool
parent_dirs (const char *path)
{
  char tmp[PATH_MAX];
  char *slash;

  snprintf (tmp, sizeof tmp, "%s", path);
  slash = strrchr (tmp, '/');
  if (slash == NULL || slash == tmp)
    return true;
  *slash = '\0';
  return sa_mkdir_p (tmp, 0755);
}

static bool
extract_one (const char *dest, const char *name, unsigned long mode, const char *data, size_t size)
{
  char path[PATH_MAX];
  char target[PATH_MAX];
  unsigned type = (unsigned) (mode & S_IFMT);

  if (strcmp (name, ".") == 0)
    return true;
  snprintf (path, sizeof path, "%s/%s", dest, name);
  if (!parent_dirs (path))
    return false;
  if (type == S_IFDIR)
    return mkdir (path, (mode_t) (mode & 07777)) == 0 || errno == EEXIST;
  if (type == S_IFLNK)
    {
      if (size >= sizeof target)
        return false;
      memcpy (target, data, size);
      target[size] = '\0';
      unlink (path);
      return symlink (target, path) == 0;
    }
  if (type == S_IFREG)
    {
      unlink (path);
      return sa_write_file (path, data, size, (int) (mode & 07777))
             && chmod (path, (mode_t) (mode & 07777)) == 0;
    }
  return true; /* device nodes, fifos: not needed, skipped */
}

long
sa_newc_extract (const void *data, size_t len, const char *dest, char *err, size_t errlen)
{
  const char *base = data;
  size_t off = 0;
  long count = 0;

  while (off + 110 <= len)
    {
      const char *h = base + off;
      unsigned long f[13];
      const char *name;
      size_t name_off, data_off;

      if (memcmp (h, "070701", 6) != 0 && memcmp (h, "070702", 6) != 0)
        break;
      for (int i = 0; i < 13; i++)
        {
          if (!hex8 (h + 6 + 8 * i, &f[i]))
            {
              snprintf (err, errlen, "newc: bad header at %zu", off);
              return -1;
            }
        }
      /* f[1] mode, f[6] filesize, f[11] namesize */
      name_off = off + 110;
      data_off = (name_off + f[11] + 3) & ~(size_t) 3;
      if (f[11] == 0 || f[11] > PATH_MAX || data_off > len || f[6] > len - data_off
          || base[name_off + f[11] - 1] != '\0')
        {
          snprintf (err, errlen, "newc: truncated entry at %zu", off);
          return -1;
        }
      name = base + name_off;
      if (strcmp (name, "TRAILER!!!") == 0)
        {
          /* another archive may follow (after zero padding), as the kernel allows */
          off = (data_off + f[6] + 3) & ~(size_t) 3;
          while (off < len && base[off] == '\0')
            off++;
          if (off >= len)
            return count;
          continue;
        }
      if (!safe_name (name))
        {
          snprintf (err, errlen, "newc: refusing entry name %s", name);
          return -1;
        }
      if (!extract_one (dest, name, f[1], base + data_off, f[6]))
        {
          snprintf (err, errlen, "newc: cannot extract %s: %s", name, strerror (errno));
          return -1;
        }
      count++;
      off = (data_off + f[6] + 3) & ~(size_t) 3;
    }
  snprintf (err, errlen, "newc: no trailer (archive truncated?)");
  return -1;
}
