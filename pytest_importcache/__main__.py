"""``python -m pytest_importcache``: the command line (see :mod:`pytest_importcache.cli`)."""

import sys

from .cli import main

sys.exit(main())
