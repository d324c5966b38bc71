"""Which columns of a study's tables go into a release, and what their values become.

Every column of every TSV that goes into a release (``participants.tsv``, ``phenotype/*``,
``*_sessions.tsv``, ``*_scans.tsv``, ``*_beh.tsv``, ``*_events.tsv``, ``samples.tsv``,
``*_channels.tsv``, ``*_electrodes.tsv``, ...) has a *release class*:

``keep``
    released; values of a categorical column (``Levels``) outside its levels become ``n/a``.
``drop``
    not released (neither the column nor its entry in the data dictionary).
``generalise``
    numbers banded (:func:`band`: 5-unit bands; ``age`` also capped at 89, so it stays a
    number BIDS accepts), dates shifted per participant (or ``n/a`` in tables that mix
    participants), anything else ``n/a``.
``shift``
    dates shifted per participant (or ``n/a`` in tables of several participants); a value
    that is not a date becomes ``n/a``.

The class comes from ``"WindlRelease"`` in the column's entry of the study's JSON data
dictionary (``participants.json``, ``phenotype/<name>.json``, ``task-<t>_events.json``, ...,
found with BIDS inheritance, :func:`dictionary_sources`), else from :data:`DEFAULTS`, the
columns BIDS itself defines for that table (and those the tools windl runs write). A column
with neither blocks the build (:class:`~windl.errors.ReleaseRefused` naming file and column).

Default-deny for text typed by people:

- a column BIDS defines as free text (``HED``, ``stim_file``, ``status_description``) is
  dropped unless the dictionary says ``keep`` -- a study lead's ``keep`` is the review;
- a number column's values that are not numbers become ``n/a``;
- ``sex`` is normalised to ``M``/``F``/``O`` (DICOM ``M``/``F``/``O``, words, ISO 5218
  codes ``1``/``2``; ``0``/``9`` are unknown) and ``handedness`` to ``L``/``R``/``A``;
  a value the dictionary's ``Levels`` do not declare becomes ``n/a``;
- ``events.tsv`` ``trial_type`` values are kept only when
  :func:`windl.deid.annotations.vetted_annotation` keeps them (codes the recording software
  writes, or approved in the study's ``[vocabulary] trial_type``) or are declared ``Levels``;
- ``channels.tsv`` ``description`` keeps only the channel-type texts mne-bids writes;
- a column BIDS does not define whose name says it identifies (name, birth, address, ...)
  is dropped whatever its class, and patient characteristics (age, sex, weight, ...) go
  only with the Retain Patient Characteristics option.

The data dictionary written into the release lists only released columns and only released
levels; entries of columns classed by default get windl's own description (the study's
text there was never reviewed), declared ones keep the study's ``Description``, ``LongName``
and ``Units``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from windl.deid.annotations import vetted_annotation
from windl.errors import ReleaseRefused

#: the key of a column's data-dictionary entry that gives its release class
KEY = "WindlRelease"
CLASSES = ("keep", "drop", "generalise", "shift")
NA = "n/a"
#: patient characteristics: released only with Retain Patient Characteristics
CHARACTERISTICS = frozenset({"age", "sex", "gender", "weight", "height", "bmi", "ethnicity"})
#: column names that say what they hold: never released, whatever the dictionary says
IDENTIFYING_NAME = re.compile(
    r"name|birth|dob|initials|mrn|accession|address|phone|e-?mail|patient|scanner_id|his_id",
    re.IGNORECASE,
)
#: age is capped here (older ages are rare enough to identify)
AGE_CAP = 89
BAND = 5
#: keys of a released column entry (others, e.g. HED annotations, are dropped)
_ENTRY_KEYS = ("LongName", "Description", "Units", "TermURL", "Delimiter", "Format")
#: keys of a data dictionary that describe the table, not a column
_TABLE_KEYS = ("MeasurementToolMetadata",)
#: channel-type descriptions mne-bids writes into channels.tsv (mne_bids/write.py)
MNE_CHANNEL_DESCRIPTIONS = frozenset(
    {
        "Other type of channel",
        "Axial Gradiometer",
        "Axial Gradiometer Reference",
        "Planar Gradiometer",
        "Magnetometer",
        "Magnetometer Reference",
        "Trigger",
        "ElectroEncephaloGram",
        "Electrocorticography",
        "StereoEEG",
        "ElectroCardioGram",
        "ElectroOculoGram",
        "ElectroMyoGram",
        "Miscellaneous",
        "Biological",
        "Internal Active Shielding",
        "Deep Brain Stimulation",
        "Near Infrared Spectroscopy (continuous wave)",
        "Respiration",
        "Galvanic skin response (electrodermal activity, EDA)",
        "Temperature",
    }
)
_SEX = {
    "m": "M",
    "male": "M",
    "man": "M",
    "1": "M",
    "f": "F",
    "female": "F",
    "woman": "F",
    "2": "F",
    "o": "O",
    "other": "O",
}
_HANDEDNESS = {
    "l": "L",
    "left": "L",
    "r": "R",
    "right": "R",
    "a": "A",
    "ambidextrous": "A",
}
_NORMALISE = {"sex": _SEX, "handedness": _HANDEDNESS}
_LEVEL_TEXT = {
    "sex": {"M": "male", "F": "female", "O": "other"},
    "handedness": {"L": "left", "R": "right", "A": "ambidextrous"},
}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_DICOM_AGE = re.compile(r"^(\d{3})([DWMY])$")
_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


@dataclass(frozen=True)
class Rule:
    """The default of a column BIDS (or a tool windl runs) defines for a kind of table.

    ``kind`` says what its values are: ``id`` (re-keyed by the build), ``path`` (release
    file names), ``number``, ``date``, ``category`` (values from ``levels`` or declared
    ``Levels``), ``vetted`` (``trial_type``) or ``text`` (free text: dropped by default).
    """

    release: str
    kind: str
    description: str
    levels: frozenset[str] = frozenset()
    units: str = ""


def _n(description: str, units: str = "") -> Rule:
    return Rule("keep", "number", description, units=units)


_ID = Rule("keep", "id", "Release label: random, unrelated to the study's label")
_SESSION = Rule("keep", "id", "Session label (re-keyed in the release when date-like)")
_ACQ_TIME = Rule("shift", "date", "Acquisition time, shifted per participant (or n/a)")
_AGE = Rule("generalise", "number", f"Age in {BAND}-year bands, capped at {AGE_CAP}", units="year")
_SEX_RULE = Rule("keep", "category", "Sex", frozenset(_LEVEL_TEXT["sex"]))
_HAND = Rule("keep", "category", "Handedness", frozenset(_LEVEL_TEXT["handedness"]))
_TEXT = Rule("drop", "text", "Free text")
_PARTICIPANT = {
    "participant_id": _ID,
    "age": _AGE,
    "sex": _SEX_RULE,
    "handedness": _HAND,
    "hand": _HAND,  # mne-bids
    "weight": Rule("generalise", "number", f"Weight, in {BAND}-unit bands"),
    "height": Rule("generalise", "number", f"Height, in {BAND}-unit bands"),
    "species": _TEXT,
    "strain": _TEXT,
    "strain_rrid": _TEXT,
    "group": _TEXT,  # heudiconv writes it; a study's groups are declared as Levels
}
_EVENTS = {
    "onset": _n("Onset of the event from the start of the recording", "s"),
    "duration": _n("Duration of the event", "s"),
    "sample": _n("Onset of the event, in samples"),
    "value": _n("Event code (marker value)"),
    "response_time": _n("Response time", "s"),
    "trial_type": Rule("keep", "vetted", "Event type (software codes and approved terms)"),
    "HED": _TEXT,
    "stim_file": _TEXT,
}
_CHANNELS = {
    "name": Rule("keep", "declared", "Channel name"),
    "type": Rule("keep", "declared", "Channel type"),
    "units": Rule("keep", "declared", "Physical unit of the channel's values"),
    "description": Rule(
        "keep", "category", "Channel type, as mne-bids describes it", MNE_CHANNEL_DESCRIPTIONS
    ),
    "sampling_frequency": _n("Sampling frequency, in Hz"),
    "low_cutoff": _n("Low cutoff of the hardware filter, in Hz"),
    "high_cutoff": _n("High cutoff of the hardware filter, in Hz"),
    "notch": Rule("keep", "declared", "Notch filter"),
    "reference": Rule("keep", "declared", "Reference of the channel"),
    "group": Rule("keep", "declared", "Channel group"),
    "status": Rule("keep", "category", "Channel status", frozenset({"good", "bad"})),
    "status_description": _TEXT,
    "software_filters": Rule("keep", "declared", "Software filters"),
    "component": Rule("keep", "declared", "MEG component"),
}
_ELECTRODES = {
    "name": Rule("keep", "declared", "Electrode name"),
    "x": _n("x coordinate"),
    "y": _n("y coordinate"),
    "z": _n("z coordinate"),
    "size": _n("Electrode size"),
    "impedance": _n("Impedance, in kOhm"),
    "material": Rule("keep", "declared", "Electrode material"),
    "manufacturer": Rule("keep", "declared", "Electrode manufacturer"),
    "group": Rule("keep", "declared", "Electrode group"),
    "hemisphere": Rule("keep", "category", "Hemisphere", frozenset({"L", "R"})),
    "type": Rule("keep", "declared", "Electrode type"),
}
#: release classes of the columns BIDS defines, per kind of table (:func:`table_kind`)
DEFAULTS: Mapping[str, Mapping[str, Rule]] = {
    "participants": _PARTICIPANT,
    "phenotype": {"participant_id": _ID},
    "samples": {
        "participant_id": _ID,
        "sample_id": Rule("keep", "declared", "Sample label"),
        "sample_type": Rule("keep", "declared", "Sample type"),
        "pathology": _TEXT,
        "derived_from": Rule("keep", "declared", "Sample this one was derived from"),
    },
    "sessions": {"session_id": _SESSION, "acq_time": _ACQ_TIME, "age": _AGE},
    "scans": {
        "filename": Rule("keep", "path", "File of the release, relative to its session"),
        "acq_time": _ACQ_TIME,
        "operator": Rule("drop", "text", "Operator"),  # heudiconv
        "randstr": Rule("drop", "text", "Random string"),  # heudiconv
    },
    "events": _EVENTS,
    "beh": _EVENTS,
    "channels": _CHANNELS,
    "electrodes": _ELECTRODES,
    "optodes": _ELECTRODES,
    "aslcontext": {
        "volume_type": Rule(
            "keep",
            "category",
            "Volume type",
            frozenset({"control", "label", "m0scan", "deltam", "cbf", "noRF"}),
        )
    },
}
#: tables whose rows belong to several participants: no single date shift fits them
MIXED = frozenset({"participants", "phenotype", "samples"})
#: tables that describe participants (where age, sex, weight are patient characteristics)
_PARTICIPANT_LEVEL = MIXED | {"sessions"}


@dataclass(frozen=True)
class Column:
    """The release decision for one column of one table."""

    name: str
    release: str  # a class of CLASSES
    kind: str  # a Rule kind, or "declared" (kept as the dictionary says)
    levels: frozenset[str] | None = None  # allowed values (None: any of its kind)
    declared: bool = False  # the class came from the data dictionary
    entry: Mapping[str, Any] = field(default_factory=dict)
    rule: Rule | None = None

    @property
    def released(self) -> bool:
        return self.release != "drop"


@dataclass(frozen=True)
class Options:
    """What besides the dictionary decides: the policy and the approved vocabulary."""

    characteristics: bool = False  # Retain Patient Characteristics
    trial_types: frozenset[str] = frozenset()  # [vocabulary] trial_type


def table_kind(path: str) -> str:
    """The kind of table a study path is (a key of :data:`DEFAULTS`, or its suffix)."""
    name = PurePosixPath(path).name
    if path == "participants.tsv":
        return "participants"
    if path == "samples.tsv":
        return "samples"
    if path.startswith("phenotype/"):
        return "phenotype"
    stem = name.removesuffix(".tsv").removesuffix(".json")
    return stem.rsplit("_", 1)[-1] if "_" in stem else stem


def decide(
    table: str, name: str, entry: Mapping[str, Any] | None, options: Options, where: str
) -> Column:
    """The :class:`Column` of column ``name`` of a table of kind ``table``.

    Parameters
    ----------
    table
        :func:`table_kind` of the table.
    name
        The column's name (header cell).
    entry
        Its entry in the table's data dictionary (``None``: not described).
    options
        The study's policy options and vocabulary.
    where
        The table's path, for the error.

    Raises
    ------
    ReleaseRefused
        If the column has no release class, or an invalid one.
    """
    entry = entry if isinstance(entry, Mapping) else {}
    rule = DEFAULTS.get(table, {}).get(name)
    declared = entry.get(KEY)
    if declared is None and rule is None:
        raise ReleaseRefused(
            f'column {name!r} has no release class (add "{KEY}": one of '
            f"{', '.join(CLASSES)} to its entry in the data dictionary)",
            where,
        )
    if declared is not None and declared not in CLASSES:
        raise ReleaseRefused(f'column {name!r}: "{KEY}" must be one of {", ".join(CLASSES)}', where)
    release = str(declared) if declared is not None else rule.release  # type: ignore[union-attr]
    levels = _declared_levels(name, entry)
    if rule is not None and not (declared == "keep" and rule.kind == "text"):
        kind = rule.kind
    else:
        kind = "category" if levels is not None else "declared"
    allowed = _allowed(name, kind, rule, levels, options)
    is_id = kind == "id"
    if not is_id and (
        (rule is None and IDENTIFYING_NAME.search(name))
        or (
            table in _PARTICIPANT_LEVEL
            and name.lower() in CHARACTERISTICS
            and not options.characteristics
        )
        or (kind == "text" and declared != "keep")
    ):
        release = "drop"
    return Column(name, release, kind, allowed, declared is not None, entry, rule)


def _declared_levels(name: str, entry: Mapping[str, Any]) -> frozenset[str] | None:
    levels = entry.get("Levels")
    if not isinstance(levels, Mapping):
        return None
    table = _NORMALISE.get(name)
    if table is None:
        return frozenset(str(k) for k in levels)
    return frozenset(v for v in (table.get(str(k).strip().lower()) for k in levels) if v)


def _allowed(
    name: str, kind: str, rule: Rule | None, levels: frozenset[str] | None, options: Options
) -> frozenset[str] | None:
    if kind == "vetted":
        return (levels or frozenset()) | options.trial_types
    if kind != "category":
        return None
    if levels is not None:
        # a BIDS-defined value set narrows what the study declared, never widens it
        return levels & rule.levels if rule is not None and rule.levels else levels
    return rule.levels if rule is not None else frozenset()


def band(value: float, cap: int | None = None) -> str:
    """``value`` floored to its :data:`BAND`-unit band (and capped at ``cap``), as text."""
    banded = math.floor(value / BAND) * BAND
    if cap is not None and value >= cap:
        banded = cap
    return str(int(banded)) if float(banded).is_integer() else str(banded)


def _number(text: str, name: str) -> float | None:
    text = text.strip()
    match = _DICOM_AGE.match(text) if name == "age" else None
    if match:  # a DICOM Age String, e.g. 048Y
        return int(match.group(1)) * _AGE_UNIT_YEARS[match.group(2)]
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def release_value(column: Column, value: str) -> str:
    """What ``value`` of ``column`` becomes in the release (dates: see :func:`date_columns`)."""
    text = value.strip()
    if text in ("", NA) or column.kind in ("id", "path", "date"):
        return value
    if column.release == "generalise" or column.kind == "number":
        number = _number(text, column.name)
        if number is not None and column.release == "generalise":
            return band(number, AGE_CAP if column.name == "age" else None)
        if number is not None:
            return text
        # a date is shifted (or set to n/a) afterwards, with the participant's offset
        return value if column.release == "generalise" and _ISO_DATE.match(text) else NA
    if column.release == "shift":
        return value if _ISO_DATE.match(text) else NA
    if column.kind == "vetted":
        return vetted_annotation(text, column.levels or ()) or NA
    if column.kind == "category":
        normalised = _NORMALISE.get(column.name, {}).get(text.lower(), text)
        return normalised if normalised in (column.levels or ()) else NA
    return value  # declared: the study lead's keep


def date_columns(columns: Sequence[Column]) -> list[str]:
    """Columns whose values the build shifts as dates (or sets to ``n/a``)."""
    return [
        c.name
        for c in columns
        if c.released
        and (c.kind == "date" or c.release in ("shift", "generalise"))
        and c.kind != "number"
    ]


def read_table(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a TSV's text (a UTF-8 BOM and blank lines ignored)."""
    lines = [line for line in text.removeprefix("\ufeff").splitlines() if line.strip()]
    if not lines:
        return [], []
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def table_columns(
    path: str, header: Iterable[str], dictionary: Mapping[str, Any], options: Options
) -> list[Column]:
    """The :class:`Column` of every header cell of the table ``path`` (see :func:`decide`)."""
    table = table_kind(path)
    return [decide(table, name, dictionary.get(name), options, path) for name in header]


def release_rows(
    columns: Sequence[Column], rows: Iterable[Sequence[str]]
) -> tuple[list[str], list[list[str]]]:
    """Released header and rows: dropped columns removed, every value through
    :func:`release_value` (short rows padded with ``n/a``)."""
    index = [i for i, c in enumerate(columns) if c.released]
    out = []
    for cells in rows:
        out.append([release_value(columns[i], cells[i]) if i < len(cells) else NA for i in index])
    return [columns[i].name for i in index], out


def release_table_text(
    path: str, text: str, dictionary: Mapping[str, Any], options: Options
) -> tuple[str, list[Column]]:
    """The released text of the table ``path`` (columns, values) and its columns."""
    header, rows = read_table(text)
    if not header:
        return "", []
    columns = table_columns(path, header, dictionary, options)
    names, out = release_rows(columns, rows)
    body = "".join("\t".join(r) + "\n" for r in out)
    return "\t".join(names) + "\n" + body, columns


def release_dictionary(data: Mapping[str, Any], columns: Mapping[str, Column]) -> dict[str, Any]:
    """The data dictionary as released: released ``columns`` only, released levels only.

    Parameters
    ----------
    data
        The study's dictionary (one JSON file).
    columns
        The decisions for the columns of the tables it describes, by name.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        column = columns.get(key)
        if column is None:
            if key in _TABLE_KEYS and isinstance(value, Mapping):
                out[key] = {k: v for k, v in value.items() if k == "TermURL"}
            continue  # a column of no released table, or text nobody classified
        if column.released:
            out[key] = released_entry(column)
    return out


def released_entry(column: Column) -> dict[str, Any]:
    """The dictionary entry of a released column."""
    entry: dict[str, Any]
    if column.declared:
        entry = {k: column.entry[k] for k in _ENTRY_KEYS if k in column.entry}
    else:
        entry = {"Description": column.rule.description if column.rule else column.name}
        if column.rule is not None and column.rule.units:
            entry["Units"] = column.rule.units
    if column.kind in ("category", "vetted") and column.levels:
        declared = column.entry.get("Levels")
        texts = dict(_LEVEL_TEXT.get(column.name, {}))
        if column.declared and isinstance(declared, Mapping):
            normalise = _NORMALISE.get(column.name, {})
            texts.update(
                {normalise.get(str(k).strip().lower(), str(k)): v for k, v in declared.items()}
            )
        shown = (
            sorted(column.levels)
            if column.kind == "category"
            else sorted(str(k) for k in (declared or {}) if str(k) in column.levels)
        )
        if shown:
            entry["Levels"] = {level: texts.get(level, level) for level in shown}
    return entry


# --------------------------------------------------------------------------- inheritance
def _entities(name: str) -> tuple[dict[str, str], str]:
    stem = name.split(".", 1)[0]
    pieces = stem.split("_")
    entities = dict(p.split("-", 1) for p in pieces[:-1] if "-" in p)
    return entities, pieces[-1]


def dictionary_sources(table: str, files: Collection[str]) -> list[str]:
    """The JSON files of ``files`` that describe the TSV ``table``, least specific first.

    BIDS inheritance: a ``.json`` in the table's folder or a folder above it, with the
    table's suffix and a subset of its entities (``task-rest_events.json`` at the top for
    ``sub-01/eeg/sub-01_task-rest_events.tsv``). A table that is not below ``sub-*``
    (``participants.tsv``, ``phenotype/x.tsv``) has only its own ``.json``.
    """
    own = table.removesuffix(".tsv") + ".json"
    if not table.startswith("sub-"):
        return [own] if own in files else []
    path = PurePosixPath(table)
    entities, suffix = _entities(path.name)
    folders = {str(p) for p in path.parents}
    found = []
    for candidate in files:
        cpath = PurePosixPath(candidate)
        if cpath.suffix != ".json" or str(cpath.parent) not in folders:
            continue
        theirs, their_suffix = _entities(cpath.name)
        if their_suffix != suffix:
            continue
        if all(entities.get(k) == v for k, v in theirs.items()):
            found.append((len(cpath.parts), len(theirs), candidate))
    return [c for *_, c in sorted(found)]


def merged_dictionary(sources: Sequence[str], read: Mapping[str, Any]) -> dict[str, Any]:
    """The dictionaries ``sources`` (least specific first), merged as BIDS inheritance does."""
    merged: dict[str, Any] = {}
    for source in sources:
        data = read.get(source)
        if isinstance(data, Mapping):
            merged.update(data)
    return merged


# --------------------------------------------------------------------------- a study's tables
@dataclass
class StudyTables:
    """The release decisions for all tables of a release, made once per build.

    ``dictionaries`` maps each table (study path) to its merged data dictionary;
    ``described`` maps each data dictionary (study path) to the columns of the tables it
    describes, decided from its own entries (what it says is what its release copy says).
    """

    options: Options = field(default_factory=Options)
    dictionaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    described: dict[str, dict[str, Column]] = field(default_factory=dict)

    def key(self, path: str | None) -> str:
        """A hash of everything that decides the release copy of ``path`` (for caches)."""
        if path is None or (path not in self.dictionaries and path not in self.described):
            return ""
        payload = {
            "options": [self.options.characteristics, sorted(self.options.trial_types)],
            "dictionary": self.dictionaries.get(path),
            "columns": sorted(
                (c.name, c.release, c.kind, sorted(c.levels or ()), c.declared)
                for c in self.described.get(path, {}).values()
            ),
            "entries": {n: c.entry for n, c in self.described.get(path, {}).items()},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def study_tables(
    tables: Sequence[str],
    files: Collection[str],
    read: Callable[[Sequence[str]], Mapping[str, bytes | None]],
    options: Options,
) -> StudyTables:
    """Decide every column of ``tables`` (study paths) and of their data dictionaries.

    Parameters
    ----------
    tables
        The TSV files that go into the release.
    files
        Every file of the study (to find the dictionaries).
    read
        Reads files of the study's commit (path -> bytes, ``None`` when missing).
    options
        The policy options and the approved vocabulary.

    Raises
    ------
    ReleaseRefused
        Naming the first table and column without a release class (or with a bad one), or
        a data dictionary that is not a JSON object.
    """
    sources = {table: dictionary_sources(table, files) for table in tables}
    wanted = sorted({*tables, *(s for found in sources.values() for s in found)})
    content = read(wanted)
    parsed: dict[str, Any] = {}
    for source in sorted({s for found in sources.values() for s in found}):
        try:
            parsed[source] = json.loads((content.get(source) or b"{}").decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError):
            raise ReleaseRefused("data dictionary is not valid JSON", source) from None
        if not isinstance(parsed[source], dict):
            raise ReleaseRefused("data dictionary is not a JSON object", source)
    result = StudyTables(options=options)
    for table in sorted(tables):
        raw = content.get(table) or b""
        header, _ = read_table(raw.decode("utf-8-sig", errors="replace"))
        merged = merged_dictionary(sources[table], parsed)
        table_columns(table, header, merged, options)  # refuses an undeclared column
        result.dictionaries[table] = merged
        kind = table_kind(table)
        for source in sources[table]:
            own = result.described.setdefault(source, {})
            for name in header:
                try:
                    own[name] = decide(kind, name, parsed[source].get(name), options, table)
                except ReleaseRefused:
                    # described elsewhere (a more specific dictionary wins); not here
                    own[name] = Column(name, "drop", "text")
    return result


__all__ = [
    "CLASSES",
    "DEFAULTS",
    "KEY",
    "Column",
    "Options",
    "StudyTables",
    "band",
    "date_columns",
    "decide",
    "dictionary_sources",
    "merged_dictionary",
    "read_table",
    "release_dictionary",
    "release_table_text",
    "release_value",
    "study_tables",
    "table_columns",
    "table_kind",
]
