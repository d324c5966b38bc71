"""Copies of bids-examples datasets with their placeholder data files swapped for real ones.

The bids-examples repository (``benchmarks/corpus.py`` entry ``bids-examples``) ships
every data file empty or as one byte; its metadata is real. A copy made here keeps a few
participants (their rows of ``participants.tsv`` too) and writes real files in place of
the placeholders, shaped as the metadata says, so the official validator and every step
of windl read them as they would read a scanner's:

- images that show a face (:func:`windl.deid.deface.needs_defacing`): the real T1w head of
  ``../shared/data/pydeface_t1w_face`` (the release defaces it for real);
- other NIfTI images: a small 3D image, or 4D with as many volumes as the ``.bval``, the
  ``*_aslcontext.tsv`` or ``FrameTimesStart`` say, and the ``RepetitionTime`` of the
  (inherited) sidecar as the time step;
- EDF, BrainVision and FIF recordings: mne's test recordings of ``../shared/data``;
- CTF ``.ds`` folders: the empty ``.res4``/``.meg4`` from mne's ``testdata_ctf_short.ds``
  (the example's own ``.infods``, ``.acq``, ``.hist`` are kept: they are real).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np

from windl.deid.deface import needs_defacing

_NIFTI = (".nii", ".nii.gz")


def _is_image(path: Path) -> bool:
    """A readable NIfTI (not a placeholder)."""
    if path.stat().st_size <= 348:
        return False
    try:
        nib.load(path).header  # noqa: B018 (reading the header is the check)
    except Exception:  # nibabel raises many kinds for a broken file
        return False
    return True


def _stem(path: Path) -> str:
    return path.name.split(".", 1)[0]


def _sidecar(path: Path, root: Path) -> dict:
    """The metadata of ``path`` with BIDS inheritance (top-level sidecars first)."""
    name = _stem(path)
    entities = set(name.split("_")[:-1])
    suffix = name.rsplit("_", 1)[-1]
    folders = [path.parent, *path.parent.parents]
    folders = folders[: folders.index(root) + 1]
    meta: dict = {}
    for folder in reversed(folders):
        for candidate in sorted(folder.glob(f"*{suffix}.json")):
            parts = _stem(candidate).split("_")
            if parts[-1] == suffix and set(parts[:-1]) <= entities:
                meta.update(json.loads(candidate.read_text(encoding="utf-8")))
    return meta


def _volumes(path: Path, root: Path) -> int | None:
    """How many volumes the metadata says ``path`` has (None: a 3D image)."""
    name = _stem(path)
    suffix = name.rsplit("_", 1)[-1]
    bval = path.with_name(name + ".bval")
    if suffix == "dwi" and bval.is_file():
        return len(bval.read_text().split())
    context = path.with_name(name.rsplit("_", 1)[0] + "_aslcontext.tsv")
    if suffix == "asl" and context.is_file():
        return len(context.read_text().strip().splitlines()) - 1
    if suffix in ("bold", "cbv", "pet", "asl", "phase"):
        return len(_sidecar(path, root).get("FrameTimesStart", [0] * 4))
    return None


def _write_image(path: Path, root: Path, head: Path) -> None:
    if needs_defacing(path.name):
        real = nib.load(head)
        image = nib.Nifti1Image(np.asanyarray(real.dataobj), real.affine, real.header)
    else:
        volumes = _volumes(path, root)
        shape = (16, 16, 8) if volumes is None else (16, 16, 8, volumes)
        voxels = np.random.default_rng(0).integers(0, 1000, shape).astype(np.int16)
        image = nib.Nifti1Image(voxels, np.diag([3.0, 3.0, 3.0, 1.0]))
        image.header.set_xyzt_units("mm", "sec")
        if volumes is not None:
            image.header["pixdim"][4] = _sidecar(path, root).get("RepetitionTime", 1.0)
    path.unlink()
    nib.save(image, path)


def _brainvision(eeg: Path, source: Path) -> None:
    """mne's BrainVision triplet in place of ``eeg`` (header and markers point to it)."""
    shutil.copyfile(source / "test.eeg", eeg)
    header = (source / "test.vhdr").read_text(encoding="latin-1")
    header = header.replace("DataFile=test.eeg", f"DataFile={eeg.name}")
    header = header.replace("MarkerFile=test.vmrk", f"MarkerFile={eeg.stem}.vmrk")
    eeg.with_suffix(".vhdr").write_text(header, encoding="latin-1")
    markers = (source / "test.vmrk").read_text(encoding="latin-1")
    markers = markers.replace("DataFile=test.eeg", f"DataFile={eeg.name}")
    eeg.with_suffix(".vmrk").write_text(markers, encoding="latin-1")


def prepared(
    example: Path, target: Path, shared: Path, mne_testing: Callable[[], Path], keep: int = 1
) -> Path:
    """A copy of the bids-example ``example`` at ``target`` with real data files.

    Parameters
    ----------
    example
        A dataset folder of bids-examples.
    target
        Where the copy goes (must not exist).
    shared
        ``../shared/data``.
    mne_testing
        Returns the mne-testing-data folder (called only for CTF recordings).
    keep
        How many participants to keep (``sub-emptyroom`` is always kept), first by name.
    """
    subjects = sorted(p.name for p in example.glob("sub-*") if p.is_dir())
    kept = [s for s in subjects if s != "sub-emptyroom"][:keep]
    kept += [s for s in subjects if s == "sub-emptyroom"]

    def ignore(folder: str, names: list[str]) -> list[str]:
        if Path(folder) != example:
            return []
        return [n for n in names if (n.startswith("sub-") and n not in kept) or n == "derivatives"]

    shutil.copytree(example, target, ignore=ignore)
    table = target / "participants.tsv"
    if table.is_file():
        lines = table.read_bytes().decode("utf-8-sig").splitlines()
        rows = [line for line in lines[1:] if line.split("\t")[0] in kept]
        table.write_text("\n".join([lines[0], *rows]) + "\n", encoding="utf-8")
    head = shared / "pydeface_t1w_face" / "ds000031_sub-01_ses-006_run-001_T1w.nii.gz"
    for path in sorted(target.rglob("*")):
        if not path.is_file():
            continue
        empty = path.stat().st_size == 0
        if path.name.endswith(_NIFTI) and not _is_image(path):
            _write_image(path, target, head)
        elif path.suffix == ".edf" and empty:
            shutil.copyfile(shared / "mne_testfiles" / "edf" / "test.edf", path)
        elif path.suffix == ".fif" and empty:
            shutil.copyfile(shared / "mne_testfiles" / "fif" / "test_ctf_comp_raw.fif", path)
        elif path.suffix == ".eeg" and empty:
            _brainvision(path, shared / "mne_testfiles" / "brainvision")
        elif path.suffix in (".res4", ".meg4") and empty:
            ctf = mne_testing() / "CTF" / "testdata_ctf_short.ds"
            real = ctf / f"testdata_ctf_short{path.suffix}"
            if real.is_file():
                shutil.copyfile(real, path)
    return target
