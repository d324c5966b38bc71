"""The scale benchmark's synthetic sessions (benchmarks/scale/synthetic.py), on real DICOM."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from windl.ingest import ingest
from windl.site import init_site
from windl.study import create_study

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks" / "scale"))
import synthetic

IDENTIFYING = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
)


@pytest.fixture(scope="module")
def source(data: Path) -> Path:
    return data / "dcm_qa_nih" / "In" / "20180918Si"


def _uids(ds: pydicom.Dataset) -> set[str]:
    """Every UID value in a dataset (nested sequences and file meta included)."""
    found: set[str] = set()

    def collect(_ds: pydicom.Dataset, elem: pydicom.DataElement) -> None:
        if elem.VR == "UI" and elem.value:
            found.update(map(str, elem.value if elem.VM > 1 else [elem.value]))

    ds.walk(collect)
    ds.file_meta.walk(collect)
    # the file meta's ImplementationClassUID names the writing software, not an instance
    found.discard(str(ds.file_meta.get("ImplementationClassUID", "")))
    return found


def test_copies_are_new_studies_of_new_patients(source: Path, tmp_path: Path) -> None:
    generator = synthetic.SyntheticSource(source, seed=0)
    assert len(generator.files) == 8  # the README-*.txt dumps are not copied
    specs = [synthetic.session_spec(i, 2) for i in range(3)]
    assert [(s.subject, s.session) for s in specs] == [
        ("00001", "01"),
        ("00001", "02"),
        ("00002", "01"),
    ]
    copies = [generator.write_session(s, tmp_path / str(s.index)) for s in specs]

    for rel in generator.files:
        original = pydicom.dcmread(source / rel)
        read = [pydicom.dcmread(copy / rel) for copy in copies]
        for name in IDENTIFYING:
            values = [str(getattr(original, name))] + [str(getattr(ds, name)) for ds in read]
            assert len(set(values)) == len(values), name
        source_instance_uids = {
            u for u in _uids(original) if not u.startswith(synthetic.STANDARD_UID_ROOT)
        }
        for ds in read:
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            # not one instance UID of the source survives, referenced ones included
            assert not source_instance_uids & _uids(ds)
            assert ds.SOPClassUID == original.SOPClassUID
            assert ds.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
            assert ds.PatientID != original.PatientID
            assert ds.PatientName != original.PatientName
            assert ds.PixelData == original.PixelData
            assert np.array_equal(ds.pixel_array, original.pixel_array)
            assert ds.SeriesDescription == original.SeriesDescription
        # two sessions of one subject: one patient; another subject: another patient
        assert read[0].PatientID == read[1].PatientID != read[2].PatientID
        assert read[0].PatientName == read[1].PatientName != read[2].PatientName

    # same seed, same bytes; another seed, other identifiers
    again = generator.write_session(specs[0], tmp_path / "again")
    other = synthetic.SyntheticSource(source, seed=1).write_session(specs[0], tmp_path / "seed1")
    for rel in generator.files:
        assert (again / rel).read_bytes() == (copies[0] / rel).read_bytes()
        assert (other / rel).read_bytes() != (copies[0] / rel).read_bytes()


def test_two_synthetic_sessions_ingest_through_windl(source: Path, tmp_path: Path) -> None:
    generator = synthetic.SyntheticSource(source)
    site = init_site(tmp_path / "site")
    create_study(site, "scale")
    for index in range(2):
        spec = synthetic.session_spec(index, 2)
        copy = generator.write_session(spec, tmp_path / f"copy{index}")
        result = ingest(site, "scale", copy, spec.subject, spec.session)
        assert result.added == len(generator.files)
        assert result.already_present == 0  # new UIDs: new bytes, nothing deduplicated
        assert len(result.series) == 4
    sourcedata = site.studies / "scale" / "sourcedata"
    sessions = sorted(p.relative_to(sourcedata).as_posix() for p in sourcedata.glob("sub-*/ses-*"))
    assert sessions == ["sub-00001/ses-01", "sub-00001/ses-02"]


def test_bids_files_are_relabelled(tmp_path: Path) -> None:
    folder = tmp_path / "template" / "sub-00001" / "ses-01"
    (folder / "func").mkdir(parents=True)
    bold = folder / "func" / "sub-00001_ses-01_task-rest_bold.nii.gz"
    bold.write_bytes(b"nifti")
    scans = folder / "sub-00001_ses-01_scans.tsv"
    scans.write_text("filename\tacq_time\nfunc/sub-00001_ses-01_task-rest_bold.nii.gz\tn/a\n")
    template = synthetic.BidsTemplate(
        "00001",
        "01",
        {
            "sub-00001/ses-01/func/sub-00001_ses-01_task-rest_bold.nii.gz": bold,
            "sub-00001/ses-01/sub-00001_ses-01_scans.tsv": scans,
        },
    )
    files = synthetic.replicate_bids(template, synthetic.session_spec(5, 2), tmp_path / "out")
    assert files["sub-00003/ses-02/func/sub-00003_ses-02_task-rest_bold.nii.gz"] == bold
    written = files["sub-00003/ses-02/sub-00003_ses-02_scans.tsv"].read_text()
    assert "func/sub-00003_ses-02_task-rest_bold.nii.gz\tn/a" in written
    assert "00001" not in written
