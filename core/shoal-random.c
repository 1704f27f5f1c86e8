/* shoal-random.c: secrets (device tokens, the image store's admin token)
 * from getrandom(2), never from GLib's Mersenne Twister (g_random_*()),
 * whose output can be predicted from a few values seen
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <sys/random.h>

#include "shoal-error.h"
#include "shoal-random-private.h"

/**
 * shoal_random_bytes:
 * @buffer: where to write
 * @length: how many bytes
 * @error: return location for a #GError
 *
 * Fills @buffer from the kernel's cryptographic generator (getrandom(2),
 * which blocks only until it is seeded at boot). There is no weaker
 * fallback: when the kernel cannot give them, this fails.
 *
 * Returns: %TRUE when @buffer is filled
 */
gboolean
shoal_random_bytes (guint8  *buffer,
                    gsize    length,
                    GError **error)
{
  gsize done = 0;

  while (done < length)
    {
      gssize n = getrandom (buffer + done, length - done, 0);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          int saved = errno;

          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                       "Cannot read random bytes from the kernel: %s", g_strerror (saved));
          return FALSE;
        }
      done += (gsize) n;
    }
  return TRUE;
}

/**
 * shoal_random_hex:
 * @n_bytes: how many random bytes
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): @n_bytes from shoal_random_bytes()
 *   as 2 × @n_bytes lower-case hex digits, or %NULL
 */
gchar *
shoal_random_hex (gsize    n_bytes,
                  GError **error)
{
  g_autofree guint8 *bytes = g_malloc (n_bytes);
  GString *hex;

  if (!shoal_random_bytes (bytes, n_bytes, error))
    return NULL;
  hex = g_string_sized_new (2 * n_bytes + 1);
  for (gsize i = 0; i < n_bytes; i++)
    g_string_append_printf (hex, "%02x", bytes[i]);
  explicit_bzero (bytes, n_bytes);
  return g_string_free (hex, FALSE);
}
