"""Jobs: a dataset's ``datalad run`` units done in parallel, on this machine or on Slurm.

git cannot commit concurrently in one working tree, so each job (e.g. one session's
conversion) runs its ``datalad run`` commands in a worktree of its own (see
:func:`windl.datasets.add_job_worktree`), on its own branch, from the same base commit.
The expensive part (heudiconv/dcm2niix, mne-bids) thereby runs in parallel; the records it
makes are ordinary ``datalad run`` commits that ``datalad rerun`` repeats. The caller then
replays the jobs' commits onto the dataset's branch one job at a time, in a fixed order
(:func:`windl.datasets.replay_commits`), so the history is linear and the same whatever
order the jobs finished in.

This is the clone-per-job model of the "FAIRly big" workflow (Wagner et al. 2022: a
clone and branch per job, merged back afterwards), with worktrees instead of clones
(no copy of inputs or outputs: worktrees share the annex) and a linear replay instead
of an octopus merge (``windl methods`` and ``reproduce`` read first-parent history).

Executors:

- ``local``: a process pool of ``jobs`` workers.
- ``slurm``: each job is one ``sbatch`` job running ``python -m windl.jobs SPEC RESULT``
  on a node that sees the dataset's folder (a shared filesystem, as on every cluster);
  ``windl`` waits for the results and replays them. Options for ``sbatch`` (partition,
  time limit, …) come from ``windl.toml`` ``[slurm] sbatch_args = [...]``.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from windl import datasets
from windl.checkpoints import checkpoint
from windl.errors import WindlError
from windl.files import atomic_write_text

EXECUTORS = ("local", "slurm")
#: how often the Slurm executor looks at the queue, seconds
SLURM_POLL = 1.0


@dataclass(frozen=True)
class Run:
    """One ``datalad run`` of a job (the arguments of :func:`windl.datasets.datalad_run`)."""

    cmd: str
    inputs: list[str]
    outputs: list[str]
    message: str
    log: str
    explicit: bool = True


@dataclass(frozen=True)
class JobSpec:
    """What a job does: its runs, in order, in a worktree of ``dataset`` at ``base``."""

    dataset: str
    name: str
    base: str
    runs: list[Run]
    folders: list[str] = field(default_factory=list)  # checked out besides code/ (outputs)
    subdatasets: dict[str, list[str]] = field(default_factory=dict)  # path → paths read
    pinned: dict[str, str] = field(default_factory=dict)  # subdataset path → commit to use

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        raw = json.loads(text)
        return cls(**{**raw, "runs": [Run(**r) for r in raw["runs"]]})


@dataclass
class JobResult:
    """The commits a job made (oldest first) and, if it failed, why."""

    name: str
    commits: list[str]
    error: str | None = None


def run_job(spec: JobSpec) -> JobResult:
    """Do ``spec``'s runs in a worktree of its own; the worktree is gone afterwards.

    A failing run ends the job; the commits of the runs before it are kept (each is a
    complete record) and returned with the error.
    """
    ds = Path(spec.dataset)
    error = None
    checkpoint("job-start", spec.name)
    try:
        worktree = datasets.add_job_worktree(
            ds, spec.name, spec.base, spec.folders, spec.subdatasets, spec.pinned
        )
        for run in spec.runs:
            datasets.datalad_run(
                worktree,
                run.cmd,
                inputs=run.inputs,
                outputs=run.outputs,
                message=run.message,
                log=Path(run.log),
                explicit=run.explicit,
            )
    except WindlError as exc:
        error = exc.message
    except Exception as exc:  # a job's crash must not end the others: report it
        error = f"{type(exc).__name__}: {exc}"
    finally:
        datasets.remove_job_worktree(ds, spec.name)
    result = JobResult(spec.name, datasets.job_commits(ds, spec.name, spec.base), error)
    checkpoint("job-end", spec.name)
    return result


def run_jobs(
    specs: Sequence[JobSpec],
    jobs: int = 1,
    executor: str = "local",
    sbatch_args: Sequence[str] = (),
    sizes: Sequence[float] | None = None,
) -> Iterator[JobResult]:
    """Run ``specs`` with ``executor``; yield their results in the order of ``specs``.

    Results come as soon as they and all earlier ones are done, so the caller can replay
    each while later jobs still run. ``jobs`` bounds the local pool; Slurm schedules on
    its own. With ``sizes`` (e.g. input files per job) the biggest jobs start first, so a
    big one started last does not keep one core busy while the other idles.
    """
    if executor not in EXECUTORS:
        raise WindlError(f"unknown executor {executor!r} (one of {', '.join(EXECUTORS)})")
    if not specs:
        return
    if executor == "slurm":
        yield from _run_on_slurm(specs, sbatch_args)
        return
    if jobs < 1:
        raise WindlError(f"--jobs must be at least 1, not {jobs}")
    order = sorted(range(len(specs)), key=lambda i: -sizes[i]) if sizes else range(len(specs))
    # DataLad imported once, here, and forked into the workers: importing it in each
    # worker was most of what --jobs 2 cost in CPU over --jobs 1. Nothing of DataLad has
    # run in this process yet, so the workers inherit no open state of it.
    datasets.import_datalad()
    checkpoint("jobs-start")
    with ProcessPoolExecutor(min(jobs, len(specs)), mp_context=get_context("fork")) as pool:
        futures = {i: pool.submit(run_job, specs[i]) for i in order}
        for i, spec in enumerate(specs):
            try:
                yield futures[i].result()
            except Exception as exc:  # a worker died (killed, out of memory): say so
                commits = datasets.job_commits(Path(spec.dataset), spec.name, spec.base)
                yield JobResult(spec.name, commits, f"job process failed: {exc!r}")


# ----------------------------------------------------------------------------- Slurm
def _job_files(spec: JobSpec) -> tuple[Path, Path, Path]:
    folder = Path(spec.dataset) / datasets.WINDL_GITDIR / "slurm"
    return (
        folder / f"{spec.name}.spec.json",
        folder / f"{spec.name}.result.json",
        folder / f"{spec.name}.out",
    )


def _sbatch(spec: JobSpec, sbatch_args: Sequence[str]) -> str:
    spec_file, result_file, out_file = _job_files(spec)
    spec_file.parent.mkdir(parents=True, exist_ok=True)
    result_file.unlink(missing_ok=True)
    atomic_write_text(spec_file, json.dumps(asdict(spec), indent=1) + "\n")
    command = shlex.join([sys.executable, "-m", "windl.jobs", str(spec_file), str(result_file)])
    proc = datasets.run_tool(
        [
            "sbatch",
            "--parsable",
            f"--job-name=windl-{spec.name}",
            f"--output={out_file}",
            f"--chdir={spec.dataset}",
            *sbatch_args,
            f"--wrap={command}",
        ]
    )
    return proc.stdout.strip().split(";")[0]


def _queued(job_ids: Sequence[str]) -> set[str]:
    proc = datasets.run_tool(["squeue", "-h", "-o", "%i", "-j", ",".join(job_ids)], check=False)
    # squeue exits non-zero when none of the ids is known any more
    return set(proc.stdout.split()) if proc.returncode == 0 else set()


def _run_on_slurm(specs: Sequence[JobSpec], sbatch_args: Sequence[str]) -> Iterator[JobResult]:
    datasets.require_tool("sbatch")
    ids = [_sbatch(spec, sbatch_args) for spec in specs]
    try:
        for spec, job_id in zip(specs, ids, strict=True):
            yield _wait_for(spec, job_id)
    finally:
        pending = _queued(ids)
        if pending:  # interrupted: leave nothing running that writes into the dataset
            datasets.run_tool(["scancel", *sorted(pending)], check=False)


def _wait_for(spec: JobSpec, job_id: str) -> JobResult:
    spec_file, result_file, out_file = _job_files(spec)
    while True:
        if result_file.exists():
            result = JobResult(**json.loads(result_file.read_text(encoding="utf-8")))
            break
        if job_id not in _queued([job_id]):
            if result_file.exists():  # finished between the two looks
                continue
            lines = out_file.read_text(errors="replace").splitlines() if out_file.exists() else []
            tail = next((ln.strip() for ln in reversed(lines) if ln.strip()), "no output")
            commits = datasets.job_commits(Path(spec.dataset), spec.name, spec.base)
            result = JobResult(spec.name, commits, f"slurm job {job_id} ended early: {tail}")
            break
        time.sleep(SLURM_POLL)
    for path in (spec_file, result_file, out_file):
        path.unlink(missing_ok=True)
    return result


def main(argv: list[str] | None = None) -> None:
    """``python -m windl.jobs SPEC RESULT``: what a Slurm job runs."""
    spec_file, result_file = map(Path, (argv or sys.argv[1:])[:2])
    result = run_job(JobSpec.from_json(spec_file.read_text(encoding="utf-8")))
    atomic_write_text(result_file, json.dumps(asdict(result)) + "\n")


if __name__ == "__main__":
    main()
