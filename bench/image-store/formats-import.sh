#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# formats-import.sh [--size GiB] [--data MiB] [--dir DIR] SHOAL_IMAGE
# Measures importing a disk image as distributions publish them (qcow2
# cloud images; raw disks compressed with xz or gzip) against the way it
# is done without shoal reading the format: the format's own tool writes
# the raw disk (qemu-img convert -O raw, as Ironic's agent does before it
# writes; xz -d; gzip -d), then the raw file is imported. Side by side,
# twice each, every run with the files out of the page cache. The disk:
# SIZE GiB (default 8) holding DATA MiB (default 1024) in 64 MiB runs
# spread over it, half random, half text that compresses (the files of
# /usr/share); made of it: three qcow2 files by qemu-img (plain,
# deflate-compressed with -c, zstd-compressed), disk.raw.xz (xz -1 -T0)
# and disk.raw.gz (gzip -1). One line per run: wall and CPU seconds and
# the image id (the same on every line, or an import is wrong).
# Not a test: it measures. DIR (default /var/tmp) needs about 2 × SIZE.
set -u
SIZE=8; DATA=1024; DIR=/var/tmp
while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || { echo "usage: $0 [--size GiB] [--data MiB] [--dir DIR] SHOAL_IMAGE" >&2; exit 2; }
tool=$1
W=$(mktemp -d "$DIR/shoal-formats-import.XXXXXX")
trap 'rm -rf "$W"' EXIT

# 64 MiB of text: the files of /usr/share under 1 MiB, concatenated (and
# repeated up to 64 MiB: at most 16 doublings from 1 KiB)
find /usr/share -type f -size -1024k -print0 2>/dev/null | xargs -0 cat 2>/dev/null | head -c $((64 * 1048576)) > "$W/text"
[ "$(stat -c %s "$W/text")" -ge 1024 ] || { echo "$0: no text under /usr/share" >&2; exit 1; }
for _ in $(seq 16); do
  [ "$(stat -c %s "$W/text")" -lt $((64 * 1048576)) ] || break
  cat "$W/text" "$W/text" | head -c $((64 * 1048576)) > "$W/text2" && mv "$W/text2" "$W/text"
done
raw=$W/disk.raw
truncate -s "${SIZE}G" "$raw"
runs=$((DATA / 64)); [ "$runs" -ge 1 ] || runs=1
step=$((SIZE * 1024 / runs))
for i in $(seq 0 $((runs - 1))); do
  if [ $((i % 2)) = 0 ]; then
    head -c $((64 * 1048576)) /dev/urandom
  else
    cat "$W/text"
  fi | dd of="$raw" bs=1M seek=$((i * step)) conv=notrunc status=none
done
qemu-img convert -f raw -O qcow2 "$raw" "$W/plain.qcow2"
qemu-img convert -f raw -O qcow2 -c "$raw" "$W/deflate.qcow2"
qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd "$raw" "$W/zstd.qcow2"
xz -1 -T0 -c "$raw" > "$W/disk.raw.xz"
gzip -1 -c "$raw" > "$W/disk.raw.gz"
rm -f "$raw"
echo "# $(date -u) disk $SIZE GiB holding $((runs * 64)) MiB (half random, half text), in $DIR; load $(cut -d' ' -f1 /proc/loadavg)"
for f in plain.qcow2 deflate.qcow2 zstd.qcow2 disk.raw.xz disk.raw.gz; do
  echo "# $f: $(du -m "$W/$f" | cut -f1) MiB"
done

cold () { local x; for x in "$@"; do [ -e "$x" ] && dd if="$x" iflag=nocache count=0 status=none; done; }

# prints: wall cpu (user+sys) from GNU time's output in $1
times () { echo "$1" | sed -n 's/.*wall=\([0-9.]*\) cpu_user=\([0-9.]*\) cpu_sys=\([0-9.]*\).*/wall=\1s cpu=\2+\3s/p' | tail -1; }

# the raw disk the format's own tool writes from $1 to $2
to_raw () {
  case "$1" in
    *.qcow2) qemu-img convert -f qcow2 -O raw "$1" "$2" ;;
    *.xz) xz -d -T0 -c "$1" > "$2" ;;      # not sparse: every zero is written
    *.gz) gzip -d -c "$1" > "$2" ;;
  esac
}

for rep in 1 2; do
  for f in plain.qcow2 deflate.qcow2 zstd.qcow2 disk.raw.xz disk.raw.gz; do
    q=$W/$f
    # shoal reads the file
    rm -rf "$W/store"; cold "$q"
    out=$( { /usr/bin/time -f "wall=%e cpu_user=%U cpu_sys=%S" "$tool" --store "$W/store" import --name disk "$q"; } 2>&1 )
    printf '%-13s %-14s %s id=%s\n' shoal "$f" "$(times "$out")" "$(echo "$out" | grep -o '[0-9a-f]\{64\}' | head -1 | cut -c1-12)"
    # without it: the tool writes the raw disk, then that is imported
    rm -rf "$W/store" "$W/conv.raw"; cold "$q"
    t0=$(date +%s.%N)
    c=$( { /usr/bin/time -f "wall=%e cpu_user=%U cpu_sys=%S" bash -c "$(declare -f to_raw); to_raw '$q' '$W/conv.raw'"; } 2>&1 )
    out=$( { /usr/bin/time -f "wall=%e cpu_user=%U cpu_sys=%S" "$tool" --store "$W/store" import --name disk "$W/conv.raw"; } 2>&1 )
    t1=$(date +%s.%N)
    printf '%-13s %-14s total=%.2fs to-raw: %s import: %s id=%s\n' tool+raw "$f" "$(echo "$t1 - $t0" | bc)" \
      "$(times "$c")" "$(times "$out")" "$(echo "$out" | grep -o '[0-9a-f]\{64\}' | head -1 | cut -c1-12)"
    rm -f "$W/conv.raw"
  done
done
