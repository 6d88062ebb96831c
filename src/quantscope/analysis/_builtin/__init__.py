"""The built-in analysis tools. Each module is light to import (pydantic models and metadata);
the libraries that do the work are imported inside ``run``. They register through the
``quantscope.tools`` entry points in ``pyproject.toml``, as any plugin does.

Their version is quantscope's own: outputs are keyed by the tool's version, so upgrading
quantscope (whose release may change an algorithm) recomputes them rather than reusing results
of older code.
"""

from importlib import metadata as _metadata

__all__ = ["BUILTIN_VERSION"]

try:
    BUILTIN_VERSION: str = _metadata.version("quantscope")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    BUILTIN_VERSION = "0+unknown"
