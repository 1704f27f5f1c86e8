#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# sim.sh [--size MiB] [--runs R] [--n "1 4 16 64 256"] [--loss "0 1 5"] [--mtu "1500 9000"]
#        [--rate "1000"] [--intake "0"] [--slow "-"] [--out FILE]
# What the protocol sends, cell by cell, apart from any machine's CPU:
# shoal-mcast-sim runs each session (the real sender and receivers, in one
# process and in virtual time; plugins/multicast/proto/shoal-mcast-sim.h)
# with R seeds and prints its lines: egress ÷ image, parity, sources sent
# again, NACKs, receivers finished by multicast. Loss as the benchmark's
# (each receiver loses that share of the sender's packets, independently),
# 50 µs one way. No root, no network. --rate: the sender's caps (Mbit/s);
# --intake: what every receiver takes (MB/s, its disk; 0: no limit);
# --slow: receivers slower than the rest, I:MB/s each ("-": none). Slow
# groups, for example: --n "4 16" --rate "10000" --intake "0 50 150 400"
# --slow "- 1:5 1:20".
# Needs a build with plugins/multicast/shoal-mcast-sim (MCAST_BUILD, default
# ./build-mcast, else ./build).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${MCAST_BUILD:-$root/build-mcast}
[ -x "$build/plugins/multicast/shoal-mcast-sim" ] || build=$root/build
sim=$build/plugins/multicast/shoal-mcast-sim
size=32 runs=3 ns="1 4 16 64 256" losses="0 1 5" mtus="1500 9000" rates=1000 intakes=0 slows=- out=/dev/stdout
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2 ;; --runs) runs=$2 ;; --n) ns=$2 ;; --loss) losses=$2 ;;
    --mtu) mtus=$2 ;; --rate) rates=$2 ;; --intake) intakes=$2 ;; --slow) slows=$2 ;; --out) out=$2 ;;
    *) echo "usage: sim.sh [--size MiB] [--runs R] [--n LIST] [--loss LIST] [--mtu LIST] [--rate LIST] [--intake LIST] [--slow LIST] [--out FILE]" >&2; exit 2 ;;
  esac
  shift 2
done
[ -x "$sim" ] || { echo "sim.sh: no $sim (build first)" >&2; exit 2; }
{
  echo "# sim.sh --size $size --runs $runs --n \"$ns\" --loss \"$losses\" --mtu \"$mtus\" --rate \"$rates\" --intake \"$intakes\" --slow \"$slows\" ($(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo ?))"
  for mtu in $mtus; do
    for n in $ns; do
      for loss in $losses; do
        for rate in $rates; do
          for intake in $intakes; do
            for slow in $slows; do
              args=(--size "$size" --receivers "$n" --loss "$loss" --mtu "$mtu" --rate "$rate")
              [ "$intake" = 0 ] || args+=(--intake "$intake")
              [ "$slow" = - ] || args+=(--slow "$slow")
              echo "## rate=$rate intake=$intake slow=$slow"
              "$sim" "${args[@]}" --runs "$runs" --seed 1
            done
          done
        done
      done
    done
  done
} > "$out"
