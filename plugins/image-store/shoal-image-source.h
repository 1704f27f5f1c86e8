/* shoal-image-source.h: the disk an image file holds, read in order
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _ShoalImageSource ShoalImageSource;

ShoalImageSource *shoal_image_source_open       (const gchar       *path,
                                                 GError           **error);
ShoalImageSource *shoal_image_source_open_fd    (int                fd,
                                                 const gchar       *path,
                                                 GError           **error);
gssize            shoal_image_source_fill       (ShoalImageSource  *s,
                                                 guint8            *buf,
                                                 gsize              len,
                                                 GError           **error);
guint64           shoal_image_source_position   (ShoalImageSource  *s,
                                                 guint64           *total);
guint64           shoal_image_source_bytes_read (ShoalImageSource  *s);
const gchar      *shoal_image_source_format     (ShoalImageSource  *s);
const gchar      *shoal_image_source_get_path   (ShoalImageSource  *s);
guint64           shoal_image_source_disk_size  (ShoalImageSource  *s);
void              shoal_image_source_free       (ShoalImageSource  *s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalImageSource, shoal_image_source_free)

G_END_DECLS
