/* shoal-reboot-step.c: the "reboot" finish step: boot local, then reboot into the new system
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include <string.h>

#include "shoal-reboot-step.h"

/*
 * Per device, phase FINISH, after the image step. It waits for the agent's
 * "image-written" event (kept by the device if it came first; the unicast
 * and multicast steps hand it on when they consumed it) and journals
 * what was written: disk, bytes, the whole image's SHA-256 and how it came
 * (multicast and unicast chunks). When the agent's event carries no
 * "image_sha256" (multicast mode does not), the whole image's SHA-256 is
 * taken from the manifest of the written image id ("image") in the image
 * store ([image-store] path, default <state dir>/image-store), which binds
 * it; the journal says which. Then the device's boot action becomes
 * "local" (so the network boot service answers the reboot's PXE request
 * with "boot the local disk"), the agent gets the instruction
 * {"action": "reboot"}, and the step ends when the agent posts "rebooting".
 * No options; the recipe's step timeout bounds the waits.
 */

struct _ShoalRebootStep
{
  GObject parent_instance;
};

static void shoal_reboot_step_iface_init (ShoalStepInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ShoalRebootStep, shoal_reboot_step, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (SHOAL_TYPE_STEP, shoal_reboot_step_iface_init))

static ShoalStepScope
shoal_reboot_step_get_scope (ShoalStep *step)
{
  return SHOAL_STEP_SCOPE_DEVICE;
}

static ShoalStepPhase
shoal_reboot_step_get_phase (ShoalStep *step)
{
  return SHOAL_STEP_PHASE_FINISH;
}

static void
rebooting_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ShoalStepContext *ctx = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) payload = shoal_device_wait_event_finish (SHOAL_DEVICE (source), result, &error);

  if (payload == NULL)
    {
      g_prefix_error (&error, _("Waiting for the agent to reboot: "));
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  shoal_step_context_log_literal (ctx, SHOAL_DEVICE (source), "reboot", SHOAL_JOURNAL_RESULT_OK,
                                  _("The agent reboots the device; the network boot service now boots its local disk"));
  g_task_return_boolean (task, TRUE);
}

static const gchar *
member_string (JsonObject  *obj,
               const gchar *name)
{
  JsonNode *node = obj != NULL ? json_object_get_member (obj, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return "?";
  return json_node_get_string (node);
}

static gint64
member_int (JsonObject  *obj,
            const gchar *name)
{
  JsonNode *node = obj != NULL ? json_object_get_member (obj, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return -1;
  return json_node_get_int (node);
}

/* "image-sha256 <hex>" of the manifest of image @id in the store, or NULL */
static gchar *
manifest_image_sha256 (ShoalStepContext *ctx,
                       const gchar      *id)
{
  ShoalContext *context = shoal_step_context_get_context (ctx);
  g_autofree gchar *fallback = g_build_filename (shoal_context_get_state_dir (context), "image-store", NULL);
  g_autofree gchar *store = shoal_context_get_config_string (context, "image-store", "path", fallback);
  g_autofree gchar *name = g_strconcat (id, ".manifest", NULL);
  g_autofree gchar *path = NULL;
  g_autofree gchar *text = NULL;
  const gchar *line;

  if (id == NULL || strlen (id) != 64 || strspn (id, "0123456789abcdef") != 64)
    return NULL;
  path = g_build_filename (store, "images", name, NULL);
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  line = strstr (text, "\nimage-sha256 ");
  if (line == NULL || strlen (line) < 15 + 64)
    return NULL;
  return g_strndup (line + 14, 64);
}

static void
written_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ShoalStepContext *ctx = g_task_get_task_data (task);
  ShoalDevice *device = SHOAL_DEVICE (source);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) payload = shoal_device_wait_event_finish (device, result, &error);
  g_autoptr(JsonNode) instruction = json_from_string ("{\"action\": \"reboot\"}", NULL);
  g_autofree gchar *sha = NULL;
  const gchar *how = _("reported by the agent");
  const gchar *id = "";
  g_autofree gchar *detail = NULL;
  JsonObject *obj;

  if (payload == NULL)
    {
      g_prefix_error (&error, _("Waiting for the agent to write the image: "));
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  obj = JSON_NODE_HOLDS_OBJECT (payload) ? json_node_get_object (payload) : NULL;
  sha = g_strdup (member_string (obj, "image_sha256"));
  if (g_str_equal (sha, "?"))
    {
      g_free (sha);
      sha = manifest_image_sha256 (ctx, member_string (obj, "image"));
      how = _("from the manifest of image ");
      id = member_string (obj, "image");
    }
  shoal_device_set_metadata (device, "image.sha256", sha);
  /* how the chunks got there (fields an older agent leaves out are not told) */
  if (member_int (obj, "multicast_chunks") >= 0)
    detail = g_strdup_printf (_("%lld chunks by multicast, %lld by unicast, %lld already on the disk"),
                              (long long) member_int (obj, "multicast_chunks"),
                              (long long) MAX (member_int (obj, "unicast_chunks"), 0),
                              (long long) MAX (member_int (obj, "kept_chunks"), 0));
  else if (member_int (obj, "chunks") >= 0)
    detail = g_strdup_printf (_("%lld chunks, %lld of them already on the disk"),
                              (long long) member_int (obj, "chunks"), (long long) MAX (member_int (obj, "kept_chunks"), 0));
  else
    detail = g_strdup (_("no chunk counts reported"));
  shoal_step_context_log (ctx, device, "image-written", SHOAL_JOURNAL_RESULT_OK,
                          _("Image written and verified on %s: %lld bytes, image sha256 %s (%s%s), mode %s (%s)"),
                          member_string (obj, "disk"), (long long) member_int (obj, "bytes"), sha != NULL ? sha : _("unknown"),
                          how, id, member_string (obj, "mode"), detail);
  /* what the agent did to the image's partition table to fit the disk
   * (its backup GPT moved to the disk's end), or why it left it alone */
  if (!g_str_equal (member_string (obj, "partition_table"), "?"))
    shoal_step_context_log (ctx, device, "image-written", SHOAL_JOURNAL_RESULT_INFO,
                            _("Partition table on %s: %s"), member_string (obj, "disk"),
                            member_string (obj, "partition_table"));
  shoal_device_set_boot_action (device, SHOAL_BOOT_ACTION_LOCAL);
  shoal_device_wait_event_async (device, "rebooting", g_task_get_cancellable (task), rebooting_cb,
                                 g_object_ref (task));
  shoal_device_set_instruction (device, instruction);
}

static void
shoal_reboot_step_run_async (ShoalStep           *step,
                                 ShoalStepContext    *ctx,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (step, cancellable, callback, user_data);
  ShoalDevice *device = shoal_step_context_get_device (ctx);

  g_task_set_source_tag (task, shoal_reboot_step_run_async);
  g_task_set_task_data (task, g_object_ref (ctx), g_object_unref);
  shoal_device_wait_event_async (device, "image-written", cancellable, written_cb, g_steal_pointer (&task));
}

static void
shoal_reboot_step_iface_init (ShoalStepInterface *iface)
{
  iface->get_scope = shoal_reboot_step_get_scope;
  iface->get_phase = shoal_reboot_step_get_phase;
  iface->run_async = shoal_reboot_step_run_async;
}

static void
shoal_reboot_step_class_init (ShoalRebootStepClass *klass)
{
}

static void
shoal_reboot_step_class_finalize (ShoalRebootStepClass *klass)
{
}

static void
shoal_reboot_step_init (ShoalRebootStep *self)
{
}

void
shoal_reboot_step_register_types (GTypeModule *module)
{
  shoal_reboot_step_register_type (module);
}
