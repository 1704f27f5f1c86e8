#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fec-optimum.py [--blocks B] [--seed S]

The best egress/image any block code can reach with per-block repair, for
the benchmark's cells: every receiver loses each packet of a block with
probability p, independently; the sender adds one parity symbol at a time,
with perfect and instant feedback, until every receiver holds k symbols of
the block. Egress per block is therefore k + the largest of N receivers'
needs, times the frame overhead (Ethernet+IP+UDP+shoal header per symbol).
shoal's measured egress is compared with these numbers in PROTOCOL.md
("Limits"); a protocol with real feedback can only be above them.
"""
import argparse
import random

# (label, frame bytes on the wire per symbol, image bytes per symbol, k per FEC block)
CELLS = [
    ("MTU 1500, k=181 (4 blocks per 1 MiB chunk)", 1514, 1450, 181),
    ("MTU 1500, k=724 (one block per chunk)", 1514, 1450, 724),
    ("MTU 1500, k=2893 (one block per 4 MiB)", 1514, 1450, 2893),
    ("MTU 9000, k=118 (one block per chunk)", 9014, 8950, 118),
    ("MTU 9000, k=157 (4 MiB chunks: 3 blocks)", 9014, 8950, 157),
    ("MTU 9000, k=236 (a block over two chunks)", 9014, 8950, 236),
]


def block_egress(rng, k, n, p):
    have = [sum(rng.random() > p for _ in range(k)) for _ in range(n)]
    sent = k
    while min(have) < k:
        sent += 1
        for r in range(n):
            if have[r] < k and rng.random() > p:
                have[r] += 1
    return sent


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=1000, help="blocks simulated per cell")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print("| code | frame overhead | N=1 | N=4 | N=16 | (5 % loss) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, frame, payload, k in CELLS:
        row = []
        for n in (1, 4, 16):
            sent = sum(block_egress(rng, k, n, 0.05) for _ in range(args.blocks))
            row.append("%.3f" % (sent / (args.blocks * k) * frame / payload))
        print("| %s | %.4f | %s | |" % (label, frame / payload, " | ".join(row)))


if __name__ == "__main__":
    main()
