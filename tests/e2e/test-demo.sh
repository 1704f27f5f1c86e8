#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-demo.sh SRCDIR BUILDDIR N: shoal's main job, scripts/demo.sh, on a
# bus of its own, deploys N simulated devices: every one ends installed,
# and the journal of the first (named with as many digits as N has) ends
# with the installation complete.
set -euo pipefail
src=$1 build=$2 n=$3
out=$(mktemp /tmp/shoal-demo-test.XXXXXX)
trap 'rm -f "$out"' EXIT

SHOAL_DEMO_INNER=1 SHOAL_BUILD="$build" timeout 600 dbus-run-session -- bash "$src/scripts/demo.sh" "$n" > "$out" 2>&1 || {
  echo "demo.sh failed:"; tail -30 "$out"; exit 1; }
grep -q "^$n devices: installed $n\$" "$out" || { echo "not every device installed:"; grep "devices:" "$out" | tail -3; exit 1; }
width=${#n}; [ "$width" -ge 4 ] || width=4
first=$(printf "demo-%0${width}d" 1)
sed -n "/^== journal of $first\$/,/^== figures/p" "$out" | grep -q "installation complete" || {
  echo "no journal of $first:"; grep -A3 "== journal" "$out"; exit 1; }
echo "demo: $n devices installed"
