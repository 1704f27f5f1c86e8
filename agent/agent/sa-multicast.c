/* sa-multicast.c: "multicast-receive" with the receiver of
 * plugins/multicast/proto, the missing chunks by unicast HTTP
 *
 * The session is bound to the image store's manifest: its chunk table is
 * converted to the protocol's (zero chunks flagged, never sent: written
 * here as zeros) with the image id as the session's manifest hash, as the
 * multicast step does on the sending side.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "sa-multicast.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sa-gpt.h"
#include "sa-util.h"
#include "shoal-mcast-receiver.h"

typedef struct {
  int      fd;
  uint32_t chunk_size;
  uint64_t written;
  int      failed_errno;
} SaMcastDisk;

static int
write_chunk (void *user, uint32_t idx, const uint8_t *data, size_t len)
{
  SaMcastDisk *d = user;

  if (!sa_pwrite_all (d->fd, (const char *) data, len, (uint64_t) idx * d->chunk_size))
    {
      d->failed_errno = errno;
      return -1;
    }
  d->written++;
  return 0;
}

static smc_manifest *
convert (const ShoalManifest *sm, const uint8_t id[SMC_HASH_LEN])
{
  smc_manifest *m = smc_manifest_new (sm->size, sm->chunk_size);

  if (m == NULL)
    return NULL;
  for (uint64_t i = 0; i < sm->n_chunks; i++)
    {
      if (shoal_manifest_chunk_is_zero (sm, i))
        m->flags[i] = SMC_CHUNK_ZERO;
      else
        memcpy (m->hashes[i], shoal_manifest_chunk_digest (sm, i), SMC_HASH_LEN);
    }
  memcpy (m->id, id, SMC_HASH_LEN);
  return m;
}

/* The zero chunks, a run of them at a time (one hole, one BLKZEROOUT) */
static bool
write_zeros (const ShoalManifest *sm, int fd, SaMulticastResult *result, char *err, size_t errlen)
{
  char *zeros = sa_malloc0 (sm->chunk_size);
  bool ok = true;

  for (uint64_t i = 0; i < sm->n_chunks && ok; i++)
    {
      uint64_t len, end = sa_image_zero_run (sm, i, &len);

      if (end == i)
        continue;
      ok = sa_image_zero_at (fd, zeros, sm->chunk_size, len, shoal_manifest_chunk_offset (sm, i));
      result->zero_chunks += end - i;
      i = end - 1;
    }
  if (!ok)
    snprintf (err, errlen, "writing zeros: %s", strerror (errno));
  free (zeros);
  return ok;
}

/* The chunks the session left out: those the disk already holds (an
 * earlier run that was interrupted wrote them: a restarted agent joins the
 * live session late) are kept, the others come by HTTP, each verified by
 * the receiver too */
static bool
fetch_missing (const SaImageJob *job, const char *url, const ShoalManifest *sm, smc_receiver *r,
               int fd, bool readable, SaMulticastResult *result, char *err, size_t errlen)
{
  uint32_t n = smc_receiver_missing (r, NULL, 0);
  uint32_t *idx = sa_malloc0 ((n ? n : 1) * sizeof *idx);
  uint8_t *scratch = readable && n > 0 ? sa_malloc0 (sm->chunk_size) : NULL;
  unsigned misses = 0;
  bool ok = true;

  n = smc_receiver_missing (r, idx, n);
  for (uint32_t i = 0; i < n && scratch != NULL && misses < SA_IMAGE_KEEP_MISSES; i++)
    {
      if (!sa_image_chunk_on_disk (fd, sm, idx[i], scratch))
        {
          misses++;
          continue;
        }
      smc_receiver_mark_done (r, idx[i]);
      result->kept_chunks++;
      misses = 0;
    }
  free (scratch);
  if (result->kept_chunks > 0)
    {
      sa_log ("multicast: %" PRIu64 " of the chunks the session left out were on the disk already",
              result->kept_chunks);
      n = smc_receiver_missing (r, idx, n);
    }
  if (n > 0)
    sa_log ("multicast: %u chunks by unicast", n);
  for (uint32_t i = 0; i < n && ok; i++)
    {
      SaBuf data;

      if (sa_cancel_is_set (job->cancel))
        {
          snprintf (err, errlen, "stopped: a newer instruction came");
          ok = false;
          break;
        }
      sa_buf_init (&data);
      ok = sa_image_get_chunk (job, url, sm, idx[i], &data, err, errlen)
           && smc_receiver_supply_chunk (r, idx[i], (const uint8_t *) data.data, data.len) == 0;
      if (!ok && err[0] == '\0')
        snprintf (err, errlen, "chunk %u could not be written", idx[i]);
      result->unicast_chunks += ok ? 1 : 0;
      sa_buf_clear (&data);
    }
  free (idx);
  return ok;
}

static void
cancel_receiver (void *receiver)
{
  smc_receiver_cancel (receiver);
}

static bool
run_session (const SaImageJob *job, const char *url, const ShoalManifest *sm, smc_join *join, int fd,
             bool readable, SaMulticastJoined joined, void *joined_data, SaMulticastResult *result,
             char *err, size_t errlen)
{
  smc_receiver_config cfg;
  smc_manifest *m = convert (sm, join->manifest_hash);
  SaMcastDisk disk = { fd, sm->chunk_size, 0, 0 };
  smc_receiver *r;
  bool ok;

  /* a disk image file too small for the image fails now, not mid-session */
  if (m != NULL && smc_manifest_preallocate (m, fd) < 0)
    {
      snprintf (err, errlen, "cannot allocate %llu bytes for the image: %s",
                (unsigned long long) sm->size, strerror (errno));
      smc_manifest_free (m);
      return false;
    }
  smc_receiver_config_init (&cfg);
  cfg.join = *join;
  cfg.manifest = m;
  cfg.write_chunk = write_chunk;
  cfg.user = &disk;
  /* alone on its machine: hashing and writing overlap receiving on a
   * second CPU, and even on one the disk's waits (writeback throttling, a
   * stalled write) no longer stop the receive path or its reports to the
   * sender, which would count a receiver silent for 3 s as failed */
  cfg.verify_thread = 1;
  r = m != NULL ? smc_receiver_new (&cfg, err, errlen) : NULL;
  if (r == NULL)
    {
      if (m == NULL)
        snprintf (err, errlen, "cannot build the session's chunk table");
      smc_manifest_free (m);
      return false;
    }
  /* smc_receiver_new joined the group */
  if (joined != NULL)
    joined (joined_data);
  /* a newer instruction stops the session at once */
  sa_cancel_set_hook (job->cancel, cancel_receiver, r);
  if (smc_receiver_run (r) < 0 && !sa_cancel_is_set (job->cancel))
    sa_log ("multicast session failed: the missing chunks come by unicast");
  sa_cancel_set_hook (job->cancel, NULL, NULL);
  ok = fetch_missing (job, url, sm, r, fd, readable, result, err, errlen) && smc_receiver_is_complete (r);
  if (!ok && err[0] == '\0')
    snprintf (err, errlen, "the image is incomplete after the session%s%s",
              disk.failed_errno ? ": " : "", disk.failed_errno ? strerror (disk.failed_errno) : "");
  result->multicast_chunks = smc_receiver_get_stats (r)->chunks_done - result->unicast_chunks;
  result->packets = smc_receiver_get_stats (r)->pkts;
  result->parity_used = smc_receiver_get_stats (r)->parity_used;
  result->nacks_sent = smc_receiver_get_stats (r)->nacks_sent;
  smc_receiver_free (r);
  smc_manifest_free (m);
  return ok;
}

/* Reads the image back from the disk and checks it against the
 * manifest's whole-image SHA-256: every chunk was verified before it was
 * written, this proves they all landed where they belong. The holes of a
 * disk image file (the zero chunks, punched) are zeros the file system
 * vouches for: hashed, not read. */
static bool
verify_written (const char *disk, const ShoalManifest *sm, SaMulticastResult *result,
                char *err, size_t errlen)
{
  ShoalManifestHash *hash = shoal_manifest_hash_new ();
  uint8_t digest[SHOAL_MANIFEST_DIGEST_LEN];
  size_t block = 1024 * 1024;
  uint8_t *buf = malloc (block);
  uint64_t done = 0, limit = sm->size, start = 0, end = 0;
  int fd = open (disk, O_RDONLY | O_CLOEXEC);
  bool ok = fd >= 0 && buf != NULL && hash != NULL;
  struct stat st;

  if (fd < 0)
    snprintf (err, errlen, "reading back %s: %s", disk, strerror (errno));
  /* a file shorter than the image fails below, as a short read */
  else if (fstat (fd, &st) == 0 && S_ISREG (st.st_mode) && (uint64_t) st.st_size < limit)
    limit = (uint64_t) st.st_size;
  while (ok && done < sm->size)
    {
      size_t want = sm->size - done < block ? (size_t) (sm->size - done) : block;
      ssize_t got;

      if (done >= end && done < limit)
        shoal_manifest_data_extent (fd, done, limit, &start, &end);
      if (done < start)
        {
          got = (ssize_t) (start - done < want ? start - done : want);
          memset (buf, 0, (size_t) got);
        }
      else
        {
          if (done < end && end - done < want)
            want = (size_t) (end - done);
          got = pread (fd, buf, want, (off_t) done);
        }

      if (got <= 0)
        {
          snprintf (err, errlen, "reading back %s at %llu: %s", disk, (unsigned long long) done,
                    got < 0 ? strerror (errno) : "short read");
          ok = false;
          break;
        }
      shoal_manifest_hash_update (hash, buf, (size_t) got);
      done += (uint64_t) got;
    }
  if (ok)
    {
      shoal_manifest_hash_final (hash, digest);
      shoal_manifest_digest_to_hex (digest, result->image_sha256);
      if (memcmp (digest, sm->image_sha256, sizeof digest) != 0)
        {
          snprintf (err, errlen, "the image read back from %s does not match the manifest's image-sha256", disk);
          ok = false;
        }
    }
  if (fd >= 0)
    close (fd);
  free (buf);
  if (hash != NULL)
    shoal_manifest_hash_free (hash);
  return ok;
}

bool
sa_multicast_receive (const SaImageJob *job, const char *join_str, SaMulticastJoined joined,
                      void *joined_data, SaMulticastResult *result, char *err, size_t errlen)
{
  smc_join join;
  char *url;
  ShoalManifest *sm;
  int fd;
  bool readable = false, ok = false;

  memset (result, 0, sizeof *result);
  err[0] = '\0';
  if (join_str == NULL || smc_join_parse (join_str, &join) < 0 || job->manifest_url == NULL)
    {
      snprintf (err, errlen, "the instruction needs a valid \"join\" and a \"manifest\" URL");
      return false;
    }
  /* the sender's interface name means nothing here unless we have one of that name */
  if (join.iface[0] != '\0' && if_nametoindex (join.iface) == 0)
    join.iface[0] = '\0';
  url = sa_image_resolve_url (job->server, job->manifest_url);
  sm = sa_image_get_manifest (job, url, result->image_id, err, errlen);
  fd = sm != NULL ? sa_image_open_disk (job->disk, sm->size, &readable, err, errlen) : -1;
  /* before anything of the image is written (sa_gpt_wipe_earlier) */
  if (fd >= 0 && !sa_gpt_wipe_earlier (fd, sm->size, result->wiped, sizeof result->wiped))
    {
      snprintf (err, errlen, "%s: %s", job->disk, result->wiped);
      close (fd);
      fd = -1;
    }
  if (fd >= 0 && write_zeros (sm, fd, result, err, errlen))
    ok = run_session (job, url, sm, &join, fd, readable, joined, joined_data, result, err, errlen);
  if (ok && fsync (fd) < 0 && errno != EINVAL)
    {
      snprintf (err, errlen, "syncing %s: %s", job->disk, strerror (errno));
      ok = false;
    }
  if (fd >= 0)
    close (fd);
  if (ok)
    ok = verify_written (job->disk, sm, result, err, errlen);
  if (ok)
    {
      result->bytes = sm->size;
      result->chunks = sm->n_chunks;
    }
  if (sm != NULL)
    shoal_manifest_free (sm);
  free (url);
  return ok;
}
