/* shoal-dbus-device-exporter.h: one device on the bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-controller.h"
#include "shoal-dbus-auth.h"
#include "shoal-dbus-generated.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_DBUS_DEVICE_EXPORTER (shoal_dbus_device_exporter_get_type ())

G_DECLARE_FINAL_TYPE (ShoalDBusDeviceExporter, shoal_dbus_device_exporter,
                      SHOAL, DBUS_DEVICE_EXPORTER, ShoalDBusDeviceSkeleton)

/**
 * ShoalDBusDeviceChangedFunc:
 * @exporter: the exporter whose device changed
 * @user_data: what was given to shoal_dbus_device_exporter_new()
 *
 * Called the first time the device changes after a flush, so that the
 * owner can schedule the next one.
 */
typedef void (*ShoalDBusDeviceChangedFunc) (ShoalDBusDeviceExporter *exporter,
                                            gpointer                 user_data);

ShoalDBusDeviceExporter *shoal_dbus_device_exporter_new         (ShoalController           *controller,
                                                                 ShoalDevice               *device,
                                                                 ShoalDBusAuth             *auth,
                                                                 ShoalDBusDeviceChangedFunc changed_func,
                                                                 gpointer                   user_data);
ShoalDevice             *shoal_dbus_device_exporter_get_device  (ShoalDBusDeviceExporter   *self);
const gchar             *shoal_dbus_device_exporter_get_path    (ShoalDBusDeviceExporter   *self);
gboolean                 shoal_dbus_device_exporter_is_dirty    (ShoalDBusDeviceExporter   *self);
guint                    shoal_dbus_device_exporter_get_n_changes (ShoalDBusDeviceExporter *self);
gboolean                 shoal_dbus_device_exporter_flush       (ShoalDBusDeviceExporter   *self);
void                     shoal_dbus_device_exporter_emit_journal_entry (ShoalDBusDeviceExporter *self,
                                                                 ShoalJournalEntry         *entry);
void                     shoal_dbus_device_exporter_detach      (ShoalDBusDeviceExporter   *self);

G_END_DECLS
