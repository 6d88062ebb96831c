"""The segmentation tools' cache key covers the source of every module the algorithms use."""

from __future__ import annotations

import ast
import importlib
import inspect

from quantscope.analysis._builtin._segmentation import Cytoplasm, SegmentCells, SegmentNuclei


def _analysis_modules_used_by(module: str, seen: set[str]) -> set[str]:
    """``module`` and every quantscope.analysis module it imports, transitively."""
    if module in seen:
        return seen
    seen.add(module)
    tree = ast.parse(inspect.getsource(importlib.import_module(module)))
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            _analysis_modules_used_by(f"{package}.{node.module}", seen)
    return seen


def test_every_segmentation_module_is_part_of_the_step_cache_key() -> None:
    used = _analysis_modules_used_by("quantscope.analysis._segment", set())
    assert {"quantscope.analysis._threshold", "quantscope.analysis._morphology"} <= used
    for tool in (SegmentNuclei, SegmentCells, Cytoplasm):
        assert used <= set(tool.code_modules), (tool.name, used - set(tool.code_modules))
