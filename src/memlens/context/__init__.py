"""memlens.context."""
