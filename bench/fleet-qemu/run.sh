#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# sudo bench/fleet-qemu/run.sh [BUILD_DIR] [N...]
#
# Runs the end-to-end QEMU fleet (tests/e2e/test-fleet-e2e.sh) once for
# each fleet size N (default 1 3 6) and prints, per VM, the seconds from
# power-on to each step (from the device's journal) and to the installed
# disk's boot, and per run the fleet time. SHOAL_E2E_IMAGE_MIB sets the
# image size (default 8). Results are appended to bench/fleet-qemu/results.txt.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
[ $# -gt 0 ] && shift
sizes=${*:-1 3 6}
out=$src/bench/fleet-qemu/results.txt

export SHOAL_BUILD_ROOT=$build SHOAL_SOURCE_ROOT=$src SHOAL_E2E_PLUGIN_DIR=$build/plugins/reboot \
       SHOAL_KERNEL_CACHE=$src/.cache SHOAL_E2E_FIGURES=$out
echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), image ${SHOAL_E2E_IMAGE_MIB:-8} MiB" >> "$out"
for n in $sizes; do
  SHOAL_E2E_VMS=$n "$src/tests/e2e/test-fleet-e2e.sh" | grep -E '^# (vms=|fleet|PASS)|^FAIL'
done
