"""Publishing releases to their scope's store, cloning them as a separate user, and GPG access."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from windl.datasets import tool_env

from conftest import build_release, consent_external, git_head, release_dir, run_windl, study_path


def _publish(site: Path, scope: str, version: str = "1.0.0", check: bool = True):
    return run_windl(
        "publish", "study1", "--scope", scope, "--version", version, "--site", site, check=check
    )


def _datalad(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, check: bool = True):
    return subprocess.run(
        ["datalad", *map(str, args)],
        cwd=cwd,
        env={**tool_env(), **(env or {})},
        capture_output=True,
        text=True,
        check=check,
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one(folder: Path, pattern: str) -> Path:
    (found,) = sorted(folder.glob(pattern))
    return found


@pytest.mark.parametrize("scope", ["members", "external"])
def test_published_release_clones_and_gets_like_a_separate_user(
    release_site: Path, tmp_path: Path, scope: str
) -> None:
    release = release_dir(release_site, scope)
    run_windl("audit", release)
    out = _publish(release_site, scope).stdout
    url = f"ria+file://{release_site}/stores/{scope}#~study1-{scope}@v1.0.0"
    assert url in out
    user = tmp_path / "user"
    user.mkdir()
    # a separate user: own HOME, nothing from the site's configuration
    home = {"HOME": str(user)}
    subprocess.run(
        ["git", "config", "--global", "user.name", "u"], env={**os.environ, **home}, check=True
    )
    subprocess.run(
        ["git", "config", "--global", "user.email", "u@x"], env={**os.environ, **home}, check=True
    )
    url = f"ria+file://{release_site}/stores/{scope}#~study1-{scope}"
    _datalad("clone", url, "copy", cwd=user, env=home)
    copy = user / "copy"
    nifti = "sub-*/anat/*_T1w.nii.gz"
    eeg = "sub-*/eeg/*_eeg.eeg"
    _datalad("get", _one(copy, nifti), _one(copy, eeg), cwd=copy, env=home)
    for pattern in (nifti, eeg):
        assert _sha256(_one(copy, pattern)) == _sha256(_one(release, pattern))
    assert (copy / "participants.tsv").read_text() == (release / "participants.tsv").read_text()


def test_clone_at_a_version_gives_that_version(release_site: Path, tmp_path: Path) -> None:
    external = release_dir(release_site, "external")
    run_windl("audit", external)
    _publish(release_site, "external")
    first = (external / "participants.tsv").read_text()
    consent_external(release_site, "01")
    build_release(release_site, "external", "1.1.0")
    run_windl("audit", external)
    _publish(release_site, "external", "1.1.0")
    url = f"ria+file://{release_site}/stores/external#~study1-external"
    _datalad("clone", f"{url}@v1.0.0", "old", cwd=tmp_path)
    _datalad("clone", url, "new", cwd=tmp_path)
    assert (tmp_path / "old" / "participants.tsv").read_text() == first
    assert len((tmp_path / "new" / "participants.tsv").read_text().splitlines()) == 4
    tags = subprocess.run(
        ["git", "-C", str(tmp_path / "old"), "describe", "--tags"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert tags.strip() == "v1.0.0"


def test_publish_refuses_a_release_without_a_passed_audit_at_head(release_site: Path) -> None:
    from windl.datasets import save

    external = release_dir(release_site, "external")
    proc = _publish(release_site, "external", check=False)
    assert proc.returncode == 1 and "not audited at its current commit" in proc.stderr
    run_windl("audit", external)
    (external / "README.md").write_text("planted: Test^Regression\n")
    save(external, ["README.md"], "an edit after the audit")
    proc = _publish(release_site, "external", check=False)
    assert proc.returncode == 1 and "not audited at its current commit" in proc.stderr
    assert run_windl("audit", external, check=False).returncode == 4
    proc = _publish(release_site, "external", check=False)
    assert proc.returncode == 1 and "failed the audit" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    tags = subprocess.run(
        ["git", "-C", str(external), "tag"], capture_output=True, text=True, check=True
    ).stdout
    assert tags == "" and not (release_site / "stores" / "external").exists()


def test_publish_refuses_a_version_the_release_does_not_hold(release_site: Path) -> None:
    run_windl("audit", release_dir(release_site, "members"))
    proc = _publish(release_site, "members", "2.0.0", check=False)
    assert proc.returncode == 1 and "holds version 1.0.0, not 2.0.0" in proc.stderr


def test_publishing_again_changes_nothing_and_raw_data_gets_no_sibling(
    release_site: Path,
) -> None:
    members = release_dir(release_site, "members")
    run_windl("audit", members)
    _publish(release_site, "members")
    head = git_head(members)
    again = _publish(release_site, "members").stdout
    assert "already tagged" in again and git_head(members) == head
    study = study_path(release_site)
    for ds in (study, study / "sourcedata", study / "restricted"):
        remotes = subprocess.run(
            ["git", "-C", str(ds), "remote"], capture_output=True, text=True, check=True
        ).stdout
        assert remotes == ""


# ----------------------------------------------------------------------------- individuals
def _gpg_person(folder: Path, name: str) -> tuple[dict[str, str], Path]:
    # short: gpg-agent's socket path must stay under 108 bytes
    home = Path(tempfile.mkdtemp(prefix=f"g{name[0]}"))
    env = {"GNUPGHOME": str(home)}
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            f"{name} <{name}@example.org>",
            "default",
            "default",
            "never",
        ],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    key = folder / f"{name}.asc"
    key.write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--armor", "--export"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        ).stdout
    )
    return env, key


def _get_as(person_env: dict[str, str], site: Path, folder: Path) -> tuple[int, Path]:
    """Clone the individuals store, enable its encrypted remote, get the T1w; return code."""
    repo = site / "stores" / "individuals" / "study1" / "repo.git"
    _datalad("clone", repo, folder.name, cwd=folder.parent, env=person_env)
    storages = sorted(
        p for p in repo.parent.glob("annex/individuals-storage-*") if not (p / ".dead").exists()
    )
    storage = storages[-1]
    subprocess.run(
        ["git", "annex", "enableremote", storage.name, f"directory={storage}"],
        cwd=folder,
        env={**tool_env(), **person_env},
        check=True,
        capture_output=True,
    )
    image = _one(folder, "sub-*/anat/*_T1w.nii.gz")
    proc = _datalad("get", image, cwd=folder, env=person_env, check=False)
    return proc.returncode, image


def test_individuals_content_is_readable_only_with_a_granted_key(
    release_site: Path, tmp_path: Path
) -> None:
    alice, alice_key = _gpg_person(tmp_path, "alice")
    bob, _ = _gpg_person(tmp_path, "bob")
    for subject in ("02", "03"):
        run_windl(
            "consent", "set", "study1", subject, "--scope", "individuals", "--site", release_site
        )
    build_release(release_site, "individuals", "1.0.0")
    individuals = release_dir(release_site, "individuals")
    run_windl("audit", individuals)
    refused = _publish(release_site, "individuals", check=False)
    assert refused.returncode == 1 and "nobody has access" in refused.stderr
    run_windl("share", "grant", "study1", "alice", "--key", alice_key, "--site", release_site)
    _publish(release_site, "individuals")
    # the store holds only ciphertext: no file there equals the release's image
    original = _sha256(_one(individuals, "sub-*/anat/*_T1w.nii.gz"))
    stored = [p for p in (release_site / "stores" / "individuals").rglob("*") if p.is_file()]
    assert original not in {_sha256(p) for p in stored}

    code, image = _get_as(alice, release_site, tmp_path / "alice-copy")
    assert code == 0 and _sha256(image) == original
    code, image = _get_as(bob, release_site, tmp_path / "bob-copy")
    assert code != 0 and not image.exists()

    out = run_windl("share", "revoke", "study1", "alice", "--site", release_site).stdout
    assert "cannot be taken back" in out
    code, _ = _get_as(alice, release_site, tmp_path / "alice-after-revoke")
    assert code != 0


def test_a_published_version_is_never_rewritten(release_site: Path) -> None:
    from windl.datasets import save

    members = release_dir(release_site, "members")
    run_windl("audit", members)
    _publish(release_site, "members")
    (members / "README.md").write_text((members / "README.md").read_text() + "\nEdited.\n")
    save(members, ["README.md"], "an edit after publishing")
    # (a hand edit no longer passes the audit -- git-metadata, unexplained-text -- but the
    # tag is checked first: a published version is refused whatever its audit says)
    proc = _publish(release_site, "members", check=False)
    assert proc.returncode == 1 and "v1.0.0 is published at another commit" in proc.stderr
