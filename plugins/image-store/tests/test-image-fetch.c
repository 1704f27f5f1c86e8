/* test-image-fetch.c: importing an image by URL from an HTTP server on
 * loopback: the same image as the file; a checksum in the URL is checked;
 * redirects are followed; a body cut short is resumed where it stopped, or
 * started again when the file changed; a body of no said length is only
 * taken when the server confirms its end or the URL has a checksum; a
 * server that compresses transfers is not asked to; a Last-Modified as
 * late as the Date is no validator for If-Range; a
 * missing file, a body always cut short, a refused
 * connection, a wrong checksum and an https server whose certificate no
 * authority signed are errors, and leave nothing behind
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "shoal-error.h"
#include "shoal-image-files.h"
#include "image-test-util.h"

typedef struct {
  gchar        *dir;
  gchar        *root;
  GBytes       *xz;            /* the file the server serves */
  gchar        *xz_sha256;
  gchar        *raw_id;        /* the image id of the disk in it */
  GThread      *thread;
  GMainContext *context;
  GMainLoop    *loop;
  GSocketService *service;
  guint16       port;
  gint          requests;
  gint          flaky;         /* requests for /flaky.img.xz and /changed.img.xz */
  gint          gzip_asked;    /* a request accepted gzip */
  gint          if_range_seen; /* requests for /lastmod-... with If-Range */
  GTlsCertificate *tls;        /* set: the server speaks https with it */
} Fixture;

static void
send_all (GOutputStream *out,
          const void    *data,
          gsize          len)
{
  g_output_stream_write_all (out, data, len, NULL, NULL, NULL);
}

/* an https client must refuse a certificate nobody signed: the handshake
 * fails (nothing may be read from the connection before it, or the
 * ClientHello is gone) */
static void
refuse_tls (Fixture           *f,
            GSocketConnection *connection)
{
  g_autoptr(GIOStream) tls = g_tls_server_connection_new (G_IO_STREAM (connection), f->tls, NULL);

  if (tls != NULL && g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, NULL))
    g_io_stream_close (tls, NULL, NULL);
}

/* a body whose length the headers do not say, in chunks (/chunked...) or
 * ended by the close (/eof...); "-cut": the first answer stops halfway, at
 * the end of a chunk (no last chunk); "-nov": no ETag; "-norange": ranges
 * are ignored. A range with the ETag in If-Range gets 206 with its length,
 * or 416 "bytes *\/size" from the end on */
static void
answer_unsized (Fixture       *f,
                GOutputStream *out,
                const gchar   *path,
                const gchar   *range,
                const gchar   *if_range)
{
  gsize len = 0;
  const guint8 *body = g_bytes_get_data (f->xz, &len);
  gboolean first = g_atomic_int_add (&f->flaky, 1) == 0;
  gboolean chunked = g_str_has_prefix (path, "/chunked");
  const gchar *etag = strstr (path, "-nov") != NULL ? NULL : "\"u1\"";
  guint64 from = range != NULL ? g_ascii_strtoull (range, NULL, 10) : 0;
  gsize n = first && strstr (path, "-cut") != NULL ? len / 2 : len;
  g_autofree gchar *head = NULL;
  g_autofree gchar *size = NULL;

  if (range != NULL && etag != NULL && g_strcmp0 (if_range, etag) == 0 && strstr (path, "-norange") == NULL)
    {
      if (from < len)
        head = g_strdup_printf ("HTTP/1.1 206 Partial Content\r\nETag: %s\r\n"
                                "Content-Range: bytes %llu-%" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT "\r\n"
                                "Content-Length: %llu\r\nConnection: close\r\n\r\n",
                                etag, (unsigned long long) from, len - 1, len,
                                (unsigned long long) (len - from));
      else
        head = g_strdup_printf ("HTTP/1.1 416 Range Not Satisfiable\r\nETag: %s\r\n"
                                "Content-Range: bytes */%" G_GSIZE_FORMAT "\r\n"
                                "Content-Length: 0\r\nConnection: close\r\n\r\n", etag, len);
      send_all (out, head, strlen (head));
      if (from < len)
        send_all (out, body + from, len - from);
      return;
    }
  head = g_strdup_printf ("HTTP/1.1 200 OK\r\n%s%s%s%sConnection: close\r\n\r\n",
                          etag != NULL ? "ETag: " : "", etag != NULL ? etag : "", etag != NULL ? "\r\n" : "",
                          chunked ? "Transfer-Encoding: chunked\r\n" : "");
  send_all (out, head, strlen (head));
  if (!chunked)
    {
      send_all (out, body, n);
      return;
    }
  size = g_strdup_printf ("%" G_GSIZE_MODIFIER "x\r\n", n);
  send_all (out, size, strlen (size));
  send_all (out, body, n);
  send_all (out, "\r\n", 2);
  if (n == len)
    send_all (out, "0\r\n\r\n", 5);
}

/* a file dated by Last-Modified only, whose first answer breaks off
 * halfway; a range is served when If-Range names the date. "-weak": the
 * Date is the Last-Modified (the file may have changed again within that
 * second), "-strong": ten seconds later */
static void
answer_lastmod (Fixture       *f,
                GOutputStream *out,
                const gchar   *path,
                const gchar   *range,
                const gchar   *if_range)
{
  const gchar *modified = "Tue, 03 Nov 2026 10:00:00 GMT";
  const gchar *date = strstr (path, "-strong") != NULL ? "Tue, 03 Nov 2026 10:00:10 GMT" : modified;
  gsize len = 0;
  const guint8 *body = g_bytes_get_data (f->xz, &len);
  gboolean first = g_atomic_int_add (&f->flaky, 1) == 0;
  guint64 from = range != NULL ? g_ascii_strtoull (range, NULL, 10) : 0;
  g_autofree gchar *head = NULL;

  if (if_range != NULL)
    g_atomic_int_inc (&f->if_range_seen);
  if (range != NULL && g_strcmp0 (if_range, modified) == 0 && from < len)
    {
      head = g_strdup_printf ("HTTP/1.1 206 Partial Content\r\nLast-Modified: %s\r\nDate: %s\r\n"
                              "Content-Range: bytes %llu-%" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT "\r\n"
                              "Content-Length: %llu\r\nConnection: close\r\n\r\n",
                              modified, date, (unsigned long long) from, len - 1, len,
                              (unsigned long long) (len - from));
      send_all (out, head, strlen (head));
      send_all (out, body + from, len - from);
      return;
    }
  head = g_strdup_printf ("HTTP/1.1 200 OK\r\nLast-Modified: %s\r\nDate: %s\r\nContent-Length: %" G_GSIZE_FORMAT "\r\n"
                          "Connection: close\r\n\r\n", modified, date, len);
  send_all (out, head, strlen (head));
  send_all (out, body, first ? len / 2 : len);
}

/* a server that compresses what it sends when the client accepts gzip
 * (Content-Length: the compressed size), and serves ranges of the file */
static void
answer_gzip (Fixture       *f,
             GOutputStream *out,
             gboolean       gzip,
             const gchar   *range)
{
  g_autoptr(GConverter) compressor = G_CONVERTER (g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP, -1));
  g_autoptr(GOutputStream) memory = g_memory_output_stream_new_resizable ();
  g_autoptr(GOutputStream) zout = g_converter_output_stream_new (memory, compressor);
  g_autoptr(GBytes) body = NULL;
  g_autofree gchar *head = NULL;
  gsize len = g_bytes_get_size (f->xz);
  guint64 from = range != NULL ? MIN (g_ascii_strtoull (range, NULL, 10), len) : 0;

  if (gzip)
    g_atomic_int_set (&f->gzip_asked, 1);
  g_output_stream_write_all (zout, (const guint8 *) g_bytes_get_data (f->xz, NULL) + from, len - from,
                             NULL, NULL, NULL);
  g_output_stream_close (zout, NULL, NULL);
  body = gzip ? g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (memory))
              : g_bytes_new_from_bytes (f->xz, from, len - from);
  if (range != NULL)
    head = g_strdup_printf ("HTTP/1.1 206 Partial Content\r\nETag: \"g1\"\r\n%s"
                            "Content-Range: bytes %llu-%" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT "\r\n"
                            "Content-Length: %" G_GSIZE_FORMAT "\r\nConnection: close\r\n\r\n",
                            gzip ? "Content-Encoding: gzip\r\n" : "", (unsigned long long) from, len - 1, len,
                            g_bytes_get_size (body));
  else
    head = g_strdup_printf ("HTTP/1.1 200 OK\r\nETag: \"g1\"\r\n%sContent-Length: %" G_GSIZE_FORMAT "\r\n"
                            "Connection: close\r\n\r\n", gzip ? "Content-Encoding: gzip\r\n" : "",
                            g_bytes_get_size (body));
  send_all (out, head, strlen (head));
  send_all (out, g_bytes_get_data (body, NULL), g_bytes_get_size (body));
}

/* one request per connection; the answer depends on the path */
static void
answer (Fixture           *f,
        GSocketConnection *connection)
{
  g_autoptr(GDataInputStream) in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  g_autofree gchar *request = g_data_input_stream_read_line (in, NULL, NULL, NULL);
  g_auto(GStrv) words = request != NULL ? g_strsplit (request, " ", 3) : NULL;
  const gchar *path = words != NULL && words[0] != NULL && words[1] != NULL ? words[1] : "";
  gsize len = 0;
  const guint8 *body = g_bytes_get_data (f->xz, &len);
  g_autofree gchar *head = NULL;
  g_autofree gchar *range = NULL;
  g_autofree gchar *if_range = NULL;
  gboolean gzip = FALSE;

  /* the headers, up to the empty line (at most 100 of them) */
  for (guint i = 0; i < 100; i++)
    {
      g_autofree gchar *line = g_data_input_stream_read_line (in, NULL, NULL, NULL);

      if (line == NULL || line[0] == '\0' || strcmp (line, "\r") == 0)
        break;
      g_strchomp (line);
      if (g_ascii_strncasecmp (line, "Range: bytes=", 13) == 0)
        range = g_strdup (line + 13);
      else if (g_ascii_strncasecmp (line, "If-Range: ", 10) == 0)
        if_range = g_strdup (line + 10);
      else if (g_ascii_strncasecmp (line, "Accept-Encoding: ", 17) == 0 && strstr (line, "gzip") != NULL)
        gzip = TRUE;
    }
  if (strcmp (path, "/flaky.img.xz") == 0 || strcmp (path, "/changed.img.xz") == 0)
    {
      /* the first answer breaks off halfway; then a range is served if
       * If-Range still names the file (flaky), or the whole new file
       * (changed: its ETag is another) */
      gboolean first = g_atomic_int_add (&f->flaky, 1) == 0;
      const gchar *etag = first || path[1] == 'f' ? "\"v1\"" : "\"v2\"";
      guint64 from = range != NULL ? g_ascii_strtoull (range, NULL, 10) : 0;

      if (!first && range != NULL && g_strcmp0 (if_range, etag) == 0 && from < len)
        {
          head = g_strdup_printf ("HTTP/1.1 206 Partial Content\r\nETag: %s\r\n"
                                  "Content-Range: bytes %llu-%" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT "\r\n"
                                  "Content-Length: %llu\r\nConnection: close\r\n\r\n",
                                  etag, (unsigned long long) from, len - 1, len,
                                  (unsigned long long) (len - from));
          send_all (out, head, strlen (head));
          send_all (out, body + from, len - from);
        }
      else
        {
          head = g_strdup_printf ("HTTP/1.1 200 OK\r\nETag: %s\r\nContent-Length: %" G_GSIZE_FORMAT "\r\n"
                                  "Connection: close\r\n\r\n", etag, len);
          send_all (out, head, strlen (head));
          send_all (out, body, first ? len / 2 : len);
        }
    }
  else if (g_str_has_prefix (path, "/lastmod-"))
    answer_lastmod (f, out, path, range, if_range);
  else if (strcmp (path, "/gzip.img.xz") == 0)
    answer_gzip (f, out, gzip, range);
  else if (g_str_has_prefix (path, "/chunked") || g_str_has_prefix (path, "/eof"))
    answer_unsized (f, out, path, range, if_range);
  else if (strcmp (path, "/unnamed.img.xz") == 0)
    {
      /* no ETag, no Last-Modified: nothing to resume against, so the
       * client must ask for the whole file again (a range is refused) */
      gboolean first = g_atomic_int_add (&f->flaky, 1) == 0;

      if (range != NULL)
        head = g_strdup ("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      else
        head = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Length: %" G_GSIZE_FORMAT "\r\n"
                                "Connection: close\r\n\r\n", len);
      send_all (out, head, strlen (head));
      if (range == NULL)
        send_all (out, body, first ? len / 2 : len);
    }
  else if (strcmp (path, "/images/disk.img.xz") == 0 || strcmp (path, "/short.img.xz") == 0)
    {
      head = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Length: %" G_GSIZE_FORMAT "\r\n"
                              "Content-Type: application/x-xz\r\nConnection: close\r\n\r\n", len);
      send_all (out, head, strlen (head));
      /* the short one stops halfway and closes the connection */
      send_all (out, body, path[1] == 's' ? len / 2 : len);
    }
  else if (strcmp (path, "/latest") == 0)
    {
      head = g_strdup ("HTTP/1.1 302 Found\r\nLocation: /images/disk.img.xz\r\n"
                       "Content-Length: 0\r\nConnection: close\r\n\r\n");
      send_all (out, head, strlen (head));
    }
  else
    {
      head = g_strdup ("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      send_all (out, head, strlen (head));
    }
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
}

static gboolean
on_run (GThreadedSocketService *service,
        GSocketConnection      *connection,
        GObject                *source,
        gpointer                user_data)
{
  Fixture *f = user_data;

  g_atomic_int_inc (&f->requests);
  if (f->tls != NULL)
    refuse_tls (f, connection);
  else
    answer (f, connection);
  return TRUE;
}

/* the server's thread: its own main context, where the service accepts */
static gpointer
serve (gpointer data)
{
  Fixture *f = data;

  g_main_context_push_thread_default (f->context);
  g_main_loop_run (f->loop);
  /* stopped here, where it accepts: the cancelled accept finishes here */
  g_socket_service_stop (f->service);
  g_socket_listener_close (G_SOCKET_LISTENER (f->service));
  for (guint i = 0; i < 100 && g_main_context_iteration (f->context, FALSE); i++)
    ;
  g_main_context_pop_thread_default (f->context);
  return NULL;
}

static void
start_server (Fixture *f)
{
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  f->context = g_main_context_new ();
  f->loop = g_main_loop_new (f->context, FALSE);
  g_main_context_push_thread_default (f->context);
  f->service = g_threaded_socket_service_new (4);
  g_socket_listener_add_address (G_SOCKET_LISTENER (f->service), any, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error);
  g_assert_no_error (error);
  f->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_signal_connect (f->service, "run", G_CALLBACK (on_run), f);
  g_socket_service_start (f->service);
  g_main_context_pop_thread_default (f->context);
  f->thread = g_thread_new ("http", serve, f);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  gsize len = 200 * 1024 + 123;
  g_autofree guint8 *disk = g_malloc0 (len);
  g_autofree gchar *raw = NULL;
  g_autofree gchar *xz = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *xz_tool = g_find_program_in_path ("xz");
  gchar *contents = NULL;
  gsize xz_len = 0;

  f->dir = g_dir_make_tmp ("shoal-image-fetch-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->root = g_build_filename (f->dir, "store", NULL);
  image_test_fill_random (disk, 100 * 1024, 3);
  raw = g_build_filename (f->dir, "disk.img", NULL);
  g_assert_true (g_file_set_contents (raw, (const gchar *) disk, (gssize) len, NULL));
  f->raw_id = shoal_image_files_import (f->root, raw, "disk", 4096, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  if (xz_tool == NULL)
    return;
  image_test_spawn (f->dir, (const gchar *[]) { "/bin/sh", "-ec", "xz -c disk.img > disk.img.xz", NULL });
  xz = g_build_filename (f->dir, "disk.img.xz", NULL);
  g_assert_true (g_file_get_contents (xz, &contents, &xz_len, NULL));
  f->xz = g_bytes_new_take (contents, xz_len);
  f->xz_sha256 = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, f->xz);
  if (data != NULL)
    {
      g_autofree gchar *openssl = g_find_program_in_path ("openssl");
      g_autofree gchar *cert = g_build_filename (f->dir, "cert.pem", NULL);
      g_autofree gchar *key = g_build_filename (f->dir, "key.pem", NULL);

      if (openssl == NULL)
        return;
      image_test_spawn (f->dir, (const gchar *[]) { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                                    "-keyout", "key.pem", "-out", "cert.pem", "-days", "1",
                                                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                                                    NULL });
      f->tls = g_tls_certificate_new_from_files (cert, key, &error);
      g_assert_no_error (error);
    }
  start_server (f);
}

static gboolean
quit (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->thread != NULL)
    {
      g_main_context_invoke (f->context, quit, f->loop);
      g_thread_join (f->thread);
      g_object_unref (f->service);
      g_main_loop_unref (f->loop);
      g_main_context_unref (f->context);
    }
  image_test_rm_rf (f->dir);
  g_free (f->dir);
  g_free (f->root);
  g_free (f->raw_id);
  g_free (f->xz_sha256);
  g_clear_pointer (&f->xz, g_bytes_unref);
  g_clear_object (&f->tls);
}

static gchar *
url (Fixture     *f,
     const gchar *path)
{
  return g_strdup_printf ("http://127.0.0.1:%u%s", f->port, path);
}

/* the store's tmp/ folder is empty: no download is left behind */
static void
assert_tmp_empty (Fixture *f)
{
  g_autofree gchar *tmp = g_build_filename (f->root, "tmp", NULL);
  g_autoptr(GDir) dir = g_dir_open (tmp, 0, NULL);

  g_assert_nonnull (dir);
  g_assert_null (g_dir_read_name (dir));
}

static void
test_by_url (Fixture       *f,
             gconstpointer  data)
{
  g_autofree gchar *plain = url (f, "/images/disk.img.xz");
  g_autofree gchar *checked = NULL;
  g_autofree gchar *redirected = url (f, "/latest");
  g_autoptr(GError) error = NULL;
  g_autoptr(ShoalImageInfo) info = NULL;
  g_autofree gchar *id = NULL;
  g_autofree gchar *id2 = NULL;
  g_autofree gchar *id3 = NULL;

  if (f->thread == NULL)
    {
      g_test_skip ("xz is missing");
      return;
    }
  g_assert_true (shoal_image_files_is_uri (plain));
  g_assert_false (shoal_image_files_is_uri ("/srv/images/http://x"));
  /* named after the URL's last segment, without its suffixes */
  id = shoal_image_files_import (f->root, plain, NULL, 4096, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  info = shoal_image_files_inspect (f->root, id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (info->name, ==, "disk");
  g_assert_cmpstr (id, ==, f->raw_id);
  assert_tmp_empty (f);

  checked = g_strdup_printf ("%s#sha256=%s", plain, f->xz_sha256);
  id2 = shoal_image_files_import (f->root, checked, "disk", 4096, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (id2, ==, f->raw_id);

  id3 = shoal_image_files_import (f->root, redirected, "disk", 4096, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (id3, ==, f->raw_id);
  g_assert_cmpint (g_atomic_int_get (&f->requests), ==, 4);
  assert_tmp_empty (f);
}

/* a download that breaks off is resumed where it stopped; a file that
 * changed meanwhile, or that the server gave no validator for, is fetched
 * again whole: the same image every way */
static void
test_resume (Fixture       *f,
             gconstpointer  data)
{
  static const gchar *paths[] = { "/flaky.img.xz", "/changed.img.xz", "/unnamed.img.xz" };

  if (f->thread == NULL)
    {
      g_test_skip ("xz is missing");
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autofree gchar *uri = url (f, paths[i]);
      g_autofree gchar *checked = g_strdup_printf ("%s#sha256=%s", uri, f->xz_sha256);
      g_autoptr(GError) error = NULL;
      g_autofree gchar *id = NULL;

      g_atomic_int_set (&f->flaky, 0);
      id = shoal_image_files_import (f->root, checked, "disk", 4096, NULL, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (id, ==, f->raw_id);
      g_assert_cmpint (g_atomic_int_get (&f->flaky), ==, 2);
    }
}

/* a Last-Modified is an If-Range validator only when the Date is a second
 * or more later (RFC 9110 8.8.2.2); otherwise the download starts again */
static void
test_weak_date (Fixture       *f,
                gconstpointer  data)
{
  static const struct {
    const gchar *path;
    gint         if_range;
  } cases[] = {
    { "/lastmod-weak.img.xz", 0 },
    { "/lastmod-strong.img.xz", 1 },
  };

  if (f->thread == NULL)
    {
      g_test_skip ("xz is missing");
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree gchar *uri = url (f, cases[i].path);
      g_autoptr(GError) error = NULL;
      g_autofree gchar *id = NULL;

      g_atomic_int_set (&f->flaky, 0);
      g_atomic_int_set (&f->if_range_seen, 0);
      id = shoal_image_files_import (f->root, uri, "disk", 4096, NULL, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (id, ==, f->raw_id);
      g_assert_cmpint (g_atomic_int_get (&f->flaky), ==, 2);
      g_assert_cmpint (g_atomic_int_get (&f->if_range_seen), ==, cases[i].if_range);
    }
}

/* a server that would compress the transfer is not asked to: the file
 * comes as it is */
static void
test_identity (Fixture       *f,
               gconstpointer  data)
{
  g_autofree gchar *plain = url (f, "/gzip.img.xz");
  g_autofree gchar *uri = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *id = NULL;

  if (f->thread == NULL)
    {
      g_test_skip ("xz is missing");
      return;
    }
  uri = g_strdup_printf ("%s#sha256=%s", plain, f->xz_sha256);
  id = shoal_image_files_import (f->root, uri, "disk", 4096, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (id, ==, f->raw_id);
  g_assert_cmpint (g_atomic_int_get (&f->gzip_asked), ==, 0);
  g_assert_cmpint (g_atomic_int_get (&f->requests), ==, 1);
}

/* bodies of no said length: a cut one is resumed, a whole one is taken
 * once the server confirms its end (or the URL's checksum will check it),
 * and without either it is refused */
static void
test_unsized (Fixture       *f,
              gconstpointer  data)
{
  static const struct {
    const gchar *path;
    gboolean     checked;
    gint         requests;
    gboolean     fails;
    gint         code;
  } cases[] = {
    { "/chunked-cut.img.xz", FALSE, 2, FALSE, 0 },          /* 200 cut, 206 */
    { "/eof-cut.img.xz", FALSE, 2, FALSE, 0 },
    { "/chunked.img.xz", FALSE, 2, FALSE, 0 },              /* 200, 416 */
    { "/eof.img.xz", FALSE, 2, FALSE, 0 },
    { "/chunked-nov.img.xz", TRUE, 1, FALSE, 0 },           /* the checksum tells */
    { "/chunked-norange.img.xz", TRUE, 2, FALSE, 0 },
    { "/chunked-nov.img.xz", FALSE, 1, TRUE, SHOAL_ERROR_FAILED },
    { "/chunked-norange.img.xz", FALSE, 2, TRUE, SHOAL_ERROR_FAILED },
    { "/chunked-cut-nov.img.xz", FALSE, 1, TRUE, SHOAL_ERROR_FAILED },
    { "/chunked-cut-nov.img.xz", TRUE, 1, TRUE, SHOAL_ERROR_INVALID_DATA },
  };

  if (f->thread == NULL)
    {
      g_test_skip ("xz is missing");
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree gchar *plain = url (f, cases[i].path);
      g_autofree gchar *uri = cases[i].checked ? g_strdup_printf ("%s#sha256=%s", plain, f->xz_sha256)
                                               : g_strdup (plain);
      g_autoptr(GError) error = NULL;
      g_autofree gchar *id = NULL;

      g_test_message ("%s", uri);
      g_atomic_int_set (&f->flaky, 0);
      id = shoal_image_files_import (f->root, uri, "disk", 4096, NULL, NULL, NULL, NULL, &error);
      if (!cases[i].fails)
        {
          g_assert_no_error (error);
          g_assert_cmpstr (id, ==, f->raw_id);
        }
      else
        {
          g_assert_error (error, SHOAL_ERROR, cases[i].code);
          g_assert_null (id);
          g_assert_true (strstr (error->message, cases[i].checked ? "SHA-256" : "does not confirm") != NULL);
          assert_tmp_empty (f);
        }
      g_assert_cmpint (g_atomic_int_get (&f->flaky), ==, cases[i].requests);
    }
}

static void
expect_error (Fixture     *f,
              const gchar *uri,
              gint         code,
              const gchar *what)
{
  image_test_expect_import_error (f->root, uri, code, what, 1);   /* the fixture's own import */
  assert_tmp_empty (f);
}

static void
test_failures (Fixture       *f,
               gconstpointer  data)
{
  g_autofree gchar *plain = url (f, "/images/disk.img.xz");
  g_autofree gchar *missing = url (f, "/images/gone.img.xz");
  g_autofree gchar *cut = url (f, "/short.img.xz");
  g_autofree gchar *wrong = NULL;
  g_autofree gchar *md5 = NULL;
  g_autofree gchar *secret = NULL;
  g_autofree gchar *refused = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  if (f->thread == NULL)
    {
      g_test_skip ("xz is missing");
      return;
    }
  wrong = g_strdup_printf ("%s#sha256=%064d", plain, 0);
  expect_error (f, wrong, SHOAL_ERROR_INVALID_DATA, "SHA-256");
  md5 = g_strdup_printf ("%s#md5=d41d8cd98f00b204e9800998ecf8427e", plain);
  expect_error (f, md5, SHOAL_ERROR_INVALID_ARGUMENT, "#sha256=");
  /* a password in the URL is not repeated in messages */
  secret = g_strdup_printf ("http://shoal:s3cret@127.0.0.1:%u/images/gone.img.xz", f->port);
  {
    g_autoptr(GError) error = NULL;
    g_autofree gchar *id = shoal_image_files_import (f->root, secret, "disk", 4096, NULL, NULL, NULL, NULL, &error);

    g_assert_null (id);
    g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
    g_assert_nonnull (strstr (error->message, "http://shoal@127.0.0.1:"));
    g_assert_null (strstr (error->message, "s3cret"));
  }
  expect_error (f, missing, SHOAL_ERROR_NOT_FOUND, "404");
  expect_error (f, cut, SHOAL_ERROR_FAILED, "Cannot download");

  /* a port nobody listens on: bound, never listening */
  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_assert_true (g_socket_bind (socket, any, FALSE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  refused = g_strdup_printf ("http://127.0.0.1:%u/disk.img.xz",
                             g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  expect_error (f, refused, SHOAL_ERROR_FAILED, "Cannot download");
}

static void
test_untrusted_https (Fixture       *f,
                      gconstpointer  data)
{
  g_autofree gchar *https = NULL;

  if (f->thread == NULL)
    {
      g_test_skip ("xz or openssl is missing");
      return;
    }
  https = g_strdup_printf ("https://127.0.0.1:%u/images/disk.img.xz", f->port);
  expect_error (f, https, SHOAL_ERROR_FAILED, "TLS certificate");
  g_assert_cmpint (g_atomic_int_get (&f->requests), ==, 1);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/shoal/image-store/fetch/by-url", Fixture, NULL, fixture_setup, test_by_url, fixture_teardown);
  g_test_add ("/shoal/image-store/fetch/failures", Fixture, NULL, fixture_setup, test_failures, fixture_teardown);
  g_test_add ("/shoal/image-store/fetch/resume", Fixture, NULL, fixture_setup, test_resume, fixture_teardown);
  g_test_add ("/shoal/image-store/fetch/unsized", Fixture, NULL, fixture_setup, test_unsized, fixture_teardown);
  g_test_add ("/shoal/image-store/fetch/identity", Fixture, NULL, fixture_setup, test_identity, fixture_teardown);
  g_test_add ("/shoal/image-store/fetch/weak-date", Fixture, NULL, fixture_setup, test_weak_date, fixture_teardown);
  g_test_add ("/shoal/image-store/fetch/untrusted-https", Fixture, "https", fixture_setup, test_untrusted_https,
              fixture_teardown);
  return g_test_run ();
}
