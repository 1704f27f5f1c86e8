#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# wc-sim.sh [BUILD_DIR]: what repair by the window code
# (plugins/multicast/proto/shoal-mcast-wc.h) would give issue 7's cells, in
# one process with perfect feedback and independent loss at each receiver
# (shoal-mcast-wc-sim): egress / image for a 14-byte DATA header and
# 16 MiB windows, and the receiver's solver time, at MTU 1500 and 9000.
# Beside it, per-block Reed-Solomon as the protocol has it today
# (fec-optimum.py) and the ideal code (window-bound.py) give the bounds.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
sim=$build/plugins/multicast/shoal-mcast-wc-sim
windows=${WINDOWS:-8}
for mtu in 1500 9000; do
  S=$((mtu - 28 - 14))
  for loss in 1 5; do
    for n in 1 4 16; do
      "$sim" --symbol "$S" --header 14 --receivers "$n" --loss "$loss" --windows "$windows" --seed "$((n * 100 + loss))"
    done
  done
done
