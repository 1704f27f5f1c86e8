/* shoal-sim-group-step.c: a group step that simulates a multicast transfer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-sim-step.h"
#include "shoal-sim-timer.h"

/*
 * Runs once for a whole group, takes a random time between "min-ms" and
 * "max-ms", reports progress to every member, and drops each member with
 * probability "fail-rate" (the others finish): a stand-in for the
 * multicast image transfer.
 */

struct _ShoalSimGroupStep
{
  GObject parent_instance;
};

static void shoal_sim_group_step_iface_init (ShoalStepInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalSimGroupStep, shoal_sim_group_step, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_STEP, shoal_sim_group_step_iface_init))

static ShoalStepScope
shoal_sim_group_step_get_scope (ShoalStep *step)
{
  return SHOAL_STEP_SCOPE_GROUP;
}

static ShoalStepPhase
shoal_sim_group_step_get_phase (ShoalStep *step)
{
  return SHOAL_STEP_PHASE_TRANSFER;
}

static gboolean
shoal_sim_group_step_validate_options (ShoalStep   *step,
                                       JsonObject  *options,
                                       GError     **error)
{
  return shoal_sim_validate_options (options, error);
}

static void
group_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ShoalStepContext *ctx = g_task_get_task_data (task);
  GPtrArray *devices = shoal_step_context_get_devices (ctx);
  gdouble fail_rate = shoal_step_context_get_option_double (ctx, "fail-rate", 0.0);
  g_autoptr(GError) error = NULL;
  guint dropped = 0;

  if (!shoal_sim_timer_finish (result, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  for (guint i = 0; fail_rate > 0.0 && i < devices->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (devices, i);
      g_autoptr(GError) reason = NULL;

      if (shoal_step_context_is_dropped (ctx, device, NULL) || g_random_double () >= fail_rate)
        continue;
      g_set_error (&reason, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                   "simulated receiver failure in group %s (fail-rate %.3f)",
                   shoal_step_context_get_group_id (ctx), fail_rate);
      shoal_step_context_drop_device (ctx, device, reason);
    }
  /* those this step failed and those that left the group while it ran
   * (cancelled, removed), which get no entry (shoal_step_context_log()) */
  for (guint i = 0; i < devices->len; i++)
    dropped += shoal_step_context_is_dropped (ctx, g_ptr_array_index (devices, i), NULL);
  shoal_step_context_log (ctx, NULL, "sim-transfer", SHOAL_JOURNAL_RESULT_INFO,
                          "simulated transfer to group %s: %u members, %u dropped",
                          shoal_step_context_get_group_id (ctx), devices->len, dropped);
  g_task_return_boolean (task, TRUE);
}

static void
shoal_sim_group_step_run_async (ShoalStep           *step,
                                ShoalStepContext    *ctx,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (step, cancellable, callback, user_data);

  g_task_set_source_tag (task, shoal_sim_group_step_run_async);
  g_task_set_task_data (task, g_object_ref (ctx), g_object_unref);
  shoal_sim_timer_start (ctx, NULL, cancellable, group_done_cb, g_steal_pointer (&task));
}

static void
shoal_sim_group_step_iface_init (ShoalStepInterface *iface)
{
  iface->get_scope = shoal_sim_group_step_get_scope;
  iface->get_phase = shoal_sim_group_step_get_phase;
  iface->validate_options = shoal_sim_group_step_validate_options;
  iface->run_async = shoal_sim_group_step_run_async;
}

static void
shoal_sim_group_step_class_init (ShoalSimGroupStepClass *klass)
{
}

static void
shoal_sim_group_step_class_finalize (ShoalSimGroupStepClass *klass)
{
}

static void
shoal_sim_group_step_init (ShoalSimGroupStep *self)
{
}

void
shoal_sim_group_step_register_types (GTypeModule *module)
{
  shoal_sim_group_step_register_type (module);
}
