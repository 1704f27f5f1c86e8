/* shoal-device-private.h: ShoalDevice calls for the controller only
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "shoal-device.h"

G_BEGIN_DECLS

/* A device restored from the store: its instruction serial goes on from
 * @serial, never back (shoal_controller_persist() keeps it) */
void shoal_device_restore_instruction_serial (ShoalDevice *self,
                                              guint64      serial);

/* The agent API: TRUE when an agent's event of instruction @serial comes
 * from an instruction set before the device's current one */
gboolean shoal_device_event_serial_is_stale (ShoalDevice *self,
                                             guint64      serial);

G_END_DECLS
