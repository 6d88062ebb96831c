"""Runs, features and uploads for users of a shared repository (needs the access control of
issue 14: the ``access_world`` fixture; skipped where this checkout does not have it)."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Any:
    from fastapi.testclient import TestClient

    from quantscope.server import create_app

    try:
        w = request.getfixturevalue("access_world")
    except pytest.FixtureLookupError:
        pytest.skip("no access control in this checkout (access_world fixture)")
    app = create_app(w["root"])
    with TestClient(app) as c:
        yield {**w, "client": c}
    app.state.quantscope.repo.close()


def _as(world: dict[str, Any], who: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + world["tokens"][who]} if who != "anonymous" else {}


def test_a_member_runs_on_what_they_see(world: dict[str, Any]) -> None:
    import pandas as pd

    c, ids = world["client"], world["ids"]
    r = c.post("/api/runs", json={"pipeline": "nuclei"}, headers=_as(world, "member"))
    assert r.status_code == 202, r.text
    url = r.json()["status_url"]
    deadline = time.monotonic() + 120
    while (s := c.get(url, headers=_as(world, "member")).json())["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert s["state"] == "done" and s["total"] == 2  # private + public, nothing else
    # someone else's job is not theirs to watch
    for who in ("other", "anonymous"):
        assert c.get(url, headers=_as(world, who)).status_code == 404
    rec = c.get(f"/api/runs/{s['run_id']}", headers=_as(world, "member")).json()
    assert {st["image_id"] for st in rec["steps"]} == {ids["private"], ids["public"]}
    csv = c.get(
        f"/api/runs/{s['run_id']}/features?format=csv&naming=quantscope",
        headers=_as(world, "other"),
    )
    assert csv.status_code == 200  # the public image's rows only
    assert set(pd.read_csv(io.BytesIO(csv.content))["image_id"]) == {ids["public"]}


def test_nobody_runs_on_images_they_cannot_see(world: dict[str, Any]) -> None:
    c = world["client"]
    q = f"id == '{world['ids']['none']}'"
    r = c.post("/api/runs", json={"pipeline": "nuclei", "q": q}, headers=_as(world, "owner"))
    assert r.status_code == 400 and "no image you may see" in r.json()["error"]["message"]
    r = c.post("/api/runs", json={"pipeline": "nuclei"})
    assert r.status_code == 401


def test_uploads_go_to_datasets_the_uploader_may_write(world: dict[str, Any]) -> None:
    import numpy as np
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, (np.arange(64 * 64).reshape(64, 64) % 1000).astype("uint16"))
    files = [("files", ("new.tif", buf.getvalue(), "image/tiff"))]
    c = world["client"]
    r = c.post("/api/ingest", files=files, data={"dataset": "lab"}, headers=_as(world, "other"))
    assert r.status_code in (403, 404), r.text
    r = c.post("/api/ingest", files=files, data={"dataset": "lab"}, headers=_as(world, "owner"))
    assert r.status_code == 200, r.text
    new = r.json()["added"][0]["id"]
    assert c.get(f"/api/images/{new}", headers=_as(world, "member")).status_code in (200, 404)
    repo = c.app.state.quantscope.repo
    assert {d.name: d.images for d in repo.annotations.datasets()}["lab"] == 2


def test_a_dataset_an_upload_creates_is_the_uploaders(world: dict[str, Any]) -> None:
    import numpy as np
    import tifffile

    c = world["client"]

    def tif(seed: int) -> list[Any]:
        buf = io.BytesIO()
        img = np.random.default_rng(seed).integers(0, 900, (64, 64)).astype("uint16")
        tifffile.imwrite(buf, img)
        return [("files", (f"f{seed}.tif", buf.getvalue(), "image/tiff"))]

    other = _as(world, "other")
    r = c.post("/api/ingest", files=tif(1), data={"dataset": "fresh"}, headers=other)
    assert r.status_code == 200 and r.json()["added_to_dataset"] == 1, r.text
    new = r.json()["added"][0]["id"]
    assert c.get(f"/api/images/{new}", headers=other).status_code == 200  # theirs to see
    assert c.get(f"/api/images/{new}", headers=_as(world, "member")).status_code == 404
    r = c.post("/api/ingest", files=tif(2), data={"dataset": "fresh"}, headers=other)
    assert r.status_code == 200 and r.json()["added_to_dataset"] == 1, r.text
    r = c.post("/api/ingest", files=tif(3), data={"dataset": "fresh"}, headers=_as(world, "member"))
    assert r.status_code in (403, 404)
