/* shoal-pipeline.h: the ordered steps of one recipe and its rendezvous
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-device.h"
#include "shoal-plugin-engine.h"
#include "shoal-recipe.h"
#include "shoal-step.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_PIPELINE (shoal_pipeline_get_type ())

G_DECLARE_FINAL_TYPE (ShoalPipeline, shoal_pipeline, SHOAL, PIPELINE, GObject)

ShoalPipeline *shoal_pipeline_new                 (ShoalRecipe       *recipe,
                                                   ShoalPluginEngine *engine,
                                                   GError           **error);
ShoalRecipe   *shoal_pipeline_get_recipe          (ShoalPipeline     *self);
guint          shoal_pipeline_get_n_steps         (ShoalPipeline     *self);
ShoalStep     *shoal_pipeline_get_step            (ShoalPipeline     *self,
                                                   guint              index);
const gchar   *shoal_pipeline_get_step_id         (ShoalPipeline     *self,
                                                   guint              index);
const gchar   *shoal_pipeline_get_step_name       (ShoalPipeline     *self,
                                                   guint              index);
JsonObject    *shoal_pipeline_get_step_options    (ShoalPipeline     *self,
                                                   guint              index);
gint           shoal_pipeline_get_step_max_parallel (ShoalPipeline   *self,
                                                   guint              index);
gint           shoal_pipeline_get_step_timeout    (ShoalPipeline     *self,
                                                   guint              index);
ShoalStepPhase shoal_pipeline_get_step_phase      (ShoalPipeline     *self,
                                                   guint              index);
gint           shoal_pipeline_find_step           (ShoalPipeline     *self,
                                                   const gchar       *step_id);
gint           shoal_pipeline_get_first_group_step (ShoalPipeline    *self);
void           shoal_pipeline_set_expected        (ShoalPipeline     *self,
                                                   guint              n_devices);
void           shoal_pipeline_rendezvous_join     (ShoalPipeline     *self,
                                                   guint              index,
                                                   ShoalDevice       *device);
gboolean       shoal_pipeline_rendezvous_leave    (ShoalPipeline     *self,
                                                   guint              index,
                                                   ShoalDevice       *device);
guint          shoal_pipeline_rendezvous_get_waiting (ShoalPipeline  *self,
                                                   guint              index);
void           shoal_pipeline_set_group_serial    (ShoalPipeline     *self,
                                                   guint64           *serial);
void           shoal_pipeline_hold_rendezvous     (ShoalPipeline     *self);
void           shoal_pipeline_release_rendezvous  (ShoalPipeline     *self);
void           shoal_pipeline_rendezvous_flush    (ShoalPipeline     *self,
                                                   guint              index);

G_END_DECLS
