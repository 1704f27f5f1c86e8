# SPDX-License-Identifier: LGPL-2.1-or-later
# shoal-lib.sh: the shoal sender and receiver command lines of the benchmark,
# sourced by cell.sh and faults.sh so that both run shoal the same way.
# Needs BUILD (a build with plugins/multicast/shoal-mcast-{send,recv}) and
# SRC (the file) set by the caller. Group 239.77.3.1:6100 on eth0.

# shoal_send NETNS WORKDIR TIMEOUT_S N [sender args...]
# The sender in the background ($! is its PID), CPU time in WORKDIR/cpu.s,
# output in WORKDIR/send.{out,err}; it writes WORKDIR/{manifest,join}.
shoal_send() {
  local ns=$1 w=$2 to=$3 n=$4; shift 4
  ip netns exec "$ns" /usr/bin/time -f "%U %S" -o "$w/cpu.s" timeout -k 5 "$to" \
    "$BUILD/plugins/multicast/shoal-mcast-send" --file "$SRC" --group 239.77.3.1 --port 6100 \
    --iface eth0 --receivers "$n" --manifest-out "$w/manifest" --join-out "$w/join" "$@" \
    > "$w/send.out" 2> "$w/send.err" &
}

# shoal_prepare NETNS WORKDIR N [sender args...]
# Computes the manifest and the session's join string (WORKDIR/{manifest,join})
# and exits, as shoald does before it tells the agents to join; the
# receivers can then wait for the sender, and shoal_send with
# --manifest WORKDIR/manifest --join WORKDIR/join starts it without hashing.
shoal_prepare() {
  local ns=$1 w=$2 n=$3; shift 3
  ip netns exec "$ns" "$BUILD/plugins/multicast/shoal-mcast-send" --file "$SRC" --group 239.77.3.1 \
    --port 6100 --iface eth0 --receivers "$n" --manifest-out "$w/manifest" --join-out "$w/join" \
    --prepare "$@" > "$w/prepare.out" 2>&1
}

# shoal_wait_ready WORKDIR N: until receivers 1..N have printed "ready"
# (group joined, output allocated) in WORKDIR/recv.I (30 s at most)
shoal_wait_ready() {
  local _ i left
  for _ in $(seq 1 1500); do
    left=0
    for i in $(seq 1 "$2"); do grep -qs '^ready' "$1/recv.$i" || left=1; done
    [ $left = 0 ] && return 0
    sleep 0.02
  done
  return 1
}

# shoal_recv NETNS WORKDIR TIMEOUT_S I LOG CPUFILE|- [receiver args...]
# Receiver I (node 100+I) in the background ($! is its PID), output in
# WORKDIR/outI, its lines in LOG; with a CPUFILE it runs under
# /usr/bin/time (then $! is time's PID, not the receiver's).
shoal_recv() {
  local ns=$1 w=$2 to=$3 i=$4 log=$5 cpu=$6 wrap=(); shift 6
  [ "$cpu" != - ] && wrap=(/usr/bin/time -f "%U %S" -o "$cpu")
  ip netns exec "$ns" "${wrap[@]}" timeout -k 5 "$to" "$BUILD/plugins/multicast/shoal-mcast-recv" \
    --join-file "$w/join" --manifest "$w/manifest" --output "$w/out$i" --iface eth0 \
    --node $((100 + i)) --unicast-file "$SRC" "$@" > "$log" 2>&1 &
}
