"""Values only: specs, results, outcomes, budgets, statistics, units and errors.

Nothing here runs a process or imports anything above it (the engine, the
renderers, pytest or the command line).
"""
