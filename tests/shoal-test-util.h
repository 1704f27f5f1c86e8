/* shoal-test-util.h: helpers shared by the core tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <shoal.h>

G_BEGIN_DECLS

ShoalPluginEngine *shoal_test_engine_new       (gboolean       with_fixtures);
ShoalRecipe       *shoal_test_recipe_new       (const gchar  *json);
gboolean           shoal_test_wait_until       (gboolean    (*done) (gpointer),
                                                gpointer       data,
                                                guint          timeout_ms);
gchar             *shoal_test_mkdtemp          (void);
void               shoal_test_rm_rf            (const gchar  *path);

G_END_DECLS
