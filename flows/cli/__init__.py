"""The `erp-sync` command line: `main` is the console script, `cli` the click group."""

from flows.cli.app import cli, main

__all__ = ["cli", "main"]
