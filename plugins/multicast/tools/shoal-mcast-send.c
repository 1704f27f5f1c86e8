/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-send: send one file to a multicast group (test and benchmark
 * tool for the shoal multicast protocol; plain C, no GLib). */
#include "shoal-mcast-fec.h"
#include "shoal-mcast-sender.h"

#include <fcntl.h>
#include <getopt.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static smc_sender *the_sender;

static void
on_signal (int sig)
{
  (void) sig;
  if (the_sender != NULL)
    smc_sender_cancel (the_sender);
}

typedef struct {
  const uint8_t *map;
  uint64_t size;
  uint32_t chunk_size;
  int fd;
  const smc_manifest *m;
} source;

static int
read_chunk (void *user, uint32_t idx, uint8_t *buf, size_t len)
{
  source *s = user;
  memcpy (buf, s->map + (uint64_t) idx * s->chunk_size, len);
  return 0;
}

/* --verify-read: what shoald's image store does for every chunk it sends:
 * read it (pread) and check it against its SHA-256 in the manifest */
static int
read_chunk_verified (void *user, uint32_t idx, uint8_t *buf, size_t len)
{
  source *s = user;
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread (s->fd, buf + done, len - done, (off_t) ((uint64_t) idx * s->chunk_size + done));
    if (n <= 0)
      return -1;
    done += (size_t) n;
  }
  return smc_manifest_verify_chunk (s->m, idx, buf, len) == 0 ? 0 : -1;
}

static void
on_node (void *user, const smc_node_info *n)
{
  (void) user;
  fprintf (stderr, "node %u (%s): %s\n", n->node, n->addr, smc_node_outcome_str (n->outcome));
}

static int
write_file (const char *path, const void *data, size_t len)
{
  char tmp[4096];
  FILE *f;
  snprintf (tmp, sizeof tmp, "%s.tmp", path);
  f = fopen (tmp, "wb");
  if (f == NULL || fwrite (data, 1, len, f) != len || fclose (f) != 0)
    return -1;
  return rename (tmp, path);
}

static void
usage (void)
{
  fprintf (stderr,
           "usage: shoal-mcast-send --file SRC --group ADDR --port N [--iface IF] [--receivers N]\n"
           "  [--mtu 1500] [--chunk-size BYTES] [--rate-mbit M] [--start-mbit M] [--k K] [--lanes 1-4]\n"
           "  [--proactive PERMILLE] [--slow-policy evict|wait] [--max-loss PERMILLE]\n"
           "  [--join-wait MS] [--node-timeout MS] [--session N] [--no-auth]\n"
           "  [--manifest-out FILE] [--join-out FILE] [--verbose]\n"
           "  [--fec auto|gfni-avx512|isa-l|gfni-avx2|tables] [--mac auto|openssl] [--verify-read] [--read-ahead CHUNKS]\n"
           "  [--no-backlog-pacing]\n");
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "file", 1, 0, 'f' }, { "group", 1, 0, 'g' }, { "port", 1, 0, 'p' }, { "iface", 1, 0, 'i' },
    { "receivers", 1, 0, 'n' }, { "mtu", 1, 0, 'm' }, { "chunk-size", 1, 0, 'c' },
    { "rate-mbit", 1, 0, 'r' }, { "start-mbit", 1, 0, 'R' }, { "k", 1, 0, 'k' },
    { "proactive", 1, 0, 'P' }, { "slow-policy", 1, 0, 'S' }, { "max-loss", 1, 0, 'L' },
    { "join-wait", 1, 0, 'w' }, { "node-timeout", 1, 0, 't' }, { "session", 1, 0, 's' },
    { "no-auth", 0, 0, 'A' }, { "manifest-out", 1, 0, 'M' }, { "join-out", 1, 0, 'J' },
    { "verbose", 0, 0, 'v' }, { "fec", 1, 0, 'E' }, { "mac", 1, 0, 'X' },
    { "no-backlog-pacing", 0, 0, 'N' }, { "verify-read", 0, 0, 'V' }, { "read-ahead", 1, 0, 'a' },
    { "lanes", 1, 0, 'l' }, { 0, 0, 0, 0 } };
  smc_sender_config cfg;
  const char *file = NULL, *man_out = NULL, *join_out = NULL, *why;
  uint32_t chunk_size = SMC_DEFAULT_CHUNK;
  int no_auth = 0, verify_read = 0, opt, rc, fd;
  source src;
  struct stat sb;
  smc_manifest *m;
  char err[256], join[1024];
  struct rusage ru;
  const smc_sender_stats *st;
  const smc_node_info *nodes;
  size_t n_nodes;

  smc_sender_config_init (&cfg);
  cfg.group = "239.77.3.1";
  cfg.port = 6100;
  while ((opt = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    switch (opt) {
    case 'f': file = optarg; break;
    case 'g': cfg.group = optarg; break;
    case 'p': cfg.port = (uint16_t) atoi (optarg); break;
    case 'i': cfg.iface = optarg; break;
    case 'n': cfg.expected = (uint32_t) atoi (optarg); break;
    case 'm': cfg.mtu = (uint16_t) atoi (optarg); break;
    case 'c': chunk_size = (uint32_t) strtoul (optarg, NULL, 0); break;
    case 'r': cfg.rate_max_bps = (uint64_t) (atof (optarg) * 1e6); break;
    case 'R': cfg.rate_start_bps = (uint64_t) (atof (optarg) * 1e6); break;
    case 'k': cfg.max_k = (uint8_t) atoi (optarg); break;
    case 'l': cfg.lanes = (uint8_t) atoi (optarg); break;
    case 'P': cfg.proactive_permille = (uint32_t) atoi (optarg); break;
    case 'S': cfg.slow_policy = strcmp (optarg, "wait") == 0 ? SMC_SLOW_WAIT : SMC_SLOW_EVICT; break;
    case 'L': cfg.max_loss_permille = (uint32_t) atoi (optarg); break;
    case 'w': cfg.join_wait_ms = (uint32_t) atoi (optarg); break;
    case 't': cfg.node_timeout_ms = (uint32_t) atoi (optarg); break;
    case 's': cfg.session = (uint16_t) atoi (optarg); break;
    case 'A': no_auth = 1; break;
    case 'M': man_out = optarg; break;
    case 'J': join_out = optarg; break;
    case 'v': cfg.verbose = 1; break;
    case 'V': verify_read = 1; break;
    case 'N': cfg.no_backlog_pacing = 1; break;
    case 'a': cfg.read_ahead = (uint32_t) atoi (optarg); break;
    case 'X':
    case 'E':
      if ((why = opt == 'X' ? smc_auth_select (optarg) : smc_fec_select (optarg)) != NULL) {
        fprintf (stderr, "shoal-mcast-send: %s %s\n", why, optarg);
        return 2;
      }
      break;
    default: usage (); return 2;
    }
  }
  if (file == NULL) {
    usage ();
    return 2;
  }
  fd = open (file, O_RDONLY);
  if (fd < 0 || fstat (fd, &sb) < 0 || sb.st_size == 0) {
    perror (file);
    return 2;
  }
  src.size = (uint64_t) sb.st_size;
  src.chunk_size = chunk_size;
  src.map = mmap (NULL, src.size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
  m = smc_manifest_from_fd (fd, chunk_size);
  if (src.map == MAP_FAILED || m == NULL) {
    fprintf (stderr, "cannot read %s\n", file);
    return 2;
  }
  src.fd = fd;
  src.m = m;
  cfg.manifest = m;
  cfg.read_chunk = verify_read ? read_chunk_verified : read_chunk;
  cfg.on_node = on_node;
  cfg.user = &src;
  if (cfg.session == 0)
    RAND_bytes ((unsigned char *) &cfg.session, sizeof cfg.session);
  if (!no_auth) {
    cfg.has_key = 1;
    RAND_bytes (cfg.key, SMC_KEY_LEN);
  }
  the_sender = smc_sender_new (&cfg, err, sizeof err);
  if (the_sender == NULL) {
    fprintf (stderr, "shoal-mcast-send: %s\n", err);
    return 2;
  }
  signal (SIGINT, on_signal);
  signal (SIGTERM, on_signal);
  smc_sender_join_string (the_sender, 0, join, sizeof join);
  if (man_out != NULL) {
    size_t len;
    uint8_t *buf = smc_manifest_serialize (m, &len);
    if (buf == NULL || write_file (man_out, buf, len) < 0) {
      perror (man_out);
      return 2;
    }
    free (buf);
  }
  if (join_out != NULL && write_file (join_out, join, strlen (join)) < 0) {
    perror (join_out);
    return 2;
  }
  printf ("join %s\n", join);
  fflush (stdout);
  rc = smc_sender_run (the_sender);
  st = smc_sender_get_stats (the_sender);
  n_nodes = smc_sender_get_nodes (the_sender, &nodes);
  for (size_t i = 0; i < n_nodes; i++)
    printf ("node %u addr=%s outcome=%s done=%u unicast=%u loss=%u/1000 nacks=%u overflow=%u forged=%u "
            "backlog=%u\n",
            nodes[i].node, nodes[i].addr, smc_node_outcome_str (nodes[i].outcome), nodes[i].last.chunks_done,
            nodes[i].last.ext_missing, nodes[i].last.loss_permille, nodes[i].nacks,
            nodes[i].last.rx_overflow, nodes[i].last.forged, nodes[i].backlog_signals);
  getrusage (RUSAGE_SELF, &ru);
  printf ("RESULT rc=%d nodes=%zu expected=%u data_pkts=%llu parity_pkts=%llu proactive=%llu control=%llu "
          "bytes=%llu nacks=%llu nack_entries=%llu forged=%llu rate_mbit=%.0f setup_s=%.3f data_s=%.3f drain_s=%.3f "
          "cpu_s=%.2f symbol=%u fec=%s mac=%s read_wait_s=%.3f backlog_signals=%llu group_loss_cuts=%llu\n",
          rc, n_nodes, cfg.expected, (unsigned long long) st->data_pkts, (unsigned long long) st->parity_pkts,
          (unsigned long long) st->parity_proactive, (unsigned long long) st->control_pkts,
          (unsigned long long) st->bytes, (unsigned long long) st->nacks_rx,
          (unsigned long long) st->nack_entries, (unsigned long long) st->forged, st->rate_bps / 1e6,
          (st->data_start_ns - st->start_ns) / 1e9, (st->drain_ns - st->data_start_ns) / 1e9,
          (st->end_ns - st->drain_ns) / 1e9,
          ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
          smc_sender_symbol_size (the_sender), smc_fec_backend_name (), smc_auth_backend_name (),
          st->read_wait_ns / 1e9, (unsigned long long) st->backlog_signals,
          (unsigned long long) st->group_loss_cuts);
  smc_sender_free (the_sender);
  smc_manifest_free (m);
  return rc;
}
