/* agent-newc-fuzzer.c: the agent loader's decompression and newc
 * extraction (the generated agent from the server), into a scratch folder
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sa-archive.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char scratch[64];

static int
remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void) st;
  (void) flag;
  (void) ftw;
  remove (path);
  return 0;
}

/* the scratch folder and what the inputs extracted into it, at exit (the
 * run ends with exit() at -max_total_time) */
static void
remove_scratch (void)
{
  if (scratch[0] != '\0')
    nftw (scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  SaBuf out;
  char err[256];

  if (scratch[0] == '\0')
    {
      strcpy (scratch, "/tmp/shoal-newc-fuzz-XXXXXX");
      if (mkdtemp (scratch) == NULL)
        abort ();
      atexit (remove_scratch);
    }
  sa_buf_init (&out);
  if (sa_decompress (data, size, 1 << 20, &out, err, sizeof err))
    sa_newc_extract (out.data, out.len, scratch, err, sizeof err);
  sa_buf_clear (&out);
  return 0;
}
