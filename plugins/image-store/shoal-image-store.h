/* shoal-image-store.h: the image store as a GObject with async calls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "shoal-image-files.h"

G_BEGIN_DECLS

#define SHOAL_TYPE_IMAGE_STORE (shoal_image_store_get_type ())

G_DECLARE_FINAL_TYPE (ShoalImageStore, shoal_image_store, SHOAL, IMAGE_STORE, GObject)

ShoalImageStore *shoal_image_store_new            (const gchar          *root,
                                                   GError              **error);
const gchar     *shoal_image_store_get_root       (ShoalImageStore      *self);
gboolean         shoal_image_store_set_default_chunk_size (ShoalImageStore *self,
                                                   guint64               chunk_size,
                                                   GError              **error);
void             shoal_image_store_configure_chunk_size (ShoalImageStore *self,
                                                   const gchar          *value);

gchar           *shoal_image_store_display_source (const gchar          *path);
void             shoal_image_store_import_async   (ShoalImageStore      *self,
                                                   const gchar          *path,
                                                   const gchar          *name,
                                                   guint32               chunk_size,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
gchar           *shoal_image_store_import_finish  (ShoalImageStore      *self,
                                                   GAsyncResult         *result,
                                                   ShoalImportStats     *stats,
                                                   GError              **error);
void             shoal_image_store_list_async     (ShoalImageStore      *self,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
GPtrArray       *shoal_image_store_list_finish    (ShoalImageStore      *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);
void             shoal_image_store_inspect_async  (ShoalImageStore      *self,
                                                   const gchar          *id_or_name,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
ShoalImageInfo  *shoal_image_store_inspect_finish (ShoalImageStore      *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);
void             shoal_image_store_remove_async   (ShoalImageStore      *self,
                                                   const gchar          *id_or_name,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
gboolean         shoal_image_store_remove_finish  (ShoalImageStore      *self,
                                                   GAsyncResult         *result,
                                                   guint64              *freed_bytes,
                                                   GError              **error);
void             shoal_image_store_verify_async   (ShoalImageStore      *self,
                                                   const gchar          *id_or_name,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
gboolean         shoal_image_store_verify_finish  (ShoalImageStore      *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);

void             shoal_image_store_prune_async    (ShoalImageStore      *self,
                                                   const gchar          *name,
                                                   guint                 keep,
                                                   GHashTable           *in_use,
                                                   gboolean              dry_run,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
ShoalImagePrune *shoal_image_store_prune_finish   (ShoalImageStore      *self,
                                                   GAsyncResult         *result,
                                                   GError              **error);

void             shoal_image_store_gc_async       (ShoalImageStore      *self,
                                                   GCancellable         *cancellable,
                                                   GAsyncReadyCallback   callback,
                                                   gpointer              user_data);
gboolean         shoal_image_store_gc_finish      (ShoalImageStore      *self,
                                                   GAsyncResult         *result,
                                                   guint64              *freed_bytes,
                                                   GError              **error);

G_END_DECLS
