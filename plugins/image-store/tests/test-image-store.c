/* test-image-store.c: ShoalImageStore, the async GObject over the store
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>
#include <utime.h>

#include "shoal-error.h"
#include "shoal-image-store.h"
#include "image-test-util.h"

typedef struct {
  gchar        *dir;
  GMainLoop    *loop;
  GAsyncResult *result;
  guint         n_changed;
  guint         n_progress;
  GPtrArray    *progress_paths;
} Fixture;


static void
got_result (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Fixture *f = user_data;

  f->result = g_object_ref (result);
  g_main_loop_quit (f->loop);
}

static GAsyncResult *
wait_result (Fixture *f)
{
  guint timeout = g_timeout_add_seconds (30, (GSourceFunc) g_main_loop_quit, f->loop);

  g_clear_object (&f->result);
  g_main_loop_run (f->loop);
  g_source_remove (timeout);
  g_assert_nonnull (f->result);
  return f->result;
}

static void
on_changed (ShoalImageStore *store,
            Fixture         *f)
{
  f->n_changed++;
}

static void
on_progress (ShoalImageStore *store,
             const gchar     *path,
             guint64          done,
             guint64          total,
             Fixture         *f)
{
  g_assert_cmpuint (done, <=, total);
  f->n_progress++;
  if (f->progress_paths != NULL)
    g_ptr_array_add (f->progress_paths, g_strdup (path));
}

static void
test_store (void)
{
  Fixture f = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImageStore) store = NULL;
  g_autofree gchar *root = NULL;
  g_autofree gchar *path = NULL;
  g_autofree guint8 *data = g_malloc0 (3 * 65536);
  g_autofree gchar *id = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(ShoalImageInfo) info = NULL;
  g_autoptr(GVariant) variant = NULL;
  ShoalImportStats stats = { 0 };
  guint64 freed = 0;

  f.dir = g_dir_make_tmp ("shoal-image-store-XXXXXX", NULL);
  f.loop = g_main_loop_new (NULL, FALSE);
  root = g_build_filename (f.dir, "store", NULL);
  path = g_build_filename (f.dir, "web.img", NULL);
  memset (data + 65536, 0x5a, 65536);
  g_assert_true (g_file_set_contents (path, (gchar *) data, 3 * 65536, NULL));

  store = shoal_image_store_new (root, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (shoal_image_store_get_root (store), ==, root);
  g_signal_connect (store, "changed", G_CALLBACK (on_changed), &f);
  g_signal_connect (store, "import-progress", G_CALLBACK (on_progress), &f);

  shoal_image_store_import_async (store, path, NULL, 65536, NULL, got_result, &f);
  id = shoal_image_store_import_finish (store, wait_result (&f), &stats, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (stats.n_zero, ==, 2);
  g_assert_cmpuint (stats.n_written, ==, 1);

  shoal_image_store_list_async (store, NULL, got_result, &f);
  list = shoal_image_store_list_finish (store, wait_result (&f), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 1);

  shoal_image_store_inspect_async (store, "web", NULL, got_result, &f);
  info = shoal_image_store_inspect_finish (store, wait_result (&f), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (info->id, ==, id);
  variant = g_variant_ref_sink (shoal_image_info_to_variant (info));
  g_assert_true (g_variant_is_of_type (variant, G_VARIANT_TYPE_VARDICT));

  shoal_image_store_verify_async (store, id, NULL, got_result, &f);
  g_assert_true (shoal_image_store_verify_finish (store, wait_result (&f), &error));
  g_assert_no_error (error);

  shoal_image_store_remove_async (store, "web", NULL, got_result, &f);
  g_assert_true (shoal_image_store_remove_finish (store, wait_result (&f), &freed, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (freed, ==, 65536);

  shoal_image_store_inspect_async (store, id, NULL, got_result, &f);
  g_assert_null (shoal_image_store_inspect_finish (store, wait_result (&f), &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* a cancelled import fails with G_IO_ERROR_CANCELLED and stores nothing */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();
    g_autofree gchar *none = NULL;

    g_cancellable_cancel (cancellable);
    shoal_image_store_import_async (store, path, NULL, 65536, cancellable, got_result, &f);
    none = shoal_image_store_import_finish (store, wait_result (&f), NULL, &error);
    g_assert_null (none);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
  }

  shoal_image_store_gc_async (store, NULL, got_result, &f);
  g_assert_true (shoal_image_store_gc_finish (store, wait_result (&f), &freed, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (freed, ==, 0);

  /* two images of one name: a dry run removes nothing, a pruning the
   * older (each of the two calls changes the store: "changed") */
  {
    g_autofree gchar *older = NULL;
    g_autofree gchar *newer = NULL;
    g_autofree gchar *manifest = NULL;
    g_autoptr(ShoalImagePrune) prune = NULL;
    struct utimbuf times = { 1000, 1000 };

    shoal_image_store_import_async (store, path, "web", 65536, NULL, got_result, &f);
    older = shoal_image_store_import_finish (store, wait_result (&f), NULL, &error);
    g_assert_no_error (error);
    manifest = g_strdup_printf ("%s/images/%s.manifest", root, older);
    g_assert_cmpint (g_utime (manifest, &times), ==, 0);
    data[0] = 1;
    g_assert_true (g_file_set_contents (path, (gchar *) data, 3 * 65536, NULL));
    shoal_image_store_import_async (store, path, "web", 65536, NULL, got_result, &f);
    newer = shoal_image_store_import_finish (store, wait_result (&f), NULL, &error);
    g_assert_no_error (error);

    shoal_image_store_prune_async (store, NULL, 1, NULL, TRUE, NULL, got_result, &f);
    prune = shoal_image_store_prune_finish (store, wait_result (&f), &error);
    g_assert_no_error (error);
    g_assert_cmpuint (prune->removed->len, ==, 1);
    g_assert_true (g_file_test (manifest, G_FILE_TEST_EXISTS));
    g_clear_pointer (&prune, shoal_image_prune_free);
    shoal_image_store_prune_async (store, "web", 1, NULL, FALSE, NULL, got_result, &f);
    prune = shoal_image_store_prune_finish (store, wait_result (&f), &error);
    g_assert_no_error (error);
    g_assert_cmpuint (prune->removed->len, ==, 1);
    g_assert_cmpstr (((ShoalImageInfo *) g_ptr_array_index (prune->removed, 0))->id, ==, older);
    g_assert_false (g_file_test (manifest, G_FILE_TEST_EXISTS));
  }

  /* let the idle "changed" emissions run */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (f.n_changed, ==, 5);
  g_assert_cmpuint (f.n_progress, >=, 1);

  g_clear_object (&f.result);
  g_main_loop_unref (f.loop);
  image_test_rm_rf (f.dir);
  g_free (f.dir);
}

static void
serve_image (SoupServer        *server,
             SoupServerMessage *msg,
             const char        *path,
             GHashTable        *query,
             gpointer           user_data)
{
  if (g_strcmp0 (path, "/x.raw") != 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY,
                                    user_data, 2 * 65536);
}

/* ImageImportProgress, sent to every local user, carried the URL with
 * its password: the store's signal and its errors show the URL without it */
static void
test_url_password_hidden (void)
{
  Fixture f = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImageStore) store = NULL;
  g_autoptr(SoupServer) server = soup_server_new (NULL, NULL);
  g_autofree guint8 *data = g_malloc (2 * 65536);
  g_autofree gchar *root = NULL;
  g_autofree gchar *url = NULL;
  g_autofree gchar *missing = NULL;
  g_autofree gchar *id = NULL;
  GSList *uris;

  memset (data, 0x33, 2 * 65536);
  soup_server_add_handler (server, NULL, serve_image, data, NULL);
  g_assert_true (soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (server);
  url = g_strdup_printf ("http://user:s3cret@127.0.0.1:%d/x.raw", g_uri_get_port (uris->data));
  missing = g_strdup_printf ("http://user:s3cret@127.0.0.1:%d/none.raw", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  f.dir = g_dir_make_tmp ("shoal-image-store-XXXXXX", NULL);
  f.loop = g_main_loop_new (NULL, FALSE);
  f.progress_paths = g_ptr_array_new_with_free_func (g_free);
  root = g_build_filename (f.dir, "store", NULL);
  store = shoal_image_store_new (root, &error);
  g_assert_no_error (error);
  g_signal_connect (store, "import-progress", G_CALLBACK (on_progress), &f);

  shoal_image_store_import_async (store, url, NULL, 65536, NULL, got_result, &f);
  id = shoal_image_store_import_finish (store, wait_result (&f), NULL, &error);
  g_assert_no_error (error);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (f.progress_paths->len, >, 0);
  for (guint i = 0; i < f.progress_paths->len; i++)
    {
      const gchar *shown = g_ptr_array_index (f.progress_paths, i);

      g_assert_null (strstr (shown, "s3cret"));
      g_assert_nonnull (strstr (shown, "127.0.0.1"));
    }

  shoal_image_store_import_async (store, missing, NULL, 65536, NULL, got_result, &f);
  g_assert_null (shoal_image_store_import_finish (store, wait_result (&f), NULL, &error));
  g_assert_nonnull (error);
  g_assert_null (strstr (error->message, "s3cret"));

  g_clear_object (&f.result);
  g_main_loop_unref (f.loop);
  g_ptr_array_unref (f.progress_paths);
  image_test_rm_rf (f.dir);
  g_free (f.dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/image-store/gobject", test_store);
  g_test_add_func ("/shoal/image-store/url-password-hidden", test_url_password_hidden);
  return g_test_run ();
}
