"""Which annotation and marker texts a recording's own software wrote (and may be kept).

BrainVision markers, FIF/EDF+ annotations and the ``trial_type`` column that mne-bids makes
of them mix two kinds of text: codes written by the acquisition software (``Stimulus/S  1``,
``Response/R 15``, ``BAD_ACQ_SKIP``, ``New Segment``) and words an operator typed (a marker
"patient coughed"). Only the first kind is kept without review; typed text is released
only when the study approved it (``[vocabulary] trial_type``, :mod:`windl.vocabulary`).
"""

from __future__ import annotations

import re
from collections.abc import Collection

#: texts the acquisition or analysis software writes itself
_MACHINE = re.compile(
    r"""^(?:
        (?:Stimulus|Response|Optic)/\s*[A-Za-z]?\s*\d+  # BrainVision markers as mne reads them
      | [SRO]\s*\d+                                   # their description alone
      | \d+ | Event/\d+                               # trigger values (mne-bids: Event/N)
      | (?:Stimulus|Response|Optic)
      | New\ Segment/?|SyncStatus/Sync\ On|SyncStatus|Sync\ On|Time\ 0|DC\ Correction
      | BAD(?:_[A-Z]+)*|EDGE|ACQ_SKIP|BAD_ACQ_SKIP|boundary|n/a
    )$""",
    re.VERBOSE,
)


def is_machine_marker(text: str) -> bool:
    """Whether ``text`` is a code the recording software writes (not typed by a person)."""
    return bool(_MACHINE.match(text.strip()))


def vetted_annotation(text: str, approved: Collection[str] = ()) -> str | None:
    """``text`` if it may be released (a software code or approved), else ``None``."""
    return text if is_machine_marker(text) or text in approved else None
