"""memlens.service."""
