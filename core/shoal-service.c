/* shoal-service.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-error.h"
#include "shoal-service.h"

/**
 * ShoalService:
 *
 * A long-running part of a plugin that serves the whole daemon: the
 * network boot service's DHCP and TFTP servers, HTTP routes for agents.
 * The controller starts every service once, when the daemon starts.
 */

G_DEFINE_INTERFACE (ShoalService, shoal_service, G_TYPE_OBJECT)

static void
shoal_service_default_init (ShoalServiceInterface *iface)
{
}

/**
 * shoal_service_start:
 * @self: a service
 * @context: what the daemon offers plugins
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the service runs
 */
gboolean
shoal_service_start (ShoalService  *self,
                     ShoalContext  *context,
                     GError       **error)
{
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (SHOAL_IS_SERVICE (self), FALSE);
  g_return_val_if_fail (SHOAL_IS_CONTEXT (context), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (SHOAL_SERVICE_GET_IFACE (self)->start == NULL)
    return TRUE;
  if (SHOAL_SERVICE_GET_IFACE (self)->start (self, context, &local_error))
    return TRUE;
  if (local_error == NULL)
    g_set_error (&local_error, SHOAL_ERROR, SHOAL_ERROR_PLUGIN,
                 _("service %s failed to start without saying why"),
                 G_OBJECT_TYPE_NAME (self));
  g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

/**
 * shoal_service_stop:
 * @self: a service
 *
 * Stops the service.
 */
void
shoal_service_stop (ShoalService *self)
{
  g_return_if_fail (SHOAL_IS_SERVICE (self));
  if (SHOAL_SERVICE_GET_IFACE (self)->stop != NULL)
    SHOAL_SERVICE_GET_IFACE (self)->stop (self);
}
