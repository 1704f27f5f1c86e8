/* shoal-pxe-clock.c: the clocks of the DHCP server and its lease pool
 *
 * Both read GLib's clocks plus an offset that only tests set, so that
 * hour-long expiries can be tested without waiting for them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-pxe-clock.h"

static gint skipped;   /* seconds */

/* seconds of the monotonic clock */
gint64
shoal_pxe_clock_monotonic_s (void)
{
  return g_get_monotonic_time () / G_USEC_PER_SEC + g_atomic_int_get (&skipped);
}

/* seconds since the epoch */
gint64
shoal_pxe_clock_real_s (void)
{
  return g_get_real_time () / G_USEC_PER_SEC + g_atomic_int_get (&skipped);
}

/* for tests: moves both clocks @seconds forward */
void
shoal_pxe_clock_skip (gint64 seconds)
{
  g_return_if_fail (seconds >= 0 && seconds <= G_MAXINT / 2);
  g_atomic_int_add (&skipped, (gint) seconds);
}
