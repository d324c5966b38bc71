"""The original identifiers of a study, gathered from its raw data, and a matcher for them.

The release audit must show that no original participant ID, name, birth date, accession
number, scanner-side ID or acquisition date survives anywhere in a release. The list of
what to look for comes from the study itself, not from a fixed list of patterns:

- the study's participant ids (``sub-<label>``; the bare label too when it is long enough
  to be distinctive) and date-like session labels;
- from every DICOM file in ``sourcedata/``: PatientName (each name component),
  PatientID, OtherPatientIDs, IssuerOfPatientID, PatientBirthDate, AccessionNumber,
  StudyID, the acquisition dates, and DeviceSerialNumber / StationName unless the policy
  retains device identity;
- from every EEG/MEG recording in ``sourcedata/``: the subject's HIS id, names and birthday,
  the experimenter, and the measurement date.

Values shorter than :data:`MIN_LENGTH`, numbers shorter than :data:`MIN_DIGITS`, and
placeholders (``anonymous``, ``n/a``, ...) are not searched: they would match everywhere
and identify nobody. A match must stand on its own (no letter or digit right before or
after it) and ignores case. Dates are
searched in the usual spellings (``19700101``, ``1970-01-01``, ``01.01.1970``,
``01/01/1970``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from windl.deid.dicom import DeidPolicy
from windl.pseudonyms import is_date_like
from windl.study import Study

#: shortest value searched; shorter ones ("01", "M") identify nobody and match everywhere
MIN_LENGTH = 3
#: shortest value searched in the bulk (voxels, samples) of binary files, where a short
#: byte sequence turns up by chance
MIN_LENGTH_BINARY = 6
#: shortest all-digit value searched: shorter numbers (a 5-digit serial or study number)
#: turn up as sample counts and measurements in any table
MIN_DIGITS = 8
PLACEHOLDERS = frozenset(
    {
        "anon",
        "anonymous",
        "anonymized",
        "anonymised",
        "unknown",
        "none",
        "null",
        "n/a",
        "na",
        "xxx",
        "removed",
        "deidentified",
        "de-identified",
        "unspecified",  # Neuroscan's empty patient name
    }
)
_DICOM_TAGS = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "DeviceSerialNumber",
    "StationName",
)
_DEVICE_TAGS = frozenset({"DeviceSerialNumber", "StationName"})
_DATE_TAGS = frozenset(
    {"PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"}
)


@dataclass
class Identifiers:
    """Original identifiers of a study: value → kind (``PatientName``, ``participant id``, ...)."""

    kinds: dict[str, str] = field(default_factory=dict)

    def add(self, value: object, kind: str) -> None:
        """Add ``value`` (split into name components for names; dates in every spelling)."""
        text = str(value or "").strip().strip("\x00").strip()
        if not text:
            return
        if kind in _DATE_TAGS or kind.endswith("date"):
            for spelling in date_spellings(text):
                self._put(spelling, kind)
            return
        if kind.endswith("Name") or kind.endswith("name"):
            for part in re.split(r"[\^=\s,]+", text):
                self._put(part.strip(".-_"), kind)
            return
        self._put(text, kind)

    def _put(self, text: str, kind: str) -> None:
        if len(text) < MIN_LENGTH or text.casefold() in PLACEHOLDERS:
            return
        if text.isdigit() and len(text) < MIN_DIGITS:
            return
        self.kinds.setdefault(text.casefold(), kind)

    def matcher(self, min_length: int = MIN_LENGTH) -> IdentifierMatcher:
        """A matcher for the values of at least ``min_length`` characters."""
        return IdentifierMatcher(
            {value: kind for value, kind in self.kinds.items() if len(value) >= min_length}
        )


class IdentifierMatcher:
    """Finds identifiers in text or bytes, as whole tokens, ignoring case."""

    def __init__(self, kinds: dict[str, str]) -> None:
        self.kinds = kinds
        values = sorted(kinds, key=len, reverse=True)  # longest first: report the full value
        if values:
            body = "|".join(re.escape(v) for v in values)
            self._text: re.Pattern[str] | None = re.compile(
                rf"(?<![A-Za-z0-9])(?:{body})(?![A-Za-z0-9])", re.IGNORECASE
            )
            raw = "|".join(re.escape(v.encode("utf-8")).decode("latin-1") for v in values)
            self._bytes: re.Pattern[bytes] | None = re.compile(
                rf"(?<![A-Za-z0-9])(?:{raw})(?![A-Za-z0-9])".encode("latin-1"), re.IGNORECASE
            )
        else:
            self._text = self._bytes = None

    def kinds_in_text(self, text: str) -> set[str]:
        """Kinds of the identifiers that occur in ``text``."""
        if self._text is None:
            return set()
        return {self.kinds[m.group(0).casefold()] for m in self._text.finditer(text)}

    def kinds_in_bytes(self, data: bytes) -> set[str]:
        """Kinds of the identifiers that occur in ``data`` (UTF-8 or Latin-1 spelled)."""
        if self._bytes is None:
            return set()
        found = set()
        for match in self._bytes.finditer(data):
            value = match.group(0).decode("utf-8", "replace").casefold()
            found.add(self.kinds.get(value, "identifier"))
        return found


def date_spellings(value: str) -> list[str]:
    """The usual spellings of a DICOM (``YYYYMMDD``) or ISO date; ``[]`` if not a date."""
    digits = re.sub(r"[^0-9]", "", value)[:8]
    try:
        day = dt.datetime.strptime(digits, "%Y%m%d").date()
    except ValueError:
        return []
    return [
        day.strftime("%Y%m%d"),
        day.isoformat(),
        day.strftime("%d.%m.%Y"),
        day.strftime("%d/%m/%Y"),
        day.strftime("%m/%d/%Y"),
    ]


def study_identifiers(study: Study, policy: DeidPolicy) -> Identifiers:
    """Gather the original identifiers of ``study`` (see the module docstring)."""
    found = Identifiers()
    for pid in study_participant_ids(study):
        found.add(pid, "participant id")
        label = pid.removeprefix("sub-")
        if len(label) >= 4 and not label.isdigit():
            found.add(label, "participant label")
        for base in (study.root, study.sourcedata):
            for ses in (base / pid).glob("ses-*"):
                if is_date_like(ses.name):
                    found.add(ses.name, "session label")
                    found.add(ses.name.removeprefix("ses-"), "session date")
    tags = [t for t in _DICOM_TAGS if not policy.retain_device_identity or t not in _DEVICE_TAGS]
    for path in _sourcedata_files(study, "dicom"):
        _add_dicom(found, path, tags)
    for folder in _recording_folders(study):
        _add_recording(found, folder)
    return found


def study_participant_ids(study: Study) -> set[str]:
    """Every participant id the study and its raw data know (consented or not)."""
    from windl.consent import known_participants

    return known_participants(study)


def _sourcedata_files(study: Study, *kinds: str) -> Iterator[Path]:
    for pid_dir in sorted(study.sourcedata.glob("sub-*")):
        for kind_dir in [*pid_dir.glob("*"), *pid_dir.glob("ses-*/*")]:
            if kind_dir.name in kinds and kind_dir.is_dir():
                yield from (p for p in sorted(kind_dir.rglob("*")) if p.is_file())


def _add_dicom(found: Identifiers, path: Path, tags: Iterable[str]) -> None:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.multival import MultiValue

    tags = list(tags)
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=tags)
    except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError):
        return
    for tag in tags:
        value = ds.get(tag)
        if value is None:
            continue
        for item in value if isinstance(value, MultiValue) else [value]:
            found.add(str(item), tag)


def _recording_folders(study: Study) -> Iterator[Path]:
    """``sourcedata/sub-*/[ses-*/]{eeg,meg}/<recording>/``: one folder per recording."""
    for pid_dir in sorted(study.sourcedata.glob("sub-*")):
        for kind_dir in [*pid_dir.glob("*"), *pid_dir.glob("ses-*/*")]:
            if kind_dir.name in ("eeg", "meg") and kind_dir.is_dir():
                yield from (p for p in sorted(kind_dir.iterdir()) if p.is_dir())


def _add_recording(found: Identifiers, folder: Path) -> None:
    """The identity a raw recording's header holds, read as ingest recognised it (any
    format windl ingests: KIT, Nihon Kohden, Persyst ... carry names and birth dates)."""
    from windl.ingest.ephys import folder_recording, read_recording

    try:
        recording = folder_recording(folder)
        if recording is None:
            return
        raw = read_recording(recording)
    except Exception:  # a damaged file: ingest refused it, or its content is not here
        return
    info = raw.info
    subject = info.get("subject_info") or {}
    for key in ("his_id", "first_name", "middle_name", "last_name"):
        if subject.get(key):
            found.add(subject[key], "recording subject " + ("id" if key == "his_id" else "Name"))
    birthday = subject.get("birthday")
    if isinstance(birthday, dt.date):
        found.add(birthday.strftime("%Y%m%d"), "birth date")
    if info.get("experimenter"):
        found.add(info["experimenter"], "experimenter Name")
    if info.get("meas_date") is not None:
        found.add(info["meas_date"].strftime("%Y%m%d"), "recording date")
