#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# cell.sh TOOL N LOSS_PERCENT RATE MTU [extra tool args...]
# One benchmark cell in a fresh topology (topo.sh); prints one result line:
#   tool N loss rate mtu ok wall MB/s-per-rcv egress/file sender-cpu rcv-cpu-avg drops notes
# TOOL: shoal | shoal-4m (shoal on an image of 4 MiB chunks, the README's setting for
#       jumbo-frame LANs) | shoal-rs (shoal with Reed-Solomon blocks, --window 0: the
#       repair the window code replaced by default) | udpcast | uftp | iperf (the limit line) | norm
# Environment: SRC (the file, default /dev/shm/mcast-src.bin), MCAST_BUILD (build dir
# with plugins/multicast/shoal-mcast-{send,recv}), TIMEOUT (s, default 120), KEEP=1 keeps logs.
set -u
here=$(cd "$(dirname "$0")" && pwd)
TOOL=$1; N=$2; LOSS=$3; RATE=$4; MTU=$5; shift 5
EXTRA=("$@")
SRC=${SRC:-/dev/shm/mcast-src.bin}
BUILD=${MCAST_BUILD:-$here/../../build-mcast}
. "$here/shoal-lib.sh"
TO=${TIMEOUT:-120}
P=mcb$$
W=/dev/shm/mcb-$$
mkdir -p "$W"
cleanup() {
  "$here/topo.sh" down $P "$N"
  if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
"$here/topo.sh" up $P "$N" "$MTU" "$LOSS" "$RATE" || exit 1
size=$(stat -c %s "$SRC")
ref=$(sha256sum < "$SRC" | cut -c1-64)
hosts() { seq 1 "$N"; }
inns() { local h=$1; shift; ip netns exec "${P}$h" "$@"; }
cputime() { awk '{print $1}' "$1" 2>/dev/null; }
notes=""

# Like the other tools, the receivers are up and waiting when the clock
# starts (the session's join string comes from a prepare step, as shoald
# hands it to the agents before it starts the sender); the clock runs from
# the sender's start to its exit.
run_shoal() {
  local spid
  shoal_prepare "${P}s" "$W" "$N" --mtu "$MTU" "${EXTRA[@]}" || { RC=2; T0=0; T1=0; notes="prepare failed"; return; }
  for i in $(hosts); do
    # shellcheck disable=SC2086 # RCV_ARGS: several words
    shoal_recv "${P}r$i" "$W" "$TO" "$i" "$W/recv.$i" "$W/cpu.$i" ${RCV_ARGS:-}
  done
  shoal_wait_ready "$W" "$N" || notes="receivers not ready;"
  T0=$(date +%s.%N)
  shoal_send "${P}s" "$W" "$TO" "$N" --mtu "$MTU" "${EXTRA[@]}" --manifest "$W/manifest" --join "$W/join"
  spid=$!
  wait $spid; RC=$?
  T1=$(date +%s.%N)
  wait
  local r; r=$(grep RESULT "$W/send.out")
  # a field of the receivers' RESULT lines, summed over them
  rsum() { cat "$W"/recv.* | grep -o " $1=[0-9]*" | cut -d= -f2 | paste -sd+ | bc; }
  notes="${notes}rc=$RC $(echo "$r" | grep -o 'parity_pkts=[0-9]*') $(echo "$r" | grep -o 'nacks=[0-9]*') $(echo "$r" | grep -o 'setup_s=[0-9.]*') unicast=$(rsum unicast_chunks) nack_entries=$(rsum nack_entries) retry_entries=$(rsum nack_retries)"
}

run_udpcast() {
  for i in $(hosts); do
    inns r$i /usr/bin/time -f "%U %S" -o "$W/cpu.$i" timeout -k 5 "$TO" udp-receiver --interface eth0 \
      --portbase 9000 --mcast-rdv-address 239.77.0.1 --nokbd --file "$W/out$i" > "$W/recv.$i" 2>&1 &
  done
  sleep 0.3
  T0=$(date +%s.%N)
  inns s /usr/bin/time -f "%U %S" -o "$W/cpu.s" timeout -k 5 "$TO" udp-sender --interface eth0 --portbase 9000 \
    --mcast-rdv-address 239.77.0.1 --nokbd --mcast-data-address 239.77.0.2 --file "$SRC" \
    --min-receivers "$N" --max-wait 30 --nopointopoint --blocksize $((MTU - 28 - 16)) "${EXTRA[@]}" > "$W/send.out" 2>&1
  RC=$?
  wait
  T1=$(date +%s.%N)
  notes="rc=$RC"
}

run_uftp() {
  local ids=""
  for i in $(hosts); do
    mkdir -p "$W/d$i"
    inns r$i /usr/bin/time -f "%U %S" -o "$W/cpu.$i" timeout -k 5 "$TO" uftpd -d -q -x 1 -I eth0 \
      -M 239.77.1.1 -U "0x0000000$(printf %x $i)" -D "$W/d$i" -L "$W/uftpd.$i.log" > "$W/recv.$i" 2>&1 &
    ids="$ids${ids:+,}0x$(printf %08x $i)"
  done
  sleep 0.5
  T0=$(date +%s.%N)
  inns s /usr/bin/time -f "%U %S" -o "$W/cpu.s" timeout -k 5 "$TO" uftp -I eth0 -M 239.77.1.1 -P 239.77.1.2 \
    -H "$ids" -x 2 -R -1 -b $((MTU - 28 - 200)) "${EXTRA[@]}" "$SRC" > "$W/send.out" 2>&1
  RC=$?
  T1=$(date +%s.%N)
  sleep 0.3
  for i in $(hosts); do
    mv "$W/d$i/$(basename "$SRC")" "$W/out$i" 2>/dev/null
  done
  # uftpd daemons do not exit by themselves: stop the ones this cell started
  for i in $(hosts); do
    for pid in $(ip netns pids "${P}r$i"); do
      [ "$(cat /proc/$pid/comm 2>/dev/null)" = uftpd ] && kill "$pid" 2>/dev/null
    done
  done
  wait
  notes="rc=$RC"
}

run_iperf() {
  local len=$((MTU - 28))
  for i in $(hosts); do
    inns r$i timeout -k 2 12 iperf -s -u -B 239.77.4.1 -l "$len" -i 1 > "$W/recv.$i" 2>&1 &
  done
  sleep 0.5
  T0=$(date +%s.%N)
  inns s /usr/bin/time -f "%U %S" -o "$W/cpu.s" timeout -k 2 12 iperf -c 239.77.4.1 -u -b 20G -T 4 -t 5 \
    -l "$len" > "$W/send.out" 2>&1
  RC=$?
  T1=$(date +%s.%N)
  sleep 1
  for i in $(hosts); do ip netns pids "${P}r$i" | xargs -r kill 2>/dev/null; done
  wait
}

tx0=$("$here/topo.sh" txbytes $P)
RC=0
case "$TOOL" in
  shoal) run_shoal ;;
  shoal-4m) EXTRA+=(--chunk-size 4194304); run_shoal ;;
  shoal-rs) EXTRA+=(--window 0); run_shoal ;;
  udpcast) run_udpcast ;;
  uftp) run_uftp ;;
  iperf) run_iperf ;;
  *) echo "unknown tool $TOOL" >&2; exit 2 ;;
esac
tx1=$("$here/topo.sh" txbytes $P)
drops=$("$here/topo.sh" drops $P "$N")
wall=$(echo "$T1 - $T0" | bc -l)
scpu=$(tail -1 "$W/cpu.s" 2>/dev/null | awk '{printf "%.2f", $1 + $2}')
if [ "$TOOL" = iperf ]; then
  # per-receiver MB/s from the iperf server reports (bytes received / duration)
  rates=$(for i in $(hosts); do
            grep -E '0\.0+-[0-9.]+ sec .*Bytes' "$W/recv.$i" | tail -1 | awk '{split($3, t, "-"); d = t[2]; for(i=1;i<=NF;i++) if($i ~ /Bytes$/){v=$(i-1); u=$i; if(u=="GBytes")v*=1024; if(u=="KBytes")v/=1024; if (d > 0) print v*1048576/1e6/d} }' ; done)
  avg=$(echo "$rates" | awk '{s+=$1; n++} END {if(n) printf "%.1f", s/n; else print "0"}')
  printf '%-7s N=%-2s loss=%s%% rate=%-5s mtu=%-4s ok=-    wall=%6.2fs MB/s/rcv=%6s egress/file=-     cpu_s=%s cpu_r=-    drops=%s %s file=%sM\n' \
    iperf "$N" "$LOSS" "$RATE" "$MTU" "$wall" "$avg" "$scpu" "$drops" "limit-line" $((size / 1048576))
  exit 0
fi
ok=0; sums=""
rcpu=0
for i in $(hosts); do
  s=$( [ -f "$W/out$i" ] && sha256sum < "$W/out$i" | cut -c1-64 || echo missing)
  [ "$s" = "$ref" ] && ok=$((ok + 1))
  sums="$sums ${s:0:8}"
  c=$(tail -1 "$W/cpu.$i" 2>/dev/null | awk '{printf "%.2f", $1 + $2}'); rcpu=$(echo "$rcpu + ${c:-0}" | bc -l)
done
printf '%-7s N=%-2s loss=%s%% rate=%-5s mtu=%-4s ok=%s/%s wall=%6.2fs MB/s/rcv=%6.1f egress/file=%.4f cpu_s=%s cpu_r=%.2f drops=%s %s sha256[%s ] ref=%s file=%sM\n' \
  "$TOOL" "$N" "$LOSS" "$RATE" "$MTU" "$ok" "$N" "$wall" "$(echo "$size / $wall / 1000000" | bc -l)" \
  "$(echo "($tx1 - $tx0) / $size" | bc -l)" "${scpu:-?}" "$(echo "$rcpu / $N" | bc -l)" "$drops" "$notes" "$sums" "${ref:0:8}" $((size / 1048576))
