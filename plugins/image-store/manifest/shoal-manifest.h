/* shoal-manifest.h: the image manifest, shared by shoald and the agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Plain C (no GLib): the agent links this statically into a binary that
 * runs in a busybox initramfs. SHA-256 comes from OpenSSL's libcrypto (EVP,
 * which uses SHA-NI where the CPU has it).
 *
 * An image is a raw disk image cut into chunks of a fixed size (a power of
 * two, 4 KiB to 64 MiB, 1 MiB by default; the last chunk may be shorter).
 * The manifest records, for each chunk, the SHA-256 of its bytes or that the
 * chunk is all zeros (zero chunks are never stored nor sent), plus the
 * SHA-256 of the whole image. The SHA-256 of the serialized manifest is the
 * image id. The text format is described in plugins/image-store/README.md;
 * it has exactly one serialization per manifest, so parse and serialize are
 * exact inverses and the id is stable.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHOAL_MANIFEST_VERSION            1
#define SHOAL_MANIFEST_DIGEST_LEN         32
#define SHOAL_MANIFEST_HEX_LEN            64
#define SHOAL_MANIFEST_NAME_MAX           128
#define SHOAL_MANIFEST_DEFAULT_CHUNK_SIZE (1024u * 1024u)
#define SHOAL_MANIFEST_MIN_CHUNK_SIZE     4096u
#define SHOAL_MANIFEST_MAX_CHUNK_SIZE     (64u * 1024u * 1024u)
#define SHOAL_MANIFEST_MAX_CHUNKS         (1u << 24)

/* 1 when @chunk_size is a power of two from SHOAL_MANIFEST_MIN_CHUNK_SIZE
 * to SHOAL_MANIFEST_MAX_CHUNK_SIZE */
static inline int
shoal_manifest_chunk_size_is_valid (uint64_t chunk_size)
{
  return chunk_size >= SHOAL_MANIFEST_MIN_CHUNK_SIZE && chunk_size <= SHOAL_MANIFEST_MAX_CHUNK_SIZE &&
         (chunk_size & (chunk_size - 1)) == 0;
}

/* What went wrong, for the caller to show: @line is the 1-based line of the
 * manifest text where parsing stopped (0 when not about a line). */
typedef struct {
  unsigned line;
  char     message[192];
} ShoalManifestError;

/* A parsed or built manifest. The fields may be read directly; change them
 * only through the functions below. */
typedef struct {
  char      name[SHOAL_MANIFEST_NAME_MAX + 1];
  uint64_t  size;                /* bytes in the image */
  uint32_t  chunk_size;          /* bytes per chunk, a power of two */
  uint64_t  n_chunks;            /* ceil (size / chunk_size) */
  uint8_t   image_sha256[SHOAL_MANIFEST_DIGEST_LEN];
  uint8_t  *digests;             /* n_chunks × 32 bytes; all zero for zero chunks */
  uint8_t  *zero;                /* n_chunks flags: 1 if the chunk is all zeros */
} ShoalManifest;

/* Manifests */
ShoalManifest *shoal_manifest_new              (const char          *name,
                                                uint64_t             size,
                                                uint32_t             chunk_size,
                                                ShoalManifestError  *error);
void           shoal_manifest_free             (ShoalManifest       *self);
int            shoal_manifest_set_chunk        (ShoalManifest       *self,
                                                uint64_t             index,
                                                const uint8_t       *digest);
void           shoal_manifest_set_image_sha256 (ShoalManifest       *self,
                                                const uint8_t       *digest);
ShoalManifest *shoal_manifest_parse            (const char          *data,
                                                size_t               length,
                                                ShoalManifestError  *error);
char          *shoal_manifest_serialize        (const ShoalManifest *self,
                                                size_t              *length);
int            shoal_manifest_compute_id       (const char          *data,
                                                size_t               length,
                                                char                 id_hex[SHOAL_MANIFEST_HEX_LEN + 1]);
int            shoal_manifest_is_valid_name    (const char          *name);
int            shoal_manifest_is_valid_id      (const char          *id);

/* Chunks */
uint64_t       shoal_manifest_chunk_offset     (const ShoalManifest *self,
                                                uint64_t             index);
uint32_t       shoal_manifest_chunk_length     (const ShoalManifest *self,
                                                uint64_t             index);
int            shoal_manifest_chunk_is_zero    (const ShoalManifest *self,
                                                uint64_t             index);
const uint8_t *shoal_manifest_chunk_digest     (const ShoalManifest *self,
                                                uint64_t             index);
uint64_t       shoal_manifest_count_data_chunks (const ShoalManifest *self,
                                                uint64_t            *data_bytes);
int            shoal_manifest_verify_chunk     (const ShoalManifest *self,
                                                uint64_t             index,
                                                const void          *data,
                                                size_t               length,
                                                ShoalManifestError  *error);

/* SHA-256 (OpenSSL EVP) and helpers */
typedef struct ShoalManifestHash ShoalManifestHash;

ShoalManifestHash *shoal_manifest_hash_new     (void);
int            shoal_manifest_hash_update      (ShoalManifestHash   *self,
                                                const void          *data,
                                                size_t               length);
int            shoal_manifest_hash_final       (ShoalManifestHash   *self,
                                                uint8_t              digest[SHOAL_MANIFEST_DIGEST_LEN]);
void           shoal_manifest_hash_free        (ShoalManifestHash   *self);
int            shoal_manifest_digest           (const void          *data,
                                                size_t               length,
                                                uint8_t              digest[SHOAL_MANIFEST_DIGEST_LEN]);
void           shoal_manifest_digest_to_hex    (const uint8_t       *digest,
                                                char                 hex[SHOAL_MANIFEST_HEX_LEN + 1]);
int            shoal_manifest_digest_from_hex  (const char          *hex,
                                                size_t               length,
                                                uint8_t              digest[SHOAL_MANIFEST_DIGEST_LEN]);
int            shoal_manifest_is_zero          (const void          *data,
                                                size_t               length);
/* Where the data of an image file open as @fd begins (*start) and ends
 * (*end) at or after @pos, both within @limit (*start = *end = @limit when
 * only holes are left): the holes of a sparse file are zeros that need not
 * be read. Without SEEK_DATA (a block device, a file system without it, an
 * error) everything from @pos to @limit is data. */
void           shoal_manifest_data_extent      (int                  fd,
                                                uint64_t             pos,
                                                uint64_t             limit,
                                                uint64_t            *start,
                                                uint64_t            *end);

#ifdef __cplusplus
}
#endif
