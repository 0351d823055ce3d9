"""``python -m pytest_importcache``: the command line (see :mod:`pytest_importcache.cli.main`)."""

import sys

from .cli.main import main

sys.exit(main())
