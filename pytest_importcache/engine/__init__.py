"""The measurement engine: copies, rounds in fresh interpreters, counts and revisions.

It builds environments and runs rounds; it never imports pytest nor the
renderers.
"""
