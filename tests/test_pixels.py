"""Pixels that may show text: suspect images, OCR (real tesseract), blanking, the build's gate.

Real GE (DISCOVERY MR750) and Siemens (Skyra mosaics) series of ``dcm_qa_nih``, copied with
text drawn into their pixels (PIL) and headers changed with pydicom.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydicom.uid import generate_uid

from windl.deid import DeidPolicy, UIDMap, deidentify_file
from windl.deid.pixels import (
    Blanking,
    BlankingRule,
    PixelPolicy,
    blank_nifti,
    nifti_show_text,
    read_header,
    recognised_words,
    review_series,
    suspect_reason,
)
from windl.errors import ConfigError
from windl.release.pixel_gate import released_pixel_findings

from conftest import release_dir, run_windl, study_path

DCM2NIIX = Path(sys.executable).parent / "dcm2niix"
TEXT = "DOE JOHN"
MARKER = "Zorblatt"
GE_MODEL = "DISCOVERY MR750"
#: the top 12 rows of a 64x64 GE slice, where :func:`_draw` writes
TOP_BAND = [0, 0, 64, 12]


def _draw(array: np.ndarray, text: str = TEXT, at: tuple[int, int] = (1, 1)) -> np.ndarray:
    """``array`` with ``text`` drawn at full intensity (a 10-pixel font)."""
    mask = Image.fromarray(np.zeros(array.shape, np.uint8))
    ImageDraw.Draw(mask).text(at, text, fill=255, font=ImageFont.load_default(size=10))
    out = array.copy()
    out[np.array(mask) > 128] = array.max()
    return out


def _series(
    data: Path,
    out: Path,
    *,
    vendor: str = "GE",
    number: int = 11,
    text: bool = False,
    count: int = 15,
    edit: Callable[[pydicom.Dataset], None] | None = None,
) -> list[Path]:
    """A copy of a real series (one volume) as a new series, text drawn into each image."""
    source = {
        "GE": data / "dcm_qa_nih/In/20180918GE/mr_0004",
        "Siemens": data / "dcm_qa_nih/In/20180918Si/mr_0003",
    }[vendor]
    out.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    written = []
    for i, src in enumerate(sorted(source.glob("*.dcm"))[:count]):
        ds = pydicom.dcmread(src)
        if text:
            ds.PixelData = _draw(ds.pixel_array).astype(ds.pixel_array.dtype).tobytes()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesNumber = number
        if edit is not None:
            edit(ds)
        path = out / f"{i:05d}.dcm"
        ds.save_as(path)
        written.append(path)
    return written


def _secondary(ds: pydicom.Dataset) -> None:
    ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]


def _burned(ds: pydicom.Dataset) -> None:
    ds.BurnedInAnnotation = "YES"


# --- which images are suspect -----------------------------------------------------------


def test_suspect_reasons_name_the_attribute(data: Path) -> None:
    ge = read_header(next((data / "dcm_qa_nih/In/20180918GE/mr_0004").glob("*.dcm")))
    si = read_header(next((data / "dcm_qa_nih/In/20180918Si/mr_0003").glob("*.dcm")))
    assert suspect_reason(ge) is None and suspect_reason(si) is None  # acquisitions
    for ds, edit, expected in [
        (ge, {"BurnedInAnnotation": "YES"}, "BurnedInAnnotation"),
        (si, {"Modality": "OT"}, "Modality OT"),
        (ge, {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"}, "Secondary Capture"),
        (si, {"ImageType": ["DERIVED", "SECONDARY"]}, "DERIVED\\SECONDARY"),
        (ge, {"ConversionType": "WSD"}, "ConversionType"),
        (si, {"ImageType": ["DERIVED", "PRIMARY", "MPR"]}, "not ORIGINAL"),
    ]:
        copy = deepcopy(ds)
        for keyword, value in edit.items():
            setattr(copy, keyword, value)
        assert expected in (suspect_reason(copy) or ""), edit


# --- OCR --------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["GE", "Siemens"])
def test_ocr_reads_drawn_text_and_not_the_anatomy(vendor: str, data: Path, tmp_path: Path) -> None:
    plain = _series(data, tmp_path / "plain", vendor=vendor, count=2)
    texted = _series(data, tmp_path / "text", vendor=vendor, count=3, text=True)
    for path in plain:
        assert recognised_words(pydicom.dcmread(path).pixel_array) == []
    words = recognised_words(pydicom.dcmread(texted[-1]).pixel_array)
    assert {"DOE", "JOHN"} & set(words)


def test_burned_in_series_with_text_is_refused(data: Path, tmp_path: Path) -> None:
    files = _series(data, tmp_path / "s", text=True, edit=_burned)
    verdict = review_series(files, PixelPolicy())
    assert not verdict.release
    assert "BurnedInAnnotation is YES" in verdict.reason and "OCR found text" in verdict.reason
    assert "DOE" not in verdict.reason and "JOHN" not in verdict.reason


@pytest.mark.parametrize("vendor", ["GE", "Siemens"])
def test_derived_secondary_with_text_but_no_flag_is_refused(
    vendor: str, data: Path, tmp_path: Path
) -> None:
    files = _series(data, tmp_path / "s", vendor=vendor, text=True, edit=_secondary)
    assert "BurnedInAnnotation" not in read_header(files[0])
    verdict = review_series(files, PixelPolicy())
    assert not verdict.release and "DERIVED\\SECONDARY" in verdict.reason


def test_suspect_series_without_text_is_released(data: Path, tmp_path: Path) -> None:
    files = _series(data, tmp_path / "s", edit=_secondary)
    verdict = review_series(files, PixelPolicy())
    assert verdict.release and "OCR found no text" in verdict.reason
    plain = review_series(_series(data, tmp_path / "p", number=12), PixelPolicy())
    assert plain.release and plain.reason == ""  # an acquisition is not OCR'd


# --- blanking ---------------------------------------------------------------------------


def test_blanking_rule_makes_a_texted_series_releasable(data: Path, tmp_path: Path) -> None:
    files = _series(data, tmp_path / "s", text=True, edit=_burned)
    rule = BlankingRule(GE_MODEL, ".*", (tuple(TOP_BAND),))
    other = BlankingRule("Skyra", ".*", (tuple(TOP_BAND),))
    assert not review_series(files, PixelPolicy(rules=(other,))).release  # another model
    verdict = review_series(files, PixelPolicy(rules=(other, rule)))
    assert verdict.release and verdict.rule == rule

    # the DICOM: zero in the rectangle, the rest unchanged, no text left, flag NO
    dst = tmp_path / "out" / "1.dcm"
    deidentify_file(files[0], dst, DeidPolicy(), UIDMap("s"), 0, "sub-01", blank=rule.rectangles)
    before, after = pydicom.dcmread(files[0]).pixel_array, pydicom.dcmread(dst).pixel_array
    assert not after[:12, :].any() and before[:12, :].any()
    assert np.array_equal(after[12:, :], before[12:, :])
    assert pydicom.dcmread(dst).BurnedInAnnotation == "NO"
    assert recognised_words(after) == []

    # the NIfTI dcm2niix makes of the series: the same pixels zeroed, in every slice
    out = tmp_path / "nii"
    out.mkdir()
    subprocess.run(
        [str(DCM2NIIX), "-z", "y", "-f", "x", "-o", str(out), str(files[0].parent)],
        check=True,
        capture_output=True,
    )
    assert nifti_show_text(out / "x.nii.gz", PixelPolicy())
    blanked = tmp_path / "blanked.nii.gz"
    blank_nifti(out / "x.nii.gz", blanked, Blanking.of(rule, read_header(files[0])))
    original = np.asanyarray(nib.load(out / "x.nii.gz").dataobj)
    image = np.asanyarray(nib.load(blanked).dataobj)
    for k in range(image.shape[2]):  # NIfTI j runs up: DICOM rows 0..11 are j 52..63
        dicom_view = image[:, :, k].T[::-1]
        assert not dicom_view[:12, :].any()
        assert np.array_equal(dicom_view[12:, :], original[:, :, k].T[::-1][12:, :])
    assert not nifti_show_text(blanked, PixelPolicy())
    assert (
        gzip.decompress(blanked.read_bytes())[:348]
        == gzip.decompress((out / "x.nii.gz").read_bytes())[:348]
    )


def test_bad_pixel_settings_are_config_errors() -> None:
    for table in (
        {"ocr_confidence": 120},
        {"blank": [{"model": "X", "series": "(", "rectangles": [[0, 0, 1, 1]]}]},
        {"blank": [{"model": "X", "rectangles": [[0, 0, 1]]}]},
        {"colour": 1},
    ):
        with pytest.raises(ConfigError):
            PixelPolicy.from_dict(table)
    policy = PixelPolicy.from_dict(
        {"blank": [{"model": GE_MODEL, "series": "x", "rectangles": [TOP_BAND]}]}
    )
    assert policy.rules[0].rectangles == (tuple(TOP_BAND),)


def test_audit_look_finds_text_in_released_secondary_nifti(data: Path, tmp_path: Path) -> None:
    """The audit judges released files on their own: a texted DERIVED NIfTI is a finding."""
    release = tmp_path / "release"
    for name, text in (("a", True), ("b", False)):
        source = _series(data, tmp_path / name, text=text, edit=_secondary)[0].parent
        folder = release / f"sub-{name}" / "anat"
        folder.mkdir(parents=True)
        subprocess.run(
            [str(DCM2NIIX), "-z", "y", "-f", f"sub-{name}_T2w", "-o", str(folder), str(source)],
            check=True,
            capture_output=True,
        )
    files = sorted(p.relative_to(release).as_posix() for p in release.rglob("*.*"))
    found = list(released_pixel_findings(release, files, PixelPolicy()))
    assert (
        found == [("sub-a/anat/sub-a_T2w.nii.gz", found[0][1])]
        and "DERIVED\\SECONDARY" in found[0][1]
    )
    assert "DOE" not in found[0][1]


# --- the build --------------------------------------------------------------------------

SETTINGS = f"""
[deid]
retain_modified_dates = true
clean_descriptors = true
retain_patient_characteristics = true

[[deid.pixels.blank]]
model = "{GE_MODEL}"
series = "run-4"
rectangles = [{TOP_BAND}]

[release]
include_dicom = ["members"]
"""


def _plant_text(ds: pydicom.Dataset) -> None:
    ds.ProtocolName = f"{MARKER} protocol"
    ds.ImageComments = f"{MARKER} moved"
    ds.AdditionalPatientHistory = f"{MARKER} history"
    request = pydicom.Dataset()
    request.RequestedProcedureDescription = f"MRI of {MARKER}"
    ds.RequestAttributesSequence = [request]
    ds.add_new(0x60000022, "LO", f"{MARKER} overlay")
    ds.add_new(0x60001500, "LO", f"{MARKER} label")


def _named(description: str, *more: Callable[[pydicom.Dataset], None]):
    def edit(ds: pydicom.Dataset) -> None:
        ds.SeriesDescription = description
        _plant_text(ds)
        for step in more:
            step(ds)

    return edit


def _released_bytes(root: Path) -> bytes:
    """Every released file's bytes, NIfTI gunzipped (as an attacker would read them)."""
    chunks = []
    for path in sorted(root.rglob("*")):
        if ".git" in path.parts or not path.is_file():
            continue
        raw = path.read_bytes()
        chunks.append(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    return b"\n".join(chunks)


def test_build_withholds_texted_series_and_releases_blanked_and_clean(
    site: Path, data: Path, tmp_path: Path
) -> None:
    source = tmp_path / "dicom"
    _series(
        data, source / "s1", number=1, text=True, edit=_named("func-bold_task-rest_run-1", _burned)
    )
    _series(
        data,
        source / "s2",
        number=2,
        text=True,
        edit=_named("func-bold_task-rest_run-2", _secondary),
    )
    _series(data, source / "s3", number=3, edit=_named("func-bold_task-rest_run-3", _secondary))
    _series(
        data, source / "s4", number=4, text=True, edit=_named("func-bold_task-rest_run-4", _burned)
    )
    study = study_path(site)
    (study / "code" / "study.toml").write_text(SETTINGS, encoding="utf-8")
    subprocess.run(["git", "-C", str(study), "add", "code/study.toml"], check=True)
    subprocess.run(["git", "-C", str(study), "commit", "-qm", "test: settings"], check=True)
    run_windl("ingest", "study1", source, "--subject", "01", "--site", site)
    run_windl("convert", "study1", "--site", site)
    run_windl("consent", "set", "study1", "01", "--scope", "members", "--site", site)
    proc = run_windl(
        "release",
        "build",
        "study1",
        "--scope",
        "members",
        "--version",
        "1.0.0",
        "--json",
        "--site",
        site,
    )
    result = json.loads(proc.stdout)
    refused = "\n".join(result["refused"])
    release = release_dir(site, "members")
    niftis = sorted(p.relative_to(release).as_posix() for p in release.rglob("*.nii.gz"))
    runs = {n.split("_run-")[1].split("_")[0] for n in niftis if "_run-" in n}
    assert runs == {"3", "4"}, niftis  # 1 (flag YES, text) and 2 (DERIVED, text) withheld
    assert "run-1" in refused and "BurnedInAnnotation is YES" in refused
    assert "run-2" in refused and "DERIVED\\SECONDARY" in refused and "OCR found text" in refused
    assert "DOE" not in refused and MARKER not in refused
    # withheld with their sidecars and scans.tsv rows
    jsons = [p.name for p in release.rglob("*_bold.json")] + [
        p.name for p in release.rglob("*_sbref.json")
    ]
    assert not [name for name in jsons if "run-1" in name or "run-2" in name]
    scans = next(release.rglob("*_scans.tsv")).read_text()
    assert "run-1" not in scans and "run-2" not in scans and "run-3" in scans
    # run 4 is released blanked: zero in the rule's rectangle in the NIfTI and the DICOM
    (blanked,) = [release / n for n in niftis if "run-4" in n]
    image = np.asanyarray(nib.load(blanked).dataobj)
    assert not image[:, 52:, ...].any() and image[:, :52, ...].any()
    dicom = sorted(release.glob("sourcedata/**/*.dcm"))
    shipped = {int(pydicom.dcmread(p, stop_before_pixels=True).SeriesNumber) for p in dicom}
    assert shipped == {3, 4}
    for path in dicom:
        ds = pydicom.dcmread(path)
        if int(ds.SeriesNumber) == 4:
            assert not ds.pixel_array[:12].any()
    # planted header texts are in no released file (DICOM decoded or not, JSON, NIfTI)
    everything = _released_bytes(release)
    assert MARKER.encode() not in everything and MARKER.lower().encode() not in everything.lower()
    for sidecar in release.rglob("sub-*/**/*.json"):
        keys = json.loads(sidecar.read_text())
        assert not {"ProtocolName", "ImageComments", "SeriesDescription"} & set(keys)
    # the audit's own look at the released pixels passes
    proc = run_windl("audit", str(release), "--json", "--site", site, check=False)
    audit = json.loads(proc.stdout)
    pixel_findings = [f for f in audit["findings"] if f["check"] == "pixels"]
    dicom_findings = [f for f in audit["findings"] if f["check"] == "dicom-profile"]
    sidecar_findings = [f for f in audit["findings"] if f["check"] == "sidecar-keys"]
    assert pixel_findings == [] and dicom_findings == [] and sidecar_findings == [], audit[
        "findings"
    ]
