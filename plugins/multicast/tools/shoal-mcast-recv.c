/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-recv: receive one image from a shoal multicast session into a
 * file; chunks missed by multicast are read from --unicast-file (standing in
 * for the HTTP fetch the agent does). Plain C, no GLib. */
#include "shoal-mcast-fec.h"
#include "shoal-mcast-receiver.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static smc_receiver *the_receiver;

static void
on_signal (int sig)
{
  (void) sig;
  if (the_receiver != NULL)
    smc_receiver_cancel (the_receiver);
}

/* The session is over: a stop request from now on has nothing to cancel
 * (and the handler must not touch the freed receiver) */
static void
free_receiver (void)
{
  signal (SIGINT, SIG_IGN);
  signal (SIGTERM, SIG_IGN);
  smc_receiver_free (the_receiver);
  the_receiver = NULL;
}

typedef struct {
  int fd;
  uint32_t chunk_size;
  uint32_t delay_us;   /* after each chunk: a slow disk, for tests */
  uint32_t stall_ms;   /* the fourth chunk's write: a disk stall, for tests */
  uint32_t writes;
} sink;

static void
sleep_us (uint64_t us)
{
  struct timespec ts = { .tv_sec = (time_t) (us / 1000000), .tv_nsec = (long) (us % 1000000) * 1000 };
  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
}

static int
write_chunk (void *user, uint32_t idx, const uint8_t *data, size_t len)
{
  sink *s = user;
  size_t off = 0;
  while (off < len) {
    ssize_t n = pwrite (s->fd, data + off, len - off, (off_t) idx * s->chunk_size + (off_t) off);
    if (n <= 0)
      return -1;
    off += (size_t) n;
  }
  if (s->delay_us > 0)
    sleep_us ((uint64_t) s->delay_us);
  if (++s->writes == 4 && s->stall_ms > 0)
    sleep_us ((uint64_t) s->stall_ms * 1000);
  return 0;
}

static uint32_t
resume (smc_receiver *r, const smc_manifest *m, int fd)
{
  uint8_t *buf = malloc (m->chunk_size);
  uint32_t n = 0;
  for (uint32_t i = 0; buf != NULL && i < m->n_chunks; i++) {
    uint32_t len = smc_manifest_chunk_len (m, i);
    if (m->flags[i] & SMC_CHUNK_ZERO)
      continue;
    if (pread (fd, buf, len, (off_t) i * m->chunk_size) == (ssize_t) len &&
        smc_manifest_verify_chunk (m, i, buf, len) == 0) {
      smc_receiver_mark_done (r, i);
      n++;
    }
  }
  free (buf);
  return n;
}

static uint32_t
fetch_unicast (smc_receiver *r, const smc_manifest *m, const char *path)
{
  uint32_t count = smc_receiver_missing (r, NULL, 0), got = 0;
  uint32_t *idx = calloc (count + 1, sizeof *idx);
  uint8_t *buf = malloc (m->chunk_size);
  int fd = open (path, O_RDONLY);
  smc_receiver_missing (r, idx, count);
  for (uint32_t i = 0; fd >= 0 && buf != NULL && i < count; i++) {
    uint32_t len = smc_manifest_chunk_len (m, idx[i]);
    if (pread (fd, buf, len, (off_t) idx[i] * m->chunk_size) == (ssize_t) len &&
        smc_receiver_supply_chunk (r, idx[i], buf, len) == 0)
      got++;
  }
  if (fd >= 0)
    close (fd);
  free (buf);
  free (idx);
  return got;
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "join", 1, 0, 'j' }, { "join-file", 1, 0, 'J' }, { "manifest", 1, 0, 'm' },
    { "output", 1, 0, 'o' }, { "iface", 1, 0, 'i' }, { "node", 1, 0, 'n' },
    { "unicast-file", 1, 0, 'u' }, { "resume", 0, 0, 'R' }, { "window", 1, 0, 'w' },
    { "idle-timeout", 1, 0, 't' }, { "verbose", 0, 0, 'v' }, { "manifest-from", 1, 0, 'F' },
    { "chunk-size", 1, 0, 'c' }, { "coalesce-us", 1, 0, 'C' }, { "verify-thread", 0, 0, 'V' },
    { "fec", 1, 0, 'E' }, { "mac", 1, 0, 'X' },
    { "rcvbuf", 1, 0, 'B' }, { "write-delay-us", 1, 0, 'D' }, { "write-stall-ms", 1, 0, 'S' },
    { "no-preallocate", 0, 0, 'P' }, { 0, 0, 0, 0 } };
  smc_receiver_config cfg;
  const char *join = NULL, *join_file = NULL, *man_path = NULL, *out = NULL, *iface = NULL, *uni = NULL;
  const char *man_from = NULL, *why;
  char *join_buf = NULL;
  uint32_t chunk_size = SMC_DEFAULT_CHUNK;
  uint32_t node = 0, resumed = 0, unicast = 0;
  int opt, rc, do_resume = 0, preallocate = 1;
  char *mbuf;
  size_t mlen = 0;
  smc_manifest *m;
  sink snk = { .fd = -1 };
  char err[256];
  const smc_receiver_stats *st;
  struct rusage ru;
  uint64_t t0 = smc_now_ns ();

  smc_receiver_config_init (&cfg);
  while ((opt = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    switch (opt) {
    case 'j': join = optarg; break;
    case 'J': join_file = optarg; break;
    case 'm': man_path = optarg; break;
    case 'o': out = optarg; break;
    case 'i': iface = optarg; break;
    case 'n': node = (uint32_t) strtoul (optarg, NULL, 0); break;
    case 'u': uni = optarg; break;
    case 'R': do_resume = 1; break;
    case 'P': preallocate = 0; break;
    case 'w': cfg.window_chunks = (uint32_t) atoi (optarg); break;
    case 't': cfg.idle_timeout_ms = (uint32_t) atoi (optarg); break;
    case 'v': cfg.verbose = 1; break;
    case 'F': man_from = optarg; break;
    case 'c': chunk_size = (uint32_t) strtoul (optarg, NULL, 0); break;
    case 'C': cfg.coalesce_us = (uint32_t) atoi (optarg); break;
    case 'V': cfg.verify_thread = 1; break;
    case 'B': cfg.rcvbuf = (uint32_t) strtoul (optarg, NULL, 0); break;
    case 'D': snk.delay_us = (uint32_t) strtoul (optarg, NULL, 0); break;
    case 'S': snk.stall_ms = (uint32_t) strtoul (optarg, NULL, 0); break;
    case 'X':
    case 'E':
      if ((why = opt == 'X' ? smc_auth_select (optarg) : smc_fec_select (optarg)) != NULL) {
        fprintf (stderr, "shoal-mcast-recv: %s %s\n", why, optarg);
        return 2;
      }
      break;
    default: return 2;
    }
  }
  if (join_file != NULL) {
    size_t jl;
    if ((join_buf = smc_read_file (join_file, SIZE_MAX - 1, &jl)) == NULL)
      return 2;
    join = join_buf;
  }
  if (join == NULL || (man_path == NULL && man_from == NULL) || out == NULL || smc_join_parse (join, &cfg.join) < 0) {
    fprintf (stderr, "usage: shoal-mcast-recv --join STR|--join-file F --manifest F|--manifest-from SRC --output F "
                     "[--chunk-size B] [--iface IF] [--node N] [--unicast-file SRC] [--resume] [--window N] [--coalesce-us US] [--verify-thread]\n"
                     "  [--no-preallocate (the output's space is allocated as the chunks come)]\n"
                     "  [--rcvbuf BYTES] [--write-delay-us US (after each chunk: a slow disk)]\n"
                     "  [--write-stall-ms MS (the fourth chunk's write: a disk stall)]\n"
                     "  [--fec auto|gfni-avx512|isa-l|gfni-avx2|tables] [--mac auto|openssl]\n");
    return 2;
  }
  if (iface != NULL)
    snprintf (cfg.join.iface, sizeof cfg.join.iface, "%s", iface);
  if (node != 0)
    cfg.join.node = node;
  if (man_from != NULL) {
    /* tests: the manifest is computed from a copy of the image */
    int sfd = open (man_from, O_RDONLY);
    mbuf = NULL;
    m = sfd >= 0 ? smc_manifest_from_fd (sfd, chunk_size) : NULL;
    if (sfd >= 0)
      close (sfd);
  } else {
    mbuf = smc_read_file (man_path, SIZE_MAX - 1, &mlen);
    m = mbuf != NULL ? smc_manifest_parse ((const uint8_t *) mbuf, mlen) : NULL;
  }
  if (m == NULL) {
    fprintf (stderr, "shoal-mcast-recv: cannot read the manifest\n");
    return 2;
  }
  snk.fd = open (out, O_RDWR | O_CREAT, 0644);
  snk.chunk_size = m->chunk_size;
  if (snk.fd < 0 || ftruncate (snk.fd, (off_t) m->image_size) < 0 ||
      (preallocate && smc_manifest_preallocate (m, snk.fd) < 0)) {
    perror (out);
    return 2;
  }
  cfg.manifest = m;
  cfg.write_chunk = write_chunk;
  cfg.user = &snk;
  the_receiver = smc_receiver_new (&cfg, err, sizeof err);
  if (the_receiver == NULL) {
    fprintf (stderr, "shoal-mcast-recv: %s\n", err);
    return 2;
  }
  signal (SIGINT, on_signal);
  signal (SIGTERM, on_signal);
  if (do_resume)
    resumed = resume (the_receiver, m, snk.fd);
  /* the group is joined: what the sender sends from now on is queued */
  printf ("ready\n");
  fflush (stdout);
  t0 = smc_now_ns ();  /* mcast_s counts from here */
  rc = smc_receiver_run (the_receiver);
  st = smc_receiver_get_stats (the_receiver);
  if (uni != NULL)
    unicast = fetch_unicast (the_receiver, m, uni);
  fsync (snk.fd);
  close (snk.fd);
  getrusage (RUSAGE_SELF, &ru);
  printf ("RESULT node=%u rc=%d complete=%d mcast_chunks=%llu unicast_chunks=%u resumed=%u "
          "external=%llu pkts=%llu parity_used=%llu decodes=%llu dup=%llu forged=%llu bad=%llu "
          "wrong_image=%llu hash_fail=%llu nacks=%llu nack_entries=%llu nack_retries=%llu srcreqs=%llu sources_asked=%llu "
          "outages=%llu outage_pkts=%llu "
          "suppressed=%llu overflow=%u "
          "wakeups=%llu max_pending=%u mcast_s=%.3f cpu_s=%.2f fec=%s mac=%s backlog_reports=%llu hashed_together=%llu hash_s=%.3f write_s=%.3f "
          "left_reason=%u path_mtu=%u\n",
          cfg.join.node, rc, smc_receiver_is_complete (the_receiver),
          (unsigned long long) (st->chunks_done - unicast), unicast, resumed,
          (unsigned long long) st->chunks_external, (unsigned long long) st->pkts,
          (unsigned long long) st->parity_used, (unsigned long long) st->decodes,
          (unsigned long long) st->dup, (unsigned long long) st->forged, (unsigned long long) st->bad,
          (unsigned long long) st->wrong_image, (unsigned long long) st->chunks_hash_fail,
          (unsigned long long) st->nacks_sent, (unsigned long long) st->nack_entries_sent,
          (unsigned long long) st->nack_entries_retry, (unsigned long long) st->srcreqs_sent,
          (unsigned long long) st->sources_asked, (unsigned long long) st->outages,
          (unsigned long long) st->outage_pkts,
          (unsigned long long) st->nacks_suppressed, st->rx_overflow, (unsigned long long) st->wakeups, st->max_pending,
          ((st->complete_ns ? st->complete_ns : smc_now_ns ()) - t0) / 1e9,
          ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
          smc_fec_backend_name (), smc_auth_backend_name (), (unsigned long long) st->backlog_reports,
          (unsigned long long) st->chunks_hashed_together, st->hash_ns / 1e9, st->write_ns / 1e9,
          st->left_reason, st->path_mtu);
  rc = smc_receiver_is_complete (the_receiver) ? 0 : 1;
  free_receiver ();
  smc_manifest_free (m);
  free (mbuf);
  free (join_buf);
  return rc;
}
