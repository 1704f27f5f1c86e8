/* shoal-multicast-plugin.c: registers the multicast group step
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <libpeas/peas.h>

#include "shoal-multicast-step.h"

G_MODULE_EXPORT void peas_register_types (PeasObjectModule *module);

G_MODULE_EXPORT void
peas_register_types (PeasObjectModule *module)
{
  shoal_multicast_step_register_types (G_TYPE_MODULE (module));
  peas_object_module_register_extension_type (module, SHOAL_TYPE_STEP, SHOAL_TYPE_MULTICAST_STEP);
}
