/* test-agent-api.c: the HTTP API agents use, on loopback
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-controller-private.h"
#include "shoal-test-util.h"

#define GOOD_INVENTORY \
  "{\"version\": 1, \"firmware\": {\"type\": \"bios\"}, \"cpu\": {\"count\": 2}," \
  " \"memory\": {\"total_bytes\": 1073741824}, \"pci\": [], \"disks\": [], " \
  " \"nics\": [{\"name\": \"eth0\", \"mac\": \"52:54:00:00:00:01\"}]}"

typedef struct {
  gchar             *state_dir;
  ShoalPluginEngine *engine;
  ShoalController   *controller;
  SoupServer        *server;
  SoupSession       *session;
  gchar             *base;
  ShoalDevice       *device;
} Fixture;

/* A controller on the fixture's state folder, serving on a new port */
static void
open_controller (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSList) uris = NULL;

  fixture->controller = shoal_controller_new (fixture->engine, fixture->state_dir);
  g_assert_true (shoal_controller_open (fixture->controller, &error));
  g_assert_no_error (error);
  fixture->server = soup_server_new (NULL, NULL);
  g_assert_true (soup_server_listen_local (fixture->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (fixture->server);
  g_free (fixture->base);
  fixture->base = g_uri_to_string (uris->data);
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify) g_uri_unref);
  shoal_controller_set_http_server (fixture->controller, fixture->server, fixture->base);
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  const gchar *macs[] = { "52:54:00:00:00:01", NULL };

  fixture->state_dir = shoal_test_mkdtemp ();
  fixture->engine = shoal_test_engine_new (FALSE);
  open_controller (fixture);
  fixture->session = soup_session_new ();
  soup_session_set_proxy_resolver (fixture->session, NULL);
  fixture->device = shoal_controller_enroll_device (fixture->controller, "d1", macs, NULL, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  g_clear_object (&fixture->session);
  shoal_controller_close (fixture->controller);
  g_clear_object (&fixture->server);
  g_clear_object (&fixture->controller);
  g_clear_object (&fixture->engine);
  shoal_test_rm_rf (fixture->state_dir);
  g_free (fixture->state_dir);
  g_free (fixture->base);
}

static void
sent_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  GBytes **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  g_assert_no_error (error);
}

static gboolean
is_set (gpointer data)
{
  return *(gpointer *) data != NULL;
}

/* Sends a request and returns the status; the body goes to @body_out */
static guint
request (Fixture      *fixture,
         const gchar  *method,
         const gchar  *path,
         const gchar  *token,
         const gchar  *body,
         gchar       **body_out)
{
  g_autofree gchar *uri = g_strconcat (fixture->base, path + 1, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr(GBytes) response = NULL;

  if (token != NULL)
    {
      g_autofree gchar *auth = g_strdup_printf ("Bearer %s", token);

      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", auth);
    }
  soup_message_headers_replace (soup_message_get_request_headers (msg), "X-Shoal-Device", "d1");
  if (body != NULL)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  soup_session_send_and_read_async (fixture->session, msg, G_PRIORITY_DEFAULT, NULL,
                                    sent_cb, &response);
  /* the server runs on this thread's main context: iterate it */
  g_assert_true (shoal_test_wait_until (is_set, &response, 10000));
  if (body_out != NULL)
    *body_out = g_strndup (g_bytes_get_data (response, NULL), g_bytes_get_size (response));
  return soup_message_get_status (msg);
}

/* how many entries of the device's journal say @text */
static guint
journal_count (Fixture     *fixture,
               const gchar *text)
{
  g_autoptr(GPtrArray) entries = NULL;
  guint n = 0;

  g_assert_true (shoal_store_flush (shoal_controller_get_store (fixture->controller), NULL));
  entries = shoal_controller_get_journal (fixture->controller, fixture->device, 0, NULL);
  for (guint i = 0; i < entries->len; i++)
    if (strstr (shoal_journal_entry_get_message (g_ptr_array_index (entries, i)), text) != NULL)
      n++;
  return n;
}

static gboolean
journal_has (Fixture     *fixture,
             const gchar *text)
{
  return journal_count (fixture, text) > 0;
}

static void
test_agent_api_auth (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autofree gchar *body = NULL;

  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/inventory", NULL, GOOD_INVENTORY, &body), ==, 401);
  g_assert_nonnull (strstr (body, "missing device token"));
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/inventory", "forged", GOOD_INVENTORY, NULL), ==, 401);
  /* anyone can name any device: refusals stay out of its journal (60 KB
   * paths filled it before) */
  g_assert_false (journal_has (fixture, "token"));
  /* refused requests say nothing of where the agent is */
  g_assert_null (shoal_device_get_metadata (fixture->device, "agent.address"));
  g_assert_cmpuint (request (fixture, "GET", "/agent/v1/inventory",
                             shoal_device_get_token (fixture->device), NULL, NULL), ==, 405);
}

static void
test_agent_api_inventory (Fixture       *fixture,
                          gconstpointer  data)
{
  const gchar *token = shoal_device_get_token (fixture->device);
  g_autofree gchar *body = NULL;
  g_autofree gchar *huge = NULL;
  GString *big = g_string_new ("{\"x\": \"");

  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/inventory", token, "{not json", &body), ==, 422);
  g_assert_nonnull (strstr (body, "malformed JSON"));
  g_clear_pointer (&body, g_free);
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/inventory", token, "{\"version\": 1}", &body), ==, 422);
  g_assert_nonnull (strstr (body, "$"));
  while (big->len < 2 * 1024 * 1024)
    g_string_append (big, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  g_string_append (big, "\"}");
  huge = g_string_free (big, FALSE);
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/inventory", token, huge, NULL), ==, 413);
  g_assert_true (journal_has (fixture, "inventory refused"));
  g_assert_null (shoal_device_get_inventory (fixture->device));

  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/inventory", token, GOOD_INVENTORY, NULL), ==, 202);
  g_assert_true (journal_has (fixture, "inventory received"));
  /* where the agent is reached, for the multicast step's interface */
  g_assert_cmpstr (shoal_device_get_metadata (fixture->device, "agent.address"), ==, "127.0.0.1");
}

static void
test_agent_api_events (Fixture       *fixture,
                       gconstpointer  data)
{
  const gchar *token = shoal_device_get_token (fixture->device);

  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", token, "{\"event\": \"bad name!\"}", NULL), ==, 400);
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", token,
                             "{\"event\": \"progress\", \"data\": {\"fraction\": 0.5}}", NULL), ==, 202);
  g_assert_cmpfloat (shoal_device_get_progress (fixture->device), ==, 0.5);
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", token,
                             "{\"event\": \"log\", \"data\": {\"operation\": \"disk\", \"result\": \"ok\","
                             " \"message\": \"wrote sda\"}}", NULL), ==, 202);
  g_assert_true (journal_has (fixture, "wrote sda"));
}

/* An agent's "error" event journals what failed and why (before: only
 * "agent reported error", the reason left on the agent's console), its
 * message cut to 512 bytes and its control characters made spaces */
static void
test_agent_api_error_event (Fixture       *fixture,
                            gconstpointer  data)
{
  const gchar *token = shoal_device_get_token (fixture->device);
  g_autofree gchar *long_message = g_strnfill (3000, 'x');
  g_autofree gchar *body = g_strdup_printf ("{\"event\": \"error\", \"data\": {\"action\": \"unicast-receive\","
                                            " \"message\": \"%s\"}}", long_message);
  g_autoptr(GPtrArray) entries = NULL;
  ShoalJournalEntry *last;

  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", token,
                             "{\"event\": \"error\", \"data\": {\"action\": \"multicast-receive\","
                             " \"message\": \"cannot join 239.77.246.191:6100\\n\\u001b[2J\"}}", NULL), ==, 202);
  g_assert_true (journal_has (fixture, "agent reported error: multicast-receive failed: "
                                       "cannot join 239.77.246.191:6100  [2J"));
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", token, body, NULL), ==, 202);
  g_assert_true (shoal_store_flush (shoal_controller_get_store (fixture->controller), NULL));
  entries = shoal_controller_get_journal (fixture->controller, fixture->device, 0, NULL);
  last = g_ptr_array_index (entries, entries->len - 1);
  g_assert_cmpstr (shoal_journal_entry_get_operation (last), ==, "error");
  g_assert_true (g_str_has_prefix (shoal_journal_entry_get_message (last),
                                   "agent reported error: unicast-receive failed: xxx"));
  g_assert_true (g_str_has_suffix (shoal_journal_entry_get_message (last), "x…"));
  g_assert_cmpuint (strlen (shoal_journal_entry_get_message (last)), <, 600);
}

/* An agent's log event went to the journal whole, up to 1 MiB */
static void
test_agent_api_log_limits (Fixture       *fixture,
                           gconstpointer  data)
{
  const gchar *token = shoal_device_get_token (fixture->device);
  g_autofree gchar *operation = g_strnfill (200, 'o');
  g_autofree gchar *message = g_strnfill (100000, 'm');
  g_autofree gchar *body = g_strdup_printf ("{\"event\": \"log\", \"data\": {\"operation\": \"%s\","
                                            " \"message\": \"%s\"}}", operation, message);
  g_autoptr(GPtrArray) entries = NULL;
  ShoalJournalEntry *last;

  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", token, body, NULL), ==, 202);
  g_assert_true (shoal_store_flush (shoal_controller_get_store (fixture->controller), NULL));
  entries = shoal_controller_get_journal (fixture->controller, fixture->device, 0, NULL);
  last = g_ptr_array_index (entries, entries->len - 1);
  g_assert_cmpuint (strlen (shoal_journal_entry_get_operation (last)), ==, 64);
  g_assert_true (g_str_has_suffix (shoal_journal_entry_get_operation (last), "o…"));
  g_assert_cmpuint (strlen (shoal_journal_entry_get_message (last)), ==, 4096);
  g_assert_true (g_str_has_suffix (shoal_journal_entry_get_message (last), "m…"));
}

/* Members of the wrong type made json-glib log criticals (fatal here) */
static void
test_agent_api_event_types (Fixture       *fixture,
                            gconstpointer  data)
{
  const gchar *token = shoal_device_get_token (fixture->device);
  const gchar *bad[] = {
    "{\"event\": {}}",
    "{\"event\": [\"log\"]}",
    "{\"event\": 1}",
    "{\"event\": \"log\", \"data\": {\"operation\": [], \"message\": {}}}",
    "{\"event\": \"log\", \"data\": {\"result\": 3}}",
    "{\"event\": \"progress\", \"data\": {\"fraction\": [1]}}",
    "{\"event\": \"progress\", \"data\": {\"fraction\": \"0.5\"}}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree gchar *body = NULL;

      g_test_message ("%s", bad[i]);
      g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", token, bad[i], &body), ==, 400);
      g_assert_nonnull (strstr (body, "must be"));
    }
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", token,
                             "{\"event\": \"progress\", \"data\": {\"fraction\": 1}}", NULL), ==, 202);
  g_assert_cmpfloat (shoal_device_get_progress (fixture->device), ==, 1.0);
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", token,
                             "{\"event\": \"log\", \"data\": {\"operation\": null, \"message\": \"m\"}}", NULL), ==, 202);
}

typedef struct {
  guint16  port;
  gchar   *request;
  gchar   *response;
} RawRequest;

static gpointer
raw_request_thread (gpointer data)
{
  RawRequest *raw = data;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GString *response = g_string_new (NULL);
  gchar buffer[4096];
  gssize n;

  connection = g_socket_client_connect_to_host (client, "127.0.0.1", raw->port, NULL, &error);
  g_assert_no_error (error);
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)),
                             raw->request, strlen (raw->request), NULL, NULL, &error);
  g_assert_no_error (error);
  /* the body is never sent: the answer must come without it */
  while ((n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                                   buffer, sizeof buffer, NULL, &error)) > 0)
    g_string_append_len (response, buffer, n);
  g_assert_no_error (error);
  raw->response = g_string_free (response, FALSE);
  return NULL;
}

/* Sends @request (headers only) on a connection of its own and returns what
 * the server answers before it closes the connection */
static gchar *
raw_request (Fixture     *fixture,
             const gchar *request)
{
  g_autoptr(GUri) uri = g_uri_parse (fixture->base, G_URI_FLAGS_NONE, NULL);
  RawRequest raw = { (guint16) g_uri_get_port (uri), (gchar *) request, NULL };
  GThread *thread = g_thread_new ("raw-request", raw_request_thread, &raw);

  g_assert_true (shoal_test_wait_until (is_set, &raw.response, 10000));
  g_thread_join (thread);
  return raw.response;
}

/* libsoup reads a whole body before the handler runs: a 300 MB POST, even
 * without a token, took 600 MB of memory. Refusals now come before the body */
static void
test_agent_api_before_body (Fixture       *fixture,
                            gconstpointer  data)
{
  const gchar *token = shoal_device_get_token (fixture->device);
  g_autofree gchar *huge = NULL;
  g_autofree gchar *chunked = NULL;
  g_autofree gchar *anonymous = NULL;
  g_autofree gchar *good = NULL;
  g_autofree gchar *request_text = NULL;

  request_text = g_strdup_printf ("POST /agent/v1/event HTTP/1.1\r\nHost: localhost\r\n"
                                  "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                                  "Content-Length: 300000000\r\n\r\n", token);
  huge = raw_request (fixture, request_text);
  g_assert_true (g_str_has_prefix (huge, "HTTP/1.1 413 "));
  g_assert_nonnull (strstr (huge, "exceeds the limit"));
  g_clear_pointer (&request_text, g_free);
  request_text = g_strdup_printf ("POST /agent/v1/inventory HTTP/1.1\r\nHost: localhost\r\n"
                                  "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n", token);
  chunked = raw_request (fixture, request_text);
  g_assert_true (g_str_has_prefix (chunked, "HTTP/1.1 411 "));
  anonymous = raw_request (fixture, "POST /agent/v1/event HTTP/1.1\r\nHost: localhost\r\n"
                                    "X-Shoal-Device: d1\r\nContent-Length: 1000\r\n\r\n");
  g_assert_true (g_str_has_prefix (anonymous, "HTTP/1.1 401 "));
  g_assert_nonnull (strstr (anonymous, "missing device token"));
  /* a client that sends its body anyway still gets the answer */
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", NULL, "{\"event\": \"x\"}", NULL), ==, 401);
  /* and a request with a token and a small body goes through */
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", token, "{\"event\": \"x\"}", &good), ==, 202);
}

/* json-glib's parser recurses once per level: 200000 brackets overflowed
 * the stack and killed the daemon */
static void
test_agent_api_deep (Fixture       *fixture,
                     gconstpointer  data)
{
  const gchar *token = shoal_device_get_token (fixture->device);
  GString *deep = g_string_new ("{\"event\": \"x\", \"data\": ");
  g_autofree gchar *text = NULL;
  g_autofree gchar *body = NULL;

  for (guint i = 0; i < 200000; i++)
    g_string_append_c (deep, '[');
  for (guint i = 0; i < 200000; i++)
    g_string_append_c (deep, ']');
  g_string_append_c (deep, '}');
  text = g_string_free (deep, FALSE);
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", token, text, &body), ==, 400);
  g_assert_nonnull (strstr (body, "nested too deeply"));
  g_clear_pointer (&body, g_free);
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/inventory", token, text + strlen ("{\"event\": \"x\", \"data\": "), &body), ==, 422);
  g_assert_nonnull (strstr (body, "nested too deeply"));
  g_clear_pointer (&body, g_free);
  /* brackets in strings do not count, and 64 levels are fine */
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", token,
                             "{\"event\": \"x\", \"data\": \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}",
                             NULL), ==, 202);
}

static gboolean
give_instruction_cb (gpointer data)
{
  Fixture *fixture = data;
  g_autoptr(JsonNode) instruction = json_from_string ("{\"action\": \"reboot\"}", NULL);

  shoal_device_set_instruction (fixture->device, instruction);
  return G_SOURCE_REMOVE;
}


static void
test_agent_api_next (Fixture       *fixture,
                     gconstpointer  data)
{
  const gchar *token = shoal_device_get_token (fixture->device);
  g_autofree gchar *uri = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) response = NULL;
  g_autofree gchar *body = NULL;

  g_assert_cmpuint (request (fixture, "GET", "/agent/v1/next?after=0&wait=0", token, NULL, NULL), ==, 204);
  g_assert_cmpuint (request (fixture, "GET", "/agent/v1/next?after=x", token, NULL, NULL), ==, 400);

  /* long poll answered when the instruction arrives */
  uri = g_strdup_printf ("%sagent/v1/next?after=0&wait=10&token=%s", fixture->base, token);
  msg = soup_message_new ("GET", uri);
  soup_session_send_and_read_async (fixture->session, msg, G_PRIORITY_DEFAULT, NULL, sent_cb, &response);
  g_timeout_add (200, give_instruction_cb, fixture);
  g_assert_true (shoal_test_wait_until (is_set, &response, 5000));
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  body = g_strndup (g_bytes_get_data (response, NULL), g_bytes_get_size (response));
  g_assert_nonnull (strstr (body, "\"reboot\""));
  g_assert_nonnull (strstr (body, "\"serial\":1"));
  g_clear_pointer (&body, g_free);
  /* already delivered: after=1 waits again and times out */
  g_assert_cmpuint (request (fixture, "GET", "/agent/v1/next?after=1&wait=1", token, NULL, NULL), ==, 204);
}

/* The instruction of an answer of GET /agent/v1/next?after=@after,
 * with its serial in @serial */
static JsonObject *
next_instruction (Fixture *fixture,
                  guint64  after,
                  gint64  *serial)
{
  g_autofree gchar *path = g_strdup_printf ("/agent/v1/next?after=%" G_GUINT64_FORMAT "&wait=10", after);
  g_autofree gchar *body = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;

  g_assert_cmpuint (request (fixture, "GET", path, shoal_device_get_token (fixture->device), NULL, &body),
                    ==, 200);
  root = json_from_string (body, NULL);
  g_assert_nonnull (root);
  object = json_node_get_object (root);
  *serial = json_object_get_int_member (object, "serial");
  return json_object_ref (json_object_get_object_member (object, "instruction"));
}

/* The serial of an answer of GET /agent/v1/next, with its action */
static gint64
next_serial (Fixture     *fixture,
             guint64      after,
             const gchar *action)
{
  g_autoptr(JsonObject) instruction = NULL;
  gint64 serial;

  instruction = next_instruction (fixture, after, &serial);
  g_assert_cmpstr (json_object_get_string_member (instruction, "action"), ==, action);
  return serial;
}

static gboolean
device_installed (gpointer data)
{
  Fixture *fixture = data;

  return shoal_device_get_state (fixture->device) == SHOAL_DEVICE_STATE_INSTALLED;
}

static gboolean
at_reboot_step (gpointer data)
{
  Fixture *fixture = data;

  return g_strcmp0 (shoal_device_get_current_step (fixture->device), "reboot") == 0;
}

/* POST /agent/v1/event of @event with "serial": @serial (-1: none);
 * returns the answer's body */
static gchar *
post_event_of (Fixture     *fixture,
               const gchar *event,
               gint64       serial)
{
  g_autofree gchar *member = serial >= 0 ? g_strdup_printf (", \"serial\": %" G_GINT64_FORMAT, serial)
                                         : g_strdup ("");
  g_autofree gchar *body = g_strdup_printf ("{\"event\": \"%s\", \"data\": {\"disk\": \"/dev/sda\","
                                            " \"bytes\": 4096, \"fraction\": 0.5, \"image_sha256\": \"%064d\"}%s}",
                                            event, 0, member);
  gchar *answer = NULL;

  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", shoal_device_get_token (fixture->device),
                             body, &answer), ==, 202);
  return answer;
}

static void
post_event (Fixture     *fixture,
            const gchar *event)
{
  g_free (post_event_of (fixture, event, -1));
}

/* Deploys the device with a recipe of the steps sim and reboot (which
 * waits for "image-written", then gives the agent "reboot" and waits for
 * "rebooting"); returns the recipe */
static ShoalRecipe *
deploy_recipe (Fixture     *fixture,
               const gchar *json)
{
  ShoalRecipe *recipe = shoal_test_recipe_new (json);
  g_autoptr(GError) error = NULL;

  g_assert_true (shoal_controller_add_recipe (fixture->controller, recipe, &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_assign_recipe (fixture->controller, fixture->device,
                                                 shoal_recipe_get_name (recipe), &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_deploy (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
  return recipe;
}

static ShoalRecipe *
deploy_sim_reboot (Fixture *fixture)
{
  return deploy_recipe (fixture, "{\"name\": \"r\", \"steps\": ["
                        " {\"step\": \"sim\", \"id\": \"sim\", \"options\": {\"min-ms\": 1, \"max-ms\": 2}},"
                        " {\"step\": \"reboot\", \"id\": \"reboot\"}]}");
}

/* shoald stops and starts again (as a package upgrade does it), and
 * resumes the deployments */
static void
restart (Fixture     *fixture,
         ShoalRecipe *recipe)
{
  g_autoptr(GKeyFile) config = g_key_file_new ();
  g_autoptr(GError) error = NULL;

  shoal_controller_close (fixture->controller);
  g_clear_object (&fixture->server);
  g_clear_object (&fixture->controller);
  open_controller (fixture);
  fixture->device = shoal_controller_lookup_device (fixture->controller, "d1");
  g_assert_nonnull (fixture->device);
  /* resumes the deployment; no network boot service (it needs an
   * interface) */
  g_key_file_set_string (config, "pxe", "mode", "off");
  g_key_file_set_string (config, "pxe", "tftp-port", "0");
  shoal_controller_set_config (fixture->controller, config);
  g_assert_true (shoal_controller_add_recipe (fixture->controller, recipe, &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_start_services (fixture->controller, &error));
  g_assert_no_error (error);
}

/* An agent that saw serial N before shoald restarted asks for what comes
 * after N: the instruction the resumed step gives it has a serial above
 * N. The serial started again at 0 after a restart, so the agent was
 * answered 204 until the step timed out and the device failed */
static void
test_agent_api_next_after_restart (Fixture       *fixture,
                                   gconstpointer  data)
{
  g_autoptr(ShoalRecipe) recipe = deploy_sim_reboot (fixture);
  g_autoptr(GError) error = NULL;
  gint64 first, seen, after_restart;

  post_event (fixture, "image-written");
  first = next_serial (fixture, 0, "reboot");
  post_event (fixture, "rebooting");
  g_assert_true (shoal_test_wait_until (device_installed, fixture, 10000));

  /* the next deployment: the agent takes its reboot instruction */
  g_assert_true (shoal_controller_deploy (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
  post_event (fixture, "image-written");
  seen = next_serial (fixture, (guint64) first, "reboot");
  g_assert_cmpint (seen, >, first);

  /* the agent is told again once the step runs again: it asks for what
   * comes after the serial it saw, and gets it */
  restart (fixture, recipe);
  post_event (fixture, "image-written");
  after_restart = next_serial (fixture, (guint64) seen, "reboot");
  g_assert_cmpint (after_restart, >, seen);
  post_event (fixture, "rebooting");
  g_assert_true (shoal_test_wait_until (device_installed, fixture, 10000));
}

/* The agent is given a transfer, as by a transfer step; returns its serial */
static guint64
give_transfer (Fixture *fixture)
{
  g_autoptr(JsonNode) transfer = json_from_string ("{\"action\": \"unicast-receive\", \"image\": \"a\"}", NULL);

  shoal_device_set_instruction (fixture->device, transfer);
  return shoal_device_get_instruction_serial (fixture->device);
}

/* An agent still carrying out an instruction of an earlier deployment
 * (the unicast receive of another image) posts its events with that
 * instruction's serial: the next deployment's steps do not take them, nor
 * does its progress move. Before, an event named no instruction, and the
 * old transfer's "image-written" was taken by the new deployment's step */
static void
test_agent_api_stale_events (Fixture       *fixture,
                             gconstpointer  data)
{
  guint64 old_serial = give_transfer (fixture);
  G_GNUC_UNUSED g_autoptr(ShoalRecipe) recipe = deploy_sim_reboot (fixture);
  g_autofree gchar *answer = NULL;
  gint64 reboot;

  /* past the sim step, whose progress ends at 1 */
  g_assert_true (shoal_test_wait_until (at_reboot_step, fixture, 10000));
  /* the old instruction's events: dropped */
  answer = post_event_of (fixture, "progress", (gint64) old_serial);
  g_assert_nonnull (strstr (answer, "stale"));
  g_clear_pointer (&answer, g_free);
  g_assert_cmpfloat (shoal_device_get_progress (fixture->device), ==, 0.0);
  answer = post_event_of (fixture, "image-written", (gint64) old_serial);
  g_assert_nonnull (strstr (answer, "stale"));
  g_clear_pointer (&answer, g_free);
  g_assert_true (journal_has (fixture, "event image-written of instruction"));
  /* the reboot step still waits for its image-written */
  g_assert_cmpuint (request (fixture, "GET", "/agent/v1/next?after=0&wait=1",
                             shoal_device_get_token (fixture->device), NULL, NULL), ==, 204);

  /* one without a serial (an older agent) is taken, as before */
  answer = post_event_of (fixture, "image-written", -1);
  g_assert_nonnull (strstr (answer, "accepted"));
  g_clear_pointer (&answer, g_free);
  reboot = next_serial (fixture, old_serial, "reboot");
  g_assert_cmpint (reboot, >, (gint64) old_serial);
  /* one of the current instruction is taken */
  answer = post_event_of (fixture, "rebooting", reboot);
  g_assert_nonnull (strstr (answer, "accepted"));
  g_assert_true (shoal_test_wait_until (device_installed, fixture, 10000));
}

/* A cancelled deployment's agent, in the middle of an instruction (a
 * transfer), is told to stop: its long poll is answered {"action":
 * "wait"}, and what it posts of the instruction it stopped is stale for
 * the next deployment. Before, cancel left the instruction in place and
 * the agent was told nothing: it went on writing the old image */
static void
test_agent_api_cancel_stops_agent (Fixture       *fixture,
                                   gconstpointer  data)
{
  G_GNUC_UNUSED g_autoptr(ShoalRecipe) recipe = deploy_sim_reboot (fixture);
  /* a transfer step of this deployment gave the agent its instruction */
  guint64 transfer_serial = give_transfer (fixture);
  g_autoptr(JsonObject) told = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *answer = NULL;
  gint64 wait_serial;

  g_assert_true (shoal_controller_cancel (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
  told = next_instruction (fixture, transfer_serial, &wait_serial);
  g_assert_cmpint (wait_serial, >, (gint64) transfer_serial);
  g_assert_cmpstr (json_object_get_string_member (told, "action"), ==, "wait");
  g_assert_cmpstr (json_object_get_string_member (told, "reason"), ==, "cancelled");

  /* deployed again: the stopped transfer's late report is not this
   * deployment's image */
  g_assert_true (shoal_controller_deploy (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
  answer = post_event_of (fixture, "image-written", (gint64) transfer_serial);
  g_assert_nonnull (strstr (answer, "stale"));
  g_assert_cmpuint (request (fixture, "GET", "/agent/v1/next?after=0&wait=1",
                             shoal_device_get_token (fixture->device), NULL, NULL), ==, 204);
  g_assert_true (shoal_controller_cancel (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
}

/* A failed deployment's agent is told to stop as well */
static void
test_agent_api_fail_stops_agent (Fixture       *fixture,
                                 gconstpointer  data)
{
  G_GNUC_UNUSED g_autoptr(ShoalRecipe) recipe =
    deploy_recipe (fixture, "{\"name\": \"f\", \"steps\": ["
                   " {\"step\": \"sim\", \"id\": \"sim\", \"options\": {\"min-ms\": 1, \"max-ms\": 2,"
                   " \"fail-rate\": 1}}]}");
  g_autoptr(JsonObject) told = NULL;
  gint64 serial;

  told = next_instruction (fixture, 0, &serial);
  g_assert_cmpstr (json_object_get_string_member (told, "action"), ==, "wait");
  g_assert_cmpstr (json_object_get_string_member (told, "reason"), ==, "failed");
  g_assert_cmpint (shoal_device_get_state (fixture->device), ==, SHOAL_DEVICE_STATE_FAILED);
}

#define TOKEN_WARNING "the boot script was requested again after the agent claimed its token"

/* the agent's side of the reboot step: the image is written, it takes the
 * reboot instruction (after serial @after) and reboots; the device is
 * installed */
static void
finish_run (Fixture *fixture,
            guint64  after)
{
  post_event (fixture, "image-written");
  next_serial (fixture, after, "reboot");
  post_event (fixture, "rebooting");
  g_assert_true (shoal_test_wait_until (device_installed, fixture, 10000));
}

/* the answer of GET /agent/v1/next?after=@after to the agent of a
 * deployment that another one replaced, and nothing else */
static gchar *
reboot_answer (guint64 after)
{
  return g_strdup_printf ("{\"serial\":%" G_GUINT64_FORMAT ",\"instruction\":"
                          "{\"action\":\"reboot\",\"reason\":\"superseded\"}}", after + 1);
}

/* whether GET /agent/v1/next?after=@after with @token is answered with
 * reboot_answer() (401 otherwise) */
static gboolean
told_to_reboot (Fixture     *fixture,
                const gchar *token,
                guint64      after)
{
  g_autofree gchar *path = g_strdup_printf ("/agent/v1/next?after=%" G_GUINT64_FORMAT "&wait=0", after);
  g_autofree gchar *expected = reboot_answer (after);
  g_autofree gchar *body = NULL;
  guint status = request (fixture, "GET", path, token, NULL, &body);

  g_assert_true (status == 200 || status == 401);
  if (status == 200)
    g_assert_cmpstr (body, ==, expected);
  return status == 200;
}

/* whether @token is taken by the agent API (GET /agent/v1/next, 204
 * with nothing to do, 200 with an instruction) */
static gboolean
token_works (Fixture     *fixture,
             const gchar *token)
{
  guint status = request (fixture, "GET", "/agent/v1/next?after=0&wait=0", token, NULL, NULL);

  g_assert_true (status == 200 || status == 204 || status == 401);
  return status != 401;
}

/* Each deployment has a token of its own; the previous one is refused at
 * once. The token made at enroll stayed the device's for good before:
 * whoever once had it spoke for the device in every later deployment */
static void
test_agent_api_token_per_deployment (Fixture       *fixture,
                                     gconstpointer  data)
{
  g_autofree gchar *enrolled = shoal_device_dup_token (fixture->device);
  g_autofree gchar *first = NULL;
  g_autoptr(ShoalRecipe) recipe = NULL;
  g_autoptr(GError) error = NULL;

  recipe = deploy_sim_reboot (fixture);
  first = shoal_device_dup_token (fixture->device);
  g_assert_cmpstr (first, !=, enrolled);
  g_assert_false (token_works (fixture, enrolled));
  g_assert_true (token_works (fixture, first));
  finish_run (fixture, 0);
  /* installed: the token still works until the next deployment */
  g_assert_true (token_works (fixture, first));

  g_assert_true (shoal_controller_deploy (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (shoal_device_get_token (fixture->device), !=, first);
  g_assert_true (shoal_controller_lookup_device_by_token (fixture->controller, first) == NULL);
  /* its agent is told to reboot, and refused anything else (see
   * redeploy-reboots-agent) until this deployment's token is claimed */
  g_assert_true (told_to_reboot (fixture, first, 0));
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", first, "{\"event\": \"x\"}", NULL), ==, 401);
  g_assert_true (token_works (fixture, shoal_device_get_token (fixture->device)));
  g_assert_false (token_works (fixture, first));
  finish_run (fixture, 0);
}

/* The boot script hands out the token until the agent has used it; after
 * that, whoever asks for the script (the machine booting again, or anyone
 * who knows its MAC address) gets a new one, the claimed one refused, and
 * the journal says so. Before, the script handed anyone the token the
 * agent was using */
static void
test_agent_api_token_claimed (Fixture       *fixture,
                              gconstpointer  data)
{
  G_GNUC_UNUSED g_autoptr(ShoalRecipe) recipe = deploy_sim_reboot (fixture);
  g_autofree gchar *claimed = shoal_controller_issue_boot_token (fixture->controller, fixture->device);
  g_autofree gchar *issued = NULL;
  g_autofree gchar *again = NULL;

  g_assert_cmpstr (claimed, ==, shoal_device_get_token (fixture->device));
  /* the loader's first request */
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/inventory", claimed, GOOD_INVENTORY, NULL), ==, 202);
  g_assert_false (journal_has (fixture, TOKEN_WARNING));

  issued = shoal_controller_issue_boot_token (fixture->controller, fixture->device);
  g_assert_nonnull (issued);
  g_assert_cmpstr (issued, !=, claimed);
  g_assert_cmpstr (issued, ==, shoal_device_get_token (fixture->device));
  g_assert_false (token_works (fixture, claimed));
  g_assert_true (journal_has (fixture, TOKEN_WARNING));
  g_assert_true (journal_has (fixture, "an earlier holder is locked out"));
  /* the new holder's agent claims it in turn; the deployment goes on */
  g_assert_true (token_works (fixture, issued));
  again = shoal_controller_issue_boot_token (fixture->controller, fixture->device);
  g_assert_cmpstr (again, !=, issued);
  g_assert_false (token_works (fixture, issued));
  finish_run (fixture, 0);
}

/* A machine that boots again before its agent has used the token (the
 * loader did not get that far) gets the same token, with no warning */
static void
test_agent_api_token_reboot_before_claim (Fixture       *fixture,
                                          gconstpointer  data)
{
  G_GNUC_UNUSED g_autoptr(ShoalRecipe) recipe = deploy_sim_reboot (fixture);
  g_autofree gchar *first = shoal_controller_issue_boot_token (fixture->controller, fixture->device);
  g_autofree gchar *second = shoal_controller_issue_boot_token (fixture->controller, fixture->device);

  g_assert_nonnull (first);
  g_assert_cmpstr (first, ==, second);
  g_assert_false (journal_has (fixture, TOKEN_WARNING));
  g_assert_true (token_works (fixture, second));
  finish_run (fixture, 0);
}

/* shoald restarts within a deployment: the token the agent holds still
 * works, and so does its claim (a boot script asked for after the
 * restart gets a new token, not the claimed one) */
static void
test_agent_api_token_restart (Fixture       *fixture,
                              gconstpointer  data)
{
  g_autoptr(ShoalRecipe) recipe = deploy_sim_reboot (fixture);
  g_autofree gchar *token = shoal_controller_issue_boot_token (fixture->controller, fixture->device);
  g_autofree gchar *issued = NULL;
  gint64 seen;

  post_event (fixture, "image-written");
  seen = next_serial (fixture, 0, "reboot");
  restart (fixture, recipe);
  g_assert_cmpstr (shoal_device_get_token (fixture->device), ==, token);
  g_assert_true (shoal_controller_lookup_device_by_token (fixture->controller, token) == fixture->device);
  /* asked before the agent's next request: the claim was kept */
  issued = shoal_controller_issue_boot_token (fixture->controller, fixture->device);
  g_assert_cmpstr (issued, !=, token);
  g_assert_false (token_works (fixture, token));
  g_assert_true (journal_has (fixture, TOKEN_WARNING));
  finish_run (fixture, (guint64) seen);
}

/* GET /agent/v1/next?after=@after&wait=10 with @token, not waited for:
 * the answer's body goes to *@response */
static SoupMessage *
start_next (Fixture      *fixture,
            const gchar  *token,
            guint64       after,
            GBytes      **response)
{
  g_autofree gchar *uri = g_strdup_printf ("%sagent/v1/next?after=%" G_GUINT64_FORMAT "&wait=10&token=%s",
                                           fixture->base, after, token);
  SoupMessage *msg = soup_message_new ("GET", uri);

  soup_session_send_and_read_async (fixture->session, msg, G_PRIORITY_DEFAULT, NULL, sent_cb, response);
  /* the server has it waiting */
  g_assert_false (shoal_test_wait_until (is_set, response, 300));
  return msg;
}

/* the status of start_next()'s answer, which comes within 3 s (not at the
 * end of its 10 s wait); its body in @body_out */
static guint
next_answer (SoupMessage  *msg,
             GBytes      **response,
             gchar       **body_out)
{
  g_assert_true (shoal_test_wait_until (is_set, response, 3000));
  *body_out = g_strndup (g_bytes_get_data (*response, NULL), g_bytes_get_size (*response));
  return soup_message_get_status (msg);
}

#define REBOOT_TOLD "the agent of an earlier deployment, still running, asked for its next instruction: told to reboot"

/* The agent of a cancelled (or failed) deployment waits, polling GET
 * /agent/v1/next, when the operator deploys the device again. Its long
 * poll under way and its next ones are answered with a reboot (journaled
 * once) that tells nothing of the new deployment; every other request of
 * its token is refused, and once this deployment's loader has claimed
 * the new token (the machine network-booted), that one too. Before, the
 * new token made every request of the agent 401: it polled for good, and
 * the machine never booted into the new deployment */
static void
test_agent_api_redeploy_reboots_agent (Fixture       *fixture,
                                       gconstpointer  data)
{
  G_GNUC_UNUSED g_autoptr(ShoalRecipe) recipe = deploy_sim_reboot (fixture);
  g_autofree gchar *old = shoal_device_dup_token (fixture->device);
  g_autofree gchar *expected = NULL, *body = NULL;
  g_autoptr(SoupMessage) waiting = NULL;
  g_autoptr(GBytes) response = NULL;
  g_autoptr(JsonObject) told = NULL;
  g_autoptr(GError) error = NULL;
  gint64 wait_serial;

  /* its agent ran, then was told to wait */
  g_assert_true (token_works (fixture, old));
  g_assert_true (shoal_controller_cancel (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
  told = next_instruction (fixture, 0, &wait_serial);
  g_assert_cmpstr (json_object_get_string_member (told, "action"), ==, "wait");

  waiting = start_next (fixture, old, (guint64) wait_serial, &response);
  g_assert_true (shoal_controller_deploy (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (next_answer (waiting, &response, &body), ==, 200);
  expected = reboot_answer ((guint64) wait_serial);
  g_assert_cmpstr (body, ==, expected);
  g_assert_true (told_to_reboot (fixture, old, (guint64) wait_serial));
  g_assert_cmpuint (journal_count (fixture, REBOOT_TOLD), ==, 1);
  /* nothing else */
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/event", old, "{\"event\": \"rebooting\"}", NULL), ==, 401);
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/inventory", old, GOOD_INVENTORY, NULL), ==, 401);
  g_assert_cmpuint (request (fixture, "GET", "/agent/v1/next?after=x", old, NULL, NULL), ==, 200);
  /* an instruction of the new deployment does not reach it */
  give_transfer (fixture);
  g_assert_true (told_to_reboot (fixture, old, 0));

  /* the machine network-booted: its loader claims the new token */
  g_assert_cmpuint (request (fixture, "POST", "/agent/v1/inventory", shoal_device_get_token (fixture->device),
                             GOOD_INVENTORY, NULL), ==, 202);
  g_assert_false (told_to_reboot (fixture, old, 0));
  g_assert_false (token_works (fixture, old));
  finish_run (fixture, shoal_device_get_instruction_serial (fixture->device));
}

/* The reboot answer outlives a restart of shoald (the token's SHA-256 is
 * kept in the device's metadata). Deployed twice before the machine
 * booted: the agent still running holds the oldest token, and nobody
 * the one between, which is refused */
static void
test_agent_api_redeploy_restart (Fixture       *fixture,
                                 gconstpointer  data)
{
  g_autoptr(ShoalRecipe) recipe = deploy_sim_reboot (fixture);
  g_autofree gchar *old = shoal_device_dup_token (fixture->device);
  g_autofree gchar *unclaimed = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (token_works (fixture, old));
  g_assert_true (shoal_controller_cancel (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_deploy (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
  unclaimed = shoal_device_dup_token (fixture->device);
  g_assert_true (shoal_controller_cancel (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_deploy (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
  /* kept as its SHA-256, not as itself */
  g_assert_nonnull (shoal_device_get_metadata (fixture->device, "agent.superseded-token"));
  g_assert_null (strstr (shoal_device_get_metadata (fixture->device, "agent.superseded-token"), old));
  /* the deployment under way (its start committed) */
  g_assert_true (shoal_test_wait_until (at_reboot_step, fixture, 10000));
  restart (fixture, recipe);
  g_assert_true (told_to_reboot (fixture, old, 0));
  g_assert_false (told_to_reboot (fixture, unclaimed, 0));
  g_assert_true (token_works (fixture, shoal_device_get_token (fixture->device)));
  g_assert_false (told_to_reboot (fixture, old, 0));
  finish_run (fixture, 0);
}

/* The operator cancels a deployment and deploys the device again; the
 * new deployment's agent reports its image written before the reboot
 * step waits for it (the event is kept for it). The cancelled
 * deployment's reboot step waited for that event too, and stayed listed
 * as waiting until the main loop handled its cancellation: an event that
 * came first went to it, and the new deployment waited for it until its
 * step timed out. After a restart (@data set) it is the resumed
 * deployment that is cancelled */
static void
test_agent_api_redeploy_event_first (Fixture       *fixture,
                                     gconstpointer  data)
{
  g_autoptr(ShoalRecipe) recipe = deploy_sim_reboot (fixture);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *body = NULL;

  g_assert_true (shoal_test_wait_until (at_reboot_step, fixture, 10000));
  if (data != NULL)
    {
      restart (fixture, recipe);
      g_assert_true (journal_has (fixture, "after a restart at step 2 of 2 (reboot)"));
    }
  g_assert_true (shoal_controller_cancel (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
  g_assert_true (shoal_controller_deploy (fixture->controller, fixture->device, &error));
  g_assert_no_error (error);
  post_event (fixture, "image-written");
  /* the reboot step takes it: the agent is told to reboot */
  g_assert_cmpuint (request (fixture, "GET", "/agent/v1/next?after=0&wait=5",
                             shoal_device_get_token (fixture->device), NULL, &body), ==, 200);
  g_assert_nonnull (strstr (body, "\"reboot\""));
  post_event (fixture, "rebooting");
  g_assert_true (shoal_test_wait_until (device_installed, fixture, 10000));
  g_assert_cmpuint (journal_count (fixture, "Image written and verified"), ==, 1);
}

/* A boot script re-issued the token while its holder's long poll waited:
 * the instruction that comes next answers the poll with 401, not with
 * the instruction, which went to the holder of the claimed token before */
static void
test_agent_api_reissue_ends_long_poll (Fixture       *fixture,
                                       gconstpointer  data)
{
  G_GNUC_UNUSED g_autoptr(ShoalRecipe) recipe = deploy_sim_reboot (fixture);
  g_autofree gchar *claimed = shoal_controller_issue_boot_token (fixture->controller, fixture->device);
  g_autofree gchar *issued = NULL, *body = NULL;
  g_autoptr(SoupMessage) waiting = NULL;
  g_autoptr(GBytes) response = NULL;

  g_assert_true (token_works (fixture, claimed));
  waiting = start_next (fixture, claimed, 0, &response);
  issued = shoal_controller_issue_boot_token (fixture->controller, fixture->device);
  g_assert_cmpstr (issued, !=, claimed);
  /* the reboot step gives the device its instruction */
  post_event (fixture, "image-written");
  g_assert_cmpuint (next_answer (waiting, &response, &body), ==, 401);
  g_assert_null (strstr (body, "reboot"));
  g_assert_false (told_to_reboot (fixture, claimed, 0));
  finish_run (fixture, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/shoal/agent-api/auth", test_agent_api_auth);
  ADD ("/shoal/agent-api/inventory", test_agent_api_inventory);
  ADD ("/shoal/agent-api/events", test_agent_api_events);
  ADD ("/shoal/agent-api/error-event", test_agent_api_error_event);
  ADD ("/shoal/agent-api/next", test_agent_api_next);
  ADD ("/shoal/agent-api/next-after-restart", test_agent_api_next_after_restart);
  ADD ("/shoal/agent-api/token-per-deployment", test_agent_api_token_per_deployment);
  ADD ("/shoal/agent-api/token-claimed", test_agent_api_token_claimed);
  ADD ("/shoal/agent-api/token-reboot-before-claim", test_agent_api_token_reboot_before_claim);
  ADD ("/shoal/agent-api/token-restart", test_agent_api_token_restart);
  ADD ("/shoal/agent-api/redeploy-reboots-agent", test_agent_api_redeploy_reboots_agent);
  ADD ("/shoal/agent-api/redeploy-restart", test_agent_api_redeploy_restart);
  ADD ("/shoal/agent-api/redeploy-event-first", test_agent_api_redeploy_event_first);
  g_test_add ("/shoal/agent-api/redeploy-event-first-restart", Fixture, "restart", fixture_setup,
              test_agent_api_redeploy_event_first, fixture_teardown);
  ADD ("/shoal/agent-api/reissue-ends-long-poll", test_agent_api_reissue_ends_long_poll);
  ADD ("/shoal/agent-api/stale-events", test_agent_api_stale_events);
  ADD ("/shoal/agent-api/cancel-stops-agent", test_agent_api_cancel_stops_agent);
  ADD ("/shoal/agent-api/fail-stops-agent", test_agent_api_fail_stops_agent);
  ADD ("/shoal/agent-api/deep", test_agent_api_deep);
  ADD ("/shoal/agent-api/log-limits", test_agent_api_log_limits);
  ADD ("/shoal/agent-api/event-types", test_agent_api_event_types);
  ADD ("/shoal/agent-api/before-body", test_agent_api_before_body);
#undef ADD
  return g_test_run ();
}
