#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-tests.sh: installs what is needed, builds shoal and runs its whole
# test suite (core, plugins, D-Bus, network namespaces, QEMU end to end).
# Ends with a line "N passed, N failed".
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${SHOAL_BUILD_DIR:-$src/build}

"$src/scripts/install-deps.sh" || exit 1
"$src/scripts/fetch-kernel.sh" > /dev/null || echo "run-tests.sh: no kernel cache: the QEMU tests will skip" >&2
"$src/scripts/build.sh" "$build" || { echo "0 passed, 1 failed"; exit 1; }

meson test -C "$build" --print-errorlogs --num-processes "${SHOAL_TEST_JOBS:-2}" \
  ${SHOAL_TEST_ARGS:-} 2>&1 | tee "$build/test-output.txt"
status=${PIPESTATUS[0]}

python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
with open(sys.argv[1]) as f:
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
