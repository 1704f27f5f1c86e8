/* sa-image.h: writes an image to a disk, chunk by chunk, verifying each
 * chunk's SHA-256 against the manifest before it is written
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "sa-json.h"

typedef struct {
  uint64_t offset;
  uint64_t size;
  char     sha256[65];
} SaChunk;

typedef struct {
  char     *name;
  uint64_t  size;
  SaChunk  *chunks;
  size_t    n_chunks;
} SaManifest;

/* Progress callback: bytes written so far of @total */
typedef void (*SaImageProgress) (void *user_data, uint64_t done, uint64_t total);

bool sa_manifest_parse (const char *data, size_t len, SaManifest *m, char *err, size_t errlen);
void sa_manifest_clear (SaManifest *m);

typedef struct {
  const char      *server;      /* for relative URLs */
  const char      *token;
  const char      *manifest_url;
  const char      *chunk_url;   /* template with {sha256} / {index}; NULL: derived */
  const char      *disk;        /* block device or file */
  SaImageProgress  progress;
  void            *progress_data;
} SaImageJob;

typedef struct {
  uint64_t bytes;
  size_t   chunks;
  char     name[256];
} SaImageResult;

bool sa_image_unicast_receive (const SaImageJob *job, SaImageResult *result, char *err, size_t errlen);
/* An absolute URL for @ref: as is if it starts with http://, else @server + @ref */
char *sa_image_resolve_url   (const char *server, const char *ref);
