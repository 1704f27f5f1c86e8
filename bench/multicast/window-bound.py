#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""window-bound.py [--trials T] [--loss P]: the least egress ÷ image any
repair could reach at MTU 1500 with an ideal MDS code over windows of k
symbols and perfect feedback, for a DATA header (with its tag) of H bytes.

Each receiver loses each packet independently with probability P; the
sender sends a window's symbols until every receiver holds k of them: the
largest of N negative binomials (taken in their normal form), times the
frame's bytes over the symbol's (an Ethernet frame of 1514 bytes carries
1500 - 28 - H bytes of image). Per-block Reed-Solomon over GF(2^8), as
shoal's protocol has it, is bounded by k <= 255 (fec-optimum.py gives its
optimum); this is what a fountain or large-field code could reach."""
import argparse
import math
import random

ap = argparse.ArgumentParser()
ap.add_argument("--trials", type=int, default=2000)
ap.add_argument("--loss", type=float, default=0.05)
args = ap.parse_args()
rng = random.Random(7)
p = args.loss
q = 1 - p


def expected_max(k, n):
    mean, sd = k / q, math.sqrt(k * p) / q
    return sum(max(rng.gauss(mean, sd) for _ in range(n)) for _ in range(args.trials)) / args.trials / k


print("loss %.0f %%, MTU 1500, %d trials" % (p * 100, args.trials))
print("header  k       N=1     N=4     N=16")
for header in (22, 16, 14):
    frame = 1514 / (1500 - 28 - header)
    for k in (181, 1000, 3000, 10000, 30000):
        print("%-7d %-7d %s" % (header, k, "  ".join("%.4f" % (frame * expected_max(k, n)) for n in (1, 4, 16))))
