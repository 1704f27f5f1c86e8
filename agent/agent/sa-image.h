/* sa-image.h: writes an image to a disk, chunk by chunk, verifying each
 * chunk against the manifest (plugins/image-store/manifest) before it is
 * written
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sa-util.h"
#include "shoal-manifest.h"

/* Progress callback: bytes written so far of @total */
typedef void (*SaImageProgress) (void *user_data, uint64_t done, uint64_t total);

/* A receive another thread may stop: sa_cancel_set() makes the receive
 * stop before its next chunk (and runs the hook, which stops a multicast
 * session at once); the receive then fails with an error that says so */
typedef struct {
  pthread_mutex_t lock;
  bool            cancelled;
  void          (*hook) (void *data);
  void           *hook_data;
} SaCancel;

#define SA_CANCEL_INIT { PTHREAD_MUTEX_INITIALIZER, false, NULL, NULL }

bool  sa_cancel_is_set   (SaCancel *cancel);
void  sa_cancel_set      (SaCancel *cancel);
/* @hook is run by sa_cancel_set(), or at once when it ran already; NULL:
 * none (the receive it stopped is over). @cancel may be NULL: nothing */
void  sa_cancel_set_hook (SaCancel *cancel, void (*hook) (void *data), void *data);

typedef struct {
  const char      *server;       /* for relative URLs */
  const char      *token;
  const char      *manifest_url; /* absolute, or relative to the server */
  const char      *image_id;     /* if set: the manifest text must hash to it */
  const char      *chunk_url;    /* template with {sha256} / {index}; NULL:
                                    <manifest URL's folder>/chunks/{sha256} */
  const char      *disk;         /* block device or file */
  SaImageProgress  progress;
  void            *progress_data;
  SaCancel        *cancel;       /* NULL: the receive runs to its end */
} SaImageJob;

typedef struct {
  uint64_t bytes;
  uint64_t chunks;
  uint64_t zero_chunks;
  uint64_t kept_chunks;      /* data chunks the disk already held (not fetched) */
  char     name[160];
  char     image_sha256[65];
  char     image_id[65];     /* SHA-256 of the manifest text */
  char     wiped[512];       /* what an earlier system kept past the image,
                                zeroed before it was written
                                (sa_gpt_wipe_earlier); empty when nothing */
} SaImageResult;

bool  sa_image_unicast_receive (const SaImageJob *job, SaImageResult *result, char *err, size_t errlen);
/* The pieces, for other transports (multicast): the manifest at @url (absolute),
 * checked against job->image_id; one data chunk, fetched until it verifies */
ShoalManifest *sa_image_get_manifest (const SaImageJob *job, const char *url, char id_out[65],
                                      char *err, size_t errlen);
bool  sa_image_get_chunk       (const SaImageJob *job, const char *manifest_url, const ShoalManifest *m,
                                uint64_t index, SaBuf *out, char *err, size_t errlen);
bool  sa_image_zero_at         (int fd, const char *zeros, size_t zeros_len, uint64_t len, uint64_t offset);
/* The end of the run of zero chunks from chunk @i (@i when it is data);
 * their bytes in *len */
uint64_t sa_image_zero_run     (const ShoalManifest *m, uint64_t i, uint64_t *len);
/* Data chunk @index as the disk (@fd, open for reading) already holds it,
 * read into @buf (chunk_size bytes): true when it verifies against the
 * manifest (what an interrupted run wrote, or the same image deployed
 * again), so that it need not be fetched. Callers stop asking after
 * SA_IMAGE_KEEP_MISSES data chunks in a row that are not there: the disk
 * holds something else from there on, and a new disk costs that many reads */
#define SA_IMAGE_KEEP_MISSES 16
bool  sa_image_chunk_on_disk   (int fd, const ShoalManifest *m, uint64_t index, uint8_t *buf);
/* @disk for writing, and for reading when it can be (*readable); -1 with
 * @err when it cannot be opened, or is a block device smaller than
 * @image_size bytes */
int   sa_image_open_disk       (const char *disk, uint64_t image_size, bool *readable, char *err, size_t errlen);
/* The disk to write when neither the instruction nor the config names
 * one: the first by name in @sys_block ("/sys/block") that is a fixed
 * disk (a device behind it, not removable, not an optical drive) of at
 * least @need bytes (0: any). NULL with @why naming the disks too small */
char *sa_image_default_disk    (const char *sys_block, uint64_t need, char *why, size_t whylen);
/* An absolute URL for @ref: as is if it starts with http://, else @server + @ref */
char *sa_image_resolve_url     (const char *server, const char *ref);
