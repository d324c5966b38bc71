"""Benchmark ``windl receive`` against dcmtk's ``storescp`` (files/s, same sender).

What is measured
----------------
Wall-clock time of dcmtk's ``storescu`` sending all 608 DICOM files of ``dcm_qa_nih`` in
one association, with ``TCP_NODELAY=1`` (dcmtk otherwise stalls ~40 ms per message), to

windl
    ``windl receive`` (windl's blocking DICOM engine; every instance written to a new
    file and fsynced before Success). Hand-off is disabled (``idle_seconds`` huge): the
    receiving side only, which is what a scanner waits for.
storescp
    ``storescp -od DIR`` with ``TCP_NODELAY=1`` (writes files, never fsyncs: dcmtk has no
    fsync anywhere, so it acknowledges what a crash can still lose).

Both receivers run for the whole run and are sent to alternately (each output emptied
before its send); the median of ``--repeat`` sends is reported as files/s with the ratio
windl / storescp (goal >= 0.8).

Because storescp does not fsync and windl must, each round also times the *fsync floor*:
the same 608 files written to new files and fsynced one by one by this script, no network.
``storescp + fsync floor`` is what a receiver as fast as storescp that is durable before
acknowledging would take; on a shared machine the fsync time swings with other processes'
disk traffic, which storescp never waits for.
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


def send(port: int, files: list[Path], associations: int = 1) -> float:
    """Seconds for ``associations`` storescu processes, each sending a contiguous share."""
    shares = [files[i * len(files) // associations : (i + 1) * len(files) // associations]
              for i in range(associations)]  # fmt: skip
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["storescu", "-aet", "STORESCU", "-aec", "WINDL", "127.0.0.1", str(port)]
            + [str(f) for f in share],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for share in shares
    ]
    errors = [proc.communicate()[1] for proc in procs]
    elapsed = time.perf_counter() - start
    for proc, err in zip(procs, errors, strict=True):
        if proc.returncode != 0:
            sys.exit(f"storescu failed: {err[-2000:]}")
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


def start_storescp(root: Path, fork: bool) -> tuple[subprocess.Popen[bytes], int, Path]:
    out = root / "storescp"
    out.mkdir()
    port = free_port()
    options = ["--fork"] if fork else []  # one process per association, as windl's threads
    proc = subprocess.Popen(["storescp", *options, "-od", str(out), str(port)], env=ENV,
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


def fsync_floor(root: Path, files: list[Path]) -> float:
    """Seconds to write each file to a new file and fsync it (the durable minimum)."""
    out = root / f"floor-{time.time_ns()}"
    out.mkdir()
    contents = [f.read_bytes() for f in files]
    start = time.perf_counter()
    for i, data in enumerate(contents):
        fd = os.open(out / f"{i}.dcm", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    elapsed = time.perf_counter() - start
    shutil.rmtree(out)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--tmpdir", type=Path, default=None)
    parser.add_argument(
        "--associations", type=int, default=1, help="parallel senders (storescp gets --fork)"
    )
    args = parser.parse_args()
    for tool in ("storescu", "storescp"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install dcmtk)")
    files = sorted(args.data.rglob("*.dcm"))
    times: dict[str, list[float]] = {"windl": [], "storescp": [], "fsync_floor": []}
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        servers = {
            "windl": start_windl(Path(tmp)),
            "storescp": start_storescp(Path(tmp), args.associations > 1),
        }
        try:
            for i in range(args.repeat):
                order = ["windl", "storescp"] if i % 2 == 0 else ["storescp", "windl"]
                for name in order:
                    _, port, out = servers[name]
                    clear(out)
                    times[name].append(send(port, files, args.associations))
                    if received(out) != len(files):
                        sys.exit(f"{name} stored {received(out)} of {len(files)}")
                times["fsync_floor"].append(fsync_floor(Path(tmp), files))
        finally:
            for proc, _, _ in servers.values():
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
    median = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: len(files) / median[k] for k in ("windl", "storescp")}
    durable = len(files) / (median["storescp"] + median["fsync_floor"])
    result = {
        "files": len(files),
        "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "files_per_second": {k: round(v, 1) for k, v in rate.items()},
        "ratio_windl_to_storescp": round(rate["windl"] / rate["storescp"], 3),
        "storescp_plus_fsync_floor_files_per_second": round(durable, 1),
        "ratio_windl_to_storescp_plus_fsync_floor": round(rate["windl"] / durable, 3),
        "associations": args.associations,
        "nproc": os.cpu_count(),
        "loadavg_after": os.getloadavg(),
        "date": time.strftime("%F %T"),
    }
    print(json.dumps(result, indent=2))
    print(
        f"windl {rate['windl']:.1f} files/s, storescp {rate['storescp']:.1f} files/s, "
        f"ratio {rate['windl'] / rate['storescp']:.2f} (goal >= 0.8); fsync floor "
        f"{median['fsync_floor'] * 1000 / len(files):.2f} ms/file, storescp + fsync floor "
        f"{durable:.1f} files/s, windl / that {rate['windl'] / durable:.2f}"
    )


if __name__ == "__main__":
    main()
