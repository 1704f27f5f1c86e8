#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# norm-run.sh N LOSS RATE_LIMIT TXRATE_BPS SEGSIZE NDATA NPARITY AUTOPARITY [MTU]
# One libnorm cell in the benchmark topology; prints one result line.
set -u
here=$(cd "$(dirname "$0")" && pwd)
N=$1; LOSS=$2; LIM=$3; TXR=$4; SEG=$5; K=$6; M=$7; AP=$8; MTU=${9:-1500}
P=mcn$$
BIN=${NORM_BENCH:-/tmp/mcast-norm/norm-bench}
SRC=${SRC:-/dev/shm/mcast-src.bin}
W=/dev/shm/mcn-$$; mkdir -p "$W"
trap '"$here/topo.sh" down $P $N; rm -rf "$W"' EXIT
"$here/topo.sh" up $P "$N" "$MTU" "$LOSS" "$LIM"
size=$(stat -c %s "$SRC")
i=1; while [ $i -le "$N" ]; do
  mkdir -p "$W/c$i"
  ip netns exec ${P}r$i timeout -k 2 120 "$BIN" recv 239.77.2.1 6003 $((10 + i)) "$W/c$i" "$W/out$i" &
  i=$((i + 1)); done
sleep 0.5
tx0=$("$here/topo.sh" txbytes $P)
t0=$(date +%s.%N)
ip netns exec ${P}s timeout -k 2 120 "$BIN" send 239.77.2.1 6003 "$TXR" "$SEG" "$K" "$M" "$AP" "$N" "$SRC"; rc=$?
t1=$(date +%s.%N)
wait
tx1=$("$here/topo.sh" txbytes $P)
ok=0; ref=$(sha256sum < "$SRC" | cut -c1-64)
i=1; while [ $i -le "$N" ]; do
  [ -f "$W/out$i" ] && [ "$(sha256sum < "$W/out$i" | cut -c1-64)" = "$ref" ] && ok=$((ok + 1)); i=$((i + 1)); done
awk -v n="$N" -v l="$LOSS" -v s="$size" -v a="$t0" -v b="$t1" -v e=$((tx1 - tx0)) -v ok=$ok -v rc=$rc -v args="$TXR $SEG $K $M $AP" \
 'BEGIN{w=b-a; printf "norm N=%d loss=%d ok=%d/%d rc=%d wall=%.2fs MB/s=%.1f egress=%.3f args=[%s]\n", n,l,ok,n,rc,w,s/w/1e6,e/s,args}'
