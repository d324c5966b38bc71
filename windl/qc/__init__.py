"""QC: image and recording quality metrics into ``derivatives/qc`` under ``datalad run``.

``windl qc STUDY`` finds the study's T1w/T2w, BOLD, EEG and MEG files and records one
``datalad run`` whose command is ``python -m windl.qc.step``; the step writes BIDS
derivatives (see :mod:`windl.qc.step`), so ``datalad rerun`` reproduces them.
Metric definitions: :mod:`windl.qc.anat` (MRIQC anatomical), :mod:`windl.qc.func` (MRIQC
functional), :mod:`windl.qc.ephys` (MNE).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from windl import datasets
from windl.config import Site
from windl.errors import NothingToConvert
from windl.labels import bids_label
from windl.study import get_study

QC_DIR = "derivatives/qc"
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
    study: str
    recordings: int
    commit: str | None
    changed: bool
    path: Path

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "path": str(self.path)}


def run_qc(site: Site, study_name: str, subject: str | None = None) -> QCResult:
    """Compute QC for ``study_name`` (or one subject) under ``datalad run``.

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
    datasets.require_clean(study.root, [QC_DIR])
    before = datasets.head(study.root)
    datasets.datalad_run(
        study.root,
        command,
        inputs=inputs,
        outputs=[QC_DIR],
        message=f"windl qc: {study.name}" + (f" sub-{sub}" if sub else ""),
        log=study.root / datasets.WINDL_GITDIR / "logs" / "qc.log",
    )
    after = datasets.head(study.root)
    if after != before:
        datasets.record_subdataset_state(site.superdataset, study.root, f"windl qc: {study.name}")
    return QCResult(study.name, len(recordings), after, after != before, study.root / QC_DIR)
