# SPDX-License-Identifier: LGPL-2.1-or-later
# Test fixture: a Python plugin whose import fails.
raise ImportError("this fixture fails on purpose")
