/* shoal-plugin-engine.h: finds and loads step and service plugins
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-step.h"
#include "shoal-service.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_PLUGIN_ENGINE (shoal_plugin_engine_get_type ())

G_DECLARE_FINAL_TYPE (ShoalPluginEngine, shoal_plugin_engine, SHOAL, PLUGIN_ENGINE, GObject)

/**
 * ShoalPluginInfo:
 * @module: the plugin's Module= name
 * @name: its human-readable name
 * @description: what it does
 * @steps: (array zero-terminated=1): the steps it provides
 * @loaded: whether it loaded
 * @error: (nullable): why it did not load
 *
 * What the engine knows of one plugin.
 */
typedef struct {
  gchar    *module;
  gchar    *name;
  gchar    *description;
  gchar   **steps;
  gboolean  loaded;
  gchar    *error;
} ShoalPluginInfo;

ShoalPluginEngine *shoal_plugin_engine_new               (void);
void               shoal_plugin_engine_add_search_path   (ShoalPluginEngine  *self,
                                                          const gchar        *path);
void               shoal_plugin_engine_load_all          (ShoalPluginEngine  *self);
ShoalStep         *shoal_plugin_engine_lookup_step       (ShoalPluginEngine  *self,
                                                          const gchar        *name,
                                                          GError            **error);
gchar            **shoal_plugin_engine_list_steps        (ShoalPluginEngine  *self);
GPtrArray         *shoal_plugin_engine_list_plugins      (ShoalPluginEngine  *self);
GPtrArray         *shoal_plugin_engine_get_services      (ShoalPluginEngine  *self);
const gchar       *shoal_plugin_engine_get_step_module   (ShoalPluginEngine  *self,
                                                          const gchar        *name);

void               shoal_plugin_info_free                (ShoalPluginInfo    *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalPluginInfo, shoal_plugin_info_free)

G_END_DECLS
