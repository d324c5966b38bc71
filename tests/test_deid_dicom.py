"""DICOM header de-identification (PS3.15 Annex E) on every real DICOM file of ../shared/data."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
import tomllib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from windl.deid import (
    BurnedInAnnotationRefused,
    DeidPolicy,
    UIDMap,
    check_dataset,
    deidentify_dataset,
    deidentify_file,
)
from windl.deid.dicom import OPTION_CODES, iter_dicom_files, profile_row
from windl.deid.profile import TABLE_E1_1
from windl.errors import BadInput, ConfigError

FOLDERS = [
    "dcm_qa_nih",
    "dcm_qa_ts",
    "dcm_qa_philips_magdeburg",
    "dcm_qa_enh_subset",
    "heudiconv_testdata",
]
LABEL = "sub-01"
SECRET = "release-secret-1"
OFFSET = -123
GE_SERIES = ["mr_0004", "mr_0005", "mr_0006", "mr_0007"]
DCM2NIIX = Path(sys.executable).parent / "dcm2niix"
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass
class Released:
    """One folder of shared data de-identified with one policy and one UID map."""

    pairs: list[tuple[Path, Path]]
    policy: DeidPolicy
    uid_map: UIDMap
    out: Path


@pytest.fixture(scope="module")
def release(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Released]:
    """De-identify a folder (once per worker) with the Basic Profile; one map per release."""
    uid_map = UIDMap(SECRET)
    policy = DeidPolicy()
    done: dict[str, Released] = {}

    def get(folder: str) -> Released:
        if folder not in done:
            out = tmp_path_factory.mktemp(f"release-{folder}")
            pairs = []
            for src in iter_dicom_files(data / folder):
                dst = out / src.relative_to(data / folder)
                deidentify_file(src, dst, policy, uid_map, OFFSET, LABEL)
                pairs.append((src, dst))
            assert pairs, f"no DICOM file under {data / folder}"
            done[folder] = Released(pairs, policy, uid_map, out)
        return done[folder]

    return get


def _pixels(ds: Dataset) -> bytes | None:
    for keyword in _PIXEL_KEYWORDS:
        if keyword in ds:
            return bytes(ds[keyword].value)
    return None


def _header_bytes(raw: bytes, pixels: bytes | None) -> bytes:
    """The file without its pixel data value (short strings could match image bytes)."""
    if pixels:
        at = raw.find(pixels)
        assert at >= 0
        return raw[:at] + raw[at + len(pixels) :]
    return raw


def _identifying_strings(ds: Dataset) -> set[bytes]:
    """Original values that must not appear anywhere in the de-identified file."""
    found: set[str] = set()
    for keyword in ("PatientName", "PatientID", "InstitutionName", "PatientBirthDate"):
        value = str(ds.get(keyword, "") or "").strip()
        if keyword == "PatientName":
            found.update(part for part in value.replace("=", "^").split("^") if len(part) >= 4)
        if len(value) >= 3:
            found.add(value)
    return {v.encode() for v in found}


# --- every file, Basic Profile ------------------------------------------------------------


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_file_clean_pixels_identical(folder: str, release: Callable[[str], Released]):
    rel = release(folder)
    for src, dst in rel.pairs:
        before = pydicom.dcmread(src)
        raw = dst.read_bytes()
        after = pydicom.dcmread(dst)
        assert raw[128:132] == b"DICM"

        findings = check_dataset(after, rel.policy, uid_map=rel.uid_map, new_patient_id=LABEL)
        assert findings == [], f"{src}: {findings[:10]}"

        pixels = _pixels(before)
        assert (pixels is None) == (_pixels(after) is None), src
        if pixels is not None:
            assert hashlib.sha256(_pixels(after)).digest() == hashlib.sha256(pixels).digest()
            assert pixels in raw, f"{src}: pixel data bytes not in the written file"
        header = _header_bytes(raw, pixels)
        for value in _identifying_strings(before):
            assert value not in header, f"{src}: original {value!r} still in the output"

        assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
        assert str(after.PatientName) == after.PatientID == LABEL
        assert after.PatientIdentityRemoved == "YES"
        assert not any(elem.tag.is_private for elem in after)


@pytest.mark.parametrize("folder", FOLDERS)
def test_uids_consistent_within_release(folder: str, release: Callable[[str], Released]):
    rel = release(folder)
    per_level: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    sop_in: set[str] = set()
    sop_out: set[str] = set()
    for src, dst in rel.pairs:
        before = pydicom.dcmread(src, stop_before_pixels=True)
        after = pydicom.dcmread(dst, stop_before_pixels=True)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
            if keyword in before:
                per_level[keyword][before[keyword].value].add(after[keyword].value)
        sop_in.add(before.SOPInstanceUID)
        sop_out.add(after.SOPInstanceUID)
        assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
        assert pydicom.uid.UID(after.SOPInstanceUID).is_valid
    for keyword, mapping in per_level.items():
        for original, new in mapping.items():
            assert len(new) == 1, f"{keyword} {original} became {new}"
            assert original not in new
        outputs = [next(iter(new)) for new in mapping.values()]
        assert len(set(outputs)) == len(outputs), f"{keyword}: two inputs share an output"
    assert len(sop_out) == len(sop_in) == len(rel.pairs)
    assert not sop_out & sop_in


@pytest.mark.parametrize("folder", [f for f in FOLDERS if f != "dcm_qa_nih"])
def test_every_option_on_every_file(folder: str, data: Path, tmp_path: Path):
    policy = DeidPolicy(**{name: True for name in OPTION_CODES})
    uid_map = UIDMap(SECRET)
    for src in iter_dicom_files(data / folder):
        dst = tmp_path / src.relative_to(data / folder)
        deidentify_file(src, dst, policy, uid_map, OFFSET, LABEL)
        before, after = pydicom.dcmread(src), pydicom.dcmread(dst)
        assert check_dataset(after, policy, uid_map=uid_map, new_patient_id=LABEL) == []
        assert _pixels(after) == _pixels(before)
        assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
        for value in (str(before.get("PatientName", "")), str(before.get("PatientID", ""))):
            if len(value) >= 3:
                assert value.encode() not in _header_bytes(dst.read_bytes(), _pixels(before))


def test_uid_map_deterministic_per_secret():
    uid = "1.2.840.113619.2.408.5282380.5220731.23348.1516669692.164"
    one, again, other = UIDMap("a")(uid), UIDMap("a")(uid), UIDMap("b")(uid)
    assert one == again != other
    assert one.startswith("2.25.") and len(one) <= 64 and pydicom.uid.UID(one).is_valid
    with pytest.raises(ValueError):
        UIDMap("")


def test_rerun_is_byte_identical(data: Path, tmp_path: Path):
    src = next(iter_dicom_files(data / "dcm_qa_ts"))
    outputs = []
    for n in range(2):
        dst = tmp_path / f"{n}.dcm"
        deidentify_file(src, dst, DeidPolicy(), UIDMap(SECRET), OFFSET, LABEL)
        outputs.append(dst.read_bytes())
    assert outputs[0] == outputs[1]
    deidentify_file(src, tmp_path / "x.dcm", DeidPolicy(), UIDMap("other"), OFFSET, LABEL)
    assert (tmp_path / "x.dcm").read_bytes() != outputs[0]


@pytest.mark.parametrize("series", GE_SERIES)
def test_dcm2niix_ge_voxels_unchanged(
    series: str, data: Path, release: Callable[[str], Released], tmp_path: Path
):
    rel = release("dcm_qa_nih")
    folder = rel.out / "In" / "20180918GE" / series
    assert len(list(folder.iterdir())) == 150
    proc = subprocess.run(
        [str(DCM2NIIX), "-b", "n", "-z", "n", "-f", "%s", "-o", str(tmp_path), str(folder)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (converted,) = tmp_path.glob("*.nii")
    number = int(series.rsplit("_", 1)[1])
    ref = nib.load(data / "dcm_qa_nih" / "Ref" / f"DCM2NIIX_regression_test_{number}.nii")
    img = nib.load(converted)
    assert img.shape == ref.shape
    assert np.array_equal(np.asanyarray(img.dataobj), np.asanyarray(ref.dataobj))
    assert np.allclose(img.affine, ref.affine, atol=1e-4)


# --- options ------------------------------------------------------------------------------


def _ge_file(data: Path) -> Path:
    return next(iter_dicom_files(data / "dcm_qa_nih" / "In" / "20180918GE" / "mr_0004"))


def _deid(src: Path, policy: DeidPolicy, offset: int = OFFSET) -> Dataset:
    return deidentify_dataset(pydicom.dcmread(src), policy, UIDMap(SECRET), offset, LABEL)


def test_retain_device_identity(data: Path):
    src = _ge_file(data)
    original = pydicom.dcmread(src, stop_before_pixels=True)
    assert original.DeviceSerialNumber and original.StationName

    kept = _deid(src, DeidPolicy(retain_device_identity=True))
    assert kept.DeviceSerialNumber == original.DeviceSerialNumber
    assert kept.StationName == original.StationName
    assert check_dataset(kept, DeidPolicy(retain_device_identity=True)) == []

    basic = _deid(src, DeidPolicy())
    assert "DeviceSerialNumber" not in basic
    assert "StationName" not in basic


def test_modified_dates_shift_keeps_intervals(data: Path):
    src = next(iter_dicom_files(data / "dcm_qa_enh_subset"))
    original = pydicom.dcmread(src, stop_before_pixels=True)
    policy = DeidPolicy(retain_modified_dates=True)
    shifted = _deid(src, policy, offset=-400)

    def day(value: str) -> dt.date:
        return dt.datetime.strptime(str(value)[:8], "%Y%m%d").date()

    assert day(shifted.StudyDate) == day(original.StudyDate) - dt.timedelta(days=400)
    assert shifted.StudyTime == original.StudyTime
    assert day(shifted.AcquisitionDateTime) == day(original.AcquisitionDateTime) - dt.timedelta(
        days=400
    )
    assert str(shifted.AcquisitionDateTime)[8:] == str(original.AcquisitionDateTime)[8:]
    assert shifted.LongitudinalTemporalInformationModified == "MODIFIED"
    assert check_dataset(shifted, policy) == []

    basic = _deid(src, DeidPolicy())
    assert basic.StudyDate == ""
    assert "AcquisitionDateTime" not in basic
    assert basic.LongitudinalTemporalInformationModified == "REMOVED"


def test_retain_patient_characteristics(data: Path):
    src = _ge_file(data)
    original = pydicom.dcmread(src, stop_before_pixels=True)
    kept = _deid(src, DeidPolicy(retain_patient_characteristics=True))
    assert kept.PatientWeight == original.PatientWeight
    assert kept.PatientAge == original.PatientAge
    basic = _deid(src, DeidPolicy())
    assert "PatientWeight" not in basic and "PatientAge" not in basic


#: the demo's [deid] options (windl/demo.py)
DEMO_POLICY = DeidPolicy(
    retain_modified_dates=True, clean_descriptors=True, retain_patient_characteristics=True
)
MARKER = "Zorblatt"


def _planted(data: Path) -> Dataset:
    """A real GE image with a typed name in descriptions, nested texts and an overlay."""
    ds = pydicom.dcmread(_ge_file(data))
    ds.SeriesDescription = f"EPI rest {MARKER}"
    ds.StudyDescription = f"study of {MARKER}"
    ds.ProtocolName = f"{MARKER} protocol"
    ds.ImageComments = f"patient {MARKER} moved"
    ds.AdditionalPatientHistory = f"{MARKER} had surgery"
    request = Dataset()
    request.RequestedProcedureDescription = f"MRI for {MARKER}"
    request.ScheduledProcedureStepDescription = f"{MARKER} head"
    request.RequestedProcedureID = "RP-1"
    ds.RequestAttributesSequence = [request]
    ds.add_new(0x60000010, "US", 8)  # OverlayRows
    ds.add_new(0x60000011, "US", 8)  # OverlayColumns
    ds.add_new(0x60000022, "LO", f"{MARKER} overlay")  # OverlayDescription
    ds.add_new(0x60001500, "LO", f"{MARKER} label")  # OverlayLabel
    ds.add_new(0x60003000, "OW", b"\xff" * 8)  # OverlayData
    ds.WindowCenterWidthExplanation = f"{MARKER} window"  # free text outside Table E.1-1
    return ds


@pytest.mark.parametrize(
    "policy", [DEMO_POLICY, DeidPolicy()], ids=["demo-options", "basic-profile"]
)
def test_planted_descriptor_texts_never_kept(data: Path, tmp_path: Path, policy: DeidPolicy):
    """PS3.15 "clean" replaces; nested texts, overlay texts and unlisted free text go too."""
    src = tmp_path / "planted.dcm"
    _planted(data).save_as(src)
    assert check_dataset(pydicom.dcmread(src), policy)  # the checker flags the plants
    dst = tmp_path / "out.dcm"
    deidentify_file(src, dst, policy, UIDMap(SECRET), OFFSET, LABEL)
    raw = dst.read_bytes()
    assert MARKER.encode() not in raw and MARKER.lower().encode() not in raw.lower()
    out = pydicom.dcmread(dst)
    assert check_dataset(out, policy) == []
    assert not [elem for elem in out if elem.tag.group == 0x6000]  # the whole overlay group
    assert "WindowCenterWidthExplanation" not in out
    assert out.Manufacturer == "GE MEDICAL SYSTEMS"  # equipment-written text is kept
    if policy.clean_descriptors:  # replaced by an empty value, not kept minus words
        assert out.SeriesDescription == "" and out.ProtocolName == ""
        assert out.ImageComments == "" and out.AdditionalPatientHistory == ""
        (item,) = out.RequestAttributesSequence
        assert item.get("RequestedProcedureDescription", "") == ""
        assert "RequestedProcedureID" not in item
    else:
        assert "SeriesDescription" not in out and "RequestAttributesSequence" not in out


def test_check_dataset_flags_kept_descriptor_text(data: Path):
    """A release whose cleaned descriptions still hold text fails the check (the audit's)."""
    ds = deidentify_dataset(_planted(data), DEMO_POLICY, UIDMap(SECRET), OFFSET, LABEL)
    assert check_dataset(ds, DEMO_POLICY) == []
    ds.SeriesDescription = "Smith"
    ds.RequestAttributesSequence[0].ScheduledProcedureStepDescription = "x"
    ds.add_new(0x60020022, "LO", "overlay text")
    ds.add_new(0x0040A160, "UT", "typed")  # TextValue: free text outside the table
    found = "\n".join(check_dataset(ds, DEMO_POLICY))
    assert "SeriesDescription: text must be replaced" in found
    assert "ScheduledProcedureStepDescription" in found
    assert "(6002,0022)" in found and "TextValue" in found
    assert "Smith" not in found and "typed" not in found  # findings never show the value


def test_retain_safe_private_keeps_only_table_e3_10_1(data: Path):
    src = next(iter_dicom_files(data / "dcm_qa_philips_magdeburg"))
    original = pydicom.dcmread(src, stop_before_pixels=True)
    policy = DeidPolicy(retain_safe_private=True)
    out = _deid(src, policy)
    private = [elem.tag for elem in out if elem.tag.is_private]
    block = out.private_block(0x2005, "Philips MR Imaging DD 001")
    assert (
        out[block.get_tag(0x0E)].value
        == original.private_block(0x2005, "Philips MR Imaging DD 001")[0x0E].value
    )  # Scale Slope, a safe private attribute
    assert len(private) < len([e for e in original if e.tag.is_private])
    assert check_dataset(out, policy) == []
    assert check_dataset(out, DeidPolicy()) != []  # without the option: private must go


def test_method_recorded(data: Path):
    policy = DeidPolicy(retain_modified_dates=True, retain_device_identity=True)
    out = _deid(_ge_file(data), policy)
    assert out.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113107", "113109"]
    assert all(
        item.CodingSchemeDesignator == "DCM" for item in out.DeidentificationMethodCodeSequence
    )
    assert "Basic Profile" in out.DeidentificationMethod[0]
    assert out.file_meta.ImplementationVersionName.startswith("WINDL")
    assert out.preamble == b"\x00" * 128


# --- refusals, checks, settings ----------------------------------------------------------


def test_burned_in_annotation_refused(data: Path, tmp_path: Path):
    ds = pydicom.dcmread(_ge_file(data))
    ds.BurnedInAnnotation = "YES"
    src = tmp_path / "burned.dcm"
    ds.save_as(src, enforce_file_format=True)
    dst = tmp_path / "out" / "burned.dcm"
    with pytest.raises(BurnedInAnnotationRefused) as info:
        deidentify_file(src, dst, DeidPolicy(), UIDMap(SECRET), OFFSET, LABEL)
    assert isinstance(info.value, BadInput)
    assert str(src) in str(info.value) and "BurnedInAnnotation" in str(info.value)
    assert not dst.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_not_dicom_is_bad_input(tmp_path: Path):
    src = tmp_path / "x.dcm"
    src.write_bytes(b"not dicom" * 40)
    with pytest.raises(BadInput, match="not a DICOM file"):
        deidentify_file(src, tmp_path / "y.dcm", DeidPolicy(), UIDMap(SECRET), 0, LABEL)


def test_check_dataset_lists_what_is_left(data: Path):
    original = pydicom.dcmread(_ge_file(data), stop_before_pixels=True)
    findings = "\n".join(check_dataset(original, DeidPolicy()))
    for needle in (
        "InstitutionName",
        "StudyDate",
        "SOPInstanceUID",
        "StationName",
        "PatientIdentityRemoved",
        "private attribute",
        "PatientName",
    ):
        assert needle in findings


def test_policy_from_toml_table():
    table = tomllib.loads(
        """
        [deid]
        retain-modified-dates = true
        retain_device_identity = true
        clean-descriptors = false
        """
    )["deid"]
    policy = DeidPolicy.from_dict(table)
    assert policy == DeidPolicy(retain_modified_dates=True, retain_device_identity=True)
    assert policy.options == ("retain_modified_dates", "retain_device_identity")
    assert DeidPolicy.from_dict(None) == DeidPolicy()
    with pytest.raises(ConfigError, match="unknown option"):
        DeidPolicy.from_dict({"retain-everything": True})
    with pytest.raises(ConfigError, match="true or false"):
        DeidPolicy.from_dict({"retain-device-identity": "yes"})
    assert set(OPTION_CODES) == {f for f in DeidPolicy.__dataclass_fields__}


def test_table_is_the_standards():
    """The whole Table E.1-1, not a short list: 650+ rows, actions from the standard's set."""
    assert len(TABLE_E1_1) >= 650
    actions = {row.basic for row in TABLE_E1_1.values()}
    assert actions <= {"D", "Z", "X", "K", "C", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}
    assert profile_row(0x00100010).basic == "Z"  # Patient's Name
    assert profile_row(0x00080018).basic == "U"  # SOP Instance UID
    assert profile_row(0x60023000).name == "Overlay Data"  # repeating group 60xx
    assert profile_row(0x00080008) is None  # Image Type is not in the table
