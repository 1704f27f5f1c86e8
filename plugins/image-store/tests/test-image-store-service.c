/* test-image-store-service.c: the /image-store management routes inside a
 * real controller, with curl on loopback
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <shoal.h>
#include <string.h>

#include "shoal-controller-private.h"
#include "shoal-image-store-service.h"
#include "image-test-util.h"

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


static void
curl_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* Returns the HTTP status; *body gets the response body */
static guint
curl (const gchar  *out_path,
      gchar       **body,
      const gchar  *method,
      const gchar  *auth,
      const gchar  *data,
      const gchar  *url)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *out = NULL;
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  g_unlink (out_path);
  g_ptr_array_add (argv, "curl");
  g_ptr_array_add (argv, "-s");
  g_ptr_array_add (argv, "--max-time");
  g_ptr_array_add (argv, "50");
  g_ptr_array_add (argv, "-o");
  g_ptr_array_add (argv, (gpointer) out_path);
  g_ptr_array_add (argv, "-w");
  g_ptr_array_add (argv, "%{http_code}");
  g_ptr_array_add (argv, "-X");
  g_ptr_array_add (argv, (gpointer) method);
  g_ptr_array_add (argv, "-H");
  g_ptr_array_add (argv, (gpointer) (auth != NULL ? auth : "X-None: 1"));
  if (data != NULL)
    {
      g_ptr_array_add (argv, "--data-binary");
      g_ptr_array_add (argv, (gpointer) data);
    }
  g_ptr_array_add (argv, (gpointer) url);
  g_ptr_array_add (argv, NULL);
  proc = g_subprocess_newv ((const gchar * const *) argv->pdata, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (proc, NULL, NULL, curl_done, &result);
  while (result == NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (g_subprocess_communicate_utf8_finish (proc, result, &out, NULL, &error));
  if (body != NULL)
    g_file_get_contents (out_path, body, NULL, NULL);
  return (guint) g_ascii_strtoull (out, NULL, 10);
}

/* a controller in a temporary state directory, its HTTP server on
 * loopback, and the service started in it */
typedef struct {
  gchar            *dir;
  gchar            *out;       /* where curl writes answers */
  gchar            *base;
  gchar            *auth;      /* the Authorization header of the admin token */
  gchar            *list_url;
  gchar            *one_url;   /* of the image "db" */
  ShoalController  *controller;
  SoupServer       *server;
  ShoalService     *service;
} Fixture;

static void
fixture_open (Fixture     *f,
              const gchar *name,
              SoupServer  *server)
{
  g_autoptr(ShoalPluginEngine) engine = shoal_plugin_engine_new ();
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GError) error = NULL;
  guint port = 0;

  f->dir = g_dir_make_tmp (name, NULL);
  f->out = g_build_filename (f->dir, "out.json", NULL);
  f->controller = shoal_controller_new (engine, f->dir);
  g_assert_true (shoal_controller_open (f->controller, &error));
  f->server = server;
  g_assert_true (shoal_http_server_listen (server, loopback, 0, &port, &error));
  g_assert_no_error (error);
  f->base = g_strdup_printf ("http://127.0.0.1:%u", port);
  shoal_controller_set_http_server (f->controller, server, f->base);
}

static void
fixture_start (Fixture *f)
{
  g_autofree gchar *token_path = g_build_filename (f->dir, "image-store", "admin-token", NULL);
  g_autofree gchar *token = NULL;
  g_autoptr(GError) error = NULL;

  f->service = g_object_new (SHOAL_TYPE_IMAGE_STORE_SERVICE, NULL);
  g_assert_true (shoal_service_start (f->service, shoal_controller_get_context (f->controller), &error));
  g_assert_no_error (error);
  g_assert_true (g_file_get_contents (token_path, &token, NULL, NULL));
  f->auth = g_strdup_printf ("Authorization: Bearer %s", token);
  f->list_url = g_strdup_printf ("%s/image-store/images", f->base);
  f->one_url = g_strdup_printf ("%s/image-store/images/db", f->base);
}

static void
fixture_close (Fixture *f)
{
  shoal_service_stop (f->service);
  shoal_controller_close (f->controller);
  soup_server_disconnect (f->server);
  image_test_rm_rf (f->dir);
  g_clear_object (&f->service);
  g_clear_object (&f->controller);
  g_clear_object (&f->server);
  g_free (f->dir);
  g_free (f->out);
  g_free (f->base);
  g_free (f->auth);
  g_free (f->list_url);
  g_free (f->one_url);
}

static void
test_service (void)
{
  Fixture f = { 0 };
  g_autofree gchar *image = NULL;
  g_autofree gchar *store_tmp = NULL;
  g_autofree gchar *download = NULL;
  g_autofree gchar *post = NULL;
  g_autofree gchar *body = NULL;
  g_autofree gchar *bin = g_find_program_in_path ("curl");
  g_autofree guint8 *bytes = g_malloc0 (3 * 4096);

  if (bin == NULL)
    {
      g_test_skip ("curl is not installed");
      return;
    }
  /* a server of libsoup's own: no body limits */
  fixture_open (&f, "shoal-image-store-service-XXXXXX", soup_server_new (NULL, NULL));
  image = g_build_filename (f.dir, "db.img", NULL);
  store_tmp = g_build_filename (f.dir, "image-store", "tmp", NULL);
  download = g_build_filename (store_tmp, "download-k9Lm2Q", NULL);
  memset (bytes, 7, 4096);
  g_assert_true (g_file_set_contents (image, (gchar *) bytes, 3 * 4096, NULL));

  /* the download of an import a kill -9 interrupted: gone once started */
  g_assert_cmpint (g_mkdir_with_parents (store_tmp, 0700), ==, 0);
  g_assert_true (g_file_set_contents (download, "partial", -1, NULL));
  fixture_start (&f);
  {
    gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

    while (g_file_test (download, G_FILE_TEST_EXISTS) && g_get_monotonic_time () < deadline)
      {
        if (!g_main_context_iteration (NULL, FALSE))
          g_usleep (10000);
      }
    g_assert_false (g_file_test (download, G_FILE_TEST_EXISTS));
  }
  g_assert_nonnull (shoal_image_store_service_get_store (SHOAL_IMAGE_STORE_SERVICE (f.service)));

  g_assert_cmpuint (curl (f.out, NULL, "GET", NULL, NULL, f.list_url), ==, 401);
  g_assert_cmpuint (curl (f.out, NULL, "GET", "Authorization: Bearer nope", NULL, f.list_url), ==, 401);
  g_assert_cmpuint (curl (f.out, &body, "GET", f.auth, NULL, f.list_url), ==, 200);
  g_assert_cmpstr (body, ==, "[]");
  g_clear_pointer (&body, g_free);

  post = g_strdup_printf ("{\"path\": \"%s\", \"chunk-size\": 4096}", image);
  g_assert_cmpuint (curl (f.out, &body, "POST", f.auth, post, f.list_url), ==, 201);
  g_assert_nonnull (strstr (body, "\"name\":\"db\""));
  g_assert_nonnull (strstr (body, "\"zero-chunks\":2"));
  g_clear_pointer (&body, g_free);
  g_assert_cmpuint (curl (f.out, NULL, "POST", f.auth, "{\"path\": \"relative.img\"}", f.list_url), ==, 400);
  g_assert_cmpuint (curl (f.out, NULL, "POST", f.auth, "{\"path\": \"ftp://127.0.0.1/os.img\"}", f.list_url), ==, 400);
  /* a URL is taken and fetched: nothing listens on port 1 of loopback */
  g_assert_cmpuint (curl (f.out, NULL, "POST", f.auth, "{\"path\": \"http://127.0.0.1:1/os.img.xz\"}", f.list_url), ==, 500);
  g_assert_cmpuint (curl (f.out, NULL, "POST", f.auth, "{\"path\": \"/nonexistent.img\"}", f.list_url), ==, 404);
  g_assert_cmpuint (curl (f.out, NULL, "POST", f.auth, "not json", f.list_url), ==, 400);

  g_assert_cmpuint (curl (f.out, &body, "GET", f.auth, NULL, f.one_url), ==, 200);
  g_assert_nonnull (strstr (body, "\"size\":12288"));
  g_clear_pointer (&body, g_free);
  g_assert_cmpuint (curl (f.out, &body, "DELETE", f.auth, NULL, f.one_url), ==, 200);
  g_assert_nonnull (strstr (body, "\"freed-bytes\":4096"));
  g_assert_cmpuint (curl (f.out, NULL, "GET", f.auth, NULL, f.one_url), ==, 404);
  fixture_close (&f);
}

/* Only an import (POST) takes a body: a GET or DELETE that sends one is
 * refused before the body is read (413), where every method could send
 * 64 KiB. The routes run on the daemon's server (shoal_http_server_new()),
 * which applies the allowance */
static void
test_service_bodies (void)
{
  Fixture f = { 0 };
  g_autofree gchar *bin = g_find_program_in_path ("curl");

  if (bin == NULL)
    {
      g_test_skip ("curl is not installed");
      return;
    }
  fixture_open (&f, "shoal-image-store-bodies-XXXXXX", shoal_http_server_new ("shoal-test "));
  fixture_start (&f);
  g_assert_cmpuint (curl (f.out, NULL, "GET", f.auth, NULL, f.list_url), ==, 200);
  g_assert_cmpuint (curl (f.out, NULL, "GET", f.auth, "{}", f.list_url), ==, 413);
  g_assert_cmpuint (curl (f.out, NULL, "DELETE", f.auth, "{}", f.one_url), ==, 413);
  g_assert_cmpuint (curl (f.out, NULL, "PUT", f.auth, "{}", f.one_url), ==, 413);
  /* an import takes one, up to 64 KiB */
  g_assert_cmpuint (curl (f.out, NULL, "POST", f.auth, "{\"path\": \"relative.img\"}", f.list_url), ==, 400);
  g_assert_cmpuint (curl (f.out, NULL, "DELETE", f.auth, NULL, f.one_url), ==, 404);
  fixture_close (&f);
}

static void
assert_hex_token (const gchar *token)
{
  g_assert_nonnull (token);
  g_assert_cmpuint (strlen (token), ==, 64);
  for (const gchar *p = token; *p != '\0'; p++)
    g_assert_true (g_ascii_isxdigit (*p) && !g_ascii_isupper (*p));
}

/* The admin token is 32 random bytes as 64 hex digits, kept in
 * <root>/admin-token (0600) and read back; two stores get different
 * ones, even with GLib's generator reseeded alike before each (so they do
 * not come from g_random_*()). That they come from a cryptographic
 * generator cannot be tested as such */
static void
test_admin_token (void)
{
  g_autofree gchar *dir = g_dir_make_tmp ("shoal-image-store-token-XXXXXX", NULL);
  g_autofree gchar *root1 = g_build_filename (dir, "one", NULL);
  g_autofree gchar *root2 = g_build_filename (dir, "two", NULL);
  g_autofree gchar *path = g_build_filename (root1, "admin-token", NULL);
  g_autofree gchar *token1 = NULL, *token2 = NULL, *again = NULL;
  g_autoptr(GError) error = NULL;
  GStatBuf st;

  g_assert_cmpint (g_mkdir (root1, 0700), ==, 0);
  g_assert_cmpint (g_mkdir (root2, 0700), ==, 0);
  /* GLib's generator set to the same state before each: tokens made from
   * it come out the same (as they did) */
  g_random_set_seed (42);
  token1 = shoal_image_store_service_load_admin_token (root1, &error);
  g_assert_no_error (error);
  g_random_set_seed (42);
  token2 = shoal_image_store_service_load_admin_token (root2, &error);
  g_assert_no_error (error);
  assert_hex_token (token1);
  assert_hex_token (token2);
  g_assert_cmpstr (token1, !=, token2);
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  again = shoal_image_store_service_load_admin_token (root1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (again, ==, token1);
  image_test_rm_rf (dir);
}

/* A service stopped before its start-up clean-up ended (shoald stopping
 * at once, a controller closed and its state directory removed, as the
 * tests that restart a controller do) says nothing of it; it warned that
 * the clean-up failed (here on a manifest it cannot read, so that it
 * fails whenever it runs), after the stop */
static void
test_stop_before_gc (void)
{
  Fixture f = { 0 };
  g_autofree gchar *images = NULL;
  g_autofree gchar *manifest = NULL;
  ShoalImageStore *store;
  gint64 deadline;

  fixture_open (&f, "shoal-image-store-stop-XXXXXX", shoal_http_server_new ("shoal-test "));
  images = g_build_filename (f.dir, "image-store", "images", NULL);
  g_assert_cmpint (g_mkdir_with_parents (images, 0700), ==, 0);
  manifest = g_build_filename (images, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.manifest",
                               NULL);
  g_assert_true (g_file_set_contents (manifest, "not a manifest", -1, NULL));
  fixture_start (&f);
  store = shoal_image_store_service_get_store (SHOAL_IMAGE_STORE_SERVICE (f.service));
  g_object_add_weak_pointer (G_OBJECT (store), (gpointer *) &store);
  shoal_service_stop (f.service);
  /* the clean-up has ended once nothing holds the store */
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (store != NULL && g_get_monotonic_time () < deadline)
    {
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (10000);
    }
  g_assert_null (store);
  fixture_close (&f);
}

int
main (int argc, char **argv)
{
  GTypeModule *module;

  g_test_init (&argc, &argv, NULL);
  module = g_object_new (TEST_TYPE_MODULE, NULL);
  g_type_module_use (module);
  shoal_image_store_service_register_types (module);
  g_test_add_func ("/shoal/image-store/service", test_service);
  g_test_add_func ("/shoal/image-store/service-bodies", test_service_bodies);
  g_test_add_func ("/shoal/image-store/admin-token", test_admin_token);
  g_test_add_func ("/shoal/image-store/stop-before-gc", test_stop_before_gc);
  return g_test_run ();
}
