/* shoal-agent-gen-step.h: the "agent" step
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <shoal.h>

G_BEGIN_DECLS

#define SHOAL_TYPE_AGENT_GEN_STEP (shoal_agent_gen_step_get_type ())

G_DECLARE_FINAL_TYPE (ShoalAgentGenStep, shoal_agent_gen_step, SHOAL, AGENT_GEN_STEP, GObject)

void shoal_agent_gen_step_register_types (GTypeModule *module);

G_END_DECLS
