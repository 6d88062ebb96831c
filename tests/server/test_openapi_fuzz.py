"""Every route of the app's OpenAPI description, fuzzed with schemathesis (a bounded number of
generated requests per operation, on a private copy of the served repository): never a server
error (status >= 500), whatever the path, query, headers or body."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

EXAMPLES = 8  # per operation (derandomized): the whole file stays under 10 s on one core


@pytest.fixture(scope="module")
def fuzz_app(served_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from quantscope.server import create_app

    root = tmp_path_factory.mktemp("fuzz") / "repo"
    shutil.copytree(served_root, root, symlinks=True)  # POST routes may write: not the shared one
    app = create_app(root)
    yield app
    app.state.quantscope.repo.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


def operations(api_schema: Any) -> list[Any]:
    return [result.ok() for result in api_schema.get_all_operations()]


def test_no_server_errors(api_schema: Any, fuzz_app: Any) -> None:
    """Each operation's generated requests (schemathesis strategies driven by hypothesis)."""
    from hypothesis import given
    from hypothesis import strategies as st

    real = fuzz_app.state.quantscope.repo.query.find_ids("")[0]

    def with_real_image(case: Any) -> Any:
        # half the cases name an image that exists, so rendering code runs on fuzzed input
        if case.path_parameters and "image_id" in case.path_parameters:
            case.path_parameters["image_id"] = real
        return case

    seen = []
    for op in operations(api_schema):
        strategy = op.as_strategy()

        @given(case=st.one_of(strategy, strategy.map(with_real_image)))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            response = case.call()
            assert response.status_code < 500, (
                case.method,
                case.formatted_path,
                case.query,
                response.text[:300],
            )

        run()
        seen.append(f"{op.method.upper()} {op.path}")
    assert "GET /api/images/{image_id}/tiles/{level}/{z}/{y}/{x}.png" in seen


def test_the_schema_lists_the_image_routes(api_schema: Any) -> None:
    paths = set(api_schema.raw_schema["paths"])
    for p in (
        "/api/images",
        "/api/images/{image_id}",
        "/api/images/{image_id}/thumbnail.png",
        "/api/images/{image_id}/tiles/{level}/{z}/{y}/{x}.png",
        "/api/images/{image_id}/labels/{name}/tiles/{level}/{z}/{y}/{x}.png",
        "/api/images/{image_id}/objects/{value}/crop.png",
        "/zarr/{path}",
    ):
        assert p in paths, p
