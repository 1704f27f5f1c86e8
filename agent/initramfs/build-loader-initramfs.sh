#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# build-loader-initramfs.sh [--merged-usr] OUT LOADER RELEASE_DIR [BUSYBOX]
#
# Builds the agent loader's initramfs (newc, gzip): busybox (static) and
# its applets, /init, the udhcpc script, the static shoal-agent-loader,
# and the common NIC drivers of the kernel in RELEASE_DIR (its
# lib/modules/<release>, as scripts/fetch-kernel.sh lays it out): e1000,
# e1000e, virtio_net + virtio_pci, 8139cp, 8139too and their
# dependencies, and the common disk drivers (ahci, ata_piix, sd_mod, nvme,
# virtio_blk, virtio_scsi) so that the inventory lists the disks, with a
# modules.dep/modules.alias made by depmod for busybox modprobe.
#
# --merged-usr lays the root out as Debian 12 and most current
# distributions do: bin, sbin and lib are links to usr/bin, usr/sbin and
# usr/lib, and everything put there lands in /usr (the modules in
# usr/lib/modules); the agent the loader unpacks follows those links.
set -eu

merged_usr=
if [ "${1:-}" = --merged-usr ]; then
  merged_usr=1
  shift
fi
[ $# -ge 3 ] || { echo "usage: build-loader-initramfs.sh [--merged-usr] OUT LOADER RELEASE_DIR [BUSYBOX]" >&2; exit 2; }
out=$1
loader=$2
reldir=$3
busybox=${4:-/bin/busybox}
here=$(cd "$(dirname "$0")" && pwd)
release=$(basename "$reldir")
modules="e1000 e1000e virtio_net virtio_pci 8139cp 8139too virtio_blk virtio_scsi ahci ata_piix sd_mod nvme"

for tool in cpio gzip depmod; do
  command -v $tool >/dev/null || { echo "build-loader-initramfs: $tool is missing" >&2; exit 1; }
done
[ -f "$reldir/modules.dep" ] || { echo "build-loader-initramfs: no $reldir/modules.dep (run scripts/fetch-kernel.sh)" >&2; exit 1; }
[ -n "${SHOAL_BUSYBOX_ANY:-}" ] || command -v file >/dev/null || {
  echo "build-loader-initramfs: file is missing (it tells whether $busybox is static)" >&2; exit 1; }
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || [ -n "${SHOAL_BUSYBOX_ANY:-}" ] || {
  echo "build-loader-initramfs: $busybox is not static (install busybox-static)" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
if [ -n "$merged_usr" ]; then
  mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib"
  ln -s usr/bin "$root/bin"
  ln -s usr/sbin "$root/sbin"
  ln -s usr/lib "$root/lib"
fi
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc" "$root/proc" "$root/sys" \
         "$root/dev" "$root/tmp" "$root/run" "$root/usr/share/udhcpc" "$root/lib/modules/$release"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$here/init" "$root/init"
cp "$here/udhcpc.script" "$root/usr/share/udhcpc/default.script"
chmod 0755 "$root/init" "$root/usr/share/udhcpc/default.script"
cp "$loader" "$root/usr/sbin/shoal-agent-loader"
strip "$root/usr/sbin/shoal-agent-loader" 2>/dev/null || true

# The modules and everything modules.dep says they need
deps() {
  for m in $modules; do
    line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$reldir/modules.dep" || true)
    [ -n "$line" ] || { echo "build-loader-initramfs: kernel $release has no module $m" >&2; continue; }
    echo "$line" | tr -d ':' | tr ' ' '\n'
  done | sort -u | grep -v '^$'
}
for path in $(deps); do
  mkdir -p "$root/lib/modules/$release/$(dirname "$path")"
  cp "$reldir/$path" "$root/lib/modules/$release/$path"
done
for f in modules.builtin modules.builtin.modinfo modules.order; do
  [ -f "$reldir/$f" ] && cp "$reldir/$f" "$root/lib/modules/$release/"
done
depmod -b "$root" "$release"

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -9 -n > "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
