"""Access control over HTTP (issue 14 part 4): sign in and out, the session cookie's flags,
CSRF refusals, bearer tokens, the datasets API and pages, and the serve/single-user rules."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quantscope.catalog import Repository
from quantscope.server import create_app

ACCESS_PASSWORD = "correct horse battery"  # as conftest.access_world


def _client_factory(world: dict[str, Any]) -> Iterator[Any]:
    apps = []

    def make(base_url: str = "http://testserver") -> TestClient:
        app = create_app(world["root"])
        apps.append(app)
        return TestClient(app, base_url=base_url, follow_redirects=False)

    yield make
    for app in apps:
        app.state.quantscope.repo.close()


@pytest.fixture
def app_of(access_world: dict[str, Any]) -> Iterator[Any]:
    """Clients over a private world (the test may change it)."""
    yield from _client_factory(access_world)


@pytest.fixture
def ro_app_of(access_world_shared: dict[str, Any]) -> Iterator[Any]:
    """Clients over the module's shared world (the test only signs in and reads)."""
    yield from _client_factory(access_world_shared)


def _form_csrf(html: str) -> str:
    m = re.search(r"name='csrf' value='([^']*)'", html)
    assert m, html
    return m[1]


def _login(c: TestClient, name: str, password: str = ACCESS_PASSWORD, nxt: str = "/") -> Any:
    page = c.get("/login")
    assert page.status_code == 200
    return c.post(
        "/login",
        data={"name": name, "password": password, "csrf": _form_csrf(page.text), "next": nxt},
    )


def _set_cookies(r: Any) -> list[str]:
    return r.headers.get_list("set-cookie")


def test_login_sets_a_safe_cookie_and_logout_ends_the_session(ro_app_of: Any) -> None:
    c = ro_app_of()
    assert c.get("/api/whoami").json()["anonymous"] is True
    r = _login(c, "owner", nxt="/datasets")
    assert r.status_code == 303 and r.headers["location"] == "/datasets"
    [cookie] = [h for h in _set_cookies(r) if h.startswith("quantscope_session=")]
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/"} <= flags
    assert "secure" not in flags  # plain http
    sid = cookie.split(";")[0].split("=", 1)[1]
    me = c.get("/api/whoami").json()
    assert me["name"] == "owner" and me["anonymous"] is False and me["single_user"] is False
    page = c.get("/datasets")
    csrf = _form_csrf(page.text)
    assert f"<meta name='csrf-token' content='{csrf}'>" in page.text
    r = c.post("/logout", data={"csrf": csrf})
    assert r.status_code == 303
    c.cookies.clear()
    c.cookies.set("quantscope_session", sid)  # the old cookie no longer signs in
    assert c.get("/api/whoami").json()["anonymous"] is True


def test_cookie_is_secure_over_https(ro_app_of: Any) -> None:
    c = ro_app_of("https://testserver")
    r = _login(c, "owner")
    [cookie] = [h for h in _set_cookies(r) if h.startswith("quantscope_session=")]
    assert "secure" in cookie.lower()


def test_wrong_password_and_unknown_user_look_the_same(ro_app_of: Any) -> None:
    c = ro_app_of()
    a = _login(c, "owner", "wrong password")
    b = _login(c, "nobody-here", ACCESS_PASSWORD)
    assert a.status_code == b.status_code == 401
    assert "wrong name or password" in a.text and "wrong name or password" in b.text
    assert not [h for h in _set_cookies(a) if h.startswith("quantscope_session=")]
    assert c.get("/api/whoami").json()["anonymous"] is True


def test_login_refuses_a_form_without_its_double_submit_token(ro_app_of: Any) -> None:
    c = ro_app_of()
    data = {"name": "owner", "password": ACCESS_PASSWORD, "csrf": "x" * 43}
    assert c.post("/login", data=data).status_code == 403  # no cookie at all
    c.get("/login")
    assert c.post("/login", data=data).status_code == 403  # cookie, but another value
    assert c.post("/login", data={**data, "csrf": ""}).status_code == 403
    assert c.get("/api/whoami").json()["anonymous"] is True


@pytest.mark.parametrize(
    "target,expected",
    [
        ("/plates?x=1", "/plates?x=1"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
    ],
)
def test_login_redirects_only_to_local_paths(ro_app_of: Any, target: str, expected: str) -> None:
    r = _login(ro_app_of(), "member", nxt=target)
    assert r.status_code == 303 and r.headers["location"] == expected


def test_cookie_sessions_need_the_csrf_token(app_of: Any) -> None:
    c = app_of()
    _login(c, "owner")
    body = {"name": "mine", "q": ""}
    r = c.post("/api/datasets", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["error"]["message"]
    r = c.post("/api/datasets", json=body, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    csrf = _form_csrf(c.get("/datasets").text)
    r = c.post("/api/datasets", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    r = c.post("/datasets/mine/visibility", data={"visibility": "public"})
    assert r.status_code == 403
    r = c.post("/datasets/mine/visibility", data={"visibility": "public", "csrf": csrf})
    assert r.status_code == 303
    assert c.post("/logout").status_code == 403  # a cross-site form cannot sign you out


def test_bearer_tokens_need_no_csrf_and_bad_ones_are_refused(
    app_of: Any, access_world: dict[str, Any]
) -> None:
    c = app_of()
    auth = {"Authorization": "Bearer " + access_world["tokens"]["member"]}
    assert c.get("/api/whoami", headers=auth).json()["name"] == "member"
    r = c.post("/api/datasets", json={"name": "m1", "q": ""}, headers=auth)
    assert r.status_code == 201 and r.json()["owner"] == "member"
    for bad in ("Bearer nope", "Bearer ", "Basic abc"):
        r = c.get("/api/whoami", headers={"Authorization": bad})
        assert r.status_code == 401, bad
        assert r.headers["www-authenticate"] == "Bearer"


def test_revoked_token_and_removed_user_stop_working(
    app_of: Any, access_world: dict[str, Any]
) -> None:
    c = app_of()
    _login(c, "other")
    tok = access_world["tokens"]["other"]
    assert c.get("/api/whoami", headers={"Authorization": f"Bearer {tok}"}).status_code == 200
    repo = c.app.state.quantscope.repo  # type: ignore[attr-defined]
    repo.access.remove_user("other")
    assert c.get("/api/whoami", headers={"Authorization": f"Bearer {tok}"}).status_code == 401
    assert c.get("/api/whoami").json()["anonymous"] is True  # the session ended with the user


def _auth(world: dict[str, Any], who: str) -> dict[str, str]:
    return {} if who == "anonymous" else {"Authorization": "Bearer " + world["tokens"][who]}


def test_dataset_list_follows_the_policy(
    ro_app_of: Any, access_world_shared: dict[str, Any]
) -> None:
    access_world = access_world_shared
    c = ro_app_of()
    seen = {
        who: {
            d["name"]: d
            for d in c.get("/api/datasets", headers=_auth(access_world, who)).json()["items"]
        }
        for who in ("anonymous", "other", "member", "owner", "boss")
    }
    assert set(seen["anonymous"]) == set(seen["other"]) == {"open"}
    assert set(seen["member"]) == set(seen["owner"]) == {"lab", "open"}
    assert set(seen["boss"]) == {"lab", "legacy", "open"}
    assert seen["owner"]["lab"] | {"images": 1} == {
        "name": "lab",
        "owner": "owner",
        "members": ["member"],
        "visibility": "private",
        "images": 1,
        "writable": True,
    }
    assert seen["member"]["lab"]["writable"] is False and seen["member"]["lab"]["members"] is None
    assert seen["boss"]["legacy"]["owner"] is None


def test_share_and_visibility_answer_401_403_404(app_of: Any, access_world: dict[str, Any]) -> None:
    c = app_of()

    def post(who: str, path: str, body: dict[str, str]) -> Any:
        return c.post(path, json=body, headers=_auth(access_world, who))

    assert post("anonymous", "/api/datasets/lab/share", {"user": "other"}).status_code == 401
    assert post("other", "/api/datasets/lab/share", {"user": "other"}).status_code == 404
    assert (
        post("other", "/api/datasets/legacy/visibility", {"visibility": "public"}).status_code
        == 404
    )
    assert post("member", "/api/datasets/lab/share", {"user": "other"}).status_code == 403
    assert (
        post("other", "/api/datasets/open/visibility", {"visibility": "private"}).status_code == 403
    )
    assert post("owner", "/api/datasets/nope/share", {"user": "other"}).status_code == 404
    r = post("owner", "/api/datasets/lab/share", {"user": "ghost"})
    assert r.status_code == 404 and "no user named 'ghost'" in r.json()["error"]["message"]
    r = post("owner", "/api/datasets/lab/visibility", {"visibility": "world"})
    assert r.status_code == 400 and "visibility" in r.json()["error"]["message"]
    assert post("owner", "/api/datasets/lab/share", {}).status_code == 422
    r = post("owner", "/api/datasets/lab/share", {"user": "other"})
    assert r.status_code == 200 and r.json()["members"] == ["member", "other"]
    names = {
        d["name"]
        for d in c.get("/api/datasets", headers=_auth(access_world, "other")).json()["items"]
    }
    assert "lab" in names
    r = post("boss", "/api/datasets/legacy/visibility", {"visibility": "public"})
    assert r.status_code == 200 and r.json()["visibility"] == "public"
    names = {d["name"] for d in c.get("/api/datasets").json()["items"]}
    assert names == {"open", "legacy"}


def test_a_query_dataset_takes_only_images_the_caller_may_see(
    app_of: Any, access_world: dict[str, Any]
) -> None:
    """Otherwise a user could put hidden images into a dataset of their own and see them."""
    c = app_of()
    r = c.post(
        "/api/datasets", json={"name": "grab", "q": ""}, headers=_auth(access_world, "other")
    )
    assert r.status_code == 201 and r.json()["added"] == 1 and r.json()["images"] == 1
    with Repository.open(access_world["root"]) as repo:
        members = repo.query.find_ids('dataset == "grab"')
    assert members == [access_world["ids"]["public"]]
    # an existing dataset of someone else: 403 (visible) and nothing is added
    r = c.post(
        "/api/datasets", json={"name": "open", "q": ""}, headers=_auth(access_world, "other")
    )
    assert r.status_code == 403
    r = c.post("/api/datasets", json={"name": "x", "q": ""})
    assert r.status_code == 401
    r = c.post(
        "/api/datasets", json={"name": "y", "q": "plate =="}, headers=_auth(access_world, "boss")
    )
    assert r.status_code == 400 and "plate" in r.json()["error"]["message"]
    r = c.post(
        "/api/datasets",
        json={"name": "z", "q": "", "public": True},
        headers=_auth(access_world, "boss"),
    )
    assert r.status_code == 201 and r.json()["visibility"] == "public" and r.json()["images"] == 4


def test_datasets_page_forms(app_of: Any) -> None:
    c = app_of()
    anon = c.get("/datasets")
    assert anon.status_code == 200 and "open" in anon.text and "lab" not in anon.text
    assert "<form method='post' action='/datasets'" not in anon.text
    _login(c, "owner")
    page = c.get("/datasets")
    csrf = _form_csrf(page.text)
    assert "action='/datasets/lab/share'" in page.text and "Make public" in page.text
    r = c.post("/datasets", data={"name": "fresh", "q": "", "public": "1", "csrf": csrf})
    assert r.status_code == 303
    page = c.get(r.headers["location"])
    assert "dataset fresh saved" in page.text and "data-dataset='fresh'" in page.text
    r = c.post("/datasets/lab/share", data={"user": "ghost", "csrf": csrf})
    assert r.status_code == 404
    r = c.post("/datasets", data={"name": "bad", "q": "plate ==", "csrf": csrf})
    assert r.status_code == 400 and "class='error'" in r.text


def test_single_user_default_follows_the_users(served_copy: Path) -> None:
    app = create_app(served_copy)
    assert app.state.quantscope.single_user is True
    app.state.quantscope.repo.close()
    with Repository.open(served_copy) as repo:
        repo.access.add_user("ada", "long-enough", admin=True)
    app = create_app(served_copy)
    try:
        assert app.state.quantscope.single_user is False
        with TestClient(app) as c:
            assert c.get("/api/whoami").json()["anonymous"] is True
            assert c.post("/login", data={"name": "a", "password": "b"}).status_code == 403
    finally:
        app.state.quantscope.repo.close()


def test_serve_refuses_every_interface_without_users_and_allows_it_with(
    cli: Any, served_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import quantscope.server as server

    started: list[Any] = []
    monkeypatch.setattr(server, "serve", lambda root, opts: started.append(opts))
    r = cli("serve", served_copy, "--host", "0.0.0.0")
    assert r.exit_code != 0 and "single-user" in str(r.exception) and not started
    with Repository.open(served_copy) as repo:
        repo.access.add_user("ada", "long-enough", admin=True)
    r = cli("serve", served_copy, "--host", "0.0.0.0", "--port", "8123")
    assert r.exit_code == 0, r.output
    assert [(o.host, o.port) for o in started] == [("0.0.0.0", 8123)]


def test_zarr_paths_follow_their_images(access_world_shared: dict[str, Any]) -> None:
    """What ``/zarr/`` serves to whom: an image's files by its image's rule, plate/row/well
    groups when an image below is visible; anything else the same 404 as a missing file."""
    from fastapi.testclient import TestClient

    from quantscope.server import create_app

    world = access_world_shared
    with Repository.open(world["root"]) as repo:
        store = {k: repo.images.get(i).store_path for k, i in world["ids"].items()}
    app = create_app(world["root"])

    def get(who: str | None, rel: str) -> int:
        headers = {"Authorization": "Bearer " + world["tokens"][who]} if who else {}
        return int(client.get("/zarr/" + rel, headers=headers).status_code)

    with TestClient(app) as client:
        assert get(None, store["public"] + "/zarr.json") == 200
        for hidden in ("private", "legacy", "none"):
            for sub in ("/zarr.json", "/labels/zarr.json", "/0/zarr.json"):
                assert get(None, store[hidden] + sub) == 404
        assert get("member", store["private"] + "/zarr.json") == 200
        assert get("member", store["none"] + "/zarr.json") == 404
        plate = "/".join(store["public"].split("/")[:2])
        assert get(None, plate + "/zarr.json") == 200
        # a well holding hidden images only
        hidden_well = store["none"].rsplit("/", 1)[0]
        assert get(None, hidden_well + "/zarr.json") == 404
        assert get("boss", hidden_well + "/zarr.json") == 200
        for outside in ("catalog.sqlite", "quantscope.toml", "../etc/passwd", "tables"):
            assert get("boss", outside) == 404
    app.state.quantscope.repo.close()


def test_prepare_dataset_write_claims_new_names_only(access_world: dict[str, Any]) -> None:
    """What an upload into a dataset calls first (h4's POST /api/ingest)."""
    from quantscope.catalog import Principal
    from quantscope.errors import AccessDenied, NotAuthenticated
    from quantscope.server._api_access import prepare_dataset_write

    with Repository.open(access_world["root"]) as repo:
        other = repo.access.principal("other")
        ds = prepare_dataset_write(repo, other, "uploads-of-other")
        assert (ds.owner, ds.visibility) == ("other", "private")
        assert prepare_dataset_write(repo, other, "uploads-of-other").owner == "other"
        for taken in ("lab", "open", "legacy"):
            with pytest.raises(AccessDenied):
                prepare_dataset_write(repo, other, taken)
        with pytest.raises(NotAuthenticated):
            prepare_dataset_write(repo, Principal.anonymous(), "x")
        assert prepare_dataset_write(repo, repo.access.principal("owner"), "lab").owner == "owner"
        assert prepare_dataset_write(repo, Principal.local(), "by-local").owner is None


def test_live_server_with_users_signs_in(
    access_world_shared: dict[str, Any], serve_process: Any
) -> None:
    access_world = access_world_shared
    """`quantscope serve` on a repository with users: sign-in mode, a real cookie round trip."""
    import httpx

    url = serve_process(access_world["root"])
    with httpx.Client(base_url=url, follow_redirects=False) as c:
        me = c.get("/api/whoami").json()
        assert me["single_user"] is False and me["anonymous"] is True
        page = c.get("/login")
        r = c.post(
            "/login",
            data={"name": "member", "password": ACCESS_PASSWORD, "csrf": _form_csrf(page.text)},
        )
        assert r.status_code == 303
        assert c.get("/api/whoami").json()["name"] == "member"
        names = {d["name"] for d in c.get("/api/datasets").json()["items"]}
        assert names == {"lab", "open"}


def test_every_state_changing_route_checks_the_csrf_token(served_root: Path) -> None:
    """Each POST/PUT/PATCH/DELETE route of the app depends on ``require_csrf`` (per route:
    an app-wide dependency slowed every tile); a new route without it fails here."""
    from fastapi.routing import APIRoute

    from quantscope.server import create_app
    from quantscope.server._auth import require_csrf

    def calls(dependant: Any) -> set[Any]:
        out = {dependant.call}
        for sub in dependant.dependencies:
            out |= calls(sub)
        return out

    def routes(items: Any) -> Any:
        for r in items:
            if isinstance(r, APIRoute):
                yield r
            inner = getattr(r, "original_router", None)  # an included router (FastAPI 0.16x)
            if inner is not None:
                yield from routes(inner.routes)

    app = create_app(served_root)
    try:
        unsafe = {
            (r.path, m): r
            for r in routes(app.routes)
            for m in (r.methods or set()) - {"GET", "HEAD", "OPTIONS"}
        }
        assert len(unsafe) >= 12  # login, logout, datasets (API and forms), runs, ingest
        missing = sorted(k for k, r in unsafe.items() if require_csrf not in calls(r.dependant))
        assert not missing, f"routes without the CSRF check: {missing}"
    finally:
        app.state.quantscope.repo.close()
