/* shoal-unicast-plugin.c: registers the unicast step and the /images service
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <libpeas/peas.h>

#include "shoal-unicast-service.h"
#include "shoal-unicast-step.h"

G_MODULE_EXPORT void peas_register_types (PeasObjectModule *module);

G_MODULE_EXPORT void
peas_register_types (PeasObjectModule *module)
{
  shoal_unicast_step_register_types (G_TYPE_MODULE (module));
  shoal_unicast_service_register_types (G_TYPE_MODULE (module));
  peas_object_module_register_extension_type (module, SHOAL_TYPE_STEP, SHOAL_TYPE_UNICAST_STEP);
  peas_object_module_register_extension_type (module, SHOAL_TYPE_SERVICE, SHOAL_TYPE_UNICAST_SERVICE);
}
