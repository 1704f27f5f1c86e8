/* shoal-agent-initramfs.h: writes the parts of a device's agent initramfs
 *
 * A device's agent is two concatenated compressed newc archives (the
 * kernel and the agent loader both accept that):
 *  - the base part, shared by every device with the same hardware and
 *    recipe and cached: /usr/sbin/shoal-agent, the selected modules under
 *    /lib/modules/<release>/ with a modules.dep (and modules.alias) for
 *    exactly them;
 *  - the device part: /etc/shoal/agent.conf (server, token, device, image,
 *    session, disk, kernel, modules).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "shoal-drivers-modindex.h"

G_BEGIN_DECLS

typedef enum {
  SHOAL_AGENT_COMPRESSION_ZSTD,
  SHOAL_AGENT_COMPRESSION_GZIP,
} ShoalAgentCompression;

gboolean shoal_agent_compression_from_string (const gchar            *str,
                                              ShoalAgentCompression  *out);

gboolean shoal_agent_initramfs_write_base    (const gchar            *path,
                                              const gchar            *agent_binary,
                                              ShoalModIndex          *index,
                                              GPtrArray              *modules,
                                              ShoalAgentCompression   compression,
                                              GError                **error);
gboolean shoal_agent_initramfs_write_config  (const gchar            *path,
                                              const gchar            *config_text,
                                              ShoalAgentCompression   compression,
                                              GError                **error);
gchar   *shoal_agent_initramfs_tree_stamp    (ShoalModIndex          *index,
                                              GPtrArray              *modules);
gchar   *shoal_agent_initramfs_cache_key     (const gchar            *agent_binary_sha256,
                                              const gchar            *release,
                                              const gchar            *tree_stamp,
                                              GPtrArray              *modules,
                                              ShoalAgentCompression   compression);
gchar   *shoal_agent_sha256_file             (const gchar            *path,
                                              guint64                *size,
                                              GError                **error);
gchar   *shoal_agent_sha256_data             (const void             *data,
                                              gsize                   len);

G_END_DECLS
