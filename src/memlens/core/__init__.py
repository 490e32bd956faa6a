"""memlens.core."""
