/* agent-http-fuzzer.c: the target programs' HTTP/1.1 answer reader (status
 * line, headers, Content-Length, chunked bodies), fed through a socket pair
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sa-http.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
sink (void *user, const void *data, size_t len)
{
  (void) user;
  (void) data;
  (void) len;
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  int sv[2];
  SaHttpResponse resp;

  if (size > 60000 || socketpair (AF_UNIX, SOCK_STREAM, 0, sv) < 0)
    return 0;
  if (write (sv[0], data, size) == (ssize_t) size)
    {
      SaHttpRequest req = { .url = "http://127.0.0.1/", .timeout_ms = 100, .max_body = 1 << 16 };
      SaHttpRequest streamed = { .url = "http://127.0.0.1/", .timeout_ms = 100, .sink = sink };
      shutdown (sv[0], SHUT_WR);
      sa_http_read_response_fd (sv[1], size % 2 ? &req : &streamed, &resp);
      sa_http_response_clear (&resp);
    }
  close (sv[0]);
  close (sv[1]);
  return 0;
}
