/* agent-newc-fuzzer.c: the agent loader's decompression and newc
 * extraction (the generated agent from the server), into a scratch folder
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sa-archive.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char scratch[64];

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
    }
  sa_buf_init (&out);
  if (sa_decompress (data, size, 1 << 20, &out, err, sizeof err))
    sa_newc_extract (out.data, out.len, scratch, err, sizeof err);
  sa_buf_clear (&out);
  return 0;
}
