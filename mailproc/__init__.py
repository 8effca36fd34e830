"""mailproc: runs a government reporting campaign over plain email."""

__version__ = "0.1.0"
