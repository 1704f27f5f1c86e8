/* shoal-agent-gen.h: builds a device's agent (blocking; run it in a thread)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "shoal-agent-initramfs.h"

G_BEGIN_DECLS

typedef struct {
  /* inputs */
  gchar                 *state_dir;     /* agent-cache/ and agents/ go here */
  gchar                 *agent_binary;
  gchar                 *release_dir;   /* lib/modules/<release> */
  gchar                 *modules;       /* space-separated, load order */
  gchar                 *device_id;
  gchar                 *config_text;
  ShoalAgentCompression  compression;
  /* outputs */
  gchar                 *base_path;     /* cached, shared part */
  gchar                 *device_path;   /* the device's part */
  gchar                 *cache_key;
  gboolean               reused;
  gchar                 *sha256;        /* of base + device part, as served */
  guint64                size;
  guint                  n_modules;
} ShoalAgentGenJob;

ShoalAgentGenJob *shoal_agent_gen_job_new   (void);
void              shoal_agent_gen_job_free  (ShoalAgentGenJob *job);
gboolean          shoal_agent_gen_run       (ShoalAgentGenJob *job,
                                             GError          **error);
gchar            *shoal_agent_gen_config    (const gchar      *server,
                                             const gchar      *token,
                                             const gchar      *device,
                                             const gchar      *image,
                                             const gchar      *session,
                                             const gchar      *disk,
                                             const gchar      *release,
                                             const gchar      *modules,
                                             guint64           serial);
gchar            *shoal_agent_gen_default_binary (void);
void              shoal_agent_gen_remove_device_part (const gchar *state_dir,
                                             const gchar      *device_id);
void              shoal_agent_gen_sweep     (const gchar      *state_dir,
                                             GHashTable       *parts,
                                             GHashTable       *bases);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalAgentGenJob, shoal_agent_gen_job_free)

/* Device metadata keys the step writes and the service reads */
#define SHOAL_AGENT_KEY_BASE    "agent.base"
#define SHOAL_AGENT_KEY_DEVICE  "agent.device-part"
#define SHOAL_AGENT_KEY_SHA256  "agent.sha256"
#define SHOAL_AGENT_KEY_SIZE    "agent.size"

G_END_DECLS
