"""An external researcher's whole way through the portal, in a real headless Chromium.

Register, confirm through the mailed link, log in, search "rest" and pick the EEG facet,
open the published external release, accept the Data Usage Agreement, create a token, then
``datalad clone`` + ``datalad get`` with it over HTTP. A screenshot of every step is saved
under ``tests/artifacts/portal/`` (gitignored); the test prints the folder.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from windl.config import load_site
from windl.portal import audit
from windl.portal.app import portal_engine

from conftest import (
    MEMBERS_ONLY_STUDY,
    REPO,
    copy_site,
    datalad_user,
    only_match,
    portal_server,
    release_dir,
    sha256_of,
)

ARTIFACTS = REPO / "tests" / "artifacts" / "portal"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EMAIL = "researcher@uni.example.org"
PASSWORD = "a long enough passphrase"


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (ci/setup.sh installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            yield page
        finally:
            browser.close()


def test_external_user_registers_accepts_the_dua_and_clones_with_a_token(
    published_site_template: Path, tmp_path: Path, browser_page
) -> None:
    page = browser_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {ARTIFACTS}")

    def shot(name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    root = copy_site(published_site_template, tmp_path / "site")
    with portal_server(root) as url:
        page.goto(f"{url}/register")
        page.get_by_label("Name").fill("Rae Searcher")
        page.get_by_label("E-mail").fill(EMAIL)
        page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)
        shot("01-register")
        page.get_by_role("button", name="Register").click()
        page.get_by_role("heading", name="Check your mail").wait_for()
        shot("02-check-your-mail")

        (mail,) = (root / "portal" / "outbox").glob("*.eml")
        link = re.search(r"http://\S+/confirm/\S+", mail.read_text()).group(0)
        assert link.startswith(url)
        page.goto(link)
        page.get_by_role("heading", name="Address confirmed").wait_for()
        shot("03-confirmed")

        page.get_by_role("link", name="Log in").first.click()
        page.get_by_label("E-mail").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("heading", name="Your account").wait_for()
        assert "not accepted" in page.content()
        shot("04-logged-in")

        page.goto(url)
        page.get_by_label("Search the catalog").fill("rest")
        page.get_by_label("Search the catalog").press("Enter")
        page.wait_for_url(re.compile(r"/search\?q=rest"))
        shot("05-search-rest")
        page.locator('a[data-facet="modality"][data-value="eeg"]').click()
        page.wait_for_url(re.compile(r"modality=eeg"))
        results = page.locator("article.result h2 a")
        assert results.all_inner_texts() == [results.first.inner_text()]
        assert MEMBERS_ONLY_STUDY not in page.content()
        shot("06-facet-eeg")

        results.first.click()
        page.wait_for_url(re.compile(r"/datasets/study1/external$"))
        content = page.content()
        for heading in ("How to cite", "Versions", "How to clone", "Description", "Methods"):
            assert page.get_by_role("heading", name=heading).count() == 1, heading
        assert f"{url}/git/study1/external" in content
        shot("07-dataset")

        page.get_by_role("link", name="Read and accept it").click()
        page.get_by_role("heading", name=re.compile("Data Usage Agreement")).wait_for()
        shot("08-dua")
        page.get_by_role("button", name=re.compile("I accept the Data Usage Agreement")).click()
        page.wait_for_url(re.compile(r"/datasets/study1/external$"))
        assert "You accepted it." in page.content()
        shot("09-dua-accepted")

        # a members-only study: no result, no facet count, and its page is the 404 of a
        # study that does not exist
        page.goto(f"{url}/search?q={MEMBERS_ONLY_STUDY}")
        assert page.locator("article.result").count() == 0
        absent = page.goto(f"{url}/datasets/nosuchstudy")
        absent_text = page.locator("main").inner_text()
        for hidden in (MEMBERS_ONLY_STUDY, f"{MEMBERS_ONLY_STUDY}/members", "study1/members"):
            response = page.goto(f"{url}/datasets/{hidden}")
            assert response.status == absent.status == 404
            assert page.locator("main").inner_text() == absent_text
        shot("10-members-only-is-404")

        page.goto(f"{url}/account")
        page.get_by_label("Label").fill("laptop")
        page.get_by_role("button", name="Create a token").click()
        token = page.locator("#new-token").inner_text().strip()
        assert token.startswith("wdl_")
        shot("11-token")

        env = datalad_user(tmp_path / "home", url, token)
        clone = subprocess.run(
            ["datalad", "clone", f"{url}/git/study1/external", "copy"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert clone.returncode == 0, clone.stdout + clone.stderr
        copy = tmp_path / "copy"
        release = release_dir(root, "external")
        for pattern in ("sub-*/anat/*_T1w.nii.gz", "sub-*/eeg/*_eeg.eeg"):
            got = subprocess.run(
                ["datalad", "get", str(only_match(copy, pattern))],
                cwd=copy,
                env=env,
                capture_output=True,
                text=True,
            )
            assert got.returncode == 0, got.stdout + got.stderr
            assert sha256_of(only_match(copy, pattern)) == sha256_of(only_match(release, pattern))

        page.goto(f"{url}/account")
        assert "laptop" in page.content() and "active" in page.content()
        shot("12-account-after-clone")
    log = [e for e in audit.entries(portal_engine(load_site(root))) if e.actor == EMAIL]
    events = [e.event for e in log]
    for event in (
        "register",
        "confirm",
        "login",
        "search",
        "dataset-view",
        "dua-accept",
        "token-create",
        "clone",
        "download",
    ):
        assert event in events, event
    assert events.index("dua-accept") < events.index("clone") < events.index("download")
    assert {e.target for e in log if e.event == "search"} >= {"rest", "rest modality:eeg"}
    assert len([e for e in log if e.event == "download"]) == 2
