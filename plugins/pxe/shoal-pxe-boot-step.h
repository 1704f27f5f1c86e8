/* shoal-pxe-boot-step.h: the "pxe-boot" step
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "shoal.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_PXE_BOOT_STEP (shoal_pxe_boot_step_get_type ())

G_DECLARE_FINAL_TYPE (ShoalPxeBootStep, shoal_pxe_boot_step, SHOAL, PXE_BOOT_STEP, GObject)

void shoal_pxe_boot_step_register_types (GTypeModule *module);

G_END_DECLS
