/* shoal-image-store-plugin.c: registers the image store service
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <libpeas/peas.h>

#include "shoal-image-store-service.h"

G_MODULE_EXPORT void peas_register_types (PeasObjectModule *module);

G_MODULE_EXPORT void
peas_register_types (PeasObjectModule *module)
{
  shoal_image_store_service_register_types (G_TYPE_MODULE (module));
  peas_object_module_register_extension_type (module, SHOAL_TYPE_SERVICE, SHOAL_TYPE_IMAGE_STORE_SERVICE);
}
