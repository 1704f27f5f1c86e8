/* shoal-image-store-service.h: management of the image store over HTTP
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <shoal.h>

#include "shoal-image-store.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_IMAGE_STORE_SERVICE (shoal_image_store_service_get_type ())

G_DECLARE_FINAL_TYPE (ShoalImageStoreService, shoal_image_store_service, SHOAL, IMAGE_STORE_SERVICE, GObject)

void             shoal_image_store_service_register_types (GTypeModule            *module);
ShoalImageStore *shoal_image_store_service_get_store      (ShoalImageStoreService *self);
gchar           *shoal_image_store_service_root           (ShoalContext           *context);
gchar           *shoal_image_store_service_load_admin_token (const gchar          *root,
                                                             GError              **error);
JsonNode        *shoal_image_info_to_json                 (const ShoalImageInfo   *info);

G_END_DECLS
