/* shoal-e2e-reboot-step.h: the "reboot" finish step of the end-to-end tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <shoal.h>

G_BEGIN_DECLS

#define SHOAL_TYPE_E2E_REBOOT_STEP (shoal_e2e_reboot_step_get_type ())

G_DECLARE_FINAL_TYPE (ShoalE2eRebootStep, shoal_e2e_reboot_step, SHOAL, E2E_REBOOT_STEP, GObject)

void shoal_e2e_reboot_step_register_types (GTypeModule *module);

G_END_DECLS
