/* shoal-http-range.h: the Range request header (RFC 9110 §14) and the
 * entity-tag lists of If-Match and If-None-Match (§13.1.1-2)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SHOAL_HTTP_RANGE_MAX 64

/* One satisfiable range of bytes, both ends included */
typedef struct {
  guint64 start;
  guint64 end;
} ShoalByteRange;

/**
 * ShoalRangeResult:
 * @SHOAL_RANGE_FULL: no usable Range header (absent, another unit, bad
 *   syntax or too many ranges): send the whole representation with 200
 * @SHOAL_RANGE_PARTIAL: send the ranges with 206
 * @SHOAL_RANGE_UNSATISFIABLE: no range overlaps the representation: 416
 */
typedef enum {
  SHOAL_RANGE_FULL,
  SHOAL_RANGE_PARTIAL,
  SHOAL_RANGE_UNSATISFIABLE,
} ShoalRangeResult;

ShoalRangeResult shoal_http_range_parse (const gchar *header,
                                         guint64      size,
                                         GArray     **ranges);

gboolean         shoal_http_etag_matches (const gchar *header,
                                          const gchar *etag,
                                          gboolean     weak);

G_END_DECLS
