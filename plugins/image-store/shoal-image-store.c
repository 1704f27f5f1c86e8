/* shoal-image-store.c: the image store as a GObject with async calls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every call runs the blocking code of shoal-image-files.c in a worker
 * thread (g_task_run_in_thread); results come back on the thread-default
 * main context of the caller. Signals are emitted there too.
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-error.h"
#include "shoal-image-files-private.h"
#include "shoal-image-store.h"

struct _ShoalImageStore
{
  GObject  parent_instance;
  gchar   *root;
  guint32  default_chunk_size;   /* for imports that ask for 0; 0: 1 MiB */
};

G_DEFINE_TYPE (ShoalImageStore, shoal_image_store, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_ROOT,
  N_PROPS
};

enum {
  SIGNAL_CHANGED,
  SIGNAL_IMPORT_PROGRESS,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

typedef struct {
  gchar            *path;
  gchar            *shown;          /* path without a URL's password */
  gchar            *name;
  gchar            *id_or_name;
  guint32           chunk_size;
  ShoalImportStats  stats;
  guint64           freed;
  guint             keep;
  gboolean          dry_run;
  GHashTable       *in_use;
  GMainContext     *context;
  gint64            last_progress;
} Call;

static void
call_free (Call *call)
{
  g_free (call->path);
  g_free (call->shown);
  g_free (call->name);
  g_free (call->id_or_name);
  g_clear_pointer (&call->in_use, g_hash_table_unref);
  g_clear_pointer (&call->context, g_main_context_unref);
  g_free (call);
}

static void
shoal_image_store_finalize (GObject *object)
{
  ShoalImageStore *self = SHOAL_IMAGE_STORE (object);

  g_free (self->root);
  G_OBJECT_CLASS (shoal_image_store_parent_class)->finalize (object);
}

static void
shoal_image_store_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  ShoalImageStore *self = SHOAL_IMAGE_STORE (object);

  if (prop_id == PROP_ROOT)
    g_value_set_string (value, self->root);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
shoal_image_store_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  ShoalImageStore *self = SHOAL_IMAGE_STORE (object);

  if (prop_id == PROP_ROOT)
    self->root = g_value_dup_string (value);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
shoal_image_store_class_init (ShoalImageStoreClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = shoal_image_store_finalize;
  object_class->get_property = shoal_image_store_get_property;
  object_class->set_property = shoal_image_store_set_property;

  /**
   * ShoalImageStore:root:
   *
   * The store folder (chunks/, images/, tmp/).
   */
  properties[PROP_ROOT] =
    g_param_spec_string ("root", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ShoalImageStore::changed:
   *
   * An image was imported or removed.
   */
  signals[SIGNAL_CHANGED] =
    g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * ShoalImageStore::import-progress:
   * @path: the file being imported
   * @done: source bytes read
   * @total: size of the source file
   *
   * At most four times a second during an import.
   */
  signals[SIGNAL_IMPORT_PROGRESS] =
    g_signal_new ("import-progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 3,
                  G_TYPE_STRING, G_TYPE_UINT64, G_TYPE_UINT64);
}

static void
shoal_image_store_init (ShoalImageStore *self)
{
}

/**
 * shoal_image_store_new:
 * @root: the store folder, created if missing
 *
 * Returns: (transfer full): the store, or %NULL if @root cannot be created
 */
ShoalImageStore *
shoal_image_store_new (const gchar  *root,
                       GError      **error)
{
  g_return_val_if_fail (root != NULL, NULL);

  if (!shoal_image_files_ensure (root, error))
    return NULL;
  return g_object_new (SHOAL_TYPE_IMAGE_STORE, "root", root, NULL);
}

const gchar *
shoal_image_store_get_root (ShoalImageStore *self)
{
  g_return_val_if_fail (SHOAL_IS_IMAGE_STORE (self), NULL);
  return self->root;
}

static GTask *
call_task (ShoalImageStore     *self,
           gpointer             source_tag,
           GCancellable        *cancellable,
           GAsyncReadyCallback  callback,
           gpointer             user_data,
           Call               **out_call)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  Call *call = g_new0 (Call, 1);

  g_task_set_source_tag (task, source_tag);
  g_task_set_task_data (task, call, (GDestroyNotify) call_free);
  call->context = g_main_context_ref_thread_default ();
  *out_call = call;
  return task;
}

/* one call about one image (id or name), run by thread in a worker */
static void
run_by_id (ShoalImageStore     *self,
           gpointer             source_tag,
           const gchar         *id_or_name,
           GCancellable        *cancellable,
           GAsyncReadyCallback  callback,
           gpointer             user_data,
           GTaskThreadFunc      thread)
{
  Call *call = NULL;
  g_autoptr(GTask) task = call_task (self, source_tag, cancellable, callback, user_data, &call);

  call->id_or_name = g_strdup (id_or_name);
  g_task_run_in_thread (task, thread);
}

static gboolean
emit_changed (gpointer data)
{
  g_signal_emit (data, signals[SIGNAL_CHANGED], 0);
  return G_SOURCE_REMOVE;
}

static void
invoke_changed (ShoalImageStore *self,
                Call            *call)
{
  g_main_context_invoke_full (call->context, G_PRIORITY_DEFAULT, emit_changed,
                              g_object_ref (self), g_object_unref);
}

/* --- import --------------------------------------------------------------- */

typedef struct {
  ShoalImageStore *self;
  gchar           *path;
  guint64          done;
  guint64          total;
} Progress;

static void
progress_free (Progress *p)
{
  g_object_unref (p->self);
  g_free (p->path);
  g_free (p);
}

static gboolean
emit_progress (gpointer data)
{
  Progress *p = data;

  g_signal_emit (p->self, signals[SIGNAL_IMPORT_PROGRESS], 0, p->path, p->done, p->total);
  return G_SOURCE_REMOVE;
}

static void
import_progress (guint64  done,
                 guint64  total,
                 gpointer user_data)
{
  GTask *task = user_data;
  Call *call = g_task_get_task_data (task);
  gint64 now = g_get_monotonic_time ();
  Progress *p;

  if (now - call->last_progress < G_USEC_PER_SEC / 4 && done < total)
    return;
  call->last_progress = now;
  p = g_new0 (Progress, 1);
  p->self = g_object_ref (g_task_get_source_object (task));
  /* the signal reaches every local user: no password */
  p->path = g_strdup (call->shown);
  p->done = done;
  p->total = total;
  g_main_context_invoke_full (call->context, G_PRIORITY_DEFAULT, emit_progress, p,
                              (GDestroyNotify) progress_free);
}

static void
import_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  ShoalImageStore *self = source_object;
  Call *call = task_data;
  GError *error = NULL;
  gchar *id;

  id = shoal_image_files_import (self->root, call->path, call->name, call->chunk_size,
                                 &call->stats, import_progress, task, cancellable, &error);
  if (id == NULL)
    {
      g_prefix_error (&error, _("Cannot import %s: "), call->shown);
      g_task_return_error (task, error);
      return;
    }
  invoke_changed (self, call);
  g_task_return_pointer (task, id, g_free);
}

/**
 * shoal_image_store_set_default_chunk_size:
 * @chunk_size: bytes per chunk for imports that give 0 (a power of two,
 *   4 KiB to 64 MiB), or 0 for 1 MiB
 *
 * Sets the chunk size of imports that do not choose one ([image-store]
 * chunk-size in shoald.conf; 4 MiB suits sessions on jumbo frames).
 *
 * Returns: %FALSE with InvalidArgument for any other size (unchanged)
 */
gboolean
shoal_image_store_set_default_chunk_size (ShoalImageStore  *self,
                                          guint64           chunk_size,
                                          GError          **error)
{
  g_return_val_if_fail (SHOAL_IS_IMAGE_STORE (self), FALSE);

  if (chunk_size != 0 && !shoal_manifest_chunk_size_is_valid (chunk_size))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("Chunk size %llu is not a power of two between %u and %u"),
                   (unsigned long long) chunk_size, SHOAL_MANIFEST_MIN_CHUNK_SIZE, SHOAL_MANIFEST_MAX_CHUNK_SIZE);
      return FALSE;
    }
  self->default_chunk_size = (guint32) chunk_size;
  return TRUE;
}

/**
 * shoal_image_store_configure_chunk_size:
 * @value: (nullable): the `[image-store] chunk-size` value of the
 *   configuration, or %NULL when it has none
 *
 * The default chunk size from the configuration, for shoald and the image
 * store's HTTP service alike: a value that is no chunk size is reported
 * (warning) and 1 MiB kept.
 */
void
shoal_image_store_configure_chunk_size (ShoalImageStore *self,
                                        const gchar     *value)
{
  g_autoptr(GError) error = NULL;
  guint64 size = 0;

  if (value != NULL &&
      (!g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT64, &size, &error) ||
       !shoal_image_store_set_default_chunk_size (self, size, &error)))
    g_warning ("[image-store] chunk-size=%s: %s; imports use 1 MiB chunks", value, error->message);
}

/**
 * shoal_image_store_display_source:
 * @path: a file's path or a URL, as given to shoal_image_store_import_async()
 *
 * Returns: (transfer full): @path as shown to users, in messages, logs and
 *   signals: a URL without the password it may hold
 */
gchar *
shoal_image_store_display_source (const gchar *path)
{
  g_return_val_if_fail (path != NULL, NULL);
  return shoal_image_fetch_display (path);
}

/**
 * shoal_image_store_import_async:
 * @path: a raw disk image, one compressed with zstd, xz, gzip or bzip2, or a
 *   qcow2 image
 * @name: (nullable): the image name; %NULL derives it from @path
 * @chunk_size: bytes per chunk (a power of two, 4 KiB to 64 MiB), 0 for the
 *   store's default (shoal_image_store_set_default_chunk_size(), else 1 MiB)
 *
 * Imports an image in a worker thread. Emits ::import-progress while it runs
 * and ::changed when it succeeded.
 */
void
shoal_image_store_import_async (ShoalImageStore     *self,
                                const gchar         *path,
                                const gchar         *name,
                                guint32              chunk_size,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  Call *call = NULL;

  g_return_if_fail (SHOAL_IS_IMAGE_STORE (self));
  g_return_if_fail (path != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = call_task (self, shoal_image_store_import_async, cancellable, callback, user_data, &call);
  call->path = g_strdup (path);
  call->shown = shoal_image_store_display_source (path);
  call->name = g_strdup (name);
  call->chunk_size = chunk_size != 0 ? chunk_size : self->default_chunk_size;
  g_task_run_in_thread (task, import_thread);
}

/**
 * shoal_image_store_import_finish:
 * @stats: (out caller-allocates) (optional): what the import did
 *
 * Returns: (transfer full): the image id
 */
gchar *
shoal_image_store_import_finish (ShoalImageStore   *self,
                                 GAsyncResult      *result,
                                 ShoalImportStats  *stats,
                                 GError           **error)
{
  Call *call;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == shoal_image_store_import_async, NULL);

  call = g_task_get_task_data (G_TASK (result));
  if (stats != NULL)
    *stats = call->stats;
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* --- list -------------------------------------------------------------- */

static void
list_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  ShoalImageStore *self = source_object;
  GError *error = NULL;
  GPtrArray *images = shoal_image_files_list (self->root, &error);

  if (images == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, images, (GDestroyNotify) g_ptr_array_unref);
}

void
shoal_image_store_list_async (ShoalImageStore     *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  Call *call = NULL;

  g_return_if_fail (SHOAL_IS_IMAGE_STORE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = call_task (self, shoal_image_store_list_async, cancellable, callback, user_data, &call);
  g_task_run_in_thread (task, list_thread);
}

/**
 * shoal_image_store_list_finish:
 *
 * Returns: (transfer container) (element-type ShoalImageInfo): every image,
 *   oldest import first
 */
GPtrArray *
shoal_image_store_list_finish (ShoalImageStore  *self,
                               GAsyncResult     *result,
                               GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == shoal_image_store_list_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* --- inspect ------------------------------------------------------------ */

static void
inspect_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  ShoalImageStore *self = source_object;
  Call *call = task_data;
  GError *error = NULL;
  ShoalImageInfo *info = shoal_image_files_inspect (self->root, call->id_or_name, &error);

  if (info == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, info, (GDestroyNotify) shoal_image_info_free);
}

/**
 * shoal_image_store_inspect_async:
 * @id_or_name: an image id, or a name (the newest image of that name)
 */
void
shoal_image_store_inspect_async (ShoalImageStore     *self,
                                 const gchar         *id_or_name,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_return_if_fail (SHOAL_IS_IMAGE_STORE (self));
  g_return_if_fail (id_or_name != NULL);

  run_by_id (self, shoal_image_store_inspect_async, id_or_name, cancellable, callback, user_data,
             inspect_thread);
}

ShoalImageInfo *
shoal_image_store_inspect_finish (ShoalImageStore  *self,
                                  GAsyncResult     *result,
                                  GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == shoal_image_store_inspect_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* --- remove, verify ------------------------------------------------------- */

static void
remove_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  ShoalImageStore *self = source_object;
  Call *call = task_data;
  GError *error = NULL;
  g_autofree gchar *id = shoal_image_files_resolve (self->root, call->id_or_name, &error);

  if (id == NULL || !shoal_image_files_remove (self->root, id, &call->freed, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  invoke_changed (self, call);
  g_task_return_boolean (task, TRUE);
}

/**
 * shoal_image_store_remove_async:
 * @id_or_name: an image id, or a name (the newest image of that name)
 *
 * Removes the image and the chunks no other image uses; emits ::changed.
 */
void
shoal_image_store_remove_async (ShoalImageStore     *self,
                                const gchar         *id_or_name,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_return_if_fail (SHOAL_IS_IMAGE_STORE (self));
  g_return_if_fail (id_or_name != NULL);

  run_by_id (self, shoal_image_store_remove_async, id_or_name, cancellable, callback, user_data,
             remove_thread);
}

/**
 * shoal_image_store_remove_finish:
 * @freed_bytes: (out) (optional): bytes of chunks deleted
 */
gboolean
shoal_image_store_remove_finish (ShoalImageStore  *self,
                                 GAsyncResult     *result,
                                 guint64          *freed_bytes,
                                 GError          **error)
{
  Call *call;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == shoal_image_store_remove_async, FALSE);

  call = g_task_get_task_data (G_TASK (result));
  if (freed_bytes != NULL)
    *freed_bytes = call->freed;
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
verify_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  ShoalImageStore *self = source_object;
  Call *call = task_data;
  GError *error = NULL;
  g_autofree gchar *id = shoal_image_files_resolve (self->root, call->id_or_name, &error);

  if (id == NULL || !shoal_image_files_verify (self->root, id, cancellable, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * shoal_image_store_verify_async:
 * @id_or_name: an image id, or a name
 *
 * Reads every chunk of the image back and checks it against the manifest.
 */
void
shoal_image_store_verify_async (ShoalImageStore     *self,
                                const gchar         *id_or_name,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_return_if_fail (SHOAL_IS_IMAGE_STORE (self));
  g_return_if_fail (id_or_name != NULL);

  run_by_id (self, shoal_image_store_verify_async, id_or_name, cancellable, callback, user_data,
             verify_thread);
}

gboolean
shoal_image_store_verify_finish (ShoalImageStore  *self,
                                 GAsyncResult     *result,
                                 GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == shoal_image_store_verify_async, FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* --- prune ------------------------------------------------------------------ */

static void
prune_thread (GTask        *task,
              gpointer      source_object,
              gpointer      task_data,
              GCancellable *cancellable)
{
  ShoalImageStore *self = source_object;
  Call *call = task_data;
  GError *error = NULL;
  ShoalImagePrune *prune = shoal_image_files_prune (self->root, call->name, call->keep, call->in_use,
                                                    call->dry_run, &error);

  if (prune == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (!call->dry_run && prune->removed->len > 0)
    invoke_changed (self, call);
  g_task_return_pointer (task, prune, (GDestroyNotify) shoal_image_prune_free);
}

/**
 * shoal_image_store_prune_async:
 * @name: (nullable): prune the images of this name only; %NULL: every name
 * @keep: how many images of each name stay, the newest imports (1 or more)
 * @in_use: (nullable): references to images that stay (an id, a name, the
 *   start of an id) → the reason shown for each; read in the worker
 *   thread, so not changed after this call
 * @dry_run: remove nothing, say what would go
 *
 * Removes the images beyond the newest @keep of their name, but for those
 * @in_use names and those a transfer holds, then the chunks no remaining
 * image uses (shoal_image_files_prune()); emits ::changed when it removed
 * any.
 */
void
shoal_image_store_prune_async (ShoalImageStore     *self,
                               const gchar         *name,
                               guint                keep,
                               GHashTable          *in_use,
                               gboolean             dry_run,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  Call *call = NULL;

  g_return_if_fail (SHOAL_IS_IMAGE_STORE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = call_task (self, shoal_image_store_prune_async, cancellable, callback, user_data, &call);
  call->name = g_strdup (name);
  call->keep = keep;
  call->dry_run = dry_run;
  call->in_use = in_use != NULL ? g_hash_table_ref (in_use) : NULL;
  g_task_run_in_thread (task, prune_thread);
}

/**
 * shoal_image_store_prune_finish:
 *
 * Returns: (transfer full): what was removed (a dry run: would be) and
 *   what stayed as in use
 */
ShoalImagePrune *
shoal_image_store_prune_finish (ShoalImageStore  *self,
                                GAsyncResult     *result,
                                GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == shoal_image_store_prune_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* --- garbage collection --------------------------------------------------- */

static void
gc_thread (GTask        *task,
           gpointer      source_object,
           gpointer      task_data,
           GCancellable *cancellable)
{
  ShoalImageStore *self = source_object;
  Call *call = task_data;
  GError *error = NULL;

  if (!shoal_image_files_gc (self->root, &call->freed, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * shoal_image_store_gc_async:
 *
 * Deletes the chunks no image uses (left by failed or interrupted imports)
 * and the downloads interrupted URL imports left in tmp/.
 */
void
shoal_image_store_gc_async (ShoalImageStore     *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  Call *call = NULL;

  g_return_if_fail (SHOAL_IS_IMAGE_STORE (self));

  task = call_task (self, shoal_image_store_gc_async, cancellable, callback, user_data, &call);
  g_task_run_in_thread (task, gc_thread);
}

/**
 * shoal_image_store_gc_finish:
 * @freed_bytes: (out) (optional): bytes of chunks deleted
 */
gboolean
shoal_image_store_gc_finish (ShoalImageStore  *self,
                             GAsyncResult     *result,
                             guint64          *freed_bytes,
                             GError          **error)
{
  Call *call;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == shoal_image_store_gc_async, FALSE);

  call = g_task_get_task_data (G_TASK (result));
  if (freed_bytes != NULL)
    *freed_bytes = call->freed;
  return g_task_propagate_boolean (G_TASK (result), error);
}
