#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# faults.sh [--n N] [--size MiB] [--out FILE] [SCENARIO...]
# The fault cells of issue 7, on the benchmark topology (topo.sh; MTU 1500,
# sender behind a 1 Gbit/s tbf), shoal only. SCENARIO (default: all):
#   none   the same N receivers with no fault (the reference for the others)
#   slow   receiver 1's bridge port limited to 100 Mbit/s
#   slowdisk  receiver 1's disk writes 20 MB/s (50 ms per 1 MiB chunk, on
#          its verify thread as the agent's): evicted by default once it
#          has held the group 2 s (the sender's slow-disk rule)
#   slowdisk-wait  the same with --slow-ratio 0: the group waits for it
#   kill   receiver 1 killed (SIGKILL) a third of the way in, restarted at once
#          with --resume: it keeps what it verified, rejoins the live session
#          and takes what it missed by unicast
#   forge  a host on the bridge injects 20,000 forged DATA packets/s (right
#          session id, random payload and tag) into the group for the whole run
#   burst  receiver 1 loses 250 packets in a row of every 2000 from the sender
#          (12.5 %; 3 ms outages at 1 Gbit/s): more of a block than its
#          parity repairs (SEND_ARGS=--interleave-blocks spreads them over
#          the 8 blocks of a group)
#   longburst  1000 of every 8000: more than the 8 blocks' parity repairs;
#          receiver 1 asks for the rest by index (SRCREQ)
#   outage receiver 1 gets nothing from the sender for 0.1 s (OUTAGE_S), a
#          third of the way in (a link flap, a switch reboot)
#   outage-all  every receiver at once (the sender's own link)
#   feedback  5 % loss at every receiver, and the sender loses 30 %
#          (FEEDBACK_PCT) of what receivers send it: NACKs, SRCREQs, STATUS
# One line per scenario: every receiver's own rate (file bytes / its own
# multicast time), its outcome at the sender, chunks it took by unicast, forged
# packets it counted, and whether its output is bit-exact.
set -u
here=$(cd "$(dirname "$0")" && pwd)
N=4; SIZE=128; SCEN=""
OUT=${OUT:-/tmp/mcast-faults-$(date +%Y%m%d-%H%M%S).txt}
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) SCEN="$SCEN $1"; shift ;;
  esac
done
[ -n "$SCEN" ] || SCEN="none slow slowdisk slowdisk-wait kill forge burst longburst outage outage-all feedback"
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
BUILD=${MCAST_BUILD:-$here/../../build-mcast}
SRC=${SRC:-/dev/shm/mcast-src-${SIZE}M.bin}
. "$here/shoal-lib.sh"
[ -f "$SRC" ] && [ "$(stat -c %s "$SRC")" = $((SIZE * 1048576)) ] || head -c $((SIZE * 1048576)) /dev/urandom > "$SRC"
size=$(stat -c %s "$SRC")
ref=$(sha256sum < "$SRC" | cut -c1-64)
# a third of the file at ~110 MB/s: when kill and outage strike
third=$(echo "$size / 110000000 / 3" | bc -l)
echo "# $(date -u) $(uname -r) $(nproc) cpus; file $SIZE MiB; N=$N; $0 $*" | tee -a "$OUT"

# forged DATA packets into the group from one receiver's namespace; stops
# after $2 seconds (bounded in count and time)
forge() {
  ip netns exec "$1" timeout -k 1 "$2" python3 - "$3" <<'PY'
import os, socket, struct, sys, time
session = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.77.0.11"))
end = time.monotonic() + 60
seq = 0
while time.monotonic() < end and seq < 2_000_000:
    for _ in range(200):
        seq += 1
        chunk = seq % 128
        esi = seq % 724
        pkt = struct.pack(">BBHIIH", 0x11, 0, session, seq, chunk, esi) + os.urandom(1450 + 8)
        s.sendto(pkt, ("239.77.3.1", 6100))
    time.sleep(0.01)
PY
}

run() {
  local scen=$1 P=mcf$$ W=/dev/shm/mcf-$$ spid i line
  mkdir -p "$W"
  "$here/topo.sh" up $P "$N" 1500 "$([ "$scen" = feedback ] && echo 5 || echo 0)" 1gbit || return 1
  if [ "$scen" = feedback ]; then
    ip netns exec "${P}s" nft -f - <<NFT || return 1
table ip feedback {
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    ip saddr 10.77.0.0/24 ip saddr != 10.77.0.1 numgen random mod 100 < ${FEEDBACK_PCT:-30} counter drop
  }
}
NFT
  fi
  [ "$scen" = slow ] && "$here/topo.sh" slow $P r1 100mbit
  [ "$scen" = burst ] && { "$here/topo.sh" burst $P r1 250 2000 6100 || return 1; }
  [ "$scen" = longburst ] && { "$here/topo.sh" burst $P r1 1000 8000 6100 || return 1; }
  # as cell.sh: the session prepared, the receivers ready, then the sender
  # shellcheck disable=SC2086 # SEND_ARGS: several words
  shoal_prepare "${P}s" "$W" "$N" --rate-mbit 1000 ${SEND_ARGS:-} || return 1
  local disk=() wait_disk=()
  [ "${scen%-wait}" = slowdisk ] && disk=(--verify-thread --write-delay-us 50000)
  [ "$scen" = slowdisk-wait ] && wait_disk=(--slow-ratio 0)
  for i in $(seq 1 "$N"); do
    # shellcheck disable=SC2086 # RCV_ARGS: several words
    shoal_recv "${P}r$i" "$W" 60 "$i" "$W/recv.$i" - ${RCV_ARGS:-} $([ "$i" = 1 ] && echo "${disk[@]}")
    echo $! > "$W/pid.$i"
  done
  shoal_wait_ready "$W" "$N"
  # shellcheck disable=SC2086 # SEND_ARGS: several words
  shoal_send "${P}s" "$W" 60 "$N" --rate-mbit 1000 ${SEND_ARGS:-} "${wait_disk[@]}" --manifest "$W/manifest" --join "$W/join"
  spid=$!
  case "$scen" in
    forge)
      forge "${P}r1" 30 "$(sed -n 's/.*session=\([0-9]*\).*/\1/p' "$W/join")" &
      ;;
    outage)
      sleep "$third"
      "$here/topo.sh" outage $P r1 "${OUTAGE_S:-0.1}" > "$W/outage"
      ;;
    outage-all)
      sleep "$third"
      opids=()
      for i in $(seq 1 "$N"); do
        "$here/topo.sh" outage $P "r$i" "${OUTAGE_S:-0.1}" > "$W/outage.$i" &
        opids+=($!)
      done
      wait "${opids[@]}"
      cat "$W"/outage.* | paste -sd+ | bc > "$W/outage"
      ;;
    kill)
      sleep "$third"
      # the receiver itself, not its timeout wrapper
      pkill -KILL -P "$(cat "$W/pid.1")" 2>/dev/null || kill -KILL "$(cat "$W/pid.1")"
      sleep 0.2
      shoal_recv "${P}r1" "$W" 60 1 "$W/recv.1b" - --resume
      ;;
  esac
  wait "$spid"
  wait
  line="$scen N=$N"
  for i in $(seq 1 "$N"); do
    local r f s mb outcome
    f=$W/recv.$i; [ -f "$W/recv.${i}b" ] && f=$W/recv.${i}b
    r=$(grep RESULT "$f")
    s=$( [ -f "$W/out$i" ] && sha256sum < "$W/out$i" | cut -c1-64 || echo missing)
    mb=$(echo "$r" | sed -n 's/.*mcast_s=\([0-9.]*\).*/\1/p')
    mb=$( [ -n "$mb" ] && echo "$size / $mb / 1000000" | bc -l | xargs printf '%.1f' || echo '?')
    outcome=$(sed -n "s/^node $((100 + i)) .*outcome=\([a-z-]*\).*/\1/p" "$W/send.out")
    # an evicted receiver's multicast time is the time until its eviction
    [ "$outcome" = evicted-to-unicast ] && mb="left at $(echo "$r" | sed -n 's/.*mcast_s=\([0-9.]*\).*/\1/p') s" || mb="${mb}MB/s"
    line="$line | r$i $mb ${outcome:-?} uni=$(echo "$r" | sed -n 's/.*unicast_chunks=\([0-9]*\).*/\1/p')"
    line="$line res=$(echo "$r" | sed -n 's/.*resumed=\([0-9]*\).*/\1/p') forged=$(echo "$r" | sed -n 's/.* forged=\([0-9]*\).*/\1/p')"
    line="$line $([ "$s" = "$ref" ] && echo exact || echo WRONG)"
  done
  line="$line | sender wall=$(sed -n 's/.*data_s=\([0-9.]*\).*drain_s=\([0-9.]*\).*/data \1 s drain \2 s/p' "$W/send.out") forged=$(sed -n 's/.* forged=\([0-9]*\).*/\1/p' "$W/send.out" | tail -1)"
  line="$line parity=$(sed -n 's/.*parity_pkts=\([0-9]*\).*/\1/p' "$W/send.out") resent=$(sed -n 's/.*source_resent=\([0-9]*\).*/\1/p' "$W/send.out")"
  [ "${scen%-all}" = outage ] && line="$line lost=$(cat "$W/outage") in ${OUTAGE_S:-0.1} s"
  [ "$scen" = feedback ] && line="$line feedback_lost=$(ip netns exec "${P}s" nft list table ip feedback | sed -n 's/.*packets \([0-9]*\).*/\1/p')"
  [ "${scen%burst}" != "$scen" ] && line="$line r1_lost=$(ip netns exec "${P}r1" nft list table ip burst | sed -n 's/.*packets \([0-9]*\).*/\1/p')"
  echo "$line load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$OUT"
  "$here/topo.sh" down $P "$N"
  if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $W" >&2; else rm -rf "$W"; fi
}

for s in $SCEN; do
  run "$s"
done
echo "results in $OUT"
