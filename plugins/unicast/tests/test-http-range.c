/* test-http-range.c: the Range header parser, the entity-tag lists of
 * If-Match and If-None-Match
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>

#include "shoal-http-range.h"

typedef struct {
  const gchar      *header;
  guint64           size;
  ShoalRangeResult  result;
  const gchar      *ranges;   /* "s-e,s-e" for PARTIAL */
} Case;

static const Case cases[] = {
  { NULL, 100, SHOAL_RANGE_FULL, NULL },
  { "bytes=0-9", 100, SHOAL_RANGE_PARTIAL, "0-9" },
  { "BYTES=0-9", 100, SHOAL_RANGE_PARTIAL, "0-9" },
  { "bytes=90-", 100, SHOAL_RANGE_PARTIAL, "90-99" },
  { "bytes=-10", 100, SHOAL_RANGE_PARTIAL, "90-99" },
  { "bytes=-1000", 100, SHOAL_RANGE_PARTIAL, "0-99" },
  { "bytes=50-1000", 100, SHOAL_RANGE_PARTIAL, "50-99" },
  { "bytes=0-0,-1", 100, SHOAL_RANGE_PARTIAL, "0-0,99-99" },
  { "bytes= 0-9 , 20-29", 100, SHOAL_RANGE_PARTIAL, "0-9,20-29" },
  { "bytes=20-29,0-9", 100, SHOAL_RANGE_PARTIAL, "0-9,20-29" },
  { "bytes=0-9,5-15,16-20", 100, SHOAL_RANGE_PARTIAL, "0-20" },
  { "bytes=0-9,,20-29", 100, SHOAL_RANGE_PARTIAL, "0-9,20-29" },
  { "bytes=0-9,200-300", 100, SHOAL_RANGE_PARTIAL, "0-9" },
  { "bytes=100-", 100, SHOAL_RANGE_UNSATISFIABLE, NULL },
  { "bytes=-0", 100, SHOAL_RANGE_UNSATISFIABLE, NULL },
  { "bytes=0-", 0, SHOAL_RANGE_UNSATISFIABLE, NULL },
  { "bytes=9-0", 100, SHOAL_RANGE_FULL, NULL },
  { "bytes=", 100, SHOAL_RANGE_FULL, NULL },
  { "bytes=abc", 100, SHOAL_RANGE_FULL, NULL },
  { "bytes=1-2-3", 100, SHOAL_RANGE_FULL, NULL },
  { "bytes=0-99999999999999999999999", 100, SHOAL_RANGE_FULL, NULL },
  { "items=0-9", 100, SHOAL_RANGE_FULL, NULL },
  { "bytes 0-9", 100, SHOAL_RANGE_FULL, NULL },
  { "bytes=0-18446744073709551615", 100, SHOAL_RANGE_PARTIAL, "0-99" },
};

static void
test_cases (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GArray) ranges = NULL;
      g_autoptr(GString) got = g_string_new (NULL);
      ShoalRangeResult r = shoal_http_range_parse (cases[i].header, cases[i].size, &ranges);

      g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, cases[i].header);
      g_assert_cmpint (r, ==, cases[i].result);
      if (r != SHOAL_RANGE_PARTIAL)
        {
          g_assert_null (ranges);
          continue;
        }
      for (guint j = 0; j < ranges->len; j++)
        {
          ShoalByteRange *br = &g_array_index (ranges, ShoalByteRange, j);

          g_string_append_printf (got, "%s%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT,
                                  j ? "," : "", br->start, br->end);
        }
      g_assert_cmpstr (got->str, ==, cases[i].ranges);
    }
}

static void
test_too_many (void)
{
  g_autoptr(GString) header = g_string_new ("bytes=");
  g_autoptr(GArray) ranges = NULL;

  for (guint i = 0; i < SHOAL_HTTP_RANGE_MAX + 1; i++)
    g_string_append_printf (header, "%s%u-%u", i ? "," : "", i * 2, i * 2);
  g_assert_cmpint (shoal_http_range_parse (header->str, 10000, &ranges), ==, SHOAL_RANGE_FULL);
}

static void
test_etags (void)
{
  static const struct {
    const gchar *header;
    gboolean     weak;     /* the If-None-Match comparison */
    gboolean     strong;   /* the If-Match comparison */
  } etag_cases[] = {
    { "\"abc\"", TRUE, TRUE },
    { "*", TRUE, TRUE },
    { " * ", TRUE, TRUE },
    { "W/\"abc\"", TRUE, FALSE },
    { "\"x\", \"abc\"", TRUE, TRUE },
    { "\"x\",W/\"abc\"", TRUE, FALSE },
    { "\"x\" ,, \"abc\"", TRUE, TRUE },
    { "\"x,\"abc\"\"", FALSE, FALSE },      /* a comma inside a tag */
    { "\"abcd\"", FALSE, FALSE },
    { "\"ab\"", FALSE, FALSE },
    { "abc", FALSE, FALSE },
    { "\"abc", FALSE, FALSE },
    { "\"x\" junk, \"abc\"", FALSE, FALSE },
    { "*, \"abc\"", FALSE, FALSE },
    { "", FALSE, FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (etag_cases); i++)
    {
      g_test_message ("case %" G_GSIZE_FORMAT ": %s", i, etag_cases[i].header);
      g_assert_cmpint (shoal_http_etag_matches (etag_cases[i].header, "\"abc\"", TRUE), ==, etag_cases[i].weak);
      g_assert_cmpint (shoal_http_etag_matches (etag_cases[i].header, "\"abc\"", FALSE), ==, etag_cases[i].strong);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/unicast/range/cases", test_cases);
  g_test_add_func ("/shoal/unicast/range/too-many", test_too_many);
  g_test_add_func ("/shoal/unicast/range/etags", test_etags);
  return g_test_run ();
}
