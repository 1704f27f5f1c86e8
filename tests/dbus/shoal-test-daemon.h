/* shoal-test-daemon.h: a private bus and a real shoald for the D-Bus tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-dbus-generated.h"

G_BEGIN_DECLS

typedef struct
{
  GTestDBus        *bus;         /* NULL when @address is a bus of our own */
  GSubprocess      *bus_process; /* that bus of our own */
  gchar            *address;
  gchar            *tmpdir;
  gchar            *log_path;
  GSubprocess      *daemon;
  GDBusConnection  *connection;
  ShoalDBusManager *manager;
} ShoalTestDaemon;

ShoalTestDaemon *shoal_test_daemon_new          (void);
void             shoal_test_daemon_set_open_bus (ShoalTestDaemon  *td);
void             shoal_test_daemon_set_recipe_repo (ShoalTestDaemon *td,
                                                 const gchar      *url,
                                                 const gchar      *ref);
void             shoal_test_daemon_set_conf     (ShoalTestDaemon  *td,
                                                 const gchar      *group,
                                                 const gchar      *key,
                                                 const gchar      *value);
const gchar     *shoal_test_fast_recipe         (void);
const gchar     *shoal_test_medium_recipe       (void);
void             shoal_test_daemon_start        (ShoalTestDaemon  *td,
                                                 gboolean          with_fixtures);
gint             shoal_test_daemon_run_to_exit  (ShoalTestDaemon  *td,
                                                 gchar           **err,
                                                 guint             timeout_s);
void             shoal_test_daemon_stop         (ShoalTestDaemon  *td);
void             shoal_test_daemon_kill         (ShoalTestDaemon  *td);
void             shoal_test_daemon_free         (ShoalTestDaemon  *td);
gboolean         shoal_test_daemon_is_running   (ShoalTestDaemon  *td);
gboolean         shoal_test_wait_for            (gboolean        (*done) (gpointer),
                                                 gpointer          data,
                                                 guint             timeout_ms);
gint             shoal_test_run                 (const gchar * const *argv,
                                                 gchar           **out,
                                                 gchar           **err,
                                                 guint             timeout_s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalTestDaemon, shoal_test_daemon_free)

G_END_DECLS
