#!/usr/bin/env python3
"""pyhuge: run stock CPython with its pymalloc arenas on 2 MiB huge pages.

The launcher of the `pyhuge` command: the work is in the package pyhuge/
beside this file in a checkout, or in PACKAGE_DIR, which meson writes in when
it configures this file into the build directory and the install (see
meson.build; doc/cli.md). `pyhuge --help` lists the commands.
"""
import os
import sys

# Written in by meson when it configures this file; left as they are in a
# checkout, where the package is the pyhuge/ directory beside this file.
CONFIGURED_VERSION = "@VERSION@"
INSTALLED_LIBDIR = "@PYHUGE_LIBDIR@"
PACKAGE_DIR = "@PYHUGE_PACKAGE_DIR@"

HERE = os.path.dirname(os.path.realpath(__file__))
# No __pycache__ beside installed modules (dpkg would leave it behind on
# removal) or in a checkout.
sys.dont_write_bytecode = True
sys.path.insert(0, HERE if PACKAGE_DIR.startswith("@") else PACKAGE_DIR)

from pyhuge.cli import main  # noqa: E402  (after the path is set)

if __name__ == "__main__":
    sys.exit(main(launcher_dir=HERE, version=CONFIGURED_VERSION, libdir=INSTALLED_LIBDIR))
