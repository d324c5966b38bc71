"""QC travels with the data: the catalog indexes a release's QC tables and the portal shows them."""

from __future__ import annotations

import csv
import re
import statistics
from pathlib import Path

from fastapi.testclient import TestClient

from windl.config import load_site
from windl.portal.app import create_app

from conftest import release_dir, run_windl

PASSWORD = "correct horse battery"


def _member_client(root: Path, email: str) -> TestClient:
    client = TestClient(create_app(load_site(root)), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/register").text)[1]
    client.post(
        "/register", data={"csrf_token": token, "email": email, "name": "Lab", "password": PASSWORD}
    )
    mails = sorted((root / "portal" / "outbox").glob("*.eml"))
    link = re.search(r"http://\S+/confirm/\S+", mails[-1].read_text())[0]
    client.get("/" + link.split("://", 1)[1].split("/", 1)[1])
    response = client.post(
        "/login", data={"csrf_token": token, "email": email, "password": PASSWORD}
    )
    assert response.status_code == 303, response.text
    return client


def test_the_portal_dataset_page_shows_the_release_qc_medians(qc_release_site: Path) -> None:
    root = qc_release_site
    toml = root / "windl.toml"
    toml.write_text(toml.read_text().replace("members = []", 'members = ["lab@centre.org"]'))
    run_windl("catalog", "index", "--site", root)
    table = release_dir(root, "members") / "derivatives" / "qc" / "group_T1w.tsv"
    with table.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    expected = statistics.median(float(r["snr_total"]) for r in rows)

    page = _member_client(root, "lab@centre.org").get("/datasets/study1/members")

    assert page.status_code == 200
    section = page.text.split('id="qc-T1w"', 1)[1].split("</table>", 1)[0]
    assert f"T1w: {len(rows)} file" in section
    shown = re.search(r"<td>snr_total</td><td>([^<]+)</td>", section)[1]
    assert float(shown) == float(f"{expected:.4g}")
