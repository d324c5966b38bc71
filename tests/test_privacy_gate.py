"""The privacy gate, tried as an attacker would (issue 16, "what must be shown").

Identifiers are planted in copies of real data (MRI of three vendors, BrainVision, EDF+,
FIF, a T1w, tables, study text, file and folder names, the operator's git identity); the
whole path then runs through the real CLI (site init, study create, ingest, convert,
import, add, consent, release build, audit) once with the Basic Profile and once with the
demo's ``[deid]`` options. Each release is then scanned as an attacker would: every file's
bytes, gunzipped, decoded DICOM (every element, sequences, private tags), annexed content,
file and folder names, every git object, refs.

One test per planted place and release: the place's marker is nowhere in the release, or
the build or the audit refused it (a non-zero exit and a finding or error naming the file
that holds it). The markers are distinct (``Qx7P<nn>Zv``) so a failure names its place;
most also carry a realistic surname (:data:`NAME`).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_site, run_windl, study_path

#: a realistic surname, planted next to the markers of free text (descriptions, comments,
#: tables, annotations, names of files)
NAME = "Wolfeschlegel"
#: the surname of the participant's identity fields (PatientName, EDF patient field, FIF
#: subject_info): the audit gathers these values from the study, so :data:`NAME` must not be
#: among them, or its known-value search would find the free-text places for free
IDENTITY_NAME = "Oberhuber"

#: every planted place, in order; its marker is ``Qx7P<index>Zv``
VENDOR_TAGS = (
    "PatientName",
    "PatientID",
    "OtherPatientNames",
    "PatientComments",
    "AdditionalPatientHistory",
    "StudyDescription",
    "SeriesDescription",
    "ProtocolName",
    "ImageComments",
    "PerformedProcedureStepDescription",
    "RequestedProcedureDescription",
    "CommentsOnThePerformedProcedureStep",
    "ReferringPhysicianName",
    "OperatorsName",
    "DerivationDescription",
    "StationName",
    "private LO",
    "private UN",
    "RequestAttributesSequence/ScheduledProcedureStepDescription",
    "OverlayDescription",
    "OverlayLabel",
)
VENDORS = ("siemens", "ge", "philips")
#: planted after the first releases, then version 1.0.1 of the basic members release is
#: built: an undeclared column must block that build (naming file and column)
LATE_PLACES = (
    "late.participants.tsv undeclared column",
    "late.phenotype undeclared column (generated dictionary, Levels)",
    "late.phenotype undeclared column name",
)
PLACES: tuple[str, ...] = (
    *(f"dicom.{v}.{t}" for v in VENDORS for t in VENDOR_TAGS),
    "dicom.siemens.SeriesDescription→task label",
    "dicom.siemens.file name",
    "dicom.siemens.source folder name",
    "dicom.siemens.README-Series.txt (misc file)",
    "pixels.BurnedInAnnotation YES",
    "pixels.DERIVED\\SECONDARY without flag",
    "names.session label (--session)",
    "brainvision.vhdr ; comment",
    "brainvision.vhdr [Comment]",
    "brainvision.vmrk marker description → trial_type",
    "brainvision.recording file name → task label",
    "edf.patient field",
    "edf.recording field",
    "edf.EDF+ annotation",
    "fif.subject_info",
    "fif.experimenter",
    "fif.description",
    "fif.annotation",
    "fif.proj_name",
    "nifti.descrip",
    "nifti.aux_file",
    "nifti.intent_name",
    "nifti.extension",
    "sidecar.unknown key value",
    "sidecar.unknown key name",
    "sidecar.InstitutionName",
    "participants.tsv column declared drop",
    "phenotype.column declared drop",
    "phenotype.cell outside the declared Levels",
    "phenotype.text in a number column",
    "beh.column declared drop",
    *LATE_PLACES,
    "text.study README",
    "text.study CHANGES",
    "text.dataset_description Acknowledgements",
    "text.dataset_description unknown key",
    "consent.form version",
    "git.author name",
    "git.author email",
    "git.committer name",
)
MARKERS: dict[str, str] = {place: f"Qx7P{i:02d}Zv" for i, place in enumerate(PLACES)}
_MARKER_RE = re.compile(rb"qx7p(\d\d)zv")
#: the first pixel value of each stamp (absent from the series before stamping)
PIXEL_PLACES = ("pixels.BurnedInAnnotation YES", "pixels.DERIVED\\SECONDARY without flag")


def m(place: str) -> str:
    return MARKERS[place]


def text(place: str) -> str:
    """The planted text: the surname and the place's marker."""
    return f"{NAME} {m(place)}"


# ----------------------------------------------------------------------------- planting
SETTINGS_BASIC = """
[convert.tasks]
"(?i)epi" = "rest"

[convert.recording_tasks]
"(?i)^test" = "rest"

[release]
include_dicom = ["members"]
"""
SETTINGS_DEMO_DEID = """
[deid]
retain_modified_dates = true
retain_patient_characteristics = true
clean_descriptors = true
"""


def _git_env() -> dict[str, str]:
    """The operator's git identity, typed by a person (three planted places)."""
    return {
        "GIT_AUTHOR_NAME": text("git.author name"),
        "GIT_AUTHOR_EMAIL": f"{m('git.author email').lower()}@example.org",
        "GIT_COMMITTER_NAME": text("git.committer name"),
        "GIT_COMMITTER_EMAIL": "operator@example.org",
    }


@contextmanager
def _operator_env() -> Iterator[None]:
    """The operator's environment for in-process DataLad saves (restored afterwards)."""
    saved = {k: os.environ.get(k) for k in _git_env()}
    os.environ.update(_git_env())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _windl(*args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_windl(*map(str, args), check=check, env=_git_env())


def _set_text(ds: object, keyword: str, value: str) -> None:
    from pydicom.datadict import dictionary_VR

    vr = dictionary_VR(keyword)
    setattr(ds, keyword, value[:16] if vr in ("SH", "CS") else value)


def _plant_vendor(ds: object, vendor: str) -> None:
    """Every tag of :data:`VENDOR_TAGS` of one vendor's series gets its marker."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    def place(tag: str) -> str:
        return f"dicom.{vendor}.{tag}"

    for tag in VENDOR_TAGS:
        if " " in tag or "/" in tag or tag.startswith("Overlay"):
            continue
        value = text(place(tag))
        if tag == "SeriesDescription":
            value = f"EPI {value}"  # the study maps it to task rest: the label is not from it
        if tag in ("PatientName", "OtherPatientNames"):
            value = f"{IDENTITY_NAME}^{m(place(tag))}"
        elif tag.endswith("Name") and tag != "StationName":
            value = f"{NAME}^{m(place(tag))}"
        if tag == "StationName":
            value = m(place(tag))
        if tag == "PatientID":
            value = m(place(tag))
        _set_text(ds, tag, value)
    block = ds.private_block(0x0029, "WINDL PLANTED", create=True)
    block.add_new(0x10, "LO", text(place("private LO")))
    ds.add_new(0x00291120, "UN", text(place("private UN")).encode() + b" ")
    request = Dataset()
    request.ScheduledProcedureStepDescription = text(
        place("RequestAttributesSequence/ScheduledProcedureStepDescription")
    )
    request.RequestedProcedureID = "RP1"
    ds.RequestAttributesSequence = Sequence([request])
    # an overlay plane: the description and label are typed by people
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60000022, "LO", text(place("OverlayDescription")))
    ds.add_new(0x60001500, "LO", text(place("OverlayLabel")))
    ds.add_new(0x60003000, "OW", b"\x00" * 8)


def _stamp(ds: object, value: int, words: str) -> int:
    """Draw ``words`` into the pixels with ``value``; return how many pixels it set."""
    from PIL import Image, ImageDraw, ImageFont

    pixels = ds.pixel_array.copy()
    mask = Image.new("L", (pixels.shape[1], pixels.shape[0]), 0)
    draw = ImageDraw.Draw(mask)
    font = ImageFont.load_default(size=18)
    for row, line in enumerate(words.split("\n")):
        draw.text((4, 4 + 22 * row), line, fill=255, font=font)
    on = np.asarray(mask) > 127
    pixels[on] = value
    ds.PixelData = pixels.astype(pixels.dtype).tobytes()
    return int(on.sum())


def _stamp_value(files: list[Path], taken: int) -> int:
    """A pixel value that none of ``files`` holds (so the stamp is recognisable), above
    ``taken`` (so each stamp has its own value)."""
    import pydicom

    seen = set()
    for f in files:
        seen |= set(np.unique(pydicom.dcmread(f).pixel_array).tolist())
    return next(v for v in range(taken + 3, 4000) if not seen & {v - 1, v, v + 1})


def _plant_siemens(src: Path, dst: Path) -> dict[str, tuple[int, int]]:
    """Siemens mosaics: mr_0006 every tag, mr_0003 a label from SeriesDescription,
    mr_0004/mr_0005 text burned into the pixels; file and folder names; a misc file."""
    import pydicom

    stamps: dict[str, tuple[int, int]] = {}
    for series in ("mr_0003", "mr_0004", "mr_0005", "mr_0006"):
        out = dst / series
        out.mkdir(parents=True)
        files = sorted((src / series).glob("*.dcm"))
        value = _stamp_value(files, max([3000, *(v for v, _ in stamps.values())]))
        for f in files:
            ds = pydicom.dcmread(f)
            name = f.name
            if series == "mr_0003":
                ds.SeriesDescription = text("dicom.siemens.SeriesDescription→task label")
                name = f"{m('dicom.siemens.file name')}-{f.name}"
            elif series == "mr_0004":
                ds.BurnedInAnnotation = "YES"
                place = "pixels.BurnedInAnnotation YES"
                stamps[place] = (value, _stamp(ds, value, f"{NAME}\n{m(place)}"))
            elif series == "mr_0005":
                ds.ImageType = ["DERIVED", "SECONDARY", "M", "ND", "MOSAIC"]
                place = "pixels.DERIVED\\SECONDARY without flag"
                stamps[place] = (value, _stamp(ds, value, f"{NAME}\n{m(place)}"))
            else:
                _plant_vendor(ds, "siemens")
            ds.save_as(out / name)
        readme = (src / series / "README-Series.txt").read_text(errors="replace")
        (out / "README-Series.txt").write_text(
            readme + f"\nOperator note: {text('dicom.siemens.README-Series.txt (misc file)')}\n"
        )
    return stamps


def _plant_series(src: Path, dst: Path, vendor: str) -> None:
    import pydicom

    dst.mkdir(parents=True)
    for f in sorted(p for p in src.iterdir() if p.suffix == ".dcm"):
        ds = pydicom.dcmread(f)
        _plant_vendor(ds, vendor)
        ds.save_as(dst / f.name)


def _plant_brainvision(src: Path, dst: Path) -> None:
    """A recording named by the operator, with comments and a typed marker description."""
    dst.mkdir(parents=True)
    stem = f"{NAME}{m('brainvision.recording file name → task label')}"
    vhdr = (src / "test.vhdr").read_text(encoding="utf-8")
    vhdr = vhdr.replace("DataFile=test.eeg", f"DataFile={stem}.eeg")
    vhdr = vhdr.replace("MarkerFile=test.vmrk", f"MarkerFile={stem}.vmrk")
    vhdr = vhdr.replace(
        "; Data created by the Vision Recorder",
        f"; Data created by the Vision Recorder\n; {text('brainvision.vhdr ; comment')}",
    )
    vhdr = vhdr.replace(
        "[Comment]\n", f"[Comment]\nSubject {text('brainvision.vhdr [Comment]')}, calm.\n", 1
    )
    (dst / f"{stem}.vhdr").write_text(vhdr, encoding="utf-8")
    shutil.copyfile(src / "test.eeg", dst / f"{stem}.eeg")
    vmrk = (src / "test.vmrk").read_text(encoding="utf-8")
    vmrk = vmrk.replace("DataFile=test.eeg", f"DataFile={stem}.eeg")
    number = len(re.findall(r"^Mk\d+=", vmrk, re.MULTILINE)) + 1
    desc = text("brainvision.vmrk marker description → trial_type")
    vmrk = vmrk.rstrip("\n") + f"\nMk{number}=Comment,{desc} coughed,5000,1,0\n"
    (dst / f"{stem}.vmrk").write_text(vmrk, encoding="utf-8")


def _field(value: str, size: int) -> bytes:
    return value.encode("ascii")[:size].ljust(size)


def _plant_edf(src: Path, dst: Path) -> None:
    """EDF+ header fields and one annotation (a TAL in the first data record)."""
    dst.mkdir(parents=True)
    raw = bytearray(src.read_bytes())
    patient = f"X X X {IDENTITY_NAME}_{m('edf.patient field')}"
    raw[8:88] = _field(patient, 80)
    recording = f"Startdate 29-APR-2014 X {NAME}_{m('edf.recording field')} X"
    raw[88:168] = _field(recording, 80)
    n = int(raw[252:256])
    labels = [raw[256 + 16 * i : 256 + 16 * (i + 1)].decode().strip() for i in range(n)]
    # per signal: label 16, transducer 80, dimension, min/max physical/digital 5 x 8,
    # prefiltering 80, then the samples per record
    at = 256 + n * (16 + 80 + 5 * 8 + 80)
    samples = [int(raw[at + 8 * i : at + 8 * (i + 1)]) for i in range(n)]
    header_bytes = int(raw[184:192])
    ann = labels.index("EDF Annotations")
    start = header_bytes + 2 * sum(samples[:ann])
    slot = raw[start : start + 2 * samples[ann]]
    end = slot.index(b"\x14\x00") + 2  # after the time-keeping TAL
    tal = f"+0.5\x150\x14{NAME} {m('edf.EDF+ annotation')}\x14\x00".encode()
    assert end + len(tal) <= len(slot), "no room for the annotation"
    slot[end : end + len(tal)] = tal
    raw[start : start + len(slot)] = slot
    (dst / "test.edf").write_bytes(bytes(raw))


def _plant_fif(src: Path, dst: Path) -> None:
    import mne

    dst.mkdir(parents=True)
    raw = mne.io.read_raw_fif(src, preload=True, verbose="error")
    with raw.info._unlock():
        raw.info["subject_info"] = {
            "id": 1,
            "his_id": m("fif.subject_info"),
            "last_name": IDENTITY_NAME,
            "first_name": m("fif.subject_info"),
        }
        raw.info["experimenter"] = f"{IDENTITY_NAME} {m('fif.experimenter')}"
        raw.info["description"] = text("fif.description")
        raw.info["proj_name"] = m("fif.proj_name")
    raw.set_annotations(
        mne.Annotations([0.1], [0.1], [text("fif.annotation")], orig_time=raw.info["meas_date"])
    )
    raw.save(dst / "test_ctf_comp_raw.fif", verbose="error")


def _t1w_dataset(src: Path, root: Path) -> None:
    """A BIDS dataset: the T1w with planted NIfTI header fields and sidecar keys, and a
    participants table with a free-text column."""
    import nibabel as nib

    anat = root / "sub-07" / "ses-1" / "anat"
    anat.mkdir(parents=True)
    img = nib.load(src / "ds000031_sub-01_ses-006_run-001_T1w.nii.gz")
    header = img.header
    header["descrip"] = text("nifti.descrip").encode()
    header["aux_file"] = m("nifti.aux_file").encode()
    header["intent_name"] = m("nifti.intent_name").encode()
    header.extensions.append(
        nib.nifti1.Nifti1Extension(6, f"{text('nifti.extension')}\x00".encode())
    )
    nib.save(nib.Nifti1Image(img.dataobj, img.affine, header), anat / "sub-07_ses-1_T1w.nii.gz")
    sidecar = json.loads((src / "ds000031_sub-01_ses-006_run-001_T1w.json").read_text())
    sidecar["OperatorRemark"] = text("sidecar.unknown key value")
    sidecar[m("sidecar.unknown key name")] = "yes"
    sidecar["InstitutionName"] = text("sidecar.InstitutionName")
    (anat / "sub-07_ses-1_T1w.json").write_text(json.dumps(sidecar, indent=2))
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "head", "BIDSVersion": "1.10.0", "License": "CC0"})
    )
    (root / "participants.tsv").write_text(
        f"participant_id\tage\tnotes\nsub-07\t31\t{text('participants.tsv column declared drop')}\n"
    )
    (root / "participants.json").write_text(
        json.dumps(
            {
                "age": {"Description": "age", "Units": "year"},
                "notes": {"Description": "operator's notes", "WindlRelease": "drop"},
            }
        )
    )


SUBJECTS = ("01", "02", "03", "04", "05", "06", "07")


def _tables(folder: Path) -> tuple[Path, Path]:
    """A phenotype table with its data dictionary (every column declared, with a release
    class) and a beh table with its dictionary."""
    pheno = folder / "phenotype"
    pheno.mkdir()
    rows = ["participant_id\tgroup\tscore\tremarks"]
    for i, s in enumerate(SUBJECTS):
        group = ("patient", "control")[i % 2]
        if i == 1:
            group = text("phenotype.cell outside the declared Levels")
        score = m("phenotype.text in a number column") if i == 2 else str(10 + i)
        remark = text("phenotype.column declared drop") if i == 0 else "none"
        rows.append(f"sub-{s}\t{group}\t{score}\t{remark}")
    (pheno / "clinical.tsv").write_text("\n".join(rows) + "\n")
    dictionary = {
        "group": {
            "Description": "study group",
            "Levels": {"patient": "patient", "control": "control"},
            "WindlRelease": "keep",
        },
        "score": {"Description": "symptom score", "Units": "points", "WindlRelease": "keep"},
        "remarks": {"Description": "remarks of the examining physician", "WindlRelease": "drop"},
    }
    (pheno / "clinical.json").write_text(json.dumps(dictionary, indent=2))
    beh = folder / "beh.tsv"
    beh.write_text(
        "onset\tduration\tresponse_text\n"
        f"1.0\t0.5\t{text('beh.column declared drop')}\n2.0\t0.5\tfine\n"
    )
    (folder / "beh.json").write_text(
        json.dumps(
            {"response_text": {"Description": "what the participant said", "WindlRelease": "drop"}}
        )
    )
    return pheno, beh


def _late_tables(folder: Path, study: Path) -> tuple[Path, str]:
    """A phenotype table without a dictionary (``windl add`` generates one, with Levels), and
    a column an operator added to the study's participants.tsv by hand."""
    pheno = folder / "late-phenotype"
    pheno.mkdir()
    rows = [f"participant_id\tcomment\t{m('late.phenotype undeclared column name')}"]
    rows += [
        f"sub-{s}\t"
        + (text("late.phenotype undeclared column (generated dictionary, Levels)") if i else "ok")
        + "\t1"
        for i, s in enumerate(SUBJECTS)
    ]
    (pheno / "intake.tsv").write_text("\n".join(rows) + "\n")
    table = study / "participants.tsv"
    lines = table.read_text().splitlines()
    lines[0] += "\tcomment_by_operator"
    lines[1:] = [
        line + "\t" + (text("late.participants.tsv undeclared column") if i == 0 else "n/a")
        for i, line in enumerate(lines[1:])
    ]
    table.write_text("\n".join(lines) + "\n")
    return pheno, "participants.tsv"


def _study_text(study: Path) -> list[str]:
    """The study's README, CHANGES and description, as a person writes them."""
    readme = study / "README"
    readme.write_text(
        readme.read_text() + f"\nPilot scanned with {text('text.study README')} on site.\n"
    )
    changes = study / "CHANGES"
    changes.write_text(
        changes.read_text() + f"\n  - participant {text('text.study CHANGES')} withdrew\n"
    )
    description = json.loads((study / "dataset_description.json").read_text())
    description["Acknowledgements"] = (
        f"We thank {text('text.dataset_description Acknowledgements')}."
    )
    description["ScannerOperatorNote"] = text("text.dataset_description unknown key")
    (study / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    return ["README", "CHANGES", "dataset_description.json"]


@dataclass
class Planted:
    """A site whose study1 holds every planted place, converted and consented."""

    site: Path
    #: pixel place → (stamp value, pixels stamped per image)
    stamps: dict[str, tuple[int, int]]
    steps: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Planted:
    from windl.datasets import save

    base = tmp_path_factory.mktemp("planted")
    src = base / "sources"
    siemens = src / f"{NAME}_{m('dicom.siemens.source folder name')}_scan"
    stamps = _plant_siemens(data / "dcm_qa_nih/In/20180918Si", siemens)
    _plant_series(data / "dcm_qa_nih/In/20180918GE/mr_0004", src / "ge" / "mr_0004", "ge")
    _plant_series(
        data / "dcm_qa_philips_magdeburg/In/Magdeburg_2014/fmri", src / "philips", "philips"
    )
    _plant_brainvision(data / "mne_testfiles/brainvision", src / "bv")
    _plant_edf(data / "mne_testfiles/edf/test.edf", src / "edf")
    _plant_fif(data / "mne_testfiles/fif/test_ctf_comp_raw.fif", src / "fif")
    _t1w_dataset(data / "pydeface_t1w_face", src / "t1w")
    pheno, beh = _tables(src)

    root = base / "site"
    _windl("site", "init", root)
    _windl("study", "create", "study1", "--site", root)
    study = study_path(root)
    (study / "code" / "study.toml").write_text(SETTINGS_BASIC, encoding="utf-8")
    with _operator_env():
        save(study, ["code/study.toml", *_study_text(study)], "test: settings and study text")
    site = ("--site", root)
    sessions = {
        "01": siemens,
        "02": src / "ge",
        "03": src / "philips",
        "04": src / "bv",
        "05": src / "edf",
        "06": src / "fif",
    }
    for subject, folder in sessions.items():
        session = m("names.session label (--session)") if subject == "03" else "1"
        _windl("ingest", "study1", folder, "--subject", subject, "--session", session, *site)
    result = Planted(root, stamps)
    result.steps["convert"] = _windl("convert", "study1", *site, check=False)
    _windl("import", "study1", src / "t1w", *site)
    _windl("add", "study1", pheno, "--as", "phenotype", *site)
    _windl(
        "add", "study1", beh, "--as", "beh", "--subject", "04", "--session", "1",
        "--task", "rest", *site,
    )  # fmt: skip
    consent = base / "consent.csv"
    lines = ["participant_id,scopes,form_version,date"]
    lines += [f"sub-{s},members;external,{m('consent.form version')},2026-11-01" for s in SUBJECTS]
    consent.write_text("\n".join(lines) + "\n")
    _windl("consent", "import", "study1", consent, *site)
    return result


# ----------------------------------------------------------------------------- the scan
@dataclass
class Scan:
    """What an attacker finds in one release."""

    built: subprocess.CompletedProcess[str]
    audit: subprocess.CompletedProcess[str] | None
    findings: list[dict[str, str]]
    #: marker → where it was found ("file:<rel>", "name:<rel>", "dicom:<rel>", "git:<type>")
    found: dict[str, set[str]]
    name_found: set[str]
    #: pixel place → files whose pixels hold the stamp
    stamped: dict[str, set[str]]


def _markers_in(blob: bytes) -> set[str]:
    return {f"Qx7P{n.decode()}Zv" for n in set(_MARKER_RE.findall(blob.lower()))}


def _decoded_dicom(raw: bytes) -> bytes | None:
    """Every element of a DICOM file as text: names, values, sequences, private tags."""
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(raw), force=True)
        parts = [repr(ds.file_meta)] if hasattr(ds, "file_meta") else []
        for elem in ds.iterall():
            value = elem.value
            if isinstance(value, bytes):
                parts.append(value.decode("latin-1"))
            else:
                parts.append(f"{elem.tag} {elem.name} {value}")
    except Exception:
        return None
    return "\n".join(parts).encode("utf-8", "replace")


def _image_array(raw: bytes, rel: str) -> np.ndarray | None:
    """Raw (unscaled) voxels of a NIfTI or DICOM file, else None."""
    import nibabel as nib
    import pydicom

    try:
        if rel.endswith((".nii", ".nii.gz")) or raw[344:348] in (b"n+1\x00", b"ni1\x00"):
            img = nib.Nifti1Image.from_bytes(raw)
            return np.asanyarray(img.dataobj.get_unscaled())
        if raw[128:132] == b"DICM":
            return pydicom.dcmread(io.BytesIO(raw)).pixel_array
    except Exception:
        return None
    return None


def _stamp_in(pixels: np.ndarray, value: int, stamped: int) -> bool:
    """The stamp's value stands out of the histogram: far more often than its neighbours."""
    flat = np.rint(pixels.ravel()).astype(np.int64)
    here = int(np.count_nonzero(flat == value))
    around = max(int(np.count_nonzero(flat == value - 1)), int(np.count_nonzero(flat == value + 1)))
    return here >= stamped // 2 and here > 5 * around + 10


def _git_objects(repo: Path, where: str) -> Iterator[tuple[str, bytes]]:
    """Every object of ``repo`` (``git cat-file --batch-all-objects``), named by type and,
    where a ref reaches it, its path."""
    listed = subprocess.run(
        ["git", "-C", str(repo), "rev-list", "--all", "--objects"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths = dict(line.partition(" ")[::2] for line in listed.splitlines())
    out = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout
    pos = 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        sha, kind, size = out[pos:end].decode().split()
        body = out[end + 1 : end + 1 + int(size)]
        pos = end + 1 + int(size) + 1
        yield f"git:{where}:{kind}:{paths.get(sha) or sha[:10]}", body


def _blobs(release: Path) -> Iterator[tuple[str, bytes]]:
    """(where, content) of everything in the release and its subdatasets."""
    repos = [release, *(p.parent for p in release.rglob(".git") if p.parent != release)]
    for dirpath, dirnames, filenames in os.walk(release):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in [*dirnames, *filenames]:
            rel = os.path.relpath(os.path.join(dirpath, name), release)
            yield f"name:{rel}", rel.encode()
        for name in filenames:
            path = Path(dirpath) / name
            rel = os.path.relpath(path, release)
            if path.is_symlink() and not path.exists():
                continue  # annexed, not here: its objects are read below
            yield f"file:{rel}", path.read_bytes()
    for repo in repos:
        gitdir = repo / ".git"
        if gitdir.is_file():  # a subdataset's .git file points to its git dir
            gitdir = (repo / gitdir.read_text().split(":", 1)[1].strip()).resolve()
        objects = gitdir / "annex" / "objects"
        for path in sorted(objects.rglob("*")) if objects.is_dir() else []:
            if path.is_file():
                yield f"annex:{os.path.relpath(repo, release)}:{path.name}", path.read_bytes()
        yield from _git_objects(repo, os.path.relpath(repo, release))
        refs = subprocess.run(
            ["git", "-C", str(repo), "for-each-ref", "--format=%(refname)"],
            capture_output=True,
            check=True,
        ).stdout
        yield f"git:{os.path.relpath(repo, release)}:refs", refs


def scan_release(
    release: Path, stamps: dict[str, tuple[int, int]]
) -> tuple[dict[str, set[str]], set[str], dict[str, set[str]]]:
    """Where each marker, the surname and each pixel stamp are found in ``release``."""
    found: dict[str, set[str]] = {}
    name_found: set[str] = set()
    pixels: dict[str, set[str]] = {p: set() for p in stamps}
    for where, blob in _blobs(release):
        views = [blob]
        if blob[:2] == b"\x1f\x8b":
            with suppress(OSError, EOFError):
                views.append(gzip.decompress(blob))
        for view in list(views):
            if view[128:132] == b"DICM":
                decoded = _decoded_dicom(view)
                if decoded is not None:
                    views.append(decoded)
        for view in views:
            for marker in _markers_in(view):
                found.setdefault(marker, set()).add(where)
            if NAME.lower().encode() in view.lower():
                name_found.add(where)
        if where.startswith(("file:", "annex:")):
            for view in views[:2]:
                image = _image_array(view, where)
                if image is None:
                    continue
                for place, (value, stamped) in stamps.items():
                    if _stamp_in(image, value, stamped):
                        pixels[place].add(where)
    return found, name_found, pixels


def _build_and_scan(planted: Planted, site: Path, scope: str, version: str = "1.0.0") -> Scan:
    built = run_windl(
        "release", "build", "study1", "--scope", scope, "--version", version, "--site", site,
        check=False, env=_git_env(),
    )  # fmt: skip
    release = site / "superdataset" / "releases" / "study1" / scope
    audit = None
    findings: list[dict[str, str]] = []
    if built.returncode == 0:
        audit = run_windl("audit", release, "--site", site, "--json", check=False)
        try:
            findings = json.loads(audit.stdout).get("findings", [])
        except json.JSONDecodeError:
            findings = []
    found, names, pixels = (
        scan_release(release, planted.stamps) if release.is_dir() else ({}, set(), {})
    )
    return Scan(built, audit, findings, found, names, pixels)


def _late_build(planted: Planted, scratch: Path) -> Scan:
    """Undeclared columns added after the first release; version 1.0.1 of members."""
    from windl.datasets import save

    study = study_path(planted.site)
    pheno, participants = _late_tables(scratch, study)
    with _operator_env():
        save(study, [participants], "operator: a comment column")
    added = _windl("add", "study1", pheno, "--as", "phenotype", "--site", planted.site, check=False)
    if added.returncode != 0:  # refusing the table at add is refusing it too
        return Scan(added, None, [], {}, set(), {})
    return _build_and_scan(planted, planted.site, "members", "1.0.1")


@pytest.fixture(scope="session")
def releases(planted: Planted, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Scan]:
    """Both releases of the planted study, with the Basic Profile and with the demo's
    [deid] options (built on a copy of the site made before any release), and the late
    members build (:data:`LATE_PLACES`)."""
    from windl.datasets import save

    demo_site = copy_site(planted.site, tmp_path_factory.mktemp("planted-demo") / "site")
    study = study_path(demo_site)
    (study / "code" / "study.toml").write_text(SETTINGS_BASIC + SETTINGS_DEMO_DEID)
    with _operator_env():
        save(study, ["code/study.toml"], "test: the demo's de-identification options")
    scans = {}
    for variant, site in (("basic", planted.site), ("demo", demo_site)):
        for scope in ("members", "external"):
            scans[f"{variant}-{scope}"] = _build_and_scan(planted, site, scope)
    scans["late"] = _late_build(planted, tmp_path_factory.mktemp("planted-late"))
    _write_summary(scans)
    return scans


#: where the suite writes what it found per release and place (gitignored, for people)
SUMMARY = Path(__file__).resolve().parent / "artifacts" / "privacy_gate.json"


def _write_summary(scans: dict[str, Scan]) -> None:
    """Per release: build and audit exit codes, and every place found where it was found."""
    by_marker = {marker: place for place, marker in MARKERS.items()}
    summary = {
        name: {
            "build_exit": scan.built.returncode,
            "build_error": scan.built.stderr.strip().splitlines()[-1:] if scan.built.stderr else [],
            "audit_exit": scan.audit.returncode if scan.audit else None,
            "audit_findings": [f"{f.get('check')}: {f.get('path')}" for f in scan.findings],
            "found": {
                by_marker[k]: sorted(v) for k, v in sorted(scan.found.items()) if k in by_marker
            },
            "pixels": {k: sorted(v) for k, v in scan.stamped.items() if v},
            "surname": sorted(scan.name_found),
        }
        for name, scan in scans.items()
    }
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(json.dumps(summary, indent=1, ensure_ascii=False))


# ----------------------------------------------------------------------------- the tests
RELEASES = ("basic-members", "basic-external", "demo-members", "demo-external")


def _covered(hit: str, scan: Scan) -> bool:
    """A hit is refused when the audit failed with a finding naming its file (or git)."""
    if scan.audit is None or scan.audit.returncode == 0:
        return False
    kind, _, rel = hit.partition(":")
    for f in scan.findings:
        path = str(f.get("path", ""))
        if kind in ("file", "name", "annex") and path and (rel == path or rel.startswith(path)):
            return True
        if kind == "git" and ("git" in path or "git" in str(f.get("check", ""))):
            return True
    return False


def test_planted_places_are_many() -> None:
    """Issue 16 asks for at least 60 planted places across the classes."""
    assert len(PLACES) >= 60
    classes = {p.split(".")[0] for p in PLACES}
    assert {"dicom", "pixels", "brainvision", "edf", "fif", "nifti", "sidecar"} <= classes
    assert {"participants", "phenotype", "beh", "text", "git"} <= classes


def test_conversion_took_the_planted_data(planted: Planted) -> None:
    """The planted copies still convert: a place that never reaches the study proves nothing."""
    study = study_path(planted.site)
    names = subprocess.run(
        ["git", "-C", str(study), "ls-files"], capture_output=True, text=True, check=True
    ).stdout
    for datatype in ("func", "eeg", "meg", "anat"):
        assert f"/{datatype}/" in names, (datatype, planted.steps["convert"].stdout[-2000:])
    assert m("brainvision.recording file name → task label").lower() in names.lower()


@pytest.mark.parametrize("release", RELEASES)
def test_build_ran_or_refused_cleanly(releases: dict[str, Scan], release: str) -> None:
    """A build either makes the release or refuses with one typed error line."""
    scan = releases[release]
    if scan.built.returncode != 0:
        assert "windl: error:" in scan.built.stderr, scan.built.stderr[-3000:]
        assert "Traceback" not in scan.built.stderr, scan.built.stderr[-3000:]


def _assert_not_released(scan: Scan, release: str, place: str) -> None:
    hits = scan.found.get(m(place), set())
    if not hits:
        return
    if scan.built.returncode != 0:
        pytest.fail(f"the build refused, yet the release holds {place}: {sorted(hits)[:8]}")
    leaked = sorted(h for h in hits if not _covered(h, scan))
    assert not leaked, (
        f"{place} ({m(place)}) is in the {release} release and the audit "
        f"{'passed' if scan.audit and scan.audit.returncode == 0 else 'did not name it'}: "
        f"{leaked[:8]}"
    )


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize(
    "place", [p for p in PLACES if p not in PIXEL_PLACES and p not in LATE_PLACES]
)
def test_planted_text_not_released(releases: dict[str, Scan], release: str, place: str) -> None:
    _assert_not_released(releases[release], release, place)


@pytest.mark.parametrize("place", LATE_PLACES)
def test_undeclared_column_not_released(releases: dict[str, Scan], place: str) -> None:
    """An undeclared column blocks the build (naming the file), or at least never leaks."""
    scan = releases["late"]
    _assert_not_released(scan, "late members 1.0.1", place)
    if scan.built.returncode != 0:
        assert "participants.tsv" in scan.built.stderr or "intake" in scan.built.stderr, (
            scan.built.stderr[-2000:]
        )


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("place", PIXEL_PLACES)
def test_burned_in_pixels_not_released(releases: dict[str, Scan], release: str, place: str) -> None:
    scan = releases[release]
    hits = scan.stamped.get(place, set())
    leaked = sorted(h for h in hits if not _covered(h, scan))
    assert not leaked, f"the stamp of {place} is in the pixels of {release}: {leaked[:8]}"


@pytest.mark.parametrize("release", RELEASES)
def test_realistic_name_not_released(releases: dict[str, Scan], release: str) -> None:
    scan = releases[release]
    leaked = sorted(h for h in scan.name_found if not _covered(h, scan))
    assert not leaked, f"{NAME} is in the {release} release: {leaked[:12]}"
