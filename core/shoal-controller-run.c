/* shoal-controller-run.c: the controller running pipelines: a device's
 * steps one after another (each waiting for a concurrency slot of its
 * step), rendezvous, and group steps for the groups they form. Every
 * transition is committed before the next step starts.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-controller-internal.h"
#include "shoal-enums.h"
#include "shoal-error.h"

/* --- pipelines ---------------------------------------------------------- */

static ShoalDeviceState
state_for_phase (ShoalStepPhase phase)
{
  if (phase < SHOAL_STEP_PHASE_INVENTORY)
    return SHOAL_DEVICE_STATE_BOOTING;
  if (phase < SHOAL_STEP_PHASE_DRIVERS)
    return SHOAL_DEVICE_STATE_INVENTORY;
  if (phase < SHOAL_STEP_PHASE_AGENT)
    return SHOAL_DEVICE_STATE_DRIVERS;
  if (phase < SHOAL_STEP_PHASE_TRANSFER)
    return SHOAL_DEVICE_STATE_AGENT;
  if (phase < SHOAL_STEP_PHASE_VERIFY)
    return SHOAL_DEVICE_STATE_TRANSFER;
  if (phase < SHOAL_STEP_PHASE_FINISH)
    return SHOAL_DEVICE_STATE_VERIFY;
  return SHOAL_DEVICE_STATE_FINISHING;
}

void
shoal_controller_set_expected (ShoalController *self,
                               ShoalPipeline   *pipeline,
                               gint             delta)
{
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->expected, pipeline));

  count = (delta < 0 && count < (guint) -delta) ? 0 : count + delta;
  g_hash_table_insert (self->expected, pipeline, GUINT_TO_POINTER (count));
  shoal_pipeline_set_expected (pipeline, count);
}

void
shoal_controller_uncount (DeviceRecord *rec)
{
  if (!rec->counted)
    return;
  rec->counted = FALSE;
  shoal_controller_set_expected (rec->controller, rec->pipeline, -1);
}

/* Starts a new attempt of @rec: whatever was running for it before (a
 * step, its timeout, a commit) no longer counts when it comes back, and
 * it leaves the group step it took part in. The number comes from a
 * counter of the controller, not of the record: a device removed and
 * enrolled again under the same id gets a new record, and a step of the
 * old one that finishes late must not match it */
void
shoal_controller_next_attempt (DeviceRecord *rec)
{
  rec->attempt = ++rec->controller->attempts;
  rec->pending = FALSE;
  shoal_controller_leave_group (rec);
}

static gchar *
slot_key (ShoalPipeline *pipeline,
          guint          index)
{
  return g_strdup_printf ("%p:%u", (gpointer) pipeline, index);
}

Slot *
shoal_controller_get_slot (ShoalController *self,
                           ShoalPipeline   *pipeline,
                           guint            index)
{
  g_autofree gchar *key = slot_key (pipeline, index);
  Slot *slot = g_hash_table_lookup (self->slots, key);

  if (slot == NULL)
    {
      slot = g_new0 (Slot, 1);
      g_queue_init (&slot->waiting);
      g_queue_init (&slot->pending);
      g_hash_table_insert (self->slots, g_steal_pointer (&key), slot);
    }
  return slot;
}

typedef struct {
  ShoalController *controller;
  gchar           *device_id;
  gint64           run_no;
  guint64          attempt;
  guint            index;
  ShoalPipeline   *pipeline;
  gboolean         fallback;     /* the late-fallback step, in place of a group step */
} StepCall;

static void
step_call_free (StepCall *call)
{
  g_object_unref (call->controller);
  g_object_unref (call->pipeline);
  g_free (call->device_id);
  g_free (call);
}

static void run_device_step (DeviceRecord *rec,
                             ShoalStep    *fallback,
                             JsonObject   *fallback_options);
static gboolean run_fallback_step (DeviceRecord *rec);

/* A run of the step @index of @pipeline ended: its slot goes to the
 * next device waiting for one, which runs the step, or the late-fallback
 * step in place of a group step */
static void
release_slot (ShoalController *self,
              ShoalPipeline   *pipeline,
              guint            index)
{
  Slot *slot = shoal_controller_get_slot (self, pipeline, index);
  DeviceRecord *next;

  if (slot->running > 0)
    slot->running--;
  while ((next = g_queue_pop_head (&slot->waiting)) != NULL)
    {
      gboolean fallback = next->fallback;

      next->queued = FALSE;
      next->fallback = FALSE;
      slot->running++;
      if (!fallback)
        {
          run_device_step (next, NULL, NULL);
          return;
        }
      if (run_fallback_step (next))
        return;
      slot->running--;
    }
}

static void
flush_then_advance_cb (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  StepCall *call = user_data;
  g_autoptr(GError) error = NULL;
  DeviceRecord *rec;

  if (!shoal_store_flush_finish (SHOAL_STORE (source), result, &error))
    g_warning ("device %s: the store failed: %s", call->device_id, error->message);
  rec = g_hash_table_lookup (call->controller->devices, call->device_id);
  if (rec != NULL && error == NULL && rec->run_no == call->run_no && rec->attempt == call->attempt &&
      shoal_device_state_is_active (shoal_device_get_state (rec->device)))
    shoal_controller_advance (rec);
  step_call_free (call);
}

static StepCall *
step_call_new (DeviceRecord *rec)
{
  StepCall *call = g_new0 (StepCall, 1);

  call->controller = g_object_ref (rec->controller);
  call->device_id = g_strdup (shoal_device_get_id (rec->device));
  call->run_no = rec->run_no;
  call->attempt = rec->attempt;
  call->index = rec->step_index;
  call->pipeline = g_object_ref (rec->pipeline);
  return call;
}

/* Acknowledges a transition: the next step starts once it is durable */
void
shoal_controller_commit_then_advance (DeviceRecord *rec)
{
  shoal_store_flush_async (rec->controller->store, NULL, flush_then_advance_cb,
                           step_call_new (rec));
}

/* A run that ends before its steps did (cancelled, failed): the agent is
 * told {"action": "wait", "reason": @reason}, an instruction of its own,
 * so that it stops the one it may still be carrying out (an image it is
 * receiving: it polls for a newer instruction meanwhile, and abandons the
 * transfer) and waits for the next; its events of the earlier one are
 * stale from now on (shoal-agent-api.c). An agent before that finishes
 * what it does, then waits */
void
shoal_controller_stop_agent (ShoalDevice *device,
                             const gchar *reason)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) instruction = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "action");
  json_builder_add_string_value (builder, "wait");
  json_builder_set_member_name (builder, "reason");
  json_builder_add_string_value (builder, reason);
  json_builder_end_object (builder);
  instruction = json_builder_get_root (builder);
  shoal_device_set_instruction (device, instruction);
}

void
shoal_controller_fail_device (DeviceRecord *rec,
                              const gchar  *source,
                              const GError *error)
{
  ShoalDevice *device = rec->device;

  g_clear_handle_id (&rec->timeout_id, g_source_remove);
  shoal_controller_next_attempt (rec);
  shoal_controller_uncount (rec);
  TRANSITION_BEGIN (rec->controller);
  shoal_controller_stop_agent (device, "failed");
  shoal_device_set_state (device, SHOAL_DEVICE_STATE_FAILED);
  shoal_device_set_boot_action (device, SHOAL_BOOT_ACTION_LOCAL);
  shoal_device_log_literal (device, source, "step-failed", SHOAL_JOURNAL_RESULT_FAILED,
                            error->message);
  shoal_controller_persist (rec);
  TRANSITION_END (rec->controller);
  shoal_store_flush_async (rec->controller->store, NULL, NULL, NULL);
}

static void
finish_device (DeviceRecord *rec)
{
  ShoalDevice *device = rec->device;
  g_autofree gchar *version = shoal_controller_describe_version (rec);

  shoal_controller_uncount (rec);
  TRANSITION_BEGIN (rec->controller);
  shoal_device_set_state (device, SHOAL_DEVICE_STATE_INSTALLED);
  shoal_device_set_boot_action (device, SHOAL_BOOT_ACTION_LOCAL);
  shoal_device_set_current_step (device, NULL);
  shoal_device_set_progress (device, 1.0);
  shoal_device_log (device, "controller", "installed", SHOAL_JOURNAL_RESULT_OK,
                    "installation complete: recipe %s %s",
                    shoal_device_get_recipe (device), version);
  shoal_controller_persist (rec);
  TRANSITION_END (rec->controller);
  shoal_store_flush_async (rec->controller->store, NULL, NULL, NULL);
}

static void
step_done (ShoalController *self,
           StepCall        *call,
           const GError    *error)
{
  DeviceRecord *rec = g_hash_table_lookup (self->devices, call->device_id);
  const gchar *step_id = shoal_pipeline_get_step_id (call->pipeline, call->index);

  if (rec == NULL || rec->run_no != call->run_no || rec->attempt != call->attempt)
    return;   /* cancelled, timed out or removed meanwhile */
  g_clear_handle_id (&rec->timeout_id, g_source_remove);
  if (error != NULL)
    {
      shoal_controller_fail_device (rec, step_id, error);
      return;
    }
  /* a change of recipe is durable with the step it follows, or not at all */
  TRANSITION_BEGIN (self);
  if (rec->recheck_recipe && !shoal_controller_recheck_recipe (rec))
    {
      TRANSITION_END (self);
      return;
    }
  rec->step_index++;
  shoal_device_log (rec->device, step_id, "step-finished", SHOAL_JOURNAL_RESULT_OK,
                    "step %s (%s) finished", step_id,
                    call->fallback ? "unicast" : shoal_pipeline_get_step_name (call->pipeline, call->index));
  shoal_controller_persist (rec);
  TRANSITION_END (self);
  shoal_controller_commit_then_advance (rec);
}

static void
device_step_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  StepCall *call = user_data;
  g_autoptr(GError) error = NULL;

  shoal_step_run_finish (SHOAL_STEP (source), result, &error);
  release_slot (call->controller, call->pipeline, call->index);
  step_done (call->controller, call, error);
  step_call_free (call);
}

static gboolean
step_timeout_cb (gpointer user_data)
{
  StepCall *call = user_data;
  DeviceRecord *rec = g_hash_table_lookup (call->controller->devices, call->device_id);
  g_autoptr(GError) error = NULL;

  if (rec == NULL || rec->attempt != call->attempt)
    return G_SOURCE_REMOVE;
  rec->timeout_id = 0;
  g_cancellable_cancel (rec->cancellable);
  g_clear_object (&rec->cancellable);
  rec->cancellable = g_cancellable_new ();
  /* A step that ignores cancellation must not hold the device for ever */
  g_set_error (&error, SHOAL_ERROR, SHOAL_ERROR_TIMEOUT, _("step %s did not finish in time"),
               shoal_pipeline_get_step_id (call->pipeline, call->index));
  step_done (call->controller, call, error);
  return G_SOURCE_REMOVE;
}

/* Runs the step where @rec is, or @fallback with @fallback_options in
 * place of its group step */
static void
run_device_step (DeviceRecord *rec,
                 ShoalStep    *fallback,
                 JsonObject   *fallback_options)
{
  ShoalPipeline *pipeline = rec->pipeline;
  guint index = rec->step_index;
  ShoalStep *step = fallback != NULL ? fallback : shoal_pipeline_get_step (pipeline, index);
  const gchar *step_id = shoal_pipeline_get_step_id (pipeline, index);
  const gchar *step_name = fallback != NULL ? "unicast" : shoal_pipeline_get_step_name (pipeline, index);
  g_autoptr(GPtrArray) devices = g_ptr_array_new ();
  g_autoptr(ShoalStepContext) ctx = NULL;
  gint timeout = shoal_pipeline_get_step_timeout (pipeline, index);
  StepCall *call;

  /* A step that never completes (a Python exception escaping run_async,
   * a lost device) must not hold its device for ever */
  if (timeout <= 0)
    timeout = (gint) rec->controller->default_timeout;
  shoal_controller_next_attempt (rec);
  TRANSITION_BEGIN (rec->controller);
  shoal_device_set_state (rec->device, state_for_phase (shoal_pipeline_get_step_phase (pipeline, index)));
  shoal_device_set_current_step (rec->device, step_id);
  shoal_device_set_progress (rec->device, 0.0);
  shoal_device_log (rec->device, step_id, "step-started", SHOAL_JOURNAL_RESULT_INFO,
                    "step %s (%s) started", step_id, step_name);
  shoal_controller_persist (rec);
  TRANSITION_END (rec->controller);

  g_ptr_array_add (devices, rec->device);
  ctx = shoal_step_context_new (rec->controller->context, shoal_pipeline_get_recipe (pipeline),
                                step_id, fallback != NULL ? fallback_options
                                                          : shoal_pipeline_get_step_options (pipeline, index),
                                devices, NULL);
  if (timeout > 0)
    rec->timeout_id = g_timeout_add_seconds_full (G_PRIORITY_DEFAULT, (guint) timeout,
                                                  step_timeout_cb, step_call_new (rec),
                                                  (GDestroyNotify) step_call_free);
  call = step_call_new (rec);
  call->fallback = fallback != NULL;
  shoal_step_run_async (step, ctx, rec->cancellable, device_step_cb, call);
}

/* The step the late-fallback runs in place of the group step @index of
 * @pipeline, and its options: the group step's "store" and "server-url" */
static ShoalStep *
lookup_fallback_step (ShoalController  *self,
                      ShoalPipeline    *pipeline,
                      guint             index,
                      JsonObject      **options,
                      GError          **error)
{
  JsonObject *group_options = shoal_pipeline_get_step_options (pipeline, index);
  const gchar *keep[] = { "store", "server-url" };
  ShoalStep *unicast = shoal_plugin_engine_lookup_step (self->engine, "unicast", error);

  if (unicast == NULL)
    return NULL;
  *options = json_object_new ();
  for (guint i = 0; i < G_N_ELEMENTS (keep); i++)
    {
      if (json_object_has_member (group_options, keep[i]))
        json_object_set_member (*options, keep[i], json_object_dup_member (group_options, keep[i]));
    }
  return unicast;
}

/* Runs the late-fallback step for @rec, which holds a slot of its group
 * step. Returns FALSE when the step is not there (@rec failed) */
static gboolean
run_fallback_step (DeviceRecord *rec)
{
  g_autoptr(JsonObject) options = NULL;
  g_autoptr(GError) error = NULL;
  ShoalStep *unicast = lookup_fallback_step (rec->controller, rec->pipeline, rec->step_index,
                                             &options, &error);

  if (unicast == NULL)
    {
      shoal_controller_fail_device (rec, "controller", error);
      return FALSE;
    }
  run_device_step (rec, unicast, options);
  return TRUE;
}

/* group.late-fallback "unicast": @rec reaches its group step while a
 * group of that step runs (it came too late to join it), and fetches the
 * image on its own with the step "unicast", given the group step's
 * "store" and "server-url" options, in place of the group step. When
 * that cannot be (no unicast step loaded, or a group step that sends a
 * file of its own, "image-path", which no unicast step serves), the
 * journal says why and @rec waits for the next group. The late devices
 * that run the step unicast in place of the group step are held to the
 * group step's max-parallel, as the devices of a device step are to
 * theirs (apart from its groups, which max-parallel limits on their
 * own): beyond it, @rec waits for a free slot, in the order the late
 * devices came. Returns whether @rec goes the fallback way */
static gboolean
run_late_fallback (DeviceRecord *rec)
{
  ShoalController *self = rec->controller;
  ShoalPipeline *pipeline = rec->pipeline;
  guint index = rec->step_index;
  const gchar *step_id = shoal_pipeline_get_step_id (pipeline, index);
  JsonObject *group_options = shoal_pipeline_get_step_options (pipeline, index);
  Slot *slot = shoal_controller_get_slot (self, pipeline, index);
  gint max = shoal_pipeline_get_step_max_parallel (pipeline, index);
  g_autoptr(JsonObject) options = NULL;
  g_autoptr(GError) error = NULL;
  ShoalStep *unicast;

  if (!shoal_recipe_get_late_fallback (shoal_pipeline_get_recipe (pipeline)) || slot->groups == 0)
    return FALSE;
  unicast = lookup_fallback_step (self, pipeline, index, &options, &error);
  if (unicast == NULL || json_object_has_member (group_options, "image-path"))
    {
      shoal_device_log (rec->device, "controller", "late-fallback", SHOAL_JOURNAL_RESULT_WARNING,
                        "a group of step %s is running: late-fallback unicast cannot be used (%s), "
                        "the device waits for the next group", step_id,
                        unicast == NULL ? error->message : "the step sends its option image-path");
      return FALSE;
    }
  TRANSITION_BEGIN (self);
  shoal_device_log (rec->device, "controller", "late-fallback", SHOAL_JOURNAL_RESULT_INFO,
                    "a group of step %s is running: late-fallback unicast, the device fetches "
                    "the image on its own with step unicast", step_id);
  if (max > 0 && slot->running >= (guint) max)
    {
      rec->queued = TRUE;
      rec->fallback = TRUE;
      g_queue_push_tail (&slot->waiting, rec);
      shoal_device_log (rec->device, "controller", "late-fallback", SHOAL_JOURNAL_RESULT_INFO,
                        "the device waits for a free slot: %u late devices run step unicast "
                        "in place of step %s, its max-parallel", slot->running, step_id);
      shoal_controller_persist (rec);
      TRANSITION_END (self);
      return TRUE;
    }
  TRANSITION_END (self);
  slot->running++;
  run_device_step (rec, unicast, options);
  return TRUE;
}

static void
acquire_slot_and_run (DeviceRecord *rec)
{
  ShoalController *self = rec->controller;
  gint max = shoal_pipeline_get_step_max_parallel (rec->pipeline, rec->step_index);
  Slot *slot = shoal_controller_get_slot (self, rec->pipeline, rec->step_index);

  if (max > 0 && slot->running >= (guint) max)
    {
      rec->queued = TRUE;
      g_queue_push_tail (&slot->waiting, rec);
      return;
    }
  slot->running++;
  run_device_step (rec, NULL, NULL);
}

void
shoal_controller_advance (DeviceRecord *rec)
{
  ShoalPipeline *pipeline = rec->pipeline;
  ShoalStep *step;

  if (rec->step_index >= shoal_pipeline_get_n_steps (pipeline))
    {
      finish_device (rec);
      return;
    }
  step = shoal_pipeline_get_step (pipeline, rec->step_index);
  if (shoal_step_get_scope (step) == SHOAL_STEP_SCOPE_GROUP)
    {
      const gchar *step_id = shoal_pipeline_get_step_id (pipeline, rec->step_index);

      if (run_late_fallback (rec))
        {
          shoal_controller_uncount (rec);
          return;
        }
      rec->waiting = TRUE;
      TRANSITION_BEGIN (rec->controller);
      shoal_device_set_state (rec->device, SHOAL_DEVICE_STATE_WAITING);
      shoal_device_set_current_step (rec->device, step_id);
      shoal_device_log (rec->device, step_id, "rendezvous", SHOAL_JOURNAL_RESULT_INFO,
                        "waiting for the group of step %s", step_id);
      shoal_controller_persist (rec);
      TRANSITION_END (rec->controller);
      shoal_pipeline_rendezvous_join (pipeline, rec->step_index, rec->device);
      return;
    }
  acquire_slot_and_run (rec);
}

/* --- groups ------------------------------------------------------------- */

/* One run of a group step, from the group's forming until the step's
 * plugin returns (which may come after the members were failed by the
 * timeout or left the group) */
struct _GroupRun {
  guint             refs;
  ShoalController  *controller;
  ShoalPipeline    *pipeline;
  guint             index;
  gchar            *group_id;
  GPtrArray        *calls;        /* StepCall* per member */
  ShoalStepContext *context;
  GCancellable     *cancellable;
  guint             timeout;      /* s; 0: none */
  guint             timeout_id;
  guint             members;      /* members that have not left the group */
  gboolean          ended;        /* the step returned or timed out */
};

static GroupRun *
group_run_ref (GroupRun *run)
{
  run->refs++;
  return run;
}

static void
group_run_unref (GroupRun *run)
{
  if (--run->refs > 0)
    return;
  g_clear_handle_id (&run->timeout_id, g_source_remove);
  g_ptr_array_unref (run->calls);
  g_object_unref (run->cancellable);
  g_object_unref (run->context);
  g_object_unref (run->pipeline);
  g_object_unref (run->controller);
  g_free (run->group_id);
  g_free (run);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GroupRun, group_run_unref)

/* A group formed while max-parallel groups of its step ran: its members
 * stay waiting until a slot frees */
typedef struct {
  ShoalPipeline *pipeline;
  guint          index;
  gchar         *group_id;
  GPtrArray     *devices;       /* ShoalDevice* */
  GArray        *attempts;      /* guint64, each member's when it formed */
} PendingGroup;

void
shoal_controller_pending_group_free (gpointer data)
{
  PendingGroup *pending = data;

  g_object_unref (pending->pipeline);
  g_free (pending->group_id);
  g_ptr_array_unref (pending->devices);
  g_array_unref (pending->attempts);
  g_free (pending);
}

static void start_group (ShoalController *self,
                         ShoalPipeline   *pipeline,
                         guint            index,
                         const gchar     *group_id,
                         GPtrArray       *devices);

/* Starts the groups waiting for a slot of @slot's step while there are
 * free slots; members cancelled or failed meanwhile are left out */
static void
start_pending_groups (ShoalController *self,
                      Slot            *slot)
{
  PendingGroup *pending;

  while ((pending = g_queue_peek_head (&slot->pending)) != NULL)
    {
      gint max = shoal_pipeline_get_step_max_parallel (pending->pipeline, pending->index);
      g_autoptr(GPtrArray) devices = g_ptr_array_new ();

      if (max > 0 && slot->groups >= (guint) max)
        return;
      g_queue_pop_head (&slot->pending);
      for (guint i = 0; i < pending->devices->len; i++)
        {
          ShoalDevice *device = g_ptr_array_index (pending->devices, i);
          DeviceRecord *rec = shoal_controller_lookup_record (self, device);

          if (rec != NULL && rec->device == device && rec->pending &&
              rec->attempt == g_array_index (pending->attempts, guint64, i))
            g_ptr_array_add (devices, device);
        }
      if (devices->len > 0)
        start_group (self, pending->pipeline, pending->index, pending->group_id, devices);
      shoal_controller_pending_group_free (pending);
    }
}

/* The group step of @run returned or timed out: the group no longer
 * counts as running (late-fallback), and its slot goes to the next group
 * waiting for one (max-parallel) */
static void
group_run_end (GroupRun *run)
{
  Slot *slot;

  if (run->ended || run->controller->slots == NULL)
    return;
  run->ended = TRUE;
  slot = shoal_controller_get_slot (run->controller, run->pipeline, run->index);
  if (slot->groups > 0)
    slot->groups--;
  start_pending_groups (run->controller, slot);
}

/* @rec, cancelled, removed or failed, leaves the group step it takes part
 * in: the step goes on for the other members, and sees @rec dropped (the
 * multicast step then waits for no unicast repair of it); the step is
 * cancelled once every member has left */
void
shoal_controller_leave_group (DeviceRecord *rec)
{
  GroupRun *run = g_steal_pointer (&rec->group_run);
  g_autoptr(GError) error = NULL;

  if (run == NULL)
    return;
  g_set_error (&error, SHOAL_ERROR, SHOAL_ERROR_CANCELLED, _("device %s left group %s"),
               shoal_device_get_id (rec->device), run->group_id);
  shoal_step_context_drop_device (run->context, rec->device, error);
  if (--run->members > 0)
    return;
  g_info ("every member of group %s has left: step %s cancelled", run->group_id,
          shoal_pipeline_get_step_id (run->pipeline, run->index));
  g_clear_handle_id (&run->timeout_id, g_source_remove);
  g_cancellable_cancel (run->cancellable);
}

static void
group_step_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GroupRun) run = user_data;
  g_autoptr(GError) error = NULL;

  shoal_step_run_finish (SHOAL_STEP (source), result, &error);
  g_clear_handle_id (&run->timeout_id, g_source_remove);
  /* the step is over: whoever is still a member no longer leaves it */
  for (guint i = 0; i < run->calls->len; i++)
    {
      StepCall *call = g_ptr_array_index (run->calls, i);
      DeviceRecord *rec = g_hash_table_lookup (run->controller->devices, call->device_id);

      if (rec != NULL && rec->group_run == run)
        rec->group_run = NULL;
    }
  for (guint i = 0; i < run->calls->len; i++)
    {
      StepCall *call = g_ptr_array_index (run->calls, i);
      DeviceRecord *rec = g_hash_table_lookup (run->controller->devices, call->device_id);
      const GError *dropped = NULL;

      if (rec != NULL && error == NULL &&
          shoal_step_context_is_dropped (run->context, rec->device, &dropped))
        {
          step_done (run->controller, call, dropped);
          continue;
        }
      step_done (run->controller, call, error);
    }
  /* its members finished it: the next group may start */
  group_run_end (run);
}

/* Fails every member still in the group, which cancels the step (when
 * the last one leaves); the plugin may take its time to return, or never
 * return */
static gboolean
group_timeout_cb (gpointer user_data)
{
  g_autoptr(GroupRun) run = group_run_ref (user_data);
  g_autoptr(GError) error = NULL;

  run->timeout_id = 0;
  g_set_error (&error, SHOAL_ERROR, SHOAL_ERROR_TIMEOUT,
               _("step %s did not finish in time: group %s was still running it after %u s"),
               shoal_pipeline_get_step_id (run->pipeline, run->index), run->group_id, run->timeout);
  for (guint i = 0; i < run->calls->len; i++)
    step_done (run->controller, g_ptr_array_index (run->calls, i), error);
  g_cancellable_cancel (run->cancellable);
  /* its members failed: the next group may start, whenever the plugin
   * returns */
  group_run_end (run);
  return G_SOURCE_REMOVE;
}

/* How many devices of @pipeline can still arrive at the rendezvous of
 * its step @index, counting those waiting there: the devices deploying
 * with @pipeline that have not got past it. Asked only when max-wait has
 * passed with fewer than min-devices there */
guint
shoal_controller_count_coming_cb (ShoalPipeline   *pipeline,
                                  guint            index,
                                  ShoalController *self)
{
  GHashTableIter iter;
  gpointer value;
  guint count = 0;

  g_hash_table_iter_init (&iter, self->devices);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      DeviceRecord *rec = value;

      if (rec->pipeline == pipeline &&
          shoal_device_state_is_active (shoal_device_get_state (rec->device)) &&
          (rec->step_index < index || (rec->step_index == index && rec->waiting && !rec->pending)))
        count++;
    }
  return count;
}

static void
group_run_add_member (GroupRun     *run,
                      DeviceRecord *rec,
                      guint         n_devices)
{
  ShoalController *self = run->controller;
  const gchar *step_id = shoal_pipeline_get_step_id (run->pipeline, run->index);
  guint min = shoal_recipe_get_group_min (shoal_pipeline_get_recipe (run->pipeline));

  rec->waiting = FALSE;
  shoal_controller_next_attempt (rec);
  shoal_controller_uncount (rec);
  TRANSITION_BEGIN (self);
  shoal_device_set_state (rec->device,
                          state_for_phase (shoal_pipeline_get_step_phase (run->pipeline, run->index)));
  shoal_device_set_group (rec->device, run->group_id);
  shoal_device_set_progress (rec->device, 0.0);
  if (n_devices < min)
    shoal_device_log (rec->device, "controller", "rendezvous", SHOAL_JOURNAL_RESULT_WARNING,
                      "group %s starts with %u devices, fewer than min-devices %u: "
                      "no other device can still come", run->group_id, n_devices, min);
  shoal_device_log (rec->device, step_id, "step-started", SHOAL_JOURNAL_RESULT_INFO,
                    "step %s (%s) started for group %s of %u devices", step_id,
                    shoal_pipeline_get_step_name (run->pipeline, run->index), run->group_id, n_devices);
  shoal_controller_persist (rec);
  TRANSITION_END (self);
  g_ptr_array_add (run->calls, step_call_new (rec));
  rec->group_run = run;
  run->members++;
}

static void
start_group (ShoalController *self,
             ShoalPipeline   *pipeline,
             guint            index,
             const gchar     *group_id,
             GPtrArray       *devices)
{
  GroupRun *run = g_new0 (GroupRun, 1);
  ShoalStep *step = shoal_pipeline_get_step (pipeline, index);
  const gchar *step_id = shoal_pipeline_get_step_id (pipeline, index);
  gint timeout = shoal_pipeline_get_step_timeout (pipeline, index);

  /* as for a device step: a hung plugin must not hold its group for ever */
  if (timeout <= 0)
    timeout = (gint) self->default_timeout;
  run->refs = 1;
  run->controller = g_object_ref (self);
  run->pipeline = g_object_ref (pipeline);
  run->index = index;
  run->group_id = g_strdup (group_id);
  run->calls = g_ptr_array_new_with_free_func ((GDestroyNotify) step_call_free);
  run->cancellable = g_cancellable_new ();
  run->timeout = (guint) MAX (timeout, 0);
  run->context = shoal_step_context_new (self->context, shoal_pipeline_get_recipe (pipeline),
                                         step_id, shoal_pipeline_get_step_options (pipeline, index),
                                         devices, group_id);
  /* before its members leave the rendezvous count, which may form the
   * next group at once */
  shoal_controller_get_slot (self, pipeline, index)->groups++;
  for (guint i = 0; i < devices->len; i++)
    {
      DeviceRecord *rec = shoal_controller_lookup_record (self, g_ptr_array_index (devices, i));

      if (rec != NULL)
        group_run_add_member (run, rec, devices->len);
    }
  if (run->timeout > 0)
    run->timeout_id = g_timeout_add_seconds (run->timeout, group_timeout_cb, run);
  shoal_step_run_async (step, run->context, run->cancellable, group_step_cb, run);
}

/* A group formed: its step starts, unless max-parallel groups of it run
 * already; then the group waits, in the order groups formed, its members
 * still waiting, no longer counted as on their way to the rendezvous */
void
shoal_controller_group_formed_cb (ShoalPipeline   *pipeline,
                                  guint            index,
                                  const gchar     *group_id,
                                  GPtrArray       *devices,
                                  ShoalController *self)
{
  Slot *slot = shoal_controller_get_slot (self, pipeline, index);
  gint max = shoal_pipeline_get_step_max_parallel (pipeline, index);
  PendingGroup *pending;

  /* before anything that names the group is queued for the store */
  shoal_controller_save_group_serial (self);
  if ((max <= 0 || slot->groups < (guint) max) && g_queue_is_empty (&slot->pending))
    {
      start_group (self, pipeline, index, group_id, devices);
      return;
    }
  pending = g_new0 (PendingGroup, 1);
  pending->pipeline = g_object_ref (pipeline);
  pending->index = index;
  pending->group_id = g_strdup (group_id);
  pending->devices = g_ptr_array_new_with_free_func (g_object_unref);
  pending->attempts = g_array_new (FALSE, FALSE, sizeof (guint64));
  /* queued before its members leave the rendezvous count, which may form
   * the next group at once */
  g_queue_push_tail (&slot->pending, pending);
  for (guint i = 0; i < devices->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (devices, i);
      DeviceRecord *rec = shoal_controller_lookup_record (self, device);

      if (rec == NULL)
        continue;
      rec->pending = TRUE;
      shoal_controller_uncount (rec);
      g_ptr_array_add (pending->devices, g_object_ref (device));
      g_array_append_val (pending->attempts, rec->attempt);
      TRANSITION_BEGIN (self);
      shoal_device_log (device, "controller", "rendezvous", SHOAL_JOURNAL_RESULT_INFO,
                        "group %s of %u devices waits for a free slot: %u groups of step %s run, "
                        "its max-parallel", group_id, devices->len, slot->groups,
                        shoal_pipeline_get_step_id (pipeline, index));
      shoal_controller_persist (rec);
      TRANSITION_END (self);
    }
}
