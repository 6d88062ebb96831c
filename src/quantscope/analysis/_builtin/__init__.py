"""The built-in analysis tools. Each module is light to import (pydantic models and metadata);
the libraries that do the work are imported inside ``run``. They register through the
``quantscope.tools`` entry points in ``pyproject.toml``, as any plugin does."""

__all__: list[str] = []
