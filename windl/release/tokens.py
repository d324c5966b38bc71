"""Every word of a release, and what explains it: the audit's second, independent line.

The identifier search (:mod:`windl.release.identifiers`) finds the values it already knows.
A name an operator typed into a description, a table cell, a marker or a file name is not
among them. This module therefore reads *every* name and text of a release -- file and
folder names, JSON keys and string values, TSV headers and cells, text files, NIfTI header
text, DICOM text elements (sequences too), EDF header text and annotations, FIF info
strings and annotations, BrainVision header and marker text -- splits it into tokens (runs
of letters and digits) and asks, for each token, which source explains it:

``short``
    Fewer than :data:`~windl.release.identifiers.MIN_LENGTH` characters: as for the
    identifier search, such tokens identify nobody and would match everywhere.
``number``
    Numbers, dates, times, UIDs (split at their dots), measurements with a unit
    (``10ms``), short codes (``T1w``, ``XA10``, ``v1``) and hexadecimal hashes.
``bids``
    The BIDS schema (``bidsschematools``): entities, suffixes, extensions, datatypes,
    modalities, metadata field names, column names, enum values, units and file names.
``windl``
    windl's own fixed text: the string literals of windl's code (docstrings aside) and
    its templates -- what its generators (README, methods.md, CHANGES, LICENSE,
    CITATION.cff, QC reports, deface records) can write. Built from windl itself,
    never from the release under audit.
``tools``
    The fixed text of the tools windl writes releases with: the string literals of
    mne-bids (sidecar descriptions, channel type names) and the BrainVision format's own
    header text (:data:`BRAINVISION_FORMAT`), the CTF head coil file's
    (:data:`CTF_FORMAT`), the URIs of the term registries BIDS points to
    (:data:`TERM_REGISTRIES`).
``vocabulary``
    The study's approved vocabulary (:mod:`windl.vocabulary`).
``levels``
    The ``Levels`` declared in the release's JSON data dictionaries, and the column
    declarations the study lead reviewed in the study's own data dictionaries (entries
    with a ``WindlRelease`` class: their Description, LongName, Units and Levels).
``labels``
    The release's own participant and session labels (from the study's pseudonym key).
    A word followed by an index is explained as the word is, so neutral re-key labels
    ``<entity><n>`` (``task1``, ``acq2``) are explained by BIDS.
``reviewed``
    The study's name, the fields of its ``dataset_description.json`` a release carries as
    they are (Name, Authors, License: :data:`windl.release.review.PLAIN_FIELDS`), and the
    texts its study lead approved with ``windl release review`` (README, acknowledgements,
    ...), as they stand at the study's HEAD.
``channels``
    The channel names of the release's ``*_channels.tsv`` and ``*_electrodes.tsv``
    (the recording set-up names them), wherever they are repeated (QC tables).
``scanner``
    Values of keys that the scanner or the recording software writes, not a person
    (:data:`MACHINE_KEYS`, :data:`windl.deid.dicom.KEPT_TEXT`; DICOM code strings are not
    read at all); marker texts the recording software wrote; channel names. Descriptor
    and free-text keys (SeriesDescription, ProtocolName, TaskName, ImageComments) are
    *not* explained by their key.
``policy``
    Values of keys the study's declared de-identification options keep on purpose
    (device, institution, patient characteristics: :mod:`windl.deid.sidecars`).

Anything else is *unexplained*. Findings name the file and the field (JSON key path, TSV
column, line, header field) and count tokens; they never quote a token.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from windl.deid.annotations import is_machine_marker
from windl.deid.dicom import KEPT_TEXT, DeidPolicy
from windl.deid.sidecars import DICOM_KEYWORD_OF, classify_key, forbidden_keys
from windl.files import looks_like_text
from windl.release.identifiers import MIN_LENGTH
from windl.study import Study

#: a token: a run of letters and digits (any script); ``_`` and punctuation separate
TOKEN: Final = re.compile(r"[^\W_]+")
#: the explanation sources, in the order they are asked
SOURCES: Final = (
    "short",
    "number",
    "bids",
    "windl",
    "tools",
    "vocabulary",
    "levels",
    "labels",
    "reviewed",
    "channels",
    "scanner",
    "policy",
)
#: keys (sidecar keys and DICOM keywords) whose values the scanner or software writes;
#: not dcm2niix's ``BidsGuess``: its task and run guesses come from ProtocolName
_MACHINE_KEYS = """
    Manufacturer ManufacturersModelName ManufacturerModelName SoftwareVersions SequenceName
    ImageType ImageTypeText ScanningSequence SequenceVariant ScanOptions ReceiveCoilName
    ReceiveCoilActiveElements TransmitCoilName CoilString PulseSequenceDetails
    PulseSequenceName InternalPulseSequenceName ConversionSoftware ConversionSoftwareVersion
    MRAcquisitionType Modality BodyPart BodyPartExamined PatientPosition
    ImageOrientationText CapManufacturer CapManufacturersModelName HardwareFilters
    SoftwareFilters RecordingType PowerLineFrequency DewarPosition
    ImplementationVersionName PrivateCreator ConsistencyInfo WipMemBlock PrescanReuseString
    PhaseEncodingDirectionDisplayed ParallelAcquisitionTechnique PulseSequenceType
    ReconMethodName InPlanePhaseEncodingDirectionDICOM PartialFourierDirection
    CodingSchemeDesignator CodingSchemeVersion CodeValue stop_condition
    WindowCenterWidthExplanation DimensionDescriptionLabel PhaseEncodingPolarityGE
    CoilCombinationMethod MatrixCoilMode
    ReconFilterType ReconMethodParameterLabels ReconMethodParameterUnits
    InjectedRadioactivityUnits InjectedMassUnits SpecificRadioactivityUnits InfusionSpeedUnits
    DiffusionScheme
"""
MACHINE_KEYS: Final = frozenset(_MACHINE_KEYS.split())
#: every key whose value explains itself: ours, and the DICOM text attributes the
#: de-identification keeps because the equipment writes them from its own dictionaries
_SCANNER_KEYS: Final = MACHINE_KEYS | KEPT_TEXT
#: the key of marker and annotation texts: explained only if the software wrote them
MARKER: Final = "marker"
#: the key of a file or header that could not be read: it counts as one unexplained word
UNREADABLE: Final = "unreadable"
#: the key of channel names: the recording set-up (amplifier, cap, MEG system) names them
CHANNEL: Final = "channel"
#: TSV columns whose cells are markers or channel names (BIDS events, channels, electrodes)
TSV_KEYS: Final[Mapping[tuple[str, str], str]] = {
    ("_events.tsv", "trial_type"): MARKER,
    ("_events.tsv", "value"): MARKER,
    ("_channels.tsv", "name"): CHANNEL,
    ("_electrodes.tsv", "name"): CHANNEL,
}
#: DICOM value representations that hold text a person can type
DICOM_TEXT_VRS: Final = frozenset({"AE", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
#: units spelled out in headers and sidecars (besides the BIDS schema's own)
UNITS: Final = frozenset(
    "mm cm ms sec msec usec Hz kHz MHz uV µV mV nV fT degrees rad ppm bpm meter".casefold().split()
)
_NUMBER: Final = (
    re.compile(r"\d+"),  # numbers; dates, times and UIDs are split into them
    re.compile(r"\d+(?:[a-z]\d+)*[a-zµ]{0,3}", re.IGNORECASE),  # 10ms, 1e5, 20180918T1200
    re.compile(r"[a-z]{1,3}\d+[a-z]{0,2}\d*", re.IGNORECASE),  # codes: T1w, XA10, VE11C, v1
    re.compile(r"(?=[a-z]*\d)[0-9a-f]{8,}", re.IGNORECASE),  # hashes, annex keys
    re.compile(r"(?:sha|md)\d+e?", re.IGNORECASE),  # annex backends: SHA256E, MD5E
)
#: Python packages whose string literals are text they write into releases
TOOL_PACKAGES: Final = ("mne_bids",)
#: the fixed text of a BrainVision header and marker file (BrainVision Core Data Format 1.0,
#: as the Vision Recorder and mne-bids write it); comments a person adds are not in it
#: the fixed text CTF's acquisition software writes into a ``.hc`` head coil file
CTF_FORMAT: Final = """
standard measured nasion left right ear coil position relative to dewar head (cm)
"""
#: the public term registries BIDS points to (``CogAtlasID``, ``CogPOID``): their URIs
TERM_REGISTRIES: Final = """
https://www.cognitiveatlas.org/id/trm_ https://www.cognitiveatlas.org/task/id/tsk_
http://www.wiki.cogpo.org/index.php?title=
"""
BRAINVISION_FORMAT: Final = """
Brain Vision Data Exchange Header File Version 1.0
Brain Vision Data Exchange Marker File, Version 1.0
; Data created by the Vision Recorder
[Common Infos] Codepage=UTF-8 DataFile= MarkerFile= DataFormat=BINARY ASCII
; Data orientation: MULTIPLEXED=ch1,pt1, ch2,pt1 ...
DataOrientation=MULTIPLEXED VECTORIZED DataType=TIMEDOMAIN NumberOfChannels=
; Sampling interval in microseconds
SamplingInterval= Averaged= AveragedSegments= SegmentDataPoints= SegmentationType=
[Binary Infos] BinaryFormat=INT_16 INT_32 IEEE_FLOAT_32 UINT_16
[ASCII Infos] DecimalSymbol= SkipLines= SkipColumns=
[Channel Infos]
; Each entry: Ch<Channel number>=<Name>,<Reference channel name>,
; <Resolution in "Unit">,<Unit>, Future extensions..
; Fields are delimited by commas, some fields might be omitted (empty).
; Commas in channel names are coded as "\1".
[Coordinates] [Marker Infos]
; Each entry: Mk<Marker number>=<Type>,<Description>,<Position in data points>,
; <Size in data points>, <Channel number (0 = marker is related to all channels)>
; Commas in type or description text are coded as "\1".
"""
#: windl modules that hold a study's content, not windl's own text (the demo study's
#: settings, README and description): their literals explain nothing
NOT_WINDL_TEXT: Final = ("demo.py",)
#: windl modules whose docstring windl writes into releases (methods.md quotes the default
#: heuristic's rules)
EMITTED_DOCSTRINGS: Final = ("convert/heuristic.py",)
_DATA_URI: Final = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")
_UUID: Final = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)
#: DICOM keyword -> the sidecar key dcm2niix writes it as, where the names differ
_SIDECAR_KEY_OF: Final = {dicom: sidecar for sidecar, dicom in DICOM_KEYWORD_OF.items()}
_STEM_INDEX: Final = re.compile(r"(\D+?)(\d+)")
_EPHYS_TEXT: Final = (".vhdr", ".vmrk")
#: ``Mk<n>=<type>,...`` and ``Ch<n>=<name>,...`` lines of BrainVision files
_BV_LINE: Final = re.compile(r"^((?:Mk|Ch)\d+)=([^,]*),?(.*)$")


@dataclass(frozen=True)
class Text:
    """One piece of text of a release: where it is, what it says, the key it is under."""

    path: str
    where: str
    text: str
    key: str | None = None


def tokens(text: str) -> list[str]:
    """The tokens of ``text``, case-folded."""
    return [t.casefold() for t in TOKEN.findall(text)]


def _vocabulary_of(texts: Iterable[str]) -> frozenset[str]:
    return frozenset(t for text in texts for t in tokens(text))


def is_number_like(token: str) -> bool:
    """Numbers, dates, times, measurements, short codes and hashes (source ``number``)."""
    return any(p.fullmatch(token) for p in _NUMBER)


# --------------------------------------------------------------------------- vocabularies
@lru_cache(maxsize=1)
def bids_vocabulary() -> frozenset[str]:
    """Tokens of the names, values, enums and units of the BIDS schema (no descriptions)."""
    from bidsschematools import schema

    objects = schema.load_schema().objects.to_dict()
    words: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                words.append(str(key))
                if key in ("name", "value", "unit", "display_name") and isinstance(value, str):
                    words.append(value)
                elif key == "enum" and isinstance(value, list):
                    words.extend(str(v) for v in value if not isinstance(v, dict))
                if key != "description":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(objects)
    return _vocabulary_of(words) | UNITS


@lru_cache(maxsize=1)
def windl_vocabulary() -> frozenset[str]:
    """Tokens of windl's own fixed text: its code's string literals and its templates."""
    package = Path(__file__).resolve().parents[1]
    texts: list[str] = []
    for source in sorted(package.rglob("*.py")):
        if source.relative_to(package).as_posix() in NOT_WINDL_TEXT:
            continue
        code = source.read_text(encoding="utf-8")
        texts.extend(_literals(code))
        if source.relative_to(package).as_posix() in EMITTED_DOCSTRINGS:
            texts.append(ast.get_docstring(ast.parse(code)) or "")
    templates = package.parent / "templates"
    for path in sorted(templates.rglob("*")) if templates.is_dir() else []:
        if path.is_file():
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return _vocabulary_of(texts)


@lru_cache(maxsize=1)
def tool_vocabulary() -> frozenset[str]:
    """Tokens of the fixed text of the tools and formats a release is written with."""
    import importlib.util

    texts = [BRAINVISION_FORMAT, CTF_FORMAT, TERM_REGISTRIES]
    for name in TOOL_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            for source in sorted(Path(folder).rglob("*.py")):
                if "tests" not in source.relative_to(folder).parts:
                    texts.extend(_literals(source.read_text(encoding="utf-8")))
    return _vocabulary_of(texts)


def _literals(source: str) -> Iterator[str]:
    """Text a module can write: its string literals (docstrings aside, they are prose), and
    the names of keyword arguments and dataclass fields (they become JSON keys)."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                yield node.value
        elif isinstance(node, ast.keyword) and node.arg:
            yield node.arg
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    yield item.target.id


# --------------------------------------------------------------------------- explaining
@dataclass
class Explainer:
    """Which source explains a token; counts per source and unexplained per place."""

    vocabulary: frozenset[str] = frozenset()
    levels: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()
    reviewed: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    policy: DeidPolicy | None = None
    checked: int = 0
    explained: Counter[str] = field(default_factory=Counter)
    unexplained: Counter[tuple[str, str]] = field(default_factory=Counter)
    _known: dict[str, str | None] = field(default_factory=dict)

    def key_source(self, text: Text) -> str | None:
        """``scanner`` or ``policy`` when the text is explained by the key it is under."""
        key = text.key
        if key is None:
            return None
        if key in _SCANNER_KEYS:
            return "scanner"
        if key == MARKER:
            return "scanner" if is_machine_marker(text.text) else None
        if key == CHANNEL:
            return "scanner"
        if self.policy is not None:
            sidecar = _SIDECAR_KEY_OF.get(key, key)
            category = classify_key(sidecar)
            kept = sidecar not in forbidden_keys(self.policy)
            if category in ("device", "institution", "patient") and kept:
                return "policy"
        return None

    def source(self, token: str) -> str | None:
        """The first source that explains ``token`` (case-folded), or ``None``.

        A word followed by an index (``coil1``, ``task2``) is explained as its word is.
        """
        checks: tuple[tuple[str, Callable[[str], bool]], ...] = (
            ("short", lambda t: len(t) < MIN_LENGTH),
            ("number", is_number_like),
            ("bids", bids_vocabulary().__contains__),
            ("windl", windl_vocabulary().__contains__),
            ("tools", tool_vocabulary().__contains__),
            ("vocabulary", self.vocabulary.__contains__),
            ("levels", self.levels.__contains__),
            ("labels", self.labels.__contains__),
            ("reviewed", self.reviewed.__contains__),
            ("channels", self.channels.__contains__),
        )
        for name, check in checks:
            if check(token):
                return name
        indexed = _STEM_INDEX.fullmatch(token)
        if indexed is not None and len(indexed.group(1)) >= MIN_LENGTH:
            return self.source(indexed.group(1))
        return None

    def check(self, text: Text) -> list[str]:
        """Count the tokens of ``text``; return the unexplained ones (never reported)."""
        body, uuids = _UUID.subn(" ", _DATA_URI.sub(" ", text.text))
        words = tokens(body)
        self.checked += len(words) + uuids
        self.explained["number"] += uuids
        if text.key == UNREADABLE:
            self.checked += 1
            self.unexplained[(text.path, text.where)] += 1
            return [UNREADABLE]
        by_key = self.key_source(text)
        if by_key is not None:
            self.explained[by_key] += len(words)
            return []
        missing = []
        for word in words:
            if word not in self._known:
                self._known[word] = self.source(word)
            name = self._known[word]
            if name is None:
                missing.append(word)
            else:
                self.explained[name] += 1
        if missing:
            self.unexplained[(text.path, text.where)] += len(missing)
        return missing

    def summary(self) -> dict[str, Any]:
        """Counts for the report: checked, explained per source, unexplained, places."""
        return {
            "checked": self.checked,
            "explained": {name: self.explained.get(name, 0) for name in SOURCES},
            "unexplained": sum(self.unexplained.values()),
            "places": len(self.unexplained),
        }


# --------------------------------------------------------------------------- reading
def texts_of(release: Path, rel: str) -> Iterator[Text]:
    """Every piece of text of one release file (its name aside: see :func:`name_texts`)."""
    path = release / rel
    lower = rel.lower()
    if not path.is_file():
        return
    if lower.endswith((".nii", ".nii.gz")):
        yield from _nifti_texts(rel, path)
        return
    if lower.endswith((".edf", ".bdf")):
        yield from _edf_texts(rel, path)
        return
    if lower.endswith(".fif"):
        yield from _fif_texts(rel, path)
        return
    with path.open("rb") as fh:
        head = fh.read(132)
    if head[128:132] == b"DICM" or lower.endswith(".dcm"):
        yield from _dicom_texts(rel, path)
        return
    raw = path.read_bytes()
    if lower.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            yield Text(rel, "gzip (unreadable: cannot be checked)", "", UNREADABLE)
            return
    if not looks_like_text(raw):
        return  # voxels, samples, pictures: no text a person typed
    text = raw.decode("utf-8", errors="replace")
    if lower.endswith(".json"):
        yield from _json_texts(rel, text)
    elif lower.endswith((".tsv", ".tsv.gz")):
        yield from _tsv_texts(rel, text)
    elif lower.endswith(_EPHYS_TEXT):
        yield from _brainvision_texts(rel, text)
    else:
        yield from _line_texts(rel, text)


def name_texts(files: Iterable[str]) -> Iterator[Text]:
    """File and folder names (each folder once), placed in their parent folder.

    A finding about a name must not quote the name, so it names the folder that holds it.
    """
    folders: set[str] = set()
    for rel in files:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder not in folders:
                folders.add(folder)
                yield Text("/".join(parts[: i - 1]) or ".", "a folder name", parts[i - 1])
        yield Text("/".join(parts[:-1]) or ".", "a file name", parts[-1])


def _line_texts(rel: str, text: str) -> Iterator[Text]:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield Text(rel, f"line {number}", line)


def _brainvision_texts(rel: str, text: str) -> Iterator[Text]:
    """BrainVision header/marker lines; marker texts and channel names keyed as such."""
    for number, line in enumerate(text.splitlines(), 1):
        found = _BV_LINE.match(line)
        if found is None:
            if line.strip():
                yield Text(rel, f"line {number}", line)
            continue
        kind, name, rest = found.groups()
        yield Text(rel, f"line {number}", kind)
        if kind.startswith("Mk"):  # Mk<n>=<type>,<description>,<position>,<size>,<channel>
            marker, _, rest = rest.partition(",")
            description, _, rest = rest.partition(",")
            yield Text(rel, f"line {number} marker", f"{name}/{marker}".strip("/"), MARKER)
            yield Text(rel, f"line {number} marker", description, MARKER)
            yield Text(rel, f"line {number}", rest)
        else:  # Ch<n>=<name>,<reference>,<resolution>,<unit>: the recording set-up
            yield Text(rel, f"line {number} channel", f"{name},{rest}", CHANNEL)


def _json_texts(rel: str, text: str) -> Iterator[Text]:
    try:
        data = json.loads(text)
    except ValueError:
        yield from _line_texts(rel, text)
        return
    yield from _walk_json(rel, data, "", None)


def _walk_json(rel: str, node: Any, where: str, key: str | None) -> Iterator[Text]:
    if isinstance(node, dict):
        for name, value in node.items():
            inner = f"{where}.{name}" if where else str(name)
            yield Text(rel, f"{inner} (key)", str(name))
            # a value nested in a machine-written key stays machine-written
            yield from _walk_json(rel, value, inner, key if key in MACHINE_KEYS else str(name))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk_json(rel, item, f"{where}[{i}]", key)
    elif isinstance(node, str):
        yield Text(rel, where or "value", node, key)


def _tsv_texts(rel: str, text: str) -> Iterator[Text]:
    lines = text.splitlines()
    if not lines:
        return
    header = lines[0].split("\t")
    for column in header:
        yield Text(rel, "header", column)
    suffix = "_" + rel.rsplit("_", 1)[-1] if "_" in rel else ""
    keys = [TSV_KEYS.get((suffix, column)) for column in header]
    for line in lines[1:]:
        for i, cell in enumerate(line.split("\t")):
            column = header[i] if i < len(header) else f"#{i + 1}"
            yield Text(rel, f"column {column}", cell, keys[i] if i < len(keys) else None)


def _nifti_texts(rel: str, path: Path) -> Iterator[Text]:
    import nibabel as nib

    try:
        header = nib.load(path).header
    except Exception:  # nibabel raises many kinds on a damaged file
        yield Text(rel, "NIfTI header (unreadable: cannot be checked)", "", UNREADABLE)
        return
    for name in ("descrip", "aux_file", "intent_name", "db_name", "data_type"):
        if name in header:
            value = header[name]
            raw = value.item() if hasattr(value, "item") else value
            text = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
            yield Text(rel, f"NIfTI header {name}", text.strip("\x00"))
    for i, extension in enumerate(getattr(header, "extensions", []) or []):
        content = extension.get_content()
        raw = content if isinstance(content, bytes) else str(content).encode()
        yield Text(rel, f"NIfTI extension {i + 1}", raw.decode("utf-8", errors="replace"))


def _dicom_texts(rel: str, path: Path) -> Iterator[Text]:
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found = [*_dicom_elements(rel, ds.file_meta, ""), *_dicom_elements(rel, ds, "")]
    except Exception:  # pydicom raises many kinds on damaged data, some only while walking
        yield Text(rel, "DICOM (unreadable: cannot be checked)", "", UNREADABLE)
        return
    yield from found


def _dicom_elements(rel: str, ds: Any, prefix: str) -> Iterator[Text]:
    for element in ds:
        name = element.keyword or ("PrivateCreator" if _private_creator(element) else "")
        where = f"{prefix}({element.tag.group:04X},{element.tag.element:04X}) {name}".rstrip()
        if element.VR == "SQ":
            for i, item in enumerate(element.value or []):
                yield from _dicom_elements(rel, item, f"{where}[{i}] ")
        elif element.VR in DICOM_TEXT_VRS and element.value not in (None, ""):
            values = element.value if element.VM > 1 else [element.value]
            text = " ".join(str(v) for v in values)
            yield Text(rel, f"DICOM {where}", text, name or None)


def _private_creator(element: Any) -> bool:
    return bool(element.tag.is_private and 0x0010 <= element.tag.element <= 0x00FF)


def _edf_texts(rel: str, path: Path) -> Iterator[Text]:
    with path.open("rb") as fh:
        head = fh.read(256)
        try:
            signals = max(0, int(head[252:256].decode("ascii").strip()))
        except (UnicodeDecodeError, ValueError):
            signals = 0
        per_signal = fh.read(256 * signals)
    yield Text(rel, "EDF header patient", head[8:88].decode("latin-1"))
    yield Text(rel, "EDF header recording", head[88:168].decode("latin-1"))
    yield Text(rel, "EDF header reserved", head[192:236].decode("latin-1"))
    offset = 0
    for name, width in (
        ("label", 16),
        ("transducer", 80),
        ("physical dimension", 8),
        ("physical minimum", 8),
        ("physical maximum", 8),
        ("digital minimum", 8),
        ("digital maximum", 8),
        ("prefiltering", 80),
        ("samples", 8),
        ("reserved", 32),
    ):
        for i in range(signals):
            start = offset + i * width
            text = per_signal[start : start + width].decode("latin-1")
            key = CHANNEL if name == "label" else None
            yield Text(rel, f"EDF signal {i + 1} {name}", text, key)
        offset += width * signals
    yield from _annotation_texts(rel, path)


def _annotation_texts(rel: str, path: Path) -> Iterator[Text]:
    import mne

    try:
        annotations = mne.read_annotations(path)
    except Exception:  # no annotations channel, or a format mne does not read them from
        return
    for i, description in enumerate(annotations.description, 1):
        yield Text(rel, f"annotation {i}", str(description), MARKER)


def _fif_texts(rel: str, path: Path) -> Iterator[Text]:
    import mne

    if re.search(r"_split-0*[2-9]", rel):
        return  # later split parts repeat the first part's info
    try:
        info = mne.io.read_info(path, verbose="error")
    except Exception:  # mne raises many kinds on a damaged file
        yield Text(rel, "FIF info (unreadable: cannot be checked)", "", UNREADABLE)
        return
    for key in ("experimenter", "description", "proj_name"):
        if info.get(key):
            yield Text(rel, f"FIF info {key}", str(info[key]))
    for group in ("subject_info", "device_info", "helium_info"):
        for key, value in (info.get(group) or {}).items():
            if isinstance(value, str):
                yield Text(rel, f"FIF info {group}.{key}", value)
    for ch in info["chs"]:
        yield Text(rel, "FIF channel name", str(ch["ch_name"]), CHANNEL)
    yield from _annotation_texts(rel, path)


# --------------------------------------------------------------------------- release
def declared_levels(release: Path, files: Iterable[str]) -> frozenset[str]:
    """Tokens of the ``Levels`` keys in the release's JSON data dictionaries."""
    words: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Levels" and isinstance(value, dict):
                    words.extend(str(k) for k in value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for rel in files:
        if rel.endswith(".json") and (release / rel).is_file():
            try:
                walk(json.loads((release / rel).read_text(encoding="utf-8")))
            except (ValueError, UnicodeDecodeError):
                continue
    return _vocabulary_of(words)


#: data dictionaries of a study (BIDS tabular-file sidecars) that declare columns
_DICTIONARIES: Final = (
    "participants.json",
    "samples.json",
    "_sessions.json",
    "_scans.json",
    "_events.json",
    "_beh.json",
)
#: the text fields of a column declaration
_DECLARATION_FIELDS: Final = ("Description", "LongName", "Units", "Levels")


def reviewed_declarations(study: Study) -> frozenset[str]:
    """Tokens of the column declarations the study lead classified for release.

    An entry of a data dictionary in the study (``participants.json``, ``phenotype/*.json``,
    ``*_events.json``, ...) with a ``WindlRelease`` class was reviewed by the study lead;
    its text fields explain the same words in the release's copy.
    """
    from windl import datasets
    from windl.release.columns import KEY

    names = datasets.git(study.root, "ls-files", "-z", "--", "*.json").split("\0")
    words: list[str] = []
    for rel in names:
        if not (rel.endswith(_DICTIONARIES) or rel.startswith("phenotype/")):
            continue
        try:
            data = json.loads((study.root / rel).read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        for entry in data.values() if isinstance(data, dict) else ():
            if isinstance(entry, dict) and KEY in entry:
                words += [
                    json.dumps(entry.get(f, ""), ensure_ascii=False) for f in _DECLARATION_FIELDS
                ]
    return _vocabulary_of(words)


def channel_names(release: Path, files: Iterable[str]) -> frozenset[str]:
    """Tokens of the ``name`` column of the release's channel and electrode tables."""
    words: list[str] = []
    for rel in files:
        if rel.endswith(("_channels.tsv", "_electrodes.tsv")) and (release / rel).is_file():
            lines = (release / rel).read_text(encoding="utf-8", errors="replace").splitlines()
            header = lines[0].split("\t") if lines else []
            if "name" in header:
                column = header.index("name")
                words += [r.split("\t")[column] for r in lines[1:] if r.count("\t") >= column]
    return _vocabulary_of(words)


def reviewed_vocabulary(study: Study) -> frozenset[str]:
    """Tokens of the study's name, plain description fields and approved texts."""
    from windl import datasets
    from windl.release.review import PLAIN_FIELDS, review

    text = datasets.git(
        study.root, "cat-file", "blob", "HEAD:dataset_description.json", check=False
    )
    try:
        description = json.loads(text) if text.strip() else {}
    except ValueError:
        description = {}
    texts = [study.name]
    if isinstance(description, dict):
        texts += [
            json.dumps(description.get(name, ""), ensure_ascii=False) for name in PLAIN_FIELDS
        ]
    texts += [item.text for item in review(study) if item.approved]
    return _vocabulary_of(texts)


def check_release(release: Path, files: list[str], explainer: Explainer) -> Explainer:
    """Run ``explainer`` over every name and text of the release files ``files``."""
    for text in name_texts(files):
        explainer.check(text)
    for rel in files:
        for text in texts_of(release, rel):
            explainer.check(text)
    return explainer


def approved_vocabulary(terms: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """Tokens of a study's approved terms (:attr:`windl.vocabulary.Vocabulary.terms`)."""
    return _vocabulary_of(v for values in terms.values() for v in values)


#: release files whose text is git-annex's or DataLad's own bookkeeping, not the release's
_BOOKKEEPING: Final = (".gitattributes", ".datalad/.gitattributes")


def text_files(release: Path) -> list[str]:
    """The release's tracked files, dotfiles (``.bidsignore``, ``.datalad/config``) too."""
    from windl import datasets

    names = datasets.git(release, "ls-files", "-z").split("\0")
    return sorted(n for n in names if n and n not in _BOOKKEEPING)


def audit_text(study: Study, release: Path, policy: DeidPolicy, labels: Iterable[str]) -> Explainer:
    """Check every name and text of a release; the explainer holds the counts.

    Parameters
    ----------
    study : Study
        The study the release was built from: its approved vocabulary and reviewed texts
        (at its HEAD, never the release's copies).
    release : Path
        The release dataset.
    policy : DeidPolicy
        The study's de-identification options (which kept keys explain their values).
    labels : iterable of str
        The release's participant and session labels (from the pseudonym key).

    Returns
    -------
    Explainer
        ``checked``, ``explained`` per source and ``unexplained`` per (file, field).
    """
    from windl.vocabulary import vocabulary_of

    files = text_files(release)
    explainer = Explainer(
        vocabulary=approved_vocabulary(vocabulary_of(study.settings()).terms),
        levels=declared_levels(release, files) | reviewed_declarations(study),
        labels=_vocabulary_of(labels),
        reviewed=reviewed_vocabulary(study),
        channels=channel_names(release, files),
        policy=policy,
    )
    return check_release(release, files, explainer)
