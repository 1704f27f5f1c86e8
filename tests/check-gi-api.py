#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""check-gi-api.py: what a Python plugin calls of Shoal-1.0 works as the C
API does, without crashing or freeing what the library owns. Prints TAP."""
import threading

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

# a Python step runs in a worker thread: what it changes of a device is
# made on the main loop's context, notified there, and read back at once
# by the worker; the getters it calls are the copying ones
for name in ("metadata", "inventory", "instruction", "macs", "uuid", "token",
             "current_step", "recipe", "recipe_commit", "group"):
    check("get_%s is the copying shoal_device_dup_%s" % (name, name),
          lambda name=name: getattr(Shoal.Device, "get_" + name).get_symbol() ==
          "shoal_device_dup_" + name)

worker_device = Shoal.Device.new("w1")
loop = GLib.MainLoop()
notified = []
read_back = []
worker_device.connect("notify", lambda d, pspec: notified.append((pspec.name, threading.get_ident())))


def change_from_worker():
    try:
        worker_device.set_metadata("drivers", "e1000")
        read_back.append(worker_device.get_metadata("drivers"))
        worker_device.set_state(Shoal.DeviceState.TRANSFER)
        read_back.append(worker_device.get_state())
        worker_device.props.recipe = "debian"
        read_back.append(worker_device.get_recipe())
    finally:
        GLib.idle_add(loop.quit)


worker = threading.Thread(target=change_from_worker)
# the worker starts once the loop owns the context, as in shoald
GLib.idle_add(lambda: worker.start() and False)
timeout = GLib.timeout_add_seconds(20, loop.quit)
loop.run()
GLib.source_remove(timeout)
worker.join()
# a notification the worker's props setter released last
while GLib.MainContext.default().iteration(False):
    pass
check("a worker reads back what it changed",
      lambda: read_back == ["e1000", Shoal.DeviceState.TRANSFER, "debian"])
check("notifications of a worker's changes come on the main thread",
      lambda: sorted(n for n, _ in notified) == ["recipe", "state"] and
      all(t == threading.main_thread().ident for _, t in notified))

report(checks)
