/* shoal-controller.h: the record of every device and the driver of their pipelines
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-context.h"
#include "shoal-device.h"
#include "shoal-pipeline.h"
#include "shoal-plugin-engine.h"
#include "shoal-recipe.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_CONTROLLER (shoal_controller_get_type ())

G_DECLARE_FINAL_TYPE (ShoalController, shoal_controller, SHOAL, CONTROLLER, GObject)

ShoalController *shoal_controller_new            (ShoalPluginEngine   *engine,
                                                  const gchar         *state_dir);
gboolean         shoal_controller_open           (ShoalController     *self,
                                                  GError             **error);
void             shoal_controller_close          (ShoalController     *self);
ShoalContext    *shoal_controller_get_context    (ShoalController     *self);
ShoalPluginEngine *shoal_controller_get_engine   (ShoalController     *self);
void             shoal_controller_set_http_server (ShoalController    *self,
                                                  SoupServer          *server,
                                                  const gchar         *base_url);
void             shoal_controller_set_config     (ShoalController     *self,
                                                  GKeyFile            *config);
void             shoal_controller_set_data_dir   (ShoalController     *self,
                                                  const gchar         *data_dir);
gboolean         shoal_controller_start_services (ShoalController     *self,
                                                  GError             **error);
gboolean         shoal_controller_add_recipe     (ShoalController     *self,
                                                  ShoalRecipe         *recipe,
                                                  GError             **error);
gboolean         shoal_controller_add_stored_recipe (ShoalController  *self,
                                                  ShoalRecipe         *recipe,
                                                  GError             **error);
guint            shoal_controller_load_stored_recipes (ShoalController *self);
gboolean         shoal_controller_is_stored_recipe (ShoalController *self,
                                                    const gchar     *name);
gboolean         shoal_controller_remove_recipe  (ShoalController     *self,
                                                  const gchar         *name,
                                                  GError             **error);
ShoalRecipe     *shoal_controller_lookup_recipe  (ShoalController     *self,
                                                  const gchar         *name);
GPtrArray       *shoal_controller_get_recipes    (ShoalController     *self);
ShoalPipeline   *shoal_controller_lookup_pipeline (ShoalController    *self,
                                                  const gchar         *recipe);
ShoalDevice     *shoal_controller_enroll_device  (ShoalController     *self,
                                                  const gchar         *id,
                                                  const gchar * const *macs,
                                                  const gchar         *uuid,
                                                  GError             **error);
gboolean         shoal_controller_remove_mac     (ShoalController     *self,
                                                  ShoalDevice         *device,
                                                  const gchar         *mac,
                                                  const gchar         *source,
                                                  const gchar         *requester,
                                                  GError             **error);
gboolean         shoal_controller_remove_device  (ShoalController     *self,
                                                  const gchar         *id,
                                                  GError             **error);
ShoalDevice     *shoal_controller_lookup_device  (ShoalController     *self,
                                                  const gchar         *id);
ShoalDevice     *shoal_controller_lookup_device_by_mac (ShoalController *self,
                                                  const gchar         *mac);
ShoalDevice     *shoal_controller_lookup_device_by_token (ShoalController *self,
                                                  const gchar         *token);
GPtrArray       *shoal_controller_get_devices    (ShoalController     *self);
gboolean         shoal_controller_assign_recipe  (ShoalController     *self,
                                                  ShoalDevice         *device,
                                                  const gchar         *recipe,
                                                  GError             **error);
gboolean         shoal_controller_deploy         (ShoalController     *self,
                                                  ShoalDevice         *device,
                                                  GError             **error);
gboolean         shoal_controller_cancel         (ShoalController     *self,
                                                  ShoalDevice         *device,
                                                  GError             **error);
gboolean         shoal_controller_set_boot_action (ShoalController    *self,
                                                  ShoalDevice         *device,
                                                  ShoalBootAction      action,
                                                  const gchar         *source,
                                                  const gchar         *requester,
                                                  GError             **error);
GPtrArray       *shoal_controller_get_journal    (ShoalController     *self,
                                                  ShoalDevice         *device,
                                                  guint64              since_seq,
                                                  GError             **error);
guint64          shoal_controller_get_transitions (ShoalController    *self);
guint64          shoal_controller_get_discover_refused (ShoalController *self);
void             shoal_controller_commit_async   (ShoalController     *self,
                                                  GCancellable        *cancellable,
                                                  GAsyncReadyCallback  callback,
                                                  gpointer             user_data);
gboolean         shoal_controller_commit_finish  (ShoalController     *self,
                                                  GAsyncResult        *result,
                                                  GError             **error);

G_END_DECLS
