/* test-unicast-step.c: the unicast service inside a real controller (tokens,
 * refusals journalled) and the "unicast" step with a simulated agent that
 * fetches the image with curl
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <shoal.h>
#include <string.h>

#include "shoal-controller-private.h"
#include "shoal-image-files.h"
#include "shoal-unicast-service.h"
#include "shoal-unicast-step.h"

#define CHUNK 65536

/* The plugin types are dynamic: register them through a type module, as libpeas does */
#define TEST_TYPE_MODULE (test_module_get_type ())
G_DECLARE_FINAL_TYPE (TestModule, test_module, TEST, MODULE, GTypeModule)
struct _TestModule { GTypeModule parent_instance; };
G_DEFINE_TYPE (TestModule, test_module, G_TYPE_TYPE_MODULE)

static gboolean test_module_load (GTypeModule *module) { return TRUE; }
static void test_module_unload (GTypeModule *module) { }
static void test_module_init (TestModule *self) { }

static void
test_module_class_init (TestModuleClass *klass)
{
  G_TYPE_MODULE_CLASS (klass)->load = test_module_load;
  G_TYPE_MODULE_CLASS (klass)->unload = test_module_unload;
}

typedef struct {
  gchar             *state_dir;
  gchar             *root;
  gchar             *image_path;
  gchar             *id;
  gchar             *image_sha256;
  gsize              size;
  ShoalPluginEngine *engine;
  ShoalController   *controller;
  SoupServer        *server;
  gchar             *base_url;
  ShoalService      *service;
  ShoalDevice       *device;
  /* the simulated agent */
  const gchar       *agent_mode;
  GSubprocess       *curl;
  gchar             *out_path;
  GPtrArray         *journal;
} Fixture;

static void
rm_rf (const gchar *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *entry;

  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *child = g_build_filename (path, entry, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
write_image (Fixture *f)
{
  gsize len = 3 * CHUNK + 123;
  g_autofree guint8 *p = g_malloc0 (len);
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImageInfo) info = NULL;

  for (gsize i = 0; i < CHUNK; i++)
    p[i] = (guint8) g_rand_int (rand);
  for (gsize i = 2 * CHUNK; i < len; i++)
    p[i] = (guint8) g_rand_int (rand);
  f->size = len;
  f->image_path = g_build_filename (f->state_dir, "web.img", NULL);
  g_assert_true (g_file_set_contents (f->image_path, (gchar *) p, (gssize) len, NULL));
  f->id = shoal_image_files_import (f->root, f->image_path, "web", CHUNK, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  info = shoal_image_files_inspect (f->root, f->id, &error);
  g_assert_no_error (error);
  f->image_sha256 = g_strdup (info->image_sha256);
}

static void journal_appended (ShoalController   *controller,
                              ShoalDevice       *device,
                              ShoalJournalEntry *entry,
                              Fixture           *f);

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSList) uris = NULL;
  const gchar *macs[] = { "52:54:00:00:00:01", NULL };

  f->state_dir = g_dir_make_tmp ("shoal-unicast-step-XXXXXX", NULL);
  f->root = g_build_filename (f->state_dir, "image-store", NULL);
  write_image (f);

  f->engine = shoal_plugin_engine_new ();
  f->controller = shoal_controller_new (f->engine, f->state_dir);
  g_assert_true (shoal_controller_open (f->controller, &error));
  g_assert_no_error (error);
  f->server = soup_server_new (NULL, NULL);
  g_assert_true (soup_server_listen_local (f->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (f->server);
  f->base_url = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify) g_uri_unref);
  shoal_controller_set_http_server (f->controller, f->server, f->base_url);

  f->journal = g_ptr_array_new_with_free_func ((GDestroyNotify) shoal_journal_entry_unref);
  g_signal_connect (f->controller, "journal-appended", G_CALLBACK (journal_appended), f);
  f->service = g_object_new (SHOAL_TYPE_UNICAST_SERVICE, NULL);
  g_assert_true (shoal_service_start (f->service, shoal_controller_get_context (f->controller), &error));
  g_assert_no_error (error);
  f->device = shoal_controller_enroll_device (f->controller, "dev-1", macs, NULL, &error);
  g_assert_no_error (error);
  f->out_path = g_build_filename (f->state_dir, "written.img", NULL);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  shoal_service_stop (f->service);
  g_clear_object (&f->service);
  g_clear_object (&f->curl);
  shoal_controller_close (f->controller);
  g_clear_object (&f->controller);
  g_clear_object (&f->engine);
  soup_server_disconnect (f->server);
  g_clear_object (&f->server);
  rm_rf (f->state_dir);
  g_free (f->state_dir);
  g_free (f->root);
  g_free (f->image_path);
  g_free (f->id);
  g_free (f->image_sha256);
  g_free (f->base_url);
  g_free (f->out_path);
  g_ptr_array_unref (f->journal);
}

static gboolean
have_curl (void)
{
  g_autofree gchar *path = g_find_program_in_path ("curl");

  if (path == NULL)
    g_test_skip ("curl is not installed");
  return path != NULL;
}

static void
curl_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* HTTP status of a GET with @token (NULL: none) */
static guint
http_status (Fixture     *f,
             const gchar *token,
             const gchar *path)
{
  g_autofree gchar *url = g_strdup_printf ("%s%s", f->base_url, path);
  g_autofree gchar *auth = token != NULL ? g_strdup_printf ("Authorization: Bearer %s", token)
                                          : g_strdup ("X-No-Token: 1");
  const gchar *argv[] = { "curl", "-s", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}",
                          "-H", auth, url, NULL };
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *out = NULL;
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (proc, NULL, NULL, curl_done, &result);
  while (result == NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (g_subprocess_communicate_utf8_finish (proc, result, &out, NULL, &error));
  return (guint) g_ascii_strtoull (out, NULL, 10);
}

static void
journal_appended (ShoalController   *controller,
                  ShoalDevice       *device,
                  ShoalJournalEntry *entry,
                  Fixture           *f)
{
  g_ptr_array_add (f->journal, shoal_journal_entry_ref (entry));
}

static gboolean
journal_find (Fixture     *f,
              const gchar *operation,
              const gchar *text)
{
  for (guint i = 0; i < f->journal->len; i++)
    {
      ShoalJournalEntry *e = g_ptr_array_index (f->journal, i);

      if (g_strcmp0 (shoal_journal_entry_get_operation (e), operation) == 0 &&
          strstr (shoal_journal_entry_get_message (e), text) != NULL)
        return TRUE;
    }
  return FALSE;
}

/* journal-appended comes once the entry is durable: wait for it (5 s at most) */
static gboolean
journal_has (Fixture     *f,
             const gchar *operation,
             const gchar *text)
{
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (!journal_find (f, operation, text) && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  return journal_find (f, operation, text);
}

static void
test_service_tokens (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree gchar *manifest = g_strdup_printf ("/images/%s/manifest", f->id);
  const gchar *token = shoal_device_get_token (f->device);

  if (!have_curl ())
    return;
  g_assert_nonnull (token);
  g_assert_cmpuint (http_status (f, NULL, manifest), ==, 401);
  g_assert_cmpuint (http_status (f, "not-a-token", manifest), ==, 401);
  /* a known device that is not deploying: refused and journalled */
  g_assert_cmpuint (http_status (f, token, manifest), ==, 403);
  g_assert_true (journal_has (f, "refused", "not deploying"));
  shoal_device_set_state (f->device, SHOAL_DEVICE_STATE_TRANSFER);
  shoal_device_set_metadata (f->device, "image.id", f->id);
  g_assert_cmpuint (http_status (f, token, manifest), ==, 200);
  g_assert_true (journal_has (f, "fetch", "manifest of image"));
}

/* A deploying device is served the image its deployment sends (image.id)
 * and no other: an agent still fetching a cancelled deployment's image
 * once the device is deployed again is refused. Before, any image was
 * served to a deploying device, and the old image was written while the
 * new deployment ran */
static void
test_service_current_image (Fixture       *f,
                            gconstpointer  data)
{
  g_autofree gchar *manifest = g_strdup_printf ("/images/%s/manifest", f->id);
  g_autofree gchar *raw = g_strdup_printf ("/images/%s/raw", f->id);
  g_autofree gchar *chunk = NULL;
  g_autoptr(ShoalManifest) m = NULL;
  g_autoptr(GError) error = NULL;
  const gchar *token = shoal_device_get_token (f->device);
  const gchar *other = "5ee4eca0000000000000000000000000000000000000000000000000000000ff";
  char hex[65];

  if (!have_curl ())
    return;
  m = shoal_image_files_load_manifest (f->root, f->id, &error);
  g_assert_no_error (error);
  shoal_manifest_digest_to_hex (shoal_manifest_chunk_digest (m, 0), hex);
  chunk = g_strdup_printf ("/images/%s/chunks/%s", f->id, hex);
  shoal_device_set_state (f->device, SHOAL_DEVICE_STATE_TRANSFER);
  /* no image chosen yet by this deployment */
  g_assert_cmpuint (http_status (f, token, chunk), ==, 403);
  g_assert_true (journal_has (f, "refused", "sends no image yet"));
  /* another image chosen */
  shoal_device_set_metadata (f->device, "image.id", other);
  g_assert_cmpuint (http_status (f, token, manifest), ==, 403);
  g_assert_cmpuint (http_status (f, token, chunk), ==, 403);
  g_assert_cmpuint (http_status (f, token, raw), ==, 403);
  g_assert_true (journal_has (f, "refused", "its deployment sends image 5ee4eca"));
  /* its own */
  shoal_device_set_metadata (f->device, "image.id", f->id);
  g_assert_cmpuint (http_status (f, token, chunk), ==, 200);
  g_assert_cmpuint (http_status (f, token, manifest), ==, 200);
}

/* --- the step, with a simulated agent -------------------------------------------- */

static void
agent_fetched (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Fixture *f = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) payload = NULL;
  g_autofree gchar *data = NULL;
  gsize len = 0;
  guint8 digest[32];
  char hex[65];

  g_assert_true (g_subprocess_wait_check_finish (G_SUBPROCESS (source), result, &error));
  g_assert_no_error (error);
  g_assert_true (g_file_get_contents (f->out_path, &data, &len, NULL));
  g_assert_cmpuint (len, ==, f->size);
  shoal_manifest_digest (data, len, digest);
  shoal_manifest_digest_to_hex (digest, hex);
  g_assert_cmpstr (hex, ==, f->image_sha256);
  shoal_device_set_progress (f->device, 0.6);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "bytes");
  json_builder_add_int_value (b, g_strcmp0 (f->agent_mode, "short") == 0 ? (gint64) len - 1 : (gint64) len);
  json_builder_set_member_name (b, "image");
  json_builder_add_string_value (b, f->id);
  json_builder_end_object (b);
  payload = json_builder_get_root (b);
  shoal_device_post_event (f->device, "image-written", payload);
}

static void
post_error (ShoalDevice *device,
            const gchar *action,
            const gchar *message)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) payload = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "action");
  json_builder_add_string_value (b, action);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, message);
  json_builder_end_object (b);
  payload = json_builder_get_root (b);
  shoal_device_post_event (device, "error", payload);
}

static void
post_disk_error (gpointer device)
{
  post_error (device, "unicast-receive", "no disk found to write");
}

/* The agent: reads its instruction, fetches the raw image with curl */
static void
instruction_cb (ShoalDevice *device,
                GParamSpec  *pspec,
                Fixture     *f)
{
  JsonNode *node = shoal_device_get_instruction (device);
  JsonObject *ins = node != NULL ? json_node_get_object (node) : NULL;
  g_autofree gchar *expected = g_strdup_printf ("%s/images/%s/manifest", f->base_url, f->id);
  g_autofree gchar *raw = NULL;
  g_autofree gchar *auth = NULL;
  g_autoptr(GError) error = NULL;

  if (ins == NULL)
    return;
  g_assert_cmpstr (json_object_get_string_member (ins, "action"), ==, "unicast-receive");
  g_assert_cmpstr (json_object_get_string_member (ins, "image"), ==, f->id);
  g_assert_cmpstr (json_object_get_string_member (ins, "manifest"), ==, expected);
  g_assert_cmpint (json_object_get_int_member (ins, "size"), ==, (gint64) f->size);
  /* while the agent fetches it, the image is not removable */
  g_assert_false (shoal_image_files_remove (f->root, f->id, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);
  g_clear_error (&error);
  if (g_strcmp0 (f->agent_mode, "fail") == 0)
    {
      /* an error of another action first (ignored), ours a little later */
      post_error (device, "inventory", "an older error of another action");
      g_timeout_add_once (100, post_disk_error, device);
      return;
    }
  raw = g_strdup_printf ("%s/images/%s/raw", f->base_url, f->id);
  auth = g_strdup_printf ("Authorization: Bearer %s", shoal_device_get_token (device));
  f->curl = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, &error, "curl", "-s", "-f", "--max-time", "20",
                              "-H", auth, "-o", f->out_path, raw, NULL);
  g_assert_no_error (error);
  g_subprocess_wait_check_async (f->curl, NULL, agent_fetched, f);
}

typedef struct {
  gboolean  done;
  gboolean  ok;
  GError   *error;
} RunData;

static void
run_done (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  RunData *data = user_data;

  data->ok = shoal_step_run_finish (SHOAL_STEP (source), result, &data->error);
  data->done = TRUE;
}

static gboolean
run_step (Fixture      *f,
          const gchar  *recipe_json,
          GError      **error)
{
  g_autoptr(ShoalStep) step = g_object_new (SHOAL_TYPE_UNICAST_STEP, NULL);
  g_autoptr(ShoalRecipe) recipe = shoal_recipe_new_from_data (recipe_json, -1, "test.json", error);
  g_autoptr(GPtrArray) devices = g_ptr_array_new ();
  g_autoptr(ShoalStepContext) ctx = NULL;
  RunData data = { 0 };
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  gulong id;

  g_assert_nonnull (recipe);
  g_assert_cmpint (shoal_step_get_phase (step), ==, SHOAL_STEP_PHASE_TRANSFER);
  g_assert_cmpint (shoal_step_get_scope (step), ==, SHOAL_STEP_SCOPE_DEVICE);
  g_ptr_array_add (devices, f->device);
  /* each run stands for a new deployment, which starts with no stale events */
  shoal_device_clear_events (f->device);
  ctx = shoal_step_context_new (shoal_controller_get_context (f->controller), recipe, "unicast",
                                NULL, devices, NULL);
  shoal_device_set_state (f->device, SHOAL_DEVICE_STATE_TRANSFER);
  id = g_signal_connect (f->device, "notify::instruction", G_CALLBACK (instruction_cb), f);
  shoal_step_run_async (step, ctx, NULL, run_done, &data);
  while (!data.done && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_signal_handler_disconnect (f->device, id);
  g_assert_true (data.done);
  if (data.error != NULL)
    g_propagate_error (error, data.error);
  return data.ok;
}

#define RECIPE(image) "{\"name\": \"web\", \"image\": " image ", \"steps\": [\"unicast\"]}"

static void
test_step_ok (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  if (!have_curl ())
    return;
  g_assert_true (run_step (f, RECIPE ("{\"name\": \"web\"}"), &error));
  g_assert_no_error (error);
  g_assert_cmpstr (shoal_device_get_metadata (f->device, "image.id"), ==, f->id);
  g_assert_cmpstr (shoal_device_get_metadata (f->device, "image.sha256"), ==, f->image_sha256);
  g_assert_true (journal_has (f, "unicast", "by unicast from"));
  g_assert_true (journal_has (f, "unicast", "50 % of image web written"));
  g_assert_true (journal_has (f, "unicast", "written:"));
  g_assert_true (journal_has (f, "fetch", "raw image of image"));
  /* the step has let go of it */
  g_assert_true (shoal_image_files_remove (f->root, f->id, NULL, &error));
  g_assert_no_error (error);
}

static void
test_step_pinned_and_file (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *pinned = g_strdup_printf (RECIPE ("{\"name\": \"web\", \"id\": \"%s\"}"), f->id);
  g_autofree gchar *wrong_name = g_strdup_printf (RECIPE ("{\"name\": \"other\", \"id\": \"%s\"}"), f->id);
  g_autofree gchar *file = g_strdup_printf (RECIPE ("{\"name\": \"fromfile\", \"file\": \"%s\"}"), f->image_path);

  if (!have_curl ())
    return;
  g_assert_true (run_step (f, pinned, &error));
  g_assert_no_error (error);

  g_assert_false (run_step (f, wrong_name, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
  g_clear_error (&error);

  /* a file: imported (1 MiB chunks this time: another manifest, another id) */
  g_clear_pointer (&f->id, g_free);
  f->id = NULL;
  {
    g_autoptr(GError) import_error = NULL;

    f->id = shoal_image_files_import (f->root, f->image_path, "fromfile", 0, NULL, NULL, NULL, NULL, &import_error);
    g_assert_no_error (import_error);
  }
  g_assert_true (run_step (f, file, &error));
  g_assert_no_error (error);
  /* the next device of the recipe: the file is known, not imported again */
  g_assert_true (run_step (f, file, &error));
  g_assert_no_error (error);
}

static void
test_step_failures (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  if (!have_curl ())
    return;
  f->agent_mode = "fail";
  g_assert_false (run_step (f, RECIPE ("{\"name\": \"web\"}"), &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "no disk found"));
  g_assert_true (journal_has (f, "unicast", "could not write"));
  g_clear_error (&error);

  f->agent_mode = "short";
  g_assert_false (run_step (f, RECIPE ("{\"name\": \"web\"}"), &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_clear_error (&error);

  f->agent_mode = NULL;
  g_assert_false (run_step (f, RECIPE ("{\"name\": \"missing\"}"), &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_true (journal_has (f, "unicast", "No image to send"));
}

int
main (int argc, char **argv)
{
  GTypeModule *module;

  g_test_init (&argc, &argv, NULL);
  module = g_object_new (TEST_TYPE_MODULE, NULL);
  g_type_module_use (module);
  shoal_unicast_step_register_types (module);
  shoal_unicast_service_register_types (module);
  g_test_add ("/shoal/unicast/service-tokens", Fixture, NULL, fixture_setup, test_service_tokens, fixture_teardown);
  g_test_add ("/shoal/unicast/service-current-image", Fixture, NULL, fixture_setup, test_service_current_image,
              fixture_teardown);
  g_test_add ("/shoal/unicast/step", Fixture, NULL, fixture_setup, test_step_ok, fixture_teardown);
  g_test_add ("/shoal/unicast/step-pinned-and-file", Fixture, NULL, fixture_setup, test_step_pinned_and_file, fixture_teardown);
  g_test_add ("/shoal/unicast/step-failures", Fixture, NULL, fixture_setup, test_step_failures, fixture_teardown);
  return g_test_run ();
}
