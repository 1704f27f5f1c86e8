/* shoal-daemon.h: shoald put together
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * ShoalDaemonOptions:
 * @bus_type: %G_BUS_TYPE_SYSTEM or %G_BUS_TYPE_SESSION; ignored with @address
 * @address: (nullable): a D-Bus bus address to connect to instead
 * @state_dir: (nullable): the state directory, overriding the configuration
 * @config_file: (nullable): the configuration file; %NULL reads the system
 *   one if it exists
 * @plugin_dirs: (nullable): directories searched for plugins before the
 *   system one
 * @http_port: the HTTP port, overriding the configuration; -1 for none
 * @uninstalled: whether shoald runs from its build tree (adds the build
 *   tree's plugins and data)
 * @convert_store: convert the store to incremental auto-vacuum and exit
 *   (--convert-store, shoal_daemon_convert_store())
 *
 * How shoald was started.
 */
typedef struct
{
  GBusType  bus_type;
  gchar    *address;
  gchar    *state_dir;
  gchar    *config_file;
  gchar   **plugin_dirs;
  gint      http_port;
  gboolean  uninstalled;
  gboolean  convert_store;
} ShoalDaemonOptions;

#define SHOAL_TYPE_DAEMON (shoal_daemon_get_type ())

G_DECLARE_FINAL_TYPE (ShoalDaemon, shoal_daemon, SHOAL, DAEMON, GObject)

ShoalDaemon *shoal_daemon_new          (const ShoalDaemonOptions *options);
gboolean     shoal_daemon_start        (ShoalDaemon              *self,
                                        GError                  **error);
gboolean     shoal_daemon_convert_store (ShoalDaemon             *self,
                                        GError                  **error);
void         shoal_daemon_stop_async   (ShoalDaemon              *self,
                                        GCancellable             *cancellable,
                                        GAsyncReadyCallback       callback,
                                        gpointer                  user_data);
gboolean     shoal_daemon_stop_finish  (ShoalDaemon              *self,
                                        GAsyncResult             *result,
                                        GError                  **error);
const gchar *shoal_daemon_get_server_url (ShoalDaemon            *self);

G_END_DECLS
