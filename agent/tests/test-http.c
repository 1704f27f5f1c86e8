/* test-http.c: the target programs' HTTP/1.1 client (sa-http.c) against
 * canned answers, through a socket pair or a one-shot loopback server
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sa-http.h"

/* --- canned answers ------------------------------------------------------ */

/* Reads @answer as the answer to @req through a socket pair whose writer
 * is shut down after it; returns sa_http_read_response_fd's result */
static int
read_canned (const gchar *answer, gsize len, const SaHttpRequest *req, SaHttpResponse *resp)
{
  int sv[2];
  int r;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
  g_assert_cmpint (write (sv[0], answer, len), ==, (gssize) len);
  shutdown (sv[0], SHUT_WR);
  r = sa_http_read_response_fd (sv[1], req, resp);
  close (sv[0]);
  close (sv[1]);
  return r;
}

/* --- a one-shot loopback server ------------------------------------------ */

typedef struct {
  int       fd;       /* listening */
  guint     port;
  GString  *request;  /* the request's head, as received */
  GString  *answer;   /* sent whole after the head */
  gboolean  reset;    /* then the connection is reset, not closed */
  GThread  *thread;
} OneShot;

static gpointer
one_shot_thread (gpointer data)
{
  OneShot *o = data;
  int fd = accept4 (o->fd, NULL, NULL, SOCK_CLOEXEC);
  char buf[4096];

  g_assert_cmpint (fd, >=, 0);
  while (strstr (o->request->str, "\r\n\r\n") == NULL)
    {
      gssize n = recv (fd, buf, sizeof buf, 0);

      if (n <= 0)
        break;
      g_string_append_len (o->request, buf, n);
    }
  g_assert_cmpint (send (fd, o->answer->str, o->answer->len, MSG_NOSIGNAL), ==, (gssize) o->answer->len);
  if (o->reset)
    {
      struct linger lg = { 1, 0 };

      /* lets the answer reach the client first, then aborts */
      g_usleep (100 * 1000);
      setsockopt (fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
  close (fd);
  return NULL;
}

/* A server on the loopback address of @family answering @answer once;
 * NULL, the test skipped, when that family has no loopback here */
static OneShot *
one_shot_new (int family, const gchar *answer, gboolean reset)
{
  OneShot *o = g_new0 (OneShot, 1);
  struct sockaddr_storage ss = { 0 };
  socklen_t len = family == AF_INET6 ? sizeof (struct sockaddr_in6) : sizeof (struct sockaddr_in);

  ss.ss_family = (sa_family_t) family;
  if (family == AF_INET6)
    ((struct sockaddr_in6 *) &ss)->sin6_addr = in6addr_loopback;
  else
    ((struct sockaddr_in *) &ss)->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  o->fd = socket (family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (o->fd < 0 || bind (o->fd, (struct sockaddr *) &ss, len) < 0 || listen (o->fd, 1) < 0)
    {
      g_test_skip_printf ("no loopback of family %d: %s", family, g_strerror (errno));
      if (o->fd >= 0)
        close (o->fd);
      g_free (o);
      return NULL;
    }
  g_assert_cmpint (getsockname (o->fd, (struct sockaddr *) &ss, &len), ==, 0);
  o->port = ntohs (family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                      : ((struct sockaddr_in *) &ss)->sin_port);
  o->request = g_string_new (NULL);
  o->answer = g_string_new (answer);
  o->reset = reset;
  o->thread = g_thread_new ("one-shot", one_shot_thread, o);
  return o;
}

static void
one_shot_free (OneShot *o)
{
  if (o->thread != NULL)
    g_thread_join (o->thread);
  close (o->fd);
  g_string_free (o->request, TRUE);
  g_string_free (o->answer, TRUE);
  g_free (o);
}

/* --- the cases ----------------------------------------------------------- */

/* An IPv6 server is named in brackets in the Host header (RFC 9110 7.2,
 * RFC 3986 3.2.2): "Host: ::1:P" is refused with 400 by libsoup */
static void
test_ipv6_host (void)
{
  OneShot *o = one_shot_new (AF_INET6, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", FALSE);
  g_autofree gchar *url = NULL;
  g_autofree gchar *host = NULL;
  SaHttpResponse resp;
  char err[256];

  if (o == NULL)
    return;
  url = g_strdup_printf ("http://[::1]:%u/x", o->port);
  host = g_strdup_printf ("\r\nHost: [::1]:%u\r\n", o->port);
  {
    SaHttpRequest req = { .url = url, .timeout_ms = 5000 };
    g_assert_cmpint (sa_http_do (&req, &resp, err, sizeof err), ==, 0);
  }
  g_assert_cmpint (resp.status, ==, 200);
  g_assert_cmpstr (resp.body.data, ==, "ok");
  sa_http_response_clear (&resp);
  g_thread_join (g_steal_pointer (&o->thread));
  g_test_message ("%s", o->request->str);
  g_assert_nonnull (strstr (o->request->str, host));
  one_shot_free (o);
}

/* The body of an answer that is not 2xx is kept up to 64 KiB whatever
 * max_body says, and the status is returned: a chunk request (max_body
 * the chunk's length + 1) answered 403 with a longer body failed as a
 * transport error (EFBIG) and was retried */
static void
test_error_body (void)
{
  const gchar *nf = "HTTP/1.1 404 Not Found\r\nContent-Length: 22\r\n\r\n{\"error\":\"no chunk\"}\r\n";
  g_autoptr(GString) big = g_string_new ("HTTP/1.1 403 Forbidden\r\nContent-Length: 102400\r\n\r\n");
  g_autoptr(GString) chunked = g_string_new ("HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n");
  g_autoptr(GString) ok = g_string_new ("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n0123456789ab");
  SaHttpRequest req = { .url = "http://127.0.0.1/", .timeout_ms = 2000, .max_body = 11 };
  SaHttpResponse resp;

  g_assert_cmpint (read_canned (nf, strlen (nf), &req, &resp), ==, 0);
  g_assert_cmpint (resp.status, ==, 404);
  g_assert_cmpstr (resp.body.data, ==, "{\"error\":\"no chunk\"}\r\n");
  g_assert_false (resp.body_truncated);
  sa_http_response_clear (&resp);

  for (guint i = 0; i < 102400; i++)
    g_string_append_c (big, 'a' + i % 26);
  g_assert_cmpint (read_canned (big->str, big->len, &req, &resp), ==, 0);
  g_assert_cmpint (resp.status, ==, 403);
  g_assert_cmpuint (resp.body.len, ==, 64 * 1024);
  g_assert_true (resp.body_truncated);
  g_assert_cmpint (resp.body.data[64 * 1024 - 1], ==, 'a' + (64 * 1024 - 1) % 26);
  sa_http_response_clear (&resp);

  for (guint i = 0; i < 20; i++)
    g_string_append_printf (chunked, "1000\r\n%4096d\r\n", 0);
  g_string_append (chunked, "0\r\n\r\n");
  g_assert_cmpint (read_canned (chunked->str, chunked->len, &req, &resp), ==, 0);
  g_assert_cmpint (resp.status, ==, 500);
  g_assert_cmpuint (resp.body.len, ==, 64 * 1024);
  g_assert_true (resp.body_truncated);
  sa_http_response_clear (&resp);

  /* a 2xx body past max_body is still an error */
  g_assert_cmpint (read_canned (ok->str, ok->len, &req, &resp), ==, -1);
  g_assert_cmpint (errno, ==, EFBIG);
  sa_http_response_clear (&resp);
}

/* An answer with an invalid Content-Length, or two different ones, is
 * refused (RFC 9112 6.3): "x12" was an empty 200, "-5" read until the
 * close, the last of two headers won and "3, 8" was 3 */
static void
test_content_length (void)
{
  const gchar *bad[] = { "x12", "-5", "+3", "", "3 3", "3, 8", "3,", ",3", "0x3", "3a",
                         "99999999999999999999999", "9223372036854775808", "3\r\nContent-Length: 8",
                         "3\r\nContent-Length: 3, 4" };
  const gchar *good[] = { "3", " 3 ", "3, 3", "3,3", "3\r\nContent-Length: 3", "003" };
  SaHttpRequest req = { .url = "http://127.0.0.1/", .timeout_ms = 2000 };
  SaHttpResponse resp;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree gchar *answer = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Length: %s\r\n\r\nabcdefgh", bad[i]);

      g_test_message ("Content-Length: %s", bad[i]);
      g_assert_cmpint (read_canned (answer, strlen (answer), &req, &resp), ==, -1);
      sa_http_response_clear (&resp);
    }
  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autofree gchar *answer = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Length: %s\r\n\r\nabcdefgh", good[i]);

      g_test_message ("Content-Length: %s", good[i]);
      g_assert_cmpint (read_canned (answer, strlen (answer), &req, &resp), ==, 0);
      g_assert_cmpint (resp.content_length, ==, 3);
      g_assert_cmpstr (resp.body.data, ==, "abc");
      sa_http_response_clear (&resp);
    }
  {
    const gchar *max = "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n";

    g_assert_cmpint (read_canned (max, strlen (max), &req, &resp), ==, -1);
    g_assert_cmpint (resp.content_length, ==, G_MAXINT64);
    sa_http_response_clear (&resp);
  }
}

/* A connection reset during a body read until the close is an error,
 * not its end: the image, config or agent would be taken cut short */
static void
test_reset (void)
{
  OneShot *o = one_shot_new (AF_INET, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc", TRUE);
  g_autofree gchar *url = NULL;
  SaHttpRequest req = { .timeout_ms = 5000 };
  SaHttpResponse resp;
  char err[256] = "";

  if (o == NULL)
    return;
  url = g_strdup_printf ("http://127.0.0.1:%u/x", o->port);
  req.url = url;

  g_assert_cmpint (sa_http_do (&req, &resp, err, sizeof err), ==, -1);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, g_strerror (ECONNRESET)));
  sa_http_response_clear (&resp);
  one_shot_free (o);

  /* a close there is the end */
  o = one_shot_new (AF_INET, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc", FALSE);
  g_free (url);
  url = g_strdup_printf ("http://127.0.0.1:%u/x", o->port);
  req.url = url;
  g_assert_cmpint (sa_http_do (&req, &resp, err, sizeof err), ==, 0);
  g_assert_cmpstr (resp.body.data, ==, "abc");
  sa_http_response_clear (&resp);
  one_shot_free (o);
}

/* Interim 1xx answers are dropped and the final one is read (RFC 9110
 * 15.2): a 103 Early Hints was taken as the answer */
static void
test_interim (void)
{
  const gchar *hints = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
  const gchar *two = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nContent-Length: 5\r\n"
                     "Content-Type: x/y\r\n\r\nHTTP/1.1 404 Not Found\r\n\r\nnope";
  const gchar *upgrade = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n";
  g_autoptr(GString) endless = g_string_new (NULL);
  SaHttpRequest req = { .url = "http://127.0.0.1/", .timeout_ms = 2000 };
  SaHttpResponse resp;

  g_assert_cmpint (read_canned (hints, strlen (hints), &req, &resp), ==, 0);
  g_assert_cmpint (resp.status, ==, 200);
  g_assert_cmpstr (resp.content_type, ==, "text/plain");
  g_assert_cmpstr (resp.body.data, ==, "ok");
  sa_http_response_clear (&resp);

  /* the headers of an interim answer are not the final one's */
  g_assert_cmpint (read_canned (two, strlen (two), &req, &resp), ==, 0);
  g_assert_cmpint (resp.status, ==, 404);
  g_assert_cmpint (resp.content_length, ==, -1);
  g_assert_cmpstr (resp.content_type, ==, "");
  g_assert_cmpstr (resp.body.data, ==, "nope");
  sa_http_response_clear (&resp);

  g_assert_cmpint (read_canned (upgrade, strlen (upgrade), &req, &resp), ==, 0);
  g_assert_cmpint (resp.status, ==, 101);
  sa_http_response_clear (&resp);

  for (guint i = 0; i < 17; i++)
    g_string_append (endless, "HTTP/1.1 100 Continue\r\n\r\n");
  g_string_append (endless, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  g_assert_cmpint (read_canned (endless->str, endless->len, &req, &resp), ==, -1);
  sa_http_response_clear (&resp);
}

typedef struct {
  const gchar *answer;
  gint         result;
  gint         status;
  const gchar *body;
} Canned;

static void
check_canned (const Canned *cases, gsize n)
{
  SaHttpRequest req = { .url = "http://127.0.0.1/", .timeout_ms = 2000 };

  for (gsize i = 0; i < n; i++)
    {
      SaHttpResponse resp;

      g_test_message ("%s", cases[i].answer);
      g_assert_cmpint (read_canned (cases[i].answer, strlen (cases[i].answer), &req, &resp), ==, cases[i].result);
      if (cases[i].result == 0)
        {
          g_assert_cmpint (resp.status, ==, cases[i].status);
          g_assert_cmpstr (resp.body.data, ==, cases[i].body);
        }
      sa_http_response_clear (&resp);
    }
}

/* The status line is "HTTP/1.x" and three digits (RFC 9112 4) */
static void
test_status_line (void)
{
  const Canned cases[] = {
    { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 200, "ok" },
    { "HTTP/1.0 404\r\n\r\nno", 0, 404, "no" },
    { "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", -1 },
    { "HTTP/1.Q 20x OK\r\nContent-Length: 0\r\n\r\n", -1 },
    { "HTTP/1.1 20x OK\r\nContent-Length: 0\r\n\r\n", -1 },
    { "HTTP/1.1_200_OK\r\nContent-Length: 0\r\n\r\n", -1 },
    { "HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n", -1 },
    { "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", -1 },
  };

  check_canned (cases, G_N_ELEMENTS (cases));
}

/* A body is chunked only when chunked is the final transfer coding;
 * another final coding runs to the close, whatever the Content-Length
 * (RFC 9112 6.3); a chunk's size is hex digits and its data is followed
 * by CRLF (RFC 9112 7.1) */
static void
test_chunked (void)
{
  const Canned cases[] = {
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: notchunkedx\r\nContent-Length: 3\r\n\r\nabcdef", 0, 200, "abcdef" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 0, 200,
      "3\r\nabc\r\n0\r\n\r\n" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n", 0, 200, "abc" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 0, 200,
      "abc" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA ; ext=1\r\n0123456789\r\n0\r\n\r\n", 0, 200,
      "0123456789" },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\n0\r\n\r\n", -1 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", -1 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n", -1 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", -1 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n", -1 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3x\r\nabc\r\n0\r\n\r\n", -1 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n0\r\n\r\n", -1 },
    /* trailer fields, then the empty line */
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n", 0, 200, "abc" },
    /* cut after the last chunk, or inside the trailers */
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n", -1 },
    { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n", -1 },
  };

  check_canned (cases, G_N_ELEMENTS (cases));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/target/http/ipv6-host", test_ipv6_host);
  g_test_add_func ("/shoal/target/http/error-body", test_error_body);
  g_test_add_func ("/shoal/target/http/content-length", test_content_length);
  g_test_add_func ("/shoal/target/http/reset", test_reset);
  g_test_add_func ("/shoal/target/http/interim", test_interim);
  g_test_add_func ("/shoal/target/http/status-line", test_status_line);
  g_test_add_func ("/shoal/target/http/chunked", test_chunked);
  return g_test_run ();
}
