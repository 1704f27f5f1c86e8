/* shoal-pipeline.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-error.h"
#include "shoal-pipeline.h"

/**
 * ShoalPipeline:
 *
 * The ordered steps of one recipe, resolved to the plugins that provide
 * them, and the rendezvous held before each group step.
 *
 * Steps run in phase order; steps of one phase keep the recipe's order.
 * Devices arriving at a group step wait at its rendezvous until a group
 * forms, by the recipe's group policy:
 *
 * - at once when `max-devices` (if not 0) have arrived;
 * - at once when `min-devices` have arrived, unless `wait-for-all`;
 * - at the first group step, when every device still expected on this
 *   pipeline is there (shoal_pipeline_set_expected(); the controller
 *   counts the devices on their way to the first group step), even if
 *   they are fewer than `min-devices`: no other device can still come;
 * - when `max-wait` seconds have passed since the first arrival, with
 *   whoever is there, provided `min-devices` are; fewer wait on, for
 *   `max-wait` at a time, unless no other device can still come
 *   (#ShoalPipeline::count-coming), when they go as they are.
 *
 * The pipeline then emits #ShoalPipeline::group-formed; devices that
 * arrive afterwards start the next group.
 */

typedef struct {
  gchar          *id;
  gchar          *name;
  ShoalStep      *step;       /* owned by the engine */
  JsonObject     *options;
  gint            max_parallel;
  gint            timeout;
  ShoalStepPhase  phase;
  guint           recipe_index;
} PipelineStep;

typedef struct {
  GPtrArray *waiting;         /* ShoalDevice* */
  guint      timeout_id;
} Rendezvous;

struct _ShoalPipeline
{
  GObject      parent_instance;

  ShoalRecipe *recipe;
  GArray      *steps;         /* PipelineStep */
  GHashTable  *rendezvous;    /* GUINT_TO_POINTER(index) -> Rendezvous* */
  guint        expected;      /* 0: unknown, the rule does not apply */
  guint        holds;         /* shoal_pipeline_hold_rendezvous() */
  guint64     *group_serial;  /* shared, g_atomic_rc_box; NULL: the pipeline's own */
  guint64      own_serial;
};

enum {
  SIGNAL_GROUP_FORMED,
  SIGNAL_COUNT_COMING,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (ShoalPipeline, shoal_pipeline, G_TYPE_OBJECT)

static void
pipeline_step_clear (PipelineStep *ps)
{
  g_free (ps->id);
  g_free (ps->name);
  g_clear_pointer (&ps->options, json_object_unref);
}

static void
rendezvous_free (Rendezvous *rv)
{
  g_clear_handle_id (&rv->timeout_id, g_source_remove);
  g_ptr_array_unref (rv->waiting);
  g_free (rv);
}

static void
shoal_pipeline_finalize (GObject *object)
{
  ShoalPipeline *self = SHOAL_PIPELINE (object);

  g_clear_pointer (&self->rendezvous, g_hash_table_unref);
  g_clear_pointer (&self->group_serial, g_atomic_rc_box_release);
  g_clear_pointer (&self->steps, g_array_unref);
  g_clear_object (&self->recipe);
  G_OBJECT_CLASS (shoal_pipeline_parent_class)->finalize (object);
}

static void
shoal_pipeline_class_init (ShoalPipelineClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = shoal_pipeline_finalize;

  /**
   * ShoalPipeline::group-formed:
   * @self: the pipeline
   * @index: the group step's index
   * @group_id: the new group's id
   * @devices: (element-type ShoalDevice): its members
   *
   * Emitted when a rendezvous releases a group.
   */
  signals[SIGNAL_GROUP_FORMED] =
    g_signal_new ("group-formed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 3,
                  G_TYPE_UINT, G_TYPE_STRING, G_TYPE_PTR_ARRAY);
  /**
   * ShoalPipeline::count-coming:
   * @self: the pipeline
   * @index: a group step's index
   *
   * Asked when `max-wait` has passed with fewer than `min-devices` at a
   * rendezvous: whether they can still hope for more.
   *
   * Returns: how many devices can still arrive at the rendezvous of
   *   @index, counting those waiting there; 0 if unknown (they wait on)
   */
  signals[SIGNAL_COUNT_COMING] =
    g_signal_new ("count-coming", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_UINT, 1, G_TYPE_UINT);
}

static void
shoal_pipeline_init (ShoalPipeline *self)
{
  self->steps = g_array_new (FALSE, TRUE, sizeof (PipelineStep));
  g_array_set_clear_func (self->steps, (GDestroyNotify) pipeline_step_clear);
  self->rendezvous = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) rendezvous_free);
}

static gint
compare_steps (gconstpointer a,
               gconstpointer b)
{
  const PipelineStep *sa = a;
  const PipelineStep *sb = b;

  if (sa->phase != sb->phase)
    return sa->phase < sb->phase ? -1 : 1;
  return (gint) sa->recipe_index - (gint) sb->recipe_index;
}

/* A recipe may place a step in another phase with the option "phase" */
static gboolean
pipeline_step_phase (PipelineStep  *ps,
                     ShoalRecipe   *recipe,
                     guint          index,
                     GError       **error)
{
  const gchar *nick = json_object_get_string_member_with_default (ps->options, "phase", NULL);

  ps->phase = shoal_step_get_phase (ps->step);
  if (!json_object_has_member (ps->options, "phase"))
    return TRUE;
  if (nick != NULL && shoal_step_phase_from_string (nick, &ps->phase))
    return TRUE;
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
               _("recipe %s, step %s: option “phase” must be one of boot, inventory, drivers, "
               "agent, transfer, verify, finish"), shoal_recipe_get_name (recipe), ps->id);
  return FALSE;
}

/**
 * shoal_pipeline_new:
 * @recipe: a recipe
 * @engine: the plugin engine that provides the recipe's steps
 * @error: return location for a #GError
 *
 * Resolves every step of @recipe and checks its options.
 *
 * Returns: (transfer full): a pipeline, or %NULL with an error naming the
 *   recipe and the step
 */
ShoalPipeline *
shoal_pipeline_new (ShoalRecipe        *recipe,
                    ShoalPluginEngine  *engine,
                    GError            **error)
{
  g_autoptr(ShoalPipeline) self = NULL;
  guint n_steps;

  g_return_val_if_fail (SHOAL_IS_RECIPE (recipe), NULL);
  g_return_val_if_fail (SHOAL_IS_PLUGIN_ENGINE (engine), NULL);

  self = g_object_new (SHOAL_TYPE_PIPELINE, NULL);
  self->recipe = g_object_ref (recipe);
  n_steps = shoal_recipe_get_n_steps (recipe);
  if (n_steps == 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   _("recipe %s has no steps"), shoal_recipe_get_name (recipe));
      return NULL;
    }
  for (guint i = 0; i < n_steps; i++)
    {
      PipelineStep ps = { 0 };
      g_autoptr(GError) local_error = NULL;
      const gchar *name = shoal_recipe_get_step_name (recipe, i);

      ps.step = shoal_plugin_engine_lookup_step (engine, name, &local_error);
      if (ps.step == NULL ||
          !shoal_step_validate_options (ps.step, shoal_recipe_get_step_options (recipe, i),
                                        &local_error))
        {
          g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                      _("recipe %s, step %s: "),
                                      shoal_recipe_get_name (recipe),
                                      shoal_recipe_get_step_id (recipe, i));
          return NULL;
        }
      ps.id = g_strdup (shoal_recipe_get_step_id (recipe, i));
      ps.name = g_strdup (name);
      ps.options = json_object_ref (shoal_recipe_get_step_options (recipe, i));
      ps.max_parallel = shoal_recipe_get_step_max_parallel (recipe, i);
      ps.timeout = shoal_recipe_get_step_timeout (recipe, i);
      if (!pipeline_step_phase (&ps, recipe, i, error))
        {
          pipeline_step_clear (&ps);
          return NULL;
        }
      ps.recipe_index = i;
      g_array_append_val (self->steps, ps);
    }
  g_array_sort (self->steps, compare_steps);
  return g_steal_pointer (&self);
}

/**
 * shoal_pipeline_get_recipe:
 * @self: a pipeline
 *
 * Returns: (transfer none): its recipe
 */
ShoalRecipe *
shoal_pipeline_get_recipe (ShoalPipeline *self)
{
  g_return_val_if_fail (SHOAL_IS_PIPELINE (self), NULL);
  return self->recipe;
}

guint
shoal_pipeline_get_n_steps (ShoalPipeline *self)
{
  g_return_val_if_fail (SHOAL_IS_PIPELINE (self), 0);
  return self->steps->len;
}

static PipelineStep *
get_step (ShoalPipeline *self,
          guint          index)
{
  if (index >= self->steps->len)
    return NULL;
  return &g_array_index (self->steps, PipelineStep, index);
}

/**
 * shoal_pipeline_get_step:
 * @self: a pipeline
 * @index: a step index
 *
 * Returns: (transfer none) (nullable): the step
 */
ShoalStep *
shoal_pipeline_get_step (ShoalPipeline *self,
                         guint          index)
{
  PipelineStep *ps;

  g_return_val_if_fail (SHOAL_IS_PIPELINE (self), NULL);
  ps = get_step (self, index);
  return ps != NULL ? ps->step : NULL;
}

const gchar *
shoal_pipeline_get_step_id (ShoalPipeline *self,
                            guint          index)
{
  PipelineStep *ps;

  g_return_val_if_fail (SHOAL_IS_PIPELINE (self), NULL);
  ps = get_step (self, index);
  return ps != NULL ? ps->id : NULL;
}

const gchar *
shoal_pipeline_get_step_name (ShoalPipeline *self,
                              guint          index)
{
  PipelineStep *ps;

  g_return_val_if_fail (SHOAL_IS_PIPELINE (self), NULL);
  ps = get_step (self, index);
  return ps != NULL ? ps->name : NULL;
}

/**
 * shoal_pipeline_get_step_options:
 * @self: a pipeline
 * @index: a step index
 *
 * Returns: (transfer none) (nullable): the step's options
 */
JsonObject *
shoal_pipeline_get_step_options (ShoalPipeline *self,
                                 guint          index)
{
  PipelineStep *ps;

  g_return_val_if_fail (SHOAL_IS_PIPELINE (self), NULL);
  ps = get_step (self, index);
  return ps != NULL ? ps->options : NULL;
}

gint
shoal_pipeline_get_step_max_parallel (ShoalPipeline *self,
                                      guint          index)
{
  PipelineStep *ps;

  g_return_val_if_fail (SHOAL_IS_PIPELINE (self), 0);
  ps = get_step (self, index);
  return ps != NULL ? ps->max_parallel : 0;
}

gint
shoal_pipeline_get_step_timeout (ShoalPipeline *self,
                                 guint          index)
{
  PipelineStep *ps;

  g_return_val_if_fail (SHOAL_IS_PIPELINE (self), 0);
  ps = get_step (self, index);
  return ps != NULL ? ps->timeout : 0;
}

/**
 * shoal_pipeline_find_step:
 * @self: a pipeline
 * @step_id: a step id
 *
 * Returns: the step's index, or -1
 */
/**
 * shoal_pipeline_get_step_phase:
 * @self: a pipeline
 * @index: a step index
 *
 * Returns: the step's phase: its own, or the one its recipe gives it
 */
ShoalStepPhase
shoal_pipeline_get_step_phase (ShoalPipeline *self,
                               guint          index)
{
  PipelineStep *ps;

  g_return_val_if_fail (SHOAL_IS_PIPELINE (self), SHOAL_STEP_PHASE_BOOT);
  ps = get_step (self, index);
  return ps != NULL ? ps->phase : SHOAL_STEP_PHASE_BOOT;
}

gint
shoal_pipeline_find_step (ShoalPipeline *self,
                          const gchar   *step_id)
{
  g_return_val_if_fail (SHOAL_IS_PIPELINE (self), -1);
  for (guint i = 0; i < self->steps->len; i++)
    {
      if (g_strcmp0 (get_step (self, i)->id, step_id) == 0)
        return (gint) i;
    }
  return -1;
}

/**
 * shoal_pipeline_get_first_group_step:
 * @self: a pipeline
 *
 * Returns: the index of the first group step, or -1
 */
gint
shoal_pipeline_get_first_group_step (ShoalPipeline *self)
{
  g_return_val_if_fail (SHOAL_IS_PIPELINE (self), -1);
  for (guint i = 0; i < self->steps->len; i++)
    {
      if (shoal_step_get_scope (get_step (self, i)->step) == SHOAL_STEP_SCOPE_GROUP)
        return (gint) i;
    }
  return -1;
}

static Rendezvous *
get_rendezvous (ShoalPipeline *self,
                guint          index)
{
  Rendezvous *rv = g_hash_table_lookup (self->rendezvous, GUINT_TO_POINTER (index));

  if (rv == NULL)
    {
      rv = g_new0 (Rendezvous, 1);
      rv->waiting = g_ptr_array_new_with_free_func (g_object_unref);
      g_hash_table_insert (self->rendezvous, GUINT_TO_POINTER (index), rv);
    }
  return rv;
}

static void
form_group (ShoalPipeline *self,
            guint          index,
            guint          size)
{
  Rendezvous *rv = get_rendezvous (self, index);
  g_autoptr(GPtrArray) members = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree gchar *group_id = NULL;
  guint64 *serial;

  size = MIN (size, rv->waiting->len);
  if (size == 0)
    return;
  for (guint i = 0; i < size; i++)
    g_ptr_array_add (members, g_object_ref (g_ptr_array_index (rv->waiting, i)));
  g_ptr_array_remove_range (rv->waiting, 0, size);
  g_clear_handle_id (&rv->timeout_id, g_source_remove);
  serial = self->group_serial != NULL ? self->group_serial : &self->own_serial;
  group_id = g_strdup_printf ("%s/%s/%" G_GUINT64_FORMAT "-%" G_GINT64_FORMAT,
                              shoal_recipe_get_name (self->recipe),
                              get_step (self, index)->id, ++*serial,
                              g_get_real_time () / G_USEC_PER_SEC);
  g_debug ("group %s formed with %u devices", group_id, size);
  g_signal_emit (self, signals[SIGNAL_GROUP_FORMED], 0, index, group_id, members);
}

typedef struct {
  ShoalPipeline *pipeline;
  guint          index;
} TimeoutData;

static void check_rendezvous (ShoalPipeline *self, guint index);

static gboolean
rendezvous_timeout_cb (gpointer user_data)
{
  TimeoutData *data = user_data;
  Rendezvous *rv = get_rendezvous (data->pipeline, data->index);

  ShoalRecipe *recipe = data->pipeline->recipe;
  guint max = shoal_recipe_get_group_max (recipe);
  guint coming = 0;

  rv->timeout_id = 0;
  if (rv->waiting->len < shoal_recipe_get_group_min (recipe))
    g_signal_emit (data->pipeline, signals[SIGNAL_COUNT_COMING], 0, data->index, &coming);
  /* min-devices is a floor, unless nobody else can come */
  if (rv->waiting->len >= shoal_recipe_get_group_min (recipe) ||
      (coming > 0 && coming <= rv->waiting->len))
    form_group (data->pipeline, data->index, max > 0 ? max : G_MAXUINT);
  /* the next max-wait, for those left */
  check_rendezvous (data->pipeline, data->index);
  return G_SOURCE_REMOVE;
}

static void
check_rendezvous (ShoalPipeline *self,
                  guint          index)
{
  Rendezvous *rv = get_rendezvous (self, index);
  guint max = shoal_recipe_get_group_max (self->recipe);
  guint min = MAX (shoal_recipe_get_group_min (self->recipe), 1);
  gboolean wait_all = shoal_recipe_get_group_wait_all (self->recipe);
  guint max_wait = shoal_recipe_get_group_max_wait (self->recipe);

  if (self->holds > 0)
    return;
  while (max > 0 && rv->waiting->len >= max)
    form_group (self, index, max);
  if (rv->waiting->len == 0)
    return;
  /* every device expected is there: none can come to make up min-devices */
  if ((!wait_all && rv->waiting->len >= min) ||
      (self->expected > 0 && rv->waiting->len >= self->expected &&
       (gint) index == shoal_pipeline_get_first_group_step (self)))
    {
      form_group (self, index, max > 0 ? max : G_MAXUINT);
      return;
    }
  if (rv->timeout_id == 0)
    {
      TimeoutData *data = g_new0 (TimeoutData, 1);

      data->pipeline = self;
      data->index = index;
      rv->timeout_id = g_timeout_add_seconds_full (G_PRIORITY_DEFAULT, MAX (max_wait, 1),
                                                   rendezvous_timeout_cb, data, g_free);
    }
}

/**
 * shoal_pipeline_set_expected:
 * @self: a pipeline
 * @n_devices: how many devices are still on their way to the rendezvous,
 *   counting those already waiting
 *
 * Lets a rendezvous release its group as soon as every expected device
 * is there.
 */
void
shoal_pipeline_set_expected (ShoalPipeline *self,
                             guint          n_devices)
{
  GHashTableIter iter;
  gpointer key;

  g_return_if_fail (SHOAL_IS_PIPELINE (self));
  self->expected = n_devices;
  g_hash_table_iter_init (&iter, self->rendezvous);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      Rendezvous *rv = get_rendezvous (self, GPOINTER_TO_UINT (key));

      if (self->expected > 0 && rv->waiting->len >= self->expected)
        check_rendezvous (self, GPOINTER_TO_UINT (key));
    }
}

/**
 * shoal_pipeline_set_group_serial: (skip)
 * @self: a pipeline
 * @serial: (nullable): a counter made with g_atomic_rc_box_new0() (the
 *   pipeline takes a reference), shared by pipelines whose groups must
 *   have distinct ids, or %NULL for a counter of @self's own
 *
 * Group ids are "<recipe>/<step id>/<number>-<seconds since the epoch>",
 * the number taken from @serial. The controller gives all its pipelines
 * one counter: the pipeline of a recipe that was replaced, whose devices
 * still wait or run, never names a group as the new one does. The
 * controller keeps the counter in its store, so that the numbers go on
 * after a restart.
 */
void
shoal_pipeline_set_group_serial (ShoalPipeline *self,
                                 guint64       *serial)
{
  g_return_if_fail (SHOAL_IS_PIPELINE (self));
  if (serial != NULL)
    g_atomic_rc_box_acquire (serial);
  g_clear_pointer (&self->group_serial, g_atomic_rc_box_release);
  self->group_serial = serial;
}

/**
 * shoal_pipeline_hold_rendezvous:
 * @self: a pipeline
 *
 * Holds every rendezvous of @self: devices join, but no group forms (and
 * no max-wait runs) until shoal_pipeline_release_rendezvous(). The
 * controller resuming devices after a restart holds them while it puts
 * them back one after another, so that the first one back does not make
 * a group on its own.
 */
void
shoal_pipeline_hold_rendezvous (ShoalPipeline *self)
{
  g_return_if_fail (SHOAL_IS_PIPELINE (self));
  self->holds++;
}

/**
 * shoal_pipeline_release_rendezvous:
 * @self: a pipeline
 *
 * Ends a shoal_pipeline_hold_rendezvous(): the rendezvous apply their
 * rules to whoever joined meanwhile.
 */
void
shoal_pipeline_release_rendezvous (ShoalPipeline *self)
{
  g_autoptr(GList) keys = NULL;

  g_return_if_fail (SHOAL_IS_PIPELINE (self));
  g_return_if_fail (self->holds > 0);
  if (--self->holds > 0)
    return;
  keys = g_hash_table_get_keys (self->rendezvous);
  for (GList *l = keys; l != NULL; l = l->next)
    {
      if (shoal_pipeline_rendezvous_get_waiting (self, GPOINTER_TO_UINT (l->data)) > 0)
        check_rendezvous (self, GPOINTER_TO_UINT (l->data));
    }
}

/**
 * shoal_pipeline_rendezvous_join:
 * @self: a pipeline
 * @index: the group step's index
 * @device: a device that reached it
 */
void
shoal_pipeline_rendezvous_join (ShoalPipeline *self,
                                guint          index,
                                ShoalDevice   *device)
{
  Rendezvous *rv;

  g_return_if_fail (SHOAL_IS_PIPELINE (self));
  g_return_if_fail (SHOAL_IS_DEVICE (device));
  g_return_if_fail (index < self->steps->len);

  rv = get_rendezvous (self, index);
  if (g_ptr_array_find (rv->waiting, device, NULL))
    return;
  g_ptr_array_add (rv->waiting, g_object_ref (device));
  check_rendezvous (self, index);
}

/**
 * shoal_pipeline_rendezvous_leave:
 * @self: a pipeline
 * @index: the group step's index
 * @device: a waiting device
 *
 * Returns: whether @device was waiting there
 */
gboolean
shoal_pipeline_rendezvous_leave (ShoalPipeline *self,
                                 guint          index,
                                 ShoalDevice   *device)
{
  Rendezvous *rv;

  g_return_val_if_fail (SHOAL_IS_PIPELINE (self), FALSE);
  rv = g_hash_table_lookup (self->rendezvous, GUINT_TO_POINTER (index));
  if (rv == NULL || !g_ptr_array_remove (rv->waiting, device))
    return FALSE;
  if (rv->waiting->len == 0)
    g_clear_handle_id (&rv->timeout_id, g_source_remove);
  return TRUE;
}

guint
shoal_pipeline_rendezvous_get_waiting (ShoalPipeline *self,
                                       guint          index)
{
  Rendezvous *rv;

  g_return_val_if_fail (SHOAL_IS_PIPELINE (self), 0);
  rv = g_hash_table_lookup (self->rendezvous, GUINT_TO_POINTER (index));
  return rv != NULL ? rv->waiting->len : 0;
}

/**
 * shoal_pipeline_rendezvous_flush:
 * @self: a pipeline
 * @index: the group step's index
 *
 * Releases whoever waits at the rendezvous as a group now.
 */
void
shoal_pipeline_rendezvous_flush (ShoalPipeline *self,
                                 guint          index)
{
  guint max;

  g_return_if_fail (SHOAL_IS_PIPELINE (self));
  max = shoal_recipe_get_group_max (self->recipe);
  while (shoal_pipeline_rendezvous_get_waiting (self, index) > 0)
    form_group (self, index, max > 0 ? max : G_MAXUINT);
}
