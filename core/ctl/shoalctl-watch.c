/* shoalctl-watch.c: shoalctl watch [--until-done]
 *
 * Follows every device through a GDBusObjectManagerClient and redraws, at
 * most ten times a second: one line per device (running ones first) for as
 * many lines as the terminal has, then one line per state with its count.
 * When standard output is not a terminal it prints the per-state summary
 * when it changes, at most once a second. --until-done stops once every
 * device that was deploying is installed, failed or cancelled (if none is
 * deploying when it starts, it waits up to five seconds for one to start).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "shoalctl.h"

#define WATCH_REDRAW_MS 100
#define WATCH_TEXT_REFRESH_MS 1000
#define WATCH_TEXT_INTERVAL_US (900 * G_TIME_SPAN_MILLISECOND)
#define WATCH_START_GRACE_US (5 * G_USEC_PER_SEC)

static const gchar *state_order[] = {
  "discovered", "assigned", "queued", "booting", "inventory", "drivers", "agent",
  "waiting", "transfer", "verify", "finishing", "installed", "failed", "cancelled",
};

typedef struct
{
  const gchar *id;
  const gchar *state;
  const gchar *step;
  const gchar *recipe;
  gdouble      progress;
  gboolean     active;
} WatchRow;

typedef struct
{
  GMainLoop          *loop;
  GDBusObjectManager *om;
  gboolean            tty;
  gboolean            until_done;
  gboolean            done;
  guint               redraw_id;
  GHashTable         *seen_active;  /* ids */
  gchar              *last_summary;
  gint64              last_text_us;
  gint64              started_us;
  guint               grace_id;
  GError             *error;
} Watch;

static gint
compare_watch_rows (gconstpointer a, gconstpointer b)
{
  const WatchRow *ra = a, *rb = b;

  if (ra->active != rb->active)
    return ra->active ? -1 : 1;
  return g_strcmp0 (ra->id, rb->id);
}

static GArray *
watch_snapshot (Watch *w, GHashTable *counts)
{
  g_autolist(GDBusObject) objects = g_dbus_object_manager_get_objects (w->om);
  GArray *rows = g_array_new (FALSE, TRUE, sizeof (WatchRow));

  for (GList *l = objects; l != NULL; l = l->next)
    {
      ShoalDBusDevice *dev = shoal_dbus_object_peek_device (SHOAL_DBUS_OBJECT (l->data));
      WatchRow row;

      if (dev == NULL || shoal_dbus_device_get_id (dev) == NULL)
        continue;
      row.id = shoal_dbus_device_get_id (dev);
      row.state = shoal_dbus_device_get_state (dev) != NULL ? shoal_dbus_device_get_state (dev) : "";
      row.step = shoal_dbus_device_get_current_step (dev) != NULL ? shoal_dbus_device_get_current_step (dev) : "";
      row.recipe = shoal_dbus_device_get_recipe (dev) != NULL ? shoal_dbus_device_get_recipe (dev) : "";
      row.progress = shoal_dbus_device_get_progress (dev);
      row.active = shoalctl_state_is_active (row.state);
      if (row.active)
        g_hash_table_add (w->seen_active, g_strdup (row.id));
      g_hash_table_insert (counts, (gpointer) row.state,
                           GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (counts, row.state)) + 1));
      g_array_append_val (rows, row);
    }
  g_array_sort (rows, compare_watch_rows);
  return rows;
}

static gchar *
watch_summary_line (GHashTable *counts, guint total)
{
  g_autoptr(GString) line = g_string_new (NULL);

  g_string_append_printf (line, g_dngettext (GETTEXT_PACKAGE, "%u device:", "%u devices:", total), total);
  for (guint s = 0; s < G_N_ELEMENTS (state_order); s++)
    {
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (counts, state_order[s]));

      if (n > 0)
        g_string_append_printf (line, " %s %u", state_order[s], n);
    }
  return g_string_free (g_steal_pointer (&line), FALSE);
}

static void
watch_terminal_size (guint *rows, guint *cols)
{
  struct winsize ws = { 0 };

  *rows = 24;
  *cols = 80;
  if (ioctl (STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
    {
      *rows = ws.ws_row;
      *cols = ws.ws_col;
    }
}

static void
watch_print_line (GString *screen, const gchar *line, guint cols)
{
  g_string_append_len (screen, line, MIN (strlen (line), (gsize) cols));
  g_string_append (screen, "\033[K\n");
}

static void
watch_draw_tty (Watch *w, GArray *rows, GHashTable *counts)
{
  g_autoptr(GString) screen = g_string_new ("\033[H");
  g_autofree gchar *summary = watch_summary_line (counts, rows->len);
  guint n_states = 0, term_rows, cols, room;
  gint id_width = 8;

  watch_terminal_size (&term_rows, &cols);
  for (guint s = 0; s < G_N_ELEMENTS (state_order); s++)
    n_states += g_hash_table_contains (counts, state_order[s]) ? 1 : 0;
  /* the summary, a blank line, the states, and one line spare */
  room = term_rows > n_states + 4 ? term_rows - n_states - 4 : 0;
  for (guint i = 0; i < rows->len && i < room; i++)
    id_width = MAX (id_width, (gint) strlen (g_array_index (rows, WatchRow, i).id));

  watch_print_line (screen, summary, cols);
  for (guint i = 0; i < rows->len && i < room; i++)
    {
      WatchRow *row = &g_array_index (rows, WatchRow, i);
      g_autofree gchar *bar = shoalctl_progress_bar (row->progress, 20);
      g_autofree gchar *id = shoalctl_escape (row->id);
      g_autofree gchar *state = shoalctl_escape (row->state);
      g_autofree gchar *step = shoalctl_escape (row->step);
      g_autofree gchar *recipe = shoalctl_escape (row->recipe);
      g_autofree gchar *line = g_strdup_printf ("%-*s %-10s %-12s %s  %s", id_width, id,
                                                state, step, bar, recipe);

      watch_print_line (screen, line, cols);
    }
  watch_print_line (screen, "", cols);
  for (guint s = 0; s < G_N_ELEMENTS (state_order); s++)
    {
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (counts, state_order[s]));
      g_autofree gchar *bar = NULL;
      g_autofree gchar *line = NULL;

      if (n == 0)
        continue;
      bar = shoalctl_progress_bar ((gdouble) n / MAX (rows->len, 1), 30);
      line = g_strdup_printf ("%-10s %7u %s", state_order[s], n, bar);
      watch_print_line (screen, line, cols);
    }
  g_string_append (screen, "\033[J");
  fwrite (screen->str, 1, screen->len, stdout);
  fflush (stdout);
}

static void
watch_print_text (Watch *w, GArray *rows, GHashTable *counts, gboolean force)
{
  g_autofree gchar *summary = watch_summary_line (counts, rows->len);
  gint64 now = g_get_monotonic_time ();

  if (g_strcmp0 (summary, w->last_summary) == 0)
    return;
  if (!force && now - w->last_text_us < WATCH_TEXT_INTERVAL_US)
    return;
  w->last_text_us = now;
  g_print ("%s\n", summary);
  g_free (w->last_summary);
  w->last_summary = g_steal_pointer (&summary);
}

static void
watch_refresh (Watch *w)
{
  g_autoptr(GHashTable) counts = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GArray) rows = watch_snapshot (w, counts);
  gboolean any_active = rows->len > 0 && g_array_index (rows, WatchRow, 0).active;

  /* done once nothing runs, when something ran or the grace time is over */
  if (w->until_done && !any_active &&
      (g_hash_table_size (w->seen_active) > 0 ||
       g_get_monotonic_time () - w->started_us >= WATCH_START_GRACE_US))
    w->done = TRUE;
  if (w->tty)
    watch_draw_tty (w, rows, counts);
  else
    watch_print_text (w, rows, counts, w->done);
  if (w->done)
    g_main_loop_quit (w->loop);
}

static gboolean
watch_redraw_cb (gpointer user_data)
{
  Watch *w = user_data;

  w->redraw_id = 0;
  watch_refresh (w);
  return G_SOURCE_REMOVE;
}

static void
watch_schedule (Watch *w)
{
  if (w->redraw_id == 0 && !w->done)
    w->redraw_id = g_timeout_add (w->tty ? WATCH_REDRAW_MS : WATCH_TEXT_REFRESH_MS,
                                  watch_redraw_cb, w);
}

static gboolean
watch_grace_over_cb (gpointer user_data)
{
  Watch *w = user_data;

  w->grace_id = 0;
  watch_refresh (w);
  return G_SOURCE_REMOVE;
}

static void
on_properties_changed (GDBusObjectManagerClient *om, GDBusObjectProxy *object,
                       GDBusProxy *proxy, GVariant *changed, const gchar * const *invalidated,
                       gpointer user_data)
{
  watch_schedule (user_data);
}

static void
on_object_changed (GDBusObjectManager *om, GDBusObject *object, gpointer user_data)
{
  watch_schedule (user_data);
}

static void
on_name_owner (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  Watch *w = user_data;
  g_autofree gchar *owner = g_dbus_object_manager_client_get_name_owner (G_DBUS_OBJECT_MANAGER_CLIENT (object));

  if (owner != NULL)
    return;
  if (w->error == NULL)
    g_set_error_literal (&w->error, G_IO_ERROR, G_IO_ERROR_CLOSED, _("shoald went away"));
  g_main_loop_quit (w->loop);
}

static gboolean
on_sigint (gpointer user_data)
{
  g_main_loop_quit (((Watch *) user_data)->loop);
  return G_SOURCE_REMOVE;
}

gboolean
shoalctl_cmd_watch (ShoalCtl *ctl, gchar **args, GError **error)
{
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GDBusObjectManager) om = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  Watch w = { 0 };
  guint sigint_id;

  if (!shoalctl_check_args (args, 0, 0, "watch [--until-done]", error))
    return FALSE;
  om = shoal_dbus_object_manager_client_new_sync (ctl->connection,
                                                  G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START,
                                                  SHOALCTL_BUS_NAME, SHOALCTL_PATH, NULL, error);
  if (om == NULL)
    return FALSE;
  /* the client is made whether or not the name has an owner, and
   * notify::name-owner only tells of a change: with no daemon there at
   * all, watch waited for ever (and watch --until-done said "0 devices
   * were deploying" and succeeded) */
  {
    g_autofree gchar *owner = g_dbus_object_manager_client_get_name_owner (G_DBUS_OBJECT_MANAGER_CLIENT (om));

    if (owner == NULL)
      {
        g_set_error_literal (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER, "no owner");
        return FALSE;
      }
  }
  loop = g_main_loop_new (NULL, FALSE);
  w.loop = loop;
  w.om = om;
  w.tty = isatty (STDOUT_FILENO);
  w.until_done = ctl->until_done;
  w.seen_active = seen;
  w.started_us = g_get_monotonic_time ();
  g_signal_connect (om, "interface-proxy-properties-changed", G_CALLBACK (on_properties_changed), &w);
  g_signal_connect (om, "object-added", G_CALLBACK (on_object_changed), &w);
  g_signal_connect (om, "object-removed", G_CALLBACK (on_object_changed), &w);
  g_signal_connect (om, "notify::name-owner", G_CALLBACK (on_name_owner), &w);
  sigint_id = g_unix_signal_add (SIGINT, on_sigint, &w);

  if (w.tty)
    g_print ("\033[?25l\033[H\033[2J");
  watch_refresh (&w);
  if (!w.done && w.until_done)
    w.grace_id = g_timeout_add (WATCH_START_GRACE_US / 1000 + 50, watch_grace_over_cb, &w);
  if (!w.done)
    g_main_loop_run (loop);
  if (w.tty)
    g_print ("\033[?25h");

  g_clear_handle_id (&w.redraw_id, g_source_remove);
  g_clear_handle_id (&w.grace_id, g_source_remove);
  g_source_remove (sigint_id);
  g_signal_handlers_disconnect_by_data (om, &w);
  g_free (w.last_summary);
  if (w.error != NULL)
    {
      g_propagate_error (error, w.error);
      return FALSE;
    }
  if (w.until_done)
    g_print (g_dngettext (GETTEXT_PACKAGE, "%u device was deploying\n",
                          "%u devices were deploying\n", g_hash_table_size (seen)),
             g_hash_table_size (seen));
  return TRUE;
}
