# SPDX-License-Identifier: LGPL-2.1-or-later
"""An example shoal step written in Python.

A Python step subclasses GObject.Object and Shoal.Step and implements the
blocking ``do_run``, which shoal runs in a worker thread (the main loop
keeps serving every other device meanwhile). From a worker thread a step
may read its context, journal (context.log_literal), set its progress
(context.set_progress) and call any method of its devices: a change, such
as device.set_metadata(key, value), is made on the main loop and returns
once made, so device.get_metadata(key) gives it back at once. A
group step asks whether a member was dropped with
context.get_drop_reason(device), None if it was not.

Options: "message" (string) is journalled for the device; "fail" (bool)
makes the step fail with a Shoal error, to show how errors travel back;
"raise" (bool) raises a plain ValueError instead, to show what that gives
(the step fails "without saying why"; the traceback is in shoald's log).

Rules for Python steps (see the plugin guide in the README):
  * raise GLib.Error (not a plain exception) to fail with a message;
  * a plain exception becomes a generic plugin error;
  * if you implement do_run_async instead, make its task with
    Gio.Task.new(self, cancellable, callback) (no user data: PyGObject
    keeps it), catch everything and call task.return_error, or the step
    only ends at its recipe timeout.
"""

import gi

gi.require_version("Shoal", "1.0")
from gi.repository import GLib, GObject, Shoal  # noqa: E402


class PythonExampleStep(GObject.Object, Shoal.Step):
    __gtype_name__ = "ShoalPythonExampleStep"

    def do_get_scope(self):
        return Shoal.StepScope.DEVICE

    def do_get_phase(self):
        return Shoal.StepPhase.FINISH

    def do_validate_options(self, options):
        node = options.get_member("message")
        if node is not None and node.get_value_type() != GObject.TYPE_STRING:
            raise GLib.Error.new_literal(Shoal.error_quark(),
                                         "option “message” must be a string",
                                         Shoal.Error.INVALID_RECIPE)
        return True

    def do_run(self, context, cancellable):
        device = context.get_device()
        message = context.get_option_string("message", "hello from a Python step")
        if context.get_option_bool("raise", False):
            raise ValueError("a plain exception: its text stays in shoald's log")
        if context.get_option_bool("fail", False):
            raise GLib.Error.new_literal(Shoal.error_quark(),
                                         "the Python example step was told to fail",
                                         Shoal.Error.FAILED)
        context.log_literal(device, "python-example", Shoal.JournalResult.OK,
                            "%s (device %s)" % (message, device.get_id()))
        return True
