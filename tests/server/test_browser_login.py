"""Signing in and out in a real browser (Playwright driving Debian's headless chromium) against
``quantscope serve`` of a repository with users: an anonymous visitor sees only the public
dataset's image; after signing in on the login page the owner sees the private one too, opens
it and creates a dataset from a query with the page's form (its CSRF token); after signing out
the private image is gone again. Any console error, page error or failed request fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from quantscope.catalog import Repository

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery"


def test_sign_in_see_more_create_a_dataset_sign_out(
    served_copy: Path, serve_process: Callable[..., str], chromium: str
) -> None:
    from playwright.sync_api import sync_playwright

    with Repository.open(served_copy) as repo:
        ids = repo.query.find_ids("")
        repo.access.add_user("ada", PASSWORD)
        repo.annotations.add_to_dataset("open", [ids[0]])
        repo.access.set_owner("open", "ada")
        repo.access.set_visibility("open", "public")
        repo.annotations.add_to_dataset("lab", [ids[1]])
        repo.access.set_owner("lab", "ada")
    base = serve_process(served_copy)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        page = browser.new_page()
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))

        def listed() -> set[str]:
            page.goto(base + "/")
            return {
                a.get_attribute("href").rsplit("/", 1)[-1]
                for a in page.locator("table a[href^='/images/']").all()
            }

        assert listed() == {ids[0]}  # anonymous: the public dataset only
        page.click("text=Sign in")
        page.fill("input[name=name]", "ada")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        assert "ada" in page.inner_text("header")
        assert listed() == {ids[0], ids[1]}
        page.goto(f"{base}/images/{ids[1]}")
        assert ids[1] in page.inner_text("main")
        # a form of the portal: a dataset from a query (carries the session's CSRF token)
        page.goto(base + "/datasets")
        form = page.locator("form[action='/datasets']")
        form.locator("input[name=name]").fill("mine")
        form.locator("input[name=q]").fill(f'id == "{ids[1]}"')
        form.locator("button[type=submit]").click()
        page.wait_for_load_state()
        assert "mine" in page.inner_text("main")
        page.click("header button:has-text('Sign out')")
        page.wait_for_load_state()
        assert listed() == {ids[0]}
        browser.close()
    assert not problems, problems
    with Repository.open(served_copy) as repo:
        assert repo.access.dataset_access("mine").owner == "ada"
