"""De-identification of what a release ships: DICOM headers (PS3.15 Annex E), ..."""

from windl.deid.dicom import (
    BurnedInAnnotationRefused,
    DeidPolicy,
    UIDMap,
    check_dataset,
    deidentify_dataset,
    deidentify_file,
)

__all__ = [
    "BurnedInAnnotationRefused",
    "DeidPolicy",
    "UIDMap",
    "check_dataset",
    "deidentify_dataset",
    "deidentify_file",
]
