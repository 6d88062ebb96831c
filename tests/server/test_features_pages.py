"""Pages of runs, features and benchmarks: what they show, filter/sort/paging of the feature
table, the SVG plots (escaped), the start form, and bad input as 4xx pages."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from quantscope.server._features_view import (
    apply_filter,
    histogram_svg,
    provenance_svg,
    scatter_svg,
)

HTML = {"accept": "text/html"}


class _Rows(HTMLParser):
    """The rows of the table with id ``features``."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("id", "features") in attrs:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag == "td":
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False
        elif tag == "td" and self.cell is not None:
            self.rows[-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def _rows(html: str) -> list[list[str]]:
    p = _Rows()
    p.feed(html)
    return [r for r in p.rows if r]


def _run_id(client: Any) -> str:
    return str(client.get("/api/runs").json()["items"][-1]["id"])


def test_runs_page_lists_runs_and_the_start_form(client) -> None:
    run_id = _run_id(client)
    r = client.get("/runs", headers=HTML)
    assert r.status_code == 200
    assert f"/runs/{run_id}" in r.text and "nuclei" in r.text
    assert "<form method='post' action='/runs'" in r.text
    assert "<option value='nuclei'>" in r.text
    assert "name='csrf'" in r.text


def test_run_page_steps_and_provenance_graph(client) -> None:
    run_id = _run_id(client)
    r = client.get(f"/runs/{run_id}", headers=HTML)
    assert r.status_code == 200
    html = r.text
    for tool in ("illumination-correction", "segment-nuclei", "measure"):
        assert tool in html
    svg = re.search(r"<svg[^>]*class='provenance'.*?</svg>", html, re.S)
    assert svg is not None
    assert svg.group(0).count("class='node step'") == 3
    assert "4 source image(s)" in svg.group(0)
    assert f"/api/runs/{run_id}/features?format=parquet&amp;table=Nuclei_features" in html
    assert "/static/portal/runs.js" in html
    assert client.get("/static/portal/runs.js").status_code == 200


def test_features_page_table_filter_sort_paging(client) -> None:
    run_id = _run_id(client)
    api = client.get(f"/api/runs/{run_id}/features?format=csv&naming=quantscope")
    import io

    df = pd.read_csv(io.BytesIO(api.content))
    r = client.get(f"/runs/{run_id}/features?per=10", headers=HTML)
    assert r.status_code == 200
    rows = _rows(r.text)
    assert len(rows) == 10
    assert f"{len(df)} of {len(df)} rows match" in r.text
    for fmt in ("parquet", "csv", "anndata"):
        assert f"id='download-{fmt}'" in r.text
    # filter by an expression: the rows that match, as pandas counts them
    expr = "AreaShape_Area > 150 and well == 'A01'"
    want = df[(df["AreaShape_Area"] > 150) & (df["well"] == "A01")]
    r = client.get(f"/runs/{run_id}/features", params={"filter": expr, "per": 500})
    assert f"{len(want)} of {len(df)} rows match" in r.text
    assert len(_rows(r.text)) == len(want) > 0
    # by one column's min/max, sorted descending
    r = client.get(
        f"/runs/{run_id}/features",
        params={
            "col": "AreaShape_Area",
            "min": "100",
            "max": "200",
            "sort": "AreaShape_Area",
            "desc": "1",
            "per": 500,
            "cols": "AreaShape_Area",
        },
    )
    want = df[(df["AreaShape_Area"] >= 100) & (df["AreaShape_Area"] <= 200)]
    rows = _rows(r.text)
    assert len(rows) == len(want)
    areas = [float(row[-1]) for row in rows]  # the chosen column comes last
    assert areas == sorted(areas, reverse=True)
    # the second page starts where the first ended
    p1 = _rows(client.get(f"/runs/{run_id}/features?per=7&page=1").text)
    p2 = _rows(client.get(f"/runs/{run_id}/features?per=7&page=2").text)
    assert p1 and p2 and p1[-1] != p2[0]


def test_features_page_plots_and_crops(client) -> None:
    run_id = _run_id(client)
    r = client.get(
        f"/runs/{run_id}/features",
        params={
            "hist": "AreaShape_Perimeter",
            "x": "AreaShape_Area",
            "y": "AreaShape_Perimeter",
            "color": "well",
        },
    )
    html = r.text
    assert "aria-label='histogram of AreaShape_Perimeter'" in html
    assert "aria-label='AreaShape_Perimeter against AreaShape_Area'" in html
    crops = re.findall(r"href='(/api/images/[^']+/objects/\d+/crop\.png\?labels=Nuclei)'", html)
    assert len(crops) > 10
    assert len(set(re.findall(r"fill='(#[0-9a-f]{6})' fill-opacity", html))) == 4  # 4 wells
    assert "/static/portal/features.js" in html


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"filter": "AreaShape_Area >"}, "COLUMN OP VALUE"),
        ({"filter": "nope > 1"}, "no column"),
        ({"filter": "AreaShape_Area > abc"}, "numeric"),
        ({"filter": "__import__('os') == 1"}, "COLUMN OP VALUE"),
        ({"sort": "nope"}, "no column"),
        ({"hist": "well"}, "no numeric feature"),
        ({"col": "zzz", "min": "1"}, "no column"),
        ({"page": "x"}, "whole number"),
        ({"table": "Nope"}, "no table"),
    ],
)
def test_features_page_bad_input(client, query: dict[str, str], words: str) -> None:
    run_id = _run_id(client)
    r = client.get(f"/runs/{run_id}/features", params=query, headers=HTML)
    assert r.status_code in (400, 404), r.text
    assert r.headers["content-type"].startswith("text/html")
    assert words in r.text
    if r.status_code == 400:  # shown above the form, which keeps what was typed
        assert "id='features-error'" in r.text and "id='feature-filter'" in r.text
        if "filter" in query:
            from html import escape

            assert escape(query["filter"], quote=True) in r.text


def test_only_visible_images_rows(client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows, steps, artifacts and provenance of the images the caller may not see are left
    out (the guard's answer, here: one image of the four)."""
    import io

    import quantscope.server._api_runs as api

    run_id = _run_id(client)
    every = client.get(f"/api/runs/{run_id}").json()
    seen = sorted({s["image_id"] for s in every["steps"]})[:1]
    monkeypatch.setattr(api, "filter_visible", lambda repo, who, ids: [i for i in ids if i in seen])
    rec = client.get(f"/api/runs/{run_id}").json()
    assert rec["n_visible_images"] == 1
    assert {s["image_id"] for s in rec["steps"]} == set(seen)
    assert {a["image_id"] for a in rec["artifacts"]} == set(seen)
    df = pd.read_csv(
        io.BytesIO(client.get(f"/api/runs/{run_id}/features?format=csv&naming=quantscope").content)
    )
    assert set(df["image_id"]) == set(seen) and len(df) > 0
    prov = client.get(f"/api/runs/{run_id}/provenance").json()
    assert [i["id"] for i in prov["images"]] == seen
    html = client.get(f"/runs/{run_id}/features?per=500").text
    assert f"{len(df)} of {len(df)} rows match" in html
    monkeypatch.setattr(api, "filter_visible", lambda repo, who, ids: [])
    assert client.get(f"/api/runs/{run_id}").status_code == 404
    assert client.get(f"/api/runs/{run_id}/features").status_code == 404
    assert client.get(f"/runs/{run_id}", headers=HTML).status_code == 404


def test_unknown_run_pages_are_404(client) -> None:
    for url in ("/runs/deadbeefdeadbeef", "/runs/deadbeefdeadbeef/features", "/runs/x%00y"):
        r = client.get(url, headers=HTML)
        assert r.status_code == 404, url


def test_svgs_escape_text() -> None:
    evil = "<script>alert(1)</script>"
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [3.0, 1.0, 2.0], "g": [evil, "x", "y"]})
    for svg in (
        histogram_svg(df["a"], evil),
        scatter_svg(df.rename(columns={"a": evil}), evil, "b", "g"),
        provenance_svg({"steps": [{"id": evil, "tool": evil}], "outputs": [{"output": evil}]}),
    ):
        assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "no finite values" in histogram_svg([float("nan")], "x")


def test_apply_filter_is_not_code() -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "w": ["A01", "A02", "A01"]})
    assert list(apply_filter(df, "a >= 2 and w = 'A01'")["a"]) == [3]
    assert list(apply_filter(df, 'w != "A01"')["a"]) == [2]
    assert len(apply_filter(df, "")) == 3


def test_start_form_runs_and_the_page_follows(served_copy: Path) -> None:
    from fastapi.testclient import TestClient

    from quantscope.server import create_app

    with TestClient(create_app(served_copy)) as c:
        r = c.post(
            "/runs",
            data={"pipeline": "nuclei", "q": "well == 'B01'", "csrf": ""},
            follow_redirects=False,
        )
        assert r.status_code == 303
        page_url = r.headers["location"]
        job = page_url.rsplit("/", 1)[-1]
        deadline = time.monotonic() + 120
        while c.get(f"/api/runs/{job}/status").json()["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        html = c.get(page_url, headers=HTML).text
        assert "data-state='done'" in html and "class='provenance'" in html
        # a bad spec from the form: a 400 page naming it, nothing started
        r = c.post("/runs", data={"pipeline": "nope", "q": ""}, headers=HTML)
        assert r.status_code == 400 and "no such pipeline" in r.text
        c.app.state.quantscope.repo.close()


def test_benchmarks_list_and_leaderboard(served_copy: Path) -> None:
    from fastapi.testclient import TestClient

    from quantscope.benchmark import add_synthetic_set, read_labels, run_benchmark
    from quantscope.catalog import Repository
    from quantscope.server import create_app

    with Repository.open(served_copy) as repo:
        s = add_synthetic_set(repo, "tiny-set", n_images=2, size=64, seed=1, qc=False)
        truth = {i.name: read_labels(served_copy / i.labels_path) for i in s.items}
        run_benchmark(repo, s.name, truth, method="oracle", tool="truth", n_resamples=50)
    with TestClient(create_app(served_copy)) as c:
        r = c.get("/benchmarks", headers=HTML)
        assert r.status_code == 200
        assert "/benchmarks/tiny-set" in r.text and ">tiny-set</a>" in r.text
        r = c.get("/benchmarks/tiny-set", headers=HTML)
        assert r.status_code == 200 and "oracle" in r.text and "1.000" in r.text
        r = c.get("/benchmarks/tiny-set/report", headers=HTML)
        assert r.status_code == 200 and "oracle" in r.text
        assert c.get("/benchmarks/nope", headers=HTML).status_code == 404
        assert c.get("/benchmarks/tiny-set?metric=bogus", headers=HTML).status_code == 400
        c.app.state.quantscope.repo.close()
