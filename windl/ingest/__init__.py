"""Ingest: raw data from a folder or archive into the subject's dataset in ``sourcedata``.

Each subject's raw data is a DataLad dataset of its own, ``sourcedata/sub-<S>``, created
at the subject's first ingest (see :mod:`windl.sourcedata` for why). Layout, relative to
``sourcedata``::

    sub-<S>/[ses-<X>/]dicom/<NNN>-<SeriesDescription>/<file>            image DICOM (converted)
    sub-<S>/[ses-<X>/]dicom-nonimage/<NNN>-<SeriesDescription>/<file>   SR, PDF, raw data (kept)
    sub-<S>/[ses-<X>/]misc/<path in source>                              anything else (kept)

Files are stored byte for byte. A whole ingest is one commit (see
:func:`windl.datasets.commit_files` for why a crash cannot leave half of it behind).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from windl import datasets, sourcedata
from windl.checkpoints import checkpoint
from windl.config import SITE_FILE, Site
from windl.errors import BadInput, ConflictingInput
from windl.ingest.dicom import DicomInfo, read_dicom
from windl.ingest.ephys import find_recordings
from windl.ingest.sources import ArchiveLimits, SourceFile, archive_kind, open_source
from windl.labels import bids_label, sanitize_label
from windl.study import Study, get_study

Progress = Callable[[str, int, int], None]


@dataclass
class SeriesSummary:
    """One DICOM series found in the source."""

    number: int | None
    description: str
    modality: str
    kind: str  # "image" (converted later) or "non-image" (kept, never converted)
    folder: str
    files: int = 0


@dataclass
class RecordingSummary:
    """One EEG/MEG recording found in the source."""

    kind: str  # "eeg" or "meg"
    format: str
    name: str
    folder: str
    files: int


@dataclass
class Layout:
    """Where every input file goes, and what was found."""

    targets: dict[str, SourceFile]
    series: list[SeriesSummary]
    recordings: list[RecordingSummary]
    others: int


@dataclass
class IngestResult:
    study: str
    subject: str
    session: str | None
    series: list[SeriesSummary] = field(default_factory=list)
    recordings: list[RecordingSummary] = field(default_factory=list)
    other_files: int = 0
    added: int = 0
    already_present: int = 0
    commit: str | None = None

    @property
    def changed(self) -> bool:
        return self.commit is not None


def session_prefix(subject: str, session: str | None) -> str:
    return f"sub-{subject}/ses-{session}" if session else f"sub-{subject}"


SeriesKey = tuple[str, int | None]


def _series_key(info: DicomInfo) -> SeriesKey:
    # heudiconv splits series by number too; some exports reuse one UID for several
    return info.series_uid, info.series_number


def _series_folders(infos: Iterable[DicomInfo]) -> dict[SeriesKey, str]:
    """Folder name per series: ``NNN-Description``, made unique if needed."""
    by_key: dict[SeriesKey, DicomInfo] = {}
    for info in infos:
        by_key.setdefault(_series_key(info), info)
    names: dict[SeriesKey, str] = {}
    for key, info in by_key.items():
        number = f"{info.series_number:03d}" if info.series_number is not None else "000"
        names[key] = f"{number}-{sanitize_label(info.series_description) or 'unnamed'}"
    taken: dict[str, int] = {}
    for name in names.values():
        taken[name] = taken.get(name, 0) + 1
    return {
        key: name if taken[name] == 1 else f"{name}-{hashlib.md5(key[0].encode()).hexdigest()[:6]}"
        for key, name in names.items()
    }


def _already_present(path: Path, present: set[tuple[str, int, str]]) -> bool:
    size = path.stat().st_size
    algorithms = {algorithm for algorithm, known_size, _ in present if known_size == size}
    return any((a, size, datasets.file_digest(path, a)) in present for a in sorted(algorithms))


def plan_layout(
    files: list[SourceFile], prefix: str, source: Path, progress: Progress | None = None
) -> Layout:
    """Classify every file by content and give it its place in ``sourcedata``.

    Raises :class:`BadInput` on the first unusable file, before anything is written.
    """
    recordings, rest = find_recordings(files)
    infos: list[tuple[SourceFile, DicomInfo | None]] = []
    for done, source_file in enumerate(rest, 1):
        infos.append((source_file, read_dicom(source_file.path)))
        if progress:
            progress("reading", done, len(rest))
    dicoms = [(f, i) for f, i in infos if i is not None]
    if not dicoms and not recordings:
        raise BadInput(f"no DICOM, EEG or MEG data found ({len(files)} other files)", source)
    folders = _series_folders(i for _, i in dicoms)
    targets: dict[str, SourceFile] = {}
    for recording in recordings:
        for source_file in recording.files:
            targets[f"{prefix}/{recording.target(source_file)}"] = source_file
    series: dict[SeriesKey, SeriesSummary] = {}
    others = 0
    for source_file, info in infos:
        if info is None:
            target = f"{prefix}/misc/{source_file.relpath}"
            others += 1
        else:
            kind = "image" if info.is_image else "non-image"
            area = "dicom" if info.is_image else "dicom-nonimage"
            folder = f"{area}/{folders[_series_key(info)]}"
            summary = series.setdefault(
                _series_key(info),
                SeriesSummary(
                    info.series_number, info.series_description, info.modality, kind, folder
                ),
            )
            summary.files += 1
            target = f"{prefix}/{folder}/{source_file.relpath.name}"
            if target in targets:
                # same file name twice in a series (e.g. flat exports): the UID is unique
                target = f"{prefix}/{folder}/{info.sop_instance_uid}.dcm"
        if target in targets:
            raise BadInput(f"two input files map to {target}", source_file.path)
        targets[target] = source_file
    ordered = sorted(series.values(), key=lambda s: (s.kind, s.number or 0, s.description))
    summaries = [
        RecordingSummary(r.kind, r.format, r.name, f"{r.kind}/{r.name}", len(r.files))
        for r in recordings
    ]
    return Layout(targets, ordered, summaries, others)


def ingest(
    site: Site,
    study_name: str,
    source: Path,
    subject: str,
    session: str | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Ingest ``source`` for one subject/session into the study's ``sourcedata``.

    Re-ingesting the same files changes nothing; files whose content is already in the
    session (under any name) are skipped; a different file at an existing path is refused.

    Parameters
    ----------
    site, study_name
        The site and the study to ingest into.
    source
        A folder, ``.zip`` or ``.tar[.gz|.bz2|.xz]`` archive.
    subject, session
        BIDS labels (``01`` or ``sub-01``); session is optional.
    """
    study: Study = get_study(site, study_name)
    limits = ArchiveLimits.from_settings(site.settings, site.root / SITE_FILE)
    sub = bids_label(subject, "sub")
    ses = bids_label(session, "ses") if session else None
    prefix = session_prefix(sub, ses)
    datasets.recover(study.sourcedata)
    # roll forward an ingest killed between its commit and recording it upwards
    _record_upwards(site, study, "windl ingest: record earlier ingest")
    result = IngestResult(study=study.name, subject=sub, session=ses)
    scratch = study.sourcedata / datasets.WINDL_GITDIR / "extract" / uuid.uuid4().hex
    with open_source(source, scratch, limits) as files:
        layout = plan_layout(files, prefix, source, progress)
        result.series, result.recordings = layout.series, layout.recordings
        result.other_files = layout.others
        checkpoint("scanned")
        ds = sourcedata.open_subject_dataset(study, sub)
        # paths in the dataset that holds them: the subject's own, or (a study made
        # before subject datasets) sourcedata with the subject's folder
        inner = "" if ds == study.sourcedata else f"sub-{sub}/"
        targets = {t.removeprefix(inner): f for t, f in layout.targets.items()}
        here = prefix.removeprefix(inner.rstrip("/")).strip("/")
        datasets.require_clean(ds, [here] if here else [])
        tracked = datasets.tracked_annex_keys(ds, here or None)
        present = {i for i in map(datasets.annex_key_identity, tracked.values()) if i is not None}
        new: dict[str, Path] = {}
        for target, source_file in targets.items():
            if _already_present(source_file.path, present):
                result.already_present += 1
                continue
            if target in tracked:
                raise ConflictingInput(
                    f"{inner}{target} is already ingested with different content",
                    source_file.path,
                )
            new[target] = source_file.path
        if new:
            result.added = len(new)
            sourcedata.mark_unrecorded(study, ds)
            result.commit = datasets.commit_files(
                ds,
                new,
                f"windl ingest: {prefix.replace('/', ' ')}, {len(new)} files, "
                f"{len(result.series)} series, {len(result.recordings)} recordings "
                f"from {PurePosixPath(source.name)}",
                move=archive_kind(source) is not None,
            )
            sourcedata.settle_subject_dataset(study, ds)
    checkpoint("merged")
    _record_upwards(site, study, f"windl ingest: {prefix.replace('/', ' ')}")
    return result


def _record_upwards(site: Site, study: Study, message: str) -> None:
    """Record new commits upwards: subject datasets in sourcedata, sourcedata in the
    study, the study in the superdataset (each a no-op when already recorded)."""
    sourcedata.record_subjects(study, message)
    datasets.record_subdataset_state(study.root, study.sourcedata, message)
    datasets.record_subdataset_state(site.superdataset, study.root, message)
