"""Kill tests beyond a serial convert (issue 22).

SIGKILL at windl's own checkpoints spread over a run of a command: the next run of the same
command completes without a hand edit, every dataset of the site is clean, ``git annex
fsck`` passes in each, and a third run makes no commit. One small site is built per
command (module-scoped template) and copied per kill point.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from windl.datasets import tool_env

from conftest import (
    assert_site_clean,
    copy_site,
    dataset_heads,
    git_out,
    git_status,
    run_killed_at,
    run_windl,
    sha256_of,
    study_path,
)


def kill_then_complete(site: Path, args: list[str | Path], point: str, tmp: Path) -> None:
    """Kill ``windl ARGS`` at ``point``; the next run completes and leaves the site clean;
    a third run commits nothing."""
    run_killed_at(args, point, tmp)
    run_windl(*args)
    assert_site_clean(site)
    before = dataset_heads(site)
    run_windl(*args)
    assert dataset_heads(site) == before


# ------------------------------------------------------------------ convert --jobs 2
#: points of a convert with two jobs (both sessions run as jobs, then replayed)
CONVERT_JOBS_POINTS = (
    "convert-start",
    "jobs-start",
    "job-start",
    "run-started",
    "run-saved",
    "job-end",
    "job-done",
    "convert-converted",
)


@pytest.mark.parametrize("point", CONVERT_JOBS_POINTS)
def test_convert_jobs_killed(two_subjects_template: Path, tmp_path: Path, point: str) -> None:
    site = copy_site(two_subjects_template, tmp_path / "site")
    study = study_path(site)
    kill_then_complete(site, ["convert", "study1", "--jobs", "2", "--site", site], point, tmp_path)
    for subject in ("k1", "k2"):
        assert list((study / f"sub-{subject}").rglob("*.nii.gz")), subject
        assert f"sub-{subject}" in (study / "participants.tsv").read_text()
    assert not list((study / ".git" / "windl" / "journal").glob("*"))
    assert not (study / ".git" / "windl" / "jobs").exists() or not any(
        (study / ".git" / "windl" / "jobs").iterdir()
    )


# ------------------------------------------------------------- release build, consent
#: points of a first ``release build`` (labels, sessions and secret committed to restricted,
#: then the release assembled by one datalad run and recorded in the superdataset)
RELEASE_POINTS = (
    "staged",
    "committed",
    "release-start",
    "run-started",
    "release-half-written",
    "run-saved",
    "release-assembled",
)
CONSENT_CSV = "participant_id,scopes,form_version,date\nsub-k1,members,v1,2026-11-01\n"


@pytest.fixture(scope="module")
def converted_template(
    empty_site_template: Path, tmp_path_factory: pytest.TempPathFactory, data: Path
) -> Path:
    """The empty site with one small Siemens series of k1 ingested and converted."""
    root = tmp_path_factory.mktemp("kill-converted") / "site"
    shutil.copytree(empty_site_template, root, symlinks=True)
    series = data / "dcm_qa_nih" / "In" / "20180918Si" / "mr_0003"
    run_windl("ingest", "study1", series, "--subject", "k1", "--site", root)
    run_windl("convert", "study1", "--site", root)
    return root


@pytest.fixture(scope="module")
def consented_template(converted_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`converted_template` with k1's consent to members."""
    base = tmp_path_factory.mktemp("kill-consented")
    root = copy_site(converted_template, base / "site")
    (base / "consent.csv").write_text(CONSENT_CSV)
    run_windl("consent", "import", "study1", base / "consent.csv", "--site", root)
    return root


@pytest.mark.parametrize("point", RELEASE_POINTS)
def test_release_build_killed(consented_template: Path, tmp_path: Path, point: str) -> None:
    site = copy_site(consented_template, tmp_path / "site")
    args = ["release", "build", "study1", "--scope", "members", "--version", "1.0.0"]
    kill_then_complete(site, [*args, "--site", site], point, tmp_path)
    release = site / "superdataset" / "releases" / "study1" / "members"
    assert list((release / "sub-01").rglob("*.nii.gz")) or list(release.rglob("*.nii.gz"))
    assert not list((release / ".git" / "windl" / "journal").glob("*"))


#: points of ``consent import``: the restricted commit (atomic), then recorded upwards
CONSENT_POINTS = (
    "restricted-prepared",
    "staged",
    "annexed",
    "committed",
    "restricted-committed",
    "restricted-recorded",
)


@pytest.mark.parametrize("point", CONSENT_POINTS)
def test_consent_import_killed(converted_template: Path, tmp_path: Path, point: str) -> None:
    site = copy_site(converted_template, tmp_path / "site")
    csv = tmp_path / "consent.csv"
    csv.write_text(CONSENT_CSV)
    kill_then_complete(site, ["consent", "import", "study1", csv, "--site", site], point, tmp_path)
    shown = run_windl("consent", "show", "study1", "--site", site).stdout
    assert "members" in shown, shown


# ----------------------------------------------------------------------- import, add
#: points of ``import`` and ``add``: an atomic study commit, then recorded upwards
STUDY_WRITE_POINTS = ("study-prepared", "staged", "annexed", "committed", "study-committed")


@pytest.mark.parametrize("point", STUDY_WRITE_POINTS)
def test_import_killed(empty_site_template: Path, tmp_path: Path, data: Path, point: str) -> None:
    site = copy_site(empty_site_template, tmp_path / "site")
    tiny = data / "mne_bids_tiny_bids" / "tiny_bids"
    kill_then_complete(site, ["import", "study1", tiny, "--site", site], point, tmp_path)
    assert list(study_path(site).glob("sub-*"))


@pytest.mark.parametrize("point", STUDY_WRITE_POINTS)
def test_add_killed(converted_template: Path, tmp_path: Path, point: str) -> None:
    site = copy_site(converted_template, tmp_path / "site")
    table = tmp_path / "in" / "scores.tsv"
    table.parent.mkdir()
    table.write_text("participant_id\tscore\nsub-k1\t3\n")
    args = ["add", "study1", table, "--as", "phenotype", "--site", site]
    kill_then_complete(site, args, point, tmp_path)
    assert (study_path(site) / "phenotype" / "scores.tsv").read_text() == table.read_text()


# ------------------------------------------------------------------------------- qc
#: points of ``qc``: before the run, inside it (the step's cache written, its group tables
#: not yet), and after its commit
QC_POINTS = ("qc-start", "run-started", "qc-cached", "run-saved", "qc-written")


@pytest.mark.parametrize("point", QC_POINTS)
def test_qc_killed(converted_template: Path, tmp_path: Path, point: str) -> None:
    site = copy_site(converted_template, tmp_path / "site")
    kill_then_complete(site, ["qc", "study1", "--site", site], point, tmp_path)
    assert list((study_path(site) / "derivatives" / "qc").rglob("*"))


# -------------------------------------------------------------------------- publish
#: points of a first ``publish`` of the members release: tag, the store's sibling made in
#: two halves (storage remote, then git remote), the push, the tag's push
PUBLISH_POINTS = (
    "publish-tagged",
    "sibling-storage-created",
    "publish-sibling",
    "publish-pushed",
    "publish-tag-pushed",
)
STORAGE = "members-store-storage"


@pytest.fixture(scope="module")
def audited_template(consented_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`consented_template` with k1's members release 1.0.0 built and audited."""
    root = copy_site(consented_template, tmp_path_factory.mktemp("kill-audited") / "site")
    args = ["release", "build", "study1", "--scope", "members", "--version", "1.0.0"]
    run_windl(*args, "--site", root)
    run_windl("audit", root / "superdataset" / "releases" / "study1" / "members", "--site", root)
    return root


def _refs(repo: Path) -> str:
    """Every ref of a repository (branches, tags, git-annex) with its commit."""
    return git_out(repo, "for-each-ref", "--format=%(refname) %(objectname)")


@pytest.mark.parametrize("point", PUBLISH_POINTS)
def test_publish_killed(audited_template: Path, tmp_path: Path, point: str) -> None:
    site = copy_site(audited_template, tmp_path / "site")
    release = site / "superdataset" / "releases" / "study1" / "members"
    head = git_out(release, "rev-parse", "HEAD").strip()
    args = ["publish", "study1", "--scope", "members", "--version", "1.0.0", "--site", site]
    run_killed_at(args, point, tmp_path)
    run_windl(*args)
    store = (site / "stores" / "members" / "alias" / "study1-members").resolve()
    # the third run first: the checks below write git-annex's location log themselves
    before = (dataset_heads(site), _refs(release), _refs(store))
    again = run_windl(*args).stdout
    assert "already tagged" in again, again
    assert (dataset_heads(site), _refs(release), _refs(store)) == before
    assert git_out(store, "rev-parse", "v1.0.0^{commit}").strip() == head
    assert git_out(release, "rev-parse", "v1.0.0^{commit}").strip() == head
    assert_site_clean(site)
    assert git_status(release) == ""
    subprocess.run(["git", "annex", "fsck", "--quiet"], cwd=release, check=True)
    # every annexed file of the version is in the store, with the right checksum
    subprocess.run(
        ["git", "annex", "fsck", "--quiet", f"--from={STORAGE}", "--branch=v1.0.0"],
        cwd=release,
        env=tool_env(),  # git-annex-remote-ora is DataLad's
        check=True,
    )
    # a reader's clone of the version gets every file from the store
    clone = tmp_path / "clone"
    url = f"ria+file://{site / 'stores' / 'members'}#~study1-members@v1.0.0"
    env = {**tool_env(), "HOME": str(tmp_path)}
    for key, value in (("user.name", "reader"), ("user.email", "r@example.org")):
        subprocess.run(["git", "config", "--global", key, value], env=env, check=True)
    subprocess.run(["datalad", "clone", url, str(clone)], env=env, check=True, capture_output=True)
    subprocess.run(["datalad", "get", "."], cwd=clone, env=env, check=True, capture_output=True)
    assert list(clone.rglob("*.nii.gz"))
    assert all(p.exists() for p in clone.rglob("*.nii.gz"))  # no dangling annex links


#: points of a first publish to the individuals store that leave its remotes half made
INDIVIDUALS_POINTS = ("individuals-remote-added", "individuals-storage-folder")


@pytest.fixture(scope="module")
def individuals_template(
    consented_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """:func:`consented_template` with k1's individuals release 1.0.0 built, audited and
    granted to one person (their GPG key made here)."""
    base = tmp_path_factory.mktemp("kill-individuals")
    root = copy_site(consented_template, base / "site")
    site = ("--site", root)
    run_windl("consent", "set", "study1", "k1", "--scope", "members", "--scope", "individuals",
              *site)  # fmt: skip
    run_windl("release", "build", "study1", "--scope", "individuals", "--version", "1.0.0", *site)
    run_windl("audit", root / "superdataset" / "releases" / "study1" / "individuals", *site)
    home = Path(tempfile.mkdtemp(prefix="gk"))  # short: gpg-agent's socket path
    gpg = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "alice <alice@example.org>",
         "default", "default", "never"],
        env=gpg, check=True, capture_output=True,
    )  # fmt: skip
    key = base / "alice.asc"
    key.write_bytes(subprocess.run(["gpg", "--batch", "--armor", "--export"], env=gpg,
                                   check=True, capture_output=True).stdout)  # fmt: skip
    run_windl("share", "grant", "study1", "alice", "--key", key, *site)
    # gpg-agent's sockets in the site's keyring folder cannot be copied with the site
    for keyring in (home, root / "stores" / "individuals" / "gnupg"):
        subprocess.run(["gpgconf", "--homedir", str(keyring), "--kill", "all"], check=True)
    return root


@pytest.mark.parametrize("point", INDIVIDUALS_POINTS)
def test_publish_individuals_killed(individuals_template: Path, tmp_path: Path, point: str) -> None:
    from windl.config import find_site
    from windl.share.individuals import env as store_env

    site = copy_site(individuals_template, tmp_path / "site")
    release = site / "superdataset" / "releases" / "study1" / "individuals"
    args = ["publish", "study1", "--scope", "individuals", "--version", "1.0.0", "--site", site]
    run_killed_at(args, point, tmp_path)
    run_windl(*args)
    before = (dataset_heads(site), _refs(release))
    assert "already tagged" in run_windl(*args).stdout
    assert (dataset_heads(site), _refs(release)) == before
    # the store holds ciphertext only: no file there has an annexed file's bytes
    released = {sha256_of(p) for p in release.glob("sub-*/**/*.nii.gz")}
    assert released
    stored = [p for p in (site / "stores" / "individuals").rglob("*") if p.is_file()]
    assert not released & {sha256_of(p) for p in stored}
    assert not (site / "stores" / "individuals" / "study1" / "repo.git" / "annex").exists()
    assert_site_clean(site)
    assert git_status(release) == ""
    storage = git_out(release, "config", "remote.individuals-store.datalad-publish-depends")
    subprocess.run(
        ["git", "annex", "fsck", "--quiet", f"--from={storage.strip()}", "--branch=v1.0.0"],
        cwd=release,
        env={**tool_env(), **store_env(find_site(site))},
        check=True,
    )
