#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-multicast-step.sh TEST-BINARY RECV TOPO: runs the step test inside the
# sender namespace of a 2-receiver topology it creates and deletes, with a
# second link besides: the sender's eth1 (10.78.0.1/24) to one more host,
# namespace ${P}x (eth0, 10.78.0.13/24): a group behind two interfaces.
set -u
BIN=$1; RECV=$2; TOPO=$3
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root"; exit 77; }
P="mcst$$"
trap '"$TOPO" down "$P" 2; ip netns del "${P}x" 2>/dev/null' EXIT
"$TOPO" up "$P" 2 1500 0 0 || exit 77
ip netns add "${P}x" || exit 77
ip link add "${P}sx" netns "${P}s" type veth peer name eth0 netns "${P}x" || exit 77
ip -n "${P}s" link set "${P}sx" name eth1 || exit 77
ip -n "${P}s" addr add 10.78.0.1/24 dev eth1 || exit 77
ip -n "${P}x" addr add 10.78.0.13/24 dev eth0 || exit 77
ip -n "${P}s" link set eth1 up && ip -n "${P}x" link set eth0 up && ip -n "${P}x" link set lo up || exit 77
MCAST_NS_PREFIX=$P MCAST_RECV=$RECV ip netns exec "${P}s" "$BIN"
