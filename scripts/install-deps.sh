#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Installs, from Debian 12's repository, everything shoal needs to build,
# to run its demo and to pass its tests (real network-boot clients, QEMU
# and its firmware, the multicast peers the benchmarks compare with).
# Run as root. Nothing is downloaded from anywhere else.
set -eu

packages="
  build-essential pkg-config meson ninja-build clang libclang-rt-14-dev gettext
  libglib2.0-dev libpeas-dev libsoup-3.0-dev libjson-glib-dev libgit2-dev
  libsqlite3-dev sqlite3 libssl-dev openssl libarchive-dev libzstd-dev zstd zlib1g-dev liblzma-dev xz-utils libbz2-dev bzip2 libisal-dev
  glib-networking ca-certificates
  libpolkit-gobject-1-dev libnorm-dev
  gobject-introspection libgirepository1.0-dev gir1.2-glib-2.0 gir1.2-peas-1.0
  python3 python3-gi python3-dev
  dbus dbus-daemon libglib2.0-bin util-linux fdisk gdisk git curl cpio kmod iproute2 nftables
  busybox-static file dnsmasq-base tftp-hpa tftpd-hpa atftp bc mtools binutils
  qemu-system-x86 qemu-utils ipxe-qemu ipxe ovmf
  udpcast uftp iperf time
"

if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: run as root (apt-get install)" >&2
  exit 1
fi

# installed and configured ("ii"): dpkg -s also succeeds for a package a
# run cut short left unpacked or half-configured, or one removed but for
# its configuration files
missing=
for p in $packages; do
  dpkg-query -W -f='${db:Status-Abbrev}\n' "$p" 2>/dev/null | grep -q '^ii' || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "install-deps.sh: everything is installed"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# finishes what an interrupted run left unconfigured (else apt-get refuses)
dpkg --configure -a
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
