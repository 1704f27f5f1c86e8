#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Image store and unicast benchmarks (see README.md):
#  1. import throughput of a random and a half-zero image (raw, and zstd),
#  2. HTTP serving throughput on loopback: 4 concurrent curl clients fetching
#     every chunk of the image (each a quarter of them, keep-alive), then each
#     a quarter of the raw image by Range.
#
# Usage: BUILD=build-dir SIZE_MIB=1024 RUNS=3 bench/image-store/run.sh
set -eu

BUILD=${BUILD:-build}
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
CLIENTS=4
PORT=${PORT:-18733}
TOOL=$BUILD/plugins/image-store/shoal-image
SERVE=$BUILD/plugins/unicast/shoal-unicast-serve
WORK=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench-image-store.XXXXXX")
SERVER_PID=

cleanup () {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

for t in "$TOOL" "$SERVE"; do
  [ -x "$t" ] || { echo "missing $t (build first, BUILD=...)" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

echo "== $(uptime)"
echo "== images: $SIZE_MIB MiB"
head -c "${SIZE_MIB}M" /dev/urandom > "$WORK/random.img"
# half-zero: every other MiB is zeros (sparse-aware import records them only)
python3 - "$WORK/random.img" "$WORK/half-zero.img" <<'PY'
import sys
src, dst = open(sys.argv[1], 'rb'), open(sys.argv[2], 'wb')
zero = bytes(1 << 20)
i = 0
while True:
    b = src.read(1 << 20)
    if not b:
        break
    dst.write(b if i % 2 == 0 else zero[:len(b)])
    i += 1
PY
zstd -q -1 -T2 "$WORK/half-zero.img" -o "$WORK/half-zero.img.zst"
ls -l "$WORK" | sed 1d

# import FILE: prints the wall time and MB/s of image bytes, and the CPU time
# (user + system, both threads), on a fresh store each run. The stores are
# deleted only at the end: ext4 makes inode allocation right after a mass
# deletion expensive (recently_deleted), which is not what a server sees.
STORE_N=0
import () {
  for run in $(seq "$RUNS"); do
    STORE_N=$((STORE_N + 1))
    sync
    /usr/bin/time -f "%e %U %S" -o "$WORK/time" "$TOOL" --store "$WORK/store$STORE_N" import --name bench "$1" >/dev/null 2>&1
    read -r wall user sys < "$WORK/time"
    python3 -c "import sys; w,u,s=map(float,sys.argv[3:6]); print('  %-22s run %s: %6.2f s  %7.1f MB/s   cpu %5.2f s (user %.2f, sys %.2f)' % (sys.argv[1], sys.argv[2], w, $SIZE_MIB * 1048576 / 1e6 / w, u+s, u, s))" \
      "$(basename "$1")" "$run" "$wall" "$user" "$sys"
  done
}

echo "== import (fresh store, includes syncfs before the manifest)"
import "$WORK/random.img"
import "$WORK/half-zero.img"
import "$WORK/half-zero.img.zst"

echo "== import again into the same store (everything deduplicated: hashing only)"
for run in $(seq "$RUNS"); do
  /usr/bin/time -f "%e %U %S" -o "$WORK/time" "$TOOL" --store "$WORK/store1" import --name bench "$WORK/random.img" >/dev/null 2>&1
  read -r wall user sys < "$WORK/time"
  python3 -c "import sys; w,u,s=map(float,sys.argv[2:5]); print('  run %s: %6.2f s  %7.1f MB/s   cpu %5.2f s (user %.2f, sys %.2f)' % (sys.argv[1], w, $SIZE_MIB * 1048576 / 1e6 / w, u+s, u, s))" \
    "$run" "$wall" "$user" "$sys"
done

echo "== $(uptime)"
echo "== HTTP serving on loopback, $CLIENTS concurrent curl clients"
ID=$("$TOOL" --store "$WORK/store1" import --name bench "$WORK/random.img" 2>/dev/null)
"$SERVE" --store "$WORK/store1" --token bench --port "$PORT" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 50); do
  curl -s -o /dev/null -H "Authorization: Bearer bench" "http://127.0.0.1:$PORT/images/$ID/manifest" && break
  sleep 0.1
done
BASE="http://127.0.0.1:$PORT/images/$ID"
curl -s -H "Authorization: Bearer bench" "$BASE/manifest" > "$WORK/manifest"
# every bare 64-hex line is a data chunk (the image-sha256 line has its key)
grep -E '^[0-9a-f]{64}$' "$WORK/manifest" > "$WORK/chunks"
N=$(wc -l < "$WORK/chunks")
for c in $(seq 0 $((CLIENTS - 1))); do
  awk -v c="$c" -v n="$CLIENTS" -v base="$BASE" 'NR % n == c { printf "url = \"%s/chunks/%s\"\noutput = \"/dev/null\"\n", base, $1 }' \
    "$WORK/chunks" > "$WORK/client$c.cfg"
done

# serve_run FUNCTION LABEL: runs FUNCTION 0..CLIENTS-1 at once, prints rates
serve_run () {
  start=$(date +%s.%N)
  pids=
  for c in $(seq 0 $((CLIENTS - 1))); do
    "$1" "$c" &
    pids="$pids $!"
  done
  for p in $pids; do wait "$p"; done
  end=$(date +%s.%N)
  python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); b=int(sys.argv[3]); print('  %-30s %6.3f s  %7.1f MB/s total, %6.1f MB/s per client' % (sys.argv[4], s, b/1e6/s, b/1e6/s/int(sys.argv[5])))" \
    "$start" "$end" "$BYTES" "$2" "$CLIENTS"
}

chunks_client () {
  curl -s -f -H "Authorization: Bearer bench" -K "$WORK/client$1.cfg"
}
quarter_client () {
  q=$((BYTES / CLIENTS))
  curl -s -f -H "Authorization: Bearer bench" -r "$(($1 * q))-$(($1 * q + q - 1))" -o /dev/null "$BASE/raw"
}

BYTES=$((SIZE_MIB * 1048576))
for run in $(seq "$RUNS"); do
  serve_run chunks_client "chunks ($N x 1 MiB), run $run"
done
for run in $(seq "$RUNS"); do
  serve_run quarter_client "raw, a quarter each, run $run"
done
