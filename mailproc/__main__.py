"""`python -m mailproc` is the `mailproc` command."""

from mailproc.cli import cli

cli()
