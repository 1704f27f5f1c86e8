#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# qcow2-import.sh [--size GiB] [--data MiB] [--dir DIR] SHOAL_IMAGE
# Measures importing a qcow2 disk image, as cloud images come, against the
# way it is done without a qcow2 reader (qemu-img convert to raw, then
# import the raw file: what Ironic's agent does with qemu-img before it
# writes), side by side, twice each, every run with the files out of the
# page cache. The disk: SIZE GiB (default 8) holding DATA MiB (default
# 1024) in 64 MiB runs spread over it, half random, half text that
# compresses (the files of /usr/share, repeated); then three qcow2 files
# made of it by qemu-img: plain, deflate-compressed (-c) and
# zstd-compressed. One line per run: wall and CPU seconds, bytes read,
# and the image id (the same on every line, or the import is wrong).
# Not a test: it measures. DIR (default /var/tmp) needs about 4 × DATA.
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
W=$(mktemp -d "$DIR/shoal-qcow2-import.XXXXXX")
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
rm -f "$raw"
echo "# $(date -u) disk $SIZE GiB holding $((runs * 64)) MiB (half random, half text), in $DIR; load $(cut -d' ' -f1 /proc/loadavg)"
for f in plain deflate zstd; do
  echo "# $f.qcow2: $(du -m "$W/$f.qcow2" | cut -f1) MiB"
done

cold () { local x; for x in "$@"; do [ -e "$x" ] && dd if="$x" iflag=nocache count=0 status=none; done; }

# prints: wall cpu (user+sys) from GNU time's output in $1
times () { echo "$1" | sed -n 's/.*wall=\([0-9.]*\) cpu_user=\([0-9.]*\) cpu_sys=\([0-9.]*\).*/wall=\1s cpu=\2+\3s/p' | tail -1; }

for rep in 1 2; do
  for f in plain deflate zstd; do
    q=$W/$f.qcow2
    # shoal reads the qcow2 file
    rm -rf "$W/store"; cold "$q"
    out=$( { /usr/bin/time -f "wall=%e cpu_user=%U cpu_sys=%S" "$tool" --store "$W/store" import --name disk "$q"; } 2>&1 )
    echo "shoal-qcow2   $f $(times "$out") id=$(echo "$out" | grep -o '[0-9a-f]\{64\}' | head -1 | cut -c1-12)"
    # the way without it: qemu-img convert to a sparse raw file, then import that
    rm -rf "$W/store" "$W/conv.raw"; cold "$q"
    t0=$(date +%s.%N)
    c=$( { /usr/bin/time -f "wall=%e cpu_user=%U cpu_sys=%S" qemu-img convert -f qcow2 -O raw "$q" "$W/conv.raw"; } 2>&1 )
    out=$( { /usr/bin/time -f "wall=%e cpu_user=%U cpu_sys=%S" "$tool" --store "$W/store" import --name disk "$W/conv.raw"; } 2>&1 )
    t1=$(date +%s.%N)
    echo "convert+raw   $f total=$(echo "$t1 - $t0" | bc | cut -c1-6)s qemu-img: $(times "$c") import: $(times "$out") id=$(echo "$out" | grep -o '[0-9a-f]\{64\}' | head -1 | cut -c1-12)"
    rm -f "$W/conv.raw"
  done
done
