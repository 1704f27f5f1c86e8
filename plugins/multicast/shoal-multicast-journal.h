/* shoal-multicast-journal.h: what the multicast step writes to a device's
 * journal about its receiver (internal to the plugin, and its tests)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "shoal-mcast-sender.h"

G_BEGIN_DECLS

/* why receiver n (outcome SMC_NODE_EVICTED) finishes by unicast, in words
 * for its journal, with the session's settings in cfg */
gchar *shoal_multicast_eviction_message (const smc_sender_config *cfg,
                                         const smc_node_info     *n);

G_END_DECLS
