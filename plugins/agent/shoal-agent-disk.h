/* shoal-agent-disk.h: which disk the agent writes, from root device hints
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

gboolean shoal_agent_disk_hints_validate (JsonNode     *hints,
                                          GError      **error);
gchar   *shoal_agent_disk_choose         (JsonNode     *inventory,
                                          JsonNode     *hints,
                                          gchar       **description,
                                          GError      **error);

G_END_DECLS
