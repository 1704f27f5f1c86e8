/* shoal-dbus-manager-exporter.h: the org.shoal.Shoal1.Manager object
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-controller.h"
#include "shoal-daemon-recipes.h"
#include "shoal-dbus-auth.h"
#include "shoal-dbus-fleet.h"
#include "shoal-dbus-generated.h"
#include "shoal-image-store.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_DBUS_MANAGER_EXPORTER (shoal_dbus_manager_exporter_get_type ())

G_DECLARE_FINAL_TYPE (ShoalDBusManagerExporter, shoal_dbus_manager_exporter,
                      SHOAL, DBUS_MANAGER_EXPORTER, GObject)

ShoalDBusManagerExporter *shoal_dbus_manager_exporter_new          (ShoalController          *controller,
                                                                    ShoalDBusFleet           *fleet,
                                                                    ShoalDaemonRecipes       *recipes,
                                                                    ShoalDBusAuth            *auth);
gboolean                  shoal_dbus_manager_exporter_export       (ShoalDBusManagerExporter *self,
                                                                    GDBusConnection          *connection,
                                                                    GError                  **error);
void                      shoal_dbus_manager_exporter_unexport     (ShoalDBusManagerExporter *self);
void                      shoal_dbus_manager_exporter_set_daemon_state (ShoalDBusManagerExporter *self,
                                                                    const gchar              *state);
void                      shoal_dbus_manager_exporter_set_server_url (ShoalDBusManagerExporter *self,
                                                                    const gchar              *url);
void                      shoal_dbus_manager_exporter_set_image_store (ShoalDBusManagerExporter *self,
                                                                    ShoalImageStore          *store,
                                                                    guint                     keep);

G_END_DECLS
