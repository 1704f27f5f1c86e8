/* shoal-dbus-auth.h: who may call the mutating methods of shoald
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define SHOAL_TYPE_DBUS_AUTH (shoal_dbus_auth_get_type ())

G_DECLARE_FINAL_TYPE (ShoalDBusAuth, shoal_dbus_auth, SHOAL, DBUS_AUTH, GObject)

/**
 * SHOAL_DBUS_AUTH_ACTION_MANAGE:
 *
 * The polkit action every mutating method needs on the system bus.
 */
#define SHOAL_DBUS_AUTH_ACTION_MANAGE "org.shoal.Shoal1.manage"

ShoalDBusAuth *shoal_dbus_auth_new            (gboolean                 use_polkit,
                                               GError                 **error);
void           shoal_dbus_auth_add_read_only  (ShoalDBusAuth           *self,
                                               const gchar             *interface_name,
                                               const gchar             *method_name);
void           shoal_dbus_auth_watch          (ShoalDBusAuth           *self,
                                               GDBusInterfaceSkeleton  *skeleton);
guint64        shoal_dbus_auth_get_n_denied   (ShoalDBusAuth           *self);

G_END_DECLS
