/* shoal-pxe-http.c: serve boot files over HTTP with Range support
 *
 * A single byte range gets 206 Partial Content, a range past the end
 * 416, several ranges or none the whole file (200). Files are mapped, so
 * many devices fetching one kernel share the page cache.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "shoal-error.h"
#include "shoal-pxe-http.h"
#include "shoal-pxe-path.h"

static void
serve_range (SoupServerMessage *msg, GBytes *body, goffset start, goffset end)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  gsize size = g_bytes_get_size (body);
  g_autoptr(GBytes) part = g_bytes_new_from_bytes (body, (gsize) start, (gsize) (end - start + 1));

  soup_message_headers_set_content_range (headers, start, end, (goffset) size);
  soup_server_message_set_status (msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), part);
}

static gboolean
range_is_satisfiable (SoupMessageHeaders *request, gsize size)
{
  const gchar *range = soup_message_headers_get_one (request, "Range");
  guint64 start;

  /* "bytes=N-" or "bytes=N-M" with N past the end cannot be served */
  if (range == NULL || !g_str_has_prefix (range, "bytes=") || range[6] == '-')
    return TRUE;
  start = g_ascii_strtoull (range + 6, NULL, 10);
  return start < size;
}

void
shoal_pxe_http_serve_bytes (SoupServerMessage *msg, GBytes *body, const gchar *content_type)
{
  SoupMessageHeaders *request = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  gsize size = g_bytes_get_size (body);
  SoupRange *ranges = NULL;
  gint n = 0;

  soup_message_headers_set_content_type (headers, content_type, NULL);
  soup_message_headers_replace (headers, "Accept-Ranges", "bytes");
  if (!range_is_satisfiable (request, size))
    {
      g_autofree gchar *value = g_strdup_printf ("bytes */%" G_GSIZE_FORMAT, size);
      soup_message_headers_replace (headers, "Content-Range", value);
      soup_server_message_set_status (msg, SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE, NULL);
      return;
    }
  if (size > 0 && soup_message_headers_get_ranges (request, (goffset) size, &ranges, &n) && n == 1)
    {
      serve_range (msg, body, ranges[0].start, ranges[0].end);
      soup_message_headers_free_ranges (request, ranges);
      return;
    }
  if (ranges != NULL)
    soup_message_headers_free_ranges (request, ranges);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), body);
}

/* @path below @root_fd, or an error (not found, outside the root) */
gboolean
shoal_pxe_http_serve_file (SoupServerMessage *msg, gint root_fd, const gchar *path, GError **error)
{
  g_autoptr(GBytes) body = shoal_pxe_path_map_beneath (root_fd, path, error);

  if (body == NULL)
    return FALSE;
  shoal_pxe_http_serve_bytes (msg, body, "application/octet-stream");
  return TRUE;
}
