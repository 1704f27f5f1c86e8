/* shoal-dbus-images.c: the image methods of org.shoal.Shoal1.Manager
 *
 * ImportImage, CancelImport, ListImages, InspectImage, RemoveImage and
 * VerifyImage on the manager object, and its ImageImportProgress signal,
 * answered by the daemon's ShoalImageStore (the store of libshoal, in
 * <state dir>/image-store or [image-store] path=). Every store call runs
 * in a worker thread; the method returns when it is done. Arguments are
 * checked first and an error names the argument at fault. ImportImage,
 * CancelImport, RemoveImage and VerifyImage need authorization
 * (shoal_dbus_auth_watch()), as the manager's other mutating methods do.
 *
 * Each import and each verification has its own cancellable: cancelled
 * when its caller's bus name vanishes and when the daemon stops, and an
 * import's by CancelImport.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-dbus-images.h"
#include "shoal-dbus-util.h"
#include "shoal-error.h"

struct _ShoalDBusImages
{
  GObject          parent_instance;

  ShoalImageStore *store;       /* NULL when the store could not be opened */
  GCancellable    *cancellable; /* cancelled when the daemon stops */
  GPtrArray       *imports;     /* Call *, the running imports */
};

/* A running ImportImage or VerifyImage, cancelled when its caller leaves
 * the bus. It holds what it needs past the object's disposal (the
 * daemon's cancellable and the list), not the object. */
typedef struct
{
  GDBusMethodInvocation *invocation;
  gchar                 *path;          /* the file imported, the image verified */
  GCancellable          *cancellable;   /* this call's */
  GCancellable          *daemon_cancellable;
  gulong                 daemon_handler;
  GPtrArray             *imports;       /* an import's list (NULL: a verification) */
  guint                  watch_id;      /* the caller's bus name */
  gboolean               caller_left;
} Call;

G_DEFINE_TYPE (ShoalDBusImages, shoal_dbus_images, G_TYPE_OBJECT)

static void
shoal_dbus_images_dispose (GObject *object)
{
  ShoalDBusImages *self = SHOAL_DBUS_IMAGES (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->store);
  G_OBJECT_CLASS (shoal_dbus_images_parent_class)->dispose (object);
}

static void
shoal_dbus_images_finalize (GObject *object)
{
  ShoalDBusImages *self = SHOAL_DBUS_IMAGES (object);

  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->imports, g_ptr_array_unref);
  G_OBJECT_CLASS (shoal_dbus_images_parent_class)->finalize (object);
}

static void
shoal_dbus_images_class_init (ShoalDBusImagesClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = shoal_dbus_images_dispose;
  G_OBJECT_CLASS (klass)->finalize = shoal_dbus_images_finalize;
}

static void
shoal_dbus_images_init (ShoalDBusImages *self)
{
  self->cancellable = g_cancellable_new ();
  self->imports = g_ptr_array_new ();
}

/* ---- checking arguments ------------------------------------------------- */

static gboolean
check_store (ShoalDBusImages *self, GDBusMethodInvocation *invocation)
{
  if (self->store != NULL)
    return TRUE;
  g_dbus_method_invocation_return_error_literal (invocation, SHOAL_ERROR, SHOAL_ERROR_NOT_SUPPORTED,
                                                 _("The image store is not available (see the daemon's log)"));
  return FALSE;
}

static gboolean
check_id_or_name (const gchar *id_or_name, GDBusMethodInvocation *invocation)
{
  if (id_or_name[0] != '\0')
    return TRUE;
  g_dbus_method_invocation_return_error_literal (invocation, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                                                 _("id_or_name: empty image id or name"));
  return FALSE;
}

static gboolean
check_import_path (const gchar *path, GError **error)
{
  if (shoal_image_files_is_uri (path))
    return TRUE;
  if (!g_path_is_absolute (path))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("path: “%s” is neither an absolute path nor an http or https URL"), path);
      return FALSE;
    }
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                   _("path: %s does not exist"), path);
      return FALSE;
    }
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("path: %s is a folder, not an image"), path);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_import_args (const gchar  *path,
                   const gchar  *name,
                   guint32       chunk_size,
                   GError      **error)
{
  if (!check_import_path (path, error))
    return FALSE;
  if (name[0] != '\0' && !shoal_manifest_is_valid_name (name))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("name: “%s” is not a valid image name (1 to %d characters from "
                     "A-Z a-z 0-9 . _ + : @ -, not starting with . or -)"),
                   name, SHOAL_MANIFEST_NAME_MAX);
      return FALSE;
    }
  if (chunk_size != 0 && !shoal_manifest_chunk_size_is_valid (chunk_size))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("chunk_size: %u is neither 0 nor a power of two between %u and %u"),
                   chunk_size, (guint) SHOAL_MANIFEST_MIN_CHUNK_SIZE,
                   (guint) SHOAL_MANIFEST_MAX_CHUNK_SIZE);
      return FALSE;
    }
  return TRUE;
}

/* an unknown image or a bad id is the caller's argument */
static void
return_lookup_error (GDBusMethodInvocation *invocation, GError *error)
{
  if (error->domain == SHOAL_ERROR &&
      (error->code == SHOAL_ERROR_NOT_FOUND || error->code == SHOAL_ERROR_INVALID_ARGUMENT))
    g_prefix_error (&error, "id_or_name: ");
  shoal_dbus_return_error (invocation, error);
}

/* ---- calls bound to their caller ------------------------------------------ */

static void
call_cancel_cb (GCancellable *daemon_cancellable, gpointer user_data)
{
  g_cancellable_cancel (user_data);
}

static void
call_caller_vanished (GDBusConnection *connection, const gchar *name, gpointer user_data)
{
  Call *call = user_data;

  if (g_cancellable_is_cancelled (call->cancellable))
    return;
  g_info ("%s left the bus: its %s of %s is cancelled", name,
          call->imports != NULL ? "import" : "verification", call->path);
  call->caller_left = TRUE;
  g_cancellable_cancel (call->cancellable);
}

/* imports: where an import is listed for CancelImport (NULL: not) */
static Call *
call_new (ShoalDBusImages *self, GDBusMethodInvocation *invocation, const gchar *path, GPtrArray *imports)
{
  Call *call = g_new0 (Call, 1);
  const gchar *sender = g_dbus_method_invocation_get_sender (invocation);

  call->invocation = g_object_ref (invocation);
  call->path = g_strdup (path);
  call->cancellable = g_cancellable_new ();
  call->daemon_cancellable = g_object_ref (self->cancellable);
  call->daemon_handler = g_cancellable_connect (self->cancellable, G_CALLBACK (call_cancel_cb),
                                                call->cancellable, NULL);
  if (imports != NULL)
    {
      call->imports = g_ptr_array_ref (imports);
      g_ptr_array_add (call->imports, call);
    }
  /* on a bus (not a peer-to-peer connection), the caller's unique name */
  if (sender != NULL)
    call->watch_id = g_bus_watch_name_on_connection (g_dbus_method_invocation_get_connection (invocation), sender,
                                                     G_BUS_NAME_WATCHER_FLAGS_NONE, NULL,
                                                     call_caller_vanished, call, NULL);
  return call;
}

static void
call_free (Call *call)
{
  if (call->imports != NULL)
    {
      g_ptr_array_remove (call->imports, call);
      g_ptr_array_unref (call->imports);
    }
  if (call->watch_id != 0)
    g_bus_unwatch_name (call->watch_id);
  g_cancellable_disconnect (call->daemon_cancellable, call->daemon_handler);
  g_object_unref (call->daemon_cancellable);
  g_object_unref (call->cancellable);
  g_object_unref (call->invocation);
  g_free (call->path);
  g_free (call);
}

/* ---- ImportImage ---------------------------------------------------------- */

static void
import_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *imp = user_data;
  g_autoptr(GError) error = NULL;
  ShoalImportStats stats = { 0 };
  g_autofree gchar *id = NULL;

  id = shoal_image_store_import_finish (SHOAL_IMAGE_STORE (source), result, &stats, &error);
  if (id == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_clear_error (&error);
      g_set_error (&error, SHOAL_ERROR, SHOAL_ERROR_CANCELLED,
                   imp->caller_left ? _("The import of %s was cancelled: its caller left the bus")
                                    : _("The import of %s was cancelled"), imp->path);
    }
  if (id == NULL)
    {
      g_info ("import of %s failed: %s", imp->path, error->message);
      shoal_dbus_return_error (imp->invocation, error);
    }
  else
    {
      g_info ("image %s imported for %s: %" G_GUINT64_FORMAT " chunks, %" G_GUINT64_FORMAT
              " zero, %" G_GUINT64_FORMAT " written, %" G_GUINT64_FORMAT " already stored",
              id, g_dbus_method_invocation_get_sender (imp->invocation), stats.n_chunks,
              stats.n_zero, stats.n_written, stats.n_deduplicated);
      g_dbus_method_invocation_return_value (imp->invocation, g_variant_new ("(s)", id));
    }
  call_free (imp);
}

static gboolean
handle_import_image (ShoalDBusManager      *skeleton,
                     GDBusMethodInvocation *invocation,
                     const gchar           *path,
                     const gchar           *name,
                     guint32                chunk_size,
                     gpointer               user_data)
{
  ShoalDBusImages *self = SHOAL_DBUS_IMAGES (user_data);
  g_autoptr(GError) error = NULL;
  Call *imp;

  if (!check_store (self, invocation))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  if (!check_import_args (path, name, chunk_size, &error))
    {
      shoal_dbus_return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  imp = call_new (self, invocation, path, self->imports);
  shoal_image_store_import_async (self->store, path, name[0] != '\0' ? name : NULL, chunk_size,
                                  imp->cancellable, import_done, imp);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- CancelImport --------------------------------------------------------- */

static gboolean
handle_cancel_import (ShoalDBusManager      *skeleton,
                      GDBusMethodInvocation *invocation,
                      const gchar           *path,
                      gpointer               user_data)
{
  ShoalDBusImages *self = SHOAL_DBUS_IMAGES (user_data);
  g_autoptr(GPtrArray) matches = g_ptr_array_new ();

  /* collected first: a cancellation runs handlers at once */
  for (guint i = 0; i < self->imports->len; i++)
    {
      Call *imp = g_ptr_array_index (self->imports, i);

      if (g_str_equal (imp->path, path) && !g_cancellable_is_cancelled (imp->cancellable))
        g_ptr_array_add (matches, g_object_ref (imp->cancellable));
    }
  for (guint i = 0; i < matches->len; i++)
    {
      g_cancellable_cancel (g_ptr_array_index (matches, i));
      g_object_unref (g_ptr_array_index (matches, i));
    }
  g_info ("%s cancelled %u import(s) of %s", g_dbus_method_invocation_get_sender (invocation),
          matches->len, path);
  shoal_dbus_manager_complete_cancel_import (skeleton, invocation, matches->len);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- ListImages ----------------------------------------------------------- */

static void
list_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GDBusMethodInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) images = NULL;
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));

  images = shoal_image_store_list_finish (SHOAL_IMAGE_STORE (source), result, &error);
  if (images == NULL)
    {
      shoal_dbus_return_error (invocation, error);
      return;
    }
  for (guint i = 0; i < images->len; i++)
    g_variant_builder_add_value (&builder, shoal_image_info_to_variant (g_ptr_array_index (images, i)));
  g_dbus_method_invocation_return_value (invocation,
                                         g_variant_new ("(aa{sv})", &builder));
}

static gboolean
handle_list_images (ShoalDBusManager      *skeleton,
                    GDBusMethodInvocation *invocation,
                    gpointer               user_data)
{
  ShoalDBusImages *self = SHOAL_DBUS_IMAGES (user_data);

  if (check_store (self, invocation))
    shoal_image_store_list_async (self->store, self->cancellable, list_done,
                                  g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- InspectImage --------------------------------------------------------- */

static void
inspect_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GDBusMethodInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImageInfo) info = NULL;

  info = shoal_image_store_inspect_finish (SHOAL_IMAGE_STORE (source), result, &error);
  if (info == NULL)
    {
      return_lookup_error (invocation, g_steal_pointer (&error));
      return;
    }
  g_dbus_method_invocation_return_value (invocation,
                                         g_variant_new ("(@a{sv})", shoal_image_info_to_variant (info)));
}

static gboolean
handle_inspect_image (ShoalDBusManager      *skeleton,
                      GDBusMethodInvocation *invocation,
                      const gchar           *id_or_name,
                      gpointer               user_data)
{
  ShoalDBusImages *self = SHOAL_DBUS_IMAGES (user_data);

  if (check_store (self, invocation) && check_id_or_name (id_or_name, invocation))
    shoal_image_store_inspect_async (self->store, id_or_name, self->cancellable, inspect_done,
                                     g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- RemoveImage ---------------------------------------------------------- */

static void
remove_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GDBusMethodInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;
  guint64 freed = 0;

  if (!shoal_image_store_remove_finish (SHOAL_IMAGE_STORE (source), result, &freed, &error))
    {
      return_lookup_error (invocation, g_steal_pointer (&error));
      return;
    }
  g_info ("image removed for %s, %" G_GUINT64_FORMAT " bytes freed",
          g_dbus_method_invocation_get_sender (invocation), freed);
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(t)", freed));
}

static gboolean
handle_remove_image (ShoalDBusManager      *skeleton,
                     GDBusMethodInvocation *invocation,
                     const gchar           *id_or_name,
                     gpointer               user_data)
{
  ShoalDBusImages *self = SHOAL_DBUS_IMAGES (user_data);

  if (check_store (self, invocation) && check_id_or_name (id_or_name, invocation))
    shoal_image_store_remove_async (self->store, id_or_name, self->cancellable, remove_done,
                                    g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- VerifyImage ---------------------------------------------------------- */

static void
verify_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;
  const gchar *sender = g_dbus_method_invocation_get_sender (call->invocation);
  g_autoptr(GError) error = NULL;

  if (!shoal_image_store_verify_finish (SHOAL_IMAGE_STORE (source), result, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_clear_error (&error);
          g_set_error (&error, SHOAL_ERROR, SHOAL_ERROR_CANCELLED,
                       call->caller_left ? _("The verification of %s was cancelled: its caller left the bus")
                                         : _("The verification of %s was cancelled"), call->path);
          g_info ("%s", error->message);
        }
      else
        {
          g_warning ("image verification for %s: %s", sender, error->message);
        }
      return_lookup_error (call->invocation, g_steal_pointer (&error));
    }
  else
    {
      g_info ("image verified for %s", sender);
      g_dbus_method_invocation_return_value (call->invocation, NULL);
    }
  call_free (call);
}

static gboolean
handle_verify_image (ShoalDBusManager      *skeleton,
                     GDBusMethodInvocation *invocation,
                     const gchar           *id_or_name,
                     gpointer               user_data)
{
  ShoalDBusImages *self = SHOAL_DBUS_IMAGES (user_data);
  Call *call;

  if (!check_store (self, invocation) || !check_id_or_name (id_or_name, invocation))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  /* it reads the whole image: nobody waits for it once its caller left */
  call = call_new (self, invocation, id_or_name, NULL);
  shoal_image_store_verify_async (self->store, id_or_name, call->cancellable, verify_done, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- ImageImportProgress ---------------------------------------------------- */

static void
on_import_progress (ShoalImageStore  *store,
                    const gchar      *path,
                    guint64           done,
                    guint64           total,
                    ShoalDBusManager *skeleton)
{
  shoal_dbus_manager_emit_image_import_progress (skeleton, path, done, total);
}

/* ---- the object ----------------------------------------------------------- */

/**
 * shoal_dbus_images_new:
 * @store: (nullable): the image store, or %NULL when it could not be opened
 *   (the methods then fail with NotSupported)
 *
 * Returns: (transfer full): a new #ShoalDBusImages
 */
ShoalDBusImages *
shoal_dbus_images_new (ShoalImageStore *store)
{
  ShoalDBusImages *self;

  g_return_val_if_fail (store == NULL || SHOAL_IS_IMAGE_STORE (store), NULL);
  self = g_object_new (SHOAL_TYPE_DBUS_IMAGES, NULL);
  self->store = store != NULL ? g_object_ref (store) : NULL;
  return self;
}

/**
 * shoal_dbus_images_attach:
 * @self: a #ShoalDBusImages
 * @skeleton: the manager skeleton
 *
 * Answers the image methods of @skeleton for as long as @self lives.
 */
void
shoal_dbus_images_attach (ShoalDBusImages  *self,
                          ShoalDBusManager *skeleton)
{
  g_return_if_fail (SHOAL_IS_DBUS_IMAGES (self));

  g_signal_connect_object (skeleton, "handle-import-image", G_CALLBACK (handle_import_image), self, 0);
  g_signal_connect_object (skeleton, "handle-cancel-import", G_CALLBACK (handle_cancel_import), self, 0);
  g_signal_connect_object (skeleton, "handle-list-images", G_CALLBACK (handle_list_images), self, 0);
  g_signal_connect_object (skeleton, "handle-inspect-image", G_CALLBACK (handle_inspect_image), self, 0);
  g_signal_connect_object (skeleton, "handle-remove-image", G_CALLBACK (handle_remove_image), self, 0);
  g_signal_connect_object (skeleton, "handle-verify-image", G_CALLBACK (handle_verify_image), self, 0);
  if (self->store != NULL)
    g_signal_connect_object (self->store, "import-progress", G_CALLBACK (on_import_progress), skeleton, 0);
}
