/* shoal-recipe-repo.c: recipes pulled from a git repository
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A recipe repository is a git repository the operators own. Recipes
 * live in its top-level recipes/ folder, one per file:
 * recipes/<name>.json, where <name> equals the recipe's "name" (other
 * files and subfolders are ignored).
 *
 * shoal fetches it with libgit2 into a bare repository in the cache
 * directory (every branch and tag; force-pushes are followed, since only
 * what the ref points at now counts) and reads the recipes straight from
 * the git objects of the commit the configured ref resolves to (a branch,
 * a tag, a full ref name, or a commit id reachable from a branch or tag).
 * Refs are resolved against what the remote advertises in that fetch: a
 * commit id must be a branch's or tag's commit or one of their ancestors
 * there and then, not merely an object of the cache.
 *
 * A fetch prunes the cache's refs that the remote no longer has, but the
 * cache keeps every object it ever fetched (shoal never collects garbage
 * in it): a deployment records its recipe's commit, and resuming it
 * offline (shoal_recipe_repo_load_at()) or tracing it
 * (shoal_recipe_repo_diff()) reads that commit from the cache even after a
 * force-push removed it from the remote. Only new pins must be reachable.
 *
 * A sync succeeds only when the remote was reached, the ref exists and
 * every recipe of that commit is valid; that commit becomes the "last
 * good" one and its recipes are served, each carrying the commit id.
 * The cache keeps it (refs/shoal/last-good), and
 * shoal_recipe_repo_load_last_good() serves it again after a restart,
 * before (or without) a good sync.
 * Otherwise the last good commit stays in service and
 * shoal_recipe_repo_get_last_error() says why (for an invalid recipe:
 * `recipes/<file>@<commit12>: $.json.path: problem`). Pinning an older
 * tag or commit with shoal_recipe_repo_set_ref() and syncing rolls back.
 *
 * Threading: use the object from one thread (the one that owns the main
 * context). shoal_recipe_repo_sync_async() does the git work in a worker
 * thread and applies the outcome, emitting ::changed, in the thread-default
 * main context of the caller. shoal_recipe_repo_diff() and
 * shoal_recipe_repo_load_at() read the cache and block briefly.
 */
#include "config.h"

#include <errno.h>
#include <git2.h>
#include <glib/gi18n-lib.h>
#include <string.h>

#include "shoal-error.h"
#include "shoal-recipe-repo.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (git_repository, git_repository_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (git_remote, git_remote_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (git_object, git_object_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (git_commit, git_commit_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (git_tree, git_tree_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (git_tree_entry, git_tree_entry_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (git_blob, git_blob_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (git_diff, git_diff_free)

#define RECIPES_DIR "recipes"

struct _ShoalRecipeRepo
{
  GObject    parent_instance;

  gchar     *url;
  gchar     *ref;
  gchar     *cache_dir;
  GMutex     git_lock;    /* one fetch into the cache at a time */

  gchar     *commit;      /* last good commit, full id */
  GPtrArray *recipes;     /* of ShoalRecipe, from the last good commit */
  gchar     *last_error;  /* why the last sync failed, NULL after a good one */
  gboolean   syncing;     /* a sync_async is running */
};

G_DEFINE_TYPE (ShoalRecipeRepo, shoal_recipe_repo, G_TYPE_OBJECT)

enum {
  SIGNAL_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* What a sync attempt found: the commit and its recipes */
typedef struct
{
  gchar     *commit;
  GPtrArray *recipes;
} SyncResult;

static void
sync_result_free (SyncResult *result)
{
  g_free (result->commit);
  g_clear_pointer (&result->recipes, g_ptr_array_unref);
  g_free (result);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SyncResult, sync_result_free)

/* ---------------------------------------------------------------- */
/* libgit2 helpers                                                  */
/* ---------------------------------------------------------------- */

static void
ensure_libgit2 (void)
{
  static gsize initialized = 0;

  if (g_once_init_enter (&initialized))
    {
      git_libgit2_init ();
      g_once_init_leave (&initialized, 1);
    }
}

/* Converts the last libgit2 error into a GError prefixed with what was
 * being done; returns FALSE for use in return statements. */
static gboolean set_git_error (GError     **error,
                               gint         code,
                               const gchar *format,
                               ...) G_GNUC_PRINTF (3, 4);

static gboolean
set_git_error (GError     **error,
               gint         code,
               const gchar *format,
               ...)
{
  const git_error *git_err = git_error_last ();
  g_autofree gchar *what = NULL;
  va_list args;

  va_start (args, format);
  what = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, SHOAL_ERROR, code, "%s: %s", what,
               git_err != NULL && git_err->message != NULL ? git_err->message : _("unknown git error"));
  return FALSE;
}

static git_repository *
open_cache (const gchar  *cache_dir,
            gboolean      create,
            GError      **error)
{
  g_autoptr(git_repository) repo = NULL;

  if (git_repository_open_bare (&repo, cache_dir) == 0)
    return g_steal_pointer (&repo);
  if (!create)
    {
      set_git_error (error, SHOAL_ERROR_NOT_FOUND,
                     _("Opening the recipe cache %s (not synced yet?)"), cache_dir);
      return NULL;
    }
  if (g_mkdir_with_parents (cache_dir, 0700) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                   _("Creating the recipe cache %s: %s"), cache_dir, g_strerror (errno));
      return NULL;
    }
  if (git_repository_init (&repo, cache_dir, 1) != 0)
    {
      set_git_error (error, SHOAL_ERROR_FAILED, _("Creating the recipe cache %s"), cache_dir);
      return NULL;
    }
  return g_steal_pointer (&repo);
}

static gchar *
oid_to_string (const git_oid *oid)
{
  gchar buf[GIT_OID_HEXSZ + 1];

  git_oid_tostr (buf, sizeof buf, oid);
  return g_strdup (buf);
}

static gboolean
is_hex_id (const gchar *str)
{
  gsize len = strlen (str);

  if (len < 4 || len > GIT_OID_HEXSZ)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      if (!g_ascii_isxdigit (str[i]))
        return FALSE;
    }
  return TRUE;
}

/* A recipe name usable as recipes/<name>.json */
static gboolean
check_recipe_name (const gchar  *name,
                   GError      **error)
{
  gboolean ok = name != NULL && g_ascii_isalnum (*name) && strlen (name) <= 64;

  for (const gchar *p = name; ok && *p != '\0'; p++)
    ok = g_ascii_isalnum (*p) || *p == '.' || *p == '_' || *p == '-';
  if (!ok)
    g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                 _("Invalid recipe name “%s”"), name != NULL ? name : "");
  return ok;
}

/* Resolves a commit id, short id, ref or tag name in the cache, as a pin
 * resolves them: the cache keeps the remote's branches as
 * refs/remotes/origin/<branch>, which git's own rules do not try for
 * "<branch>", so a name (with any suffix: main~1) is tried as a branch
 * first, then as git resolves it (a tag, refs/tags/<name>, comes first
 * there; then a commit id) */
static git_commit *
lookup_commit (git_repository  *repo,
               const gchar     *spec,
               GError         **error)
{
  g_autoptr(git_object) object = NULL;
  g_autoptr(git_object) peeled = NULL;
  g_autofree gchar *as_branch = NULL;

  if (spec == NULL || *spec == '\0' || *spec == '-' || strstr (spec, "..") != NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("Invalid commit “%s”"), spec != NULL ? spec : "");
      return NULL;
    }
  if (!g_str_has_prefix (spec, "refs/") && !g_str_has_prefix (spec, "HEAD"))
    as_branch = g_strconcat ("refs/remotes/origin/", spec, NULL);
  if ((as_branch == NULL || git_revparse_single (&object, repo, as_branch) != 0) &&
      git_revparse_single (&object, repo, spec) != 0)
    {
      set_git_error (error, SHOAL_ERROR_NOT_FOUND, _("Looking up commit %s"), spec);
      return NULL;
    }
  if (git_object_peel (&peeled, object, GIT_OBJECT_COMMIT) != 0)
    {
      set_git_error (error, SHOAL_ERROR_NOT_FOUND, _("Looking up commit %s"), spec);
      return NULL;
    }
  return (git_commit *) g_steal_pointer (&peeled);
}

/* ---------------------------------------------------------------- */
/* Reading recipes from a commit                                    */
/* ---------------------------------------------------------------- */

/* Builds a recipe from a blob; errors read `<path>@<commit12>: …` */
static ShoalRecipe *
recipe_from_blob (git_repository  *repo,
                  const git_oid   *blob_id,
                  const gchar     *path,
                  const gchar     *commit,
                  GError         **error)
{
  g_autoptr(git_blob) blob = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(ShoalRecipe) recipe = NULL;
  g_autofree gchar *where = g_strdup_printf ("%s@%.12s", path, commit);
  g_autofree gchar *expected = NULL;
  const gchar *base = strrchr (path, '/');

  if (git_blob_lookup (&blob, repo, blob_id) != 0)
    {
      set_git_error (error, SHOAL_ERROR_FAILED, _("Reading %s"), where);
      return NULL;
    }

  recipe = shoal_recipe_new_from_data (git_blob_rawcontent (blob),
                                       (gssize) MIN (git_blob_rawsize (blob), (git_object_size_t) G_MAXSSIZE),
                                       path, &local_error);
  if (recipe == NULL)
    {
      const gchar *msg = local_error->message;

      if (g_str_has_prefix (msg, path) && g_str_has_prefix (msg + strlen (path), ": "))
        msg += strlen (path) + 2;
      g_set_error (error, SHOAL_ERROR, local_error->code == SHOAL_ERROR_INVALID_RECIPE
                     ? SHOAL_ERROR_INVALID_RECIPE : local_error->code,
                   "%s: %s", where, msg);
      return NULL;
    }

  expected = g_strndup (base != NULL ? base + 1 : path,
                        strlen (base != NULL ? base + 1 : path) - strlen (".json"));
  if (g_strcmp0 (shoal_recipe_get_name (recipe), expected) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   _("%s: $.name: must equal the file name “%s”, got “%s”"),
                   where, expected, shoal_recipe_get_name (recipe));
      return NULL;
    }
  shoal_recipe_set_commit (recipe, commit);
  return g_steal_pointer (&recipe);
}

static git_tree *
lookup_recipes_tree (git_repository  *repo,
                     git_commit      *commit,
                     const gchar     *commit_id,
                     GError         **error)
{
  g_autoptr(git_tree) root = NULL;
  g_autoptr(git_tree_entry) entry = NULL;
  g_autoptr(git_tree) tree = NULL;

  if (git_commit_tree (&root, commit) != 0)
    {
      set_git_error (error, SHOAL_ERROR_FAILED, _("Reading the tree of commit %.12s"), commit_id);
      return NULL;
    }
  if (git_tree_entry_bypath (&entry, root, RECIPES_DIR) != 0 ||
      git_tree_entry_type (entry) != GIT_OBJECT_TREE)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE,
                   _("Commit %.12s has no %s/ folder at the top of its tree"),
                   commit_id, RECIPES_DIR);
      return NULL;
    }
  if (git_tree_lookup (&tree, repo, git_tree_entry_id (entry)) != 0)
    {
      set_git_error (error, SHOAL_ERROR_FAILED, _("Reading %s/ of commit %.12s"), RECIPES_DIR, commit_id);
      return NULL;
    }
  return g_steal_pointer (&tree);
}

/* Reads and validates every recipes/<name>.json of the commit. Reports every
 * invalid recipe, one per line. */
static GPtrArray *
read_recipes (git_repository  *repo,
              const git_oid   *commit_oid,
              GError         **error)
{
  g_autoptr(git_commit) commit = NULL;
  g_autoptr(git_tree) tree = NULL;
  g_autoptr(GPtrArray) recipes = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GString) problems = g_string_new (NULL);
  g_autofree gchar *commit_id = oid_to_string (commit_oid);

  if (git_commit_lookup (&commit, repo, commit_oid) != 0)
    {
      set_git_error (error, SHOAL_ERROR_FAILED, _("Reading commit %.12s"), commit_id);
      return NULL;
    }
  tree = lookup_recipes_tree (repo, commit, commit_id, error);
  if (tree == NULL)
    return NULL;

  for (gsize i = 0; i < git_tree_entrycount (tree); i++)
    {
      const git_tree_entry *entry = git_tree_entry_byindex (tree, i);
      const gchar *name = git_tree_entry_name (entry);
      g_autofree gchar *path = g_strdup_printf ("%s/%s", RECIPES_DIR, name);
      g_autoptr(GError) local_error = NULL;
      ShoalRecipe *recipe;

      if (!g_str_has_suffix (name, ".json") || strlen (name) == strlen (".json") ||
          git_tree_entry_type (entry) != GIT_OBJECT_BLOB)
        continue;
      recipe = recipe_from_blob (repo, git_tree_entry_id (entry), path, commit_id, &local_error);
      if (recipe == NULL)
        {
          g_string_append_printf (problems, "%s%s", problems->len > 0 ? "\n" : "", local_error->message);
          continue;
        }
      g_ptr_array_add (recipes, recipe);
    }

  if (problems->len > 0)
    {
      g_set_error_literal (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE, problems->str);
      return NULL;
    }
  return g_steal_pointer (&recipes);
}

/* ---------------------------------------------------------------- */
/* Fetching                                                         */
/* ---------------------------------------------------------------- */

static int
fetch_progress_cb (const git_indexer_progress *stats,
                   void                       *payload)
{
  return g_cancellable_is_cancelled (payload) ? -1 : 0;
}

static int
sideband_cb (const char *str,
             int         len,
             void       *payload)
{
  return g_cancellable_is_cancelled (payload) ? -1 : 0;
}

static git_remote *
fetch_remote (git_repository  *repo,
              const gchar     *url,
              GCancellable    *cancellable,
              GError         **error)
{
  g_autoptr(git_remote) remote = NULL;
  git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
  gchar *specs[] = { (gchar *) "+refs/heads/*:refs/remotes/origin/*",
                     (gchar *) "+refs/tags/*:refs/tags/*" };
  git_strarray refspecs = { specs, G_N_ELEMENTS (specs) };

  git_remote_create_options create_opts = GIT_REMOTE_CREATE_OPTIONS_INIT;

  /* Anonymous, with explicit refspecs. url.insteadOf rewriting is skipped:
   * the URL is used as configured (and libgit2 1.5 leaks memory in its
   * regex matching of config entries on that path). */
  if (strstr (url, "://") == NULL && !g_file_test (url, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                   _("Fetching recipes from %s: no such directory"), url);
      return NULL;
    }
  create_opts.repository = repo;
  create_opts.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
  if (git_remote_create_with_opts (&remote, url, &create_opts) != 0)
    {
      set_git_error (error, SHOAL_ERROR_INVALID_ARGUMENT, _("Using the recipe repository %s"), url);
      return NULL;
    }
  opts.callbacks.transfer_progress = fetch_progress_cb;
  opts.callbacks.sideband_progress = sideband_cb;
  opts.callbacks.payload = cancellable;
  opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  /* refs only: the objects stay (see the top of the file) */
  opts.prune = GIT_FETCH_PRUNE;

  if (git_remote_fetch (remote, &refspecs, &opts, "shoal: fetch recipes") != 0)
    {
      if (g_cancellable_is_cancelled (cancellable))
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_CANCELLED,
                       _("Fetching recipes from %s was cancelled"), url);
          return NULL;
        }
      set_git_error (error, SHOAL_ERROR_FAILED, _("Fetching recipes from %s"), url);
      return NULL;
    }
  return g_steal_pointer (&remote);
}

static const git_oid *
find_advertised (const git_remote_head **heads,
                 gsize                   n_heads,
                 const gchar            *name)
{
  for (gsize i = 0; i < n_heads; i++)
    {
      if (g_strcmp0 (heads[i]->name, name) == 0)
        return &heads[i]->oid;
    }
  return NULL;
}

/* The ref names tried for what the user configured */
static GPtrArray *
ref_candidates (const gchar *ref)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);

  if (ref == NULL || *ref == '\0')
    {
      g_ptr_array_add (names, g_strdup ("HEAD"));
      return names;
    }
  if (g_str_has_prefix (ref, "refs/") || g_strcmp0 (ref, "HEAD") == 0)
    {
      g_ptr_array_add (names, g_strdup (ref));
      return names;
    }
  g_ptr_array_add (names, g_strdup_printf ("refs/heads/%s", ref));
  g_ptr_array_add (names, g_strdup_printf ("refs/tags/%s", ref));
  return names;
}

static gboolean
peel_to_commit (git_repository  *repo,
                const git_oid   *oid,
                const gchar     *ref,
                git_oid         *out,
                GError         **error)
{
  g_autoptr(git_object) object = NULL;
  g_autoptr(git_object) peeled = NULL;

  if (git_object_lookup (&object, repo, oid, GIT_OBJECT_ANY) != 0 ||
      git_object_peel (&peeled, object, GIT_OBJECT_COMMIT) != 0)
    return set_git_error (error, SHOAL_ERROR_FAILED, _("Resolving %s to a commit"), ref);
  git_oid_cpy (out, git_object_id (peeled));
  return TRUE;
}

/* Whether a branch or tag the remote advertised in this fetch points at
 * @commit or at one of its descendants. The cache still holds commits
 * that a force-push removed from the remote: holding one proves nothing. */
static gboolean
advertised_reaches (git_repository         *repo,
                    const git_remote_head **heads,
                    gsize                   n_heads,
                    const git_oid          *commit)
{
  for (gsize i = 0; i < n_heads; i++)
    {
      g_autoptr(git_object) object = NULL;
      g_autoptr(git_object) peeled = NULL;
      const git_oid *tip;

      if (!g_str_has_prefix (heads[i]->name, "refs/heads/") &&
          !g_str_has_prefix (heads[i]->name, "refs/tags/"))
        continue;
      /* a tag of a tree or a blob has no history */
      if (git_object_lookup (&object, repo, &heads[i]->oid, GIT_OBJECT_ANY) != 0 ||
          git_object_peel (&peeled, object, GIT_OBJECT_COMMIT) != 0)
        continue;
      tip = git_object_id (peeled);
      if (git_oid_equal (tip, commit) || git_graph_descendant_of (repo, tip, commit) == 1)
        return TRUE;
    }
  return FALSE;
}

/* A commit id, full or abbreviated, that the remote still has */
static gboolean
resolve_commit_id (git_repository         *repo,
                   const git_remote_head **heads,
                   gsize                   n_heads,
                   const gchar            *url,
                   const gchar            *ref,
                   git_oid                *out,
                   GError                **error)
{
  g_autoptr(git_object) object = NULL;
  git_oid prefix;
  gint rc = git_oid_fromstrn (&prefix, ref, strlen (ref));

  if (rc == 0)
    rc = git_object_lookup_prefix (&object, repo, &prefix, strlen (ref), GIT_OBJECT_ANY);
  if (rc == GIT_EAMBIGUOUS)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("The abbreviated commit id %s is ambiguous in %s: give more of its digits"),
                   ref, url);
      return FALSE;
    }
  if (rc == 0 && !peel_to_commit (repo, git_object_id (object), ref, out, error))
    return FALSE;
  if (rc != 0 || !advertised_reaches (repo, heads, n_heads, out))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                   _("Commit %s is not reachable from any branch or tag of %s"), ref, url);
      return FALSE;
    }
  return TRUE;
}

/* Resolves the configured ref against what the remote advertised in
 * this fetch (so a deleted branch is noticed even though the cache still
 * holds it), or as a commit id reachable from an advertised branch or
 * tag. */
static gboolean
resolve_ref (git_repository  *repo,
             git_remote      *remote,
             const gchar     *url,
             const gchar     *ref,
             git_oid         *out,
             GError         **error)
{
  const git_remote_head **heads = NULL;
  size_t n_heads = 0;
  g_autoptr(GPtrArray) names = ref_candidates (ref);

  if (git_remote_ls (&heads, &n_heads, remote) != 0)
    return set_git_error (error, SHOAL_ERROR_FAILED, _("Listing the refs of %s"), url);
  for (guint i = 0; i < names->len; i++)
    {
      const git_oid *oid = find_advertised (heads, n_heads, g_ptr_array_index (names, i));

      if (oid != NULL)
        return peel_to_commit (repo, oid, g_ptr_array_index (names, i), out, error);
    }

  if (ref != NULL && is_hex_id (ref))
    return resolve_commit_id (repo, heads, n_heads, url, ref, out, error);
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
               _("The ref “%s” does not exist in %s (deleted?)"),
               ref != NULL && *ref != '\0' ? ref : "HEAD", url);
  return FALSE;
}

/* The last good commit is kept in the cache as this ref (a fetch prunes
 * only refs/remotes/origin/ and refs/tags/), so that a restart serves it
 * from the cache when its first sync fails:
 * shoal_recipe_repo_load_last_good() */
#define LAST_GOOD_REF "refs/shoal/last-good"

/* Called with the git lock held, once @commit's recipes are valid. A ref
 * that cannot be written costs only the restart's fallback: said in the
 * debug log */
static void
remember_last_good (git_repository *repo,
                    const git_oid  *commit)
{
  git_reference *ref = NULL;

  if (git_reference_create (&ref, repo, LAST_GOOD_REF, commit, 1, "shoal: last good commit") != 0)
    {
      const git_error *git_err = git_error_last ();

      g_debug ("Cannot record the last good recipe commit in %s: %s", LAST_GOOD_REF,
               git_err != NULL && git_err->message != NULL ? git_err->message : "unknown git error");
      return;
    }
  git_reference_free (ref);
}

typedef struct
{
  gchar *url;
  gchar *ref;
  gchar *cache_dir;
} SyncData;

static void
sync_data_free (SyncData *data)
{
  g_free (data->url);
  g_free (data->ref);
  g_free (data->cache_dir);
  g_free (data);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SyncData, sync_data_free)

/* The blocking part of a sync: fetch, resolve, read and validate */
static SyncResult *
sync_fetch_and_read (GMutex        *git_lock,
                     SyncData      *data,
                     GCancellable  *cancellable,
                     GError       **error)
{
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (git_lock);
  g_autoptr(git_repository) repo = NULL;
  g_autoptr(git_remote) remote = NULL;
  g_autoptr(SyncResult) result = g_new0 (SyncResult, 1);
  git_oid commit;

  ensure_libgit2 ();
  if (g_cancellable_is_cancelled (cancellable))
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_CANCELLED,
                   _("Fetching recipes from %s was cancelled"), data->url);
      return NULL;
    }
  repo = open_cache (data->cache_dir, TRUE, error);
  if (repo == NULL)
    return NULL;
  remote = fetch_remote (repo, data->url, cancellable, error);
  if (remote == NULL)
    return NULL;
  if (!resolve_ref (repo, remote, data->url, data->ref, &commit, error))
    return NULL;
  result->commit = oid_to_string (&commit);
  result->recipes = read_recipes (repo, &commit, error);
  if (result->recipes == NULL)
    return NULL;
  remember_last_good (repo, &commit);
  return g_steal_pointer (&result);
}

/* Applies a sync outcome in the caller's thread; emits ::changed when the
 * good commit changed. */
static gboolean
shoal_recipe_repo_apply (ShoalRecipeRepo  *self,
                         SyncResult       *result,
                         GError           *sync_error,
                         GError          **error)
{
  gboolean changed;

  if (result == NULL && g_error_matches (sync_error, SHOAL_ERROR, SHOAL_ERROR_CANCELLED))
    {
      g_propagate_error (error, g_error_copy (sync_error));
      return FALSE;
    }
  if (result == NULL)
    {
      g_free (self->last_error);
      self->last_error = g_strdup (sync_error->message);
      g_message ("Recipe sync from %s failed (still serving %s): %s", self->url,
                 self->commit != NULL ? self->commit : "nothing", sync_error->message);
      g_propagate_error (error, g_error_copy (sync_error));
      return FALSE;
    }

  g_clear_pointer (&self->last_error, g_free);
  changed = g_strcmp0 (self->commit, result->commit) != 0;
  if (!changed)
    return TRUE;
  g_free (self->commit);
  self->commit = g_steal_pointer (&result->commit);
  g_ptr_array_unref (self->recipes);
  self->recipes = g_steal_pointer (&result->recipes);
  g_info ("Recipes from %s now at commit %s (%u recipes)", self->url, self->commit, self->recipes->len);
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
  return TRUE;
}

static SyncData *
sync_data_new (ShoalRecipeRepo *self)
{
  SyncData *data = g_new0 (SyncData, 1);

  data->url = g_strdup (self->url);
  data->ref = g_strdup (self->ref);
  data->cache_dir = g_strdup (self->cache_dir);
  return data;
}

static void
sync_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  ShoalRecipeRepo *self = source_object;
  GError *error = NULL;
  SyncResult *result = sync_fetch_and_read (&self->git_lock, task_data, cancellable, &error);

  if (result == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, result, (GDestroyNotify) sync_result_free);
}

/* Runs in the caller's context once the worker is done */
static void
sync_thread_done (GObject      *source_object,
                  GAsyncResult *res,
                  gpointer      user_data)
{
  ShoalRecipeRepo *self = SHOAL_RECIPE_REPO (source_object);
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(SyncResult) result = g_task_propagate_pointer (G_TASK (res), &error);

  self->syncing = FALSE;
  if (!shoal_recipe_repo_apply (self, result, error, NULL))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_boolean (task, TRUE);
}

/**
 * shoal_recipe_repo_sync_async:
 * @self: a #ShoalRecipeRepo
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the sync is over
 * @user_data: data for @callback
 *
 * Fetches the repository in a worker thread, resolves the ref and
 * validates every recipe. The outcome is applied in the thread-default
 * main context of the caller: on success the commit becomes the last
 * good one (::changed is emitted if it differs from the previous one);
 * on failure the last good commit stays and the error is kept for
 * shoal_recipe_repo_get_last_error(). While a sync_async is running,
 * another one fails at once with %SHOAL_ERROR_BUSY (so a hung remote
 * cannot pile up worker threads); keep the object alive until the
 * callback runs.
 */
void
shoal_recipe_repo_sync_async (ShoalRecipeRepo     *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GTask) worker = NULL;

  g_return_if_fail (SHOAL_IS_RECIPE_REPO (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, shoal_recipe_repo_sync_async);
  if (self->syncing)
    {
      g_task_return_new_error (task, SHOAL_ERROR, SHOAL_ERROR_BUSY,
                               _("A sync of %s is already running"), self->url);
      return;
    }
  self->syncing = TRUE;
  worker = g_task_new (self, cancellable, sync_thread_done, g_object_ref (task));
  g_task_set_source_tag (worker, sync_thread);
  g_task_set_task_data (worker, sync_data_new (self), (GDestroyNotify) sync_data_free);
  /* The outcome of a finished fetch is applied even if cancelled late;
   * a cancelled fetch reports SHOAL_ERROR_CANCELLED itself. */
  g_task_set_check_cancellable (task, FALSE);
  g_task_set_check_cancellable (worker, FALSE);
  g_task_set_return_on_cancel (worker, FALSE);
  g_task_run_in_thread (worker, sync_thread);
}

/**
 * shoal_recipe_repo_sync_finish:
 * @self: a #ShoalRecipeRepo
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the sync brought a good commit (the same or a new one)
 */
gboolean
shoal_recipe_repo_sync_finish (ShoalRecipeRepo  *self,
                               GAsyncResult     *result,
                               GError          **error)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE_REPO (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == shoal_recipe_repo_sync_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * shoal_recipe_repo_sync:
 * @self: a #ShoalRecipeRepo
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The blocking form of shoal_recipe_repo_sync_async(), for tools and
 * tests; ::changed is emitted in the calling thread. Never call it on
 * the daemon's main loop.
 *
 * Returns: %TRUE if the sync brought a good commit
 */
gboolean
shoal_recipe_repo_sync (ShoalRecipeRepo  *self,
                        GCancellable     *cancellable,
                        GError          **error)
{
  g_autoptr(SyncData) data = NULL;
  g_autoptr(SyncResult) result = NULL;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (SHOAL_IS_RECIPE_REPO (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  data = sync_data_new (self);
  result = sync_fetch_and_read (&self->git_lock, data, cancellable, &local_error);
  return shoal_recipe_repo_apply (self, result, local_error, error);
}

/**
 * shoal_recipe_repo_load_last_good:
 * @self: a #ShoalRecipeRepo
 * @error: return location for a #GError
 *
 * Serves the last good commit of an earlier run, which the cache keeps,
 * without fetching: a restart serves it until a sync succeeds, where it
 * served nothing while the remote was out of reach or its ref invalid.
 * The recipes are validated again (a plugin may be gone). ::changed is
 * emitted as after a sync that brought that commit.
 *
 * Returns: %TRUE if the last good commit is served, %FALSE with
 *   %SHOAL_ERROR_NOT_FOUND before the first good sync into this cache
 */
gboolean
shoal_recipe_repo_load_last_good (ShoalRecipeRepo  *self,
                                  GError          **error)
{
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = NULL;
  g_autoptr(git_repository) repo = NULL;
  g_autoptr(SyncResult) result = g_new0 (SyncResult, 1);
  git_oid commit;

  g_return_val_if_fail (SHOAL_IS_RECIPE_REPO (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  ensure_libgit2 ();
  locker = g_mutex_locker_new (&self->git_lock);
  repo = open_cache (self->cache_dir, FALSE, error);
  if (repo == NULL)
    return FALSE;
  if (git_reference_name_to_id (&commit, repo, LAST_GOOD_REF) != 0)
    return set_git_error (error, SHOAL_ERROR_NOT_FOUND, _("Looking up the last good commit in %s"),
                          self->cache_dir);
  result->commit = oid_to_string (&commit);
  result->recipes = read_recipes (repo, &commit, error);
  if (result->recipes == NULL)
    return FALSE;
  g_clear_pointer (&locker, g_mutex_locker_free);
  return shoal_recipe_repo_apply (self, result, NULL, error);
}

/* ---------------------------------------------------------------- */
/* Reading back: diff and load at a commit                          */
/* ---------------------------------------------------------------- */

static int
diff_line_cb (const git_diff_delta *delta,
              const git_diff_hunk  *hunk,
              const git_diff_line  *line,
              void                 *payload)
{
  GString *out = payload;

  if (line->origin == GIT_DIFF_LINE_CONTEXT ||
      line->origin == GIT_DIFF_LINE_ADDITION ||
      line->origin == GIT_DIFF_LINE_DELETION)
    g_string_append_c (out, line->origin);
  g_string_append_len (out, line->content, (gssize) line->content_len);
  return 0;
}

/**
 * shoal_recipe_repo_diff:
 * @self: a #ShoalRecipeRepo
 * @recipe: a recipe name
 * @from_commit: a commit id (full or abbreviated), tag or branch
 * @to_commit: a commit id (full or abbreviated), tag or branch
 * @error: return location for a #GError
 *
 * What changed in recipes/<@recipe>.json between two commits of the
 * synced repository, as a unified diff.
 *
 * Returns: (transfer full): the diff, empty when nothing changed, or
 *   %NULL on error
 */
gchar *
shoal_recipe_repo_diff (ShoalRecipeRepo  *self,
                        const gchar      *recipe,
                        const gchar      *from_commit,
                        const gchar      *to_commit,
                        GError          **error)
{
  g_autoptr(git_repository) repo = NULL;
  g_autoptr(git_commit) from = NULL;
  g_autoptr(git_commit) to = NULL;
  g_autoptr(git_tree) from_tree = NULL;
  g_autoptr(git_tree) to_tree = NULL;
  g_autoptr(git_diff) diff = NULL;
  g_autofree gchar *path = NULL;
  g_autoptr(GString) out = g_string_new (NULL);
  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  gchar *pathspec[1];

  g_return_val_if_fail (SHOAL_IS_RECIPE_REPO (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  ensure_libgit2 ();
  if (!check_recipe_name (recipe, error))
    return NULL;
  repo = open_cache (self->cache_dir, FALSE, error);
  if (repo == NULL)
    return NULL;
  if ((from = lookup_commit (repo, from_commit, error)) == NULL ||
      (to = lookup_commit (repo, to_commit, error)) == NULL)
    return NULL;
  if (git_commit_tree (&from_tree, from) != 0 || git_commit_tree (&to_tree, to) != 0)
    {
      set_git_error (error, SHOAL_ERROR_FAILED, _("Reading the trees of %s and %s"), from_commit, to_commit);
      return NULL;
    }

  path = g_strdup_printf ("%s/%s.json", RECIPES_DIR, recipe);
  pathspec[0] = path;
  opts.pathspec.strings = pathspec;
  opts.pathspec.count = 1;
  opts.flags |= GIT_DIFF_DISABLE_PATHSPEC_MATCH;
  if (git_diff_tree_to_tree (&diff, repo, from_tree, to_tree, &opts) != 0 ||
      git_diff_print (diff, GIT_DIFF_FORMAT_PATCH, diff_line_cb, out) != 0)
    {
      set_git_error (error, SHOAL_ERROR_FAILED, _("Comparing %s between %s and %s"),
                     path, from_commit, to_commit);
      return NULL;
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/**
 * shoal_recipe_repo_load_at:
 * @self: a #ShoalRecipeRepo
 * @recipe: a recipe name
 * @commit: a commit id (full or abbreviated), tag or branch
 * @error: return location for a #GError
 *
 * Loads recipes/<@recipe>.json as it was at @commit in the synced
 * repository (whether or not that commit is the one served), for
 * instance to show what a device was installed with.
 *
 * Returns: (transfer full): the recipe, its commit set, or %NULL with
 *   %SHOAL_ERROR_NOT_FOUND or %SHOAL_ERROR_INVALID_RECIPE set
 */
ShoalRecipe *
shoal_recipe_repo_load_at (ShoalRecipeRepo  *self,
                           const gchar      *recipe,
                           const gchar      *commit,
                           GError          **error)
{
  g_autoptr(git_repository) repo = NULL;
  g_autoptr(git_commit) found = NULL;
  g_autoptr(git_tree) tree = NULL;
  g_autoptr(git_tree_entry) entry = NULL;
  g_autofree gchar *path = NULL;
  g_autofree gchar *commit_id = NULL;

  g_return_val_if_fail (SHOAL_IS_RECIPE_REPO (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  ensure_libgit2 ();
  if (!check_recipe_name (recipe, error))
    return NULL;
  repo = open_cache (self->cache_dir, FALSE, error);
  if (repo == NULL)
    return NULL;
  found = lookup_commit (repo, commit, error);
  if (found == NULL)
    return NULL;
  commit_id = oid_to_string (git_commit_id (found));
  path = g_strdup_printf ("%s/%s.json", RECIPES_DIR, recipe);
  if (git_commit_tree (&tree, found) != 0)
    {
      set_git_error (error, SHOAL_ERROR_FAILED, _("Reading the tree of commit %.12s"), commit_id);
      return NULL;
    }
  if (git_tree_entry_bypath (&entry, tree, path) != 0 ||
      git_tree_entry_type (entry) != GIT_OBJECT_BLOB)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND,
                   _("No recipe %s in commit %.12s"), path, commit_id);
      return NULL;
    }
  return recipe_from_blob (repo, git_tree_entry_id (entry), path, commit_id, error);
}

/* ---------------------------------------------------------------- */
/* Object                                                           */
/* ---------------------------------------------------------------- */

static void
shoal_recipe_repo_finalize (GObject *object)
{
  ShoalRecipeRepo *self = SHOAL_RECIPE_REPO (object);

  g_clear_pointer (&self->url, g_free);
  g_clear_pointer (&self->ref, g_free);
  g_clear_pointer (&self->cache_dir, g_free);
  g_clear_pointer (&self->commit, g_free);
  g_clear_pointer (&self->last_error, g_free);
  g_clear_pointer (&self->recipes, g_ptr_array_unref);
  g_mutex_clear (&self->git_lock);

  G_OBJECT_CLASS (shoal_recipe_repo_parent_class)->finalize (object);
}

static void
shoal_recipe_repo_class_init (ShoalRecipeRepoClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = shoal_recipe_repo_finalize;

  /**
   * ShoalRecipeRepo::changed:
   * @self: the #ShoalRecipeRepo
   *
   * The last good commit changed: shoal_recipe_repo_get_commit() and
   * shoal_recipe_repo_get_recipes() return the new commit and recipes.
   * Emitted in the thread-default main context of whoever started the sync.
   */
  signals[SIGNAL_CHANGED] =
    g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
shoal_recipe_repo_init (ShoalRecipeRepo *self)
{
  g_mutex_init (&self->git_lock);
  self->recipes = g_ptr_array_new_with_free_func (g_object_unref);
}

/**
 * shoal_recipe_repo_new:
 * @url: the repository: a local path, or a file://, git://, http:// or
 *   https:// URL
 * @ref: (nullable): a branch, a tag, a full ref name (refs/...) or a
 *   commit id; %NULL for the remote's HEAD
 * @cache_dir: a directory that holds the fetched (bare) repository
 *
 * Creates a recipe repository; nothing is fetched until a sync.
 *
 * Returns: (transfer full): a new #ShoalRecipeRepo
 */
ShoalRecipeRepo *
shoal_recipe_repo_new (const gchar *url,
                       const gchar *ref,
                       const gchar *cache_dir)
{
  ShoalRecipeRepo *self;

  g_return_val_if_fail (url != NULL, NULL);
  g_return_val_if_fail (cache_dir != NULL, NULL);

  ensure_libgit2 ();
  self = g_object_new (SHOAL_TYPE_RECIPE_REPO, NULL);
  if (strstr (url, "://") == NULL && !g_path_is_absolute (url))
    self->url = g_canonicalize_filename (url, NULL);
  else
    self->url = g_strdup (url);
  self->ref = g_strdup (ref);
  self->cache_dir = g_canonicalize_filename (cache_dir, NULL);
  return self;
}

const gchar *
shoal_recipe_repo_get_url (ShoalRecipeRepo *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE_REPO (self), NULL);
  return self->url;
}

/**
 * shoal_recipe_repo_get_ref:
 * @self: a #ShoalRecipeRepo
 *
 * Returns: (nullable): the configured ref, %NULL for the remote's HEAD
 */
const gchar *
shoal_recipe_repo_get_ref (ShoalRecipeRepo *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE_REPO (self), NULL);
  return self->ref;
}

/**
 * shoal_recipe_repo_set_ref:
 * @self: a #ShoalRecipeRepo
 * @ref: (nullable): a branch, tag, full ref name or commit id
 *
 * Pins another ref; it takes effect at the next sync (pinning an older
 * tag and syncing rolls the recipes back).
 */
void
shoal_recipe_repo_set_ref (ShoalRecipeRepo *self,
                           const gchar     *ref)
{
  g_return_if_fail (SHOAL_IS_RECIPE_REPO (self));
  g_free (self->ref);
  self->ref = g_strdup (ref);
}

/**
 * shoal_recipe_repo_get_commit:
 * @self: a #ShoalRecipeRepo
 *
 * Returns: (nullable): the full id of the last good commit, %NULL before
 *   the first good sync
 */
const gchar *
shoal_recipe_repo_get_commit (ShoalRecipeRepo *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE_REPO (self), NULL);
  return self->commit;
}

/**
 * shoal_recipe_repo_get_last_error:
 * @self: a #ShoalRecipeRepo
 *
 * Returns: (nullable): why the last sync failed (naming the file, the
 *   commit and the JSON path for an invalid recipe), %NULL when it
 *   succeeded
 */
const gchar *
shoal_recipe_repo_get_last_error (ShoalRecipeRepo *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE_REPO (self), NULL);
  return self->last_error;
}

/**
 * shoal_recipe_repo_get_recipes:
 * @self: a #ShoalRecipeRepo
 *
 * The recipes of the last good commit, in file name order, each
 * carrying that commit (shoal_recipe_get_commit()). The array is
 * replaced, never modified, by a later good sync: take a reference with
 * g_ptr_array_ref() to keep it past the next ::changed.
 *
 * Returns: (transfer none) (element-type ShoalRecipe): the recipes;
 *   empty before the first good sync
 */
GPtrArray *
shoal_recipe_repo_get_recipes (ShoalRecipeRepo *self)
{
  g_return_val_if_fail (SHOAL_IS_RECIPE_REPO (self), NULL);
  return self->recipes;
}
