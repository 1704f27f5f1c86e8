/* shoal-http-range.c: the Range request header (RFC 9110 §14) and the
 * entity-tag lists of If-Match and If-None-Match (§13.1.1-2)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Parses "bytes=" range sets: first-last, first- and -suffix, separated by
 * commas with optional whitespace. The satisfiable ranges are clamped to the
 * representation, sorted, and overlapping or adjacent ones merged (RFC 9110
 * allows it and it stops a request for many overlapping ranges from
 * multiplying the response).
 */
#include "shoal-http-range.h"

#include <string.h>

static const gchar *
skip_ows (const gchar *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

/* Digits only; FALSE on no digit or overflow. */
static gboolean
parse_pos (const gchar **p,
           guint64      *out)
{
  guint64 v = 0;
  const gchar *s = *p;

  if (!g_ascii_isdigit (*s))
    return FALSE;
  for (; g_ascii_isdigit (*s); s++)
    {
      guint d = (guint) (*s - '0');

      if (v > (G_MAXUINT64 - d) / 10)
        return FALSE;
      v = v * 10 + d;
    }
  *p = s;
  *out = v;
  return TRUE;
}

/* One range-spec at *p. Returns FALSE on a syntax error; sets *satisfiable
 * and fills @range when it overlaps [0, size). */
static gboolean
parse_spec (const gchar    **p,
            guint64          size,
            ShoalByteRange  *range,
            gboolean        *satisfiable)
{
  guint64 first = 0;
  guint64 last = G_MAXUINT64;

  *satisfiable = FALSE;
  if (**p == '-')
    {
      (*p)++;
      if (!parse_pos (p, &last))
        return FALSE;
      if (last > 0 && size > 0)
        {
          range->start = size - MIN (last, size);
          range->end = size - 1;
          *satisfiable = TRUE;
        }
      return TRUE;
    }
  if (!parse_pos (p, &first) || **p != '-')
    return FALSE;
  (*p)++;
  if (g_ascii_isdigit (**p) && (!parse_pos (p, &last) || last < first))
    return FALSE;
  if (first < size)
    {
      range->start = first;
      range->end = MIN (last, size - 1);
      *satisfiable = TRUE;
    }
  return TRUE;
}

static gint
compare_ranges (gconstpointer a,
                gconstpointer b)
{
  const ShoalByteRange *ra = a;
  const ShoalByteRange *rb = b;

  if (ra->start != rb->start)
    return ra->start < rb->start ? -1 : 1;
  return 0;
}

static void
merge_ranges (GArray *ranges)
{
  guint out = 0;

  g_array_sort (ranges, compare_ranges);
  for (guint i = 1; i < ranges->len; i++)
    {
      ShoalByteRange *cur = &g_array_index (ranges, ShoalByteRange, out);
      ShoalByteRange *next = &g_array_index (ranges, ShoalByteRange, i);

      if (next->start <= cur->end || next->start - cur->end == 1)
        cur->end = MAX (cur->end, next->end);
      else
        g_array_index (ranges, ShoalByteRange, ++out) = *next;
    }
  if (ranges->len > 0)
    g_array_set_size (ranges, out + 1);
}

/**
 * shoal_http_range_parse:
 * @header: (nullable): the Range header value
 * @size: bytes in the representation
 * @ranges: (out): for %SHOAL_RANGE_PARTIAL, the sorted, merged ranges
 */
ShoalRangeResult
shoal_http_range_parse (const gchar  *header,
                        guint64       size,
                        GArray      **ranges)
{
  g_autoptr(GArray) found = g_array_new (FALSE, FALSE, sizeof (ShoalByteRange));
  const gchar *p;
  guint n_specs = 0;

  *ranges = NULL;
  if (header == NULL || g_ascii_strncasecmp (header, "bytes=", 6) != 0)
    return SHOAL_RANGE_FULL;
  p = header + 6;
  for (;;)
    {
      ShoalByteRange range = { 0 };
      gboolean satisfiable = FALSE;

      p = skip_ows (p);
      if (*p == ',')          /* empty list elements are allowed */
        {
          p++;
          continue;
        }
      if (*p == '\0')
        break;
      if (++n_specs > SHOAL_HTTP_RANGE_MAX || !parse_spec (&p, size, &range, &satisfiable))
        return SHOAL_RANGE_FULL;
      if (satisfiable)
        g_array_append_val (found, range);
      p = skip_ows (p);
      if (*p != ',' && *p != '\0')
        return SHOAL_RANGE_FULL;
    }
  if (n_specs == 0)
    return SHOAL_RANGE_FULL;
  if (found->len == 0)
    return SHOAL_RANGE_UNSATISFIABLE;
  merge_ranges (found);
  *ranges = g_steal_pointer (&found);
  return SHOAL_RANGE_PARTIAL;
}

/**
 * shoal_http_etag_matches:
 * @header: an If-Match or If-None-Match value: "*" or a list of entity-tags
 * @etag: the representation's strong entity-tag, quotes included
 * @weak: compare weakly (If-None-Match: W/ is ignored) rather than
 *   strongly (If-Match: a weak tag never matches)
 *
 * A list that cannot be parsed matches by what precedes the error.
 *
 * Returns: whether @header names @etag (or is "*")
 */
gboolean
shoal_http_etag_matches (const gchar *header,
                         const gchar *etag,
                         gboolean     weak)
{
  const gchar *p = skip_ows (header);
  gsize etag_len = strlen (etag);

  if (*p == '*')
    return *skip_ows (p + 1) == '\0';
  while (*p != '\0')
    {
      gboolean is_weak = g_str_has_prefix (p, "W/");
      const gchar *close;

      if (is_weak)
        p += 2;
      if (*p != '"' || (close = strchr (p + 1, '"')) == NULL)
        return FALSE;
      if ((weak || !is_weak) && (gsize) (close + 1 - p) == etag_len && memcmp (p, etag, etag_len) == 0)
        return TRUE;
      p = skip_ows (close + 1);
      if (*p != ',' && *p != '\0')
        return FALSE;
      while (*p == ',' || *p == ' ' || *p == '\t')
        p++;
    }
  return FALSE;
}
