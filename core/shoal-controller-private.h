/* shoal-controller-private.h: controller API for the context, the agent API and tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "shoal-controller.h"
#include "shoal-device-private.h"
#include "shoal-store-private.h"

G_BEGIN_DECLS

ShoalDevice    *shoal_controller_device_seen      (ShoalController *self,
                                                   const gchar     *mac,
                                                   const gchar     *uuid,
                                                   const gchar     *source,
                                                   GError         **error);
ShoalBootAction shoal_controller_get_boot_action  (ShoalController *self,
                                                   ShoalDevice     *device);
const gchar    *shoal_controller_get_server_url   (ShoalController *self);
const gchar    *shoal_controller_get_state_dir    (ShoalController *self);
const gchar    *shoal_controller_get_data_dir     (ShoalController *self);
GKeyFile       *shoal_controller_get_config       (ShoalController *self);
SoupServer     *shoal_controller_get_http_server  (ShoalController *self);
ShoalStore     *shoal_controller_get_store        (ShoalController *self);
gboolean        shoal_controller_convert_store    (ShoalController *self,
                                                   gboolean        *converted,
                                                   GError         **error);
gchar          *shoal_controller_kv_get           (ShoalController *self,
                                                   const gchar     *ns,
                                                   const gchar     *key);
void            shoal_controller_kv_set           (ShoalController *self,
                                                   const gchar     *ns,
                                                   const gchar     *key,
                                                   const gchar     *value);
GHashTable     *shoal_controller_kv_list          (ShoalController *self,
                                                   const gchar     *ns);
ShoalDevice    *shoal_controller_lookup_device_by_uuid (ShoalController *self,
                                                   const gchar     *uuid);
ShoalRecipe    *shoal_controller_get_run_recipe   (ShoalController *self,
                                                   ShoalDevice     *device);
gboolean        shoal_controller_uuid_is_placeholder (const gchar  *uuid);
gboolean        shoal_controller_uuid_is_valid    (const gchar     *uuid);

/**
 * ShoalControllerRecipeLoader:
 * @name: a recipe name
 * @commit: the commit a deployment recorded
 * @user_data: the loader's data
 * @error: return location for a #GError
 *
 * Loads recipe @name as it was at @commit (the daemon reads its recipe
 * repository's local clone).
 *
 * Returns: (transfer full) (nullable): the recipe, its commit set
 */
typedef ShoalRecipe *(*ShoalControllerRecipeLoader) (const gchar  *name,
                                                     const gchar  *commit,
                                                     gpointer      user_data,
                                                     GError      **error);
void            shoal_controller_set_recipe_loader (ShoalController            *self,
                                                    ShoalControllerRecipeLoader loader,
                                                    gpointer                    user_data,
                                                    GDestroyNotify              notify);
void            shoal_controller_token_claimed    (ShoalController *self,
                                                   ShoalDevice     *device);
gchar          *shoal_controller_issue_boot_token (ShoalController *self,
                                                   ShoalDevice     *device);
ShoalDevice    *shoal_controller_lookup_device_by_superseded_token (ShoalController *self,
                                                                    const gchar     *token);
void            shoal_controller_superseded_agent_told (ShoalController *self,
                                                        ShoalDevice     *device);

/* shoal-context.c */
ShoalContext   *shoal_context_new                 (ShoalController *controller);
void            shoal_context_emit_device_removed (ShoalContext    *self,
                                                   ShoalDevice     *device);

/* shoal-agent-api.c */
void            shoal_agent_api_register          (ShoalController *controller,
                                                   SoupServer      *server);

G_END_DECLS
