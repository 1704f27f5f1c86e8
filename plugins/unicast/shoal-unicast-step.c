/* shoal-unicast-step.c: the "unicast" step: one device fetches the image
 * over HTTP
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Resolves the recipe's image ({"name"}, {"name", "id"} or {"name", "file"}:
 * a file is imported into the store first), tells the device's agent
 *   {"action": "unicast-receive", "manifest": "<server>/images/<id>/manifest",
 *    "image": "<id>", "size": <bytes>, "image-sha256": "<hex>"}
 * and waits for the agent's "image-written" event ({"bytes": n, optional
 * "image": id}, checked against the manifest) or its "error" event for that
 * action. Progress comes from the agent's "progress" events (the core sets
 * the device's progress); this step journals each quarter with the rate.
 *
 * Device metadata set: image.id (manifest SHA-256), image.sha256 (SHA-256 of
 * the whole image).
 * Options (for tests and special set-ups): "store" (image store folder,
 * default: [image-store] path or <state dir>/image-store), "server-url"
 * (default: the daemon's URL).
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "shoal-image-files.h"
#include "shoal-unicast-service.h"
#include "shoal-unicast-step.h"

struct _ShoalUnicastStep
{
  GObject parent_instance;
};

static void shoal_unicast_step_iface_init (ShoalStepInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalUnicastStep, shoal_unicast_step, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_STEP, shoal_unicast_step_iface_init))

typedef struct {
  ShoalStepContext *ctx;
  ShoalDevice      *device;
  GCancellable     *waits;          /* cancelled when the step ends */
  GCancellable     *outer;
  gulong            outer_id;
  gulong            progress_id;
  gchar            *root;
  gchar            *server_url;
  JsonObject       *image;
  ShoalImageInfo   *info;
  gint              hold;           /* the image, not removable while the agent fetches it */
  gint64            started;
  gint              quarter;
  gboolean          done;
} Run;

static void
run_free (Run *run)
{
  if (run->progress_id != 0)
    g_signal_handler_disconnect (run->device, run->progress_id);
  if (run->outer != NULL)
    g_cancellable_disconnect (run->outer, run->outer_id);
  g_clear_object (&run->outer);
  g_clear_object (&run->waits);
  g_clear_object (&run->ctx);
  g_clear_object (&run->device);
  g_clear_pointer (&run->image, json_object_unref);
  g_clear_pointer (&run->info, shoal_image_info_free);
  shoal_image_files_release (run->hold);
  g_free (run->root);
  g_free (run->server_url);
  g_free (run);
}

/* Ends the step once: stops the other waits. */
static void
run_return (GTask  *task,
            GError *error)
{
  Run *run = g_task_get_task_data (task);

  if (run->done)
    {
      g_clear_error (&error);
      return;
    }
  run->done = TRUE;
  shoal_image_files_release (run->hold);
  run->hold = -1;
  if (run->progress_id != 0)
    {
      g_signal_handler_disconnect (run->device, run->progress_id);
      run->progress_id = 0;
    }
  g_cancellable_cancel (run->waits);
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/* --- resolving (and maybe importing) the image, in a worker thread ------------- */

/* Files imported by this process: "<root>\n<path>\n<name>\n<size>\n<mtime>" → id,
 * so that the devices of a recipe naming a file do not each import it again
 * (the lock also makes the second device wait for the first import). */
static GMutex import_lock;
static GHashTable *imported_files;

static gchar *
import_file (const gchar   *root,
             const gchar   *path,
             const gchar   *name,
             GCancellable  *cancellable,
             GError       **error)
{
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&import_lock);
  g_autofree gchar *key = NULL;
  g_autofree gchar *manifest = NULL;
  const gchar *known;
  GStatBuf st;
  gchar *id;

  if (g_stat (path, &st) == 0)
    key = g_strdup_printf ("%s\n%s\n%s\n%" G_GINT64_FORMAT "\n%" G_GINT64_FORMAT, root, path,
                           name != NULL ? name : "", (gint64) st.st_size, (gint64) st.st_mtime);
  if (imported_files == NULL)
    imported_files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  known = key != NULL ? g_hash_table_lookup (imported_files, key) : NULL;
  manifest = known != NULL ? shoal_image_files_manifest_path (root, known) : NULL;
  if (known != NULL && g_file_test (manifest, G_FILE_TEST_EXISTS))
    return g_strdup (known);
  id = shoal_image_files_import (root, path, name, 0, NULL, NULL, NULL, cancellable, error);
  if (id != NULL && key != NULL)
    g_hash_table_replace (imported_files, g_steal_pointer (&key), g_strdup (id));
  return id;
}

static ShoalImageInfo *
resolve_image (const gchar   *root,
               JsonObject    *image,
               GCancellable  *cancellable,
               GError       **error)
{
  const gchar *name = json_object_get_string_member_with_default (image, "name", NULL);
  const gchar *id = json_object_get_string_member_with_default (image, "id", NULL);
  const gchar *file = json_object_get_string_member_with_default (image, "file", NULL);
  g_autofree gchar *imported = NULL;
  g_autofree gchar *path = NULL;
  ShoalImageInfo *info;

  if (file != NULL && id == NULL)
    {
      path = g_path_is_absolute (file) ? g_strdup (file) : g_build_filename (root, file, NULL);
      imported = import_file (root, path, name, cancellable, error);
      if (imported == NULL)
        return NULL;
      id = imported;
    }
  info = shoal_image_files_inspect (root, id != NULL ? id : name, error);
  if (info != NULL && id != NULL && name != NULL && g_strcmp0 (info->name, name) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   _("The recipe's image id %s is an image named “%s”, not “%s”"), id, info->name, name);
      g_clear_pointer (&info, shoal_image_info_free);
    }
  return info;
}

static void
resolve_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  Run *run = task_data;
  GError *error = NULL;
  ShoalImageInfo *info = resolve_image (run->root, run->image, cancellable, &error);

  /* held until the step ends for this device (the main thread reads
   * run->hold only after this task's result) */
  if (info != NULL && (run->hold = shoal_image_files_hold (run->root, info->id, &error)) < 0)
    g_clear_pointer (&info, shoal_image_info_free);
  if (info == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, info, (GDestroyNotify) shoal_image_info_free);
}

/* --- waiting for the agent ------------------------------------------------------ */

static void wait_written (GTask *task);
static void wait_error (GTask *task);

static gdouble
rate_mb_s (Run     *run,
           guint64  bytes)
{
  gdouble secs = (gdouble) (g_get_monotonic_time () - run->started) / G_USEC_PER_SEC;

  return secs > 0 ? (gdouble) bytes / 1e6 / secs : 0;
}

static void
progress_cb (ShoalDevice *device,
             GParamSpec  *pspec,
             GTask       *task)
{
  Run *run = g_task_get_task_data (task);
  gdouble fraction = shoal_device_get_progress (device);
  gint quarter = (gint) (fraction * 4);

  if (quarter <= run->quarter || quarter >= 4)
    return;
  run->quarter = quarter;
  shoal_step_context_log (run->ctx, device, "unicast", SHOAL_JOURNAL_RESULT_INFO,
                          _("%d %% of image %s written, %.1f MB/s"), quarter * 25, run->info->name,
                          rate_mb_s (run, (guint64) (fraction * (gdouble) run->info->size)));
}

static GError *
check_written (Run      *run,
               JsonNode *payload)
{
  JsonObject *data = payload != NULL && JSON_NODE_HOLDS_OBJECT (payload) ? json_node_get_object (payload) : NULL;
  const gchar *image = data != NULL ? json_object_get_string_member_with_default (data, "image", NULL) : NULL;
  gint64 bytes = data != NULL ? json_object_get_int_member_with_default (data, "bytes", -1) : -1;

  if (image != NULL && g_strcmp0 (image, run->info->id) != 0)
    return g_error_new (SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                        _("The agent wrote image %s, not %s"), image, run->info->id);
  if (bytes >= 0 && (guint64) bytes != run->info->size)
    return g_error_new (SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                        _("The agent wrote %lld bytes, the image has %llu"),
                        (long long) bytes, (unsigned long long) run->info->size);
  return NULL;
}

static void
written_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Run *run = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) payload = shoal_device_wait_event_finish (run->device, result, &error);
  GError *bad;

  if (run->done)
    return;
  if (payload == NULL)
    {
      g_prefix_error (&error, _("Waiting for the image to be written: "));
      run_return (task, g_steal_pointer (&error));
      return;
    }
  bad = check_written (run, payload);
  if (bad != NULL)
    {
      shoal_step_context_log (run->ctx, run->device, "unicast", SHOAL_JOURNAL_RESULT_FAILED, "%s", bad->message);
      run_return (task, bad);
      return;
    }
  /* hand the agent's report on to the steps after this one */
  shoal_device_post_event (run->device, "image-written", payload);
  shoal_step_context_set_progress (run->ctx, run->device, 1.0);
  shoal_step_context_log (run->ctx, run->device, "unicast", SHOAL_JOURNAL_RESULT_OK,
                          _("Image %s (%s) written: %llu bytes in %.1f s, %.1f MB/s"),
                          run->info->name, run->info->id, (unsigned long long) run->info->size,
                          (gdouble) (g_get_monotonic_time () - run->started) / G_USEC_PER_SEC,
                          rate_mb_s (run, run->info->size));
  {
    JsonObject *data = JSON_NODE_HOLDS_OBJECT (payload) ? json_node_get_object (payload) : NULL;
    gint64 kept = data != NULL ? json_object_get_int_member_with_default (data, "kept_chunks", 0) : 0;

    /* an interrupted run wrote them, or the disk held this image already */
    if (kept > 0)
      shoal_step_context_log (run->ctx, run->device, "unicast", SHOAL_JOURNAL_RESULT_INFO,
                              _("%lld of the image's chunks were on the disk already: kept, not fetched"),
                              (long long) kept);
  }
  run_return (task, NULL);
}

static void
error_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Run *run = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) payload = shoal_device_wait_event_finish (run->device, result, &error);
  JsonObject *data;
  const gchar *action;
  const gchar *message;

  if (run->done || payload == NULL)
    return;
  data = JSON_NODE_HOLDS_OBJECT (payload) ? json_node_get_object (payload) : NULL;
  action = data != NULL ? json_object_get_string_member_with_default (data, "action", NULL) : NULL;
  message = data != NULL ? json_object_get_string_member_with_default (data, "message", NULL) : NULL;
  if (action != NULL && g_strcmp0 (action, "unicast-receive") != 0)
    {
      /* an error of another action (an older one): not ours */
      wait_error (g_steal_pointer (&task));
      return;
    }
  shoal_step_context_log (run->ctx, run->device, "unicast", SHOAL_JOURNAL_RESULT_FAILED,
                          _("The agent could not write image %s: %s"), run->info->id,
                          message != NULL ? message : _("no reason given"));
  run_return (task, g_error_new (SHOAL_ERROR, SHOAL_ERROR_FAILED, _("The agent could not write image %s: %s"),
                                 run->info->id, message != NULL ? message : _("no reason given")));
}

static void
wait_written (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  shoal_device_wait_event_async (run->device, "image-written", run->waits, written_cb, task);
}

static void
wait_error (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  shoal_device_wait_event_async (run->device, "error", run->waits, error_cb, task);
}

static JsonNode *
build_instruction (Run *run)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree gchar *manifest = g_strdup_printf ("%s/images/%s/manifest", run->server_url, run->info->id);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "action");
  json_builder_add_string_value (b, "unicast-receive");
  json_builder_set_member_name (b, "manifest");
  json_builder_add_string_value (b, manifest);
  json_builder_set_member_name (b, "image");
  json_builder_add_string_value (b, run->info->id);
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, (gint64) run->info->size);
  json_builder_set_member_name (b, "image-sha256");
  json_builder_add_string_value (b, run->info->image_sha256);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static void
resolved_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Run *run = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) instruction = NULL;
  g_autofree gchar *size = NULL;

  run->info = g_task_propagate_pointer (G_TASK (result), &error);
  if (run->info == NULL)
    {
      shoal_step_context_log (run->ctx, run->device, "unicast", SHOAL_JOURNAL_RESULT_FAILED,
                              _("No image to send: %s"), error->message);
      run_return (task, g_steal_pointer (&error));
      return;
    }
  shoal_device_set_metadata (run->device, "image.id", run->info->id);
  shoal_device_set_metadata (run->device, "image.sha256", run->info->image_sha256);
  instruction = build_instruction (run);
  size = g_format_size (run->info->size);
  shoal_step_context_log (run->ctx, run->device, "unicast", SHOAL_JOURNAL_RESULT_INFO,
                          _("Sending image %s (%s, %s, %llu of %llu chunks to fetch) by unicast from %s/images/%s"),
                          run->info->name, run->info->id, size,
                          (unsigned long long) (run->info->n_chunks - run->info->n_zero_chunks),
                          (unsigned long long) run->info->n_chunks, run->server_url, run->info->id);
  run->started = g_get_monotonic_time ();
  run->progress_id = g_signal_connect (run->device, "notify::progress", G_CALLBACK (progress_cb), task);
  wait_written (g_object_ref (task));
  wait_error (g_object_ref (task));
  shoal_device_set_instruction (run->device, instruction);
}

/* --- the step ---------------------------------------------------------------- */

static gboolean
setup_run (Run               *run,
           ShoalStepContext  *ctx,
           GError           **error)
{
  ShoalContext *context = shoal_step_context_get_context (ctx);
  ShoalRecipe *recipe = shoal_step_context_get_recipe (ctx);
  JsonObject *image = recipe != NULL ? shoal_recipe_get_image (recipe) : NULL;
  const gchar *store = shoal_step_context_get_option_string (ctx, "store", NULL);
  const gchar *url = shoal_step_context_get_option_string (ctx, "server-url", NULL);

  run->device = shoal_step_context_get_device (ctx);
  if (run->device == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT, _("The unicast step runs for one device"));
      return FALSE;
    }
  g_object_ref (run->device);
  if (image == NULL || !json_object_has_member (image, "name"))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE, _("The recipe names no image"));
      return FALSE;
    }
  run->image = json_object_ref (image);
  run->root = store != NULL ? g_strdup (store) : context != NULL ? shoal_unicast_store_root (context) : NULL;
  run->server_url = g_strdup (url != NULL ? url : context != NULL ? shoal_context_get_server_url (context) : NULL);
  if (run->root == NULL || run->server_url == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_SUPPORTED,
                   _("The unicast step needs the daemon's image store and HTTP server"));
      return FALSE;
    }
  /* the server URL as agents know it, without a trailing slash */
  if (g_str_has_suffix (run->server_url, "/"))
    run->server_url[strlen (run->server_url) - 1] = '\0';
  return TRUE;
}

static void
outer_cancelled (GCancellable *cancellable,
                 GCancellable *waits)
{
  g_cancellable_cancel (waits);
}

static void
shoal_unicast_step_run_async (ShoalStep           *step,
                              ShoalStepContext    *ctx,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (step, cancellable, callback, user_data);
  g_autoptr(GTask) resolve = NULL;
  GError *error = NULL;
  Run *run = g_new0 (Run, 1);

  run->hold = -1;
  g_task_set_source_tag (task, shoal_unicast_step_run_async);
  g_task_set_task_data (task, run, (GDestroyNotify) run_free);
  run->ctx = g_object_ref (ctx);
  run->waits = g_cancellable_new ();
  if (cancellable != NULL)
    {
      run->outer = g_object_ref (cancellable);
      run->outer_id = g_cancellable_connect (cancellable, G_CALLBACK (outer_cancelled),
                                             g_object_ref (run->waits), g_object_unref);
    }
  if (!setup_run (run, ctx, &error))
    {
      run_return (task, error);
      return;
    }
  resolve = g_task_new (step, run->waits, resolved_cb, g_object_ref (task));
  g_task_set_task_data (resolve, run, NULL);
  g_task_run_in_thread (resolve, resolve_thread);
}

static ShoalStepPhase
shoal_unicast_step_get_phase (ShoalStep *step)
{
  return SHOAL_STEP_PHASE_TRANSFER;
}

static ShoalStepScope
shoal_unicast_step_get_scope (ShoalStep *step)
{
  return SHOAL_STEP_SCOPE_DEVICE;
}

/* the recipe's image, from the daemon's store unless "store" or
 * "image-path" says otherwise */
static ShoalStepFlags
shoal_unicast_step_get_flags (ShoalStep *step)
{
  return SHOAL_STEP_FLAGS_READS_IMAGE;
}

static void
shoal_unicast_step_iface_init (ShoalStepInterface *iface)
{
  iface->get_scope = shoal_unicast_step_get_scope;
  iface->get_phase = shoal_unicast_step_get_phase;
  iface->get_flags = shoal_unicast_step_get_flags;
  iface->run_async = shoal_unicast_step_run_async;
}

static void
shoal_unicast_step_class_init (ShoalUnicastStepClass *klass)
{
}

static void
shoal_unicast_step_class_finalize (ShoalUnicastStepClass *klass)
{
}

static void
shoal_unicast_step_init (ShoalUnicastStep *self)
{
}

void
shoal_unicast_step_register_types (GTypeModule *module)
{
  shoal_unicast_step_register_type (module);
}
