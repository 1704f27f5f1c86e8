/* shoalctl-log.c: shoalctl log <id> [--follow] [--until-done]
 *
 * Prints a device's journal. With --follow it subscribes to the device's
 * JournalEntry signal first, then reads the journal, so that no entry
 * falls between the two, and prints entries as they come (each once, in
 * sequence order). --until-done also stops once the device's deployment
 * ended (installed, failed or cancelled).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <glib-unix.h>
#include <signal.h>

#include "shoalctl.h"

typedef struct
{
  ShoalCtl   *ctl;
  gchar      *path;
  GMainLoop  *loop;
  guint64     last_seq;
  gboolean    until_done;
  GError     *error;
} LogFollow;

static void
print_entry (LogFollow *lf, guint64 seq, gint64 time_us, const gchar *source,
             const gchar *operation, const gchar *result, const gchar *message)
{
  g_autofree gchar *when = NULL;
  g_autofree gchar *result_shown = NULL;
  g_autofree gchar *source_shown = NULL;
  g_autofree gchar *operation_shown = NULL;
  g_autofree gchar *message_shown = NULL;

  if (seq <= lf->last_seq)
    return;
  lf->last_seq = seq;
  when = shoalctl_format_time (time_us);
  /* an agent chooses all but the time: escaped, one entry a line */
  result_shown = shoalctl_escape (result);
  source_shown = shoalctl_escape (source);
  operation_shown = shoalctl_escape (operation);
  message_shown = shoalctl_escape (message);
  g_print ("%s  %-7s  %-12s %-16s %s\n", when, result_shown, source_shown, operation_shown, message_shown);
}

/* One reply of GetJournal (at most a page of entries); *n_entries says how many */
static gboolean
print_journal_page (LogFollow *lf, guint *n_entries, GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariantIter) iter = NULL;
  const gchar *source, *operation, *result, *message;
  guint64 seq;
  gint64 time_us;

  *n_entries = 0;
  reply = g_dbus_connection_call_sync (lf->ctl->connection, SHOALCTL_BUS_NAME, lf->path,
                                       SHOALCTL_DEVICE_IFACE, "GetJournal",
                                       g_variant_new ("(t)", lf->last_seq),
                                       G_VARIANT_TYPE ("(a(txssss))"), G_DBUS_CALL_FLAGS_NONE,
                                       SHOALCTL_TIMEOUT_MS, NULL, error);
  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(a(txssss))", &iter);
  while (g_variant_iter_next (iter, "(tx&s&s&s&s)", &seq, &time_us, &source, &operation,
                              &result, &message))
    {
      print_entry (lf, seq, time_us, source, operation, result, message);
      (*n_entries)++;
    }
  return TRUE;
}

/* The journal after lf->last_seq, page by page until a reply is empty */
static gboolean
print_journal_since (LogFollow *lf, GError **error)
{
  while (TRUE)
    {
      guint64 before = lf->last_seq;
      guint n_entries;

      if (!print_journal_page (lf, &n_entries, error))
        return FALSE;
      if (n_entries == 0 || lf->last_seq == before)
        return TRUE;
    }
}

static void
on_journal_entry (GDBusConnection *connection, const gchar *sender, const gchar *path,
                  const gchar *iface, const gchar *signal, GVariant *params, gpointer user_data)
{
  LogFollow *lf = user_data;
  const gchar *source, *operation, *result, *message;
  guint64 seq;
  gint64 time_us;

  if (!g_variant_is_of_type (params, G_VARIANT_TYPE ("(txssss)")))
    return;
  g_variant_get (params, "(tx&s&s&s&s)", &seq, &time_us, &source, &operation, &result, &message);
  /* a gap means entries we did not see: read them from the journal */
  if (seq > lf->last_seq + 1 && lf->error == NULL)
    print_journal_since (lf, &lf->error);
  print_entry (lf, seq, time_us, source, operation, result, message);
  if (lf->error != NULL)
    g_main_loop_quit (lf->loop);
}

static void
check_done (LogFollow *lf, const gchar *state)
{
  if (!lf->until_done || !shoalctl_state_is_final (state))
    return;
  /* the last entries may be behind the state change: read them */
  if (lf->error == NULL)
    print_journal_since (lf, &lf->error);
  g_main_loop_quit (lf->loop);
}

static void
on_properties_changed (GDBusConnection *connection, const gchar *sender, const gchar *path,
                       const gchar *iface, const gchar *signal, GVariant *params, gpointer user_data)
{
  LogFollow *lf = user_data;
  g_autoptr(GVariant) changed = NULL;
  const gchar *state = NULL;

  if (!g_variant_is_of_type (params, G_VARIANT_TYPE ("(sa{sv}as)")))
    return;
  changed = g_variant_get_child_value (params, 1);
  if (g_variant_lookup (changed, "State", "&s", &state))
    check_done (lf, state);
}

static void
on_name_vanished (GDBusConnection *connection, const gchar *name, gpointer user_data)
{
  LogFollow *lf = user_data;

  if (lf->error == NULL)
    g_set_error_literal (&lf->error, G_IO_ERROR, G_IO_ERROR_CLOSED, _("shoald went away"));
  g_main_loop_quit (lf->loop);
}

static gboolean
on_sigint (gpointer user_data)
{
  g_main_loop_quit (((LogFollow *) user_data)->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
read_state (LogFollow *lf, gchar **state, GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) value = NULL;

  reply = g_dbus_connection_call_sync (lf->ctl->connection, SHOALCTL_BUS_NAME, lf->path,
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", SHOALCTL_DEVICE_IFACE, "State"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE,
                                       -1, NULL, error);
  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(v)", &value);
  *state = g_variant_dup_string (value, NULL);
  return TRUE;
}

static gboolean
follow (LogFollow *lf, GError **error)
{
  GDBusConnection *conn = lf->ctl->connection;
  g_autofree gchar *state = NULL;
  guint journal_id, props_id, watch_id, sigint_id;

  journal_id = g_dbus_connection_signal_subscribe (conn, SHOALCTL_BUS_NAME, SHOALCTL_DEVICE_IFACE,
                                                   "JournalEntry", lf->path, NULL,
                                                   G_DBUS_SIGNAL_FLAGS_NONE, on_journal_entry, lf, NULL);
  props_id = g_dbus_connection_signal_subscribe (conn, SHOALCTL_BUS_NAME,
                                                 "org.freedesktop.DBus.Properties",
                                                 "PropertiesChanged", lf->path, SHOALCTL_DEVICE_IFACE,
                                                 G_DBUS_SIGNAL_FLAGS_NONE, on_properties_changed, lf, NULL);
  watch_id = g_bus_watch_name_on_connection (conn, SHOALCTL_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                             NULL, on_name_vanished, lf, NULL);
  sigint_id = g_unix_signal_add (SIGINT, on_sigint, lf);

  if (print_journal_since (lf, error) && read_state (lf, &state, error))
    {
      check_done (lf, state);
      if (!lf->until_done || !shoalctl_state_is_final (state))
        g_main_loop_run (lf->loop);
    }

  g_dbus_connection_signal_unsubscribe (conn, journal_id);
  g_dbus_connection_signal_unsubscribe (conn, props_id);
  g_bus_unwatch_name (watch_id);
  g_source_remove (sigint_id);
  if (error != NULL && *error != NULL)
    return FALSE;
  if (lf->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&lf->error));
      return FALSE;
    }
  return TRUE;
}

gboolean
shoalctl_cmd_log (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autofree gchar *path = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  LogFollow lf = { 0 };
  GError *error_local = NULL;
  gboolean ok;

  if (!shoalctl_check_args (args, 1, 1, "log <id> [--follow] [--until-done]", error))
    return FALSE;
  path = shoalctl_device_path (args[0]);
  loop = g_main_loop_new (NULL, FALSE);
  lf.ctl = ctl;
  lf.path = path;
  lf.loop = loop;
  lf.until_done = ctl->until_done;
  if (!ctl->follow && !ctl->until_done)
    ok = print_journal_since (&lf, &error_local);
  else
    ok = follow (&lf, &error_local);
  /* an unknown device, or one removed while followed */
  return ok || shoalctl_device_error (args[0], error, error_local);
}
