/* test-target.c: the target programs' pieces (JSON, HTTP client, newc
 * extraction, inventory collection, unicast image write) and the agent
 * itself against a loopback HTTP server
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <sched.h>
#include <shoal.h>
#include <signal.h>
#include <linux/filter.h>
#if __has_include (<linux/openat2.h>)
#include <linux/openat2.h>
#endif
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sa-archive.h"
#include "sa-config.h"
#include "sa-gpt.h"
#include "sa-http.h"
#include "sa-image.h"
#include "sa-inventory.h"
#include "sa-json.h"
#include "target-test-loop.h"
#include "target-test-md.h"
#include "shoal-manifest.h"

/* --- a loopback server in its own thread ------------------------------- */

typedef struct {
  GThread      *thread;
  GMainContext *context;
  GMainLoop    *loop;
  SoupServer   *server;
  guint         port;
  GMutex        lock;
  GCond         cond;
  GPtrArray    *events;      /* "name data-json" */
  gchar        *instruction; /* served once on /agent/v1/next */
  GBytes       *image;
  gchar        *manifest;
  gint          corrupt_chunk;
  guint32       chunk;
  guint         chunk_requests;
  guint         zero_run;    /* zero chunks from chunk 2 on (at least 1) */
  guint         chunk_delay_ms;     /* each chunk answered this late */
  guint         newer_after_chunks; /* once this many chunks were asked
                                     * for (0: never), instruction 2 "wait"
                                     * is served after 1 */
  guint         refused;     /* requests answered 401 */
} TestServer;

static void
reply (SoupServerMessage *msg, guint status, const gchar *type, const void *data, gsize len)
{
  soup_server_message_set_status (msg, status, NULL);
  if (data != NULL)
    soup_server_message_set_response (msg, type, SOUP_MEMORY_COPY, data, len);
}

static void
misc_cb (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  const gchar *auth = soup_message_headers_get_one (req, "Authorization");

  if (g_strcmp0 (path, "/plain") == 0)
    reply (msg, 200, "text/plain", "hello", 5);
  else if (g_strcmp0 (path, "/chunked") == 0)
    {
      SoupMessageBody *out = soup_server_message_get_response_body (msg);

      soup_message_headers_set_encoding (soup_server_message_get_response_headers (msg), SOUP_ENCODING_CHUNKED);
      soup_server_message_set_status (msg, 200, NULL);
      soup_message_body_append (out, SOUP_MEMORY_STATIC, "chunk-one,", 10);
      soup_message_body_append (out, SOUP_MEMORY_STATIC, "chunk-two", 9);
      soup_message_body_complete (out);
    }
  else if (g_strcmp0 (path, "/echo") == 0)
    {
      g_autofree gchar *text = g_strdup_printf ("%s|%.*s", auth ? auth : "-", (int) body->length, body->data);

      reply (msg, 201, "text/plain", text, strlen (text));
    }
  else if (g_strcmp0 (path, "/empty") == 0)
    reply (msg, 204, NULL, NULL, 0);
  else if (g_strcmp0 (path, "/big") == 0)
    {
      g_autofree gchar *big = g_malloc0 (3 << 20);

      reply (msg, 200, "application/octet-stream", big, 3 << 20);
    }
  else
    reply (msg, 404, "text/plain", "nope", 4);
}

static gboolean
unpause_cb (gpointer msg)
{
  soup_server_message_unpause (msg);
  return G_SOURCE_REMOVE;
}

static void
image_cb (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  TestServer *s = user_data;
  const guint8 *data = g_bytes_get_data (s->image, NULL);
  gsize size = g_bytes_get_size (s->image);
  guint index = 0;

  if (g_str_has_suffix (path, "/manifest"))
    {
      reply (msg, 200, "text/plain", s->manifest, strlen (s->manifest));
      return;
    }
  for (gsize off = 0; off < size; off += s->chunk, index++)
    {
      gsize n = MIN (s->chunk, size - off);
      uint8_t digest[32];
      char hex[65];

      shoal_manifest_digest (data + off, n, digest);
      shoal_manifest_digest_to_hex (digest, hex);
      if (g_str_has_suffix (path, hex))
        {
          g_autofree guint8 *copy = g_memdup2 (data + off, n);

          g_mutex_lock (&s->lock);
          s->chunk_requests++;
          g_mutex_unlock (&s->lock);
          if ((gint) index == s->corrupt_chunk)
            copy[0] ^= 0xff;
          reply (msg, 200, "application/octet-stream", copy, n);
          if (s->chunk_delay_ms > 0)
            {
              g_autoptr(GSource) later = g_timeout_source_new (s->chunk_delay_ms);

              soup_server_message_pause (msg);
              g_source_set_callback (later, unpause_cb, g_object_ref (msg), g_object_unref);
              g_source_attach (later, s->context);
            }
          return;
        }
    }
  reply (msg, 404, NULL, NULL, 0);
}

static void
agent_cb (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  TestServer *s = user_data;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  const gchar *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization");

  g_mutex_lock (&s->lock);
  if (g_strcmp0 (auth, "Bearer tok-superseded") == 0 && g_str_equal (path, "/agent/v1/next"))
    {
      /* the token of a deployment that another one replaced: its agent
       * is told to reboot, everything else is refused (shoal-agent-api.c) */
      const gchar *text = "{\"serial\":2,\"instruction\":{\"action\":\"reboot\",\"reason\":\"superseded\"}}";

      reply (msg, 200, "application/json", text, strlen (text));
      g_mutex_unlock (&s->lock);
      return;
    }
  if (g_strcmp0 (auth, "Bearer tok-1") != 0)
    {
      s->refused++;
      reply (msg, 401, "text/plain", "bad token", 9);
      g_mutex_unlock (&s->lock);
      return;
    }
  if (g_str_equal (path, "/agent/v1/event"))
    {
      g_autoptr(JsonNode) node = json_from_string (body->data, NULL);
      JsonObject *o = node != NULL ? json_node_get_object (node) : NULL;
      g_autofree gchar *data = o ? json_to_string (json_object_get_member (o, "data"), FALSE) : NULL;
      gint64 serial = o ? json_object_get_int_member_with_default (o, "serial", -1) : -1;

      /* "name data", and " serial=N" when the event names its instruction */
      g_ptr_array_add (s->events, serial >= 0
                       ? g_strdup_printf ("%s %s serial=%" G_GINT64_FORMAT, json_object_get_string_member (o, "event"),
                                          data, serial)
                       : g_strdup_printf ("%s %s", o ? json_object_get_string_member (o, "event") : "?", data));
      g_cond_broadcast (&s->cond);
      reply (msg, 202, "application/json", "{}", 2);
    }
  else if (g_str_equal (path, "/agent/v1/next") && s->instruction != NULL
           && g_strcmp0 (g_hash_table_lookup (query, "after"), "0") == 0)
    {
      g_autofree gchar *text = g_strdup_printf ("{\"serial\":1,\"instruction\":%s}", s->instruction);

      reply (msg, 200, "application/json", text, strlen (text));
    }
  else if (g_str_equal (path, "/agent/v1/next") && s->newer_after_chunks > 0
           && s->chunk_requests >= s->newer_after_chunks
           && g_strcmp0 (g_hash_table_lookup (query, "after"), "1") == 0)
    {
      const gchar *text = "{\"serial\":2,\"instruction\":{\"action\":\"wait\",\"reason\":\"cancelled\"}}";

      reply (msg, 200, "application/json", text, strlen (text));
    }
  else
    reply (msg, 204, NULL, NULL, 0);
  g_mutex_unlock (&s->lock);
}

static gpointer
server_thread (gpointer data)
{
  TestServer *s = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) sa = g_inet_socket_address_new (lo, 0);
  GSList *uris;

  g_main_context_push_thread_default (s->context);
  s->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (s->server, "/agent", agent_cb, s, NULL);
  soup_server_add_handler (s->server, "/images", image_cb, s, NULL);
  soup_server_add_handler (s->server, NULL, misc_cb, s, NULL);
  g_assert_true (soup_server_listen (s->server, sa, 0, &error));
  uris = soup_server_get_uris (s->server);
  g_mutex_lock (&s->lock);
  s->port = (guint) g_uri_get_port (uris->data);
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  g_main_loop_run (s->loop);
  soup_server_disconnect (s->server);
  g_clear_object (&s->server);
  g_main_context_pop_thread_default (s->context);
  return NULL;
}

static TestServer *
test_server_new (void)
{
  TestServer *s = g_new0 (TestServer, 1);

  g_mutex_init (&s->lock);
  g_cond_init (&s->cond);
  s->events = g_ptr_array_new_with_free_func (g_free);
  s->corrupt_chunk = -1;
  s->context = g_main_context_new ();
  s->loop = g_main_loop_new (s->context, FALSE);
  s->thread = g_thread_new ("test-server", server_thread, s);
  g_mutex_lock (&s->lock);
  while (s->port == 0)
    g_cond_wait (&s->cond, &s->lock);
  g_mutex_unlock (&s->lock);
  return s;
}

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
test_server_free (TestServer *s)
{
  g_main_context_invoke (s->context, quit_cb, s->loop);
  g_thread_join (s->thread);
  g_main_loop_unref (s->loop);
  g_main_context_unref (s->context);
  g_ptr_array_unref (s->events);
  g_clear_pointer (&s->image, g_bytes_unref);
  g_free (s->manifest);
  g_free (s->instruction);
  g_mutex_clear (&s->lock);
  g_cond_clear (&s->cond);
  g_free (s);
}

static gchar *
url_of (TestServer *s, const gchar *path)
{
  return g_strdup_printf ("http://127.0.0.1:%u%s", s->port, path);
}

/* --- JSON ---------------------------------------------------------------- */

static void
test_json (void)
{
  const gchar *good = " {\"a\": [1, 2.5, -3e2, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\\\"\","
                      " \"o\": {\"k\": \"v\"}, \"a\": 7} ";
  const gchar *bad[] = { "", "{", "{\"a\" 1}", "[1,]", "\"\\ud800\"", "tru", "{\"a\":1} x", "\"a\x01\"",
                         "01x", "{\"a\":\"\\u0000\"}" };
  char err[128];
  SaJson *root = sa_json_parse (good, strlen (good), err, sizeof err);
  g_autoptr(GString) deep = g_string_new (NULL);

  g_assert_nonnull (root);
  g_assert_cmpint (sa_json_get_int (root, "a", 0), ==, 7);  /* the last duplicate wins */
  g_assert_cmpstr (sa_json_get_string (root, "s"), ==, "x\xc3\xa9\xf0\x9f\x98\x80\n\"");
  g_assert_cmpstr (sa_json_get_string (sa_json_get (root, "o"), "k"), ==, "v");
  g_assert_null (sa_json_get_string (root, "missing"));
  sa_json_free (root);
  {
    const gchar *numbers = "{\"huge\": 1e300, \"tiny\": -1e300, \"two63\": 9223372036854775808,"
                           " \"max\": 9223372036854774784, \"min\": -9223372036854775808, \"frac\": -2.5}";

    root = sa_json_parse (numbers, strlen (numbers), err, sizeof err);
    g_assert_nonnull (root);
    g_assert_cmpint (sa_json_get_int (root, "huge", -1), ==, -1);
    g_assert_cmpint (sa_json_get_int (root, "tiny", -1), ==, -1);
    g_assert_cmpint (sa_json_get_int (root, "two63", -1), ==, -1);
    g_assert_cmpint (sa_json_get_int (root, "max", -1), ==, G_GINT64_CONSTANT (9223372036854774784));
    g_assert_cmpint (sa_json_get_int (root, "min", -1), ==, G_MININT64);
    g_assert_cmpint (sa_json_get_int (root, "frac", 0), ==, -2);
    sa_json_free (root);
  }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      root = sa_json_parse (bad[i], strlen (bad[i]), err, sizeof err);
      g_test_message ("%s -> %s", bad[i], err);
      g_assert_null (root);
      g_assert_cmpstr (err, !=, "");
    }
  for (guint i = 0; i < 200; i++)
    g_string_append_c (deep, '[');
  g_assert_null (sa_json_parse (deep->str, deep->len, err, sizeof err));
  g_assert_nonnull (strstr (err, "deeply"));
}

static void
test_json_writer (void)
{
  SaBuf buf;
  g_autoptr(JsonNode) node = NULL;

  sa_buf_init (&buf);
  sa_json_append_string (&buf, "a\"b\\c\n\x01\x7f");
  node = json_from_string (buf.data, NULL);
  g_assert_cmpstr (json_node_get_string (node), ==, "a\"b\\c\n\x01\x7f");
  sa_buf_clear (&buf);
}

/* --- HTTP --------------------------------------------------------------- */

static void
test_http (void)
{
  TestServer *s = test_server_new ();
  g_autofree gchar *plain = url_of (s, "/plain");
  g_autofree gchar *chunked = url_of (s, "/chunked");
  g_autofree gchar *echo = url_of (s, "/echo");
  g_autofree gchar *empty = url_of (s, "/empty");
  g_autofree gchar *big = url_of (s, "/big");
  g_autofree gchar *missing = url_of (s, "/missing");
  SaHttpResponse resp;
  char err[256];
  SaUrl u;

  {
    SaHttpRequest req = { .url = plain };
    g_assert_cmpint (sa_http_do (&req, &resp, err, sizeof err), ==, 0);
    g_assert_cmpint (resp.status, ==, 200);
    g_assert_cmpstr (resp.body.data, ==, "hello");
    sa_http_response_clear (&resp);
  }
  {
    SaHttpRequest req = { .url = chunked };
    g_assert_cmpint (sa_http_do (&req, &resp, err, sizeof err), ==, 0);
    g_assert_cmpstr (resp.body.data, ==, "chunk-one,chunk-two");
    sa_http_response_clear (&resp);
  }
  {
    SaHttpRequest req = { .method = "POST", .url = echo, .token = "t0k", .body = "{\"x\":1}", .body_len = 7 };
    g_assert_cmpint (sa_http_do (&req, &resp, err, sizeof err), ==, 0);
    g_assert_cmpint (resp.status, ==, 201);
    g_assert_cmpstr (resp.body.data, ==, "Bearer t0k|{\"x\":1}");
    sa_http_response_clear (&resp);
  }
  {
    SaHttpRequest req = { .url = empty };
    g_assert_cmpint (sa_http_do (&req, &resp, err, sizeof err), ==, 0);
    g_assert_cmpint (resp.status, ==, 204);
    sa_http_response_clear (&resp);
  }
  {
    SaHttpRequest req = { .url = big, .max_body = 1 << 20 };
    g_assert_cmpint (sa_http_do (&req, &resp, err, sizeof err), ==, -1);
    g_test_message ("%s", err);
    sa_http_response_clear (&resp);
  }
  {
    SaHttpRequest req = { .url = missing };
    g_assert_cmpint (sa_http_do (&req, &resp, err, sizeof err), ==, 0);
    g_assert_cmpint (resp.status, ==, 404);
    sa_http_response_clear (&resp);
  }
  test_server_free (s);
  {
    SaHttpRequest req = { .url = "http://127.0.0.1:1/x", .timeout_ms = 2000 };
    g_assert_cmpint (sa_http_do (&req, &resp, err, sizeof err), ==, -1);
    g_assert_nonnull (strstr (err, "connecting to 127.0.0.1:1"));
    sa_http_response_clear (&resp);
  }
  g_assert_cmpint (sa_url_parse ("http://[::1]:8080/a/b", &u), ==, 0);
  g_assert_cmpstr (u.host, ==, "::1");
  g_assert_cmpint (u.port, ==, 8080);
  g_assert_cmpstr (u.path, ==, "/a/b");
  g_assert_cmpint (sa_url_parse ("http://10.0.0.1", &u), ==, 0);
  g_assert_cmpstr (u.path, ==, "/");
  g_assert_cmpint (sa_url_parse ("https://10.0.0.1/", &u), ==, -1);
  g_assert_cmpint (sa_url_parse ("http://10.0.0.1:99999/", &u), ==, -1);
  g_assert_cmpint (sa_url_parse ("http://:80/", &u), ==, -1);
}

/* --- newc ------------------------------------------------------------------ */

static void
newc_entry (GString *out, const gchar *name, guint mode, const gchar *data)
{
  gsize size = data ? strlen (data) : 0;

  g_string_append_printf (out, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
                          1u, mode, 0u, 0u, 1u, 0u, (guint) size, 0u, 0u, 0u, 0u, (guint) strlen (name) + 1, 0u);
  g_string_append_len (out, name, (gssize) strlen (name) + 1);
  while (out->len % 4)
    g_string_append_c (out, '\0');
  if (size)
    g_string_append_len (out, data, (gssize) size);
  while (out->len % 4)
    g_string_append_c (out, '\0');
}

static void
test_newc (void)
{
  g_autofree gchar *dir = g_dir_make_tmp ("shoal-newc-XXXXXX", NULL);
  g_autoptr(GString) a = g_string_new (NULL);
  g_autoptr(GString) evil = g_string_new (NULL);
  g_autofree gchar *path = g_build_filename (dir, "etc/shoal/agent.conf", NULL);
  g_autofree gchar *link = g_build_filename (dir, "bin/sh", NULL);
  g_autofree gchar *contents = NULL;
  g_autofree gchar *target = NULL;
  g_autofree gchar *rm = g_strdup_printf ("rm -rf %s", dir);
  char err[256];

  newc_entry (a, "etc", 040755, NULL);
  newc_entry (a, "etc/shoal/agent.conf", 0100600, "server=x\n");
  newc_entry (a, "bin/sh", 0120777, "busybox");
  newc_entry (a, "TRAILER!!!", 0, NULL);
  g_string_append_len (a, "\0\0\0\0\0\0\0\0", 8);
  newc_entry (a, "second", 0100644, "2");
  newc_entry (a, "TRAILER!!!", 0, NULL);
  g_assert_cmpint (sa_newc_extract (a->str, a->len, dir, err, sizeof err), ==, 4);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "server=x\n");
  target = g_file_read_link (link, NULL);
  g_assert_cmpstr (target, ==, "busybox");

  newc_entry (evil, "../escape", 0100644, "x");
  newc_entry (evil, "TRAILER!!!", 0, NULL);
  g_assert_cmpint (sa_newc_extract (evil->str, evil->len, dir, err, sizeof err), ==, -1);
  g_assert_nonnull (strstr (err, "refusing"));
  g_string_truncate (evil, 0);
  newc_entry (evil, "/abs", 0100644, "x");
  g_assert_cmpint (sa_newc_extract (evil->str, evil->len, dir, err, sizeof err), ==, -1);
  /* no writing through a link the archive made, nor one already there */
  {
    g_autofree gchar *outside = g_dir_make_tmp ("shoal-newc-outside-XXXXXX", NULL);
    g_autofree gchar *escaped = g_build_filename (outside, "file", NULL);
    g_autofree gchar *escaped_dir = g_build_filename (outside, "sub", NULL);
    g_autofree gchar *inside = g_build_filename (dir, "in", NULL);
    g_autofree gchar *rm_outside = g_strdup_printf ("rm -rf %s", outside);
    const gchar *through[] = { "a/file", "a/sub", "./a/file", "b/file", "c/file" };

    g_string_truncate (evil, 0);
    newc_entry (evil, "a", 0120777, outside);
    newc_entry (evil, "b", 0120777, "a");
    newc_entry (evil, "in", 040755, NULL);
    newc_entry (evil, "in/c", 0120777, "../a");
    newc_entry (evil, "TRAILER!!!", 0, NULL);
    g_assert_cmpint (sa_newc_extract (evil->str, evil->len, dir, err, sizeof err), ==, 4);
    for (guint i = 0; i < G_N_ELEMENTS (through); i++)
      {
        g_autofree gchar *name = g_strdup (through[i]);

        g_string_truncate (evil, 0);
        if (g_str_has_prefix (name, "c/"))
          {
            g_free (name);
            name = g_strdup ("in/c/file");
          }
        newc_entry (evil, name, g_str_has_suffix (name, "sub") ? 040755 : 0100644, "x");
        newc_entry (evil, "TRAILER!!!", 0, NULL);
        g_assert_cmpint (sa_newc_extract (evil->str, evil->len, dir, err, sizeof err), ==, -1);
        g_test_message ("%s: %s", name, err);
        g_assert_nonnull (strstr (err, "refusing"));
      }
    g_assert_false (g_file_test (escaped, G_FILE_TEST_EXISTS));
    g_assert_false (g_file_test (escaped_dir, G_FILE_TEST_EXISTS));
    g_assert_true (g_file_test (inside, G_FILE_TEST_IS_DIR));
    /* a link to a file is no folder either */
    g_string_truncate (evil, 0);
    newc_entry (evil, "f", 0100644, "x");
    newc_entry (evil, "l", 0120777, "f");
    newc_entry (evil, "l/x", 0100644, "x");
    newc_entry (evil, "TRAILER!!!", 0, NULL);
    g_assert_cmpint (sa_newc_extract (evil->str, evil->len, dir, err, sizeof err), ==, -1);
    g_spawn_command_line_sync (rm_outside, NULL, NULL, NULL, NULL);
  }
  /* truncated */
  g_assert_cmpint (sa_newc_extract (a->str, 150, dir, err, sizeof err), ==, -1);
  g_assert_cmpint (sa_newc_extract ("070701zz", 8, dir, err, sizeof err), ==, -1);
  g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
}

/* Whether this kernel lets this process call openat2(2) (Linux 5.6) */
static gboolean
have_openat2 (void)
{
#if defined SYS_openat2 && defined RESOLVE_IN_ROOT
  struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
  long fd = syscall (SYS_openat2, AT_FDCWD, "/", &how, sizeof how);

  if (fd >= 0)
    close ((int) fd);
  return fd >= 0;
#else
  return FALSE;
#endif
}

static gboolean
skip_without_openat2 (void)
{
  if (have_openat2 ())
    return FALSE;
  g_test_skip ("openat2() is unavailable here (Linux 5.6 or later): links are refused, as /shoal/target/newc-no-openat2 checks");
  return TRUE;
}

/* The agent as plugins/agent generates it: folders first, then the files */
static void
newc_agent_archive (GString *a, const gchar *release)
{
  g_autofree gchar *mods = g_strdup_printf ("lib/modules/%s", release);
  g_autofree gchar *kernel = g_strdup_printf ("lib/modules/%s/kernel", release);
  g_autofree gchar *ko = g_strdup_printf ("lib/modules/%s/kernel/foo.ko", release);
  g_autofree gchar *dep = g_strdup_printf ("lib/modules/%s/modules.dep", release);

  newc_entry (a, "usr", 040755, NULL);
  newc_entry (a, "usr/sbin", 040755, NULL);
  newc_entry (a, "usr/sbin/shoal-agent", 0100755, "agent");
  newc_entry (a, "lib", 040755, NULL);
  newc_entry (a, "lib/modules", 040755, NULL);
  newc_entry (a, mods, 040755, NULL);
  newc_entry (a, kernel, 040755, NULL);
  newc_entry (a, ko, 0100644, "module");
  newc_entry (a, dep, 0100644, "kernel/foo.ko:\n");
  newc_entry (a, "TRAILER!!!", 0, NULL);
}

/* A merged-/usr loader root (Debian 12 and most current distributions):
 * lib -> usr/lib, relative or absolute; the agent's lib/modules lands in
 * usr/lib/modules, the link is kept, and an absolute link is resolved in
 * the root, not on this machine */
static void
test_newc_merged_usr (void)
{
  const gchar *targets[] = { "usr/lib", "/usr/lib" };

  if (skip_without_openat2 ())
    return;
  for (guint i = 0; i < G_N_ELEMENTS (targets); i++)
    {
      g_autofree gchar *dir = g_dir_make_tmp ("shoal-newc-XXXXXX", NULL);
      g_autofree gchar *release = g_path_get_basename (dir);
      g_autofree gchar *usr_lib = g_build_filename (dir, "usr", "lib", NULL);
      g_autofree gchar *lib = g_build_filename (dir, "lib", NULL);
      g_autofree gchar *ko = g_build_filename (usr_lib, "modules", release, "kernel", "foo.ko", NULL);
      g_autofree gchar *host = g_build_filename ("/usr/lib/modules", release, NULL);
      g_autofree gchar *contents = NULL;
      g_autofree gchar *link = NULL;
      g_autofree gchar *rm = g_strdup_printf ("rm -rf %s", dir);
      g_autoptr(GString) a = g_string_new (NULL);
      char err[512] = "";

      g_test_message ("lib -> %s", targets[i]);
      g_assert_cmpint (g_mkdir_with_parents (usr_lib, 0755), ==, 0);
      g_assert_cmpint (symlink (targets[i], lib), ==, 0);
      newc_agent_archive (a, release);
      g_assert_cmpint (sa_newc_extract (a->str, a->len, dir, err, sizeof err), ==, 9);
      g_assert_true (g_file_get_contents (ko, &contents, NULL, NULL));
      g_assert_cmpstr (contents, ==, "module");
      link = g_file_read_link (lib, NULL);
      g_assert_cmpstr (link, ==, targets[i]);
      g_assert_false (g_file_test (host, G_FILE_TEST_EXISTS));
      /* behind the link, names are refused as anywhere else */
      {
        g_autofree gchar *long_comp = g_strnfill (NAME_MAX + 1, 'a');
        g_autofree gchar *too_long = g_strdup_printf ("lib/%s/f", long_comp);
        const gchar *refused[] = { too_long, "lib/../escape", "/lib/abs" };
        const gchar *why[] = { g_strerror (ENAMETOOLONG), "refusing entry name lib/../escape",
                               "refusing entry name /lib/abs" };

        for (guint k = 0; k < G_N_ELEMENTS (refused); k++)
          {
            g_string_truncate (a, 0);
            newc_entry (a, refused[k], 0100644, "x");
            newc_entry (a, "TRAILER!!!", 0, NULL);
            g_assert_cmpint (sa_newc_extract (a->str, a->len, dir, err, sizeof err), ==, -1);
            g_test_message ("%s", err);
            g_assert_nonnull (strstr (err, why[k]));
          }
      }
      g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
    }
}

/* A destination and a folder outside it, both made anew, both removed
 * by newc_dirs_clear() */
typedef struct {
  gchar *dest;
  gchar *outside;
} NewcDirs;

static void
newc_dirs_init (NewcDirs *d, const gchar *outside_template)
{
  d->dest = g_dir_make_tmp ("shoal-newc-XXXXXX", NULL);
  d->outside = g_dir_make_tmp (outside_template, NULL);
  g_assert_nonnull (d->dest);
  g_assert_nonnull (d->outside);
}

static void
newc_dirs_clear (NewcDirs *d)
{
  gchar *dirs[] = { d->dest, d->outside };

  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autofree gchar *rm = g_strdup_printf ("rm -rf %s", dirs[i]);

      if (dirs[i] != NULL)
        g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
      g_free (dirs[i]);
    }
  d->dest = d->outside = NULL;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (NewcDirs, newc_dirs_clear)

/* Is @path an empty folder? */
static gboolean
dir_is_empty (const gchar *path)
{
  g_autoptr(GDir) d = g_dir_open (path, 0, NULL);

  return d != NULL && g_dir_read_name (d) == NULL;
}

/* Links the archive makes to /, to ../../.. and to a relative path
 * that, from the destination, leads to a sentinel folder on this
 * machine; then entries written through them. They land in the
 * destination, as they would with it as /; the sentinel stays empty */
static void
test_newc_link_escape (void)
{
  g_auto(NewcDirs) d = { NULL, NULL };
  g_autofree gchar *side = NULL;
  g_autoptr(GString) a = g_string_new (NULL);
  g_autoptr(GString) up = g_string_new (NULL);
  const gchar *links[][2] = { { "top", "/" }, { "up", "../../.." }, { "deep/up", "../../../../../../../../.." },
                              { "dot", "/./tmp/.." } };
  const gchar *rel;
  char err[512] = "";

  if (skip_without_openat2 ())
    return;
  newc_dirs_init (&d, "shoal-newc-sentinel-XXXXXX");
  rel = d.outside + 1;
  /* as many ".." as the destination has components: this machine's / */
  for (const gchar *p = d.dest; *p; p++)
    {
      if (*p == '/')
        g_string_append (up, "../");
    }
  side = g_strdup_printf ("%s%s", up->str, rel);
  newc_entry (a, "deep", 040755, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (links); i++)
    newc_entry (a, links[i][0], 0120777, links[i][1]);
  for (guint i = 0; i < G_N_ELEMENTS (links); i++)
    {
      g_autofree gchar *file = g_strdup_printf ("%s/%s/file-%u", links[i][0], rel, i);
      g_autofree gchar *sub = g_strdup_printf ("%s/%s/sub-%u", links[i][0], rel, i);

      newc_entry (a, file, 0100644, "x");
      newc_entry (a, sub, 040755, NULL);
    }
  newc_entry (a, "side", 0120777, side);
  newc_entry (a, "side/side-file", 0100644, "x");
  newc_entry (a, "TRAILER!!!", 0, NULL);
  g_assert_cmpint (sa_newc_extract (a->str, a->len, d.dest, err, sizeof err), ==, 1 + 3 * G_N_ELEMENTS (links) + 2);
  g_assert_true (dir_is_empty (d.outside));
  for (guint i = 0; i < G_N_ELEMENTS (links); i++)
    {
      g_autofree gchar *file = g_strdup_printf ("%s/%s/file-%u", d.dest, rel, i);
      g_autofree gchar *sub = g_strdup_printf ("%s/%s/sub-%u", d.dest, rel, i);

      g_assert_true (g_file_test (file, G_FILE_TEST_IS_REGULAR));
      g_assert_true (g_file_test (sub, G_FILE_TEST_IS_DIR));
    }
  {
    g_autofree gchar *file = g_strdup_printf ("%s/%s/side-file", d.dest, rel);

    g_assert_true (g_file_test (file, G_FILE_TEST_IS_REGULAR));
  }
}

/* A link to an absolute path outside the destination, one the archive
 * makes and one that was there: followed to that path within the
 * destination when it is a folder there, refused when it is not; the
 * folder outside is never written */
static void
test_newc_absolute_link (void)
{
  g_auto(NewcDirs) d = { NULL, NULL };
  g_autofree gchar *inside = NULL;
  g_autofree gchar *pre = NULL;
  g_autoptr(GString) a = g_string_new (NULL);
  const gchar *outside;
  char err[512] = "";

  if (skip_without_openat2 ())
    return;
  newc_dirs_init (&d, "shoal-newc-outside-XXXXXX");
  outside = d.outside;
  inside = g_build_filename (d.dest, outside, NULL);
  pre = g_build_filename (d.dest, "pre", NULL);

  /* nothing at that path within the destination: refused */
  newc_entry (a, "a", 0120777, outside);
  newc_entry (a, "a/file", 0100644, "x");
  newc_entry (a, "TRAILER!!!", 0, NULL);
  g_assert_cmpint (sa_newc_extract (a->str, a->len, d.dest, err, sizeof err), ==, -1);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, "refusing a/file: a is a symbolic link to nothing within"));
  g_assert_true (dir_is_empty (outside));

  /* a folder there: written into it */
  g_assert_cmpint (g_mkdir_with_parents (inside, 0755), ==, 0);
  g_assert_cmpint (symlink (outside, pre), ==, 0);
  g_string_truncate (a, 0);
  newc_entry (a, "a", 0120777, outside);
  newc_entry (a, "a/file", 0100644, "x");
  newc_entry (a, "a/sub", 040755, NULL);
  newc_entry (a, "a/sub/file", 0100644, "x");
  newc_entry (a, "pre/pre-file", 0100644, "x");
  newc_entry (a, "TRAILER!!!", 0, NULL);
  g_assert_cmpint (sa_newc_extract (a->str, a->len, d.dest, err, sizeof err), ==, 5);
  g_assert_true (dir_is_empty (outside));
  {
    const gchar *names[] = { "file", "sub/file", "pre-file" };

    for (guint i = 0; i < G_N_ELEMENTS (names); i++)
      {
        g_autofree gchar *path = g_build_filename (inside, names[i], NULL);

        g_assert_true (g_file_test (path, G_FILE_TEST_IS_REGULAR));
      }
  }
}

/* In a mount namespace of its own, a proc mounted at @path */
static gboolean
mount_own_proc (const gchar *path)
{
  return unshare (CLONE_NEWNS) == 0 && mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0
         && mount ("proc", path, "proc", 0, NULL) == 0;
}

/* Whether mount_own_proc() works here (root with CAP_SYS_ADMIN), tried in a child */
static gboolean
can_mount_proc (void)
{
  g_autofree gchar *dir = g_dir_make_tmp ("shoal-newc-proc-XXXXXX", NULL);
  int status = -1;
  pid_t pid = fork ();

  if (pid == 0)
    _exit (mount_own_proc (dir) ? 0 : 1);
  waitpid (pid, &status, 0);
  g_rmdir (dir);
  return WIFEXITED (status) && WEXITSTATUS (status) == 0;
}

/* A /proc magic link within the destination (its own /proc mounted, as
 * the loader's "/" has): not followed */
static void
test_newc_magic_link (void)
{
  g_autofree gchar *dir = NULL;
  g_autofree gchar *proc = NULL;
  g_autofree gchar *rm = NULL;
  g_autoptr(GString) a = g_string_new (NULL);
  char err[512] = "";

  if (skip_without_openat2 ())
    return;
  if (!g_test_subprocess ())
    {
      if (!can_mount_proc ())
        {
          g_test_skip ("cannot mount a proc of its own in a mount namespace of its own here");
          return;
        }
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
      return;
    }
  dir = g_dir_make_tmp ("shoal-newc-XXXXXX", NULL);
  proc = g_build_filename (dir, "proc", NULL);
  rm = g_strdup_printf ("rm -rf %s", dir);
  g_assert_cmpint (g_mkdir_with_parents (proc, 0755), ==, 0);
  g_assert_true (mount_own_proc (proc));
  /* /proc/self/cwd is this process's folder, outside the destination */
  newc_entry (a, "cwd", 0120777, "/proc/self/cwd");
  newc_entry (a, "cwd/file", 0100644, "x");
  newc_entry (a, "TRAILER!!!", 0, NULL);
  g_assert_cmpint (sa_newc_extract (a->str, a->len, dir, err, sizeof err), ==, -1);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, "refusing cwd/file: cwd is a symbolic link that loops, or passes through a /proc magic link"));
  g_assert_false (g_file_test ("file", G_FILE_TEST_EXISTS));
  umount2 (proc, MNT_DETACH);
  g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
}

/* Installs a seccomp filter under which openat2() fails with @err, as
 * on a kernel before 5.6 (ENOSYS) or in a container whose filter
 * refuses unknown system calls (EPERM) */
static gboolean
deny_openat2 (int err)
{
#if defined __NR_openat2
  struct sock_filter filter[] = {
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_openat2, 0, 1),
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((guint) err & SECCOMP_RET_DATA)),
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { .len = G_N_ELEMENTS (filter), .filter = filter };

  return prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
#else
  (void) err;
  return TRUE; /* no openat2 to deny: sa-archive.c has none either */
#endif
}

/* Without openat2() a link on the path is refused, as before, the error
 * naming the entry, the link and why; an archive with no links on its
 * paths is extracted as ever */
static void
test_newc_no_openat2 (gconstpointer data)
{
  int deny = GPOINTER_TO_INT (data);
  g_autofree gchar *dir = NULL;
  g_autofree gchar *usr_lib = NULL;
  g_autofree gchar *lib = NULL;
  g_autofree gchar *modules = NULL;
  g_autofree gchar *agent = NULL;
  g_autofree gchar *expected = NULL;
  g_autofree gchar *rm = NULL;
  g_autoptr(GString) a = g_string_new (NULL);
  char err[512] = "";

  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
      return;
    }
  dir = g_dir_make_tmp ("shoal-newc-XXXXXX", NULL);
  usr_lib = g_build_filename (dir, "usr", "lib", NULL);
  lib = g_build_filename (dir, "lib", NULL);
  modules = g_build_filename (usr_lib, "modules", NULL);
  agent = g_build_filename (dir, "usr", "sbin", "shoal-agent", NULL);
  rm = g_strdup_printf ("rm -rf %s", dir);
  g_assert_cmpint (g_mkdir_with_parents (usr_lib, 0755), ==, 0);
  g_assert_cmpint (symlink ("usr/lib", lib), ==, 0);
  g_assert_true (deny_openat2 (deny));
  newc_agent_archive (a, "6.1.0-test");
  g_assert_cmpint (sa_newc_extract (a->str, a->len, dir, err, sizeof err), ==, -1);
  g_test_message ("%s", err);
  expected = g_strdup_printf ("newc: refusing lib/modules: lib is a symbolic link, which is followed (within %s) "
                              "only with openat2(), and openat2() is unavailable here (%s; it needs Linux 5.6 "
                              "or later)", dir, g_strerror (deny));
  g_assert_cmpstr (err, ==, expected);
  g_assert_false (g_file_test (modules, G_FILE_TEST_EXISTS));
  /* a real lib/: extracted */
  g_assert_cmpint (unlink (lib), ==, 0);
  g_assert_cmpint (sa_newc_extract (a->str, a->len, dir, err, sizeof err), ==, 9);
  g_assert_true (g_file_test (agent, G_FILE_TEST_IS_REGULAR));
  g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
}

static void
test_config (void)
{
  SaConfig c;
  char err[128];

  g_assert_true (sa_config_parse ("# comment\nserver=http://10.0.0.1:8080\ntoken=abc\nmodules=a b c\nunknown=1\ndisk=",
                                  &c, err, sizeof err));
  g_assert_cmpstr (c.server, ==, "http://10.0.0.1:8080");
  g_assert_cmpstr (c.modules, ==, "a b c");
  g_assert_cmpstr (c.disk, ==, "");
  g_assert_null (c.image);
  sa_config_clear (&c);
  g_assert_false (sa_config_parse ("token=abc\n", &c, err, sizeof err));
  g_assert_nonnull (strstr (err, "server="));
}

/* --- inventory from a fake /sys and /proc ---------------------------------- */

static void
put (const gchar *root, const gchar *rel, const gchar *text)
{
  g_autofree gchar *path = g_build_filename (root, rel, NULL);
  g_autofree gchar *dir = g_path_get_dirname (path);

  g_mkdir_with_parents (dir, 0755);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

static void
put_link (const gchar *root, const gchar *rel, const gchar *target)
{
  g_autofree gchar *path = g_build_filename (root, rel, NULL);
  g_autofree gchar *dir = g_path_get_dirname (path);

  g_mkdir_with_parents (dir, 0755);
  g_assert_cmpint (symlink (target, path), ==, 0);
}

static void
put_pci (const gchar *root, const gchar *dev, const gchar *rel, const gchar *text)
{
  g_autofree gchar *path = g_strconcat (dev, rel, NULL);

  put (root, path, text);
}

static void
put_pci_link (const gchar *root, const gchar *dev, const gchar *rel, const gchar *target)
{
  g_autofree gchar *path = g_strconcat (dev, rel, NULL);

  put_link (root, path, target);
}

/* sa_inventory_collect() of @root, which must be valid against the schema */
static JsonNode *
collect_valid_inventory (const gchar *root)
{
  g_autofree gchar *json = sa_inventory_collect (root);
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(ShoalJsonSchema) schema = NULL;
  g_autoptr(GError) error = NULL;

  g_test_message ("%s", json);
  node = json_from_string (json, &error);
  g_assert_no_error (error);
  schema = shoal_json_schema_new_for_name ("inventory", &error);
  g_assert_no_error (error);
  g_assert_true (shoal_json_schema_validate (schema, node, &error));
  g_assert_no_error (error);
  return g_steal_pointer (&node);
}

static void
test_inventory_fake (void)
{
  g_autofree gchar *root = g_dir_make_tmp ("shoal-sysfs-XXXXXX", NULL);
  g_autofree gchar *rm = g_strdup_printf ("rm -rf %s", root);
  g_autoptr(JsonNode) node = NULL;
  JsonObject *o;
  const gchar *pci = "sys/devices/pci0000:00/0000:00:03.0";

  put (root, "proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU @ 2GHz\n\n"
                             "processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU @ 2GHz\n");
  put (root, "proc/meminfo", "MemTotal:        2048000 kB\nMemFree: 1 kB\n");
  put (root, "proc/sys/kernel/osrelease", "6.1.0-test\n");
  put (root, "sys/class/dmi/id/sys_vendor", "Acme\n");
  put (root, "sys/class/dmi/id/product_uuid", "5a5a0001-0000-4000-8000-000000000001\n");
  put (root, "sys/class/dmi/id/product_serial", "\n");
  put (root, "sys/firmware/efi/fw_platform_size", "64\n");
  put (root, "sys/bus/pci/drivers/e1000/.keep", "");
  put_pci (root, pci, "/vendor", "0x8086\n");
  put_pci (root, pci, "/device", "0x100e\n");
  put_pci (root, pci, "/subsystem_vendor", "0x1af4\n");
  put_pci (root, pci, "/subsystem_device", "0x1100\n");
  put_pci (root, pci, "/class", "0x020000\n");
  put_pci (root, pci, "/modalias", "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\n");
  put_pci_link (root, pci, "/driver", "../../../bus/pci/drivers/e1000");
  put_link (root, "sys/bus/pci/devices/0000:00:03.0", "../../../devices/pci0000:00/0000:00:03.0");
  put_pci (root, pci, "/net/eth0/address", "52:54:00:12:34:56\n");
  put_pci (root, pci, "/net/eth0/operstate", "up\n");
  put_pci (root, pci, "/net/eth0/carrier", "1\n");
  put_pci (root, pci, "/net/eth0/speed", "1000\n");
  put_pci_link (root, pci, "/net/eth0/device", "../../../0000:00:03.0");
  put_link (root, "sys/class/net/eth0", "../../devices/pci0000:00/0000:00:03.0/net/eth0");
  put (root, "sys/class/net/lo/address", "00:00:00:00:00:00\n");
  put (root, "sys/block/sda/size", "16384\n");
  put (root, "sys/block/sda/removable", "0\n");
  put (root, "sys/block/sda/queue/rotational", "0\n");
  put (root, "sys/block/sda/device/model", "QEMU HARDDISK   \n");
  put (root, "sys/block/sda/device/vendor", "ATA     \n");
  put (root, "sys/block/loop0/size", "0\n");
  node = collect_valid_inventory (root);
  o = json_node_get_object (node);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (o, "firmware"), "type"), ==, "uefi");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (o, "cpu"), "count"), ==, 2);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (o, "memory"), "total_bytes"), ==, 2048000 * 1024LL);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (o, "dmi"), "product_uuid"), ==,
                   "5a5a0001-0000-4000-8000-000000000001");
  g_assert_false (json_object_has_member (json_object_get_object_member (o, "dmi"), "product_serial"));
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (json_object_get_array_member (o, "pci"), 0), "driver"), ==, "e1000");
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o, "nics")), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (json_object_get_array_member (o, "nics"), 0), "link"), ==, "up");
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (o, "disks")), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (json_object_get_array_member (o, "disks"), 0), "model"), ==, "QEMU HARDDISK");
  g_assert_cmpint (json_object_get_int_member (json_array_get_object_element (json_object_get_array_member (o, "disks"), 0), "size_bytes"), ==, 16384 * 512);
  g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
}

/* put()s a block device @name of @sectors behind a device, with @ro */
static void
put_disk (const gchar *root, const gchar *name, const gchar *sectors, const gchar *ro)
{
  g_autofree gchar *size = g_strdup_printf ("sys/block/%s/size", name);
  g_autofree gchar *removable = g_strdup_printf ("sys/block/%s/removable", name);
  g_autofree gchar *rotational = g_strdup_printf ("sys/block/%s/queue/rotational", name);
  g_autofree gchar *ro_path = g_strdup_printf ("sys/block/%s/ro", name);
  g_autofree gchar *device = g_strdup_printf ("sys/block/%s/device/type", name);

  put (root, size, sectors);
  put (root, removable, "0\n");
  put (root, rotational, "0\n");
  put (root, ro_path, ro);
  put (root, device, "MMC\n");
}

/* An eMMC: the kernel lists its user area (mmcblk0), its hardware boot
 * partitions (mmcblk0boot0 and boot1, 4 MiB, read-only until unlocked)
 * and, on older kernels, its RPMB partition as block devices; only the
 * user area is a disk to install on. A read-only disk is reported so */
static void
test_inventory_emmc (void)
{
  g_autofree gchar *root = g_dir_make_tmp ("shoal-sysfs-XXXXXX", NULL);
  g_autofree gchar *rm = g_strdup_printf ("rm -rf %s", root);
  g_autoptr(JsonNode) node = NULL;
  JsonArray *disks;

  put (root, "proc/cpuinfo", "processor\t: 0\n");
  put (root, "proc/meminfo", "MemTotal:        2048000 kB\n");
  put_disk (root, "mmcblk0", "61071360\n", "0\n");
  put_disk (root, "mmcblk0boot0", "8192\n", "1\n");
  put_disk (root, "mmcblk0boot1", "8192\n", "0\n");
  put_disk (root, "mmcblk0rpmb", "8192\n", "0\n");
  put_disk (root, "nvme0n1", "937703088\n", "1\n");
  node = collect_valid_inventory (root);
  disks = json_object_get_array_member (json_node_get_object (node), "disks");
  g_assert_cmpuint (json_array_get_length (disks), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (disks, 0), "name"), ==, "mmcblk0");
  g_assert_false (json_object_get_boolean_member (json_array_get_object_element (disks, 0), "ro"));
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (disks, 1), "name"), ==, "nvme0n1");
  g_assert_true (json_object_get_boolean_member (json_array_get_object_element (disks, 1), "ro"));
  g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
}

/* A CAN adapter has no link-layer address: its "address" is empty
 * (addr_len 0), and the NIC is reported without "mac" */
static void
test_inventory_nic_without_mac (void)
{
  g_autofree gchar *root = g_dir_make_tmp ("shoal-sysfs-XXXXXX", NULL);
  g_autofree gchar *rm = g_strdup_printf ("rm -rf %s", root);
  g_autoptr(JsonNode) node = NULL;
  JsonArray *nics;

  put (root, "proc/cpuinfo", "processor\t: 0\n");
  put (root, "proc/meminfo", "MemTotal:        2048000 kB\n");
  put (root, "sys/devices/platform/can0/net/can0/address", "\n");
  put (root, "sys/devices/platform/can0/net/can0/addr_len", "0\n");
  put (root, "sys/devices/platform/can0/net/can0/operstate", "down\n");
  put_link (root, "sys/devices/platform/can0/net/can0/device", "../../../can0");
  put_link (root, "sys/class/net/can0", "../../devices/platform/can0/net/can0");
  node = collect_valid_inventory (root);
  nics = json_object_get_array_member (json_node_get_object (node), "nics");
  g_assert_cmpuint (json_array_get_length (nics), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (nics, 0), "name"), ==, "can0");
  g_assert_false (json_object_has_member (json_array_get_object_element (nics, 0), "mac"));
  g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
}

/* put()s a device @name of @bus with @modalias, linked from /sys/bus/@bus/devices */
static void
put_bus_device (const gchar *root, const gchar *bus, const gchar *name, const gchar *modalias)
{
  g_autofree gchar *dev = g_strdup_printf ("sys/devices/%s/%s", bus, name);
  g_autofree gchar *alias = g_strdup_printf ("%s/modalias", dev);
  g_autofree gchar *subsystem = g_strdup_printf ("%s/subsystem", dev);
  g_autofree gchar *subsystem_target = g_strdup_printf ("../../../bus/%s", bus);
  g_autofree gchar *link = g_strdup_printf ("sys/bus/%s/devices/%s", bus, name);
  g_autofree gchar *link_target = g_strdup_printf ("../../../devices/%s/%s", bus, name);

  put (root, alias, modalias);
  put_link (root, subsystem, subsystem_target);
  put_link (root, link, link_target);
}

/* The devices with a modalias on every bus but PCI and the CPUs', at most
 * 256 a bus, each within the schema */
static void
test_inventory_bus_devices (void)
{
  g_autofree gchar *root = g_dir_make_tmp ("shoal-sysfs-XXXXXX", NULL);
  g_autofree gchar *rm = g_strdup_printf ("rm -rf %s", root);
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GHashTable) buses = g_hash_table_new (g_str_hash, g_str_equal);
  JsonArray *devices;

  put (root, "proc/cpuinfo", "processor\t: 0\n");
  put (root, "proc/meminfo", "MemTotal:        2048000 kB\n");
  put_bus_device (root, "vmbus", "f8615163-df3e-46c5-913f-f2d2f965ed0e", "vmbus:635161f83edfc546913ff2d2f965ed0e\n");
  put_bus_device (root, "usb", "2-1:1.0", "usb:v0BDAp8153d3000dc00dsc00dp00icFFisc00ip00in00\n");
  put_bus_device (root, "virtio", "virtio0", "virtio:d00000001v00001AF4\n");
  put_bus_device (root, "cpu", "cpu0", "cpu:type:x86,ven0000fam0006mod003F:feature:,0000\n");
  put_bus_device (root, "pci", "0000:00:03.0", "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\n");
  put_bus_device (root, "usb-serial", "ttyUSB0", "serial_base:pl2303\n");
  put_bus_device (root, "weird", "dev0", "NotAModalias\n");
  for (guint i = 0; i < 300; i++)
    {
      g_autofree gchar *name = g_strdup_printf ("dev%03u", i);

      put_bus_device (root, "platform", name, "platform:dev\n");
    }
  node = collect_valid_inventory (root);
  devices = json_object_get_array_member (json_node_get_object (node), "devices");
  for (guint i = 0; i < json_array_get_length (devices); i++)
    {
      const gchar *bus = json_object_get_string_member (json_array_get_object_element (devices, i), "bus");

      g_hash_table_insert (buses, (gpointer) bus, GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (buses, bus)) + 1));
    }
  g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (buses, "vmbus")), ==, 1);
  g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (buses, "usb")), ==, 1);
  g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (buses, "virtio")), ==, 1);
  g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (buses, "usb-serial")), ==, 1);
  g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (buses, "platform")), ==, 256);
  g_assert_false (g_hash_table_contains (buses, "cpu"));
  g_assert_false (g_hash_table_contains (buses, "pci"));
  g_assert_false (g_hash_table_contains (buses, "weird"));
  g_assert_cmpuint (json_array_get_length (devices), ==, 260);
  g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
}

/* --- unicast image write --------------------------------------------------- */

/* @data (taken) as the image, in chunks of @chunk bytes */
static void
serve_bytes (TestServer *s, guint8 *data, gsize size, guint32 chunk)
{
  ShoalManifestError merr = { 0 };
  ShoalManifest *m = shoal_manifest_new ("test-image", size, chunk, &merr);
  uint8_t digest[32];
  gsize len;

  for (guint64 c = 0; c < m->n_chunks; c++)
    {
      gsize off = c * chunk, n = MIN (chunk, size - off);

      shoal_manifest_digest (data + off, n, digest);
      shoal_manifest_set_chunk (m, c, shoal_manifest_is_zero (data + off, n) ? NULL : digest);
    }
  shoal_manifest_digest (data, size, digest);
  shoal_manifest_set_image_sha256 (m, digest);
  s->manifest = shoal_manifest_serialize (m, &len);
  s->image = g_bytes_new_take (data, size);
  s->chunk = chunk;
  shoal_manifest_free (m);
}

static void
serve_image_chunked (TestServer *s, gsize size, guint32 chunk)
{
  guint8 *data = g_malloc0 (size);

  for (gsize i = 0; i < size; i++)
    data[i] = (i / chunk >= 2 && i / chunk < 2 + MAX (s->zero_run, 1)) ? 0 : (guint8) (i * 13 + 1 + i / 4096 * 7);
  serve_bytes (s, data, size, chunk);
}

static void
serve_image (TestServer *s, gsize size)
{
  serve_image_chunked (s, size, 4096);
}

/* 7 chunks of 4 KiB: 0 and 1 data, 2-4 a run of zeros, 5 and the short 6
 * data; its id in id */
static void
serve_zero_run_image (TestServer *s, char id[65])
{
  s->zero_run = 3;
  serve_image (s, 6 * 4096 + 100);
  shoal_manifest_compute_id (s->manifest, strlen (s->manifest), id);
}

static void
test_unicast_receive (void)
{
  TestServer *s = test_server_new ();
  g_autofree gchar *server = url_of (s, "");
  g_autofree gchar *disk = NULL;
  g_autofree gchar *contents = NULL;
  gsize len = 0;
  gint fd = g_file_open_tmp ("shoal-disk-XXXXXX", &disk, NULL);
  SaImageJob job = { server, "tok-1", "/images/x/manifest", NULL, NULL, disk, NULL, NULL };
  SaImageResult result;
  char err[512], id[65];

  g_assert_cmpint (ftruncate (fd, 1 << 20), ==, 0);
  memset (err, 0, sizeof err);
  serve_image (s, 5 * 4096 + 100);
  shoal_manifest_compute_id (s->manifest, strlen (s->manifest), id);
  job.image_id = id;
  g_assert_true (sa_image_unicast_receive (&job, &result, err, sizeof err));
  g_assert_cmpuint (result.bytes, ==, 5 * 4096 + 100);
  g_assert_cmpuint (result.chunks, ==, 6);
  g_assert_cmpuint (result.zero_chunks, ==, 1);
  g_assert_cmpuint (s->chunk_requests, ==, 5);
  g_assert_cmpuint (result.kept_chunks, ==, 0);
  g_assert_true (g_file_get_contents (disk, &contents, &len, NULL));
  g_assert_cmpmem (contents, g_bytes_get_size (s->image), g_bytes_get_data (s->image, NULL), g_bytes_get_size (s->image));
  g_clear_pointer (&contents, g_free);

  /* the same image again (or a run that was interrupted, resumed): every
   * data chunk on the disk verifies, is kept, and none is fetched */
  g_assert_true (sa_image_unicast_receive (&job, &result, err, sizeof err));
  g_assert_cmpuint (result.kept_chunks, ==, 5);
  g_assert_cmpuint (s->chunk_requests, ==, 5);
  /* one spoiled byte on the disk: that chunk, and only that one, is fetched */
  g_assert_cmpint (pwrite (fd, "x", 1, 3 * 4096 + 17), ==, 1);
  g_assert_true (sa_image_unicast_receive (&job, &result, err, sizeof err));
  g_assert_cmpuint (result.kept_chunks, ==, 4);
  g_assert_cmpuint (s->chunk_requests, ==, 6);
  g_assert_true (g_file_get_contents (disk, &contents, &len, NULL));
  g_assert_cmpmem (contents, g_bytes_get_size (s->image), g_bytes_get_data (s->image, NULL), g_bytes_get_size (s->image));

  /* a disk that holds another system: the image's zero chunk reads as
   * zeros after, a hole punched in this disk image file (not written) */
  {
    g_autofree guint8 *old = g_malloc (1 << 20);
    int probe_fd;
    g_autofree gchar *probe = NULL;
    gboolean holes;

    for (gsize i = 0; i < (1 << 20); i++)
      old[i] = (guint8) (i * 31 + 7);
    g_assert_cmpint (pwrite (fd, old, 1 << 20, 0), ==, 1 << 20);
    g_assert_true (sa_image_unicast_receive (&job, &result, err, sizeof err));
    g_assert_cmpuint (result.zero_chunks, ==, 1);
    g_clear_pointer (&contents, g_free);
    g_assert_true (g_file_get_contents (disk, &contents, &len, NULL));
    g_assert_cmpmem (contents, g_bytes_get_size (s->image), g_bytes_get_data (s->image, NULL),
                     g_bytes_get_size (s->image));
    /* where the file system has holes (a probe file), chunk 2 is one */
    probe_fd = g_file_open_tmp ("shoal-probe-XXXXXX", &probe, NULL);
    holes = probe_fd >= 0 && pwrite (probe_fd, old, 8192, 0) == 8192 &&
            fallocate (probe_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0;
    if (holes)
      g_assert_cmpint (lseek (fd, 2 * 4096, SEEK_HOLE), ==, 2 * 4096);
    else
      g_test_message ("no holes in %s: only the contents were checked", probe);
    close (probe_fd);
    g_unlink (probe);
  }

  /* a run of three zero chunks over another system: one hole, zeros */
  {
    TestServer *s3 = test_server_new ();
    g_autofree gchar *server3 = url_of (s3, "");
    SaImageJob job3 = job;
    char id3[65];

    serve_zero_run_image (s3, id3);
    job3.server = server3;
    job3.image_id = id3;
    g_assert_true (sa_image_unicast_receive (&job3, &result, err, sizeof err));
    g_assert_cmpuint (result.zero_chunks, ==, 3);
    /* chunks 0 and 1 are those of the image before: kept */
    g_assert_cmpuint (result.kept_chunks, ==, 2);
    g_assert_cmpuint (s3->chunk_requests, ==, 2);
    g_clear_pointer (&contents, g_free);
    g_assert_true (g_file_get_contents (disk, &contents, &len, NULL));
    g_assert_cmpmem (contents, g_bytes_get_size (s3->image), g_bytes_get_data (s3->image, NULL),
                     g_bytes_get_size (s3->image));
    if (lseek (fd, 2 * 4096, SEEK_HOLE) == 2 * 4096)
      g_assert_cmpint (lseek (fd, 2 * 4096, SEEK_DATA), ==, 5 * 4096);
    test_server_free (s3);
  }

  /* a corrupt chunk is refused, and nothing of it is written (on a disk
   * that does not hold the image: nothing to keep) */
  g_assert_cmpint (ftruncate (fd, 0), ==, 0);
  g_assert_cmpint (ftruncate (fd, 1 << 20), ==, 0);
  s->corrupt_chunk = 3;
  g_assert_false (sa_image_unicast_receive (&job, &result, err, sizeof err));
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, "chunk 3"));
  /* a manifest that is not the image named */
  job.image_id = "0000000000000000000000000000000000000000000000000000000000000000";
  g_assert_false (sa_image_unicast_receive (&job, &result, err, sizeof err));
  g_assert_nonnull (strstr (err, "not to the image id"));
  close (fd);
  g_unlink (disk);
  test_server_free (s);
}

/* The image written to a block device (a loop device over a file that
 * holds another system): its run of three zero chunks is one BLKZEROOUT,
 * and reads as zeros after; the data chunks land where they belong and
 * nothing of the old system is left in the image's range, nor in the
 * disk's first MiB past it (where a whole-disk md member, LVM PV or file
 * system keeps its signature); past that the disk is as it was. Needs
 * root and loop devices (skipped otherwise); the device is detached
 * after. */
/* A loop device over a new file of @size bytes (*backing) filled with a
 * pattern (*contents, the caller's); NULL, the test skipped, where there
 * is none (it needs root) */
static gchar *
loop_device_new (gsize size, guint8 **contents, gchar **backing)
{
  gchar *dev;
  gint fd;

  *contents = g_malloc (size);
  for (gsize i = 0; i < size; i++)
    (*contents)[i] = (guint8) (i * 31 + 7);
  fd = g_file_open_tmp ("shoal-blockdev-XXXXXX", backing, NULL);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, *contents, size), ==, (gssize) size);
  close (fd);
  dev = target_test_loop_attach (*backing, 512);
  if (dev == NULL)
    g_unlink (*backing);
  return dev;
}

static void
test_unicast_receive_block_device (void)
{
  const gsize disk_size = 2 << 20, head = 1 << 20;
  gsize image_size;
  g_autofree gchar *backing = NULL, *dev = NULL, *server = NULL;
  g_autofree guint8 *old = NULL, *back = g_malloc (disk_size);
  TestServer *s;
  SaImageResult result;
  SaImageJob job = { NULL, "tok-1", "/images/x/manifest", NULL, NULL, NULL, NULL, NULL };
  char err[512] = "", id[65];
  gint fd, dev_fd;
  gboolean written, read_back, detached;

  if ((dev = loop_device_new (disk_size, &old, &backing)) == NULL)
    return;

  s = test_server_new ();
  server = url_of (s, "");
  serve_zero_run_image (s, id);
  image_size = g_bytes_get_size (s->image);
  job.server = server;
  job.image_id = id;
  job.disk = dev;
  /* written and read back through the device, which is detached before
   * any assertion can end the test with it still attached */
  written = sa_image_unicast_receive (&job, &result, err, sizeof err);
  dev_fd = open (dev, O_RDONLY | O_CLOEXEC);
  read_back = dev_fd >= 0 && pread (dev_fd, back, disk_size, 0) == (gssize) disk_size;
  if (dev_fd >= 0)
    close (dev_fd);
  detached = target_test_loop_detach (dev);
  g_assert_true (written);
  g_assert_true (read_back);
  g_assert_true (detached);
  g_assert_cmpuint (result.zero_chunks, ==, 3);
  g_assert_cmpuint (result.kept_chunks, ==, 0);
  g_assert_cmpuint (s->chunk_requests, ==, 4);
  g_assert_cmpmem (back, image_size, g_bytes_get_data (s->image, NULL), image_size);
  /* past the image, the disk's first MiB zeroed before the image was
   * written, and the rest as it was */
  g_assert_cmpstr (result.wiped, ==, "before the image was written, the disk's first MiB past it zeroed");
  for (gsize i = image_size; i < head; i++)
    g_assert_cmpuint (back[i], ==, 0);
  g_assert_cmpmem (back + head, disk_size - head, old + head, disk_size - head);
  /* and the file behind the device holds the image */
  fd = open (backing, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (pread (fd, back, disk_size, 0), ==, (gssize) disk_size);
  close (fd);
  g_assert_cmpmem (back, image_size, g_bytes_get_data (s->image, NULL), image_size);
  g_unlink (backing);
  test_server_free (s);
}

/* a /sys/block entry: @name with its size in sectors, removable or not,
 * and a device behind it or not */
static void
fake_block (const gchar *root, const gchar *name, guint64 sectors, gboolean removable, gboolean device)
{
  g_autofree gchar *dir = g_build_filename (root, name, NULL);
  g_autofree gchar *size = g_build_filename (dir, "size", NULL);
  g_autofree gchar *rem = g_build_filename (dir, "removable", NULL);
  g_autofree gchar *dev = g_build_filename (dir, "device", NULL);
  g_autofree gchar *text = g_strdup_printf ("%" G_GUINT64_FORMAT "\n", sectors);

  g_assert_cmpint (g_mkdir_with_parents (device ? dev : dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (size, text, -1, NULL));
  g_assert_true (g_file_set_contents (rem, removable ? "1\n" : "0\n", -1, NULL));
}

/* The disk the agent writes when nothing names one: the first fixed disk
 * by name that holds the image */
static void
test_default_disk (void)
{
  g_autofree gchar *root = g_dir_make_tmp ("shoal-sysblock-XXXXXX", NULL);
  const gchar *rm[] = { "rm", "-rf", root, NULL };
  char why[512] = "";
  gchar *disk;

  fake_block (root, "loop0", 1 << 30, FALSE, FALSE);     /* no device: not a disk */
  fake_block (root, "nvme0n1", 2097152, FALSE, TRUE);    /* 1 GiB */
  fake_block (root, "sda", 16777216, FALSE, TRUE);       /* 8 GiB */
  fake_block (root, "sdb", 1 << 30, TRUE, TRUE);         /* removable */
  fake_block (root, "sr0", 1 << 30, FALSE, TRUE);        /* optical */

  disk = sa_image_default_disk (root, 0, why, sizeof why);
  g_assert_cmpstr (disk, ==, "/dev/nvme0n1");
  g_free (disk);
  disk = sa_image_default_disk (root, 2u << 30, why, sizeof why);
  g_assert_cmpstr (disk, ==, "/dev/sda");
  g_free (disk);
  disk = sa_image_default_disk (root, G_GUINT64_CONSTANT (16) << 30, why, sizeof why);
  g_assert_null (disk);
  g_assert_cmpstr (why, ==, "no fixed disk holds the image's 17179869184 bytes (16.0 GiB): "
                            "nvme0n1 (1.0 GiB), sda (8.0 GiB)");
  g_assert_true (g_spawn_sync (NULL, (gchar **) rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL));
  disk = sa_image_default_disk (root, 0, why, sizeof why);
  g_assert_null (disk);
  g_assert_true (g_str_has_prefix (why, "no fixed disk found to write"));
}

/* A block device smaller than the image: refused before anything is
 * fetched or written */
static void
test_unicast_receive_disk_too_small (void)
{
  const gsize disk_size = 16384;
  g_autofree gchar *backing = NULL, *dev = NULL, *server = NULL, *contents = NULL;
  g_autofree guint8 *old = NULL;
  TestServer *s;
  SaImageResult result;
  SaImageJob job = { NULL, "tok-1", "/images/x/manifest", NULL, NULL, NULL, NULL, NULL };
  char err[512] = "";
  gboolean written, detached;
  gsize len = 0;

  if ((dev = loop_device_new (disk_size, &old, &backing)) == NULL)
    return;
  s = test_server_new ();
  server = url_of (s, "");
  serve_image (s, 5 * 4096);
  job.server = server;
  job.disk = dev;
  written = sa_image_unicast_receive (&job, &result, err, sizeof err);
  detached = target_test_loop_detach (dev);
  g_test_message ("%s", err);
  g_assert_false (written);
  g_assert_true (detached);
  g_assert_true (g_str_has_suffix (err, " holds 16384 bytes (0.0 GiB), too few for the image's 20480 (0.0 GiB): "
                                        "nothing was written"));
  g_assert_cmpuint (s->chunk_requests, ==, 0);
  g_assert_true (g_file_get_contents (backing, &contents, &len, NULL));
  g_assert_cmpmem (contents, len, old, disk_size);
  g_unlink (backing);
  test_server_free (s);
}

/* --- the agent program ------------------------------------------------------ */

static gboolean
has_event (TestServer *s, const gchar *prefix)
{
  gboolean found = FALSE;

  g_mutex_lock (&s->lock);
  for (guint i = 0; i < s->events->len && !found; i++)
    found = g_str_has_prefix (g_ptr_array_index (s->events, i), prefix);
  g_mutex_unlock (&s->lock);
  return found;
}

/* The static @agent, once, for the instruction "unicast-receive" of @s's
 * image to a new disk image file of @disk_size bytes (*disk), with a
 * config file (*conf) for @s */
static void
run_agent_unicast (TestServer *s, const gchar *agent, gsize disk_size, gchar **disk, gchar **conf)
{
  g_autofree gchar *server = url_of (s, "");
  g_autofree gchar *text = NULL, *out = NULL;
  g_autoptr(GError) error = NULL;
  gint fd, status = 0;

  fd = g_file_open_tmp ("shoal-disk-XXXXXX", disk, NULL);
  g_assert_cmpint (ftruncate (fd, (off_t) disk_size), ==, 0);
  close (fd);
  s->instruction = g_strdup_printf ("{\"action\":\"unicast-receive\",\"manifest\":\"/images/x/manifest\",\"disk\":\"%s\"}", *disk);
  fd = g_file_open_tmp ("shoal-agent-conf-XXXXXX", conf, NULL);
  close (fd);
  text = g_strdup_printf ("server=%s\ntoken=tok-1\ndevice=dev-1\nkernel=0.0.0\nmodules=\n", server);
  g_assert_true (g_file_set_contents (*conf, text, -1, NULL));
  {
    const gchar *argv[] = { agent, "--config", *conf, "--no-modules", "--no-network", "--once", "--max-polls", "3", NULL };

    g_spawn_sync (NULL, (gchar **) argv, NULL, 0, NULL, NULL, NULL, &out, &status, &error);
  }
  g_assert_no_error (error);
  g_test_message ("%s", out);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

/* The static agent, or NULL (the test skipped) when it was not built */
static const gchar *
agent_binary (void)
{
  const gchar *agent = g_getenv ("SHOAL_AGENT_BINARY");

  if (agent != NULL && g_file_test (agent, G_FILE_TEST_IS_EXECUTABLE))
    return agent;
  g_test_skip ("the static agent was not built (target_programs)");
  return NULL;
}

static void
test_agent_program (void)
{
  const gchar *agent = g_getenv ("SHOAL_AGENT_BINARY");
  TestServer *s = NULL;
  g_autofree gchar *server = NULL;
  g_autofree gchar *disk = NULL;
  g_autofree gchar *conf = NULL;
  g_autofree gchar *text = NULL;
  g_autofree gchar *out = NULL;
  g_autofree gchar *contents = NULL;
  gint status = 0;
  g_autoptr(GError) error = NULL;

  if (agent == NULL || !g_file_test (agent, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("the static agent was not built (target_programs)");
      return;
    }
  s = test_server_new ();
  server = url_of (s, "");
  serve_image (s, 3 * 4096);
  run_agent_unicast (s, agent, 65536, &disk, &conf);
  g_assert_true (has_event (s, "agent-running {\"modules\":\"\",\"kernel\":\"0.0.0\",\"failed_modules\":0}"));
  g_assert_true (has_event (s, "progress "));
  g_assert_true (has_event (s, "image-written "));
  g_assert_true (g_file_get_contents (disk, &contents, NULL, NULL));
  g_assert_cmpmem (contents, 3 * 4096, g_bytes_get_data (s->image, NULL), 3 * 4096);

  /* an agent generated after instruction 1 does not run it again */
  g_free (text);
  text = g_strdup_printf ("server=%s\ntoken=tok-1\ndevice=dev-1\nserial=1\n", server);
  g_assert_true (g_file_set_contents (conf, text, -1, NULL));
  g_mutex_lock (&s->lock);
  g_ptr_array_set_size (s->events, 0);
  g_mutex_unlock (&s->lock);
  {
    const gchar *argv[] = { agent, "--config", conf, "--no-modules", "--no-network", "--once", "--max-polls", "2", NULL };

    g_clear_pointer (&out, g_free);
    g_spawn_sync (NULL, (gchar **) argv, NULL, 0, NULL, NULL, NULL, &out, &status, &error);
  }
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_true (has_event (s, "agent-running "));
  g_assert_false (has_event (s, "image-written "));
  g_assert_nonnull (strstr (out, "instructions after 1"));
  g_unlink (disk);
  g_unlink (conf);
  test_server_free (s);
}

/* An instruction that comes while the agent receives an image (a
 * cancel's "wait") stops the receive: fewer chunks are fetched than the
 * image has, no "image-written" nor "error" is posted, the events it
 * posted name instruction 1, and the agent takes instruction 2. Before,
 * the agent did not look for an instruction until the receive was over,
 * and wrote the whole image of a cancelled deployment */
static void
test_agent_program_stops (void)
{
  const gchar *agent = agent_binary ();
  const guint n_chunks = 200;
  g_autofree gchar *server = NULL, *disk = NULL, *conf = NULL, *text = NULL, *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  gint fd, status = 0;
  guint fetched;
  TestServer *s;

  if (agent == NULL)
    return;
  s = test_server_new ();
  server = url_of (s, "");
  serve_image (s, n_chunks * 4096);
  s->chunk_delay_ms = 20;
  s->newer_after_chunks = 10;
  fd = g_file_open_tmp ("shoal-disk-XXXXXX", &disk, NULL);
  g_assert_cmpint (ftruncate (fd, n_chunks * 4096), ==, 0);
  close (fd);
  s->instruction = g_strdup_printf ("{\"action\":\"unicast-receive\",\"manifest\":\"/images/x/manifest\",\"disk\":\"%s\"}", disk);
  fd = g_file_open_tmp ("shoal-agent-conf-XXXXXX", &conf, NULL);
  close (fd);
  text = g_strdup_printf ("server=%s\ntoken=tok-1\ndevice=dev-1\nkernel=0.0.0\nmodules=\n", server);
  g_assert_true (g_file_set_contents (conf, text, -1, NULL));
  {
    const gchar *argv[] = { agent, "--config", conf, "--no-modules", "--no-network", "--max-polls", "3", NULL };

    g_spawn_sync (NULL, (gchar **) argv, NULL, 0, NULL, NULL, &out, &err, &status, &error);
  }
  g_assert_no_error (error);
  g_test_message ("%s%s", out, err);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_mutex_lock (&s->lock);
  fetched = s->chunk_requests;
  g_mutex_unlock (&s->lock);
  g_assert_cmpuint (fetched, >=, 10);
  g_assert_cmpuint (fetched, <, n_chunks - 20);
  g_assert_nonnull (strstr (err, "instruction 2 came: stopping instruction 1"));
  g_assert_nonnull (strstr (err, "instruction 2: wait"));
  g_assert_false (has_event (s, "image-written "));
  g_assert_false (has_event (s, "error "));
  g_assert_true (has_event (s, "progress "));
  g_mutex_lock (&s->lock);
  for (guint i = 0; i < s->events->len; i++)
    {
      const gchar *event = g_ptr_array_index (s->events, i);

      /* agent-running answers no instruction */
      if (g_str_has_prefix (event, "progress "))
        g_assert_true (g_str_has_suffix (event, " serial=1"));
      else
        g_assert_null (strstr (event, "serial="));
    }
  g_mutex_unlock (&s->lock);
  g_unlink (disk);
  g_unlink (conf);
  test_server_free (s);
}

/* An agent whose deployment another one replaced is told to reboot by
 * GET /agent/v1/next, and every other request of its token is refused:
 * it reboots (--once: says so and stops) after one attempt at each
 * event, "agent-running" and "rebooting". Before, each refused event was
 * tried five times over 15 s */
static void
test_agent_program_superseded (void)
{
  const gchar *agent = agent_binary ();
  g_autofree gchar *server = NULL, *conf = NULL, *text = NULL, *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  gint64 started;
  gint status = 0;
  TestServer *s;

  if (agent == NULL)
    return;
  s = test_server_new ();
  server = url_of (s, "");
  close (g_file_open_tmp ("shoal-agent-conf-XXXXXX", &conf, NULL));
  text = g_strdup_printf ("server=%s\ntoken=tok-superseded\ndevice=dev-1\nserial=1\n", server);
  g_assert_true (g_file_set_contents (conf, text, -1, NULL));
  started = g_get_monotonic_time ();
  {
    const gchar *argv[] = { agent, "--config", conf, "--no-modules", "--no-network", "--once", "--max-polls", "3", NULL };

    g_spawn_sync (NULL, (gchar **) argv, NULL, 0, NULL, NULL, &out, &err, &status, &error);
  }
  g_assert_no_error (error);
  g_test_message ("%s%s", out, err);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_nonnull (strstr (err, "instruction 2: reboot"));
  g_assert_nonnull (strstr (err, "event rebooting not posted (attempt 1, refused for good): HTTP 401"));
  g_assert_null (strstr (err, "attempt 2"));
  g_mutex_lock (&s->lock);
  g_assert_cmpuint (s->refused, ==, 2);
  g_mutex_unlock (&s->lock);
  g_assert_cmpint (g_get_monotonic_time () - started, <, 5 * G_USEC_PER_SEC);
  g_unlink (conf);
  test_server_free (s);
}

/* The loader with @token against the test server (its inventory from an
 * empty root): its exit status, its log in *log */
static gint
run_loader (TestServer *s, const gchar *token, gchar **log)
{
  const gchar *loader = g_getenv ("SHOAL_LOADER_BINARY");
  g_autoptr(GError) error = NULL;
  g_autofree gchar *dir = g_dir_make_tmp ("shoal-loader-XXXXXX", &error);
  g_autofree gchar *cmdline = NULL, *dest = NULL, *root = NULL, *rm = NULL;
  g_autofree gchar *server = url_of (s, "");
  g_autofree gchar *text = g_strdup_printf ("quiet shoal.server=%s shoal.token=%s shoal.device=dev-1\n", server, token);
  gint status = 0;

  g_assert_no_error (error);
  cmdline = g_build_filename (dir, "cmdline", NULL);
  dest = g_build_filename (dir, "dest", NULL);
  root = g_build_filename (dir, "root", NULL);
  rm = g_strdup_printf ("rm -rf %s", dir);
  g_assert_true (g_file_set_contents (cmdline, text, -1, NULL));
  g_assert_cmpint (g_mkdir (dest, 0700), ==, 0);
  g_assert_cmpint (g_mkdir (root, 0700), ==, 0);
  {
    const gchar *argv[] = { loader, "--cmdline", cmdline, "--root", root, "--dest", dest, "--no-exec",
                            "--deadline", "20", NULL };

    g_spawn_sync (NULL, (gchar **) argv, NULL, 0, NULL, NULL, NULL, log, &status, &error);
  }
  g_assert_no_error (error);
  g_test_message ("%s", *log);
  g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* A new deployment replaced the one whose token the loader carries (after
 * its inventory claimed it): its first refused request asks the server,
 * which says to reboot, and the loader exits 3, on which the initramfs
 * reboots into the new deployment's boot script. Before, it tried three
 * times, then exited 1: the machine powered off. A token the server does
 * not know at all still ends that way */
static void
test_loader_superseded (void)
{
  const gchar *loader = g_getenv ("SHOAL_LOADER_BINARY");
  g_autofree gchar *log = NULL, *log2 = NULL;
  gint64 started;
  TestServer *s;

  if (loader == NULL || !g_file_test (loader, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("the loader was not built");
      return;
    }
  s = test_server_new ();
  started = g_get_monotonic_time ();
  g_assert_cmpint (run_loader (s, "tok-superseded", &log), ==, 3);
  g_assert_cmpint (g_get_monotonic_time () - started, <, 5 * G_USEC_PER_SEC);
  g_assert_nonnull (strstr (log, "rebooting into it"));
  g_assert_null (strstr (log, "attempt 2"));
  g_mutex_lock (&s->lock);
  g_assert_cmpuint (s->refused, ==, 1);   /* the inventory, once */
  g_mutex_unlock (&s->lock);
  /* unknown: refused three times (and its question too), then exit 1 */
  g_assert_cmpint (run_loader (s, "tok-unknown", &log2), ==, 1);
  g_assert_nonnull (strstr (log2, "attempt 3"));
  g_assert_null (strstr (log2, "rebooting"));
  g_mutex_lock (&s->lock);
  g_assert_cmpuint (s->refused, ==, 1 + 3 + 3);
  g_mutex_unlock (&s->lock);
  test_server_free (s);
}

/* An image with a GPT, smaller than the disk: the agent moves its backup
 * to the disk's end and says so in "image-written" */
static void
test_agent_program_gpt (void)
{
  const gchar *agent = g_getenv ("SHOAL_AGENT_BINARY");
  const gsize image_size = 1 << 20, disk_size = 8 << 20;
  g_autofree gchar *sfdisk = g_find_program_in_path ("sfdisk");
  g_autofree gchar *disk = NULL, *conf = NULL, *image_path = NULL;
  g_autofree gchar *contents = NULL, *image = NULL;
  g_autoptr(GSubprocess) mk = NULL;
  g_autoptr(GError) error = NULL;
  gboolean found = FALSE;
  TestServer *s;
  gsize len = 0;
  gint fd;

  if (agent == NULL || !g_file_test (agent, G_FILE_TEST_IS_EXECUTABLE) || sfdisk == NULL)
    {
      g_test_skip ("needs the static agent (target_programs) and sfdisk");
      return;
    }
  fd = g_file_open_tmp ("shoal-gpt-image-XXXXXX", &image_path, NULL);
  g_assert_cmpint (ftruncate (fd, image_size), ==, 0);
  close (fd);
  mk = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error,
                         sfdisk, "-q", image_path, NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (mk, "label: gpt\ntype=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n",
                                                NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_successful (mk));
  g_assert_true (g_file_get_contents (image_path, &image, &len, NULL));
  g_assert_cmpuint (len, ==, image_size);
  g_unlink (image_path);

  s = test_server_new ();
  serve_bytes (s, g_memdup2 (image, image_size), image_size, 65536);
  run_agent_unicast (s, agent, disk_size, &disk, &conf);
  g_mutex_lock (&s->lock);
  for (guint i = 0; i < s->events->len; i++)
    {
      const gchar *ev = g_ptr_array_index (s->events, i);

      g_test_message ("event %s", ev);
      found |= g_str_has_prefix (ev, "image-written ") &&
               strstr (ev, "\"partition_table\":\"GPT backup moved from LBA 2047 to the disk's last LBA 16383; "
                           "last usable LBA 16350, was 2014 (512-byte sectors); protective MBR resized; past the image, the "
                           "disk's last 1048576 bytes zeroed (where an earlier system's md RAID superblock, ZFS labels "
                           "and GPT backup are kept)\"") != NULL;
    }
  g_mutex_unlock (&s->lock);
  g_assert_true (found);
  /* the partitions' bytes are the image's */
  g_assert_true (g_file_get_contents (disk, &contents, &len, NULL));
  g_assert_cmpuint (len, ==, disk_size);
  g_assert_cmpmem (contents + 1024, image_size - 1536, image + 1024, image_size - 1536);
  g_unlink (disk);
  g_unlink (conf);
  test_server_free (s);
}

/* --- what an earlier system leaves past the image -------------------------- */

/* the output of the command line @cmd (run by the shell), stripped */
static gchar *
sh_out (const gchar *cmd)
{
  const gchar *argv[] = { "sh", "-c", cmd, NULL };
  gchar *out = NULL;

  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out,
                NULL, NULL, NULL);
  g_test_message ("$ %s\n%s", cmd, out != NULL ? out : "");
  return out != NULL ? g_strstrip (out) : g_strdup ("");
}

/* A 4 MiB image whose table sfdisk makes from @script, its partitions
 * filled with a pattern */
static guint8 *
sfdisk_image (const gchar *script, gsize size)
{
  g_autofree gchar *path = NULL;
  g_autoptr(GSubprocess) mk = NULL;
  g_autoptr(GError) error = NULL;
  gchar *data = NULL;
  gsize len = 0;
  gint fd = g_file_open_tmp ("shoal-leftover-image-XXXXXX", &path, NULL);

  g_assert_cmpint (ftruncate (fd, (off_t) size), ==, 0);
  close (fd);
  mk = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error,
                         "sfdisk", "-q", path, NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (mk, script, NULL, NULL, NULL, &error));
  g_assert_true (g_subprocess_get_successful (mk));
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  g_assert_cmpuint (len, ==, size);
  g_unlink (path);
  for (gsize i = 1u << 20; i < size - 65536; i++)
    data[i] = (gchar) (i * 7 + 3);
  return (guint8 *) data;
}

/* The static @agent once for @s's instruction (for the disk @disk), its
 * config for @s; whether it ran and exited 0 (asserted by the caller, once
 * a loop device is detached) */
static gboolean
run_agent_once (TestServer *s, const gchar *agent, const gchar *disk)
{
  g_autofree gchar *server = url_of (s, ""), *conf = NULL, *text = NULL, *out = NULL;
  g_autoptr(GError) error = NULL;
  const gchar *argv[] = { agent, "--config", NULL, "--no-modules", "--no-network", "--once", "--max-polls", "3", NULL };
  gint fd = g_file_open_tmp ("shoal-agent-conf-XXXXXX", &conf, NULL), status = 0;
  gboolean ran;

  close (fd);
  g_mutex_lock (&s->lock);
  g_free (s->instruction);
  s->instruction = g_strdup_printf ("{\"action\":\"unicast-receive\",\"manifest\":\"/images/x/manifest\","
                                    "\"disk\":\"%s\"}", disk);
  g_mutex_unlock (&s->lock);
  text = g_strdup_printf ("server=%s\ntoken=tok-1\ndevice=dev-1\nkernel=0.0.0\nmodules=\n", server);
  argv[2] = conf;
  ran = g_file_set_contents (conf, text, -1, NULL) &&
        g_spawn_sync (NULL, (gchar **) argv, NULL, 0, NULL, NULL, NULL, &out, &status, &error) &&
        g_spawn_check_wait_status (status, &error);
  g_unlink (conf);
  g_test_message ("%s", out != NULL ? out : "");
  if (error != NULL)
    g_test_message ("the agent: %s", error->message);
  return ran;
}

/* An earlier system's disk of @size bytes full of a pattern (*contents),
 * with a table sfdisk makes from @table (none when NULL): a disk image
 * file (*backing) when @file, else a loop device over one (*dev; NULL,
 * the test skipped, where there is none). The disk to write, or NULL */
static const gchar *
old_system_disk (gboolean file, gsize size, const gchar *table, guint8 **contents, gchar **backing, gchar **dev)
{
  const gchar *disk;
  g_autoptr(GError) error = NULL;

  if (file)
    {
      gint fd;

      *contents = g_malloc (size);
      for (gsize i = 0; i < size; i++)
        (*contents)[i] = (guint8) (i * 31 + 7);
      fd = g_file_open_tmp ("shoal-old-disk-XXXXXX", backing, NULL);
      g_assert_cmpint (write (fd, *contents, size), ==, (gssize) size);
      close (fd);
      disk = *backing;
    }
  else if ((*dev = loop_device_new (size, contents, backing)) == NULL)
    return NULL;
  else
    disk = *dev;
  if (table != NULL)
    {
      g_autoptr(GSubprocess) mk = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE,
                                                    &error, "sfdisk", "-q", disk, NULL);

      g_assert_no_error (error);
      g_assert_true (g_subprocess_communicate_utf8 (mk, table, NULL, NULL, NULL, &error));
      g_assert_true (g_subprocess_get_successful (mk));
    }
  return disk;
}

typedef struct {
  guint md;             /* 90 or 10 */
  const gchar *table;   /* the new image's, for sfdisk */
  const gchar *pttype;  /* blkid's name of it */
  gboolean old_table;   /* an earlier GPT whose second partition is the md member */
  gboolean file;        /* a disk image file, not a loop device */
} Leftover;

/* An earlier system left an md RAID superblock (@data's version) at the
 * end of the whole disk (64 MiB), or at the end of its second partition
 * (8 MiB to 40 MiB, past the image); the agent writes a 4 MiB image with
 * a table of its own: blkid then finds that table on the disk and nothing
 * else, and the old partition's range holds no md member either */
static void
test_agent_program_md_leftover (gconstpointer data)
{
  const Leftover *c = data;
  const gchar *agent = g_getenv ("SHOAL_AGENT_BINARY");
  const gsize disk_size = 64u << 20, image_size = 4u << 20;
  g_autofree gchar *backing = NULL, *dev = NULL, *cmd = NULL, *out = NULL;
  g_autofree gchar *expect = NULL, *part = NULL;
  g_autofree guint8 *old = NULL;
  g_autofree gchar *sfdisk = g_find_program_in_path ("sfdisk"), *blkid = g_find_program_in_path ("blkid");
  const gchar *disk;
  gboolean found = FALSE, ran;
  TestServer *s;
  gint fd;

  if (agent == NULL || !g_file_test (agent, G_FILE_TEST_IS_EXECUTABLE) || sfdisk == NULL || blkid == NULL)
    {
      g_test_skip ("needs the static agent (target_programs), sfdisk and blkid");
      return;
    }
  /* the earlier system */
  disk = old_system_disk (c->file, disk_size,
                          c->old_table ? "label: gpt\nstart=1MiB, size=7MiB\nsize=32MiB\ntype=L\n" : NULL,
                          &old, &backing, &dev);
  if (disk == NULL)
    return;
  fd = open (disk, O_RDWR | O_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  if (c->old_table)
    target_test_md_write (fd, c->md, 8u << 20, 32u << 20);
  else
    target_test_md_write (fd, c->md, 0, disk_size);
  g_assert_cmpint (fsync (fd), ==, 0);
  close (fd);
  cmd = c->old_table ? g_strdup_printf ("blkid -p -O %u -S %u %s", 8u << 20, 32u << 20, disk)
                     : g_strdup_printf ("blkid -p %s", disk);
  out = sh_out (cmd);
  g_assert_nonnull (strstr (out, "TYPE=\"linux_raid_member\""));
  g_clear_pointer (&out, g_free);

  /* the agent writes the new system */
  s = test_server_new ();
  serve_bytes (s, sfdisk_image (c->table, image_size), image_size, 65536);
  ran = run_agent_once (s, agent, disk);

  /* only the new table, on the disk and in the old partition's range */
  part = sh_out (cmd);
  g_clear_pointer (&cmd, g_free);
  cmd = g_strdup_printf ("blkid -p %s", disk);
  out = sh_out (cmd);
  if (dev != NULL)
    g_assert_true (target_test_loop_detach (dev));
  g_unlink (backing);
  g_assert_null (strstr (part, "linux_raid_member"));
  g_assert_null (strstr (out, "linux_raid_member"));
  g_assert_null (strstr (out, " TYPE="));
  expect = g_strdup_printf ("PTTYPE=\"%s\"", c->pttype);
  g_assert_nonnull (strstr (out, expect));
  g_clear_pointer (&expect, g_free);

  /* and the agent says what it wiped */
  g_assert_true (ran);
  expect = g_strdup_printf ("past the image, the disk's last 1048576 bytes zeroed (where an earlier system's md RAID "
                            "superblock, ZFS labels and GPT backup are kept)%s%s",
                            c->old_table ? ", an earlier system's GPT backup header at the last LBA 131071 among them" : "",
                            c->old_table ? "; before the image was written, the first and last MiB of 3 earlier "
                                           "partitions zeroed where they lie past it (1, 2, 3), where md RAID "
                                           "superblocks, LVM labels and file systems' superblocks are kept\"" : "\"");
  g_mutex_lock (&s->lock);
  for (guint i = 0; i < s->events->len; i++)
    {
      const gchar *ev = g_ptr_array_index (s->events, i);

      g_test_message ("event %s", ev);
      found |= g_str_has_prefix (ev, "image-written ") && strstr (ev, expect) != NULL;
    }
  g_mutex_unlock (&s->lock);
  g_assert_true (found);
  test_server_free (s);
}

static const Leftover leftover_gpt_090 = { 90, "label: gpt\nsize=1MiB, type=U\ntype=L\n", "gpt", FALSE, FALSE };
static const Leftover leftover_gpt_10 = { 10, "label: gpt\nsize=1MiB, type=U\ntype=L\n", "gpt", FALSE, FALSE };
static const Leftover leftover_mbr_090 = { 90, "label: dos\ntype=83\n", "dos", FALSE, FALSE };
static const Leftover leftover_mbr_10 = { 10, "label: dos\ntype=83\n", "dos", FALSE, FALSE };
static const Leftover leftover_partition = { 10, "label: dos\ntype=83\n", "dos", TRUE, FALSE };
static const Leftover leftover_file = { 10, "label: gpt\nsize=1MiB, type=U\ntype=L\n", "gpt", TRUE, TRUE };

/* --- signatures an earlier system left in its partitions ------------------ */

#define OLD_SIG_IMAGE (8u << 20)
#define OLD_SIG_DISK  (64u << 20)
#define OLD_SIG_CHUNK 65536u
#define MiB           (1u << 20)

/* The earlier system's GPT: partitions 1 and 2 where the new image is all
 * zeros (2 to 6 MiB; 2 MiB each, as blkid does not look for md members or
 * LVM PVs on a device under 1.44 MB), 3 across the image's end (6 to 12
 * MiB), 4 to 7 past it (16 to 32 MiB); its backup header at the disk's
 * last LBA */
static const gchar old_sig_table[] = "label: gpt\nstart=2MiB, size=2MiB\nsize=2MiB\nsize=6MiB\n"
                                     "start=16MiB, size=4MiB\nsize=4MiB\nsize=4MiB\nsize=4MiB\n";
static const guint64 old_sig_parts[][2] = {
  { 2 * MiB, 4 * MiB }, { 4 * MiB, 6 * MiB }, { 6 * MiB, 12 * MiB }, { 16 * MiB, 20 * MiB },
  { 20 * MiB, 24 * MiB }, { 24 * MiB, 28 * MiB }, { 28 * MiB, 32 * MiB },
};

/* A signature (@name) and where it is: @magic (@len bytes) at byte @at of
 * the disk */
typedef struct {
  guint64 at;
  const gchar *magic;
  gsize len;
  const gchar *name;
} OldSig;

/* The earlier system's signatures, written on @fd; its places in @sigs
 * (at most 16), their number returned. md superblocks 1.2 (partitions 1
 * and 4), 1.1 (6) and 1.0 (at 3's end), LVM PV labels (2, 3, 5), and in
 * partition 7 the magic numbers of xfs (at 0), ext4 (at 1 KiB + 56), swap
 * (at the end of its first 4 KiB page) and btrfs (at 64 KiB + 64) */
static gsize
old_sig_write (gint fd, OldSig *sigs)
{
  static const gchar md_magic[] = "\xfc\x4e\x2b\xa9", ext_magic[] = "\x53\xef";
  const guint64 (*p)[2] = old_sig_parts;
  gsize n = 0;

  sigs[n++] = (OldSig) { target_test_md_write (fd, 12, p[0][0], p[0][1] - p[0][0]), md_magic, 4, "md 1.2 (1)" };
  sigs[n++] = (OldSig) { target_test_lvm_write (fd, p[1][0], p[1][1] - p[1][0]), "LABELONE", 8, "LVM (2)" };
  sigs[n++] = (OldSig) { target_test_lvm_write (fd, p[2][0], p[2][1] - p[2][0]), "LABELONE", 8, "LVM (3)" };
  sigs[n++] = (OldSig) { target_test_md_write (fd, 10, p[2][0], p[2][1] - p[2][0]), md_magic, 4, "md 1.0 (3)" };
  sigs[n++] = (OldSig) { target_test_md_write (fd, 12, p[3][0], p[3][1] - p[3][0]), md_magic, 4, "md 1.2 (4)" };
  sigs[n++] = (OldSig) { target_test_lvm_write (fd, p[4][0], p[4][1] - p[4][0]), "LABELONE", 8, "LVM (5)" };
  sigs[n++] = (OldSig) { target_test_md_write (fd, 11, p[5][0], p[5][1] - p[5][0]), md_magic, 4, "md 1.1 (6)" };
  sigs[n++] = (OldSig) { p[6][0], "XFSB", 4, "xfs (7)" };
  sigs[n++] = (OldSig) { p[6][0] + 1024 + 56, ext_magic, 2, "ext4 (7)" };
  sigs[n++] = (OldSig) { p[6][0] + 4096 - 10, "SWAPSPACE2", 10, "swap (7)" };
  sigs[n++] = (OldSig) { p[6][0] + 65536 + 64, "_BHRfS_M", 8, "btrfs (7)" };
  for (gsize i = n - 4; i < n; i++)
    g_assert_cmpint (pwrite (fd, sigs[i].magic, sigs[i].len, (off_t) sigs[i].at), ==, (gssize) sigs[i].len);
  return n;
}

/* The new image: an MBR and one partition (sfdisk), its data from 1 MiB
 * but for 2 to 6 MiB, all zeros there (64 zero chunks, not sent); each
 * data chunk numbered in its first bytes, so that no two are alike */
static guint8 *
old_sig_image (void)
{
  guint8 *image = sfdisk_image ("label: dos\ntype=83\n", OLD_SIG_IMAGE);

  memset (image + 2 * MiB, 0, 4 * MiB);
  for (gsize c = MiB / OLD_SIG_CHUNK; c < OLD_SIG_IMAGE / OLD_SIG_CHUNK; c++)
    if (!shoal_manifest_is_zero (image + c * OLD_SIG_CHUNK, OLD_SIG_CHUNK))
      memcpy (image + c * OLD_SIG_CHUNK, &c, sizeof c);
  return image;
}

/* The data chunks of @image before chunk @k (all of them: @k of
 * G_MAXUINT) */
static guint
old_sig_data_chunks (const guint8 *image, guint k)
{
  guint n = 0;

  for (guint c = 0; c < OLD_SIG_IMAGE / OLD_SIG_CHUNK && c < k; c++)
    n += !shoal_manifest_is_zero (image + (gsize) c * OLD_SIG_CHUNK, OLD_SIG_CHUNK);
  return n;
}

/* What @disk holds (OLD_SIG_DISK bytes); blkid's report of each old
 * partition's range added to @probes (when not NULL) */
static guint8 *
old_sig_read (const gchar *disk, GPtrArray *probes)
{
  guint8 *contents = g_malloc (OLD_SIG_DISK);
  gint fd = open (disk, O_RDONLY | O_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pread (fd, contents, OLD_SIG_DISK, 0), ==, (gssize) OLD_SIG_DISK);
  close (fd);
  for (gsize i = 0; probes != NULL && i < G_N_ELEMENTS (old_sig_parts); i++)
    {
      g_autofree gchar *cmd = g_strdup_printf ("blkid -p -O %" G_GUINT64_FORMAT " -S %" G_GUINT64_FORMAT " %s",
                                               old_sig_parts[i][0], old_sig_parts[i][1] - old_sig_parts[i][0], disk);

      g_ptr_array_add (probes, sh_out (cmd));
    }
  return contents;
}

/* the event of @s that starts with @prefix, or NULL */
static gchar *
find_event (TestServer *s, const gchar *prefix)
{
  gchar *found = NULL;

  g_mutex_lock (&s->lock);
  for (guint i = 0; i < s->events->len && found == NULL; i++)
    if (g_str_has_prefix (g_ptr_array_index (s->events, i), prefix))
      found = g_strdup (g_ptr_array_index (s->events, i));
  g_mutex_unlock (&s->lock);
  return found;
}

/* whether any of @sigs is on @disk (@contents); each one named */
static gboolean
old_sig_any_left (const guint8 *contents, const OldSig *sigs, gsize n)
{
  gboolean any = FALSE;

  for (gsize i = 0; i < n; i++)
    if (memcmp (contents + sigs[i].at, sigs[i].magic, sigs[i].len) == 0)
      {
        g_test_message ("%s left at %" G_GUINT64_FORMAT, sigs[i].name, sigs[i].at);
        any = TRUE;
      }
  return any;
}

typedef struct {
  gboolean file;    /* a disk image file, not a loop device */
  gboolean resume;  /* a first run stops at a corrupt chunk, after the
                       image's table replaced the earlier one; a second
                       run resumes */
} OldSignatures;

/* An earlier system's GPT partitions held md RAID members (superblocks
 * 1.2, 1.1, 1.0), LVM PVs and file systems, in the range of the new image
 * where it is all zeros, across its end and past it. After the agent
 * wrote the image: none of their signatures is on the disk (the magic
 * bytes, and blkid in each old partition's range), every byte of the
 * image's range is the image's, and of the rest only the first and last
 * MiB of each old partition and the disk's last MiB changed (zeroed).
 * @data->resume: the first run fails at chunk 112 (7 MiB), its chunks
 * before written and the earlier table gone from the disk; the earlier
 * system's places past the image were zeroed before any of it was written
 * all the same, and the second run keeps every chunk the first one wrote
 * (none undone by a wipe) and fetches the others */
static void
test_agent_program_old_signatures (gconstpointer data)
{
  const OldSignatures *c = data;
  const gchar *agent = g_getenv ("SHOAL_AGENT_BINARY");
  const guint corrupt = 112;
  g_autofree gchar *backing = NULL, *dev = NULL, *written = NULL, *failed = NULL, *expect = NULL;
  g_autofree gchar *sfdisk = g_find_program_in_path ("sfdisk"), *blkid = g_find_program_in_path ("blkid");
  g_autofree guint8 *old = NULL, *before = NULL, *after = NULL, *after_first = NULL, *image = NULL;
  g_autoptr(GPtrArray) probes_before = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) probes_after = g_ptr_array_new_with_free_func (g_free);
  SaGptOldTable table_after_first = { 0 };
  OldSig sigs[16];
  gsize n_sigs;
  guint requests_first = 0, requests_second = 0;
  gboolean ran_first = TRUE, ran;
  const gchar *disk;
  TestServer *s;
  gint fd;

  if (agent == NULL || !g_file_test (agent, G_FILE_TEST_IS_EXECUTABLE) || sfdisk == NULL || blkid == NULL)
    {
      g_test_skip ("needs the static agent (target_programs), sfdisk and blkid");
      return;
    }
  /* the earlier system: its table, its signatures; blkid finds them */
  if ((disk = old_system_disk (c->file, OLD_SIG_DISK, old_sig_table, &old, &backing, &dev)) == NULL)
    return;
  fd = open (disk, O_RDWR | O_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  n_sigs = old_sig_write (fd, sigs);
  g_assert_cmpint (fsync (fd), ==, 0);
  close (fd);
  before = old_sig_read (disk, probes_before);

  /* the agent writes the new system: once, or twice when the first run
   * fails at a corrupt chunk */
  image = old_sig_image ();
  s = test_server_new ();
  serve_bytes (s, g_memdup2 (image, OLD_SIG_IMAGE), OLD_SIG_IMAGE, OLD_SIG_CHUNK);
  if (c->resume)
    {
      s->corrupt_chunk = (gint) corrupt;
      ran_first = run_agent_once (s, agent, disk);
      failed = find_event (s, "error ");
      requests_first = s->chunk_requests;
      after_first = old_sig_read (disk, NULL);
      /* what a restarted agent finds: the image's table, not the earlier one */
      fd = open (disk, O_RDONLY | O_CLOEXEC);
      g_assert_cmpint (fd, >=, 0);
      sa_gpt_read_old (fd, OLD_SIG_DISK, c->file ? 0 : 512, &table_after_first);
      close (fd);
      g_mutex_lock (&s->lock);
      g_ptr_array_set_size (s->events, 0);
      s->corrupt_chunk = -1;
      s->chunk_requests = 0;
      g_mutex_unlock (&s->lock);
    }
  ran = run_agent_once (s, agent, disk);
  written = find_event (s, "image-written ");
  requests_second = s->chunk_requests;
  after = old_sig_read (disk, probes_after);
  if (dev != NULL)
    g_assert_true (target_test_loop_detach (dev));
  g_unlink (backing);
  test_server_free (s);

  g_assert_true (ran_first);
  g_assert_true (ran);
  /* the earlier system was there: blkid found an md member or an LVM PV
   * in each of its partitions 1 to 6 */
  for (gsize i = 0; i < 6; i++)
    g_assert_true (strstr (probes_before->pdata[i], "TYPE=\"linux_raid_member\"") != NULL ||
                   strstr (probes_before->pdata[i], "TYPE=\"LVM2_member\"") != NULL);
  g_assert_false (old_sig_any_left (after, sigs, n_sigs));
  for (gsize i = 0; i < G_N_ELEMENTS (old_sig_parts); i++)
    g_assert_null (strstr (probes_after->pdata[i], " TYPE="));
  /* the image's range is the image's, byte for byte */
  g_assert_cmpmem (after, OLD_SIG_IMAGE, image, OLD_SIG_IMAGE);
  /* and past it only the ends of the old partitions and of the disk
   * changed, to zeros */
  memcpy (before, image, OLD_SIG_IMAGE);
  for (gsize i = 0; i < G_N_ELEMENTS (old_sig_parts); i++)
    {
      guint64 start = old_sig_parts[i][0], end = old_sig_parts[i][1];

      if (end <= OLD_SIG_IMAGE)
        continue;
      if (start + MiB > OLD_SIG_IMAGE)
        memset (before + MAX (start, OLD_SIG_IMAGE), 0, start + MiB - MAX (start, OLD_SIG_IMAGE));
      memset (before + end - MiB, 0, MiB);
    }
  memset (before + OLD_SIG_DISK - MiB, 0, MiB);
  g_assert_cmpmem (after, OLD_SIG_DISK, before, OLD_SIG_DISK);

  g_assert_nonnull (written);
  g_test_message ("%s", written);
  if (!c->resume)
    {
      g_assert_nonnull (strstr (written, "\"kept_chunks\":0,"));
      g_assert_nonnull (strstr (written, "before the image was written, the first and last MiB of 5 earlier partitions "
                                         "zeroed where they lie past it (3, 4, 5, 6, 7)"));
      return;
    }
  /* the first run: it failed at the corrupt chunk, after the image's
   * table had replaced the earlier one (a restarted agent cannot read
   * that any more), and the earlier system's places past the image were
   * zeroed by then */
  g_assert_nonnull (failed);
  g_test_message ("%s", failed);
  g_assert_nonnull (strstr (failed, "chunk 112 "));
  g_assert_cmpuint (requests_first, >, old_sig_data_chunks (image, corrupt));
  g_assert_cmpmem (after_first, OLD_SIG_CHUNK, image, OLD_SIG_CHUNK);
  g_assert_cmpuint (table_after_first.n, ==, 1);
  g_assert_cmpuint (table_after_first.part[0].start, ==, MiB);
  g_assert_cmpuint (table_after_first.part[0].end, ==, OLD_SIG_IMAGE);
  for (gsize i = 0; i < n_sigs; i++)
    if (sigs[i].at >= OLD_SIG_IMAGE)
      g_assert_cmpmem (after_first + sigs[i].at, sigs[i].len, before + sigs[i].at, sigs[i].len);
  /* the second: every chunk the first wrote is kept, verified on the
   * disk, the others fetched */
  expect = g_strdup_printf ("\"kept_chunks\":%u,", old_sig_data_chunks (image, corrupt));
  g_assert_nonnull (strstr (written, expect));
  g_assert_cmpuint (requests_second, ==, old_sig_data_chunks (image, G_MAXUINT) - old_sig_data_chunks (image, corrupt));
  /* the earlier table's backup was still at the disk's last LBA */
  g_assert_nonnull (strstr (written, "an earlier system's GPT backup header at the last LBA 131071 among them"));
}

static const OldSignatures old_signatures_loop = { FALSE, FALSE };
static const OldSignatures old_signatures_file = { TRUE, FALSE };
static const OldSignatures old_signatures_resume = { FALSE, TRUE };
static const OldSignatures old_signatures_resume_file = { TRUE, TRUE };

/* --- multicast-receive (suite net: a namespace of its own) ------------------ */

static gboolean
sh (const gchar *cmd)
{
  gint status = 0;

  g_test_message ("$ %s", cmd);
  return g_spawn_command_line_sync (cmd, NULL, NULL, &status, NULL) && g_spawn_check_wait_status (status, NULL);
}

/* shoal-mcast-send of @img to @group on lo (one receiver expected), in the
 * background (*pid); its join string once it has written it */
static gchar *
start_sender (const gchar *sender, const gchar *img, const gchar *group, const gchar *joinf,
              const gchar *join_wait_ms, const gchar *node_timeout_ms, GPid *pid)
{
  const gchar *argv[] = { "timeout", "60", sender, "--file", img, "--group", group, "--port", "47011",
                          "--iface", "lo", "--receivers", "1", "--chunk-size", "65536", "--join-out", joinf,
                          "--join-wait", join_wait_ms, "--node-timeout", node_timeout_ms, NULL };
  g_autoptr(GError) error = NULL;
  gchar *join = NULL;

  g_spawn_async (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, pid, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 200 && !g_file_get_contents (joinf, &join, NULL, NULL); i++)
    g_usleep (50000);
  g_assert_nonnull (join);
  return g_strstrip (join);
}

/* the agent, for the one instruction the server holds */
static void
run_mcast_agent (const gchar *agent, const gchar *conf)
{
  const gchar *argv[] = { "timeout", "60", agent, "--config", conf, "--no-modules", "--no-network", "--once",
                          "--max-polls", "3", NULL };
  g_autoptr(GError) error = NULL;
  g_autofree gchar *out = NULL;

  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("%s", out);
}

/* the agent, for the one instruction the server holds; then the sender
 * (@pid) is stopped */
static void
run_agent_then_stop (const gchar *agent, const gchar *conf, GPid pid)
{
  run_mcast_agent (agent, conf);
  kill (pid, SIGTERM);
  waitpid (pid, NULL, 0);
}

static void
assert_disk_holds_image (const gchar *disk, TestServer *s)
{
  g_autofree gchar *contents = NULL;

  g_assert_true (g_file_get_contents (disk, &contents, NULL, NULL));
  g_assert_cmpmem (contents, g_bytes_get_size (s->image), g_bytes_get_data (s->image, NULL), g_bytes_get_size (s->image));
}

/* the body of multicast-receive, in a subprocess whose parent made the
 * namespace @ns (its lo up, the multicast route on it) and deletes it
 * whatever happens here; @fail_midway: an assertion fails once the
 * namespace holds the test server and a sender */
static void
multicast_receive_in (const gchar *ns,
                      gboolean     fail_midway)
{
  const gchar *agent = g_getenv ("SHOAL_AGENT_BINARY");
  const gchar *sender = g_getenv ("SHOAL_MCAST_SEND");
  g_autofree gchar *tmp = NULL, *cmd = NULL, *img = NULL, *joinf = NULL, *join = NULL, *disk = NULL;
  g_autofree gchar *conf = NULL, *text = NULL, *nspath = NULL;
  TestServer *s;
  GPid pid = 0;
  int orig, fd;

  tmp = g_dir_make_tmp ("shoal-mcast-agent-XXXXXX", NULL);
  nspath = g_strdup_printf ("/run/netns/%s", ns);
  orig = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  fd = open (nspath, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (setns (fd, CLONE_NEWNET), ==, 0);
  close (fd);

  s = test_server_new ();
  serve_image_chunked (s, 6 * 65536 + 5000, 65536);
  img = g_build_filename (tmp, "image.raw", NULL);
  g_assert_true (g_file_set_contents (img, g_bytes_get_data (s->image, NULL), (gssize) g_bytes_get_size (s->image), NULL));
  joinf = g_build_filename (tmp, "join.txt", NULL);
  join = start_sender (sender, img, "239.77.7.7", joinf, "20000", "3000", &pid);
  if (fail_midway)
    {
      kill (pid, SIGTERM);
      waitpid (pid, NULL, 0);
      cmd = g_strdup_printf ("rm -rf %s", tmp);
      sh (cmd);
      g_assert_true (!"failing midway, as asked");
    }
  disk = g_build_filename (tmp, "disk.raw", NULL);
  g_assert_true (g_file_set_contents (disk, "", 0, NULL));
  s->instruction = g_strdup_printf ("{\"action\":\"multicast-receive\",\"join\":\"%s\",\"manifest\":\"/images/x/manifest\","
                                    "\"disk\":\"%s\"}", join, disk);
  conf = g_build_filename (tmp, "agent.conf", NULL);
  text = g_strdup_printf ("server=http://127.0.0.1:%u\ntoken=tok-1\ndevice=dev-1\n", s->port);
  g_assert_true (g_file_set_contents (conf, text, -1, NULL));
  run_agent_then_stop (agent, conf, pid);
  g_assert_true (has_event (s, "image-written "));
  g_assert_true (has_event (s, "image-written {\"disk\""));
  assert_disk_holds_image (disk, s);
  for (guint i = 0; i < s->events->len; i++)
    g_test_message ("event %s", (const gchar *) g_ptr_array_index (s->events, i));
  /* every data chunk came by multicast: none by HTTP */
  g_assert_cmpuint (s->chunk_requests, ==, 0);
  g_assert_true (has_event (s, "multicast-joined "));

  /* A restarted agent: the disk holds what the first run wrote (one chunk
   * of it spoiled) and the agent joins a session that has sent every chunk
   * already (it started without waiting, and is repairing). What the
   * session left out comes from the disk, the spoiled chunk by HTTP */
  {
    int dfd = open (disk, O_WRONLY | O_CLOEXEC);
    g_autofree gchar *join2 = NULL, *joinf2 = g_build_filename (tmp, "join2.txt", NULL);
    const gchar *last = NULL;

    g_assert_cmpint (dfd, >=, 0);
    g_assert_cmpint (pwrite (dfd, "x", 1, 10), ==, 1);
    close (dfd);
    join2 = start_sender (sender, img, "239.77.7.8", joinf2, "0", "20000", &pid);
    g_usleep (500000);
    g_free (s->instruction);
    s->instruction = g_strdup_printf ("{\"action\":\"multicast-receive\",\"join\":\"%s\",\"manifest\":\"/images/x/manifest\","
                                      "\"disk\":\"%s\"}", join2, disk);
    run_agent_then_stop (agent, conf, pid);
    for (guint i = 0; i < s->events->len; i++)
      if (g_str_has_prefix (g_ptr_array_index (s->events, i), "image-written {"))
        last = g_ptr_array_index (s->events, i);
    g_assert_nonnull (last);
    g_test_message ("restarted: %s", last);
    g_assert_nonnull (strstr (last, "\"kept_chunks\":5,"));
    g_assert_nonnull (strstr (last, "\"unicast_chunks\":1,"));
    g_assert_cmpuint (s->chunk_requests, ==, 1);
    assert_disk_holds_image (disk, s);
  }

  /* A join that fails (no route to the group, and no interface of the
   * name the sender gave, if it gave one): the agent says "error" with why, and not
   * "multicast-joined" (it said it before it tried) */
  {
    g_autofree gchar *route = g_strdup_printf ("ip -n %s route del 224.0.0.0/4 dev lo", ns);
    g_auto(GStrv) parts = g_strsplit (join, "iface=lo", 2);
    g_autofree gchar *unroutable = g_strjoinv ("iface=nope0", parts);
    g_autofree gchar *error = NULL;

    g_assert_true (sh (route));
    g_mutex_lock (&s->lock);
    g_ptr_array_set_size (s->events, 0);
    g_mutex_unlock (&s->lock);
    g_free (s->instruction);
    s->instruction = g_strdup_printf ("{\"action\":\"multicast-receive\",\"join\":\"%s\",\"manifest\":\"/images/x/manifest\","
                                      "\"disk\":\"%s\"}", unroutable, disk);
    run_mcast_agent (agent, conf);
    for (guint i = 0; i < s->events->len; i++)
      g_test_message ("failed join: event %s", (const gchar *) g_ptr_array_index (s->events, i));
    error = g_strdup_printf ("error {\"action\":\"multicast-receive\",\"message\":\"cannot join 239.77.7.7:47011\"");
    g_assert_true (has_event (s, error));
    g_assert_false (has_event (s, "multicast-joined"));
  }
  test_server_free (s);
  g_assert_cmpint (setns (orig, CLONE_NEWNET), ==, 0);
  close (orig);
  g_free (cmd);
  cmd = g_strdup_printf ("rm -rf %s", tmp);
  sh (cmd);
}

static gboolean
netns_exists (const gchar *ns)
{
  g_autofree gchar *nspath = g_strdup_printf ("/run/netns/%s", ns);

  return g_file_test (nspath, G_FILE_TEST_EXISTS);
}

/* The namespace shmc<pid> is made here and the test runs in a subprocess
 * (multicast_receive_in()), so that the namespace is deleted on every way
 * out of it: an assertion that fails aborts the subprocess, not the
 * process that deletes the namespace. @data: whether the subprocess fails
 * midway on purpose (the case that checks that cleanup) */
static void
test_multicast_receive (gconstpointer data)
{
  gboolean fail_midway = GPOINTER_TO_INT (data);
  const gchar *agent = g_getenv ("SHOAL_AGENT_BINARY");
  const gchar *sender = g_getenv ("SHOAL_MCAST_SEND");
  g_autofree gchar *ns = NULL;
  g_autofree gchar *cmd = NULL;

  if (g_test_subprocess ())
    {
      ns = g_strdup_printf ("shmc%d", (gint) getppid ());
      multicast_receive_in (ns, fail_midway);
      return;
    }
  if (geteuid () != 0 || agent == NULL || !g_file_test (agent, G_FILE_TEST_IS_EXECUTABLE)
      || sender == NULL || !g_file_test (sender, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("needs root, the static agent and plugins/multicast's shoal-mcast-send");
      return;
    }
  ns = g_strdup_printf ("shmc%d", (gint) getpid ());
  cmd = g_strdup_printf ("ip netns add %s", ns);
  g_assert_true (sh (cmd));
  g_free (cmd);
  cmd = g_strdup_printf ("ip -n %s link set lo up multicast on", ns);
  sh (cmd);
  g_free (cmd);
  cmd = g_strdup_printf ("ip -n %s route add 224.0.0.0/4 dev lo", ns);
  sh (cmd);
  g_free (cmd);
  /* nothing between the namespace's making and its deletion can abort */
  g_test_trap_subprocess (NULL, 100 * G_USEC_PER_SEC,
                          fail_midway ? G_TEST_SUBPROCESS_DEFAULT : G_TEST_SUBPROCESS_INHERIT_STDERR);
  cmd = g_strdup_printf ("ip netns del %s", ns);
  sh (cmd);
  g_assert_false (netns_exists (ns));
  if (fail_midway)
    {
      g_test_trap_assert_failed ();
      g_test_trap_assert_stderr ("*failing midway, as asked*");
    }
  else
    g_test_trap_assert_passed ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/target/json", test_json);
  g_test_add_func ("/shoal/target/json-writer", test_json_writer);
  g_test_add_func ("/shoal/target/http", test_http);
  g_test_add_func ("/shoal/target/newc", test_newc);
  g_test_add_func ("/shoal/target/newc-merged-usr", test_newc_merged_usr);
  g_test_add_func ("/shoal/target/newc-link-escape", test_newc_link_escape);
  g_test_add_func ("/shoal/target/newc-absolute-link", test_newc_absolute_link);
  g_test_add_func ("/shoal/target/newc-magic-link", test_newc_magic_link);
  g_test_add_data_func ("/shoal/target/newc-no-openat2/enosys", GINT_TO_POINTER (ENOSYS), test_newc_no_openat2);
  g_test_add_data_func ("/shoal/target/newc-no-openat2/eperm", GINT_TO_POINTER (EPERM), test_newc_no_openat2);
  g_test_add_func ("/shoal/target/config", test_config);
  g_test_add_func ("/shoal/target/inventory-fake-sysfs", test_inventory_fake);
  g_test_add_func ("/shoal/target/inventory-nic-without-mac", test_inventory_nic_without_mac);
  g_test_add_func ("/shoal/target/inventory-emmc", test_inventory_emmc);
  g_test_add_func ("/shoal/target/inventory-bus-devices", test_inventory_bus_devices);
  g_test_add_func ("/shoal/target/unicast-receive", test_unicast_receive);
  g_test_add_func ("/shoal/target/unicast-receive-block-device", test_unicast_receive_block_device);
  g_test_add_func ("/shoal/target/unicast-receive-disk-too-small", test_unicast_receive_disk_too_small);
  g_test_add_func ("/shoal/target/default-disk", test_default_disk);
  g_test_add_func ("/shoal/target/agent-program", test_agent_program);
  g_test_add_func ("/shoal/target/agent-program-gpt", test_agent_program_gpt);
  g_test_add_func ("/shoal/target/agent-program-stops", test_agent_program_stops);
  g_test_add_func ("/shoal/target/agent-program-superseded", test_agent_program_superseded);
  g_test_add_func ("/shoal/target/loader-superseded", test_loader_superseded);
  g_test_add_data_func ("/shoal/target/agent-program-md-leftover/0.90-gpt-image", &leftover_gpt_090,
                        test_agent_program_md_leftover);
  g_test_add_data_func ("/shoal/target/agent-program-md-leftover/1.0-gpt-image", &leftover_gpt_10,
                        test_agent_program_md_leftover);
  g_test_add_data_func ("/shoal/target/agent-program-md-leftover/0.90-mbr-image", &leftover_mbr_090,
                        test_agent_program_md_leftover);
  g_test_add_data_func ("/shoal/target/agent-program-md-leftover/1.0-mbr-image", &leftover_mbr_10,
                        test_agent_program_md_leftover);
  g_test_add_data_func ("/shoal/target/agent-program-md-leftover/1.0-old-partition", &leftover_partition,
                        test_agent_program_md_leftover);
  g_test_add_data_func ("/shoal/target/agent-program-md-leftover/1.0-old-partition-file", &leftover_file,
                        test_agent_program_md_leftover);
  g_test_add_data_func ("/shoal/target/agent-program-old-signatures/loop", &old_signatures_loop,
                        test_agent_program_old_signatures);
  g_test_add_data_func ("/shoal/target/agent-program-old-signatures/file", &old_signatures_file,
                        test_agent_program_old_signatures);
  g_test_add_data_func ("/shoal/target/agent-program-old-signatures/resume", &old_signatures_resume,
                        test_agent_program_old_signatures);
  g_test_add_data_func ("/shoal/target/agent-program-old-signatures/resume-file", &old_signatures_resume_file,
                        test_agent_program_old_signatures);
  g_test_add_data_func ("/shoal/target/net/multicast-receive", GINT_TO_POINTER (FALSE), test_multicast_receive);
  g_test_add_data_func ("/shoal/target/net/multicast-receive-cleanup", GINT_TO_POINTER (TRUE),
                        test_multicast_receive);
  return g_test_run ();
}
