"""Run one fuzz harness under atheris (libFuzzer): ``run.py TARGET [libFuzzer flags]``.

TARGET is ``dicom``, ``archive``, ``brainvision``, ``edf``, ``fif`` or ``query``. The
seed corpus is written to ``$WINDL_FUZZ_CORPUS/TARGET`` (default
``/tmp/windl-fuzz-corpus/TARGET``); inputs libFuzzer finds interesting are added there.
An uncaught exception (anything but a windl.errors.WindlError) stops the run with a non-zero
exit, the traceback and a ``crash-*`` file (see ``-artifact_prefix=``) holding the input.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
TARGETS = ("dicom", "archive", "brainvision", "edf", "fif", "query")


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: {argv[0]} {{{','.join(TARGETS)}}} [libFuzzer flags]")
    target = argv[1]
    sys.path[:0] = [str(HERE), str(HERE.parent)]  # the harnesses, then this tree's windl
    # coverage of windl and of pydicom (its DICOM parser is what reads untrusted bytes)
    with atheris.instrument_imports(include=["windl", "pydicom"]):
        harness = importlib.import_module(f"fuzz_{target}")
    corpus = Path(os.environ.get("WINDL_FUZZ_CORPUS", "/tmp/windl-fuzz-corpus")) / target
    harness.seed(corpus)
    flags = [a for a in argv[2:] if a.startswith("-")]
    atheris.Setup(
        [argv[0], f"-max_len={harness.MAX_LEN}", "-timeout=30", *flags, str(corpus)],
        harness.one_input,
    )
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
