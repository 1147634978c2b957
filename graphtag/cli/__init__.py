"""Command-line interface (the ``graphtag`` console script)."""

from graphtag.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
