/* test-recipe-repo.c: recipes pulled from git repositories
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each test builds its own repositories with the git command line in a
 * temporary directory: an "upstream" bare repository that a "work"
 * clone pushes to. The git:// cases run `git daemon` on 127.0.0.1 on a
 * free port; the test kills it by PID (and it dies with the test
 * process if the test aborts).
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "shoal-error.h"
#include "shoal-recipe-repo.h"

typedef struct
{
  gchar  *tmp;
  gchar  *upstream;   /* bare repository the work tree pushes to */
  gchar  *work;       /* where commits are made */
  gchar  *cache;      /* the ShoalRecipeRepo cache */
  gchar **env;
  GPid    daemon;
  guint16 port;
  guint   n_changed;
} Fixture;

static gchar *
git_run (Fixture     *fixture,
         const gchar *cwd,
         ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  g_autoptr(GError) error = NULL;
  gint status = 0;
  va_list args;
  const gchar *arg;

  g_ptr_array_add (argv, (gpointer) "git");
  va_start (args, cwd);
  while ((arg = va_arg (args, const gchar *)) != NULL)
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);

  g_spawn_sync (cwd, (gchar **) argv->pdata, fixture->env, G_SPAWN_SEARCH_PATH,
                NULL, NULL, &out, &err, &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("git %s failed: %s", (const gchar *) argv->pdata[1], err);
  return g_strstrip (g_steal_pointer (&out));
}

static void
write_file (Fixture     *fixture,
            const gchar *relpath,
            const gchar *contents)
{
  g_autofree gchar *path = g_build_filename (fixture->work, relpath, NULL);
  g_autofree gchar *dir = g_path_get_dirname (path);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

static void
write_recipe (Fixture     *fixture,
              const gchar *name,
              gint         priority)
{
  g_autofree gchar *relpath = g_strdup_printf ("recipes/%s.json", name);
  g_autofree gchar *text = g_strdup_printf ("{\n  \"name\": \"%s\",\n  \"priority\": %d,\n"
                                            "  \"steps\": [\"sim\"]\n}\n", name, priority);

  write_file (fixture, relpath, text);
}

/* Commits everything in the work tree, returns the commit id */
static gchar *
commit_all (Fixture     *fixture,
            const gchar *message)
{
  g_free (git_run (fixture, fixture->work, "add", "-A", NULL));
  g_free (git_run (fixture, fixture->work, "commit", "-q", "--allow-empty", "-m", message, NULL));
  return git_run (fixture, fixture->work, "rev-parse", "HEAD", NULL);
}

static void
push (Fixture     *fixture,
      const gchar *refspec)
{
  g_free (git_run (fixture, fixture->work, "push", "-q", "--force", "origin", refspec, NULL));
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->tmp = g_dir_make_tmp ("shoal-recipe-repo-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->upstream = g_build_filename (fixture->tmp, "upstream.git", NULL);
  fixture->work = g_build_filename (fixture->tmp, "work", NULL);
  fixture->cache = g_build_filename (fixture->tmp, "cache", NULL);

  /* git reads no configuration of the user running the tests */
  fixture->env = g_get_environ ();
  fixture->env = g_environ_setenv (fixture->env, "HOME", fixture->tmp, TRUE);
  fixture->env = g_environ_setenv (fixture->env, "GIT_CONFIG_NOSYSTEM", "1", TRUE);
  fixture->env = g_environ_setenv (fixture->env, "GIT_AUTHOR_NAME", "Shoal Test", TRUE);
  fixture->env = g_environ_setenv (fixture->env, "GIT_AUTHOR_EMAIL", "test@shoal.invalid", TRUE);
  fixture->env = g_environ_setenv (fixture->env, "GIT_COMMITTER_NAME", "Shoal Test", TRUE);
  fixture->env = g_environ_setenv (fixture->env, "GIT_COMMITTER_EMAIL", "test@shoal.invalid", TRUE);
  fixture->env = g_environ_setenv (fixture->env, "LC_ALL", "C", TRUE);

  g_free (git_run (fixture, fixture->tmp, "init", "-q", "--bare", "-b", "main", fixture->upstream, NULL));
  g_free (git_run (fixture, fixture->tmp, "init", "-q", "-b", "main", fixture->work, NULL));
  g_free (git_run (fixture, fixture->work, "remote", "add", "origin", fixture->upstream, NULL));
}

static void
stop_daemon (Fixture *fixture)
{
  if (fixture->daemon == 0)
    return;
  kill (fixture->daemon, SIGTERM);
  waitpid (fixture->daemon, NULL, 0);
  g_spawn_close_pid (fixture->daemon);
  fixture->daemon = 0;
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  const gchar *argv[] = { "rm", "-rf", fixture->tmp, NULL };

  stop_daemon (fixture);
  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  g_free (fixture->tmp);
  g_free (fixture->upstream);
  g_free (fixture->work);
  g_free (fixture->cache);
  g_strfreev (fixture->env);
}

static void
on_changed (ShoalRecipeRepo *repo,
            gpointer         user_data)
{
  Fixture *fixture = user_data;

  fixture->n_changed++;
}

static ShoalRecipeRepo *
make_repo (Fixture     *fixture,
           const gchar *url,
           const gchar *ref)
{
  ShoalRecipeRepo *repo = shoal_recipe_repo_new (url, ref, fixture->cache);

  g_signal_connect (repo, "changed", G_CALLBACK (on_changed), fixture);
  return repo;
}

static void
assert_serving (ShoalRecipeRepo *repo,
                const gchar     *commit,
                guint            n_recipes)
{
  GPtrArray *recipes = shoal_recipe_repo_get_recipes (repo);

  g_assert_cmpstr (shoal_recipe_repo_get_commit (repo), ==, commit);
  g_assert_cmpuint (recipes->len, ==, n_recipes);
  for (guint i = 0; i < recipes->len; i++)
    g_assert_cmpstr (shoal_recipe_get_commit (g_ptr_array_index (recipes, i)), ==, commit);
}

static gint
recipe_priority (ShoalRecipeRepo *repo,
                 const gchar     *name)
{
  GPtrArray *recipes = shoal_recipe_repo_get_recipes (repo);

  for (guint i = 0; i < recipes->len; i++)
    {
      if (g_strcmp0 (shoal_recipe_get_name (g_ptr_array_index (recipes, i)), name) == 0)
        return shoal_recipe_get_priority (g_ptr_array_index (recipes, i));
    }
  g_assert_not_reached ();
  return 0;
}

/* ---------------------------------------------------------------- */

static void
check_basic_sync (Fixture     *fixture,
                  const gchar *url)
{
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, url, "main");
  g_autoptr(GError) error = NULL;
  g_autofree gchar *c1 = NULL;

  write_recipe (fixture, "alpha", 1);
  write_recipe (fixture, "beta", 2);
  write_file (fixture, "recipes/README.md", "not a recipe\n");
  write_file (fixture, "recipes/old/ignored.json", "{ not even json");
  write_file (fixture, "README.md", "recipes live in recipes/\n");
  c1 = commit_all (fixture, "two recipes");
  push (fixture, "main");

  g_assert_null (shoal_recipe_repo_get_commit (repo));
  g_assert_cmpuint (shoal_recipe_repo_get_recipes (repo)->len, ==, 0);
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c1, 2);
  g_assert_null (shoal_recipe_repo_get_last_error (repo));
  g_assert_cmpuint (fixture->n_changed, ==, 1);
  g_assert_cmpstr (shoal_recipe_get_name (g_ptr_array_index (shoal_recipe_repo_get_recipes (repo), 0)), ==, "alpha");
  g_assert_cmpstr (shoal_recipe_get_source (g_ptr_array_index (shoal_recipe_repo_get_recipes (repo), 0)), ==,
                   "recipes/alpha.json");

  /* nothing new: success, no ::changed */
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (fixture->n_changed, ==, 1);
}

static void
test_local_path (Fixture       *fixture,
                 gconstpointer  data)
{
  check_basic_sync (fixture, fixture->upstream);
}

static void
test_file_url (Fixture       *fixture,
               gconstpointer  data)
{
  g_autofree gchar *url = g_strdup_printf ("file://%s", fixture->upstream);

  check_basic_sync (fixture, url);
}

static void
test_invalid_recipe (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, "main");
  g_autoptr(GError) error = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *c2 = NULL;
  g_autofree gchar *c3 = NULL;
  g_autofree gchar *expected = NULL;
  g_autofree gchar *broken = NULL;

  write_recipe (fixture, "alpha", 1);
  c1 = commit_all (fixture, "good");
  push (fixture, "main");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);

  /* one valid change and one invalid recipe: nothing of that commit is served */
  write_recipe (fixture, "alpha", 5);
  write_file (fixture, "recipes/broken.json",
              "{\"name\":\"broken\",\"steps\":[\"sim\",{\"step\":\"x\",\"max-parallel\":\"8\"}]}");
  c2 = commit_all (fixture, "broken");
  push (fixture, "main");
  g_assert_false (shoal_recipe_repo_sync (repo, NULL, &error));
  expected = g_strdup_printf ("recipes/broken.json@%.12s: $.steps[1].max-parallel: expected integer, got string", c2);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
  g_assert_cmpstr (error->message, ==, expected);
  g_assert_cmpstr (shoal_recipe_repo_get_last_error (repo), ==, expected);
  g_clear_error (&error);
  assert_serving (repo, c1, 1);
  g_assert_cmpint (recipe_priority (repo, "alpha"), ==, 1);
  g_assert_cmpuint (fixture->n_changed, ==, 1);

  /* the fix is served, the error cleared */
  broken = g_build_filename (fixture->work, "recipes", "broken.json", NULL);
  g_assert_cmpint (g_unlink (broken), ==, 0);
  c3 = commit_all (fixture, "fixed");
  push (fixture, "main");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c3, 1);
  g_assert_cmpint (recipe_priority (repo, "alpha"), ==, 5);
  g_assert_null (shoal_recipe_repo_get_last_error (repo));
  g_assert_cmpuint (fixture->n_changed, ==, 2);
}

/* The last good commit outlives the object (a restart): a new one on
 * the same cache serves it before any sync and keeps serving it when the
 * branch's head is invalid, where it served nothing */
static void
test_last_good_restart (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, "main");
  g_autoptr(ShoalRecipeRepo) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *c2 = NULL;
  g_autofree gchar *where = NULL;

  /* nothing synced into this cache yet */
  g_assert_false (shoal_recipe_repo_load_last_good (repo, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_clear_error (&error);

  write_recipe (fixture, "alpha", 1);
  write_recipe (fixture, "beta", 2);
  c1 = commit_all (fixture, "good");
  push (fixture, "main");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  g_clear_object (&repo);

  write_file (fixture, "recipes/alpha.json", "{\"name\": \"alpha\", \"steps\": ");
  c2 = commit_all (fixture, "broken");
  push (fixture, "main");

  fixture->n_changed = 0;
  again = make_repo (fixture, fixture->upstream, "main");
  g_assert_true (shoal_recipe_repo_load_last_good (again, &error));
  g_assert_no_error (error);
  assert_serving (again, c1, 2);
  g_assert_cmpuint (fixture->n_changed, ==, 1);
  g_assert_false (shoal_recipe_repo_sync (again, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
  where = g_strdup_printf ("recipes/alpha.json@%.12s", c2);
  g_assert_true (g_str_has_prefix (error->message, where));
  g_clear_error (&error);
  assert_serving (again, c1, 2);
}

static void
test_name_and_layout_errors (Fixture       *fixture,
                             gconstpointer  data)
{
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, "main");
  g_autoptr(GError) error = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *c2 = NULL;
  g_autofree gchar *expected = NULL;

  write_file (fixture, "README.md", "no recipes yet\n");
  c1 = commit_all (fixture, "empty");
  push (fixture, "main");
  g_assert_false (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
  expected = g_strdup_printf ("Commit %.12s has no recipes/ folder at the top of its tree", c1);
  g_assert_cmpstr (error->message, ==, expected);
  g_clear_error (&error);
  g_assert_null (shoal_recipe_repo_get_commit (repo));

  /* the name must be the file name; both problems are reported */
  write_file (fixture, "recipes/one.json", "{\"name\":\"two\",\"steps\":[\"sim\"]}");
  write_file (fixture, "recipes/three.json", "{\"name\":\"three\"}");
  c2 = commit_all (fixture, "misnamed");
  push (fixture, "main");
  g_assert_false (shoal_recipe_repo_sync (repo, NULL, &error));
  g_clear_pointer (&expected, g_free);
  expected = g_strdup_printf ("recipes/one.json@%.12s: $.name: must equal the file name “one”, got “two”\n"
                              "recipes/three.json@%.12s: $: missing required property “steps”", c2, c2);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
  g_assert_cmpstr (error->message, ==, expected);
  g_assert_cmpuint (fixture->n_changed, ==, 0);
}

static void
test_force_push (Fixture       *fixture,
                 gconstpointer  data)
{
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, "main");
  g_autoptr(GError) error = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *c2 = NULL;
  g_autofree gchar *c3 = NULL;

  write_recipe (fixture, "alpha", 1);
  c1 = commit_all (fixture, "one");
  write_recipe (fixture, "alpha", 2);
  c2 = commit_all (fixture, "two");
  push (fixture, "main");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c2, 1);

  /* rewrite history: c2 is dropped, c3 replaces it (not a fast-forward) */
  g_free (git_run (fixture, fixture->work, "reset", "-q", "--hard", c1, NULL));
  write_recipe (fixture, "alpha", 3);
  c3 = commit_all (fixture, "three, rewritten");
  push (fixture, "main");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c3, 1);
  g_assert_cmpint (recipe_priority (repo, "alpha"), ==, 3);
  g_assert_cmpuint (fixture->n_changed, ==, 2);
}

static void
test_deleted_ref (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, "staging");
  g_autoptr(GError) error = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *expected = NULL;

  write_recipe (fixture, "alpha", 1);
  c1 = commit_all (fixture, "one");
  push (fixture, "main");
  push (fixture, "main:staging");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c1, 1);

  push (fixture, ":staging");
  g_assert_false (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  expected = g_strdup_printf ("The ref “staging” does not exist in %s (deleted?)", fixture->upstream);
  g_assert_cmpstr (error->message, ==, expected);
  g_assert_cmpstr (shoal_recipe_repo_get_last_error (repo), ==, expected);
  assert_serving (repo, c1, 1);
}

static void
test_tags_and_rollback (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, "v2");
  g_autoptr(GError) error = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *c2 = NULL;
  g_autofree gchar *c3 = NULL;
  g_autofree gchar *short_c1 = NULL;

  write_recipe (fixture, "alpha", 1);
  c1 = commit_all (fixture, "one");
  g_free (git_run (fixture, fixture->work, "tag", "-a", "-m", "release 1", "v1", NULL));
  write_recipe (fixture, "alpha", 2);
  c2 = commit_all (fixture, "two");
  g_free (git_run (fixture, fixture->work, "tag", "v2", NULL));
  write_recipe (fixture, "alpha", 3);
  c3 = commit_all (fixture, "three");
  push (fixture, "main");
  g_free (git_run (fixture, fixture->work, "push", "-q", "origin", "--tags", NULL));

  /* a lightweight tag */
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c2, 1);

  /* pinning an older (annotated) tag rolls back */
  shoal_recipe_repo_set_ref (repo, "v1");
  g_assert_cmpstr (shoal_recipe_repo_get_ref (repo), ==, "v1");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c1, 1);
  g_assert_cmpint (recipe_priority (repo, "alpha"), ==, 1);

  /* the branch, then a commit id (full and abbreviated), then a full ref name */
  shoal_recipe_repo_set_ref (repo, "main");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c3, 1);
  shoal_recipe_repo_set_ref (repo, c2);
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c2, 1);
  short_c1 = g_strndup (c1, 10);
  shoal_recipe_repo_set_ref (repo, short_c1);
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c1, 1);
  shoal_recipe_repo_set_ref (repo, "refs/tags/v2");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c2, 1);
  g_assert_cmpuint (fixture->n_changed, ==, 6);

  /* a commit that is nowhere */
  shoal_recipe_repo_set_ref (repo, "0123456789abcdef0123456789abcdef01234567");
  g_assert_false (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  assert_serving (repo, c2, 1);
}

/* A pinned commit id must be on a branch or tag of the remote: the cache
 * keeps commits a force-push removed, which are refused as pins but still
 * read for a deployment that recorded one */
static void
test_pin_unreachable (Fixture       *fixture,
                      gconstpointer  data)
{
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, "main");
  g_autoptr(ShoalRecipe) recorded = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *c2 = NULL;
  g_autofree gchar *side = NULL;
  g_autofree gchar *short_c2 = NULL;
  g_autofree gchar *expected = NULL;
  g_autofree gchar *refs = NULL;
  g_autofree gchar *last_good = NULL;

  write_recipe (fixture, "alpha", 1);
  c1 = commit_all (fixture, "one");
  write_recipe (fixture, "alpha", 2);
  c2 = commit_all (fixture, "two");
  push (fixture, "main");
  push (fixture, "main:staging");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c2, 1);

  /* c2 leaves the remote: main goes back to c1, staging is deleted */
  g_free (git_run (fixture, fixture->work, "reset", "-q", "--hard", c1, NULL));
  push (fixture, "main");
  push (fixture, ":staging");
  g_free (git_run (fixture, fixture->upstream, "reflog", "expire", "--expire=now", "--all", NULL));
  g_free (git_run (fixture, fixture->upstream, "gc", "-q", "--prune=now", NULL));
  short_c2 = g_strndup (c2, 12);
  shoal_recipe_repo_set_ref (repo, short_c2);
  g_assert_false (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  expected = g_strdup_printf ("Commit %s is not reachable from any branch or tag of %s",
                              short_c2, fixture->upstream);
  g_assert_cmpstr (error->message, ==, expected);
  g_clear_error (&error);
  shoal_recipe_repo_set_ref (repo, c2);
  g_assert_false (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_clear_error (&error);
  assert_serving (repo, c2, 1);

  /* the cache no longer has the deleted branch, but still has c2: only
   * as the last good commit, which it still is */
  refs = git_run (fixture, fixture->tmp, "--git-dir", fixture->cache, "show-ref", NULL);
  g_test_message ("cache refs:\n%s", refs);
  g_assert_null (strstr (refs, "staging"));
  last_good = g_strdup_printf ("%s refs/shoal/last-good", c2);
  g_assert_nonnull (strstr (refs, last_good));
  g_assert_true (strstr (refs, c2) == strstr (refs, last_good));
  g_assert_null (strstr (strstr (refs, last_good) + 1, c2));
  recorded = shoal_recipe_repo_load_at (repo, "alpha", c2, &error);
  g_assert_no_error (error);
  g_assert_cmpint (shoal_recipe_get_priority (recorded), ==, 2);

  /* an ancestor of a branch, and a commit only a tag reaches */
  shoal_recipe_repo_set_ref (repo, c1);
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c1, 1);
  write_recipe (fixture, "alpha", 4);
  side = commit_all (fixture, "tagged, on no branch");
  g_free (git_run (fixture, fixture->work, "tag", "side", NULL));
  push (fixture, "refs/tags/side");
  shoal_recipe_repo_set_ref (repo, side);
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, side, 1);
  push (fixture, ":refs/tags/side");
  g_assert_false (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  assert_serving (repo, side, 1);
}

/* An abbreviated id several objects of the cache share is ambiguous, not
 * unreachable */
static void
test_pin_ambiguous (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, "main");
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *objects = NULL;
  g_autofree gchar *expected = NULL;
  g_auto(GStrv) ids = NULL;
  const gchar *shared = NULL;

  write_recipe (fixture, "alpha", 1);
  /* 1000 blobs: their 4-digit prefixes collide (and the ids are fixed) */
  for (guint i = 0; i < 1000; i++)
    {
      g_autofree gchar *path = g_strdup_printf ("data/%u.txt", i);
      g_autofree gchar *text = g_strdup_printf ("%u\n", i);

      write_file (fixture, path, text);
    }
  g_free (commit_all (fixture, "many objects"));
  push (fixture, "main");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);

  objects = git_run (fixture, fixture->tmp, "--git-dir", fixture->cache, "cat-file",
                     "--batch-all-objects", "--batch-check=%(objectname)", NULL);
  ids = g_strsplit (objects, "\n", -1);
  for (guint i = 0; ids[i] != NULL && shared == NULL; i++)
    {
      g_autofree gchar *prefix = g_strndup (ids[i], 4);

      if (g_hash_table_contains (seen, prefix))
        shared = g_hash_table_lookup (seen, prefix);
      else
        g_hash_table_insert (seen, g_steal_pointer (&prefix), ids[i]);
    }
  g_assert_nonnull (shared);
  expected = g_strdup_printf ("The abbreviated commit id %.4s is ambiguous in %s: give more of its digits",
                              shared, fixture->upstream);
  {
    g_autofree gchar *prefix = g_strndup (shared, 4);

    shoal_recipe_repo_set_ref (repo, prefix);
  }
  g_assert_false (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==, expected);
}

static void
test_diff_and_load_at (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, "main");
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalRecipe) old = NULL;
  g_autoptr(ShoalRecipe) missing = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *c2 = NULL;
  g_autofree gchar *diff = NULL;
  g_autofree gchar *none = NULL;
  g_autofree gchar *bad = NULL;

  write_recipe (fixture, "alpha", 1);
  write_recipe (fixture, "beta", 1);
  c1 = commit_all (fixture, "one");
  write_recipe (fixture, "alpha", 2);
  c2 = commit_all (fixture, "two");
  push (fixture, "main");

  /* before any sync there is no cache */
  diff = shoal_recipe_repo_diff (repo, "alpha", c1, c2, &error);
  g_assert_null (diff);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);

  diff = shoal_recipe_repo_diff (repo, "alpha", c1, c2, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (diff, "diff --git a/recipes/alpha.json b/recipes/alpha.json\n"));
  g_assert_nonnull (strstr (diff, "--- a/recipes/alpha.json\n+++ b/recipes/alpha.json\n@@ "));
  g_assert_nonnull (strstr (diff, "\n-  \"priority\": 1,\n+  \"priority\": 2,\n"));
  g_assert_nonnull (strstr (diff, "\n   \"name\": \"alpha\",\n"));
  g_assert_null (strstr (diff, "beta"));

  /* abbreviated ids work; an unchanged recipe gives an empty diff */
  none = shoal_recipe_repo_diff (repo, "beta", c1, c2, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (none, ==, "");
  g_free (none);
  none = shoal_recipe_repo_diff (repo, "alpha", c2, c2, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (none, ==, "");

  bad = shoal_recipe_repo_diff (repo, "../etc", c1, c2, &error);
  g_assert_null (bad);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  bad = shoal_recipe_repo_diff (repo, "alpha", "no-such-commit", c2, &error);
  g_assert_null (bad);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* the recipe as it was at c1 (abbreviated) */
  {
    g_autofree gchar *short_c1 = g_strndup (c1, 8);

    old = shoal_recipe_repo_load_at (repo, "alpha", short_c1, &error);
  }
  g_assert_no_error (error);
  g_assert_cmpint (shoal_recipe_get_priority (old), ==, 1);
  g_assert_cmpstr (shoal_recipe_get_commit (old), ==, c1);
  g_assert_cmpstr (shoal_recipe_get_source (old), ==, "recipes/alpha.json");

  missing = shoal_recipe_repo_load_at (repo, "gamma", c1, &error);
  g_assert_null (missing);
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
}

/* A diff takes the names a pin takes: a branch (it gave "revspec 'main'
 * not found": the cache keeps branches under refs/remotes/origin/), with a
 * suffix too, a tag, a full ref name; a branch wins over a tag of its name
 * as it does for a pin */
static void
test_diff_names (Fixture       *fixture,
                 gconstpointer  data)
{
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, "main");
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalRecipe) old = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *c2 = NULL;
  const gchar *pairs[][2] = { { "v1", "main" }, { "main~1", "main" }, { "release", "origin/main" },
                              { "refs/tags/v1", "refs/remotes/origin/main" }, { "both", "main" } };

  write_recipe (fixture, "alpha", 1);
  c1 = commit_all (fixture, "one");
  g_free (git_run (fixture, fixture->work, "tag", "v1", NULL));
  g_free (git_run (fixture, fixture->work, "branch", "release", NULL));
  g_free (git_run (fixture, fixture->work, "branch", "both", NULL));
  write_recipe (fixture, "alpha", 2);
  c2 = commit_all (fixture, "two");
  g_free (git_run (fixture, fixture->work, "tag", "both", NULL));
  push (fixture, "main");
  push (fixture, "release");
  push (fixture, "refs/heads/both");
  g_free (git_run (fixture, fixture->work, "push", "-q", "origin", "--tags", NULL));
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);

  for (gsize i = 0; i < G_N_ELEMENTS (pairs); i++)
    {
      g_autofree gchar *diff = shoal_recipe_repo_diff (repo, "alpha", pairs[i][0], pairs[i][1], &error);

      g_test_message ("%s..%s", pairs[i][0], pairs[i][1]);
      g_assert_no_error (error);
      g_assert_nonnull (strstr (diff, "\n-  \"priority\": 1,\n+  \"priority\": 2,\n"));
    }
  old = shoal_recipe_repo_load_at (repo, "alpha", "release", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (shoal_recipe_get_commit (old), ==, c1);
  g_assert_null (shoal_recipe_repo_diff (repo, "alpha", "no-such-branch", "main", &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
}

static void
test_unreachable (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autofree gchar *moved = g_build_filename (fixture->tmp, "moved.git", NULL);
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, "main");
  g_autoptr(ShoalRecipeRepo) never = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GInetSocketAddress) address = NULL;
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *closed_url = NULL;
  g_autofree gchar *never_cache = g_build_filename (fixture->tmp, "never-cache", NULL);

  write_recipe (fixture, "alpha", 1);
  c1 = commit_all (fixture, "one");
  push (fixture, "main");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);

  /* the repository disappears: the last good commit stays */
  g_assert_cmpint (g_rename (fixture->upstream, moved), ==, 0);
  g_assert_false (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED);
  g_assert_true (g_str_has_prefix (error->message, "Fetching recipes from "));
  g_assert_cmpstr (shoal_recipe_repo_get_last_error (repo), ==, error->message);
  g_clear_error (&error);
  assert_serving (repo, c1, 1);
  g_assert_cmpint (g_rename (moved, fixture->upstream), ==, 0);
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (shoal_recipe_repo_get_last_error (repo));

  /* git:// to a closed port on loopback: a port we bound and released */
  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  address = G_INET_SOCKET_ADDRESS (g_inet_socket_address_new_from_string ("127.0.0.1", 0));
  g_socket_bind (socket, G_SOCKET_ADDRESS (address), FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  closed_url = g_strdup_printf ("git://127.0.0.1:%u/upstream.git",
                                g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  never = shoal_recipe_repo_new (closed_url, "main", never_cache);
  g_assert_false (shoal_recipe_repo_sync (never, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED);
  g_assert_true (g_str_has_prefix (error->message, "Fetching recipes from git://127.0.0.1:"));
  g_assert_null (shoal_recipe_repo_get_commit (never));
  g_assert_cmpuint (shoal_recipe_repo_get_recipes (never)->len, ==, 0);
  g_assert_nonnull (shoal_recipe_repo_get_last_error (never));
}

/* ---------------------------------------------------------------- */
/* git:// through a git daemon on loopback                          */
/* ---------------------------------------------------------------- */

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static guint16
free_port (void)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  g_autoptr(GSocketAddress) bound = NULL;

  g_assert_true (g_socket_bind (socket, any, TRUE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static gboolean
port_open (guint16 port)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;

  connection = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, NULL);
  return connection != NULL;
}

/* Starts git daemon on 127.0.0.1 serving fixture->tmp; FALSE if it cannot run */
static gboolean
start_daemon (Fixture *fixture)
{
  g_autofree gchar *exec_path = git_run (fixture, fixture->tmp, "--exec-path", NULL);
  g_autofree gchar *daemon = g_build_filename (exec_path, "git-daemon", NULL);
  g_autofree gchar *base = g_strdup_printf ("--base-path=%s", fixture->tmp);
  g_autofree gchar *port_arg = NULL;
  g_autoptr(GError) error = NULL;

  if (!g_file_test (daemon, G_FILE_TEST_IS_EXECUTABLE))
    return FALSE;
  fixture->port = free_port ();
  port_arg = g_strdup_printf ("--port=%u", fixture->port);
  {
    const gchar *argv[] = { daemon, "--reuseaddr", "--export-all", "--listen=127.0.0.1",
                            port_arg, base, "--timeout=30", "--init-timeout=10",
                            fixture->tmp, NULL };

    if (!g_spawn_async (fixture->tmp, (gchar **) argv, fixture->env, G_SPAWN_DO_NOT_REAP_CHILD,
                        die_with_parent, NULL, &fixture->daemon, &error))
      return FALSE;
  }
  /* wait (bounded) until it listens */
  for (guint i = 0; i < 100; i++)
    {
      if (port_open (fixture->port))
        return TRUE;
      g_usleep (50 * 1000);
    }
  stop_daemon (fixture);
  return FALSE;
}

static void
test_git_daemon (Fixture       *fixture,
                 gconstpointer  data)
{
  g_autoptr(ShoalRecipeRepo) repo = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *url = NULL;
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *c2 = NULL;
  g_autofree gchar *c3 = NULL;

  write_recipe (fixture, "alpha", 1);
  c1 = commit_all (fixture, "one");
  write_recipe (fixture, "alpha", 2);
  c2 = commit_all (fixture, "two");
  push (fixture, "main");
  if (!start_daemon (fixture))
    {
      g_test_skip ("git daemon could not be started");
      return;
    }

  url = g_strdup_printf ("git://127.0.0.1:%u/upstream.git", fixture->port);
  repo = make_repo (fixture, url, "main");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c2, 1);

  /* force-push over git:// */
  g_free (git_run (fixture, fixture->work, "reset", "-q", "--hard", c1, NULL));
  write_recipe (fixture, "alpha", 3);
  c3 = commit_all (fixture, "three");
  push (fixture, "main");
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c3, 1);

  /* the daemon goes away: connection refused, the last good commit stays */
  stop_daemon (fixture);
  g_assert_false (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED);
  g_assert_true (g_str_has_prefix (error->message, "Fetching recipes from git://127.0.0.1:"));
  g_assert_cmpstr (shoal_recipe_repo_get_last_error (repo), ==, error->message);
  assert_serving (repo, c3, 1);
  g_assert_cmpuint (fixture->n_changed, ==, 2);
}

/* ---------------------------------------------------------------- */
/* sync_async                                                       */
/* ---------------------------------------------------------------- */

typedef struct
{
  Fixture   *fixture;
  GMainLoop *loop;
  gboolean   ok;
  GError    *error;
  guint      changed_before_callback;
  GThread   *changed_thread;
} AsyncData;

static void
on_changed_async (ShoalRecipeRepo *repo,
                  gpointer         user_data)
{
  AsyncData *data = user_data;

  data->changed_thread = g_thread_self ();
}

static void
sync_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  AsyncData *data = user_data;

  data->changed_before_callback = data->fixture->n_changed;
  data->ok = shoal_recipe_repo_sync_finish (SHOAL_RECIPE_REPO (source), result, &data->error);
  g_main_loop_quit (data->loop);
}

static void
run_async_sync (ShoalRecipeRepo *repo,
                AsyncData       *data)
{
  g_clear_error (&data->error);
  shoal_recipe_repo_sync_async (repo, NULL, sync_cb, data);
  g_main_loop_run (data->loop);
}

static void
test_sync_async (Fixture       *fixture,
                 gconstpointer  data_)
{
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, "main");
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  AsyncData data = { fixture, loop, FALSE, NULL, 0, NULL };
  g_autofree gchar *c1 = NULL;
  g_autofree gchar *c2 = NULL;

  g_signal_connect (repo, "changed", G_CALLBACK (on_changed_async), &data);
  write_recipe (fixture, "alpha", 1);
  c1 = commit_all (fixture, "one");
  push (fixture, "main");

  run_async_sync (repo, &data);
  g_assert_no_error (data.error);
  g_assert_true (data.ok);
  assert_serving (repo, c1, 1);
  g_assert_cmpuint (data.changed_before_callback, ==, 1);
  g_assert_true (data.changed_thread == g_thread_self ());

  write_file (fixture, "recipes/bad.json", "{\"name\":\"bad\",\"steps\":[]}");
  c2 = commit_all (fixture, "bad");
  push (fixture, "main");
  run_async_sync (repo, &data);
  g_assert_false (data.ok);
  g_assert_error (data.error, SHOAL_ERROR, SHOAL_ERROR_INVALID_RECIPE);
  g_assert_true (g_str_has_prefix (shoal_recipe_repo_get_last_error (repo), "recipes/bad.json@"));
  assert_serving (repo, c1, 1);
  g_assert_cmpuint (fixture->n_changed, ==, 1);
  g_clear_error (&data.error);
}

typedef struct
{
  GMainLoop *loop;
  guint      pending;
  guint      ok;
  guint      busy;
  guint      cancelled;
} MultiData;

static void
multi_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  MultiData *data = user_data;
  g_autoptr(GError) error = NULL;

  if (shoal_recipe_repo_sync_finish (SHOAL_RECIPE_REPO (source), result, &error))
    data->ok++;
  else if (g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_BUSY))
    data->busy++;
  else if (g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_CANCELLED))
    data->cancelled++;
  if (--data->pending == 0)
    g_main_loop_quit (data->loop);
}

static void
test_busy_and_cancel (Fixture       *fixture,
                      gconstpointer  data_)
{
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, "main");
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  MultiData data = { loop, 0, 0, 0, 0 };
  g_autofree gchar *c1 = NULL;

  write_recipe (fixture, "alpha", 1);
  c1 = commit_all (fixture, "one");
  push (fixture, "main");

  /* a second sync while one runs is refused, not queued */
  data.pending = 2;
  shoal_recipe_repo_sync_async (repo, NULL, multi_cb, &data);
  shoal_recipe_repo_sync_async (repo, NULL, multi_cb, &data);
  g_main_loop_run (loop);
  g_assert_cmpuint (data.ok, ==, 1);
  g_assert_cmpuint (data.busy, ==, 1);
  assert_serving (repo, c1, 1);

  /* a cancelled sync changes nothing and is not a sync error */
  g_cancellable_cancel (cancellable);
  data.pending = 1;
  shoal_recipe_repo_sync_async (repo, cancellable, multi_cb, &data);
  g_main_loop_run (loop);
  g_assert_cmpuint (data.cancelled, ==, 1);
  g_assert_null (shoal_recipe_repo_get_last_error (repo));
  assert_serving (repo, c1, 1);
  g_assert_cmpuint (fixture->n_changed, ==, 1);
}

static void
test_examples_as_repository (Fixture       *fixture,
                             gconstpointer  data)
{
  const gchar *names[] = { "sim-demo", "fleet-debian", "gpu-workstation" };
  g_autoptr(ShoalRecipeRepo) repo = make_repo (fixture, fixture->upstream, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree gchar *c1 = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree gchar *file = g_strdup_printf ("%s.json", names[i]);
      g_autofree gchar *src = g_test_build_filename (G_TEST_DIST, "..", "data", "recipes", file, NULL);
      g_autofree gchar *text = NULL;
      g_autofree gchar *dest = g_strdup_printf ("recipes/%s", file);

      g_file_get_contents (src, &text, NULL, &error);
      g_assert_no_error (error);
      write_file (fixture, dest, text);
    }
  c1 = commit_all (fixture, "examples");
  push (fixture, "main");

  /* no ref: the remote's HEAD */
  g_assert_true (shoal_recipe_repo_sync (repo, NULL, &error));
  g_assert_no_error (error);
  assert_serving (repo, c1, 3);
}

int
main (int    argc,
      char **argv)
{
  g_autofree gchar *git = g_find_program_in_path ("git");

  g_test_init (&argc, &argv, NULL);

  if (git == NULL)
    {
      g_test_message ("git is not installed");
      return 77;
    }

#define ADD(path, func) \
  g_test_add ("/shoal/recipe-repo/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("local-path", test_local_path);
  ADD ("file-url", test_file_url);
  ADD ("invalid-recipe", test_invalid_recipe);
  ADD ("last-good-restart", test_last_good_restart);
  ADD ("name-and-layout-errors", test_name_and_layout_errors);
  ADD ("force-push", test_force_push);
  ADD ("deleted-ref", test_deleted_ref);
  ADD ("tags-and-rollback", test_tags_and_rollback);
  ADD ("diff-and-load-at", test_diff_and_load_at);
  ADD ("diff-names", test_diff_names);
  ADD ("unreachable", test_unreachable);
  ADD ("pin-unreachable", test_pin_unreachable);
  ADD ("pin-ambiguous", test_pin_ambiguous);
  ADD ("git-daemon", test_git_daemon);
  ADD ("sync-async", test_sync_async);
  ADD ("busy-and-cancel", test_busy_and_cancel);
  ADD ("examples-as-repository", test_examples_as_repository);
#undef ADD

  return g_test_run ();
}
