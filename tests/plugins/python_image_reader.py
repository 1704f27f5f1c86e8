# SPDX-License-Identifier: LGPL-2.1-or-later
# Test fixture: a third-party transfer step that reads its recipe's image
# (Shoal.StepFlags.READS_IMAGE): Deploy checks that the image is there.

import gi

gi.require_version("Shoal", "1.0")
from gi.repository import GObject, Shoal  # noqa: E402


class ImageReaderStep(GObject.Object, Shoal.Step):
    __gtype_name__ = "ShoalTestImageReaderStep"

    def do_get_phase(self):
        return Shoal.StepPhase.TRANSFER

    def do_get_flags(self):
        return Shoal.StepFlags.READS_IMAGE

    def do_run(self, context, cancellable):
        return True
