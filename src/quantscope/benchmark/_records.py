"""What :func:`~quantscope.benchmark.add_set` and :func:`~quantscope.benchmark.run_benchmark`
return: the catalog's typed records of a set and a run (:class:`BenchSetRecord`,
:class:`BenchRunRecord`) with what the benchmark adds to them.

:class:`BenchSet` is the set's record, printed (``bench add-set --json``) without the source's
license text; :class:`BenchRun` is the run's record with the prediction files that had no
ground truth (``extra``) and the in-memory :class:`~quantscope.benchmark.BenchResult`. This
module imports the catalog, so ``quantscope.benchmark`` loads it only when one is made or
asked for: scoring folders needs no repository.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..catalog import BenchRunRecord, BenchSetRecord
from ._runs import BenchResult

__all__ = ["BenchRun", "BenchSet"]


@dataclass(frozen=True)
class BenchSet(BenchSetRecord):
    """A registered ground-truth set as :func:`add_set` returns it: the set's record
    (:meth:`Repository.bench.get_set`: name, items, objects, license, provenance...)."""

    @classmethod
    def of(cls, record: BenchSetRecord) -> BenchSet:
        """The set of a catalog record."""
        return cls(**{f.name: getattr(record, f.name) for f in fields(BenchSetRecord)})

    def to_dict(self) -> dict[str, Any]:
        """The record without the provenance's copy of the source text (SOURCE.md, LICENSE);
        what ``quantscope bench add-set --json`` prints."""
        out = super().to_dict()
        out["provenance"] = {k: v for k, v in self.provenance.items() if k != "source_text"}
        return out


@dataclass(frozen=True)
class BenchRun(BenchRunRecord):
    """A stored benchmark run as :func:`run_benchmark` returns it: the run's record
    (:meth:`Repository.bench.get_run`: id, set, method, tool, parameters, summary...), plus
    ``extra`` (prediction files without ground truth) and ``result`` (the
    :class:`BenchResult`)."""

    extra: list[str]
    result: BenchResult

    @classmethod
    def of(cls, record: BenchRunRecord, *, extra: list[str], result: BenchResult) -> BenchRun:
        """The run of a catalog record, with its extra files and result."""
        values = {f.name: getattr(record, f.name) for f in fields(BenchRunRecord)}
        return cls(**values, extra=extra, result=result)

    def to_dict(self) -> dict[str, Any]:
        """The record and ``extra``, without the in-memory ``result``; what
        ``quantscope bench run --json`` prints."""
        return {**super().to_dict(), "extra": list(self.extra)}
