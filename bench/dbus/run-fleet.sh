#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A simulated fleet deployed entirely through the D-Bus API: a private
# dbus-daemon, the shoald and shoalctl of a build tree, the sim-demo recipe.
# Prints how long enrolling and deploying took and what it cost the bus.
#
# usage: bench/dbus/run-fleet.sh [BUILD_DIR] [N_DEVICES]
#   WATCH=1               also run `shoalctl watch --until-done` (a live client)
#   PROPERTY_INTERVAL_MS  [daemon] property-interval-ms for shoald (default 100)
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
n=${2:-10000}
shoald=$build/core/daemon/shoald
shoalctl=$build/core/ctl/shoalctl
for f in "$shoald" "$shoalctl"; do
  [ -x "$f" ] || { echo "missing $f: build first" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/shoal-bench-dbus.XXXXXX)
bus_pid=
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  [ -n "$bus_pid" ] && kill -TERM "$bus_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
cpu_seconds() {  # utime + stime of a process, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

dbus-daemon --session --nofork --print-address=3 --print-pid=4 3>"$tmp/address" 4>"$tmp/bus.pid" &
for _ in $(seq 50); do [ -s "$tmp/address" ] && [ -s "$tmp/bus.pid" ] && break; sleep 0.1; done
bus_pid=$(cat "$tmp/bus.pid")
address=$(head -n1 "$tmp/address")

cat > "$tmp/shoald.conf" <<CONF
[daemon]
http-address=127.0.0.1
http-port=0
property-interval-ms=${PROPERTY_INTERVAL_MS:-100}
[recipes]
dir=$src/data/recipes
CONF

SHOAL_UNINSTALLED=1 "$shoald" --address="$address" --state-dir="$tmp/state" \
  --config="$tmp/shoald.conf" >"$tmp/shoald.log" 2>&1 &
daemon_pid=$!
ctl() { "$shoalctl" --address="$address" "$@"; }
for _ in $(seq 100); do ctl stats >/dev/null 2>&1 && break; sleep 0.1; done
bus_cpu0=$(cpu_seconds "$bus_pid")

t0=$(date +%s.%N)
ctl enroll --count "$n" --prefix sim- >/dev/null
t1=$(date +%s.%N)
ctl assign sim-demo --all >/dev/null
transitions0=$(ctl stats | awk '$1 == "transitions" { print $2 }')
ctl deploy --all >/dev/null
t2=$(date +%s.%N)
if [ "${WATCH:-0}" = 1 ]; then
  ctl watch --until-done >/dev/null
else
  # poll the daemon's own figures: no client follows every signal
  for _ in $(seq 36000); do
    left=$(ctl stats | awk '/^  (queued|booting|inventory|drivers|agent|waiting|transfer|verify|finishing) / { s += $2 } END { print s + 0 }')
    [ "$left" = 0 ] && break
    sleep 0.1
  done
fi
t3=$(date +%s.%N)

stats=$(ctl stats)
echo "$stats" > "$tmp/stats"
get() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/stats"; }
transitions=$(get transitions)
printf 'devices                 %s\n' "$n"
printf 'enroll (one call)       %s s\n' "$(calc "$t1 - $t0")"
printf 'deploy wall time        %s s\n' "$(calc "$t3 - $t2")"
printf 'step transitions        %s (%s/s)\n' "$((transitions - transitions0))" \
  "$(calc "($transitions - $transitions0) / ($t3 - $t2)")"
printf 'PropertiesChanged sent  %s (for %s property changes)\n' "$(get property-flushes)" "$(get property-changes)"
printf 'JournalEntry sent       %s\n' "$(get journal-signals)"
printf 'shoald CPU              %s s\n' "$(cpu_seconds "$daemon_pid")"
printf 'dbus-daemon CPU         %s s\n' "$(calc "$(cpu_seconds "$bus_pid") - $bus_cpu0")"
printf 'shoald peak RSS         %s\n' "$(grep '^peak-rss' "$tmp/stats" | cut -c20-)"
echo "$stats" | sed -n '/devices per state/,$p'
