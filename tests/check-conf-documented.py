#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""check-conf-documented.py SRCDIR: every key of shoald.conf that shoald or
a plugin reads is documented in data/shoald.conf, in its group. Prints TAP."""
import os
import re
import sys

from shoal_tap import report

src = sys.argv[1]
# g_key_file_*, the plugins' shoal_context_get_config_*, shoald's own
# shoal_daemon_config_* (self, "group", "key", ...)
read = re.compile(r'(?:get_config_\w+|g_key_file_(?:get|has)_\w+|shoal_daemon_config_\w+)\s*\([^,()]+,\s*"([a-z0-9-]+)",\s*"([a-z0-9-]+)"')
# the helpers that read one group's keys: (file, call, group)
wrappers = [("shoal-pxe-service.c", r'\bconfig \(state, "([a-z0-9-]+)"', "pxe"),
            ("shoal-daemon-recipes.c", r'\bconfig_get_string \(config, "([a-z0-9-]+)"', "recipes")]
wanted = set()
for top in ("core", "plugins"):
    for root, dirs, files in os.walk(os.path.join(src, top)):
        dirs[:] = [d for d in dirs if d not in ("tests", "fuzz", "proto", "tools")]
        for name in files:
            if name.endswith(".c"):
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    text = f.read()
                for group, key in read.findall(text):
                    wanted.add((group, key, name))
                for file, call, group in wrappers:
                    if name == file:
                        for key in re.findall(call, text):
                            wanted.add((group, key, name))

documented = set()
group = None
with open(os.path.join(src, "data", "shoald.conf"), encoding="utf-8") as f:
    for line in f:
        m = re.match(r"^\s*#?\s*\[([a-z0-9-]+)\]\s*$", line)
        if m:
            group = m.group(1)
            continue
        m = re.match(r"^#?([a-z0-9-]+)=", line)
        if m and group:
            documented.add((group, m.group(1)))

report([("[%s] %s (read in %s)" % (group, key, where), (group, key) in documented)
        for group, key, where in sorted(wanted)])
