"""The app's frame: who the caller is, errors as JSON, OpenAPI, and `serve`'s address rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantscope.errors import AccessDenied, InvalidInput
from quantscope.server import ServeOptions, check_options


def test_single_user_caller_is_local_admin(client) -> None:
    r = client.get("/api/whoami")
    assert r.status_code == 200
    assert r.json() == {"name": "local", "admin": True, "anonymous": False, "single_user": True}


def test_unknown_api_route_is_json_404(client) -> None:
    r = client.get("/api/no-such-thing")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["type"] == "NotFound"


def test_unknown_page_is_html_404(client) -> None:
    r = client.get("/no-such-page", headers={"accept": "text/html"})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>404</h1>" in r.text


def test_openapi_and_docs(client) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "quantscope"
    assert "/api/whoami" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_without_users_only_loopback() -> None:
    check_options(ServeOptions(host="127.0.0.1"), has_users=False)
    check_options(ServeOptions(host="::1"), has_users=False)
    with pytest.raises(AccessDenied, match="single-user"):
        check_options(ServeOptions(host="0.0.0.0"), has_users=False)
    check_options(ServeOptions(host="0.0.0.0"), has_users=True)
    with pytest.raises(InvalidInput, match="--port"):
        check_options(ServeOptions(port=70000), has_users=True)
    with pytest.raises(InvalidInput, match="--workers"):
        check_options(ServeOptions(workers=0), has_users=True)


def test_serve_refuses_public_address_without_users(cli, served_root: Path) -> None:
    r = cli("serve", served_root, "--host", "0.0.0.0")
    assert r.exit_code != 0
    assert isinstance(r.exception, AccessDenied)  # main() prints it as one line, exit 1
    assert "single-user" in str(r.exception) and "quantscope user add" in str(r.exception)


def test_live_server_answers(live_server: str) -> None:
    import httpx

    r = httpx.get(live_server + "/api/whoami")
    assert r.status_code == 200 and r.json()["single_user"] is True


def test_serve_passes_scheduler_and_workers_to_uvicorn(
    cli, served_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve --scheduler` reaches the runs started over HTTP (through the environment of the
    uvicorn workers), `--workers` reaches uvicorn."""
    import os

    import uvicorn

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    for name in ("REPO", "CORS", "SINGLE_USER", "SCHEDULER"):  # restored after the test
        monkeypatch.setenv(f"QUANTSCOPE_SERVE_{name}", "")
    r = cli("serve", served_copy, "--workers", "3", "--scheduler", "tcp://127.0.0.1:8786")
    assert r.exit_code == 0, r.output
    assert seen["workers"] == 3 and seen["host"] == "127.0.0.1" and seen["factory"] is True
    assert os.environ["QUANTSCOPE_SERVE_SCHEDULER"] == "tcp://127.0.0.1:8786"
    assert os.environ["QUANTSCOPE_SERVE_SINGLE_USER"] == "1"
