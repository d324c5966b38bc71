"""Benchmark ``windl receive`` against dcmtk's ``storescp`` (files/s, same sender).

What is measured
----------------
Wall-clock time of dcmtk's ``storescu`` sending all 608 DICOM files of ``dcm_qa_nih`` in
one association, with ``TCP_NODELAY=1`` (dcmtk otherwise stalls ~40 ms per message), to

windl
    ``windl receive`` (pynetdicom; every instance fsynced and renamed into the spool, its
    folder fsynced, before Success). Hand-off is disabled (``idle_seconds`` huge): the
    receiving side only, which is what a scanner waits for.
storescp
    ``storescp -od DIR`` with ``TCP_NODELAY=1`` (writes files, no fsync).

Both receivers run on the same machine, in the same run, alternating; the median of
``--repeat`` sends is reported as files/s with the ratio windl / storescp (goal >= 0.8).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "dcm_qa_nih" / "In"
ENV = {**os.environ, "TCP_NODELAY": "1", "PYTHONPATH": str(REPO)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def send(port: int, files: list[Path]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        ["storescu", "-aet", "STORESCU", "-aec", "WINDL", "127.0.0.1", str(port), *map(str, files)],
        env=ENV, capture_output=True, text=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"storescu failed: {proc.stderr[-2000:]}")
    return elapsed


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("receiver exited early")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit("receiver did not start")


def start_windl(root: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    site = root / "site"
    subprocess.run([sys.executable, "-m", "windl", "site", "init", str(site)], env=ENV,
                   check=True, capture_output=True)  # fmt: skip
    port = free_port()
    with open(site / "windl.toml", "a") as fh:
        fh.write(f'\n[receive]\nae_title = "WINDL"\nport = {port}\nidle_seconds = 1e9\n')
    proc = subprocess.Popen([sys.executable, "-m", "windl", "receive", "--site", str(site)],
                            env=ENV, stderr=subprocess.DEVNULL)  # fmt: skip
    wait_port(port, proc)
    return proc, port, site / "receive" / "spool"


def start_storescp(root: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    out = root / "storescp"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen(["storescp", "-od", str(out), str(port)], env=ENV,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    wait_port(port, proc)
    return proc, port, out


def received(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and p.suffix != ".json")


def clear(folder: Path) -> None:
    """Empty a receiver's output between runs (a re-send would be a duplicate)."""
    for child in folder.iterdir():
        if child.is_dir() and child.name != ".incoming":
            shutil.rmtree(child)
        elif child.is_file():
            child.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--tmpdir", type=Path, default=None)
    args = parser.parse_args()
    for tool in ("storescu", "storescp"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install dcmtk)")
    files = sorted(args.data.rglob("*.dcm"))
    times: dict[str, list[float]] = {"windl": [], "storescp": []}
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        servers = {"windl": start_windl(Path(tmp)), "storescp": start_storescp(Path(tmp))}
        try:
            for i in range(args.repeat):
                order = ["windl", "storescp"] if i % 2 == 0 else ["storescp", "windl"]
                for name in order:
                    _, port, out = servers[name]
                    clear(out)
                    times[name].append(send(port, files))
                    if received(out) != len(files):
                        sys.exit(f"{name} stored {received(out)} of {len(files)}")
        finally:
            for proc, _, _ in servers.values():
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
    rate = {k: len(files) / statistics.median(v) for k, v in times.items()}
    result = {
        "files": len(files),
        "seconds": times,
        "files_per_second": {k: round(v, 1) for k, v in rate.items()},
        "ratio_windl_to_storescp": round(rate["windl"] / rate["storescp"], 3),
        "nproc": os.cpu_count(),
        "date": time.strftime("%F"),
    }
    print(json.dumps(result, indent=2))
    print(f"windl {rate['windl']:.1f} files/s, storescp {rate['storescp']:.1f} files/s, "
          f"ratio {rate['windl'] / rate['storescp']:.2f} (goal >= 0.8)")  # fmt: skip


if __name__ == "__main__":
    main()
