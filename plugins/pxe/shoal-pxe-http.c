/* shoal-pxe-http.c: serve boot files over HTTP with Range support
 *
 * A single byte range gets 206 Partial Content, a range past the end
 * 416, several ranges or none the whole file (200). Files are streamed
 * by shoal_http_stream_parts(): read as the response goes out, never
 * mapped (a file truncated while it is served would make a read through a
 * mapping raise SIGBUS); a short read ends the response early and closes
 * the connection, so the client sees a response shorter than its
 * Content-Length.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include "shoal-error.h"
#include "shoal-http.h"
#include "shoal-pxe-http.h"
#include "shoal-pxe-path.h"

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

/* @path below @root_fd, or an error (not found, outside the root) */
gboolean
shoal_pxe_http_serve_file (SoupServerMessage *msg, gint root_fd, const gchar *path, GError **error)
{
  SoupMessageHeaders *request = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  gint fd = shoal_pxe_path_open_beneath (root_fd, path, error);
  SoupRange *ranges = NULL;
  ShoalHttpPart part = { .fd = -1, .name = path };
  struct stat st;
  gint n = 0;

  if (fd < 0)
    return FALSE;
  if (fstat (fd, &st) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED, "cannot read %s: %s", path, g_strerror (errno));
      g_close (fd, NULL);
      return FALSE;
    }
  soup_message_headers_set_content_type (headers, "application/octet-stream", NULL);
  soup_message_headers_replace (headers, "Accept-Ranges", "bytes");
  if (!range_is_satisfiable (request, (gsize) st.st_size))
    {
      g_autofree gchar *value = g_strdup_printf ("bytes */%" G_GINT64_FORMAT, (gint64) st.st_size);
      soup_message_headers_replace (headers, "Content-Range", value);
      soup_server_message_set_status (msg, SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE, NULL);
      g_close (fd, NULL);
      return TRUE;
    }
  part.fd = fd;
  part.length = st.st_size;
  if (st.st_size > 0 && soup_message_headers_get_ranges (request, st.st_size, &ranges, &n) && n == 1)
    {
      part.offset = ranges[0].start;
      part.length = ranges[0].end - ranges[0].start + 1;
      soup_message_headers_set_content_range (headers, ranges[0].start, ranges[0].end, st.st_size);
      soup_server_message_set_status (msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
    }
  else
    soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  if (ranges != NULL)
    soup_message_headers_free_ranges (request, ranges);
  soup_message_headers_set_content_length (headers, part.length);
  shoal_http_stream_parts (msg, &part, 1, NULL, NULL, NULL);
  return TRUE;
}
