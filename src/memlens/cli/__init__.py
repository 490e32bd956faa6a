"""Command-line faces: one thin module per command (parse, call the library, render)."""
