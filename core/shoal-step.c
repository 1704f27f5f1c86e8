/* shoal-step.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-enum-private.h"
#include "shoal-enums.h"
#include "shoal-error.h"
#include "shoal-step.h"
#include "shoal-step-private.h"

#define DEFAULT_MAX_BLOCKING 32

static GMutex blocking_lock;
static GThreadPool *blocking_pool;
static guint blocking_max = DEFAULT_MAX_BLOCKING;

/**
 * ShoalStep:
 *
 * One step of an installation, supplied by a plugin and known to the core
 * only by the name its `.plugin` file gives in `X-Shoal-Step`. A recipe
 * names steps; the pipeline runs them.
 *
 * A step of scope %SHOAL_STEP_SCOPE_DEVICE runs for one device whenever
 * that device gets there; one of scope %SHOAL_STEP_SCOPE_GROUP runs once
 * for a group of devices that the pipeline's rendezvous formed. The
 * same instance serves every device and every recipe: keep per-run state
 * in the task, not in the instance.
 *
 * Implement @run_async/@run_finish, or only the blocking @run, which the
 * default @run_async calls in a worker thread of a pool of its own: at
 * most [controller] blocking-steps such runs at once (32 unless set), the
 * others waiting their turn, so that a fleet of slow blocking steps never
 * takes the threads of GLib's #GTask pool, which serve images and imports.
 * A run cancelled while it waits (its step timed out, its device was
 * cancelled) ends cancelled without @run being called.
 */

G_DEFINE_INTERFACE (ShoalStep, shoal_step, G_TYPE_OBJECT)

static ShoalStepScope
shoal_step_real_get_scope (ShoalStep *self)
{
  return SHOAL_STEP_SCOPE_DEVICE;
}

static ShoalStepPhase
shoal_step_real_get_phase (ShoalStep *self)
{
  return SHOAL_STEP_PHASE_BOOT;
}

static ShoalStepFlags
shoal_step_real_get_flags (ShoalStep *self)
{
  return SHOAL_STEP_FLAGS_NONE;
}

static gboolean
shoal_step_real_validate_options (ShoalStep   *self,
                                  JsonObject  *options,
                                  GError     **error)
{
  return TRUE;
}

static void
run_in_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  ShoalStep *self = source_object;
  ShoalStepContext *context = task_data;
  g_autoptr(GError) error = NULL;

  if (!SHOAL_STEP_GET_IFACE (self)->run (self, context, cancellable, &error))
    {
      if (error == NULL)
        g_set_error (&error, SHOAL_ERROR, SHOAL_ERROR_PLUGIN,
                     _("step %s failed without saying why (a step in Python says why by raising "
                       "GLib.Error; any other exception is printed in shoald's log)"),
                     shoal_step_context_get_step_id (context));
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
blocking_worker (gpointer data,
                 gpointer user_data)
{
  g_autoptr(GTask) task = data;
  g_autoptr(GError) error = NULL;

  if (g_cancellable_set_error_if_cancelled (g_task_get_cancellable (task), &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  run_in_thread (task, g_task_get_source_object (task), g_task_get_task_data (task), g_task_get_cancellable (task));
}

/**
 * shoal_step_set_max_blocking:
 * @n: at least 1
 *
 * Sets how many runs of blocking steps (those that implement only @run)
 * go at once in the process; the others wait their turn.
 */
void
shoal_step_set_max_blocking (guint n)
{
  g_return_if_fail (n >= 1);
  g_mutex_lock (&blocking_lock);
  blocking_max = n;
  if (blocking_pool != NULL)
    g_thread_pool_set_max_threads (blocking_pool, (gint) n, NULL);
  g_mutex_unlock (&blocking_lock);
}

guint
shoal_step_get_max_blocking (void)
{
  guint n;

  g_mutex_lock (&blocking_lock);
  n = blocking_max;
  g_mutex_unlock (&blocking_lock);
  return n;
}

static void
run_blocking (GTask *task)
{
  g_mutex_lock (&blocking_lock);
  if (blocking_pool == NULL)
    blocking_pool = g_thread_pool_new (blocking_worker, NULL, (gint) blocking_max, FALSE, NULL);
  /* non-exclusive: cannot fail */
  g_thread_pool_push (blocking_pool, g_object_ref (task), NULL);
  g_mutex_unlock (&blocking_lock);
}

static void
shoal_step_real_run_async (ShoalStep           *self,
                           ShoalStepContext    *context,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, shoal_step_real_run_async);
  g_task_set_task_data (task, g_object_ref (context), g_object_unref);
  if (SHOAL_STEP_GET_IFACE (self)->run == NULL)
    {
      g_task_return_new_error (task, SHOAL_ERROR, SHOAL_ERROR_PLUGIN,
                               _("step %s implements neither run_async nor run"),
                               G_OBJECT_TYPE_NAME (self));
      return;
    }
  run_blocking (task);
}

/* Serves every step whose run_async completes a GTask of @self with a
 * boolean: such a step needs no run_finish of its own */
static gboolean
shoal_step_real_run_finish (ShoalStep     *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
shoal_step_default_init (ShoalStepInterface *iface)
{
  iface->get_scope = shoal_step_real_get_scope;
  iface->get_phase = shoal_step_real_get_phase;
  iface->get_flags = shoal_step_real_get_flags;
  iface->validate_options = shoal_step_real_validate_options;
  iface->run_async = shoal_step_real_run_async;
  iface->run_finish = shoal_step_real_run_finish;
}

/**
 * shoal_step_get_scope:
 * @self: a step
 *
 * Returns: whether the step runs per device or once per group
 */
ShoalStepScope
shoal_step_get_scope (ShoalStep *self)
{
  g_return_val_if_fail (SHOAL_IS_STEP (self), SHOAL_STEP_SCOPE_DEVICE);
  return SHOAL_STEP_GET_IFACE (self)->get_scope (self);
}

/**
 * shoal_step_get_phase:
 * @self: a step
 *
 * Returns: where the step stands in an installation
 */
ShoalStepPhase
shoal_step_get_phase (ShoalStep *self)
{
  g_return_val_if_fail (SHOAL_IS_STEP (self), SHOAL_STEP_PHASE_BOOT);
  return SHOAL_STEP_GET_IFACE (self)->get_phase (self);
}

/**
 * shoal_step_get_flags:
 * @self: a step
 *
 * Returns: what the core needs to know of the step, such as whether it
 *   reads its recipe's image (%SHOAL_STEP_FLAGS_READS_IMAGE)
 */
ShoalStepFlags
shoal_step_get_flags (ShoalStep *self)
{
  g_return_val_if_fail (SHOAL_IS_STEP (self), SHOAL_STEP_FLAGS_NONE);
  return SHOAL_STEP_GET_IFACE (self)->get_flags (self);
}

/**
 * shoal_step_validate_options:
 * @self: a step
 * @options: the options a recipe gives the step
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the step accepts @options
 */
gboolean
shoal_step_validate_options (ShoalStep   *self,
                             JsonObject  *options,
                             GError     **error)
{
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (SHOAL_IS_STEP (self), FALSE);
  g_return_val_if_fail (options != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (SHOAL_STEP_GET_IFACE (self)->validate_options (self, options, &local_error))
    return TRUE;
  if (local_error == NULL)
    g_set_error_literal (&local_error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                         _("the step refused its options"));
  g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

/**
 * shoal_step_run_async:
 * @self: a step
 * @context: what the step works on
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the step finished
 * @user_data: (closure callback): data for @callback
 *
 * Runs the step for the device, or the group, of @context.
 */
void
shoal_step_run_async (ShoalStep           *self,
                      ShoalStepContext    *context,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_return_if_fail (SHOAL_IS_STEP (self));
  g_return_if_fail (SHOAL_IS_STEP_CONTEXT (context));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));
  g_return_if_fail (callback != NULL);

  SHOAL_STEP_GET_IFACE (self)->run_async (self, context, cancellable, callback, user_data);
}

/**
 * shoal_step_run_finish:
 * @self: a step
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the step succeeded
 */
gboolean
shoal_step_run_finish (ShoalStep     *self,
                       GAsyncResult  *result,
                       GError       **error)
{
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (SHOAL_IS_STEP (self), FALSE);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (SHOAL_STEP_GET_IFACE (self)->run_finish (self, result, &local_error))
    return TRUE;
  /* A Python plugin raising a plain exception gives FALSE with no error */
  if (local_error == NULL)
    g_set_error_literal (&local_error, SHOAL_ERROR, SHOAL_ERROR_PLUGIN,
                         _("the step failed without saying why (a step in Python says why by raising "
                           "GLib.Error; any other exception is printed in shoald's log)"));
  g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

const gchar *
shoal_step_scope_to_string (ShoalStepScope scope)
{
  return scope == SHOAL_STEP_SCOPE_GROUP ? "group" : "device";
}

const gchar *
shoal_step_phase_to_string (ShoalStepPhase phase)
{
  return shoal_enum_to_nick (SHOAL_TYPE_STEP_PHASE, (gint) phase);
}

/**
 * shoal_step_phase_from_string:
 * @str: a phase's name, as shoal_step_phase_to_string() gives it
 * @phase: (out) (optional): the phase
 *
 * Returns: %TRUE if @str names a phase
 */
gboolean
shoal_step_phase_from_string (const gchar    *str,
                              ShoalStepPhase *phase)
{
  gint value = 0;

  if (!shoal_enum_from_nick (SHOAL_TYPE_STEP_PHASE, str, &value))
    return FALSE;
  if (phase != NULL)
    *phase = value;
  return TRUE;
}
