/* shoal-image-fetch.c: downloading an image file to import it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Ironic's image_source and MAAS's boot resources name images by URL. An
 * import from an http:// or https:// URL downloads the file into the
 * store's tmp/ folder (formats such as qcow2 are read out of order), then
 * imports it as a local file and deletes it. A URL may end with
 * "#sha256=HEX", the convention of pip's hash fragments: the file must have
 * that SHA-256 (the checksum a distribution publishes beside its images),
 * or nothing is imported. Redirects are followed. A body cut short is
 * resumed where it stopped (Range, with If-Range so that a file changed
 * meanwhile starts again; started again when the server gave neither a
 * strong ETag nor a Last-Modified at least a second before its Date), up
 * to five times; anything else but a complete 200 is an error that says
 * what the server did. A body whose
 * length the server did not say (chunked, or ended by closing the
 * connection) may have been cut short without a sign: the end is only
 * taken once the server confirms it (asked for a range from there, it
 * answers 416 with a Content-Range of that size) or when the URL's
 * checksum will check it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>
#include <unistd.h>

#include "shoal-error.h"
#include "shoal-image-files-private.h"
#include "shoal-manifest.h"

#define FETCH_BUFFER (1u << 20)

/**
 * shoal_image_files_is_uri:
 *
 * Returns: whether @path names an image by an http or https URL (the
 *   import downloads it) rather than a file
 */
gboolean
shoal_image_files_is_uri (const gchar *path)
{
  return g_str_has_prefix (path, "http://") || g_str_has_prefix (path, "https://");
}

/**
 * shoal_image_fetch_display:
 *
 * Returns: (transfer full): @uri without the password it may hold, for
 *   messages and logs
 */
gchar *
shoal_image_fetch_display (const gchar *uri)
{
  g_autoptr(GUri) parsed = g_uri_parse (uri, G_URI_FLAGS_HAS_PASSWORD, NULL);

  return parsed != NULL ? g_uri_to_string_partial (parsed, G_URI_HIDE_PASSWORD) : g_strdup (uri);
}

/* the URL without "#sha256=HEX", and HEX (lowercase) in *sha256 if it was there */
static gchar *
split_checksum (const gchar  *uri,
                gchar       **sha256,
                GError      **error)
{
  const gchar *hash = strchr (uri, '#');

  *sha256 = NULL;
  if (hash == NULL)
    return g_strdup (uri);
  /* 64 hexadecimal digits, either case: what the manifest library takes
   * as a SHA-256 once in lowercase */
  if (g_str_has_prefix (hash, "#sha256="))
    *sha256 = g_ascii_strdown (hash + 8, -1);
  if (*sha256 == NULL || !shoal_manifest_is_valid_id (*sha256))
    {
      g_autofree gchar *shown = shoal_image_fetch_display (uri);

      g_clear_pointer (sha256, g_free);
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("The fragment of %s must be #sha256= and 64 hexadecimal digits"), shown);
      return NULL;
    }
  return g_strndup (uri, (gsize) (hash - uri));
}

/**
 * shoal_image_fetch_name:
 *
 * Returns: (transfer full): the last segment of @uri's path, without its
 *   query and fragment ("" if there is none), to name the image after
 */
gchar *
shoal_image_fetch_name (const gchar *uri)
{
  g_autoptr(GUri) parsed = g_uri_parse (uri, G_URI_FLAGS_NONE, NULL);
  const gchar *path = parsed != NULL ? g_uri_get_path (parsed) : "";
  const gchar *slash = strrchr (path, '/');

  return g_uri_unescape_string (slash != NULL ? slash + 1 : path, NULL);
}

#define FETCH_ATTEMPTS 5    /* a body cut short is resumed this many times, at most */

typedef enum {
  COPY_DONE,
  COPY_CUT,             /* the body ended early or broke: resume it */
  COPY_UNSURE,          /* the body ended, but its length was never said */
  COPY_FAILED,
} CopyResult;

typedef struct {
  const gchar             *shown;       /* the URL, for messages */
  int                      fd;
  GChecksum               *checksum;
  guint64                  received;    /* bytes in the file */
  guint64                  total;       /* the whole file's size, if sized */
  gboolean                 sized;       /* the server said the file's size */
  gboolean                 checked;     /* the URL gives its SHA-256 */
  gchar                   *validator;   /* ETag or Last-Modified: If-Range */
  ShoalImportProgressFunc  progress;
  gpointer                 progress_data;
} Download;

/* appends the body to the file, hashing it; COPY_CUT with error set when
 * it ends before the whole file or breaks, COPY_UNSURE when it ends and
 * nobody said how long the file is */
static CopyResult
copy_body (Download      *d,
           GInputStream  *in,
           GCancellable  *cancellable,
           GError       **error)
{
  g_autofree guint8 *buf = g_malloc (FETCH_BUFFER);
  g_autoptr(GError) local_error = NULL;

  for (;;)
    {
      gssize n = g_input_stream_read (in, buf, FETCH_BUFFER, cancellable, &local_error);

      if (n < 0 && g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_CANCELLED,
                       _("Cannot download %s: %s"), d->shown, local_error->message);
          return COPY_FAILED;
        }
      if (n < 0)
        {
          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                       _("Cannot download %s: %s"), d->shown, local_error->message);
          return COPY_CUT;
        }
      if (n == 0)
        break;
      g_checksum_update (d->checksum, buf, (gsize) n);
      if (!shoal_image_files_write_all (d->fd, buf, (gsize) n))
        {
          int saved = errno;

          g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
                       _("Cannot write the download of %s: %s"), d->shown, g_strerror (saved));
          return COPY_FAILED;
        }
      d->received += (guint64) n;
      if (d->progress != NULL)
        d->progress (d->received, d->total, d->progress_data);
    }
  if (!d->sized)
    return COPY_UNSURE;
  if (d->received != d->total)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                   _("Cannot download %s: the server sent %llu of %llu bytes"), d->shown,
                   (unsigned long long) d->received, (unsigned long long) d->total);
      return COPY_CUT;
    }
  return COPY_DONE;
}

/* the answer's body, if its status is 200, 206 or (probe) 416 */
static GInputStream *
send_request (SoupSession   *session,
              SoupMessage   *msg,
              const gchar   *uri,
              gboolean       probe,
              GCancellable  *cancellable,
              GError       **error)
{
  g_autoptr(GError) local_error = NULL;
  GInputStream *in = soup_session_send (session, msg, cancellable, &local_error);
  guint status;

  if (in == NULL)
    {
      g_set_error (error, SHOAL_ERROR,
                   g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ?
                   SHOAL_ERROR_CANCELLED : SHOAL_ERROR_FAILED,
                   _("Cannot download %s: %s"), uri, local_error->message);
      return NULL;
    }
  status = soup_message_get_status (msg);
  if (status != SOUP_STATUS_OK && status != SOUP_STATUS_PARTIAL_CONTENT &&
      !(probe && status == SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE))
    {
      g_set_error (error, SHOAL_ERROR,
                   status == SOUP_STATUS_NOT_FOUND ? SHOAL_ERROR_NOT_FOUND : SHOAL_ERROR_FAILED,
                   _("Cannot download %s: the server answered %u %s"), uri, status,
                   soup_message_get_reason_phrase (msg));
      g_object_unref (in);
      return NULL;
    }
  return in;
}

/* The answer's Last-Modified if it is a strong validator (RFC 9110 8.8.2.2:
 * its Date is at least a second later, so the file did not change again in
 * the second it names), NULL otherwise */
static gchar *
strong_date (Download           *d,
             SoupMessageHeaders *headers)
{
  const gchar *modified = soup_message_headers_get_one (headers, "Last-Modified");
  const gchar *date = soup_message_headers_get_one (headers, "Date");
  g_autoptr(GDateTime) modified_time = modified != NULL ? soup_date_time_new_from_http_string (modified) : NULL;
  g_autoptr(GDateTime) date_time = date != NULL ? soup_date_time_new_from_http_string (date) : NULL;

  if (modified_time == NULL)
    return NULL;
  if (date_time == NULL || g_date_time_difference (date_time, modified_time) < G_USEC_PER_SEC)
    {
      g_debug ("the Last-Modified of %s is a weak validator (Date %s): no resumption against it",
               d->shown, date != NULL ? date : "missing");
      return NULL;
    }
  return g_strdup (modified);
}

/* Where the answer to msg goes in the file: a 206 that continues at
 * d->received is appended; anything else (a 200: the server ignored the
 * range, or the file changed) starts the file again */
static gboolean
place_answer (Download     *d,
              SoupMessage  *msg,
              GError      **error)
{
  SoupMessageHeaders *headers = soup_message_get_response_headers (msg);
  goffset start = -1, end = -1, total = -1;

  if (soup_message_get_status (msg) == SOUP_STATUS_PARTIAL_CONTENT &&
      soup_message_headers_get_content_range (headers, &start, &end, &total) &&
      (guint64) start == d->received && (!d->sized || total == (goffset) d->total))
    {
      g_info ("resuming the download of %s at %llu bytes", d->shown, (unsigned long long) d->received);
      if (total >= 0)
        {
          d->total = (guint64) total;
          d->sized = TRUE;
        }
      return TRUE;
    }
  if (soup_message_get_status (msg) == SOUP_STATUS_PARTIAL_CONTENT && d->received == 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                   _("Cannot download %s: the server answered part of the file, not asked for"), d->shown);
      return FALSE;
    }
  if (soup_message_get_status (msg) == SOUP_STATUS_PARTIAL_CONTENT)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                   _("Cannot download %s: the server resumed at another place than asked"), d->shown);
      return FALSE;
    }
  if (d->received > 0)
    g_info ("the download of %s starts again: the server sent the whole file", d->shown);
  if (ftruncate (d->fd, 0) < 0 || lseek (d->fd, 0, SEEK_SET) < 0)
    {
      int saved = errno;

      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
                   _("Cannot write the download of %s: %s"), d->shown, g_strerror (saved));
      return FALSE;
    }
  g_checksum_reset (d->checksum);
  d->received = 0;
  /* chunked or ended by a close: a premature end looks like the end */
  d->sized = soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH;
  d->total = d->sized ? (guint64) soup_message_headers_get_content_length (headers) : 0;
  /* If-Range takes a strong ETag or a strong date (RFC 9110 13.1.5);
   * without either, a resumption could join two versions of the file:
   * start again */
  g_free (d->validator);
  d->validator = g_strdup (soup_message_headers_get_one (headers, "ETag"));
  if (d->validator != NULL && g_str_has_prefix (d->validator, "W/"))
    g_clear_pointer (&d->validator, g_free);
  if (d->validator == NULL)
    d->validator = strong_date (d, headers);
  return TRUE;
}

/* The end of a body whose length was not said cannot be confirmed: it is
 * taken if the URL's checksum will check it, refused otherwise */
static CopyResult
cannot_confirm (Download  *d,
                GError   **error)
{
  if (d->checked)
    {
      g_info ("the server does not confirm that %s ends at %llu bytes: its checksum will tell",
              d->shown, (unsigned long long) d->received);
      return COPY_DONE;
    }
  g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
               _("Cannot download %s: the server did not say the file's length and does not confirm "
                 "that it ends at %llu bytes (it may have been cut short); give its SHA-256 in the "
                 "URL (#sha256=) to accept it"),
               d->shown, (unsigned long long) d->received);
  return COPY_FAILED;
}

/* whether the Content-Range of a 416 gives the bytes received as the size */
static gboolean
ends_at_received (Download           *d,
                  SoupMessageHeaders *headers)
{
  const gchar *range = soup_message_headers_get_one (headers, "Content-Range");
  gchar *end = NULL;
  guint64 size;

  if (range == NULL || !g_str_has_prefix (range, "bytes */") || !g_ascii_isdigit (range[8]))
    return FALSE;
  size = g_ascii_strtoull (range + 8, &end, 10);
  return *end == '\0' && size == d->received;
}

/* The answer to the question whether the file ends at d->received (msg:
 * the rest from there, if the file did not change) was not a 206: COPY_DONE
 * if it says so, or if the URL's checksum will tell */
static CopyResult
confirm_end (Download     *d,
             SoupMessage  *msg,
             GError      **error)
{
  if (soup_message_get_status (msg) == SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE &&
      ends_at_received (d, soup_message_get_response_headers (msg)))
    {
      g_info ("the server confirms that %s ends at %llu bytes", d->shown, (unsigned long long) d->received);
      return COPY_DONE;
    }
  return cannot_confirm (d, error);
}

/* One GET: the whole file, or (d->received > 0) the rest of it; probe:
 * the body ended with no length said, the GET asks for the rest to learn
 * whether there is any */
static CopyResult
attempt (Download      *d,
         SoupSession   *session,
         const gchar   *url,
         gboolean       probe,
         GCancellable  *cancellable,
         GError       **error)
{
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);
  g_autoptr(GInputStream) in = NULL;

  if (msg == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT, _("%s is not a valid URL"), d->shown);
      return COPY_FAILED;
    }
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Accept-Encoding", "identity");
  if (d->received > 0 && d->validator != NULL)
    {
      g_autofree gchar *range = g_strdup_printf ("bytes=%llu-", (unsigned long long) d->received);
      SoupMessageHeaders *headers = soup_message_get_request_headers (msg);

      /* the rest, only if the file did not change meanwhile */
      soup_message_headers_replace (headers, "Range", range);
      soup_message_headers_replace (headers, "If-Range", d->validator);
    }
  in = send_request (session, msg, d->shown, probe, cancellable, error);
  if (in == NULL)
    return COPY_FAILED;
  if (probe && soup_message_get_status (msg) != SOUP_STATUS_PARTIAL_CONTENT)
    return confirm_end (d, msg, error);
  if (!place_answer (d, msg, error))
    return COPY_FAILED;
  return copy_body (d, in, cancellable, error);
}

static gchar *
fetch (const gchar              *root,
       const gchar              *uri,
       ShoalImportProgressFunc   progress,
       gpointer                  progress_data,
       GCancellable             *cancellable,
       GError                  **error)
{
  g_autofree gchar *sha256 = NULL;
  g_autofree gchar *url = split_checksum (uri, &sha256, error);
  g_autofree gchar *shown = url != NULL ? shoal_image_fetch_display (url) : NULL;
  g_autofree gchar *path = NULL;
  g_autoptr(SoupSession) session = NULL;
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr(GUri) parsed = NULL;
  Download d = { .shown = shown, .checksum = checksum, .checked = sha256 != NULL,
                 .progress = progress, .progress_data = progress_data };
  g_autoptr(GError) last_error = NULL;
  CopyResult result = COPY_CUT;

  if (url == NULL)
    return NULL;
  parsed = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, NULL);
  if (parsed == NULL || g_uri_get_host (parsed) == NULL || *g_uri_get_host (parsed) == '\0')
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT, _("%s is not a valid URL"), shown);
      return NULL;
    }
  /* shoal_image_files_gc() deletes what a crash leaves under this name */
  path = g_build_filename (root, "tmp", SHOAL_IMAGE_FILES_DOWNLOAD_PREFIX "XXXXXX", NULL);
  d.fd = g_mkstemp_full (path, O_RDWR | O_CLOEXEC, 0600);
  if (d.fd < 0)
    {
      int saved = errno;

      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
                   _("Cannot create a file for the download of %s: %s"), shown, g_strerror (saved));
      return NULL;
    }
  g_info ("downloading %s to %s", shown, path);
  session = soup_session_new_with_options ("user-agent", "shoal/" PACKAGE_VERSION " ", NULL);
  /* the file's own bytes: lengths, ranges and the URL's checksum are of
   * those, not of what a decoder would make of a compressed transfer */
  soup_session_remove_feature_by_type (session, SOUP_TYPE_CONTENT_DECODER);
  for (guint i = 0; i < FETCH_ATTEMPTS && (result == COPY_CUT || result == COPY_UNSURE); i++)
    {
      gboolean probe = result == COPY_UNSURE;

      /* a pause before each resumption, longer each time */
      if (i > 0 && g_cancellable_is_cancelled (cancellable))
        break;
      if (i > 0 && !probe)
        g_usleep (i * G_USEC_PER_SEC / 4);
      g_clear_error (&last_error);
      if (probe && d.validator == NULL)
        result = cannot_confirm (&d, &last_error);
      else
        result = attempt (&d, session, url, probe, cancellable, &last_error);
      if (result == COPY_CUT)
        g_info ("%s (attempt %u of %u)", last_error->message, i + 1, FETCH_ATTEMPTS);
    }
  if (result == COPY_UNSURE && !g_cancellable_is_cancelled (cancellable))
    result = cannot_confirm (&d, &last_error);
  close (d.fd);
  g_free (d.validator);
  if (result == COPY_DONE && sha256 != NULL && strcmp (g_checksum_get_string (checksum), sha256) != 0)
    {
      g_set_error (&last_error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   _("The download of %s has SHA-256 %s, not %s as the URL says"), shown,
                   g_checksum_get_string (checksum), sha256);
      result = COPY_FAILED;
    }
  if (result != COPY_DONE)
    {
      if (last_error == NULL || g_cancellable_is_cancelled (cancellable))
        {
          g_clear_error (&last_error);
          g_set_error (&last_error, SHOAL_ERROR, SHOAL_ERROR_CANCELLED, _("Cannot download %s: cancelled"), shown);
        }
      g_propagate_error (error, g_steal_pointer (&last_error));
      g_unlink (path);
      return NULL;
    }
  return g_steal_pointer (&path);
}

/**
 * shoal_image_fetch:
 * @root: the store (its tmp/ folder receives the file)
 * @uri: an http or https URL, maybe ending with #sha256=HEX
 *
 * Downloads @uri into the store's tmp/ folder, checking its SHA-256 when
 * the URL gives one. Blocking: call it from a worker thread.
 *
 * Returns: (transfer full): the path of the file (the caller deletes it),
 *   or %NULL with @error set (and no file left)
 */
gchar *
shoal_image_fetch (const gchar              *root,
                   const gchar              *uri,
                   ShoalImportProgressFunc   progress,
                   gpointer                  progress_data,
                   GCancellable             *cancellable,
                   GError                  **error)
{
  /* a session of this call's own, in a context of its own: libsoup's sync
   * API from any thread, whatever the caller's main context does */
  g_autoptr(GMainContext) context = g_main_context_new ();
  gchar *path;

  g_main_context_push_thread_default (context);
  path = fetch (root, uri, progress, progress_data, cancellable, error);
  g_main_context_pop_thread_default (context);
  return path;
}
