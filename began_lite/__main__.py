"""``python -m began_lite ...``: the command line, :mod:`began_lite.cli`."""
from began_lite.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
