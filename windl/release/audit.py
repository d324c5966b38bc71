"""``windl audit RELEASE``: the criteria gate every release must pass before it is shared.

Every file of the release is checked at its current commit; each check lists findings as
(file, what is wrong). Findings never quote an identifier: they say which kind of
identifier a file holds, so the report itself can be read by anyone at the site.

Checks (names as in the report):

``clean-worktree``
    The release has no uncommitted changes and all annexed content is present.
``layout``
    Nothing from ``restricted/``, heudiconv's ``.heudiconv/`` or ``code/conversion/``; raw
    DICOM (``sourcedata/``) only when the study opts in for the scope; of ``derivatives/``
    only QC (``derivatives/qc/``), of listed participants, without per-file reports of
    face-showing images; the ``sub-*`` folders
    and ``participants.tsv`` list the same participants; the release was built with the
    study's current de-identification settings.
``consent``
    Every participant is a release label of this scope and the participant behind it has
    standing consent for the scope.
``dicom-profile``
    Every DICOM file passes :func:`windl.deid.dicom.check_dataset` (no attribute of the
    profile's remove/empty/replace lists still holding a value, no unsafe private tags,
    remapped UIDs, PatientID = release label, no burned-in annotation).
``sidecar-keys``
    No JSON file has a key on the forbidden list of the study's policy.
``labels``
    Every entity label of every release path (folders, file names, and the paths in
    ``IntendedFor``/``AssociatedEmptyRoom``/``Sources`` and the ``filename`` column of
    ``scans.tsv``) and every ``TaskName``, ``SeriesDescription``, ``ProtocolName`` and
    ``B0FieldIdentifier``/``B0FieldSource`` value is approved by the study
    (:mod:`windl.vocabulary`), a value BIDS defines, a neutral re-key label (``task1``,
    :mod:`windl.release.relabel`) or the release's own participant or session label. A
    finding names the file and field, never the label.
``identifiers``
    No original participant ID, name, birth date, accession number, scanner-side ID or
    acquisition date (:mod:`windl.release.identifiers`) in any file name, text file (the
    QC tables and reports too) or header (NIfTI header and extensions, DICOM elements, EDF
    header, FIF measurement info), nor, for the longer ones, anywhere in the bytes of any
    file.
``recording-text``
    The fields of recordings and images where people type hold nothing unvetted
    (:mod:`windl.release.recording_text`): no ``;`` comment or ``[Comment]`` in a
    BrainVision header, every marker, FIF and EDF+ annotation text a software code or
    approved in ``[vocabulary] trial_type``, FIF ``subject_info``/``experimenter``/
    ``description`` empty, EDF patient/recording subfields ``X``, NIfTI header text empty.
``deface``
    Every image that shows a face (:func:`windl.deid.deface.needs_defacing`) has a deface
    record whose output hash is the file's, and at least :data:`FACE_ZERO_FRACTION` of the
    face mask mapped with the recorded transform is zero (:func:`face_check`). Independently
    of that registration, a face detector (:mod:`windl.deid.facedetect`) looks at a rendered
    surface of the head: a face found on the released image fails the check; no face found on
    the study image it was made from means the detector cannot vouch for it ("not judged"),
    which also fails unless the study accepts it with ``[audit] accept_unjudged_faces = true``
    in ``code/study.toml`` (the image is then still shown as "not judged" in the report).
``pixels``
    No released image that may carry burned-in text (a NIfTI whose sidecar says it is not
    an acquisition, a pixel-suspect DICOM series) shows text to OCR
    (:func:`windl.release.pixel_gate.released_pixel_findings`), whatever the build decided.
``unexplained-text``
    Every token of every name and text of the release -- file and folder names, JSON
    keys and values, TSV headers and cells, text files, NIfTI, DICOM, EDF, FIF and
    BrainVision header text and annotations -- is explained by a source that does not come
    from the release's free text (:mod:`windl.release.tokens`): the BIDS schema, windl's
    own text, the study's approved vocabulary, declared ``Levels``, numbers, the release's
    own labels, or a key whose value the scanner writes. Findings count tokens per file
    and field; they never quote them.
``bids-validation``
    The official BIDS validator reports no error.
``git-metadata``
    Every commit, tag and note of the release's history is authored and committed by
    windl's neutral identity, with messages windl wrote, and ``.datalad/config`` holds only
    the dataset id (:mod:`windl.release.history`).

The result is stored as a git note (``refs/notes/windl/audit``) on the audited commit --
publishing looks it up there, so an audit can never vouch for a later commit -- and written
as JSON and HTML under ``<site>/reports/audit/<study>/<scope>/``. The HTML shows each
defaced image before and after, so it holds faces: the reports folder stays at the site.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from windl import datasets
from windl.clock import utc_stamp
from windl.config import Site, find_site
from windl.consent import consented_participants
from windl.deid.ctf import ctf_problems, ds_folder
from windl.deid.deface import face_check, needs_defacing
from windl.deid.facedetect import Detection, DetectSettings, detect_face, face_picture
from windl.deid.sidecars import key_problems
from windl.errors import BadInput, ConfigError
from windl.files import atomic_write_text, looks_like_text
from windl.locks import study_lock
from windl.pseudonyms import (
    entity_mapping,
    is_neutral,
    mapping,
    session_kept,
    session_mapping,
)
from windl.qc import QC_DIR
from windl.release import recording_text
from windl.release.build import (
    DEFACE_RECORDS,
    RELEASE_RECORD,
    ReleaseSettings,
    built_record,
    deface_record_path,
    windl_version,
)
from windl.release.identifiers import MIN_LENGTH_BINARY, IdentifierMatcher, study_identifiers
from windl.release.pixel_gate import pixel_policy, released_pixel_findings
from windl.release.plan import participant_sessions, rename, study_tree
from windl.release.relabel import (
    B0_ENTITY,
    B0_FIELDS,
    BIDS_ENTITIES,
    DESCRIPTION_FIELDS,
    PATH_FIELDS,
    PSEUDONYMISED,
    VETTED,
    pieces,
)
from windl.release.report import write_audit_report
from windl.study import Study, get_study
from windl.vocabulary import vocabulary_of

NOTES_REF = "windl/audit"
FACE_ZERO_FRACTION = 0.95
CHECKS = {
    "clean-worktree": "The release is committed and its content is present",
    "layout": "Only releasable parts, one participant list, current settings",
    "consent": "Every participant consented to this scope",
    "dicom-profile": "DICOM headers pass the PS3.15 Annex E profile check",
    "sidecar-keys": "No forbidden key in any JSON sidecar",
    "labels": "Every label is approved or neutral",
    "identifiers": "No original identifier in any file name, text or header",
    "recording-text": "No unvetted typed text in recording and image headers or annotations",
    "deface": "Every face-showing image is defaced and recorded",
    "pixels": "No released image that may carry burned-in text shows text to OCR",
    "unexplained-text": "Every word in names and text is explained",
    "bids-validation": "The BIDS validator reports no error",
    "git-metadata": "Commits, tags and notes are windl's own (neutral author, windl's messages)",
}
_FORBIDDEN_PARTS = {
    "restricted": "the study's restricted data (consent, pseudonym key)",
    ".heudiconv": "heudiconv's DICOM dumps",
}


@dataclass
class AuditResult:
    """The outcome of an audit; ``findings`` are dicts with check, path and message."""

    release: str
    study: str
    scope: str
    version: str
    commit: str
    passed: bool
    findings: list[dict[str, str]] = field(default_factory=list)
    html: str = ""
    json: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Audit:
    def __init__(self, release: Path, site: Site, study: Study, record: dict[str, Any]) -> None:
        self.release = release
        self.site = site
        self.study = study
        self.record = record
        self.scope = str(record["scope"])
        self.settings = ReleaseSettings.of(study)
        self.policy = self.settings.policy
        self.checks: dict[str, dict[str, Any]] = {
            name: {"name": name, "title": title, "passed": True, "checked": 0, "findings": []}
            for name, title in CHECKS.items()
        }
        self.deface: list[dict[str, Any]] = []
        self.tokens: dict[str, Any] = {}
        self.listed = _participants_listed(release)  # participant ids in participants.tsv

    def finding(self, check: str, path: str, message: str) -> None:
        self.checks[check]["passed"] = False
        self.checks[check]["findings"].append({"path": path, "message": message})

    def count(self, check: str, n: int = 1) -> None:
        self.checks[check]["checked"] += n


def audit_release(release_dir: Path, site: Site | None = None, mosaics: bool = True) -> AuditResult:
    """Audit a release dataset; store the result on its commit and write the reports.

    Parameters
    ----------
    release_dir
        The release dataset (``<site>/superdataset/releases/<study>/<scope>``).
    site
        The site; by default the one the release lies in.
    mosaics
        Draw the before/after picture of each defaced image for the HTML report.

    Returns
    -------
    AuditResult
        ``passed`` is true only when every check passed.

    Raises
    ------
    BadInput
        If ``release_dir`` is not a windl release dataset.
    """
    release = Path(release_dir).resolve()
    record = built_record(release) if (release / ".git").exists() else {}
    if not record.get("study") or not record.get("scope"):
        raise BadInput(f"not a windl release dataset (no {RELEASE_RECORD} committed)", release)
    site = site or find_site(cwd=release)
    study = get_study(site, str(record["study"]))
    # the result is stored on the commit that was read: no release build of the study may
    # move the release while its files are read (a build waits for the audit, or it for it)
    with study_lock(site.root, study.name):
        return _audit_release(release, site, study, built_record(release), mosaics)


def _audit_release(
    release: Path, site: Site, study: Study, record: dict[str, Any], mosaics: bool
) -> AuditResult:
    """:func:`audit_release` of a release whose study's lock this process holds."""
    audit = _Audit(release, site, study, record)
    commit = datasets.head(release)
    files = _files(audit)
    _check_layout(audit, files)
    labels = _check_consent(audit, files)
    _check_labels(audit, files)
    matcher = study_identifiers(study, audit.policy)
    full, bulk = matcher.matcher(), matcher.matcher(MIN_LENGTH_BINARY)
    reports = site.root / "reports" / "audit" / study.name / audit.scope
    mosaic_dir = reports / "mosaics" / commit[:12]
    approved = vocabulary_of(study.settings(), study.code / "study.toml").approved("trial_type")
    for rel in files:
        path = release / rel
        audit.count("identifiers")
        for kind in sorted(full.kinds_in_text(rel)):
            audit.finding("identifiers", rel, f"file name holds an original {kind}")
        if not path.is_file():
            continue  # reported by clean-worktree
        kinds = _identifier_kinds(audit, rel, path, full, bulk)
        for kind in sorted(kinds):
            audit.finding("identifiers", rel, f"holds an original {kind} from the raw data")
        _check_recording_text(audit, rel, path, approved)
        if ds_folder(rel) is not None:
            for problem in ctf_problems(rel, path, audit.policy):
                audit.finding("identifiers", rel, problem)
        if needs_defacing(rel):
            _check_deface(audit, rel, labels, mosaic_dir if mosaics else None)
    _check_pixels(audit, files)
    _check_text(audit)
    _check_validator(audit)
    _check_git_metadata(audit)
    passed = all(c["passed"] for c in audit.checks.values())
    result = _report(audit, commit, files, passed, reports)
    # also if something outside windl moved or changed the release meanwhile
    if not datasets.dirty_paths(release) and datasets.head(release) == commit:
        datasets.write_note(
            release,
            NOTES_REF,
            commit,
            {
                "passed": passed,
                "findings": len(result.findings),
                "audited_at": utc_stamp(),
                "windl_version": windl_version(),
                "policy": list(audit.policy.options),
                "report": result.json,
            },
        )
    return result


def stored_audit(release_dir: Path, commit: str = "HEAD") -> dict[str, Any] | None:
    """The audit stored for ``commit`` of a release (``None``: never audited at that commit)."""
    return datasets.read_note(Path(release_dir), NOTES_REF, commit)


# --------------------------------------------------------------------------- checks
def _files(audit: _Audit) -> list[str]:
    """Tracked files (dotfiles aside); dirty or absent content is a finding."""
    release = audit.release
    for rel in datasets.dirty_paths(release):
        audit.finding("clean-worktree", rel, "uncommitted change: commit or discard it, then audit")
    names = [n for n in datasets.git(release, "ls-files", "-z").split("\0") if n]
    files = [n for n in names if not n.startswith(".")]
    audit.count("clean-worktree", len(files))
    for rel in files:
        if not (release / rel).exists():
            audit.finding("clean-worktree", rel, "content not present here (datalad get it)")
    return sorted(files)


def _check_layout(audit: _Audit, files: list[str]) -> None:
    built = audit.record.get("policy", {}).get("options", [])
    if sorted(built) != sorted(audit.policy.options):
        audit.finding(
            "layout",
            RELEASE_RECORD,
            f"built with options {built or 'none'}, the study now asks for "
            f"{list(audit.policy.options) or 'none'}: rebuild",
        )
    include_dicom = audit.scope in audit.settings.include_dicom
    for rel in files:
        audit.count("layout")
        parts = rel.split("/")
        for part, what in _FORBIDDEN_PARTS.items():
            if part in parts:
                audit.finding("layout", rel, f"{what} must never be released")
        if rel.startswith("code/conversion/"):
            audit.finding("layout", rel, "conversion records name the raw series; not released")
        if parts[0] == "sourcedata" and not (include_dicom and rel.endswith(".dcm")):
            audit.finding(
                "layout", rel, f"raw data; the study does not release it to {audit.scope}"
            )
        if parts[0] == "derivatives":
            _check_qc_layout(audit, rel, parts)
    folders = {rel.split("/", 1)[0] for rel in files if rel.startswith("sub-") and "/" in rel}
    listed = set(audit.listed)
    for pid in sorted(folders - listed):
        audit.finding("layout", pid, "participant folder not listed in participants.tsv")
    for pid in sorted(listed - folders):
        audit.finding("layout", "participants.tsv", f"{pid} is listed but has no data")


def _check_qc_layout(audit: _Audit, rel: str, parts: list[str]) -> None:
    """Derivatives: only QC, of listed participants, no slices of a face drawn before defacing."""
    if parts[1:2] != ["qc"]:
        audit.finding("layout", rel, "derivatives other than derivatives/qc are not released")
        return
    if len(parts) > 3 and parts[2].startswith("sub-") and parts[2] not in audit.listed:
        audit.finding("layout", rel, "QC of a participant not listed in participants.tsv")
    if rel.endswith("_qc.html") and needs_defacing(parts[-1].removesuffix("_qc.html")):
        audit.finding("layout", rel, "QC report of a face-showing image: its slices show the face")


def _participants_listed(release: Path) -> list[str]:
    path = release / "participants.tsv"
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line.split("\t", 1)[0] for line in lines[1:] if line.strip()]


def _check_consent(audit: _Audit, files: list[str]) -> dict[str, str]:
    """Check consent; return release pid → study pid."""
    by_label = {f"sub-{label}": pid for pid, label in mapping(audit.study, audit.scope).items()}
    consented = consented_participants(audit.study, audit.scope)
    present = {rel.split("/", 1)[0] for rel in files if rel.startswith("sub-") and "/" in rel}
    present |= set(audit.listed)
    for label in sorted(present):
        audit.count("consent")
        pid = by_label.get(label)
        if pid is None:
            audit.finding(
                "consent", label, f"not a release label of scope {audit.scope}: participant unknown"
            )
        elif pid not in consented:
            audit.finding(
                "consent", label, f"the participant has no standing consent for {audit.scope}"
            )
    return {label: pid for label, pid in by_label.items() if label in present}


class _Labels:
    """Which labels a release may hold: approved, BIDS', neutral, or its own sub/ses ones."""

    def __init__(self, audit: _Audit) -> None:
        study, scope = audit.study, audit.scope
        self.vocabulary = vocabulary_of(study.settings(), study.code)
        self.subjects = set(mapping(study, scope).values())
        pids = consented_participants(study, scope)
        kept = {
            s for _, s in participant_sessions(study_tree(study), pids) if session_kept(study, s)
        }
        self.sessions = kept | set(session_mapping(study, scope).values())

    def explained(self, entity: str, label: str) -> bool:
        if entity == "sub":
            return label in self.subjects
        if entity == "ses":
            return label in self.sessions
        if entity not in VETTED and entity != B0_ENTITY:
            return False
        return self.vocabulary.approves(entity, label) or is_neutral(entity, label)

    def value_explained(self, field: str, value: Any) -> bool:
        """A ``TaskName``/``SeriesDescription``/``ProtocolName``/``B0Field*`` value."""
        if not isinstance(value, str):
            return False
        if field == "TaskName":
            return self.explained("task", value)
        if field in B0_FIELDS:
            return self.explained(B0_ENTITY, value)
        key, _, label = value.partition("-")
        return self.vocabulary.approves(field, value) or (
            key in PSEUDONYMISED and self.explained(key, label)
        )

    def path_problems(self, path: str, sourcedata: bool = False) -> list[str]:
        """What is wrong with the labels of a release path (no label quoted)."""
        problems = []
        for part in path.split("/"):
            if sourcedata and _DICOM_SERIES.match(part):
                continue  # named by the build (series-NNN), see windl.release.plan
            for key, label, _ in pieces(part):
                if key not in BIDS_ENTITIES:
                    problems.append("a name part is not a BIDS entity")
                elif not self.explained(key, label):
                    problems.append(f"the {key} label is not approved, BIDS' or neutral")
        return problems


_DICOM_SERIES = re.compile(r"^series-x?\d+(-\d+)?$")
_LABEL_FIELDS = ("TaskName", *DESCRIPTION_FIELDS, *B0_FIELDS)


def _check_labels(audit: _Audit, files: list[str]) -> None:
    """Every label in the release's paths, path fields and label fields is explained."""
    known = _Labels(audit)
    for rel in files:
        audit.count("labels")
        for problem in known.path_problems(rel, rel.startswith("sourcedata/")):
            audit.finding("labels", rel, f"file name: {problem}")
        path = audit.release / rel
        if rel.endswith(".json") and path.is_file():
            _check_json_labels(audit, known, rel, path)
        elif rel.endswith("_scans.tsv") and path.is_file():
            _check_scans_labels(audit, known, rel, path)


def _check_json_labels(audit: _Audit, known: _Labels, rel: str, path: Path) -> None:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return  # reported by sidecar-keys
    for field_name, value in _label_fields(data):
        if field_name in PATH_FIELDS:
            for item in value if isinstance(value, list) else [value]:
                text = str(item).removeprefix("bids::")
                for problem in known.path_problems(text):
                    audit.finding("labels", rel, f"{field_name}: {problem}")
            continue
        for item in value if isinstance(value, list) and field_name in B0_FIELDS else [value]:
            if not known.value_explained(field_name, item):
                audit.finding("labels", rel, f"{field_name} is not an approved or neutral label")


def _label_fields(data: Any) -> Iterator[tuple[str, Any]]:
    """(field, value) of every label or path field, at any depth of a JSON document."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in _LABEL_FIELDS or key in PATH_FIELDS:
                yield key, value
            else:
                yield from _label_fields(value)
    elif isinstance(data, list):
        for item in data:
            yield from _label_fields(item)


def _check_scans_labels(audit: _Audit, known: _Labels, rel: str, path: Path) -> None:
    lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    if not lines or "filename" not in lines[0].split("\t"):
        return
    column = lines[0].split("\t").index("filename")
    for line in lines[1:]:
        cells = line.split("\t")
        if column < len(cells):
            for problem in known.path_problems(cells[column]):
                audit.finding("labels", rel, f"filename column: {problem}")


def _identifier_kinds(
    audit: _Audit, rel: str, path: Path, full: IdentifierMatcher, bulk: IdentifierMatcher
) -> set[str]:
    """Identifier kinds in a file's text or headers (all) and bytes (long ones)."""
    lower = rel.lower()
    raw = path.read_bytes()
    if lower.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            audit.finding("identifiers", rel, "not readable gzip: cannot be checked")
            return set()
    kinds = bulk.kinds_in_bytes(raw)
    if looks_like_text(raw):
        text = raw.decode("utf-8", errors="replace")
        kinds |= full.kinds_in_text(text)
        if lower.endswith(".json"):
            _check_keys(audit, rel, text)
        return kinds
    if lower.endswith((".nii", ".nii.gz")):
        kinds |= full.kinds_in_bytes(raw[: _nifti_header_size(raw)])
    elif raw[128:132] == b"DICM":
        kinds |= _dicom_kinds(audit, rel, path, full)
    elif lower.endswith((".edf", ".bdf")):
        kinds |= full.kinds_in_bytes(raw[: 256 + 256 * _edf_signals(raw)])
    elif lower.endswith(".fif"):
        kinds |= _fif_kinds(audit, rel, path, full)
    return kinds


def _nifti_header_size(raw: bytes) -> int:
    """Header plus extensions of a NIfTI-1/2 image (everything before the voxels)."""
    for order in ("<", ">"):
        sizeof = struct.unpack(order + "i", raw[:4])[0] if len(raw) >= 4 else 0
        if sizeof == 348 and len(raw) >= 112:
            return min(len(raw), int(struct.unpack(order + "f", raw[108:112])[0]))
        if sizeof == 540 and len(raw) >= 176:
            return min(len(raw), int(struct.unpack(order + "q", raw[168:176])[0]))
    return min(len(raw), 1024)


def _edf_signals(raw: bytes) -> int:
    try:
        return max(0, int(raw[252:256].decode("ascii").strip()))
    except (UnicodeDecodeError, ValueError):
        return 0


def _check_keys(audit: _Audit, rel: str, text: str) -> None:
    # windl's own records and QC metrics: keys written by windl, not copied from a sidecar
    if rel.startswith(("code/windl/", DEFACE_RECORDS + "/", QC_DIR + "/")) or (
        "/" not in rel
        and rel
        in (
            "dataset_description.json",
            "participants.json",
        )
    ):
        return
    audit.count("sidecar-keys")
    try:
        data = json.loads(text)
    except ValueError:
        audit.finding("sidecar-keys", rel, "not valid JSON")
        return
    if not isinstance(data, dict):
        return
    for problem in key_problems(rel, data, audit.policy):
        audit.finding("sidecar-keys", rel, problem)


def _dicom_kinds(audit: _Audit, rel: str, path: Path, full: IdentifierMatcher) -> set[str]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    from windl.deid.dicom import check_dataset

    audit.count("dicom-profile")
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError) as exc:
        audit.finding("dicom-profile", rel, f"unreadable DICOM ({type(exc).__name__})")
        return set()
    label = rel.split("/")[1] if rel.startswith("sourcedata/sub-") else None
    for problem in check_dataset(ds, audit.policy, new_patient_id=label):
        audit.finding("dicom-profile", rel, problem)
    kinds: set[str] = set()
    for element in _walk(ds):
        if element.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ"):
            continue
        kinds |= full.kinds_in_text(str(element.value))
    return kinds


def _walk(ds: Any) -> Iterator[Any]:
    for element in ds:
        yield element
        if element.VR == "SQ":
            for item in element.value:
                yield from _walk(item)


def _fif_kinds(audit: _Audit, rel: str, path: Path, full: IdentifierMatcher) -> set[str]:
    import mne

    if re.search(r"_split-0*[2-9]", rel):
        return set()
    try:
        info = mne.io.read_info(path, verbose="error")
    except Exception:
        audit.finding("identifiers", rel, "FIF measurement info unreadable: cannot be checked")
        return set()
    text = " ".join(
        str(info.get(key) or "")
        for key in ("subject_info", "experimenter", "description", "proj_name", "device_info")
    )
    kinds = full.kinds_in_text(text)
    if info.get("meas_date") is not None:
        kinds |= full.kinds_in_text(info["meas_date"].strftime("%Y%m%d"))
    return kinds


def _check_recording_text(audit: _Audit, rel: str, path: Path, approved: frozenset[str]) -> None:
    if not recording_text.applies(rel):
        return
    audit.count("recording-text")
    for problem in recording_text.recording_text_problems(path, rel, audit.policy, approved):
        audit.finding("recording-text", rel, problem)


def _check_deface(audit: _Audit, rel: str, labels: dict[str, str], mosaic_dir: Path | None) -> None:
    audit.count("deface")
    image = audit.release / rel
    record_path = audit.release / deface_record_path(rel)
    entry: dict[str, Any] = {
        "path": rel,
        "face_zero_fraction": None,
        "passed": False,
        "mosaic_png": None,
    }
    audit.deface.append(entry)
    if not record_path.is_file():
        audit.finding("deface", rel, "no deface record: the image was not defaced by windl")
        record: dict[str, Any] | None = None
    else:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        sha = datasets.file_digest(image, "sha256")
        if record.get("output_sha256") != sha:
            audit.finding("deface", rel, "the image is not the one its deface record describes")
    if record is not None and record.get("transform"):
        fraction = face_check(image, record)
        entry["face_zero_fraction"] = round(fraction, 4)
        if fraction < FACE_ZERO_FRACTION:
            audit.finding(
                "deface",
                rel,
                f"only {fraction:.1%} of the face region is zero (needs {FACE_ZERO_FRACTION:.0%})",
            )
    original = _study_file(audit, rel, labels)
    _check_face_detector(audit, rel, original, entry, mosaic_dir)
    entry["passed"] = not any(f["path"] == rel for f in audit.checks["deface"]["findings"])
    if mosaic_dir is not None and record is not None and original is not None:
        from windl.deid.deface import deface_mosaic

        png = mosaic_dir / (rel.replace("/", "__") + ".png")
        try:
            deface_mosaic(original, image, png)
            entry["mosaic_png"] = str(png)
        except (BadInput, ValueError, OSError):
            entry["mosaic_png"] = None


def _check_face_detector(
    audit: _Audit,
    rel: str,
    original: Path | None,
    entry: dict[str, Any],
    picture_dir: Path | None,
) -> None:
    """Look for a face on the released image and on the study image it was made from.

    Shares nothing with the defacing registration, so a registration that went wrong, or a
    deface record that does not describe what was done, cannot fool it the same way.
    """
    settings = DetectSettings()
    result: dict[str, Any] = {"settings": settings.to_dict(), "before": None, "after": None}
    entry["face_detector"] = result
    after = _detection(audit, rel, audit.release / rel, settings)
    before = _detection(audit, rel, original, settings) if original else None
    result["after"] = after.to_dict() if after else None
    result["before"] = before.to_dict() if before else None
    if after is not None and after.found:
        result["verdict"] = "face-found"
        audit.finding(
            "deface",
            rel,
            "a face detector finds a face on the rendered head of the released image "
            "(independent of the defacing registration)",
        )
    elif before is None or not before.found:
        result["verdict"] = "not-judged"
        accepted = _accepts_unjudged(audit)
        result["accepted"] = accepted
        if not accepted:
            why = "no study image to compare" if original is None else "it finds none before"
            audit.finding(
                "deface",
                rel,
                f"the face detector cannot judge the defacing ({why}); review the pictures, "
                "then accept with [audit] accept_unjudged_faces = true",
            )
    else:
        result["verdict"] = "no-face" if after is not None else "not-judged"
    if picture_dir is not None and (before or after):
        png = picture_dir / (rel.replace("/", "__") + ".faces.png")
        try:
            face_picture([("before", before), ("after", after)], png)
            result["picture_png"] = str(png)
        except (BadInput, OSError):
            result["picture_png"] = None


def _detection(audit: _Audit, rel: str, path: Path, settings: DetectSettings) -> Detection | None:
    """Run the detector; an unreadable image is a finding (and no detection)."""
    try:
        return detect_face(path, settings)
    except (BadInput, OSError, ValueError) as exc:
        what = type(exc).__name__
        audit.finding("deface", rel, f"the face detector cannot read an image ({what})")
        return None


def _accepts_unjudged(audit: _Audit) -> bool:
    table = audit.study.settings().get("audit", {}) or {}
    value = table.get("accept_unjudged_faces", False)
    if not isinstance(value, bool):
        raise ConfigError("[audit] accept_unjudged_faces must be true or false", audit.study.code)
    return value


def _study_file(audit: _Audit, rel: str, labels: dict[str, str]) -> Path | None:
    """The study image a release image was made from (for the before/after picture)."""
    label = rel.split("/", 1)[0]
    pid = labels.get(label)
    if pid is None:
        return None
    sessions = {
        (label, new): old
        for (owner, old), new in session_mapping(audit.study, audit.scope).items()
        if owner == pid
    }
    neutral = {(e, new): old for (e, old), new in entity_mapping(audit.study, audit.scope).items()}
    candidate = audit.study.root / rename(
        rel, {label: pid}, sessions, lambda e, v: neutral.get((e, v), v)
    )
    return candidate if candidate.is_file() else None


def _check_pixels(audit: _Audit, files: list[str]) -> None:
    audit.count("pixels", sum(1 for rel in files if rel.endswith((".nii", ".nii.gz", ".dcm"))))
    for rel, problem in released_pixel_findings(audit.release, files, pixel_policy(audit.study)):
        audit.finding("pixels", rel, problem)


def _check_text(audit: _Audit) -> None:
    """Every token of every name and text explained (:mod:`windl.release.tokens`)."""
    from windl.release.tokens import audit_text

    labels = [*mapping(audit.study, audit.scope).values()]
    labels += session_mapping(audit.study, audit.scope).values()
    result = audit_text(audit.study, audit.release, audit.policy, labels)
    audit.count("unexplained-text", result.checked)
    for (rel, where), n in sorted(result.unexplained.items()):
        audit.finding("unexplained-text", rel, f"{where}: {n} unexplained word(s)")
    audit.tokens = result.summary()


def _check_validator(audit: _Audit) -> None:
    from windl.validate import run_validator, summarize

    audit.count("bids-validation")
    errors, _, examples = summarize(
        run_validator(audit.release, audit.site.setting("validate", "extra_args", []))
    )
    for code, n in errors.items():
        audit.finding("bids-validation", examples.get(code) or ".", f"{code} ({n}x)")


def _check_git_metadata(audit: _Audit) -> None:
    from windl.release.history import git_metadata_findings

    checked, findings = git_metadata_findings(audit.release)
    audit.count("git-metadata", checked)
    for where, message in findings:
        audit.finding("git-metadata", where, message)


# --------------------------------------------------------------------------- report
def _report(
    audit: _Audit, commit: str, files: list[str], passed: bool, reports: Path
) -> AuditResult:
    kinds: Counter[str] = Counter()
    size = 0
    for rel in files:
        path = audit.release / rel
        size += path.stat().st_size if path.exists() else 0
        kinds[_file_kind(rel)] += 1
    data = {
        "release": str(audit.release),
        "study": audit.study.name,
        "scope": audit.scope,
        "version": str(audit.record.get("version", "")),
        "commit": commit,
        "audited_at": utc_stamp(),
        "windl_version": windl_version(),
        "policy": {"options": list(audit.policy.options)},
        "passed": passed,
        "thresholds": {"face_zero_fraction": FACE_ZERO_FRACTION},
        "checks": list(audit.checks.values()),
        "deface": audit.deface,
        "tokens": audit.tokens,
        "participants": {
            "count": len(audit.listed),
            "sessions": int(audit.record.get("sessions", 0)),
        },
        "files": {"count": len(files), "bytes": size, "by_kind": dict(kinds.most_common())},
    }
    stem = f"{data['version']}-{commit[:12]}"
    json_path = atomic_write_text(reports / f"{stem}.json", json.dumps(data, indent=2) + "\n")
    html_path = write_audit_report(data, reports / f"{stem}.html")
    findings = [{"check": c["name"], **f} for c in audit.checks.values() for f in c["findings"]]
    return AuditResult(
        release=str(audit.release),
        study=audit.study.name,
        scope=audit.scope,
        version=str(data["version"]),
        commit=commit,
        passed=passed,
        findings=findings,
        html=str(html_path),
        json=str(json_path),
    )


def _file_kind(rel: str) -> str:
    lower = rel.lower()
    if lower.endswith((".nii", ".nii.gz")):
        return "nifti"
    if lower.endswith(".dcm"):
        return "dicom"
    if lower.endswith(".json"):
        return "sidecar"
    if lower.endswith(".tsv"):
        return "tsv"
    if lower.endswith((".vhdr", ".vmrk", ".eeg", ".edf", ".bdf", ".fif")):
        return "ephys"
    return "other"
