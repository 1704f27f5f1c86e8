/* shoal-pxe-path.h: open a file confined to a root directory
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean shoal_pxe_path_is_safe     (const gchar  *path,
                                     GError      **error);
gint     shoal_pxe_path_open_beneath (gint          root_fd,
                                     const gchar  *path,
                                     GError      **error);

G_END_DECLS
