/* shoal-agent-gen-plugin.c: registers the agent step and the agent service
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <libpeas/peas.h>

#include "shoal-agent-gen-service.h"
#include "shoal-agent-gen-step.h"

G_MODULE_EXPORT void peas_register_types (PeasObjectModule *module);

G_MODULE_EXPORT void
peas_register_types (PeasObjectModule *module)
{
  shoal_agent_gen_step_register_types (G_TYPE_MODULE (module));
  shoal_agent_gen_service_register_types (G_TYPE_MODULE (module));
  peas_object_module_register_extension_type (module, SHOAL_TYPE_STEP, SHOAL_TYPE_AGENT_GEN_STEP);
  peas_object_module_register_extension_type (module, SHOAL_TYPE_SERVICE, SHOAL_TYPE_AGENT_GEN_SERVICE);
}
