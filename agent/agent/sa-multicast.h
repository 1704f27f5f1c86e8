/* sa-multicast.h: "multicast-receive" with the receiver of
 * plugins/multicast/proto, the missing chunks by unicast HTTP
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sa-image.h"

typedef struct {
  uint64_t bytes;
  uint64_t chunks;
  uint64_t multicast_chunks;   /* received by multicast */
  uint64_t unicast_chunks;     /* fetched by HTTP afterwards */
  uint64_t kept_chunks;        /* missed by the session, but already on the
                                * disk (an earlier run's): not fetched */
  uint64_t zero_chunks;
  uint64_t packets;
  uint64_t parity_used;
  uint64_t nacks_sent;
  char     image_id[65];
  char     image_sha256[65];   /* of what was read back from the disk */
  char     wiped[512];         /* as SaImageResult's */
} SaMulticastResult;

/* called once the receiver joined the session's group (not when the
 * join failed) */
typedef void (*SaMulticastJoined) (void *data);

/* @join: the instruction's "join" string; @job: as for unicast (the
 * manifest URL is required: the chunk table and the unicast fallback);
 * @joined (nullable): told when the group is joined */
bool sa_multicast_receive (const SaImageJob *job, const char *join, SaMulticastJoined joined,
                           void *joined_data, SaMulticastResult *result, char *err, size_t errlen);
