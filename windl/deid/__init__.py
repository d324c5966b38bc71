"""De-identification of what a release ships: DICOM headers (PS3.15 Annex E), ..."""

from windl.deid.dicom import (
    BurnedInAnnotationRefused,
    DeidPolicy,
    UIDMap,
    check_dataset,
    deidentify_dataset,
    deidentify_file,
)
from windl.deid.ephys import recording_files, scrub_raw
from windl.deid.sidecars import (
    forbidden_keys,
    scrub_nifti,
    scrub_scans_tsv,
    scrub_sidecar,
    scrub_sidecar_file,
    scrub_tsv_dates,
    unclassified_keys,
)

__all__ = [
    "BurnedInAnnotationRefused",
    "DeidPolicy",
    "UIDMap",
    "check_dataset",
    "deidentify_dataset",
    "deidentify_file",
    "forbidden_keys",
    "recording_files",
    "scrub_nifti",
    "scrub_raw",
    "scrub_scans_tsv",
    "scrub_sidecar",
    "scrub_sidecar_file",
    "scrub_tsv_dates",
    "unclassified_keys",
]
