/* test-dbus-images.c: the image store of the real shoald, over D-Bus
 * (ImportImage, CancelImport, ListImages, InspectImage, RemoveImage,
 * PruneImages, VerifyImage, ImageImportProgress) and with shoalctl
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "shoal-error.h"
#include "shoal-test-daemon.h"

#define CHUNK 4096
#define IMAGE_SIZE (2 * CHUNK + 1000)
#define DATA_BYTES (CHUNK + 1000)

/* a raw image of three 4 KiB chunks: zeros, 'a's, then 1000 @tail bytes */
static gchar *
write_image_version (ShoalTestDaemon *td, const gchar *basename, guint8 tail)
{
  g_autofree guint8 *data = g_malloc0 (IMAGE_SIZE);
  g_autoptr(GError) error = NULL;
  gchar *path = g_build_filename (td->tmpdir, basename, NULL);

  memset (data + CHUNK, 'a', CHUNK);
  memset (data + 2 * CHUNK, tail, 1000);
  g_file_set_contents (path, (const gchar *) data, IMAGE_SIZE, &error);
  g_assert_no_error (error);
  return path;
}

/* a raw image of three 4 KiB chunks: zeros, 'a's, then 1000 'b's */
static gchar *
write_image (ShoalTestDaemon *td, const gchar *basename)
{
  return write_image_version (td, basename, 'b');
}

/* imports @path as @name in 4 KiB chunks; returns the id */
static gchar *
import_image (ShoalTestDaemon *td, const gchar *path, const gchar *name)
{
  g_autoptr(GError) error = NULL;
  gchar *id = NULL;

  shoal_dbus_manager_call_import_image_sync (td->manager, path, name, CHUNK, &id, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (strlen (id), ==, 64);
  return id;
}

static guint64
lookup_t (GVariant *dict, const gchar *key)
{
  guint64 value = G_MAXUINT64;

  g_assert_true (g_variant_lookup (dict, key, "t", &value));
  return value;
}

static const gchar *
lookup_s (GVariant *dict, const gchar *key)
{
  const gchar *value = NULL;

  g_assert_true (g_variant_lookup (dict, key, "&s", &value));
  return value;
}

static void
check_image (GVariant *image, const gchar *id, const gchar *name)
{
  guint32 chunk_size = 0;

  g_assert_cmpstr (lookup_s (image, "id"), ==, id);
  g_assert_cmpstr (lookup_s (image, "name"), ==, name);
  g_assert_cmpuint (lookup_t (image, "size"), ==, IMAGE_SIZE);
  g_assert_cmpuint (lookup_t (image, "chunks"), ==, 3);
  g_assert_cmpuint (lookup_t (image, "zero-chunks"), ==, 1);
  g_assert_cmpuint (lookup_t (image, "data-bytes"), ==, DATA_BYTES);
  g_assert_true (g_variant_lookup (image, "chunk-size", "u", &chunk_size));
  g_assert_cmpuint (chunk_size, ==, CHUNK);
  g_assert_cmpuint (strlen (lookup_s (image, "image-sha256")), ==, 64);
}

static void
test_images_lifecycle (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) images = NULL;
  g_autoptr(GVariant) first = NULL;
  g_autoptr(GVariant) image = NULL;
  g_autoptr(GVariant) empty = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *again = NULL;
  g_autofree gchar *store_chunks = NULL;
  guint64 freed = 0;

  shoal_test_daemon_start (td, FALSE);
  path = write_image (td, "disk.img");

  id = import_image (td, path, "test-os");
  /* the same image again: the same id, nothing new */
  again = import_image (td, path, "test-os");
  g_assert_cmpstr (again, ==, id);

  shoal_dbus_manager_call_list_images_sync (td->manager, &images, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (images), ==, 1);
  first = g_variant_get_child_value (images, 0);
  check_image (first, id, "test-os");

  /* by name and by id; the store is in <state dir>/image-store */
  shoal_dbus_manager_call_inspect_image_sync (td->manager, "test-os", &image, NULL, &error);
  g_assert_no_error (error);
  check_image (image, id, "test-os");
  g_clear_pointer (&image, g_variant_unref);
  shoal_dbus_manager_call_inspect_image_sync (td->manager, id, &image, NULL, &error);
  g_assert_no_error (error);
  check_image (image, id, "test-os");
  store_chunks = g_build_filename (td->tmpdir, "state", "image-store", "chunks", NULL);
  g_assert_true (g_file_test (store_chunks, G_FILE_TEST_IS_DIR));

  shoal_dbus_manager_call_remove_image_sync (td->manager, "test-os", &freed, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (freed, ==, DATA_BYTES);
  shoal_dbus_manager_call_list_images_sync (td->manager, &empty, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (empty), ==, 0);

  g_clear_pointer (&image, g_variant_unref);
  g_assert_false (shoal_dbus_manager_call_inspect_image_sync (td->manager, id, &image, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "id_or_name: "));
}

static void
assert_import_fails (ShoalTestDaemon *td,
                     const gchar     *path,
                     const gchar     *name,
                     guint32          chunk_size,
                     gint             code,
                     const gchar     *argument)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *id = NULL;

  g_assert_false (shoal_dbus_manager_call_import_image_sync (td->manager, path, name, chunk_size,
                                                             &id, NULL, &error));
  g_test_message ("ImportImage (%s, %s, %u): %s", path, name, chunk_size, error->message);
  g_assert_error (error, SHOAL_ERROR, code);
  g_assert_nonnull (strstr (error->message, argument));
}

/* [image-store] chunk-size in shoald.conf: the size of imports that ask
 * for 0 (one that asks for a size keeps it); a value that is no chunk
 * size is reported in the log and 1 MiB kept */
static void
run_default_chunk_size (const gchar *configured,
                        guint32      expected,
                        guint64      chunks)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) image = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *log = NULL;
  guint32 chunk_size = 0;

  shoal_test_daemon_set_conf (td, "image-store", "chunk-size", configured);
  shoal_test_daemon_start (td, FALSE);
  path = write_image (td, "disk.img");

  shoal_dbus_manager_call_import_image_sync (td->manager, path, "by-default", 0, &id, NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_inspect_image_sync (td->manager, id, &image, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_lookup (image, "chunk-size", "u", &chunk_size));
  g_assert_cmpuint (chunk_size, ==, expected);
  g_assert_cmpuint (lookup_t (image, "chunks"), ==, chunks);
  g_clear_pointer (&image, g_variant_unref);
  g_clear_pointer (&id, g_free);

  id = import_image (td, path, "chosen");
  shoal_dbus_manager_call_inspect_image_sync (td->manager, id, &image, NULL, &error);
  g_assert_no_error (error);
  check_image (image, id, "chosen");

  g_assert_true (g_file_get_contents (td->log_path, &log, NULL, &error));
  g_assert_true ((strstr (log, "[image-store] chunk-size=") != NULL) == (expected == 1048576));
}

static void
test_images_default_chunk_size (void)
{
  run_default_chunk_size ("8192", 8192, 2);
  run_default_chunk_size ("1000", 1048576, 1);
  run_default_chunk_size ("lots", 1048576, 1);
}

static void
test_images_bad_arguments (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) image = NULL;
  g_autoptr(GVariant) images = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *missing = NULL;
  guint64 freed = 0;

  shoal_test_daemon_start (td, FALSE);
  path = write_image (td, "disk.img");
  missing = g_build_filename (td->tmpdir, "no-such.img", NULL);

  assert_import_fails (td, "disk.img", "", 0, SHOAL_ERROR_INVALID_ARGUMENT, "path: ");
  assert_import_fails (td, missing, "", 0, SHOAL_ERROR_NOT_FOUND, "path: ");
  assert_import_fails (td, td->tmpdir, "", 0, SHOAL_ERROR_INVALID_ARGUMENT, "path: ");
  assert_import_fails (td, path, "bad name", 0, SHOAL_ERROR_INVALID_ARGUMENT, "name: ");
  assert_import_fails (td, path, "-x", 0, SHOAL_ERROR_INVALID_ARGUMENT, "name: ");
  assert_import_fails (td, path, "", 1000, SHOAL_ERROR_INVALID_ARGUMENT, "chunk_size: ");
  assert_import_fails (td, path, "", 128u * 1024 * 1024, SHOAL_ERROR_INVALID_ARGUMENT, "chunk_size: ");
  /* a URL is taken, and fetched: a port on loopback bound but not
   * listening refuses the connection */
  {
    g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
    g_autoptr(GSocketAddress) bound = NULL;
    g_autofree gchar *url = NULL;

    g_assert_true (g_socket_bind (socket, any, FALSE, NULL));
    bound = g_socket_get_local_address (socket, NULL);
    url = g_strdup_printf ("http://127.0.0.1:%u/os.img.xz", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
    assert_import_fails (td, url, "", 0, SHOAL_ERROR_FAILED, "Cannot download http://127.0.0.1:");
    assert_import_fails (td, "ftp://127.0.0.1/os.img", "", 0, SHOAL_ERROR_INVALID_ARGUMENT, "path: ");
  }

  g_assert_false (shoal_dbus_manager_call_inspect_image_sync (td->manager, "", &image, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "id_or_name: "));
  g_clear_error (&error);
  g_assert_false (shoal_dbus_manager_call_remove_image_sync (td->manager, "nosuch", &freed, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "id_or_name: "));
  g_clear_error (&error);

  /* nothing was imported by the failed calls */
  shoal_dbus_manager_call_list_images_sync (td->manager, &images, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (images), ==, 0);
}

/* calls a manager method with gdbus as user nobody; @args: its arguments */
static gint
run_as_nobody (ShoalTestDaemon *td, const gchar *method, const gchar * const *args, gchar **err)
{
  g_autofree gchar *address = g_strconcat ("--address=", td->address, NULL);
  g_autoptr(GStrvBuilder) argv = g_strv_builder_new ();
  g_auto(GStrv) strv = NULL;
  const gchar *head[] = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          "gdbus", "call", address, "--dest", "org.shoal.Shoal1",
                          "--object-path", "/org/shoal/Shoal1", "--method", method, NULL };

  g_strv_builder_addv (argv, head);
  if (args != NULL)
    g_strv_builder_addv (argv, (const gchar **) args);
  strv = g_strv_builder_end (argv);
  return shoal_test_run ((const gchar * const *) strv, NULL, err, 30);
}

static void
test_images_unauthorized (void)
{
  g_autoptr(ShoalTestDaemon) td = NULL;
  g_autofree gchar *setpriv = g_find_program_in_path ("setpriv");
  g_autofree gchar *gdbus = g_find_program_in_path ("gdbus");
  g_autofree gchar *err = NULL;
  const gchar *import_args[] = { "'/etc/hostname'", "'x'", "0", NULL };
  const gchar *nosuch[] = { "'nosuch'", NULL };
  const gchar *prune_args[] = { "{'keep': <@u 1>}", NULL };

  if (getuid () != 0 || setpriv == NULL || gdbus == NULL)
    {
      g_test_skip ("needs root, setpriv and gdbus to call as another user");
      return;
    }
  td = shoal_test_daemon_new ();
  shoal_test_daemon_set_open_bus (td);
  shoal_test_daemon_start (td, FALSE);

  g_assert_cmpint (run_as_nobody (td, "org.shoal.Shoal1.Manager.ListImages", NULL, &err), ==, 0);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_as_nobody (td, "org.shoal.Shoal1.Manager.InspectImage", nosuch, &err), !=, 0);
  g_assert_nonnull (strstr (err, "org.shoal.Shoal1.Error.NotFound"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_as_nobody (td, "org.shoal.Shoal1.Manager.ImportImage", import_args, &err), !=, 0);
  g_test_message ("as nobody: %s", err);
  g_assert_nonnull (strstr (err, "org.shoal.Shoal1.Error.PermissionDenied"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_as_nobody (td, "org.shoal.Shoal1.Manager.RemoveImage", nosuch, &err), !=, 0);
  g_assert_nonnull (strstr (err, "org.shoal.Shoal1.Error.PermissionDenied"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_as_nobody (td, "org.shoal.Shoal1.Manager.VerifyImage", nosuch, &err), !=, 0);
  g_assert_nonnull (strstr (err, "org.shoal.Shoal1.Error.PermissionDenied"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_as_nobody (td, "org.shoal.Shoal1.Manager.PruneImages", prune_args, &err), !=, 0);
  g_assert_nonnull (strstr (err, "org.shoal.Shoal1.Error.PermissionDenied"));
}

/* ---- shoalctl ------------------------------------------------------------- */

static gint
ctl_run (ShoalTestDaemon *td, gchar **out, gchar **err, ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  const gchar *arg;
  va_list args;
  gint status;

  g_clear_pointer (out, g_free);
  g_clear_pointer (err, g_free);
  g_ptr_array_add (argv, g_strdup (g_getenv ("SHOALCTL")));
  g_ptr_array_add (argv, g_strconcat ("--address=", td->address, NULL));
  va_start (args, err);
  while ((arg = va_arg (args, const gchar *)) != NULL)
    g_ptr_array_add (argv, g_strdup (arg));
  va_end (args);
  g_ptr_array_add (argv, NULL);
  status = shoal_test_run ((const gchar * const *) argv->pdata, out, err, 120);
  g_test_message ("stdout:\n%sstderr:\n%s", *out, *err);
  return status;
}

static void
assert_has (const gchar *text, const gchar *needle)
{
  if (text == NULL || strstr (text, needle) == NULL)
    g_error ("“%s” not found in:\n%s", needle, text);
}

static void
test_images_shoalctl (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autofree gchar *path = NULL;
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *short_id = NULL;

  shoal_test_daemon_start (td, FALSE);
  path = write_image (td, "ctl.img");

  g_assert_cmpint (ctl_run (td, &out, &err, "image-import", path, "--name", "ctl-os",
                            "--chunk-size", "4096", NULL), ==, 0);
  id = g_strstrip (g_strdup (out));
  g_assert_cmpuint (strlen (id), ==, 64);
  short_id = g_strndup (id, 12);

  g_assert_cmpint (ctl_run (td, &out, &err, "images", NULL), ==, 0);
  assert_has (out, "NAME");
  assert_has (out, "ctl-os");
  assert_has (out, short_id);

  g_assert_cmpint (ctl_run (td, &out, &err, "image-show", "ctl-os", NULL), ==, 0);
  assert_has (out, id);
  assert_has (out, "Zero chunks:   1");
  assert_has (out, "Chunks:        3");

  /* the 12 digits "images" shows name the image (they gave "No image
   * named"); fewer than 8 do not */
  g_assert_cmpint (ctl_run (td, &out, &err, "image-show", short_id, NULL), ==, 0);
  assert_has (out, id);
  g_assert_cmpint (ctl_run (td, &out, &err, "image-verify", short_id, NULL), ==, 0);
  short_id[7] = '\0';
  g_assert_cmpint (ctl_run (td, &out, &err, "image-rm", short_id, NULL), ==, 1);
  assert_has (err, "shoalctl: id_or_name: ");
  short_id[7] = id[7];
  g_assert_cmpint (ctl_run (td, &out, &err, "image-import", path, "--name", "ctl-os-too",
                            "--chunk-size", "4096", NULL), ==, 0);
  g_assert_cmpint (ctl_run (td, &out, &err, "image-rm", short_id, NULL), ==, 0);
  assert_has (out, "Removed");
  g_assert_cmpint (ctl_run (td, &out, &err, "image-import", path, "--name", "ctl-os",
                            "--chunk-size", "4096", NULL), ==, 0);
  g_assert_cmpint (ctl_run (td, &out, &err, "image-rm", "ctl-os", NULL), ==, 0);
  assert_has (out, "Removed ctl-os");
  g_assert_cmpint (ctl_run (td, &out, &err, "image-show", id, NULL), ==, 1);
  assert_has (err, "shoalctl: id_or_name: ");

  g_assert_cmpint (ctl_run (td, &out, &err, "image-import", "/nonexistent/disk.img", NULL), ==, 1);
  assert_has (err, "shoalctl: path: /nonexistent/disk.img does not exist");
  g_assert_cmpint (ctl_run (td, &out, &err, "image-import", NULL), ==, 1);
  assert_has (err, "Usage: shoalctl image-import");
}

/* a recipe of a minute's boot step, then unicast, with this image object */
#define UNI_RECIPE_WITH(name, image) \
  "{ \"name\": \"" name "\", \"image\": " image ", \"steps\": [" \
  " { \"step\": \"sim\", \"id\": \"boot\", \"options\": { \"min-ms\": 60000, \"max-ms\": 60000, \"phase\": \"boot\" } }," \
  " \"unicast\" ] }"
#define UNI_RECIPE(name, image) UNI_RECIPE_WITH (name, "{ \"name\": \"" image "\" }")

#define MC_RECIPE(name, image) \
  "{ \"name\": \"" name "\", \"image\": { \"name\": \"" image "\" }, \"steps\": [" \
  " { \"step\": \"sim\", \"id\": \"boot\", \"options\": { \"min-ms\": 60000, \"max-ms\": 60000, \"phase\": \"boot\" } }," \
  " \"multicast\" ] }"

/* An image that the recipe of a running deployment names is not removed
 * (it was, and the deployment failed at its transfer step minutes later)
 * unless forced; Deploy refuses a device whose recipe's image is not in
 * the store (it started it, to fail at the transfer step) */
static void
test_images_in_use_by_recipe (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *short_id = NULL;
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  g_auto(GStrv) paths = NULL;
  const gchar *mac1[] = { "52:54:00:00:00:01", NULL };
  const gchar *mac2[] = { "52:54:00:00:00:02", NULL };
  const gchar *r1[] = { "r-1", NULL };
  const gchar *r2[] = { "r-2", NULL };
  GVariantBuilder b;
  guint64 freed = 0;

  shoal_test_daemon_start (td, FALSE);
  path = write_image (td, "fleet.img");
  id = import_image (td, path, "fleet-os");
  short_id = g_strndup (id, 12);
  shoal_dbus_manager_call_add_recipe_sync (td->manager, UNI_RECIPE ("uni-slow", "fleet-os"), NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_add_recipe_sync (td->manager, UNI_RECIPE ("uni-missing", "no-such-os"), NULL, &error);
  g_assert_no_error (error);
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(sass)"));
  g_variant_builder_add (&b, "(s^ass)", "r-1", mac1, "");
  g_variant_builder_add (&b, "(s^ass)", "r-2", mac2, "");
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_builder_end (&b), &paths, NULL, &error);
  g_assert_no_error (error);

  shoal_dbus_manager_call_assign_recipe_sync (td->manager, r2, "uni-missing", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_deploy_sync (td->manager, r2, NULL, &error);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "recipe uni-missing names image “no-such-os”, which is not in the image store"));
  g_clear_error (&error);
  /* the multicast step reads the recipe's image too (its step flag) */
  shoal_dbus_manager_call_add_recipe_sync (td->manager, MC_RECIPE ("mc-missing", "no-such-os"), NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, r2, "mc-missing", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_deploy_sync (td->manager, r2, NULL, &error);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "recipe mc-missing names image “no-such-os”, which is not in the image store"));
  g_clear_error (&error);

  shoal_dbus_manager_call_assign_recipe_sync (td->manager, r1, "uni-slow", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_deploy_sync (td->manager, r1, NULL, &error);
  g_assert_no_error (error);

  g_assert_false (shoal_dbus_manager_call_remove_image_sync (td->manager, "fleet-os", &freed, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "recipe uni-slow (devices r-1)"));
  g_clear_error (&error);
  g_assert_false (shoal_dbus_manager_call_remove_image_sync (td->manager, short_id, &freed, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_BUSY);
  g_clear_error (&error);
  g_assert_false (shoal_dbus_manager_call_remove_image_with_options_sync (td->manager, "fleet-os",
                    g_variant_new_parsed ("{'frobnicate': <true>}"), &freed, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_cmpint (ctl_run (td, &out, &err, "image-rm", "fleet-os", NULL), ==, 1);
  assert_has (err, "recipe uni-slow (devices r-1)");
  assert_has (err, "--force");
  g_assert_cmpint (ctl_run (td, &out, &err, "image-rm", "--force", "fleet-os", NULL), ==, 0);
  assert_has (out, "Removed fleet-os");

  shoal_dbus_manager_call_cancel_sync (td->manager, r1, NULL, &error);
  g_assert_no_error (error);
}

#define FLAG_RECIPE(name, step, options) \
  "{ \"name\": \"" name "\", \"image\": { \"name\": \"no-such-os\" }, \"steps\": [" \
  " { \"step\": \"sim\", \"id\": \"boot\", \"options\": { \"min-ms\": 60000, \"max-ms\": 60000, \"phase\": \"boot\" } }," \
  " { \"step\": \"" step "\", \"options\": " options " } ] }"

/* Deploy checked the image of recipes whose step was named unicast or
 * multicast: a step of another name that reads the recipe's image
 * (Shoal.StepFlags.READS_IMAGE, here a Python fixture) is checked too, and
 * one without the flag, or with a file of its own, is not */
static void
test_images_check_by_flag (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) paths = NULL;
  const gchar *macs[][2] = { { "52:54:00:00:00:11", NULL }, { "52:54:00:00:00:12", NULL },
                             { "52:54:00:00:00:13", NULL } };
  const gchar *ids[] = { "f-1", "f-2", "f-3" };
  const gchar *recipes[] = { FLAG_RECIPE ("reader", "test-image-reader", "{}"),
                             FLAG_RECIPE ("plain", "test-image-plain", "{}"),
                             FLAG_RECIPE ("reader-own-file", "test-image-reader", "{ \"image-path\": \"/x.img\" }") };
  const gchar *names[] = { "reader", "plain", "reader-own-file" };
  GVariantBuilder b;

  shoal_test_daemon_start (td, TRUE);
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(sass)"));
  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      shoal_dbus_manager_call_add_recipe_sync (td->manager, recipes[i], NULL, &error);
      if (error != NULL && strstr (error->message, "test-image-") != NULL)
        {
          g_test_skip ("the Python fixture steps are not loaded");
          return;
        }
      g_assert_no_error (error);
      g_variant_builder_add (&b, "(s^ass)", ids[i], macs[i], "");
    }
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_builder_end (&b), &paths, NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      const gchar *one[] = { ids[i], NULL };

      shoal_dbus_manager_call_assign_recipe_sync (td->manager, one, names[i], NULL, &error);
      g_assert_no_error (error);
      shoal_dbus_manager_call_deploy_sync (td->manager, one, NULL, &error);
      if (i == 0)
        {
          g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
          g_assert_nonnull (strstr (error->message, "recipe reader names image “no-such-os”, which is not in the image store"));
          g_clear_error (&error);
          continue;
        }
      g_assert_no_error (error);
      shoal_dbus_manager_call_cancel_sync (td->manager, one, NULL, &error);
      g_assert_no_error (error);
    }
}

/* the stored chunk file of the image's second chunk (4096 'a's) */
static gchar *
chunk_a_path (ShoalTestDaemon *td)
{
  g_autofree guint8 *data = g_malloc (CHUNK);
  g_autofree gchar *hex = NULL;
  gchar prefix[3] = { 0 };

  memset (data, 'a', CHUNK);
  hex = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, CHUNK);
  memcpy (prefix, hex, 2);
  return g_build_filename (td->tmpdir, "state", "image-store", "chunks", prefix, hex, NULL);
}

static void
test_images_verify (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *chunk = NULL;
  g_autofree gchar *contents = NULL;
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  gsize len = 0;

  shoal_test_daemon_start (td, FALSE);
  path = write_image (td, "disk.img");
  id = import_image (td, path, "verify-os");
  g_assert_true (shoal_dbus_manager_call_verify_image_sync (td->manager, "verify-os", NULL, &error));
  g_assert_no_error (error);

  /* one flipped byte in a stored chunk: named, InvalidData */
  chunk = chunk_a_path (td);
  g_assert_true (g_file_get_contents (chunk, &contents, &len, &error));
  g_assert_cmpuint (len, ==, CHUNK);
  contents[100] ^= 1;
  g_assert_true (g_file_set_contents (chunk, contents, (gssize) len, &error));
  g_assert_false (shoal_dbus_manager_call_verify_image_sync (td->manager, id, NULL, &error));
  g_test_message ("corrupt: %s", error->message);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "Chunk 1 of image"));
  g_assert_nonnull (strstr (error->message, "corrupt"));
  g_clear_error (&error);

  /* the chunk gone: still the image's damage, not an unknown image */
  g_assert_cmpint (g_unlink (chunk), ==, 0);
  g_assert_false (shoal_dbus_manager_call_verify_image_sync (td->manager, id, NULL, &error));
  g_test_message ("missing: %s", error->message);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA);
  g_assert_nonnull (strstr (error->message, "Chunk 1 of image"));
  g_assert_nonnull (strstr (error->message, "missing"));
  g_clear_error (&error);

  g_assert_false (shoal_dbus_manager_call_verify_image_sync (td->manager, "nosuch", NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "id_or_name: "));
  g_clear_error (&error);
  g_assert_false (shoal_dbus_manager_call_verify_image_sync (td->manager, "", NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* shoalctl: the failure is an exit status of 1 and the reason */
  g_assert_cmpint (ctl_run (td, &out, &err, "image-verify", "verify-os", NULL), ==, 1);
  assert_has (err, "is missing");
  /* importing the image again restores the chunk */
  g_free (import_image (td, path, "verify-os"));
  g_assert_cmpint (ctl_run (td, &out, &err, "image-verify", "verify-os", NULL), ==, 0);
  assert_has (out, "verify-os: every chunk and the whole image match their SHA-256");
}

typedef struct
{
  gchar   *path;
  guint64  done, total;
  guint    signals;
  gchar   *id;
  GError  *error;
  gboolean finished;
} Progress;

static void
on_progress (ShoalDBusManager *manager, const gchar *path, guint64 done, guint64 total, Progress *p)
{
  g_assert_cmpuint (done, <=, total);
  g_assert_cmpuint (done, >=, p->done);
  g_free (p->path);
  p->path = g_strdup (path);
  p->done = done;
  p->total = total;
  p->signals++;
}

static void
on_imported (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Progress *p = user_data;

  shoal_dbus_manager_call_import_image_finish (SHOAL_DBUS_MANAGER (source), &p->id, result, &p->error);
  p->finished = TRUE;
}

static gboolean
run_finished_p (gpointer user_data)
{
  return ((Progress *) user_data)->finished;
}

static void
test_images_import_progress (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autofree gchar *path = NULL;
  Progress p = { 0 };
  gulong handler;
  gint64 deadline;

  shoal_test_daemon_start (td, FALSE);
  path = write_image (td, "progress.img");
  handler = g_signal_connect (td->manager, "image-import-progress", G_CALLBACK (on_progress), &p);
  shoal_dbus_manager_call_import_image (td->manager, path, "progress-os", CHUNK, NULL, on_imported, &p);
  /* the last signal (the whole file read) comes before the reply */
  deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while ((!p.finished || p.done < IMAGE_SIZE) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_signal_handler_disconnect (td->manager, handler);
  g_assert_no_error (p.error);
  g_assert_cmpuint (strlen (p.id), ==, 64);
  g_assert_cmpuint (p.signals, >=, 1);
  g_assert_cmpstr (p.path, ==, path);
  g_assert_cmpuint (p.done, ==, IMAGE_SIZE);
  g_assert_cmpuint (p.total, ==, IMAGE_SIZE);
  g_free (p.path);
  g_free (p.id);
}

/* a caller of its own on the bus: calls method of the manager with
 * parameters and does not wait for the reply; closing the connection it
 * returns is leaving the bus */
static GDBusConnection *
call_as_other_caller (ShoalTestDaemon *td, const gchar *method, GVariant *parameters)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *other = g_dbus_connection_new_for_address_sync (td->address,
                                                                   G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                                   NULL, NULL, &error);

  g_assert_no_error (error);
  g_dbus_connection_call (other, "org.shoal.Shoal1", "/org/shoal/Shoal1", "org.shoal.Shoal1.Manager", method,
                          parameters, NULL, G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, NULL, NULL);
  return other;
}

/* the daemon's log holds args[1] (args[0]: the daemon) */
static gboolean
log_has (gpointer user_data)
{
  gpointer *args = user_data;
  ShoalTestDaemon *td = args[0];
  g_autofree gchar *log = NULL;

  return g_file_get_contents (td->log_path, &log, NULL, NULL) && strstr (log, args[1]) != NULL;
}

/* a reader holds the FIFO args[0] open: *args[1] is the end to write to */
static gboolean
fifo_opened (gpointer user_data)
{
  gpointer *args = user_data;
  int fd = open (args[0], O_WRONLY | O_NONBLOCK | O_CLOEXEC);

  *(int *) args[1] = fd;
  return fd >= 0;
}

/* A verification whose caller leaves the bus (a tool closed while it
 * waits) is cancelled: the rest of the image is not read. Chunk 1 is made
 * a FIFO, in which the verification waits until the test writes the
 * chunk into it, after the caller has left. */
static void
test_images_verify_caller_left (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GDBusConnection) other = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *path = NULL, *id = NULL, *chunk = NULL, *contents = NULL, *log = NULL;
  g_autofree gchar *left = NULL, *cancelled = NULL;
  gpointer args[2];
  gsize len = 0;
  int fd = -1;

  shoal_test_daemon_start (td, FALSE);
  path = write_image (td, "disk.img");
  id = import_image (td, path, "verify-left");
  chunk = chunk_a_path (td);
  g_assert_true (g_file_get_contents (chunk, &contents, &len, &error));
  g_assert_cmpint (g_unlink (chunk), ==, 0);
  g_assert_cmpint (mkfifo (chunk, 0600), ==, 0);

  other = call_as_other_caller (td, "VerifyImage", g_variant_new ("(s)", id));
  /* the verification is in chunk 1 */
  args[0] = chunk;
  args[1] = &fd;
  g_assert_true (shoal_test_wait_for (fifo_opened, args, 10000));
  g_dbus_connection_close_sync (other, NULL, &error);
  g_assert_no_error (error);
  args[0] = td;
  args[1] = left = g_strdup_printf ("left the bus: its verification of %s is cancelled", id);
  g_assert_true (shoal_test_wait_for (log_has, args, 10000));
  g_assert_cmpint (write (fd, contents, len), ==, (gssize) len);
  close (fd);
  args[1] = cancelled = g_strdup_printf ("The verification of %s was cancelled: its caller left the bus", id);
  g_assert_true (shoal_test_wait_for (log_has, args, 10000));
  g_assert_true (g_file_get_contents (td->log_path, &log, NULL, &error));
  g_assert_null (strstr (log, "image verified for"));
}

/* ---- cancelling an import ------------------------------------------------ */

/* An HTTP "server" on loopback that takes the connection and never
 * answers: a download from it lasts until it is cancelled */
typedef struct
{
  GSocket *listener;
  GSocket *conn;      /* the daemon's connection, once accepted */
  gchar   *url;
} Silent;

static void
silent_start (Silent *srv, const gchar *file)
{
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  srv->listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (srv->listener, any, TRUE, NULL));
  g_assert_true (g_socket_listen (srv->listener, NULL));
  g_socket_set_blocking (srv->listener, FALSE);
  bound = g_socket_get_local_address (srv->listener, NULL);
  srv->url = g_strdup_printf ("http://127.0.0.1:%u/%s", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)),
                              file);
}

static gboolean
silent_accepted (gpointer user_data)
{
  Silent *srv = user_data;

  if (srv->conn == NULL)
    srv->conn = g_socket_accept (srv->listener, NULL, NULL);
  return srv->conn != NULL;
}

/* TRUE once the daemon has closed its connection (it read EOF) */
static gboolean
silent_closed (gpointer user_data)
{
  Silent *srv = user_data;
  g_autoptr(GError) error = NULL;
  gchar buf[4096];
  gssize n;

  g_socket_set_blocking (srv->conn, FALSE);
  while ((n = g_socket_receive (srv->conn, buf, sizeof buf, NULL, &error)) > 0)
    ;
  /* EOF, or a reset */
  return n == 0 || !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
}

static void
silent_stop (Silent *srv)
{
  g_clear_object (&srv->conn);
  g_clear_object (&srv->listener);
  g_clear_pointer (&srv->url, g_free);
}

static guint
cancel_import (ShoalTestDaemon *td, const gchar *path)
{
  g_autoptr(GError) error = NULL;
  guint n = G_MAXUINT;

  shoal_dbus_manager_call_cancel_import_sync (td->manager, path, &n, NULL, &error);
  g_assert_no_error (error);
  return n;
}

static gboolean
cancel_import_found_none (gpointer user_data)
{
  gpointer *args = user_data;

  return cancel_import (args[0], args[1]) == 0;
}

/* CancelImport stops a download that would never end: the call fails with
 * Cancelled, and the daemon closes its connection */
static void
test_images_cancel_import (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GVariant) images = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *expect = NULL;
  Progress p = { 0 };
  Silent srv = { 0 };

  shoal_test_daemon_start (td, FALSE);
  silent_start (&srv, "big.img");
  g_assert_cmpuint (cancel_import (td, srv.url), ==, 0);
  shoal_dbus_manager_call_import_image (td->manager, srv.url, "", 0, NULL, on_imported, &p);
  g_assert_true (shoal_test_wait_for (silent_accepted, &srv, 10000));
  g_assert_false (p.finished);
  g_assert_cmpuint (cancel_import (td, srv.url), ==, 1);
  g_assert_true (shoal_test_wait_for (run_finished_p, &p, 10000));
  g_assert_error (p.error, SHOAL_ERROR, SHOAL_ERROR_CANCELLED);
  expect = g_strdup_printf ("The import of %s was cancelled", srv.url);
  g_dbus_error_strip_remote_error (p.error);
  g_assert_cmpstr (p.error->message, ==, expect);
  g_assert_true (shoal_test_wait_for (silent_closed, &srv, 10000));
  g_assert_cmpuint (cancel_import (td, srv.url), ==, 0);
  shoal_dbus_manager_call_list_images_sync (td->manager, &images, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (images), ==, 0);
  g_clear_error (&p.error);
  silent_stop (&srv);
}

/* A caller that leaves the bus (a tool closed mid-import) takes its
 * import with it */
static void
test_images_cancel_import_caller_left (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GDBusConnection) other = NULL;
  g_autoptr(GError) error = NULL;
  Silent srv = { 0 };
  gpointer args[2];

  shoal_test_daemon_start (td, FALSE);
  silent_start (&srv, "left.img");
  other = call_as_other_caller (td, "ImportImage", g_variant_new ("(ssu)", srv.url, "", 0));
  g_assert_true (shoal_test_wait_for (silent_accepted, &srv, 10000));
  /* running, and known by its path */
  g_assert_false (silent_closed (&srv));
  g_dbus_connection_close_sync (other, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (shoal_test_wait_for (silent_closed, &srv, 10000));
  args[0] = td;
  args[1] = srv.url;
  g_assert_true (shoal_test_wait_for (cancel_import_found_none, args, 10000));
  silent_stop (&srv);
}

static gboolean
subprocess_exited (gpointer user_data)
{
  return g_subprocess_get_identifier (user_data) == NULL;
}

/* shoalctl image-import interrupted with Ctrl-C asks the daemon to cancel
 * and reports how the import ended; image-cancel with nothing running is
 * an error */
static void
test_images_cancel_shoalctl (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GSubprocess) ctl = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *address = NULL;
  g_autofree gchar *out = NULL, *err = NULL;
  g_autofree gchar *expect = NULL;
  GInputStream *stream;
  gchar buf[4096];
  gssize n;
  Silent srv = { 0 };

  shoal_test_daemon_start (td, FALSE);
  silent_start (&srv, "ctl.img");
  address = g_strconcat ("--address=", td->address, NULL);
  ctl = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error,
                          g_getenv ("SHOALCTL"), address, "image-import", srv.url, NULL);
  g_assert_no_error (error);
  g_assert_true (shoal_test_wait_for (silent_accepted, &srv, 10000));
  g_subprocess_send_signal (ctl, SIGINT);
  if (!shoal_test_wait_for (subprocess_exited, ctl, 10000))
    {
      g_subprocess_force_exit (ctl);
      g_error ("shoalctl image-import did not end on SIGINT");
    }
  g_assert_true (g_subprocess_get_if_exited (ctl));
  g_assert_cmpint (g_subprocess_get_exit_status (ctl), ==, 1);
  stream = g_subprocess_get_stderr_pipe (ctl);
  n = g_input_stream_read (stream, buf, sizeof buf - 1, NULL, &error);
  g_assert_no_error (error);
  buf[MAX (n, 0)] = '\0';
  g_test_message ("%s", buf);
  expect = g_strdup_printf ("Cancelling the import of %s", srv.url);
  assert_has (buf, expect);
  g_free (expect);
  expect = g_strdup_printf ("shoalctl: The import of %s was cancelled", srv.url);
  assert_has (buf, expect);
  g_assert_true (shoal_test_wait_for (silent_closed, &srv, 10000));

  g_assert_cmpint (ctl_run (td, &out, &err, "image-cancel", srv.url, NULL), ==, 1);
  g_free (expect);
  expect = g_strdup_printf ("shoalctl: No import of %s is running", srv.url);
  assert_has (err, expect);
  silent_stop (&srv);
}

/* ---- pruning ---------------------------------------------------------------- */

/* imports version @tail of debian-12 and dates its manifest @mtime (0:
 * leaves it); returns the id */
static gchar *
import_version (ShoalTestDaemon *td, const gchar *name, guint8 tail, time_t mtime)
{
  g_autofree gchar *basename = g_strdup_printf ("%s-%c.img", name, tail);
  g_autofree gchar *path = write_image_version (td, basename, tail);
  gchar *id = import_image (td, path, name);
  g_autofree gchar *file = g_strconcat (id, ".manifest", NULL);
  g_autofree gchar *manifest = g_build_filename (td->tmpdir, "state", "image-store", "images", file, NULL);
  struct timeval times[2] = { { mtime, 0 }, { mtime, 0 } };

  if (mtime != 0)
    g_assert_cmpint (utimes (manifest, times), ==, 0);
  return id;
}

/* the ids of the images ListImages gives, oldest first, joined by spaces */
static gchar *
list_ids (ShoalTestDaemon *td)
{
  g_autoptr(GVariant) images = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) ids = g_string_new (NULL);

  shoal_dbus_manager_call_list_images_sync (td->manager, &images, NULL, &error);
  g_assert_no_error (error);
  for (gsize i = 0; i < g_variant_n_children (images); i++)
    {
      g_autoptr(GVariant) image = g_variant_get_child_value (images, i);

      g_string_append_printf (ids, "%s%s", i > 0 ? " " : "", lookup_s (image, "id"));
    }
  return g_string_free (g_steal_pointer (&ids), FALSE);
}

static gchar *
join3 (const gchar *a, const gchar *b, const gchar *c)
{
  return c != NULL ? g_strjoin (" ", a, b, c, NULL) : g_strjoin (" ", a, b, NULL);
}

/* the reason PruneImages gives for keeping image @id, NULL if it did not */
static const gchar *
kept_reason (GVariant *kept, const gchar *id)
{
  for (gsize i = 0; i < g_variant_n_children (kept); i++)
    {
      g_autoptr(GVariant) image = g_variant_get_child_value (kept, i);

      if (g_str_equal (lookup_s (image, "id"), id))
        return lookup_s (image, "reason");
    }
  return NULL;
}

static void
assert_prune_fails (ShoalTestDaemon *td, GVariant *options, const gchar *message)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) removed = NULL;
  g_autoptr(GVariant) kept = NULL;
  guint64 freed = 0;

  g_assert_false (shoal_dbus_manager_call_prune_images_sync (td->manager, options, &removed, &kept, &freed,
                                                             NULL, &error));
  g_test_message ("PruneImages: %s", error->message);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  assert_has (error->message, message);
}

/* a format: the image id is its argument */
#define PINNED_RECIPE(name) UNI_RECIPE_WITH (name, "{ \"name\": \"debian-12\", \"id\": \"%s\" }")

/* Four imports of debian-12 kept all four and their chunks. PruneImages
 * keeps the newest of the name and what is in use: the image a recipe in
 * service pins by id, the image the recipe a running deployment started
 * with pins (the recipe in service under that name now names the newest),
 * and removes the others and the chunks only they used; a dry run says
 * so first and removes nothing; shoalctl image-prune does the same */
static void
test_images_prune (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) removed = NULL;
  g_autoptr(GVariant) kept = NULL;
  g_autofree gchar *v1 = NULL, *v2 = NULL, *v3 = NULL, *v4 = NULL;
  g_autofree gchar *pinned = NULL, *running = NULL;
  g_autofree gchar *ids = NULL, *expected = NULL;
  g_autofree gchar *out = NULL, *err = NULL, *log = NULL;
  g_autofree gchar *short_v2 = NULL;
  g_auto(GStrv) paths = NULL;
  const gchar *mac1[] = { "52:54:00:00:00:01", NULL };
  const gchar *r1[] = { "r-1", NULL };
  GVariantBuilder b;
  guint64 freed = 0;

  shoal_test_daemon_start (td, FALSE);
  v1 = import_version (td, "debian-12", '1', 1000);
  v2 = import_version (td, "debian-12", '2', 2000);
  v3 = import_version (td, "debian-12", '3', 3000);
  v4 = import_version (td, "debian-12", '4', 4000);
  short_v2 = g_strndup (v2, 12);

  /* "pinned" pins v1; r-1 deploys "uni-run" as it pinned v2, which now
   * names debian-12 (the newest) */
  pinned = g_strdup_printf (PINNED_RECIPE ("pinned"), v1);
  shoal_dbus_manager_call_add_recipe_sync (td->manager, pinned, NULL, &error);
  g_assert_no_error (error);
  running = g_strdup_printf (PINNED_RECIPE ("uni-run"), v2);
  shoal_dbus_manager_call_add_recipe_sync (td->manager, running, NULL, &error);
  g_assert_no_error (error);
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(sass)"));
  g_variant_builder_add (&b, "(s^ass)", "r-1", mac1, "");
  shoal_dbus_manager_call_enroll_devices_sync (td->manager, g_variant_builder_end (&b), &paths, NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_assign_recipe_sync (td->manager, r1, "uni-run", NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_deploy_sync (td->manager, r1, NULL, &error);
  g_assert_no_error (error);
  shoal_dbus_manager_call_add_recipe_sync (td->manager, UNI_RECIPE ("uni-run", "debian-12"), NULL, &error);
  g_assert_no_error (error);

  /* no number, and none configured; bad options */
  assert_prune_fails (td, g_variant_new_parsed ("@a{sv} {}"), "[image-store] keep-per-name keeps every image");
  assert_prune_fails (td, g_variant_new_parsed ("{'keep': <@u 0>}"), "“keep” must be 1 or more");
  assert_prune_fails (td, g_variant_new_parsed ("{'keep': <1>}"), "options: “keep” is not of type “u”");
  assert_prune_fails (td, g_variant_new_parsed ("{'keep': <@u 1>, 'all': <true>}"), "unknown option “all”");
  assert_prune_fails (td, g_variant_new_parsed ("{'keep': <@u 1>, 'name': <'bad name'>}"), "“bad name”");

  shoal_dbus_manager_call_prune_images_sync (td->manager, g_variant_new_parsed ("{'keep': <@u 1>, 'dry-run': <true>}"),
                                             &removed, &kept, &freed, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (removed), ==, 1);
  {
    g_autoptr(GVariant) image = g_variant_get_child_value (removed, 0);

    check_image (image, v3, "debian-12");
  }
  g_assert_cmpstr (kept_reason (kept, v1), ==, "recipe pinned");
  g_assert_cmpstr (kept_reason (kept, v2), ==, "recipe uni-run (devices r-1)");
  g_assert_cmpuint (g_variant_n_children (kept), ==, 2);
  g_assert_cmpuint (freed, ==, 1000);
  ids = list_ids (td);
  expected = g_strjoin (" ", v1, v2, v3, v4, NULL);
  g_assert_cmpstr (ids, ==, expected);
  g_clear_pointer (&removed, g_variant_unref);
  g_clear_pointer (&kept, g_variant_unref);

  shoal_dbus_manager_call_prune_images_sync (td->manager, g_variant_new_parsed ("{'keep': <@u 1>}"),
                                             &removed, &kept, &freed, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (removed), ==, 1);
  g_assert_cmpuint (g_variant_n_children (kept), ==, 2);
  g_assert_cmpuint (freed, ==, 1000);
  g_free (ids);
  g_free (expected);
  ids = list_ids (td);
  expected = join3 (v1, v2, v4);
  g_assert_cmpstr (ids, ==, expected);
  g_assert_true (g_file_get_contents (td->log_path, &log, NULL, &error));
  g_free (expected);
  expected = g_strdup_printf ("removed image %s (debian-12, imported 1970-01-01T00:50:00Z)", v3);
  assert_has (log, expected);

  /* shoalctl: nothing more while r-1 runs; once cancelled, v2 goes */
  g_assert_cmpint (ctl_run (td, &out, &err, "image-prune", "--keep", "1", "--dry-run", NULL), ==, 0);
  assert_has (out, "No image to remove");
  assert_has (out, "recipe uni-run (devices r-1)");
  g_assert_cmpint (ctl_run (td, &out, &err, "image-prune", NULL), ==, 1);
  assert_has (err, "keep-per-name");
  shoal_dbus_manager_call_cancel_sync (td->manager, r1, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ctl_run (td, &out, &err, "image-prune", "debian-12", "--keep", "1", "--dry-run", NULL), ==, 0);
  assert_has (out, "would remove");
  assert_has (out, "Would remove 1 image and free 1.0");
  g_assert_cmpint (ctl_run (td, &out, &err, "image-prune", "debian-12", "--keep", "1", NULL), ==, 0);
  assert_has (out, short_v2);
  assert_has (out, "Removed 1 image, freed 1.0");
  g_free (ids);
  g_free (expected);
  ids = list_ids (td);
  expected = join3 (v1, v4, NULL);
  g_assert_cmpstr (ids, ==, expected);
}

/* [image-store] keep-per-name: each import removes the older images of
 * its name beyond that many (they piled up), but for an image a recipe
 * pins and the image just imported, even when it sorts older; images of
 * another name stay */
static void
test_images_keep_per_name (void)
{
  g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autofree gchar *v1 = NULL, *v2 = NULL, *v3 = NULL, *v4 = NULL, *v5 = NULL, *other = NULL;
  g_autofree gchar *pinned = NULL;
  g_autofree gchar *ids = NULL, *expected = NULL, *log = NULL;
  time_t later = time (NULL) + 3600;

  shoal_test_daemon_set_conf (td, "image-store", "keep-per-name", "2");
  shoal_test_daemon_start (td, FALSE);
  other = import_version (td, "alma-9", 'o', 500);
  v1 = import_version (td, "debian-12", '1', 1000);
  v2 = import_version (td, "debian-12", '2', 2000);
  ids = list_ids (td);
  expected = join3 (other, v1, v2);
  g_assert_cmpstr (ids, ==, expected);

  v3 = import_version (td, "debian-12", '3', 3000);
  g_free (ids);
  g_free (expected);
  ids = list_ids (td);
  expected = join3 (other, v2, v3);
  g_assert_cmpstr (ids, ==, expected);
  g_assert_true (g_file_get_contents (td->log_path, &log, NULL, &error));
  g_free (expected);
  expected = g_strdup_printf ("([image-store] keep-per-name=2): removed image %s (debian-12", v1);
  assert_has (log, expected);

  /* v2 pinned by a recipe stays */
  pinned = g_strdup_printf (PINNED_RECIPE ("pinned"), v2);
  shoal_dbus_manager_call_add_recipe_sync (td->manager, pinned, NULL, &error);
  g_assert_no_error (error);
  v4 = import_version (td, "debian-12", '4', 4000);
  g_free (ids);
  g_free (expected);
  ids = list_ids (td);
  expected = g_strjoin (" ", other, v2, v3, v4, NULL);
  g_assert_cmpstr (ids, ==, expected);

  /* dated after it, v3 and v4 are the newest two; the import stays */
  {
    g_autofree gchar *m3 = g_strdup_printf ("%s/state/image-store/images/%s.manifest", td->tmpdir, v3);
    g_autofree gchar *m4 = g_strdup_printf ("%s/state/image-store/images/%s.manifest", td->tmpdir, v4);
    struct timeval times[2] = { { later, 0 }, { later, 0 } };

    g_assert_cmpint (utimes (m3, times), ==, 0);
    g_assert_cmpint (utimes (m4, times), ==, 0);
  }
  v5 = import_version (td, "debian-12", '5', 0);
  g_free (ids);
  ids = list_ids (td);
  g_assert_nonnull (strstr (ids, v5));
  g_assert_nonnull (strstr (ids, v2));
  g_assert_nonnull (strstr (ids, v3));
  g_assert_nonnull (strstr (ids, v4));
  g_assert_nonnull (strstr (ids, other));
}

/* An [image-store] keep-per-name that is no count stops shoald at start,
 * saying which key, as the other count keys do */
static void
test_images_keep_per_name_invalid (void)
{
  const gchar *values[] = { "-1", "many", "2147483648" };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(ShoalTestDaemon) td = shoal_test_daemon_new ();
      g_autofree gchar *err = NULL;

      shoal_test_daemon_set_conf (td, "image-store", "keep-per-name", values[i]);
      g_assert_cmpint (shoal_test_daemon_run_to_exit (td, &err, 60), !=, 0);
      g_test_message ("keep-per-name=%s: %s", values[i], g_strstrip (err));
      g_assert_nonnull (strstr (err, "[image-store] keep-per-name: not a number of 0 or more"));
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* map org.shoal.Shoal1.Error.* back to SHOAL_ERROR */
  (void) SHOAL_ERROR;

  g_test_add_func ("/shoal/dbus/images/lifecycle", test_images_lifecycle);
  g_test_add_func ("/shoal/dbus/images/default-chunk-size", test_images_default_chunk_size);
  g_test_add_func ("/shoal/dbus/images/bad-arguments", test_images_bad_arguments);
  g_test_add_func ("/shoal/dbus/images/unauthorized", test_images_unauthorized);
  g_test_add_func ("/shoal/dbus/images/shoalctl", test_images_shoalctl);
  g_test_add_func ("/shoal/dbus/images/in-use-by-recipe", test_images_in_use_by_recipe);
  g_test_add_func ("/shoal/dbus/images/check-by-flag", test_images_check_by_flag);
  g_test_add_func ("/shoal/dbus/images/prune", test_images_prune);
  g_test_add_func ("/shoal/dbus/images/keep-per-name", test_images_keep_per_name);
  g_test_add_func ("/shoal/dbus/images/verify", test_images_verify);
  g_test_add_func ("/shoal/dbus/images/verify-caller-left", test_images_verify_caller_left);
  g_test_add_func ("/shoal/dbus/images/import-progress", test_images_import_progress);
  g_test_add_func ("/shoal/dbus/images/cancel-import", test_images_cancel_import);
  g_test_add_func ("/shoal/dbus/images/cancel-import-caller-left", test_images_cancel_import_caller_left);
  g_test_add_func ("/shoal/dbus/images/cancel-shoalctl", test_images_cancel_shoalctl);
  g_test_add_func ("/shoal/dbus/images/keep-per-name-invalid", test_images_keep_per_name_invalid);
  return g_test_run ();
}
