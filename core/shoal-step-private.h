/* shoal-step-private.h: what the daemon sets of steps
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void  shoal_step_set_max_blocking (guint n);
guint shoal_step_get_max_blocking (void);

G_END_DECLS
