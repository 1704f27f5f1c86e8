#!/bin/bash
# bench/store/startup.sh: how long shoald's store takes to start, and to
# make its first write durable, as the journals' history grows; the store
# code before the background trimming (old) against the work tree's (new).
#
# For each size in ROWS (default "0 2000000 12000000" journal entries,
# spread over DEVICES=2000 installed devices, about 150 bytes each) it
# makes one store with the old code and sqlite3 (a recursive CTE), then
# opens it with each version, journal-keep 10000 (nothing to trim: the
# cost is finding that out), and prints the seconds from the start until
# the devices and journals are loaded (shoald answers D-Bus then) and
# until the first write is durable. KEEP_LOW_ROWS (default 2000000) also
# opens a copy of that size with journal-keep 100 with each version (all
# but 100 entries a journal to delete; "pass" is when new's background
# trimming and vacuum are over) and prints the file's size after.
#
# Usage: bench/store/startup.sh   (ROWS=... DEVICES=... KEEP_LOW_ROWS=...
#   VARIANTS="old new" OLD_REV=...)
# Needs cc, pkg-config, glib and sqlite3 headers and the sqlite3 shell;
# writes its stores in a temporary folder (TMPDIR; about 2 GB for 12 M
# entries) removed at the end; about 1.5 minutes on 2 cores.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
ROWS=${ROWS:-"0 2000000 12000000"}
DEVICES=${DEVICES:-2000}
KEEP_LOW_ROWS=${KEEP_LOW_ROWS:-2000000}
VARIANTS=${VARIANTS:-"old new"}
# the commit before the one that made the trimming a background pass
OLD_REV=${OLD_REV:-$(git -C "$src" log -1 --format=%H -S maintenance_step -- core/shoal-store.c)^}

work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench-store-XXXXXX")
trap 'rm -rf "$work"' EXIT

# build VARIANT: startup-bench against that version of the store
build () {
  local variant=$1 dir=$work/$1 flags=()

  mkdir -p "$dir"
  if [ "$variant" = old ]; then
    git -C "$src" show "$OLD_REV:core/shoal-store.c" > "$dir/shoal-store.c"
    git -C "$src" show "$OLD_REV:core/shoal-store-private.h" > "$dir/shoal-store-private.h"
  else
    cp "$src/core/shoal-store.c" "$src/core/shoal-store-private.h" "$dir/"
    flags=(-DHAVE_STORE_STATS)
  fi
  cp "$src"/core/shoal-journal-entry.[ch] "$src"/core/shoal-error.[ch] "$dir/"
  printf '#define GETTEXT_PACKAGE "shoal"\n' > "$dir/config.h"
  # shellcheck disable=SC2046
  cc -O2 -I"$dir" "${flags[@]}" -DG_LOG_DOMAIN='"Shoal"' -o "$dir/startup-bench" \
     "$src/bench/store/startup-bench.c" "$dir"/shoal-store.c "$dir"/shoal-journal-entry.c \
     "$dir"/shoal-error.c $(pkg-config --cflags --libs gio-2.0 sqlite3)
}

# make_store DB ROWS: DEVICES devices by the old code, ROWS journal entries
make_store () {
  local db=$1 rows=$2 per=$(( $2 / DEVICES ))

  "$work/old/startup-bench" init "$db" "$DEVICES"
  [ "$rows" -gt 0 ] || return 0
  sqlite3 "$db" >/dev/null <<SQL
PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA cache_size=-200000;
WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < $DEVICES - 1),
     s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $per)
INSERT INTO journal SELECT printf('dev-%04d', n), i, 1700000000000000 + i * 1000000,
  'controller', 'step', 'ok',
  printf('step %d of run %d finished: 1048576 bytes written to /dev/sda in 4.2 s, sha256 verified', i % 17, i / 17)
FROM d, s;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
  sync "$db"      # no writeback of it left for the first fsync to wait for
}

size () { du -m --apparent-size "$1" | cut -f1; }

build old
build new
printf '%-10s %-5s %-4s %9s %13s %8s %9s\n' rows keep code loaded_s first_write_s pass_s file_MiB
for rows in $ROWS; do
  db=$work/s-$rows.db
  make_store "$db" "$rows"
  # each from the store as the old code left it
  if [ "$rows" = "$KEEP_LOW_ROWS" ]; then
    for variant in $VARIANTS; do
      cp "$db" "$work/low.db"
      sync "$work/low.db"
      read -r load write pass < <("$work/$variant/startup-bench" run "$work/low.db" 100 2>/dev/null)
      printf '%-10s %-5s %-4s %9s %13s %8s %9s\n' "$rows" 100 "$variant" "$load" "$write" "$pass" "$(size "$work/low.db")"
      rm -f "$work"/low.db*
    done
  fi
  # new last: it may convert a small store (VACUUM) and shrink it
  for variant in $VARIANTS; do
    read -r load write pass < <("$work/$variant/startup-bench" run "$db" 10000 2>/dev/null)
    printf '%-10s %-5s %-4s %9s %13s %8s %9s\n' "$rows" 10000 "$variant" "$load" "$write" "$pass" "$(size "$db")"
  done
  rm -f "$db"*
done
