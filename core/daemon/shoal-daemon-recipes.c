/* shoal-daemon-recipes.c: where shoald's recipes come from
 *
 * Two sources, from the [recipes] group of the configuration:
 *   dir=  a directory of *.json recipes, read once at start-up;
 *   url=, ref=, sync-interval=  a git repository (ShoalRecipeRepo), fetched
 *         at start-up (before interrupted deployments resume; each
 *         resumes with its recipe at the commit it recorded, read from
 *         the local clone: shoal_controller_set_recipe_loader()), every
 *         sync-interval seconds and when asked; after a successful fetch
 *         the controller's recipes are replaced by the repository's. A ref pinned over D-Bus is kept in the store (key
 *         "recipe-ref" of namespace "shoald") and wins over the file.
 *         Until the start-up fetch succeeds (and when it fails) the
 *         recipes of the last good commit of the previous run, kept in
 *         the local clone, are in service, so a restart while the remote
 *         is out of reach or its head invalid serves what was served.
 * A third, AddRecipe over D-Bus, is kept in the store by the controller
 * (shoal_controller_add_stored_recipe). The last recipe added under a
 * name is the one in service, and the start-up repeats that order: the
 * directory's recipes, then the repository's first fetch (the fetch that
 * was in service before the restart, or a newer commit of it), then the
 * stored ones, added after both. So the start-up fetch replaces the
 * directory's recipes and the repository's own with the repository's
 * current ones, but leaves the stored recipes in service, over a
 * repository recipe of the same name (as they were when added). A stored
 * recipe lasts until AddRecipe replaces it or a fetch asked for while
 * serving (SyncRecipes, SetRecipeRef, the periodic fetch) replaces every
 * recipe with the repository's: that deletes the stored copies too, as
 * it always dropped added recipes. A SyncRecipes that joins the
 * start-up fetch makes it such a fetch.
 * One git operation runs at a time: a sync asked for while a sync runs
 * gets that sync's outcome; pinning a ref or a diff asked for meanwhile
 * gets SHOAL_ERROR_BUSY.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "shoal-controller-private.h"
#include "shoal-daemon-recipes.h"
#include "shoal-error.h"
#include "shoal-recipe-repo.h"

#define KV_NAMESPACE "shoald"
#define KV_RECIPE_REF "recipe-ref"

struct _ShoalDaemonRecipes
{
  GObject          parent_instance;

  ShoalController *controller;
  ShoalRecipeRepo *repo;        /* nullable */
  gchar           *dir;         /* nullable */
  guint            sync_interval_s;
  guint            timer_id;
  gboolean         busy;
  gboolean         syncing;       /* busy with a plain sync */
  gboolean         keep_stored;   /* that sync is the start-up fetch: stored recipes stay */
  GPtrArray       *sync_waiters;  /* GTask: SyncRecipes calls joining the running sync */
};

G_DEFINE_TYPE (ShoalDaemonRecipes, shoal_daemon_recipes, G_TYPE_OBJECT)

static void
shoal_daemon_recipes_dispose (GObject *object)
{
  ShoalDaemonRecipes *self = SHOAL_DAEMON_RECIPES (object);

  g_clear_handle_id (&self->timer_id, g_source_remove);
  g_clear_object (&self->repo);
  g_clear_object (&self->controller);
  G_OBJECT_CLASS (shoal_daemon_recipes_parent_class)->dispose (object);
}

static void
shoal_daemon_recipes_finalize (GObject *object)
{
  ShoalDaemonRecipes *self = SHOAL_DAEMON_RECIPES (object);

  g_free (self->dir);
  g_ptr_array_unref (self->sync_waiters);
  G_OBJECT_CLASS (shoal_daemon_recipes_parent_class)->finalize (object);
}

static void
shoal_daemon_recipes_class_init (ShoalDaemonRecipesClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = shoal_daemon_recipes_dispose;
  object_class->finalize = shoal_daemon_recipes_finalize;
}

static void
shoal_daemon_recipes_init (ShoalDaemonRecipes *self)
{
  self->sync_waiters = g_ptr_array_new_with_free_func (g_object_unref);
}

/* the controller's ShoalControllerRecipeLoader: an interrupted
 * deployment resumes with its recipe at the commit it recorded, read
 * from the local clone whatever the fetch at start-up brought */
static ShoalRecipe *
shoal_daemon_recipes_load_at (const gchar  *name,
                              const gchar  *commit,
                              gpointer      user_data,
                              GError      **error)
{
  ShoalRecipe *recipe = shoal_recipe_repo_load_at (SHOAL_RECIPE_REPO (user_data), name, commit, error);

  if (recipe != NULL)
    g_info ("loaded recipe %s at %s from the local clone", name, commit);
  return recipe;
}

static gchar *
config_get_string (GKeyFile *config, const gchar *key)
{
  g_autofree gchar *value = NULL;

  if (config == NULL)
    return NULL;
  value = g_key_file_get_string (config, "recipes", key, NULL);
  if (value != NULL)
    g_strstrip (value);
  if (value == NULL || value[0] == '\0')
    return NULL;
  return g_steal_pointer (&value);
}

/**
 * shoal_daemon_recipes_new:
 * @controller: the controller, opened
 * @config: (nullable): the daemon's configuration
 * @state_dir: where the repository's clone is kept
 *
 * Returns: (transfer full): a new #ShoalDaemonRecipes
 */
ShoalDaemonRecipes *
shoal_daemon_recipes_new (ShoalController *controller,
                          GKeyFile        *config,
                          const gchar     *state_dir)
{
  ShoalDaemonRecipes *self = g_object_new (SHOAL_TYPE_DAEMON_RECIPES, NULL);
  g_autofree gchar *url = config_get_string (config, "url");
  g_autofree gchar *ref = config_get_string (config, "ref");
  g_autofree gchar *pinned = NULL;

  self->controller = g_object_ref (controller);
  self->dir = config_get_string (config, "dir");
  if (config != NULL && g_key_file_has_key (config, "recipes", "sync-interval", NULL))
    {
      gint64 interval = g_key_file_get_int64 (config, "recipes", "sync-interval", NULL);

      self->sync_interval_s = (guint) CLAMP (interval, 0, G_MAXINT);
    }
  if (url != NULL)
    {
      g_autofree gchar *cache_dir = g_build_filename (state_dir, "recipes-git", NULL);

      pinned = shoal_context_kv_get (shoal_controller_get_context (controller),
                                     KV_NAMESPACE, KV_RECIPE_REF);
      self->repo = shoal_recipe_repo_new (url, pinned != NULL ? pinned : ref, cache_dir);
      shoal_controller_set_recipe_loader (controller, shoal_daemon_recipes_load_at,
                                          g_object_ref (self->repo), g_object_unref);
    }
  return self;
}

static gboolean
shoal_daemon_recipes_load_file (ShoalDaemonRecipes *self,
                                const gchar        *path,
                                GError            **error)
{
  g_autoptr(ShoalRecipe) recipe = shoal_recipe_new_from_file (path, error);

  if (recipe == NULL)
    return FALSE;
  return shoal_controller_add_recipe (self->controller, recipe, error);
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const gchar * const *) a, *(const gchar * const *) b);
}

/**
 * shoal_daemon_recipes_load_dir:
 * @self: a #ShoalDaemonRecipes
 * @error: a #GError
 *
 * Reads every *.json recipe of the [recipes] dir= directory. A recipe that
 * does not load is reported in the log and skipped.
 *
 * Returns: how many recipes were added, or %G_MAXUINT with @error set if
 *   the directory cannot be read
 */
guint
shoal_daemon_recipes_load_dir (ShoalDaemonRecipes *self, GError **error)
{
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const gchar *name;
  guint n_loaded = 0;

  g_return_val_if_fail (SHOAL_IS_DAEMON_RECIPES (self), G_MAXUINT);

  if (self->dir == NULL)
    return 0;
  dir = g_dir_open (self->dir, 0, error);
  if (dir == NULL)
    {
      g_prefix_error (error, "reading the recipe directory: ");
      return G_MAXUINT;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      if (g_str_has_suffix (name, ".json"))
        g_ptr_array_add (names, g_strdup (name));
    }
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree gchar *path = g_build_filename (self->dir, g_ptr_array_index (names, i), NULL);
      g_autoptr(GError) error_local = NULL;

      if (!shoal_daemon_recipes_load_file (self, path, &error_local))
        {
          g_warning ("skipping recipe %s: %s", path, error_local->message);
          continue;
        }
      n_loaded++;
    }
  g_info ("loaded %u recipes from %s", n_loaded, self->dir);
  return n_loaded;
}

/**
 * shoal_daemon_recipes_has_repo:
 * @self: a #ShoalDaemonRecipes
 *
 * Returns: whether a recipe repository is configured
 */
gboolean
shoal_daemon_recipes_has_repo (ShoalDaemonRecipes *self)
{
  g_return_val_if_fail (SHOAL_IS_DAEMON_RECIPES (self), FALSE);
  return self->repo != NULL;
}

static gboolean
shoal_daemon_recipes_check_repo (ShoalDaemonRecipes *self, GError **error)
{
  if (self->repo == NULL)
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_NOT_SUPPORTED,
                           _("No recipe repository is configured ([recipes] url= in shoald.conf)"));
      return FALSE;
    }
  if (self->busy)
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_BUSY,
                           _("The recipe repository is busy with another operation; try again"));
      return FALSE;
    }
  return TRUE;
}

static gboolean
shoal_daemon_recipes_replace (ShoalDaemonRecipes *self, GError **error)
{
  GPtrArray *repo_recipes = shoal_recipe_repo_get_recipes (self->repo);
  g_autoptr(GPtrArray) wanted = repo_recipes != NULL ? g_ptr_array_ref (repo_recipes) : NULL;
  g_autoptr(GPtrArray) current = shoal_controller_get_recipes (self->controller);
  g_autoptr(GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GString) refused = g_string_new (NULL);
  guint n_refused = 0;

  for (guint i = 0; wanted != NULL && i < wanted->len; i++)
    g_hash_table_add (names, (gpointer) shoal_recipe_get_name (g_ptr_array_index (wanted, i)));
  for (guint i = 0; current != NULL && i < current->len; i++)
    {
      const gchar *name = shoal_recipe_get_name (g_ptr_array_index (current, i));
      g_autoptr(GError) error_local = NULL;

      if (g_hash_table_contains (names, name) ||
          (self->keep_stored && shoal_controller_is_stored_recipe (self->controller, name)))
        continue;
      if (!shoal_controller_remove_recipe (self->controller, name, &error_local))
        g_warning ("keeping recipe %s, gone from the repository: %s", name, error_local->message);
    }
  for (guint i = 0; wanted != NULL && i < wanted->len; i++)
    {
      ShoalRecipe *recipe = g_ptr_array_index (wanted, i);
      g_autoptr(GError) error_local = NULL;

      if (self->keep_stored &&
          shoal_controller_is_stored_recipe (self->controller, shoal_recipe_get_name (recipe)))
        {
          g_info ("keeping recipe %s added over D-Bus over the repository's", shoal_recipe_get_name (recipe));
          continue;
        }
      if (shoal_controller_add_recipe (self->controller, recipe, &error_local))
        continue;
      n_refused++;
      g_string_append_printf (refused, "%s%s", refused->len > 0 ? "; " : "", error_local->message);
    }
  if (n_refused > 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   g_dngettext (GETTEXT_PACKAGE,
                                "%u recipe of commit %s was refused: %s",
                                "%u recipes of commit %s were refused: %s", n_refused),
                   n_refused, shoal_recipe_repo_get_commit (self->repo), refused->str);
      return FALSE;
    }
  return TRUE;
}

/**
 * shoal_daemon_recipes_load_last_good:
 * @self: a #ShoalDaemonRecipes
 *
 * Puts in service, from the local clone, the recipes of the repository's
 * last good commit of an earlier run, as the start-up fetch would
 * (replacing the directory's recipes; call it before the stored recipes
 * are loaded, which stay over them): they stay in service when that
 * fetch fails or finds the ref invalid, where shoald served none of the
 * repository's. Does nothing without a repository or before its first
 * good sync.
 */
void
shoal_daemon_recipes_load_last_good (ShoalDaemonRecipes *self)
{
  g_autoptr(GError) error = NULL;

  g_return_if_fail (SHOAL_IS_DAEMON_RECIPES (self));

  if (self->repo == NULL)
    return;
  if (!shoal_recipe_repo_load_last_good (self->repo, &error))
    {
      g_info ("no recipes from the local clone until the first fetch: %s", error->message);
      return;
    }
  g_info ("serving the recipes of commit %s, the last good one, from the local clone",
          shoal_recipe_repo_get_commit (self->repo));
  if (!shoal_daemon_recipes_replace (self, &error))
    g_warning ("recipes of the local clone: %s", error->message);
}

/* gives the outcome of a sync to the task that started it and to every
 * task that joined it */
static void
shoal_daemon_recipes_return_sync (ShoalDaemonRecipes *self, GTask *task, const GError *error)
{
  g_autoptr(GPtrArray) waiters = g_steal_pointer (&self->sync_waiters);

  self->sync_waiters = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_insert (waiters, 0, g_object_ref (task));
  for (guint i = 0; i < waiters->len; i++)
    {
      GTask *waiter = g_ptr_array_index (waiters, i);

      if (error != NULL)
        g_task_return_error (waiter, g_error_copy (error));
      else
        g_task_return_boolean (waiter, TRUE);
    }
}

static void
shoal_daemon_recipes_synced_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  ShoalDaemonRecipes *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;

  self->busy = FALSE;
  self->syncing = FALSE;
  if (!shoal_recipe_repo_sync_finish (SHOAL_RECIPE_REPO (source), result, &error))
    g_prefix_error (&error, "fetching recipes from %s: ", shoal_recipe_repo_get_url (self->repo));
  else
    {
      g_info ("recipes at commit %s", shoal_recipe_repo_get_commit (self->repo));
      shoal_daemon_recipes_replace (self, &error);
    }
  self->keep_stored = FALSE;
  shoal_daemon_recipes_return_sync (self, task, error);
}

static void
shoal_daemon_recipes_sync_internal (ShoalDaemonRecipes  *self,
                                    gboolean             keep_stored,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, shoal_daemon_recipes_sync_async);
  if (self->repo != NULL && self->busy && self->syncing)
    {
      /* a SyncRecipes joining the start-up fetch asks for a replacement */
      if (!keep_stored)
        self->keep_stored = FALSE;
      g_ptr_array_add (self->sync_waiters, g_steal_pointer (&task));
      return;
    }
  if (!shoal_daemon_recipes_check_repo (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  self->busy = TRUE;
  self->syncing = TRUE;
  self->keep_stored = keep_stored;
  shoal_recipe_repo_sync_async (self->repo, cancellable,
                                shoal_daemon_recipes_synced_cb, g_steal_pointer (&task));
}

/**
 * shoal_daemon_recipes_sync_async:
 * @self: a #ShoalDaemonRecipes
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: for @callback
 *
 * Fetches the repository and replaces the controller's recipes with its,
 * those added over D-Bus included.
 */
void
shoal_daemon_recipes_sync_async (ShoalDaemonRecipes  *self,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_return_if_fail (SHOAL_IS_DAEMON_RECIPES (self));
  shoal_daemon_recipes_sync_internal (self, FALSE, cancellable, callback, user_data);
}

/**
 * shoal_daemon_recipes_start_sync_async:
 * @self: a #ShoalDaemonRecipes
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done, which calls shoal_daemon_recipes_sync_finish()
 * @user_data: for @callback
 *
 * The start-up fetch: as shoal_daemon_recipes_sync_async(), but the
 * recipes added over D-Bus and kept in the store
 * (shoal_controller_load_stored_recipes()) stay in service, over the
 * repository's recipe of the same name: they were added after the fetch
 * that was in service before the restart.
 */
void
shoal_daemon_recipes_start_sync_async (ShoalDaemonRecipes  *self,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  g_return_if_fail (SHOAL_IS_DAEMON_RECIPES (self));
  shoal_daemon_recipes_sync_internal (self, TRUE, cancellable, callback, user_data);
}

/**
 * shoal_daemon_recipes_sync_finish:
 * @self: a #ShoalDaemonRecipes
 * @result: the result
 * @error: a #GError
 *
 * Returns: %TRUE if the recipes are those of the repository's ref
 */
gboolean
shoal_daemon_recipes_sync_finish (ShoalDaemonRecipes *self,
                                  GAsyncResult       *result,
                                  GError            **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
shoal_daemon_recipes_ref_synced_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  ShoalDaemonRecipes *self = g_task_get_source_object (task);
  const gchar *previous = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  self->busy = FALSE;
  if (!shoal_recipe_repo_sync_finish (SHOAL_RECIPE_REPO (source), result, &error))
    {
      /* the recipes in service are still those of the previous ref */
      g_prefix_error (&error, "fetching recipes from %s: ", shoal_recipe_repo_get_url (self->repo));
      shoal_recipe_repo_set_ref (self->repo, previous);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  shoal_context_kv_set (shoal_controller_get_context (self->controller),
                        KV_NAMESPACE, KV_RECIPE_REF, shoal_recipe_repo_get_ref (self->repo));
  g_info ("recipes pinned to %s, commit %s", shoal_recipe_repo_get_ref (self->repo),
          shoal_recipe_repo_get_commit (self->repo));
  if (!shoal_daemon_recipes_replace (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_boolean (task, TRUE);
}

/**
 * shoal_daemon_recipes_set_ref_async:
 * @self: a #ShoalDaemonRecipes
 * @ref: a branch, tag or commit
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: for @callback
 *
 * Pins the repository to @ref and syncs; if that succeeds, the pin is kept
 * across restarts, otherwise the previous ref stays in service.
 */
void
shoal_daemon_recipes_set_ref_async (ShoalDaemonRecipes  *self,
                                    const gchar         *ref,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (SHOAL_IS_DAEMON_RECIPES (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, shoal_daemon_recipes_set_ref_async);
  if (!shoal_daemon_recipes_check_repo (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  /* remember the ref in service, to go back to it if the new one fails */
  g_task_set_task_data (task, g_strdup (shoal_recipe_repo_get_ref (self->repo)), g_free);
  shoal_recipe_repo_set_ref (self->repo, ref);
  self->busy = TRUE;
  shoal_recipe_repo_sync_async (self->repo, cancellable,
                                shoal_daemon_recipes_ref_synced_cb, g_steal_pointer (&task));
}

/**
 * shoal_daemon_recipes_set_ref_finish:
 * @self: a #ShoalDaemonRecipes
 * @result: the result
 * @error: a #GError
 *
 * Returns: %TRUE if the recipes are now those of the new ref
 */
gboolean
shoal_daemon_recipes_set_ref_finish (ShoalDaemonRecipes *self,
                                     GAsyncResult       *result,
                                     GError            **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * shoal_daemon_recipes_diff_async:
 * @self: a #ShoalDaemonRecipes
 * @name: a recipe's name
 * @from_commit: a git revision
 * @to_commit: another one
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: for @callback
 *
 * Computes the unified diff of recipe @name between two commits of the
 * local clone.
 */
void
shoal_daemon_recipes_diff_async (ShoalDaemonRecipes  *self,
                                 const gchar         *name,
                                 const gchar         *from_commit,
                                 const gchar         *to_commit,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  gchar *diff;

  g_return_if_fail (SHOAL_IS_DAEMON_RECIPES (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, shoal_daemon_recipes_diff_async);
  if (!shoal_daemon_recipes_check_repo (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  /* ShoalRecipeRepo is used from one thread; a diff reads the local cache
   * and takes milliseconds */
  diff = shoal_recipe_repo_diff (self->repo, name, from_commit, to_commit, &error);
  if (diff == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_pointer (task, diff, g_free);
}

/**
 * shoal_daemon_recipes_diff_finish:
 * @self: a #ShoalDaemonRecipes
 * @result: the result
 * @error: a #GError
 *
 * Returns: (transfer full): the unified diff, or %NULL on error
 */
gchar *
shoal_daemon_recipes_diff_finish (ShoalDaemonRecipes *self,
                                  GAsyncResult       *result,
                                  GError            **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
shoal_daemon_recipes_background_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;

  if (!shoal_daemon_recipes_sync_finish (SHOAL_DAEMON_RECIPES (source), result, &error))
    g_warning ("recipe sync: %s", error->message);
}

static gboolean
shoal_daemon_recipes_timer_cb (gpointer user_data)
{
  ShoalDaemonRecipes *self = SHOAL_DAEMON_RECIPES (user_data);

  if (!self->busy)
    shoal_daemon_recipes_sync_async (self, NULL, shoal_daemon_recipes_background_cb, NULL);
  return G_SOURCE_CONTINUE;
}

/**
 * shoal_daemon_recipes_start_timer:
 * @self: a #ShoalDaemonRecipes
 *
 * Fetches the repository every sync-interval= seconds, if asked to. Does
 * nothing without a repository.
 */
void
shoal_daemon_recipes_start_timer (ShoalDaemonRecipes *self)
{
  g_return_if_fail (SHOAL_IS_DAEMON_RECIPES (self));

  if (self->repo == NULL || self->sync_interval_s == 0 || self->timer_id != 0)
    return;
  self->timer_id = g_timeout_add_seconds (self->sync_interval_s,
                                          shoal_daemon_recipes_timer_cb, self);
}
