/* shoal-daemon-recipes.h: where shoald's recipes come from
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-controller.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_DAEMON_RECIPES (shoal_daemon_recipes_get_type ())

G_DECLARE_FINAL_TYPE (ShoalDaemonRecipes, shoal_daemon_recipes, SHOAL, DAEMON_RECIPES, GObject)

ShoalDaemonRecipes *shoal_daemon_recipes_new           (ShoalController     *controller,
                                                        GKeyFile            *config,
                                                        const gchar         *state_dir);
guint               shoal_daemon_recipes_load_dir      (ShoalDaemonRecipes  *self,
                                                        GError             **error);
gboolean            shoal_daemon_recipes_has_repo      (ShoalDaemonRecipes  *self);
void                shoal_daemon_recipes_load_last_good (ShoalDaemonRecipes *self);
void                shoal_daemon_recipes_start_timer   (ShoalDaemonRecipes  *self);
void                shoal_daemon_recipes_sync_async    (ShoalDaemonRecipes  *self,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
void                shoal_daemon_recipes_start_sync_async (ShoalDaemonRecipes *self,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
gboolean            shoal_daemon_recipes_sync_finish   (ShoalDaemonRecipes  *self,
                                                        GAsyncResult        *result,
                                                        GError             **error);
void                shoal_daemon_recipes_set_ref_async (ShoalDaemonRecipes  *self,
                                                        const gchar         *ref,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
gboolean            shoal_daemon_recipes_set_ref_finish (ShoalDaemonRecipes *self,
                                                        GAsyncResult        *result,
                                                        GError             **error);
void                shoal_daemon_recipes_diff_async    (ShoalDaemonRecipes  *self,
                                                        const gchar         *name,
                                                        const gchar         *from_commit,
                                                        const gchar         *to_commit,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
gchar              *shoal_daemon_recipes_diff_finish   (ShoalDaemonRecipes  *self,
                                                        GAsyncResult        *result,
                                                        GError             **error);

G_END_DECLS
