"""Constraints on names that end up in paths: study names and BIDS labels."""

from __future__ import annotations

import re

from windl.errors import InvalidLabel

_BIDS_LABEL = re.compile(r"[A-Za-z0-9]+")
#: characters of a BIDS label windl accepts
MAX_LABEL = 64
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def bids_label(value: str, entity: str) -> str:
    """Return the BIDS label of ``value`` for ``entity`` (accepts ``sub-01`` or ``01``).

    Raises
    ------
    InvalidLabel
        If the label is empty or has characters BIDS labels may not contain.
    """
    label = value.removeprefix(f"{entity}-")
    # fullmatch: '$' alone lets a trailing line break through
    if not _BIDS_LABEL.fullmatch(label):
        raise InvalidLabel(
            f"invalid {entity} label {value[:80]!r}: BIDS labels are letters and digits only"
        )
    if len(label) > MAX_LABEL:
        # a label is in every file name of the subject, and a name has at most 255 bytes
        raise InvalidLabel(
            f"invalid {entity} label {value[:20]!r}...: {len(label)} characters, at most "
            f"{MAX_LABEL}"
        )
    return label


def study_name(value: str) -> str:
    """Validate a study name (letters, digits, '-' and '_'; starts alphanumeric)."""
    if not _STUDY_NAME.fullmatch(value):
        raise InvalidLabel(
            f"invalid study name {value!r}: use letters, digits, '-' and '_' "
            "(at most 64, starting with a letter or digit)"
        )
    return value


def sanitize_label(text: str, max_length: int = 32) -> str:
    """Make a BIDS label from free text (e.g. a SeriesDescription)."""
    return re.sub(r"[^A-Za-z0-9]", "", text)[:max_length]
