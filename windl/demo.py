"""``windl demo DIR``: a demo site built from the real public data in ``../shared/data``.

Each step calls the same library functions as the CLI; the demo only chooses the inputs.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from windl import datasets
from windl.add import add
from windl.config import REPO_ROOT, SITE_FILE, Site, load_site
from windl.convert import convert, raise_for_failures
from windl.errors import BadInput
from windl.ingest import ingest
from windl.site import init_site
from windl.study import create_study, get_study
from windl.validate import ValidationReport, validate

DATA_ENV = "WINDL_SHARED_DATA"
STUDY = "demo"
#: (source relative to the shared data folder, subject, session, what it is)
SESSIONS: tuple[tuple[str, str, str, str], ...] = (
    ("dcm_qa_nih/In/20180918GE", "01", "1", "GE DISCOVERY MR750, 4 EPI series"),
    ("dcm_qa_nih/In/20180918Si", "02", "1", "Siemens Skyra E11, 4 EPI mosaics"),
    ("dcm_qa_philips_magdeburg/In/Magdeburg_2014", "03", "1", "Philips Achieva, EPI"),
    ("dcm_qa_enh_subset/In/Siemens", "04", "1", "Siemens Vida XA10 enhanced multi-frame"),
    ("dcm_qa_enh_subset/In/Philips", "05", "1", "Philips enhanced B0 field map"),
    ("mne_testfiles/brainvision", "06", "1", "BrainVision EEG, 32 channels"),
    ("mne_testfiles/edf", "07", "1", "EDF EEG, 139 channels"),
    ("mne_testfiles/fif", "08", "1", "CTF 275 MEG saved as FIF, no digitisation"),
)
#: the study's own mapping of SeriesDescription to task labels (what an operator writes)
DEMO_STUDY_SETTINGS = """# Study settings for windl (demo).

[convert.tasks]
# all EPI series of the demo data are resting-state or phantom runs
"(?i)epi|fmri|rest|bold" = "rest"

[convert.recording_tasks]
# the EEG/MEG test recordings are all called test*
"(?i)^test" = "rest"
"""


@dataclass
class DemoResult:
    site: Site
    validation: ValidationReport


def shared_data() -> Path:
    path = Path(os.environ.get(DATA_ENV, REPO_ROOT.parent / "shared" / "data"))
    if not (path / "dcm_qa_nih").is_dir():
        raise BadInput(f"shared data not found (set ${DATA_ENV})", path)
    return path.resolve()


def _phenotype_table(data: Path, scratch: Path, subjects: list[str]) -> Path:
    """A folder with a phenotype table for the demo subjects and its data dictionary.

    The scanner test data carry no participant measures, so the demo borrows the
    Edinburgh handedness scores of the same subject labels from the public BIDS example
    ``bids_examples/7t_trt``, and its data dictionary says so.
    """
    source = data / "bids_examples" / "7t_trt" / "participants.tsv"
    rows = [line.split("\t") for line in source.read_text(encoding="utf-8").splitlines()]
    column = rows[0].index("handedness")
    scores = {r[0]: r[column] for r in rows[1:]}
    table = scratch / "handedness.tsv"
    lines = ["participant_id\thandedness"]
    lines += [f"sub-{s}\t{scores.get(f'sub-{s}', 'n/a')}" for s in sorted(set(subjects))]
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dictionary = {
        "handedness": {
            "Description": "Edinburgh handedness inventory laterality quotient. Demo values: "
            "copied for the same subject labels from bids_examples/7t_trt/participants.tsv.",
            "Units": "laterality quotient (-100 left to 100 right)",
        }
    }
    table.with_suffix(".json").write_text(json.dumps(dictionary, indent=2) + "\n")
    return scratch


def build_demo(directory: Path, say: Callable[[str], None] = print) -> DemoResult:
    """Build the demo site in ``directory``: ingest → convert → add → validate.

    Run again on the same folder, it reuses the site and changes nothing (every step is
    idempotent), so ``make demo`` can be repeated.
    """
    data = shared_data()
    say(f"== site {directory}")
    if (directory / SITE_FILE).exists():
        site = load_site(directory)
    else:
        site = init_site(directory, name="windl demo site")
    say(f"== study {STUDY}")
    study = get_study(site, STUDY) if (site.studies / STUDY).exists() else create_study(site, STUDY)
    settings = study.code / "study.toml"
    if settings.read_text(encoding="utf-8") != DEMO_STUDY_SETTINGS:
        settings.write_text(DEMO_STUDY_SETTINGS, encoding="utf-8")
        datasets.save(study.root, ["code/study.toml"], "demo: task labels for the EPI series")
    for source, subject, session, what in SESSIONS:
        result = ingest(site, STUDY, data / source, subject, session)
        say(
            f"== ingest sub-{subject} ses-{session} ({what}): {result.added} files, "
            f"{len(result.series)} DICOM series, {len(result.recordings)} EEG/MEG recordings"
        )
    say("== convert (MRI: heudiconv + dcm2niix; EEG/MEG: mne-bids; each under datalad run)")
    results = convert(site, STUDY)
    for r in results:
        converted = [s for s in r.series if s["status"] == "converted"]
        parts = [f"{len(converted)}/{len(r.series)} series"] if r.series else []
        parts += [f"{len(r.recordings)} EEG/MEG recordings"] if r.recordings else []
        say(f"   {r.prefix}: {r.status}, {', '.join(parts)} to BIDS")
        for s in r.series:
            if s["status"] != "converted":
                say(f"     not converted: series {s['series']} {s['description']}: {s['reason']}")
    raise_for_failures(results)
    with tempfile.TemporaryDirectory(prefix="windl-demo-") as scratch:
        folder = _phenotype_table(data, Path(scratch), [s[1] for s in SESSIONS])
        added = add(site, STUDY, folder, "phenotype")
    say(f"== add phenotype: {', '.join(added.added) or 'already there, unchanged'}")
    say("== validate (bids-validator-deno)")
    report = validate(site, STUDY)
    say(f"   {report.n_errors} errors, {report.n_warnings} warnings")
    say(f"== done: {get_study(site, STUDY).root}")
    return DemoResult(site=site, validation=report)
