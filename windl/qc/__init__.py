"""QC: image and recording quality metrics into ``derivatives/qc`` under ``datalad run``.

``windl qc STUDY`` finds the study's T1w/T2w, BOLD, EEG and MEG files and records one
``datalad run`` whose command is ``python -m windl.qc.step``; the step writes BIDS
derivatives (see :mod:`windl.qc.step`), so ``datalad rerun`` reproduces them.
Metric definitions: :mod:`windl.qc.anat` (MRIQC anatomical), :mod:`windl.qc.func` (MRIQC
functional), :mod:`windl.qc.ephys` (MNE).

The group tables (a stable format; the catalog reads them)
-----------------------------------------------------------
``derivatives/qc/group_<kind>.tsv`` of a study dataset and of a release dataset holds one
row per recording of that kind (``kind`` one of :data:`KINDS`: ``T1w``, ``T2w``, ``bold``,
``eeg``, ``meg``; MRIQC's ``group_<modality>.tsv`` convention). Tab-separated, UTF-8,
LF line ends, a header row, ``n/a`` where a recording has no value for a column.

- ``bids_name``: the recording's BIDS name without extension (``sub-X_..._bold``);
- ``source``: its path in the dataset the table belongs to (in a release: the release's
  re-keyed path);
- the columns of :data:`GROUP_TEXT_COLUMNS` hold text (comma-separated channel names,
  ``type=count`` lists of events);
- every other column is a number (int or float, booleans as 0/1): the metrics named in
  :mod:`windl.qc.anat`, :mod:`windl.qc.func` and :mod:`windl.qc.ephys`.

Columns are only ever added, never renamed; a reader selects them by header name.
:func:`read_group` reads a table with the numbers parsed. In a release the tables and the
dataset report ``group_qc.html`` are regenerated from the release's own per-file metrics
(consented participants only, labels re-keyed) -- see :mod:`windl.release.build`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from windl import datasets
from windl.checkpoints import checkpoint
from windl.config import Site
from windl.errors import BadInput, NothingToConvert, WindlError
from windl.labels import bids_label
from windl.parallel import Progress, watched_step
from windl.study import get_study

QC_DIR = "derivatives/qc"
#: the kinds of recording with a group table ``group_<kind>.tsv``
KINDS = ("T1w", "T2w", "bold", "eeg", "meg")
#: group-table columns that hold text; all others are numbers (see the module docstring)
GROUP_TEXT_COLUMNS = (
    "bids_name",
    "source",
    "flat_channels",
    "noisy_channels",
    "events",
    "flat_ref_meg",
)
#: per-file descriptions kept out of the group tables (the same for every row; they are in
#: the per-file JSON and in dataset_description.json)
DESCRIPTIVE_KEYS = ("segmentation", "motion")
#: (glob below a subject folder, kind); kind names the group TSV, as MRIQC's group_<kind>.tsv
PATTERNS = (
    ("anat/*_T1w.nii*", "T1w"),
    ("anat/*_T2w.nii*", "T2w"),
    ("func/*_bold.nii*", "bold"),
    ("eeg/*_eeg.vhdr", "eeg"),
    ("eeg/*_eeg.edf", "eeg"),
    ("eeg/*_eeg.bdf", "eeg"),
    ("eeg/*_eeg.set", "eeg"),
    ("eeg/*_eeg.fif", "eeg"),
    ("meg/*_meg.fif", "meg"),
    ("meg/*_meg.ds", "meg"),
)


class QCFailed(WindlError):
    """The QC of some files failed (the others were computed and committed)."""


def recording_kind(rel: str) -> str | None:
    """The QC kind of a dataset-relative recording path (``None``: QC does not look at it)."""
    parts = PurePosixPath(rel).parts
    if not parts or not parts[0].startswith("sub-"):
        return None
    rest = parts[2:] if len(parts) > 1 and parts[1].startswith("ses-") else parts[1:]
    if len(rest) != 2:
        return None
    for pattern, kind in PATTERNS:
        if PurePosixPath(*rest).match(pattern):
            return kind
    return None


def read_group(path: Path) -> list[dict[str, str | float | None]]:
    """Rows of a ``group_<kind>.tsv``: text columns as ``str``, the others as numbers.

    ``n/a`` (no value) becomes ``None``.

    Raises
    ------
    BadInput
        A numeric column holds something that is not a number.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines:
        return []
    header = lines[0].split("\t")
    rows: list[dict[str, str | float | None]] = []
    for number, line in enumerate(lines[1:], start=2):
        row: dict[str, str | float | None] = {}
        for name, cell in zip(header, line.split("\t"), strict=False):
            if name in GROUP_TEXT_COLUMNS:
                row[name] = cell
            elif cell in ("n/a", ""):
                row[name] = None
            else:
                try:
                    row[name] = float(cell)
                except ValueError:
                    raise BadInput(f"line {number}: column {name} is not a number", path) from None
        rows.append(row)
    return rows


def find_recordings(root: Path, subject: str | None = None) -> list[tuple[str, str]]:
    """(dataset-relative path, kind) of every file QC looks at, sorted by path."""
    found = []
    subjects = [f"sub-{subject}"] if subject else ["sub-*"]
    for sub in subjects:
        for prefix in (sub, f"{sub}/ses-*"):
            for pattern, kind in PATTERNS:
                for path in root.glob(f"{prefix}/{pattern}"):
                    rel = path.relative_to(root).as_posix()
                    if not re.search(r"(^|/)\.", rel):
                        found.append((rel, kind))
    return sorted(set(found))


@dataclass
class QCResult:
    """What ``windl qc`` did; ``failed`` maps each file whose QC failed to the error."""

    study: str
    recordings: int
    commit: str | None
    changed: bool
    path: Path
    computed: int = 0
    reused: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "path": str(self.path)}


def run_qc(
    site: Site,
    study_name: str,
    subject: str | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
) -> QCResult:
    """Compute QC for ``study_name`` (or one subject) under ``datalad run``.

    Parameters
    ----------
    site, study_name
        The site and study.
    subject
        Only this subject's files.
    jobs
        Worker processes computing files at the same time. The outputs and the run record
        are the same whatever it is (it reaches the step through ``$WINDL_JOBS``, see
        :mod:`windl.parallel`).
    progress
        Called with ``("qc", files done, files)`` while the step runs.

    Returns
    -------
    QCResult
        With the files whose QC failed in ``failed``: they do not stop the others, whose
        results are committed; the next run computes only failed, new and changed files.
        :func:`raise_for_failures` turns them into an error.

    Raises
    ------
    NothingToConvert
        The study has no T1w/T2w, BOLD, EEG or MEG files (for that subject).
    """
    study = get_study(site, study_name)
    sub = bids_label(subject, "sub") if subject else None
    recordings = find_recordings(study.root, sub)
    if not recordings:
        raise NothingToConvert(
            f"no T1w, T2w, BOLD, EEG or MEG files{' for sub-' + sub if sub else ''} "
            f"in study {study.name}"
        )
    inputs = sorted({str(Path(rel).parent) for rel, _ in recordings})
    command = "python -m windl.qc.step" + (f" --subject {shlex.quote(sub)}" if sub else "")
    datasets.recover_runs(study.root)  # what a killed qc left in derivatives/qc
    datasets.require_clean(study.root, [QC_DIR])
    before = datasets.head(study.root)
    checkpoint("qc-start")
    status = study.root / datasets.WINDL_GITDIR / "status" / "qc.jsonl"
    with watched_step(status, jobs, progress, "qc") as report:
        datasets.datalad_run(
            study.root,
            command,
            inputs=inputs,
            outputs=[QC_DIR],
            message=f"windl qc: {study.name}" + (f" sub-{sub}" if sub else ""),
            log=study.root / datasets.WINDL_GITDIR / "logs" / "qc.log",
        )
    after = datasets.head(study.root)
    checkpoint("qc-written")
    # also when this qc changed nothing: a killed qc may have committed its record without
    # recording the study in the superdataset (a no-op when it is recorded)
    datasets.record_subdataset_state(site.superdataset, study.root, f"windl qc: {study.name}")
    failed = dict(sorted(report.failed.items()))
    return QCResult(
        study.name,
        len(recordings),
        after,
        after != before,
        study.root / QC_DIR,
        computed=report.made,
        reused=report.reused,
        failed=failed,
    )


def raise_for_failures(result: QCResult) -> None:
    """Raise :class:`QCFailed` naming the files whose QC failed, if any."""
    if result.failed:
        names = ", ".join(result.failed)
        raise QCFailed(
            f"QC failed for {len(result.failed)} of {result.recordings} files: {names} "
            "(the others are committed; run windl qc again to retry only these)"
        )
