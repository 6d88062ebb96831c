"""``--json`` prints the library's report as is: each command's JSON equals the ``to_dict()``
(or record) that the same call from Python returns, so the CLI and the web API cannot drift."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typer.testing import Result

from quantscope.catalog import Repository


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repository]:
    from quantscope import ingest
    from quantscope.synth import SynthOptions, synth_plate

    base = tmp_path_factory.mktemp("json")
    res = synth_plate(base / "plate", SynthOptions(plate="1x2", fields=1, size=48, seed=4))
    repo = Repository.init(base / "repo")
    assert ingest(repo, [res.images_dir], qc=False).ok
    yield repo
    repo.close()


def _json(cli: Callable[..., Result], *args: Any) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def _plain(obj: Any) -> Any:
    """``obj`` as ``--json`` writes it (``default=str`` for dates and paths)."""
    return json.loads(json.dumps(obj, default=str))


def test_json_of_commands_is_the_library_report(
    small_repo: Repository, cli: Callable[..., Result]
) -> None:
    from quantscope import verify
    from quantscope.catalog import check_metadata, edit_annotations, image_record, image_row

    root = small_repo.root
    first = small_repo.images.all()[0]
    assert _json(cli, "verify", root) == _plain(verify(small_repo).to_dict())
    assert verify(small_repo).checked > 0 and verify(small_repo).ok
    assert _json(cli, "show", root, first.id) == _plain(image_record(small_repo, first.id))
    assert _json(cli, "ls", root) == _plain([image_row(i) for i in small_repo.images.all()])
    assert _json(cli, "metadata", "check", root, "--tier", "2") == _plain(
        check_metadata(small_repo, tier=2).to_dict()
    )
    assert _json(cli, "tag", root, first.id) == _plain(
        edit_annotations(small_repo, [first.id]).to_dict()
    )
    tagged = _json(cli, "tag", root, first.id, "--add", "control")
    again = edit_annotations(small_repo, [first.id], add=["control"]).to_dict()
    assert tagged["tags_added"] == 1 and again["tags_added"] == 0
    assert tagged["annotations"] == _plain(again["annotations"])


def test_set_json_is_the_edit_report(small_repo: Repository, cli: Callable[..., Result]) -> None:
    from quantscope.catalog import set_metadata

    root = small_repo.root
    doc = _json(cli, "set", root, "plate:synth", "pixel_size_um=0.5")
    assert doc["files_rewritten"] > 0 and len(doc["images"]) == 2
    report = set_metadata(small_repo, "plate:synth", ["pixel_size_um=0.5"])  # no change now
    assert report.to_dict() == {"images": doc["images"], "changes": [], "files_rewritten": 0}
