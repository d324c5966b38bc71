"""Synthetic sessions for the scale benchmark, made from one real DICOM series.

Each synthetic session is a copy of the same real scanner files (by default the four
Siemens EPI series of ``dcm_qa_nih/In/20180918Si``, 8 DICOM files), rewritten with
pydicom so that the copy is a different study of a different patient:

* every UID that identifies an instance (Study, Series, SOP, Frame of Reference, the
  referenced SOP instances, and the file meta's MediaStorageSOPInstanceUID) is replaced by
  a UID derived from the copy's identity and the old UID, so references inside one copy
  stay consistent while no UID is shared between copies or with the source;
* PatientID and PatientName are those of the synthetic subject: the sessions of one
  subject share them (one patient scanned twice), different subjects never do.

UIDs come from :func:`pydicom.uid.generate_uid` with fixed entropy sources (the seed, the
subject, the session, the old UID), so a rerun writes the same bytes. Pixel data and every
other element are untouched.

The BIDS side is replicated from one real conversion (see :func:`replicate_bids`): the
files windl's conversion wrote for one session, renamed to each synthetic session.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

#: UIDs under this root are defined by the DICOM standard (SOP classes, transfer
#: syntaxes): they name *kinds* of things and must not be changed.
STANDARD_UID_ROOT = "1.2.840.10008."
_DICM_OFFSET = 128


@dataclass(frozen=True)
class SessionSpec:
    """One synthetic session: its place in the study and its BIDS labels.

    Attributes
    ----------
    index
        0-based position in the order sessions are added to the study.
    subject_index
        0-based subject number.
    subject, session
        BIDS labels (without ``sub-``/``ses-``).
    """

    index: int
    subject_index: int
    subject: str
    session: str

    @property
    def first_of_subject(self) -> bool:
        return self.session == session_label(0)


def session_label(within: int) -> str:
    """BIDS session label of a subject's ``within``-th (0-based) session."""
    return f"{within + 1:02d}"


def session_spec(index: int, sessions_per_subject: int) -> SessionSpec:
    """The ``index``-th session of a study where each subject has ``sessions_per_subject``.

    Sessions are added subject by subject (all sessions of subject 1, then subject 2, …), so
    a study grown to ``N`` sessions has ``N / sessions_per_subject`` complete subjects.
    """
    if sessions_per_subject < 1:
        raise ValueError("sessions_per_subject must be at least 1")
    subject_index, within = divmod(index, sessions_per_subject)
    return SessionSpec(index, subject_index, f"{subject_index + 1:05d}", session_label(within))


def is_dicom(path: Path) -> bool:
    """True if ``path`` carries the DICOM Part 10 marker (recognised by content, as windl does)."""
    with path.open("rb") as fh:
        fh.seek(_DICM_OFFSET)
        return fh.read(4) == b"DICM"


def dicom_files(source: Path) -> list[Path]:
    """The DICOM files under ``source``, relative to it, in a fixed order.

    Only DICOM is copied: the upstream ``README-*.txt`` header dumps next to the series are
    not something a scanner sends.
    """
    found = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    files = [rel for rel in found if is_dicom(source / rel)]
    if not files:
        raise ValueError(f"no DICOM files under {source}")
    return files


def patient_id(seed: int, subject: str) -> str:
    return f"SCALE{seed}-{subject}"


def patient_name(subject: str) -> str:
    return f"Scale^Subject{subject}"


class SyntheticSource:
    """Writes synthetic copies of the DICOM files under one real source folder.

    Parameters
    ----------
    source
        Folder with the real DICOM files (any depth; non-DICOM files are ignored).
    seed
        Mixed into every new UID and PatientID: two studies built with different seeds
        share no identifiers, the same seed writes the same bytes again.
    """

    def __init__(self, source: Path, seed: int = 0) -> None:
        self.source = source.resolve()
        self.seed = seed
        self.files = dicom_files(self.source)

    def new_uid(self, spec: SessionSpec, old: str) -> str:
        """The UID that ``old`` becomes in the copy ``spec`` (a pure function of both)."""
        if old.startswith(STANDARD_UID_ROOT):
            return old
        return generate_uid(entropy_srcs=["windl-scale", str(self.seed), spec.subject,
                                          spec.session, old])  # fmt: skip

    def rewrite(self, ds: Dataset, spec: SessionSpec) -> Dataset:
        """Give ``ds`` (read from the source) the identity of session ``spec``, in place."""

        def remap(_dataset: Dataset, elem: DataElement) -> None:
            # every UI element, nested sequences included: referenced instances must not
            # point back to the source study
            if elem.VR != "UI" or not elem.value:
                return
            if elem.VM > 1:
                elem.value = [self.new_uid(spec, str(v)) for v in elem.value]
            else:
                elem.value = self.new_uid(spec, str(elem.value))

        ds.walk(remap)
        meta = ds.file_meta
        if "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID = patient_id(self.seed, spec.subject)
        ds.PatientName = patient_name(spec.subject)
        if "OtherPatientIDs" in ds:
            del ds.OtherPatientIDs
        return ds

    def write_session(self, spec: SessionSpec, out: Path) -> Path:
        """Write the copy for ``spec`` into ``out`` (created), keeping relative paths.

        Returns
        -------
        Path
            ``out``, a folder ready for ``windl ingest``.
        """
        out.mkdir(parents=True, exist_ok=True)
        for rel in self.files:
            ds = pydicom.dcmread(self.source / rel)
            self.rewrite(ds, spec)
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            # enforce_file_format=False: keep the source's file meta and encoding as they
            # are, so the copy differs from the source only in the rewritten identifiers
            ds.save_as(target, enforce_file_format=False)
        return out


# --------------------------------------------------------------------------- BIDS side
@dataclass(frozen=True)
class BidsTemplate:
    """The BIDS files one real conversion wrote for one session.

    Attributes
    ----------
    subject, session
        Labels of the converted session.
    files
        Study-relative path → file with its content (annexed files resolved).
    """

    subject: str
    session: str
    files: Mapping[str, Path]


def bids_template(study_root: Path, subject: str, session: str, keep: Path) -> BidsTemplate:
    """Copy the converted files of ``sub-<subject>/ses-<session>`` out of a study.

    The copies in ``keep`` survive the study they came from (annexed files are read
    through their symlinks, so their content must be present, as after a conversion).
    """
    prefix = f"sub-{subject}/ses-{session}"
    folder = study_root / prefix
    if not folder.is_dir():
        raise ValueError(f"the conversion wrote nothing under {prefix}")
    files: dict[str, Path] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(study_root).as_posix()
        target = keep / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)  # follows the annex symlink to the content
        files[rel] = target
    return BidsTemplate(subject, session, files)


def _relabel(text: str, template: BidsTemplate, spec: SessionSpec) -> str:
    # an entity starts the text or follows "/", "_" or white space, and ends the same way
    for key, old, new in (
        ("sub", template.subject, spec.subject),
        ("ses", template.session, spec.session),
    ):
        text = re.sub(rf"(?<![^/_\s]){key}-{re.escape(old)}(?![^/_.\s])", f"{key}-{new}", text)
    return text


def replicate_bids(template: BidsTemplate, spec: SessionSpec, scratch: Path) -> dict[str, Path]:
    """The template's files renamed to session ``spec``: study-relative path → source file.

    NIfTI and JSON sidecars are reused as they are (their content names no subject);
    ``scans.tsv`` lists file names with the labels and is rewritten into ``scratch``.
    """
    files: dict[str, Path] = {}
    for rel, path in template.files.items():
        new_rel = _relabel(rel, template, spec)
        if rel.endswith("_scans.tsv"):
            target = scratch / new_rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(
                _relabel(path.read_text(encoding="utf-8"), template, spec), encoding="utf-8"
            )
            files[new_rel] = target
        else:
            files[new_rel] = path
    return files


def participants_with(
    current: bytes, subjects: Iterable[str], participant: Mapping[str, str | None], scratch: Path
) -> Path:
    """``participants.tsv`` with a row for each of ``subjects`` added, by windl's own rule.

    Parameters
    ----------
    current
        The study's ``participants.tsv`` as committed.
    subjects
        Labels to add (existing rows are kept, as a conversion keeps them).
    participant
        DICOM ``age`` (e.g. ``048Y``) and ``sex`` of the synthetic subjects.
    scratch
        Empty folder; the new file is written there.
    """
    from windl.convert.finalize import add_participant

    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / "participants.tsv"
    path.write_bytes(current)
    for subject in subjects:
        add_participant(scratch, subject, dict(participant))
    return path
