/* shoal-image-files.h: the image store on disk (no GType, blocking calls)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The store is a folder (by default <state dir>/image-store):
 *
 *   chunks/<first 2 hex digits>/<64 hex digits>   bytes of one chunk, named by its SHA-256
 *   images/<image id>.manifest                     a manifest; the id is its SHA-256
 *   tmp/                                           scratch space of imports in progress:
 *                                                  download-XXXXXX, a URL's bytes (garbage
 *                                                  collection deletes those a crash left)
 *   store.lock                                     flock: shared while importing, exclusive
 *                                                  while removing (garbage collection)
 *
 * Chunks are shared by every image that contains them (deduplication); zero
 * chunks are recorded in the manifest only. Every function here blocks: call
 * them from a worker thread (ShoalImageStore does) or from a command-line tool.
 * This layer registers no GType, so several modules (image-store, unicast,
 * multicast) may link it into one process.
 */
#pragma once

#include <gio/gio.h>

#include "shoal-manifest.h"

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalManifest, shoal_manifest_free)

/* the fewest hex digits of an id that name an image (shoal_image_files_inspect()) */
#define SHOAL_IMAGE_FILES_MIN_ID_PREFIX 8

/* tmp/<this>XXXXXX: the download of a URL import (mkstemp) */
#define SHOAL_IMAGE_FILES_DOWNLOAD_PREFIX "download-"

/**
 * ShoalImageInfo:
 * @id: the image id (SHA-256 of the manifest, 64 hex digits)
 * @name: the image name from the manifest
 * @size: bytes in the image
 * @chunk_size: bytes per chunk
 * @n_chunks: number of chunks
 * @n_zero_chunks: chunks that are all zeros (not stored)
 * @data_bytes: bytes in the chunks that are not zero
 * @image_sha256: SHA-256 of the whole image (64 hex digits)
 * @imported: when the image was imported (Unix time, seconds)
 */
typedef struct {
  gchar   *id;
  gchar   *name;
  guint64  size;
  guint32  chunk_size;
  guint64  n_chunks;
  guint64  n_zero_chunks;
  guint64  data_bytes;
  gchar   *image_sha256;
  gint64   imported;
} ShoalImageInfo;

void            shoal_image_info_free        (ShoalImageInfo *info);
ShoalImageInfo *shoal_image_info_copy        (const ShoalImageInfo *info);
GVariant       *shoal_image_info_to_variant  (const ShoalImageInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalImageInfo, shoal_image_info_free)

/**
 * ShoalImportStats:
 * What an import did: chunks in the image, zero chunks, chunks written,
 * chunks already in the store, bytes written, bytes read from the source.
 */
typedef struct {
  guint64 n_chunks;
  guint64 n_zero;
  guint64 n_written;
  guint64 n_deduplicated;
  guint64 bytes_written;
  guint64 bytes_read;
} ShoalImportStats;

/**
 * ShoalImagePrune:
 * @removed: the images removed (a dry run: that would be), ShoalImageInfo *,
 *   oldest first
 * @kept: images beyond the newest of their name that stayed as in use,
 *   ShoalImageInfo *
 * @reasons: why each of @kept stayed, gchar *
 * @freed_bytes: bytes of chunks deleted (a dry run: used by the removed
 *   images alone)
 *
 * What shoal_image_files_prune() did.
 */
typedef struct {
  GPtrArray *removed;
  GPtrArray *kept;
  GPtrArray *reasons;
  guint64    freed_bytes;
} ShoalImagePrune;

void            shoal_image_prune_free       (ShoalImagePrune *prune);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalImagePrune, shoal_image_prune_free)

/* Called from the importing thread: @done of @total source bytes read
 * (@total is 0 when unknown). */
typedef void (*ShoalImportProgressFunc) (guint64  done,
                                         guint64  total,
                                         gpointer user_data);

gboolean        shoal_image_files_ensure        (const gchar       *root,
                                                 GError           **error);
gchar          *shoal_image_files_default_root  (const gchar       *state_dir);
gchar          *shoal_image_files_chunk_path    (const gchar       *root,
                                                 const gchar       *chunk_hex);
gchar          *shoal_image_files_manifest_path (const gchar       *root,
                                                 const gchar       *id);
GBytes         *shoal_image_files_load_manifest_bytes (const gchar *root,
                                                 const gchar       *id,
                                                 GError           **error);
ShoalManifest  *shoal_image_files_load_manifest (const gchar       *root,
                                                 const gchar       *id,
                                                 GError           **error);
/* @id_or_name: a full id; a name (the newest image of that name); or,
 * when no image has that name, 8 to 63 hex digits that start the id of
 * exactly one image (several: INVALID_ARGUMENT listing them) */
ShoalImageInfo *shoal_image_files_inspect       (const gchar       *root,
                                                 const gchar       *id_or_name,
                                                 GError           **error);
GPtrArray      *shoal_image_files_list_ids      (const gchar       *root,
                                                 gboolean           strict,
                                                 GError           **error);
GPtrArray      *shoal_image_files_list          (const gchar       *root,
                                                 GError           **error);
gchar          *shoal_image_files_resolve       (const gchar       *root,
                                                 const gchar       *id_or_name,
                                                 GError           **error);
gboolean        shoal_image_files_is_uri        (const gchar       *path);
gchar          *shoal_image_files_import        (const gchar       *root,
                                                 const gchar       *path,
                                                 const gchar       *name,
                                                 guint32            chunk_size,
                                                 ShoalImportStats  *stats,
                                                 ShoalImportProgressFunc progress,
                                                 gpointer           progress_data,
                                                 GCancellable      *cancellable,
                                                 GError           **error);
gboolean        shoal_image_files_remove        (const gchar       *root,
                                                 const gchar       *id,
                                                 guint64           *freed_bytes,
                                                 GError           **error);
/* A hold on image @id (a file descriptor, or -1 with @error: NOT_FOUND,
 * or BUSY while the image is being removed): while any process has one
 * open, shoal_image_files_remove() refuses to remove the image (BUSY).
 * Taken by the transfers that read the image for a deployment, given
 * back with shoal_image_files_release() (close). Never blocks. */
int             shoal_image_files_hold          (const gchar       *root,
                                                 const gchar       *id,
                                                 GError           **error);
void            shoal_image_files_release       (int                hold);
/* Keeps the newest @keep images of each name (of @name only) and the
 * older ones @in_use names (reference → reason) or a transfer holds;
 * removes the others and the chunks no remaining image uses */
ShoalImagePrune *shoal_image_files_prune        (const gchar       *root,
                                                 const gchar       *name,
                                                 guint              keep,
                                                 GHashTable        *in_use,
                                                 gboolean           dry_run,
                                                 GError           **error);
gboolean        shoal_image_files_gc            (const gchar       *root,
                                                 guint64           *freed_bytes,
                                                 GError           **error);
gboolean        shoal_image_files_verify        (const gchar       *root,
                                                 const gchar       *id,
                                                 GCancellable      *cancellable,
                                                 GError           **error);
gboolean        shoal_image_files_read_chunk    (const gchar       *root,
                                                 const ShoalManifest *manifest,
                                                 guint64            index,
                                                 guint8            *buffer,
                                                 GError           **error);

G_END_DECLS
