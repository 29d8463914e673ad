"""`python -m forebear` runs the CLI."""

from .cli import main

main()
