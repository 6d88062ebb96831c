"""Every kind of route that shows images, for every kind of caller (issue 14 part 4).

Rows: image record, search, thumbnail, tile, the image's ``/zarr/`` files, feature tables,
runs, datasets. Columns: anonymous, another user, a member of the private dataset, its owner,
an admin. The world (``access_world`` of conftest): image ``private`` in private dataset ``lab``
(owner ``owner``, shared with ``member``), ``public`` in public dataset ``open``, ``legacy`` in a
dataset without access record and ``none`` in no dataset (both admins only).

A forbidden image answers 404, exactly like one that does not exist; a search never counts
or returns what the caller may not see ("total" included); lists (features, runs) leave out the
rows of hidden images. A route kind that this app does not have yet is skipped (the helpers
build them on their branches; the lead runs this matrix after merging).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quantscope.catalog import Repository
from quantscope.server import create_app

WHO = ("anonymous", "other", "member", "owner", "boss")
VISIBLE = {
    "anonymous": {"public"},
    "other": {"public"},
    "member": {"private", "public"},
    "owner": {"private", "public"},
    "boss": {"private", "public", "legacy", "none"},
}
DATASETS = {
    "anonymous": {"open"},
    "other": {"open"},
    "member": {"lab", "open"},
    "owner": {"lab", "open"},
    "boss": {"lab", "open", "legacy"},
}
KINDS = (
    "image",
    "search",
    "thumbnail",
    "tile",
    "label_tile",
    "object_crop",
    "zarr",
    "features",
    "runs",
    "datasets",
)
# a concrete URL of each kind ({id}: an image id, {run}: a run id, {store}: the image's folder)
PROBE = {
    "image": "/api/images/{id}",
    "search": "/api/images",
    "thumbnail": "/api/images/{id}/thumbnail.png",
    "tile": "/api/images/{id}/tiles/0/0/0/0.png",
    "label_tile": "/api/images/{id}/labels/{labels}/tiles/0/0/0/0.png",
    "object_crop": "/api/images/{id}/objects/1/crop.png?labels={labels}",
    "zarr": "/zarr/{store}/zarr.json",
    "features": "/api/runs/{run}/features",
    "runs": "/api/runs",
    "datasets": "/api/datasets",
}


def _registered(app: Any, path: str) -> bool:
    """Whether a route of ``app`` (other than the /static mounts) answers GET ``path``."""
    from starlette.routing import Match

    if path.startswith("/static/"):
        return False
    scope = {"type": "http", "path": path, "method": "GET", "root_path": "", "headers": []}
    return any(route.matches(scope)[0] == Match.FULL for route in app.routes)


@pytest.fixture(scope="module")
def probe_app(served_root: Any) -> Iterator[Any]:
    app = create_app(served_root)
    yield app
    app.state.quantscope.repo.close()


@pytest.fixture(scope="module")
def world(access_world_shared: dict[str, Any]) -> Iterator[dict[str, Any]]:
    access_world = access_world_shared
    root = access_world["root"]
    with Repository.open(root) as repo:
        store = {k: repo.images.get(i).store_path for k, i in access_world["ids"].items()}
        runs = [r.id for r in repo.runs.all()]
    app = create_app(root)
    with TestClient(app) as client:
        yield {**access_world, "client": client, "store": store, "run": runs[0]}
    app.state.quantscope.repo.close()


def _get(world: dict[str, Any], who: str, url: str) -> Any:
    headers = {} if who == "anonymous" else {"Authorization": "Bearer " + world["tokens"][who]}
    return world["client"].get(url, headers=headers)


def _hidden(world: dict[str, Any], who: str) -> list[str]:
    return [i for k, i in world["ids"].items() if k not in VISIBLE[who]]


def _labels_name(world: dict[str, Any]) -> str:
    """The name of the label image the nuclei pipeline wrote (from the admin's record)."""
    r = _get(world, "boss", f"/api/images/{world['ids']['public']}")
    names = r.json().get("labels") or [] if r.status_code == 200 else []
    if not names:
        pytest.skip("no label image listed in the image record")
    return str(names[0]).split("-")[0]  # "Nuclei": each image's own label image of that name


def _check_per_image(world: dict[str, Any], kind: str) -> None:
    labels = _labels_name(world) if kind in ("label_tile", "object_crop") else ""
    for who in WHO:
        for key, image_id in world["ids"].items():
            url = PROBE[kind].format(id=image_id, store=world["store"][key], labels=labels)
            r = _get(world, who, url)
            if key in VISIBLE[who]:
                if kind == "object_crop" and r.status_code == 404:
                    continue  # (object 1 need not exist in every image)
                assert r.status_code == 200, (kind, who, key, r.status_code, r.text[:200])
            else:
                assert r.status_code == 404, (kind, who, key, r.status_code)
                # exactly the answer for something that does not exist (the message may echo
                # what the caller sent, nothing more)
                real = image_id if image_id in url else world["store"][key]
                fake = "f" * len(image_id) if image_id in url else real + "9"
                missing = _get(world, who, url.replace(real, fake))
                assert missing.status_code == 404, (kind, who, url)
                assert r.text.replace(real, fake) == missing.text, (kind, who, key)


def _check_search(world: dict[str, Any]) -> None:
    for who in WHO:
        for q in ("", 'name != ""'):
            r = _get(world, who, "/api/images?limit=100&q=" + q)
            assert r.status_code == 200, (who, r.text[:200])
            body = r.json()
            got = {item["id"] for item in body["items"]}
            want = {world["ids"][k] for k in VISIBLE[who]}
            assert got == want and body["total"] == len(want), (who, q, body["total"])


def _check_lists(world: dict[str, Any], kind: str) -> None:
    url = PROBE[kind].format(run=world["run"])
    for who in WHO:
        r = _get(world, who, url + ("?format=csv" if kind == "features" else ""))
        if kind == "features" and r.status_code == 404 and who != "boss":
            continue  # the run itself is hidden: fine, nothing leaks
        assert r.status_code == 200, (kind, who, r.status_code, r.text[:200])
        for hidden in _hidden(world, who):
            assert hidden not in r.text, (kind, who, "shows a hidden image")
        if kind == "features" and who == "boss":
            assert all(i in r.text for i in world["ids"].values())
    if kind == "runs":  # one run's record too
        for who in WHO:
            r = _get(world, who, f"/api/runs/{world['run']}")
            if r.status_code == 404:
                continue
            for hidden in _hidden(world, who):
                assert hidden not in r.text, ("run record", who)


def _check_datasets(world: dict[str, Any]) -> None:
    for who in WHO:
        r = _get(world, who, "/api/datasets")
        assert r.status_code == 200
        assert {d["name"] for d in r.json()["items"]} == DATASETS[who], who


@pytest.mark.parametrize("kind", KINDS)
def test_permission_matrix(kind: str, probe_app: Any, request: pytest.FixtureRequest) -> None:
    sample = PROBE[kind].format(id="0" * 32, store="images/x.ome.zarr", run="r", labels="n")
    sample = sample.split("?")[0]
    if not _registered(probe_app, sample):
        pytest.skip("route not in this app yet")
    world = request.getfixturevalue("world")
    if kind in ("image", "thumbnail", "tile", "label_tile", "object_crop", "zarr"):
        _check_per_image(world, kind)
    elif kind == "search":
        _check_search(world)
    elif kind in ("features", "runs"):
        _check_lists(world, kind)
    else:
        _check_datasets(world)


def test_every_image_route_of_the_app_is_in_the_matrix(probe_app: Any) -> None:
    """A new GET route under /api/images/{...} must be added to the matrix (or this list)."""
    paths = [p for p, ops in probe_app.openapi()["paths"].items() if "get" in ops]
    known = ("thumbnail.png", "/tiles/", "/labels/", "/objects/")
    for path in paths:
        if not path.startswith("/api/images/{") or path.count("/") <= 3:
            continue  # not an image's route, or the image record itself
        assert any(k in path for k in known), f"{path}: add it to the permission matrix"
