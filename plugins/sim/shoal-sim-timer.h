/* shoal-sim-timer.h: the random delay shared by the simulated steps
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <shoal.h>

G_BEGIN_DECLS

gboolean shoal_sim_validate_options (JsonObject           *options,
                                     GError              **error);
void     shoal_sim_timer_start      (ShoalStepContext     *ctx,
                                     gpointer              source,
                                     GCancellable         *cancellable,
                                     GAsyncReadyCallback   callback,
                                     gpointer              user_data);
gboolean shoal_sim_timer_finish     (GAsyncResult         *result,
                                     GError              **error);

G_END_DECLS
