"""memlens.heap."""
