/* range-fuzzer.c: libFuzzer harness for the Range header parser
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Checks the invariants the server relies on: ranges sorted, disjoint,
 * non-adjacent, inside the representation.
 */
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "shoal-http-range.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autofree gchar *header = NULL;
  g_autoptr(GArray) ranges = NULL;
  guint64 repr = 0;
  ShoalRangeResult r;

  if (size < 4)
    return 0;
  memcpy (&repr, data, 4);
  header = g_strndup ((const gchar *) data + 4, size - 4);
  r = shoal_http_range_parse (header, repr, &ranges);
  if (r != SHOAL_RANGE_PARTIAL)
    {
      if (ranges != NULL)
        abort ();
      return 0;
    }
  for (guint i = 0; i < ranges->len; i++)
    {
      ShoalByteRange *br = &g_array_index (ranges, ShoalByteRange, i);

      if (br->start > br->end || br->end >= repr)
        abort ();
      if (i > 0 && g_array_index (ranges, ShoalByteRange, i - 1).end + 1 >= br->start)
        abort ();
    }
  return 0;
}
