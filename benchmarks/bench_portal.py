"""Benchmark the portal under 50 concurrent users: a real ``windl serve`` on the demo site.

What is measured
----------------
A real ``windl serve`` (its own process or processes, uvicorn, loopback) on the site that
``windl demo`` builds from ``../shared/data``, with its database on SQLite (the default) and
on a real PostgreSQL server (a throwaway cluster, as the tests start it; the catalog is
indexed into it and the portal's tables migrated there). ``--clients`` asynchronous httpx
clients (default 50) each loop for ``--seconds`` over a fixed mix of what people do:

========================  ==========================================================
``home``                  ``/`` (anonymous)
``search``                ``/search?q=rest`` (anonymous)
``api-search``            ``/api/search?q=rest`` with a personal token
``dataset``               a published dataset's page (anonymous)
``info-refs``             ``git/…/info/refs?service=git-upload-pack`` with a token
                          (what every ``datalad clone`` and fetch asks first)
``annex-get``             one annexed object of the release with a token (``datalad get``)
========================  ==========================================================

Every client is a different person behind the site's reverse proxy (``X-Forwarded-For``
from a configured trusted proxy), so per-address limits apply as in production. Every
answer's status is checked (non-2xx or a transport error counts as an error) and the
object's bytes are compared with the store's. Reported: requests/s, p50/p95/p99 per kind
and overall, errors, and the CPU the server used (its process tree, from ``/proc``).

Then ``--clones`` (default 10) ``datalad clone`` + ``datalad get`` of the external release
run at once through the same server, each as its own user (own HOME and token), and every
file is checked byte-identical against the release.

The load generator runs on the same machine as the server (the 2 cores are shared), as in
the issue's measurement; the load average is recorded with the results.

Usage
-----
``python benchmarks/bench_portal.py [--site DIR] [--clients 50] [--seconds 30]
[--workers 2] [--backend sqlite --backend postgresql] [--output FILE]``

Without ``--site`` a demo site is built in a temporary folder (a few minutes). Results go
to ``benchmarks/results/portal.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

KINDS = ("home", "search", "api-search", "dataset", "info-refs", "annex-get")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _tree_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and all its descendants, in seconds (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = defaultdict(list)
    stats: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent = int(fields[1])
        children[parent].append(int(entry.name))
        # utime, stime, cutime, cstime: reaped children (git http-backend) count too
        stats[int(entry.name)] = sum(int(f) for f in fields[11:15]) / ticks
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += stats.get(current, 0.0)
        todo.extend(children.get(current, []))
    return total


# ----------------------------------------------------------------------------- the site
def build_demo(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "windl", "demo", str(where)], check=True)
    return where


def _set_portal(root: Path, lines: list[str]) -> None:
    """Put ``lines`` first into windl.toml's ``[portal]`` table (keys they set replaced)."""
    config = root / "windl.toml"
    text = config.read_text().splitlines()
    start = text.index("[portal]")
    end = next((i for i in range(start + 1, len(text)) if text[i].startswith("[")), len(text))
    keys = {line.split("=", 1)[0].strip() for line in lines}
    kept = [line for line in text[start + 1 : end] if line.split("=", 1)[0].strip() not in keys]
    config.write_text("\n".join([*text[: start + 1], *lines, *kept, *text[end:]]) + "\n")


def _set_database(root: Path, url: str | None) -> None:
    config = root / "windl.toml"
    text = [
        line
        for line in config.read_text().splitlines()
        if not line.startswith("# bench-db") and not line.startswith('url = "postgresql')
    ]
    if url is not None:
        start = text.index("[database]") if "[database]" in text else None
        if start is None:
            text += ["", "[database]", f'url = "{url}"  # bench-db']
        else:
            text.insert(start + 1, f'url = "{url}"  # bench-db')
    config.write_text("\n".join(text) + "\n")


def prepare(template: Path, scratch: Path, database: str | None) -> Path:
    """A copy of the demo site for one backend: proxy trusted, catalog indexed."""
    root = scratch / "site"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(template, root, symlinks=True)
    _set_portal(root, ['trusted_proxies = ["127.0.0.1"]'])
    _set_database(root, database)
    subprocess.run(
        [sys.executable, "-m", "windl", "catalog", "index", "--site", str(root)],
        check=True,
        capture_output=True,
    )
    return root


def _published(root: Path) -> tuple[str, str, Path]:
    """(study, scope, store repository) of the demo's published external release."""
    from windl.config import load_site
    from windl.portal import gitserve

    site = load_site(root)
    for study in sorted(p.name for p in (root / "superdataset" / "studies").iterdir()):
        repo = gitserve.published_repo(site, study, "external")
        if repo is not None:
            return study, "external", repo
    raise SystemExit("the demo site has no published external release")


def _annex_object(repo: Path) -> tuple[str, bytes]:
    """The portal path (below the scope) and bytes of the release's smallest annexed object."""
    objects = sorted(
        (p for p in (repo / "annex" / "objects").glob("*/*/*/*") if p.is_file()),
        key=lambda p: p.stat().st_size,
    )
    if not objects:
        raise SystemExit(f"no annexed objects in {repo}")
    # the smallest: what is timed is the portal's work per request (the token check, the
    # audit entry, the hand-over), not how fast one Python client reads megabytes
    path = objects[0]
    relative = path.relative_to(repo)
    return "/".join(relative.parts), path.read_bytes()


@contextmanager
def server(root: Path, workers: int) -> Iterator[tuple[str, int]]:
    from conftest import portal_server

    before = {p.name for p in Path("/proc").iterdir() if p.name.isdigit()}
    with portal_server(root, "--workers", str(workers)) as url:
        pid = _server_pid(root, before)
        yield url, pid


def _server_pid(root: Path, before: set[str]) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name not in before:
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in command and str(root).encode() in command:
                return int(entry.name)
    raise SystemExit("could not find the server process")


# ----------------------------------------------------------------------------- the load
async def _client(
    number: int,
    url: str,
    plan: dict[str, Any],
    stop: float,
    timings: dict[str, list[float]],
    errors: dict[str, int],
) -> None:
    import httpx

    auth = "Basic " + base64.b64encode(f"bench:{plan['token']}".encode()).decode()
    forwarded = {"X-Forwarded-For": f"10.{number // 250}.{number % 250}.{1 + number % 200}"}
    paths = {
        "home": ("/", {}),
        "search": ("/search?q=rest", {}),
        "api-search": ("/api/search?q=rest", {"Authorization": f"Bearer {plan['token']}"}),
        "dataset": (f"/datasets/{plan['dataset']}", {}),
        "info-refs": (
            f"/git/{plan['study']}/{plan['scope']}/info/refs?service=git-upload-pack",
            {"Authorization": auth, "Git-Protocol": "version=2"},
        ),
        "annex-get": (
            plan.get("object_url", f"/git/{plan['study']}/{plan['scope']}/{plan['object']}"),
            {"Authorization": auth},
        ),
    }
    async with httpx.AsyncClient(base_url=url, headers=forwarded, timeout=60) as client:
        turn = number
        while time.monotonic() < stop:
            kind = plan["mix"][turn % len(plan["mix"])]
            turn += 1
            path, headers = paths[kind]
            start = time.perf_counter()
            try:
                response = await client.get(path, headers=headers)
                ok = response.status_code == 200
                if kind == "annex-get":
                    ok = ok and response.content == plan["object_bytes"]
            except httpx.HTTPError:
                ok = False
            timings[kind].append(time.perf_counter() - start)
            if not ok:
                errors[kind] += 1


def load(url: str, pid: int, plan: dict[str, Any], clients: int, seconds: float) -> dict[str, Any]:
    timings: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)

    async def run() -> None:
        stop = time.monotonic() + seconds
        await asyncio.gather(
            *(_client(n, url, plan, stop, timings, errors) for n in range(clients))
        )

    cpu_before = _tree_cpu_seconds(pid)
    wall = time.perf_counter()
    asyncio.run(run())
    wall = time.perf_counter() - wall
    cpu = _tree_cpu_seconds(pid) - cpu_before
    every = [t for kind in KINDS for t in timings[kind]]
    result: dict[str, Any] = {
        "clients": clients,
        "seconds": round(wall, 1),
        "requests": len(every),
        "requests_per_s": round(len(every) / wall, 1),
        "errors": sum(errors.values()),
        "p50_ms": round(1000 * _percentile(every, 0.50), 1),
        "p95_ms": round(1000 * _percentile(every, 0.95), 1),
        "p99_ms": round(1000 * _percentile(every, 0.99), 1),
        "server_cores": round(cpu / wall, 2),
        "server_cpu_ms_per_request": round(1000 * cpu / max(1, len(every)), 2),
        "kinds": {
            kind: {
                "requests": len(timings[kind]),
                "errors": errors[kind],
                "p50_ms": round(1000 * _percentile(timings[kind], 0.50), 1),
                "p95_ms": round(1000 * _percentile(timings[kind], 0.95), 1),
                "p99_ms": round(1000 * _percentile(timings[kind], 0.99), 1),
            }
            for kind in plan["mix"]
        },
    }
    return result


WRK_SCRIPT = """
-- the same mix as the httpx clients, one kind after the other on every connection
local paths = {%(paths)s}
local headers = {%(headers)s}
local turn = 0
local addresses = 250
request = function()
  turn = turn + 1
  local i = (turn %% #paths) + 1
  local h = {}
  for k, v in pairs(headers[i]) do h[k] = v end
  h["X-Forwarded-For"] = "10.1." .. math.floor(turn / 7) %% addresses .. "." .. (turn %% 200 + 1)
  return wrk.format("GET", paths[i], h)
end

done = function(summary, latency, requests)
  for _, q in ipairs({50, 95, 99}) do
    io.write(string.format("windl-p%%d-us %%d\\n", q, latency:percentile(q)))
  end
end
"""


def _lua(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load_wrk(url: str, pid: int, plan: dict[str, Any], clients: int, seconds: float) -> dict:
    """The same mix from ``wrk`` (C, 2 threads): the load generator's own cost nearly gone."""
    auth = "Basic " + base64.b64encode(f"bench:{plan['token']}".encode()).decode()
    kinds = {
        "/": {},
        "/search?q=rest": {},
        "/api/search?q=rest": {"Authorization": f"Bearer {plan['token']}"},
        f"/datasets/{plan['dataset']}": {},
        f"/git/{plan['study']}/{plan['scope']}/info/refs?service=git-upload-pack": {
            "Authorization": auth,
            "Git-Protocol": "version=2",
        },
        f"/git/{plan['study']}/{plan['scope']}/{plan['object']}": {"Authorization": auth},
    }
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        WRK_SCRIPT
        % {
            "paths": ", ".join(_lua(p) for p in kinds),
            "headers": ", ".join(
                "{" + ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in h.items()) + "}"
                for h in kinds.values()
            ),
        }
    )
    cpu_before = _tree_cpu_seconds(pid)
    start = time.perf_counter()
    proc = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(clients),
            "-d",
            f"{int(seconds)}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    cpu = _tree_cpu_seconds(pid) - cpu_before
    script.unlink()
    return {**_parse_wrk(proc.stdout), "server_cores": round(cpu / wall, 2)}


def _parse_wrk(out: str) -> dict[str, Any]:
    """Requests, rate, errors and the percentiles the script's ``done()`` printed."""

    def number(pattern: str) -> float:
        found = re.search(pattern, out)
        if found is None:
            raise SystemExit(f"wrk printed no {pattern!r}:\n{out}")
        return float(found.group(1))

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return {
        "requests": int(number(r"(\d+) requests in")),
        "requests_per_s": number(r"Requests/sec:\s+([\d.]+)"),
        "errors": (int(bad.group(1)) if bad else 0)
        + (sum(int(n) for n in sockets.groups()) if sockets else 0),
        "error_lines": [m.group(0).strip() for m in (bad, sockets) if m],
        **{f"p{q}_ms": round(number(rf"windl-p{q}-us (\d+)") / 1000, 1) for q in (50, 95, 99)},
    }


def clones(root: Path, url: str, plan: dict[str, Any], count: int, scratch: Path) -> dict[str, Any]:
    """``count`` concurrent clone + get of the release, each checked file by file."""
    from conftest import datalad_user, portal_account, sha256_of

    release = root / "superdataset" / "releases" / plan["study"] / plan["scope"]
    expected = {
        str(p.relative_to(release)): sha256_of(p)
        for p in release.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(release).parts
    }
    procs = []
    start = time.perf_counter()
    for n in range(count):
        home = scratch / f"user{n}"
        email = f"cloner{n}-{os.getpid()}-{time.monotonic_ns()}@bench.org"
        env = datalad_user(home, url, portal_account(root, email))
        script = (
            f"datalad clone {url}/git/{plan['study']}/{plan['scope']} copy && "
            "cd copy && datalad get -J 2 ."
        )
        procs.append(
            subprocess.Popen(
                ["bash", "-c", script],
                cwd=home,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    failed = []
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            failed.append(err.strip().splitlines()[-1:] or [str(proc.returncode)])
    seconds = time.perf_counter() - start
    identical = 0
    for n in range(count):
        copy = scratch / f"user{n}" / "copy"
        got = {name: sha256_of(copy / name) for name in expected if (copy / name).is_file()}
        identical += got == expected
    return {
        "clones": count,
        "failed": len(failed),
        "failures": failed[:3],
        "byte_identical": identical,
        "files_each": len(expected),
        "seconds": round(seconds, 1),
    }


def _plan(root: Path, url: str) -> dict[str, Any]:
    import httpx

    from conftest import portal_account

    study, scope, repo = _published(root)
    token = portal_account(root, f"bench-{os.getpid()}-{time.monotonic_ns()}@bench.org")
    found = httpx.get(
        f"{url}/api/search", params={"q": ""}, headers={"Authorization": f"Bearer {token}"}
    ).json()
    external = [r["id"] for r in found["results"] if r.get("scope") == "external"]
    obj, data = _annex_object(repo)
    return {
        "repo": str(repo),
        "mix": KINDS,
        "study": study,
        "scope": scope,
        "token": token,
        "dataset": (external or [r["id"] for r in found["results"]])[0],
        "object": obj,
        "object_bytes": data,
        "object_sha256": hashlib.sha256(data).hexdigest(),
    }


def against_nginx(root: Path, upstream: str, pid: int, plan: dict[str, Any], args: Any) -> dict:
    """annex-get three ways: nginx alone (the floor), nginx + the portal, the portal alone."""
    from windl.config import load_site
    from windl.share.publish import store_path

    from conftest import nginx_proxy

    site = load_site(root)
    stores = {scope: store_path(site, scope).resolve() for scope in ("members", "external")}
    public = f"        location /bare/ {{ alias {stores[plan['scope']]}/; }}"
    repo = Path(plan["repo"]).resolve().relative_to(stores[plan["scope"]])
    only_get = {**plan, "mix": ("annex-get",)}
    out: dict[str, Any] = {}
    with nginx_proxy(upstream, root.parent / "nginx", stores, extra_locations=public) as nginx:
        bare = {**only_get, "object_url": f"/bare/{repo}/{plan['object']}"}
        for name, url, kind_plan in (
            ("nginx alone", nginx, bare),
            ("nginx + portal (X-Accel-Redirect)", nginx, only_get),
            ("portal alone", upstream, only_get),
        ):
            result = load(url, pid, kind_plan, args.clients, args.seconds / 2)
            out[name] = {k: result[k] for k in ("requests_per_s", "errors", "p50_ms", "p95_ms")}
    floor = out["nginx alone"]["requests_per_s"]
    for values in out.values():
        values["ratio_of_requests_per_s"] = round(floor / max(values["requests_per_s"], 0.1), 2)
    return out


def bench_backend(
    template: Path, scratch: Path, database: str | None, args: argparse.Namespace
) -> dict[str, Any]:
    root = prepare(template, scratch, database)
    with server(root, args.workers) as (url, pid):
        plan = _plan(root, url)
        # one round of every kind first: caches warm, as on a site that has been running
        load(url, pid, plan, clients=len(KINDS), seconds=2)
        result = load(url, pid, plan, args.clients, args.seconds)
        if shutil.which("wrk"):
            result["wrk"] = load_wrk(url, pid, plan, args.clients, args.seconds)
        result["clone_get"] = clones(root, url, plan, args.clones, scratch / "clones")
        if args.nginx:
            result["annex_get_vs_nginx"] = against_nginx(root, url, pid, plan, args)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", type=Path, help="a demo site (built when not given)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clones", type=int, default=10)
    parser.add_argument(
        "--no-nginx", dest="nginx", action="store_false", help="skip the nginx comparison"
    )
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--tmpdir", type=Path)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "portal.json")
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgresql"]
    scratch = Path(tempfile.mkdtemp(prefix="windl-bench-portal-", dir=args.tmpdir))
    template = args.site or build_demo(scratch / "demo")
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {os.cpu_count()} cores",
        "load_before": os.getloadavg(),
        "workers": args.workers,
        "backends": {},
    }
    try:
        for backend in backends:
            if backend == "sqlite":
                results["backends"][backend] = bench_backend(
                    template, scratch / backend, None, args
                )
            else:
                from conftest import throwaway_postgres

                with throwaway_postgres() as base:
                    import sqlalchemy as sa

                    admin = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
                    with admin.connect() as connection:
                        connection.execute(sa.text("CREATE DATABASE windl_bench"))
                    admin.dispose()
                    results["backends"][backend] = bench_backend(
                        template, scratch / backend, f"{base}/windl_bench", args
                    )
            print(backend, json.dumps(results["backends"][backend], indent=2), flush=True)
    finally:
        results["load_after"] = os.getloadavg()
        shutil.rmtree(scratch, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
