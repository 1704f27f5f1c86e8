/* shoal-sim-step.c: a per-device step that takes random time and fails at a given rate
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-sim-step.h"
#include "shoal-sim-timer.h"

/*
 * Options: "min-ms" (default 10), "max-ms" (default 100), "fail-rate"
 * (0 to 1, default 0). Lets the scheduler, the rendezvous and the store
 * run without a network.
 */

struct _ShoalSimStep
{
  GObject parent_instance;
};

static void shoal_sim_step_iface_init (ShoalStepInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalSimStep, shoal_sim_step, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_STEP, shoal_sim_step_iface_init))

static gboolean
shoal_sim_step_validate_options (ShoalStep   *step,
                                 JsonObject  *options,
                                 GError     **error)
{
  return shoal_sim_validate_options (options, error);
}

static void
sim_done_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ShoalStepContext *ctx = g_task_get_task_data (task);
  ShoalDevice *device = shoal_step_context_get_device (ctx);
  g_autoptr(GError) error = NULL;
  gdouble fail_rate = shoal_step_context_get_option_double (ctx, "fail-rate", 0.0);

  if (!shoal_sim_timer_finish (result, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (fail_rate > 0.0 && g_random_double () < fail_rate)
    {
      g_task_return_new_error (task, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                               "simulated failure of step %s on %s (fail-rate %.3f)",
                               shoal_step_context_get_step_id (ctx),
                               shoal_device_get_id (device), fail_rate);
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
shoal_sim_step_run_async (ShoalStep           *step,
                          ShoalStepContext    *ctx,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (step, cancellable, callback, user_data);

  g_task_set_source_tag (task, shoal_sim_step_run_async);
  g_task_set_task_data (task, g_object_ref (ctx), g_object_unref);
  shoal_sim_timer_start (ctx, NULL, cancellable, sim_done_cb, g_steal_pointer (&task));
}

static void
shoal_sim_step_iface_init (ShoalStepInterface *iface)
{
  iface->validate_options = shoal_sim_step_validate_options;
  iface->run_async = shoal_sim_step_run_async;
}

static void
shoal_sim_step_class_init (ShoalSimStepClass *klass)
{
}

static void
shoal_sim_step_class_finalize (ShoalSimStepClass *klass)
{
}

static void
shoal_sim_step_init (ShoalSimStep *self)
{
}

void
shoal_sim_step_register_types (GTypeModule *module)
{
  shoal_sim_step_register_type (module);
}
