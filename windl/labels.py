"""Constraints on names that end up in paths: study names and BIDS labels."""

from __future__ import annotations

import re

from windl.errors import InvalidLabel

_BIDS_LABEL = re.compile(r"^[A-Za-z0-9]+$")
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def bids_label(value: str, entity: str) -> str:
    """Return the BIDS label of ``value`` for ``entity`` (accepts ``sub-01`` or ``01``).

    Raises
    ------
    InvalidLabel
        If the label is empty or has characters BIDS labels may not contain.
    """
    label = value.removeprefix(f"{entity}-")
    if not _BIDS_LABEL.match(label):
        raise InvalidLabel(
            f"invalid {entity} label {value!r}: BIDS labels are letters and digits only"
        )
    return label


def study_name(value: str) -> str:
    """Validate a study name (letters, digits, '-' and '_'; starts alphanumeric)."""
    if not _STUDY_NAME.match(value):
        raise InvalidLabel(
            f"invalid study name {value!r}: use letters, digits, '-' and '_' "
            "(at most 64, starting with a letter or digit)"
        )
    return value


def sanitize_label(text: str, max_length: int = 32) -> str:
    """Make a BIDS label from free text (e.g. a SeriesDescription)."""
    return re.sub(r"[^A-Za-z0-9]", "", text)[:max_length]
