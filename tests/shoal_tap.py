# SPDX-License-Identifier: LGPL-2.1-or-later
"""TAP output for the Python checks of tests/."""
import sys


def report(checks):
    """Prints (what, ok) pairs as TAP and exits 1 if any failed."""
    print("1..%d" % len(checks))
    failed = 0
    for i, (what, ok) in enumerate(checks, 1):
        print("%s %d %s" % ("ok" if ok else "not ok", i, what))
        failed += not ok
    sys.exit(1 if failed else 0)
