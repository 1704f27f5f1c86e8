#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# sparse-import.sh [--size GiB] [--data MiB] [--dir DIR] SHOAL_IMAGE [SHOAL_IMAGE...]
# Imports one sparse raw disk image (SIZE GiB, DATA MiB of random data in
# 64 MiB runs spread over it, holes between: a VM disk as qemu-img leaves
# it) into a fresh image store with each shoal-image binary given, in turn,
# twice each, and prints one line per import: wall and CPU seconds, and the
# image id (the same for every binary, or the manifest changed). Each
# import starts with none of the image in the page cache.
# Not a test: it measures. DIR (default /var/tmp) must keep holes (ext4,
# xfs, tmpfs do).
set -u
SIZE=8; DATA=512; DIR=/var/tmp
while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--size GiB] [--data MiB] [--dir DIR] SHOAL_IMAGE..." >&2; exit 2; }
W=$(mktemp -d "$DIR/shoal-sparse-import.XXXXXX")
trap 'rm -rf "$W"' EXIT
img=$W/disk.img
truncate -s "${SIZE}G" "$img"
runs=$((DATA / 64)); [ "$runs" -ge 1 ] || runs=1
step=$((SIZE * 1024 / runs))
for i in $(seq 0 $((runs - 1))); do
  head -c $((64 * 1048576)) /dev/urandom | dd of="$img" bs=1M seek=$((i * step)) conv=notrunc status=none
done
echo "# $(date -u) image $SIZE GiB, $((runs * 64)) MiB of data, $(du -m "$img" | cut -f1) MiB allocated, in $DIR"
for rep in 1 2; do
  for tool in "$@"; do
    rm -rf "$W/store"
    # the image's pages out of the page cache (its own only): each import
    # starts cold, as the first import of a new image does
    dd if="$img" iflag=nocache count=0 status=none
    out=$( { /usr/bin/time -f "wall=%e cpu_user=%U cpu_sys=%S" "$tool" --store "$W/store" import "$img"; } 2>&1 )
    id=$(echo "$out" | grep -o '[0-9a-f]\{64\}' | head -1)
    echo "$tool $(echo "$out" | grep -o 'wall=.*') id=${id:0:12}"
  done
done
