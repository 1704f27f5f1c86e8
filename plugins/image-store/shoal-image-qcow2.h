/* shoal-image-qcow2.h: reading the virtual disk of a qcow2 image
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* the first bytes of a qcow2 file: "QFI\xfb" */
#define SHOAL_QCOW2_MAGIC_LEN 4

typedef struct _ShoalQcow2 ShoalQcow2;

gboolean    shoal_qcow2_probe          (const guint8  *head,
                                        gsize          len);
ShoalQcow2 *shoal_qcow2_open           (int            fd,
                                        guint64        file_size,
                                        const gchar   *path,
                                        GError       **error);
guint64     shoal_qcow2_get_size       (ShoalQcow2    *q);
gboolean    shoal_qcow2_read           (ShoalQcow2    *q,
                                        guint64        offset,
                                        guint8        *buf,
                                        gsize          len,
                                        GError       **error);
guint64     shoal_qcow2_get_bytes_read (ShoalQcow2    *q);
void        shoal_qcow2_free           (ShoalQcow2    *q);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalQcow2, shoal_qcow2_free)

G_END_DECLS
