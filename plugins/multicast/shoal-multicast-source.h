/* shoal-multicast-source.h: the image a multicast session sends (an image
 * store image, or a plain file for tests), as the protocol's manifest plus
 * a chunk reader
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "shoal-mcast-proto.h"

G_BEGIN_DECLS

typedef struct _ShoalMulticastSource ShoalMulticastSource;

ShoalMulticastSource *shoal_multicast_source_open_file  (const gchar           *path,
                                                         guint32                chunk_size,
                                                         GError               **error);
ShoalMulticastSource *shoal_multicast_source_open_store (const gchar           *root,
                                                         JsonObject            *image,
                                                         GError               **error);
void                  shoal_multicast_source_free       (ShoalMulticastSource  *self);
const smc_manifest   *shoal_multicast_source_get_manifest (ShoalMulticastSource *self);
const gchar          *shoal_multicast_source_get_id     (ShoalMulticastSource  *self);
gboolean              shoal_multicast_source_is_store   (ShoalMulticastSource  *self);
guint64               shoal_multicast_source_data_chunks (ShoalMulticastSource *self);
/* smc_sender_config.read_chunk: user is the source */
int                   shoal_multicast_source_read_chunk (void                  *user,
                                                         uint32_t               idx,
                                                         uint8_t               *buf,
                                                         size_t                 len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalMulticastSource, shoal_multicast_source_free)

G_END_DECLS
