/* shoal-step-context.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-step-context.h"

/**
 * ShoalStepContext:
 *
 * What a step is handed when it runs: the device (or the group of
 * devices), the step's options from the recipe, the recipe itself, and the
 * daemon's #ShoalContext. A group step may drop single members that fail
 * (shoal_step_context_drop_device()) without failing the rest; the
 * controller drops a member that leaves the group while the step runs
 * (cancelled, removed, restarted), which the step hears of through
 * #ShoalStepContext::device-dropped.
 *
 * Once a member is dropped, the step no longer writes to it through the
 * context: shoal_step_context_log() and shoal_step_context_set_progress()
 * pass it over when they address every member (@device %NULL), and do
 * nothing when they name it. A member dropped because it left the group
 * may already be in another run (cancelled, then deployed again), whose
 * journal and progress are no longer this step's. A step that drops a
 * member itself journals why before it drops it.
 */
struct _ShoalStepContext
{
  GObject       parent_instance;

  ShoalContext *context;
  ShoalRecipe  *recipe;
  gchar        *step_id;
  JsonObject   *options;
  GPtrArray    *devices;
  gchar        *group_id;
  GHashTable   *dropped;    /* ShoalDevice* -> GError* */
  GMutex        mutex;
};

G_DEFINE_FINAL_TYPE (ShoalStepContext, shoal_step_context, G_TYPE_OBJECT)

enum {
  SIGNAL_DEVICE_DROPPED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void
shoal_step_context_finalize (GObject *object)
{
  ShoalStepContext *self = SHOAL_STEP_CONTEXT (object);

  g_clear_object (&self->context);
  g_clear_object (&self->recipe);
  g_free (self->step_id);
  g_clear_pointer (&self->options, json_object_unref);
  g_clear_pointer (&self->devices, g_ptr_array_unref);
  g_free (self->group_id);
  g_clear_pointer (&self->dropped, g_hash_table_unref);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (shoal_step_context_parent_class)->finalize (object);
}

static void
shoal_step_context_class_init (ShoalStepContextClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = shoal_step_context_finalize;

  /**
   * ShoalStepContext::device-dropped:
   * @self: the step context
   * @device: the member dropped
   * @error: why it was dropped
   *
   * Emitted once for each member shoal_step_context_drop_device() drops,
   * whether the step dropped it or the controller did (the device left
   * the group: cancelled, removed, restarted), in the thread that dropped
   * it (the controller's: the main context). A step that holds a member
   * for something still to come lets it go here: the multicast step waits
   * for no unicast repair of a member dropped.
   */
  signals[SIGNAL_DEVICE_DROPPED] =
    g_signal_new ("device-dropped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, SHOAL_TYPE_DEVICE,
                  G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
shoal_step_context_init (ShoalStepContext *self)
{
  g_mutex_init (&self->mutex);
  self->dropped = g_hash_table_new_full (NULL, NULL, g_object_unref,
                                         (GDestroyNotify) g_error_free);
}

/**
 * shoal_step_context_new:
 * @context: (nullable): the daemon's context
 * @recipe: (nullable): the recipe being deployed
 * @step_id: the step's id in the recipe
 * @options: (nullable): the step's options
 * @devices: (element-type ShoalDevice): the device, or the group
 * @group_id: (nullable): the group's id for a group step
 *
 * Returns: (transfer full): a new context
 */
ShoalStepContext *
shoal_step_context_new (ShoalContext *context,
                        ShoalRecipe  *recipe,
                        const gchar  *step_id,
                        JsonObject   *options,
                        GPtrArray    *devices,
                        const gchar  *group_id)
{
  ShoalStepContext *self;

  g_return_val_if_fail (context == NULL || SHOAL_IS_CONTEXT (context), NULL);
  g_return_val_if_fail (recipe == NULL || SHOAL_IS_RECIPE (recipe), NULL);
  g_return_val_if_fail (step_id != NULL, NULL);
  g_return_val_if_fail (devices != NULL, NULL);

  self = g_object_new (SHOAL_TYPE_STEP_CONTEXT, NULL);
  self->context = context != NULL ? g_object_ref (context) : NULL;
  self->recipe = recipe != NULL ? g_object_ref (recipe) : NULL;
  self->step_id = g_strdup (step_id);
  self->options = options != NULL ? json_object_ref (options) : json_object_new ();
  self->devices = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < devices->len; i++)
    g_ptr_array_add (self->devices, g_object_ref (g_ptr_array_index (devices, i)));
  self->group_id = g_strdup (group_id);
  return self;
}

/**
 * shoal_step_context_get_context:
 * @self: a step context
 *
 * Returns: (transfer none) (nullable): what the daemon offers plugins
 */
ShoalContext *
shoal_step_context_get_context (ShoalStepContext *self)
{
  g_return_val_if_fail (SHOAL_IS_STEP_CONTEXT (self), NULL);
  return self->context;
}

/**
 * shoal_step_context_get_recipe:
 * @self: a step context
 *
 * Returns: (transfer none) (nullable): the recipe being deployed
 */
ShoalRecipe *
shoal_step_context_get_recipe (ShoalStepContext *self)
{
  g_return_val_if_fail (SHOAL_IS_STEP_CONTEXT (self), NULL);
  return self->recipe;
}

/**
 * shoal_step_context_get_step_id:
 * @self: a step context
 *
 * Returns: the id of the step in its recipe (its "id", or its step name)
 */
const gchar *
shoal_step_context_get_step_id (ShoalStepContext *self)
{
  g_return_val_if_fail (SHOAL_IS_STEP_CONTEXT (self), NULL);
  return self->step_id;
}

/**
 * shoal_step_context_get_options:
 * @self: a step context
 *
 * Returns: (transfer none): the step's options from the recipe, never %NULL
 */
JsonObject *
shoal_step_context_get_options (ShoalStepContext *self)
{
  g_return_val_if_fail (SHOAL_IS_STEP_CONTEXT (self), NULL);
  return self->options;
}

/**
 * shoal_step_context_get_device:
 * @self: a step context
 *
 * Returns: (transfer none) (nullable): the device of a per-device step,
 *   the first member of a group
 */
ShoalDevice *
shoal_step_context_get_device (ShoalStepContext *self)
{
  g_return_val_if_fail (SHOAL_IS_STEP_CONTEXT (self), NULL);
  if (self->devices->len == 0)
    return NULL;
  return g_ptr_array_index (self->devices, 0);
}

/**
 * shoal_step_context_get_devices:
 * @self: a step context
 *
 * Returns: (transfer none) (element-type ShoalDevice): every device the step works on
 */
GPtrArray *
shoal_step_context_get_devices (ShoalStepContext *self)
{
  g_return_val_if_fail (SHOAL_IS_STEP_CONTEXT (self), NULL);
  return self->devices;
}

/**
 * shoal_step_context_get_group_id:
 * @self: a step context
 *
 * Returns: (nullable): the group's id
 */
const gchar *
shoal_step_context_get_group_id (ShoalStepContext *self)
{
  g_return_val_if_fail (SHOAL_IS_STEP_CONTEXT (self), NULL);
  return self->group_id;
}

gint64
shoal_step_context_get_option_int (ShoalStepContext *self,
                                   const gchar      *name,
                                   gint64            default_value)
{
  JsonNode *node;

  g_return_val_if_fail (SHOAL_IS_STEP_CONTEXT (self), default_value);
  node = json_object_get_member (self->options, name);
  if (node == NULL || json_node_get_value_type (node) != G_TYPE_INT64)
    {
      if (node != NULL && json_node_get_value_type (node) == G_TYPE_DOUBLE)
        return (gint64) json_node_get_double (node);
      return default_value;
    }
  return json_node_get_int (node);
}

gdouble
shoal_step_context_get_option_double (ShoalStepContext *self,
                                      const gchar      *name,
                                      gdouble           default_value)
{
  JsonNode *node;

  g_return_val_if_fail (SHOAL_IS_STEP_CONTEXT (self), default_value);
  node = json_object_get_member (self->options, name);
  if (node == NULL || JSON_NODE_TYPE (node) != JSON_NODE_VALUE)
    return default_value;
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    return (gdouble) json_node_get_int (node);
  if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
    return json_node_get_double (node);
  return default_value;
}

/**
 * shoal_step_context_get_option_string:
 * @self: a step context
 * @name: an option's name
 * @default_value: (nullable): what to return when the option is absent or
 *   not a string
 *
 * Returns: (nullable): the option's value, or @default_value
 */
const gchar *
shoal_step_context_get_option_string (ShoalStepContext *self,
                                      const gchar      *name,
                                      const gchar      *default_value)
{
  JsonNode *node;

  g_return_val_if_fail (SHOAL_IS_STEP_CONTEXT (self), default_value);
  node = json_object_get_member (self->options, name);
  if (node == NULL || json_node_get_value_type (node) != G_TYPE_STRING)
    return default_value;
  return json_node_get_string (node);
}

gboolean
shoal_step_context_get_option_bool (ShoalStepContext *self,
                                    const gchar      *name,
                                    gboolean          default_value)
{
  JsonNode *node;

  g_return_val_if_fail (SHOAL_IS_STEP_CONTEXT (self), default_value);
  node = json_object_get_member (self->options, name);
  if (node == NULL || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return default_value;
  return json_node_get_boolean (node);
}

/**
 * shoal_step_context_log:
 * @self: a step context
 * @device: (nullable): the device concerned, or %NULL for every device
 * @operation: what was performed
 * @result: the outcome
 * @format: printf-style details
 * @...: arguments
 *
 * Appends an entry, with the step id as its source, to the journal of
 * @device or of every device of the context. A member dropped from the
 * group (shoal_step_context_drop_device()) gets nothing: the entry is
 * left out of its journal, even when @device names it. Safe from any
 * thread.
 */
void
shoal_step_context_log (ShoalStepContext   *self,
                        ShoalDevice        *device,
                        const gchar        *operation,
                        ShoalJournalResult  result,
                        const gchar        *format,
                        ...)
{
  g_autofree gchar *message = NULL;
  va_list args;

  g_return_if_fail (SHOAL_IS_STEP_CONTEXT (self));

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  shoal_step_context_log_literal (self, device, operation, result, message);
}

/**
 * shoal_step_context_log_literal:
 * @self: a step context
 * @device: (nullable): the device concerned, or %NULL for every device
 * @operation: what was performed
 * @result: the outcome
 * @message: details
 *
 * Like shoal_step_context_log(), for bindings. Safe from any thread.
 */
void
shoal_step_context_log_literal (ShoalStepContext   *self,
                                ShoalDevice        *device,
                                const gchar        *operation,
                                ShoalJournalResult  result,
                                const gchar        *message)
{
  g_return_if_fail (SHOAL_IS_STEP_CONTEXT (self));
  g_return_if_fail (device == NULL || SHOAL_IS_DEVICE (device));

  if (device != NULL)
    {
      if (!shoal_step_context_is_dropped (self, device, NULL))
        shoal_device_log_literal (device, self->step_id, operation, result, message);
      return;
    }
  for (guint i = 0; i < self->devices->len; i++)
    {
      ShoalDevice *member = g_ptr_array_index (self->devices, i);

      if (!shoal_step_context_is_dropped (self, member, NULL))
        shoal_device_log_literal (member, self->step_id, operation, result, message);
    }
}

/**
 * shoal_step_context_set_progress:
 * @self: a step context
 * @device: (nullable): the device, or %NULL for every device
 * @fraction: the step's progress, 0 to 1
 *
 * Sets the progress of @device or of every member; a member dropped from
 * the group is left as it is, even when @device names it. Safe from any
 * thread (shoal_device_set_progress()).
 */
void
shoal_step_context_set_progress (ShoalStepContext *self,
                                 ShoalDevice      *device,
                                 gdouble           fraction)
{
  g_return_if_fail (SHOAL_IS_STEP_CONTEXT (self));
  g_return_if_fail (device == NULL || SHOAL_IS_DEVICE (device));

  if (device != NULL)
    {
      if (!shoal_step_context_is_dropped (self, device, NULL))
        shoal_device_set_progress (device, fraction);
      return;
    }
  for (guint i = 0; i < self->devices->len; i++)
    {
      ShoalDevice *member = g_ptr_array_index (self->devices, i);

      if (!shoal_step_context_is_dropped (self, member, NULL))
        shoal_device_set_progress (member, fraction);
    }
}

/**
 * shoal_step_context_drop_device:
 * @self: a step context
 * @device: a member of the group
 * @error: why it was dropped
 *
 * Marks one member of a group as failed; the step goes on for the others,
 * and the controller fails @device with @error when the step finishes.
 * The first drop of @device emits #ShoalStepContext::device-dropped; a
 * second keeps the first's reason and emits nothing. From the first on,
 * the context's journal entries and progress leave @device alone
 * (shoal_step_context_log(), shoal_step_context_set_progress()).
 */
void
shoal_step_context_drop_device (ShoalStepContext *self,
                                ShoalDevice      *device,
                                const GError     *error)
{
  gboolean first;

  g_return_if_fail (SHOAL_IS_STEP_CONTEXT (self));
  g_return_if_fail (SHOAL_IS_DEVICE (device));
  g_return_if_fail (error != NULL);

  g_mutex_lock (&self->mutex);
  first = !g_hash_table_contains (self->dropped, device);
  if (first)
    g_hash_table_insert (self->dropped, g_object_ref (device), g_error_copy (error));
  g_mutex_unlock (&self->mutex);
  if (first)
    g_signal_emit (self, signals[SIGNAL_DEVICE_DROPPED], 0, device, error);
}

/**
 * shoal_step_context_is_dropped: (skip)
 * @self: a step context
 * @device: a member of the group
 * @error: (out) (optional) (transfer none): why it was dropped, owned by
 *   @self
 *
 * Returns: whether @device was dropped from the group. Bindings, which
 *   would take a trailing GError argument for an error raised and free it,
 *   use shoal_step_context_get_drop_reason().
 */
gboolean
shoal_step_context_is_dropped (ShoalStepContext  *self,
                               ShoalDevice       *device,
                               const GError     **error)
{
  GError *reason;

  g_return_val_if_fail (SHOAL_IS_STEP_CONTEXT (self), FALSE);
  g_mutex_lock (&self->mutex);
  reason = g_hash_table_lookup (self->dropped, device);
  g_mutex_unlock (&self->mutex);
  if (error != NULL)
    *error = reason;
  return reason != NULL;
}

/**
 * shoal_step_context_get_drop_reason:
 * @self: a step context
 * @device: a member of the group
 *
 * Returns: (transfer full) (nullable): why @device was dropped from the
 *   group, or %NULL if it was not
 */
GError *
shoal_step_context_get_drop_reason (ShoalStepContext *self,
                                    ShoalDevice      *device)
{
  const GError *reason = NULL;

  g_return_val_if_fail (SHOAL_IS_STEP_CONTEXT (self), NULL);
  g_return_val_if_fail (SHOAL_IS_DEVICE (device), NULL);
  if (!shoal_step_context_is_dropped (self, device, &reason))
    return NULL;
  return g_error_copy (reason);
}
