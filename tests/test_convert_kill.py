"""A killed ``windl convert`` is recovered by the next one (issue 22).

SIGKILL at windl's checkpoints spread over a serial convert: the next convert completes
without a hand edit, every dataset of the site is clean, ``git annex fsck`` passes, and a
third convert makes no commit. What the killed run left is discarded only where its
journal says it writes: an operator's own changes are kept, and still refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import (
    assert_site_clean,
    copy_site,
    dataset_heads,
    run_killed_at,
    run_windl,
    study_path,
)

#: the points of a serial convert, in the order it passes them (first session)
POINTS = (
    "convert-start",
    "run-started",
    "finalize-tidied",
    "finalize-participant",
    "finalize-recorded",
    "run-saved",
    "convert-converted",
)


@pytest.mark.parametrize("point", POINTS)
def test_next_convert_completes_after_a_kill(
    two_subjects_template: Path, tmp_path: Path, point: str
) -> None:
    site = copy_site(two_subjects_template, tmp_path / "site")
    study = study_path(site)
    run_killed_at(["convert", "study1", "--site", site], point, tmp_path)
    # an operator's own file next to what the killed run left: kept by the recovery
    notes = study / "code" / "operator-notes.txt"
    notes.write_text("mine\n")
    run_windl("convert", "study1", "--site", site)
    assert notes.read_text() == "mine\n"
    notes.unlink()
    assert_site_clean(site)
    for subject in ("k1", "k2"):
        assert list((study / f"sub-{subject}").rglob("*.nii.gz")), subject
        assert f"sub-{subject}" in (study / "participants.tsv").read_text()
    before = dataset_heads(site)
    run_windl("convert", "study1", "--site", site)
    assert dataset_heads(site) == before
    assert not list((study / ".git" / "windl" / "journal").glob("*"))


def test_operator_edit_of_participants_is_still_refused(
    two_subjects_template: Path, tmp_path: Path
) -> None:
    """Without a journal naming it, an uncommitted participants.tsv is the operator's."""
    site = copy_site(two_subjects_template, tmp_path / "site")
    study = study_path(site)
    before = dataset_heads(site)
    tsv = study / "participants.tsv"
    tsv.write_text(tsv.read_text() + "sub-x\n")
    proc = run_windl("convert", "study1", "--site", site, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("windl: error:")]
    assert len(errors) == 1 and "participants.tsv" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert tsv.read_text().endswith("sub-x\n")
    assert dataset_heads(site) == before
