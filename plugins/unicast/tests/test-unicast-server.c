/* test-unicast-server.c: the /images routes with curl on loopback: tokens,
 * manifest, chunks, raw image, single and multiple ranges, 416, resume, a
 * chunk file that cannot be read while the raw image is streamed, chunk
 * answers that read only what they need, If-None-Match and If-Match
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>

#include "shoal-image-files.h"
#include "shoal-unicast-server.h"

#define CHUNK 65536

typedef struct {
  gchar              *dir;
  gchar              *root;
  gchar              *id;
  GBytes             *image;
  ShoalManifest      *manifest;
  SoupServer         *server;
  ShoalUnicastServer *unicast;
  gchar              *base;
  guint               n_refused;
  guint               n_manifest;
} Fixture;

static void
rm_rf (const gchar *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const gchar *entry;

  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree gchar *child = g_build_filename (path, entry, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static guint
auth (const gchar         *token,
      ShoalUnicastRequest  request,
      const gchar         *image_id,
      SoupServerMessage   *msg,
      gpointer             user_data)
{
  Fixture *f = user_data;

  if (g_strcmp0 (token, "good") == 0)
    {
      f->n_manifest += request == SHOAL_UNICAST_REQUEST_MANIFEST;
      return SOUP_STATUS_OK;
    }
  f->n_refused++;
  return g_strcmp0 (token, "banned") == 0 ? SOUP_STATUS_FORBIDDEN : SOUP_STATUS_UNAUTHORIZED;
}

/* [A][zeros][B][A][5000-byte tail] */
static GBytes *
make_image (void)
{
  gsize len = 4 * CHUNK + 5000;
  guint8 *p = g_malloc0 (len);
  g_autoptr(GRand) rand = g_rand_new_with_seed (42);

  for (gsize i = 0; i < CHUNK; i++)
    p[i] = (guint8) g_rand_int (rand);
  for (gsize i = 2 * CHUNK; i < 3 * CHUNK; i++)
    p[i] = (guint8) g_rand_int (rand);
  memcpy (p + 3 * CHUNK, p, CHUNK);
  for (gsize i = 4 * CHUNK; i < len; i++)
    p[i] = (guint8) g_rand_int (rand);
  return g_bytes_new_take (p, len);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *path = NULL;
  g_autoptr(GSList) uris = NULL;
  g_autofree gchar *uri = NULL;

  f->dir = g_dir_make_tmp ("shoal-unicast-XXXXXX", NULL);
  f->root = g_build_filename (f->dir, "store", NULL);
  f->image = make_image ();
  path = g_build_filename (f->dir, "test.img", NULL);
  g_assert_true (g_file_set_contents (path, g_bytes_get_data (f->image, NULL),
                                      (gssize) g_bytes_get_size (f->image), NULL));
  f->id = shoal_image_files_import (f->root, path, NULL, CHUNK, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  f->manifest = shoal_image_files_load_manifest (f->root, f->id, &error);
  g_assert_no_error (error);

  f->server = soup_server_new (NULL, NULL);
  f->unicast = shoal_unicast_server_new (f->root, auth, f);
  soup_server_add_handler (f->server, "/images", shoal_unicast_server_handle, f->unicast, NULL);
  g_assert_true (soup_server_listen_local (f->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (f->server);
  uri = g_uri_to_string (uris->data);
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify) g_uri_unref);
  f->base = g_strdup_printf ("%simages/%s", uri, f->id);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  soup_server_disconnect (f->server);
  g_object_unref (f->server);
  shoal_unicast_server_free (f->unicast);
  shoal_manifest_free (f->manifest);
  g_bytes_unref (f->image);
  rm_rf (f->dir);
  g_free (f->dir);
  g_free (f->root);
  g_free (f->id);
  g_free (f->base);
}

static void
curl_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* Runs curl with the server on this main context; returns the HTTP status
 * and fills *body (the -o file) and *headers (the -D file). */
static guint
curl (Fixture      *f,
      GBytes      **body,
      gchar       **headers,
      const gchar  *first_arg,
      ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree gchar *out = g_build_filename (f->dir, "curl.out", NULL);
  g_autofree gchar *hdr = g_build_filename (f->dir, "curl.headers", NULL);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *stdout_text = NULL;
  g_autofree gchar *data = NULL;
  gsize len = 0;
  va_list args;
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  g_ptr_array_add (argv, g_strdup ("curl"));
  g_ptr_array_add (argv, g_strdup ("-s"));
  g_ptr_array_add (argv, g_strdup ("--max-time"));
  g_ptr_array_add (argv, g_strdup ("20"));
  g_ptr_array_add (argv, g_strdup ("-D"));
  g_ptr_array_add (argv, g_strdup (hdr));
  g_ptr_array_add (argv, g_strdup ("-w"));
  g_ptr_array_add (argv, g_strdup ("%{http_code}"));
  va_start (args, first_arg);
  for (const gchar *a = first_arg; a != NULL; a = va_arg (args, const gchar *))
    g_ptr_array_add (argv, g_strdup (a));
  va_end (args);
  if (!g_ptr_array_find_with_equal_func (argv, "-o", g_str_equal, NULL))
    {
      g_unlink (out);
      g_ptr_array_add (argv, g_strdup ("-o"));
      g_ptr_array_add (argv, g_strdup (out));
    }
  g_ptr_array_add (argv, NULL);

  proc = g_subprocess_newv ((const gchar * const *) argv->pdata, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (proc, NULL, NULL, curl_done, &result);
  while (result == NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (result);
  g_assert_true (g_subprocess_communicate_utf8_finish (proc, result, &stdout_text, NULL, &error));
  g_assert_no_error (error);
  if (body != NULL)
    {
      g_file_get_contents (out, &data, &len, NULL);
      *body = g_bytes_new_take (g_steal_pointer (&data), data != NULL ? len : 0);
    }
  if (headers != NULL)
    g_file_get_contents (hdr, headers, NULL, NULL);
  return (guint) g_ascii_strtoull (stdout_text, NULL, 10);
}

static gboolean
have_curl (void)
{
  g_autofree gchar *path = g_find_program_in_path ("curl");

  if (path == NULL)
    g_test_skip ("curl is not installed");
  return path != NULL;
}

static gchar *
url (Fixture     *f,
     const gchar *suffix)
{
  return g_strdup_printf ("%s/%s", f->base, suffix);
}

static void
test_auth (Fixture       *f,
           gconstpointer  data)
{
  g_autofree gchar *manifest = url (f, "manifest");
  g_autofree gchar *with_query = g_strdup_printf ("%s?token=good", manifest);
  g_autofree gchar *headers = NULL;

  if (!have_curl ())
    return;
  g_assert_cmpuint (curl (f, NULL, &headers, manifest, NULL), ==, 401);
  g_assert_nonnull (strstr (headers, "WWW-Authenticate: Bearer"));
  g_assert_cmpuint (curl (f, NULL, NULL, "-H", "Authorization: Bearer wrong", manifest, NULL), ==, 401);
  g_assert_cmpuint (curl (f, NULL, NULL, "-H", "Authorization: Bearer banned", manifest, NULL), ==, 403);
  g_assert_cmpuint (f->n_refused, ==, 3);
  g_assert_cmpuint (curl (f, NULL, NULL, with_query, NULL), ==, 200);
  g_assert_cmpuint (curl (f, NULL, NULL, "-H", "Authorization: Bearer good", manifest, NULL), ==, 200);
  g_assert_cmpuint (f->n_manifest, ==, 2);
  /* refused before anything else is revealed */
  g_assert_cmpuint (curl (f, NULL, NULL, "-X", "POST", manifest, NULL), ==, 401);
  g_assert_cmpuint (curl (f, NULL, NULL, "-H", "Authorization: Bearer good", "-X", "POST", manifest, NULL), ==, 405);
}

#define AUTH "-H", "Authorization: Bearer good"

static void
test_manifest_and_chunks (Fixture       *f,
                          gconstpointer  data)
{
  g_autofree gchar *manifest_url = url (f, "manifest");
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GBytes) expected = NULL;
  g_autoptr(GError) error = NULL;
  char id[65];
  char hex[65];

  if (!have_curl ())
    return;
  g_assert_cmpuint (curl (f, &body, NULL, AUTH, manifest_url, NULL), ==, 200);
  expected = shoal_image_files_load_manifest_bytes (f->root, f->id, &error);
  g_assert_true (g_bytes_equal (body, expected));
  shoal_manifest_compute_id (g_bytes_get_data (body, NULL), g_bytes_get_size (body), id);
  g_assert_cmpstr (id, ==, f->id);

  /* every data chunk, verified against the manifest */
  for (guint64 i = 0; i < f->manifest->n_chunks; i++)
    {
      g_autofree gchar *chunk_url = NULL;
      g_autoptr(GBytes) chunk = NULL;
      ShoalManifestError merr = { 0 };

      if (shoal_manifest_chunk_is_zero (f->manifest, i))
        continue;
      shoal_manifest_digest_to_hex (shoal_manifest_chunk_digest (f->manifest, i), hex);
      chunk_url = g_strdup_printf ("%s/chunks/%s", f->base, hex);
      g_assert_cmpuint (curl (f, &chunk, NULL, AUTH, chunk_url, NULL), ==, 200);
      g_assert_cmpint (shoal_manifest_verify_chunk (f->manifest, i, g_bytes_get_data (chunk, NULL),
                                                    g_bytes_get_size (chunk), &merr), ==, 0);
    }

  /* a range of a chunk */
  {
    g_autofree gchar *chunk_url = g_strdup_printf ("%s/chunks/%s", f->base, hex);
    g_autoptr(GBytes) part = NULL;
    g_autofree gchar *headers = NULL;
    const guint8 *image = g_bytes_get_data (f->image, NULL);

    g_assert_cmpuint (curl (f, &part, &headers, AUTH, "-r", "10-19", chunk_url, NULL), ==, 206);
    g_assert_cmpmem (g_bytes_get_data (part, NULL), g_bytes_get_size (part), image + 4 * CHUNK + 10, 10);
    g_assert_nonnull (strstr (headers, "Content-Range: bytes 10-19/5000"));
  }

  /* several ranges of a body held in memory (the manifest) */
  {
    g_autoptr(GBytes) multi = NULL;
    g_autofree gchar *headers = NULL;
    g_autofree gchar *part0 = NULL;
    gsize mlen = g_bytes_get_size (expected);
    g_autofree gchar *tail_range = g_strdup_printf ("Content-Range: bytes %" G_GSIZE_FORMAT "-%" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT,
                                                    mlen - 4, mlen - 1, mlen);

    g_assert_cmpuint (curl (f, &multi, &headers, AUTH, "-r", "0-15,-4", manifest_url, NULL), ==, 206);
    g_assert_nonnull (strstr (headers, "multipart/byteranges; boundary="));
    part0 = g_strndup (g_bytes_get_data (multi, NULL), g_bytes_get_size (multi));
    g_assert_nonnull (strstr (part0, "\r\n\r\nshoal-manifest 1\r\n--"));
    g_assert_nonnull (strstr (part0, tail_range));
    g_assert_nonnull (strstr (part0, "\r\n\r\nend\n\r\n--"));
  }

  /* digests that are not chunks of this image */
  {
    g_autofree gchar *other = g_strdup_printf ("%s/chunks/%064d", f->base, 0);
    g_autofree gchar *junk = g_strdup_printf ("%s/chunks/..%%2F..%%2Fetc", f->base);
    g_autofree gchar *no_image = g_strdup_printf ("%s/../%064d/manifest", f->base, 1);
    guint status;

    g_assert_cmpuint (curl (f, NULL, NULL, AUTH, other, NULL), ==, 404);
    status = curl (f, NULL, NULL, AUTH, junk, NULL);

    g_assert_true (status == 400 || status == 404);   /* libsoup itself refuses %2F */
    g_assert_cmpuint (curl (f, NULL, NULL, AUTH, no_image, NULL), ==, 404);
  }
}

static gboolean
bytes_contain (GBytes      *bytes,
               const gchar *needle)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  gsize n = strlen (needle);

  for (gsize i = 0; i + n <= len; i++)
    if (memcmp (data + i, needle, n) == 0)
      return TRUE;
  return FALSE;
}

static void
test_raw_ranges (Fixture       *f,
                 gconstpointer  data)
{
  g_autofree gchar *raw = url (f, "raw");
  const guint8 *image = g_bytes_get_data (f->image, NULL);
  gsize size = g_bytes_get_size (f->image);
  g_autofree gchar *size_str = g_strdup_printf ("Content-Length: %" G_GSIZE_FORMAT, size);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GBytes) part = NULL;
  g_autoptr(GBytes) multi = NULL;
  g_autofree gchar *headers = NULL;
  g_autofree gchar *mheaders = NULL;
  g_autofree gchar *head_headers = NULL;
  g_autofree gchar *bad_headers = NULL;

  if (!have_curl ())
    return;
  g_assert_cmpuint (curl (f, &body, &headers, AUTH, raw, NULL), ==, 200);
  g_assert_true (g_bytes_equal (body, f->image));
  g_assert_nonnull (strstr (headers, "Accept-Ranges: bytes"));

  /* across a data chunk, the zero chunk and into the next */
  g_clear_pointer (&headers, g_free);
  g_assert_cmpuint (curl (f, &part, &headers, AUTH, "-r", "65000-140000", raw, NULL), ==, 206);
  g_assert_cmpmem (g_bytes_get_data (part, NULL), g_bytes_get_size (part), image + 65000, 75001);
  g_clear_pointer (&headers, g_free);

  /* several ranges: multipart/byteranges with both parts */
  g_assert_cmpuint (curl (f, &multi, &mheaders, AUTH, "-r", "0-9,70000-70009,-5", raw, NULL), ==, 206);
  g_assert_nonnull (strstr (mheaders, "multipart/byteranges; boundary="));
  g_assert_true (bytes_contain (multi, "Content-Range: bytes 0-9/267144"));
  g_assert_true (bytes_contain (multi, "Content-Range: bytes 70000-70009/267144"));
  g_assert_true (bytes_contain (multi, "Content-Range: bytes 267139-267143/267144"));

  /* unsatisfiable: a body of its length, on a connection that stays open
   * (-w per transfer: "1" connected for the first, "0" for the second) */
  g_assert_cmpuint (curl (f, NULL, &bad_headers, AUTH, "-r", "999999999-", raw, NULL), ==, 416);
  g_assert_nonnull (strstr (bad_headers, "Content-Range: bytes */267144"));
  g_assert_nonnull (strstr (bad_headers, "Content-Length: 22\r\n"));
  g_assert_null (strstr (bad_headers, "Connection: close"));
  g_assert_cmpuint (curl (f, NULL, NULL, AUTH, "-r", "999999999-", "-w", "%{num_connects}",
                          "-o", "/dev/null", "-o", "/dev/null", raw, raw, NULL), ==, 10);

  /* HEAD */
  g_assert_cmpuint (curl (f, NULL, &head_headers, AUTH, "-I", raw, NULL), ==, 200);
  g_assert_nonnull (strstr (head_headers, size_str));

  /* HEAD ignores Range (RFC 9110 14.2): the headers of the whole image */
  {
    g_autofree gchar *range_headers = NULL;
    g_autofree gchar *bad_range_headers = NULL;

    g_assert_cmpuint (curl (f, NULL, &range_headers, AUTH, "-I", "-r", "0-9", raw, NULL), ==, 200);
    g_assert_nonnull (strstr (range_headers, size_str));
    g_assert_null (strstr (range_headers, "Content-Range"));
    g_assert_cmpuint (curl (f, NULL, &bad_range_headers, AUTH, "-I", "-r", "999999999-", raw, NULL), ==, 200);
    g_assert_nonnull (strstr (bad_range_headers, size_str));
  }

  /* If-Range with another validator: the whole image */
  {
    g_autoptr(GBytes) full = NULL;

    g_assert_cmpuint (curl (f, &full, NULL, AUTH, "-H", "If-Range: \"other\"", "-r", "0-9", raw, NULL), ==, 200);
    g_assert_cmpuint (g_bytes_get_size (full), ==, size);
  }
}

static void
test_resume (Fixture       *f,
             gconstpointer  data)
{
  g_autofree gchar *raw = url (f, "raw");
  g_autofree gchar *out = g_build_filename (f->dir, "resumed.img", NULL);
  g_autofree gchar *got = NULL;
  g_autofree gchar *headers = NULL;
  gsize len = 0;

  if (!have_curl ())
    return;
  /* an interrupted download: the first 150000 bytes */
  g_assert_true (g_file_set_contents (out, g_bytes_get_data (f->image, NULL), 150000, NULL));
  g_assert_cmpuint (curl (f, NULL, &headers, AUTH, "-C", "-", "-o", out, raw, NULL), ==, 206);
  g_assert_nonnull (strstr (headers, "Content-Range: bytes 150000-267143/267144"));
  g_assert_true (g_file_get_contents (out, &got, &len, NULL));
  g_assert_cmpmem (got, len, g_bytes_get_data (f->image, NULL), g_bytes_get_size (f->image));
  g_assert_cmpuint (shoal_unicast_server_get_bytes_sent (f->unicast), ==, 267144 - 150000);
}

static guint
count_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* the server closes its connections (a few seconds at most): no socket
 * is left behind */
static void
assert_fds_back_to (guint before)
{
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (count_fds () > before && g_get_monotonic_time () < deadline)
    {
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (10000);
    }
  g_assert_cmpuint (count_fds (), <=, before);
}

static void
remove_chunk (Fixture *f,
              guint64  index)
{
  char hex[65];
  g_autofree gchar *path = NULL;

  shoal_manifest_digest_to_hex (shoal_manifest_chunk_digest (f->manifest, index), hex);
  path = shoal_image_files_chunk_path (f->root, hex);
  g_assert_cmpint (g_unlink (path), ==, 0);
}

/* a chunk file that cannot be read: a 500 when nothing of the body was
 * sent, a connection cut short after; either way the response ends and
 * its connection is closed */
static void
test_raw_read_fails (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree gchar *raw = url (f, "raw");
  guint before;

  if (!have_curl ())
    return;
  /* one good read first: the worker threads and what they hold are there */
  g_assert_cmpuint (curl (f, NULL, NULL, AUTH, "-H", "Connection: close", "-r", "0-9", raw, NULL), ==, 206);
  before = count_fds ();
  remove_chunk (f, 4);     /* the tail */
  remove_chunk (f, 2);     /* B */
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GBytes) body = NULL;
      g_autofree gchar *headers = NULL;

      g_test_expect_message ("ShoalUnicast", G_LOG_LEVEL_WARNING, "Cannot stream image*");
      g_assert_cmpuint (curl (f, &body, &headers, AUTH, "-H", "Connection: close", "-r", "-10", raw, NULL), ==, 500);
      g_test_assert_expected_messages ();
      g_assert_true (bytes_contain (body, "missing or damaged"));
      g_assert_null (strstr (headers, "Content-Range"));
    }
  assert_fds_back_to (before);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GBytes) body = NULL;

      /* A and the zero chunk, then B fails */
      g_test_expect_message ("ShoalUnicast", G_LOG_LEVEL_WARNING, "Cannot stream image*");
      g_assert_cmpuint (curl (f, &body, NULL, AUTH, "-H", "Connection: close", raw, NULL), ==, 200);
      g_test_assert_expected_messages ();
      g_assert_cmpuint (g_bytes_get_size (body), ==, 2 * CHUNK);
      g_assert_cmpmem (g_bytes_get_data (body, NULL), g_bytes_get_size (body),
                       g_bytes_get_data (f->image, NULL), g_bytes_get_size (body));
    }
  assert_fds_back_to (before);
}

/* a chunk is answered from the manifest, reading no more of its file than
 * the answer needs: HEAD reads nothing, a range only its bytes; a file cut
 * short fails only the requests that need what is missing */
static void
test_chunk_reads (Fixture       *f,
                  gconstpointer  data)
{
  char hex[65];
  g_autofree gchar *path = NULL;
  g_autofree gchar *chunk_url = NULL;
  const guint8 *tail = (const guint8 *) g_bytes_get_data (f->image, NULL) + 4 * CHUNK;

  if (!have_curl ())
    return;
  shoal_manifest_digest_to_hex (shoal_manifest_chunk_digest (f->manifest, 4), hex);
  path = shoal_image_files_chunk_path (f->root, hex);
  chunk_url = g_strdup_printf ("%s/chunks/%s", f->base, hex);
  g_assert_true (g_file_set_contents (path, (const gchar *) tail, 20, NULL));   /* 20 of 5000 bytes */
  {
    g_autofree gchar *headers = NULL;

    g_assert_cmpuint (curl (f, NULL, &headers, AUTH, "-I", chunk_url, NULL), ==, 200);
    g_assert_nonnull (strstr (headers, "Content-Length: 5000\r\n"));
    g_assert_nonnull (strstr (headers, "ETag: \""));
  }
  {
    g_autoptr(GBytes) part = NULL;
    g_autofree gchar *headers = NULL;

    g_assert_cmpuint (curl (f, &part, &headers, AUTH, "-r", "10-19", chunk_url, NULL), ==, 206);
    g_assert_cmpmem (g_bytes_get_data (part, NULL), g_bytes_get_size (part), tail + 10, 10);
    g_assert_nonnull (strstr (headers, "Content-Range: bytes 10-19/5000"));
  }
  {
    g_autoptr(GBytes) multi = NULL;

    g_assert_cmpuint (curl (f, &multi, NULL, AUTH, "-r", "0-3,16-19", chunk_url, NULL), ==, 206);
    g_assert_true (bytes_contain (multi, "Content-Range: bytes 0-3/5000"));
    g_assert_true (bytes_contain (multi, "Content-Range: bytes 16-19/5000"));
  }
  {
    g_autoptr(GBytes) body = NULL;
    g_autofree gchar *headers = NULL;

    g_test_expect_message ("ShoalUnicast", G_LOG_LEVEL_WARNING, "Cannot serve chunk*short read*");
    g_assert_cmpuint (curl (f, &body, &headers, AUTH, "-r", "10-29", chunk_url, NULL), ==, 500);
    g_test_assert_expected_messages ();
    g_assert_null (strstr (headers, "Content-Range"));
    g_assert_true (bytes_contain (body, "missing or damaged"));
  }
  /* a chunk whose file is gone still has its headers */
  remove_chunk (f, 2);
  shoal_manifest_digest_to_hex (shoal_manifest_chunk_digest (f->manifest, 2), hex);
  {
    g_autofree gchar *gone_url = g_strdup_printf ("%s/chunks/%s", f->base, hex);
    g_autofree gchar *headers = NULL;

    g_assert_cmpuint (curl (f, NULL, &headers, AUTH, "-I", gone_url, NULL), ==, 200);
    g_assert_nonnull (strstr (headers, "Content-Length: 65536\r\n"));
  }
}

/* If-None-Match and If-Match on the three routes (RFC 9110 13.1.1-2,
 * 13.2.2): 304 with the ETag for a tag the client has, 412 for an If-Match
 * that fails, which is evaluated first; otherwise the answer as usual */
static void
test_conditional (Fixture       *f,
                  gconstpointer  data)
{
  g_autofree gchar *manifest = url (f, "manifest");
  g_autofree gchar *raw = url (f, "raw");
  g_autofree gchar *chunk = NULL;
  g_autofree gchar *id_tag = g_strdup_printf ("\"%s\"", f->id);
  g_autofree gchar *match_id = g_strdup_printf ("If-None-Match: \"other\", %s", id_tag);
  g_autofree gchar *match_weak = g_strdup_printf ("If-None-Match: W/%s", id_tag);
  g_autofree gchar *if_match_id = g_strdup_printf ("If-Match: %s", id_tag);
  g_autofree gchar *if_match_weak = g_strdup_printf ("If-Match: W/%s", id_tag);
  g_autofree gchar *headers = NULL;
  g_autofree gchar *chunk_tag = NULL;
  g_autoptr(GBytes) body = NULL;
  char hex[65];

  if (!have_curl ())
    return;
  shoal_manifest_digest_to_hex (shoal_manifest_chunk_digest (f->manifest, 0), hex);
  chunk = g_strdup_printf ("%s/chunks/%s", f->base, hex);
  chunk_tag = g_strdup_printf ("If-None-Match: \"%s\"", hex);

  g_assert_cmpuint (curl (f, &body, &headers, AUTH, "-H", match_id, manifest, NULL), ==, 304);
  g_assert_cmpuint (g_bytes_get_size (body), ==, 0);
  g_assert_nonnull (strstr (headers, id_tag));
  g_assert_cmpuint (curl (f, NULL, NULL, AUTH, "-H", match_weak, "-I", manifest, NULL), ==, 304);
  g_assert_cmpuint (curl (f, NULL, NULL, AUTH, "-H", "If-None-Match: *", raw, NULL), ==, 304);
  g_assert_cmpuint (curl (f, NULL, NULL, AUTH, "-H", match_id, "-r", "0-9", raw, NULL), ==, 304);
  g_assert_cmpuint (curl (f, NULL, NULL, AUTH, "-H", chunk_tag, chunk, NULL), ==, 304);
  g_assert_cmpuint (curl (f, NULL, NULL, AUTH, "-H", "If-None-Match: \"other\"", manifest, NULL), ==, 200);

  g_assert_cmpuint (curl (f, NULL, NULL, AUTH, "-H", "If-Match: \"other\"", raw, NULL), ==, 412);
  g_assert_cmpuint (curl (f, NULL, NULL, AUTH, "-H", if_match_weak, manifest, NULL), ==, 412);
  g_assert_cmpuint (curl (f, NULL, NULL, AUTH, "-H", if_match_id, "-H", "If-None-Match: \"other\"", manifest, NULL), ==, 200);
  g_assert_cmpuint (curl (f, NULL, NULL, AUTH, "-H", "If-Match: \"other\"", "-H", match_id, manifest, NULL), ==, 412);
  g_assert_cmpuint (curl (f, NULL, NULL, AUTH, "-H", if_match_id, chunk, NULL), ==, 412);   /* another tag */
  g_clear_pointer (&body, g_bytes_unref);
  g_assert_cmpuint (curl (f, &body, NULL, AUTH, "-H", if_match_id, "-r", "0-9", raw, NULL), ==, 206);
  g_assert_cmpuint (g_bytes_get_size (body), ==, 10);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/shoal/unicast/auth", Fixture, NULL, fixture_setup, test_auth, fixture_teardown);
  g_test_add ("/shoal/unicast/manifest-and-chunks", Fixture, NULL, fixture_setup, test_manifest_and_chunks, fixture_teardown);
  g_test_add ("/shoal/unicast/raw-ranges", Fixture, NULL, fixture_setup, test_raw_ranges, fixture_teardown);
  g_test_add ("/shoal/unicast/resume", Fixture, NULL, fixture_setup, test_resume, fixture_teardown);
  g_test_add ("/shoal/unicast/raw-read-fails", Fixture, NULL, fixture_setup, test_raw_read_fails, fixture_teardown);
  g_test_add ("/shoal/unicast/chunk-reads", Fixture, NULL, fixture_setup, test_chunk_reads, fixture_teardown);
  g_test_add ("/shoal/unicast/conditional", Fixture, NULL, fixture_setup, test_conditional, fixture_teardown);
  return g_test_run ();
}
