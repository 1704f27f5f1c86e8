/* shoal-pxe-service.h: the network boot service (DHCP, TFTP, HTTP routes)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "shoal.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_PXE_SERVICE (shoal_pxe_service_get_type ())

G_DECLARE_FINAL_TYPE (ShoalPxeService, shoal_pxe_service, SHOAL, PXE_SERVICE, GObject)

void shoal_pxe_service_register_types (GTypeModule *module);

G_END_DECLS
