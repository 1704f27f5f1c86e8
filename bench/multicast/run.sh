#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# run.sh [--quick] [--tools "shoal udpcast uftp"] [--n "1 4 16"] [--loss "0 1 5"] [--mtu "1500 9000"]
#        [--size MiB] [--out FILE]
# The multicast benchmark of issue 7: shoal, udpcast and uftp side by side on
# the same topology and file, plus the iperf2 blast limit line. Each cell
# builds its own namespaces (topo.sh) and prints one line (cell.sh).
# MTU 1500 runs behind a 1 Gbit/s tbf on the sender (as in the reference
# figures); MTU 9000 runs unlimited (CPU-bound, as the 9000 limit line).
# Needs root, iproute2, nftables, udpcast, uftp, iperf, and a build of
# shoal-mcast-{send,recv} (MCAST_BUILD, default ../../build-mcast).
set -u
here=$(cd "$(dirname "$0")" && pwd)
NS="1 4 16"; LOSSES="0 1 5"; MTUS="1500 9000"; TOOLS="iperf shoal udpcast uftp"; SIZE=128
OUT=${OUT:-/tmp/mcast-bench-$(date +%Y%m%d-%H%M%S).txt}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) NS="1 4"; LOSSES="0 5"; MTUS="1500"; shift ;;
    --tools) TOOLS=$2; shift 2 ;;
    --n) NS=$2; shift 2 ;;
    --loss) LOSSES=$2; shift 2 ;;
    --mtu) MTUS=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
export SRC=${SRC:-/dev/shm/mcast-src-${SIZE}M.bin}
[ -f "$SRC" ] && [ "$(stat -c %s "$SRC")" = $((SIZE * 1048576)) ] || head -c $((SIZE * 1048576)) /dev/urandom > "$SRC"
echo "# $(date -u) $(uname -r) $(nproc) cpus; file $SIZE MiB; $0 $*" | tee -a "$OUT"
for mtu in $MTUS; do
  rate=1gbit; [ "$mtu" = 9000 ] && rate=0
  for n in $NS; do
    for tool in $TOOLS; do
      for loss in $LOSSES; do
        [ "$tool" = iperf ] && [ "$loss" != "${LOSSES%% *}" ] && continue   # the limit line has no loss
        extra=()
        case "$tool" in
          shoal) extra=(--rate-mbit $([ "$rate" = 0 ] && echo 10000 || echo 1000)) ;;
        esac
        line=$("$here/cell.sh" "$tool" "$n" "$loss" "$rate" "$mtu" "${extra[@]}" 2>/dev/null | tail -1)
        echo "$line load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$OUT"
      done
    done
  done
done
echo "results in $OUT"
