/* inventory-fuzzer.c: what the agent API does with an inventory body
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Any bytes: UTF-8 check, JSON parse, validation against
 * inventory.schema.json. Must never crash, leak or hang.
 */
#include "config.h"

#include <json-glib/json-glib.h>

#include "shoal-json-schema.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  static ShoalJsonSchema *schema = NULL;
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) error = NULL;

  if (schema == NULL)
    {
      g_setenv ("SHOAL_SCHEMA_DIR", SHOAL_SOURCE_SCHEMADIR, FALSE);
      schema = shoal_json_schema_new_for_name ("inventory", NULL);
      g_assert (schema != NULL);
    }
  if (size > 1024 * 1024 || !g_utf8_validate ((const gchar *) data, (gssize) size, NULL))
    return 0;
  if (!json_parser_load_from_data (parser, (const gchar *) data, (gssize) size, &error))
    return 0;
  shoal_json_schema_validate (schema, json_parser_get_root (parser), NULL);
  return 0;
}
