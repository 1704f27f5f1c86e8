/* shoal-json-private.h: JSON helpers shared inside libshoal
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean shoal_json_check_depth (const gchar *data,
                                 gsize        length,
                                 guint        max_depth);

G_END_DECLS
