"""Tables, people's text and git metadata of a release: every column declared, default-deny.

Real tables of ``bids_examples`` for the column policy; a real release site (DICOM, EEG,
T1w; :func:`conftest.release_site`) with planted identifiers for the whole path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from windl.errors import ReleaseRefused
from windl.release import columns
from windl.release.history import git_metadata_findings

from conftest import build_release, release_dir, run_windl, study_path

MARKER = "Jane Plantedname"
OPTIONS = columns.Options(characteristics=True)


def _release(data: Path, name: str, dictionary: dict | None = None) -> tuple[str, dict]:
    table = (data / "bids_examples" / name / "participants.tsv").read_text(encoding="utf-8")
    if dictionary is None:
        dictionary = json.loads((data / "bids_examples" / name / "participants.json").read_text())
    text, decided = columns.release_table_text("participants.tsv", table, dictionary, OPTIONS)
    return text, columns.release_dictionary(dictionary, {c.name: c for c in decided})


def test_bids_columns_are_normalised_and_their_levels_are_released(data: Path) -> None:
    """eeg_matchingpennies: sex m/f and handedness r/l become BIDS' M/F and R/L, the
    released dictionary declares exactly those levels; age is banded, still a number."""
    text, shipped = _release(data, "eeg_matchingpennies")
    header, *rows = [line.split("\t") for line in text.splitlines()]
    assert header == ["participant_id", "age", "sex", "handedness"]
    assert {r[2] for r in rows} <= {"M", "F"} and {r[3] for r in rows} <= {"R", "L"}
    assert all(int(r[1]) % 5 == 0 for r in rows)
    assert set(shipped["sex"]["Levels"]) == {"M", "F"}
    assert set(shipped["handedness"]["Levels"]) == {"L", "R"}


def test_an_undeclared_column_refuses_naming_file_and_column(data: Path) -> None:
    """7t_trt's participants.tsv has columns BIDS does not define and no WindlRelease."""
    with pytest.raises(ReleaseRefused) as refused:
        _release(data, "7t_trt")
    assert str(refused.value).startswith("participants.tsv: column 'age_at_first_scan_years'")
    assert "WindlRelease" in str(refused.value) and "\n" not in str(refused.value)


def test_age_is_banded_and_capped_and_sex_never_leaves_its_levels(data: Path) -> None:
    """ds000247's sex is declared with Levels Male/Female: after normalising, a value the
    dictionary does not declare (here a planted name, and O) is n/a; age 93 becomes 89."""
    source = data / "bids_examples" / "ds000247"
    dictionary = json.loads((source / "participants.json").read_text())
    dictionary["dominant_hand"]["WindlRelease"] = "drop"
    lines = (source / "participants.tsv").read_text().splitlines()
    lines += ["sub-9001\t93\tO\tLeft", f"sub-9002\t47\t{MARKER}\tRight"]
    table = "\ufeff" + "\n".join(lines) + "\n"  # written by a spreadsheet: with a BOM
    text, decided = columns.release_table_text("participants.tsv", table, dictionary, OPTIONS)
    rows = {r.split("\t")[0]: r.split("\t") for r in text.splitlines()[1:]}
    assert text.splitlines()[0] == "participant_id\tage\tsex"
    assert rows["sub-9001"][1:] == ["89", "n/a"] and rows["sub-9002"][1:] == ["45", "n/a"]
    assert rows["sub-0007"][1:] == ["20", "M"]
    shipped = columns.release_dictionary(dictionary, {c.name: c for c in decided})
    assert set(shipped) == {"age", "sex"} and set(shipped["sex"]["Levels"]) == {"M", "F"}


def test_inherited_events_dictionary_vets_trial_type(data: Path) -> None:
    """synthetic's nback events (its real table, one planted row): the dictionaries that
    apply by BIDS inheritance are found least specific first; a trial_type neither a
    software code, a declared level nor approved becomes n/a; the undeclared ``weight``
    refuses until declared; only released columns and levels are in the released JSON."""
    root = data / "bids_examples" / "synthetic"
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    table = "sub-01/ses-01/func/sub-01_ses-01_task-nback_run-01_events.tsv"
    more = {"task-nback_events.json", "task-rest_events.json", "sub-01/sub-01_events.json"}
    assert columns.dictionary_sources(table, files | more) == [
        "task-nback_events.json",
        "sub-01/sub-01_events.json",
    ]
    text = (root / "task-nback_events.tsv").read_text() + f"9\t1\t{MARKER}\t0.5\n"
    levels = {"scene_target_nbackparam": "target", MARKER: "typed"}
    dictionary = {"trial_type": {"Levels": levels}, "weight": {"Description": "weight"}}
    options = columns.Options(trial_types=frozenset({"scene_nontarget_nbackparam"}))
    with pytest.raises(ReleaseRefused, match="column 'weight' has no release class"):
        columns.release_table_text(table, text, dictionary, options)
    dictionary["weight"]["WindlRelease"] = "generalise"
    del levels[MARKER]
    out, decided = columns.release_table_text(table, text, dictionary, options)
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0] == ["onset", "duration", "trial_type", "weight"]
    assert rows[-1] == ["9", "1", "n/a", "0"]
    kept = {"scene_target_nbackparam", "scene_nontarget_nbackparam"}
    assert kept < {r[2] for r in rows[1:-1]} <= kept | {"n/a"}  # the other types: not approved
    assert MARKER not in out
    shipped = columns.release_dictionary(dictionary, {c.name: c for c in decided})
    assert shipped["trial_type"]["Levels"] == {"scene_target_nbackparam": "scene_target_nbackparam"}
    assert shipped["weight"] == {"Description": "weight"}


# --------------------------------------------------------------------------- whole path
def _all_objects(ds: Path) -> bytes:
    """Every git object of a dataset (history, tags, notes, git-annex branch), as an
    attacker who cloned it would read them, plus the annexed content."""
    listing = subprocess.run(
        ["git", "-C", str(ds), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout
    annexed = b"".join(
        p.read_bytes() for p in (ds / ".git" / "annex" / "objects").rglob("*") if p.is_file()
    )
    return listing + annexed


def _plant(site: Path) -> None:
    """Planted names in a phenotype table, participants.tsv, events.tsv and the README."""
    study = study_path(site)
    participants = (study / "participants.tsv").read_text().splitlines()
    participants[0] += "\tgroup"
    participants[1:] = [f"{row}\t{MARKER}" for row in participants[1:]]
    (study / "participants.tsv").write_text("\n".join(participants) + "\n")
    events = next(study.glob("sub-02/eeg/*_events.tsv"))
    events.write_text(events.read_text() + f"9.5\t0.0\t{MARKER} coughed\tn/a\t9500\n")
    readme = (study / "README").read_text()
    (study / "README").write_text(readme + f"\nScanned with help from {MARKER}.\n")
    subprocess.run(["git", "-C", str(study), "commit", "-qam", "test: planted"], check=True)


def test_tables_text_and_history_of_a_release_hold_no_planted_name(
    release_site: Path, tmp_path: Path
) -> None:
    site = release_site
    _plant(site)
    table = tmp_path / "x.tsv"
    table.write_text(
        "participant_id\tscore\tnotes\tstatus\n"
        f"sub-02\t12\t{MARKER} is the participant's aunt\tdone\n"
        f"sub-03\t7\tcalled {MARKER}\t{MARKER}\n"
    )
    run_windl("add", "study1", table, "--as", "phenotype", "--site", site)
    study = study_path(site)
    # an undeclared column refuses the build: one line naming the file and the column
    proc = build_release(site, "external", "1.0.1", check=False)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("windl: error: phenotype/x.tsv: column 'score' has no release")
    # the study lead declares them: the free text dropped, the status a categorical
    dictionary = json.loads((study / "phenotype/x.json").read_text())
    assert MARKER in json.dumps(dictionary)  # windl add listed the values as Levels
    dictionary["score"]["WindlRelease"] = "keep"
    dictionary["notes"]["WindlRelease"] = "drop"
    dictionary["status"] = {
        "Description": "Visit status",
        "Levels": {"done": "visit done"},
        "WindlRelease": "keep",
    }
    (study / "phenotype/x.json").write_text(json.dumps(dictionary, indent=2))
    subprocess.run(["git", "-C", str(study), "commit", "-qam", "test: declared"], check=True)
    # the operator's git identity is a planted name: the release's commits never carry it
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": MARKER,
        "GIT_AUTHOR_EMAIL": "jane@planted.example",
        "GIT_COMMITTER_NAME": MARKER,
        "GIT_COMMITTER_EMAIL": "jane@planted.example",
    }
    args = ["release", "build", "study1", "--scope", "external", "--version", "1.0.1"]
    subprocess.run([sys.executable, "-m", "windl", *args, "--site", str(site)], env=env, check=True)
    release = release_dir(site, "external")
    rows = (release / "phenotype/x.tsv").read_text().splitlines()
    assert rows[0] == "participant_id\tscore\tstatus"
    assert sorted(r.split("\t")[2] for r in rows[1:]) == ["done", "n/a"]
    shipped = json.loads((release / "phenotype/x.json").read_text())
    assert set(shipped) == {"participant_id", "score", "status"}
    assert shipped["status"]["Levels"] == {"done": "visit done"}
    assert "group" not in (release / "participants.tsv").read_text()
    assert "n/a" in next(release.glob("sub-*/eeg/*_events.tsv")).read_text()
    readme = (release / "README.md").read_text()
    assert "withheld pending review" in readme
    assert MARKER.encode() not in _all_objects(release)
    assert git_metadata_findings(release)[1] == []
    log = subprocess.run(
        ["git", "-C", str(release), "log", "--all", "--format=%an %ae %cn %ce"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert {line for line in log if line} == {"windl windl@localhost windl windl@localhost"}
    # the study lead reads and approves the README: now, and only now, it is in the release
    shown = run_windl("release", "review", "study1", "--site", site).stdout
    assert MARKER in shown and "NOT approved" in shown
    run_windl("release", "review", "study1", "--approve", "--site", site)
    build_release(site, "external", "1.0.2")
    assert MARKER in (release / "README.md").read_text()
    assert "withheld" not in (release / "README.md").read_text()
    (study / "README").write_text((study / "README").read_text() + "Changed after review.\n")
    subprocess.run(["git", "-C", str(study), "commit", "-qam", "test: edited"], check=True)
    build_release(site, "external", "1.0.3")
    assert "withheld pending review" in (release / "README.md").read_text()
