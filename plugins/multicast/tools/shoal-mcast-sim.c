/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* shoal-mcast-sim: one multicast session, the real sender and receivers,
 * in one process and in virtual time (proto/shoal-mcast-sim.h): no
 * network, no CPU limit, every run with one seed the same. It tells what
 * the protocol sends (egress, parity, resent sources) and when each
 * receiver finishes, apart from what a machine's cores make of it; the
 * benchmark (bench/multicast) measures the rest.
 *
 *   shoal-mcast-sim [--size MiB] [--receivers N] [--loss PERCENT] [--mtu M]
 *                   [--chunk-size BYTES] [--rate MBIT] [--seed S] [--runs R]
 *                   [--no-key] [--kill I:MS] [--intake MB/s] [--slow I:MB/s] [--min-rate MBIT]
 *                   [--verbose]
 *
 * One line per run: receivers complete by multicast, chunks left for
 * unicast, egress ÷ image, virtual seconds; --runs R runs seeds S .. S+R-1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal-mcast-sim.h"

static void
usage (void)
{
  fprintf (stderr, "usage: shoal-mcast-sim [--size MiB] [--receivers N] [--loss PERCENT] [--mtu M]\n"
                   "         [--chunk-size BYTES] [--rate MBIT] [--seed S] [--runs R] [--no-key] [--kill I:MS]\n"
                   "         [--intake MB/s] [--slow I:MB/s] [--min-rate MBIT] [--window-chunks N (0: Reed-Solomon blocks)]\n"
                   "         [--verbose]\n");
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "size", required_argument, NULL, 's' },
    { "receivers", required_argument, NULL, 'n' },
    { "loss", required_argument, NULL, 'l' },
    { "mtu", required_argument, NULL, 'm' },
    { "chunk-size", required_argument, NULL, 'c' },
    { "rate", required_argument, NULL, 'r' },
    { "seed", required_argument, NULL, 'S' },
    { "runs", required_argument, NULL, 'R' },
    { "no-key", no_argument, NULL, 'k' },
    { "kill", required_argument, NULL, 'K' },
    { "intake", required_argument, NULL, 'i' },
    { "slow", required_argument, NULL, 'w' },
    { "verbose", no_argument, NULL, 'v' },
    { "min-rate", required_argument, NULL, 'F' },
    { "window-chunks", required_argument, NULL, 'W' },
    { NULL, 0, NULL, 0 },
  };
  smc_sim_config c;
  smc_sim_result *res = malloc (sizeof *res);
  double size_mib = 16, loss = 0, intake = 0;
  unsigned long runs = 1;
  uint8_t *image;
  int opt, failed = 0;
  char err[256];
  smc_sim_config_init (&c);
  while ((opt = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    char *end = NULL;
    unsigned long i, ms;
    switch (opt) {
    case 's': size_mib = strtod (optarg, &end); break;
    case 'n': c.receivers = (uint32_t) strtoul (optarg, &end, 10); break;
    case 'l': loss = strtod (optarg, &end); break;
    case 'm': c.mtu = (uint16_t) strtoul (optarg, &end, 10); break;
    case 'c': c.chunk_size = (uint32_t) strtoul (optarg, &end, 10); break;
    case 'r': c.rate_bps = strtoull (optarg, &end, 10) * 1000000ull; break;
    case 'F': c.rate_min_bps = strtoull (optarg, &end, 10) * 1000000ull; break;
    case 'W': c.window_chunks = (uint32_t) strtoul (optarg, &end, 10); break;
    case 'S': c.seed = strtoull (optarg, &end, 10); break;
    case 'R': runs = strtoul (optarg, &end, 10); break;
    case 'k': c.no_key = 1; end = (char *) ""; break;
    case 'i': intake = strtod (optarg, &end); break;
    case 'v': c.verbose = 1; end = (char *) ""; break;
    case 'w':
    case 'K':
      /* I:VALUE, receiver I: MB/s it takes (--slow), ms it dies at (--kill) */
      if (sscanf (optarg, "%lu:%lu", &i, &ms) != 2 || i < 1 || i > SMC_SIM_MAX_RECEIVERS) {
        usage ();
        return 2;
      }
      *(opt == 'w' ? &c.intake_Bps[i] : &c.kill_ns[i]) = ms * 1000000ull;
      end = (char *) "";
      break;
    default: usage (); return 2;
    }
    if (end == NULL || *end != '\0') {
      fprintf (stderr, "shoal-mcast-sim: bad value '%s'\n", optarg);
      return 2;
    }
  }
  if (res == NULL || size_mib <= 0 || size_mib > 4096 || loss < 0 || loss > 100 || runs < 1) {
    usage ();
    return 2;
  }
  c.image_len = (size_t) (size_mib * 1024 * 1024);
  for (uint32_t i = 1; intake > 0 && i <= c.receivers && i <= SMC_SIM_MAX_RECEIVERS; i++)
    if (c.intake_Bps[i] == 0)
      c.intake_Bps[i] = (uint64_t) (intake * 1e6);
  c.loss_ppm = (uint32_t) (loss * 10000 + 0.5);
  image = malloc (c.image_len);
  if (image == NULL) {
    fprintf (stderr, "shoal-mcast-sim: out of memory\n");
    return 2;
  }
  smc_sim_fill (image, c.image_len, 0);
  c.image = image;
  for (unsigned long run = 0; run < runs; run++) {
    uint32_t complete = 0, unicast = 0, bad = 0, overflow = 0;
    if (smc_sim_run (&c, res, err, sizeof err) < 0) {
      fprintf (stderr, "shoal-mcast-sim: %s\n", err);
      return 2;
    }
    for (uint32_t i = 1; i <= c.receivers; i++) {
      complete += res->rcv[i].complete && res->rcv[i].chunks_unicast == 0;
      unicast += res->rcv[i].chunks_unicast;
      bad += res->rcv[i].bad_writes;
      overflow += res->rcv[i].overflow;
    }
    printf ("sim N=%u loss=%g%% mtu=%u chunk=%u seed=%llu rc=%d by-multicast=%u/%u unicast-chunks=%u bad-writes=%u "
            "overflow=%u egress/file=%.4f parity=%llu repair=%llu proactive=%llu resent=%llu control=%llu nacks=%llu virtual_s=%.3f\n",
            c.receivers, loss, c.mtu, c.chunk_size, (unsigned long long) c.seed, res->sender_rc, complete,
            c.receivers, unicast, bad, overflow, (double) res->egress_bytes / (double) c.image_len,
            (unsigned long long) res->sender.parity_pkts, (unsigned long long) res->sender.repair_pkts,
            (unsigned long long) res->sender.parity_proactive,
            (unsigned long long) res->sender.source_resent,
            (unsigned long long) res->sender.control_pkts, (unsigned long long) res->sender.nacks_rx,
            (double) res->end_ns / 1e9);
    failed |= bad > 0;
    c.seed++;
  }
  free (image);
  free (res);
  return failed ? 1 : 0;
}
