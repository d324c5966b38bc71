"""Copies of bids-examples datasets with their placeholder data files swapped for real ones.

The bids-examples repository (``benchmarks/corpus.py`` entry ``bids-examples``) ships
every data file empty or as one byte; its metadata is real. A copy made here keeps a few
participants (their rows of ``participants.tsv`` too) and writes real files in place of
the placeholders, shaped as the metadata says, so the official validator and every step
of windl read them as they would read a scanner's:

- images that show a face (:func:`windl.deid.deface.needs_defacing`): the real T1w head of
  ``../shared/data/pydeface_t1w_face`` at half its resolution (the release defaces it for
  real);
- other NIfTI images: a small 3D image, or 4D with as many volumes as the ``.bval``, the
  ``*_aslcontext.tsv`` or ``FrameTimesStart`` say, and the ``RepetitionTime`` of the
  (inherited) sidecar as the time step;
- physiological recordings (``.tsv.gz``): numbers in the sidecar's ``Columns``;
- EDF, BrainVision and FIF recordings: mne's test recordings of ``../shared/data``;
- CTF ``.ds`` folders: the empty ``.res4``/``.meg4`` from mne's
  ``testdata_ctf_short_discontinuous.ds`` (the example's own ``.infods``, ``.acq``,
  ``.hist`` are kept: they are real).
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np

from windl.deid.deface import needs_defacing

_NIFTI = (".nii", ".nii.gz")


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


def _head(path: Path) -> nib.Nifti1Image:
    """The real head at half its resolution (2 mm): defaced in seconds, not half a minute."""
    real = nib.load(path)
    affine = real.affine.copy()
    affine[:3, :3] *= 2
    return nib.Nifti1Image(np.asanyarray(real.dataobj)[::2, ::2, ::2], affine)


def _write_image(path: Path, root: Path, head: Path) -> None:
    if needs_defacing(path.name):
        image = _head(head)
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


def _write_continuous(path: Path, root: Path) -> None:
    """A gzipped headerless TSV (physio, stim) with the sidecar's ``Columns``: 100 rows."""
    width = len(_sidecar(path, root).get("Columns", ["value"]))
    rows = np.random.default_rng(0).normal(size=(100, width))
    text = "".join("\t".join(f"{v:.4f}" for v in row) + "\n" for row in rows)
    path.write_bytes(gzip.compress(text.encode(), mtime=0))


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


def _keep_sessions(root: Path, count: int) -> None:
    """Only the first ``count`` sessions of each participant (folders and table rows)."""
    for subject in sorted(p for p in root.glob("sub-*") if p.is_dir()):
        folders = sorted(p for p in subject.glob("ses-*") if p.is_dir())
        for folder in folders[count:]:
            shutil.rmtree(folder)
        kept = {p.name for p in folders[:count]}
        for table in subject.glob("*_sessions.tsv"):
            lines = table.read_text(encoding="utf-8-sig").splitlines()
            rows = [line for line in lines[1:] if line.split("\t")[0] in kept]
            table.write_text("\n".join([lines[0], *rows]) + "\n", encoding="utf-8")


def prepared(
    example: Path,
    target: Path,
    shared: Path,
    mne_testing: Callable[[], Path],
    keep: int = 1,
    sessions: int | None = None,
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
        How many participants to keep (``sub-emptyroom`` is always kept), first by name;
        ``derivatives/`` is left out.
    sessions
        How many sessions of each participant to keep (rows of ``*_sessions.tsv`` too);
        all when ``None``.
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
    if sessions is not None:
        _keep_sessions(target, sessions)
    head = shared / "pydeface_t1w_face" / "ds000031_sub-01_ses-006_run-001_T1w.nii.gz"
    for path in sorted(target.rglob("*")):
        if not path.is_file():
            continue
        empty = path.stat().st_size == 0
        # no example ships a real image (pet005's heads are 4D and empty, pet001's PET has
        # other frames than its sidecar): every one is swapped
        if path.name.endswith(_NIFTI):
            _write_image(path, target, head)
        elif path.name.endswith(".tsv.gz") and empty:
            _write_continuous(path, target)
        elif path.suffix == ".pos" and empty:  # ds000117's head shape: ds000247's real one
            real = example.parent / "ds000247" / "sub-0002" / "ses-0001" / "meg"
            shutil.copyfile(real / "sub-0002_ses-0001_headshape.pos", path)
        elif path.suffix == ".edf" and empty:
            shutil.copyfile(shared / "mne_testfiles" / "edf" / "test.edf", path)
        elif path.suffix == ".fif" and empty:
            shutil.copyfile(shared / "mne_testfiles" / "fif" / "test_ctf_comp_raw.fif", path)
        elif path.suffix == ".eeg" and empty:
            _brainvision(path, shared / "mne_testfiles" / "brainvision")
        elif path.suffix in (".res4", ".meg4") and empty:
            ctf = mne_testing() / "CTF" / "testdata_ctf_short_discontinuous.ds"
            real = ctf / f"testdata_ctf_short_discontinuous{path.suffix}"
            if real.is_file():
                shutil.copyfile(real, path)
    return target
