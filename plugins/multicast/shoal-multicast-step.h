/* shoal-multicast-step.h: the "multicast" group step
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <shoal.h>

G_BEGIN_DECLS

#define SHOAL_TYPE_MULTICAST_STEP (shoal_multicast_step_get_type ())

G_DECLARE_FINAL_TYPE (ShoalMulticastStep, shoal_multicast_step, SHOAL, MULTICAST_STEP, GObject)

void shoal_multicast_step_register_types (GTypeModule *module);

G_END_DECLS
