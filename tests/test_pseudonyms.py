"""Release labels: random, stable, unique, kept only in ``restricted/``; date-like sessions."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from windl.errors import InvalidLabel, PseudonymMissing, UnknownParticipant
from windl.pseudonyms import (
    ensure_labels,
    ensure_sessions,
    is_date_like,
    mapping,
    release_label,
    release_session,
    session_mapping,
)
from windl.study import Study

from conftest import THREE_SUBJECTS, dataset_heads, git_status, study_path

SUBJECTS = THREE_SUBJECTS
RELEASE_LABEL = re.compile(r"^[A-Za-z0-9]{8}$")


@pytest.fixture
def study(site3: Path) -> Study:
    """study1 of a fresh site copy, with participants sub-01, sub-02, sub-03."""
    return Study(name="study1", root=study_path(site3))


def site_of(study: Study) -> Path:
    return study.root.parent.parent.parent


def git(ds: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ds), *args], capture_output=True, text=True, check=True
    ).stdout


def test_release_labels_are_stable_across_calls_and_new_participants(study: Study) -> None:
    first = ensure_labels(study, "members", ["01", "sub-02"])
    assert set(first) == {"sub-01", "sub-02"}
    assert ensure_labels(study, "members", ["sub-01", "02"]) == first
    assert release_label(study, "members", "01") == first["sub-01"]
    assert release_label(study, "members", "sub-02", create=False) == first["sub-02"]
    everyone = ensure_labels(study, "members", SUBJECTS)
    assert {k: everyone[k] for k in first} == first
    assert mapping(study, "members") == everyone


def test_release_labels_are_bids_valid_unique_and_not_the_original_labels(study: Study) -> None:
    labels = ensure_labels(study, "external", SUBJECTS)
    assert all(RELEASE_LABEL.match(label) for label in labels.values())
    assert len({label.casefold() for label in labels.values()}) == len(SUBJECTS)
    for pid, label in labels.items():
        original = pid.removeprefix("sub-")
        assert label != original and label.casefold() != original.casefold()
        assert not label.isdigit()


def test_release_labels_differ_between_scopes(study: Study) -> None:
    by_scope = {scope: ensure_labels(study, scope, SUBJECTS) for scope in ("members", "external")}
    for pid in by_scope["members"]:
        assert by_scope["members"][pid] != by_scope["external"][pid]
    assert not set(by_scope["members"].values()) & set(by_scope["external"].values())


def test_new_labels_are_one_commit_in_restricted_and_never_in_the_study(study: Study) -> None:
    site = site_of(study)
    restricted = study.restricted
    before = dataset_heads(site)
    count = int(git(restricted, "rev-list", "--count", "HEAD"))
    labels = ensure_labels(study, "members", SUBJECTS)
    assert int(git(restricted, "rev-list", "--count", "HEAD")) == count + 1
    after = dataset_heads(site)
    assert all(after[k] != before[k] for k in ("restricted", "study", "superdataset"))
    ensure_labels(study, "members", SUBJECTS)
    release_label(study, "members", "02")
    assert dataset_heads(site) == after

    rows = (restricted / "pseudonyms.tsv").read_text().splitlines()
    assert rows[0] == "scope\tparticipant_id\trelease_label\tcreated"
    assert sorted(r.split("\t")[1:3] for r in rows[1:]) == sorted(map(list, labels.items()))
    assert "pseudonyms.tsv" not in git(study.root, "ls-tree", "-r", "--name-only", "HEAD")
    study_history = git(study.root, "log", "-p", "--format=%s%n%b")
    assert not any(label in study_history for label in labels.values())
    for ds in (site / "superdataset", study.root, restricted):
        assert git_status(ds) == ""


def test_earlier_labels_are_kept_byte_for_byte_when_new_ones_are_added(study: Study) -> None:
    ensure_labels(study, "members", ["01"])
    key = study.restricted / "pseudonyms.tsv"
    first = key.read_text()
    ensure_labels(study, "external", ["01", "02"])
    assert key.read_text().startswith(first)


def test_label_lookup_without_create_writes_nothing(study: Study) -> None:
    heads = dataset_heads(site_of(study))
    with pytest.raises(PseudonymMissing, match="sub-01"):
        release_label(study, "members", "01", create=False)
    with pytest.raises(PseudonymMissing):
        release_session(study, "members", "01", "20180918", create=False)
    assert dataset_heads(site_of(study)) == heads


def test_labels_for_unknown_participants_or_scopes_are_refused(study: Study) -> None:
    heads = dataset_heads(site_of(study))
    with pytest.raises(UnknownParticipant, match="sub-99"):
        ensure_labels(study, "members", ["01", "99"])
    with pytest.raises(InvalidLabel):
        release_label(study, "members", "0-1")
    with pytest.raises(Exception, match="unknown scope 'public'"):
        ensure_labels(study, "public", ["01"])
    assert dataset_heads(site_of(study)) == heads


@pytest.mark.parametrize(
    "session", ["20180918", "2018-09-18", "180918", "ses-1234567", "18sep2018"]
)
def test_date_like_sessions_are_rekeyed_and_stable(study: Study, session: str) -> None:
    label = release_session(study, "members", "01", session)
    assert RELEASE_LABEL.match(label)
    assert not is_date_like(label)
    assert release_session(study, "members", "sub-01", session) == label
    assert release_session(study, "members", "01", session, create=False) == label
    bare = session.removeprefix("ses-")
    assert session_mapping(study, "members") == {("sub-01", bare): label}
    rows = (study.restricted / "session-pseudonyms.tsv").read_text().splitlines()
    assert rows == [
        "scope\tparticipant\tsession\trelease_session",
        f"members\tsub-01\t{bare}\t{label}",
    ]
    assert release_session(study, "external", "01", session) != label


@pytest.mark.parametrize("session", ["1", "02", "ses-3", "pre"])
def test_numbered_and_approved_sessions_keep_their_label_and_write_nothing(
    study: Study, session: str
) -> None:
    settings = study.code / "study.toml"
    settings.write_text(settings.read_text() + '\n[vocabulary]\nses = ["pre"]\n')
    heads = dataset_heads(site_of(study))
    assert release_session(study, "members", "01", session) == session.removeprefix("ses-")
    assert dataset_heads(site_of(study)) == heads


@pytest.mark.parametrize("session", ["pre", "ge", "ses-post2", "JohnsVisit"])
def test_typed_session_labels_are_rekeyed_unless_approved(study: Study, session: str) -> None:
    label = release_session(study, "members", "01", session)
    assert label != session.removeprefix("ses-")
    assert len(label) == 8
    assert release_session(study, "members", "01", session) == label


def test_sessions_of_one_participant_get_distinct_labels_in_one_commit(study: Study) -> None:
    count = int(git(study.restricted, "rev-list", "--count", "HEAD"))
    pairs = [("01", "20180918"), ("01", "20180919"), ("02", "20180918"), ("01", "2")]
    labels = ensure_sessions(study, "members", pairs)
    assert int(git(study.restricted, "rev-list", "--count", "HEAD")) == count + 1
    assert labels[("sub-01", "2")] == "2"
    assert labels[("sub-01", "20180918")] != labels[("sub-01", "20180919")]
    assert len({labels[("sub-01", "20180918")], labels[("sub-02", "20180918")]}) == 2


@pytest.mark.parametrize(
    ("label", "dated"),
    [
        ("20180918", True),
        ("2018-09-18", True),
        ("180918", True),
        ("18.09.2018", True),
        ("123456", True),
        ("Sept2018", True),
        ("1", False),
        ("pre", False),
        ("ge", False),
        ("12345", False),
        ("run2", False),
    ],
)
def test_date_like_session_labels_are_recognised(label: str, dated: bool) -> None:
    assert is_date_like(label) is dated
