"""The `research` command line."""

from research.cli.app import app, main

__all__ = ["app", "main"]
