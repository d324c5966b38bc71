"""Methods text from DataLad run records, and reproduction of every conversion by rerunning it.

The release site (study1: sub-01 Siemens DICOM session 20180918 converted with heudiconv,
sub-02 BrainVision EEG converted with mne-bids, sub-03 an imported T1w; releases ``members``
and ``external`` 1.0.0) is made once; tests that write to it get a copy.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from windl import datasets
from windl.config import load_site
from windl.deid.dicom import DeidPolicy
from windl.methods import (
    compare_outputs,
    release_deface_records,
    release_methods,
    release_methods_markdown,
    run_records,
    study_methods,
)
from windl.release.identifiers import study_identifiers
from windl.study import get_study

from conftest import (
    DATE_SESSION,
    dataset_heads,
    git_status,
    release_dir,
    run_windl,
    study_path,
)

IDENTIFIERS = ("sub-01", "sub-02", "sub-03", DATE_SESSION)


def _git(ds: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ds), *args], capture_output=True, text=True, check=True
    ).stdout


def _datalad(ds: Path, *args: str) -> None:
    subprocess.run(
        ["datalad", *args], cwd=ds, env=datasets.tool_env(), capture_output=True, check=True
    )


def _commit_of(ds: Path, grep: str) -> str:
    commit = _git(ds, "log", "--format=%H", "-n", "1", f"--grep={grep}").strip()
    assert commit, grep
    return commit


def _dcm2niix_version() -> str:
    out = datasets.run_tool(["dcm2niix", "--version"], check=False).stdout
    return out.strip().splitlines()[-1].strip()  # "v1.0.20260724"


def _refs(ds: Path) -> str:
    return _git(ds, "for-each-ref", "--format=%(refname) %(objectname)")


def _assert_private(text: str, site: Path) -> None:
    for identifier in IDENTIFIERS:
        assert identifier not in text, identifier
    assert str(study_path(site)) not in text
    assert str(site) not in text
    for commit in _git(study_path(site), "rev-list", "HEAD").split():
        assert commit[:7] not in text, "a study commit is named"


# ----------------------------------------------------------------------------- run records
def test_run_records_reads_inline_and_sidecar_records_oldest_first(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    datasets.create_dataset(ds)
    _datalad(ds, "run", "-m", "first step", "--output", "a.txt", "echo a > a.txt")
    (ds / "plain.txt").write_text("not a run\n")
    datasets.save(ds, ["plain.txt"], "a plain commit")
    _datalad(ds, "run", "--sidecar", "yes", "-m", "second step", "echo b > b.txt")

    records = run_records(ds)

    assert [r.message for r in records] == ["first step", "second step"]
    first, second = records
    assert first.cmd == "echo a > a.txt"
    assert first.outputs == ["a.txt"]
    assert (first.pwd, first.exit, first.record_id) == (".", 0, None)
    assert second.cmd == "echo b > b.txt"
    assert second.record_id is not None
    assert _git(ds, "ls-tree", "--name-only", second.commit, f".datalad/runinfo/{second.record_id}")
    assert first.commit == _commit_of(ds, "first step")
    assert second.date >= first.date


def test_compare_outputs_names_identical_different_and_missing_files(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    datasets.create_dataset(ds)
    base = datasets.head(ds)
    (ds / "same.bin").write_bytes(bytes(range(256)) * 64)
    (ds / "differs.txt").write_text("original\n")
    (ds / "only-original.txt").write_text("x\n")
    datasets.save(ds, ["."], "original")
    original = datasets.head(ds)
    _git(ds, "checkout", "-q", "-b", "rerun", base)
    (ds / "same.bin").write_bytes(bytes(range(256)) * 64)
    (ds / "differs.txt").write_text("rerun\n")
    (ds / "only-rerun.txt").write_text("y\n")
    datasets.save(ds, ["."], "rerun")

    found = {f.path: f for f in compare_outputs(ds, original, datasets.head(ds), base)}

    assert {p: f.status for p, f in found.items()} == {
        "same.bin": "identical",
        "differs.txt": "different",
        "only-original.txt": "missing in rerun",
        "only-rerun.txt": "missing in original",
    }
    assert found["same.bin"].original is not None
    assert found["same.bin"].original.startswith("key:MD5E-")  # compared by annex key


# ----------------------------------------------------------------------------- study methods
def test_study_methods_name_tools_with_installed_versions_heuristic_and_commits(
    release_site_template: Path,
) -> None:
    site = load_site(release_site_template)
    study = study_path(release_site_template)

    methods = study_methods(site, "study1")
    text = methods.markdown

    assert f"heudiconv {version('heudiconv')}" in text
    assert f"dcm2niix {_dcm2niix_version()}" in text
    assert f"mne-bids {version('mne-bids')}" in text
    assert f"mne {version('mne')}" in text
    heuristic = hashlib.sha256((study / "code" / "heuristic.py").read_bytes()).hexdigest()
    assert heuristic in text
    assert "ReproIn" in text and "BidsGuess" in text  # the rules, from the docstring
    mri = _commit_of(study, "heudiconv + dcm2niix")
    ephys = _commit_of(study, "(mne-bids)")
    assert mri[:7] in text and ephys[:7] in text
    assert text.index("heudiconv 1") < text.index("## BIDS validation")
    assert "--line-freq 50" in text  # the parameters on the command line
    assert "No BIDS validation result is stored" in text
    page = methods.html
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page
    assert heuristic in page


# ----------------------------------------------------------------------------- release methods
@pytest.mark.parametrize("scope", ["external", "members"])
def test_release_methods_give_policy_and_defacing_and_no_identifier(
    release_site_template: Path, scope: str
) -> None:
    site = load_site(release_site_template)
    release = release_dir(release_site_template, scope)
    deface = [
        json.loads(p.read_text()) for p in sorted((release / "code" / "deface").rglob("*.json"))
    ]
    assert deface

    methods = release_methods(site, release)
    text = methods.markdown

    assert "PS3.15 Annex E" in text
    assert "113107" in text and "113105" in text  # retain_modified_dates, clean_descriptors
    assert deface[0]["template"]["sha256"] in text
    assert deface[0]["face_mask"]["sha256"] in text
    assert f"mne-bids {version('mne-bids')}" in text  # sub-02's EEG is in both releases
    # sub-01's DICOM session is only in the members release, and so is its conversion
    assert ("heudiconv" in text) == (scope == "members")
    assert ("Raw DICOM files are not included" in text) == (scope == "external")
    assert _git(release, "rev-parse", "--short=7", "HEAD").strip() in text  # the release build
    _assert_private(text, release_site_template)
    _assert_private(methods.html, release_site_template)
    # nothing the release audit looks for (names, ids and dates from the raw data) either
    raw = study_identifiers(get_study(site, "study1"), DeidPolicy()).matcher()
    assert raw.kinds_in_text(text) == set()


def test_release_methods_markdown_for_the_build_is_deterministic_and_private(
    release_site_template: Path,
) -> None:
    site = load_site(release_site_template)
    release = release_dir(release_site_template, "external")
    record = json.loads((release / "code" / "windl" / "release.json").read_text())
    deface = release_deface_records(release)
    study = get_study(site, "study1")

    text = release_methods_markdown(site, study, record, deface)

    assert text == release_methods_markdown(site, study, record, deface)
    assert "Basic Application Level Confidentiality Profile" in text
    assert deface[0]["template"]["sha256"] in text
    assert "Provenance of this release" not in text  # nothing from the uncommitted release
    _assert_private(text, release_site_template)
    kept_out = release_methods_markdown(site, study, record, deface, identifying_words=["MNE"])
    assert "mne" not in kept_out.lower().replace("[removed]", "")


# ----------------------------------------------------------------------------- CLI
def test_windl_methods_writes_markdown_and_html_for_a_study_and_a_release(
    release_site: Path, tmp_path: Path
) -> None:
    run_windl("validate", "study1", "--site", release_site, check=False)
    before = dataset_heads(release_site)

    study = run_windl("methods", "study1", "--site", release_site).stdout.split()
    release = json.loads(
        run_windl("methods", release_dir(release_site, "external"), "--json", cwd=tmp_path).stdout
    )
    out = run_windl("methods", "study1", "--out", tmp_path / "out", "--site", release_site)

    folder = release_site / "reports" / "methods"
    assert study == [str(folder / "study1" / "methods.md"), str(folder / "study1" / "methods.html")]
    assert release["kind"] == "release"
    assert release["markdown"] == str(folder / "study1-external-1.0.0" / "methods.md")
    assert Path(release["html"]).read_text().startswith("<!DOCTYPE html>")
    assert out.stdout.split()[0] == str(tmp_path / "out" / "methods.md")
    text = Path(study[0]).read_text()
    assert "validated with the official BIDS validator" in text
    assert _git(study_path(release_site), "rev-parse", "--short=7", "HEAD").strip() in text
    _assert_private(Path(release["markdown"]).read_text(), release_site)
    assert dataset_heads(release_site) == before
    assert git_status(study_path(release_site)) == ""


def test_windl_reproduce_finds_every_conversion_output_identical_and_leaves_the_site_as_it_was(
    release_site: Path, tmp_path: Path
) -> None:
    study = study_path(release_site)
    heads, status = dataset_heads(release_site), git_status(study)
    refs = {p: _refs(p) for p in (study, study / "sourcedata", release_site / "superdataset")}
    scratch = tmp_path / "tmp"
    scratch.mkdir()

    proc = run_windl(
        "reproduce", "study1", "--site", release_site, "--json", env={"TMPDIR": str(scratch)}
    )

    report = json.loads(proc.stdout)
    assert report["all_identical"] is True
    assert [r["kind"] for r in report["runs"]] == ["mri", "ephys"]
    assert [r["commit"] for r in report["runs"]] == [
        _commit_of(study, "heudiconv + dcm2niix"),
        _commit_of(study, "(mne-bids)"),
    ]
    files = [f for r in report["runs"] for f in r["files"]]
    assert {f["status"] for f in files} == {"identical"}
    paths = {f["path"] for f in files}
    assert any(p.endswith("_bold.nii.gz") for p in paths)
    assert any(p.endswith("_eeg.eeg") for p in paths)
    assert "code/conversion/sub-01_ses-20180918.json" in paths
    assert report["summary"]["identical"] == len(files)
    short = heads["study"][:7]
    assert report["json_path"] == str(release_site / "reports/reproduce" / f"study1-{short}.json")
    assert Path(report["html_path"]).read_text().startswith("<!DOCTYPE html>")
    assert json.loads(Path(report["json_path"]).read_text())["all_identical"] is True
    # the site's datasets were only read; the temporary clone is gone
    assert dataset_heads(release_site) == heads
    assert git_status(study) == status
    assert {p: _refs(p) for p in refs} == refs
    assert list(scratch.iterdir()) == []


def test_windl_methods_on_unknown_study_is_a_one_line_error(site: Path) -> None:
    proc = run_windl("methods", "nope", "--site", site, check=False)

    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("windl: error:") and "'nope'" in proc.stderr
    assert not (site / "reports").exists()


def test_windl_reproduce_without_conversions_is_a_one_line_error(site: Path) -> None:
    proc = run_windl("reproduce", "study1", "--site", site, check=False)

    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "windl: error: study study1 has no conversion run record to rerun"
    ]
