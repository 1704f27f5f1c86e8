/* sa-util.c: small helpers shared by the agent loader and the agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "sa-util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

void
sa_buf_init (SaBuf *buf)
{
  buf->data = NULL;
  buf->len = 0;
  buf->alloc = 0;
}

void
sa_buf_clear (SaBuf *buf)
{
  free (buf->data);
  sa_buf_init (buf);
}

static void
sa_buf_reserve (SaBuf *buf, size_t extra)
{
  size_t need = buf->len + extra + 1;
  size_t alloc;
  char *data;

  if (need <= buf->alloc)
    return;
  alloc = buf->alloc ? buf->alloc : 256;
  while (alloc < need)
    alloc *= 2;
  data = realloc (buf->data, alloc);
  if (data == NULL)
    abort ();
  buf->data = data;
  buf->alloc = alloc;
}

void
sa_buf_append (SaBuf *buf, const void *data, size_t len)
{
  sa_buf_reserve (buf, len);
  if (len > 0)
    memcpy (buf->data + buf->len, data, len);
  buf->len += len;
  buf->data[buf->len] = '\0';
}

void
sa_buf_append_str (SaBuf *buf, const char *str)
{
  sa_buf_append (buf, str, strlen (str));
}

void
sa_buf_printf (SaBuf *buf, const char *fmt, ...)
{
  char tmp[256];
  va_list ap;
  int n;

  va_start (ap, fmt);
  n = vsnprintf (tmp, sizeof tmp, fmt, ap);
  va_end (ap);
  if (n < 0)
    return;
  if ((size_t) n < sizeof tmp)
    {
      sa_buf_append (buf, tmp, (size_t) n);
      return;
    }
  sa_buf_reserve (buf, (size_t) n);
  va_start (ap, fmt);
  vsnprintf (buf->data + buf->len, (size_t) n + 1, fmt, ap);
  va_end (ap);
  buf->len += (size_t) n;
}

char *
sa_buf_steal (SaBuf *buf)
{
  char *data;

  sa_buf_reserve (buf, 0);
  data = buf->data;
  sa_buf_init (buf);
  return data;
}

void *
sa_malloc0 (size_t size)
{
  void *p = calloc (1, size ? size : 1);

  if (p == NULL)
    abort ();
  return p;
}

char *
sa_strdup (const char *str)
{
  return str ? sa_strndup (str, strlen (str)) : NULL;
}

char *
sa_strndup (const char *str, size_t len)
{
  char *p = sa_malloc0 (len + 1);

  memcpy (p, str, len);
  return p;
}

char *
sa_read_file (const char *path, size_t max, bool strip)
{
  SaBuf buf;
  char tmp[4096];
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return NULL;
  sa_buf_init (&buf);
  sa_buf_append (&buf, "", 0);
  while (buf.len < max)
    {
      ssize_t n = read (fd, tmp, sizeof tmp);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          close (fd);
          sa_buf_clear (&buf);
          return NULL;
        }
      if (n == 0)
        break;
      sa_buf_append (&buf, tmp, (size_t) n);
    }
  close (fd);
  if (strip)
    {
      while (buf.len > 0 && (buf.data[buf.len - 1] == '\n' || buf.data[buf.len - 1] == ' '
                             || buf.data[buf.len - 1] == '\t' || buf.data[buf.len - 1] == '\r'))
        buf.data[--buf.len] = '\0';
    }
  return sa_buf_steal (&buf);
}

char *
sa_read_filef (bool strip, const char *fmt, ...)
{
  char path[4096];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (path, sizeof path, fmt, ap);
  va_end (ap);
  return sa_read_file (path, 1 << 20, strip);
}

bool
sa_write_file (const char *path, const void *data, size_t len, int mode)
{
  const char *p = data;
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

  if (fd < 0)
    return false;
  while (len > 0)
    {
      ssize_t n = write (fd, p, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          close (fd);
          return false;
        }
      p += n;
      len -= (size_t) n;
    }
  return close (fd) == 0;
}

bool
sa_mkdir_p (const char *path, int mode)
{
  char tmp[4096];
  size_t len = strlen (path);

  if (len == 0 || len >= sizeof tmp)
    return false;
  memcpy (tmp, path, len + 1);
  for (char *p = tmp + 1; *p; p++)
    {
      if (*p != '/')
        continue;
      *p = '\0';
      if (mkdir (tmp, mode) < 0 && errno != EEXIST)
        return false;
      *p = '/';
    }
  return mkdir (tmp, mode) == 0 || errno == EEXIST;
}

char *
sa_cmdline_get (const char *cmdline, const char *key)
{
  size_t klen = strlen (key);
  const char *p = cmdline;

  while (p != NULL && *p)
    {
      const char *end;

      while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
      end = p;
      while (*end && *end != ' ' && *end != '\t' && *end != '\n')
        end++;
      if ((size_t) (end - p) > klen && strncmp (p, key, klen) == 0 && p[klen] == '=')
        return sa_strndup (p + klen + 1, (size_t) (end - p) - klen - 1);
      p = end;
    }
  return NULL;
}

static const char *sa_prog = "shoal";

void
sa_log_set_prog (const char *prog)
{
  sa_prog = prog;
}

void
sa_log (const char *fmt, ...)
{
  char line[2048];
  va_list ap;
  int n;

  n = snprintf (line, sizeof line, "%s: ", sa_prog);
  va_start (ap, fmt);
  vsnprintf (line + n, sizeof line - (size_t) n - 1, fmt, ap);
  va_end (ap);
  strcat (line, "\n");
  if (write (STDERR_FILENO, line, strlen (line)) < 0)
    return;
}

uint64_t
sa_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

void
sa_sleep_ms (unsigned ms)
{
  struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
}

void
sa_sha256_hex (const void *data, size_t len, char out[65])
{
  unsigned char md[32];
  unsigned int mdlen = 0;
  static const char hex[] = "0123456789abcdef";

  EVP_Digest (data, len, md, &mdlen, EVP_sha256 (), NULL);
  for (unsigned i = 0; i < 32; i++)
    {
      out[2 * i] = hex[md[i] >> 4];
      out[2 * i + 1] = hex[md[i] & 0xf];
    }
  out[64] = '\0';
}

static bool
transfer_all (int fd, void *buf, size_t len, uint64_t offset, bool write)
{
  uint8_t *p = buf;

  while (len > 0)
    {
      ssize_t n = write ? pwrite (fd, p, len, (off_t) offset) : pread (fd, p, len, (off_t) offset);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          if (n == 0)
            errno = EIO;
          return false;
        }
      p += n;
      len -= (size_t) n;
      offset += (uint64_t) n;
    }
  return true;
}

bool
sa_pread_all (int fd, void *buf, size_t len, uint64_t offset)
{
  return transfer_all (fd, buf, len, offset, false);
}

bool
sa_pwrite_all (int fd, const void *buf, size_t len, uint64_t offset)
{
  return transfer_all (fd, (void *) buf, len, offset, true);
}

bool
sa_pwrite_zeros (int fd, const void *zeros, size_t zeros_len, uint64_t len, uint64_t offset)
{
  while (len > 0)
    {
      size_t n = len < zeros_len ? (size_t) len : zeros_len;

      if (!sa_pwrite_all (fd, zeros, n, offset))
        return false;
      len -= n;
      offset += n;
    }
  return true;
}
