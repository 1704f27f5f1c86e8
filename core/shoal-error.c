/* shoal-error.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>

#include "shoal-error.h"

static const GDBusErrorEntry shoal_error_entries[] = {
  { SHOAL_ERROR_FAILED, "org.shoal.Shoal1.Error.Failed" },
  { SHOAL_ERROR_INVALID_ARGUMENT, "org.shoal.Shoal1.Error.InvalidArgument" },
  { SHOAL_ERROR_NOT_FOUND, "org.shoal.Shoal1.Error.NotFound" },
  { SHOAL_ERROR_EXISTS, "org.shoal.Shoal1.Error.Exists" },
  { SHOAL_ERROR_INVALID_RECIPE, "org.shoal.Shoal1.Error.InvalidRecipe" },
  { SHOAL_ERROR_UNKNOWN_STEP, "org.shoal.Shoal1.Error.UnknownStep" },
  { SHOAL_ERROR_PLUGIN, "org.shoal.Shoal1.Error.Plugin" },
  { SHOAL_ERROR_CANCELLED, "org.shoal.Shoal1.Error.Cancelled" },
  { SHOAL_ERROR_PERMISSION_DENIED, "org.shoal.Shoal1.Error.PermissionDenied" },
  { SHOAL_ERROR_STORE, "org.shoal.Shoal1.Error.Store" },
  { SHOAL_ERROR_TIMEOUT, "org.shoal.Shoal1.Error.Timeout" },
  { SHOAL_ERROR_NOT_SUPPORTED, "org.shoal.Shoal1.Error.NotSupported" },
  { SHOAL_ERROR_INVALID_DATA, "org.shoal.Shoal1.Error.InvalidData" },
  { SHOAL_ERROR_BUSY, "org.shoal.Shoal1.Error.Busy" },
};

G_STATIC_ASSERT (G_N_ELEMENTS (shoal_error_entries) == SHOAL_ERROR_LAST);

GQuark
shoal_error_quark (void)
{
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("shoal-error-quark",
                                      &quark,
                                      shoal_error_entries,
                                      G_N_ELEMENTS (shoal_error_entries));
  return (GQuark) quark;
}
