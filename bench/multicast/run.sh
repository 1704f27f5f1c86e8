#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# run.sh [--quick] [--tools "shoal udpcast uftp"] [--n "1 4 16"] [--loss "0 1 5"] [--mtu "1500 9000"]
#        [--size MiB] [--jumbo-size MiB] [--repeat R] [--out FILE]
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
# --repeat R runs every cell of an (MTU, N) R times, round after round
# (each round every tool and loss in turn), each line ending rep=I:
# rates on this host drift by up to 40 % over minutes, and a tool
# measured minutes after another would be compared with another host;
# summary.py takes each cell's median.
# Tools: iperf (the line), shoal (its defaults: the window code at MTU
# 1500; at 9000 Reed-Solomon blocks up to 4 receivers, the window code
# above), shoal-rs (Reed-Solomon blocks, --window 0), shoal-4m (shoal on
# 4 MiB chunks, the README's setting for jumbo-frame LANs; MTU 9000 only),
# udpcast, uftp.
# Needs root, iproute2, nftables, udpcast, uftp, iperf, and a build of
# shoal-mcast-{send,recv} (MCAST_BUILD, default ../../build-mcast).
set -u
here=$(cd "$(dirname "$0")" && pwd)
NS="1 4 16"; LOSSES="0 1 5"; MTUS="1500 9000"; TOOLS="iperf shoal udpcast uftp"; SIZE=128; JSIZE=512; REPEAT=1
OUT=${OUT:-/tmp/mcast-bench-$(date +%Y%m%d-%H%M%S).txt}
ARGS="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) NS="1 4"; LOSSES="0 5"; MTUS="1500"; shift ;;
    --tools) TOOLS=$2; shift 2 ;;
    --n) NS=$2; shift 2 ;;
    --loss) LOSSES=$2; shift 2 ;;
    --mtu) MTUS=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --jumbo-size) JSIZE=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
# In a VM with free page reporting, memory free for min_free_ms goes back
# to the host, and touching it again costs a host fault per page (here
# 1.5 s of system time per GiB): a cell whose receivers write 2 GiB of
# outputs into memory another cell freed a while before ran at half its
# rate (2 runs in 3 of shoal N=4 MTU 9000 5 %: 141-145 MB/s against 305,
# receivers' writes 3.5 s against 0.2). The run holds it at its longest
# (60 s) and puts it back at the end
PR=/sys/module/page_reporting/parameters/min_free_ms
if [ -w "$PR" ]; then
  pr_old=$(cat "$PR")
  echo 60000 > "$PR" 2>/dev/null || echo "could not set $PR" >&2
  trap 'echo "$pr_old" > "$PR"' EXIT
fi
# the file of SIZE MiB (random: nothing in it is sparse or compressible);
# a SRC given in the environment is every cell's file, as it is
src_of() {
  [ -n "${SRC:-}" ] && { echo "$SRC"; return; }
  local f=/dev/shm/mcast-src-${1}M.bin
  [ -f "$f" ] && [ "$(stat -c %s "$f")" = $(($1 * 1048576)) ] || head -c $(($1 * 1048576)) /dev/urandom > "$f"
  echo "$f"
}
echo "# $(date -u) $(uname -r) $(nproc) cpus; file $SIZE MiB (MTU 9000, N <= 4: $JSIZE MiB); $0 $ARGS" | tee -a "$OUT"
for mtu in $MTUS; do
  rate=1gbit; [ "$mtu" = 9000 ] && rate=0
  for n in $NS; do
    size=$SIZE; [ "$mtu" = 9000 ] && [ "$n" -le 4 ] && size=$JSIZE
    src=$(src_of "$size")
    for r in $(seq 1 "$REPEAT"); do
      for tool in $TOOLS; do
        [ "$tool" = shoal-4m ] && [ "$mtu" != 9000 ] && continue
        for loss in $LOSSES; do
          [ "$tool" = iperf ] && [ "$loss" != "${LOSSES%% *}" ] && continue   # the limit line has no loss
          extra=()
          case "$tool" in
            shoal*) extra=(--rate-mbit $([ "$rate" = 0 ] && echo 10000 || echo 1000)) ;;
          esac
          line=$(SRC=$src "$here/cell.sh" "$tool" "$n" "$loss" "$rate" "$mtu" "${extra[@]}" 2>/dev/null | tail -1)
          echo "$line load=$(cut -d' ' -f1 /proc/loadavg)$([ "$REPEAT" -gt 1 ] && echo " rep=$r")" | tee -a "$OUT"
        done
      done
    done
  done
done
echo "results in $OUT"
