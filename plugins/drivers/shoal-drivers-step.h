/* shoal-drivers-step.h: the "drivers" step
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <shoal.h>

G_BEGIN_DECLS

#define SHOAL_TYPE_DRIVERS_STEP (shoal_drivers_step_get_type ())

G_DECLARE_FINAL_TYPE (ShoalDriversStep, shoal_drivers_step, SHOAL, DRIVERS_STEP, GObject)

void shoal_drivers_step_register_types (GTypeModule *module);

G_END_DECLS
