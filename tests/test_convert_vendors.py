"""Philips classic and enhanced multi-frame DICOM convert to the reference voxels."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from conftest import run_windl, study_path

SESSIONS = {
    "03": "dcm_qa_philips_magdeburg/In/Magdeburg_2014",
    "04": "dcm_qa_enh_subset/In/Siemens",
    "05": "dcm_qa_enh_subset/In/Philips",
}
# (subject, BIDS file glob, reference under the data folder)
REFERENCES = [
    ("03", "func/*_run-201_bold.nii.gz", "dcm_qa_philips_magdeburg/Ref/EPI_asc_CLEAR_201.nii"),
    ("04", "func/*_run-6_bold.nii.gz", "dcm_qa_enh_subset/Ref/Siemens_REST1_w_SMS_PF7-8_6.nii"),
    ("05", "fmap/*_magnitude.nii.gz", "dcm_qa_enh_subset/Ref/Philips_WIP_B0_NS_801_e1.nii"),
    (
        "05",
        "fmap/*_fieldmap.nii.gz",
        "dcm_qa_enh_subset/Ref/Philips_WIP_B0_NS_801_e2_fieldmaphz.nii",
    ),
]


@pytest.fixture(scope="module")
def vendor_site(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    site = tmp_path_factory.mktemp("vendors") / "site"
    run_windl("site", "init", site)
    run_windl("study", "create", "study1", "--site", site)
    for subject, source in SESSIONS.items():
        run_windl("ingest", "study1", data / source, "--subject", subject, "--site", site)
    run_windl("convert", "study1", "--site", site)
    return site


@pytest.mark.parametrize(("subject", "pattern", "reference"), REFERENCES)
def test_vendor_series_are_voxel_identical_to_reference(
    vendor_site: Path, data: Path, subject: str, pattern: str, reference: str
) -> None:
    (ours,) = (study_path(vendor_site) / f"sub-{subject}").glob(pattern)
    ref = np.asanyarray(nib.load(data / reference).dataobj)
    assert np.array_equal(np.asanyarray(nib.load(ours).dataobj), ref)


def test_split_field_map_is_recorded_with_both_files(vendor_site: Path) -> None:
    path = study_path(vendor_site) / "code" / "conversion" / "sub-05.tsv"
    with path.open() as fh:
        (row,) = list(csv.DictReader(fh, delimiter="\t"))
    names = row["bids_name"].split(",")
    assert [n.rsplit("_", 1)[1] for n in names] == ["fieldmap.nii.gz", "magnitude.nii.gz"]
    assert all((study_path(vendor_site) / n).exists() for n in names)


def test_vendor_study_passes_bids_validator(vendor_site: Path) -> None:
    proc = run_windl("validate", "study1", "--site", vendor_site)
    assert " 0 errors" in proc.stdout
