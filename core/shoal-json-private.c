/* shoal-json-private.c: JSON helpers shared inside libshoal
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-json-private.h"

/**
 * shoal_json_check_depth:
 * @data: JSON text
 * @length: its length in bytes
 * @max_depth: the deepest nesting of arrays and objects allowed
 *
 * Checks the nesting of JSON text before json-glib, whose parser recurses
 * once per level without a limit (and so overflows the stack on a few
 * hundred kilobytes of brackets), sees it. Brackets inside strings do not
 * count; the text need not be valid JSON.
 *
 * Returns: %TRUE if @data nests at most @max_depth levels deep
 */
gboolean
shoal_json_check_depth (const gchar *data,
                        gsize        length,
                        guint        max_depth)
{
  guint depth = 0;
  gboolean in_string = FALSE;

  for (gsize i = 0; i < length; i++)
    {
      gchar c = data[i];

      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
          continue;
        }
      if (c == '"')
        in_string = TRUE;
      else if ((c == '[' || c == '{') && ++depth > max_depth)
        return FALSE;
      else if ((c == ']' || c == '}') && depth > 0)
        depth--;
    }
  return TRUE;
}
