/* sa-image.c: writes an image to a disk, verifying every chunk
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "sa-image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sa-gpt.h"
#include "sa-http.h"
#include "sa-util.h"
#include "shoal-manifest.h"

typedef struct {
  const SaImageJob  *job;
  const char        *manifest_url;
  ShoalManifest     *m;
  ShoalManifestHash *image_hash;
  int                fd;
  bool               readable;   /* fd reads too: chunks already there are kept */
  char              *zeros;
  uint8_t           *scratch;    /* a chunk read back from the disk */
} SaReceive;

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
chunk_url (const SaImageJob *job, const char *manifest_url, uint64_t index, const char *hex)
{
  SaBuf buf;
  const char *tpl = job->chunk_url;

  sa_buf_init (&buf);
  if (tpl == NULL)
    {
      const char *slash = strrchr (manifest_url, '/');

      sa_buf_append (&buf, manifest_url, (size_t) (slash - manifest_url));
      sa_buf_printf (&buf, "/chunks/%s", hex);
      return sa_buf_steal (&buf);
    }
  for (const char *p = tpl; *p; p++)
    {
      if (strncmp (p, "{sha256}", 8) == 0)
        {
          sa_buf_append_str (&buf, hex);
          p += 7;
        }
      else if (strncmp (p, "{index}", 7) == 0)
        {
          sa_buf_printf (&buf, "%" PRIu64, index);
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
      int status = resp.status;

      if (r == 0 && status == 200)
        {
          *out = resp.body;
          return true;
        }
      if (r == 0)
        snprintf (err, errlen, "GET %s: HTTP %d", url, status);
      sa_http_response_clear (&resp);
      if (r == 0 && status >= 400 && status < 500 && status != 404 && status != 408 && status != 429)
        return false;
      sa_log ("%s (attempt %d)", err, attempt);
      sa_sleep_ms (delay);
      delay *= 2;
    }
  return false;
}

/* Zeros at [offset, offset + len) without writing them where the target
 * allows: BLKZEROOUT on a block device (the drive's WRITE ZEROES where it
 * has it, else the kernel writes them), a hole in a regular file (a disk
 * image: it reads as zeros and takes no space). Anything else, or a
 * refusal, writes them, from @zeros (@zeros_len bytes of them). Whatever
 * an earlier system left there is gone either way. */
bool
sa_image_zero_at (int fd, const char *zeros, size_t zeros_len, uint64_t len, uint64_t offset)
{
  struct stat st;

  if (len == 0)
    return true;
  if (fstat (fd, &st) < 0)
    return sa_pwrite_zeros (fd, zeros, zeros_len, len, offset);
  if (S_ISBLK (st.st_mode))
    {
      uint64_t range[2] = { offset, len };

      if (offset % 512 == 0 && len % 512 == 0 && ioctl (fd, BLKZEROOUT, range) == 0)
        return true;
    }
  else if (S_ISREG (st.st_mode))
    {
      uint64_t size = (uint64_t) st.st_size;

      /* past the end: growing the file makes the zeros */
      if (offset + len > size && ftruncate (fd, (off_t) (offset + len)) < 0)
        return sa_pwrite_zeros (fd, zeros, zeros_len, len, offset);
      if (offset >= size ||
          fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t) offset,
                     (off_t) (len < size - offset ? len : size - offset)) == 0)
        return true;
    }
  return sa_pwrite_zeros (fd, zeros, zeros_len, len, offset);
}

uint64_t
sa_image_zero_run (const ShoalManifest *m, uint64_t i, uint64_t *len)
{
  *len = 0;
  while (i < m->n_chunks && shoal_manifest_chunk_is_zero (m, i))
    *len += shoal_manifest_chunk_length (m, i++);
  return i;
}

bool
sa_image_chunk_on_disk (int fd, const ShoalManifest *m, uint64_t i, uint8_t *buf)
{
  uint32_t len = shoal_manifest_chunk_length (m, i);
  uint64_t off = shoal_manifest_chunk_offset (m, i);
  ShoalManifestError merr = { 0 };

  return sa_pread_all (fd, buf, len, off) && shoal_manifest_verify_chunk (m, i, buf, len, &merr) == 0;
}

int
sa_image_open_disk (const char *disk, uint64_t image_size, bool *readable, char *err, size_t errlen)
{
  int fd = open (disk, O_RDWR | O_CLOEXEC);
  struct stat st;
  uint64_t size = 0;

  *readable = fd >= 0;
  if (fd < 0)
    fd = open (disk, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    {
      snprintf (err, errlen, "opening %s: %s", disk, strerror (errno));
      return -1;
    }
  /* a block device too small fails before anything is written, not at
   * the first chunk past its end (a file grows) */
  if (fstat (fd, &st) == 0 && S_ISBLK (st.st_mode) && ioctl (fd, BLKGETSIZE64, &size) == 0 && size < image_size)
    {
      snprintf (err, errlen, "%s holds %" PRIu64 " bytes (%.1f GiB), too few for the image's %" PRIu64
                " (%.1f GiB): nothing was written", disk, size, (double) size / (1u << 30), image_size,
                (double) image_size / (1u << 30));
      close (fd);
      return -1;
    }
  return fd;
}

bool
sa_cancel_is_set (SaCancel *cancel)
{
  bool set;

  if (cancel == NULL)
    return false;
  pthread_mutex_lock (&cancel->lock);
  set = cancel->cancelled;
  pthread_mutex_unlock (&cancel->lock);
  return set;
}

void
sa_cancel_set (SaCancel *cancel)
{
  pthread_mutex_lock (&cancel->lock);
  cancel->cancelled = true;
  if (cancel->hook != NULL)
    cancel->hook (cancel->hook_data);
  pthread_mutex_unlock (&cancel->lock);
}

void
sa_cancel_set_hook (SaCancel *cancel, void (*hook) (void *data), void *data)
{
  if (cancel == NULL)
    return;
  pthread_mutex_lock (&cancel->lock);
  cancel->hook = hook;
  cancel->hook_data = data;
  if (cancel->cancelled && hook != NULL)
    hook (data);
  pthread_mutex_unlock (&cancel->lock);
}

/* Fetches data chunk @i until it verifies (3 attempts) */
bool
sa_image_get_chunk (const SaImageJob *job, const char *manifest_url, const ShoalManifest *m, uint64_t i,
                    SaBuf *data, char *err, size_t errlen)
{
  uint32_t len = shoal_manifest_chunk_length (m, i);
  char hex[SHOAL_MANIFEST_HEX_LEN + 1];
  char *url;
  bool ok = false;

  shoal_manifest_digest_to_hex (shoal_manifest_chunk_digest (m, i), hex);
  url = chunk_url (job, manifest_url, i, hex);
  for (int attempt = 1; attempt <= 3 && !ok; attempt++)
    {
      ShoalManifestError merr = { 0 };

      sa_buf_clear (data);
      if (!fetch (url, job->token, (size_t) len + 1, data, err, errlen))
        break;
      ok = shoal_manifest_verify_chunk (m, i, data->data, data->len, &merr) == 0;
      if (!ok)
        {
          snprintf (err, errlen, "chunk %" PRIu64 " from %s does not verify: %s", i, url, merr.message);
          sa_log ("%s (attempt %d)", err, attempt);
        }
    }
  free (url);
  return ok;
}

static bool
write_all_chunks (SaReceive *r, SaImageResult *result, char *err, size_t errlen)
{
  uint64_t done = 0;
  uint8_t digest[SHOAL_MANIFEST_DIGEST_LEN];
  unsigned misses = r->readable ? 0 : SA_IMAGE_KEEP_MISSES;

  for (uint64_t i = 0; i < r->m->n_chunks; i++)
    {
      SaBuf data;
      bool ok, written;

      if (sa_cancel_is_set (r->job->cancel))
        {
          snprintf (err, errlen, "stopped at chunk %" PRIu64 " of %" PRIu64 ": a newer instruction came",
                    i, r->m->n_chunks);
          return false;
        }
      if (shoal_manifest_chunk_is_zero (r->m, i))
        {
          /* a run of zero chunks: zeroed at once (one hole, one
           * BLKZEROOUT), hashed as the zeros they are */
          uint64_t len, end = sa_image_zero_run (r->m, i, &len);

          if (!sa_image_zero_at (r->fd, r->zeros, r->m->chunk_size, len, shoal_manifest_chunk_offset (r->m, i)))
            {
              snprintf (err, errlen, "chunk %" PRIu64 ": writing %s: %s", i, r->job->disk, strerror (errno));
              return false;
            }
          for (uint64_t j = i; j < end; j++)
            {
              uint32_t n = shoal_manifest_chunk_length (r->m, j);

              shoal_manifest_hash_update (r->image_hash, r->zeros, n);
              done += n;
              result->zero_chunks++;
              if (r->job->progress != NULL)
                r->job->progress (r->job->progress_data, done, r->m->size);
            }
          i = end - 1;
          continue;
        }
      if (misses < SA_IMAGE_KEEP_MISSES)
        {
          if (sa_image_chunk_on_disk (r->fd, r->m, i, r->scratch))
            {
              /* already there: hashed, not fetched nor written */
              uint32_t len = shoal_manifest_chunk_length (r->m, i);

              shoal_manifest_hash_update (r->image_hash, r->scratch, len);
              misses = 0;
              result->kept_chunks++;
              done += len;
              if (r->job->progress != NULL)
                r->job->progress (r->job->progress_data, done, r->m->size);
              continue;
            }
          misses++;
        }
      sa_buf_init (&data);
      ok = sa_image_get_chunk (r->job, r->manifest_url, r->m, i, &data, err, errlen);
      written = ok && sa_pwrite_all (r->fd, data.data, data.len, shoal_manifest_chunk_offset (r->m, i));
      if (ok && !written)
        {
          snprintf (err, errlen, "chunk %" PRIu64 ": writing %s: %s", i, r->job->disk, strerror (errno));
          ok = false;
        }
      if (ok)
        shoal_manifest_hash_update (r->image_hash, data.data, data.len);
      sa_buf_clear (&data);
      if (!ok)
        return false;
      done += shoal_manifest_chunk_length (r->m, i);
      if (r->job->progress != NULL)
        r->job->progress (r->job->progress_data, done, r->m->size);
    }
  if (result->kept_chunks > 0)
    sa_log ("%" PRIu64 " chunks were on the disk already: kept, not fetched", result->kept_chunks);
  shoal_manifest_hash_final (r->image_hash, digest);
  if (memcmp (digest, r->m->image_sha256, sizeof digest) != 0)
    {
      snprintf (err, errlen, "the image written does not match the manifest's image-sha256");
      return false;
    }
  if (fsync (r->fd) < 0 && errno != EINVAL)
    {
      snprintf (err, errlen, "syncing %s: %s", r->job->disk, strerror (errno));
      return false;
    }
  result->bytes = done;
  result->chunks = r->m->n_chunks;
  snprintf (result->name, sizeof result->name, "%s", r->m->name);
  shoal_manifest_digest_to_hex (digest, result->image_sha256);
  return true;
}

ShoalManifest *
sa_image_get_manifest (const SaImageJob *job, const char *url, char id_out[65], char *err, size_t errlen)
{
  SaBuf text;
  ShoalManifestError merr = { 0 };
  ShoalManifest *m;
  char id[SHOAL_MANIFEST_HEX_LEN + 1];

  sa_buf_init (&text);
  if (!fetch (url, job->token, 64u << 20, &text, err, errlen))
    return NULL;
  shoal_manifest_compute_id (text.data, text.len, id);
  if (id_out != NULL)
    memcpy (id_out, id, sizeof id);
  if (job->image_id != NULL && strcmp (id, job->image_id) != 0)
    {
      snprintf (err, errlen, "manifest %s hashes to %s, not to the image id %s", url, id, job->image_id);
      sa_buf_clear (&text);
      return NULL;
    }
  m = shoal_manifest_parse (text.data, text.len, &merr);
  sa_buf_clear (&text);
  if (m == NULL)
    snprintf (err, errlen, "manifest %s, line %u: %s", url, merr.line, merr.message);
  return m;
}

bool
sa_image_unicast_receive (const SaImageJob *job, SaImageResult *result, char *err, size_t errlen)
{
  char *url = sa_image_resolve_url (job->server, job->manifest_url);
  SaReceive r = { .job = job, .manifest_url = url, .fd = -1 };
  bool ok = false;

  memset (result, 0, sizeof *result);
  r.m = sa_image_get_manifest (job, url, result->image_id, err, errlen);
  if (r.m != NULL)
    {
      sa_log ("manifest %s: %s, %" PRIu64 " chunks, %" PRIu64 " bytes -> %s", url, r.m->name,
              r.m->n_chunks, r.m->size, job->disk);
      r.fd = sa_image_open_disk (job->disk, r.m->size, &r.readable, err, errlen);
    }
  /* what an earlier system keeps at its partitions' ends past the image,
   * zeroed while its table is still there to say where they are */
  if (r.fd >= 0 && !sa_gpt_wipe_earlier (r.fd, r.m->size, result->wiped, sizeof result->wiped))
    {
      snprintf (err, errlen, "%s: %s", job->disk, result->wiped);
      close (r.fd);
      r.fd = -1;
    }
  if (r.fd >= 0)
    {
      r.zeros = sa_malloc0 (r.m->chunk_size);
      r.scratch = r.readable ? sa_malloc0 (r.m->chunk_size) : NULL;
      r.image_hash = shoal_manifest_hash_new ();
      ok = write_all_chunks (&r, result, err, errlen);
      shoal_manifest_hash_free (r.image_hash);
      free (r.zeros);
      free (r.scratch);
      close (r.fd);
    }
  if (r.m != NULL)
    shoal_manifest_free (r.m);
  free (url);
  return ok;
}

char *
sa_image_default_disk (const char *sys_block, uint64_t need, char *why, size_t whylen)
{
  struct dirent **names = NULL;
  char *disk = NULL;
  int n = scandir (sys_block, &names, NULL, alphasort);
  SaBuf small;

  sa_buf_init (&small);
  for (int i = 0; i < n; i++)
    {
      const char *name = names[i]->d_name;
      char *removable = sa_read_filef (true, "%s/%s/removable", sys_block, name);
      char *sectors = sa_read_filef (true, "%s/%s/size", sys_block, name);
      uint64_t bytes = sectors != NULL ? strtoull (sectors, NULL, 10) * 512 : 0;
      char dev[512];
      struct stat st;

      /* a disk: a device behind it (not loop, ram, zram, dm), not an
       * optical drive, not removable */
      snprintf (dev, sizeof dev, "%s/%s/device", sys_block, name);
      if (disk == NULL && name[0] != '.' && stat (dev, &st) == 0 && strncmp (name, "sr", 2) != 0
          && (removable == NULL || strcmp (removable, "0") == 0))
        {
          if (need > 0 && bytes < need)
            sa_buf_printf (&small, "%s%s (%.1f GiB)", small.len > 0 ? ", " : "", name, (double) bytes / (1u << 30));
          else
            {
              disk = sa_malloc0 (strlen (name) + 6);
              sprintf (disk, "/dev/%s", name);
            }
        }
      free (removable);
      free (sectors);
      free (names[i]);
    }
  free (names);
  if (disk == NULL)
    {
      if (small.len > 0)
        snprintf (why, whylen, "no fixed disk holds the image's %" PRIu64 " bytes (%.1f GiB): %s", need,
                  (double) need / (1u << 30), small.data);
      else
        snprintf (why, whylen, "no fixed disk found to write (in %s)", sys_block);
    }
  sa_buf_clear (&small);
  return disk;
}
