/* sa-http.c: a minimal HTTP/1.1 client over sockets for the target programs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "sa-http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define SA_HTTP_MAX_HEADER (64 * 1024)
/* What is kept of the body of an answer that is not 2xx, whatever the
 * request's max_body (which is for the data it asks for) */
#define SA_HTTP_MAX_ERROR_BODY (64 * 1024)
/* Interim (1xx) answers skipped before the final one */
#define SA_HTTP_MAX_INTERIM 16

typedef struct {
  int    fd;
  int    timeout_ms;
  char   buf[65536];
  size_t pos;
  size_t len;
  bool   eof;
} SaConn;

int
sa_url_parse (const char *url, SaUrl *out)
{
  const char *p, *host_end, *path;
  size_t hlen;

  memset (out, 0, sizeof *out);
  if (strncmp (url, "http://", 7) != 0)
    return -1;
  p = url + 7;
  path = strchr (p, '/');
  if (path == NULL)
    path = p + strlen (p);
  out->port = 80;
  if (*p == '[')
    {
      host_end = memchr (p, ']', (size_t) (path - p));
      if (host_end == NULL)
        return -1;
      p++;
      hlen = (size_t) (host_end - p);
      host_end++;
    }
  else
    {
      host_end = memchr (p, ':', (size_t) (path - p));
      if (host_end == NULL)
        host_end = path;
      hlen = (size_t) (host_end - p);
    }
  if (hlen == 0 || hlen >= sizeof out->host)
    return -1;
  memcpy (out->host, p, hlen);
  if (*host_end == ':')
    {
      char *endp = NULL;
      long port = strtol (host_end + 1, &endp, 10);

      if (endp != path || port <= 0 || port > 65535)
        return -1;
      out->port = (int) port;
    }
  else if (host_end != path)
    return -1;
  snprintf (out->path, sizeof out->path, "%s", *path ? path : "/");
  return 0;
}

static int
wait_fd (int fd, short events, int timeout_ms)
{
  struct pollfd pfd = { fd, events, 0 };
  int r;

  do
    r = poll (&pfd, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  if (r == 0)
    errno = ETIMEDOUT;
  return r > 0 ? 0 : -1;
}

static int
connect_to (const SaUrl *url, int timeout_ms)
{
  struct sockaddr_storage ss;
  socklen_t sslen;
  struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
  const char *host = strcmp (url->host, "localhost") == 0 ? "127.0.0.1" : url->host;
  int fd, one = 1, soerr = 0;
  socklen_t errlen = sizeof soerr;

  memset (&ss, 0, sizeof ss);
  if (inet_pton (AF_INET, host, &sin->sin_addr) == 1)
    {
      sin->sin_family = AF_INET;
      sin->sin_port = htons ((uint16_t) url->port);
      sslen = sizeof *sin;
    }
  else if (inet_pton (AF_INET6, host, &sin6->sin6_addr) == 1)
    {
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons ((uint16_t) url->port);
      sslen = sizeof *sin6;
    }
  else
    {
      errno = EINVAL;
      return -1;
    }
  fd = socket (ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect (fd, (struct sockaddr *) &ss, sslen) < 0 && errno != EINPROGRESS)
    {
      close (fd);
      return -1;
    }
  if (wait_fd (fd, POLLOUT, timeout_ms) < 0
      || getsockopt (fd, SOL_SOCKET, SO_ERROR, &soerr, &errlen) < 0 || soerr != 0)
    {
      if (soerr != 0)
        errno = soerr;
      close (fd);
      return -1;
    }
  return fd;
}

static int
send_all (SaConn *c, const void *data, size_t len)
{
  const char *p = data;

  while (len > 0)
    {
      ssize_t n = send (c->fd, p, len, MSG_NOSIGNAL);

      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        {
          if (wait_fd (c->fd, POLLOUT, c->timeout_ms) < 0)
            return -1;
          continue;
        }
      if (n <= 0)
        return -1;
      p += n;
      len -= (size_t) n;
    }
  return 0;
}

static int
fill (SaConn *c)
{
  ssize_t n;

  if (c->pos < c->len)
    return 0;
  c->pos = c->len = 0;
  if (c->eof)
    return -1;
  for (;;)
    {
      n = recv (c->fd, c->buf, sizeof c->buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR))
        {
          if (wait_fd (c->fd, POLLIN, c->timeout_ms) < 0)
            return -1;
          continue;
        }
      break;
    }
  if (n == 0)
    {
      /* the server closed: the end of a body read until the close, a
       * short one otherwise */
      c->eof = true;
      errno = ECONNRESET;
      return -1;
    }
  if (n < 0)
    return -1;  /* a reset or another error is never the body's end */
  c->len = (size_t) n;
  return 0;
}

/* Reads one CRLF- or LF-terminated line without the terminator */
static int
read_line (SaConn *c, SaBuf *line, size_t max)
{
  line->len = 0;
  sa_buf_append (line, "", 0);
  for (;;)
    {
      char ch;

      if (fill (c) < 0)
        return -1;
      ch = c->buf[c->pos++];
      if (ch == '\n')
        break;
      if (line->len >= max)
        {
          errno = E2BIG;
          return -1;
        }
      sa_buf_append (line, &ch, 1);
    }
  if (line->len > 0 && line->data[line->len - 1] == '\r')
    line->data[--line->len] = '\0';
  return 0;
}

/* How the answer's body is framed after its Transfer-Encoding */
typedef enum {
  SA_TE_NONE,     /* none: Content-Length, or the close */
  SA_TE_CHUNKED,  /* chunked is the final coding */
  SA_TE_OTHER,    /* another final coding: the body runs to the close */
} SaTe;

typedef struct {
  const SaHttpRequest *req;
  SaHttpResponse      *resp;
  bool                 to_sink;
  size_t               limit;
  bool                 keep_head; /* over the limit, keep what fits and stop */
} SaBody;

static int
deliver (SaBody *b, const void *data, size_t len)
{
  if (b->to_sink)
    return b->req->sink (b->req->sink_data, data, len);
  if (b->resp->body.len + len > b->limit)
    {
      if (b->keep_head)
        {
          sa_buf_append (&b->resp->body, data, b->limit - b->resp->body.len);
          b->resp->body_truncated = true;
        }
      errno = EFBIG;
      return -1;
    }
  sa_buf_append (&b->resp->body, data, len);
  return 0;
}

static int
read_exact (SaConn *c, SaBody *b, unsigned long long remaining)
{
  while (remaining > 0)
    {
      size_t n;

      if (fill (c) < 0)
        return -1;
      n = c->len - c->pos;
      if (n > remaining)
        n = (size_t) remaining;
      if (deliver (b, c->buf + c->pos, n) < 0)
        return -1;
      c->pos += n;
      remaining -= n;
    }
  return 0;
}

/* A chunk-size line: hex digits, then nothing or whitespace and
 * extensions after ';' (RFC 9112 7.1); strtoull took "-1", "0x10" and
 * " 5" */
static int
parse_chunk_size (const char *line, unsigned long long *size)
{
  const char *p = line;

  *size = 0;
  for (; isxdigit ((unsigned char) *p) && *size >> 60 == 0; p++)
    {
      int digit = isdigit ((unsigned char) *p) ? *p - '0' : tolower ((unsigned char) *p) - 'a' + 10;

      *size = *size * 16 + (unsigned) digit;
    }
  p += strspn (p, " \t");
  if (!isxdigit ((unsigned char) line[0]) || (*p != '\0' && *p != ';'))
    {
      errno = EBADMSG;
      return -1;
    }
  return 0;
}

static int
read_chunked (SaConn *c, SaBody *b)
{
  SaBuf line;
  int ret = -1;

  sa_buf_init (&line);
  for (;;)
    {
      unsigned long long size;

      if (read_line (c, &line, 256) < 0 || parse_chunk_size (line.data, &size) < 0)
        break;
      if (size == 0)
        {
          /* trailer fields (at most 64), then the empty line that ends
           * the message: a body cut before it is not complete */
          unsigned n = 0;

          while (n++ <= 64 && read_line (c, &line, 8192) == 0)
            if (line.len == 0)
              {
                ret = 0;
                break;
              }
          if (ret < 0 && n > 65)
            errno = EBADMSG;
          break;
        }
      /* the data ends with CRLF and nothing else */
      if (read_exact (c, b, size) < 0 || read_line (c, &line, 2) < 0)
        break;
      if (line.len != 0)
        {
          errno = EBADMSG;
          break;
        }
    }
  sa_buf_clear (&line);
  return ret;
}

static int
read_until_eof (SaConn *c, SaBody *b)
{
  while (fill (c) == 0)
    {
      if (deliver (b, c->buf + c->pos, c->len - c->pos) < 0)
        return -1;
      c->pos = c->len;
    }
  return c->eof ? 0 : -1;
}

/* A Content-Length value: digits, or a list of the same digits (RFC 9112
 * 6.3: a recipient may take "3, 3" as 3), with optional whitespace around
 * each; -1 for anything else */
static long long
parse_content_length (const char *v)
{
  long long value = -1;

  for (;;)
    {
      long long n = 0;
      const char *start;

      while (*v == ' ' || *v == '\t')
        v++;
      start = v;
      for (; *v >= '0' && *v <= '9'; v++)
        {
          if (n > (LLONG_MAX - (*v - '0')) / 10)
            return -1;
          n = n * 10 + (*v - '0');
        }
      if (v == start || (value >= 0 && n != value))
        return -1;
      value = n;
      while (*v == ' ' || *v == '\t')
        v++;
      if (*v == '\0')
        return value;
      if (*v++ != ',')
        return -1;
    }
}

/* Whether the last coding of a Transfer-Encoding list is chunked:
 * chunked anywhere else does not frame the body (RFC 9112 6.1, 6.3) */
static bool
final_coding_is_chunked (const char *v)
{
  const char *last = strrchr (v, ',');
  size_t len;

  last = last != NULL ? last + 1 : v;
  while (*last == ' ' || *last == '\t')
    last++;
  len = strcspn (last, "; \t");
  return len == 7 && strncasecmp (last, "chunked", 7) == 0 && last[strspn (last + 7, " \t") + 7] == '\0';
}

/* Returns -1 for a header that makes the answer's framing unknown */
static int
parse_header (const char *line, SaHttpResponse *resp, SaTe *te)
{
  const char *colon = strchr (line, ':');
  const char *v;
  size_t klen;

  if (colon == NULL)
    return 0;
  klen = (size_t) (colon - line);
  v = colon + 1;
  while (*v == ' ' || *v == '\t')
    v++;
  if (klen == 14 && strncasecmp (line, "Content-Length", klen) == 0)
    {
      long long n = parse_content_length (v);

      /* invalid, or another length than an earlier header's: which
       * one frames the body cannot be known (RFC 9112 6.3) */
      if (n < 0 || (resp->content_length >= 0 && n != resp->content_length))
        {
          errno = EBADMSG;
          return -1;
        }
      resp->content_length = n;
    }
  else if (klen == 17 && strncasecmp (line, "Transfer-Encoding", klen) == 0)
    *te = final_coding_is_chunked (v) ? SA_TE_CHUNKED : SA_TE_OTHER;
  else if (klen == 12 && strncasecmp (line, "Content-Type", klen) == 0)
    snprintf (resp->content_type, sizeof resp->content_type, "%s", v);
  return 0;
}

/* "HTTP/1.x NNN[ reason]" (RFC 9112 4); -1 with EBADMSG for any other line */
static int
parse_status_line (const char *line, int *status)
{
  const char *d = line + 9;

  if (strncmp (line, "HTTP/1.", 7) != 0 || !isdigit ((unsigned char) line[7]) || line[8] != ' '
      || !isdigit ((unsigned char) d[0]) || !isdigit ((unsigned char) d[1]) || !isdigit ((unsigned char) d[2])
      || (d[3] != ' ' && d[3] != '\0'))
    {
      errno = EBADMSG;
      return -1;
    }
  *status = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
  return 0;
}

static int
read_head (SaConn *c, SaHttpResponse *resp, SaTe *te)
{
  SaBuf line;
  size_t total = 0;
  int ret = -1;

  sa_buf_init (&line);
  if (read_line (c, &line, 8192) == 0 && parse_status_line (line.data, &resp->status) == 0)
    {
      while (read_line (c, &line, 8192) == 0)
        {
          total += line.len;
          if (line.len == 0)
            {
              ret = 0;
              break;
            }
          if (total > SA_HTTP_MAX_HEADER || parse_header (line.data, resp, te) < 0)
            break;
        }
    }
  sa_buf_clear (&line);
  return ret;
}

static void
send_request (SaConn *c, const SaHttpRequest *req, const SaUrl *url, SaBuf *head)
{
  /* an IPv6 address is written in brackets, as in the URL (RFC 3986
   * 3.2.2): sa_url_parse removed them */
  bool v6 = strchr (url->host, ':') != NULL;

  sa_buf_printf (head, "%s %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUser-Agent: shoal-agent\r\n"
                 "Connection: close\r\nAccept-Encoding: identity\r\n",
                 req->method ? req->method : "GET", url->path, v6 ? "[" : "", url->host, v6 ? "]" : "",
                 url->port);
  if (req->token != NULL)
    sa_buf_printf (head, "Authorization: Bearer %s\r\n", req->token);
  if (req->range != NULL)
    sa_buf_printf (head, "Range: %s\r\n", req->range);
  if (req->body != NULL)
    sa_buf_printf (head, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                   req->content_type ? req->content_type : "application/json", req->body_len);
  sa_buf_append_str (head, "\r\n");
}

static int read_response (SaConn *c, const SaHttpRequest *req, SaHttpResponse *resp);

static int
exchange (SaConn *c, const SaHttpRequest *req, const SaUrl *url, SaHttpResponse *resp)
{
  SaBuf head;
  int r;

  sa_buf_init (&head);
  send_request (c, req, url, &head);
  r = send_all (c, head.data, head.len);
  sa_buf_clear (&head);
  if (r < 0 || (req->body != NULL && send_all (c, req->body, req->body_len) < 0))
    return -1;
  return read_response (c, req, resp);
}

static int
read_body (SaConn *c, SaBody *b, SaTe te)
{
  /* a Transfer-Encoding overrides any Content-Length (RFC 9112 6.3) */
  if (te == SA_TE_CHUNKED)
    return read_chunked (c, b);
  if (te == SA_TE_NONE && b->resp->content_length >= 0)
    return read_exact (c, b, (unsigned long long) b->resp->content_length);
  return read_until_eof (c, b);
}

/* Reads heads until the final one: interim 1xx answers (103 Early Hints,
 * 100 Continue) are read and dropped, with their headers (RFC 9110
 * 15.2); 101 is final, as no upgrade is ever asked for */
static int
read_final_head (SaConn *c, SaHttpResponse *resp, SaTe *te)
{
  for (unsigned interim = 0;; interim++)
    {
      if (read_head (c, resp, te) < 0)
        return -1;
      if (resp->status < 100 || resp->status >= 200 || resp->status == 101)
        return 0;
      if (interim >= SA_HTTP_MAX_INTERIM)
        {
          errno = EBADMSG;
          return -1;
        }
      resp->content_length = -1;
      resp->content_type[0] = '\0';
      *te = SA_TE_NONE;
    }
}

static int
read_response (SaConn *c, const SaHttpRequest *req, SaHttpResponse *resp)
{
  SaTe te = SA_TE_NONE;
  bool success;
  SaBody b = { req, resp, false, req->max_body ? req->max_body : 16u << 20, false };

  if (read_final_head (c, resp, &te) < 0)
    return -1;
  if (resp->status == 204 || resp->status == 304 || (req->method && strcmp (req->method, "HEAD") == 0))
    return 0;
  success = resp->status >= 200 && resp->status < 300;
  b.to_sink = req->sink != NULL && success;
  if (!success)
    {
      /* an error's body only explains the status: its beginning is
       * kept, the rest is not read (the connection is closed after it) */
      b.limit = SA_HTTP_MAX_ERROR_BODY;
      b.keep_head = true;
    }
  if (read_body (c, &b, te) < 0)
    return resp->body_truncated ? 0 : -1;
  return 0;
}

int
sa_http_do (const SaHttpRequest *req, SaHttpResponse *resp, char *err, size_t errlen)
{
  SaUrl url;
  SaConn *c;
  int ret;

  memset (resp, 0, sizeof *resp);
  resp->content_length = -1;
  sa_buf_init (&resp->body);
  sa_buf_append (&resp->body, "", 0);
  if (sa_url_parse (req->url, &url) < 0)
    {
      snprintf (err, errlen, "cannot parse URL %s (want http://<address>[:port]/path)", req->url);
      return -1;
    }
  c = sa_malloc0 (sizeof *c);
  c->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 30000;
  c->fd = connect_to (&url, c->timeout_ms);
  if (c->fd < 0)
    {
      snprintf (err, errlen, "connecting to %s:%d: %s", url.host, url.port, strerror (errno));
      free (c);
      return -1;
    }
  ret = exchange (c, req, &url, resp);
  if (ret < 0)
    snprintf (err, errlen, "%s %s: %s", req->method ? req->method : "GET", req->url,
              resp->status ? strerror (errno) : "no valid answer");
  close (c->fd);
  free (c);
  return ret;
}

int
sa_http_read_response_fd (int fd, const SaHttpRequest *req, SaHttpResponse *resp)
{
  SaConn *c = sa_malloc0 (sizeof *c);
  int ret;

  memset (resp, 0, sizeof *resp);
  resp->content_length = -1;
  sa_buf_init (&resp->body);
  sa_buf_append (&resp->body, "", 0);
  c->fd = fd;
  c->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 30000;
  ret = read_response (c, req, resp);
  free (c);
  return ret;
}

void
sa_http_response_clear (SaHttpResponse *resp)
{
  sa_buf_clear (&resp->body);
}

bool
sa_http_status_is_transient (int status)
{
  return status == 404 || status == 408 || status == 425 || status == 429 || status >= 500;
}
