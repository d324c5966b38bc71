"""The audit's ``recording-text`` check: no text a person typed left in a released recording.

It does not look for identifiers it knows (that is the ``identifiers`` check); it checks
that the fields where people type are empty, neutral or vetted, whatever they say:

* BrainVision ``.vhdr``/``.vmrk``: no ``;`` comment line, no ``[Comment]`` section, no
  section or key mne does not read, channel entries of name, reference, resolution and
  unit only; every marker description a software code or approved.
* FIF: ``subject_info`` holds at most sex, hand, weight and height (and only when the
  policy retains patient characteristics), ``experimenter``, ``description``, project,
  acquisition-parameter texts empty, no helium file GUID, no processing-history or HPI
  ``creator``/``experimenter``, device serial/site only when retained; every annotation
  a software code or approved.
* EDF/BDF: patient field ``X X X X`` (sex and the EDF+ characteristics when retained),
  recording field ``Startdate <date> X X <equipment>``; every EDF+/BDF+ annotation text
  a software code or approved.
* NIfTI: ``descrip``, ``aux_file``, ``intent_name``, ``db_name``, ``data_type`` empty, no
  header extension.

Each problem names the field, never its value. The readers are mne and nibabel, not the
code that wrote the release, so a scrubber's blind spot is not the audit's.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any, Final

from windl.deid.annotations import vetted_annotation
from windl.deid.dicom import DeidPolicy
from windl.deid.ephys import VHDR_KEPT, VMRK_KEPT, is_vetted_marker, unsupported_recording

#: file endings this check reads
SUFFIXES: Final = (".vhdr", ".vmrk", ".fif", ".edf", ".bdf", ".nii", ".nii.gz")
#: NIfTI header fields that must be empty
NIFTI_TEXT: Final = ("descrip", "aux_file", "intent_name", "db_name", "data_type")
#: FIF ``info`` fields that must be empty (kept apart from the scrubber's own list on
#: purpose: the audit is a second line, and a field the scrubber forgets must still fail here)
FIF_EMPTY: Final = (
    "experimenter",
    "description",
    "proj_name",
    "proj_id",
    "acq_pars",
    "acq_stim",
    "xplotter_layout",
)
_CHARACTERISTICS: Final = ("sex", "hand", "weight", "height")
_SPLIT_LATER = re.compile(r"_split-0*(?:[2-9]|[1-9]\d+)_")


def applies(rel: str) -> bool:
    """Whether ``rel`` is a file this check reads (or refuses: :func:`unsupported_recording`)."""
    return rel.lower().endswith(SUFFIXES) or unsupported_recording(rel) is not None


def recording_text_problems(
    path: Path, rel: str, policy: DeidPolicy, approved: Collection[str] = ()
) -> list[str]:
    """What is wrong with the typed-text fields of one released recording or image.

    Parameters
    ----------
    path : Path
        The file.
    rel : str
        Its path in the release (decides the format).
    policy : DeidPolicy
        The study's options (what may be retained).
    approved : collection of str
        The study's approved annotation texts (``[vocabulary] trial_type``).

    Returns
    -------
    list of str
        One message per problem, naming the field; empty when the file is clean.
    """
    lower = rel.lower()
    fmt = unsupported_recording(rel)
    if fmt is not None:
        return [f"a {fmt} recording, a format whose text fields this audit cannot read"]
    if lower.endswith(".vhdr"):
        return _ini_problems(path, VHDR_KEPT, "header", _vhdr_entry)
    if lower.endswith(".vmrk"):
        return _ini_problems(path, VMRK_KEPT, "marker file", lambda e: _vmrk_entry(e, approved))
    if lower.endswith(".fif"):
        return [] if _SPLIT_LATER.search(rel) else _fif_problems(path, policy, approved)
    if lower.endswith((".edf", ".bdf")):
        return _edf_problems(path, policy, approved)
    if lower.endswith((".nii", ".nii.gz")):
        return _nifti_problems(path)
    return []


# --- BrainVision ------------------------------------------------------------------------------


def _ini_problems(path: Path, kept: dict[str, frozenset[str]], what: str, entry: Any) -> list[str]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    problems: list[str] = []
    section: str | None = None
    for number, line in enumerate(text.splitlines()[1:], 2):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(";"):
            problems.append(f"{what} line {number}: a ';' comment line")
        elif stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip().lower()
            if section == "comment":
                problems.append(f"{what} line {number}: a [Comment] section")
            elif section not in kept:
                problems.append(f"{what} line {number}: a section mne does not read")
        elif section is None:
            problems.append(f"{what} line {number}: text outside the sections mne reads")
        elif section not in kept:
            continue  # the section is reported once
        else:
            key, sep, value = stripped.partition("=")
            family = re.sub(r"\d+$", "", key.strip().lower())
            if not sep or (
                key.strip().lower() not in kept[section] and family not in kept[section]
            ):
                problems.append(f"{what} line {number}: a key mne does not read")
            elif family in ("ch", "mk"):
                problem = entry((key.strip(), value))
                if problem:
                    problems.append(f"{what} line {number}: {problem}")
    return problems


def _vhdr_entry(entry: tuple[str, str]) -> str | None:
    key, value = entry
    if len(value.split(",")) > 4:
        return f"{key} has fields beyond name, reference, resolution and unit"
    return None


def _vmrk_entry(entry: tuple[str, str], approved: Collection[str]) -> str | None:
    key, value = entry
    fields = value.split(",")
    if len(fields) < 5:
        return f"{key} is not a marker mne reads"
    if not is_vetted_marker(fields[0], fields[1], approved):
        return f"{key} description is neither a software code nor approved"
    if len(fields) > 6 or (len(fields) == 6 and not re.fullmatch(r"\d{20}", fields[5])):
        return f"{key} has fields beyond type, description, position, size, channel, date"
    return None


# --- FIF --------------------------------------------------------------------------------------


def _fif_problems(path: Path, policy: DeidPolicy, approved: Collection[str]) -> list[str]:
    import mne

    try:
        raw = mne.io.read_raw_fif(path, preload=False, verbose="error")
    except Exception:  # mne raises many types on bad files
        return ["unreadable with mne: cannot be checked"]
    info = raw.info
    problems = []
    allowed = _CHARACTERISTICS if policy.retain_patient_characteristics else ()
    for key, value in (info.get("subject_info") or {}).items():
        if key not in allowed and not _empty(value):
            problems.append(f"subject_info {key} is not empty")
    for key in FIF_EMPTY:
        if not _empty(info.get(key)):
            problems.append(f"{key} is not empty")
    device = info.get("device_info") or {}
    for key, retained in (
        ("serial", policy.retain_device_identity),
        ("site", policy.retain_institution_identity),
    ):
        if device.get(key) and not retained:
            problems.append(f"device_info {key} is not empty")
    if (info.get("helium_info") or {}).get("orig_file_guid"):
        problems.append("helium_info orig_file_guid is not empty")
    for i, record in enumerate(info.get("proc_history") or ()):
        for key in ("creator", "experimenter"):
            if record.get(key):
                problems.append(f"proc_history[{i}] {key} is not empty")
    for i, meas in enumerate(info.get("hpi_meas") or ()):
        if meas.get("creator"):
            problems.append(f"hpi_meas[{i}] creator is not empty")
    problems += _annotation_problems(raw.annotations.description, approved)
    return problems


def _empty(value: Any) -> bool:
    """None, blank text or zero (an array is empty only when it has no element)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, int | float):
        return value == 0
    try:
        return len(value) == 0
    except TypeError:
        return False


def _annotation_problems(descriptions: Any, approved: Collection[str]) -> list[str]:
    return [
        f"annotation {i} is neither a software code nor approved"
        for i, text in enumerate(descriptions)
        if vetted_annotation(str(text), approved) is None
    ]


# --- EDF / BDF --------------------------------------------------------------------------------


def _edf_problems(path: Path, policy: DeidPolicy, approved: Collection[str]) -> list[str]:
    import mne

    with path.open("rb") as fh:
        head = fh.read(256)
    problems = []
    patient = head[8:88].decode("latin-1").split()
    if patient[:1] != ["X"] or patient[2:4] != ["X", "X"]:
        problems.append("header patient field: code, birth date or name is not X")
    if len(patient) > 1 and patient[1] != "X" and not policy.retain_patient_characteristics:
        problems.append("header patient field: sex is not X")
    extra = [p for p in patient[4:] if p.split("=", 1)[0] not in _CHARACTERISTICS[1:]]
    if extra or (patient[4:] and not policy.retain_patient_characteristics):
        problems.append("header patient field: subfields beyond the EDF+ four")
    recording = head[88:168].decode("latin-1").split()
    if recording[:1] != ["Startdate"] or recording[2:4] != ["X", "X"] or len(recording) > 5:
        problems.append("header recording field: admin code or technician is not X")
    elif len(recording) == 5 and recording[4] != "X" and not policy.retain_device_identity:
        problems.append("header recording field: equipment is not X")
    try:
        raw = mne.io.read_raw(path, preload=False, verbose="error")
    except Exception:  # mne raises many types on bad files
        return [*problems, "unreadable with mne: annotations cannot be checked"]
    return problems + _annotation_problems(raw.annotations.description, approved)


# --- NIfTI ------------------------------------------------------------------------------------


def _nifti_problems(path: Path) -> list[str]:
    import nibabel as nib

    try:
        header = nib.load(path).header
    except Exception:  # nibabel raises many types on bad files
        return ["unreadable with nibabel: header cannot be checked"]
    problems = [
        f"header {name} is not empty"
        for name in NIFTI_TEXT
        if name in header and header[name].item().strip(b"\0 ")
    ]
    if len(header.extensions):
        problems.append("header extension(s) present")
    return problems
