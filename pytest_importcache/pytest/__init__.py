"""The pytest plugin: options, the worker role (enforces budgets), the controller role
(reports), xdist hooks, run paths, and the pytest-benchmark adapter."""
