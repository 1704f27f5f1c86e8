/* shoal-sim-step.h: a simulated step
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <shoal.h>

G_BEGIN_DECLS

#define SHOAL_TYPE_SIM_STEP (shoal_sim_step_get_type ())

G_DECLARE_FINAL_TYPE (ShoalSimStep, shoal_sim_step, SHOAL, SIM_STEP, GObject)

void shoal_sim_step_register_types (GTypeModule *module);

#define SHOAL_TYPE_SIM_GROUP_STEP (shoal_sim_group_step_get_type ())

G_DECLARE_FINAL_TYPE (ShoalSimGroupStep, shoal_sim_group_step, SHOAL, SIM_GROUP_STEP, GObject)

void shoal_sim_group_step_register_types (GTypeModule *module);

G_END_DECLS
