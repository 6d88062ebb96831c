"""``/api/images`` (search, paging, errors) and ``/api/images/{id}`` (the record of
``quantscope show --json`` plus zarr_url, levels, labels, omero channels)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def test_search_lists_every_image_with_its_urls(client: Any) -> None:
    r = client.get("/api/images")
    assert r.status_code == 200
    doc = r.json()
    assert doc["total"] == 4 and doc["limit"] == 50 and doc["offset"] == 0
    wells = [it["well"] for it in doc["items"]]
    assert wells == ["A01", "A02", "B01", "B02"]  # plate order
    for it in doc["items"]:
        assert {"id", "name", "plate", "well", "field", "channels", "qc_status"} <= set(it)
        assert it["channels"] == ["DAPI", "GFP"] and it["plate"] == "synth"
        assert it["qc_status"] in ("pass", "warn", "fail")
        assert it["thumbnail_url"] == f"/api/images/{it['id']}/thumbnail.png"
        assert it["image_url"] == f"/images/{it['id']}"
        assert client.get(it["thumbnail_url"]).status_code == 200


def test_search_query_and_paging(client: Any) -> None:
    doc = client.get("/api/images", params={"q": 'well in ("A02", "B01")'}).json()
    assert [it["well"] for it in doc["items"]] == ["A02", "B01"] and doc["total"] == 2
    page = client.get("/api/images", params={"limit": 3, "offset": 2}).json()
    assert [it["well"] for it in page["items"]] == ["B01", "B02"]
    assert page["total"] == 4 and page["limit"] == 3 and page["offset"] == 2
    past = client.get("/api/images", params={"offset": 100}).json()
    assert past["items"] == [] and past["total"] == 4
    none = client.get("/api/images", params={"q": 'well == "H12"'}).json()
    assert none == {"items": [], "total": 0, "limit": 50, "offset": 0, "q": 'well == "H12"'}


def test_query_errors_are_400_with_the_cli_message(
    client: Any, cli: Callable[..., Any], served_root: Path
) -> None:
    q = 'well == "A01" and'
    r = client.get("/api/images", params={"q": q})
    assert r.status_code == 400
    msg = r.json()["error"]["message"]
    assert r.json()["error"]["type"] == "InvalidInput"
    assert "^" in msg
    out = cli("find", served_root, q)
    assert out.exit_code != 0
    assert msg == str(out.exception)  # what the CLI prints, caret line and all
    r = client.get("/api/images", params={"q": "wel == 1"})
    assert r.status_code == 400 and "wel" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("params", "status", "names"),
    [
        ({"limit": 0}, 400, "limit"),
        ({"limit": 1001}, 400, "limit"),
        ({"limit": -3}, 400, "limit"),
        ({"limit": "ten"}, 422, "limit"),
        ({"limit": "1e3"}, 422, "limit"),
        ({"offset": -1}, 400, "offset"),
        ({"offset": "x"}, 422, "offset"),
        ({"offset": "99999999999999999999999999"}, 400, "offset"),
    ],
)
def test_bad_paging_names_the_parameter(
    client: Any, params: dict[str, Any], status: int, names: str
) -> None:
    r = client.get("/api/images", params=params)
    assert r.status_code == status, r.text
    assert names in r.json()["error"]["message"]


def test_limit_bounds_are_accepted(client: Any) -> None:
    assert len(client.get("/api/images", params={"limit": 1}).json()["items"]) == 1
    assert client.get("/api/images", params={"limit": 1000}).json()["total"] == 4


def test_image_record_is_show_json_plus_viewer_fields(
    client: Any, cli: Callable[..., Any], served_root: Path
) -> None:
    first = client.get("/api/images").json()["items"][0]
    doc = client.get(f"/api/images/{first['id']}").json()
    shown = json.loads(cli("show", served_root, first["id"], "--json").stdout)
    for key, value in shown.items():
        if key not in ("channels", "levels", "path"):
            assert doc[key] == value, key
    # the folder relative to the repository: the server's own layout is not shown
    assert shown["path"] == str(served_root / doc["path"]) and doc["path"] == doc["store_path"]
    assert len(doc["levels"]) == shown["levels"]  # the count, detailed per level
    assert [c["name"] for c in doc["channels"]] == [c["name"] for c in shown["channels"]]
    assert doc["zarr_url"] == "http://testserver/zarr/" + doc["store_path"]
    assert doc["plate_zarr_url"] == "http://testserver/zarr/plates/synth.ome.zarr"
    assert doc["levels"] == [{"shape": [1, 2, 1, 256, 256], "scale": [1.0, 1.0, 1.0, 0.65, 0.65]}]
    assert len(doc["labels"]) == 1 and doc["labels"][0].startswith("Nuclei")
    attrs = json.loads((served_root / doc["store_path"] / "zarr.json").read_text())
    om = attrs["attributes"]["ome"]["omero"]["channels"]
    for ch, o in zip(doc["channels"], om, strict=True):
        assert ch["color"] == o["color"] and ch["window"] == o["window"]
    assert doc["qc_status"] == first["qc_status"]
    assert doc["tile_size"] == 256


@pytest.mark.parametrize(
    "image_id", ["nope", "0" * 16, "31", "..", "%2e%2e", "a" * 300, "x y", "ab%00"]
)
def test_unknown_or_malformed_image_id_is_404(client: Any, image_id: str) -> None:
    r = client.get(f"/api/images/{image_id}")
    assert r.status_code == 404, r.text
    assert r.json()["error"]["type"] == "NotFound"


def test_a_prefix_is_not_an_id(client: Any) -> None:
    first = client.get("/api/images").json()["items"][0]["id"]
    assert client.get(f"/api/images/{first[:8]}").status_code == 404


def test_anonymous_callers_see_nothing(served_root: Path) -> None:
    from fastapi.testclient import TestClient

    from quantscope.server import create_app

    app = create_app(served_root, single_user=False)
    with TestClient(app) as c:
        doc = c.get("/api/images").json()
        assert doc["items"] == [] and doc["total"] == 0
        image_id = c.app.state.quantscope.repo.query.find_ids("")[0]
        for url in (
            f"/api/images/{image_id}",
            f"/api/images/{image_id}/thumbnail.png",
            f"/api/images/{image_id}/tiles/0/0/0/0.png",
        ):
            assert c.get(url).status_code == 404
    app.state.quantscope.repo.close()
