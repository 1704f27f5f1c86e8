#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# scale.sh [run.sh options, e.g. --n "32 64" --loss 5 --size 8 --out FILE]
# shoal alone with more receivers than the matrix has: run.sh --tools shoal
# --mtu 1500 --n "32 64 128" --size 32 (one session, one bridge, MTU 1500
# behind the 1 Gbit/s tbf; a smaller file so that the largest group fits
# the time box on 2 cores), then each of this run's lines again with the
# NACKs per FEC block (a random file, 1 MiB chunks: at MTU 1500 each chunk
# is 4 blocks of 181 symbols). Does every receiver finish bit-exact, how
# much repair and how many NACKs does the group cost.
# Needs root and a build of shoal-mcast-{send,recv} (MCAST_BUILD).
set -u
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/mcast-scale-$(date +%Y%m%d-%H%M%S).txt}
size=32 prev=
for a in "$@"; do
  case "$prev" in --size) size=$a ;; --out) OUT=$a ;; esac
  prev=$a
done
before=0
[ -f "$OUT" ] && before=$(wc -l < "$OUT")
TIMEOUT=${TIMEOUT:-180} "$here/run.sh" --tools shoal --mtu 1500 --n "32 64 128" --size 32 "$@" --out "$OUT" || exit
tail -n +$((before + 1)) "$OUT" | awk -v blocks=$((size * 4)) '/^shoal / {
  k = 0
  if (match ($0, / nacks=[0-9]+/)) k = substr ($0, RSTART + 7, RLENGTH - 7) + 0
  printf "%s nacks_per_block=%.1f\n", $0, k / blocks
}'
