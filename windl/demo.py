"""``windl demo DIR``: a demo site built from the real public data in ``../shared/data``.

Each step calls the same library functions as the CLI; the demo only chooses the inputs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from windl import datasets
from windl.add import add
from windl.bids_import import import_bids
from windl.catalog.access import Viewer
from windl.catalog.index import IndexResult, index_site
from windl.catalog.query import parse_query
from windl.catalog.search import SearchPage, search_site
from windl.config import REPO_ROOT, SITE_FILE, Site, load_site
from windl.consent import import_consent
from windl.convert import convert, raise_for_failures
from windl.errors import BadInput
from windl.ingest import ingest
from windl.methods import reproduce, study_methods, write_methods
from windl.qc import raise_for_failures as raise_for_qc_failures
from windl.qc import run_qc
from windl.release import AuditResult, ReleaseRefused, ReleaseResult, audit_release, build_release
from windl.release.review import approve as approve_texts
from windl.share.doi import mint_doi
from windl.share.publish import PublishResult, publish
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

[vocabulary]
# acquisition labels dcm2niix derives from the scanners' sequence names, reviewed
acq = ["epfid2", "SKGRFEEPI", "SSRMFFE"]

[deid]
# PS3.15 Annex E options on top of the Basic Profile
retain_modified_dates = true
retain_patient_characteristics = true
clean_descriptors = true

[release]
# members get the de-identified raw DICOM too
include_dicom = ["members"]
"""
#: the study's own description (an operator writes these when the study starts)
DEMO_DESCRIPTION = {
    "Name": "windl demo study: MRI from three vendors, EEG and MEG",
    "BIDSVersion": "1.10.0",
    "DatasetType": "raw",
    "License": "CC0",
    "Authors": ["windl demo site"],
    "Acknowledgements": "Scanner and recording data from the public dcm_qa_nih, "
    "dcm_qa_philips_magdeburg, dcm_qa_enh, MNE testing data and pydeface collections.",
    "ReferencesAndLinks": ["https://github.com/neurolabusc/dcm_qa_nih"],
}
DEMO_README = """# windl demo study

Scans from public scanner quality-assurance collections (GE, Siemens, Philips,
enhanced DICOM), EEG (BrainVision, EDF), MEG (CTF saved as FIF) and one anatomical head
image, brought through windl from ingest to release.
"""
#: the T1w head with a face (pydeface's test image), imported as BIDS for the defacing step
T1W_SUBJECT = "09"
#: participants who consented to external sharing; everyone consented to members
EXTERNAL_CONSENT = ("02", "05", "06", "08", T1W_SUBJECT)
RELEASE_VERSION = "1.0.0"
#: what the demo searches for once the releases are published
DEMO_SEARCH = "rest modality:eeg"


@dataclass
class DemoResult:
    site: Site
    validation: ValidationReport
    releases: list[ReleaseResult]
    audits: list[AuditResult]
    published: list[PublishResult]
    catalog: IndexResult | None = None
    search: SearchPage | None = None


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
            # a number the study lead reviewed: released as it is
            "WindlRelease": "keep",
        }
    }
    table.with_suffix(".json").write_text(json.dumps(dictionary, indent=2) + "\n")
    return scratch


def _t1w_dataset(data: Path, scratch: Path) -> Path:
    """A one-image BIDS dataset holding pydeface's T1w test head (face intact)."""
    source = data / "pydeface_t1w_face"
    root = scratch / "t1w"
    anat = root / f"sub-{T1W_SUBJECT}" / "ses-1" / "anat"
    anat.mkdir(parents=True)
    stem = f"sub-{T1W_SUBJECT}_ses-1_T1w"
    shutil.copyfile(source / "ds000031_sub-01_ses-006_run-001_T1w.nii.gz", anat / f"{stem}.nii.gz")
    shutil.copyfile(source / "ds000031_sub-01_ses-006_run-001_T1w.json", anat / f"{stem}.json")
    description = {
        "Name": "T1w head from pydeface (OpenNeuro ds000031)",
        "BIDSVersion": "1.10.0",
        "License": "CC0",
    }
    (root / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    (root / "README").write_text("One T1w head with the face intact, for the defacing step.\n")
    (root / "participants.tsv").write_text(
        f"participant_id\tage\tsex\nsub-{T1W_SUBJECT}\tn/a\tn/a\n"
    )
    return root


def _consent_table(scratch: Path, subjects: list[str]) -> Path:
    """The demo's consent forms: everyone to members, some also to external."""
    table = scratch / "consent.csv"
    lines = ["participant_id,scopes,form_version,date"]
    for subject in sorted(set(subjects)):
        scopes = "members;external" if subject in EXTERNAL_CONSENT else "members"
        lines.append(f"sub-{subject},{scopes},demo-1,2026-11-01")
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return table


def build_demo(directory: Path, say: Callable[[str], None] = print) -> DemoResult:
    """Build the demo site in ``directory``: ingest → convert → add → validate → qc → release →
    audit.

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
    wanted = {
        "code/study.toml": DEMO_STUDY_SETTINGS,
        "dataset_description.json": json.dumps(DEMO_DESCRIPTION, indent=2) + "\n",
        "README": DEMO_README,
    }
    changed = []
    for rel, text in wanted.items():
        if (study.root / rel).read_text(encoding="utf-8") != text:
            (study.root / rel).write_text(text, encoding="utf-8")
            changed.append(rel)
    if changed:
        datasets.save(study.root, changed, "demo: study description, task labels, release settings")
    # the demo's README and description fields are the demo's own text: its "study lead"
    # approves them for release (windl release review demo --approve)
    approve_texts(get_study(site, STUDY))
    for source, subject, session, what in SESSIONS:
        result = ingest(site, STUDY, data / source, subject, session)
        say(
            f"== ingest sub-{subject} ses-{session} ({what}): {result.added} files, "
            f"{len(result.series)} DICOM series, {len(result.recordings)} EEG/MEG recordings "
            f"into the subject's dataset sourcedata/sub-{subject}"
        )
    say(
        "== convert --jobs 2 (MRI: heudiconv + dcm2niix; EEG/MEG: mne-bids; each under "
        "datalad run, two sessions at a time, records replayed in session order)"
    )
    results = convert(site, STUDY, jobs=2)
    for r in results:
        converted = [s for s in r.series if s["status"] == "converted"]
        parts = [f"{len(converted)}/{len(r.series)} series"] if r.series else []
        parts += [f"{len(r.recordings)} EEG/MEG recordings"] if r.recordings else []
        say(f"   {r.prefix}: {r.status}, {', '.join(parts)} to BIDS")
        for s in r.series:
            if s["status"] != "converted":
                say(f"     not converted: series {s['series']} {s['description']}: {s['reason']}")
    raise_for_failures(results)
    subjects = [s[1] for s in SESSIONS] + [T1W_SUBJECT]
    with tempfile.TemporaryDirectory(prefix="windl-demo-") as scratch:
        folder = _phenotype_table(data, Path(scratch), subjects)
        added = add(site, STUDY, folder, "phenotype")
        say(f"== add phenotype: {', '.join(added.added) or 'already there, unchanged'}")
        imported = import_bids(site, STUDY, _t1w_dataset(data, Path(scratch)))
        say(
            f"== import sub-{T1W_SUBJECT} T1w (a head with a face): "
            + (f"{len(imported.added)} files" if imported.added else "already there, unchanged")
        )
        say("== validate (bids-validator-deno)")
        report = validate(site, STUDY)
        say(f"   {report.n_errors} errors, {report.n_warnings} warnings")
        change = import_consent(site, STUDY, _consent_table(Path(scratch), subjects))
    say(
        f"== consent: {len(change.changed)} records imported"
        if change.changed
        else "== consent: registry unchanged"
    )
    say("== qc (MRIQC-style metrics, EEG/MEG with MNE; under datalad run)")
    checked = run_qc(site, STUDY)
    say(
        f"   {checked.recordings} files"
        + (f", commit {(checked.commit or '')[:10]}" if checked.changed else ", unchanged")
    )
    say(f"   dataset report: {checked.path / 'group_qc.html'}")
    raise_for_qc_failures(checked)  # the demo's data are known to work: a failure is a bug
    releases, audits, published_results = [], [], []
    for scope in ("members", "external"):
        built = build_release(site, STUDY, scope, RELEASE_VERSION, say=say)
        releases.append(built)
        say(
            f"   {built.path}: {built.participants} participants, {built.files} files "
            f"({built.made} made, {built.reused} reused)" + ("" if built.changed else ", unchanged")
        )
        release_qc = Path(built.path) / "derivatives" / "qc" / "group_qc.html"
        if release_qc.is_file():
            say(f"   QC report of the release: {release_qc}")
        say(f"== audit {scope} {RELEASE_VERSION}")
        audit = audit_release(Path(built.path), site=site)
        audits.append(audit)
        say(f"   {'PASSED' if audit.passed else 'FAILED'}: {audit.html}")
        for finding in audit.findings[:10]:
            say(f"     {finding['check']}: {finding['path']}: {finding['message']}")
        if not audit.passed:
            raise ReleaseRefused(f"the demo's {scope} release failed the audit: {audit.html}")
        if scope == "external":
            minted = mint_doi(site, STUDY, scope, RELEASE_VERSION)
            state = "registered" if minted.registered else f"not registered ({minted.reason})"
            say(f"== doi {minted.doi}: DataCite metadata valid, {state}")
            say(f"   {minted.metadata_path}")
        published = publish(site, STUDY, scope, RELEASE_VERSION, say=say)
        published_results.append(published)
        say(f"   {published.annexed_files} annexed files in the store")
        say(f"   datalad clone '{published.clone_url}'")
    say("== catalog index (studies and releases, from git; only changed datasets are read)")
    indexed = index_site(site)
    say(
        f"   {indexed.datasets} datasets, read: {', '.join(indexed.read)}"
        if indexed.changed
        else f"   {indexed.datasets} datasets, nothing changed"
    )
    found = search_site(site, parse_query(DEMO_SEARCH), Viewer("external"))
    say(f"== search {DEMO_SEARCH!r} as an external user: {found.total} dataset(s)")
    for r in found.results:
        say(
            f"   {r.id} v{r.version}: {r.name}; {r.n_participants} participants; "
            f"{', '.join(r.modalities)}; suffixes {', '.join(r.suffixes)}"
        )
    say(f"   windl search '{DEMO_SEARCH}' --as-external --site {site.root}")
    say("== methods (from the datalad run records) and reproduction of every conversion")
    md, _ = write_methods(study_methods(site, STUDY), site.root / "reports" / "methods" / STUDY)
    say(f"   {md}")
    reproduced = reproduce(site, STUDY)
    counts = reproduced.summary()
    say(
        f"   {counts['files']} conversion outputs of {counts['runs']} runs rerun: "
        + ("all identical" if reproduced.all_identical else "NOT all identical")
        + f" ({reproduced.html_path})"
    )
    say(f"== done: {get_study(site, STUDY).root}")
    say(f"   the portal (search, DUA, tokens, clone/get over HTTP): windl serve --site {site.root}")
    say(f"   the DICOM receiver (routing rules in windl.toml): windl receive --site {site.root}")
    return DemoResult(
        site=site,
        validation=report,
        releases=releases,
        audits=audits,
        published=published_results,
        catalog=indexed,
        search=found,
    )
