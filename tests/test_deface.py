"""Defacing (issue 9, part 5) on a real T1w head with a face: pydeface's own test image.

Real registration (SimpleITK), pydeface 2.1's real template and face mask; nothing mocked.
The image is ``../shared/data/pydeface_t1w_face`` (OpenNeuro ds000031, CC0; see its
MANIFEST.md). Defacing runs once per module; the determinism test runs it again in a child
process, the ``.nii`` test once more.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from numpy.typing import NDArray

from windl.deid.deface import (
    DefaceFailed,
    DefaceRecord,
    check_plausible,
    deface,
    deface_mosaic,
    face_check,
    map_face_mask,
    needs_defacing,
)
from windl.errors import BadInput

IMAGE = Path("pydeface_t1w_face") / "ds000031_sub-01_ses-006_run-001_T1w.nii.gz"
IMAGE_SHA256 = "577d1484b5376b3925e9a4141d9f4534b0f29e1df7feeea3427525a19b91c5d2"

#: The same template registered to the same image by two other engines, found once with
#: benchmarks/bench_deface.py's alternatives (image world -> template world, RAS+ mm).
#: They check windl's fast registration against registrations that share none of its code
#: path or settings: the face they map must be zero in the output too.
INDEPENDENT_TRANSFORMS = {
    # ants.registration(type_of_transform="Affine"), defaults (4 levels, full resolution)
    "antspyx-0.6.3": [
        [0.979673, 0.038338, 0.061762, -3.986373],
        [-0.055934, 0.912656, 0.144333, 15.710345],
        [-0.064846, -0.136417, 0.908538, -5.666162],
        [0.0, 0.0, 0.0, 1.0],
    ],
    # dipy AffineRegistration, MI: translation -> rigid -> affine, 2 mm, factors 4-2-1
    "dipy-1.12.1": [
        [0.980581, 0.038989, 0.058223, -4.127421],
        [-0.056753, 0.916509, 0.146781, 15.832127],
        [-0.059075, -0.143444, 0.906506, -5.588756],
        [0.0, 0.0, 0.0, 1.0],
    ],
}


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def source(data: Path) -> Path:
    path = data / IMAGE
    if not path.is_file():
        pytest.fail(f"test image missing: {path}")
    return path


@pytest.fixture(scope="module")
def defaced(source: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DefaceRecord]:
    out = tmp_path_factory.mktemp("deface") / "sub-01_T1w.nii.gz"
    record = deface(source, out)
    return out, record


def voxels(path: Path) -> NDArray[np.generic]:
    return np.asanyarray(nib.load(path).dataobj.get_unscaled())


def nifti_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def brain_region(image: nib.Nifti1Image) -> NDArray[np.bool_]:
    """A brain mask made from the image alone: threshold, erosion, largest component.

    Smooth (sigma 1.5 voxels), keep voxels above 35 % of the 99th percentile (between CSF
    and grey matter on this T1w), erode 9 times (6-connected) so that brain, scalp, eyes
    and neck fall apart, keep the largest piece and dilate it back inside the threshold.
    It uses neither the template nor any registration, so a wrong registration cannot
    agree with it by construction; it covers the whole brain up to the cortex, including
    the orbitofrontal cortex right behind the face mask (see the volume check below).
    """
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(np.asarray(image.dataobj, dtype=np.float32), 1.5)
    inside = smooth > 0.35 * np.percentile(smooth[smooth > 0], 99)
    cross = ndimage.generate_binary_structure(3, 1)
    core = ndimage.binary_erosion(inside, cross, iterations=9)
    labels, _ = ndimage.label(core)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    brain = ndimage.binary_dilation(labels == sizes.argmax(), cross, iterations=9) & inside
    return np.asarray(brain, dtype=bool)


# ----------------------------------------------------------------------------- the face
@pytest.mark.parametrize("engine", sorted(INDEPENDENT_TRANSFORMS))
def test_face_zero_under_independent_registration(
    defaced: tuple[Path, DefaceRecord], engine: str
) -> None:
    """>= 95 % of the face mask, mapped by another engine's registration, is zero."""
    out, _ = defaced
    fraction = face_check(out, INDEPENDENT_TRANSFORMS[engine])
    assert fraction >= 0.95, f"only {fraction:.1%} of the face ({engine} mapping) is zero"


def test_face_check_with_the_record(source: Path, defaced: tuple[Path, DefaceRecord]) -> None:
    """The audit's check: with the record (object or JSON) the whole face is zero."""
    out, record = defaced
    assert face_check(out, record) == 1.0
    assert face_check(out, json.loads(record.to_json())) == 1.0
    assert face_check(out, record.transform.matrix) == 1.0
    # the original shows the face: the check is not satisfied by an untouched image
    assert face_check(source, record) < 0.5
    assert record.face_voxels > 500_000  # ~1.7 M voxels of 0.8 mm^3: the lower front head
    assert record.voxels_zeroed > 0.5 * record.face_voxels


# ----------------------------------------------------------------------------- the brain
def test_brain_unchanged(source: Path, defaced: tuple[Path, DefaceRecord]) -> None:
    """>= 99.9 % of a brain mask made from the image alone keeps its values."""
    out, _ = defaced
    image = nib.load(source)
    brain = brain_region(image)
    volume_ml = brain.sum() * float(np.prod(image.header.get_zooms()[:3])) / 1000
    assert 1000 < volume_ml < 1800, f"brain mask failed ({volume_ml:.0f} ml), not defacing"
    unchanged = np.mean(voxels(out)[brain] == voxels(source)[brain])
    assert unchanged >= 0.999, f"{1 - unchanged:.3%} of the brain changed"


def test_only_face_voxels_change(source: Path, defaced: tuple[Path, DefaceRecord]) -> None:
    """Header (with affine, dtype, extensions) byte-identical; changed voxels are 0 and face."""
    out, record = defaced
    before, after = nifti_bytes(source), nifti_bytes(out)
    offset = int(nib.load(source).header["vox_offset"])
    assert len(after) == len(before)
    assert after[:offset] == before[:offset]
    img_in, img_out = nib.load(source), nib.load(out)
    assert img_out.get_data_dtype() == img_in.get_data_dtype()
    assert np.array_equal(img_out.affine, img_in.affine)
    old, new = voxels(source), voxels(out)
    changed = old != new
    assert int(changed.sum()) == record.voxels_zeroed
    assert not new[changed].any()
    face = map_face_mask(img_in.shape, img_in.affine, record.transform.matrix)
    assert int(face.sum()) == record.face_voxels
    assert not (changed & ~face).any()
    assert not new[face].any()


# ----------------------------------------------------------------------------- determinism
def test_deterministic(source: Path, defaced: tuple[Path, DefaceRecord], tmp_path: Path) -> None:
    """A second run, in another process with another ITK thread count: same bytes, same
    transform to the last bit (a tiny drift would rarely change a voxel, so bytes alone are
    a weak check)."""
    out, record = defaced
    again = tmp_path / "again" / "sub-01_T1w.nii.gz"
    code = (
        "import sys; from pathlib import Path; from windl.deid.deface import deface; "
        "print(deface(Path(sys.argv[1]), Path(sys.argv[2])).to_json())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(source), str(again)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": "3"},
    )
    assert again.read_bytes() == out.read_bytes()
    assert DefaceRecord.from_dict(json.loads(proc.stdout)).transform == record.transform
    header = out.read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # gzip MTIME 0
    assert header[3] & 0x08 == 0  # no FNAME field


def test_uncompressed_output(
    source: Path, defaced: tuple[Path, DefaceRecord], tmp_path: Path
) -> None:
    """``.nii`` output holds exactly the bytes inside the ``.nii.gz`` output."""
    out, record = defaced
    plain = tmp_path / "sub-01_T1w.nii"
    second = deface(source, plain)
    assert plain.read_bytes() == gzip.decompress(out.read_bytes())
    assert second.transform == record.transform
    assert second.output_sha256 == hashlib.sha256(plain.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- the record
def test_record_fields(source: Path, defaced: tuple[Path, DefaceRecord]) -> None:
    out, record = defaced
    import SimpleITK

    assert record.engine == "SimpleITK"
    assert record.engine_version == SimpleITK.Version.VersionString() == "2.5.7"
    assert record.tool == "windl.deid.deface" and record.tool_version
    for entry, name in ((record.template, "mean_reg2mean"), (record.face_mask, "facemask")):
        assert entry.package == "pydeface" and entry.package_version == "2.1.0"
        assert entry.path == f"data/{name}.nii.gz"
        data = files("pydeface").joinpath(entry.path).read_bytes()
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert record.input_sha256 == IMAGE_SHA256
    assert record.output_sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    matrix = np.asarray(record.transform.matrix)
    assert matrix.shape == (4, 4)
    assert np.array_equal(matrix[3], [0, 0, 0, 1])
    assert 0.7 < abs(np.linalg.det(matrix[:3, :3])) < 1.3  # a head, not a collapse
    assert len(record.transform.engine_parameters) == 12
    assert len(record.transform.engine_fixed_parameters) == 3
    assert record.transform.iterations > 0
    assert record.settings["threads"] == 1 and record.settings["sampling_seed"]
    assert set(record.timings) == {"load", "register", "mask", "write", "total"}
    assert all(value >= 0 for value in record.timings.values())
    text = record.to_json()
    assert DefaceRecord.from_dict(json.loads(text)) == record
    assert "sub-01" not in text and str(source) not in text  # no names, no paths


# ----------------------------------------------------------------------------- which files
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sub-01_T1w.nii.gz", True),
        ("sub-01/ses-1/anat/sub-01_ses-1_acq-mprage_run-2_T1w.nii.gz", True),
        ("sub-01_T2w.nii", True),
        ("sub-01_FLAIR.nii.gz", True),
        ("sub-01_PDw.nii.gz", True),
        ("sub-01_PD.nii.gz", True),
        ("sub-01_T2starw.nii.gz", True),
        ("sub-01_inv-2_MP2RAGE.nii.gz", True),
        ("sub-01_UNIT1.nii.gz", True),
        ("sub-01_echo-1_MEGRE.nii.gz", True),
        ("sub-01_angio.nii.gz", True),
        ("sub-01_T1w", True),
        ("derivatives/x/sub-01_desc-preproc_T1w.nii.gz", True),
        ("sub-01\\anat\\sub-01_T1w.nii.gz", True),
        ("sub-01_T1w.json", False),
        ("sub-01_defacemask.nii.gz", False),
        ("sub-01_task-rest_bold.nii.gz", False),
        ("sub-01_dwi.nii.gz", False),
        ("sub-01_magnitude1.nii.gz", False),
        ("sub-01_Chimap.nii.gz", False),
        ("sub-01_space-MNI_desc-brain_mask.nii.gz", False),
        ("sub-01_t1w.nii.gz", False),  # BIDS suffixes are case-sensitive
        ("participants.tsv", False),
        ("", False),
    ],
)
def test_needs_defacing(name: str, expected: bool) -> None:
    assert needs_defacing(name) is expected


# ----------------------------------------------------------------------------- mosaic
def test_mosaic(source: Path, defaced: tuple[Path, DefaceRecord], tmp_path: Path) -> None:
    from PIL import Image

    out, _ = defaced
    first = deface_mosaic(source, out, tmp_path / "qc" / "mosaic.png")
    second = deface_mosaic(source, out, tmp_path / "again.png")
    assert first.read_bytes() == second.read_bytes()
    with Image.open(first) as png:
        assert png.format == "PNG"
        width, height = png.size
        pixels = np.asarray(png.convert("L"), dtype=float)
    assert width > height > 300
    top, bottom = pixels[: height // 2], pixels[height // 2 :]
    assert top.mean() > bottom.mean()  # the face is gone from the lower (after) row
    assert not list(tmp_path.glob("**/.*.tmp"))


# ----------------------------------------------------------------------------- bad input
def test_bad_input(tmp_path: Path, source: Path) -> None:
    sidecar = tmp_path / "sub-01_T1w.json"
    sidecar.write_text("{}")
    with pytest.raises(BadInput, match=r"sub-01_T1w\.json: not a NIfTI image"):
        deface(sidecar, tmp_path / "out.nii.gz")

    broken = tmp_path / "broken_T1w.nii.gz"
    broken.write_bytes(source.read_bytes()[:100_000])
    with pytest.raises(BadInput, match=r"broken_T1w\.nii\.gz: damaged gzip"):
        deface(broken, tmp_path / "out.nii.gz")

    garbage = tmp_path / "garbage_T1w.nii"
    garbage.write_bytes(os.urandom(2048))
    with pytest.raises(BadInput, match=r"garbage_T1w\.nii: not a single-file NIfTI"):
        deface(garbage, tmp_path / "out.nii.gz")

    flat = tmp_path / "flat_T1w.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8), dtype=np.int16), np.eye(4)), flat)
    with pytest.raises(BadInput, match=r"flat_T1w\.nii\.gz: not a 3D or 4D image"):
        deface(flat, tmp_path / "out.nii.gz")

    with pytest.raises(BadInput, match=r"out\.mgz: output must end in \.nii or \.nii\.gz"):
        deface(source, tmp_path / "out.mgz")
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".*.tmp"))


def test_implausible_registration_refused(tmp_path: Path) -> None:
    """A transform that shrinks, stretches or mirrors the head is refused, naming the file."""
    image = tmp_path / "sub-01_T1w.nii.gz"
    check_plausible(INDEPENDENT_TRANSFORMS["antspyx-0.6.3"], image)
    for matrix in (np.diag([0.5, 0.5, 0.5, 1]), np.diag([1, 1, 2, 1]), np.diag([-1, 1, 1, 1])):
        with pytest.raises(DefaceFailed, match=r"sub-01_T1w\.nii\.gz: defacing refused"):
            check_plausible(matrix, image)
