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
 * or nothing is imported. Redirects are followed; anything but a complete
 * 200 response is an error that says what the server did.
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
  if (!g_str_has_prefix (hash, "#sha256=") || strlen (hash + 8) != SHOAL_MANIFEST_HEX_LEN ||
      strspn (hash + 8, "0123456789abcdefABCDEF") != SHOAL_MANIFEST_HEX_LEN)
    {
      g_autofree gchar *shown = shoal_image_fetch_display (uri);

      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT,
                   _("The fragment of %s must be #sha256= and 64 hexadecimal digits"), shown);
      return NULL;
    }
  *sha256 = g_ascii_strdown (hash + 8, -1);
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

static gboolean
copy_body (GInputStream  *in,
           int            fd,
           GChecksum     *checksum,
           const gchar   *uri,
           goffset        expected,
           ShoalImportProgressFunc progress,
           gpointer       progress_data,
           GCancellable  *cancellable,
           GError       **error)
{
  g_autofree guint8 *buf = g_malloc (FETCH_BUFFER);
  g_autoptr(GError) local_error = NULL;
  guint64 total = 0;

  for (;;)
    {
      gssize n = g_input_stream_read (in, buf, FETCH_BUFFER, cancellable, &local_error);
      gsize done = 0;

      if (n < 0)
        {
          g_set_error (error, SHOAL_ERROR,
                       g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ?
                       SHOAL_ERROR_CANCELLED : SHOAL_ERROR_FAILED,
                       _("Cannot download %s: %s"), uri, local_error->message);
          return FALSE;
        }
      if (n == 0)
        break;
      g_checksum_update (checksum, buf, (gsize) n);
      while (done < (gsize) n)
        {
          gssize w = write (fd, buf + done, (gsize) n - done);

          if (w < 0 && errno == EINTR)
            continue;
          if (w < 0)
            {
              int saved = errno;

              g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
                           _("Cannot write the download of %s: %s"), uri, g_strerror (saved));
              return FALSE;
            }
          done += (gsize) w;
        }
      total += (guint64) n;
      if (progress != NULL)
        progress (total, expected > 0 ? (guint64) expected : 0, progress_data);
    }
  if (expected > 0 && total != (guint64) expected)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_FAILED,
                   _("Cannot download %s: the server sent %llu of %llu bytes"), uri,
                   (unsigned long long) total, (unsigned long long) expected);
      return FALSE;
    }
  return TRUE;
}

static GInputStream *
send_request (SoupSession   *session,
              SoupMessage   *msg,
              const gchar   *uri,
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
  if (status != SOUP_STATUS_OK)
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
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  gboolean ok;
  int fd;

  if (url == NULL)
    return NULL;
  msg = soup_message_new ("GET", url);
  if (msg == NULL)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_ARGUMENT, _("%s is not a valid URL"), shown);
      return NULL;
    }
  session = soup_session_new_with_options ("user-agent", "shoal/" PACKAGE_VERSION " ", NULL);
  in = send_request (session, msg, shown, cancellable, error);
  if (in == NULL)
    return NULL;
  path = g_build_filename (root, "tmp", "download-XXXXXX", NULL);
  fd = g_mkstemp_full (path, O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_STORE,
                   _("Cannot create a file for the download of %s: %s"), shown, g_strerror (saved));
      return NULL;
    }
  g_info ("downloading %s to %s", shown, path);
  ok = copy_body (in, fd, checksum, shown, soup_message_headers_get_content_length (soup_message_get_response_headers (msg)),
                  progress, progress_data, cancellable, error);
  close (fd);
  if (ok && sha256 != NULL && strcmp (g_checksum_get_string (checksum), sha256) != 0)
    {
      g_set_error (error, SHOAL_ERROR, SHOAL_ERROR_INVALID_DATA,
                   _("The download of %s has SHA-256 %s, not %s as the URL says"), shown,
                   g_checksum_get_string (checksum), sha256);
      ok = FALSE;
    }
  if (!ok)
    {
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
