/* manifest-fuzzer.c: libFuzzer harness for the manifest parser
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Besides not crashing, checks the property the image id relies on: a text
 * the parser accepts serializes back to exactly the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shoal-manifest.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  ShoalManifestError error = { 0 };
  ShoalManifest *m = shoal_manifest_parse ((const char *) data, size, &error);
  char *text;
  size_t len = 0;

  if (m == NULL)
    {
      if (error.message[0] == '\0')
        abort ();
      return 0;
    }
  text = shoal_manifest_serialize (m, &len);
  if (text == NULL || len != size || memcmp (text, data, size) != 0)
    abort ();
  for (uint64_t i = 0; i < m->n_chunks; i++)
    if (shoal_manifest_chunk_length (m, i) == 0)
      abort ();
  free (text);
  shoal_manifest_free (m);
  return 0;
}
