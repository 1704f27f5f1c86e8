/* shoal-json-private.h: JSON helpers shared inside libshoal
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

gboolean shoal_json_check_depth (const gchar *data,
                                 gsize        length,
                                 guint        max_depth);
JsonNode *shoal_json_node_deep_copy (JsonNode *node);
gchar    *shoal_json_to_canonical   (JsonNode *node);

G_END_DECLS
