"""Token-gated ``datalad clone`` + ``datalad get`` over HTTP against a real ``windl serve``.

The clones run as a user elsewhere would: their own HOME, the token in DataLad's git
credential helper, nothing but HTTP to the portal (see :func:`conftest.datalad_user`).
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from windl.config import load_site
from windl.portal import accounts, audit, tokens
from windl.portal.app import portal_engine

from conftest import (
    MEMBERS_ONLY_STUDY,
    copy_site,
    datalad_user,
    only_match,
    portal_account,
    portal_server,
    release_dir,
    sha256_of,
)


@pytest.fixture(scope="module")
def portal(
    published_site_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """A copy of the published site and a running portal on it: (site, base URL)."""
    root = copy_site(published_site_template, tmp_path_factory.mktemp("portal") / "site")
    with portal_server(root) as url:
        yield root, url


def _datalad(*args: str | Path, cwd: Path, env: dict[str, str], check: bool = True):
    """Run datalad; its output (DataLad reports errors on stdout) is in ``.stderr`` too."""
    proc = subprocess.run(
        ["datalad", *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    proc.stderr = proc.stdout
    if check and proc.returncode != 0:
        raise AssertionError(f"datalad {args} failed:\n{proc.stdout}")
    return proc


def _log(root: Path, actor: str | None = None) -> list[audit.Entry]:
    entries = audit.entries(portal_engine(load_site(root)))
    return [e for e in entries if actor is None or e.actor == actor]


def test_clone_and_get_with_a_token_give_the_release_files(
    portal: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = portal
    token = portal_account(root, "reader@uni.org")
    env = datalad_user(tmp_path / "home", url, token)
    _datalad("clone", f"{url}/git/study1/external", "copy", cwd=tmp_path, env=env)
    copy = tmp_path / "copy"
    release = release_dir(root, "external")
    nifti, eeg = "sub-*/anat/*_T1w.nii.gz", "sub-*/eeg/*_eeg.eeg"
    _datalad("get", only_match(copy, nifti), only_match(copy, eeg), cwd=copy, env=env)
    for pattern in (nifti, eeg):
        assert sha256_of(only_match(copy, pattern)) == sha256_of(only_match(release, pattern))
    tag = subprocess.run(
        ["git", "-C", str(copy), "describe", "--tags"], capture_output=True, text=True
    ).stdout
    assert tag.strip() == "v1.0.0"
    log = _log(root, "reader@uni.org")
    clones = [e for e in log if e.event == "clone"]
    assert clones and clones[0].target == "study1/external" and clones[0].version == "v1.0.0"
    downloads = {e.detail for e in log if e.event == "download"}
    release_keys = {only_match(release, p).resolve().name for p in (nifti, eeg)}
    assert downloads == release_keys  # both files came through the portal
    assert all(e.remote_addr == "127.0.0.1" for e in clones)


def test_clone_without_a_token_is_refused(portal: tuple[Path, str], tmp_path: Path) -> None:
    root, url = portal
    granted = [e for e in _log(root) if e.event in ("clone", "download")]
    env = datalad_user(tmp_path / "home", url, None)
    proc = _datalad(
        "clone", f"{url}/git/study1/external", "copy", cwd=tmp_path, env=env, check=False
    )
    assert proc.returncode != 0 and not (tmp_path / "copy" / ".git").exists()
    assert "could not read Username" in proc.stderr or "401" in proc.stderr, proc.stderr
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/git/study1/external/info/refs?service=git-upload-pack")
    assert refused.value.code == 401
    assert "Basic" in refused.value.headers["WWW-Authenticate"]
    assert [e for e in _log(root) if e.event in ("clone", "download")] == granted


def test_clone_before_accepting_the_current_dua_is_refused(
    portal: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = portal
    token = portal_account(root, "hasty@uni.org", accept_dua=False)
    env = datalad_user(tmp_path / "home", url, token)
    proc = _datalad(
        "clone", f"{url}/git/study1/external", "copy", cwd=tmp_path, env=env, check=False
    )
    assert proc.returncode != 0 and not (tmp_path / "copy" / ".git").exists()
    assert "403" in proc.stderr, proc.stderr
    refused = [e for e in _log(root, "hasty@uni.org") if e.event == "clone-refused"]
    assert refused and refused[0].detail.startswith("403 DUA 1.0 not accepted")


def test_a_revoked_token_can_neither_get_nor_clone(
    portal: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = portal
    token = portal_account(root, "leaver@uni.org")
    env = datalad_user(tmp_path / "home", url, token)
    _datalad("clone", f"{url}/git/study1/external", "copy", cwd=tmp_path, env=env)
    site = load_site(root)
    engine = portal_engine(site)
    user = accounts.find_user(site, engine, "leaver@uni.org")
    (listed,) = tokens.list_tokens(engine, user)
    tokens.revoke(engine, user, listed.id, "127.0.0.1")
    copy = tmp_path / "copy"
    eeg = only_match(copy, "sub-*/eeg/*_eeg.eeg")
    proc = _datalad("get", eeg, cwd=copy, env=env, check=False)
    assert proc.returncode != 0 and not eeg.exists()
    again = _datalad(
        "clone", f"{url}/git/study1/external", "again", cwd=tmp_path, env=env, check=False
    )
    assert again.returncode != 0 and "Authentication failed" in again.stderr, again.stderr
    refused = [e for e in _log(root) if e.event.endswith("-refused") and "401" in e.detail]
    assert {e.event for e in refused} >= {"download-refused", "clone-refused"}
    assert not [e for e in _log(root, "leaver@uni.org") if e.event == "download"]


def test_members_release_clones_with_a_members_token_and_is_absent_for_others(
    portal: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = portal
    member = datalad_user(
        tmp_path / "member", url, portal_account(root, "lab@centre.org", "member")
    )
    source = f"{url}/git/{MEMBERS_ONLY_STUDY}/members"
    _datalad("clone", source, "copy", cwd=tmp_path, env=member)
    copy = tmp_path / "copy"
    eeg = only_match(copy, "sub-*/eeg/*_eeg.eeg")
    _datalad("get", eeg, cwd=copy, env=member)
    release = root / "superdataset" / "releases" / MEMBERS_ONLY_STUDY / "members"
    assert sha256_of(eeg) == sha256_of(only_match(release, "sub-*/eeg/*_eeg.eeg"))
    external = datalad_user(tmp_path / "ext", url, portal_account(root, "visitor@uni.org"))
    for target in (source, f"{url}/git/study1/members", f"{url}/git/nosuchstudy/external"):
        proc = _datalad("clone", target, "x", cwd=tmp_path, env=external, check=False)
        assert proc.returncode != 0 and ("404" in proc.stderr or "not found" in proc.stderr)


def test_members_only_study_is_invisible_to_external_users(
    portal: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = portal
    external = portal_account(root, "curious@uni.org")
    member = portal_account(root, "staff@centre.org", "member")

    def get(path: str, token: str | None) -> tuple[int, str]:
        request = urllib.request.Request(f"{url}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    for token in (external, None):
        status, body = get("/api/search?q=rest&modality=eeg", token)
        found = json.loads(body)
        assert status == 200 and [r["id"] for r in found["results"]] == ["study1/external"]
        assert MEMBERS_ONLY_STUDY not in body
        status, body = get(f"/api/search?q={MEMBERS_ONLY_STUDY}", token)
        assert json.loads(body)["total"] == 0 and MEMBERS_ONLY_STUDY not in body.replace(
            f'"text":"{MEMBERS_ONLY_STUDY}"', ""
        )
        absent = get("/api/datasets/nosuchstudy", token)
        for hidden in (MEMBERS_ONLY_STUDY, f"{MEMBERS_ONLY_STUDY}/members", "study1/members"):
            assert get(f"/api/datasets/{hidden}", token) == absent == (404, absent[1])
    # the member sees it
    status, body = get("/api/search?q=rest&modality=eeg", member)
    ids = {r["id"] for r in json.loads(body)["results"]}
    assert {f"{MEMBERS_ONLY_STUDY}/members", "study1/external", "study1/members"} <= ids
    status, body = get(f"/api/datasets/{MEMBERS_ONLY_STUDY}/members", member)
    assert status == 200 and json.loads(body)["clone"]["http"].endswith(
        f"/git/{MEMBERS_ONLY_STUDY}/members"
    )
    # a revoked or unknown token is refused by the API, not treated as anonymous
    assert get("/api/search?q=rest", "wdl_not-a-token")[0] == 401
    searches = [e for e in _log(root, "curious@uni.org") if e.event == "search"]
    assert searches and searches[0].target == "rest modality:eeg"
