/* qcow2-fuzzer.c: libFuzzer harness for the qcow2 reader
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The input is a whole file (first byte odd), or, so that the search gets
 * past the header at once, the body of a file behind a valid version 3
 * header whose cluster size, compression type and virtual size the first
 * bytes choose (first byte even): the L1 table, the L2 tables and the
 * clusters all come from the fuzzer. The harness opens it and reads the
 * start and the end of the virtual disk; bad input must end in an error
 * with a message, never a crash, and a read must fill what was asked.
 */
#define _GNU_SOURCE
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shoal-error.h"
#include "shoal-image-qcow2.h"

#define READ_MAX (4u << 20)

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
put32 (guint8 *p, guint32 v)
{
  v = GUINT32_TO_BE (v);
  memcpy (p, &v, 4);
}

static void
put64 (guint8 *p, guint64 v)
{
  v = GUINT64_TO_BE (v);
  memcpy (p, &v, 8);
}

/* a file: a v3 header in cluster 0, then the fuzzer's bytes from cluster 1 */
static GByteArray *
synthesize (const uint8_t *data,
            size_t         size)
{
  guint cluster_bits = 9 + data[1] % 5;
  guint64 cluster = G_GUINT64_CONSTANT (1) << cluster_bits;
  guint64 vsize = ((guint64) (data[2] % 64) + 1) * cluster * 8;
  guint64 span = G_GUINT64_CONSTANT (1) << (cluster_bits * 2 - 3);
  GByteArray *file = g_byte_array_sized_new ((guint) (cluster + size));
  guint8 h[112] = { 0 };

  put32 (h, 0x514649fb);
  put32 (h + 4, 3);
  put32 (h + 20, cluster_bits);
  put64 (h + 24, vsize);
  put32 (h + 36, (guint32) ((vsize + span - 1) / span));
  put64 (h + 40, cluster);
  put64 (h + 72, (data[1] & 0x80) ? 8 : 0);     /* compression type: zstd */
  put32 (h + 100, 112);
  h[104] = (data[1] & 0x80) ? 1 : 0;
  g_byte_array_append (file, h, sizeof h);
  g_byte_array_set_size (file, (guint) cluster);
  memset (file->data + sizeof h, 0, cluster - sizeof h);
  g_byte_array_append (file, data + 3, (guint) (size - 3));
  return file;
}

static void
read_range (ShoalQcow2 *q,
            guint64     offset,
            guint64     len,
            guint8     *buf)
{
  g_autoptr(GError) error = NULL;

  if (!shoal_qcow2_read (q, offset, buf, (gsize) len, &error))
    {
      if (error == NULL || error->domain != SHOAL_ERROR || error->message[0] == '\0')
        abort ();
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GByteArray) file = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalQcow2) q = NULL;
  g_autofree guint8 *buf = NULL;
  guint64 vsize, first;
  int fd;

  if (size < 3)
    return 0;
  if (data[0] & 1)
    file = g_byte_array_new_take (g_memdup2 (data + 1, size - 1), size - 1);
  else
    file = synthesize (data, size);
  fd = memfd_create ("qcow2-fuzz", MFD_CLOEXEC);
  if (fd < 0 || write (fd, file->data, file->len) != (ssize_t) file->len)
    abort ();
  q = shoal_qcow2_open (fd, file->len, "fuzz.qcow2", &error);
  if (q == NULL)
    {
      close (fd);
      if (error == NULL || error->domain != SHOAL_ERROR || error->message[0] == '\0')
        abort ();
      return 0;
    }
  vsize = shoal_qcow2_get_size (q);
  first = MIN (vsize, READ_MAX);
  buf = g_malloc (READ_MAX);
  read_range (q, 0, first, buf);
  read_range (q, vsize - MIN (vsize, 65536), MIN (vsize, 65536), buf);
  close (fd);
  return 0;
}
