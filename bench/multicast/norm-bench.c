/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* norm-bench.c: minimal libnorm (RFC 5740) file sender/receiver used to
 * measure NORM in the multicast benchmark topology (bench/multicast/README.md).
 *   norm-bench send GROUP PORT RATE_BPS SEGSIZE NDATA NPARITY AUTOPARITY NRCV FILE
 *   norm-bench recv GROUP PORT NODEID CACHEDIR OUTFILE */
#include <normApi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
do_send (char **argv)
{
  NormInstanceHandle inst = NormCreateInstance (false);
  NormSessionHandle s = NormCreateSession (inst, argv[0], (UINT16) atoi (argv[1]), 1);
  int nrcv = atoi (argv[7]);
  NormSetMulticastInterface (s, "eth0");
  NormSetTxSocketBuffer (s, 8 << 20);
  NormSetGrttEstimate (s, 0.001);
  double rate = atof (argv[2]);
  if (rate > 0)
    NormSetTxRate (s, rate);
  else
    NormSetCongestionControl (s, true, true);
  for (int i = 0; i < nrcv; i++)
    NormAddAckingNode (s, (NormNodeId) (11 + i));
  if (!NormStartSender (s, NormGetRandomSessionId (), 64u << 20, (UINT16) atoi (argv[3]),
                        (UINT16) atoi (argv[4]), (UINT16) atoi (argv[5]), 0))
    return 1;
  NormSetAutoParity (s, (unsigned char) atoi (argv[6]));
  NormObjectHandle obj = NormFileEnqueue (s, argv[8], "f", 1);
  if (obj == NORM_OBJECT_INVALID)
    return 1;
  NormSetWatermark (s, obj, true);
  NormEvent ev;
  while (NormGetNextEvent (inst, &ev, true)) {
    if (ev.type == NORM_TX_WATERMARK_COMPLETED) {
      int ok = NormGetAckingStatus (s, NORM_NODE_ANY) == NORM_ACK_SUCCESS;
      fprintf (stderr, "norm sender: watermark %s\n", ok ? "acked by all" : "FAILED");
      NormStopSender (s);
      NormDestroyInstance (inst);
      return ok ? 0 : 1;
    }
  }
  return 1;
}

static int
do_recv (char **argv)
{
  NormInstanceHandle inst = NormCreateInstance (false);
  NormSessionHandle s = NormCreateSession (inst, argv[0], (UINT16) atoi (argv[1]),
                                           (NormNodeId) atoi (argv[2]));
  NormSetMulticastInterface (s, "eth0");
  NormSetCacheDirectory (inst, argv[3]);
  NormSetRxSocketBuffer (s, 16 << 20);
  NormSetDefaultUnicastNack (s, false);
  if (!NormStartReceiver (s, 64u << 20))
    return 1;
  NormEvent ev;
  while (NormGetNextEvent (inst, &ev, true)) {
    if (ev.type == NORM_RX_OBJECT_COMPLETED) {
      char name[1024];
      if (NormFileGetName (ev.object, name, sizeof name))
        rename (name, argv[4]);
      /* let the final ACK go out */
      usleep (300000);
      NormDestroyInstance (inst);
      return 0;
    }
  }
  return 1;
}

int
main (int argc, char **argv)
{
  if (argc == 11 && strcmp (argv[1], "send") == 0)
    return do_send (argv + 2);
  if (argc == 7 && strcmp (argv[1], "recv") == 0)
    return do_recv (argv + 2);
  fprintf (stderr, "usage: see source\n");
  return 2;
}
