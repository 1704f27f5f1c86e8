/* shoal-pxe-workers.h: a fixed pool of event loops for data transfers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _ShoalPxeWorkers ShoalPxeWorkers;

ShoalPxeWorkers *shoal_pxe_workers_new     (guint            n_threads);
GMainContext    *shoal_pxe_workers_next    (ShoalPxeWorkers *workers);
guint            shoal_pxe_workers_get_size (ShoalPxeWorkers *workers);
void             shoal_pxe_workers_free    (ShoalPxeWorkers *workers);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ShoalPxeWorkers, shoal_pxe_workers_free)

G_END_DECLS
