#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""check-install-layout.py BUILDDIR: the files that the system bus and
polkit read are installed where they read them, whatever the prefix.

The system bus reads policies only from the folders its system.conf
includes, and polkit actions only from its actiondir; below the default
/usr/local prefix they would never be read and shoald could not own its
name. Prints TAP."""
import json
import os
import subprocess
import sys

from shoal_tap import report
import xml.etree.ElementTree as ET

build = sys.argv[1]
installed = json.loads(subprocess.run(["meson", "introspect", "--installed", build],
                                      check=True, capture_output=True, text=True).stdout)
by_name = {os.path.basename(src): dst for src, dst in installed.items()}

checks = []

system_conf = "/usr/share/dbus-1/system.conf"
if os.path.exists(system_conf):
    base = os.path.dirname(system_conf)
    dirs = [os.path.normpath(os.path.join(base, e.text.strip()))
            for e in ET.parse(system_conf).getroot().iter("includedir")]
    dst = os.path.dirname(by_name["org.shoal.Shoal1.conf"])
    checks.append(("D-Bus policy in a folder the system bus includes (%s)" % dst, dst in dirs))

try:
    services = subprocess.run(["pkg-config", "--variable=system_bus_services_dir", "dbus-1"],
                              check=True, capture_output=True, text=True).stdout.strip()
    dst = os.path.dirname(by_name["org.shoal.Shoal1.service"])
    checks.append(("D-Bus service file in %s (%s)" % (services, dst), dst == services))
except (subprocess.CalledProcessError, FileNotFoundError):
    pass

if "org.shoal.Shoal1.policy" in by_name:
    actiondir = subprocess.run(["pkg-config", "--variable=actiondir", "polkit-gobject-1"],
                               check=True, capture_output=True, text=True).stdout.strip()
    dst = os.path.dirname(by_name["org.shoal.Shoal1.policy"])
    checks.append(("polkit action in %s (%s)" % (actiondir, dst), dst == actiondir))

if not checks:
    print("1..0 # SKIP no system bus configuration here")
    sys.exit(0)
report(checks)
