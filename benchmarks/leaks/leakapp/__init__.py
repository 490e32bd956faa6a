"""A small fake service the leak scenarios exercise; leaks hide several calls deep."""
