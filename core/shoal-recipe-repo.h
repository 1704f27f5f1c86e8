/* shoal-recipe-repo.h: recipes pulled from a git repository
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-recipe.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_RECIPE_REPO (shoal_recipe_repo_get_type ())

G_DECLARE_FINAL_TYPE (ShoalRecipeRepo, shoal_recipe_repo, SHOAL, RECIPE_REPO, GObject)

ShoalRecipeRepo *shoal_recipe_repo_new          (const gchar         *url,
                                                 const gchar         *ref,
                                                 const gchar         *cache_dir);
const gchar     *shoal_recipe_repo_get_url      (ShoalRecipeRepo     *self);
const gchar     *shoal_recipe_repo_get_ref      (ShoalRecipeRepo     *self);
void             shoal_recipe_repo_set_ref      (ShoalRecipeRepo     *self,
                                                 const gchar         *ref);
void             shoal_recipe_repo_sync_async   (ShoalRecipeRepo     *self,
                                                 GCancellable        *cancellable,
                                                 GAsyncReadyCallback  callback,
                                                 gpointer             user_data);
gboolean         shoal_recipe_repo_sync_finish  (ShoalRecipeRepo     *self,
                                                 GAsyncResult        *result,
                                                 GError             **error);
gboolean         shoal_recipe_repo_sync         (ShoalRecipeRepo     *self,
                                                 GCancellable        *cancellable,
                                                 GError             **error);
gboolean         shoal_recipe_repo_load_last_good (ShoalRecipeRepo   *self,
                                                 GError             **error);
const gchar     *shoal_recipe_repo_get_commit   (ShoalRecipeRepo     *self);
const gchar     *shoal_recipe_repo_get_last_error (ShoalRecipeRepo   *self);
GPtrArray       *shoal_recipe_repo_get_recipes  (ShoalRecipeRepo     *self);
gchar           *shoal_recipe_repo_diff         (ShoalRecipeRepo     *self,
                                                 const gchar         *recipe,
                                                 const gchar         *from_commit,
                                                 const gchar         *to_commit,
                                                 GError             **error);
ShoalRecipe     *shoal_recipe_repo_load_at      (ShoalRecipeRepo     *self,
                                                 const gchar         *recipe,
                                                 const gchar         *commit,
                                                 GError             **error);

G_END_DECLS
