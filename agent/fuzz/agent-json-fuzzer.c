/* agent-json-fuzzer.c: the target programs' JSON reader (instructions from
 * the server)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stddef.h>
#include <stdint.h>

#include "sa-json.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char err[256];
  SaJson *root = sa_json_parse ((const char *) data, size, err, sizeof err);

  if (root != NULL)
    {
      (void) sa_json_get_string (root, "action");
      (void) sa_json_get_int (root, "serial", -1);
      sa_json_free (root);
    }
  return 0;
}
