"""memlens.store."""
