# SPDX-License-Identifier: LGPL-2.1-or-later
# Test fixture: a transfer step without Shoal.StepFlags.READS_IMAGE: Deploy
# does not look for its recipe's image.

import gi

gi.require_version("Shoal", "1.0")
from gi.repository import GObject, Shoal  # noqa: E402


class ImagePlainStep(GObject.Object, Shoal.Step):
    __gtype_name__ = "ShoalTestImagePlainStep"

    def do_get_phase(self):
        return Shoal.StepPhase.TRANSFER

    def do_run(self, context, cancellable):
        return True
