"""Vetted labels of a release: every entity label the study has not approved is re-keyed.

At conversion a label may come from free text -- a task from the SeriesDescription an
operator typed or from a recording's file name, ``acq``/``rec``/``dir`` from dcm2niix's
guess. That is fine inside the centre, but a release must carry no label the study has not
approved (:mod:`windl.vocabulary`). The build *re-keys* such a label to a neutral
``<entity><n>`` (``task-task1``) instead of refusing: the release stays usable, the neutral
label says nothing, and the table that maps it back stays in ``restricted/``
(:func:`windl.pseudonyms.ensure_entity_labels`), stable across the release line.

The same re-keying applies wherever a label or a path stands inside a file: the
``TaskName`` of a sidecar, the paths of ``IntendedFor``/``AssociatedEmptyRoom``/``Sources``
(and a ``DigitizedHeadPoints`` that is a path), the free
``B0FieldIdentifier``/``B0FieldSource`` labels, ``scans.tsv`` file names and the QC texts.
``SeriesDescription`` and ``ProtocolName`` are kept only when approved
(``[vocabulary] SeriesDescription = [...]``), as there is no neutral form of a description.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from windl.errors import PseudonymMissing
from windl.vocabulary import Vocabulary

#: BIDS entities (specification 1.10), in their order in a file name
BIDS_ENTITIES = (
    "sub",
    "ses",
    "sample",
    "task",
    "tracksys",
    "acq",
    "nuc",
    "voi",
    "ce",
    "trc",
    "stain",
    "rec",
    "dir",
    "run",
    "mod",
    "echo",
    "flip",
    "inv",
    "mt",
    "part",
    "proc",
    "hemi",
    "space",
    "split",
    "recording",
    "chunk",
    "seg",
    "res",
    "den",
    "label",
    "from",
    "to",
    "desc",
)
#: pseudonymised by :mod:`windl.pseudonyms` on their own (random labels), not vetted here
PSEUDONYMISED = frozenset({"sub", "ses"})
#: entities whose labels are vetted against the study's vocabulary
VETTED = frozenset(BIDS_ENTITIES) - PSEUDONYMISED
#: sidecar fields holding BIDS paths (``bids::`` URIs or paths relative to the participant)
PATH_FIELDS = ("IntendedFor", "AssociatedEmptyRoom", "Sources", "RawSources", "DigitizedHeadPoints")
#: sidecar fields holding a free label; both share one label space, as they must match
B0_FIELDS = ("B0FieldIdentifier", "B0FieldSource")
B0_ENTITY = "B0FieldIdentifier"
#: description fields kept only when the study approved the exact value
DESCRIPTION_FIELDS = ("SeriesDescription", "ProtocolName")
_PIECE = re.compile(r"^([A-Za-z0-9]+)-([^_]*)$")


def pieces(part: str) -> list[tuple[str, str, str]]:
    """(key, label, rest) of every ``key-label`` piece of a path part; ``rest`` is an extension.

    Examples
    --------
    >>> pieces("sub-01_task-rest_bold.nii.gz")
    [('sub', '01', ''), ('task', 'rest', '')]
    >>> pieces("sub-01_desc-x.html")
    [('sub', '01', ''), ('desc', 'x', '.html')]
    """
    found = []
    for piece in part.split("_"):
        match = _PIECE.match(piece)
        if match:
            label, dot, ext = match.group(2).partition(".")
            found.append((match.group(1), label, dot + ext))
    return found


def vetted_pairs(paths: Iterable[str]) -> set[tuple[str, str]]:
    """The (entity, label) pairs of vetted entities in ``paths`` (folders and file names)."""
    return {
        (key, label)
        for path in paths
        for part in path.split("/")
        for key, label, _ in pieces(part)
        if key in VETTED and label
    }


def b0_labels(data: Mapping[str, Any]) -> set[str]:
    """The free labels of a sidecar's ``B0FieldIdentifier``/``B0FieldSource``."""
    return {v for name in B0_FIELDS for v in _strings(data.get(name))}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


@dataclass(frozen=True)
class Relabel:
    """How a release spells every vetted label: approved ones as they are, others re-keyed."""

    vocabulary: Vocabulary = field(default_factory=Vocabulary)
    keys: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (entity, label) → new

    def label(self, entity: str, value: str) -> str:
        """The release label of ``value`` as ``entity``.

        Raises
        ------
        PseudonymMissing
            If the label is not approved and has no neutral label yet (the build allocates
            them; ``windl release assemble`` alone cannot).
        """
        if entity in PSEUDONYMISED or self.vocabulary.approves(entity, value):
            return value
        try:
            return self.keys[(entity, value)]
        except KeyError:
            raise PseudonymMissing(
                f"a {entity} label has no neutral release label yet: run 'windl release build'"
            ) from None

    def rekeyed(self) -> dict[tuple[str, str], str]:
        """The pairs re-keyed now (approved ones aside, should the study approve one later)."""
        return {p: v for p, v in self.keys.items() if not self.vocabulary.approves(*p)}

    def digest(self, pairs: Iterable[tuple[str, str]] | None = None) -> str:
        """A hash of what decides the labels of a file (for the build's reuse cache).

        ``pairs``: the (entity, label) pairs the file's text may name (its participant's
        paths); without it, every re-keyed pair. So a label new in another participant's
        files does not make this one's files again.
        """
        wanted = set(self.keys) if pairs is None else set(pairs)
        wanted |= {p for p in self.keys if p[0] == B0_ENTITY}
        resolved = sorted(
            [*p, p[1] if self.vocabulary.approves(*p) else self.keys.get(p, "")] for p in wanted
        )
        fields = ("task", B0_ENTITY, *DESCRIPTION_FIELDS)
        terms = {k: sorted(self.vocabulary.approved(k)) for k in fields}
        payload = {"terms": terms, "labels": resolved}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def rekey_sidecar(
    data: Mapping[str, Any],
    release_name: str,
    relabel: Relabel,
    rename_path: Any,
) -> dict[str, Any]:
    """A sidecar with its labels and paths as the release spells them.

    Parameters
    ----------
    data
        The (already de-identified) sidecar.
    release_name
        The sidecar's file name in the release: its ``task`` entity is the ``TaskName``.
    relabel
        The release's labels.
    rename_path
        ``rename_path(path) -> str``: a study path (relative to the participant or the
        dataset) as the release names it; raises :class:`PseudonymMissing` when it cannot.

    Returns
    -------
    dict
        A copy; a path or label that cannot be re-keyed is dropped, never kept as it was.
    """
    out = dict(data)
    task = next((label for key, label, _ in pieces(release_name) if key == "task"), None)
    if "TaskName" in out:
        if task is not None:
            out["TaskName"] = task
        elif not (
            isinstance(out["TaskName"], str)
            and relabel.vocabulary.approves("task", out["TaskName"])
        ):
            del out["TaskName"]
    for name in DESCRIPTION_FIELDS:
        value = out.get(name)
        if name in out and not (
            isinstance(value, str) and relabel.vocabulary.approves(name, value)
        ):
            del out[name]
    for name in PATH_FIELDS:
        if name in out and not isinstance(out[name], bool):  # DigitizedHeadPoints: either
            _replace(out, name, lambda v: _rekey_uri(v, rename_path))
    for name in B0_FIELDS:
        if name in out:
            _replace(out, name, lambda v: relabel.label(B0_ENTITY, v))
    return out


def _rekey_uri(value: str, rename_path: Any) -> str:
    """A ``bids::`` URI or a path (relative, or from the dataset root with a ``/``)."""
    prefix = "bids::" if value.startswith("bids::") else "/" if value.startswith("/") else ""
    return prefix + rename_path(value.removeprefix(prefix))


def _replace(data: dict[str, Any], name: str, func: Any) -> None:
    """``data[name]`` (a string or a list of them) through ``func``; failures dropped."""
    value = data[name]
    values = value if isinstance(value, list) else [value]
    kept = []
    for item in values:
        if not isinstance(item, str):
            continue
        try:
            kept.append(func(item))
        except PseudonymMissing:
            continue
    if not kept:
        del data[name]
    elif isinstance(value, list):
        data[name] = kept
    else:
        data[name] = kept[0]


def token_swaps(relabel: Relabel) -> dict[str, str]:
    """``entity-old`` → ``entity-new`` for every re-keyed label (to re-key texts by token)."""
    return {
        f"{entity}-{old}": f"{entity}-{new}"
        for (entity, old), new in relabel.rekeyed().items()
        if entity in VETTED
    }
