#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# run.sh [--quick] [--tools "shoal udpcast uftp"] [--n "1 4 16"] [--loss "0 1 5"] [--mtu "1500 9000"]
#        [--size MiB] [--jumbo-size MiB] [--out FILE]
# The multicast benchmark of issue 7: shoal, udpcast and uftp side by side on
# the same topology and file, plus the iperf2 blast limit line. Each cell
# builds its own namespaces (topo.sh) and prints one line (cell.sh).
# MTU 1500 runs behind a 1 Gbit/s tbf on the sender (as in the reference
# figures); MTU 9000 runs unlimited (CPU-bound, as the 9000 limit line).
# --size is the file (128 MiB); MTU 9000 cells with N <= 4 take --jumbo-size
# (512 MiB): at 1 GB/s a 128 MiB transfer lasts 0.13 s, so its fixed start
# and end (~20 ms for every tool) would weigh 15 % against a line measured
# over a 5 s blast; 16 outputs of 512 MiB in tmpfs slow every tool 2-3x, so
# N=16 keeps --size. Each line ends with the file's size (file=...M).
# Tools: iperf (the line), shoal (its defaults: the window code at MTU
# 1500; at 9000 Reed-Solomon blocks up to 4 receivers, the window code
# above), shoal-rs (Reed-Solomon blocks, --window 0), shoal-4m (shoal on
# 4 MiB chunks, the README's setting for jumbo-frame LANs; MTU 9000 only),
# udpcast, uftp.
# Needs root, iproute2, nftables, udpcast, uftp, iperf, and a build of
# shoal-mcast-{send,recv} (MCAST_BUILD, default ../../build-mcast).
set -u
here=$(cd "$(dirname "$0")" && pwd)
NS="1 4 16"; LOSSES="0 1 5"; MTUS="1500 9000"; TOOLS="iperf shoal udpcast uftp"; SIZE=128; JSIZE=512
OUT=${OUT:-/tmp/mcast-bench-$(date +%Y%m%d-%H%M%S).txt}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) NS="1 4"; LOSSES="0 5"; MTUS="1500"; shift ;;
    --tools) TOOLS=$2; shift 2 ;;
    --n) NS=$2; shift 2 ;;
    --loss) LOSSES=$2; shift 2 ;;
    --mtu) MTUS=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --jumbo-size) JSIZE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
# the file of SIZE MiB (random: nothing in it is sparse or compressible);
# a SRC given in the environment is every cell's file, as it is
src_of() {
  [ -n "${SRC:-}" ] && { echo "$SRC"; return; }
  local f=/dev/shm/mcast-src-${1}M.bin
  [ -f "$f" ] && [ "$(stat -c %s "$f")" = $(($1 * 1048576)) ] || head -c $(($1 * 1048576)) /dev/urandom > "$f"
  echo "$f"
}
echo "# $(date -u) $(uname -r) $(nproc) cpus; file $SIZE MiB (MTU 9000, N <= 4: $JSIZE MiB); $0 $*" | tee -a "$OUT"
for mtu in $MTUS; do
  rate=1gbit; [ "$mtu" = 9000 ] && rate=0
  for n in $NS; do
    size=$SIZE; [ "$mtu" = 9000 ] && [ "$n" -le 4 ] && size=$JSIZE
    src=$(src_of "$size")
    for tool in $TOOLS; do
      [ "$tool" = shoal-4m ] && [ "$mtu" != 9000 ] && continue
      for loss in $LOSSES; do
        [ "$tool" = iperf ] && [ "$loss" != "${LOSSES%% *}" ] && continue   # the limit line has no loss
        extra=()
        case "$tool" in
          shoal*) extra=(--rate-mbit $([ "$rate" = 0 ] && echo 10000 || echo 1000)) ;;
        esac
        line=$(SRC=$src "$here/cell.sh" "$tool" "$n" "$loss" "$rate" "$mtu" "${extra[@]}" 2>/dev/null | tail -1)
        echo "$line load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$OUT"
      done
    done
  done
done
echo "results in $OUT"
