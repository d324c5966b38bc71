"""Fuzz the DICOM recogniser and header read: :func:`windl.ingest.dicom.read_dicom`."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from common import head, scratch, shared_data, write_seeds

from windl.errors import WindlError
from windl.ingest.dicom import read_dicom

MAX_LEN = 8192


def one_input(data: bytes) -> None:
    # the preamble's first byte (never read by windl) picks a name with or without .dcm
    name = "x.dcm" if data[:1] and data[0] & 1 else "x"
    path = scratch("dicom") / name
    path.write_bytes(data)
    with contextlib.suppress(WindlError):
        read_dicom(path)


def _synthetic() -> bytes:
    """A complete, tiny, ingestible DICOM image (4x4 pixels) made with pydicom."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 3
    ds.SeriesDescription = "t1_fuzz"
    ds.Modality = "MR"
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(range(32))
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def seed(corpus: Path) -> None:
    seeds = {"synthetic": _synthetic(), "empty-preamble": bytes(128) + b"DICM"}
    data = shared_data()
    if data is not None:
        picks = [
            *sorted((data / "dcm_qa_ts" / "In").glob("*.dcm")),  # one transfer syntax each
            next(iter(sorted((data / "dcm_qa_nih" / "In").rglob("*.dcm"))), None),
            next(iter(sorted((data / "dcm_qa_philips_magdeburg" / "In").rglob("*.dcm"))), None),
        ]
        for i, path in enumerate(p for p in picks if p is not None):
            seeds[f"head{i}"] = head(path, MAX_LEN)
    write_seeds(corpus, seeds)
