"""The approved vocabulary and the software-written annotation codes."""

from __future__ import annotations

import pytest

from windl.deid.annotations import vetted_annotation
from windl.errors import ConfigError
from windl.vocabulary import vocabulary_of


def test_labels_are_approved_by_vocabulary_mappings_numbers_and_bids() -> None:
    voc = vocabulary_of(
        {"vocabulary": {"task": ["nback"]}, "convert": {"tasks": {"(?i)rest": "rest"}}}
    )
    assert voc.approves("task", "nback") and voc.approves("task", "rest")
    assert not voc.approves("task", "JohnSmith")
    assert voc.approves("run", "3") and not voc.approves("acq", "3")
    assert voc.approves("dir", "AP") and not voc.approves("dir", "Smith")


def test_a_vocabulary_that_is_not_lists_of_strings_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="task must be a list"):
        vocabulary_of({"vocabulary": {"task": "rest"}})


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Stimulus/S  1", True),
        ("Response/R 15", True),
        ("Optic/O  1", True),
        ("Event/254", True),
        ("BAD_ACQ_SKIP", True),
        ("New Segment/", True),
        ("Comment/patient coughed", False),
        ("Jane Doe", False),
    ],
)
def test_only_software_written_annotations_are_kept_unreviewed(text: str, kept: bool) -> None:
    assert (vetted_annotation(text) == text) is kept
    assert vetted_annotation(text, approved={text}) == text
