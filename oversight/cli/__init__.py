"""The command line: `oversight demo`, `judge`, `constitution`, `model`."""

from oversight.cli._app import app, main

__all__ = ["app", "main"]
