#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-mcast-net.sh CASE SEND RECV TOPO
# One network test of the multicast tools, in namespaces joined by a bridge
# (TOPO = bench/multicast/topo.sh). Exit 0 pass, 77 skip, other fail.
# CASE: loss4 | solo | tailburst | large | forged | killed | late | slow | two | backlog | minrate | stall | narrow | many | burst | bursts | wburst | outage | outall | woutage | woutall | mtu | pathmtu | gsofallback | fanout
set -u
CASE=$1; SEND=$2; RECV=$3; TOPO=$4
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 77; }
for t in ip nft tc python3 sha256sum; do command -v $t >/dev/null || { echo "missing $t"; exit 77; }; done
P="mcnt${CASE:0:2}$$"
W=$(mktemp -d /tmp/mcast-nettest.XXXXXX)
N=4
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  "$TOPO" down "$P" "$((${nhosts:-6} > 6 ? ${nhosts:-6} : 6))"
  # KEEP_DIR=DIR: the logs and outputs are copied there (debugging)
  [ -n "${KEEP_DIR:-}" ] && cp -r "$W" "$KEEP_DIR"
  rm -rf "$W"
}
trap cleanup EXIT
# the reason again after the logs' tails: a log cut to its end keeps it
fail() { echo "FAIL: $*"; for f in "$W"/*.out "$W"/*.err; do echo "== $f"; tail -5 "$f"; done; echo "FAIL ($CASE): $*"; exit 1; }
inns() { local h=$1; shift; ip netns exec "${P}$h" "$@"; }

loss=0; case "$CASE" in loss4|many|solo) loss=5 ;; large) loss=1 ;; esac
nhosts=$N; [ "$CASE" = forged ] && nhosts=3
[ "$CASE" = many ] && nhosts=16
[ "$CASE" = fanout ] && nhosts=40
mtu=1500; case "$CASE" in mtu|pathmtu|gsofallback) mtu=9000 ;; esac
"$TOPO" up "$P" "$nhosts" "$mtu" "$loss" 0 || exit 77
head -c $((24 * 1048576 + 12345)) /dev/urandom > "$W/src"
# a sparse stretch: all-zero chunks are never sent
dd if=/dev/zero of="$W/src" bs=1M seek=4 count=3 conv=notrunc status=none
ref=$(sha256sum < "$W/src" | cut -c1-64)

nrecv=$N; rate=300; extra=()
# loss4 and killed read the source on the sender's read-ahead thread (the
# file has all-zero chunks, which that thread skips); loss4 also checks each
# chunk's SHA-256 as it reads it, as shoald's image store does. The first
# pass interleaves 2 chunks by default: loss4 interleaves 3 (its 22 chunks
# that are not all-zero end in a group of one, with the short last chunk),
# killed 4, the first session of two none (its second the default).
# The sessions repair by the window code (the tools' default at MTU 1500),
# but for the cases about Reed-Solomon blocks (--window 0): a receiver alone
# asking for source symbols (solo), bursts that blocks' parity cannot
# repair (burst, tailburst), outages timed by what a receiver has written
# (a window is written at once: outage, outall; woutage and woutall are
# outages in window mode), and a slow disk behind a
# small socket buffer that its receive loop writes (a window's chunks are
# written at once, 160 ms here: the agent writes on a thread of its own;
# backlog) or behind a two-chunk window (slowdisk, minrate; the same
# evictions in window mode: sim tests sim-window/slow-disk and
# sim-window/min-rate).
case "$CASE" in
  loss4) extra=(--verify-read --read-ahead 3 --lanes 3) ;;
  forged) nrecv=2 ;;
  solo) nrecv=1; extra=(--window 0) ;;
  late) nrecv=3; rate=100 ;;
  two) nrecv=2; extra=(--lanes 1) ;;
  killed) rate=100; extra=(--read-ahead 2 --lanes 4) ;;
  slow) "$TOPO" slow "$P" r1 100mbit; rate=600 ;;
  # (these two keep the slow disk on multicast, as slow-disk-percent 0 does)
  backlog) nrecv=2; rate=2000; extra=(--slow-ratio 0 --window 0) ;;
  minrate) nrecv=2; rate=2000; extra=(--min-mbit 1000 --slow-ratio 0 --window 0) ;;
  slowdisk) nrecv=2; extra=(--window 0) ;;
  stall) nrecv=2; extra=(--node-timeout 1000) ;;
  # narrow failed 1 run in 2 in window mode while the receivers reported
  # the first pass's loss on through the repair (REPAIR packets had no
  # loss measure): two of them evicted for loss. The first 8 MiB window
  # still goes to unicast at every receiver: about 74 % of it is lost
  # before the rate comes down, more than a solve takes
  narrow) for i in 1 2 3 4; do "$TOPO" slow "$P" r$i 100mbit; done; rate=600 ;;
  burst|bursts|wburst)
    # r1 loses packets in bursts, 12.5 % of them. burst: 1000 in a row of
    # every 8000 (40 ms outages at 300 Mbit/s), more than the parity of the
    # blocks they fall in repairs. bursts: 250 of every 2000, with the first
    # pass interleaving the 8 blocks of a group of two chunks (an option):
    # spread over them, parity alone repairs them
    nrecv=2
    # wburst: as burst, repaired by the window code (the default)
    if [ "$CASE" = burst ]; then "$TOPO" burst "$P" r1 1000 8000 6200 || exit 77; extra=(--window 0)
    elif [ "$CASE" = wburst ]; then "$TOPO" burst "$P" r1 1000 8000 6200 || exit 77
    else "$TOPO" burst "$P" r1 250 2000 6200 || exit 77; extra=(--interleave-blocks); fi
    ;;
  outage|outall) nrecv=2; extra=(--window 0) ;;
  # (200 Mbit/s: at 300 the session, 0.6 s, once ended before r1's first
  # window was seen written and the outage began)
  woutage|woutall) nrecv=2; rate=200 ;;
  tailburst)
    # r1 loses 250 packets in a row at the end of the first pass (15,213
    # DATA packets, after some tens of announces while the receivers join):
    # the pass's last symbols, then what follows, the DRAIN announces every
    # 20 ms among it
    nrecv=2; extra=(--window 0)
    "$TOPO" burst "$P" r1 250 15423 6200 || exit 77
    ;;
  mtu)
    # jumbo frames on the LAN, but r1's interface has the standard MTU
    nrecv=2; extra=(--mtu 9000)
    ip -n "${P}r1" link set eth0 mtu 1500 || exit 77
    ;;
  pathmtu)
    # r1's interface has jumbo frames, its switch port (the bridge's) not
    nrecv=2; extra=(--mtu 9000)
    ip -n "${P}hub" link set "p-r1" mtu 1500 || exit 77
    ;;
  gsofallback)
    # the sender's own interface has a smaller MTU than it is told to use:
    # the kernel refuses GSO super-packets of such packets (EMSGSIZE), the
    # sender sends them one by one (the kernel fragments them), as before
    nrecv=2; extra=(--mtu 9000)
    ip -n "${P}s" link set eth0 mtu 1500 || exit 77
    ;;
  many) nrecv=16; head -c $((8 * 1048576)) /dev/urandom > "$W/src"; ref=$(sha256sum < "$W/src" | cut -c1-64) ;;
  large)
    # an image larger than 4 GiB (OS images are): data in its first chunk,
    # around 4 GiB and in its short last chunk, holes between (never sent,
    # never allocated at the receivers)
    nrecv=2
    rm -f "$W/src"; truncate -s $((4 * 1073741824 + 1048576 + 12345)) "$W/src"
    head -c 1048576 /dev/urandom | dd of="$W/src" conv=notrunc status=none
    head -c 2000000 /dev/urandom | dd of="$W/src" bs=1M seek=4095 conv=notrunc status=none
    head -c 12345 /dev/urandom | dd of="$W/src" bs=1 seek=$((4 * 1073741824 + 1048576)) conv=notrunc status=none
    ;;
  fanout) nrecv=40; rate=1000; head -c $((8 * 1048576)) /dev/urandom > "$W/src"; ref=$(sha256sum < "$W/src" | cut -c1-64) ;;
esac
send_args=(--file "$W/src" --group 239.77.9.1 --port 6200 --iface eth0 --receivers "$nrecv" --rate-mbit "$rate"
  --manifest-out "$W/manifest" --join-out "$W/join" --join-wait 3000 --verbose "${extra[@]}")
start_send() {  # [args]
  timeout -k 3 60 ip netns exec "${P}s" "$SEND" "${send_args[@]}" "$@" > "$W/send.out" 2> "$W/send.err" &
  spid=$!
}
if [ "$CASE" = loss4 ]; then
  # a prepared session (as shoald has the manifest and the join string
  # before it starts the sender): the receivers are up first and wait
  ip netns exec "${P}s" "$SEND" "${send_args[@]}" --prepare > "$W/prepare.out" 2>&1 || fail "prepare failed"
  [ -f "$W/join" ] || fail "prepare wrote no join string"
  # a join string that names another image is refused
  h=$(sed -n 's/.*manifest=\([0-9a-f]\).*/\1/p' "$W/join")
  sed "s/manifest=$h/manifest=$([ "$h" = 0 ] && echo 1 || echo 0)/" "$W/join" > "$W/join.other"
  cmp -s "$W/join" "$W/join.other" && fail "could not make a join string of another image"
  ! ip netns exec "${P}s" "$SEND" "${send_args[@]}" --manifest "$W/manifest" --join "$W/join.other" \
    > "$W/other.out" 2>&1 || fail "a join string of another image was accepted"
  grep -q "does not name the session" "$W/other.out" || fail "no clear error for a join string of another image"
else
  start_send
  for _ in $(seq 1 100); do [ -f "$W/join" ] && break; sleep 0.05; done
  [ -f "$W/join" ] || fail "sender did not start"
fi
start_recv() {  # host node [args]
  local h=$1 node=$2; shift 2
  timeout -k 3 60 ip netns exec "${P}$h" "$RECV" --join-file "$W/join" --manifest "$W/manifest" \
    --output "$W/out.$h" --iface eth0 --node "$node" --unicast-file "$W/src" --idle-timeout 15000 --verbose "$@" \
    > "$W/recv.$h.out" 2> "$W/recv.$h.err" &
  pids+=($!)
}
check_out() {  # host
  [ "$(sha256sum < "$W/out.$1" | cut -c1-64)" = "$ref" ] || fail "output of $1 differs from the input"
}
# packets the kernel dropped from its per-CPU backlogs, on all CPUs
backlog_drops() { local n=0 a b rest; while read -r a b rest; do n=$((n + 0x$b)); done < /proc/net/softnet_stat; echo $n; }
field() { grep RESULT "$1" | grep -o "$2=[0-9]*" | cut -d= -f2; }
# r1 .. rN receive the whole session: every output is the input, the
# sender exits 0 and reports each of them complete
receivers_complete() {
  local i
  for i in $(seq 1 "$1"); do start_recv r$i $((100 + i)); done
  wait $spid; src=$?
  wait
  for i in $(seq 1 "$1"); do check_out r$i; done
  [ "$src" = 0 ] || fail "sender rc $src"
  [ "$(grep -c 'outcome=complete' "$W/send.out")" = "$1" ] || fail "not every receiver reported complete"
}
# r1 (with the receiver options given) and r2 receive the whole session;
# their outputs are checked, the sender's exit code is in $src
two_receivers() {
  start_recv r1 101 "$@"; start_recv r2 102
  wait $spid; src=$?
  wait
  check_out r1; check_out r2
}
# r1 writes to a slow disk (20 ms per 1 MiB chunk: at most 50 MB/s) from
# a 2 MiB socket buffer, r2 keeps up
slow_disk_pair() {
  two_receivers --write-delay-us 20000 --rcvbuf 2097152
}
# MiB-chunks of an output that hold data (receivers allocate the whole
# output before the session: its size on disk says nothing of progress)
written_mib() {
  python3 -c 'import sys
d = open(sys.argv[1], "rb").read(); m = 1 << 20
print(sum(1 for i in range(0, len(d), m) if d[i:i + m].count(0) != len(d[i:i + m])))' "$1" 2>/dev/null || echo 0
}
# until HOST's output holds 3 MiB of data (5 s at most)
wait_written() {
  for _ in $(seq 1 100); do
    [ -f "$W/out.$1" ] && [ "$(written_mib "$W/out.$1")" -ge 3 ] && return
    sleep 0.05
  done
}
# repair (parity + source symbols sent again) about what r1 lost ($1): not
# parity sent round and round, not a symbol queued again each time it is
# asked for
check_repair() {
  [ $((p + q)) -le $(($1 * 5 / 4)) ] || fail "$((p + q)) repair packets for $1 lost"
}

case "$CASE" in
loss4|slow)
  # r1 and r2 verify and write on their own thread, r3 and r4 inline
  for i in $(seq 1 $N); do start_recv r$i $((100 + i)) $([ "$i" -le 2 ] && echo --verify-thread); done
  if [ "$CASE" = loss4 ]; then
    # every receiver has joined (and allocated its output) before the sender starts
    for _ in $(seq 1 200); do
      [ "$(cat "$W"/recv.r*.out 2>/dev/null | grep -c '^ready')" = $N ] && break
      sleep 0.05
    done
    [ "$(cat "$W"/recv.r*.out | grep -c '^ready')" = $N ] || fail "receivers not ready"
    start_send --manifest "$W/manifest" --join "$W/join"
  fi
  wait $spid; src=$?
  wait
  for i in $(seq 1 $N); do check_out r$i; done
  if [ "$CASE" = loss4 ]; then
    [ "$src" = 0 ] || fail "sender rc $src"
    [ "$(grep -c 'outcome=complete' "$W/send.out")" = $N ] || fail "not every receiver reported complete"
    [ "$(field "$W/send.out" parity_pkts)" -gt 0 ] || fail "no FEC repair at 5% loss"
    # runs of packets of one size went out as UDP GSO super-packets (cut into
    # those packets before the sender's interface: the loss is still per packet)
    [ "$(field "$W/send.out" gso_sends)" -gt 0 ] || fail "no UDP GSO super-packet sent"
    # repair is parity that serves every receiver at once: about the largest
    # per-block loss among the 4 (~7 % of the data at 5 % loss), far from
    # the ~20 % that resending each receiver's losses would cost
    d=$(field "$W/send.out" data_pkts); p=$(field "$W/send.out" parity_pkts)
    echo "repair: $p parity packets for $d data packets, $(field "$W/send.out" nacks) NACKs"
    # every chunk came by multicast and matched its manifest hash at once
    # (the chunk hashes are computed two at a time: a wrong one would send
    # the chunk to unicast and still give a bit-exact output)
    for i in $(seq 1 $N); do
      [ "$(field "$W/recv.r$i.out" hash_fail)" = 0 ] || fail "r$i: a chunk failed its hash"
      [ "$(field "$W/recv.r$i.out" unicast_chunks)" = 0 ] || fail "r$i fetched chunks by unicast"
    done
    [ $((p * 100)) -le $((d * 10)) ] || fail "repair took $p parity packets for $d data packets (> 10 %)"
  else
    # for what it loses behind its 100 Mbit/s port
    grep -q 'node 101 .*outcome=evicted-to-unicast cause=loss ' "$W/send.out" || fail "the slow receiver was not evicted for its loss"
    [ "$(grep -c 'outcome=complete' "$W/send.out")" = 3 ] || fail "the fast receivers did not complete"
    [ "$(field "$W/recv.r1.out" unicast_chunks)" -gt 0 ] || fail "the slow receiver fetched nothing by unicast"
  fi
  ;;
forged)
  start_recv r1 101; start_recv r2 102
  session=$(sed 's/.*session=\([0-9]*\).*/\1/' "$W/join")
  # r3 is the forger: right session, well-formed packets, no key
  inns r3 python3 - "$session" <<'PY' &
import os, socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.77.0.13"))
sess = int(sys.argv[1]); end = time.time() + 3; n = 0
while time.time() < end and n < 40000:
    chunk = n % 24; esi = n % 724
    pkt = struct.pack(">BBHIIH", 0x11, 0, sess, n, chunk, esi) + os.urandom(1450) + os.urandom(8)
    s.sendto(pkt, ("239.77.9.1", 6200)); n += 1
    if n % 200 == 0: time.sleep(0.002)
PY
  pids+=($!)
  wait $spid; src=$?
  wait
  check_out r1; check_out r2
  [ "$src" = 0 ] || fail "sender rc $src"
  f=$(( $(field "$W/recv.r1.out" forged) + $(field "$W/recv.r2.out" forged) ))
  [ "$f" -gt 100 ] || fail "forged packets not counted ($f)"
  [ "$(field "$W/recv.r1.out" hash_fail)" = 0 ] || fail "a forged packet reached chunk assembly"
  echo "forged packets dropped: $f"
  ;;
killed)
  # r3, killed and restarted, verifies and writes on its own thread
  for i in $(seq 1 $N); do start_recv r$i $((100 + i)) $([ "$i" = 3 ] && echo --verify-thread); done
  # kill once r3 has written a few MiB
  wait_written r3
  # r2 dies for good; r3 dies and its agent restarts, resuming from disk
  ip netns pids "${P}r2" | xargs -r kill -9
  ip netns pids "${P}r3" | xargs -r kill -9
  sleep 0.2
  start_recv r3 103 --resume --verify-thread
  wait $spid; src=$?
  wait
  check_out r1; check_out r4; check_out r3
  [ "$src" = 1 ] || fail "sender rc $src (expected 1: one receiver failed)"
  grep -q 'node 102 .*outcome=failed' "$W/send.out" || fail "the killed receiver was not reported failed"
  [ "$(grep -c 'outcome=complete' "$W/send.out")" = 3 ] || fail "the others did not complete"
  [ "$(field "$W/recv.r3.out" resumed)" -gt 0 ] || fail "the restarted receiver resumed nothing"
  # each of the 22 chunks that hold data read once (all stay cached for
  # repairs), although the read-ahead thread (2 chunks ahead) falls behind
  # four interleaved chunks and the sending thread reads some itself
  [ "$(field "$W/send.out" chunk_reads)" = 22 ] || fail "$(field "$W/send.out" chunk_reads) chunk reads, not 22"
  ;;
late)
  for i in 1 2 3; do start_recv r$i $((100 + i)); done
  # join once the session is under way (r1 has written a few MiB)
  wait_written r1
  start_recv r4 104
  wait $spid; src=$?
  wait
  for i in 1 2 3 4; do check_out r$i; done
  [ "$(field "$W/recv.r4.out" unicast_chunks)" -gt 0 ] || fail "the late joiner fetched nothing by unicast"
  [ "$(field "$W/recv.r4.out" mcast_chunks)" -gt 0 ] || fail "the late joiner got nothing by multicast"
  grep -q 'node 104 .*outcome=complete' "$W/send.out" || fail "the late joiner was not tracked"
  ;;
burst|bursts|wburst)
  two_receivers
  [ "$src" = 0 ] || fail "sender rc $src"
  [ "$(grep -c 'outcome=complete' "$W/send.out")" = 2 ] || fail "not every receiver completed by multicast"
  dropped=$(ip netns exec "${P}r1" nft list table ip burst | sed -n 's/.*packets \([0-9]*\).*/\1/p')
  p=$(field "$W/send.out" parity_pkts); q=$(field "$W/send.out" source_resent)
  echo "r1 lost $dropped packets in bursts: $p parity, $q source symbols resent, $(field "$W/recv.r1.out" srcreqs) SRCREQs"
  [ "$(field "$W/recv.r1.out" unicast_chunks)" = 0 ] || fail "r1 fetched chunks by unicast"
  if [ "$CASE" = wburst ]; then
    # the window code repairs a window whatever part of it a burst took:
    # fresh repair symbols, no source symbol asked for by index
    [ "$(field "$W/send.out" window_chunks)" -gt 0 ] || fail "the session did not use the window code"
    [ "$(field "$W/recv.r1.out" srcreqs)" = 0 ] || fail "r1 asked for source symbols"
    [ "$q" = 0 ] || fail "the sender resent source symbols ($q)"
  elif [ "$CASE" = burst ]; then
    # the blocks a burst took more of than parity repairs came by
    # multicast, asked for by index, not by unicast after a second of NACKs
    [ "$(field "$W/recv.r1.out" srcreqs)" -gt 0 ] || fail "r1 asked for no source symbols"
    [ "$q" -gt 0 ] || fail "the sender resent no source symbols"
  else
    [ "$q" = 0 ] || fail "bursts that interleaved blocks spread were repaired by source symbols ($q)"
  fi
  check_repair "$dropped"
  ;;
tailburst)
  # r1 learns the pass is over from the DRAIN announce, which it loses
  # with everything else for 250 packets: 5 s of announces alone. Its
  # last blocks ask for repair once it has heard nothing for 50 ms after
  # the pass's last group, and the repairs that burst takes too are sent
  # again once its NACKs have said the same 'seen' for 20 ms: before, it
  # waited 15 s for its idle timeout and took its last chunk by unicast
  two_receivers
  [ "$src" = 0 ] || fail "sender rc $src"
  dropped=$(ip netns exec "${P}r1" nft list table ip burst | sed -n 's/.*packets \([0-9]*\).*/\1/p')
  d=$(grep RESULT "$W/send.out" | grep -o 'drain_s=[0-9.]*' | cut -d= -f2)
  echo "tailburst: r1 lost $dropped packets at the end of the pass; drain $d s"
  [ "$dropped" -ge 100 ] || fail "the burst took only $dropped packets"
  [ "$(grep -c 'outcome=complete' "$W/send.out")" = 2 ] || fail "not every receiver completed by multicast"
  [ "$(field "$W/recv.r1.out" unicast_chunks)" = 0 ] || fail "r1 fetched chunks by unicast"
  awk -v d="$d" 'BEGIN { exit !(d < 1.0) }' || fail "the drain took $d s"
  ;;
outage)
  # r1 gets nothing from the sender for 0.2 s once it has a few MiB (a link
  # flap): ~7 MiB of the first pass at 300 Mbit/s, whole blocks and groups
  start_recv r1 101; start_recv r2 102
  wait_written r1
  dropped=$("$TOPO" outage "$P" r1 0.2)
  wait $spid; src=$?
  wait
  check_out r1; check_out r2
  [ "$src" = 0 ] || fail "sender rc $src"
  p=$(field "$W/send.out" parity_pkts); q=$(field "$W/send.out" source_resent)
  echo "r1 lost $dropped packets in 0.2 s: $p parity, $q source symbols resent, $(field "$W/recv.r1.out" srcreqs) SRCREQs, $(field "$W/recv.r1.out" dup) duplicates"
  [ "$dropped" -gt 1000 ] || fail "the outage took only $dropped packets"
  [ "$(grep -c 'outcome=complete' "$W/send.out")" = 2 ] || fail "not every receiver completed by multicast"
  [ "$(field "$W/recv.r1.out" unicast_chunks)" = 0 ] || fail "r1 fetched chunks by unicast"
  # each lost symbol sent again about once, however often r1 asked while
  # thousands waited in the sender's queue
  check_repair "$dropped"
  [ "$(field "$W/recv.r1.out" dup)" -le $((dropped / 4)) ] || fail "r1 got $(field "$W/recv.r1.out" dup) duplicates"
  [ "$(field "$W/recv.r1.out" outages)" -ge 1 ] || fail "r1 did not see an outage"
  ;;
outall)
  # both receivers get nothing for 0.2 s (the sender's own link): an
  # outage, which they tell from congestion, so the sender does not slow
  # down for it
  start_recv r1 101; start_recv r2 102
  wait_written r1
  "$TOPO" outage "$P" r1 0.2 > "$W/lost.r1" & o1=$!
  "$TOPO" outage "$P" r2 0.2 > "$W/lost.r2" & o2=$!
  wait $o1 $o2
  wait $spid; src=$?
  wait
  check_out r1; check_out r2
  [ "$src" = 0 ] || fail "sender rc $src"
  echo "outage: r1 lost $(cat "$W/lost.r1"), r2 $(cat "$W/lost.r2"); $(field "$W/send.out" parity_pkts) parity, $(field "$W/send.out" source_resent) source symbols; rate cuts for group loss: $(field "$W/send.out" group_loss_cuts)"
  [ "$(grep -c 'outcome=complete' "$W/send.out")" = 2 ] || fail "not every receiver completed by multicast"
  for h in r1 r2; do
    [ "$(field "$W/recv.$h.out" outages)" -ge 1 ] || fail "$h did not see an outage"
    [ "$(field "$W/recv.$h.out" unicast_chunks)" = 0 ] || fail "$h fetched chunks by unicast"
  done
  [ "$(field "$W/send.out" group_loss_cuts)" = 0 ] || fail "the sender slowed down for an outage"
  ;;
woutage|woutall)
  # window mode: r1 (woutage) or both (woutall) get nothing for 0.05 s
  # once r1 has written its first window (8 MiB of the 21 that hold
  # data): about 1.25 MB of the first pass at 200 Mbit/s, which the window
  # code repairs by multicast. (A window gets at most half its symbols and
  # 64 in repair: with 0.1 s at 300 Mbit/s, 3.7 MB, the last window of six chunks went
  # to unicast 1 run in 3.) Outages are not loss: nobody is evicted and
  # the sender does not slow down
  start_recv r1 101; start_recv r2 102
  wait_written r1
  "$TOPO" outage "$P" r1 0.05 > "$W/lost.r1" & o1=$!
  o2=
  if [ "$CASE" = woutall ]; then "$TOPO" outage "$P" r2 0.05 > "$W/lost.r2" & o2=$!; fi
  wait $o1 $o2
  wait $spid; src=$?
  wait
  check_out r1; check_out r2
  [ "$src" = 0 ] || fail "sender rc $src"
  dropped=$(cat "$W/lost.r1")
  echo "$CASE: r1 lost $dropped packets in 0.05 s$([ -n "$o2" ] && echo ", r2 $(cat "$W/lost.r2")"); $(field "$W/send.out" repair_pkts) repair packets; rate cuts for group loss: $(field "$W/send.out" group_loss_cuts); r1's loss last reported $(grep 'node 101' "$W/send.out" | grep -o 'loss=[0-9]*' | cut -d= -f2) per mille"
  [ "$dropped" -gt 300 ] || fail "the outage took only $dropped packets"
  [ "$(grep -c 'outcome=complete' "$W/send.out")" = 2 ] || fail "not every receiver completed by multicast"
  for h in r1 $([ -n "$o2" ] && echo r2); do
    [ "$(field "$W/recv.$h.out" outages)" -ge 1 ] || fail "$h did not see an outage"
    [ "$(field "$W/recv.$h.out" unicast_chunks)" = 0 ] || fail "$h fetched chunks by unicast"
  done
  # the repair is about what was lost: no window repaired round and round
  [ "$(field "$W/send.out" repair_pkts)" -le $((dropped * 5 / 4 + 200)) ] ||
    fail "$(field "$W/send.out" repair_pkts) repair packets for $dropped lost"
  [ "$(field "$W/send.out" group_loss_cuts)" = 0 ] || fail "the sender slowed down for an outage"
  ;;
gsofallback)
  two_receivers
  [ "$src" = 0 ] || fail "sender rc $src"
  [ "$(field "$W/send.out" gso_refused)" = 1 ] || fail "GSO not refused"
  [ "$(field "$W/send.out" gso_sends)" = 0 ] || fail "super-packets sent"
  grep -q 'UDP GSO refused' "$W/send.err" || fail "the refusal was not logged"
  for h in r1 r2; do [ "$(field "$W/recv.$h.out" mcast_chunks)" = 22 ] || fail "$h: not every chunk by multicast"; done
  ;;
mtu|pathmtu)
  # mtu: r1 sees at its join that no packet of the session fits its
  # interface; pathmtu: only the short ones (each chunk's last symbol)
  # reach it, through its switch port. Either way it takes the image by
  # unicast without asking for any repair (it used to lose every packet,
  # ask for repair until the sender evicted it, and make it send parity
  # for nothing); r2 gets it by multicast
  two_receivers
  why=mtu; pm=1500; [ "$CASE" = pathmtu ] && why=path-mtu && pm=9000
  [ "$src" = 1 ] || fail "sender rc $src (expected 1: one receiver left for unicast)"
  grep -q "node 101 .*outcome=evicted-to-unicast cause=[a-z-]* reason=$why " "$W/send.out" || fail "r1 leaving ($why) not reported"
  grep -q 'node 102 .*outcome=complete' "$W/send.out" || fail "r2 did not complete"
  [ "$(field "$W/recv.r1.out" path_mtu)" = $pm ] || fail "r1 measured MTU $(field "$W/recv.r1.out" path_mtu)"
  [ "$(field "$W/recv.r1.out" mcast_chunks)" = 0 ] || fail "r1 took chunks by multicast"
  [ "$(field "$W/recv.r1.out" nacks)" = 0 ] || fail "r1 asked for repair"
  [ "$(field "$W/send.out" parity_pkts)" = 0 ] || fail "$(field "$W/send.out" parity_pkts) parity packets for nothing"
  ;;
two)
  # a second session (another image, another group, same port) at the same time
  head -c $((9 * 1048576 + 1)) /dev/urandom > "$W/src2"
  ref2=$(sha256sum < "$W/src2" | cut -c1-64)
  timeout -k 3 60 ip netns exec "${P}s" "$SEND" --file "$W/src2" --group 239.77.9.2 --port 6200 --iface eth0 \
    --receivers 2 --rate-mbit 300 --manifest-out "$W/manifest2" --join-out "$W/join2" --join-wait 3000 \
    > "$W/send2.out" 2> "$W/send2.err" &
  spid2=$!
  for _ in $(seq 1 100); do [ -f "$W/join2" ] && break; sleep 0.05; done
  start_recv r1 101; start_recv r2 102
  for h in r3 r4; do
    timeout -k 3 60 ip netns exec "${P}$h" "$RECV" --join-file "$W/join2" --manifest "$W/manifest2" \
      --output "$W/out.$h" --iface eth0 --node "2${h#r}" --idle-timeout 15000 > "$W/recv.$h.out" 2>&1 &
    pids+=($!)
  done
  wait $spid; src=$?
  wait $spid2; src2=$?
  wait
  check_out r1; check_out r2
  for h in r3 r4; do
    [ "$(sha256sum < "$W/out.$h" | cut -c1-64)" = "$ref2" ] || fail "session 2: output of $h differs"
  done
  [ "$src" = 0 ] && [ "$src2" = 0 ] || fail "sender rc $src / $src2"
  ;;
backlog)
  # r1 writes to a slow disk (20 ms per 1 MiB chunk: at most 50 MB/s) from a
  # 2 MiB socket buffer, the sender may send 250 MB/s: r1's queue fills, it
  # says so before the socket has to drop, and the sender slows down
  slow_disk_pair
  [ "$src" = 0 ] || fail "sender rc $src"
  [ "$(field "$W/recv.r1.out" backlog_reports)" -gt 0 ] || fail "the slow receiver never reported its backlog"
  [ "$(field "$W/send.out" backlog_signals)" -gt 0 ] || fail "the sender never slowed down for a backlog"
  # and it knows whose queue it was
  grep -q 'node 101 .* backlog=[1-9]' "$W/send.out" || fail "the slow receiver's queue reports are not counted for it"
  grep -q 'node 102 .* backlog=0' "$W/send.out" || fail "the fast receiver was counted as slow"
  # the sender went down towards what r1 drains (50 MB/s = 400 Mbit/s), far
  # under its cap: by 30 % per cut while r1's queue is under three
  # quarters full, to r1's intake at once past that. (Not its rate at the end: when r1 lost more of a block
  # than its parity can repair, as under ASan, where r1 is slow to read as
  # well, the chunk waits 1.2 s before it goes to unicast, and the rate
  # grows back by 3 % every 50 ms meanwhile.)
  low=$(grep -o 'rate now [0-9]*' "$W/send.err" | awk '{print $3}' | sort -n | head -1)
  [ -n "$low" ] && [ "$low" -lt 1200 ] || fail "the sender stayed at ${low:-its cap of 2000} Mbit/s or more"
  [ "$(field "$W/recv.r2.out" backlog_reports)" = 0 ] || echo "note: r2 reported a backlog too"
  echo "backlog: r1 reported $(field "$W/recv.r1.out" backlog_reports) times, overflow $(field "$W/recv.r1.out" overflow), rate down to $low, $(field "$W/send.out" rate_mbit) at the end (Mbit/s)"
  ;;
slowdisk)
  # r1's disk writes 5 MB/s (200 ms per 1 MiB chunk) and it holds two
  # chunks at most: the group is held to it until, 2 s on, the sender
  # evicts it by default (its disk under half the pace of the others');
  # it finishes by unicast and r2 is done in about 3.2 s (held to r1, 4.5)
  two_receivers --verify-thread --window 2 --write-delay-us 200000 --rcvbuf 2097152
  [ "$src" = 1 ] || fail "sender rc $src, not 1 (a receiver evicted)"
  grep -q 'node 101 .*outcome=evicted-to-unicast cause=slow-disk ' "$W/send.out" || fail "the slow disk was not evicted"
  grep -q 'node 102 .*outcome=complete' "$W/send.out" || fail "the fast receiver did not complete"
  [ "$(field "$W/send.out" slow_evictions)" = 1 ] || fail "not one slow-disk eviction"
  grep -q 'node 101 writes [0-9.]* MB/s, under 50 % of the others' "$W/send.err" || fail "the sender did not say why it evicted r1"
  d1=$(grep -o 'node 101 .* drain_mbs=[0-9.]*' "$W/send.out" | sed 's/.*drain_mbs=//')
  awk -v d="$d1" 'BEGIN { exit !(d > 2 && d < 8) }' || fail "r1's disk measured at $d1 MB/s, not about 5"
  [ "$(field "$W/recv.r1.out" unicast_chunks)" -gt 0 ] || fail "the slow receiver fetched nothing by unicast"
  [ "$(field "$W/recv.r2.out" unicast_chunks)" = 0 ] || fail "the fast receiver fetched chunks by unicast"
  t2=$(grep RESULT "$W/recv.r2.out" | grep -o 'mcast_s=[0-9.]*' | cut -d= -f2)
  awk -v t="$t2" 'BEGIN { exit !(t < 4.0) }' || fail "r2 took $t2 s: held to the slow disk"
  echo "slowdisk: r1 wrote $d1 MB/s, evicted with $(field "$W/recv.r1.out" unicast_chunks) chunks for unicast; r2 done in $t2 s"
  ;;
minrate)
  # r1 writes to a slow disk (at most 50 MB/s, 400 Mbit/s) as in backlog,
  # but the session is held to 1000 Mbit/s at least: r1 cannot keep up
  # with that, is evicted and finishes by unicast; r2 is not held to r1
  slow_disk_pair
  [ "$src" = 1 ] || fail "sender rc $src, not 1 (a receiver evicted)"
  grep -q 'node 101 .*outcome=evicted-to-unicast cause=min-rate ' "$W/send.out" || fail "the slow receiver was not evicted at the minimum rate"
  grep -q 'node 102 .*outcome=complete' "$W/send.out" || fail "the fast receiver did not complete"
  grep -q 'cannot keep up at the minimum rate' "$W/send.err" || fail "the sender did not say why it evicted r1"
  [ "$(field "$W/recv.r1.out" unicast_chunks)" -gt 0 ] || fail "the slow receiver fetched nothing by unicast"
  [ "$(field "$W/recv.r2.out" unicast_chunks)" = 0 ] || fail "the fast receiver fetched chunks by unicast"
  low=$(grep -o 'rate now [0-9]*' "$W/send.err" | awk '{print $3}' | sort -n | head -1)
  [ -z "$low" ] || [ "$low" -ge 999 ] || fail "the sender went down to $low Mbit/s, under its minimum"
  echo "minrate: r1 evicted with $(field "$W/recv.r1.out" unicast_chunks) chunks for unicast, lowest rate ${low:-2000} Mbit/s"
  ;;
narrow)
  # every receiver is behind a 100 Mbit/s port and the cap is 600: all of
  # them lose more than max_loss at once, which is a congested path, not
  # four slow receivers; the group slows down and stays on multicast
  for i in $(seq 1 $N); do start_recv r$i $((100 + i)); done
  wait $spid; src=$?
  wait
  for i in $(seq 1 $N); do check_out r$i; done
  [ "$src" = 0 ] || fail "sender rc $src"
  grep -q 'outcome=evicted' "$W/send.out" && fail "receivers were evicted for a congested path"
  [ "$(field "$W/send.out" group_loss_cuts)" -gt 0 ] || fail "the sender never slowed down for the group"
  # until the rate comes down some blocks lose more than their parity can
  # repair and go to unicast; most of the image still comes by multicast
  for i in $(seq 1 $N); do
    u=$(field "$W/recv.r$i.out" unicast_chunks)
    [ "$u" -le 10 ] || fail "r$i took $u of 22 chunks by unicast"
  done
  echo "narrow: $(field "$W/send.out" group_loss_cuts) cuts, rate $(field "$W/send.out" rate_mbit) Mbit/s"
  ;;
many)
  # 16 receivers losing 5 % each: nearly every one of them misses symbols
  # of every FEC block, but one NACK, overheard, silences those that need
  # as much or less. Without suppression that is 16 NACKs per block and
  # round; with a random delay alone (and one that stopped counting once
  # it had fallen due) 7 to 8 per block; now about 3
  receivers_complete 16
  d=$(field "$W/send.out" data_pkts); k=$(field "$W/send.out" nacks)
  # 1 MiB chunks at MTU 1500: 724 symbols, 4 blocks of 181
  blocks=$(( (d + 180) / 181 ))
  echo "many: $k NACKs for $blocks FEC blocks, $(field "$W/send.out" parity_pkts) parity packets"
  [ $((k * 10)) -le $((blocks * 50)) ] || fail "$k NACKs for $blocks blocks (more than 5 per block)"
  ;;
solo)
  # one receiver, 5 % loss: nobody else could use a parity symbol, so it
  # asks for the source symbols it lacks by index (the sender says so in
  # its ANNOUNCE) and they go out again, without encoding or decoding; only
  # the end of the first pass carries parity (as long before its end as
  # repair requests come after a block), sized from its reported loss, so
  # that the end of the session waits for no repair round trip
  receivers_complete 1
  p=$(field "$W/send.out" parity_pkts); q=$(field "$W/send.out" source_resent)
  dropped=$("$TOPO" drops "$P" 1)
  echo "solo: $dropped lost, $q source symbols resent, $p parity, $(field "$W/recv.r1.out" srcreqs) SRCREQs"
  [ "$(field "$W/recv.r1.out" srcreqs)" -gt 0 ] || fail "the receiver asked for no source symbol"
  [ "$q" -ge $((dropped / 2)) ] || fail "$q source symbols resent for $dropped lost"
  [ "$p" -gt 0 ] || fail "no parity with the end of the first pass"
  # repair requests come a few ms after their block: at 300 Mbit/s a few
  # blocks of 181 symbols, with 19 parity each
  [ "$p" -le 200 ] || fail "$p parity packets (more than the tail's)"
  [ "$(field "$W/recv.r1.out" nacks)" = 0 ] || fail "the receiver asked for parity"
  [ "$(field "$W/recv.r1.out" unicast_chunks)" = 0 ] || fail "chunks by unicast"
  ;;
large)
  # chunk offsets past 4 GiB, in the sender's reads and repairs (1 % loss)
  # and the receivers' writes: both outputs are the image, holes and all
  # (compared where either file has data: sha256sum would read 12 GiB)
  start_recv r1 101; start_recv r2 102
  wait $spid; src=$?
  wait
  for h in r1 r2; do
    python3 - "$W/src" "$W/out.$h" <<'PY' || fail "output of $h differs from the input"
import os, sys
a, b = (os.open(p, os.O_RDONLY) for p in sys.argv[1:3])
size = os.fstat(a).st_size
if os.fstat(b).st_size != size:
    sys.exit(1)
def extents(fd):
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        pos = end
for fd in (a, b):
    for start, end in extents(fd):
        for off in range(start, end, 1 << 20):
            n = min(1 << 20, end - off)
            if os.pread(a, n, off) != os.pread(b, n, off):
                sys.exit(1)
PY
  done
  [ "$src" = 0 ] || fail "sender rc $src"
  [ "$(grep -c 'outcome=complete' "$W/send.out")" = 2 ] || fail "not every receiver reported complete"
  d=$(field "$W/send.out" data_pkts)
  echo "large: $d data packets for $(stat -c %s "$W/src") bytes"
  # 1 + 2 + 1 data chunks (the one at 4095 MiB spills into 4096), 724
  # symbols each at most: the holes were never sent
  [ "$d" -le $((4 * 724)) ] || fail "$d data packets: the holes were sent"
  [ "$(stat -c %s "$W/out.r1")" = "$(stat -c %s "$W/src")" ] || fail "output of r1 has another size"
  ;;
fanout)
  # 40 receivers on one host's bridge (VMs on a hypervisor), no loss: the
  # bridge copies each packet to 40 ports before it passes any on, and the
  # kernel drops what exceeds its backlog (1000 packets per CPU). GSO
  # super-packets of 44 packets made 1,760 at once and lost hundreds (every
  # receiver asked for repair, some chunks went to unicast); the sender
  # keeps a super-packet to 512 / receivers packets. (The sender now sends
  # smaller batches here, about 11 packets at a time with 40 receivers
  # sharing 2 cores, so this run no longer tells the cap from no cap: it
  # checks that the kernel dropped nothing and that all 40 finish by
  # multicast.)
  d0=$(backlog_drops)
  receivers_complete 40
  d1=$(backlog_drops)
  d=$(field "$W/send.out" data_pkts); p=$(field "$W/send.out" parity_pkts); asked=0
  for i in $(seq 1 40); do
    [ "$(field "$W/recv.r$i.out" unicast_chunks)" = 0 ] || fail "r$i fetched chunks by unicast"
    [ "$(field "$W/recv.r$i.out" nacks)$(field "$W/recv.r$i.out" srcreqs)" = 00 ] || asked=$((asked + 1))
  done
  echo "fanout: $((d1 - d0)) packets dropped by the backlog, $asked receivers asked for repair, $p parity for $d data packets"
  [ "$(field "$W/send.out" gso_sends)" -gt 0 ] || fail "no GSO super-packet sent"
  [ $((d1 - d0)) = 0 ] || fail "the kernel's backlog dropped $((d1 - d0)) packets"
  # on a loaded machine (here, once in about 50 runs with a core kept busy)
  # receivers miss a few packets that neither the backlog nor their
  # sockets counted: the end of the pass then carries a parity packet per
  # block (17 and 33 seen; CI failed on it once), or up to 14 receivers
  # ask for the same few (9 parity packets, seen once in the whole suite).
  # That is not the fault this case is for, which cost thousands
  [ $((p * 100)) -le "$d" ] || fail "$p parity packets for $d data packets without loss on the wire"
  ;;
stall)
  # r1's disk stalls one write for 2.5 s; its receive thread, with two
  # chunks queued for the verify thread, waits for a slot all that time.
  # Its reports go on, so the sender (node timeout 1 s) does not count it
  # as failed
  two_receivers --verify-thread --window 2 --write-stall-ms 2500
  [ "$src" = 0 ] || fail "sender rc $src"
  grep -q 'node 101 .*outcome=complete' "$W/send.out" || fail "the stalled receiver was not complete at the sender"
  [ "$(field "$W/recv.r1.out" unicast_chunks)" = 0 ] || fail "the stalled receiver fell back to unicast"
  ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
echo "PASS $CASE"
exit 0
