/* shoal-dbus-fleet.h: every device of the controller on the bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-controller.h"
#include "shoal-dbus-auth.h"
#include "shoal-dbus-device-exporter.h"
#include "shoal-dbus-object-manager.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_DBUS_FLEET (shoal_dbus_fleet_get_type ())

G_DECLARE_FINAL_TYPE (ShoalDBusFleet, shoal_dbus_fleet, SHOAL, DBUS_FLEET, GObject)

ShoalDBusFleet          *shoal_dbus_fleet_new              (ShoalController          *controller,
                                                            ShoalDBusObjectManager   *manager,
                                                            ShoalDBusAuth            *auth);
void                     shoal_dbus_fleet_start            (ShoalDBusFleet           *self);
void                     shoal_dbus_fleet_stop             (ShoalDBusFleet           *self);
void                     shoal_dbus_fleet_set_flush_interval (ShoalDBusFleet         *self,
                                                            guint                     interval_ms);
ShoalDBusDeviceExporter *shoal_dbus_fleet_lookup           (ShoalDBusFleet           *self,
                                                            const gchar              *id);
guint                    shoal_dbus_fleet_get_n_devices    (ShoalDBusFleet           *self);
void                     shoal_dbus_fleet_flush            (ShoalDBusFleet           *self);
guint64                  shoal_dbus_fleet_get_n_flushes    (ShoalDBusFleet           *self);
guint64                  shoal_dbus_fleet_get_n_changes    (ShoalDBusFleet           *self);
guint64                  shoal_dbus_fleet_get_n_journal_signals (ShoalDBusFleet      *self);

G_END_DECLS
