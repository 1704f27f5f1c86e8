/* shoal-unicast-raw.c: streaming the whole image (or ranges of it)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The body is a queue of segments (multipart headers, byte ranges of the
 * image). A byte range is sent a piece at a time: a piece never crosses a
 * chunk and is at most PIECE_MAX bytes; zero chunks come from a buffer of
 * zeros, data chunks from their files, read in a worker thread. At most
 * MAX_IN_FLIGHT pieces wait in libsoup's queue for one response.
 */
#include "config.h"

#include "shoal-http.h"
#include "shoal-unicast-private.h"

typedef struct {
  Request  *req;
  GQueue   *segments;
  guint64   pos;            /* next byte of the head segment */
  gboolean  started;        /* pos is set for the head segment */
  guint     in_flight;
  gboolean  reading;
  gboolean  finished;       /* the message is finished (or the client gone) */
  gboolean  completed;      /* the whole body is queued */
  gboolean  appended;       /* some body was queued: the status line may be out */
  gboolean  failed;         /* a read failed after that: cut the connection */
  gulong    wrote_id;
  gulong    wrote_body_id;
  gulong    finished_id;
} Stream;

static void stream_pump (Stream *st);

static void
stream_free (Stream *st)
{
  if (st->segments != NULL)
    g_queue_free_full (st->segments, (GDestroyNotify) shoal_unicast_segment_free);
  g_signal_handler_disconnect (st->req->msg, st->wrote_id);
  g_signal_handler_disconnect (st->req->msg, st->wrote_body_id);
  g_signal_handler_disconnect (st->req->msg, st->finished_id);
  shoal_unicast_request_free (st->req);
  g_free (st);
}

/* Frees the stream once the message is finished and no read is pending. */
static void
stream_maybe_free (Stream *st)
{
  if (st->finished && !st->reading)
    stream_free (st);
}

static void
stream_append (Stream *st,
               GBytes *bytes)
{
  SoupMessageBody *body = soup_server_message_get_response_body (st->req->msg);

  soup_message_body_append_bytes (body, bytes);
  st->req->server->bytes_sent += g_bytes_get_size (bytes);
  st->appended = TRUE;
  st->in_flight++;
  soup_server_message_unpause (st->req->msg);
}

/* Ends the response after a read failed. Before any byte of the body the
 * answer is still free: a 500. After, the status line may be out: what was
 * queued is sent, then the connection is cut (on_wrote_body) so that the
 * client sees a body shorter than its Content-Length. Either way the body
 * is completed so that libsoup, paused waiting for the next piece, runs to
 * the end of the message, which is then finished and freed. */
static void
stream_fail (Stream       *st,
             const GError *error)
{
  SoupServerMessage *msg = st->req->msg;
  SoupMessageBody *body = soup_server_message_get_response_body (msg);

  g_warning ("Cannot stream image %s: %s", st->req->id, error->message);
  if (!st->appended)
    shoal_unicast_respond_failed (msg, "The image is missing or damaged in the image store");
  st->failed = st->appended;
  g_queue_free_full (g_steal_pointer (&st->segments), (GDestroyNotify) shoal_unicast_segment_free);
  st->segments = g_queue_new ();
  st->completed = TRUE;
  soup_message_body_complete (body);
  soup_server_message_unpause (msg);
}

static void
piece_read (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Stream *st = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_task_propagate_pointer (G_TASK (result), &error);

  st->reading = FALSE;
  if (st->finished)
    {
      stream_maybe_free (st);
      return;
    }
  if (bytes == NULL)
    {
      stream_fail (st, error);
      return;
    }
  st->pos += g_bytes_get_size (bytes);
  stream_append (st, bytes);
  stream_pump (st);
}

/* Queues the next piece of the range segment at the head; FALSE when it
 * started a read and must wait for it. */
static gboolean
stream_range_piece (Stream  *st,
                    Segment *seg)
{
  ShoalManifest *m = st->req->cached->manifest;
  guint64 index = st->pos / m->chunk_size;
  guint64 chunk_start = shoal_manifest_chunk_offset (m, index);
  guint64 chunk_end = chunk_start + shoal_manifest_chunk_length (m, index);   /* exclusive */
  guint64 len = MIN (MIN (seg->end + 1, chunk_end) - st->pos, PIECE_MAX);
  const guint8 *digest = shoal_manifest_chunk_digest (m, index);
  char hex[SHOAL_MANIFEST_HEX_LEN + 1];
  g_autofree gchar *path = NULL;

  if (digest == NULL)
    {
      g_autoptr(GBytes) zeros = g_bytes_new_from_bytes (st->req->server->zeros, 0, len);

      st->pos += len;
      stream_append (st, zeros);
      return TRUE;
    }
  shoal_manifest_digest_to_hex (digest, hex);
  path = shoal_image_files_chunk_path (st->req->server->root, hex);
  st->reading = TRUE;
  shoal_unicast_read_async (path, st->pos - chunk_start, len, piece_read, st);
  return FALSE;
}

static void
stream_pump (Stream *st)
{
  while (!st->finished && !st->reading && st->in_flight < MAX_IN_FLIGHT)
    {
      Segment *seg = g_queue_peek_head (st->segments);

      if (seg == NULL)
        {
          if (!st->completed)
            {
              st->completed = TRUE;
              soup_message_body_complete (soup_server_message_get_response_body (st->req->msg));
              soup_server_message_unpause (st->req->msg);
            }
          return;
        }
      if (seg->literal != NULL)
        {
          stream_append (st, seg->literal);
          shoal_unicast_segment_free (g_queue_pop_head (st->segments));
          continue;
        }
      if (!st->started)
        {
          st->pos = seg->start;
          st->started = TRUE;
        }
      if (st->pos > seg->end)
        {
          shoal_unicast_segment_free (g_queue_pop_head (st->segments));
          st->started = FALSE;
          continue;
        }
      if (!stream_range_piece (st, seg))
        return;
    }
}

static void
on_wrote_chunk (SoupServerMessage *msg,
                Stream            *st)
{
  if (st->in_flight > 0)
    st->in_flight--;
  stream_pump (st);
}

static void
on_wrote_body (SoupServerMessage *msg,
               Stream            *st)
{
  GSocket *socket = shoal_http_message_get_socket (msg);

  if (st->failed && socket != NULL)
    g_socket_shutdown (socket, TRUE, TRUE, NULL);
}

static void
on_finished (SoupServerMessage *msg,
             Stream            *st)
{
  st->finished = TRUE;
  stream_maybe_free (st);
}

/* Answers req (paused, with its manifest) with the raw image. */
void
shoal_unicast_stream_raw (Request *req)
{
  SoupServerMessage *msg = req->msg;
  SoupMessageBody *body = soup_server_message_get_response_body (msg);
  g_autofree gchar *etag = g_strdup_printf ("\"%s\"", req->id);
  guint64 length = 0;
  GQueue *segments = shoal_unicast_plan_response (msg, req->cached->manifest->size, etag,
                                                  "application/octet-stream", &length);
  Stream *st;

  /* a complete answer (416) has its body: libsoup gives its length */
  if (segments != NULL)
    soup_message_headers_set_content_length (soup_server_message_get_response_headers (msg), (goffset) length);
  if (segments == NULL || req->head)
    {
      if (segments != NULL)
        g_queue_free_full (segments, (GDestroyNotify) shoal_unicast_segment_free);
      soup_message_body_complete (body);
      soup_server_message_unpause (msg);
      shoal_unicast_request_free (req);
      return;
    }
  soup_message_body_set_accumulate (body, FALSE);
  st = g_new0 (Stream, 1);
  st->req = req;
  st->segments = segments;
  st->wrote_id = g_signal_connect (msg, "wrote-chunk", G_CALLBACK (on_wrote_chunk), st);
  st->wrote_body_id = g_signal_connect (msg, "wrote-body", G_CALLBACK (on_wrote_body), st);
  st->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (on_finished), st);
  stream_pump (st);
}
