#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# topo.sh: the multicast benchmark topology, in network namespaces only.
#   ${P}hub holds bridge br0 (mcast_snooping 0); ${P}s is the sender
#   (10.77.0.1), ${P}r1..${P}rN the receivers (10.77.0.11..). Each host
#   has a veth eth0 whose peer p-<host> sits on br0. Nothing touches
#   the root namespace.
# Usage: topo.sh up PREFIX N MTU LOSS_PERCENT RATE   (RATE: 0 or e.g. 1gbit)
#        topo.sh down PREFIX N
#        topo.sh drops PREFIX N        (sum of nft drop counters)
#        topo.sh txbytes PREFIX        (sender eth0 tx_bytes)
#        topo.sh slow PREFIX HOST RATE (limit one receiver port, e.g. 100mbit)
#        topo.sh burst PREFIX HOST LEN PERIOD PORT (HOST drops LEN packets in a
#                 row of every PERIOD from the sender to UDP PORT; counter in
#                 its table ip burst)
#        topo.sh outage PREFIX HOST SECONDS (HOST gets nothing from the sender
#                 for SECONDS, then the rule goes; counter printed)
set -e
cmd=$1; P=$2; N=$3

up() {
    mtu=$4; loss=$5; rate=$6
    ip netns add "${P}hub"
    ip -n "${P}hub" link add br0 type bridge mcast_snooping 0
    ip -n "${P}hub" link set br0 mtu "$mtu" up
    hosts="s"
    i=1; while [ "$i" -le "$N" ]; do hosts="$hosts r$i"; i=$((i + 1)); done
    for h in $hosts; do
        ip netns add "${P}$h"
        ip -n "${P}hub" link add "p-$h" mtu "$mtu" type veth peer name eth0 netns "${P}$h"
        ip -n "${P}hub" link set "p-$h" master br0 up
        ip -n "${P}$h" link set lo up
        ip -n "${P}$h" link set eth0 mtu "$mtu" up
        # a GSO super-packet is cut into packets before it leaves the
        # host, as the kernel does for a NIC without UDP segmentation
        # offload: each crosses the bridge, and the loss, alone
        ip -n "${P}$h" link set eth0 gso_max_segs 1
        if [ "$h" = s ]; then addr=10.77.0.1; else addr=10.77.0.$((10 + ${h#r})); fi
        ip -n "${P}$h" addr add "$addr/24" dev eth0
        ip -n "${P}$h" route add 224.0.0.0/4 dev eth0
        ip netns exec "${P}$h" sysctl -qw net.core.rmem_max=67108864 net.core.wmem_max=67108864 2>/dev/null || true
        if [ "$h" != s ] && [ "$loss" != 0 ]; then
            ip netns exec "${P}$h" nft -f - <<NFT
table ip loss {
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    ip saddr 10.77.0.1 numgen random mod 100000 < $((loss * 1000)) counter drop
  }
}
NFT
        fi
    done
    if [ "$rate" != 0 ]; then
        ip netns exec "${P}s" tc qdisc add dev eth0 root tbf rate "$rate" burst 256kb latency 50ms
    fi
}

down() {
    for ns in $(ip netns list | awk '{print $1}' | grep "^${P}" || true); do
        ip netns del "$ns" 2>/dev/null || true
    done
}

drops() {
    total=0
    i=1; while [ "$i" -le "$N" ]; do
        d=$(ip netns exec "${P}r$i" nft list table ip loss 2>/dev/null | sed -n 's/.*packets \([0-9]*\).*/\1/p' | head -1)
        total=$((total + ${d:-0})); i=$((i + 1))
    done
    echo "$total"
}

case "$cmd" in
    up) up "$@" ;;
    down) down ;;
    drops) drops ;;
    txbytes) ip netns exec "${P}s" cat /sys/class/net/eth0/statistics/tx_bytes ;;
    slow) ip netns exec "${P}hub" tc qdisc add dev "p-$3" root tbf rate "$4" burst 64kb latency 50ms ;;
    burst)
        # the last LEN of every PERIOD: the session's first packets (the
        # sender's announces while receivers join) get through
        ip netns exec "${P}$3" nft -f - <<NFT
table ip burst {
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    ip saddr 10.77.0.1 udp dport $6 numgen inc mod $5 >= $(($5 - $4)) counter drop
  }
}
NFT
        ;;
    outage)
        ip netns exec "${P}$3" nft -f - <<NFT
table ip outage {
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    ip saddr 10.77.0.1 counter drop
  }
}
NFT
        sleep "$4"
        ip netns exec "${P}$3" nft list table ip outage | sed -n 's/.*packets \([0-9]*\).*/\1/p'
        ip netns exec "${P}$3" nft delete table ip outage
        ;;
    *) echo "usage: $0 up|down|drops|txbytes|slow|burst|outage PREFIX ..." >&2; exit 2 ;;
esac
