/* shoal-json-schema.h: JSON Schema validation for recipes and inventories
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define SHOAL_TYPE_JSON_SCHEMA (shoal_json_schema_get_type ())

G_DECLARE_FINAL_TYPE (ShoalJsonSchema, shoal_json_schema, SHOAL, JSON_SCHEMA, GObject)

ShoalJsonSchema *shoal_json_schema_new_from_data (const gchar      *data,
                                                  gssize            length,
                                                  GError          **error);
ShoalJsonSchema *shoal_json_schema_new_from_file (const gchar      *path,
                                                  GError          **error);
ShoalJsonSchema *shoal_json_schema_new_for_name  (const gchar      *name,
                                                  GError          **error);
gboolean         shoal_json_schema_validate      (ShoalJsonSchema  *self,
                                                  JsonNode         *instance,
                                                  GError          **error);

G_END_DECLS
