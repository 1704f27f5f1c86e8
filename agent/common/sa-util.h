/* sa-util.h: small helpers shared by the agent loader and the agent
 *
 * The target programs run from an initramfs whose only other userland is
 * busybox: they are plain C over libc, linked statically.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer, always NUL-terminated */
typedef struct {
  char   *data;
  size_t  len;
  size_t  alloc;
} SaBuf;

void    sa_buf_init        (SaBuf *buf);
void    sa_buf_clear       (SaBuf *buf);
void    sa_buf_append      (SaBuf *buf, const void *data, size_t len);
void    sa_buf_append_str  (SaBuf *buf, const char *str);
void    sa_buf_printf      (SaBuf *buf, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
char   *sa_buf_steal       (SaBuf *buf);

void   *sa_malloc0         (size_t size);
char   *sa_strdup          (const char *str);
char   *sa_strndup         (const char *str, size_t len);

/* Reads a whole (small) file; returns NULL if it cannot be read.
 * Trailing whitespace is stripped when @strip is true. */
char   *sa_read_file       (const char *path, size_t max, bool strip);
/* Same, for a path made of a printf format */
char   *sa_read_filef      (bool strip, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
bool    sa_write_file      (const char *path, const void *data, size_t len, int mode);
/* @len bytes at @offset of @fd, whole (EINTR retried): read into @buf, or
 * written from it. False with errno (EIO for a file that ends first) */
bool    sa_pread_all       (int fd, void *buf, size_t len, uint64_t offset);
bool    sa_pwrite_all      (int fd, const void *buf, size_t len, uint64_t offset);
/* zeros written over [@offset, @offset + @len) of @fd, from @zeros
 * (@zeros_len bytes of them) as many times as it takes */
bool    sa_pwrite_zeros    (int fd, const void *zeros, size_t zeros_len, uint64_t len, uint64_t offset);
bool    sa_mkdir_p         (const char *path, int mode);

/* The value of KEY= in a kernel command line (space-separated words);
 * NULL if absent */
char   *sa_cmdline_get     (const char *cmdline, const char *key);

/* Logging: to stderr (the serial console), prefixed with the program name */
void    sa_log_set_prog    (const char *prog);
void    sa_log             (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* Monotonic milliseconds */
uint64_t sa_now_ms         (void);
void     sa_sleep_ms       (unsigned ms);

/* SHA-256 of a buffer as 64 lowercase hex digits + NUL */
void    sa_sha256_hex      (const void *data, size_t len, char out[65]);
