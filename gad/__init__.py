"""The `gad` command line. Importing this package imports neither torch nor numpy."""

__version__ = "0.1.0"
