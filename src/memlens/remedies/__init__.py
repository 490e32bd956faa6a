"""memlens.remedies."""
