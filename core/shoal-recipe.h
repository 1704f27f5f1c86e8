/* shoal-recipe.h: a versioned deployment recipe
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "shoal-device.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_RECIPE (shoal_recipe_get_type ())

G_DECLARE_FINAL_TYPE (ShoalRecipe, shoal_recipe, SHOAL, RECIPE, GObject)

ShoalRecipe *shoal_recipe_new_from_data      (const gchar  *data,
                                              gssize        length,
                                              const gchar  *source,
                                              GError      **error);
ShoalRecipe *shoal_recipe_new_from_file      (const gchar  *path,
                                              GError      **error);
ShoalRecipe *shoal_recipe_new_from_json      (JsonNode     *root,
                                              const gchar  *source,
                                              GError      **error);
const gchar *shoal_recipe_get_name           (ShoalRecipe  *self);
const gchar *shoal_recipe_get_description    (ShoalRecipe  *self);
const gchar *shoal_recipe_get_source         (ShoalRecipe  *self);
const gchar *shoal_recipe_get_commit         (ShoalRecipe  *self);
const gchar *shoal_recipe_get_digest         (ShoalRecipe  *self);
void         shoal_recipe_set_commit         (ShoalRecipe  *self,
                                              const gchar  *commit);
JsonNode    *shoal_recipe_get_json           (ShoalRecipe  *self);
gchar       *shoal_recipe_to_data            (ShoalRecipe  *self);
guint        shoal_recipe_get_n_steps        (ShoalRecipe  *self);
const gchar *shoal_recipe_get_step_name      (ShoalRecipe  *self,
                                              guint         index);
const gchar *shoal_recipe_get_step_id        (ShoalRecipe  *self,
                                              guint         index);
JsonObject  *shoal_recipe_get_step_options   (ShoalRecipe  *self,
                                              guint         index);
gint         shoal_recipe_get_step_max_parallel (ShoalRecipe *self,
                                              guint         index);
gint         shoal_recipe_get_step_timeout   (ShoalRecipe  *self,
                                              guint         index);
JsonObject  *shoal_recipe_get_image          (ShoalRecipe  *self);
const gchar *shoal_recipe_get_image_name     (ShoalRecipe  *self);
JsonObject  *shoal_recipe_get_match          (ShoalRecipe  *self);
JsonObject  *shoal_recipe_get_drivers        (ShoalRecipe  *self);
JsonObject  *shoal_recipe_get_boot           (ShoalRecipe  *self);
gint         shoal_recipe_get_priority       (ShoalRecipe  *self);
gboolean     shoal_recipe_get_is_default     (ShoalRecipe  *self);
guint        shoal_recipe_get_group_min      (ShoalRecipe  *self);
guint        shoal_recipe_get_group_max      (ShoalRecipe  *self);
guint        shoal_recipe_get_group_max_wait (ShoalRecipe  *self);
gboolean     shoal_recipe_get_group_wait_all (ShoalRecipe  *self);
gboolean     shoal_recipe_get_late_fallback  (ShoalRecipe  *self);
gboolean     shoal_recipe_matches            (ShoalRecipe  *self,
                                              ShoalDevice  *device);
ShoalRecipe *shoal_recipe_select             (GPtrArray    *recipes,
                                              ShoalDevice  *device);

G_END_DECLS
