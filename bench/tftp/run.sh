#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/tftp/run.sh: N concurrent TFTP fetches of one file from shoal's
# TFTP server and from tftp-hpa's in.tftpd, with the same client (atftp,
# which negotiates RFC 7440 windowsize), in the same namespaces, in one
# run: at windowsize 1 (lockstep) and at a negotiated windowsize.
#
# usage: sudo bench/tftp/run.sh [path/to/shoal-pxe-serve]
# env:   CLIENTS=32 SIZE_MIB=30 BLKSIZE=1432 WINDOW=16 ROUNDS=1
#        SERVERS="shoal tftp-hpa" WINDOWS="1 16" SHOAL_ARGS="--workers N"
set -euo pipefail

SERVE=${1:-$(dirname "$0")/../../build/plugins/pxe/shoal-pxe-serve}
CLIENTS=${CLIENTS:-32}
SIZE_MIB=${SIZE_MIB:-30}
BLKSIZE=${BLKSIZE:-1432}
WINDOW=${WINDOW:-16}
ROUNDS=${ROUNDS:-1}
SERVERS=${SERVERS:-shoal tftp-hpa}
WINDOWS=${WINDOWS:-1 $WINDOW}
TAG=shoal-tftpbench-$$
SRV=$TAG-s
CLI=$TAG-c
WORK=$(mktemp -d /tmp/$TAG-XXXXXX)
PIDS=()

for tool in atftp in.tftpd ip; do
  command -v $tool >/dev/null || { echo "missing $tool" >&2; exit 77; }
done
[ -x "$SERVE" ] || { echo "missing $SERVE (build shoal first)" >&2; exit 77; }

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  # anything still inside our namespaces was started by this script
  for pid in $(ip netns pids $SRV 2>/dev/null) $(ip netns pids $CLI 2>/dev/null); do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  ip netns del $SRV 2>/dev/null || true
  ip netns del $CLI 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add $SRV
ip netns add $CLI
ip -n $SRV link set lo up
ip -n $CLI link set lo up
ip -n $SRV link add eth0 type veth peer name eth0 netns $CLI
ip -n $SRV addr add 10.88.0.1/24 dev eth0    # shoal
ip -n $SRV addr add 10.88.0.2/24 dev eth0    # tftp-hpa
ip -n $CLI addr add 10.88.0.100/24 dev eth0
ip -n $SRV link set eth0 up
ip -n $CLI link set eth0 up

mkdir -p "$WORK/root" "$WORK/out"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$WORK/root/file.bin"
SUM=$(sha256sum < "$WORK/root/file.bin" | cut -d' ' -f1)

# every client comes from one address: lift the per-client limit (8)
ip netns exec $SRV "$SERVE" --tftp-root "$WORK/root" --address 10.88.0.1 --max-per-client "$CLIENTS" ${SHOAL_ARGS:-} > "$WORK/shoal.log" 2>&1 &
PIDS+=($!)
ip netns exec $SRV in.tftpd -L -a 10.88.0.2:69 -s "$WORK/root" > "$WORK/hpa.log" 2>&1 &
PIDS+=($!)
sleep 0.5

# fetch SERVER WINDOW: prints the seconds N concurrent fetches took
fetch() {
  local server=$1 window=$2 opts=(--option "blksize $BLKSIZE" --option "tsize 0")
  local start end cpids=()
  [ "$window" -gt 1 ] && opts+=(--option "windowsize $window")
  rm -f "$WORK"/out/*
  start=$(date +%s.%N)
  for i in $(seq 1 "$CLIENTS"); do
    ip netns exec $CLI timeout 600 atftp "${opts[@]}" -g -r file.bin -l "$WORK/out/$i" "$server" \
      > "$WORK/out/log-$i" 2>&1 &
    cpids+=($!)
  done
  local failed=0 i=0
  for pid in "${cpids[@]}"; do
    i=$((i + 1))
    if ! wait "$pid"; then
      failed=$((failed + 1))
      echo "client $i failed: $(tail -n 3 "$WORK/out/log-$i" | tr '\n' ' ')" >&2
    fi
  done
  [ "$failed" -eq 0 ] || return 1
  end=$(date +%s.%N)
  for i in $(seq 1 "$CLIENTS"); do
    [ "$(sha256sum < "$WORK/out/$i" | cut -d' ' -f1)" = "$SUM" ] || { echo "corrupt copy $i" >&2; return 1; }
  done
  echo "$end - $start" | bc -l
}

# warm-up, not timed: one fetch from each server
for addr in 10.88.0.1 10.88.0.2; do
  ip netns exec $CLI timeout 120 atftp --option "blksize $BLKSIZE" -g -r file.bin -l /dev/null $addr >/dev/null 2>&1 || true
done

printf '%d concurrent fetches of %d MiB, blksize %d, client atftp %s\n' "$CLIENTS" "$SIZE_MIB" "$BLKSIZE" \
  "$(atftp --version 2>&1 | head -1)"
printf '%-12s %-10s %10s %12s\n' server windowsize seconds "MiB/s total"
for round in $(seq 1 "$ROUNDS"); do
  for window in $WINDOWS; do
    for server in $SERVERS; do
      addr=10.88.0.1; [ $server = tftp-hpa ] && addr=10.88.0.2
      if secs=$(fetch $addr "$window"); then
        printf '%-12s %-10s %10.2f %12.1f\n' $server "$window" "$secs" \
          "$(echo "$CLIENTS * $SIZE_MIB / $secs" | bc -l)"
      else
        printf '%-12s %-10s %10s %12s\n' $server "$window" failed -
      fi
    done
  done
done
