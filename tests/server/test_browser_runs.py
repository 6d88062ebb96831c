"""In a browser (Playwright driving Debian's headless chromium) against `quantscope serve`:
start a pipeline run from the runs page, watch it finish, open its features and download the
table; any console error fails the test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def copy_server(served_copy: Path, serve_process: Callable[..., str]) -> str:
    """``quantscope serve`` over a private copy (the run writes to it)."""
    return serve_process(served_copy)


def test_start_run_watch_it_finish_download_features(
    chromium: str, copy_server: str, tmp_path: Path
) -> None:
    pw = pytest.importorskip("playwright.sync_api")
    import pyarrow.parquet as pq

    base = copy_server
    errors: list[str] = []
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        try:
            ctx = browser.new_context(accept_downloads=True)
            page = ctx.new_page()
            page.on(
                "console",
                lambda m: (
                    errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None
                ),
            )
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on(
                "response",
                lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
            )
            page.goto(base + "/runs")
            assert page.title().startswith("Runs")
            page.select_option("#pipeline", "nuclei")
            page.fill("#run-query", "well == 'A02'")
            page.click("#start-button")
            page.wait_for_url(lambda u: "/runs/" in u)
            # the page polls the status until the run is done, then links to it
            page.wait_for_selector("#run-done:not([hidden])", timeout=120_000)
            assert page.inner_text("#run-state") == "done"
            assert page.eval_on_selector("#run-progress", "e => [e.value, e.max]") == [1, 1]
            assert "1/1" in page.inner_text("#run-log")
            page.click("#run-link")
            page.wait_for_selector("svg.provenance")
            assert page.locator("svg.provenance g.node.step").count() == 3
            run_id = page.url.rstrip("/").rsplit("/", 1)[-1]
            page.click(f"a[href='/runs/{run_id}/features?table=Nuclei_features']")
            page.wait_for_selector("table#features tbody tr")
            shown = page.inner_text("main")
            assert "rows match" in shown
            with page.expect_download() as info:
                page.click("#download-parquet")
            out = tmp_path / "features.parquet"
            info.value.save_as(out)
            table = pq.read_table(out).to_pandas()
            assert len(table) > 5
            assert set(table["Metadata_Well"]) == {"A02"}  # the one well the run was given
            assert f"{len(table)} of {len(table)} rows match" in shown
            # a click on a point shows that object's crop (where the crop route exists)
            point = page.locator("svg.scatter a.point").first
            href = point.get_attribute("href") or ""
            import httpx

            if httpx.get(base + href).status_code == 200:
                point.click()
                page.wait_for_function(
                    "() => { const i = document.getElementById('crop');"
                    " return i.complete && i.naturalWidth > 0; }"
                )
                assert page.is_visible("#crop-box")
                assert "object" in page.inner_text("#crop-caption")
            page.screenshot(path=str(tmp_path / "features.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
