#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""check-gi-api.py: what a Python plugin calls of Shoal-1.0 works as the C
API does, without crashing or freeing what the library owns. Prints TAP."""
import gi

from shoal_tap import report

gi.require_version("Shoal", "1.0")
from gi.repository import GLib, Shoal  # noqa: E402

checks = []


def check(what, fn):
    try:
        ok = bool(fn())
    except Exception as e:  # a failure of the binding is a failed check
        print("# %s: %r" % (what, e))
        ok = False
    checks.append((what, ok))


# the parsers' results are out arguments, not pointers to pass in
check("step_phase_from_string", lambda: Shoal.step_phase_from_string("transfer") ==
      (True, Shoal.StepPhase.TRANSFER))
check("device_state_from_string", lambda: Shoal.device_state_from_string("installed") ==
      (True, Shoal.DeviceState.INSTALLED))
check("boot_action_from_string", lambda: Shoal.boot_action_from_string("local") ==
      (True, Shoal.BootAction.LOCAL))
check("an unknown name is refused", lambda: not Shoal.device_state_from_string("nope")[0])

device = Shoal.Device.new("d1")
other = Shoal.Device.new("d2")
ctx = Shoal.StepContext.new(None, None, "step", None, [device, other], None)

# a dropped member's reason is a copy: asking again (and the controller
# reading it afterwards) finds it intact; the binding must not take the
# context's own error as an exception to free
check("no drop reason before a drop", lambda: ctx.get_drop_reason(device) is None)
ctx.drop_device(device, GLib.Error.new_literal(Shoal.error_quark(), "disk too small", 12))
for i in range(3):
    check("drop reason, read %d" % (i + 1),
          lambda: (lambda e: e is not None and e.code == 12 and e.message == "disk too small")(
              ctx.get_drop_reason(device)))
check("the other member is not dropped", lambda: ctx.get_drop_reason(other) is None)
check("is_dropped is not bound (it returns the context's own error)",
      lambda: not hasattr(ctx, "is_dropped"))

# an absent option gives the default, None included
check("get_option_string default None", lambda: ctx.get_option_string("missing", None) is None)
check("get_option_string default", lambda: ctx.get_option_string("missing", "x") == "x")

report(checks)
