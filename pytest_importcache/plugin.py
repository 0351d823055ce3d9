"""pytest entry point (placeholder until the pytest surface lands)."""
