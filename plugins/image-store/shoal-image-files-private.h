/* shoal-image-files-private.h: helpers shared by the files of the store
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-image-files.h"

G_BEGIN_DECLS

int      shoal_image_files_lock       (const gchar  *root,
                                       int           operation,
                                       GError      **error);
gboolean shoal_image_files_write_all  (int           fd,
                                       const guint8 *data,
                                       gsize         len);
GPtrArray *shoal_image_files_list_strict (const gchar *root,
                                       GError      **error);
gboolean shoal_image_files_is_id_prefix (const gchar *str);

/* shoal-image-gc.c: under the store lock, taken exclusively */
int      shoal_image_files_lock_manifest (const gchar *root,
                                       const gchar  *id,
                                       int           operation);
gboolean shoal_image_files_unlink_locked (const gchar *root,
                                       const gchar  *id,
                                       GError      **error);
gboolean shoal_image_files_gc_locked  (const gchar  *root,
                                       guint64      *freed,
                                       GError      **error);
gboolean shoal_image_files_collect_chunks (const gchar *root,
                                       GPtrArray    *ids,
                                       GHashTable   *used,
                                       GError      **error);

gboolean shoal_image_files_read_exact (const gchar  *path,
                                       guint8       *buffer,
                                       gsize         length,
                                       gsize        *got,
                                       GError      **error);

gchar   *shoal_image_fetch_name       (const gchar  *uri);
gchar   *shoal_image_fetch_display    (const gchar  *uri);
gchar   *shoal_image_fetch            (const gchar              *root,
                                       const gchar              *uri,
                                       ShoalImportProgressFunc   progress,
                                       gpointer                  progress_data,
                                       GCancellable             *cancellable,
                                       GError                  **error);

G_END_DECLS
