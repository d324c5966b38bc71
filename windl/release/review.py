"""Text written by people that a release may carry only after the study lead read it.

The study's ``README`` and the free-text fields of its ``dataset_description.json`` are
typed by people and may name anyone (a participant, a patient, a colleague). They go into
a release only when the study lead reviewed *exactly that text*: ``windl release review
STUDY`` prints every such text, and with ``--approve`` records the sha256 of each in the
study's ``code/release-review.json`` (one commit, :func:`windl.datasets.commit_files`). A
text changed since (or never approved) is withheld: the release README says the
description is withheld pending review, and the field is left out of the release's
``dataset_description.json``.

Fields of ``dataset_description.json``:

- released as they are: ``Name``, ``BIDSVersion``, ``License``, ``Authors`` (the people
  named there chose to be credited); ``DatasetType``, ``GeneratedBy`` and ``DatasetDOI``
  are written by windl;
- released after review (:data:`REVIEWED_FIELDS`): ``Acknowledgements``,
  ``HowToAcknowledge``, ``Funding``, ``EthicsApprovals``, ``ReferencesAndLinks``,
  ``DatasetLinks``, ``SourceDatasets``;
- every other field: never released.

The study's ``CHANGES`` is not released at all: the release's ``CHANGES`` is written by
windl from the release's own versions.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from windl import clock, datasets
from windl.study import Study

REVIEW_FILE = "code/release-review.json"
README_NAMES = ("README", "README.md", "README.rst", "README.txt")
#: dataset_description.json fields released as they are
PLAIN_FIELDS = ("Name", "BIDSVersion", "License", "Authors")
#: dataset_description.json fields released only as reviewed
REVIEWED_FIELDS = (
    "Acknowledgements",
    "HowToAcknowledge",
    "Funding",
    "EthicsApprovals",
    "ReferencesAndLinks",
    "DatasetLinks",
    "SourceDatasets",
)
_DESCRIPTION = "dataset_description.json"


@dataclass(frozen=True)
class ReviewText:
    """One text that needs the study lead's review."""

    name: str  # "README" or "dataset_description.json:Acknowledgements"
    text: str
    sha256: str
    approved: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _head_text(study: Study, rel: str) -> str:
    return datasets.git(study.root, "cat-file", "blob", f"HEAD:{rel}", check=False)


def approvals(study: Study) -> dict[str, str]:
    """The recorded approvals at the study's HEAD: text name → sha256."""
    try:
        data = json.loads(_head_text(study, REVIEW_FILE) or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        k: str(v.get("sha256")) for k, v in data.items() if isinstance(v, dict) and "sha256" in v
    }


def study_texts(study: Study) -> dict[str, str]:
    """Every text of the study's HEAD that a release carries only after review."""
    texts: dict[str, str] = {}
    for name in README_NAMES:
        text = _head_text(study, name)
        if text.strip():
            texts[name] = text
            break
    try:
        description = json.loads(_head_text(study, _DESCRIPTION) or "{}")
    except ValueError:
        description = {}
    if isinstance(description, dict):
        for key in REVIEWED_FIELDS:
            if key in description:
                texts[f"{_DESCRIPTION}:{key}"] = json.dumps(
                    description[key], indent=2, ensure_ascii=False, sort_keys=True
                )
    return texts


def review(study: Study) -> list[ReviewText]:
    """The texts of the study that need review, each with whether it is approved as it is."""
    approved = approvals(study)
    return [
        ReviewText(name, text, _sha256(text), approved.get(name) == _sha256(text))
        for name, text in study_texts(study).items()
    ]


def approve(study: Study) -> list[ReviewText]:
    """Record the study lead's approval of every current text (one commit to the study).

    Returns the texts now approved; nothing is committed when all were approved already.
    """
    texts = review(study)
    if all(t.approved for t in texts) and set(approvals(study)) == {t.name for t in texts}:
        return texts
    today = clock.today()
    record = {t.name: {"sha256": t.sha256, "approved": today} for t in texts}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "release-review.json"
        path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        datasets.commit_files(
            study.root,
            {REVIEW_FILE: path},
            f"windl release review: {len(texts)} text(s) approved for release",
        )
    return [ReviewText(t.name, t.text, t.sha256, True) for t in texts]


def approved_readme(study: Study) -> str | None:
    """The study's README text when approved exactly as it stands at HEAD, else ``None``."""
    for item in review(study):
        if item.name in README_NAMES:
            return item.text if item.approved else None
    return None


def released_description(study: Study, description: Mapping[str, Any]) -> dict[str, Any]:
    """``description`` (the study's dataset_description.json) with only what may go out:
    :data:`PLAIN_FIELDS` and the :data:`REVIEWED_FIELDS` approved as they are."""
    approved = {t.name.split(":", 1)[1] for t in review(study) if t.approved and ":" in t.name}
    return {
        k: v
        for k, v in description.items()
        if k in PLAIN_FIELDS or (k in REVIEWED_FIELDS and k in approved)
    }


__all__ = [
    "PLAIN_FIELDS",
    "REVIEWED_FIELDS",
    "REVIEW_FILE",
    "ReviewText",
    "approve",
    "approved_readme",
    "released_description",
    "review",
    "study_texts",
]
