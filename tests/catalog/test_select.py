"""``quantscope.catalog.select_images``: the one resolver of image selections (ids, plates,
datasets, a query) that the commands share, and its errors for bad input."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from quantscope.catalog import Repository, Selection, select_images
from quantscope.errors import InvalidInput, NotFound, QuantscopeError


@pytest.fixture(scope="module")
def plate_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repository]:
    """A 1x3 synthetic plate (one 64 px field per well), no QC."""
    from quantscope import ingest
    from quantscope.synth import SynthOptions, synth_plate

    base = tmp_path_factory.mktemp("select")
    res = synth_plate(base / "plate", SynthOptions(plate="1x3", fields=1, size=64, seed=3))
    repo = Repository.init(base / "repo")
    report = ingest(repo, [res.images_dir], qc=False)
    assert report.ok and len(report.added) == 3
    yield repo
    repo.close()


def _by_well(repo: Repository) -> dict[str, str]:
    return {i.position.well: i.id for i in repo.images.all() if i.position}


def test_every_form_resolves_to_ids(plate_repo: Repository) -> None:
    wells = _by_well(plate_repo)
    a1, a2, a3 = wells["A01"], wells["A02"], wells["A03"]
    every = plate_repo.query.find_ids("")
    assert select_images(plate_repo) == every and sorted(every) == sorted(wells.values())
    assert select_images(plate_repo, images=[a3[:6], a1]) == [a3, a1]  # prefixes, in order
    assert select_images(plate_repo, images=a2) == [a2]  # one string is one id
    assert select_images(plate_repo, plates="synth") == [a1, a2, a3]  # plate order
    assert select_images(plate_repo, where='well != "A02"') == [a1, a3]
    # explicit images and plates are joined without repeats; a query narrows them
    assert select_images(plate_repo, images=[a3], plates=["synth"]) == [a3, a1, a2]
    assert select_images(plate_repo, plates=["synth"], where='well == "A03"') == [a3]
    assert select_images(plate_repo, images=[a1], where='well == "A03"') == []
    plate_repo.annotations.add_to_dataset("pilot", [a2, a3])
    assert select_images(plate_repo, datasets="pilot") == sorted([a2, a3])
    assert select_images(plate_repo, Selection(datasets=("pilot",), where='well == "A02"')) == [a2]
    # the one-string form of `quantscope set`
    assert select_images(plate_repo, a1) == [a1]
    assert select_images(plate_repo, f"image:{a2[:5]}") == [a2]
    assert select_images(plate_repo, "plate:synth") == [a1, a2, a3]
    assert select_images(plate_repo, "dataset:pilot") == sorted([a2, a3])
    assert select_images(plate_repo, 'well == "A01"') == [a1]
    assert select_images(plate_repo, "plate:nope") == []  # as a query matching nothing


def test_selection_parse_and_flags() -> None:
    assert Selection.parse(" plate:P1 ") == Selection(plates=("P1",))
    assert Selection.parse("dataset:pilot") == Selection(datasets=("pilot",))
    assert Selection.parse("image:abc") == Selection(images=("abc",))
    assert Selection.parse("0af3c9") == Selection(images=("0af3c9",))
    assert Selection.parse('well == "A01"') == Selection(where='well == "A01"')
    assert Selection().everything and not Selection().explicit
    assert not Selection(where="").everything
    assert Selection.of(images=["a1b", " a1b "], plates=None).images == ("a1b",)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"images": ["nothere"]}, NotFound, "no image with id 'nothere'"),
        ({"plates": ["P9"]}, NotFound, r"no plate named 'P9' \(plates: synth\)"),
        ({"where": "well =="}, InvalidInput, "well"),
        ({"where": "no_such_field == 1"}, InvalidInput, "no_such_field"),
        ({"images": [""]}, InvalidInput, "empty image name"),
        ({"plates": [" "]}, InvalidInput, "empty plate name"),
        ({"images": [3]}, InvalidInput, "must be given as text"),
        ({"where": 5}, InvalidInput, "query string"),
        ({"selection": ""}, InvalidInput, "empty selection"),
        ({"selection": 7}, InvalidInput, "expected a Selection or a string"),
        ({"selection": "plate:synth", "where": "x"}, InvalidInput, "not both"),
    ],
)
def test_bad_input_raises_quantscope_errors(
    plate_repo: Repository, kwargs: dict[str, object], error: type, message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        select_images(plate_repo, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, QuantscopeError)
