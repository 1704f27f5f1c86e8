/* shoal-pxe-plugin.c: registers the network boot service and the pxe-boot step
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <libpeas/peas.h>

#include "shoal-pxe-boot-step.h"
#include "shoal-pxe-service.h"

G_MODULE_EXPORT void peas_register_types (PeasObjectModule *module);

G_MODULE_EXPORT void
peas_register_types (PeasObjectModule *module)
{
  shoal_pxe_service_register_types (G_TYPE_MODULE (module));
  shoal_pxe_boot_step_register_types (G_TYPE_MODULE (module));
  peas_object_module_register_extension_type (module, SHOAL_TYPE_SERVICE, SHOAL_TYPE_PXE_SERVICE);
  peas_object_module_register_extension_type (module, SHOAL_TYPE_STEP, SHOAL_TYPE_PXE_BOOT_STEP);
}
