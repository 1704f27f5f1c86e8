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

/* The session is over: a stop request from now on has nothing to cancel
 * (and the handler must not touch the freed sender) */
static void
free_sender (void)
{
  signal (SIGINT, SIG_IGN);
  signal (SIGTERM, SIG_IGN);
  smc_sender_free (the_sender);
  the_sender = NULL;
}

typedef struct {
  uint64_t size;
  uint32_t chunk_size;
  int fd;
  const smc_manifest *m;
} source;

/* (pread, not a mapping of the file: populating the page tables of a
 * 128 MiB mapping took 20 ms before the first packet, and unmapping it
 * more at exit) */
static int
read_chunk (void *user, uint32_t idx, uint8_t *buf, size_t len)
{
  source *s = user;
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread (s->fd, buf + done, len - done, (off_t) ((uint64_t) idx * s->chunk_size + done));
    if (n <= 0)
      return -1;
    done += (size_t) n;
  }
  return 0;
}

/* --verify-read: what shoald's image store does for every chunk it sends:
 * read it and check it against its SHA-256 in the manifest */
static int
read_chunk_verified (void *user, uint32_t idx, uint8_t *buf, size_t len)
{
  source *s = user;
  if (read_chunk (user, idx, buf, len) < 0)
    return -1;
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

/* --manifest F --join J: the session written by an earlier --prepare (the
 * manifest as an image store keeps it, the join string the receivers were
 * given); the manifest must be the one the join string names */
static smc_manifest *
load_prepared (const char *man_path, const char *join_path, smc_join *j)
{
  size_t mlen = 0, jlen = 0;
  char *mbuf = smc_read_file (man_path, 64u << 20, &mlen), *jbuf = smc_read_file (join_path, 4096, &jlen);
  smc_manifest *m = mbuf != NULL ? smc_manifest_parse ((const uint8_t *) mbuf, mlen) : NULL;
  if (jbuf != NULL)
    jbuf[strcspn (jbuf, "\r\n")] = '\0';
  if (m != NULL && (jbuf == NULL || smc_join_parse (jbuf, j) < 0 ||
                    memcmp (j->manifest_hash, m->id, SMC_HASH_LEN) != 0)) {
    fprintf (stderr, "%s does not name the session of %s\n", join_path, man_path);
    smc_manifest_free (m);
    m = NULL;
  }
  free (mbuf);
  free (jbuf);
  return m;
}

static void
usage (void)
{
  fprintf (stderr,
           "usage: shoal-mcast-send --file SRC --group ADDR --port N [--iface IF] [--receivers N]\n"
           "  [--mtu 1500] [--chunk-size BYTES] [--rate-mbit M] [--start-mbit M] [--min-mbit M] [--k K] [--lanes 1-4]\n"
           "  [--proactive PERMILLE] [--slow-policy evict|wait] [--max-loss PERMILLE] [--slow-ratio PERMILLE (500; 0: off)]\n"
           "  [--join-wait MS] [--node-timeout MS] [--session N] [--no-auth]\n"
           "  [--manifest-out FILE] [--join-out FILE] [--prepare (write them and exit)]\n"
           "  [--manifest FILE --join FILE (a prepared session: no hashing at start)] [--verbose]\n"
           "  [--fec auto|gfni-avx512|isa-l|gfni-avx2|tables] [--mac auto|openssl] [--verify-read] [--read-ahead CHUNKS (4)]\n"
           "  [--no-backlog-pacing] [--interleave-blocks (a chunk's FEC blocks interleaved in the first pass)]\n"
           "  [--no-gso (one packet per send, not UDP GSO super-packets)]\n"
           "  [--window auto|MIB (repair by the window code over windows of about MIB of chunks; 0: Reed-Solomon\n"
           "   blocks of --k; auto, the default: 8 MiB for up to 4 receivers, 16 for more; at jumbo MTU blocks\n"
           "   for up to 4, 2 MiB for more)]\n");
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "file", 1, 0, 'f' }, { "group", 1, 0, 'g' }, { "port", 1, 0, 'p' }, { "iface", 1, 0, 'i' },
    { "receivers", 1, 0, 'n' }, { "mtu", 1, 0, 'm' }, { "chunk-size", 1, 0, 'c' },
    { "rate-mbit", 1, 0, 'r' }, { "start-mbit", 1, 0, 'R' }, { "min-mbit", 1, 0, 'F' }, { "k", 1, 0, 'k' },
    { "proactive", 1, 0, 'P' }, { "slow-policy", 1, 0, 'S' }, { "max-loss", 1, 0, 'L' }, { "slow-ratio", 1, 0, 'D' },
    { "join-wait", 1, 0, 'w' }, { "node-timeout", 1, 0, 't' }, { "session", 1, 0, 's' },
    { "no-auth", 0, 0, 'A' }, { "manifest-out", 1, 0, 'M' }, { "join-out", 1, 0, 'J' },
    { "verbose", 0, 0, 'v' }, { "fec", 1, 0, 'E' }, { "mac", 1, 0, 'X' },
    { "no-backlog-pacing", 0, 0, 'N' }, { "interleave-blocks", 0, 0, 'B' }, { "no-gso", 0, 0, 'G' }, { "verify-read", 0, 0, 'V' }, { "read-ahead", 1, 0, 'a' },
    { "lanes", 1, 0, 'l' }, { "window", 1, 0, 'W' }, { "prepare", 0, 0, 'Q' }, { "manifest", 1, 0, 'I' }, { "join", 1, 0, 'j' },
    { 0, 0, 0, 0 } };
  smc_sender_config cfg;
  const char *file = NULL, *man_out = NULL, *join_out = NULL, *man_in = NULL, *join_in = NULL, *why;
  smc_join pj;
  uint32_t chunk_size = SMC_DEFAULT_CHUNK;
  int no_auth = 0, verify_read = 0, prepare = 0, opt, rc, fd;
  long window_mib = -1;  /* auto: smc_session_window_chunks */
  source src;
  struct stat sb;
  smc_manifest *m;
  char err[256], join[1024];
  struct rusage ru;
  const smc_sender_stats *st;
  const smc_node_info *nodes;
  size_t n_nodes;

  smc_sender_config_init (&cfg);
  /* as the multicast step (option read-ahead): reads leave the sending
   * thread, which the kernel's send path keeps busy at MTU 9000 */
  cfg.read_ahead = 4;
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
    case 'F': cfg.rate_min_bps = (uint64_t) (atof (optarg) * 1e6); break;
    case 'k': cfg.max_k = (uint8_t) atoi (optarg); break;
    case 'l': cfg.lanes = (uint8_t) atoi (optarg); break;
    case 'W': window_mib = strcmp (optarg, "auto") == 0 ? -1 : strtol (optarg, NULL, 10); break;
    case 'P': cfg.proactive_permille = (uint32_t) atoi (optarg); break;
    case 'S': cfg.slow_policy = strcmp (optarg, "wait") == 0 ? SMC_SLOW_WAIT : SMC_SLOW_EVICT; break;
    case 'L': cfg.max_loss_permille = (uint32_t) atoi (optarg); break;
    case 'D': cfg.slow_ratio_permille = (uint32_t) atoi (optarg); break;
    case 'w': cfg.join_wait_ms = (uint32_t) atoi (optarg); break;
    case 't': cfg.node_timeout_ms = (uint32_t) atoi (optarg); break;
    case 's': cfg.session = (uint16_t) atoi (optarg); break;
    case 'A': no_auth = 1; break;
    case 'M': man_out = optarg; break;
    case 'J': join_out = optarg; break;
    case 'v': cfg.verbose = 1; break;
    case 'V': verify_read = 1; break;
    case 'G': cfg.no_gso = 1; break;
    case 'Q': prepare = 1; break;
    case 'I': man_in = optarg; break;
    case 'j': join_in = optarg; break;
    case 'N': cfg.no_backlog_pacing = 1; break;
    case 'B': cfg.interleave_blocks = 1; break;
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
  if (file == NULL || (man_in == NULL) != (join_in == NULL)) {
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
  m = man_in != NULL ? load_prepared (man_in, join_in, &pj) : smc_manifest_from_fd (fd, chunk_size);
  if (m == NULL) {
    fprintf (stderr, "cannot read %s\n", man_in != NULL ? man_in : file);
    return 2;
  }
  if (m->image_size != src.size) {
    fprintf (stderr, "%s: %llu bytes, the manifest says %llu\n", file, (unsigned long long) src.size,
             (unsigned long long) m->image_size);
    return 2;
  }
  src.chunk_size = m->chunk_size;
  if (man_in != NULL) {
    /* the receivers were given this session's join string already */
    cfg.group = pj.group;
    cfg.port = pj.port;
    cfg.session = pj.session;
    no_auth = !pj.has_key;
    memcpy (cfg.key, pj.key, SMC_KEY_LEN);
  }
  src.fd = fd;
  src.m = m;
  cfg.manifest = m;
  cfg.window_chunks = smc_session_window_chunks (window_mib, cfg.mtu, cfg.expected, m->chunk_size);
  cfg.read_chunk = verify_read ? read_chunk_verified : read_chunk;
  cfg.on_node = on_node;
  cfg.user = &src;
  if (cfg.session == 0)
    RAND_bytes ((unsigned char *) &cfg.session, sizeof cfg.session);
  if (!no_auth) {
    cfg.has_key = 1;
    if (man_in == NULL)
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
  if (prepare) {
    free_sender ();
    smc_manifest_free (m);
    return 0;
  }
  rc = smc_sender_run (the_sender);
  st = smc_sender_get_stats (the_sender);
  n_nodes = smc_sender_get_nodes (the_sender, &nodes);
  for (size_t i = 0; i < n_nodes; i++)
    printf ("node %u addr=%s outcome=%s cause=%s reason=%s done=%u unicast=%u loss=%u/1000 nacks=%u overflow=%u "
            "forged=%u backlog=%u drain_mbs=%.1f\n",
            nodes[i].node, nodes[i].addr, smc_node_outcome_str (nodes[i].outcome),
            smc_evict_cause_str (nodes[i].evict_cause),
            smc_leave_reason_str (nodes[i].outcome == SMC_NODE_EVICTED ? nodes[i].last.reason : SMC_REASON_NONE),
            nodes[i].last.chunks_done,
            nodes[i].last.ext_missing, nodes[i].last.loss_permille, nodes[i].nacks,
            nodes[i].last.rx_overflow, nodes[i].last.forged, nodes[i].backlog_signals, nodes[i].drain_Bps / 1e6);
  getrusage (RUSAGE_SELF, &ru);
  printf ("RESULT rc=%d nodes=%zu expected=%u data_pkts=%llu parity_pkts=%llu proactive=%llu control=%llu "
          "bytes=%llu nacks=%llu nack_entries=%llu srcreqs=%llu source_resent=%llu forged=%llu rate_mbit=%.0f setup_s=%.3f data_s=%.3f drain_s=%.3f "
          "cpu_s=%.2f symbol=%u fec=%s mac=%s read_wait_s=%.3f chunk_reads=%llu backlog_signals=%llu group_loss_cuts=%llu "
          "gso_sends=%llu gso_refused=%d ask_ms=%u slow_evictions=%u window_chunks=%u repair_pkts=%llu\n",
          rc, n_nodes, cfg.expected, (unsigned long long) st->data_pkts, (unsigned long long) st->parity_pkts,
          (unsigned long long) st->parity_proactive, (unsigned long long) st->control_pkts,
          (unsigned long long) st->bytes, (unsigned long long) st->nacks_rx,
          (unsigned long long) st->nack_entries, (unsigned long long) st->srcreqs_rx,
          (unsigned long long) st->source_resent, (unsigned long long) st->forged, st->rate_bps / 1e6,
          (st->data_start_ns - st->start_ns) / 1e9, (st->drain_ns - st->data_start_ns) / 1e9,
          (st->end_ns - st->drain_ns) / 1e9,
          ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
          smc_sender_symbol_size (the_sender), smc_fec_backend_name (), smc_auth_backend_name (),
          st->read_wait_ns / 1e9, (unsigned long long) st->chunk_reads, (unsigned long long) st->backlog_signals,
          (unsigned long long) st->group_loss_cuts, (unsigned long long) st->gso_sends, st->gso_refused, st->ask_ms,
          st->slow_evictions, cfg.window_chunks, (unsigned long long) st->repair_pkts);
  free_sender ();
  smc_manifest_free (m);
  return rc;
}
