"""Runs over HTTP: list, record, feature exports (read back with pyarrow, pandas, anndata, and
compared with `quantscope features`), provenance, and pipeline runs started with POST
/api/runs whose progress every server process sees."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
UNKNOWN_TOOL = """\
name: broken
channels: {DNA: [DAPI, 0]}
steps:
  - id: seg
    tool: no-such-tool
    inputs: {image: DNA}
    outputs: {labels: Nuclei}
"""
BOMB = (
    "name: x\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "channels: {A: [0]}\nsteps: *i\n"
)  # 9**9 nodes once expanded ("billion laughs")


def _client(root: Path, **kw: Any) -> Any:
    from fastapi.testclient import TestClient

    from quantscope.server import create_app

    return TestClient(create_app(root, **kw))


@pytest.fixture
def writer(served_copy: Path) -> Iterator[Any]:
    """A client over a private copy of the served repository (single-user: the local admin)."""
    with _client(served_copy) as c:
        yield c
    c.app.state.quantscope.repo.close()


def _run_id(client: Any) -> str:
    items = client.get("/api/runs").json()["items"]
    assert items
    return str(items[-1]["id"])


def _wait(client: Any, url: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        s = client.get(url).json()
        if s["state"] in ("done", "failed") or time.monotonic() > deadline:
            return dict(s)
        time.sleep(0.1)


def test_list_and_record(client) -> None:
    body = client.get("/api/runs").json()
    assert body["total"] == len(body["items"]) >= 1
    run = body["items"][-1]
    assert run["pipeline_name"] == "nuclei" and run["status"] == "completed"
    rec = client.get(f"/api/runs/{run['id']}").json()
    assert rec["id"] == run["id"] and rec["spec"]["name"] == "nuclei"
    assert {s["step"] for s in rec["steps"]} == {"illumination", "nuclei", "measure"}
    kinds = {a["kind"] for a in rec["artifacts"]}
    assert kinds == {"labels", "table"}
    assert {a["image_id"] for a in rec["artifacts"]} == {s["image_id"] for s in rec["steps"]}


def test_features_formats_read_back(client, served_root: Path, cli, tmp_path: Path) -> None:
    import anndata
    import pandas as pd
    import pyarrow.parquet as pq

    run_id = _run_id(client)
    # what the CLI writes, for the same run and table
    out = tmp_path / "cli.parquet"
    assert cli("features", served_root, run_id, "--out", out).exit_code == 0
    expected = pd.read_parquet(out)
    assert len(expected) > 10

    r = client.get(f"/api/runs/{run_id}/features?format=parquet")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    assert "attachment" in r.headers["content-disposition"]
    assert r.headers["content-disposition"].endswith('.parquet"')
    got = pq.read_table(io.BytesIO(r.content)).to_pandas()
    pd.testing.assert_frame_equal(got, expected)

    r = client.get(f"/api/runs/{run_id}/features?format=csv")
    assert r.headers["content-type"].startswith("text/csv")
    csv = pd.read_csv(io.BytesIO(r.content))
    assert len(csv) == len(expected) and list(csv.columns) == list(expected.columns)

    r = client.get(f"/api/runs/{run_id}/features?format=anndata")
    assert r.headers["content-type"] == "application/x-hdf5"
    h5 = tmp_path / "got.h5ad"
    h5.write_bytes(r.content)
    adata = anndata.read_h5ad(h5)
    assert adata.n_obs == len(expected) and adata.uns["quantscope_run"] == run_id
    assert "AreaShape_Area" in adata.var_names

    r = client.get(f"/api/runs/{run_id}/features?format=csv&table=Image")
    per_image = pd.read_csv(io.BytesIO(r.content))
    assert len(per_image) == 4  # the 2x2 plate


def test_features_bad_input(client) -> None:
    run_id = _run_id(client)
    for url, status, words in [
        (f"/api/runs/{run_id[:8]}", 404, "no run"),  # full ids only
        (f"/api/runs/{run_id[:1]}/features", 404, "no run"),
        (f"/api/runs/{run_id}/features?format=xlsx", 400, "parquet, csv or anndata"),
        (f"/api/runs/{run_id}/features?table=Nope", 404, "no table"),
        (f"/api/runs/{run_id}/features?table=../../etc", 404, "no table"),
        (f"/api/runs/{run_id}/features?naming=weird", 400, "cellprofiler or quantscope"),
        ("/api/runs/0000000000000000/features", 404, "no run"),
        ("/api/runs/..%2F..%2Fetc/features", 404, ""),
        ("/api/runs/abc/provenance", 404, "no run"),
        ("/api/runs/ffffffffffffffffffffffffffffffff", 404, "no run"),
        ("/api/runs/ffffffffffffffffffffffffffffffff/status", 404, "no run"),
    ]:
        r = client.get(url)
        assert r.status_code == status, (url, r.text)
        err = r.json()["error"]
        assert words in err["message"], (url, err)
        assert "/tmp" not in err["message"] and "Traceback" not in r.text


def test_provenance(client) -> None:
    run_id = _run_id(client)
    doc = client.get(f"/api/runs/{run_id}/provenance").json()
    assert doc["run"]["id"] == run_id
    assert [s["tool"] for s in doc["steps"]] == [
        "illumination-correction",
        "segment-nuclei",
        "measure",
    ]
    assert len(doc["images"]) == 4 and all(i["sources"] for i in doc["images"])
    assert {o["output"] for o in doc["outputs"]} >= {"Nuclei", "Nuclei_features"}


def test_status_of_a_finished_cli_run(client) -> None:
    run_id = _run_id(client)
    s = client.get(f"/api/runs/{run_id}/status").json()
    assert s["state"] == "done" and s["run_id"] == run_id and s["done"] == s["total"] == 4


def test_anonymous_sees_no_run_and_may_not_start(served_copy: Path) -> None:
    with _client(served_copy, single_user=False) as c:
        run_id = c.app.state.quantscope.repo.runs.all()[0].id
        assert c.get("/api/runs").json() == {"items": [], "total": 0}
        for url in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/features"):
            assert c.get(url).status_code == 404  # as if it did not exist
        r = c.post("/api/runs", json={"pipeline": "nuclei"})
        assert r.status_code == 401
        assert not (served_copy / ".quantscope.jobs").exists()


def test_post_run_by_name_runs_in_background(writer, served_copy: Path) -> None:
    before = {r["id"] for r in writer.get("/api/runs").json()["items"]}
    r = writer.post("/api/runs", json={"pipeline": "nuclei", "q": "well == 'A01'"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status_url"] == f"/api/runs/{body['id']}/status"
    s = _wait(writer, body["status_url"])
    assert s["state"] == "done", s
    assert s["done"] == s["total"] == 1
    assert any("1/1" in line for line in s["log"])
    # the run landed in the catalog as from the CLI, with its outputs and provenance
    new = {r["id"] for r in writer.get("/api/runs").json()["items"]} - before
    assert new == {s["run_id"]}
    rec = writer.get(f"/api/runs/{s['run_id']}").json()
    assert rec["status"] == "completed" and rec["n_images"] == 1
    prov = writer.get(f"/api/runs/{s['run_id']}/provenance").json()
    assert prov["images"][0]["well"] == "A01"
    # progress is on disk: another app (another worker process) over the same folder sees it
    with _client(served_copy) as other:
        assert other.get(body["status_url"]).json()["state"] == "done"
    assert (served_copy / ".quantscope.jobs" / f"{body['id']}.json").is_file()


def test_post_run_yaml_body(writer) -> None:
    spec = (REPO_ROOT / "pipelines" / "nuclei.yaml").read_text()
    r = writer.post(
        "/api/runs?q=well+%3D%3D+%27B02%27",
        content=spec,
        headers={"content-type": "application/yaml"},
    )
    assert r.status_code == 202, r.text
    s = _wait(writer, r.json()["status_url"])
    assert s["state"] == "done" and s["total"] == 1


def test_post_run_as_a_form(writer) -> None:
    r = writer.post("/api/runs", data={"pipeline": "nuclei", "q": "well == 'A02'"})
    assert r.status_code == 202, r.text
    assert _wait(writer, r.json()["status_url"])["state"] == "done"


def test_post_run_bad_specs(writer, served_copy: Path) -> None:
    cases = [
        ({"pipeline": UNKNOWN_TOOL}, "no-such-tool"),
        ({"pipeline": "name: [unclosed"}, "not valid YAML"),
        ({"pipeline": BOMB}, "aliases"),
        ({"pipeline": "no-such-pipeline"}, "no such pipeline"),
        ({"pipeline": ""}, "pipeline"),
        ({"pipeline": 42}, "pipeline"),
        ({"pipeline": "nuclei", "q": "well =="}, ""),
        ({"pipeline": "nuclei", "q": "well == 'Z99'"}, "no image"),
        ([1, 2], "expected"),
    ]
    from quantscope.analysis import get_tool

    if get_tool("cellpose").unavailable() is not None:  # refused before it is accepted
        cases.append(({"pipeline": UNKNOWN_TOOL.replace("no-such-tool", "cellpose")}, "cellpose"))
    for body, words in cases:
        r = writer.post("/api/runs", json=body)
        assert r.status_code in (400, 422), (body, r.text)
        assert words in r.json()["error"]["message"], (body, r.json())
    r = writer.post("/api/runs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = writer.post("/api/runs", content=b"\xff\xfe", headers={"content-type": "text/plain"})
    assert r.status_code == 400
    big = b"name: x\n" + b"#" * (600 * 1024)
    r = writer.post("/api/runs", content=big, headers={"content-type": "application/yaml"})
    assert r.status_code == 400 and "512 KiB" in r.json()["error"]["message"]
    r = writer.post("/api/runs", content=iter([big]), headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "512 KiB" in r.json()["error"]["message"]
    # nothing was started
    assert not (served_copy / ".quantscope.jobs").exists()


def test_post_run_while_repository_locked(writer) -> None:
    repo = writer.app.state.quantscope.repo
    other = type(repo).open(repo.root)
    try:
        with other.write_lock():
            r = writer.post("/api/runs", json={"pipeline": "nuclei"})
    finally:
        other.close()
    assert r.status_code == 409 and r.json()["error"]["type"] == "ConcurrentAccess"


def test_builtin_pipeline_is_the_repository_pipeline() -> None:
    builtin = REPO_ROOT / "src" / "quantscope" / "server" / "_pipelines" / "nuclei.yaml"
    assert builtin.read_text() == (REPO_ROOT / "pipelines" / "nuclei.yaml").read_text()


def test_pipelines_list(client) -> None:
    names = {p["name"]: p["source"] for p in client.get("/api/pipelines").json()["items"]}
    assert names["nuclei"] == "built-in"


def test_progress_seen_by_every_worker(served_copy: Path, serve_process) -> None:
    """`serve --workers 2`: a run started through one worker process; every status request,
    whichever worker answers it (a new connection each), reads the same job from disk."""
    import httpx

    base = serve_process(served_copy, "--workers", "2")
    r = httpx.post(base + "/api/runs", json={"pipeline": "nuclei", "q": "well == 'B01'"})
    assert r.status_code == 202, r.text
    url = base + r.json()["status_url"]
    deadline = time.monotonic() + 120
    states = []
    while time.monotonic() < deadline:
        s = httpx.get(url, headers={"connection": "close"}).json()
        states.append(s["state"])
        if s["state"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert states[-1] == "done", s
    finals = [httpx.get(url, headers={"connection": "close"}).json() for _ in range(8)]
    assert {f["state"] for f in finals} == {"done"}
    assert {f["run_id"] for f in finals} == {s["run_id"]}
    assert httpx.get(f"{base}/api/runs/{s['run_id']}").json()["status"] == "completed"


def test_a_run_that_fails_reports_it(writer, monkeypatch: pytest.MonkeyPatch) -> None:
    import quantscope.analysis

    def broken(*args: Any, **kwargs: Any) -> None:
        raise quantscope.analysis.ToolUnavailable("the GPU went away")

    monkeypatch.setattr(quantscope.analysis, "run_pipeline", broken)
    r = writer.post("/api/runs", json={"pipeline": "nuclei"})
    assert r.status_code == 202
    s = _wait(writer, r.json()["status_url"])
    assert s["state"] == "failed" and s["run_id"] is None
    assert "the GPU went away" in s["error"] and "failed" in s["log"][-1]
    page = writer.get(f"/runs/{r.json()['id']}", headers={"accept": "text/html"})
    assert page.status_code == 200 and "the GPU went away" in page.text
    assert "data-state='failed'" in page.text
