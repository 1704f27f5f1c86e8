/* shoal-step-context.h: what a step is handed when it runs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "shoal-context.h"
#include "shoal-device.h"
#include "shoal-recipe.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_STEP_CONTEXT (shoal_step_context_get_type ())

G_DECLARE_FINAL_TYPE (ShoalStepContext, shoal_step_context, SHOAL, STEP_CONTEXT, GObject)

ShoalStepContext *shoal_step_context_new           (ShoalContext       *context,
                                                    ShoalRecipe        *recipe,
                                                    const gchar        *step_id,
                                                    JsonObject         *options,
                                                    GPtrArray          *devices,
                                                    const gchar        *group_id);
ShoalContext     *shoal_step_context_get_context   (ShoalStepContext   *self);
ShoalRecipe      *shoal_step_context_get_recipe    (ShoalStepContext   *self);
const gchar      *shoal_step_context_get_step_id   (ShoalStepContext   *self);
JsonObject       *shoal_step_context_get_options   (ShoalStepContext   *self);
ShoalDevice      *shoal_step_context_get_device    (ShoalStepContext   *self);
GPtrArray        *shoal_step_context_get_devices   (ShoalStepContext   *self);
const gchar      *shoal_step_context_get_group_id  (ShoalStepContext   *self);
gint64            shoal_step_context_get_option_int    (ShoalStepContext *self,
                                                        const gchar      *name,
                                                        gint64            default_value);
gdouble           shoal_step_context_get_option_double (ShoalStepContext *self,
                                                        const gchar      *name,
                                                        gdouble           default_value);
const gchar      *shoal_step_context_get_option_string (ShoalStepContext *self,
                                                        const gchar      *name,
                                                        const gchar      *default_value);
gboolean          shoal_step_context_get_option_bool   (ShoalStepContext *self,
                                                        const gchar      *name,
                                                        gboolean          default_value);
void              shoal_step_context_log           (ShoalStepContext   *self,
                                                    ShoalDevice        *device,
                                                    const gchar        *operation,
                                                    ShoalJournalResult  result,
                                                    const gchar        *format,
                                                    ...) G_GNUC_PRINTF (5, 6);
void              shoal_step_context_log_literal   (ShoalStepContext   *self,
                                                    ShoalDevice        *device,
                                                    const gchar        *operation,
                                                    ShoalJournalResult  result,
                                                    const gchar        *message);
void              shoal_step_context_set_progress  (ShoalStepContext   *self,
                                                    ShoalDevice        *device,
                                                    gdouble             fraction);
void              shoal_step_context_drop_device   (ShoalStepContext   *self,
                                                    ShoalDevice        *device,
                                                    const GError       *error);
gboolean          shoal_step_context_is_dropped    (ShoalStepContext   *self,
                                                    ShoalDevice        *device,
                                                    const GError      **error);
GError           *shoal_step_context_get_drop_reason (ShoalStepContext *self,
                                                      ShoalDevice      *device);

G_END_DECLS
