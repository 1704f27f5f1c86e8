/* shoal-http.c: the HTTP server shoal's programs serve devices from
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "shoal-http.h"

#define STREAM_CHUNK (256 * 1024)

/* libsoup before 3.3 (Debian 12 has 3.2.3) never closes a kept-alive
 * connection that its client closes while idle: it begins reading the
 * next request, meets the end of the stream before any byte of it, and
 * finishes that request without telling the server, which therefore never
 * disconnects. The socket stays in CLOSE-WAIT and its descriptor open for
 * as long as the process runs: one per curl, iPXE or agent connection, a
 * fleet's worth until the daemon runs out of descriptors. There each
 * response closes its connection (Connection: close), which libsoup does
 * handle; a device opens a new one for its next request, on a LAN a
 * fraction of a millisecond. */
static void
on_request_started (SoupServer        *server,
                    SoupServerMessage *msg,
                    gpointer           user_data)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection", "close");
}

/**
 * shoal_http_server_new:
 * @server_header: (nullable): the Server header's value, as for
 *   #SoupServer:server-header
 *
 * Creates the HTTP server of a shoal program, not yet listening. With a
 * libsoup older than 3.3, which leaks every kept-alive connection its
 * client closes, each response closes its connection.
 *
 * Returns: (transfer full): a new #SoupServer
 */
SoupServer *
shoal_http_server_new (const gchar *server_header)
{
  SoupServer *server = soup_server_new ("server-header", server_header, NULL);

  if (!soup_check_version (3, 3, 0))
    g_signal_connect (server, "request-started", G_CALLBACK (on_request_started), NULL);
  return server;
}

typedef struct {
  ShoalHttpPart      *parts;     /* names owned */
  guint               n_parts;
  guint               part;      /* being read */
  goffset             done;      /* bytes of it read */
  gboolean            short_read;
  gboolean            wrote_body;
  ShoalHttpStreamDone callback;
  gpointer            user_data;
  GDestroyNotify      notify;
} Stream;

static void
stream_clear (gpointer data)
{
  Stream *s = data;

  for (guint i = 0; i < s->n_parts; i++)
    {
      if (s->parts[i].fd >= 0)
        g_close (s->parts[i].fd, NULL);
      g_free ((gchar *) s->parts[i].name);
    }
  g_free (s->parts);
  if (s->notify != NULL)
    s->notify (s->user_data);
}

static void
stream_closure_unref (gpointer data, GClosure *closure)
{
  g_atomic_rc_box_release_full (data, stream_clear);
}

/* the next chunk of the current part into the response, or its end */
static void
stream_append (SoupServerMessage *msg, Stream *s)
{
  SoupMessageBody *body = soup_server_message_get_response_body (msg);
  g_autofree guint8 *buf = NULL;
  ShoalHttpPart *p;
  gsize want;
  gssize got;

  while (s->part < s->n_parts && s->done == s->parts[s->part].length)
    {
      s->part++;
      s->done = 0;
    }
  if (s->part == s->n_parts)
    {
      soup_message_body_complete (body);
      return;
    }
  p = &s->parts[s->part];
  want = (gsize) MIN (p->length - s->done, STREAM_CHUNK);
  buf = g_malloc (want);
  do
    got = pread (p->fd, buf, want, p->offset + s->done);
  while (got < 0 && errno == EINTR);
  if (got <= 0)
    {
      /* the headers are out: all that is left is to end short and close */
      g_info ("HTTP %s ended %" G_GINT64_FORMAT " bytes short: %s", p->name, (gint64) (p->length - s->done),
              got == 0 ? "the file shrank while it was sent" : g_strerror (errno));
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Connection", "close");
      s->short_read = TRUE;
      s->part = s->n_parts;
      soup_message_body_complete (body);
      return;
    }
  s->done += got;
  soup_message_body_append_take (body, g_steal_pointer (&buf), (gsize) got);
}

static void
on_stream_wrote_chunk (SoupServerMessage *msg, gpointer user_data)
{
  stream_append (msg, user_data);
}

static void
on_stream_wrote_body (SoupServerMessage *msg, gpointer user_data)
{
  Stream *s = user_data;

  s->wrote_body = TRUE;
}

static void
on_stream_finished (SoupServerMessage *msg, gpointer user_data)
{
  Stream *s = user_data;

  if (s->callback != NULL)
    s->callback (msg, s->wrote_body && !s->short_read, s->user_data);
  s->callback = NULL;
}

/**
 * shoal_http_stream_parts:
 * @msg: a message being answered, its status and headers (with the
 *   Content-Length, the sum of the parts' lengths) already set
 * @parts: (array length=n_parts): the pieces of the body, in order; their
 *   descriptors are taken
 * @n_parts: how many
 * @done: (nullable) (scope notified): called when @msg is finished
 * @user_data: for @done
 * @notify: (nullable): frees @user_data, after @done
 *
 * Answers @msg with @parts read as the answer goes out, 256 kB at a time
 * (the body does not accumulate), so an answer holds one chunk in memory,
 * whatever the size of its files. A file that ends early, or cannot be
 * read, ends the body short and closes the connection: the client sees
 * fewer bytes than the Content-Length said.
 */
void
shoal_http_stream_parts (SoupServerMessage   *msg,
                         const ShoalHttpPart *parts,
                         guint                n_parts,
                         ShoalHttpStreamDone  done,
                         gpointer             user_data,
                         GDestroyNotify       notify)
{
  Stream *s = g_atomic_rc_box_new0 (Stream);

  s->parts = g_new0 (ShoalHttpPart, MAX (n_parts, 1));
  s->n_parts = n_parts;
  for (guint i = 0; i < n_parts; i++)
    {
      s->parts[i] = parts[i];
      s->parts[i].length = MAX (parts[i].length, 0);
      s->parts[i].name = g_strdup (parts[i].name != NULL ? parts[i].name : "(body)");
    }
  s->callback = done;
  s->user_data = user_data;
  s->notify = notify;
  soup_message_body_set_accumulate (soup_server_message_get_response_body (msg), FALSE);
  g_signal_connect_data (msg, "wrote-chunk", G_CALLBACK (on_stream_wrote_chunk), g_atomic_rc_box_acquire (s),
                         stream_closure_unref, 0);
  g_signal_connect_data (msg, "wrote-body", G_CALLBACK (on_stream_wrote_body), g_atomic_rc_box_acquire (s),
                         stream_closure_unref, 0);
  g_signal_connect_data (msg, "finished", G_CALLBACK (on_stream_finished), s, stream_closure_unref, 0);
  stream_append (msg, s);
}
