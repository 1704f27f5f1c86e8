/* shoal-pxe-routes.c: the HTTP side of network boot
 *
 *   /boot/ipxe?mac=M[&uuid=U]  the device's iPXE script: deploy (kernel,
 *                              initrd and command line of its recipe's
 *                              "boot" object), local disk, or wait
 *   /boot/files/NAME           boot files (Range supported); the kernel
 *                              and initrd URLs carry ?token=T&part=P so
 *                              the device's "booted" event can be posted
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <unistd.h>

#include <fcntl.h>

#include <string.h>

#include "shoal-pxe-http.h"
#include "shoal-pxe-ipxe.h"
#include "shoal-pxe-state.h"

static void
respond_text (SoupServerMessage *msg, guint status, const gchar *text)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_COPY, text, strlen (text));
}

static gchar *
render (ShoalPxeState *state, const gchar *name, const gchar * const *vars, GError **error)
{
  g_autofree gchar *text = shoal_pxe_ipxe_load_template (state->template_dir, name, error);

  if (text == NULL)
    return NULL;
  return shoal_pxe_ipxe_render (text, vars, error);
}

/* a boot file URL: ours carry the device's token and which part it is */
static gchar *
part_url (ShoalPxeState *state, const gchar *path, const gchar *device_token, const gchar *part)
{
  g_autofree gchar *files = g_strdup_printf ("%s/boot/files", state->http_base);
  g_autofree gchar *url = shoal_pxe_ipxe_file_url (files, path);
  g_autofree gchar *token = g_uri_escape_string (device_token, NULL, FALSE);

  if (!g_str_has_prefix (url, files))
    return g_steal_pointer (&url);
  return g_strdup_printf ("%s?token=%s&part=%s", url, token, part);
}

static gchar *
cmdline_for (ShoalPxeState *state, JsonObject *boot, ShoalDevice *device, const gchar *token)
{
  const gchar *extra = json_object_get_string_member_with_default (boot, "cmdline", "");

  return g_strdup_printf ("%s%sshoal.server=%s shoal.token=%s shoal.device=%s", extra,
                          extra[0] != '\0' ? " " : "", shoal_context_get_server_url (state->context),
                          token, shoal_device_get_id (device));
}

/* the deploy script, or the wait script when the recipe has nothing to
 * boot; @carries_token is set when the script holds the device's token */
static gchar *
deploy_script (ShoalPxeState *state, ShoalDevice *device, const gchar *script_url,
               gboolean *carries_token, GError **error)
{
  const gchar *recipe_name = shoal_device_get_recipe (device);
  ShoalRecipe *recipe = recipe_name != NULL ? shoal_context_lookup_recipe (state->context, recipe_name) : NULL;
  JsonObject *boot = recipe != NULL ? shoal_recipe_get_boot (recipe) : NULL;
  const gchar *kernel = boot != NULL ? json_object_get_string_member_with_default (boot, "kernel", NULL) : NULL;
  const gchar *initrd = boot != NULL ? json_object_get_string_member_with_default (boot, "initrd", NULL) : NULL;
  g_autofree gchar *kernel_url = NULL;
  g_autofree gchar *initrd_url = NULL;
  g_autofree gchar *initrd_name = NULL;
  g_autofree gchar *cmdline = NULL;
  g_autofree gchar *token = NULL;

  if (kernel == NULL || initrd == NULL)
    {
      const gchar *reason = recipe == NULL ? "no recipe assigned" : "the recipe has no boot kernel and initrd";
      const gchar *vars[] = { "DEVICE", shoal_device_get_id (device), "REASON", reason,
                              "SCRIPT_URL", script_url, NULL };
      return render (state, "wait", vars, error);
    }
  /* the same token until the agent has used it, then a new one each
   * time (the one before refused): someone who asks for the script with
   * the device's MAC address locks its agent out rather than share its
   * token unseen */
  token = shoal_context_issue_boot_token (state->context, device);
  if (token == NULL)
    token = g_strdup ("");
  *carries_token = TRUE;
  kernel_url = part_url (state, kernel, token, "kernel");
  initrd_url = part_url (state, initrd, token, "initrd");
  initrd_name = shoal_pxe_ipxe_basename (initrd_url);
  cmdline = cmdline_for (state, boot, device, token);
  {
    const gchar *vars[] = { "DEVICE", shoal_device_get_id (device), "RECIPE", recipe_name,
                            "KERNEL_URL", kernel_url, "INITRD_URL", initrd_url,
                            "INITRD_NAME", initrd_name, "CMDLINE", cmdline,
                            "SCRIPT_URL", script_url, NULL };
    return render (state, "deploy", vars, error);
  }
}

static gchar *
script_for (ShoalPxeState *state, ShoalDevice *device, ShoalBootAction action,
            const gchar *script_url, gboolean *carries_token, GError **error)
{
  const gchar *vars[] = { "DEVICE", shoal_device_get_id (device), NULL };

  *carries_token = FALSE;
  if (action == SHOAL_BOOT_ACTION_LOCAL)
    return render (state, "local", vars, error);
  return deploy_script (state, device, script_url, carries_token, error);
}

/* A deploy script waiting for its token to be durable */
typedef struct {
  ShoalContext      *context;
  SoupServerMessage *msg;
  ShoalDevice       *device;
  gchar             *script;
  gchar             *held_back;  /* the wait script answered instead */
  gchar             *served;     /* the journal's "iPXE script served" */
  gulong             finished_id;
  gboolean           finished;   /* the client went away meanwhile */
} ScriptCommit;

static void
script_commit_free (ScriptCommit *job)
{
  g_clear_signal_handler (&job->finished_id, job->msg);
  g_clear_object (&job->msg);
  g_clear_object (&job->device);
  g_clear_object (&job->context);
  g_free (job->script);
  g_free (job->held_back);
  g_free (job->served);
  g_free (job);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ScriptCommit, script_commit_free)

static void
script_commit_finished_cb (SoupServerMessage *msg, ScriptCommit *job)
{
  job->finished = TRUE;
}

static void
script_committed_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(ScriptCommit) job = user_data;
  g_autoptr(GError) error = NULL;

  if (!shoal_context_commit_finish (job->context, result, &error))
    {
      /* a token nobody can read back after a restart would lock the
       * machine's agent out: the machine asks again in 15 s */
      shoal_device_log (job->device, "pxe", "http", SHOAL_JOURNAL_RESULT_FAILED,
                        "iPXE script held back: its token cannot be recorded now: %s", error->message);
      if (!job->finished)
        respond_text (job->msg, SOUP_STATUS_SERVICE_UNAVAILABLE, job->held_back);
    }
  else
    {
      shoal_device_log_literal (job->device, "pxe", "http", SHOAL_JOURNAL_RESULT_OK, job->served);
      if (!job->finished)
        respond_text (job->msg, SOUP_STATUS_OK, job->script);
    }
  if (!job->finished)
    soup_server_message_unpause (job->msg);
}

/* Answers @script once the token it carries is durable: answered before,
 * a crash of shoald between the answer and the store's commit would leave
 * the store with the token before, and the machine with one nobody knows
 * after the restart (a token re-issued to a machine whose agent claimed
 * the one before) */
static void
respond_after_commit (ShoalPxeState *state, SoupServerMessage *msg, ShoalDevice *device,
                      const gchar *script_url, gchar *script, gchar *served)
{
  ScriptCommit *job = g_new0 (ScriptCommit, 1);
  const gchar *vars[] = { "DEVICE", shoal_device_get_id (device),
                          "REASON", "its token cannot be recorded now", "SCRIPT_URL", script_url, NULL };

  job->context = g_object_ref (state->context);
  job->msg = g_object_ref (msg);
  job->device = g_object_ref (device);
  job->script = script;
  job->served = served;
  job->held_back = render (state, "wait", vars, NULL);
  if (job->held_back == NULL)
    job->held_back = g_strdup ("#!ipxe\nsleep 15\nreboot\n");
  job->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (script_commit_finished_cb), job);
  soup_server_message_pause (msg);
  shoal_context_commit_async (state->context, NULL, script_committed_cb, job);
}

static void
on_ipxe (SoupServer *server, SoupServerMessage *msg, const char *path,
         GHashTable *query, gpointer user_data)
{
  ShoalPxeState *state = user_data;
  const gchar *mac = query != NULL ? g_hash_table_lookup (query, "mac") : NULL;
  /* only a well-formed UUID goes on: the journal, shoalctl and the next
   * script URL would carry anything else as it came */
  g_autofree gchar *uuid = shoal_pxe_uuid_normalize (query != NULL ? g_hash_table_lookup (query, "uuid") : NULL);
  g_autofree gchar *lower = mac != NULL ? g_ascii_strdown (mac, -1) : NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *script_url = NULL;
  g_autofree gchar *script = NULL;
  g_autofree gchar *served = NULL;
  gboolean carries_token;
  ShoalDevice *device;
  ShoalBootAction action;

  if (lower == NULL || strlen (lower) != 17)
    {
      respond_text (msg, SOUP_STATUS_BAD_REQUEST, "#!ipxe\necho shoal: the request names no MAC address\n");
      return;
    }
  device = shoal_context_device_seen (state->context, lower, uuid, "http", &error);
  if (device == NULL && g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_EXISTS))
    {
      /* its MAC and UUID name different devices (journaled on them): it
       * is deployed as neither, and boots its disk until the operator
       * sorts its identity out */
      g_info ("iPXE script for %s: local boot: %s", lower, error->message);
      respond_text (msg, SOUP_STATUS_OK, "#!ipxe\n"
                    "echo shoal: the MAC and UUID of this machine belong to different devices: "
                    "not deployed, see their journals\n"
                    "iseq ${platform} efi && exit ||\n"
                    "sanboot --no-describe --drive 0x80 || exit\n");
      return;
    }
  if (device == NULL && g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_BUSY))
    {
      /* discovery over its limits: the machine asks again at its next boot */
      respond_text (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "#!ipxe\necho shoal: not enrolled now, try later\nexit\n");
      return;
    }
  if (device == NULL)
    {
      respond_text (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, error->message);
      return;
    }
  action = shoal_context_get_boot_action (state->context, device);
  if (action == SHOAL_BOOT_ACTION_IGNORE)
    {
      shoal_device_log (device, "pxe", "http", SHOAL_JOURNAL_RESULT_INFO, "iPXE script refused: ignored device");
      respond_text (msg, SOUP_STATUS_FORBIDDEN, "#!ipxe\nexit\n");
      return;
    }
  script_url = shoal_pxe_boot_script_url (&state->boot, lower, uuid);
  script = script_for (state, device, action, script_url, &carries_token, &error);
  if (script == NULL)
    {
      shoal_device_log (device, "pxe", "http", SHOAL_JOURNAL_RESULT_FAILED, "iPXE script: %s", error->message);
      respond_text (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, error->message);
      return;
    }
  served = g_strdup_printf ("iPXE script served (%s) to %s%s%s", shoal_boot_action_to_string (action),
                            lower, uuid != NULL ? ", uuid " : "", uuid != NULL ? uuid : "");
  if (carries_token)
    {
      respond_after_commit (state, msg, device, script_url, g_steal_pointer (&script),
                            g_steal_pointer (&served));
      return;
    }
  shoal_device_log_literal (device, "pxe", "http", SHOAL_JOURNAL_RESULT_OK, served);
  respond_text (msg, SOUP_STATUS_OK, script);
}

static void
note_fetched (ShoalDevice *device, const gchar *part, const gchar *name)
{
  g_autofree gchar *key = g_strdup_printf ("pxe.%s", part);
  g_autoptr(JsonBuilder) builder = NULL;
  g_autoptr(JsonNode) payload = NULL;

  shoal_device_set_metadata (device, key, name);
  if (shoal_device_get_metadata (device, "pxe.kernel") == NULL ||
      shoal_device_get_metadata (device, "pxe.initrd") == NULL)
    return;
  builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "kernel");
  json_builder_add_string_value (builder, shoal_device_get_metadata (device, "pxe.kernel"));
  json_builder_set_member_name (builder, "initrd");
  json_builder_add_string_value (builder, shoal_device_get_metadata (device, "pxe.initrd"));
  json_builder_end_object (builder);
  payload = json_builder_get_root (builder);
  shoal_device_log (device, "pxe", "boot", SHOAL_JOURNAL_RESULT_OK, "agent loader fetched");
  shoal_device_set_metadata (device, "pxe.kernel", NULL);
  shoal_device_set_metadata (device, "pxe.initrd", NULL);
  shoal_device_post_event (device, "booted", payload);
}

static ShoalDevice *
device_for_file_request (ShoalPxeState *state, SoupServerMessage *msg, GHashTable *query)
{
  const gchar *token = query != NULL ? g_hash_table_lookup (query, "token") : NULL;
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);
  g_autofree gchar *ip = NULL;

  if (token != NULL && token[0] != '\0')
    return shoal_context_lookup_device_by_token (state->context, token);
  if (!G_IS_INET_SOCKET_ADDRESS (remote))
    return NULL;
  ip = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
  return shoal_pxe_policy_device_for_ip (state, ip);
}

static void
on_files (SoupServer *server, SoupServerMessage *msg, const char *path,
          GHashTable *query, gpointer user_data)
{
  ShoalPxeState *state = user_data;
  const gchar *name = path + strlen ("/boot/files");
  const gchar *part = query != NULL ? g_hash_table_lookup (query, "part") : NULL;
  ShoalDevice *device = device_for_file_request (state, msg, query);
  g_autoptr(GError) error = NULL;
  gboolean ok;

  while (*name == '/')
    name++;
  ok = shoal_pxe_http_serve_file (msg, state->files_fd, name, &error);
  if (!ok)
    {
      g_autofree gchar *loader = shoal_pxe_policy_loader_path (state, name);
      g_autofree gchar *dir = loader != NULL ? g_path_get_dirname (loader) : NULL;
      g_autofree gchar *base = loader != NULL ? g_path_get_basename (loader) : NULL;
      gint dir_fd = dir != NULL ? open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

      if (dir_fd >= 0)
        {
          g_clear_error (&error);
          ok = shoal_pxe_http_serve_file (msg, dir_fd, base, &error);
          close (dir_fd);
        }
    }
  if (!ok)
    respond_text (msg, g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND)
                       ? SOUP_STATUS_NOT_FOUND : SOUP_STATUS_FORBIDDEN, error->message);
  if (device == NULL)
    return;
  shoal_device_log (device, "pxe", "http", ok ? SHOAL_JOURNAL_RESULT_OK : SHOAL_JOURNAL_RESULT_FAILED,
                    "GET /boot/files/%s: %u", name, soup_server_message_get_status (msg));
  if (ok && soup_server_message_get_status (msg) == SOUP_STATUS_OK &&
      (g_strcmp0 (part, "kernel") == 0 || g_strcmp0 (part, "initrd") == 0))
    note_fetched (device, part, name);
}

gboolean
shoal_pxe_routes_register (ShoalPxeState *state, GError **error)
{
  return shoal_context_add_http_handler (state->context, "/boot/ipxe", on_ipxe, state, NULL, error) &&
         shoal_context_add_http_handler (state->context, "/boot/files", on_files, state, NULL, error);
}

void
shoal_pxe_routes_unregister (ShoalPxeState *state)
{
  shoal_context_remove_http_handler (state->context, "/boot/ipxe");
  shoal_context_remove_http_handler (state->context, "/boot/files");
}
