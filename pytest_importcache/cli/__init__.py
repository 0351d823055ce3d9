"""The ``pytest-importcache`` command line."""
