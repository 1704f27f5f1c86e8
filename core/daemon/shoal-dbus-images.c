/* shoal-dbus-images.c: the image methods of org.shoal.Shoal1.Manager
 *
 * ImportImage, CancelImport, ListImages, InspectImage, RemoveImage,
 * RemoveImageWithOptions and VerifyImage on the manager object, and its ImageImportProgress signal,
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
 * RemoveImage spares the image that the recipe of a running deployment
 * names (BUSY naming recipe and devices) unless forced; Deploy asks
 * shoal_dbus_images_check_recipe() whether a device's image is there.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-controller.h"
#include "shoal-dbus-images.h"
#include "shoal-dbus-util.h"
#include "shoal-error.h"

struct _ShoalDBusImages
{
  GObject          parent_instance;

  ShoalImageStore *store;       /* NULL when the store could not be opened */
  ShoalController *controller;  /* whose running deployments RemoveImage spares */
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
  g_free (call->path);
  g_free (call->shown);
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
                                    : _("The import of %s was cancelled"), imp->shown);
    }
  if (id == NULL)
    {
      g_info ("import of %s failed: %s", imp->shown, error->message);
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

/* the image @recipe names: its "id", else its "name"; NULL when none */
static const gchar *
recipe_image_ref (ShoalRecipe *recipe)
{
  JsonObject *image = shoal_recipe_get_image (recipe);

  if (image == NULL)
    return NULL;
  return json_object_get_string_member_with_default (image, "id",
           json_object_get_string_member_with_default (image, "name", NULL));
}

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
  const gchar *ref = recipe_image_ref (recipe);
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

/* the running deployments whose recipe names one image reference */
typedef struct
{
  gchar     *ref;      /* the recipe's image id or name */
  gchar     *recipe;
  GPtrArray *devices;  /* gchar * */
} ImageUser;

static void
image_user_free (ImageUser *user)
{
  g_free (user->ref);
  g_free (user->recipe);
  g_ptr_array_unref (user->devices);
  g_free (user);
}

typedef struct
{
  gchar     *id_or_name;
  gboolean   force;
  GPtrArray *users;    /* ImageUser * */
} RemoveCheck;

static void
remove_check_free (RemoveCheck *check)
{
  g_free (check->id_or_name);
  g_ptr_array_unref (check->users);
  g_free (check);
}

/* the images the recipes of running deployments name, per recipe (read
 * in the main thread, checked against the store in a worker) */
static GPtrArray *
collect_image_users (ShoalDBusImages *self)
{
  g_autoptr(GPtrArray) users = g_ptr_array_new_with_free_func ((GDestroyNotify) image_user_free);
  g_autoptr(GHashTable) by_recipe = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) devices = NULL;

  if (self->controller == NULL)
    return g_steal_pointer (&users);
  devices = shoal_controller_get_devices (self->controller);
  for (guint i = 0; devices != NULL && i < devices->len; i++)
    {
      ShoalDevice *device = g_ptr_array_index (devices, i);
      const gchar *name = shoal_device_get_recipe (device);
      ShoalRecipe *recipe;
      ImageUser *user;

      if (name == NULL || !shoal_device_state_is_active (shoal_device_get_state (device)))
        continue;
      recipe = shoal_controller_lookup_recipe (self->controller, name);
      if (recipe == NULL || recipe_image_ref (recipe) == NULL)
        continue;
      user = g_hash_table_lookup (by_recipe, name);
      if (user == NULL)
        {
          user = g_new0 (ImageUser, 1);
          user->ref = g_strdup (recipe_image_ref (recipe));
          user->recipe = g_strdup (name);
          user->devices = g_ptr_array_new_with_free_func (g_free);
          g_hash_table_insert (by_recipe, user->recipe, user);
          g_ptr_array_add (users, user);
        }
      g_ptr_array_add (user->devices, g_strdup (shoal_device_get_id (device)));
    }
  return g_steal_pointer (&users);
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
      ImageUser *user = g_ptr_array_index (check->users, i);
      g_autofree gchar *used = shoal_image_files_resolve (root, user->ref, NULL);
      g_autofree gchar *devices = NULL;

      if (g_strcmp0 (used, id) != 0)
        continue;
      g_ptr_array_add (user->devices, NULL);
      devices = g_strjoinv (", ", (gchar **) user->devices->pdata);
      g_ptr_array_remove_index (user->devices, user->devices->len - 1);
      /* TRANSLATORS: a recipe and the devices running it */
      g_string_append_printf (users, _("%srecipe %s (devices %s)"), users->len > 0 ? "; " : "",
                              user->recipe, devices);
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
  check->users = collect_image_users (self);
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

static gboolean
handle_remove_image_with_options (ShoalDBusManager      *skeleton,
                                  GDBusMethodInvocation *invocation,
                                  const gchar           *id_or_name,
                                  GVariant              *options,
                                  gpointer               user_data)
{
  GVariantIter iter;
  const gchar *key;
  GVariant *value;
  gboolean force = FALSE;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
    {
      if (g_str_equal (key, "force") && g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
        {
          force = g_variant_get_boolean (value);
          continue;
        }
      g_dbus_method_invocation_return_error (invocation, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                                             g_str_equal (key, "force")
                                             ? _("options: “%s” is not a boolean")
                                             : _("options: unknown option “%s”"), key);
      g_variant_unref (value);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  remove_image (SHOAL_DBUS_IMAGES (user_data), invocation, id_or_name, force);
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
 *   RemoveImage spares (none when %NULL)
 *
 * Returns: (transfer full): a new #ShoalDBusImages
 */
ShoalDBusImages *
shoal_dbus_images_new (ShoalImageStore *store,
                       ShoalController *controller)
{
  ShoalDBusImages *self;

  g_return_val_if_fail (store == NULL || SHOAL_IS_IMAGE_STORE (store), NULL);
  g_return_val_if_fail (controller == NULL || SHOAL_IS_CONTROLLER (controller), NULL);
  self = g_object_new (SHOAL_TYPE_DBUS_IMAGES, NULL);
  self->store = store != NULL ? g_object_ref (store) : NULL;
  self->controller = controller != NULL ? g_object_ref (controller) : NULL;
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
  g_signal_connect_object (skeleton, "handle-verify-image", G_CALLBACK (handle_verify_image), self, 0);
  if (self->store != NULL)
    g_signal_connect_object (self->store, "import-progress", G_CALLBACK (on_import_progress), skeleton, 0);
}
