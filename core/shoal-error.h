/* shoal-error.h: the one error domain of shoal
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * SHOAL_ERROR:
 *
 * The error domain of every error shoal reports. It is registered with
 * D-Bus, so clients receive named errors such as
 * `org.shoal.Shoal1.Error.NotFound`.
 */
#define SHOAL_ERROR (shoal_error_quark ())

/**
 * ShoalError:
 * @SHOAL_ERROR_FAILED: generic failure
 * @SHOAL_ERROR_INVALID_ARGUMENT: a caller passed a bad argument
 * @SHOAL_ERROR_NOT_FOUND: the named object does not exist
 * @SHOAL_ERROR_EXISTS: the object already exists
 * @SHOAL_ERROR_INVALID_RECIPE: a recipe failed validation
 * @SHOAL_ERROR_UNKNOWN_STEP: no loaded plugin provides the named step
 * @SHOAL_ERROR_PLUGIN: a plugin failed to load or misbehaved
 * @SHOAL_ERROR_CANCELLED: the operation was cancelled
 * @SHOAL_ERROR_PERMISSION_DENIED: the caller is not authorized
 * @SHOAL_ERROR_STORE: the durable store failed
 * @SHOAL_ERROR_TIMEOUT: an operation did not finish in time
 * @SHOAL_ERROR_NOT_SUPPORTED: the operation is not supported
 * @SHOAL_ERROR_INVALID_DATA: data received from a device or the network is malformed
 * @SHOAL_ERROR_BUSY: the object is in a state that forbids the operation
 *
 * Error codes of the %SHOAL_ERROR domain.
 */
typedef enum {
  SHOAL_ERROR_FAILED,
  SHOAL_ERROR_INVALID_ARGUMENT,
  SHOAL_ERROR_NOT_FOUND,
  SHOAL_ERROR_EXISTS,
  SHOAL_ERROR_INVALID_RECIPE,
  SHOAL_ERROR_UNKNOWN_STEP,
  SHOAL_ERROR_PLUGIN,
  SHOAL_ERROR_CANCELLED,
  SHOAL_ERROR_PERMISSION_DENIED,
  SHOAL_ERROR_STORE,
  SHOAL_ERROR_TIMEOUT,
  SHOAL_ERROR_NOT_SUPPORTED,
  SHOAL_ERROR_INVALID_DATA,
  SHOAL_ERROR_BUSY,
  SHOAL_ERROR_LAST /*< skip >*/
} ShoalError;

GQuark shoal_error_quark (void);

G_END_DECLS
