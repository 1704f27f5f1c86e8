#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# pxe-e2e-setup.sh OUTDIR: the boot files of the pxe QEMU test
#   OUTDIR/vmlinuz    Debian's kernel (scripts/fetch-kernel.sh: apt-get download
#                     + dpkg-deb -x into the repository's .cache; nothing installed)
#   OUTDIR/initrd.gz  busybox-static and an /init that prints a marker line and
#                     the kernel command line on ttyS0, then powers off
set -eu
out=$1
top=$(cd "$(dirname "$0")/../../.." && pwd)
mkdir -p "$out"

kdir=$("$top/scripts/fetch-kernel.sh" "${SHOAL_KERNEL_CACHE:-$top/.cache}" | tail -n1)
cp "$kdir/vmlinuz" "$out/vmlinuz"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/proc" "$root/dev"
cp "$(command -v busybox)" "$root/bin/busybox"
cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
echo "SHOAL-PXE-E2E: the kernel ran; cmdline: $(/bin/busybox cat /proc/cmdline)" > /dev/ttyS0
/bin/busybox poweroff -f
INIT
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd.gz"
echo "$out"
