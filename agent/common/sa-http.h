/* sa-http.h: a minimal HTTP/1.1 client over sockets for the target programs
 *
 * One request per connection (Connection: close); numeric IPv4/IPv6 hosts
 * (and "localhost"), no DNS: the server URL comes from the kernel command
 * line. Bodies with Content-Length, chunked transfer coding or until EOF.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "sa-util.h"

/* Receives the body of a 2xx answer; returns 0 to go on, -1 to abort */
typedef int (*SaHttpSink) (void *user_data, const void *data, size_t len);

typedef struct {
  const char *method;        /* "GET" if NULL */
  const char *url;           /* http://host[:port]/path */
  const char *token;         /* sent as "Authorization: Bearer <token>" if set */
  const char *content_type;  /* of the body */
  const void *body;
  size_t      body_len;
  const char *range;         /* "bytes=a-b" if set */
  int         timeout_ms;    /* connect and each read/write; 30000 if 0 */
  size_t      max_body;      /* bytes of a 2xx body kept in memory (more fails); 16 MiB if 0 */
  SaHttpSink  sink;          /* streams a 2xx body instead of keeping it */
  void       *sink_data;
} SaHttpRequest;

typedef struct {
  int        status;
  long long  content_length; /* -1 if not given */
  char       content_type[128];
  SaBuf      body;           /* unless streamed to the sink; of an answer
                              * that is not 2xx, the first 64 KiB */
  bool       body_truncated; /* the body of an answer that is not 2xx was
                              * longer than what is kept of it */
} SaHttpResponse;

typedef struct {
  char host[256];
  int  port;
  char path[2048];
} SaUrl;

int  sa_url_parse          (const char *url, SaUrl *out);
/* Returns 0 when an answer was received (any status), -1 with @err set
 * when the transport failed */
int  sa_http_do            (const SaHttpRequest *req, SaHttpResponse *resp, char *err, size_t errlen);
void sa_http_response_clear (SaHttpResponse *resp);
/* Whether an answer of @status may change if the request is sent again:
 * 404 (a route not there yet), 408, 425, 429 and 5xx. Any other 4xx (a
 * token refused) is final */
bool sa_http_status_is_transient (int status);
/* Reads one answer to @req from the connected @fd (for the fuzzer and tests) */
int  sa_http_read_response_fd (int fd, const SaHttpRequest *req, SaHttpResponse *resp);
