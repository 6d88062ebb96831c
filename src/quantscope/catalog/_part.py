"""The base of a :class:`~quantscope.catalog.Repository`'s namespaced parts.

A repository handle exposes what it reads and writes as parts, one per area of the catalog:
``repo.images`` (:class:`~._images.ImageRecords`), ``repo.quality``
(:class:`~._quality.QualityRecords`), ``repo.annotations``
(:class:`~._annotations.AnnotationRecords`), ``repo.query`` (:class:`~._find.QueryMethods`),
``repo.runs`` (:class:`~._runs.RunRecords`), ``repo.bench``
(:class:`~._bench.BenchmarkRecords`) and ``repo.access``
(:class:`~._access_records.AccessRecords`). Each part holds a reference to its repository and reads
the catalog engine and the repository folder through it; parts never hold state of their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Engine

    from ._repository import Repository

__all__ = ["Part"]


class Part:
    """One area of a repository's catalog, reached as an attribute of the repository."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    @property
    def engine(self) -> Engine:
        """The repository's catalog engine."""
        return self._repo.engine

    @property
    def root(self) -> Path:
        """The repository folder."""
        return self._repo.root

    def _safe_url(self) -> str:
        return self._repo._safe_url()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._repo.root}>"

    if not TYPE_CHECKING:  # (type checkers see a part as not callable at all)

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            # ``repo.images()`` was a method before the parts: say what to call instead
            from ._moved import CALLED_PARTS

            attr, instead = CALLED_PARTS.get(type(self).__name__, ("part", "one of its methods"))
            raise TypeError(
                f"repo.{attr} is a part of the repository, not a method (issue 13): call {instead}"
            )
