/* shoal-unicast-server.c: images over HTTP (manifest, chunks, raw with Range)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Disk reads run in worker threads (GTask); the main context only moves
 * bytes between them and libsoup. The raw image is streamed a piece (at most
 * one chunk, at most 1 MiB) at a time with at most four pieces queued per
 * response, so a slow client costs a few MiB of memory, never the image.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "shoal-error.h"

#include "shoal-http-range.h"
#include "shoal-image-files.h"
#include "shoal-unicast-server.h"
#include "shoal-unicast-private.h"

#define CACHE_MAX      32
#define MANIFEST_TYPE  "text/plain; charset=us-ascii"
#define OCTET_TYPE     "application/octet-stream"



static void
cached_free (gpointer data)
{
  Cached *c = data;

  g_bytes_unref (c->text);
  shoal_manifest_free (c->manifest);
  g_hash_table_unref (c->chunks);
}

static Cached *
cached_ref (Cached *c)
{
  return g_atomic_rc_box_acquire (c);
}

void
shoal_unicast_cached_unref (Cached *c)
{
  g_atomic_rc_box_release_full (c, cached_free);
}

ShoalUnicastServer *
shoal_unicast_server_new (const gchar          *store_root,
                          ShoalUnicastAuthFunc  auth,
                          gpointer              auth_data)
{
  ShoalUnicastServer *self = g_new0 (ShoalUnicastServer, 1);

  self->ref_count = 1;
  self->root = g_strdup (store_root);
  self->auth = auth;
  self->auth_data = auth_data;
  self->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) shoal_unicast_cached_unref);
  self->zeros = g_bytes_new_take (g_malloc0 (PIECE_MAX), PIECE_MAX);
  return self;
}

ShoalUnicastServer *
shoal_unicast_server_ref (ShoalUnicastServer *self)
{
  g_atomic_int_inc (&self->ref_count);
  return self;
}

void
shoal_unicast_server_unref (ShoalUnicastServer *self)
{
  if (!g_atomic_int_dec_and_test (&self->ref_count))
    return;
  g_free (self->root);
  g_hash_table_unref (self->cache);
  g_bytes_unref (self->zeros);
  g_free (self);
}

/* Drops the caller's reference; requests in flight keep theirs. */
void
shoal_unicast_server_free (ShoalUnicastServer *self)
{
  if (self != NULL)
    shoal_unicast_server_unref (self);
}

guint64
shoal_unicast_server_get_bytes_sent (ShoalUnicastServer *self)
{
  return self->bytes_sent;
}

/* --- One request ------------------------------------------------------------ */


void
shoal_unicast_request_free (Request *req)
{
  shoal_unicast_server_unref (req->server);
  g_object_unref (req->msg);
  g_free (req->id);
  g_free (req->chunk_hex);
  g_clear_pointer (&req->cached, shoal_unicast_cached_unref);
  g_free (req);
}


void
shoal_unicast_respond_error (SoupServerMessage *msg,
               guint              status,
               const gchar       *message)
{
  g_autofree gchar *body = g_strdup_printf ("%s\n", message);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY,
                                    body, strlen (body));
}

/* Answers 500 in place of a planned answer whose bytes cannot be read:
 * drops what described the representation, and says the new length. */
void
shoal_unicast_respond_failed (SoupServerMessage *msg,
                              const gchar       *message)
{
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  SoupMessageBody *body = soup_server_message_get_response_body (msg);

  soup_message_headers_remove (resp, "Content-Range");
  soup_message_headers_remove (resp, "Accept-Ranges");
  soup_message_headers_remove (resp, "ETag");
  soup_message_body_truncate (body);
  shoal_unicast_respond_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, message);
  soup_message_headers_set_content_length (resp, body->length);
}

/* Decides how to answer the Range header (If-Range with another validator
 * than @etag means: send everything; a method other than GET, HEAD among
 * them, ignores it, RFC 9110 14.2). Removes the header afterwards so that
 * libsoup does not apply it a second time. */
static ShoalRangeResult
request_ranges (SoupServerMessage  *msg,
                guint64             size,
                const gchar        *etag,
                GArray            **ranges)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const gchar *if_range = soup_message_headers_get_one (headers, "If-Range");
  ShoalRangeResult result = SHOAL_RANGE_FULL;

  *ranges = NULL;
  if (soup_server_message_get_method (msg) == SOUP_METHOD_GET &&
      (if_range == NULL || g_strcmp0 (if_range, etag) == 0))
    result = shoal_http_range_parse (soup_message_headers_get_one (headers, "Range"), size, ranges);
  soup_message_headers_remove (headers, "Range");
  return result;
}


void
shoal_unicast_segment_free (Segment *s)
{
  g_clear_pointer (&s->literal, g_bytes_unref);
  g_free (s);
}

static Segment *
segment_new (GBytes  *literal,
             guint64  start,
             guint64  end)
{
  Segment *s = g_new0 (Segment, 1);

  s->literal = literal;
  s->start = start;
  s->end = end;
  return s;
}

/* If-Match, then If-None-Match (RFC 9110 13.2.2; the representation
 * exists, and has no date). FALSE when they answered the request: 412 for
 * an If-Match without @etag, 304 for an If-None-Match with it (only GET and
 * HEAD come here), with the ETag and the length a 200 would have. */
static gboolean
preconditions_pass (SoupServerMessage *msg,
                    guint64            size,
                    const gchar       *etag)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  const gchar *if_match = soup_message_headers_get_list (headers, "If-Match");
  const gchar *if_none_match = soup_message_headers_get_list (headers, "If-None-Match");

  if (if_match != NULL && !shoal_http_etag_matches (if_match, etag, FALSE))
    {
      shoal_unicast_respond_error (msg, SOUP_STATUS_PRECONDITION_FAILED, "The ETag does not match If-Match");
      return FALSE;
    }
  if (if_none_match != NULL && shoal_http_etag_matches (if_none_match, etag, TRUE))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_MODIFIED, NULL);
      soup_message_headers_replace (resp, "ETag", etag);
      soup_message_headers_set_content_length (resp, (goffset) size);
      return FALSE;
    }
  return TRUE;
}

/* Sets status and headers for the chosen ranges; returns the segments of the
 * body and its length in *length. NULL (and a complete answer: 304, 412,
 * 416) when the preconditions answer the request or no range is
 * satisfiable. */
GQueue *
shoal_unicast_plan_response (SoupServerMessage *msg,
               guint64            size,
               const gchar       *etag,
               const gchar       *content_type,
               guint64           *length)
{
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  g_autoptr(GArray) ranges = NULL;
  ShoalRangeResult result;
  g_autofree gchar *boundary = NULL;
  GQueue *segments;

  if (!preconditions_pass (msg, size, etag))
    {
      soup_message_headers_remove (soup_server_message_get_request_headers (msg), "Range");
      return NULL;
    }
  result = request_ranges (msg, size, etag, &ranges);
  segments = g_queue_new ();

  soup_message_headers_replace (resp, "Accept-Ranges", "bytes");
  soup_message_headers_replace (resp, "ETag", etag);
  if (result == SHOAL_RANGE_UNSATISFIABLE)
    {
      g_autofree gchar *cr = g_strdup_printf ("bytes */%" G_GUINT64_FORMAT, size);

      soup_message_headers_replace (resp, "Content-Range", cr);
      shoal_unicast_respond_error (msg, SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE, "Range not satisfiable");
      g_queue_free (segments);
      return NULL;
    }
  *length = 0;
  if (result == SHOAL_RANGE_FULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_message_headers_set_content_type (resp, content_type, NULL);
      if (size > 0)
        g_queue_push_tail (segments, segment_new (NULL, 0, size - 1));
      *length = size;
      return segments;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
  if (ranges->len == 1)
    {
      ShoalByteRange *r = &g_array_index (ranges, ShoalByteRange, 0);

      soup_message_headers_set_content_type (resp, content_type, NULL);
      soup_message_headers_set_content_range (resp, (goffset) r->start, (goffset) r->end, (goffset) size);
      g_queue_push_tail (segments, segment_new (NULL, r->start, r->end));
      *length = r->end - r->start + 1;
      return segments;
    }
  boundary = g_strdup_printf ("shoal-%08x%08x", g_random_int (), g_random_int ());
  {
    g_autofree gchar *type = g_strdup_printf ("multipart/byteranges; boundary=%s", boundary);

    soup_message_headers_replace (resp, "Content-Type", type);
  }
  for (guint i = 0; i < ranges->len; i++)
    {
      ShoalByteRange *r = &g_array_index (ranges, ShoalByteRange, i);
      gchar *head = g_strdup_printf ("%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %"
                                     G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "\r\n\r\n",
                                     i == 0 ? "" : "\r\n", boundary, content_type, r->start, r->end, size);

      *length += strlen (head) + (r->end - r->start + 1);
      g_queue_push_tail (segments, segment_new (g_bytes_new_take (head, strlen (head)), 0, 0));
      g_queue_push_tail (segments, segment_new (NULL, r->start, r->end));
    }
  {
    gchar *tail = g_strdup_printf ("\r\n--%s--\r\n", boundary);

    *length += strlen (tail);
    g_queue_push_tail (segments, segment_new (g_bytes_new_take (tail, strlen (tail)), 0, 0));
  }
  return segments;
}

/* Appends the segments to the body and completes it, frees them; content
 * holds the bytes of the representation from offset on. */
static void
append_segments (Request *req,
                 GQueue  *segments,
                 GBytes  *content,
                 guint64  offset)
{
  SoupMessageBody *body = soup_server_message_get_response_body (req->msg);
  Segment *s;

  while ((s = g_queue_pop_head (segments)) != NULL)
    {
      if (s->literal != NULL)
        soup_message_body_append_bytes (body, s->literal);
      else
        {
          g_autoptr(GBytes) slice = g_bytes_new_from_bytes (content, s->start - offset, s->end - s->start + 1);

          soup_message_body_append_bytes (body, slice);
        }
      req->server->bytes_sent += s->literal != NULL ? g_bytes_get_size (s->literal) : s->end - s->start + 1;
      shoal_unicast_segment_free (s);
    }
  g_queue_free (segments);
  soup_message_body_complete (body);
}

/* Answers with (ranges of) bytes held in memory. */
static void
respond_bytes (Request     *req,
               GBytes      *content,
               const gchar *etag,
               const gchar *content_type)
{
  SoupMessageBody *body = soup_server_message_get_response_body (req->msg);
  guint64 length = 0;
  GQueue *segments = shoal_unicast_plan_response (req->msg, g_bytes_get_size (content), etag, content_type, &length);

  if (segments == NULL)
    return;
  soup_message_headers_set_content_length (soup_server_message_get_response_headers (req->msg), (goffset) length);
  if (req->head)
    {
      g_queue_free_full (segments, (GDestroyNotify) shoal_unicast_segment_free);
      soup_message_body_complete (body);
      return;
    }
  append_segments (req, segments, content, 0);
}

/* --- Reading from the store in worker threads -------------------------------- */

static Cached *
load_cached (const gchar  *root,
             const gchar  *id,
             GError      **error)
{
  g_autoptr(GBytes) text = shoal_image_files_load_manifest_bytes (root, id, error);
  ShoalManifestError merr = { 0 };
  ShoalManifest *m;
  Cached *c;

  if (text == NULL)
    return NULL;
  m = shoal_manifest_parse (g_bytes_get_data (text, NULL), g_bytes_get_size (text), &merr);
  if (m == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "manifest of image %s is invalid: %s", id, merr.message);
      return NULL;
    }
  c = g_atomic_rc_box_new0 (Cached);
  c->text = g_steal_pointer (&text);
  c->manifest = m;
  c->chunks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint64 i = 0; i < m->n_chunks; i++)
    {
      const guint8 *digest = shoal_manifest_chunk_digest (m, i);
      gchar *hex;

      if (digest == NULL)
        continue;
      hex = g_malloc (SHOAL_MANIFEST_HEX_LEN + 1);
      shoal_manifest_digest_to_hex (digest, hex);
      g_hash_table_insert (c->chunks, hex, GSIZE_TO_POINTER ((gsize) i + 1));
    }
  return c;
}

static void
load_manifest_thread (GTask        *task,
                      gpointer      source_object,
                      gpointer      task_data,
                      GCancellable *cancellable)
{
  Request *req = task_data;
  GError *error = NULL;
  Cached *c = load_cached (req->server->root, req->id, &error);

  if (c == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, c, (GDestroyNotify) shoal_unicast_cached_unref);
}

/* Reads bytes [offset, offset + length) of one file. */
static GBytes *
read_range (const gchar  *path,
            guint64       offset,
            gsize         length,
            GError      **error)
{
  g_autofree guint8 *buf = g_malloc (MAX (length, 1));
  gsize done = 0;
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s: %s", path, g_strerror (saved));
      return NULL;
    }
  while (done < length)
    {
      gssize n = pread (fd, buf + done, length - done, (off_t) (offset + done));

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      done += (gsize) n;
    }
  close (fd);
  if (done != length)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                   "%s: short read (%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes)", path, done, length);
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&buf), length);
}

typedef struct {
  gchar   *path;
  guint64  offset;
  gsize    length;
} ReadJob;

static void
read_job_free (ReadJob *job)
{
  g_free (job->path);
  g_free (job);
}

static void
read_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  ReadJob *job = task_data;
  GError *error = NULL;
  GBytes *bytes = read_range (job->path, job->offset, job->length, &error);

  if (bytes == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, bytes, (GDestroyNotify) g_bytes_unref);
}

void
shoal_unicast_read_async (const gchar         *path,
            guint64              offset,
            gsize                length,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, NULL, callback, user_data);
  ReadJob *job = g_new0 (ReadJob, 1);

  job->path = g_strdup (path);
  job->offset = offset;
  job->length = length;
  g_task_set_task_data (task, job, (GDestroyNotify) read_job_free);
  g_task_run_in_thread (task, read_thread);
}


/* --- Routes -------------------------------------------------------------- */

static gchar *
request_token (SoupServerMessage *msg,
               GHashTable        *query)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const gchar *auth = soup_message_headers_get_one (headers, "Authorization");
  const gchar *token = query != NULL ? g_hash_table_lookup (query, "token") : NULL;

  if (auth != NULL && g_ascii_strncasecmp (auth, "Bearer ", 7) == 0)
    return g_strstrip (g_strdup (auth + 7));
  return g_strdup (token);
}

/* /images/<id>/manifest, /images/<id>/raw, /images/<id>/chunks/<sha256> */
static ShoalUnicastRequest
parse_path (const char  *path,
            gchar      **id,
            gchar      **chunk_hex)
{
  g_auto(GStrv) parts = g_strsplit (path, "/", 6);
  guint n = g_strv_length (parts);

  *id = NULL;
  *chunk_hex = NULL;
  if (n < 4 || parts[0][0] != '\0' || g_strcmp0 (parts[1], "images") != 0 ||
      !shoal_manifest_is_valid_id (parts[2]))
    return SHOAL_UNICAST_REQUEST_OTHER;
  *id = g_strdup (parts[2]);
  if (n == 4 && g_strcmp0 (parts[3], "manifest") == 0)
    return SHOAL_UNICAST_REQUEST_MANIFEST;
  if (n == 4 && g_strcmp0 (parts[3], "raw") == 0)
    return SHOAL_UNICAST_REQUEST_RAW;
  if (n == 5 && g_strcmp0 (parts[3], "chunks") == 0 && shoal_manifest_is_valid_id (parts[4]))
    {
      *chunk_hex = g_strdup (parts[4]);
      return SHOAL_UNICAST_REQUEST_CHUNK;
    }
  return SHOAL_UNICAST_REQUEST_OTHER;
}

/* A chunk's answer waiting for the bytes its ranges need: [offset, offset +
 * length) of the chunk file */
typedef struct {
  Request *req;
  GQueue  *segments;
  guint64  offset;
  guint64  length;
  guint64  body_length;
} ChunkAnswer;

static void
chunk_answer_free (ChunkAnswer *answer)
{
  if (answer->segments != NULL)
    g_queue_free_full (answer->segments, (GDestroyNotify) shoal_unicast_segment_free);
  shoal_unicast_request_free (answer->req);
  g_free (answer);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChunkAnswer, chunk_answer_free)

static void
chunk_read (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(ChunkAnswer) answer = user_data;
  Request *req = answer->req;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_task_propagate_pointer (G_TASK (result), &error);

  if (bytes == NULL)
    {
      g_warning ("Cannot serve chunk %s of image %s: %s", req->chunk_hex, req->id, error->message);
      shoal_unicast_respond_failed (req->msg, "The chunk is missing or damaged in the image store");
    }
  else
    {
      soup_message_headers_set_content_length (soup_server_message_get_response_headers (req->msg),
                                               (goffset) answer->body_length);
      append_segments (req, g_steal_pointer (&answer->segments), bytes, answer->offset);
    }
  soup_server_message_unpause (req->msg);
}

/* Answers a chunk request from the manifest: HEAD and 416 read nothing,
 * ranges read only the part of the chunk file they span. */
static void
serve_chunk (Request *req,
             guint64  index)
{
  g_autofree gchar *etag = g_strdup_printf ("\"%s\"", req->chunk_hex);
  g_autofree gchar *path = shoal_image_files_chunk_path (req->server->root, req->chunk_hex);
  guint64 size = shoal_manifest_chunk_length (req->cached->manifest, index);
  ChunkAnswer *answer = g_new0 (ChunkAnswer, 1);
  guint64 end = 0;

  answer->req = req;
  answer->segments = shoal_unicast_plan_response (req->msg, size, etag, OCTET_TYPE, &answer->body_length);
  if (answer->segments == NULL || req->head)
    {
      if (answer->segments != NULL)
        soup_message_headers_set_content_length (soup_server_message_get_response_headers (req->msg),
                                                 (goffset) answer->body_length);
      soup_message_body_complete (soup_server_message_get_response_body (req->msg));
      soup_server_message_unpause (req->msg);
      chunk_answer_free (answer);
      return;
    }
  answer->offset = G_MAXUINT64;
  for (GList *l = answer->segments->head; l != NULL; l = l->next)
    {
      Segment *s = l->data;

      if (s->literal != NULL)
        continue;
      answer->offset = MIN (answer->offset, s->start);
      end = MAX (end, s->end + 1);
    }
  if (end == 0)
    answer->offset = 0;     /* no range: nothing to read */
  answer->length = end - answer->offset;
  shoal_unicast_read_async (path, answer->offset, answer->length, chunk_read, answer);
}

/* The manifest is in req->cached; the message is paused. */
static void
dispatch (Request *req)
{
  g_autofree gchar *etag = NULL;
  gpointer index = NULL;

  if (req->kind == SHOAL_UNICAST_REQUEST_RAW)
    {
      shoal_unicast_stream_raw (req);
      return;
    }
  if (req->kind == SHOAL_UNICAST_REQUEST_MANIFEST)
    {
      etag = g_strdup_printf ("\"%s\"", req->id);
      respond_bytes (req, req->cached->text, etag, MANIFEST_TYPE);
      soup_server_message_unpause (req->msg);
      shoal_unicast_request_free (req);
      return;
    }
  if (!g_hash_table_lookup_extended (req->cached->chunks, req->chunk_hex, NULL, &index))
    {
      shoal_unicast_respond_error (req->msg, SOUP_STATUS_NOT_FOUND, "No such chunk in this image");
      soup_server_message_unpause (req->msg);
      shoal_unicast_request_free (req);
      return;
    }
  serve_chunk (req, GPOINTER_TO_SIZE (index) - 1);
}

static void
manifest_loaded (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Request *req = user_data;
  g_autoptr(GError) error = NULL;
  Cached *c = g_task_propagate_pointer (G_TASK (result), &error);

  if (c == NULL)
    {
      gboolean missing = g_error_matches (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);

      if (!missing)
        g_warning ("Cannot load manifest of image %s: %s", req->id, error->message);
      shoal_unicast_respond_error (req->msg, missing ? SOUP_STATUS_NOT_FOUND : SOUP_STATUS_INTERNAL_SERVER_ERROR,
                                   missing ? "No such image" : "The image manifest cannot be read");
      soup_server_message_unpause (req->msg);
      shoal_unicast_request_free (req);
      return;
    }
  if (g_hash_table_size (req->server->cache) >= CACHE_MAX)
    g_hash_table_remove_all (req->server->cache);
  g_hash_table_replace (req->server->cache, g_strdup (req->id), cached_ref (c));
  req->cached = c;
  dispatch (req);
}

static gboolean
check_request (ShoalUnicastServer  *self,
               SoupServerMessage   *msg,
               GHashTable          *query,
               ShoalUnicastRequest  kind,
               const gchar         *id)
{
  g_autofree gchar *token = request_token (msg, query);
  const gchar *method = soup_server_message_get_method (msg);
  guint status = self->auth != NULL ? self->auth (token, kind, id, msg, self->auth_data) : SOUP_STATUS_OK;

  if (status == SOUP_STATUS_UNAUTHORIZED)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "WWW-Authenticate", "Bearer realm=\"shoal\"");
      shoal_unicast_respond_error (msg, status, token == NULL ? "A device token is required"
                                                              : "Unknown device token");
      return FALSE;
    }
  if (status != SOUP_STATUS_OK)
    {
      /* the function may have said why */
      if (soup_server_message_get_response_body (msg)->length == 0)
        shoal_unicast_respond_error (msg, status, "This device may not fetch images now");
      else
        soup_server_message_set_status (msg, status, NULL);
      return FALSE;
    }
  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", "GET, HEAD");
      shoal_unicast_respond_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "Only GET and HEAD");
      return FALSE;
    }
  if (kind == SHOAL_UNICAST_REQUEST_OTHER)
    {
      shoal_unicast_respond_error (msg, SOUP_STATUS_NOT_FOUND, "No such resource");
      return FALSE;
    }
  return TRUE;
}

/**
 * shoal_unicast_server_handle:
 *
 * A #SoupServerCallback; @user_data is the #ShoalUnicastServer.
 */
void
shoal_unicast_server_handle (SoupServer        *server,
                             SoupServerMessage *msg,
                             const char        *path,
                             GHashTable        *query,
                             gpointer           user_data)
{
  ShoalUnicastServer *self = user_data;
  g_autofree gchar *id = NULL;
  g_autofree gchar *chunk_hex = NULL;
  ShoalUnicastRequest kind = parse_path (path, &id, &chunk_hex);
  g_autofree gchar *manifest_path = NULL;
  g_autoptr(GTask) task = NULL;
  Cached *cached;
  Request *req;

  if (!check_request (self, msg, query, kind, id))
    return;
  req = g_new0 (Request, 1);
  req->server = shoal_unicast_server_ref (self);
  req->msg = g_object_ref (msg);
  req->kind = kind;
  req->id = g_steal_pointer (&id);
  req->chunk_hex = g_steal_pointer (&chunk_hex);
  req->head = soup_server_message_get_method (msg) == SOUP_METHOD_HEAD;
  soup_server_message_pause (msg);
  /* a manifest never changes, but the image may have been removed since */
  cached = g_hash_table_lookup (self->cache, req->id);
  manifest_path = shoal_image_files_manifest_path (self->root, req->id);
  if (cached != NULL && !g_file_test (manifest_path, G_FILE_TEST_EXISTS))
    {
      g_hash_table_remove (self->cache, req->id);
      cached = NULL;
    }
  if (cached != NULL)
    {
      req->cached = cached_ref (cached);
      dispatch (req);
      return;
    }
  task = g_task_new (NULL, NULL, manifest_loaded, req);
  g_task_set_task_data (task, req, NULL);
  g_task_run_in_thread (task, load_manifest_thread);
}
