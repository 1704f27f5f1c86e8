/* shoal-reboot-step.h: the "reboot" finish step of the end-to-end tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <shoal.h>

G_BEGIN_DECLS

#define SHOAL_TYPE_REBOOT_STEP (shoal_reboot_step_get_type ())

G_DECLARE_FINAL_TYPE (ShoalRebootStep, shoal_reboot_step, SHOAL, REBOOT_STEP, GObject)

void shoal_reboot_step_register_types (GTypeModule *module);

G_END_DECLS
