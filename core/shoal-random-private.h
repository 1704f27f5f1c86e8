/* shoal-random-private.h: secrets from the kernel's generator, for
 * libshoal, shoald and the plugins
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean  shoal_random_bytes (guint8   *buffer,
                              gsize     length,
                              GError  **error);
gchar    *shoal_random_hex   (gsize     n_bytes,
                              GError  **error);

G_END_DECLS
