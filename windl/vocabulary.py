"""The study's approved vocabulary: the only person-chosen words a release may carry.

Text typed by people -- a SeriesDescription an operator wrote, the name of a recording file,
a marker text -- is identifying until the study lead has approved it. BIDS labels in a
release therefore never come straight from free text: a label is released as it is only
when it is a number (for the index entities), a value BIDS itself defines, or a term the
study approved in ``code/study.toml``::

    [vocabulary]
    task = ["rest", "nback"]       # BIDS entities: approved labels
    acq = ["mprage"]
    trial_type = ["eyes open"]      # events.tsv trial_type values and recording annotations

A mapping the study lead wrote approves its targets too: every label on the right-hand side
of ``[convert.tasks]`` and ``[convert.recording_tasks]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from windl.errors import ConfigError

#: BIDS entities whose labels are indices (non-negative integers)
INDEX_ENTITIES = frozenset({"run", "echo", "flip", "inv", "split", "chunk"})
#: values the BIDS specification itself defines for an entity
BIDS_VALUES: Mapping[str, frozenset[str]] = {
    "part": frozenset({"mag", "phase", "real", "imag"}),
    "mt": frozenset({"on", "off"}),
    "hemi": frozenset({"L", "R"}),
    "dir": frozenset({"AP", "PA", "LR", "RL", "SI", "IS", "ap", "pa", "lr", "rl", "si", "is"}),
}
#: the tables of ``code/study.toml`` whose values approve task labels
_TASK_MAPPINGS = ("tasks", "recording_tasks")


@dataclass(frozen=True)
class Vocabulary:
    """Approved values per entity (or field, e.g. ``trial_type``)."""

    terms: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def approves(self, entity: str, value: str) -> bool:
        """Whether ``value`` may stand as ``entity`` in a release without re-keying."""
        if entity in INDEX_ENTITIES and value.isdigit():
            return True
        return value in self.terms.get(entity, ()) or value in BIDS_VALUES.get(entity, ())

    def approved(self, entity: str) -> frozenset[str]:
        """The study's approved values of ``entity`` (BIDS' own values aside)."""
        return self.terms.get(entity, frozenset())


def vocabulary_of(settings: Mapping[str, Any], path: Path | None = None) -> Vocabulary:
    """The vocabulary of a study's parsed ``code/study.toml`` (``path`` names it in errors).

    Raises
    ------
    ConfigError
        If ``[vocabulary]`` is not a table of lists of strings.
    """
    table = settings.get("vocabulary", {}) or {}
    if not isinstance(table, dict):
        raise ConfigError("[vocabulary] must be a table of lists of strings", path)
    terms: dict[str, set[str]] = {}
    for entity, values in table.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"[vocabulary] {entity} must be a list of strings", path)
        terms.setdefault(entity, set()).update(values)
    convert = settings.get("convert", {}) or {}
    for name in _TASK_MAPPINGS:
        mapping = convert.get(name, {}) or {}
        if not isinstance(mapping, dict):
            raise ConfigError(f"[convert.{name}] must map patterns to labels", path)
        terms.setdefault("task", set()).update(str(v) for v in mapping.values())
    return Vocabulary({k: frozenset(v) for k, v in terms.items() if v})
