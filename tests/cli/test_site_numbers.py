"""One site numbering everywhere (issue 12, item 2): ``ls``, ``show``, ``find``, the QC JSON,
JSON-LD and the feature tables all say site 1 for the first site of a well (``_s1``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def plate_repo(tmp_path_factory: pytest.TempPathFactory, cli: Callable) -> Path:
    tmp = tmp_path_factory.mktemp("sites")
    for args in (
        ["synth", tmp / "plate", "--plate", "1x1", "--fields", "2", "--size", "96", "--seed", "2"],
        ["init", tmp / "repo"],
        ["ingest", tmp / "repo", tmp / "plate" / "images"],
        ["run", tmp / "repo", Path(__file__).parents[2] / "pipelines" / "nuclei.yaml"],
    ):
        r = cli(*args)
        assert r.exit_code == 0, r.output
    return tmp / "repo"


def test_every_output_numbers_sites_from_one(plate_repo: Path, cli: Callable) -> None:
    listed = json.loads(cli("ls", plate_repo, "--json").stdout)
    by_site = {row["field"]: row for row in listed}
    assert sorted(by_site) == [1, 2]
    first = by_site[1]
    assert first["name"].endswith("_s1")

    found = json.loads(cli("find", plate_repo, "field == 1", "--format", "json").stdout)
    assert [row["id"] for row in found] == [first["id"]]
    assert found[0]["field"] == 1

    qc = json.loads(cli("qc", plate_repo, "--json").stdout)
    rows = qc["images"] if isinstance(qc, dict) and "images" in qc else qc
    assert {r["id"] if "id" in r else r["image_id"]: r["field"] for r in rows}[first["id"]] == 1

    ld = json.loads(cli("metadata", "export", plate_repo, first["id"], "--format", "jsonld").stdout)
    assert '"ome:Field": 1' in json.dumps(ld)

    out = plate_repo.parent / "cells.csv"
    r = cli("features", plate_repo, "latest", "--format", "csv", "--out", out)
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out)
    site_col = "Metadata_Site" if "Metadata_Site" in table else "field"
    assert sorted(table[site_col].unique()) == [1, 2]


def test_show_reads_as_text_and_is_never_cut(plate_repo: Path, cli: Callable) -> None:
    first = json.loads(cli("ls", plate_repo, "--json").stdout)[0]
    r = cli("show", plate_repo, first["id"][:3])
    assert r.exit_code == 0, r.output
    text = r.stdout
    for repr_mark in ("{'", "<Medium", "Medium.", "': "):
        assert repr_mark not in text, text
    assert "excitation wavelength 405 nm" in " ".join(text.split())
    assert "1 level," in text or "levels," in text
    # a narrow terminal wraps long lines instead of cropping them
    narrow = cli("show", plate_repo, first["id"], env={"COLUMNS": "60"})
    joined = " ".join(ln.strip(" │├└─") for ln in narrow.stdout.splitlines())
    assert "sha256" in joined and "contrast method Fluorescence" in " ".join(joined.split())


def test_metadata_export_refuses_a_file_name_of_another_format(
    plate_repo: Path, cli: Callable
) -> None:
    first = json.loads(cli("ls", plate_repo, "--json").stdout)[0]["id"]
    out = plate_repo.parent / "meta.ome.xml"
    r = cli("metadata", "export", plate_repo, first, "--format", "json", "--out", out)
    assert r.exit_code == 2 and "does not fit --format json" in r.output
    assert not out.exists()
    r = cli("metadata", "export", plate_repo, first, "--format", "ome-xml", "--out", out)
    assert r.exit_code == 0, r.output
    assert out.read_text().lstrip().startswith("<")
