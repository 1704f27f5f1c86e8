/* shoal-inventory-step.h: the "inventory" step
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <shoal.h>

G_BEGIN_DECLS

#define SHOAL_TYPE_INVENTORY_STEP (shoal_inventory_step_get_type ())

G_DECLARE_FINAL_TYPE (ShoalInventoryStep, shoal_inventory_step, SHOAL, INVENTORY_STEP, GObject)

void      shoal_inventory_step_register_types (GTypeModule  *module);

gboolean  shoal_inventory_check               (JsonNode     *inventory,
                                               GError      **error);
gchar    *shoal_inventory_summary             (JsonNode     *inventory);

G_END_DECLS
