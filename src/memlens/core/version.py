"""The package version, in the ground floor so any layer can name it (exporters do)."""

__version__ = "0.1.0"
