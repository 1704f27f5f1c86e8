/* sa-image.c: writes an image to a disk, verifying every chunk
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "sa-image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sa-http.h"
#include "sa-util.h"

static bool
is_sha256 (const char *s)
{
  if (s == NULL || strlen (s) != 64)
    return false;
  for (const char *p = s; *p; p++)
    {
      if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
        return false;
    }
  return true;
}

static bool
parse_chunk (const SaJson *c, size_t index, uint64_t *next_offset, SaChunk *out, char *err, size_t errlen)
{
  const char *sha = sa_json_get_string (c, "sha256");
  int64_t size = sa_json_get_int (c, "size", -1);
  int64_t offset = sa_json_get_int (c, "offset", (int64_t) *next_offset);

  if (sha == NULL)
    sha = sa_json_get_string (c, "digest");
  if (!is_sha256 (sha) || size < 0 || offset < 0)
    {
      snprintf (err, errlen, "manifest: chunk %zu lacks a valid sha256, size or offset", index);
      return false;
    }
  out->offset = (uint64_t) offset;
  out->size = (uint64_t) size;
  memcpy (out->sha256, sha, 65);
  *next_offset = out->offset + out->size;
  return true;
}

bool
sa_manifest_parse (const char *data, size_t len, SaManifest *m, char *err, size_t errlen)
{
  char perr[256];
  SaJson *root = sa_json_parse (data, len, perr, sizeof perr);
  SaJson *chunks;
  uint64_t next = 0;

  memset (m, 0, sizeof *m);
  if (root == NULL)
    {
      snprintf (err, errlen, "manifest: %s", perr);
      return false;
    }
  chunks = sa_json_get (root, "chunks");
  if (chunks == NULL || chunks->type != SA_JSON_ARRAY)
    {
      snprintf (err, errlen, "manifest: no \"chunks\" array");
      sa_json_free (root);
      return false;
    }
  m->name = sa_strdup (sa_json_get_string (root, "name") ? sa_json_get_string (root, "name")
                                                         : sa_json_get_string (root, "image"));
  m->chunks = sa_malloc0 (chunks->n * sizeof *m->chunks);
  for (size_t i = 0; i < chunks->n; i++)
    {
      if (!parse_chunk (chunks->values[i], i, &next, &m->chunks[i], err, errlen))
        {
          sa_json_free (root);
          sa_manifest_clear (m);
          return false;
        }
      m->n_chunks++;
    }
  m->size = (uint64_t) sa_json_get_int (root, "size", (int64_t) next);
  sa_json_free (root);
  return true;
}

void
sa_manifest_clear (SaManifest *m)
{
  free (m->name);
  free (m->chunks);
  memset (m, 0, sizeof *m);
}

char *
sa_image_resolve_url (const char *server, const char *ref)
{
  SaBuf buf;

  if (strncmp (ref, "http://", 7) == 0)
    return sa_strdup (ref);
  sa_buf_init (&buf);
  sa_buf_printf (&buf, "%s%s%s", server, ref[0] == '/' ? "" : "/", ref);
  return sa_buf_steal (&buf);
}

/* {sha256} and {index} substituted; without a template: <manifest dir>/chunks/<sha256> */
static char *
chunk_url (const SaImageJob *job, const char *manifest_url, size_t index, const SaChunk *c)
{
  SaBuf buf;
  const char *tpl = job->chunk_url;

  sa_buf_init (&buf);
  if (tpl == NULL)
    {
      const char *slash = strrchr (manifest_url, '/');

      sa_buf_append (&buf, manifest_url, (size_t) (slash - manifest_url));
      sa_buf_printf (&buf, "/chunks/%s", c->sha256);
      return sa_buf_steal (&buf);
    }
  for (const char *p = tpl; *p; p++)
    {
      if (strncmp (p, "{sha256}", 8) == 0)
        {
          sa_buf_append_str (&buf, c->sha256);
          p += 7;
        }
      else if (strncmp (p, "{index}", 7) == 0)
        {
          sa_buf_printf (&buf, "%zu", index);
          p += 6;
        }
      else
        sa_buf_append (&buf, p, 1);
    }
  if (strncmp (buf.data, "http://", 7) != 0)
    {
      char *abs = sa_image_resolve_url (job->server, buf.data);

      sa_buf_clear (&buf);
      return abs;
    }
  return sa_buf_steal (&buf);
}

static bool
fetch (const char *url, const char *token, size_t max, SaBuf *out, char *err, size_t errlen)
{
  unsigned delay = 500;

  for (int attempt = 1; attempt <= 6; attempt++)
    {
      SaHttpRequest req = { .url = url, .token = token, .timeout_ms = 30000, .max_body = max };
      SaHttpResponse resp;
      int r = sa_http_do (&req, &resp, err, errlen);

      if (r == 0 && resp.status == 200)
        {
          *out = resp.body;
          return true;
        }
      if (r == 0)
        snprintf (err, errlen, "GET %s: HTTP %d", url, resp.status);
      sa_http_response_clear (&resp);
      if (r == 0 && resp.status >= 400 && resp.status < 500 && resp.status != 404 && resp.status != 429)
        return false;
      sa_log ("%s (attempt %d)", err, attempt);
      sa_sleep_ms (delay);
      delay *= 2;
    }
  return false;
}

static bool
write_at (int fd, const char *data, size_t len, uint64_t offset)
{
  while (len > 0)
    {
      ssize_t n = pwrite (fd, data, len, (off_t) offset);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return false;
      data += n;
      len -= (size_t) n;
      offset += (uint64_t) n;
    }
  return true;
}

static bool
receive_chunk (const SaImageJob *job, const char *manifest_url, int fd, size_t i, const SaChunk *c,
               char *err, size_t errlen)
{
  char *url = chunk_url (job, manifest_url, i, c);
  char digest[65];
  SaBuf data;
  bool ok = false;

  sa_buf_init (&data);
  for (int attempt = 1; attempt <= 3 && !ok; attempt++)
    {
      sa_buf_clear (&data);
      if (!fetch (url, job->token, (size_t) c->size + 1, &data, err, errlen))
        break;
      sa_sha256_hex (data.data, data.len, digest);
      if (data.len != c->size || strcmp (digest, c->sha256) != 0)
        {
          snprintf (err, errlen, "chunk %zu: got %zu bytes with sha256 %s, manifest says %llu bytes %s",
                    i, data.len, digest, (unsigned long long) c->size, c->sha256);
          sa_log ("%s (attempt %d)", err, attempt);
          continue;
        }
      ok = true;
    }
  free (url);
  if (ok && !write_at (fd, data.data, data.len, c->offset))
    {
      snprintf (err, errlen, "chunk %zu: writing %s at %llu: %s", i, job->disk,
                (unsigned long long) c->offset, strerror (errno));
      ok = false;
    }
  sa_buf_clear (&data);
  return ok;
}

static bool
write_all_chunks (const SaImageJob *job, const char *manifest_url, const SaManifest *m, int fd,
                  SaImageResult *result, char *err, size_t errlen)
{
  uint64_t done = 0;

  for (size_t i = 0; i < m->n_chunks; i++)
    {
      if (!receive_chunk (job, manifest_url, fd, i, &m->chunks[i], err, errlen))
        return false;
      done += m->chunks[i].size;
      if (job->progress != NULL)
        job->progress (job->progress_data, done, m->size);
    }
  if (fsync (fd) < 0 && errno != EINVAL)
    {
      snprintf (err, errlen, "syncing %s: %s", job->disk, strerror (errno));
      return false;
    }
  result->bytes = done;
  result->chunks = m->n_chunks;
  snprintf (result->name, sizeof result->name, "%s", m->name ? m->name : "");
  return true;
}

bool
sa_image_unicast_receive (const SaImageJob *job, SaImageResult *result, char *err, size_t errlen)
{
  char *url = sa_image_resolve_url (job->server, job->manifest_url);
  SaBuf text;
  SaManifest m;
  int fd;
  bool ok;

  memset (result, 0, sizeof *result);
  sa_buf_init (&text);
  if (!fetch (url, job->token, 64u << 20, &text, err, errlen))
    {
      free (url);
      return false;
    }
  ok = sa_manifest_parse (text.data, text.len, &m, err, errlen);
  sa_buf_clear (&text);
  if (!ok)
    {
      free (url);
      return false;
    }
  sa_log ("manifest %s: %zu chunks, %llu bytes -> %s", url, m.n_chunks, (unsigned long long) m.size, job->disk);
  fd = open (job->disk, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    {
      snprintf (err, errlen, "opening %s: %s", job->disk, strerror (errno));
      ok = false;
    }
  else
    {
      ok = write_all_chunks (job, url, &m, fd, result, err, errlen);
      close (fd);
    }
  sa_manifest_clear (&m);
  free (url);
  return ok;
}
