#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The fleet benchmark of issue 2: N simulated devices (default 10,000)
# through 4 per-device steps, a rendezvous in groups of 250 and one group
# step, driven through shoald over D-Bus exactly as an operator would.
# Prints wall time, durable step transitions per second and shoald's peak
# RSS. Every transition is durable (SQLite WAL, synchronous=FULL, group
# commit) before the next step starts.
#
# usage: bench/fleet/run.sh [BUILD_DIR] [N]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
n=${2:-10000}

if [ -z "${SHOAL_BENCH_INNER:-}" ]; then
  exec env SHOAL_BENCH_INNER=1 dbus-run-session -- "$0" "$build" "$n"
fi

work=$(mktemp -d /tmp/shoal-bench-fleet.XXXXXX)
shoald_pid=
cleanup () {
  [ -n "$shoald_pid" ] && kill "$shoald_pid" 2>/dev/null && wait "$shoald_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/shoald.conf" <<CONF
[daemon]
http-port=0
http-address=127.0.0.1
[recipes]
dir=$here/recipes
[controller]
auto-deploy=false
[pxe]
mode=off
tftp-port=0
CONF

export SHOAL_UNINSTALLED=1 SHOAL_NO_SYSTEM_PLUGINS=1 GI_TYPELIB_PATH="$build/core"
ctl () { "$build/core/ctl/shoalctl" --session "$@"; }

"$build/core/daemon/shoald" --session --state-dir "$work/state" --config "$work/shoald.conf" \
  --plugin-dir "$build/plugins" > "$work/shoald.log" 2>&1 &
shoald_pid=$!
for _ in $(seq 1 100); do
  ctl stats > /dev/null 2>&1 && break
  sleep 0.1
done

t0=$(date +%s.%N)
ctl enroll --count "$n" --prefix sim- > /dev/null
t1=$(date +%s.%N)
enroll_kb=$(awk '/VmHWM/ {print $2}' "/proc/$shoald_pid/status")
ctl assign bench-fleet --all > /dev/null
before=$(ctl stats | awk -F'[:= ]+' '/^ *transitions/ {print $NF; exit}')
t2=$(date +%s.%N)
ctl deploy --all > /dev/null

deadline=$(( $(date +%s) + 900 ))
while :; do
  stats=$(ctl stats)
  installed=$(echo "$stats" | awk -F'[:= ]+' '/installed/ {print $NF; exit}')
  failed=$(echo "$stats" | awk -F'[:= ]+' '/failed/ {print $NF; exit}')
  done_count=$(( ${installed:-0} + ${failed:-0} ))
  [ "$done_count" -ge "$n" ] && break
  if [ "$(date +%s)" -gt "$deadline" ]; then echo "bench: timed out" >&2; exit 1; fi
  sleep 0.2
done
t3=$(date +%s.%N)

stats=$(ctl stats)
transitions=$(( $(echo "$stats" | awk -F'[:= ]+' '/^ *transitions/ {print $NF; exit}') - before ))
peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$shoald_pid/status")
journal=$(sqlite3 "$work/state/shoal.db" "SELECT COUNT(*) FROM journal" 2>/dev/null || echo "?")

awk -v n="$n" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" -v tr="$transitions" \
    -v kb="$peak_kb" -v ekb="$enroll_kb" -v inst="$installed" -v fail="$failed" -v j="$journal" 'BEGIN {
  printf "devices            %d (installed %d, failed %d)\n", n, inst, fail
  printf "enroll (1 call)    %.2f s\n", t1 - t0
  printf "deploy wall time   %.2f s (deploy call to last device settled)\n", t3 - t2
  printf "durable transitions %d during the deployment (enrolment excluded), %.0f per second\n", tr, tr / (t3 - t2)
  printf "journal entries    %s\n", j
  printf "shoald peak RSS    %.1f MiB (%.1f MiB after enrolling)\n", kb / 1024, ekb / 1024
}'
