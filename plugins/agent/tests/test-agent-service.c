/* test-agent-service.c: the "agent" step and GET /agent/v1/agent inside a
 * real controller (module loaded by the plugin engine), on loopback
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <shoal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sa-http.h"

typedef struct {
  gchar           *tmp;
  ShoalController *controller;
  SoupServer      *server;
  gchar           *url;
} Fixture;

static void
write_file (const gchar *dir, const gchar *name, const gchar *text)
{
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  g_autofree gchar *parent = g_path_get_dirname (path);

  g_mkdir_with_parents (parent, 0755);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr(ShoalPluginEngine) engine = shoal_plugin_engine_new ();
  g_autofree gchar *plugins = NULL;
  g_autofree gchar *link = NULL;
  g_autofree gchar *target = g_build_filename (SHOAL_BUILD_PLUGINDIR, "agent", NULL);
  g_autofree gchar *state = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) sa = g_inet_socket_address_new (lo, 0);
  GSList *uris;

  f->tmp = g_dir_make_tmp ("shoal-agent-service-XXXXXX", &error);
  g_assert_no_error (error);
  plugins = g_build_filename (f->tmp, "plugins", NULL);
  link = g_build_filename (plugins, "agent", NULL);
  g_mkdir_with_parents (plugins, 0755);
  g_assert_cmpint (symlink (target, link), ==, 0);
  shoal_plugin_engine_add_search_path (engine, plugins);
  shoal_plugin_engine_load_all (engine);
  state = g_build_filename (f->tmp, "state", NULL);
  f->controller = shoal_controller_new (engine, state);
  g_assert_true (shoal_controller_open (f->controller, &error));
  f->server = soup_server_new (NULL, NULL);
  g_assert_true (soup_server_listen (f->server, sa, 0, &error));
  uris = soup_server_get_uris (f->server);
  f->url = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  shoal_controller_set_http_server (f->controller, f->server, f->url);
  g_assert_true (shoal_controller_start_services (f->controller, &error));
  g_assert_no_error (error);

  /* a fake kernel and agent binary */
  write_file (f->tmp, "kernel/lib/modules/9.9.9-test/modules.alias", "alias pci:v00001111d*sv*sd*bc*sc*i* nic_drv\n");
  write_file (f->tmp, "kernel/lib/modules/9.9.9-test/modules.dep", "kernel/nic_drv.ko: kernel/base.ko\nkernel/base.ko:\n");
  write_file (f->tmp, "kernel/lib/modules/9.9.9-test/kernel/nic_drv.ko", "NIC");
  write_file (f->tmp, "kernel/lib/modules/9.9.9-test/kernel/base.ko", "BASE");
  write_file (f->tmp, "shoal-agent", "fake agent");
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_autofree gchar *rm = g_strdup_printf ("rm -rf %s", f->tmp);

  soup_server_disconnect (f->server);
  g_clear_object (&f->server);
  shoal_controller_close (f->controller);
  g_clear_object (&f->controller);
  g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
  g_free (f->tmp);
  g_free (f->url);
}

typedef struct {
  SaHttpRequest  req;
  SaHttpResponse resp;
  int            rc;
  gboolean       done;
} Fetch;

static gpointer
fetch_thread (gpointer data)
{
  Fetch *fetch = data;
  char err[256];

  fetch->rc = sa_http_do (&fetch->req, &fetch->resp, err, sizeof err);
  g_atomic_int_set (&fetch->done, TRUE);
  g_main_context_wakeup (NULL);
  return NULL;
}

/* The blocking client in a thread while the main loop serves */
static void
fetch_agent (Fixture *f, const gchar *method, const gchar *token, Fetch *fetch)
{
  g_autofree gchar *url = g_strdup_printf ("%s/agent/v1/agent", f->url);
  GThread *thread;

  memset (fetch, 0, sizeof *fetch);
  fetch->req = (SaHttpRequest) { .method = method, .url = url, .token = token, .timeout_ms = 10000 };
  thread = g_thread_new ("fetch", fetch_thread, fetch);
  while (!g_atomic_int_get (&fetch->done))
    g_main_context_iteration (NULL, TRUE);
  g_thread_join (thread);
  fetch->req.url = NULL;
  g_assert_cmpint (fetch->rc, ==, 0);
}

typedef struct {
  gboolean  done;
  gboolean  ok;
  GError   *error;
} RunData;

static void
run_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  RunData *data = user_data;

  data->ok = shoal_step_run_finish (SHOAL_STEP (source), result, &data->error);
  data->done = TRUE;
}

static void
commit_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  gboolean *done = user_data;

  shoal_controller_commit_finish (SHOAL_CONTROLLER (source), result, NULL);
  *done = TRUE;
}

/* how many of the device's journal entries say @needle */
static guint
journal_count (Fixture *f, ShoalDevice *device, const gchar *needle)
{
  g_autoptr(GPtrArray) journal = NULL;
  gboolean committed = FALSE;
  guint n = 0;

  /* the journal is written to the store asynchronously */
  shoal_controller_commit_async (f->controller, NULL, commit_cb, &committed);
  while (!committed)
    g_main_context_iteration (NULL, TRUE);
  journal = shoal_controller_get_journal (f->controller, device, 0, NULL);
  for (guint j = 0; journal != NULL && j < journal->len; j++)
    {
      if (strstr (shoal_journal_entry_get_message (g_ptr_array_index (journal, j)), needle) != NULL)
        n++;
    }
  return n;
}

static gboolean
journal_has (Fixture *f, ShoalDevice *device, const gchar *needle)
{
  return journal_count (f, device, needle) > 0;
}

static void
test_step_and_service (Fixture *f, gconstpointer data)
{
  ShoalPluginEngine *engine = shoal_controller_get_engine (f->controller);
  ShoalStep *step = shoal_plugin_engine_lookup_step (engine, "agent", NULL);
  const gchar *macs[] = { "52:54:00:aa:bb:01", NULL };
  g_autoptr(GError) error = NULL;
  ShoalDevice *device = shoal_controller_enroll_device (f->controller, "dev-1", macs, NULL, &error);
  g_autofree gchar *kernel = g_build_filename (f->tmp, "kernel/lib/modules/9.9.9-test", NULL);
  g_autofree gchar *agent = g_build_filename (f->tmp, "shoal-agent", NULL);
  g_autofree gchar *options_json = g_strdup_printf ("{\"agent-binary\":\"%s\",\"disk\":\"/dev/vdz\"}", agent);
  g_autoptr(JsonNode) options = json_from_string (options_json, NULL);
  g_autoptr(GPtrArray) devices = g_ptr_array_new ();
  g_autoptr(ShoalStepContext) ctx = NULL;
  g_autofree gchar *expected = NULL;
  RunData run = { FALSE, FALSE, NULL };
  Fetch fetch;

  g_assert_no_error (error);
  g_assert_nonnull (step);
  g_assert_cmpint (shoal_step_get_phase (step), ==, SHOAL_STEP_PHASE_AGENT);

  /* refusals */
  fetch_agent (f, "GET", NULL, &fetch);
  g_assert_cmpint (fetch.resp.status, ==, 401);
  g_assert_cmpstr (fetch.resp.body.data, ==, "missing device token");
  sa_http_response_clear (&fetch.resp);
  fetch_agent (f, "GET", "not-a-token", &fetch);
  g_assert_cmpint (fetch.resp.status, ==, 401);
  sa_http_response_clear (&fetch.resp);
  fetch_agent (f, "POST", shoal_device_get_token (device), &fetch);
  g_assert_cmpint (fetch.resp.status, ==, 405);
  sa_http_response_clear (&fetch.resp);
  fetch_agent (f, "GET", shoal_device_get_token (device), &fetch);
  g_assert_cmpint (fetch.resp.status, ==, 503);
  sa_http_response_clear (&fetch.resp);

  /* the step: no driver selection yet is an error */
  g_ptr_array_add (devices, device);
  ctx = shoal_step_context_new (shoal_controller_get_context (f->controller), NULL, "agent",
                                json_node_get_object (options), devices, NULL);
  shoal_step_run_async (step, ctx, NULL, run_done_cb, &run);
  while (!run.done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (run.ok);
  g_assert_error (run.error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_clear_error (&run.error);

  shoal_device_set_metadata (device, "drivers", "base nic_drv");
  shoal_device_set_metadata (device, "drivers.kernel", kernel);
  run.done = FALSE;
  shoal_step_run_async (step, ctx, NULL, run_done_cb, &run);
  while (shoal_device_get_metadata (device, "agent.sha256") == NULL && !run.done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (run.done);
  fetch_agent (f, "GET", shoal_device_get_token (device), &fetch);
  g_assert_cmpint (fetch.resp.status, ==, 200);
  g_assert_cmpuint (fetch.resp.body.len, ==, g_ascii_strtoull (shoal_device_get_metadata (device, "agent.size"), NULL, 10));
  expected = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) fetch.resp.body.data, fetch.resp.body.len);
  g_assert_cmpstr (expected, ==, shoal_device_get_metadata (device, "agent.sha256"));
  sa_http_response_clear (&fetch.resp);
  /* the step waits for the agent to run */
  for (guint i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_false (run.done);
  shoal_device_post_event (device, "agent-running", NULL);
  while (!run.done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (run.error);
  g_assert_true (run.ok);
  g_assert_true (journal_has (f, device, "agent generated: sha256 "));
  g_assert_true (journal_has (f, device, "agent sent ("));
  g_assert_true (journal_has (f, device, "agent running"));
}

/* three disks: an SSD, a large HDD, a USB stick */
static const gchar *inventory_json =
  "{\"version\":1,\"firmware\":{\"type\":\"uefi\"},\"cpu\":{},\"memory\":{},\"pci\":[],\"nics\":[],"
  "\"disks\":["
  "{\"name\":\"sda\",\"size_bytes\":4000787030016,\"model\":\"ST4000NM\",\"serial\":\"ZC1\",\"rotational\":true,\"removable\":false},"
  "{\"name\":\"sdb\",\"size_bytes\":64023257088,\"model\":\"Flash Disk\",\"rotational\":false,\"removable\":true},"
  "{\"name\":\"nvme0n1\",\"size_bytes\":480103981056,\"model\":\"SAMSUNG MZ7LH480\",\"serial\":\"S45\",\"rotational\":false,\"removable\":false}"
  "]}";

/* "agent-fetched" as the service posts it */
static void
post_fetched (ShoalDevice *device, const gchar *sha256)
{
  g_autofree gchar *json = g_strdup_printf ("{\"bytes\":1,\"sha256\":\"%s\"}", sha256);
  g_autoptr(JsonNode) payload = json_from_string (json, NULL);

  shoal_device_post_event (device, "agent-fetched", payload);
}

/* runs the agent step with options until it has generated the agent (TRUE)
 * or failed (FALSE, error set) */
static gboolean
run_agent_step (Fixture *f, ShoalDevice *device, const gchar *options_json, GError **error)
{
  ShoalStep *step = shoal_plugin_engine_lookup_step (shoal_controller_get_engine (f->controller), "agent", NULL);
  g_autoptr(JsonNode) options = json_from_string (options_json, NULL);
  g_autoptr(GPtrArray) devices = g_ptr_array_new ();
  g_autoptr(ShoalStepContext) ctx = NULL;
  g_autoptr(GError) invalid = NULL;
  RunData run = { FALSE, FALSE, NULL };

  g_assert_nonnull (options);
  if (!shoal_step_validate_options (step, json_node_get_object (options), &invalid))
    {
      g_propagate_error (error, g_steal_pointer (&invalid));
      return FALSE;
    }
  g_ptr_array_add (devices, device);
  ctx = shoal_step_context_new (shoal_controller_get_context (f->controller), NULL, "agent",
                                json_node_get_object (options), devices, NULL);
  shoal_device_set_metadata (device, "agent.sha256", NULL);
  shoal_step_run_async (step, ctx, NULL, run_done_cb, &run);
  while (shoal_device_get_metadata (device, "agent.sha256") == NULL && !run.done)
    g_main_context_iteration (NULL, TRUE);
  if (run.done)
    {
      g_propagate_error (error, run.error);
      return run.ok;
    }
  /* generated: let the step end (as the agent route and the agent would) */
  post_fetched (device, shoal_device_get_metadata (device, "agent.sha256"));
  shoal_device_post_event (device, "agent-running", NULL);
  while (!run.done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (run.error);
  return TRUE;
}

/* root device hints pick the disk from the inventory, and say so in the
 * journal; no match fails the step before any agent exists */
static void
test_root_device (Fixture *f, gconstpointer data)
{
  const gchar *macs[] = { "52:54:00:aa:bb:02", NULL };
  g_autoptr(GError) error = NULL;
  ShoalDevice *device = shoal_controller_enroll_device (f->controller, "dev-2", macs, NULL, &error);
  g_autofree gchar *kernel = g_build_filename (f->tmp, "kernel/lib/modules/9.9.9-test", NULL);
  g_autofree gchar *agent = g_build_filename (f->tmp, "shoal-agent", NULL);
  g_autofree gchar *ssd = g_strdup_printf ("{\"agent-binary\":\"%s\",\"root-device\":"
                                           "{\"rotational\":false,\"min-size-gib\":100}}", agent);
  g_autofree gchar *intel = g_strdup_printf ("{\"agent-binary\":\"%s\",\"root-device\":{\"model\":\"INTEL*\"}}", agent);
  g_autofree gchar *both = g_strdup_printf ("{\"disk\":\"/dev/sda\",\"root-device\":{\"name\":\"sd*\"}}");
  g_autofree gchar *typo = g_strdup_printf ("{\"root-device\":{\"size\":100}}");

  g_assert_no_error (error);
  shoal_device_set_metadata (device, "drivers", "base nic_drv");
  shoal_device_set_metadata (device, "drivers.kernel", kernel);
  /* hints without an inventory */
  g_assert_false (run_agent_step (f, device, ssd, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_clear_error (&error);
  shoal_device_set_inventory (device, json_from_string (inventory_json, NULL));

  /* an SSD of 100 GiB or more: not the HDD, not the removable stick */
  g_assert_true (run_agent_step (f, device, ssd, &error));
  g_assert_no_error (error);
  g_assert_true (journal_has (f, device, "the agent writes /dev/nvme0n1, 447.1 GiB, model “SAMSUNG MZ7LH480”"));

  /* no match: each disk and the hint it lacks */
  g_assert_false (run_agent_step (f, device, intel, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "sda (model), sdb (removable), nvme0n1 (model)"));
  g_clear_error (&error);

  /* recipes that cannot be right */
  g_assert_false (run_agent_step (f, device, both, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
  g_clear_error (&error);
  g_assert_false (run_agent_step (f, device, typo, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
  g_assert_nonnull (strstr (error->message, "“size”"));
}

/* an eMMC board as a loader reported it before it left out the eMMC's
 * hardware boot partitions (boot0 read-only, boot1 without "ro") and
 * RPMB partition; an empty card reader (size 0) and a write-protected
 * card (read-only), both smaller than the eMMC */
static const gchar *emmc_inventory_json =
  "{\"version\":1,\"firmware\":{\"type\":\"uefi\"},\"cpu\":{},\"memory\":{},\"pci\":[],\"nics\":[],"
  "\"disks\":["
  "{\"name\":\"mmcblk0\",\"size_bytes\":31268536320,\"rotational\":false,\"removable\":false,\"ro\":false},"
  "{\"name\":\"mmcblk0boot0\",\"size_bytes\":4194304,\"rotational\":false,\"removable\":false,\"ro\":true},"
  "{\"name\":\"mmcblk0boot1\",\"size_bytes\":4194304,\"rotational\":false,\"removable\":false},"
  "{\"name\":\"mmcblk0rpmb\",\"size_bytes\":4194304,\"rotational\":false,\"removable\":false},"
  "{\"name\":\"mmcblk1\",\"size_bytes\":0,\"rotational\":false,\"removable\":false},"
  "{\"name\":\"mmcblk2\",\"size_bytes\":7948206080,\"rotational\":false,\"removable\":false,\"ro\":true}"
  "]}";

/* root device hints on an eMMC board choose its user area, the smallest
 * disk that can hold a system: never a hardware boot or RPMB partition,
 * a read-only disk or one of size 0 */
static void
test_root_device_emmc (Fixture *f, gconstpointer data)
{
  const gchar *macs[] = { "52:54:00:aa:bb:03", NULL };
  g_autoptr(GError) error = NULL;
  ShoalDevice *device = shoal_controller_enroll_device (f->controller, "dev-3", macs, NULL, &error);
  g_autofree gchar *kernel = g_build_filename (f->tmp, "kernel/lib/modules/9.9.9-test", NULL);
  g_autofree gchar *agent = g_build_filename (f->tmp, "shoal-agent", NULL);
  g_autofree gchar *ssd = g_strdup_printf ("{\"agent-binary\":\"%s\",\"root-device\":{\"rotational\":false}}", agent);
  g_autofree gchar *mmc = g_strdup_printf ("{\"agent-binary\":\"%s\",\"root-device\":{\"name\":\"mmcblk*\"}}", agent);
  g_autofree gchar *big = g_strdup_printf ("{\"agent-binary\":\"%s\",\"root-device\":{\"min-size-gib\":64}}", agent);

  g_assert_no_error (error);
  shoal_device_set_metadata (device, "drivers", "base nic_drv");
  shoal_device_set_metadata (device, "drivers.kernel", kernel);
  shoal_device_set_inventory (device, json_from_string (emmc_inventory_json, NULL));

  g_assert_true (run_agent_step (f, device, ssd, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (journal_count (f, device, "the agent writes /dev/mmcblk0, 29.1 GiB"), ==, 1);
  g_assert_true (run_agent_step (f, device, mmc, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (journal_count (f, device, "the agent writes /dev/mmcblk0, 29.1 GiB"), ==, 2);
  g_assert_cmpuint (journal_count (f, device, "the agent writes "), ==, 2);

  /* no match: why each disk was not taken */
  g_assert_false (run_agent_step (f, device, big, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "mmcblk0 (min-size-gib), mmcblk0boot0 (eMMC boot partition), "
                                            "mmcblk0boot1 (eMMC boot partition), mmcblk0rpmb (RPMB partition), "
                                            "mmcblk1 (size 0), mmcblk2 (read-only)"));
}

static void
start_step (Fixture *f, ShoalDevice *device, const gchar *binary, RunData *run)
{
  ShoalStep *step = shoal_plugin_engine_lookup_step (shoal_controller_get_engine (f->controller), "agent", NULL);
  g_autofree gchar *agent = g_build_filename (f->tmp, binary, NULL);
  g_autofree gchar *options_json = g_strdup_printf ("{\"agent-binary\":\"%s\",\"disk\":\"/dev/vdz\"}", agent);
  g_autoptr(JsonNode) options = json_from_string (options_json, NULL);
  g_autoptr(GPtrArray) devices = g_ptr_array_new ();
  g_autoptr(ShoalStepContext) ctx = NULL;

  g_ptr_array_add (devices, device);
  ctx = shoal_step_context_new (shoal_controller_get_context (f->controller), NULL, "agent",
                                json_node_get_object (options), devices, NULL);
  *run = (RunData) { FALSE, FALSE, NULL };
  shoal_step_run_async (step, ctx, NULL, run_done_cb, run);
}

static void
finish_step (ShoalDevice *device, RunData *run)
{
  shoal_device_post_event (device, "agent-running", NULL);
  while (!run->done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (run->error);
  g_assert_true (run->ok);
}

/* enrolls @id, runs the step for it, fetches its agent and lets the
 * step finish; @part and @base: the two files it was made of */
static ShoalDevice *
deploy_agent (Fixture *f, const gchar *id, const gchar *mac, gchar **part, gchar **base)
{
  const gchar *macs[] = { mac, NULL };
  g_autoptr(GError) error = NULL;
  ShoalDevice *device = shoal_controller_enroll_device (f->controller, id, macs, NULL, &error);
  g_autofree gchar *kernel = g_build_filename (f->tmp, "kernel/lib/modules/9.9.9-test", NULL);
  RunData run;
  Fetch fetch;

  g_assert_no_error (error);
  shoal_device_set_metadata (device, "drivers", "base nic_drv");
  shoal_device_set_metadata (device, "drivers.kernel", kernel);
  start_step (f, device, "shoal-agent", &run);
  while (shoal_device_get_metadata (device, "agent.sha256") == NULL && !run.done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (run.error);
  fetch_agent (f, "GET", shoal_device_get_token (device), &fetch);
  g_assert_cmpint (fetch.resp.status, ==, 200);
  sa_http_response_clear (&fetch.resp);
  finish_step (device, &run);
  *part = g_strdup (shoal_device_get_metadata (device, "agent.device-part"));
  *base = g_strdup (shoal_device_get_metadata (device, "agent.base"));
  g_assert_true (g_file_test (*part, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (*base, G_FILE_TEST_IS_REGULAR));
  return device;
}

/* the device's part (it holds the device's token) goes when the device
 * is removed; the cached base, which others share, stays */
static void
test_remove_device (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *part = NULL;
  g_autofree gchar *base = NULL;

  deploy_agent (f, "dev-5", "52:54:00:aa:bb:05", &part, &base);
  g_assert_true (shoal_controller_remove_device (f->controller, "dev-5", &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (part, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (base, G_FILE_TEST_IS_REGULAR));
}

static void
touch (const gchar *path, const gchar *text, gint64 age_s)
{
  struct timespec times[2];

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  times[0].tv_sec = times[1].tv_sec = (time_t) (g_get_real_time () / G_USEC_PER_SEC - age_s);
  times[0].tv_nsec = times[1].tv_nsec = 0;
  g_assert_cmpint (utimensat (AT_FDCWD, path, times, 0), ==, 0);
}

/* At start the service deletes what no device needs: cache entries no
 * device's agent.base names (the newest kept for the next device), the
 * .tmp-<pid> of a build a crash cut, parts of devices removed while
 * shoald was not running, temporary parts; it keeps what devices name
 * and files it did not make */
static void
test_sweep (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *cache = g_build_filename (f->tmp, "state", "agent-cache", NULL);
  g_autofree gchar *agents = g_build_filename (f->tmp, "state", "agents", NULL);
  g_autoptr(ShoalPluginEngine) engine = NULL;
  g_autofree gchar *state = g_build_filename (f->tmp, "state", NULL);
  g_autofree gchar *part = NULL;
  g_autofree gchar *base = NULL;
  g_autofree gchar *base_tmp = NULL;
  g_autofree gchar *own_tmp = NULL;
  g_autofree gchar *old = g_build_filename (cache, "0ld.cpio.zst", NULL);
  g_autofree gchar *older = g_build_filename (cache, "0lder.cpio.gz", NULL);
  g_autofree gchar *newest = g_build_filename (cache, "n3west.cpio.zst", NULL);
  g_autofree gchar *stranger = g_build_filename (cache, "notes.txt", NULL);
  g_autofree gchar *ghost = g_build_filename (agents, "ghost.cpio.zst", NULL);
  g_autofree gchar *other_compression = g_build_filename (agents, "dev-6.cpio.gz", NULL);
  g_autofree gchar *part_tmp = g_build_filename (agents, "dev-6.cpio.zst.tmp-Ab12Cd", NULL);
  ShoalDevice *device = deploy_agent (f, "dev-6", "52:54:00:aa:bb:06", &part, &base);

  base_tmp = g_strdup_printf ("%s.tmp-%d", base, G_MAXINT);
  own_tmp = g_strdup_printf ("%s.tmp-%d", base, (gint) getpid ());
  /* the device's row, with its agent.* metadata, is written at its next
   * transition in the daemon; here, by a change of its boot action */
  g_assert_true (shoal_controller_set_boot_action (f->controller, device, SHOAL_BOOT_ACTION_IGNORE, "test", NULL,
                                                   &error));
  g_assert_no_error (error);
  touch (old, "old base", 86400);
  touch (older, "older base", 2 * 86400);
  touch (newest, "newest base", -100);   /* newer than dev-6's */
  touch (stranger, "not the cache's", 86400);
  touch (base_tmp, "cut", 3600);
  touch (own_tmp, "being built", 0);
  touch (ghost, "token=removed-device", 3600);
  touch (other_compression, "token=earlier", 3600);
  touch (part_tmp, "token=half", 3600);

  /* shoald restarts */
  engine = g_object_ref (shoal_controller_get_engine (f->controller));
  shoal_controller_close (f->controller);
  g_clear_object (&f->controller);
  f->controller = shoal_controller_new (engine, state);
  g_assert_true (shoal_controller_open (f->controller, &error));
  g_assert_no_error (error);
  shoal_controller_set_http_server (f->controller, f->server, f->url);
  g_assert_true (shoal_controller_start_services (f->controller, &error));
  g_assert_no_error (error);

  g_assert_true (g_file_test (base, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (part, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (newest, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (stranger, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (own_tmp, G_FILE_TEST_IS_REGULAR));
  g_assert_false (g_file_test (old, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (older, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (base_tmp, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (ghost, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (other_compression, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (part_tmp, G_FILE_TEST_EXISTS));
}

/* A second run of the step (a redeploy): the device gets 503, not the old
 * agent, until the new one is generated; an "agent-fetched" of the old
 * agent does not end the wait; the device part is replaced by a new file
 * made 0600, not rewritten in place */
static void
test_redeploy (Fixture *f, gconstpointer data)
{
  const gchar *macs[] = { "52:54:00:aa:bb:03", NULL };
  g_autoptr(GError) error = NULL;
  ShoalDevice *device = shoal_controller_enroll_device (f->controller, "dev-3", macs, NULL, &error);
  g_autofree gchar *kernel = g_build_filename (f->tmp, "kernel/lib/modules/9.9.9-test", NULL);
  g_autofree gchar *old_sha = NULL;
  g_autofree gchar *part = NULL;
  g_autofree gchar *fifo = g_build_filename (f->tmp, "agent-fifo", NULL);
  RunData run;
  Fetch fetch;
  GStatBuf st1, st2;
  int fd;

  g_assert_no_error (error);
  shoal_device_set_metadata (device, "drivers", "base nic_drv");
  shoal_device_set_metadata (device, "drivers.kernel", kernel);
  start_step (f, device, "shoal-agent", &run);
  while (shoal_device_get_metadata (device, "agent.sha256") == NULL)
    g_main_context_iteration (NULL, TRUE);
  fetch_agent (f, "GET", shoal_device_get_token (device), &fetch);
  g_assert_cmpint (fetch.resp.status, ==, 200);
  sa_http_response_clear (&fetch.resp);
  finish_step (device, &run);
  old_sha = g_strdup (shoal_device_get_metadata (device, "agent.sha256"));
  part = g_strdup (shoal_device_get_metadata (device, "agent.device-part"));
  g_assert_cmpint (g_stat (part, &st1), ==, 0);
  g_assert_cmpint (st1.st_mode & 0777, ==, 0600);

  /* the new deployment: another instruction serial, so another agent */
  shoal_device_set_instruction (device, json_from_string ("{\"action\":\"wait\"}", NULL));
  post_fetched (device, old_sha);
  /* the generation reads the agent binary from a FIFO: it waits until the
   * test writes it */
  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  start_step (f, device, "agent-fifo", &run);
  g_assert_null (shoal_device_get_metadata (device, "agent.sha256"));
  fetch_agent (f, "GET", shoal_device_get_token (device), &fetch);
  g_assert_cmpint (fetch.resp.status, ==, 503);
  sa_http_response_clear (&fetch.resp);
  fd = open (fifo, O_WRONLY);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, "fake agent", 10), ==, 10);
  close (fd);
  while (shoal_device_get_metadata (device, "agent.sha256") == NULL && !run.done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpstr (shoal_device_get_metadata (device, "agent.sha256"), !=, old_sha);
  /* the old agent's "agent-fetched" and an "agent-running" do not end the step */
  shoal_device_post_event (device, "agent-running", NULL);
  for (guint i = 0; i < 50; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_false (run.done);
  g_assert_cmpint (g_stat (part, &st2), ==, 0);
  g_assert_cmpint (st2.st_mode & 0777, ==, 0600);
  g_assert_cmpuint (st1.st_ino, !=, st2.st_ino);
  fetch_agent (f, "GET", shoal_device_get_token (device), &fetch);
  g_assert_cmpint (fetch.resp.status, ==, 200);
  sa_http_response_clear (&fetch.resp);
  while (!run.done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (run.error);
  g_assert_true (run.ok);
}

/* A multi-MB agent is sent whole and right; a device's downloads beyond
 * the limit get 429, and the limit frees up when they end */
static void
test_large_and_parallel (Fixture *f, gconstpointer data)
{
  const gchar *macs[] = { "52:54:00:aa:bb:04", NULL };
  g_autoptr(GError) error = NULL;
  ShoalDevice *device = shoal_controller_enroll_device (f->controller, "dev-4", macs, NULL, &error);
  g_autofree gchar *kernel = g_build_filename (f->tmp, "kernel/lib/modules/9.9.9-test", NULL);
  g_autofree gchar *big = g_build_filename (f->tmp, "big-agent", NULL);
  g_autofree gchar *request = NULL;
  g_autofree gchar *expected = NULL;
  g_autoptr(GRand) rand = g_rand_new_with_seed (4);
  g_autofree guint32 *words = g_new (guint32, (6 << 20) / 4);
  g_autoptr(GPtrArray) conns = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  RunData run;
  Fetch fetch;
  guint64 size;

  g_assert_no_error (error);
  for (guint i = 0; i < (6 << 20) / 4; i++)
    words[i] = g_rand_int (rand);
  g_assert_true (g_file_set_contents (big, (const gchar *) words, 6 << 20, NULL));
  shoal_device_set_metadata (device, "drivers", "base nic_drv");
  shoal_device_set_metadata (device, "drivers.kernel", kernel);
  start_step (f, device, "big-agent", &run);
  while (shoal_device_get_metadata (device, "agent.sha256") == NULL && !run.done)
    g_main_context_iteration (NULL, TRUE);
  size = g_ascii_strtoull (shoal_device_get_metadata (device, "agent.size"), NULL, 10);
  g_assert_cmpuint (size, >, 6 << 20);
  fetch_agent (f, "GET", shoal_device_get_token (device), &fetch);
  g_assert_cmpint (fetch.resp.status, ==, 200);
  g_assert_cmpuint (fetch.resp.body.len, ==, size);
  expected = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) fetch.resp.body.data, fetch.resp.body.len);
  g_assert_cmpstr (expected, ==, shoal_device_get_metadata (device, "agent.sha256"));
  sa_http_response_clear (&fetch.resp);

  /* four downloads that do not read their answer */
  request = g_strdup_printf ("GET /agent/v1/agent HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n",
                             shoal_device_get_token (device));
  for (guint i = 0; i < 4; i++)
    {
      GSocketConnection *conn = g_socket_client_connect_to_host (client, f->url + strlen ("http://"), 80, NULL, &error);

      g_assert_no_error (error);
      g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), request,
                                                strlen (request), NULL, NULL, &error));
      g_assert_no_error (error);
      g_ptr_array_add (conns, conn);
    }
  for (guint i = 0; i < 200; i++)
    g_main_context_iteration (NULL, FALSE);
  fetch_agent (f, "GET", shoal_device_get_token (device), &fetch);
  g_assert_cmpint (fetch.resp.status, ==, 429);
  sa_http_response_clear (&fetch.resp);

  /* they end: a download is served again */
  g_ptr_array_set_size (conns, 0);
  for (guint attempt = 0; ; attempt++)
    {
      for (guint i = 0; i < 50; i++)
        g_main_context_iteration (NULL, FALSE);
      fetch_agent (f, "GET", shoal_device_get_token (device), &fetch);
      if (fetch.resp.status == 200 || attempt == 100)
        break;
      sa_http_response_clear (&fetch.resp);
      g_usleep (10000);
    }
  g_assert_cmpint (fetch.resp.status, ==, 200);
  g_assert_cmpuint (fetch.resp.body.len, ==, size);
  sa_http_response_clear (&fetch.resp);
  finish_step (device, &run);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/shoal/agent-gen/service/step-and-route", Fixture, NULL, fixture_set_up, test_step_and_service, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/service/root-device", Fixture, NULL, fixture_set_up, test_root_device, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/service/root-device-emmc", Fixture, NULL, fixture_set_up, test_root_device_emmc,
              fixture_tear_down);
  g_test_add ("/shoal/agent-gen/service/redeploy", Fixture, NULL, fixture_set_up, test_redeploy, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/service/remove-device", Fixture, NULL, fixture_set_up, test_remove_device,
              fixture_tear_down);
  g_test_add ("/shoal/agent-gen/service/sweep", Fixture, NULL, fixture_set_up, test_sweep, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/service/large-and-parallel", Fixture, NULL, fixture_set_up, test_large_and_parallel,
              fixture_tear_down);
  return g_test_run ();
}
