/* shoal-agent-gen-service.h: serves GET /agent/v1/agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <shoal.h>

G_BEGIN_DECLS

#define SHOAL_TYPE_AGENT_GEN_SERVICE (shoal_agent_gen_service_get_type ())

G_DECLARE_FINAL_TYPE (ShoalAgentGenService, shoal_agent_gen_service, SHOAL, AGENT_GEN_SERVICE, GObject)

void shoal_agent_gen_service_register_types (GTypeModule *module);

G_END_DECLS
