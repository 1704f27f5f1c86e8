/* shoal-dbus-images.c: the image methods of org.shoal.Shoal1.Manager
 *
 * ImportImage, CancelImport, ListImages, InspectImage, RemoveImage,
 * RemoveImageWithOptions, PruneImages and VerifyImage on the manager
 * object, and its ImageImportProgress signal,
 * answered by the daemon's ShoalImageStore (the store of libshoal, in
 * <state dir>/image-store or [image-store] path=). Every store call runs
 * in a worker thread; the method returns when it is done. Arguments are
 * checked first and an error names the argument at fault. ImportImage,
 * CancelImport, RemoveImage, PruneImages and VerifyImage need authorization
 * (shoal_dbus_auth_watch()), as the manager's other mutating methods do.
 *
 * Each import and each verification has its own cancellable: cancelled
 * when its caller's bus name vanishes and when the daemon stops, and an
 * import's by CancelImport.
 *
 * RemoveImage spares the image that the recipe of a running deployment
 * names (BUSY naming recipe and devices) unless forced; Deploy asks
 * shoal_dbus_images_check_recipe() whether a device's image is there.
 *
 * PruneImages removes the older images of each name, and so does an
 * import with [image-store] keep-per-name set, for the imported image's
 * name; both keep whatever a recipe in service or a running deployment
 * names (shoal-dbus-image-users.c) and log each image they remove.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-controller.h"
#include "shoal-dbus-image-users.h"
#include "shoal-dbus-images.h"
#include "shoal-dbus-util.h"
#include "shoal-error.h"

struct _ShoalDBusImages
{
  GObject          parent_instance;

  ShoalImageStore *store;       /* NULL when the store could not be opened */
  ShoalController *controller;  /* whose recipes and deployments removals spare */
  guint            keep;        /* [image-store] keep-per-name; 0: every image */
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
  gchar                 *shown;         /* path in messages: a URL without its password */
  GCancellable          *cancellable;   /* this call's */
  GCancellable          *daemon_cancellable;
  gulong                 daemon_handler;
  GPtrArray             *imports;       /* an import's list (NULL: a verification) */
  guint                  watch_id;      /* the caller's bus name */
  gboolean               caller_left;
  ShoalController       *controller;    /* an import's, for the retention after it */
  guint                  keep;          /* an import's retention: images kept per name */
  gchar                 *id;            /* the image imported */
} Call;

G_DEFINE_TYPE (ShoalDBusImages, shoal_dbus_images, G_TYPE_OBJECT)

static void
shoal_dbus_images_dispose (GObject *object)
{
  ShoalDBusImages *self = SHOAL_DBUS_IMAGES (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->store);
  g_clear_object (&self->controller);
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
          call->imports != NULL ? "import" : "verification", call->shown);
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
  call->shown = shoal_image_store_display_source (path);
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
  g_clear_object (&call->controller);
  g_free (call->path);
  g_free (call->shown);
  g_free (call->id);
  g_free (call);
}

/* ---- pruning: PruneImages, and the retention after an import ------------- */

/* Logs what a pruning removed (g_message: the operator's record of what
 * went, whoever asked), or a dry run would remove, and what it kept */
static void
log_prune (ShoalImagePrune *prune,
           const gchar     *why,
           gboolean         dry_run)
{
  for (guint i = 0; i < prune->removed->len; i++)
    {
      ShoalImageInfo *info = g_ptr_array_index (prune->removed, i);
      g_autoptr(GDateTime) imported = g_date_time_new_from_unix_utc (info->imported);
      g_autofree gchar *when = imported != NULL ? g_date_time_format_iso8601 (imported) : g_strdup ("?");

      if (dry_run)
        g_info ("%s, dry run: would remove image %s (%s, imported %s)", why, info->id, info->name, when);
      else
        g_message ("%s: removed image %s (%s, imported %s)", why, info->id, info->name, when);
    }
  for (guint i = 0; i < prune->kept->len; i++)
    g_info ("%s: kept image %s (%s), older than the images kept of its name: %s", why,
            ((ShoalImageInfo *) g_ptr_array_index (prune->kept, i))->id,
            ((ShoalImageInfo *) g_ptr_array_index (prune->kept, i))->name,
            (const gchar *) g_ptr_array_index (prune->reasons, i));
  if (prune->removed->len > 0 && !dry_run)
    g_message ("%s: %u image(s) removed, %" G_GUINT64_FORMAT " bytes of chunks freed", why,
               prune->removed->len, prune->freed_bytes);
}

/* Prunes the images of @name (NULL: every name) down to @keep, sparing
 * what @controller's recipes and running deployments name and @spare */
static void
start_prune (ShoalImageStore     *store,
             ShoalController     *controller,
             const gchar         *name,
             guint                keep,
             const gchar         *spare,
             gboolean             dry_run,
             GAsyncReadyCallback  callback,
             gpointer             user_data)
{
  g_autoptr(GPtrArray) users = shoal_dbus_image_users_collect (controller, TRUE);
  g_autoptr(GHashTable) in_use = shoal_dbus_image_users_in_use (users);

  if (spare != NULL)
    g_hash_table_insert (in_use, g_strdup (spare), g_strdup (_("imported just now")));
  shoal_image_store_prune_async (store, name, keep, in_use, dry_run, NULL, callback, user_data);
}

static void
import_return (Call *imp)
{
  g_dbus_method_invocation_return_value (imp->invocation, g_variant_new ("(s)", imp->id));
  call_free (imp);
}

/* logs what the retention after an import did, or why it failed (the
 * import itself succeeded), and answers the import */
static void
retention_end (Call *imp, ShoalImagePrune *prune, const GError *error)
{
  g_autofree gchar *why = g_strdup_printf ("retention after the import of %s ([image-store] keep-per-name=%u)",
                                           imp->shown, imp->keep);

  if (prune == NULL)
    g_warning ("%s: %s", why, error->message);
  else
    log_prune (prune, why, FALSE);
  import_return (imp);
}

static void
retention_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImagePrune) prune = shoal_image_store_prune_finish (SHOAL_IMAGE_STORE (source), result, &error);

  retention_end (user_data, prune, error);
}

static void
retention_inspected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *imp = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImageInfo) info = shoal_image_store_inspect_finish (SHOAL_IMAGE_STORE (source), result, &error);

  if (info == NULL)
    {
      retention_end (imp, NULL, error);
      return;
    }
  /* the image imported stays even when an image of its name imported
   * in the same second sorts after it */
  start_prune (SHOAL_IMAGE_STORE (source), imp->controller, info->name, imp->keep, imp->id, FALSE,
               retention_done, imp);
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
                                    : _("The import of %s was cancelled"), imp->shown);
    }
  if (id == NULL)
    {
      g_info ("import of %s failed: %s", imp->shown, error->message);
      shoal_dbus_return_error (imp->invocation, error);
      call_free (imp);
      return;
    }
  g_info ("image %s imported for %s: %" G_GUINT64_FORMAT " chunks, %" G_GUINT64_FORMAT
          " zero, %" G_GUINT64_FORMAT " written, %" G_GUINT64_FORMAT " already stored",
          id, g_dbus_method_invocation_get_sender (imp->invocation), stats.n_chunks,
          stats.n_zero, stats.n_written, stats.n_deduplicated);
  imp->id = g_steal_pointer (&id);
  if (imp->keep > 0 && !g_cancellable_is_cancelled (imp->daemon_cancellable))
    {
      /* the retention, then the answer: a listing after it sees what stays */
      shoal_image_store_inspect_async (SHOAL_IMAGE_STORE (source), imp->id, NULL, retention_inspected, imp);
      return;
    }
  import_return (imp);
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
  imp->controller = self->controller != NULL ? g_object_ref (self->controller) : NULL;
  imp->keep = self->keep;
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
  g_autofree gchar *shown = NULL;

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
  shown = shoal_image_store_display_source (path);
  g_info ("%s cancelled %u import(s) of %s", g_dbus_method_invocation_get_sender (invocation),
          matches->len, shown);
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

/* ---- recipes and their images --------------------------------------------- */

/* whether the step @name reads its recipe's image
 * (SHOAL_STEP_FLAGS_READS_IMAGE) */
static gboolean
step_reads_image (ShoalPluginEngine *engine,
                  const gchar       *name)
{
  ShoalStep *step = engine != NULL ? shoal_plugin_engine_lookup_step (engine, name, NULL) : NULL;

  return step != NULL && (shoal_step_get_flags (step) & SHOAL_STEP_FLAGS_READS_IMAGE) != 0;
}

/* whether a step of @recipe reads the recipe's image from the daemon's
 * store: one that reads its recipe's image, without a store or file of
 * its own */
static gboolean
recipe_reads_store (ShoalDBusImages *self,
                    ShoalRecipe     *recipe)
{
  ShoalPluginEngine *engine = self->controller != NULL ? shoal_controller_get_engine (self->controller) : NULL;

  for (guint i = 0; i < shoal_recipe_get_n_steps (recipe); i++)
    {
      JsonObject *options = shoal_recipe_get_step_options (recipe, i);

      if (step_reads_image (engine, shoal_recipe_get_step_name (recipe, i)) &&
          (options == NULL || (!json_object_has_member (options, "store") &&
                               !json_object_has_member (options, "image-path"))))
        return TRUE;
    }
  return FALSE;
}

/**
 * shoal_dbus_images_check_recipe:
 * @self: a #ShoalDBusImages
 * @recipe: the recipe of a device about to be deployed
 * @error: return location for a #GError
 *
 * Checks that the image @recipe names is in the daemon's store when a
 * step of it reads it from there (a step with
 * %SHOAL_STEP_FLAGS_READS_IMAGE, such as unicast, without "store" or
 * "image-path"), so that Deploy fails at once rather than at the
 * transfer step. A recipe whose image is a "file" (without "id") is
 * imported by its step and passes. Blocks on the store (a directory
 * listing and the manifests when the recipe names the image by name).
 *
 * Returns: %FALSE with NotFound (or the store's error) when it does not
 *   resolve
 */
gboolean
shoal_dbus_images_check_recipe (ShoalDBusImages  *self,
                                ShoalRecipe      *recipe,
                                GError          **error)
{
  JsonObject *image = shoal_recipe_get_image (recipe);
  const gchar *ref = shoal_dbus_recipe_image_ref (recipe);
  g_autoptr(ShoalImageInfo) info = NULL;
  g_autoptr(GError) local = NULL;

  g_return_val_if_fail (SHOAL_IS_DBUS_IMAGES (self), FALSE);
  if (self->store == NULL || ref == NULL || !recipe_reads_store (self, recipe) ||
      (json_object_has_member (image, "file") && !json_object_has_member (image, "id")))
    return TRUE;
  info = shoal_image_files_inspect (shoal_image_store_get_root (self->store), ref, &local);
  if (info != NULL)
    return TRUE;
  if (g_error_matches (local, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND))
    g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                 _("recipe %s names image “%s”, which is not in the image store (import it first)"),
                 shoal_recipe_get_name (recipe), ref);
  else
    g_propagate_prefixed_error (error, g_steal_pointer (&local), _("recipe %s, image “%s”: "),
                                shoal_recipe_get_name (recipe), ref);
  return FALSE;
}

/* ---- RemoveImage ---------------------------------------------------------- */

typedef struct
{
  gchar     *id_or_name;
  gboolean   force;
  GPtrArray *users;    /* ShoalDBusImageUser * */
} RemoveCheck;

static void
remove_check_free (RemoveCheck *check)
{
  g_free (check->id_or_name);
  g_ptr_array_unref (check->users);
  g_free (check);
}

/* resolves the image, then (unless forced) fails with BUSY when the
 * recipe of a running deployment names it; returns its id */
static void
remove_check_thread (GTask        *task,
                     gpointer      source_object,
                     gpointer      task_data,
                     GCancellable *cancellable)
{
  ShoalImageStore *store = source_object;
  RemoveCheck *check = task_data;
  const gchar *root = shoal_image_store_get_root (store);
  GError *error = NULL;
  g_autofree gchar *id = shoal_image_files_resolve (root, check->id_or_name, &error);
  g_autoptr(GString) users = g_string_new (NULL);

  if (id == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  for (guint i = 0; !check->force && i < check->users->len; i++)
    {
      ShoalDBusImageUser *user = g_ptr_array_index (check->users, i);
      g_autofree gchar *used = shoal_image_files_resolve (root, user->ref, NULL);
      g_autofree gchar *described = NULL;

      if (g_strcmp0 (used, id) != 0)
        continue;
      described = shoal_dbus_image_user_describe (user);
      g_string_append_printf (users, "%s%s", users->len > 0 ? "; " : "", described);
    }
  if (users->len > 0)
    {
      g_task_return_new_error (task, SHOAL_ERROR, SHOAL_ERROR_BUSY,
                               _("Image “%s” (%.12s) is the image of deployments that are running: %s; "
                                 "cancel them, or remove it anyway with force (shoalctl image-rm --force)"),
                               check->id_or_name, id, users->str);
      return;
    }
  g_task_return_pointer (task, g_steal_pointer (&id), g_free);
}

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

static void
remove_checked (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GDBusMethodInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *id = g_task_propagate_pointer (G_TASK (result), &error);
  RemoveCheck *check = g_task_get_task_data (G_TASK (result));

  if (id == NULL)
    {
      return_lookup_error (invocation, g_steal_pointer (&error));
      return;
    }
  if (check->force)
    g_info ("%s removes image %s with force", g_dbus_method_invocation_get_sender (invocation), id);
  /* by the id checked, whatever the name means by now */
  shoal_image_store_remove_async (SHOAL_IMAGE_STORE (source), id, NULL, remove_done,
                                  g_steal_pointer (&invocation));
}

static void
remove_image (ShoalDBusImages       *self,
              GDBusMethodInvocation *invocation,
              const gchar           *id_or_name,
              gboolean               force)
{
  g_autoptr(GTask) task = NULL;
  RemoveCheck *check;

  if (!check_store (self, invocation) || !check_id_or_name (id_or_name, invocation))
    return;
  check = g_new0 (RemoveCheck, 1);
  check->id_or_name = g_strdup (id_or_name);
  check->force = force;
  check->users = shoal_dbus_image_users_collect (self->controller, FALSE);
  task = g_task_new (self->store, self->cancellable, remove_checked, g_object_ref (invocation));
  g_task_set_source_tag (task, remove_image);
  g_task_set_task_data (task, check, (GDestroyNotify) remove_check_free);
  g_task_run_in_thread (task, remove_check_thread);
}

static gboolean
handle_remove_image (ShoalDBusManager      *skeleton,
                     GDBusMethodInvocation *invocation,
                     const gchar           *id_or_name,
                     gpointer               user_data)
{
  remove_image (SHOAL_DBUS_IMAGES (user_data), invocation, id_or_name, FALSE);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* the options a method takes, and their types */
typedef struct
{
  const gchar *key;
  const gchar *type;
} OptionSpec;

/* Answers InvalidArgument, naming it, when @options has an option
 * @specs does not list or of another type */
static gboolean
check_options (GVariant              *options,
               const OptionSpec      *specs,
               gsize                  n_specs,
               GDBusMethodInvocation *invocation)
{
  GVariantIter iter;
  const gchar *key;
  GVariant *next;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &next))
    {
      g_autoptr(GVariant) value = next;
      const OptionSpec *spec = NULL;

      for (gsize i = 0; i < n_specs && spec == NULL; i++)
        if (g_str_equal (specs[i].key, key))
          spec = &specs[i];
      if (spec == NULL)
        g_dbus_method_invocation_return_error (invocation, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                                               _("options: unknown option “%s”"), key);
      else if (!g_variant_is_of_type (value, G_VARIANT_TYPE (spec->type)))
        g_dbus_method_invocation_return_error (invocation, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                                               _("options: “%s” is not of type “%s”"), key, spec->type);
      else
        continue;
      return FALSE;
    }
  return TRUE;
}

static gboolean
handle_remove_image_with_options (ShoalDBusManager      *skeleton,
                                  GDBusMethodInvocation *invocation,
                                  const gchar           *id_or_name,
                                  GVariant              *options,
                                  gpointer               user_data)
{
  static const OptionSpec specs[] = { { "force", "b" } };
  gboolean force = FALSE;

  if (!check_options (options, specs, G_N_ELEMENTS (specs), invocation))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  g_variant_lookup (options, "force", "b", &force);
  remove_image (SHOAL_DBUS_IMAGES (user_data), invocation, id_or_name, force);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- PruneImages ---------------------------------------------------------- */

typedef struct
{
  GDBusMethodInvocation *invocation;
  gboolean               dry_run;
} PruneCall;

static GVariant *
kept_to_variant (ShoalImagePrune *prune)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));

  for (guint i = 0; i < prune->kept->len; i++)
    {
      g_autoptr(GVariantDict) dict = g_variant_dict_new (shoal_image_info_to_variant (g_ptr_array_index (prune->kept, i)));

      g_variant_dict_insert (dict, "reason", "s", (const gchar *) g_ptr_array_index (prune->reasons, i));
      g_variant_builder_add_value (&builder, g_variant_dict_end (dict));
    }
  return g_variant_builder_end (&builder);
}

static void
prune_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  PruneCall *call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImagePrune) prune = shoal_image_store_prune_finish (SHOAL_IMAGE_STORE (source), result, &error);
  g_auto(GVariantBuilder) removed = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));
  g_autofree gchar *why = g_strdup_printf ("PruneImages for %s",
                                           g_dbus_method_invocation_get_sender (call->invocation));

  if (prune == NULL)
    shoal_dbus_return_error (call->invocation, error);
  else
    {
      log_prune (prune, why, call->dry_run);
      for (guint i = 0; i < prune->removed->len; i++)
        g_variant_builder_add_value (&removed, shoal_image_info_to_variant (g_ptr_array_index (prune->removed, i)));
      g_dbus_method_invocation_return_value (call->invocation,
                                             g_variant_new ("(aa{sv}@aa{sv}t)", &removed,
                                                            kept_to_variant (prune), prune->freed_bytes));
    }
  g_object_unref (call->invocation);
  g_free (call);
}

static gboolean
handle_prune_images (ShoalDBusManager      *skeleton,
                     GDBusMethodInvocation *invocation,
                     GVariant              *options,
                     gpointer               user_data)
{
  static const OptionSpec specs[] = { { "keep", "u" }, { "name", "s" }, { "dry-run", "b" } };
  ShoalDBusImages *self = SHOAL_DBUS_IMAGES (user_data);
  guint keep = self->keep;
  const gchar *name = NULL;
  PruneCall *call;

  if (!check_store (self, invocation) || !check_options (options, specs, G_N_ELEMENTS (specs), invocation))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  if (g_variant_lookup (options, "keep", "u", &keep) && keep == 0)
    {
      g_dbus_method_invocation_return_error_literal (invocation, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                                                     _("options: “keep” must be 1 or more: the newest image "
                                                       "of each name stays"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (keep == 0)
    {
      g_dbus_method_invocation_return_error_literal (invocation, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                                                     _("options: no “keep” given, and [image-store] keep-per-name "
                                                       "keeps every image: say how many images of each name "
                                                       "to keep"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_variant_lookup (options, "name", "&s", &name);
  if (name != NULL && !shoal_manifest_is_valid_name (name))
    {
      g_dbus_method_invocation_return_error (invocation, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                                             _("options: “name”: “%s” is not a valid image name"), name);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  call = g_new0 (PruneCall, 1);
  call->invocation = g_object_ref (invocation);
  g_variant_lookup (options, "dry-run", "b", &call->dry_run);
  start_prune (self->store, self->controller, name, keep, NULL, call->dry_run, prune_done, call);
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
                                         : _("The verification of %s was cancelled"), call->shown);
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
 * @controller: (nullable): the controller whose running deployments
 *   RemoveImage spares, and whose recipes and running deployments
 *   PruneImages spares (none when %NULL)
 * @keep: images of a name an import keeps ([image-store] keep-per-name),
 *   and PruneImages when not told; 0 keeps every image
 *
 * Returns: (transfer full): a new #ShoalDBusImages
 */
ShoalDBusImages *
shoal_dbus_images_new (ShoalImageStore *store,
                       ShoalController *controller,
                       guint            keep)
{
  ShoalDBusImages *self;

  g_return_val_if_fail (store == NULL || SHOAL_IS_IMAGE_STORE (store), NULL);
  g_return_val_if_fail (controller == NULL || SHOAL_IS_CONTROLLER (controller), NULL);
  self = g_object_new (SHOAL_TYPE_DBUS_IMAGES, NULL);
  self->store = store != NULL ? g_object_ref (store) : NULL;
  self->controller = controller != NULL ? g_object_ref (controller) : NULL;
  self->keep = keep;
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
  g_signal_connect_object (skeleton, "handle-remove-image-with-options",
                           G_CALLBACK (handle_remove_image_with_options), self, 0);
  g_signal_connect_object (skeleton, "handle-prune-images", G_CALLBACK (handle_prune_images), self, 0);
  g_signal_connect_object (skeleton, "handle-verify-image", G_CALLBACK (handle_verify_image), self, 0);
  if (self->store != NULL)
    g_signal_connect_object (self->store, "import-progress", G_CALLBACK (on_import_progress), skeleton, 0);
}
