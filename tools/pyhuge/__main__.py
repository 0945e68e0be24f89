"""`python3 -m pyhuge` (with tools/ on sys.path): the same as tools/pyhuge.py."""
import sys

from pyhuge.cli import main

sys.exit(main())
