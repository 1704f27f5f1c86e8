/* shoal-dbus-object-manager.h: org.freedesktop.DBus.ObjectManager for
 * tens of thousands of objects
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define SHOAL_TYPE_DBUS_OBJECT_MANAGER (shoal_dbus_object_manager_get_type ())

G_DECLARE_FINAL_TYPE (ShoalDBusObjectManager, shoal_dbus_object_manager,
                      SHOAL, DBUS_OBJECT_MANAGER, GObject)

ShoalDBusObjectManager *shoal_dbus_object_manager_new            (const gchar            *object_path);
gboolean                shoal_dbus_object_manager_set_connection (ShoalDBusObjectManager *self,
                                                                  GDBusConnection        *connection,
                                                                  GError                **error);
void                    shoal_dbus_object_manager_export         (ShoalDBusObjectManager *self,
                                                                  const gchar            *object_path,
                                                                  GDBusInterfaceSkeleton *skeleton);
void                    shoal_dbus_object_manager_unexport       (ShoalDBusObjectManager *self,
                                                                  const gchar            *object_path);
void                    shoal_dbus_object_manager_unexport_all   (ShoalDBusObjectManager *self);
guint                   shoal_dbus_object_manager_get_n_objects  (ShoalDBusObjectManager *self);

G_END_DECLS
