/* shoal-pxe-clock.c: the clocks of the DHCP server and its lease pool
 *
 * Expiries (offers, leases, DECLINEs, what the proxy saw) are kept in
 * monotonic time, which an NTP step or a date(1) does not move; the wall
 * clock is read only to save a lease's expiry for the next run and to
 * load it back. Both read GLib's clocks plus an offset that only tests
 * set, so that hour-long expiries can be tested without waiting for
 * them, and tests can also step the wall clock alone, as NTP would.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-pxe-clock.h"

static gint skipped;       /* seconds, both clocks */
static gint wall_stepped;  /* seconds, the wall clock alone */

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
  return g_get_real_time () / G_USEC_PER_SEC + g_atomic_int_get (&skipped) +
         g_atomic_int_get (&wall_stepped);
}

/* for tests: moves both clocks @seconds forward, as time passing does */
void
shoal_pxe_clock_skip (gint64 seconds)
{
  g_return_if_fail (seconds >= 0 && seconds <= G_MAXINT / 2);
  g_atomic_int_add (&skipped, (gint) seconds);
}

/* for tests: steps the wall clock alone by @seconds (forward or back),
 * as NTP or an administrator setting the date does */
void
shoal_pxe_clock_step_wall (gint64 seconds)
{
  g_return_if_fail (seconds >= -(G_MAXINT / 4) && seconds <= G_MAXINT / 4);
  g_atomic_int_add (&wall_stepped, (gint) seconds);
}
