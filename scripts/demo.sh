#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# demo.sh [N]: installs what is needed, builds shoal, and deploys a
# simulated fleet of N devices (default 60) with the sim-demo recipe from
# a local git repository of recipes (data/recipes), on a private D-Bus,
# with the embedded SQLite store. You watch the devices move on their own
# through boot, inventory, drivers and agent, wait at the rendezvous, then
# receive the image together, group by group.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-60}

if [ -z "${SHOAL_DEMO_INNER:-}" ]; then
  "$src/scripts/install-deps.sh"
  "$src/scripts/build.sh" "$src/build"
  exec env SHOAL_DEMO_INNER=1 dbus-run-session -- "$0" "$n"
fi

build=${SHOAL_BUILD:-$src/build}
work=$(mktemp -d /tmp/shoal-demo.XXXXXX)
shoald_pid=
cleanup () {
  if [ -n "$shoald_pid" ]; then kill "$shoald_pid" 2>/dev/null || true; wait "$shoald_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The recipes live in git: make a repository of data/recipes and let
# shoald pull it with libgit2, pinned to main.
"$src/data/recipes/make-repo.sh" "$work/recipes.git" > /dev/null

cat > "$work/shoald.conf" <<CONF
[daemon]
http-port=0
http-address=127.0.0.1
[recipes]
url=$work/recipes.git
ref=main
[controller]
auto-deploy=false
# simulated devices need no network boot service
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
  sleep 0.2
done

echo "== recipes (from git)"
ctl recipes
echo "== enrolling $n simulated devices"
ctl enroll --count "$n" --prefix demo- > /dev/null
ctl assign sim-demo --all > /dev/null
ctl deploy --all > /dev/null
ctl watch --until-done
echo "== the fleet"
ctl devices
# enroll --count numbers them with as many digits as N has, at least 4
first=$(printf "demo-%0${#n}d" 1)
[ ${#n} -ge 4 ] || first=demo-0001
echo "== journal of $first"
ctl log "$first"
echo "== figures"
ctl stats
