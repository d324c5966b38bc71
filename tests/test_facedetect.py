"""The face detector on rendered head surfaces (issue 16, part 6), on real heads.

Two heads with a face are available offline: pydeface's test T1w (OpenNeuro ds000031, a
real person; ``../shared/data/pydeface_t1w_face``) and pydeface's template
``mean_reg2mean.nii.gz`` (an average of many heads, shipped in the ``pydeface`` package).
Each is checked before and after windl's defacing, and the real head also at a clinical
resolution and in another voxel order, so the detector is not tuned to one file. Nothing is
mocked: real OpenCV cascades, real defacing.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from windl.deid.deface import deface
from windl.deid.facedetect import DetectSettings, detect_face, face_picture, otsu
from windl.errors import BadInput

IMAGE = Path("pydeface_t1w_face") / "ds000031_sub-01_ses-006_run-001_T1w.nii.gz"
TEMPLATE = files("pydeface").joinpath("data/mean_reg2mean.nii.gz")
#: a GE EPI volume (64 x 64 x 15, brain only): no face to see
EPI = Path("dcm_qa_nih") / "Ref" / "DCM2NIIX_regression_test_4.nii"
RED = np.array([40, 40, 230])  # BGR of a face's frame in the pictures


@pytest.fixture(scope="module")
def head(data: Path) -> Path:
    path = data / IMAGE
    if not path.is_file():
        pytest.fail(f"test image missing: {path}")
    return path


@pytest.fixture(scope="module")
def defaced_head(head: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("facedetect") / "sub-01_T1w.nii.gz"
    deface(head, out)
    return out


def _margin(strongest: dict[str, int], settings: DetectSettings) -> float:
    """The strongest cascade relative to its threshold (>= 1: a face)."""
    return max(strongest[c] / settings.min_neighbours[c] for c in strongest)


def test_face_found_on_the_real_head_before_defacing(head: Path) -> None:
    detection = detect_face(head)
    assert detection.found
    # both cascades see it, each clearly above its threshold, not just one by a hair
    settings = detection.settings
    for cascade, threshold in settings.min_neighbours.items():
        assert detection.strongest[cascade] >= 1.2 * threshold, detection.strongest
    assert len(detection.views) == len(settings.yaw_degrees)
    assert all(v.dtype == np.uint8 and v.shape == (256, 256) for v in detection.views.values())


def test_no_face_after_windl_deface(defaced_head: Path) -> None:
    detection = detect_face(defaced_head)
    assert not detection.found
    assert not any(box.face for box in detection.candidates)
    # and not by a hair: every cascade stays well below its threshold
    assert _margin(detection.strongest, detection.settings) < 0.6, detection.strongest


def test_another_head_before_and_after_defacing(tmp_path: Path) -> None:
    """pydeface's template: an average head, other shape, other scanner, other grid."""
    template = Path(str(TEMPLATE))
    assert detect_face(template).found
    defaced = tmp_path / "template_defaced.nii.gz"
    deface(template, defaced)
    assert not detect_face(defaced).found


def test_found_at_clinical_resolution_and_in_another_voxel_order(
    head: Path, tmp_path: Path
) -> None:
    """3 mm voxels, and the voxels stored P-S-R: the affine, not the array, says where front is."""
    img = nib.load(head)
    data = np.asarray(img.dataobj, dtype=np.float32)
    coarse = ndimage.zoom(data, [0.9 / 3, 0.9375 / 3, 0.9375 / 3], order=1)
    affine = img.affine @ np.diag([3 / 0.9, 3 / 0.9375, 3 / 0.9375, 1.0])
    low = tmp_path / "low.nii.gz"
    nib.save(nib.Nifti1Image(coarse, affine), low)
    assert detect_face(low).found
    now = nib.io_orientation(img.affine)
    other = img.as_reoriented(nib.orientations.ornt_transform(now, [[1, -1], [2, 1], [0, 1]]))
    assert nib.aff2axcodes(other.affine) == ("P", "S", "R")
    reordered = tmp_path / "psr.nii.gz"
    nib.save(other, reordered)
    assert detect_face(reordered).found


def test_an_image_without_a_face_cannot_be_judged(data: Path) -> None:
    """A brain-only EPI: nothing found, so the audit must say it cannot judge."""
    detection = detect_face(data / EPI)
    assert not detection.found
    assert detection.to_dict()["faces"] == []


def test_picture_frames_the_face_before_and_none_after(
    head: Path, defaced_head: Path, tmp_path: Path
) -> None:
    import cv2

    before, after = detect_face(head), detect_face(defaced_head)
    png = face_picture([("before", before), ("after", after)], tmp_path / "faces.png")
    picture = cv2.imread(str(png))
    rows = len(before.settings.yaw_degrees)
    assert picture.shape == (2 * 256, rows * 256, 3)
    red = np.all(picture == RED, axis=2)
    assert red[:256].sum() > 500  # frames drawn around the face
    assert red[256:].sum() == 0  # nothing framed after defacing
    again = face_picture([("before", before), ("after", after)], tmp_path / "again.png")
    assert again.read_bytes() == png.read_bytes()


def test_otsu_separates_two_populations() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(10, 2, 5000), rng.normal(100, 10, 3000)])
    threshold = otsu(values)
    assert (values[:5000] < threshold).mean() > 0.99
    assert (values[5000:] > threshold).mean() > 0.99


def test_not_a_nifti_is_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "x.nii.gz"
    bad.write_bytes(b"not an image")
    with pytest.raises(BadInput):
        detect_face(bad)
