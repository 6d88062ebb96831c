"""The ``quantscope`` command line: a thin layer over the library's functions."""

from ._app import app, main

__all__ = ["app", "main"]
