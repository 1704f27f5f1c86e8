#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# scale.sh [--n "32 64 128"] [--loss "0 1 5"] [--size MiB] [--out FILE]
# shoal alone with more receivers than the matrix has (one session, one
# bridge, MTU 1500 behind the 1 Gbit/s tbf), a smaller file so that the
# largest group fits the time box on 2 cores: does every receiver finish
# bit-exact, how much repair and how many NACKs does the group cost. Each
# line is cell.sh's, plus the NACKs per FEC block (a random file, 1 MiB
# chunks, at MTU 1500 each chunk is 4 blocks of 181 symbols).
# Needs root and a build of shoal-mcast-{send,recv} (MCAST_BUILD).
set -u
here=$(cd "$(dirname "$0")" && pwd)
NS="32 64 128"; LOSSES="0 1 5"; SIZE=32
OUT=${OUT:-/tmp/mcast-scale-$(date +%Y%m%d-%H%M%S).txt}
while [ $# -gt 0 ]; do
  case "$1" in
    --n) NS=$2; shift 2 ;;
    --loss) LOSSES=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
export SRC=${SRC:-/dev/shm/mcast-src-${SIZE}M.bin}
[ -f "$SRC" ] && [ "$(stat -c %s "$SRC")" = $((SIZE * 1048576)) ] || head -c $((SIZE * 1048576)) /dev/urandom > "$SRC"
export TIMEOUT=${TIMEOUT:-180}
echo "# $(date -u) $(uname -r) $(nproc) cpus; file $SIZE MiB; $0 $*" | tee -a "$OUT"
for n in $NS; do
  for loss in $LOSSES; do
    line=$("$here/cell.sh" shoal "$n" "$loss" 1gbit 1500 --rate-mbit 1000 2>&1 | grep '^shoal ')
    k=$(echo "$line" | grep -o ' nacks=[0-9]*' | cut -d= -f2)
    per=$(awk -v k="${k:-0}" -v b="$((SIZE * 4))" 'BEGIN { printf "%.1f", k / b }')
    echo "$line nacks_per_block=$per" | tee -a "$OUT"
  done
done
echo "results in $OUT"
