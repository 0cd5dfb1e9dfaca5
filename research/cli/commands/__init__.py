"""Implementations of the CLI commands, one module per family, kept out of cli.py so that
`research --version` imports nothing heavy."""
