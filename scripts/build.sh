#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# build.sh [BUILD_DIR] [MESON OPTIONS...]: configures (once) and builds shoal.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
[ $# -gt 0 ] && shift
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$src" "$@"
fi
ninja -C "$build" -j"${SHOAL_JOBS:-2}"
