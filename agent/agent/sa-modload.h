/* sa-modload.h: loads kernel modules in modules.dep order (no modprobe needed)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>

/* Loads each module named in @names (space-separated), dependencies first,
 * from @moddir/<kernel release>/ using its modules.dep. A module already
 * loaded or built in counts as loaded. Returns the number that failed. */
int sa_modload_all (const char *moddir, const char *release, const char *names);
