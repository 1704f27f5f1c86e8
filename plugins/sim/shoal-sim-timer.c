/* shoal-sim-timer.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-sim-timer.h"

typedef struct {
  GTask            *task;
  ShoalStepContext *ctx;
  guint             source_id;
  gulong            cancelled_id;
  guint             ticks_left;
  guint             ticks;
} SimTimer;

static gboolean
check_number (JsonObject   *options,
              const gchar  *name,
              gdouble       min,
              gdouble       max,
              GError      **error)
{
  JsonNode *node = json_object_get_member (options, name);
  GType type;
  gdouble value;

  if (node == NULL)
    return TRUE;
  type = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_value_type (node) : G_TYPE_INVALID;
  if (type != G_TYPE_INT64 && type != G_TYPE_DOUBLE)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   "option “%s” must be a number", name);
      return FALSE;
    }
  value = type == G_TYPE_INT64 ? (gdouble) json_node_get_int (node) : json_node_get_double (node);
  if (value < min || value > max)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   "option “%s” must be between %g and %g, not %g", name, min, max, value);
      return FALSE;
    }
  return TRUE;
}

/* Accepts min-ms, max-ms, fail-rate and the core's phase option only */
gboolean
shoal_sim_validate_options (JsonObject  *options,
                            GError     **error)
{
  g_autoptr(GList) members = json_object_get_members (options);

  for (GList *l = members; l != NULL; l = l->next)
    {
      const gchar *name = l->data;

      if (g_strcmp0 (name, "min-ms") != 0 && g_strcmp0 (name, "max-ms") != 0 &&
          g_strcmp0 (name, "fail-rate") != 0 && g_strcmp0 (name, "phase") != 0)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                       "unknown option “%s” (known: min-ms, max-ms, fail-rate, phase)", name);
          return FALSE;
        }
    }
  if (!check_number (options, "min-ms", 0, 3600000, error) ||
      !check_number (options, "max-ms", 0, 3600000, error) ||
      !check_number (options, "fail-rate", 0, 1, error))
    return FALSE;
  if (json_object_has_member (options, "min-ms") && json_object_has_member (options, "max-ms") &&
      json_object_get_int_member (options, "min-ms") > json_object_get_int_member (options, "max-ms"))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   "option “min-ms” must not exceed “max-ms”");
      return FALSE;
    }
  return TRUE;
}

static void
sim_timer_complete (SimTimer *timer,
                    GError   *error)
{
  GCancellable *cancellable = g_task_get_cancellable (timer->task);

  g_clear_handle_id (&timer->source_id, g_source_remove);
  if (timer->cancelled_id != 0)
    g_cancellable_disconnect (cancellable, timer->cancelled_id);
  if (error != NULL)
    g_task_return_error (timer->task, error);
  else
    g_task_return_boolean (timer->task, TRUE);
  g_object_unref (timer->task);
  g_object_unref (timer->ctx);
  g_free (timer);
}

static gboolean
tick_cb (gpointer user_data)
{
  SimTimer *timer = user_data;

  timer->ticks_left--;
  shoal_step_context_set_progress (timer->ctx, NULL,
                                   1.0 - (gdouble) timer->ticks_left / timer->ticks);
  if (timer->ticks_left > 0)
    return G_SOURCE_CONTINUE;
  timer->source_id = 0;
  sim_timer_complete (timer, NULL);
  return G_SOURCE_REMOVE;
}

static gboolean
cancel_idle_cb (gpointer user_data)
{
  SimTimer *timer = user_data;

  sim_timer_complete (timer, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                  "simulated step cancelled"));
  return G_SOURCE_REMOVE;
}

static void
cancelled_cb (GCancellable *cancellable,
              SimTimer     *timer)
{
  /* Disconnecting from inside the handler would deadlock: finish later */
  g_clear_handle_id (&timer->source_id, g_source_remove);
  timer->source_id = g_idle_add (cancel_idle_cb, timer);
}

/* Completes after a random delay in [min-ms, max-ms], reporting progress
 * in up to 4 ticks */
void
shoal_sim_timer_start (ShoalStepContext    *ctx,
                       gpointer             source,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  SimTimer *timer = g_new0 (SimTimer, 1);
  gint64 min_ms = shoal_step_context_get_option_int (ctx, "min-ms", 10);
  gint64 max_ms = shoal_step_context_get_option_int (ctx, "max-ms", 100);
  gint64 delay = max_ms > min_ms ? g_random_int_range ((gint32) min_ms, (gint32) max_ms + 1) : min_ms;

  timer->task = g_task_new (source, cancellable, callback, user_data);
  g_task_set_source_tag (timer->task, shoal_sim_timer_start);
  timer->ctx = g_object_ref (ctx);
  timer->ticks = delay >= 40 ? 4 : 1;
  timer->ticks_left = timer->ticks;
  timer->source_id = g_timeout_add ((guint) (delay / timer->ticks), tick_cb, timer);
  if (cancellable != NULL)
    timer->cancelled_id = g_cancellable_connect (cancellable, G_CALLBACK (cancelled_cb), timer, NULL);
}

gboolean
shoal_sim_timer_finish (GAsyncResult  *result,
                        GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}
