/* sa-archive.c: unpacks a (gzip- or zstd-compressed) newc initramfs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "sa-archive.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined __has_include
#if __has_include (<linux/openat2.h>)
#include <linux/openat2.h>
#endif
#endif

/* openat2(2), called through syscall(): glibc has no wrapper */
#if defined RESOLVE_IN_ROOT && !defined SYS_openat2 && defined __NR_openat2
#define SYS_openat2 __NR_openat2
#endif
#if defined RESOLVE_IN_ROOT && defined SYS_openat2
#define SA_HAVE_OPENAT2 1
#else
#define SA_HAVE_OPENAT2 0
#endif

#include <zlib.h>
#include <zstd.h>

/* Why a folder on an entry's path was not opened */
typedef enum {
  SA_PATH_ERRNO,            /* errno says */
  SA_PATH_LINK_UNFOLLOWED,  /* a symbolic link, and no openat2() to follow it safely */
  SA_PATH_LINK_DANGLING,    /* a symbolic link to nothing within the destination */
  SA_PATH_LINK_NOT_FOLDER,  /* a symbolic link to a file */
  SA_PATH_LINK_LOOP,        /* a symbolic link loop, or a /proc magic link */
} SaPathRefusal;

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
is_symlink (int dirfd, const char *name)
{
  struct stat st;
  int saved = errno;
  bool link = fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK (st.st_mode);

  errno = saved;
  return link;
}

/* Opens the folder @path names beneath @rootfd as if @rootfd were "/":
 * openat2() with RESOLVE_IN_ROOT, so that an absolute link target and
 * ".." are resolved against @rootfd and nothing outside it is reached,
 * and RESOLVE_NO_MAGICLINKS, so that no /proc/<pid>/fd link leads out
 * either. ENOSYS where the kernel (before 5.6) or the C library's headers
 * have no openat2 */
static int
open_in_root (int rootfd, const char *path)
{
#if SA_HAVE_OPENAT2
  struct open_how how;

  memset (&how, 0, sizeof how);
  how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0; attempt < 16; attempt++)
    {
      /* EAGAIN: a rename elsewhere raced the walk through ".." */
      long fd = syscall (SYS_openat2, rootfd, path, &how, sizeof how);

      if (fd >= 0 || errno != EAGAIN)
        return (int) fd;
    }
  return -1;
#else
  (void) rootfd;
  (void) path;
  errno = ENOSYS;
  return -1;
#endif
}

/* Opens the folder that the first @len bytes of @name (a symbolic link
 * beneath @rootfd) lead to, resolved inside @rootfd; on failure says why
 * in @why */
static int
follow_link (int rootfd, const char *name, size_t len, SaPathRefusal *why)
{
  char prefix[PATH_MAX];
  int fd;

  if (len >= sizeof prefix)
    {
      errno = ENAMETOOLONG;
      *why = SA_PATH_ERRNO;
      return -1;
    }
  memcpy (prefix, name, len);
  prefix[len] = '\0';
  fd = open_in_root (rootfd, prefix);
  if (fd >= 0)
    return fd;
  switch (errno)
    {
    case ENOSYS:
    case EPERM: /* a seccomp filter that refuses system calls it does not know (container runtimes did) */
      *why = SA_PATH_LINK_UNFOLLOWED;
      break;
    case ENOENT:
      *why = SA_PATH_LINK_DANGLING;
      break;
    case ENOTDIR:
      *why = SA_PATH_LINK_NOT_FOLDER;
      break;
    case ELOOP:
      *why = SA_PATH_LINK_LOOP;
      break;
    default:
      *why = SA_PATH_ERRNO;
      break;
    }
  return -1;
}

/* Opens the folder beneath @rootfd that holds @name's last component,
 * creating the folders on the way, and points @leaf at that component.
 * A component that is a symbolic link (the loader's root may well be
 * merged-/usr: lib -> usr/lib) is followed as if @rootfd were "/", with
 * openat2() and RESOLVE_IN_ROOT: a link to /outside, to / or to ../..
 * stays beneath @rootfd, whether the archive made it or it was there
 * already, and a link that leads to no folder there is refused (no
 * folder is created through it). Without openat2 a link is not followed
 * at all. On failure, @at is the length of @name up to the component at
 * fault and @why says what is wrong with it */
static int
open_parent (int rootfd, const char *name, const char **leaf, size_t *at, SaPathRefusal *why)
{
  char comp[NAME_MAX + 1];
  int fd = fcntl (rootfd, F_DUPFD_CLOEXEC, 0);
  const char *p = name;
  const char *slash;

  *why = SA_PATH_ERRNO;
  *at = 0;
  while (fd >= 0 && (slash = strchr (p, '/')) != NULL)
    {
      size_t n = (size_t) (slash - p);
      int next;

      if (n == 0 || (n == 1 && p[0] == '.'))
        {
          p = slash + 1;
          continue;
        }
      *at = (size_t) (slash - name);
      if (n > NAME_MAX)
        {
          close (fd);
          errno = ENAMETOOLONG;
          return -1;
        }
      memcpy (comp, p, n);
      comp[n] = '\0';
      /* mkdirat() creates nothing through a link (EEXIST) */
      next = mkdirat (fd, comp, 0755) == 0 || errno == EEXIST
             ? openat (fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
      if (next < 0 && is_symlink (fd, comp))
        next = follow_link (rootfd, name, *at, why);
      close (fd);
      fd = next;
      p = slash + 1;
    }
  *leaf = p;
  return fd;
}

static bool
write_leaf (int dirfd, const char *leaf, unsigned long mode, const char *data, size_t size)
{
  mode_t perm = (mode_t) (mode & 07777);
  int fd;

  unlinkat (dirfd, leaf, 0);
  fd = openat (dirfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, perm);
  if (fd < 0)
    return false;
  if (!sa_pwrite_all (fd, data, size, 0) || fchmod (fd, perm) < 0)
    {
      close (fd);
      return false;
    }
  return close (fd) == 0;
}

static bool
extract_leaf (int dirfd, const char *leaf, unsigned long mode, const char *data, size_t size)
{
  char target[PATH_MAX];
  unsigned type = (unsigned) (mode & S_IFMT);

  if (*leaf == '\0' || strcmp (leaf, ".") == 0)
    {
      /* "a/" or "a/.": the folder itself */
      errno = EISDIR;
      return type == S_IFDIR;
    }
  if (type == S_IFDIR)
    return mkdirat (dirfd, leaf, (mode_t) (mode & 07777)) == 0 || errno == EEXIST;
  if (type == S_IFLNK)
    {
      if (size >= sizeof target)
        {
          errno = ENAMETOOLONG;
          return false;
        }
      memcpy (target, data, size);
      target[size] = '\0';
      unlinkat (dirfd, leaf, 0);
      return symlinkat (target, dirfd, leaf) == 0;
    }
  if (type == S_IFREG)
    return write_leaf (dirfd, leaf, mode, data, size);
  return true; /* device nodes, fifos: not needed, skipped */
}

/* Extracts one entry beneath the folder @destfd; a link the archive
 * makes is written as a link, and later entries are written through it
 * as through any other (open_parent()) */
static bool
extract_one (int destfd, const char *name, unsigned long mode, const char *data, size_t size,
             size_t *at, SaPathRefusal *why)
{
  const char *leaf;
  int dirfd;
  bool ok;

  *why = SA_PATH_ERRNO;
  *at = 0;
  if (strcmp (name, ".") == 0)
    return true;
  dirfd = open_parent (destfd, name, &leaf, at, why);
  if (dirfd < 0)
    return false;
  ok = extract_leaf (dirfd, leaf, mode, data, size);
  close (dirfd);
  return ok;
}

static long extract_all (const char *base, size_t len, int destfd, const char *dest, char *err, size_t errlen);

long
sa_newc_extract (const void *data, size_t len, const char *dest, char *err, size_t errlen)
{
  int destfd;
  long count;

  if (!sa_mkdir_p (dest, 0755) || (destfd = open (dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    {
      snprintf (err, errlen, "newc: cannot open %s: %s", dest, strerror (errno));
      return -1;
    }
  count = extract_all (data, len, destfd, dest, err, errlen);
  close (destfd);
  return count;
}

/* Says in @err why @name could not be extracted */
static void
refusal (const char *name, size_t at, SaPathRefusal why, int saved_errno, const char *dest,
         char *err, size_t errlen)
{
  int n = (int) at;

  switch (why)
    {
    case SA_PATH_LINK_UNFOLLOWED:
      snprintf (err, errlen, "newc: refusing %s: %.*s is a symbolic link, which is followed (within %s) only "
                "with openat2(), and openat2() is unavailable here (%s; it needs Linux 5.6 or later)",
                name, n, name, dest, strerror (saved_errno));
      break;
    case SA_PATH_LINK_DANGLING:
      snprintf (err, errlen, "newc: refusing %s: %.*s is a symbolic link to nothing within %s "
                "(links are resolved as if it were /)", name, n, name, dest);
      break;
    case SA_PATH_LINK_NOT_FOLDER:
      snprintf (err, errlen, "newc: refusing %s: %.*s is a symbolic link to no folder within %s "
                "(links are resolved as if it were /)", name, n, name, dest);
      break;
    case SA_PATH_LINK_LOOP:
      snprintf (err, errlen, "newc: refusing %s: %.*s is a symbolic link that loops, or passes through a "
                "/proc magic link", name, n, name);
      break;
    case SA_PATH_ERRNO:
    default:
      snprintf (err, errlen, "newc: cannot extract %s: %s", name, strerror (saved_errno));
      break;
    }
}

static long
extract_all (const char *base, size_t len, int destfd, const char *dest, char *err, size_t errlen)
{
  size_t off = 0;
  long count = 0;

  while (off + 110 <= len)
    {
      const char *h = base + off;
      unsigned long f[13];
      const char *name;
      size_t name_off, data_off, at;
      SaPathRefusal why;

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
      if (!extract_one (destfd, name, f[1], base + data_off, f[6], &at, &why))
        {
          refusal (name, at, why, errno, dest, err, errlen);
          return -1;
        }
      count++;
      off = (data_off + f[6] + 3) & ~(size_t) 3;
    }
  snprintf (err, errlen, "newc: no trailer (archive truncated?)");
  return -1;
}
