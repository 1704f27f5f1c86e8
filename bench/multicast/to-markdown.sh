#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# to-markdown.sh RESULTS.txt: the lines of run.sh as a markdown table
echo "| tool | N | loss | rate | MTU | ok | wall s | MB/s per rcv | egress/file | cpu sender s | cpu rcv s (mean) | nft drops | notes | load |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
grep -v '^#' "$1" | grep -v '^results' | awk '
{
  tool=$1; n=$2; sub("N=","",n); loss=$3; sub("loss=","",loss); rate=$4; sub("rate=","",rate);
  mtu=$5; sub("mtu=","",mtu); ok=$6; sub("ok=","",ok);
  notes=""; load="";
  for (i = 7; i <= NF; i++) {
    if ($i ~ /^wall=/) { w=$i; sub("wall=","",w); if (w == "") { i++; w=$i } ; sub("s$","",w) }
    else if ($i ~ /^MB\/s\/rcv=/) { m=$i; sub("MB/s/rcv=","",m); if (m == "") { i++; m=$i } }
    else if ($i ~ /^egress\/file=/) { e=$i; sub("egress/file=","",e) }
    else if ($i ~ /^cpu_s=/) { cs=$i; sub("cpu_s=","",cs) }
    else if ($i ~ /^cpu_r=/) { cr=$i; sub("cpu_r=","",cr) }
    else if ($i ~ /^drops=/) { d=$i; sub("drops=","",d) }
    else if ($i ~ /^load=/) { load=$i; sub("load=","",load) }
    else if ($i ~ /^(rc|parity_pkts|nacks|setup_s|unicast)=/ || $i ~ /limit-line/) { notes=notes " " $i }
  }
  printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", tool, n, loss, rate, mtu, ok, w, m, e, cs, cr, d, notes, load
}'
