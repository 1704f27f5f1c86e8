/* shoal-manifest.c: the image manifest, shared by shoald and the agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shoal-manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#define MANIFEST_MAGIC "shoal-manifest"

struct ShoalManifestHash {
  EVP_MD_CTX *ctx;
};

static void set_error (ShoalManifestError *error,
                       unsigned            line,
                       const char         *format,
                       ...) __attribute__ ((format (printf, 3, 4)));

static void
set_error (ShoalManifestError *error,
           unsigned            line,
           const char         *format,
           ...)
{
  va_list args;

  if (error == NULL)
    return;
  error->line = line;
  va_start (args, format);
  vsnprintf (error->message, sizeof error->message, format, args);
  va_end (args);
}

/* --- SHA-256 ------------------------------------------------------------ */

ShoalManifestHash *
shoal_manifest_hash_new (void)
{
  ShoalManifestHash *self = calloc (1, sizeof *self);

  if (self == NULL)
    return NULL;
  self->ctx = EVP_MD_CTX_new ();
  if (self->ctx == NULL || EVP_DigestInit_ex (self->ctx, EVP_sha256 (), NULL) != 1)
    {
      shoal_manifest_hash_free (self);
      return NULL;
    }
  return self;
}

int
shoal_manifest_hash_update (ShoalManifestHash *self,
                            const void        *data,
                            size_t             length)
{
  return EVP_DigestUpdate (self->ctx, data, length) == 1 ? 0 : -1;
}

/* Writes the digest and resets @self for a new message. */
int
shoal_manifest_hash_final (ShoalManifestHash *self,
                           uint8_t            digest[SHOAL_MANIFEST_DIGEST_LEN])
{
  unsigned int len = 0;

  if (EVP_DigestFinal_ex (self->ctx, digest, &len) != 1 || len != SHOAL_MANIFEST_DIGEST_LEN)
    return -1;
  return EVP_DigestInit_ex (self->ctx, EVP_sha256 (), NULL) == 1 ? 0 : -1;
}

void
shoal_manifest_hash_free (ShoalManifestHash *self)
{
  if (self == NULL)
    return;
  EVP_MD_CTX_free (self->ctx);
  free (self);
}

int
shoal_manifest_digest (const void *data,
                       size_t      length,
                       uint8_t     digest[SHOAL_MANIFEST_DIGEST_LEN])
{
  unsigned int len = 0;

  if (EVP_Digest (data, length, digest, &len, EVP_sha256 (), NULL) != 1)
    return -1;
  return len == SHOAL_MANIFEST_DIGEST_LEN ? 0 : -1;
}

void
shoal_manifest_digest_to_hex (const uint8_t *digest,
                              char           hex[SHOAL_MANIFEST_HEX_LEN + 1])
{
  static const char digits[] = "0123456789abcdef";

  for (size_t i = 0; i < SHOAL_MANIFEST_DIGEST_LEN; i++)
    {
      hex[2 * i] = digits[digest[i] >> 4];
      hex[2 * i + 1] = digits[digest[i] & 0xf];
    }
  hex[SHOAL_MANIFEST_HEX_LEN] = '\0';
}

static int
hex_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Strict: exactly 64 lowercase hex digits. */
int
shoal_manifest_digest_from_hex (const char *hex,
                                size_t      length,
                                uint8_t     digest[SHOAL_MANIFEST_DIGEST_LEN])
{
  if (length != SHOAL_MANIFEST_HEX_LEN)
    return -1;
  for (size_t i = 0; i < SHOAL_MANIFEST_DIGEST_LEN; i++)
    {
      int hi = hex_value (hex[2 * i]);
      int lo = hex_value (hex[2 * i + 1]);

      if (hi < 0 || lo < 0)
        return -1;
      digest[i] = (uint8_t) (hi << 4 | lo);
    }
  return 0;
}

int
shoal_manifest_is_zero (const void *data,
                        size_t      length)
{
  const uint8_t *p = data;

  if (length == 0)
    return 1;
  /* p[0] == 0 and every byte equals the next one: memcmp runs vectorized */
  return p[0] == 0 && memcmp (p, p + 1, length - 1) == 0;
}

void
shoal_manifest_data_extent (int       fd,
                            uint64_t  pos,
                            uint64_t  limit,
                            uint64_t *start,
                            uint64_t *end)
{
  off_t data = lseek (fd, (off_t) pos, SEEK_DATA);
  off_t hole;

  *start = pos;
  *end = limit;
  if (data < 0)
    {
      if (errno == ENXIO)
        *start = limit;
      return;
    }
  hole = lseek (fd, data, SEEK_HOLE);
  *start = (uint64_t) data < limit ? (uint64_t) data : limit;
  if (hole > data && (uint64_t) hole < limit)
    *end = (uint64_t) hole;
}

int
shoal_manifest_is_valid_name (const char *name)
{
  size_t len;

  if (name == NULL)
    return 0;
  len = strlen (name);
  if (len == 0 || len > SHOAL_MANIFEST_NAME_MAX || name[0] == '.' || name[0] == '-')
    return 0;
  for (size_t i = 0; i < len; i++)
    {
      char c = name[i];

      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        continue;
      if (strchr ("._+:@-", c) == NULL)
        return 0;
    }
  return 1;
}

int
shoal_manifest_is_valid_id (const char *id)
{
  uint8_t digest[SHOAL_MANIFEST_DIGEST_LEN];

  return id != NULL && shoal_manifest_digest_from_hex (id, strlen (id), digest) == 0;
}

/* --- Building ------------------------------------------------------------ */

static int
check_geometry (uint64_t            size,
                uint32_t            chunk_size,
                uint64_t           *n_chunks,
                unsigned            line,
                ShoalManifestError *error)
{
  if (!shoal_manifest_chunk_size_is_valid (chunk_size))
    {
      set_error (error, line, "chunk size %" PRIu32 " is not a power of two between %u and %u",
                 chunk_size, SHOAL_MANIFEST_MIN_CHUNK_SIZE, SHOAL_MANIFEST_MAX_CHUNK_SIZE);
      return -1;
    }
  if (size == 0)
    {
      set_error (error, line, "image size is zero");
      return -1;
    }
  *n_chunks = size / chunk_size + (size % chunk_size != 0);
  if (*n_chunks > SHOAL_MANIFEST_MAX_CHUNKS)
    {
      set_error (error, line, "image of %" PRIu64 " bytes needs %" PRIu64
                 " chunks of %" PRIu32 " bytes, more than the limit of %u",
                 size, *n_chunks, chunk_size, SHOAL_MANIFEST_MAX_CHUNKS);
      return -1;
    }
  return 0;
}

ShoalManifest *
shoal_manifest_new (const char         *name,
                    uint64_t            size,
                    uint32_t            chunk_size,
                    ShoalManifestError *error)
{
  ShoalManifest *self;
  uint64_t n_chunks = 0;

  if (!shoal_manifest_is_valid_name (name))
    {
      set_error (error, 0, "invalid image name (1 to %d characters from A-Z a-z 0-9 . _ + : @ -, "
                 "not starting with . or -)", SHOAL_MANIFEST_NAME_MAX);
      return NULL;
    }
  if (check_geometry (size, chunk_size, &n_chunks, 0, error) < 0)
    return NULL;
  self = calloc (1, sizeof *self);
  if (self == NULL)
    {
      set_error (error, 0, "out of memory");
      return NULL;
    }
  memcpy (self->name, name, strlen (name) + 1);
  self->size = size;
  self->chunk_size = chunk_size;
  self->n_chunks = n_chunks;
  self->digests = calloc (n_chunks, SHOAL_MANIFEST_DIGEST_LEN);
  self->zero = calloc (n_chunks, 1);
  if (self->digests == NULL || self->zero == NULL)
    {
      shoal_manifest_free (self);
      set_error (error, 0, "out of memory for %" PRIu64 " chunks", n_chunks);
      return NULL;
    }
  return self;
}

void
shoal_manifest_free (ShoalManifest *self)
{
  if (self == NULL)
    return;
  free (self->digests);
  free (self->zero);
  free (self);
}

/* @digest NULL marks the chunk as all zeros. */
int
shoal_manifest_set_chunk (ShoalManifest *self,
                          uint64_t       index,
                          const uint8_t *digest)
{
  if (index >= self->n_chunks)
    return -1;
  if (digest == NULL)
    {
      memset (self->digests + index * SHOAL_MANIFEST_DIGEST_LEN, 0, SHOAL_MANIFEST_DIGEST_LEN);
      self->zero[index] = 1;
      return 0;
    }
  memcpy (self->digests + index * SHOAL_MANIFEST_DIGEST_LEN, digest, SHOAL_MANIFEST_DIGEST_LEN);
  self->zero[index] = 0;
  return 0;
}

void
shoal_manifest_set_image_sha256 (ShoalManifest *self,
                                 const uint8_t *digest)
{
  memcpy (self->image_sha256, digest, SHOAL_MANIFEST_DIGEST_LEN);
}

/* --- Chunks ---------------------------------------------------------------- */

uint64_t
shoal_manifest_chunk_offset (const ShoalManifest *self,
                             uint64_t             index)
{
  return index * (uint64_t) self->chunk_size;
}

uint32_t
shoal_manifest_chunk_length (const ShoalManifest *self,
                             uint64_t             index)
{
  uint64_t offset;

  if (index >= self->n_chunks)
    return 0;
  offset = shoal_manifest_chunk_offset (self, index);
  if (self->size - offset < self->chunk_size)
    return (uint32_t) (self->size - offset);
  return self->chunk_size;
}

int
shoal_manifest_chunk_is_zero (const ShoalManifest *self,
                              uint64_t             index)
{
  return index < self->n_chunks && self->zero[index] != 0;
}

const uint8_t *
shoal_manifest_chunk_digest (const ShoalManifest *self,
                             uint64_t             index)
{
  if (index >= self->n_chunks || self->zero[index])
    return NULL;
  return self->digests + index * SHOAL_MANIFEST_DIGEST_LEN;
}

uint64_t
shoal_manifest_count_data_chunks (const ShoalManifest *self,
                                  uint64_t            *data_bytes)
{
  uint64_t n = 0;
  uint64_t bytes = 0;

  for (uint64_t i = 0; i < self->n_chunks; i++)
    {
      if (self->zero[i])
        continue;
      n++;
      bytes += shoal_manifest_chunk_length (self, i);
    }
  if (data_bytes != NULL)
    *data_bytes = bytes;
  return n;
}

/* Checks that @data is exactly chunk @index: its length, and its SHA-256 or,
 * for a zero chunk, that every byte is zero. Returns 0 when it is. */
int
shoal_manifest_verify_chunk (const ShoalManifest *self,
                             uint64_t             index,
                             const void          *data,
                             size_t               length,
                             ShoalManifestError  *error)
{
  uint8_t digest[SHOAL_MANIFEST_DIGEST_LEN];
  const uint8_t *expected;

  if (index >= self->n_chunks)
    {
      set_error (error, 0, "chunk %" PRIu64 " does not exist (the image has %" PRIu64 ")",
                 index, self->n_chunks);
      return -1;
    }
  if (length != shoal_manifest_chunk_length (self, index))
    {
      set_error (error, 0, "chunk %" PRIu64 " has %zu bytes, expected %" PRIu32,
                 index, length, shoal_manifest_chunk_length (self, index));
      return -1;
    }
  expected = shoal_manifest_chunk_digest (self, index);
  if (expected == NULL)
    {
      if (shoal_manifest_is_zero (data, length))
        return 0;
      set_error (error, 0, "chunk %" PRIu64 " should be all zeros", index);
      return -1;
    }
  if (shoal_manifest_digest (data, length, digest) < 0)
    {
      set_error (error, 0, "SHA-256 failed");
      return -1;
    }
  if (memcmp (digest, expected, SHOAL_MANIFEST_DIGEST_LEN) != 0)
    {
      set_error (error, 0, "chunk %" PRIu64 " does not match its SHA-256 in the manifest", index);
      return -1;
    }
  return 0;
}

/* --- Serializing -------------------------------------------------------------- */

char *
shoal_manifest_serialize (const ShoalManifest *self,
                          size_t              *length)
{
  size_t cap = 512 + strlen (self->name) + self->n_chunks * (SHOAL_MANIFEST_HEX_LEN + 1);
  char *out = malloc (cap);
  char hex[SHOAL_MANIFEST_HEX_LEN + 1];
  size_t pos;

  if (out == NULL)
    return NULL;
  shoal_manifest_digest_to_hex (self->image_sha256, hex);
  pos = (size_t) snprintf (out, cap,
                           MANIFEST_MAGIC " %d\n"
                           "name %s\n"
                           "size %" PRIu64 "\n"
                           "chunk-size %" PRIu32 "\n"
                           "chunks %" PRIu64 "\n"
                           "image-sha256 %s\n",
                           SHOAL_MANIFEST_VERSION, self->name, self->size,
                           self->chunk_size, self->n_chunks, hex);
  for (uint64_t i = 0; i < self->n_chunks; i++)
    {
      if (self->zero[i])
        {
          memcpy (out + pos, "zero\n", 5);
          pos += 5;
          continue;
        }
      shoal_manifest_digest_to_hex (self->digests + i * SHOAL_MANIFEST_DIGEST_LEN, out + pos);
      pos += SHOAL_MANIFEST_HEX_LEN;
      out[pos++] = '\n';
    }
  memcpy (out + pos, "end\n", 5);
  pos += 4;
  if (length != NULL)
    *length = pos;
  return out;
}

int
shoal_manifest_compute_id (const char *data,
                           size_t      length,
                           char        id_hex[SHOAL_MANIFEST_HEX_LEN + 1])
{
  uint8_t digest[SHOAL_MANIFEST_DIGEST_LEN];

  if (shoal_manifest_digest (data, length, digest) < 0)
    return -1;
  shoal_manifest_digest_to_hex (digest, id_hex);
  return 0;
}

/* --- Parsing -------------------------------------------------------------- */

typedef struct {
  const char *data;
  size_t      length;
  size_t      pos;
  unsigned    line;
  const char *cur;        /* the current line, without its newline */
  size_t      cur_len;
} Reader;

static int
reader_next (Reader             *r,
             ShoalManifestError *error)
{
  const char *nl;

  r->line++;
  if (r->pos >= r->length)
    {
      set_error (error, r->line, "unexpected end of manifest");
      return -1;
    }
  nl = memchr (r->data + r->pos, '\n', r->length - r->pos);
  if (nl == NULL)
    {
      set_error (error, r->line, "line is not terminated by a newline");
      return -1;
    }
  r->cur = r->data + r->pos;
  r->cur_len = (size_t) (nl - r->cur);
  r->pos += r->cur_len + 1;
  return 0;
}

/* Reads the next line, which must be "<key> <value>"; points *value at it. */
static int
reader_field (Reader             *r,
              const char         *key,
              const char        **value,
              size_t             *value_len,
              ShoalManifestError *error)
{
  size_t key_len = strlen (key);

  if (reader_next (r, error) < 0)
    return -1;
  if (r->cur_len <= key_len + 1 || memcmp (r->cur, key, key_len) != 0 || r->cur[key_len] != ' ')
    {
      set_error (error, r->line, "expected \"%s <value>\"", key);
      return -1;
    }
  *value = r->cur + key_len + 1;
  *value_len = r->cur_len - key_len - 1;
  return 0;
}

/* Decimal, no sign, no leading zero, no overflow. */
static int
parse_u64 (const char *s,
           size_t      len,
           uint64_t   *out)
{
  uint64_t v = 0;

  if (len == 0 || len > 20 || (s[0] == '0' && len > 1))
    return -1;
  for (size_t i = 0; i < len; i++)
    {
      unsigned d;

      if (s[i] < '0' || s[i] > '9')
        return -1;
      d = (unsigned) (s[i] - '0');
      if (v > (UINT64_MAX - d) / 10)
        return -1;
      v = v * 10 + d;
    }
  *out = v;
  return 0;
}

static int
reader_u64 (Reader             *r,
            const char         *key,
            uint64_t           *out,
            ShoalManifestError *error)
{
  const char *value;
  size_t len;

  if (reader_field (r, key, &value, &len, error) < 0)
    return -1;
  if (parse_u64 (value, len, out) < 0)
    {
      set_error (error, r->line, "%s is not a decimal number without sign or leading zeros", key);
      return -1;
    }
  return 0;
}

static int
parse_header (Reader             *r,
              char                name[SHOAL_MANIFEST_NAME_MAX + 1],
              uint64_t           *size,
              uint64_t           *chunk_size,
              ShoalManifestError *error)
{
  const char *value;
  size_t len;
  uint64_t version = 0;

  if (reader_field (r, MANIFEST_MAGIC, &value, &len, error) < 0)
    {
      set_error (error, 1, "not a shoal manifest (first line must be \"" MANIFEST_MAGIC " %d\")",
                 SHOAL_MANIFEST_VERSION);
      return -1;
    }
  if (parse_u64 (value, len, &version) < 0 || version != SHOAL_MANIFEST_VERSION)
    {
      set_error (error, r->line, "unsupported manifest version \"%.*s\" (this parser reads %d)",
                 (int) (len > 20 ? 20 : len), value, SHOAL_MANIFEST_VERSION);
      return -1;
    }
  if (reader_field (r, "name", &value, &len, error) < 0)
    return -1;
  if (len > SHOAL_MANIFEST_NAME_MAX)
    {
      set_error (error, r->line, "image name is longer than %d bytes", SHOAL_MANIFEST_NAME_MAX);
      return -1;
    }
  memcpy (name, value, len);
  name[len] = '\0';
  if (memchr (value, '\0', len) != NULL || !shoal_manifest_is_valid_name (name))
    {
      set_error (error, r->line, "invalid image name");
      return -1;
    }
  if (reader_u64 (r, "size", size, error) < 0 || reader_u64 (r, "chunk-size", chunk_size, error) < 0)
    return -1;
  if (*chunk_size > SHOAL_MANIFEST_MAX_CHUNK_SIZE)
    {
      set_error (error, r->line, "chunk size %" PRIu64 " is larger than %u",
                 *chunk_size, SHOAL_MANIFEST_MAX_CHUNK_SIZE);
      return -1;
    }
  return 0;
}

static int
parse_chunks (Reader             *r,
              ShoalManifest      *m,
              ShoalManifestError *error)
{
  for (uint64_t i = 0; i < m->n_chunks; i++)
    {
      uint8_t digest[SHOAL_MANIFEST_DIGEST_LEN];

      if (reader_next (r, error) < 0)
        return -1;
      if (r->cur_len == 4 && memcmp (r->cur, "zero", 4) == 0)
        {
          shoal_manifest_set_chunk (m, i, NULL);
          continue;
        }
      if (shoal_manifest_digest_from_hex (r->cur, r->cur_len, digest) < 0)
        {
          set_error (error, r->line, "chunk %" PRIu64 ": expected 64 lowercase hex digits or \"zero\"", i);
          return -1;
        }
      shoal_manifest_set_chunk (m, i, digest);
    }
  return 0;
}

static int
parse_body (Reader             *r,
            ShoalManifest      *m,
            uint64_t            declared_chunks,
            ShoalManifestError *error)
{
  const char *value;
  size_t len;
  uint8_t digest[SHOAL_MANIFEST_DIGEST_LEN];

  if (declared_chunks != m->n_chunks)
    {
      set_error (error, r->line, "chunks is %" PRIu64 " but size and chunk-size make %" PRIu64,
                 declared_chunks, m->n_chunks);
      return -1;
    }
  if (reader_field (r, "image-sha256", &value, &len, error) < 0)
    return -1;
  if (shoal_manifest_digest_from_hex (value, len, digest) < 0)
    {
      set_error (error, r->line, "image-sha256 is not 64 lowercase hex digits");
      return -1;
    }
  shoal_manifest_set_image_sha256 (m, digest);
  if (parse_chunks (r, m, error) < 0)
    return -1;
  if (reader_next (r, error) < 0)
    return -1;
  if (r->cur_len != 3 || memcmp (r->cur, "end", 3) != 0)
    {
      set_error (error, r->line, "expected \"end\" after %" PRIu64 " chunk lines", m->n_chunks);
      return -1;
    }
  if (r->pos != r->length)
    {
      set_error (error, r->line + 1, "data after \"end\"");
      return -1;
    }
  return 0;
}

ShoalManifest *
shoal_manifest_parse (const char         *data,
                      size_t              length,
                      ShoalManifestError *error)
{
  Reader r = { .data = data, .length = length };
  char name[SHOAL_MANIFEST_NAME_MAX + 1];
  uint64_t size = 0;
  uint64_t chunk_size = 0;
  uint64_t declared_chunks = 0;
  uint64_t n_chunks = 0;
  ShoalManifest *m;

  if (parse_header (&r, name, &size, &chunk_size, error) < 0)
    return NULL;
  if (check_geometry (size, (uint32_t) chunk_size, &n_chunks, r.line, error) < 0)
    return NULL;
  if (reader_u64 (&r, "chunks", &declared_chunks, error) < 0)
    return NULL;
  /* Before allocating: the text must be long enough for the chunk lines */
  if (declared_chunks != n_chunks || (length - r.pos) / 5 < n_chunks)
    {
      set_error (error, r.line, declared_chunks != n_chunks
                 ? "chunks is %" PRIu64 " but size and chunk-size make %" PRIu64
                 : "manifest is too short for %" PRIu64 " chunks (%" PRIu64 ")",
                 declared_chunks, n_chunks);
      return NULL;
    }
  m = shoal_manifest_new (name, size, (uint32_t) chunk_size, error);
  if (m == NULL)
    return NULL;
  if (parse_body (&r, m, declared_chunks, error) < 0)
    {
      shoal_manifest_free (m);
      return NULL;
    }
  return m;
}
