/* shoal-unicast-service.h: serves the /images routes on shoald's HTTP server
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <shoal.h>

G_BEGIN_DECLS

#define SHOAL_TYPE_UNICAST_SERVICE (shoal_unicast_service_get_type ())

G_DECLARE_FINAL_TYPE (ShoalUnicastService, shoal_unicast_service, SHOAL, UNICAST_SERVICE, GObject)

void   shoal_unicast_service_register_types (GTypeModule  *module);
gchar *shoal_unicast_store_root             (ShoalContext *context);

G_END_DECLS
