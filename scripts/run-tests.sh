#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-tests.sh: installs what is needed, builds shoal and runs its whole
# test suite (core, plugins, D-Bus, network namespaces, QEMU end to end),
# then the core, plugin, D-Bus and network suites again in a build with
# AddressSanitizer (leaks included) and UndefinedBehaviorSanitizer, but for
# the tests that also assert timing figures (suite timing) (SHOAL_ASAN=0
# skips it),
# then builds every libFuzzer harness with clang and runs each for
# SHOAL_FUZZ_SECONDS (default 10) from an empty corpus, and the multicast
# unit tests of that clang build (SHOAL_FUZZ=0 skips both).
# Ends with a line "N passed, N failed".
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${SHOAL_BUILD_DIR:-$src/build}
asan_build=${SHOAL_ASAN_BUILD_DIR:-$src/build-asan}
fuzz_build=${SHOAL_FUZZ_BUILD_DIR:-$src/build-fuzz}
fuzz_log=$(mktemp)
trap 'rm -f "$fuzz_log"' EXIT
logs=()

"$src/scripts/install-deps.sh" || { echo "0 passed, 1 failed"; exit 1; }
"$src/scripts/fetch-kernel.sh" > /dev/null || echo "run-tests.sh: no kernel cache: the QEMU tests will skip" >&2
"$src/scripts/build.sh" "$build" || { echo "0 passed, 1 failed"; exit 1; }

status=0
meson test -C "$build" --print-errorlogs --num-processes "${SHOAL_TEST_JOBS:-2}" \
  ${SHOAL_TEST_ARGS:-} || status=1
logs+=("$build/meson-logs/testlog.json")

if [ "${SHOAL_ASAN:-1}" != 0 ]; then
  if "$src/scripts/build.sh" "$asan_build" -Db_sanitize=address,undefined -Db_lundef=false \
       -Dtarget_programs=disabled; then
    # sanitizer options (leak checking included): meson.build's default test setup
    meson test -C "$asan_build" --print-errorlogs --num-processes "${SHOAL_TEST_JOBS:-2}" \
      --suite core --suite plugins --suite dbus --suite net --no-suite timing || status=1
    logs+=("$asan_build/meson-logs/testlog.json")
  else
    echo "run-tests.sh: the sanitizer build failed" >&2
    status=1
  fi
fi

# the seeds of a harness (inputs that get past its first checks), kept in
# the tree: a run from an empty corpus spends its seconds finding a valid
# status line or header (the agent's HTTP reader: 132 edges in 60 s from
# nothing, 344 in 30 s from its four seeds)
fuzz_seeds () {
  case "$1" in
    agent-gpt-fuzzer) echo agent/fuzz/corpus/gpt ;;
    agent-http-fuzzer) echo agent/fuzz/corpus/http ;;
    agent-newc-fuzzer) echo agent/fuzz/corpus/newc ;;
    recipe-fuzzer) echo data/recipes ;;
    manifest-fuzzer | qcow2-fuzzer | image-source-fuzzer) echo "plugins/image-store/fuzz/corpus/${1%-fuzzer}" ;;
    pxe-dhcp-fuzzer | pxe-dhcp-server-fuzzer) echo plugins/pxe/fuzz/corpus/dhcp ;;
    pxe-tftp-fuzzer) echo plugins/pxe/fuzz/corpus/tftp ;;
    range-fuzzer) echo plugins/unicast/fuzz/corpus/range ;;
  esac
}

if [ "${SHOAL_FUZZ:-1}" != 0 ]; then
  # the wire parsers' harnesses: each must build and survive a short run
  if CC=clang "$src/scripts/build.sh" "$fuzz_build" -Dfuzzing=true; then
    # the GF(2^8) kernels' unit tests as clang compiles them: it has
    # miscompiled one (every backend must give the tables' bytes)
    meson test -C "$fuzz_build" --print-errorlogs mcast-proto mcast-wc || status=1
    logs+=("$fuzz_build/meson-logs/testlog.json")
    for fuzzer in $(find "$fuzz_build" -name '*-fuzzer' -type f -executable | sort); do
      corpus=$(mktemp -d)
      if (cd "$src" && SHOAL_SCHEMA_DIR="$src/schemas" timeout -k 10 $(( ${SHOAL_FUZZ_SECONDS:-10} + 120 )) \
            "$fuzzer" -max_total_time="${SHOAL_FUZZ_SECONDS:-10}" "$corpus" $(fuzz_seeds "$(basename "$fuzzer")") \
            > "$corpus.log" 2>&1); then
        echo "fuzz $(basename "$fuzzer") OK" | tee -a "$fuzz_log"
      else
        echo "fuzz $(basename "$fuzzer") FAIL" | tee -a "$fuzz_log"
        tail -40 "$corpus.log" >&2
        status=1
      fi
      rm -rf "$corpus" "$corpus.log"
    done
  else
    echo "run-tests.sh: the fuzzing build failed" >&2
    echo "fuzz build FAIL" >> "$fuzz_log"
    status=1
  fi
fi

python3 - "$fuzz_log" "${logs[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
with open(sys.argv[1]) as f:
    for line in f:
        if line.rstrip().endswith(" OK"):
            passed += 1
        elif line.strip():
            failed += 1
for path in sys.argv[2:]:
    with open(path) as f:
        for line in f:
            r = json.loads(line).get("result")
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
            else:
                failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit "$status"
