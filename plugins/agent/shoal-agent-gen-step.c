/* shoal-agent-gen-step.c: the "agent" step
 *
 * Generates the device's agent from the device keys the drivers step
 * wrote ("drivers", "drivers.kernel"), records it on the device for the
 * service that serves GET /agent/v1/agent (keys "agent.base",
 * "agent.device-part", "agent.sha256", "agent.size"), then waits for the
 * device events "agent-fetched" (posted by that service) and
 * "agent-running" (posted by the agent itself). Those keys are removed
 * when the step starts (and by the controller when a deployment starts),
 * so a device is never sent the agent of an earlier run, and an
 * "agent-fetched" whose sha256 is not this run's agent's is ignored.
 *
 * The configuration carries the device's instruction serial at generation
 * time, so the agent never runs an instruction left from an earlier
 * deployment (a "reboot" would loop).
 *
 * Options: "disk" (the block device the agent writes; default: its first
 * fixed disk), "root-device" (instead of "disk": hints the disk must
 * match, chosen from the inventory and journaled: shoal-agent-disk.c),
 * "compression" ("zstd", default, or "gzip"), "agent-binary" (default:
 * [agent] binary in the config, $SHOAL_AGENT_BINARY, the build tree's, the
 * installed one), "session" (written to agent.conf; default: the device's
 * group).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-agent-disk.h"
#include "shoal-agent-gen.h"
#include "shoal-agent-gen-step.h"

struct _ShoalAgentGenStep
{
  GObject parent_instance;
};

static void shoal_agent_gen_step_iface_init (ShoalStepInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalAgentGenStep, shoal_agent_gen_step, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_STEP, shoal_agent_gen_step_iface_init))

typedef struct {
  ShoalStepContext *ctx;
  GCancellable     *cancellable;
  gchar            *sha256;       /* of the agent generated */
} StepData;

static void
step_data_free (StepData *data)
{
  g_clear_object (&data->ctx);
  g_clear_object (&data->cancellable);
  g_free (data->sha256);
  g_free (data);
}

/* Forgets the agent of an earlier run, so that the service answers 503
 * until this run's agent is generated instead of serving the old one */
static void
forget_agent (ShoalDevice *device)
{
  const gchar *keys[] = { SHOAL_AGENT_KEY_BASE, SHOAL_AGENT_KEY_DEVICE, SHOAL_AGENT_KEY_SHA256, SHOAL_AGENT_KEY_SIZE };

  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    shoal_device_set_metadata (device, keys[i], NULL);
}

static void
agent_running_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  StepData *data = g_task_get_task_data (task);
  ShoalDevice *device = SHOAL_DEVICE (source);
  g_autoptr(JsonNode) payload = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *obj;

  payload = shoal_device_wait_event_finish (device, result, &error);
  if (payload == NULL)
    {
      g_prefix_error (&error, "waiting for the agent of %s to run: ", shoal_device_get_id (device));
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  obj = JSON_NODE_HOLDS_OBJECT (payload) ? json_node_get_object (payload) : NULL;
  shoal_step_context_log (data->ctx, device, "agent", SHOAL_JOURNAL_RESULT_OK,
                          "agent running (kernel %s, %" G_GINT64_FORMAT " modules failed to load)",
                          obj ? json_object_get_string_member_with_default (obj, "kernel", "?") : "?",
                          obj ? json_object_get_int_member_with_default (obj, "failed_modules", 0) : 0);
  g_task_return_boolean (task, TRUE);
}

static void
agent_fetched_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  StepData *data = g_task_get_task_data (task);
  ShoalDevice *device = SHOAL_DEVICE (source);
  g_autoptr(JsonNode) payload = NULL;
  g_autoptr(GError) error = NULL;

  payload = shoal_device_wait_event_finish (device, result, &error);
  if (payload == NULL)
    {
      g_prefix_error (&error, "waiting for %s to fetch its agent: ", shoal_device_get_id (device));
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  /* a download of an earlier agent that ended after this run began */
  if (!JSON_NODE_HOLDS_OBJECT (payload)
      || g_strcmp0 (json_object_get_string_member_with_default (json_node_get_object (payload), "sha256", NULL),
                    data->sha256) != 0)
    {
      g_debug ("%s fetched an agent other than %s: waiting for this one", shoal_device_get_id (device), data->sha256);
      shoal_device_wait_event_async (device, "agent-fetched", data->cancellable, agent_fetched_cb,
                                     g_steal_pointer (&task));
      return;
    }
  shoal_step_context_set_progress (data->ctx, device, 0.5);
  shoal_device_wait_event_async (device, "agent-running", data->cancellable, agent_running_cb,
                                 g_steal_pointer (&task));
}

static void
generated_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  StepData *data = g_task_get_task_data (task);
  ShoalDevice *device = shoal_step_context_get_device (data->ctx);
  ShoalAgentGenJob *job = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;
  g_autofree gchar *size = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_prefix_error (&error, "generating the agent: ");
      shoal_step_context_log (data->ctx, device, "agent", SHOAL_JOURNAL_RESULT_FAILED, "%s", error->message);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  size = g_strdup_printf ("%" G_GUINT64_FORMAT, job->size);
  data->sha256 = g_strdup (job->sha256);
  shoal_device_set_metadata (device, SHOAL_AGENT_KEY_BASE, job->base_path);
  shoal_device_set_metadata (device, SHOAL_AGENT_KEY_DEVICE, job->device_path);
  shoal_device_set_metadata (device, SHOAL_AGENT_KEY_SHA256, job->sha256);
  shoal_device_set_metadata (device, SHOAL_AGENT_KEY_SIZE, size);
  shoal_step_context_log (data->ctx, device, "agent", SHOAL_JOURNAL_RESULT_OK,
                          "agent generated: sha256 %s, %" G_GUINT64_FORMAT " bytes, %u modules, base %s %s",
                          job->sha256, job->size, job->n_modules, job->cache_key,
                          job->reused ? "reused from the cache" : "built");
  shoal_device_wait_event_async (device, "agent-fetched", data->cancellable, agent_fetched_cb,
                                 g_steal_pointer (&task));
}

static void
generate_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  g_autoptr(GError) error = NULL;

  if (!shoal_agent_gen_run (task_data, &error))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_boolean (task, TRUE);
}

static gchar *
agent_binary (ShoalStepContext *ctx)
{
  ShoalContext *context = shoal_step_context_get_context (ctx);
  const gchar *opt = shoal_step_context_get_option_string (ctx, "agent-binary", NULL);
  g_autofree gchar *conf = context ? shoal_context_get_config_string (context, "agent", "binary", NULL) : NULL;

  if (opt != NULL)
    return g_strdup (opt);
  if (conf != NULL)
    return g_steal_pointer (&conf);
  return shoal_agent_gen_default_binary ();
}

/* The disk the agent writes: the "disk" option, the one the "root-device"
 * hints choose from the inventory (journaled), or NULL (the agent's own
 * default). FALSE with error when no disk matches. */
static gboolean
target_disk (ShoalStepContext  *ctx,
             ShoalDevice       *device,
             gchar            **disk,
             GError           **error)
{
  JsonNode *hints = json_object_get_member (shoal_step_context_get_options (ctx), "root-device");
  g_autofree gchar *description = NULL;

  if (hints == NULL)
    {
      *disk = g_strdup (shoal_step_context_get_option_string (ctx, "disk", NULL));
      return TRUE;
    }
  if (shoal_device_get_inventory (device) == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   _("device %s has no inventory: root-device hints need the inventory step before the agent step"),
                   shoal_device_get_id (device));
      return FALSE;
    }
  *disk = shoal_agent_disk_choose (shoal_device_get_inventory (device), hints, &description, error);
  if (*disk == NULL)
    return FALSE;
  shoal_step_context_log (ctx, device, "root-device", SHOAL_JOURNAL_RESULT_INFO,
                          _("the agent writes %s, chosen by the root-device hints"), description);
  return TRUE;
}

static ShoalAgentGenJob *
make_job (ShoalStepContext *ctx, ShoalDevice *device, GError **error)
{
  ShoalContext *context = shoal_step_context_get_context (ctx);
  ShoalRecipe *recipe = shoal_step_context_get_recipe (ctx);
  const gchar *release_dir = shoal_device_get_metadata (device, "drivers.kernel");
  const gchar *modules = shoal_device_get_metadata (device, "drivers");
  g_autoptr(ShoalAgentGenJob) job = shoal_agent_gen_job_new ();
  g_autofree gchar *release = NULL;
  g_autofree gchar *disk = NULL;

  if (release_dir == NULL || modules == NULL || context == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   "device %s has no driver selection (keys drivers, drivers.kernel): the agent step needs the drivers step before it",
                   shoal_device_get_id (device));
      return NULL;
    }
  if (!shoal_agent_compression_from_string (shoal_step_context_get_option_string (ctx, "compression", "zstd"),
                                            &job->compression))
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                           "agent: option “compression” must be “zstd” or “gzip”");
      return NULL;
    }
  if (!target_disk (ctx, device, &disk, error))
    return NULL;
  release = g_path_get_basename (release_dir);
  job->state_dir = g_strdup (shoal_context_get_state_dir (context));
  job->agent_binary = agent_binary (ctx);
  job->release_dir = g_strdup (release_dir);
  job->modules = g_strdup (modules);
  job->device_id = g_strdelimit (g_strdup (shoal_device_get_id (device)), "/\\", '_');
  job->config_text = shoal_agent_gen_config (shoal_context_get_server_url (context),
                                             shoal_device_get_token (device),
                                             shoal_device_get_id (device),
                                             recipe != NULL ? shoal_recipe_get_image_name (recipe) : NULL,
                                             shoal_step_context_get_option_string (ctx, "session",
                                                                                   shoal_device_get_group (device)),
                                             disk, release, modules, shoal_device_get_instruction_serial (device));
  return g_steal_pointer (&job);
}

static void
shoal_agent_gen_step_run_async (ShoalStep           *step,
                                ShoalStepContext    *ctx,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (step, cancellable, callback, user_data);
  g_autoptr(GTask) worker = NULL;
  ShoalDevice *device = shoal_step_context_get_device (ctx);
  StepData *data = g_new0 (StepData, 1);
  g_autoptr(GError) error = NULL;
  ShoalAgentGenJob *job;

  g_task_set_source_tag (task, shoal_agent_gen_step_run_async);
  data->ctx = g_object_ref (ctx);
  data->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  g_task_set_task_data (task, data, (GDestroyNotify) step_data_free);
  if (device != NULL)
    forget_agent (device);
  job = device != NULL ? make_job (ctx, device, &error) : NULL;
  if (job == NULL)
    {
      if (error == NULL)
        g_set_error_literal (&error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT, "the agent step runs for one device");
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  worker = g_task_new (step, cancellable, generated_cb, g_steal_pointer (&task));
  g_task_set_task_data (worker, job, (GDestroyNotify) shoal_agent_gen_job_free);
  g_task_run_in_thread (worker, generate_thread);
}

static gboolean
shoal_agent_gen_step_validate_options (ShoalStep *step, JsonObject *options, GError **error)
{
  const gchar *strings[] = { "disk", "compression", "agent-binary", "session" };
  ShoalAgentCompression compression;

  for (guint i = 0; i < G_N_ELEMENTS (strings); i++)
    {
      JsonNode *node = json_object_get_member (options, strings[i]);

      if (node != NULL && (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING))
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                       _("agent: option “%s” must be a string"), strings[i]);
          return FALSE;
        }
    }
  if (!shoal_agent_compression_from_string (json_object_get_string_member_with_default (options, "compression", "zstd"),
                                            &compression))
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                           _("agent: option “compression” must be “zstd” or “gzip”"));
      return FALSE;
    }
  if (json_object_has_member (options, "root-device"))
    {
      if (json_object_has_member (options, "disk"))
        {
          g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                               _("agent: options “disk” and “root-device” both name the disk: give one"));
          return FALSE;
        }
      return shoal_agent_disk_hints_validate (json_object_get_member (options, "root-device"), error);
    }
  return TRUE;
}

static ShoalStepPhase
shoal_agent_gen_step_get_phase (ShoalStep *step)
{
  return SHOAL_STEP_PHASE_AGENT;
}

static void
shoal_agent_gen_step_iface_init (ShoalStepInterface *iface)
{
  iface->get_phase = shoal_agent_gen_step_get_phase;
  iface->validate_options = shoal_agent_gen_step_validate_options;
  iface->run_async = shoal_agent_gen_step_run_async;
}

static void
shoal_agent_gen_step_class_init (ShoalAgentGenStepClass *klass)
{
}

static void
shoal_agent_gen_step_class_finalize (ShoalAgentGenStepClass *klass)
{
}

static void
shoal_agent_gen_step_init (ShoalAgentGenStep *self)
{
}

void
shoal_agent_gen_step_register_types (GTypeModule *module)
{
  shoal_agent_gen_step_register_type (module);
}
