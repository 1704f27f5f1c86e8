#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# sudo scripts/demo-qemu.sh [N]
#
# The fleet on QEMU virtual machines (N = 1..6, default 6): installs what is
# needed (scripts/install-deps.sh), builds shoal into build/, unpacks
# Debian's kernel for the agent loader (scripts/fetch-kernel.sh), then runs
# tests/e2e/test-fleet-e2e.sh with `shoalctl watch` on screen: in a private
# network namespace (bridge + taps; the host's own network is not touched),
# the real shoald network-boots BIOS and UEFI VMs (e1000, virtio-net,
# rtl8139), takes their inventory, picks their drivers, generates their
# agents, sends two images to two groups over multicast, and reboots them
# into their installed disks. At the end: shoalctl devices, the journal of
# the first device, and the times per VM.
#
# Needs root (namespaces, tap devices), 2 cores and ~300 MB of memory per VM.
# Everything the demo creates goes away when it ends (Ctrl-C included).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-6}
build=${SHOAL_BUILD:-$src/build}

if [ "$(id -u)" != 0 ]; then
  echo "demo-qemu.sh: run as root (network namespaces, tap devices): sudo $0 $n" >&2
  exit 1
fi
case $n in [1-6]) ;; *) echo "demo-qemu.sh: N must be 1..6" >&2; exit 2 ;; esac

"$src/scripts/install-deps.sh"
# the disk images' EFI system partition (until install-deps.sh lists it)
command -v mformat > /dev/null || apt-get install -y -qq --no-install-recommends mtools
"$src/scripts/build.sh" "$build"
"$src/scripts/fetch-kernel.sh" "$src/.cache" > /dev/null

export SHOAL_BUILD_ROOT=$build SHOAL_SOURCE_ROOT=$src SHOAL_E2E_PLUGIN_DIR=$build/plugins/reboot \
       SHOAL_KERNEL_CACHE=$src/.cache SHOAL_E2E_VMS=$n SHOAL_E2E_WATCH=1 SHOAL_E2E_SHOW_LOG=1
exec "$src/tests/e2e/test-fleet-e2e.sh"
