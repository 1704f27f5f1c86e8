/* shoal-pxe-clock.h: the clocks of the DHCP server and its lease pool,
 * which tests can move forward (both) or step (the wall clock alone)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gint64 shoal_pxe_clock_monotonic_s (void);
gint64 shoal_pxe_clock_real_s      (void);
void   shoal_pxe_clock_skip        (gint64 seconds);
void   shoal_pxe_clock_step_wall   (gint64 seconds);

G_END_DECLS
