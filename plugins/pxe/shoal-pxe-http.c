/* shoal-pxe-http.c: serve boot files over HTTP with Range support
 *
 * A single byte range gets 206 Partial Content, a range past the end
 * 416, several ranges or none the whole file (200). Files are read in
 * chunks of 256 kB as the response goes out (the body does not
 * accumulate), never mapped: a file truncated while it is served would
 * make a read through a mapping raise SIGBUS; a short read ends the
 * response early and closes the connection, so the client sees a
 * response shorter than its Content-Length.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "shoal-error.h"
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

#define CHUNK_SIZE (256 * 1024)

typedef struct {
  gint     fd;
  goffset  offset;      /* of the next chunk */
  goffset  remaining;   /* bytes still to send */
  gchar   *path;
} FileBody;

static void
file_body_free (gpointer data, GClosure *closure)
{
  FileBody *fb = data;

  g_close (fb->fd, NULL);
  g_free (fb->path);
  g_free (fb);
}

/* the next chunk into the response, or its end */
static void
append_chunk (SoupServerMessage *msg, FileBody *fb)
{
  SoupMessageBody *body = soup_server_message_get_response_body (msg);
  gsize want = (gsize) MIN (fb->remaining, CHUNK_SIZE);
  g_autofree guint8 *buf = NULL;
  gssize got;

  if (fb->remaining == 0)
    {
      soup_message_body_complete (body);
      return;
    }
  buf = g_malloc (want);
  do
    got = pread (fb->fd, buf, want, fb->offset);
  while (got < 0 && errno == EINTR);
  if (got <= 0)
    {
      /* headers are out: all that is left is to end short and close */
      g_info ("HTTP %s ended %" G_GINT64_FORMAT " bytes short: %s", fb->path, (gint64) fb->remaining,
              got == 0 ? "the file shrank while it was sent" : g_strerror (errno));
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection", "close");
      soup_message_body_complete (body);
      fb->remaining = 0;
      return;
    }
  fb->offset += got;
  fb->remaining -= got;
  soup_message_body_append_take (body, g_steal_pointer (&buf), (gsize) got);
}

static void
on_wrote_chunk (SoupServerMessage *msg, gpointer user_data)
{
  append_chunk (msg, user_data);
}

/* @path below @root_fd, or an error (not found, outside the root) */
gboolean
shoal_pxe_http_serve_file (SoupServerMessage *msg, gint root_fd, const gchar *path, GError **error)
{
  SoupMessageHeaders *request = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  gint fd = shoal_pxe_path_open_beneath (root_fd, path, error);
  SoupRange *ranges = NULL;
  FileBody *fb;
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
  fb = g_new0 (FileBody, 1);
  fb->fd = fd;
  fb->path = g_strdup (path);
  fb->remaining = st.st_size;
  if (st.st_size > 0 && soup_message_headers_get_ranges (request, st.st_size, &ranges, &n) && n == 1)
    {
      fb->offset = ranges[0].start;
      fb->remaining = ranges[0].end - ranges[0].start + 1;
      soup_message_headers_set_content_range (headers, ranges[0].start, ranges[0].end, st.st_size);
      soup_server_message_set_status (msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
    }
  else
    soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  if (ranges != NULL)
    soup_message_headers_free_ranges (request, ranges);
  soup_message_headers_set_content_length (headers, fb->remaining);
  soup_message_body_set_accumulate (soup_server_message_get_response_body (msg), FALSE);
  g_signal_connect_data (msg, "wrote-chunk", G_CALLBACK (on_wrote_chunk), fb, file_body_free, 0);
  append_chunk (msg, fb);
  return TRUE;
}
