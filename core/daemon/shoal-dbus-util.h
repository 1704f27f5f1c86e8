/* shoal-dbus-util.h: helpers shared by the D-Bus objects of shoald
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-controller.h"

G_BEGIN_DECLS

/**
 * SHOAL_DBUS_NAME:
 *
 * The well-known bus name of shoald.
 */
#define SHOAL_DBUS_NAME "org.shoal.Shoal1"

/**
 * SHOAL_DBUS_PATH:
 *
 * The path of the manager object and of the object manager.
 */
#define SHOAL_DBUS_PATH "/org/shoal/Shoal1"

/**
 * SHOAL_DBUS_DEVICES_PATH:
 *
 * The parent path of the device objects.
 */
#define SHOAL_DBUS_DEVICES_PATH "/org/shoal/Shoal1/devices"

/**
 * SHOAL_DBUS_JOURNAL_PAGE:
 *
 * The most entries one GetJournal reply carries: callers page with the
 * last sequence number they got (a bus caps the size of a message).
 */
#define SHOAL_DBUS_JOURNAL_PAGE 1000

typedef void (*ShoalDBusBeforeReplyFunc) (gpointer user_data);

gchar   *shoal_dbus_device_path          (const gchar             *id);
gchar   *shoal_dbus_normalize_mac        (const gchar             *mac);
void     shoal_dbus_commit_and_return    (ShoalController         *controller,
                                          GDBusMethodInvocation   *invocation,
                                          GVariant                *reply,
                                          ShoalDBusBeforeReplyFunc before_reply,
                                          gpointer                 user_data,
                                          GDestroyNotify           destroy);
void     shoal_dbus_return_error         (GDBusMethodInvocation   *invocation,
                                          const GError            *error);

G_END_DECLS
