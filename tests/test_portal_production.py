"""The portal as the maintainer guide runs it: ``windl serve --workers 2`` behind a real nginx.

nginx terminates the client's connection, passes its address in ``X-Forwarded-For`` (the
portal trusts it from nginx only) and sends annexed objects itself after the portal's token
check (``X-Accel-Redirect`` to an internal location), so no object byte passes through
Python. Two users clone and get the external release at once through nginx.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from windl.config import load_site
from windl.portal import audit
from windl.portal.app import portal_engine
from windl.share.publish import store_path

from conftest import (
    copy_site,
    datalad_user,
    free_port,
    nginx_proxy,
    portal_account,
    portal_server,
    release_dir,
    sha256_of,
)


@pytest.fixture(scope="module")
def production(
    published_site_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str, str]]:
    """(site, nginx URL, the portal's own URL) with two workers behind nginx."""
    base = tmp_path_factory.mktemp("production")
    root = copy_site(published_site_template, base / "site")
    site = load_site(root)
    stores = {scope: store_path(site, scope).resolve() for scope in ("members", "external")}
    nginx_port = free_port()
    config = root / "windl.toml"
    text = config.read_text().replace(
        "[portal]\n",
        "[portal]\n"
        f'url = "http://127.0.0.1:{nginx_port}"\n'
        'trusted_proxies = ["127.0.0.1"]\n'
        'x_accel_redirect = "/_windl_stores"\n',
        1,
    )
    config.write_text(text)
    with (
        portal_server(root, "--workers", "2") as upstream,
        nginx_proxy(upstream, base / "nginx", stores, port=nginx_port) as url,
    ):
        yield root, url, upstream


def test_two_users_clone_and_get_through_nginx_byte_identical(
    production: tuple[Path, str, str], tmp_path: Path
) -> None:
    root, url, _ = production
    release = release_dir(root, "external")
    users = []
    for n in range(2):
        env = datalad_user(tmp_path / f"u{n}", url, portal_account(root, f"prod{n}@uni.org"))
        script = f"datalad clone {url}/git/study1/external copy && cd copy && datalad get ."
        users.append(
            subprocess.Popen(
                ["bash", "-c", script],
                cwd=tmp_path / f"u{n}",
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for proc in users:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
    annexed = [p for p in release.rglob("*.nii.gz") if ".git" not in p.parts]
    assert annexed
    for n in range(2):
        for path in annexed:
            copy = tmp_path / f"u{n}" / "copy" / path.relative_to(release)
            assert sha256_of(copy) == sha256_of(path)
    downloads = [e for e in audit.entries(portal_engine(load_site(root))) if e.event == "download"]
    assert {e.actor for e in downloads} >= {"prod0@uni.org", "prod1@uni.org"}


def test_objects_leave_through_nginx_and_the_portal_sends_none_of_their_bytes(
    production: tuple[Path, str, str],
) -> None:
    root, url, upstream = production
    site = load_site(root)
    store = store_path(site, "external")
    obj = next(p for p in store.glob("*/*/annex/objects/*/*/*/*") if p.is_file())
    path = "/".join(obj.relative_to(next(store.glob("*/*/annex")).parent).parts)
    token = portal_account(root, "accel@uni.org")
    auth = {"Authorization": "Basic " + base64.b64encode(f"x:{token}".encode()).decode()}
    direct = httpx.get(
        f"{upstream}/git/study1/external/{path}",
        headers={**auth, "Host": "127.0.0.1"},
    )
    assert direct.status_code == 200 and direct.content == b""
    assert direct.headers["x-accel-redirect"].startswith("/_windl_stores/external/")
    proxied = httpx.get(f"{url}/git/study1/external/{path}", headers=auth)
    assert proxied.status_code == 200 and proxied.content == obj.read_bytes()
    # nginx's internal location is not reachable from outside
    assert httpx.get(f"{url}{direct.headers['x-accel-redirect']}").status_code == 404
    # and without a token nginx passes on the portal's refusal
    assert httpx.get(f"{url}/git/study1/external/{path}").status_code == 401


def test_concurrent_clone_advertisements_all_answer(production: tuple[Path, str, str]) -> None:
    """Many first requests at once: each worker runs git's backend until its answer is kept.

    (With uvloop, writing git's empty GET body to a backend that had already answered and
    exited raised RuntimeError: HTTP 500 for most clones under load.)
    """
    from concurrent.futures import ThreadPoolExecutor

    root, _, upstream = production
    token = portal_account(root, "many@uni.org")
    auth = "Basic " + base64.b64encode(f"x:{token}".encode()).decode()
    refs = f"{upstream}/git/study1/external/info/refs?service=git-upload-pack"
    protocols = ["version=2", "version=1", ""] * 12

    def ask(protocol: str) -> int:
        headers = {"Authorization": auth, "Host": "127.0.0.1"}
        if protocol:
            headers["Git-Protocol"] = protocol
        return httpx.get(refs, headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=len(protocols)) as pool:
        statuses = list(pool.map(ask, protocols))
    assert statuses == [200] * len(protocols)
