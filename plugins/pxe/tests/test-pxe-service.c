/* test-pxe-service.c: the shoal-pxe plugin loaded by the plugin engine
 * into a real controller: iPXE scripts, boot files with Range (curl),
 * the pxe-boot step and the journal
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "pxe-netns.h"
#include "shoal.h"

static const gchar *recipe_json =
  "{ \"name\": \"pxe-test\", \"default\": true, \"steps\": [\"pxe-boot\"],"
  "  \"boot\": { \"kernel\": \"vmlinuz\", \"initrd\": \"initrd.gz\", \"cmdline\": \"console=ttyS0\" } }";

typedef struct {
  gchar             *state_dir;
  gchar             *files;
  ShoalPluginEngine *engine;
  ShoalController   *controller;
  SoupServer        *server;
  gchar             *base_url;
} Fixture;

static void
write_file (const gchar *dir, const gchar *name, gsize size)
{
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  g_autofree gchar *data = g_malloc (size);

  for (gsize i = 0; i < size; i++)
    data[i] = (gchar) (i * 7);
  g_assert_true (g_file_set_contents (path, data, (gssize) size, NULL));
}

/* a controller with this plugin on f->state_dir, serving on a new port */
static void
start_controller (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSList) uris = NULL;
  g_autoptr(GKeyFile) config = g_key_file_new ();
  g_autoptr(ShoalRecipe) recipe = NULL;

  f->files = g_build_filename (f->state_dir, "boot", NULL);
  g_mkdir (f->files, 0755);
  write_file (f->files, "vmlinuz", 300000);
  write_file (f->files, "initrd.gz", 100000);
  f->engine = shoal_plugin_engine_new ();
  /* this plugin only: other plugins' services are not under test here */
  shoal_plugin_engine_add_search_path (f->engine, SHOAL_BUILD_PLUGINDIR "/pxe");
  shoal_plugin_engine_load_all (f->engine);
  f->controller = shoal_controller_new (f->engine, f->state_dir);
  g_assert_true (shoal_controller_open (f->controller, &error));
  g_assert_no_error (error);
  g_key_file_set_string (config, "pxe", "mode", "off");
  g_key_file_set_string (config, "pxe", "tftp-port", "0");
  g_key_file_set_string (config, "pxe", "boot-files", f->files);
  shoal_controller_set_config (f->controller, config);
  f->server = soup_server_new (NULL, NULL);
  g_assert_true (soup_server_listen_local (f->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  uris = soup_server_get_uris (f->server);
  f->base_url = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify) g_uri_unref);
  shoal_controller_set_http_server (f->controller, f->server, f->base_url);
  recipe = shoal_recipe_new_from_data (recipe_json, -1, "pxe-test.json", &error);
  g_assert_no_error (error);
  g_assert_true (shoal_controller_add_recipe (f->controller, recipe, &error));
  g_assert_true (shoal_controller_start_services (f->controller, &error));
  g_assert_no_error (error);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->state_dir = g_dir_make_tmp ("shoal-pxe-service-XXXXXX", NULL);
  start_controller (f);
}

static void
stop_controller (Fixture *f)
{
  shoal_controller_close (f->controller);
  g_clear_object (&f->controller);
  g_clear_object (&f->engine);
  soup_server_disconnect (f->server);
  g_clear_object (&f->server);
  g_clear_pointer (&f->files, g_free);
  g_clear_pointer (&f->base_url, g_free);
}

static void
remove_state_dir (Fixture *f)
{
  g_autofree gchar *cmd = g_strdup_printf ("rm -rf %s", f->state_dir);

  (void) g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
  g_clear_pointer (&f->state_dir, g_free);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  stop_controller (f);
  remove_state_dir (f);
}

/* curl, with the main loop running meanwhile; returns the body */
static gchar *
curl (const gchar *url, const gchar *range, gint *status, gsize *len)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *out = NULL;
  g_autofree gchar *body_path = g_build_filename (g_get_tmp_dir (), "shoal-pxe-curl-XXXXXX", NULL);
  gint fd = g_mkstemp (body_path);
  const gchar *argv[] = { "curl", "-s", "--path-as-is", "--max-time", "20", "-o", body_path, "-w", "%{http_code}",
                          range != NULL ? "-r" : url, range, range != NULL ? url : NULL, NULL };
  g_autoptr(GSubprocess) proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  gchar *body = NULL;

  close (fd);
  g_assert_no_error (error);
  g_assert_true (pxe_netns_wait (proc, 30, &out, &error));
  *status = atoi (out);
  g_assert_true (g_file_get_contents (body_path, &body, len, NULL));
  g_unlink (body_path);
  return body;
}

static gboolean
skip_without_curl (void)
{
  if (pxe_netns_have_program ("curl"))
    return FALSE;
  g_test_skip ("curl is not installed");
  return TRUE;
}

static gchar *
fetch_script (Fixture *f, const gchar *mac, gint *status)
{
  g_autofree gchar *url = g_strdup_printf ("%s/boot/ipxe?mac=%s", f->base_url, mac);
  gsize len;

  return curl (url, NULL, status, &len);
}

static gboolean
journal_has (Fixture *f, ShoalDevice *device, const gchar *operation)
{
  g_autoptr(GPtrArray) journal = shoal_controller_get_journal (f->controller, device, 0, NULL);

  for (guint i = 0; journal != NULL && i < journal->len; i++)
    {
      ShoalJournalEntry *e = g_ptr_array_index (journal, i);
      if (g_strcmp0 (shoal_journal_entry_get_source (e), "pxe") == 0 &&
          g_strcmp0 (shoal_journal_entry_get_operation (e), operation) == 0)
        return TRUE;
    }
  return FALSE;
}

static gchar *
url_after (const gchar *script, const gchar *command)
{
  const gchar *p = strstr (script, command);

  g_assert_nonnull (p);
  p += strlen (command);
  return g_strndup (p, strcspn (p, " \n"));
}

static void
test_deploy (Fixture *f, gconstpointer data)
{
  g_autofree gchar *script = NULL;
  g_autofree gchar *kernel = NULL;
  g_autofree gchar *initrd = NULL;
  g_autofree gchar *expected = NULL;
  g_autofree gchar *body = NULL;
  ShoalDevice *device;
  gint status = 0;
  gsize len = 0;

  if (skip_without_curl ())
    return;
  script = fetch_script (f, "52:54:00:AA:00:01", &status);
  g_assert_cmpint (status, ==, 200);
  /* the first request registered the device (claim 15) */
  device = shoal_controller_lookup_device_by_mac (f->controller, "52:54:00:aa:00:01");
  g_assert_nonnull (device);
  g_test_message ("%s", script);
  g_assert_true (g_str_has_prefix (script, "#!ipxe"));
  expected = g_strdup_printf ("initrd=initrd.gz console=ttyS0 shoal.server=%s shoal.token=%s shoal.device=%s || goto failed\n",
                              f->base_url, shoal_device_get_token (device), shoal_device_get_id (device));
  g_assert_nonnull (strstr (script, expected));
  kernel = url_after (script, "kernel ");
  initrd = url_after (script, "initrd ");
  g_assert_true (g_str_has_prefix (kernel, f->base_url));
  /* ranges: a part, and one past the end */
  body = curl (kernel, "100-199", &status, &len);
  g_assert_cmpint (status, ==, 206);
  g_assert_cmpuint (len, ==, 100);
  g_assert_cmpint (body[0], ==, (gchar) (100 * 7));
  g_clear_pointer (&body, g_free);
  body = curl (kernel, "900000-", &status, &len);
  g_assert_cmpint (status, ==, 416);
  g_clear_pointer (&body, g_free);
  /* both files fetched: the pxe-boot step completes */
  body = curl (kernel, NULL, &status, &len);
  g_assert_cmpuint (len, ==, 300000);
  g_clear_pointer (&body, g_free);
  body = curl (initrd, NULL, &status, &len);
  g_assert_cmpuint (len, ==, 100000);
  for (guint i = 0; i < 200 && shoal_device_get_state (device) != SHOAL_DEVICE_STATE_INSTALLED; i++)
    pxe_netns_iterate_until ((gboolean[]) { FALSE }, 20);
  g_assert_cmpint (shoal_device_get_state (device), ==, SHOAL_DEVICE_STATE_INSTALLED);
  g_assert_true (journal_has (f, device, "http"));
  g_assert_true (journal_has (f, device, "boot"));
}

/* a boot file truncated while it is sent: the response ends short and
 * the connection closes; the next request is served whole, across
 * several chunks. Several ranges get the whole file (200), not a
 * multipart response libsoup builds by copying the whole file (from a
 * mapping, where a truncated file raised SIGBUS) */
static void
test_truncated_file (Fixture *f, gconstpointer data)
{
  g_autofree gchar *url = g_strdup_printf ("%s/boot/files/big.img", f->base_url);
  g_autofree gchar *path = g_build_filename (f->files, "big.img", NULL);
  g_autofree gchar *out_path = g_build_filename (f->state_dir, "curl-big", NULL);
  const gchar *argv[] = { "curl", "-s", "--max-time", "20", "--limit-rate", "4M", "-o", out_path, url, NULL };
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *kernel_url = g_strdup_printf ("%s/boot/files/vmlinuz", f->base_url);
  g_autofree gchar *body = NULL;
  GStatBuf st;
  gint64 start;
  gint status = 0;
  gsize len = 0;

  if (skip_without_curl ())
    return;
  write_file (f->files, "big.img", 32 * 1024 * 1024);
  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  pxe_netns_iterate_until ((gboolean[]) { FALSE }, 500);
  g_assert_cmpint (truncate (path, 0), ==, 0);
  start = g_get_monotonic_time ();
  g_assert_false (pxe_netns_wait (proc, 30, NULL, &error));
  g_test_message ("curl: %s, after %.1f s", error->message, (gdouble) (g_get_monotonic_time () - start) / 1e6);
  /* 18: a partial file, the connection closed before Content-Length */
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 18);
  g_assert_cmpint (g_stat (out_path, &st), ==, 0);
  g_assert_cmpint (st.st_size, <, 32 * 1024 * 1024);
  body = curl (kernel_url, NULL, &status, &len);
  g_assert_cmpint (status, ==, 200);
  g_assert_cmpuint (len, ==, 300000);
  for (gsize i = 0; i < len; i++)
    if (body[i] != (gchar) (i * 7))
      g_assert_cmpuint (i, ==, len);   /* the first byte that differs */
  g_clear_pointer (&body, g_free);
  body = curl (kernel_url, "0-9,20-29", &status, &len);
  g_assert_cmpint (status, ==, 200);
  g_assert_cmpuint (len, ==, 300000);
}

static void
test_local_and_ignore (Fixture *f, gconstpointer data)
{
  g_autofree gchar *first = NULL;
  g_autofree gchar *local = NULL;
  g_autofree gchar *ignored = NULL;
  g_autofree gchar *bad = NULL;
  g_autofree gchar *escape = NULL;
  g_autofree gchar *url = g_strdup_printf ("%s/boot/files/../../etc/passwd", f->base_url);
  ShoalDevice *device;
  gint status = 0;
  gsize len;

  if (skip_without_curl ())
    return;
  first = fetch_script (f, "52:54:00:aa:00:02", &status);
  device = shoal_controller_lookup_device_by_mac (f->controller, "52:54:00:aa:00:02");
  g_assert_nonnull (device);
  shoal_device_set_boot_action (device, SHOAL_BOOT_ACTION_LOCAL);
  local = fetch_script (f, "52:54:00:aa:00:02", &status);
  g_assert_cmpint (status, ==, 200);
  g_assert_nonnull (strstr (local, "sanboot --no-describe --drive 0x80 || exit"));
  shoal_device_set_boot_action (device, SHOAL_BOOT_ACTION_IGNORE);
  ignored = fetch_script (f, "52:54:00:aa:00:02", &status);
  g_assert_cmpint (status, ==, 403);
  bad = fetch_script (f, "nonsense", &status);
  g_assert_cmpint (status, ==, 400);
  escape = curl (url, NULL, &status, &len);
  g_test_message ("GET /boot/files/../../etc/passwd: %d", status);
  g_assert_cmpint (status, >=, 400);
  g_assert_null (strstr (escape, "root:"));
  {
    g_autofree gchar *encoded = g_strdup_printf ("%s/boot/files/..%%2f..%%2f..%%2fetc%%2fpasswd", f->base_url);
    g_autofree gchar *body = curl (encoded, NULL, &status, &len);
    g_test_message ("GET /boot/files/..%%2f..%%2f..%%2fetc%%2fpasswd: %d", status);
    g_assert_cmpint (status, >=, 400);
    g_assert_null (strstr (body, "root:"));
  }
}

static gchar *
fetch_script_uuid (Fixture *f, const gchar *mac, const gchar *uuid, gint *status)
{
  g_autofree gchar *url = g_strdup_printf ("%s/boot/ipxe?mac=%s&uuid=%s", f->base_url, mac, uuid);
  gsize len;

  return curl (url, NULL, status, &len);
}

static void
committed_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_assert_true (shoal_controller_commit_finish (SHOAL_CONTROLLER (source), result, NULL));
  *(gboolean *) user_data = TRUE;
}

/* waits until everything so far is durable */
static void
commit (Fixture *f)
{
  gboolean done = FALSE;

  shoal_controller_commit_async (f->controller, NULL, committed_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

/* every message of @device's journal entries of @operation, one a line */
static gchar *
journal_messages (Fixture *f, ShoalDevice *device, const gchar *operation)
{
  g_autoptr(GPtrArray) journal = NULL;
  GString *out = g_string_new (NULL);

  commit (f);
  journal = shoal_controller_get_journal (f->controller, device, 0, NULL);
  for (guint i = 0; journal != NULL && i < journal->len; i++)
    {
      ShoalJournalEntry *e = g_ptr_array_index (journal, i);

      if (g_strcmp0 (shoal_journal_entry_get_operation (e), operation) == 0)
        g_string_append_printf (out, "%s\n", shoal_journal_entry_get_message (e));
    }
  return g_string_free (out, FALSE);
}

#define UUID_A "aaaaaaaa-0000-4000-8000-000000000001"
#define UUID_B "bbbbbbbb-0000-4000-8000-000000000002"

static ShoalDevice *
enroll_deployed (Fixture *f, const gchar *id, const gchar *mac, const gchar *uuid)
{
  const gchar *macs[] = { mac, NULL };
  g_autoptr(GError) error = NULL;
  ShoalDevice *device = shoal_controller_enroll_device (f->controller, id, macs, uuid, &error);

  g_assert_no_error (error);
  g_assert_true (shoal_controller_assign_recipe (f->controller, device, "pxe-test", &error));
  g_assert_true (shoal_controller_deploy (f->controller, device, &error));
  g_assert_no_error (error);
  return device;
}

/* A machine whose MAC and UUID belong to different devices is deployed
 * as neither: it gets the local-disk script and both devices journal
 * why. A known UUID booting from a new NIC is its device, the new MAC
 * recorded; another machine carrying the old NIC is not that device */
static void
test_identity (Fixture *f, gconstpointer data)
{
  g_autofree gchar *mixed = NULL, *moved = NULL, *stolen = NULL;
  g_autofree gchar *notes1 = NULL, *notes2 = NULL, *served = NULL, *k1_notes = NULL;
  g_autoptr(GPtrArray) devices = NULL;
  ShoalDevice *u1, *u2, *k1;
  gint status = 0;

  if (skip_without_curl ())
    return;
  u1 = enroll_deployed (f, "u1", "52:54:00:00:20:01", "11111111-2222-3333-4444-555555555555");
  u2 = enroll_deployed (f, "u2", "52:54:00:00:20:02", "11111111-2222-3333-4444-666666666666");
  mixed = fetch_script_uuid (f, "52:54:00:00:20:01", "11111111-2222-3333-4444-666666666666", &status);
  g_test_message ("%s", mixed);
  g_assert_cmpint (status, ==, 200);
  g_assert_null (strstr (mixed, "kernel "));
  g_assert_nonnull (strstr (mixed, "sanboot --no-describe --drive 0x80 || exit"));
  notes1 = journal_messages (f, u1, "identity");
  notes2 = journal_messages (f, u2, "identity");
  g_assert_nonnull (strstr (notes1, "the MAC belongs to device u1, the UUID to device u2"));
  g_assert_cmpstr (notes1, ==, notes2);
  served = journal_messages (f, u1, "http");
  g_assert_null (strstr (served, "script served"));

  /* the moved NIC */
  k1 = enroll_deployed (f, "k1", "52:54:00:00:40:01", UUID_A);
  moved = fetch_script_uuid (f, "52:54:00:00:40:0a", UUID_A, &status);
  g_assert_cmpint (status, ==, 200);
  g_assert_nonnull (strstr (moved, "shoal.device=k1"));
  g_assert_true (g_strv_contains (shoal_device_get_macs (k1), "52:54:00:00:40:0a"));
  stolen = fetch_script_uuid (f, "52:54:00:00:40:01", UUID_B, &status);
  g_assert_cmpint (status, ==, 200);
  g_assert_null (strstr (stolen, "shoal.device=k1"));
  g_assert_null (strstr (stolen, "kernel "));
  devices = shoal_controller_get_devices (f->controller);
  g_assert_cmpuint (devices->len, ==, 3);
  k1_notes = journal_messages (f, k1, "identity");
  g_test_message ("%s", k1_notes);
  g_assert_nonnull (strstr (k1_notes, "new MAC 52:54:00:00:40:0a recorded"));
  g_assert_nonnull (strstr (k1_notes, "UUID " UUID_B " not deployed"));
  g_clear_pointer (&served, g_free);
  served = journal_messages (f, k1, "http");
  g_assert_nonnull (strstr (served, "iPXE script served (deploy) to 52:54:00:00:40:0a, uuid " UUID_A));
}

/* ?uuid= is checked (8-4-4-4-12 hex digits with dashes) before it goes
 * anywhere: 36 bytes of terminal escapes were journaled ("iPXE script
 * served ..., uuid <escapes>", which shoalctl log printed raw) and put in
 * the script's own URL; now the machine counts as one without a UUID. A
 * valid UUID in capitals is kept in lower case */
static void
test_uuid_checked (Fixture *f, gconstpointer data)
{
  const gchar *junk = "\033]0;pwned\a\033[2J\033[31mFAKE-UUID-LINE\nxx";
  g_autofree gchar *escaped = g_uri_escape_string (junk, NULL, FALSE);
  g_autofree gchar *script = NULL, *upper = NULL, *served = NULL, *served_upper = NULL;
  ShoalDevice *device;
  gint status = 0;

  if (skip_without_curl ())
    return;
  g_assert_cmpuint (strlen (junk), ==, 36);
  script = fetch_script_uuid (f, "52:54:00:00:60:01", escaped, &status);
  g_test_message ("%s", script);
  g_assert_cmpint (status, ==, 200);
  g_assert_null (strchr (script, '\033'));
  g_assert_null (strstr (script, "FAKE-UUID-LINE"));
  device = shoal_controller_lookup_device_by_mac (f->controller, "52:54:00:00:60:01");
  g_assert_nonnull (device);
  g_assert_null (shoal_device_get_uuid (device));
  served = journal_messages (f, device, "http");
  g_test_message ("%s", served);
  g_assert_nonnull (strstr (served, "iPXE script served"));
  g_assert_null (strchr (served, '\033'));
  g_assert_null (strstr (served, "uuid"));

  upper = fetch_script_uuid (f, "52:54:00:00:60:02", "AAAAAAAA-0000-4000-8000-0000000000CC", &status);
  g_assert_cmpint (status, ==, 200);
  g_assert_nonnull (strstr (upper, "uuid=aaaaaaaa-0000-4000-8000-0000000000cc"));
  device = shoal_controller_lookup_device_by_mac (f->controller, "52:54:00:00:60:02");
  g_assert_cmpstr (shoal_device_get_uuid (device), ==, "aaaaaaaa-0000-4000-8000-0000000000cc");
  served_upper = journal_messages (f, device, "http");
  g_assert_nonnull (strstr (served_upper, ", uuid aaaaaaaa-0000-4000-8000-0000000000cc"));
}

/* the token a deploy script hands out (shoal.token= of its command line);
 * its boot file URLs carry the same */
static gchar *
token_of (const gchar *script)
{
  g_autofree gchar *token = url_after (script, "shoal.token=");
  g_autofree gchar *kernel = url_after (script, "kernel ");
  g_autofree gchar *in_url = g_strdup_printf ("?token=%s&", token);

  g_assert_nonnull (strstr (kernel, in_url));
  return g_steal_pointer (&token);
}

/* the agent API's answer to GET /agent/v1/next with @token */
static gint
agent_status (Fixture *f, const gchar *token)
{
  g_autofree gchar *url = g_strdup_printf ("%s/agent/v1/next?after=0&wait=0&token=%s", f->base_url, token);
  g_autofree gchar *body = NULL;
  gint status = 0;
  gsize len;

  body = curl (url, NULL, &status, &len);
  return status;
}

/* whether @device's journal has an entry of operation "token" saying @text */
static gboolean
token_journal_says (Fixture *f, ShoalDevice *device, const gchar *text)
{
  g_autofree gchar *messages = journal_messages (f, device, "token");

  return strstr (messages, text) != NULL;
}

/* Anyone who knows a deploying device's MAC address can ask for its boot
 * script. Before its agent has used the token, the script hands out the
 * same one (the machine may boot again before its loader got that far);
 * once it has, the script hands out a new one and the agent's is refused,
 * with a warning in the journal. Before, every script gave out the token
 * the agent was using, and its holder could speak for the device unseen */
static void
test_token_claimed (Fixture *f, gconstpointer data)
{
  const gchar *warning = "the boot script was requested again after the agent claimed its token";
  g_autofree gchar *script = NULL;
  g_autofree gchar *token = NULL;
  g_autofree gchar *again = NULL;
  g_autofree gchar *stolen = NULL;
  ShoalDevice *device;
  gint status = 0;

  if (skip_without_curl ())
    return;
  script = fetch_script (f, "52:54:00:aa:00:03", &status);
  g_assert_cmpint (status, ==, 200);
  device = shoal_controller_lookup_device_by_mac (f->controller, "52:54:00:aa:00:03");
  g_assert_nonnull (device);
  token = token_of (script);
  g_assert_cmpstr (token, ==, shoal_device_get_token (device));
  /* booted again before the loader ran: the same token */
  g_clear_pointer (&script, g_free);
  script = fetch_script (f, "52:54:00:aa:00:03", &status);
  again = token_of (script);
  g_assert_cmpstr (again, ==, token);
  g_assert_false (token_journal_says (f, device, warning));

  /* the agent's first request claims it */
  g_assert_cmpint (agent_status (f, token), ==, 204);
  g_clear_pointer (&script, g_free);
  script = fetch_script (f, "52:54:00:aa:00:03", &status);
  g_assert_cmpint (status, ==, 200);
  stolen = token_of (script);
  g_assert_cmpstr (stolen, !=, token);
  g_assert_cmpint (agent_status (f, token), ==, 401);
  g_assert_cmpint (agent_status (f, stolen), ==, 204);
  g_assert_true (token_journal_says (f, device, warning));
}

#define CRASH_MAC "52:54:00:aa:00:05"

/* where the child of test process @pid tells what it did */
static gchar *
crash_record_path (pid_t pid)
{
  g_autofree gchar *name = g_strdup_printf ("shoal-pxe-crash-%d", (gint) pid);

  return g_build_filename (g_get_tmp_dir (), name, NULL);
}

/* The child of test_token_reissue_crash(): the agent claims its token,
 * the machine asks for its script again and gets a new one, and shoald
 * dies at that moment (_exit, no close), its store committing slowly */
static void
reissue_then_crash (Fixture *f)
{
  g_autofree gchar *script = NULL, *claimed = NULL, *issued = NULL, *record = NULL, *path = NULL;
  gint status = 0;

  script = fetch_script (f, CRASH_MAC, &status);
  g_assert_cmpint (status, ==, 200);
  claimed = token_of (script);
  g_assert_cmpint (agent_status (f, claimed), ==, 204);
  /* the store holds the claimed token */
  commit (f);
  g_clear_pointer (&script, g_free);
  script = fetch_script (f, CRASH_MAC, &status);
  g_assert_cmpint (status, ==, 200);
  issued = token_of (script);
  g_assert_cmpstr (issued, !=, claimed);
  record = g_strdup_printf ("%s\n%s\n%s\n", f->state_dir, claimed, issued);
  path = crash_record_path (getppid ());
  g_assert_true (g_file_set_contents (path, record, -1, NULL));
  _exit (0);
}

/* shoald is killed right after a boot script re-issued a device's token:
 * once restarted, it takes the token that script carried (the machine's
 * loader and agent have it) and refuses the one before. The script was
 * answered before its token was committed, so the restarted store held
 * the claimed token and the machine's agent was refused for good */
static void
test_token_reissue_crash (Fixture *f, gconstpointer data)
{
  g_autofree gchar *record_path = NULL, *record = NULL;
  g_auto(GStrv) lines = NULL;
  ShoalDevice *device;

  if (skip_without_curl ())
    return;
  if (g_test_subprocess ())
    {
      reissue_then_crash (f);
      return;
    }
  record_path = crash_record_path (getpid ());
  g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
  g_assert_true (g_file_get_contents (record_path, &record, NULL, NULL));
  g_unlink (record_path);
  lines = g_strsplit (record, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 4);

  /* shoald starts again on the dead one's state folder */
  stop_controller (f);
  remove_state_dir (f);
  f->state_dir = g_strdup (lines[0]);
  start_controller (f);
  device = shoal_controller_lookup_device_by_mac (f->controller, CRASH_MAC);
  g_assert_nonnull (device);
  g_assert_cmpstr (shoal_device_get_token (device), ==, lines[2]);
  g_assert_cmpint (agent_status (f, lines[2]), ==, 204);
  g_assert_cmpint (agent_status (f, lines[1]), ==, 401);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* the child of token-reissue-crash: a disk that takes a second to
   * commit, so that the answer and the crash come before the commit
   * unless the answer waits for it (set before any thread starts) */
  if (g_test_subprocess ())
    g_setenv ("SHOAL_STORE_COMMIT_DELAY_MS", "1000", TRUE);
  g_test_add ("/shoal/pxe/service/deploy", Fixture, NULL, fixture_setup, test_deploy, fixture_teardown);
  g_test_add ("/shoal/pxe/service/truncated-file", Fixture, NULL, fixture_setup, test_truncated_file,
              fixture_teardown);
  g_test_add ("/shoal/pxe/service/local-and-ignore", Fixture, NULL, fixture_setup, test_local_and_ignore,
              fixture_teardown);
  g_test_add ("/shoal/pxe/service/identity", Fixture, NULL, fixture_setup, test_identity, fixture_teardown);
  g_test_add ("/shoal/pxe/service/uuid-checked", Fixture, NULL, fixture_setup, test_uuid_checked,
              fixture_teardown);
  g_test_add ("/shoal/pxe/service/token-claimed", Fixture, NULL, fixture_setup, test_token_claimed,
              fixture_teardown);
  g_test_add ("/shoal/pxe/service/token-reissue-crash", Fixture, NULL, fixture_setup, test_token_reissue_crash,
              fixture_teardown);
  return g_test_run ();
}
