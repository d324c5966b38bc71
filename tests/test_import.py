"""``windl import``: an existing BIDS dataset into a study, byte for byte, validated first.

Real CLI in a child process, real bids-validator-deno, real git-annex; inputs are copies
of ../shared/data/mne_bids_tiny_bids made in tmp_path.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from bids_examples import prepared

from conftest import Runner, dataset_heads, git_status, run_killed_at, study_path

TINY = "mne_bids_tiny_bids/tiny_bids"
EEG_JSON = "sub-01/ses-eeg/eeg/sub-01_ses-eeg_task-rest_eeg.json"


# ----------------------------------------------------------------------------- helpers
def assert_refused(proc: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Non-zero exit and exactly one 'windl: error:' line that contains ``expected``."""
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode != 0, report
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"want one error line, got {len(lines)}\n{report}"
    assert lines[0].startswith("windl: error:"), report
    for text in expected:
        assert text in lines[0], f"{text!r} missing from {lines[0]!r}"
    return lines[0]


def assert_unchanged(site: Path, before: dict[str, str]) -> None:
    assert dataset_heads(site) == before
    study = study_path(site)
    assert git_status(study) == ""
    assert git_status(study / "sourcedata") == ""
    assert git_status(site / "superdataset") == ""


def sha256_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (symlinks followed: annexed content)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def ls_tree_mode(ds: Path, rel: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(ds), "ls-tree", "HEAD", rel], capture_output=True, text=True, check=True
    ).stdout
    assert out, f"{rel} not in HEAD of {ds}"
    return out.split()[0]


def validate_json(windl: Runner, site: Path) -> dict[str, object]:
    proc = windl("validate", "study1", "--site", site, "--json", check=False)
    report: dict[str, object] = json.loads(proc.stdout)
    assert report["errors"] == {}, report["errors"]
    assert proc.returncode == 0, proc.stderr
    return report


def tiny_copy(data: Path, target: Path) -> Path:
    shutil.copytree(data / TINY, target)
    return target


def as_subject(source: Path, target: Path, subject: str) -> Path:
    """A copy of tiny_bids whose only subject is ``sub-<subject>`` (names and contents)."""
    target.mkdir()
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source).as_posix().replace("sub-01", f"sub-{subject}")
        out = target / rel
        if path.is_dir():
            out.mkdir(parents=True, exist_ok=True)
        elif path.suffix in (".tsv", ".json", ".vhdr", ".vmrk"):
            text = path.read_bytes().replace(b"sub-01", f"sub-{subject}".encode())
            out.write_bytes(text)
        else:
            shutil.copyfile(path, out)
    return target


# ----------------------------------------------------------------------------- tests
def test_tiny_bids_imports_byte_identical_and_validates(
    site: Path, windl: Runner, data: Path
) -> None:
    before = dataset_heads(site)
    proc = windl("import", "study1", data / TINY, "--site", site, "--json")
    result = json.loads(proc.stdout)
    study = study_path(site)

    imported = sha256_tree(data / TINY)
    assert len(imported) == 18
    copied = {rel: sha for rel, sha in sha256_tree(study).items() if rel in imported}
    assert copied == imported
    # the study template's top-level files were replaced by the imported ones
    assert set(result["replaced"]) == {
        "README",
        "dataset_description.json",
        "participants.tsv",
        "participants.json",
    }
    assert result["kept"] == [] and result["sourcedata"] == []
    # text in git, binary EEG in the annex
    assert ls_tree_mode(study, "sub-01/ses-eeg/eeg/sub-01_ses-eeg_task-rest_eeg.eeg") == "120000"
    assert ls_tree_mode(study, "sub-01/ses-eeg/eeg/sub-01_ses-eeg_task-rest_channels.tsv") == (
        "100644"
    )
    assert ls_tree_mode(study, "README") == "100644"
    # one commit in the study, recorded in the superdataset; everything clean
    after = dataset_heads(site)
    assert after["study"] == result["commit"] != before["study"]
    assert after["superdataset"] != before["superdataset"]
    assert after["sourcedata"] == before["sourcedata"]
    assert git_status(study) == "" and git_status(site / "superdataset") == ""
    validate_json(windl, site)


def test_same_import_again_makes_no_commit(site: Path, windl: Runner, data: Path) -> None:
    windl("import", "study1", data / TINY, "--site", site)
    before = dataset_heads(site)
    proc = windl("import", "study1", data / TINY, "--site", site)
    assert proc.stdout.startswith("nothing new"), proc.stdout
    assert_unchanged(site, before)


def test_invalid_bids_is_refused_with_the_validator_errors(
    site: Path, windl: Runner, data: Path, tmp_path: Path
) -> None:
    bad = tiny_copy(data, tmp_path / "nodescription")
    (bad / "dataset_description.json").unlink()
    before = dataset_heads(site)

    proc = windl("import", "study1", bad, "--site", site, check=False)

    line = assert_refused(proc, str(bad), "not valid BIDS", "MISSING_DATASET_DESCRIPTION x 1")
    assert re.fullmatch(
        rf"windl: error: {re.escape(str(bad))}: not valid BIDS: (\d+) errors \((.+ x \d+)\)",
        line,
    ), line
    assert_unchanged(site, before)
    assert not (study_path(site) / "sub-01").exists()


def test_different_content_at_an_existing_path_is_refused(
    site: Path, windl: Runner, data: Path, tmp_path: Path
) -> None:
    windl("import", "study1", data / TINY, "--site", site)
    changed = tiny_copy(data, tmp_path / "changed")
    sidecar = changed / EEG_JSON
    sidecar.write_text(
        sidecar.read_text().replace('"PowerLineFrequency": 60', '"PowerLineFrequency": 50')
    )
    before = dataset_heads(site)

    proc = windl("import", "study1", changed, "--site", site, check=False)

    assert_refused(proc, EEG_JSON, "different content")
    assert_unchanged(site, before)
    assert '"PowerLineFrequency": 60' in (study_path(site) / EEG_JSON).read_text()


def test_sourcedata_goes_into_the_sourcedata_subdataset_and_hidden_files_are_skipped(
    site: Path, windl: Runner, data: Path, tmp_path: Path
) -> None:
    source = tiny_copy(data, tmp_path / "withraw")
    raw = source / "sourcedata" / "sub-01"
    raw.mkdir(parents=True)
    (raw / "notes.txt").write_text("recorded in room 2\n")
    (raw / "raw.bin").write_bytes(bytes(range(256)) * 40)
    (source / ".heudiconv").mkdir()
    (source / ".heudiconv" / "dicominfo.tsv").write_text("PatientName\tDoe^John\n")
    before = dataset_heads(site)

    proc = windl("import", "study1", source, "--site", site, "--json")

    result = json.loads(proc.stdout)
    study = study_path(site)
    assert result["sourcedata"] == ["imported/sub-01/notes.txt", "imported/sub-01/raw.bin"]
    assert result["skipped"] == [".heudiconv/"]
    assert not (study / ".heudiconv").exists()
    sourcedata = study / "sourcedata"
    assert (sourcedata / "imported/sub-01/raw.bin").read_bytes() == (raw / "raw.bin").read_bytes()
    assert ls_tree_mode(sourcedata, "imported/sub-01/raw.bin") == "120000"
    after = dataset_heads(site)
    assert after["sourcedata"] != before["sourcedata"]
    # the study records the new sourcedata commit; nothing is left uncommitted anywhere
    assert ls_tree_mode(study, "sourcedata") == "160000"
    assert git_status(study) == "" and git_status(sourcedata) == ""
    validate_json(windl, site)

    again = windl("import", "study1", source, "--site", site)
    assert again.stdout.startswith("nothing new"), again.stdout
    assert dataset_heads(site) == after


def test_a_folder_that_would_land_in_restricted_is_refused(
    site: Path, windl: Runner, data: Path, tmp_path: Path
) -> None:
    source = tiny_copy(data, tmp_path / "withrestricted")
    (source / ".bidsignore").write_text("restricted\n")  # valid BIDS with it
    (source / "restricted").mkdir()
    (source / "restricted" / "consent.tsv").write_text("participant_id\tconsent\nsub-01\tyes\n")
    before = dataset_heads(site)

    proc = windl("import", "study1", source, "--site", site, check=False)

    assert_refused(proc, "restricted/consent.tsv", "restricted subdataset")
    assert_unchanged(site, before)


def test_a_second_dataset_merges_participants_and_keeps_the_study_readme(
    site: Path, windl: Runner, data: Path, tmp_path: Path
) -> None:
    windl("import", "study1", data / TINY, "--site", site)
    second = as_subject(data / TINY, tmp_path / "second", "02")
    (second / "README").write_text("Another README\n")

    proc = windl("import", "study1", second, "--site", site, "--json")

    result = json.loads(proc.stdout)
    study = study_path(site)
    assert result["merged"] == ["participants.tsv"]
    assert result["kept"] == ["README"]
    assert (study / "README").read_bytes() == (data / TINY / "README").read_bytes()
    rows = (study / "participants.tsv").read_text(encoding="utf-8-sig").splitlines()
    assert rows == [
        "participant_id\tage\tsex\thand\tweight\theight",
        "sub-01\t29\tF\tA\tn/a\tn/a",
        "sub-02\t29\tF\tA\tn/a\tn/a",
    ]
    assert (study / "sub-02/ses-eeg/eeg/sub-02_ses-eeg_task-rest_eeg.eeg").is_file()
    assert git_status(study) == ""
    validate_json(windl, site)


# ----------------------------------------------------------------------------- bids-examples
def _example(corpus: Callable[[str], Path], data: Path, name: str, target: Path) -> Path:
    """A bids-examples dataset with real images (tests/bids_examples.py)."""
    examples = corpus("bids-examples")
    return prepared(examples / name, target, data, lambda: corpus("mne-testing-data"))


def test_a_readme_md_and_no_participants_table_import_valid(
    site: Path, windl: Runner, data: Path, tmp_path: Path, corpus: Callable[[str], Path]
) -> None:
    """dwi_deriv has README.md and no participants.tsv: the study must not get a second
    README (MULTIPLE_README_FILES) nor keep the template's empty table
    (PARTICIPANT_ID_MISMATCH)."""
    source = _example(corpus, data, "dwi_deriv", tmp_path / "dwi_deriv")
    assert not (source / "participants.tsv").exists() and (source / "README.md").is_file()

    result = json.loads(windl("import", "study1", source, "--site", site, "--json").stdout)

    study = study_path(site)
    assert result["removed"] == ["README"] and "README.md" in result["added"]
    assert not (study / "README").exists()
    assert (study / "README.md").read_bytes() == (source / "README.md").read_bytes()
    assert result["participants_added"] == ["sub-01"]
    rows = (study / "participants.tsv").read_text(encoding="utf-8").splitlines()
    assert rows == ["participant_id\tage\tsex", "sub-01\tn/a\tn/a"]
    assert git_status(study) == ""
    report = validate_json(windl, site)
    assert "MULTIPLE_README_FILES" not in json.dumps(report)


def test_a_changed_readme_is_kept_and_new_folders_get_participant_rows(
    site: Path, windl: Runner, data: Path, tmp_path: Path, corpus: Callable[[str], Path]
) -> None:
    """After a first import the study's README and table are its own: a second dataset's
    README.md is not added beside the README, and its folders get rows in the table."""
    windl("import", "study1", as_subject(data / TINY, tmp_path / "tiny", "02"), "--site", site)
    source = _example(corpus, data, "dwi_deriv", tmp_path / "dwi_deriv")

    result = json.loads(windl("import", "study1", source, "--site", site, "--json").stdout)

    study = study_path(site)
    assert "README" in result["kept"] and result["removed"] == []
    assert "README.md" not in result["added"] and not (study / "README.md").exists()
    assert result["participants_added"] == ["sub-01"]
    rows = (study / "participants.tsv").read_text(encoding="utf-8-sig").splitlines()
    assert rows[0].split("\t")[0] == "participant_id"
    assert [r.split("\t")[0] for r in rows[1:]] == ["sub-01", "sub-02"]
    assert set(rows[1].split("\t")[1:]) == {"n/a"}
    assert git_status(study) == ""
    validate_json(windl, site)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda tmp: tmp / "missing", ["missing", "no such folder"], id="missing"),
        pytest.param(
            lambda tmp: (tmp / "file.txt", (tmp / "file.txt").write_text("x"))[0],
            ["file.txt", "not a folder"],
            id="file",
        ),
    ],
)
def test_a_bids_dir_that_is_not_a_folder_is_refused(
    make: object, expected: list[str], site: Path, windl: Runner, tmp_path: Path
) -> None:
    source = make(tmp_path)  # type: ignore[operator]
    before = dataset_heads(site)
    proc = windl("import", "study1", source, "--site", site, check=False)
    assert_refused(proc, *expected)
    assert_unchanged(site, before)


# ----------------------------------------------------------------------------- crash safety
@pytest.mark.parametrize(
    ("with_raw", "point"),
    [
        pytest.param(True, "annexed", id="sourcedata-annexed"),
        pytest.param(True, "imported-sourcedata", id="after-sourcedata-commit"),
        pytest.param(False, "committed", id="study-committed"),
    ],
)
def test_import_killed_leaves_datasets_consistent_and_rerun_completes(
    with_raw: bool, point: str, site: Path, windl: Runner, data: Path, tmp_path: Path
) -> None:
    source = tiny_copy(data, tmp_path / "input")
    if with_raw:
        (source / "sourcedata").mkdir()
        (source / "sourcedata" / "raw.bin").write_bytes(bytes(range(256)) * 40)
    before = dataset_heads(site)

    run_killed_at(["import", "study1", source, "--site", site], point, tmp_path)

    study = study_path(site)
    after_kill = dataset_heads(site)
    assert after_kill["study"] == before["study"]
    if point != "imported-sourcedata":
        assert after_kill == before
        assert git_status(site / "superdataset") == ""
    # else: the raw files are committed; only the study's record of them is behind
    assert git_status(study / "sourcedata") == ""
    assert not (study / "sub-01").exists()

    windl("import", "study1", source, "--site", site)

    assert sha256_tree(data / TINY).items() <= sha256_tree(study).items()
    assert git_status(study) == "" and git_status(site / "superdataset") == ""
    recorded = subprocess.run(
        ["git", "-C", str(study), "ls-tree", "HEAD", "sourcedata"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[2]
    assert recorded == dataset_heads(site)["sourcedata"]
    assert not any((study / ".git" / "windl" / "txn").glob("*"))
    if with_raw:
        assert (study / "sourcedata" / "imported" / "raw.bin").is_file()
