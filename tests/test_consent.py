"""Consent registry: ``windl consent set|show|withdraw|import`` on a real site, real git."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from windl.consent import consent_record, consented_participants
from windl.pseudonyms import ensure_labels
from windl.study import Study

from conftest import THREE_SUBJECTS, dataset_heads, git_status, run_windl, study_path

SUBJECTS = THREE_SUBJECTS


def consent(site: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_windl("consent", *args, "--site", site, check=check)


def study(site: Path) -> Study:
    return Study(name="study1", root=study_path(site))


def git(ds: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ds), *args], capture_output=True, text=True, check=True
    ).stdout


def commit_count(ds: Path) -> int:
    return int(git(ds, "rev-list", "--count", "HEAD"))


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("windl: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def shown(site: Path, *args: str) -> dict:
    return json.loads(consent(site, "show", "study1", *args, "--json").stdout)


def test_set_then_show_gives_back_scopes_form_version_and_date(site3: Path) -> None:
    out = consent(
        site3, "set", "study1", "01", "--scope", "external", "--scope", "members",
        "--form-version", "2.1", "--date", "2024-05-01",
    ).stdout  # fmt: skip
    assert "sub-01" in out
    assert shown(site3)["records"] == [
        {
            "participant_id": "sub-01",
            "scopes": ["members", "external"],
            "form_version": "2.1",
            "date": "2024-05-01",
            "withdrawn": None,
        }
    ]
    one = shown(site3, "sub-01")
    assert one["participant"] == "sub-01"
    assert [h["action"] for h in one["history"]] == ["set"]
    text = consent(site3, "show", "study1").stdout
    assert text.startswith("sub-01\tmembers, external\tform 2.1\t2024-05-01")


def test_consent_date_defaults_to_today(site3: Path) -> None:
    import datetime as dt

    consent(site3, "set", "study1", "sub-02", "--scope", "members")
    record = shown(site3, "02")["records"][0]
    assert record["date"] == dt.date.today().isoformat()
    assert record["form_version"] is None


def test_each_change_is_one_commit_and_identical_consent_makes_none(site3: Path) -> None:
    restricted = study_path(site3) / "restricted"
    before = dataset_heads(site3)
    count = commit_count(restricted)
    consent(site3, "set", "study1", "01", "--scope", "members", "--form-version", "1")
    after_set = dataset_heads(site3)
    assert commit_count(restricted) == count + 1
    assert all(after_set[k] != before[k] for k in ("restricted", "study", "superdataset"))
    assert after_set["sourcedata"] == before["sourcedata"]

    # the same consent again, with or without the date it already has: nothing to commit
    again = consent(site3, "set", "study1", "01", "--scope", "members", "--form-version", "1")
    assert "unchanged" in again.stdout
    today = shown(site3, "01")["records"][0]["date"]
    consent(site3, "set", "study1", "sub-01", "--scope", "members", "--date", today)
    assert dataset_heads(site3) == after_set

    consent(site3, "set", "study1", "01", "--scope", "members", "--scope", "external")
    assert commit_count(restricted) == count + 2
    for ds in (site3 / "superdataset", study_path(site3), restricted):
        assert git_status(ds) == ""


def test_consent_lives_only_in_the_restricted_subdataset(site3: Path) -> None:
    study_root = study_path(site3)
    before = git(study_root, "rev-parse", "HEAD").strip()
    consent(site3, "set", "study1", "01", "--scope", "members")
    consent(site3, "withdraw", "study1", "01")
    study_files = git(study_root, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert not any("consent" in name for name in study_files)
    # what the consent commands added to the study's history (the template's settings
    # comments name the scopes, and are not consent)
    history = git(study_root, "log", "-p", "--format=%s", f"{before}..HEAD")
    assert "members" not in history and "withdr" not in history
    restricted_files = git(study_root / "restricted", "ls-tree", "--name-only", "HEAD").split()
    assert {"consent.tsv", "consent-log.tsv"} <= set(restricted_files)
    # both files are plain text in git, not annexed
    modes = git(study_root / "restricted", "ls-tree", "HEAD", "consent.tsv", "consent-log.tsv")
    assert [line.split()[0] for line in modes.splitlines()] == ["100644", "100644"]


def test_consent_log_is_append_only_with_one_timestamped_row_per_change(site3: Path) -> None:
    log = study_path(site3) / "restricted" / "consent-log.tsv"
    consent(site3, "set", "study1", "01", "--scope", "members", "--date", "2024-01-01")
    first = log.read_text()
    consent(site3, "set", "study1", "01", "--scope", "external", "--date", "2024-02-01")
    second = log.read_text()
    consent(site3, "withdraw", "study1", "01", "--date", "2024-03-01")
    third = log.read_text()
    assert second.startswith(first) and third.startswith(second)
    rows = [line.split("\t") for line in third.splitlines()]
    assert rows[0][:3] == ["timestamp", "action", "participant_id"]
    assert [r[1] for r in rows[1:]] == ["set", "set", "withdraw"]
    assert all(r[0].endswith("Z") and "T" in r[0] for r in rows[1:])
    current = (log.parent / "consent.tsv").read_text().splitlines()
    assert current[1:] == ["sub-01\texternal\tn/a\t2024-02-01\t2024-03-01"]


def test_withdrawal_is_recorded_and_says_when_no_version_was_published(site3: Path) -> None:
    consent(site3, "set", "study1", "02", "--scope", "members", "--date", "2024-01-01")
    out = consent(site3, "withdraw", "study1", "02", "--date", "2024-06-30").stdout
    assert "sub-02 withdrew consent on 2024-06-30" in out
    assert "no published versions" in out
    assert shown(site3, "02")["records"][0]["withdrawn"] == "2024-06-30"
    heads = dataset_heads(site3)
    again = consent(site3, "withdraw", "study1", "02").stdout
    assert "already withdrawn" in again
    assert dataset_heads(site3) == heads


def test_withdrawal_names_the_published_versions_that_still_contain_the_participant(
    site3: Path,
) -> None:
    consent(site3, "set", "study1", "01", "--scope", "members", "--scope", "external")
    labels = ensure_labels(study(site3), "members", ["01", "02"])
    release = site3 / "superdataset" / "releases" / "study1" / "members"
    release.mkdir(parents=True)
    git(release, "init", "-q")
    for label in labels.values():
        path = release / f"sub-{label}" / "anat" / f"sub-{label}_T1w.json"
        path.parent.mkdir(parents=True)
        path.write_text("{}\n")
    git(release, "add", ".")
    git(release, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "1.0.0")
    git(release, "tag", "v1.0.0")
    git(release, "rm", "-rq", f"sub-{labels['sub-01']}")
    git(release, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "1.1.0")
    git(release, "tag", "v1.1.0")

    proc = consent(site3, "withdraw", "study1", "01", "--json")
    published = json.loads(proc.stdout)["published"]
    assert [(p["scope"], p["tag"]) for p in published] == [("members", "v1.0.0")]
    text = consent(site3, "withdraw", "study1", "01").stdout
    assert "members v1.0.0" in text and "v1.1.0" not in text
    # the participant's original label never names a release version
    assert "sub-01" not in git(release, "ls-tree", "-r", "--name-only", "v1.0.0")


def test_consented_participants_exclude_withdrawn_and_non_consented(site3: Path) -> None:
    consent(site3, "set", "study1", "01", "--scope", "members", "--scope", "external")
    consent(site3, "set", "study1", "02", "--scope", "members")
    consent(site3, "withdraw", "study1", "02")
    s = study(site3)
    assert consented_participants(s, "members") == {"sub-01"}
    assert consented_participants(s, "external") == {"sub-01"}
    assert consented_participants(s, "individuals") == set()
    withdrawn = consent_record(s, "02")
    assert withdrawn is not None and withdrawn.withdrawn is not None
    assert not withdrawn.allows("members")
    assert consent_record(s, "sub-03") is None


def test_consent_after_withdrawal_is_refused_when_dated_before_it(site3: Path) -> None:
    consent(site3, "set", "study1", "01", "--scope", "members", "--date", "2024-01-01")
    consent(site3, "withdraw", "study1", "01", "--date", "2024-03-01")
    heads = dataset_heads(site3)
    proc = consent(
        site3, "set", "study1", "01", "--scope", "members", "--date", "2024-02-01", check=False
    )
    assert_one_line_error(proc, "withdrew on 2024-03-01")
    assert dataset_heads(site3) == heads
    consent(site3, "set", "study1", "01", "--scope", "members", "--date", "2024-04-01")
    assert consented_participants(study(site3), "members") == {"sub-01"}


def test_import_records_every_row_in_one_commit(site3: Path, tmp_path: Path) -> None:
    table = tmp_path / "consent.csv"
    table.write_text(
        "participant_id,scopes,form_version,date\n"
        "sub-01,members;external,3,2024-01-02\n"
        "02,individuals,,\n"
    )
    restricted = study_path(site3) / "restricted"
    count = commit_count(restricted)
    out = consent(site3, "import", "study1", str(table)).stdout
    assert "2 consent records" in out
    assert commit_count(restricted) == count + 1
    records = {r["participant_id"]: r for r in shown(site3)["records"]}
    assert records["sub-01"]["scopes"] == ["members", "external"]
    assert records["sub-01"]["form_version"] == "3"
    assert records["sub-01"]["date"] == "2024-01-02"
    assert records["sub-02"]["scopes"] == ["individuals"]
    heads = dataset_heads(site3)
    assert "unchanged" in consent(site3, "import", "study1", str(table)).stdout
    assert dataset_heads(site3) == heads


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("sub-02,members;public,1,2024-01-01", "unknown scope 'public'"),
        ("sub-02,,1,2024-01-01", "no scope given"),
        ("sub-02,members,1,2024-13-01", "not an ISO date"),
        ("sub-02,members,1,01.02.2024", "not an ISO date"),
        ("sub-02,members,1,2999-01-01", "in the future"),
        ("sub-99,members,1,2024-01-01", "no participant sub-99"),
        ("sub-0_2,members,1,2024-01-01", "invalid sub label"),
        ("sub-02,members,1", "3 fields, the header has 4"),
        ("sub-01,external,1,2024-01-01", "sub-01 is also on line 2"),
        ("sub-02,members,version 2,2024-01-01", "form version"),
    ],
)
def test_bad_import_row_is_refused_with_file_and_line_and_nothing_changes(
    site3: Path, tmp_path: Path, row: str, problem: str
) -> None:
    table = tmp_path / "consent.csv"
    table.write_text(
        f"participant_id,scopes,form_version,date\nsub-01,members,1,2024-01-01\n{row}\n"
    )
    heads = dataset_heads(site3)
    proc = consent(site3, "import", "study1", str(table), check=False)
    assert_one_line_error(proc, str(table), "line 3", problem)
    assert dataset_heads(site3) == heads
    assert shown(site3)["records"] == []


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("participant_id,scope,form_version,date", "unknown column 'scope'"),
        ("participant_id,form_version,date", "missing column 'scopes'"),
    ],
)
def test_import_with_wrong_columns_is_refused_at_line_one(
    site3: Path, tmp_path: Path, header: str, problem: str
) -> None:
    table = tmp_path / "consent.csv"
    table.write_text(f"{header}\nsub-01,members,1\n")
    heads = dataset_heads(site3)
    proc = consent(site3, "import", "study1", str(table), check=False)
    assert_one_line_error(proc, "consent.csv", "line 1", problem)
    assert dataset_heads(site3) == heads


@pytest.mark.parametrize("command", ["set", "withdraw", "show"])
def test_unknown_subject_is_refused_with_one_line_and_nothing_changes(
    site3: Path, command: str
) -> None:
    heads = dataset_heads(site3)
    extra = ["--scope", "members"] if command == "set" else []
    proc = consent(site3, command, "study1", "sub-99", *extra, check=False)
    assert_one_line_error(proc, "sub-99", "study1")
    assert dataset_heads(site3) == heads


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--scope", "public"], "unknown scope 'public'"),
        (["--scope", "members", "--date", "2024-02-30"], "not an ISO date"),
        (["--scope", "members", "--date", "20240201"], "not an ISO date"),
    ],
)
def test_bad_scope_or_date_is_refused_with_one_line(
    site3: Path, args: list[str], problem: str
) -> None:
    heads = dataset_heads(site3)
    proc = consent(site3, "set", "study1", "01", *args, check=False)
    assert_one_line_error(proc, problem)
    assert dataset_heads(site3) == heads


def test_withdrawal_dated_before_consent_is_refused(site3: Path) -> None:
    consent(site3, "set", "study1", "01", "--scope", "members", "--date", "2024-05-01")
    proc = consent(site3, "withdraw", "study1", "01", "--date", "2024-04-01", check=False)
    assert_one_line_error(proc, "before sub-01's consent of 2024-05-01")
