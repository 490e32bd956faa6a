"""pytest plugin for memlens (markers: limit_memory, limit_leaks, no_leaks)."""
