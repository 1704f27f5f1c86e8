/* shoal-unicast-step.h: the "unicast" step
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <shoal.h>

G_BEGIN_DECLS

#define SHOAL_TYPE_UNICAST_STEP (shoal_unicast_step_get_type ())

G_DECLARE_FINAL_TYPE (ShoalUnicastStep, shoal_unicast_step, SHOAL, UNICAST_STEP, GObject)

void shoal_unicast_step_register_types (GTypeModule *module);

G_END_DECLS
