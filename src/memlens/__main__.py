"""``python -m memlens`` runs the command-line interface."""

from memlens.cli.main import main

if __name__ == "__main__":
    main()
