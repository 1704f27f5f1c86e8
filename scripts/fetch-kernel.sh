#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# fetch-kernel.sh [CACHE_DIR]
#
# Downloads Debian's kernel package (the linux-image-6.1.0-*-amd64 that
# linux-image-amd64 depends on) with apt-get download, unpacks it with
# dpkg-deb -x (nothing is installed on the host) and lays out:
#
#   CACHE_DIR/kernel/<version>/vmlinuz
#   CACHE_DIR/kernel/<version>/modules/lib/modules/<version>/{kernel/,modules.alias,modules.dep,...}
#   CACHE_DIR/kernel/current -> <version>
#
# The default CACHE_DIR is .cache/ at the top of the repository (gitignored).
# A second run finds the stamp file and returns at once.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-$here/.cache}
mkdir -p "$cache/kernel" "$cache/debs"
cache=$(cd "$cache" && pwd)

meta=${SHOAL_KERNEL_META:-linux-image-amd64}

# Fast path: a finished layout for the version already resolved
if [ -L "$cache/kernel/current" ] && [ -f "$cache/kernel/current/.done" ] && [ -z "${SHOAL_KERNEL_REFRESH:-}" ]; then
  echo "$cache/kernel/$(readlink "$cache/kernel/current")"
  exit 0
fi

pkg=$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
if [ -z "$pkg" ]; then
  echo "fetch-kernel: cannot resolve the kernel package that $meta depends on (apt-cache depends)" >&2
  exit 1
fi
ver=${pkg#linux-image-}
out=$cache/kernel/$ver

if [ -f "$out/.done" ]; then
  ln -sfn "$ver" "$cache/kernel/current"
  echo "$out"
  exit 0
fi

deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
  (cd "$cache/debs" && apt-get download "$pkg" >&2)
  deb=$(ls "$cache/debs/${pkg}_"*.deb | head -n1)
fi

tmp=$(mktemp -d "$cache/kernel/.unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp/root"

mkdir -p "$tmp/out/modules/lib/modules"
cp "$tmp/root/boot/vmlinuz-$ver" "$tmp/out/vmlinuz"
cp "$tmp/root/boot/config-$ver" "$tmp/out/config" 2>/dev/null || true
# Debian ships modules under /lib/modules (usrmerge may move it to /usr/lib)
src=$tmp/root/lib/modules/$ver
[ -d "$src" ] || src=$tmp/root/usr/lib/modules/$ver
mv "$src" "$tmp/out/modules/lib/modules/$ver"
if [ ! -f "$tmp/out/modules/lib/modules/$ver/modules.alias" ] || [ ! -f "$tmp/out/modules/lib/modules/$ver/modules.dep" ]; then
  depmod -b "$tmp/out/modules" "$ver"
fi
echo "$ver" > "$tmp/out/version"
touch "$tmp/out/.done"

rm -rf "$out"
mv "$tmp/out" "$out"
ln -sfn "$ver" "$cache/kernel/current"
echo "$out"
