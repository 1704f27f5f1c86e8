#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-multicast-step.sh TEST-BINARY RECV TOPO: runs the step test inside the
# sender namespace of a 2-receiver topology it creates and deletes.
set -u
BIN=$1; RECV=$2; TOPO=$3
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root"; exit 77; }
P="mcst$$"
trap '"$TOPO" down "$P" 2' EXIT
"$TOPO" up "$P" 2 1500 0 0 || exit 77
MCAST_NS_PREFIX=$P MCAST_RECV=$RECV ip netns exec "${P}s" "$BIN"
