/* shoal-service.h: a long-running service supplied by a plugin
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-context.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_SERVICE (shoal_service_get_type ())

G_DECLARE_INTERFACE (ShoalService, shoal_service, SHOAL, SERVICE, GObject)

/**
 * ShoalServiceInterface:
 * @start: starts the service (sockets, HTTP routes) on the main context; the
 *   service keeps @context for as long as it runs
 * @stop: stops the service; may be %NULL
 *
 * A plugin implements this beside (or instead of) a step when it serves
 * the network for the whole daemon, such as DHCP, TFTP or the HTTP routes
 * agents use.
 */
struct _ShoalServiceInterface
{
  GTypeInterface parent_iface;

  gboolean (*start) (ShoalService  *self,
                     ShoalContext  *context,
                     GError       **error);
  void     (*stop)  (ShoalService  *self);

  /*< private >*/
  gpointer padding[8];
};

gboolean shoal_service_start (ShoalService  *self,
                              ShoalContext  *context,
                              GError       **error);
void     shoal_service_stop  (ShoalService  *self);

G_END_DECLS
