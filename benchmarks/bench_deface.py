"""Benchmark defacing: seconds and peak memory per image, windl's engine and alternatives.

What is measured
----------------
Each measurement runs in a fresh child process, so that its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, imports included) is its own:

windl (SimpleITK)
    :func:`windl.deid.deface.deface` from start to end: read the image, register the
    pydeface template, map the face mask, zero it, write a ``.nii.gz``. This is what a
    release build pays per image.
antspyx, dipy (alternatives)
    Only load + affine registration of the same template to the same image (to ~2 mm, a
    three-level pyramid, Mattes / Parzen mutual information, 25 % sampling), i.e. the part
    that the engine choice changes; the rest would be the same numpy code.
antspyx-default (with ``--slow``)
    ``ants.registration(type_of_transform="Affine")`` with its defaults (four levels up to
    full resolution), the "just call the library" baseline.

Accuracy: each transform is compared with a full-resolution reference registration
(SimpleITK, three levels, 50 % sampling, found once in 513 s), as the mean and the largest
displacement (mm) over head voxels (intensity > 50, every 4th voxel per axis). Wall time
on a shared machine varies with its load; CPU time is reported too.

Usage
-----
``python benchmarks/bench_deface.py [--repeat N] [--image NII] [--alt-python PY] [--slow]``

``--alt-python`` names an interpreter that has ``antspyx==0.6.3`` / ``dipy==1.12.1``
(they are not windl dependencies; default: this interpreter). Engines that do not import
there are skipped with a note. Prints a table (median over repetitions) and writes
``benchmarks/results/deface.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "deface.json"
DEFAULT_IMAGE = Path(
    "/work/shared/data/pydeface_t1w_face/ds000031_sub-01_ses-006_run-001_T1w.nii.gz"
)
#: Reference transform for DEFAULT_IMAGE (image world -> template world, RAS+ mm):
#: SimpleITK Mattes MI, full resolution, shrink 4-2-1, sigmas 4-2-0 mm, 50 % sampling,
#: learning rate 1, min step 1e-4; 513 s.
REFERENCE = [
    [0.9816283, 0.0373687, 0.0612229, -3.9676356],
    [-0.0547796, 0.9144741, 0.1480921, 15.9538993],
    [-0.0630152, -0.1399707, 0.903633, -5.4401171],
    [0.0, 0.0, 0.0, 1.0],
]
ENGINES = ("windl", "antspyx", "dipy")
SLOW_ENGINES = ("antspyx-default",)


# ----------------------------------------------------------------------------- children
def _block_mean(path: str, mm: float) -> tuple[Any, Any]:
    """Block-average an image to ~mm (integer factors); return float32 data and affine."""
    import nibabel as nib
    import numpy as np

    img = nib.load(path)
    data = np.asarray(img.dataobj, dtype=np.float32)
    zooms = np.linalg.norm(img.affine[:3, :3], axis=0)
    f = np.maximum(1, np.round(mm / zooms)).astype(int)
    n = np.array(data.shape[:3]) // f
    data = data[: n[0] * f[0], : n[1] * f[1], : n[2] * f[2]]
    data = data.reshape(n[0], f[0], n[1], f[1], n[2], f[2]).mean(axis=(1, 3, 5))
    affine = img.affine.copy()
    affine[:3, 3] = img.affine[:3, :3] @ ((f - 1) / 2) + img.affine[:3, 3]
    affine[:3, :3] = img.affine[:3, :3] * f
    return data.astype(np.float32), affine


def child_windl(image: str, template: str, work: Path) -> dict[str, Any]:
    import SimpleITK

    from windl.deid.deface import deface

    record = deface(Path(image), work / "defaced.nii.gz")
    return {
        "version": f"SimpleITK {SimpleITK.Version.VersionString()}",
        "matrix": record.transform.matrix,
        "steps": record.timings,
    }


def child_antspyx(image: str, template: str, work: Path, default: bool = False) -> dict[str, Any]:
    import ants
    import numpy as np

    fixed, moving = ants.image_read(image), ants.image_read(template)
    options: dict[str, Any] = {}
    if not default:
        fixed = ants.resample_image(fixed, (2.0, 2.0, 2.0), False, 0)
        moving = ants.resample_image(moving, (2.0, 2.0, 2.0), False, 0)
        options = {
            "aff_random_sampling_rate": 0.25,
            "aff_iterations": (1000, 500, 100),
            "aff_shrink_factors": (4, 2, 1),
            "aff_smoothing_sigmas": (2, 1, 0),
        }
    result = ants.registration(
        fixed, moving, type_of_transform="Affine", random_seed=42, outprefix=f"{work}/", **options
    )
    transform = ants.read_transform(result["fwdtransforms"][0])
    params = np.asarray(transform.parameters, dtype=float)
    centre = np.asarray(transform.fixed_parameters, dtype=float)
    matrix = params[:9].reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = matrix
    lps[:3, 3] = params[9:] + centre - matrix @ centre
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return {"version": f"antspyx {ants.__version__}", "matrix": (flip @ lps @ flip).tolist()}


def child_dipy(image: str, template: str, work: Path) -> dict[str, Any]:
    import dipy
    import numpy as np
    from dipy.align.imaffine import (
        AffineRegistration,
        MutualInformationMetric,
        transform_centers_of_mass,
    )
    from dipy.align.transforms import (
        AffineTransform3D,
        RigidTransform3D,
        TranslationTransform3D,
    )

    static, static_affine = _block_mean(image, 2.0)
    moving, moving_affine = _block_mean(template, 2.0)
    np.random.seed(42)
    registration = AffineRegistration(
        metric=MutualInformationMetric(nbins=32, sampling_proportion=0.25),
        level_iters=[1000, 200, 50],
        sigmas=[2.0, 1.0, 0.0],
        factors=[4, 2, 1],
        verbosity=0,
    )
    current = transform_centers_of_mass(static, static_affine, moving, moving_affine).affine
    for kind in (TranslationTransform3D(), RigidTransform3D(), AffineTransform3D()):
        current = registration.optimize(
            static,
            moving,
            kind,
            None,
            static_grid2world=static_affine,
            moving_grid2world=moving_affine,
            starting_affine=current,
        ).affine
    return {"version": f"dipy {dipy.__version__}", "matrix": np.asarray(current).tolist()}


def run_child(engine: str, image: str, template: str) -> None:
    """Measure one engine in this process and print one JSON line."""
    import resource
    import time

    start_wall, start_cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="bench-deface-") as tmp:
        work = Path(tmp)
        if engine == "windl":
            out = child_windl(image, template, work)
        elif engine in ("antspyx", "antspyx-default"):
            out = child_antspyx(image, template, work, default=engine == "antspyx-default")
        elif engine == "dipy":
            out = child_dipy(image, template, work)
        else:
            raise SystemExit(f"unknown engine {engine}")
    out.update(
        engine=engine,
        wall_s=time.perf_counter() - start_wall,
        cpu_s=time.process_time() - start_cpu,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    print(json.dumps(out))


# ----------------------------------------------------------------------------- parent
def available(python: str, engine: str) -> bool:
    module = {"windl": "windl.deid.deface", "dipy": "dipy.align.imaffine"}.get(engine, "ants")
    proc = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True)
    return proc.returncode == 0


def measure(python: str, engine: str, image: Path, template: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [python, __file__, "--child", engine, "--image", str(image), "--template", str(template)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{engine} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def displacement(image: Path, matrix: Sequence[Sequence[float]]) -> tuple[float, float]:
    """Mean and max distance (mm) between ``matrix`` and REFERENCE over head voxels."""
    import nibabel as nib
    import numpy as np

    img = nib.load(image)
    data = np.asarray(img.dataobj)[::4, ::4, ::4]
    ijk = np.argwhere(data > 50) * 4
    points = img.affine @ np.c_[ijk, np.ones(len(ijk))].T
    diff = np.linalg.norm(((np.asarray(matrix) - np.asarray(REFERENCE)) @ points)[:3], axis=0)
    return float(diff.mean()), float(diff.max())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per engine (3)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="a T1w with a face")
    parser.add_argument("--alt-python", default=sys.executable, help="python with antspyx/dipy")
    parser.add_argument("--slow", action="store_true", help="also antspyx with its defaults")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--template", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        run_child(args.child, str(args.image), args.template)
        return 0
    template = Path(str(files("pydeface").joinpath("data/mean_reg2mean.nii.gz")))
    engines = [*ENGINES, *(SLOW_ENGINES if args.slow else ())]
    rows: list[dict[str, Any]] = []
    for engine in engines:
        python = sys.executable if engine == "windl" else args.alt_python
        if not available(python, engine):
            print(f"skipped {engine}: not importable by {python}", file=sys.stderr)
            continue
        runs = [measure(python, engine, args.image, template) for _ in range(args.repeat)]
        mean_mm, max_mm = displacement(args.image, runs[-1]["matrix"])
        rows.append(
            {
                "engine": engine,
                "version": runs[-1]["version"],
                "scope": "whole deface()" if engine == "windl" else "load + registration",
                "wall_s": statistics.median(r["wall_s"] for r in runs),
                "cpu_s": statistics.median(r["cpu_s"] for r in runs),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                "vs_reference_mean_mm": mean_mm,
                "vs_reference_max_mm": max_mm,
                "steps": runs[-1].get("steps"),
                "runs": runs,
            }
        )
    header = f"{'engine':16} {'version':18} {'scope':20} {'wall s':>7} {'cpu s':>7}"
    print(f"{header} {'peak MB':>8} {'mean mm':>8} {'max mm':>7}")
    for row in rows:
        print(
            f"{row['engine']:16} {row['version']:18} {row['scope']:20} {row['wall_s']:7.2f} "
            f"{row['cpu_s']:7.2f} {row['peak_rss_mb']:8.0f} {row['vs_reference_mean_mm']:8.2f} "
            f"{row['vs_reference_max_mm']:7.2f}"
        )
    for row in rows:
        if row["steps"]:
            print(f"{row['engine']} steps (s): {row['steps']}")
    result = {
        "image": str(args.image),
        "repeat": args.repeat,
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "loadavg": os.getloadavg(),
        },
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
