/* image-source-fuzzer.c: libFuzzer harness for reading an image file
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Any bytes as an image file: the format is told by its first bytes (raw,
 * zstd, xz, gzip, qcow2) and the disk read in pieces of 64 KiB, up to
 * 8 MiB. Bad input must end in an error with a message, never a crash, a
 * read past what was asked, or a read that returns nothing before the end.
 */
#define _GNU_SOURCE
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shoal-error.h"
#include "shoal-image-source.h"

#define STEP (64u << 10)
#define MAX_OUT (8u << 20)

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImageSource) s = NULL;
  g_autofree guint8 *buf = g_malloc (STEP + 1);
  int fd = memfd_create ("image-fuzz", MFD_CLOEXEC);
  gsize total = 0;

  if (fd < 0 || write (fd, data, size) != (ssize_t) size)
    abort ();
  s = shoal_image_source_open_fd (fd, "fuzz.img", &error);
  if (s == NULL)
    {
      if (error == NULL || error->domain != SHOAL_ERROR || error->message[0] == '\0')
        abort ();
      return 0;
    }
  buf[STEP] = 0xa5;
  while (total < MAX_OUT)
    {
      gssize n = shoal_image_source_fill (s, buf, STEP, &error);

      if (buf[STEP] != 0xa5)
        abort ();
      if (n < 0)
        {
          if (error == NULL || error->domain != SHOAL_ERROR || error->message[0] == '\0')
            abort ();
          break;
        }
      if (n > (gssize) STEP)
        abort ();
      total += (gsize) n;
      if ((gsize) n < STEP)
        {
          /* the end: and it stays the end */
          if (shoal_image_source_fill (s, buf, STEP, &error) != 0)
            abort ();
          break;
        }
    }
  return 0;
}
