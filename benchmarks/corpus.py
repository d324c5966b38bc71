"""Public test data beyond ``../shared/data``, cached outside the repository.

The conversion corpus is a set of public repositories (the dcm2niix QA
repositories, mne-python's testing data, bids-examples). ``ensure(name)``
extracts one of them into the cache folder (``$WINDL_CORPUS``, default
``~/.cache/windl-corpus``) and returns its path, or ``None`` when it cannot be
had on this machine. A copy comes from a local bare mirror
(``$WINDL_MIRROR/<owner>+<repo>/repo``, as the developers' library keeps them)
or else from a shallow ``git clone`` where the network allows it. Nothing of it
is ever committed.

Run ``python benchmarks/corpus.py`` to fill the cache with every entry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("WINDL_CORPUS", Path.home() / ".cache" / "windl-corpus"))
MIRROR = Path(os.environ.get("WINDL_MIRROR", "/work/.mirror"))
COMPLETE = ".windl-corpus-complete"
MISSING = ".windl-corpus-missing"  # files the mirror does not hold (too large)


@dataclass(frozen=True)
class Entry:
    """One public repository of the corpus; ``paths`` limits what is extracted."""

    repo: str
    paths: tuple[str, ...] = ()


ENTRIES: dict[str, Entry] = {
    "dcm_qa_toshiba": Entry("neurolabusc/dcm_qa_toshiba"),
    "dcm_qa_canon_61": Entry("neurolabusc/dcm_qa_canon_61"),
    "dcm_qa_enh": Entry("neurolabusc/dcm_qa_enh"),
    "dcm_qa_philips_enh": Entry("neurolabusc/dcm_qa_philips_enh"),
    "dcm_qa_philips_dwi": Entry("neurolabusc/dcm_qa_philips_dwi"),
    "dcm_qa_philips_asl": Entry("neurolabusc/dcm_qa_philips_asl"),
    "dcm_qa_xa30": Entry("neurolabusc/dcm_qa_xa30"),
    "dcm_qa_ge": Entry("neurolabusc/dcm_qa_ge"),
    "dcm_qa_fmap": Entry("neurolabusc/dcm_qa_fmap"),
    "dcm_qa_12bit": Entry("neurolabusc/dcm_qa_12bit"),
    "mne-testing-data": Entry(
        "mne-tools/mne-testing-data",
        (
            "BDF",
            "BTi",
            "Brainvision",
            "CNT",
            "CTF",
            "EDF",
            "EEGLAB",
            "KIT",
            "NihonKohden",
            "Persyst",
        ),
    ),
    "bids-examples": Entry("bids-standard/bids-examples"),
}


def _mirror_of(entry: Entry) -> Path:
    return MIRROR / entry.repo.replace("/", "+") / "repo"


def _extract_from_mirror(entry: Entry, into: Path) -> bool:
    """Write every stored blob of the mirror's HEAD; list the absent ones (large files may be)."""
    gitdir = _mirror_of(entry)
    if not gitdir.is_dir():
        return False
    git = ["git", "--git-dir", str(gitdir)]
    listing = subprocess.run(
        [*git, "ls-tree", "-r", "-z", "HEAD", "--", *entry.paths],
        capture_output=True,
        check=True,
    ).stdout
    blobs: list[tuple[str, str, str]] = []
    for record in listing.split(b"\0"):
        if record:
            meta, _, name = record.partition(b"\t")
            mode, kind, sha = meta.decode().split()
            if kind == "blob":
                blobs.append((mode, sha, name.decode("utf-8", "surrogateescape")))
    missing: list[str] = []
    with subprocess.Popen(
        [*git, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as batch:
        assert batch.stdin is not None and batch.stdout is not None
        for mode, sha, name in blobs:
            batch.stdin.write(sha.encode() + b"\n")
            batch.stdin.flush()
            header = batch.stdout.readline().split()
            if len(header) < 3:
                missing.append(name)
                continue
            content = batch.stdout.read(int(header[2]))
            batch.stdout.read(1)
            path = into / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if mode == "120000":
                path.symlink_to(content.decode("utf-8", "surrogateescape"))
            else:
                path.write_bytes(content)
        batch.stdin.close()
    (into / MISSING).write_text("".join(f"{name}\n" for name in missing))
    return True


def _clone(entry: Entry, into: Path) -> bool:
    url = f"https://github.com/{entry.repo}.git"
    try:
        done = subprocess.run(
            ["git", "clone", "--quiet", "--depth", "1", url, str(into)],
            capture_output=True,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def ensure(name: str, clone: bool = True) -> Path | None:
    """The cached copy of corpus entry ``name``, made first if need be; ``None`` if unavailable.

    ``clone=False``: from the cache or a local mirror only, never the network (what the
    tests do unless ``WINDL_CORPUS_FETCH=1``, so a machine that can reach GitHub does not
    spend its CI time downloading gigabytes).
    """
    entry = ENTRIES[name]
    target = CACHE / name
    if (target / COMPLETE).is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=CACHE))
    try:
        got = _extract_from_mirror(entry, scratch)
        if not got and clone:
            shutil.rmtree(scratch)
            got = _clone(entry, scratch)
        if not got:
            return None
        (scratch / COMPLETE).write_text(entry.repo + "\n")
        if target.exists():
            shutil.rmtree(target)
        scratch.rename(target)
        return target
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    missing = [name for name in ENTRIES if ensure(name) is None]
    for name in ENTRIES:
        print(f"{name}: {'unavailable' if name in missing else CACHE / name}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
