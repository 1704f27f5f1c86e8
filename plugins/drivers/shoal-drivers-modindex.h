/* shoal-drivers-modindex.h: a kernel's modules.alias, modules.dep,
 * modules.softdep and modules.builtin, for matching modaliases and
 * ordering module loads
 *
 * A plain struct, not a GObject: the agent generator (plugins/agent)
 * compiles this file into its own module too, and GType names are
 * process-global.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _ShoalModIndex ShoalModIndex;

ShoalModIndex *shoal_mod_index_new            (const gchar         *release_dir,
                                               GError             **error);
void           shoal_mod_index_free           (ShoalModIndex       *self);
const gchar   *shoal_mod_index_get_dir        (ShoalModIndex       *self);
const gchar   *shoal_mod_index_get_release    (ShoalModIndex       *self);
guint          shoal_mod_index_get_n_aliases  (ShoalModIndex       *self);
GPtrArray     *shoal_mod_index_match          (ShoalModIndex       *self,
                                               const gchar         *modalias);
gboolean       shoal_mod_index_has_module     (ShoalModIndex       *self,
                                               const gchar         *name);
gboolean       shoal_mod_index_is_builtin     (ShoalModIndex       *self,
                                               const gchar         *name);
const gchar   *shoal_mod_index_get_path       (ShoalModIndex       *self,
                                               const gchar         *name);
GPtrArray     *shoal_mod_index_resolve        (ShoalModIndex       *self,
                                               GPtrArray           *names,
                                               GError             **error);
GPtrArray     *shoal_mod_index_resolve_deps   (ShoalModIndex       *self,
                                               GPtrArray           *names,
                                               GError             **error);
gchar         *shoal_mod_index_normalize_name (const gchar         *name);
gchar         *shoal_mod_index_normalize_pattern (const gchar       *pattern);
gchar         *shoal_mod_index_find_release_dir (const gchar       *kernel,
                                               const gchar * const *roots,
                                               GError             **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalModIndex, shoal_mod_index_free)

G_END_DECLS
