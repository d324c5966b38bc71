"""Shared fixtures: real data from ../shared/data, real sites made with the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
import corpus as public_corpus  # noqa: E402  (benchmarks/corpus.py: public data beyond shared/)

SHARED_DATA = Path(os.environ.get("WINDL_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
WINDL = [sys.executable, "-m", "windl"]

Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DATA} (set WINDL_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def corpus() -> Callable[[str], Path]:
    """``corpus(name)``: a public repository of ``benchmarks/corpus.py``, cached outside the repo.

    A test skips, naming the entry, on a machine that has neither the cache nor the
    library's mirror (``python benchmarks/corpus.py`` fills the cache; the tests clone from
    GitHub themselves only with ``WINDL_CORPUS_FETCH=1``).
    """

    def get(name: str) -> Path:
        path = public_corpus.ensure(name, clone=os.environ.get("WINDL_CORPUS_FETCH") == "1")
        if path is None:
            pytest.skip(f"public corpus {name!r} unavailable here (python benchmarks/corpus.py)")
        return path

    return get


def run_windl(
    *args: str | os.PathLike[str],
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``windl`` CLI in a child process."""
    proc = subprocess.run(
        [*WINDL, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"windl {' '.join(map(str, args))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def windl() -> Runner:
    return run_windl


@pytest.fixture(scope="session")
def empty_site_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site with one empty study 'study1', made once and copied per test."""
    root = tmp_path_factory.mktemp("template") / "site"
    run_windl("site", "init", root)
    run_windl("study", "create", "study1", "--site", root)
    return root


@pytest.fixture
def site(empty_site_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a site with an empty study 'study1'."""
    return copy_site(empty_site_template, tmp_path / "site")


def study_path(site: Path, name: str = "study1") -> Path:
    return site / "superdataset" / "studies" / name


def git_out(ds: Path, *args: str) -> str:
    """Standard output of ``git -C ds ARGS`` (which must succeed)."""
    return subprocess.run(
        ["git", "-C", str(ds), *args], capture_output=True, text=True, check=True
    ).stdout


def git_head(ds: Path) -> str:
    return git_out(ds, "rev-parse", "HEAD").strip()


def commit_messages_since(ds: Path, since: str) -> list[str]:
    """Messages (with their run records) of the commits after ``since``, oldest first."""
    out = git_out(ds, "log", "--reverse", "--format=%B%x00", f"{since}..HEAD")
    return [m.strip() for m in out.split("\0") if m.strip()]


def git_status(ds: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(ds), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def dataset_heads(site: Path, name: str = "study1") -> dict[str, str]:
    """HEAD of the superdataset, the study and its subdatasets, the subjects' datasets in
    sourcedata included (to assert 'unchanged')."""
    study = study_path(site, name)
    return {
        "superdataset": git_head(site / "superdataset"),
        "study": git_head(study),
        "sourcedata": git_head(study / "sourcedata"),
        "restricted": git_head(study / "restricted"),
        **{
            f"sourcedata/{sub.name}": git_head(sub)
            for sub in sorted((study / "sourcedata").glob("sub-*"))
            if (sub / ".git").exists()
        },
    }


def site_datasets(site: Path) -> list[Path]:
    """Every dataset of the site: the superdataset, the study, its subdatasets, the
    subjects' datasets in sourcedata."""
    study = study_path(site)
    subjects = sorted(p for p in (study / "sourcedata").glob("sub-*") if (p / ".git").exists())
    return [site / "superdataset", study, study / "sourcedata", study / "restricted", *subjects]


def assert_site_clean(site: Path) -> None:
    """``git status`` clean and ``git annex fsck`` passing in every dataset of the site."""
    for ds in site_datasets(site):
        assert git_status(ds) == "", f"{ds} is not clean:\n{git_status(ds)}"
        if (ds / ".git" / "annex").is_dir():
            subprocess.run(["git", "annex", "fsck", "--quiet"], cwd=ds, check=True)


def run_killed_at(args: list[str | os.PathLike[str]], point: str, trace_dir: Path) -> None:
    """Start ``windl ARGS``; SIGKILL it once it reaches checkpoint ``point`` (it waits there).

    See :mod:`windl.checkpoints`: the named point pauses, so the kill lands exactly there.
    """
    import signal
    import time

    trace = trace_dir / f"trace-{point}"
    env = {
        **os.environ,
        "WINDL_CHECKPOINT_FILE": str(trace),
        "WINDL_CHECKPOINT_PAUSE": point,
        "WINDL_CHECKPOINT_DELAY": "60",
    }
    # a session of its own: the kill takes windl's children (git, datalad run's command) too,
    # as a crash of the machine would
    proc = subprocess.Popen(
        [*WINDL, *map(str, args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if trace.exists() and point in trace.read_text().split():
            break
        assert proc.poll() is None, f"windl {args[0]} ended before reaching {point}"
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"windl {args[0]} never reached {point}")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def rerun_onto_parent(
    study: Path, grep: str, branch: str, env: Mapping[str, str] | None = None
) -> str:
    """``datalad rerun`` the newest commit whose message matches ``grep``, on a new branch
    from its parent, so the outputs are written from scratch (``env``: added to the
    tools' environment). Returns the rerun commit."""
    from windl.datasets import tool_env

    commit = subprocess.run(
        ["git", "-C", str(study), "log", "--format=%H", "-n", "1", f"--grep={grep}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert commit, f"no commit matches {grep!r}"
    subprocess.run(
        ["datalad", "rerun", "--branch", branch, "--onto", f"{commit}^", commit],
        cwd=study,
        check=True,
        capture_output=True,
        text=True,
        env={**tool_env(), **(env or {})},
    )
    assert git_head(study) != commit
    return commit


#: participants of :func:`participants_site_template`
THREE_SUBJECTS = ("01", "02", "03")


@pytest.fixture(scope="session")
def participants_site_template(
    empty_site_template: Path, tmp_path_factory: pytest.TempPathFactory, data: Path
) -> Path:
    """The empty site with raw data ingested for subjects 01, 02 and 03 (made once)."""
    root = tmp_path_factory.mktemp("participants") / "site"
    shutil.copytree(empty_site_template, root, symlinks=True)
    source = data / "dcm_qa_nih" / "In" / "20180918Si"
    for subject in THREE_SUBJECTS:
        run_windl("ingest", "study1", source, "--subject", subject, "--site", root)
    return root


@pytest.fixture(scope="session")
def two_subjects_template(
    empty_site_template: Path, tmp_path_factory: pytest.TempPathFactory, data: Path
) -> Path:
    """The empty site with one small Siemens series ingested for each of k1 and k2 (the kill
    tests' site, copied per kill point)."""
    root = tmp_path_factory.mktemp("two-subjects") / "site"
    shutil.copytree(empty_site_template, root, symlinks=True)
    series = data / "dcm_qa_nih" / "In" / "20180918Si"
    for subject, folder in (("k1", "mr_0003"), ("k2", "mr_0004")):
        run_windl("ingest", "study1", series / folder, "--subject", subject, "--site", root)
    return root


@pytest.fixture
def site3(participants_site_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a site whose study1 has participants sub-01, sub-02, sub-03."""
    target = tmp_path / "site"
    shutil.copytree(participants_site_template, target, symlinks=True)
    return target


# ----------------------------------------------------------------------------- releases
SETTINGS = """
[convert.tasks]
"(?i)epi" = "rest"

[convert.recording_tasks]
"(?i)^test" = "rest"

[vocabulary]
acq = ["epfid2"]  # dcm2niix's label from the Siemens sequence name, reviewed

[deid]
retain_modified_dates = true
clean_descriptors = true

[release]
include_dicom = ["members"]
"""
#: sub-01: Siemens DICOM (session 20180918, a date), members only;
#: sub-02: BrainVision EEG; sub-03: a T1w head with a face; both members and external
CONSENT = "participant_id,scopes,form_version,date\n" + "\n".join(
    [
        "sub-01,members,v1,2026-11-01",
        "sub-02,members;external,v1,2026-11-01",
        "sub-03,members;external,v1,2026-11-01",
    ]
)
DATE_SESSION = "20180918"


def release_dir(site: Path, scope: str) -> Path:
    """The release dataset of study1 for ``scope``."""
    return site / "superdataset" / "releases" / "study1" / scope


def _t1w_bids(data: Path, root: Path) -> Path:
    anat = root / "sub-03" / "anat"
    anat.mkdir(parents=True)
    source = data / "pydeface_t1w_face"
    shutil.copyfile(
        source / "ds000031_sub-01_ses-006_run-001_T1w.nii.gz", anat / "sub-03_T1w.nii.gz"
    )
    shutil.copyfile(source / "ds000031_sub-01_ses-006_run-001_T1w.json", anat / "sub-03_T1w.json")
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "head", "BIDSVersion": "1.10.0", "License": "CC0"})
    )
    (root / "participants.tsv").write_text("participant_id\nsub-03\n")
    return root


def _release_site(base: Path, empty_site: Path, data: Path, qc: bool) -> Path:
    """study1 with DICOM, EEG and a T1w (and their QC when ``qc``), consent, both releases."""
    from windl.datasets import save

    root = base / "site"
    shutil.copytree(empty_site, root, symlinks=True)
    study = study_path(root)
    (study / "code" / "study.toml").write_text(SETTINGS, encoding="utf-8")
    save(study, ["code/study.toml"], "test: settings")
    site = ("--site", root)
    run_windl(
        "ingest",
        "study1",
        data / "dcm_qa_nih/In/20180918Si",
        "--subject",
        "01",
        "--session",
        DATE_SESSION,
        *site,
    )
    run_windl("ingest", "study1", data / "mne_testfiles/brainvision", "--subject", "02", *site)
    run_windl("convert", "study1", *site)
    run_windl("import", "study1", _t1w_bids(data, base / "t1w"), *site)
    if qc:
        run_windl("qc", "study1", *site)
    (base / "consent.csv").write_text(CONSENT + "\n")
    run_windl("consent", "import", "study1", base / "consent.csv", *site)
    for scope in ("members", "external"):
        run_windl("release", "build", "study1", "--scope", scope, "--version", "1.0.0", *site)
    return root


@pytest.fixture(scope="session")
def release_site_template(
    empty_site_template: Path, tmp_path_factory: pytest.TempPathFactory, data: Path
) -> Path:
    """A site whose study1 has DICOM, EEG and a T1w, consent, and both releases 1.0.0."""
    return _release_site(tmp_path_factory.mktemp("release"), empty_site_template, data, qc=False)


@pytest.fixture
def release_site(release_site_template: Path, tmp_path: Path) -> Path:
    return copy_site(release_site_template, tmp_path / "site")


@pytest.fixture(scope="session")
def qc_release_site_template(
    empty_site_template: Path, tmp_path_factory: pytest.TempPathFactory, data: Path
) -> Path:
    """As :func:`release_site_template`, with ``windl qc`` run before the releases."""
    return _release_site(tmp_path_factory.mktemp("qc-release"), empty_site_template, data, qc=True)


@pytest.fixture
def qc_release_site(qc_release_site_template: Path, tmp_path: Path) -> Path:
    return copy_site(qc_release_site_template, tmp_path / "site")


def consent_external(site: Path, subject: str) -> None:
    """Record that ``subject`` of study1 consented to members and external sharing."""
    run_windl(
        "consent",
        "set",
        "study1",
        subject,
        "--scope",
        "members",
        "--scope",
        "external",
        "--site",
        site,
    )


def build_release(site: Path, scope: str, version: str, *extra: str, check: bool = True):
    """``windl release build study1 --scope SCOPE --version VERSION`` through the CLI."""
    return run_windl(
        "release",
        "build",
        "study1",
        "--scope",
        scope,
        "--version",
        version,
        "--site",
        site,
        *extra,
        check=check,
    )


# --------------------------------------------------------------------------- PostgreSQL
def _postgres_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL is not installed (ci/setup.sh installs Debian's postgresql)")
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster of Debian's binaries on a free port; yields its base URL."""
    with throwaway_postgres() as url:
        yield url


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a PostgreSQL cluster in a temporary folder; yield its base URL; remove it after.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres``
    user that Debian's package creates. Also used by ``benchmarks/bench_catalog.py``.
    """
    import socket
    import tempfile

    bindir = _postgres_bindir()
    data_dir = Path(tempfile.mkdtemp(prefix="windl-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(data_dir / "data"),
            "-A",
            "trust",
            "-U",
            "windl",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data_dir / "data"),
            "-w",
            "-l",
            str(data_dir / "server.log"),
            "-o",
            f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://windl@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [
                *as_user,
                str(bindir / "pg_ctl"),
                "-D",
                str(data_dir / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A new empty database on the session's PostgreSQL server."""
    import uuid

    import sqlalchemy as sa

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'windl.sqlite'}"
    return request.getfixturevalue("postgres_url")


# ----------------------------------------------------------------------------- portal
#: a study with only a members release: invisible to external users everywhere
MEMBERS_ONLY_STUDY = "secretstudy"


@pytest.fixture(scope="session")
def published_site_template(
    release_site_template: Path, tmp_path_factory: pytest.TempPathFactory, data: Path
) -> Path:
    """study1's members and external releases 1.0.0 audited and published, plus a study
    with only a published members release (:data:`MEMBERS_ONLY_STUDY`), and the catalog
    indexed. Made once; copy it (:func:`copy_site`) before changing it."""
    base = tmp_path_factory.mktemp("published")
    root = base / "site"
    shutil.copytree(release_site_template, root, symlinks=True)
    site = ("--site", root)
    for scope in ("members", "external"):
        run_windl("audit", release_dir(root, scope), *site)
        run_windl("publish", "study1", "--scope", scope, "--version", "1.0.0", *site)
    secret = MEMBERS_ONLY_STUDY
    run_windl("study", "create", secret, *site)
    from windl.datasets import save

    # the study lead approves the task label an operator gives on the command line
    settings = study_path(root, secret) / "code" / "study.toml"
    settings.write_text(settings.read_text() + '\n[vocabulary]\ntask = ["rest"]\n')
    save(study_path(root, secret), ["code/study.toml"], "test: settings")
    run_windl("ingest", secret, data / "mne_testfiles/brainvision", "--subject", "01", *site)
    run_windl("convert", secret, "--task", "rest", *site)
    (base / "consent2.csv").write_text(
        "participant_id,scopes,form_version,date\nsub-01,members,v1,2026-11-01\n"
    )
    run_windl("consent", "import", secret, base / "consent2.csv", *site)
    run_windl("release", "build", secret, "--scope", "members", "--version", "1.0.0", *site)
    run_windl("audit", root / "superdataset" / "releases" / secret / "members", *site)
    run_windl("publish", secret, "--scope", "members", "--version", "1.0.0", *site)
    run_windl("catalog", "index", *site)
    return root


def copy_site(template: Path, target: Path) -> Path:
    """A copy of a site; the stores' RIA URLs keep pointing at the template (read-only)."""
    shutil.copytree(template, target, symlinks=True)
    return target


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def portal_server(site: Path, *extra: str) -> Iterator[str]:
    """``windl serve`` on a free port in a child process; yields its base URL."""
    port = free_port()
    log = site.parent / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*WINDL, "serve", "--port", str(port), "--site", str(site), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    with serving(proc, port, "windl serve", log) as url:
        yield url


@contextmanager
def serving(proc: subprocess.Popen, port: int, name: str, log: Path) -> Iterator[str]:
    """Wait until ``proc`` listens on ``port``; yield its URL; stop it afterwards."""
    import socket
    import time

    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                said = log.read_text() if log.exists() else ""
                pytest.fail(f"{name} did not start:\n{said}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def nginx_proxy(
    upstream: str,
    workdir: Path,
    stores: dict[str, Path],
    port: int | None = None,
    extra_locations: str = "",
) -> Iterator[str]:
    """A real nginx on a free port in front of ``upstream``; yields its base URL.

    As the maintainer guide configures it: ``X-Forwarded-For`` set, no buffering, and one
    internal location per scope's store for the portal's ``X-Accel-Redirect``.
    """

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    internal = "\n".join(
        f"        location /_windl_stores/{scope}/ {{ internal; alias {path}/; }}"
        for scope, path in stores.items()
    )
    # as root, workers that stay root can read the test's private temporary folders
    user = "user root;" if os.geteuid() == 0 else ""
    (workdir / "nginx.conf").write_text(
        f"""{user}
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 16m;
        location / {{
            proxy_pass {upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_buffering off;
            proxy_read_timeout 600s;
        }}
{internal}
{extra_locations}
    }}
}}
"""
    )
    proc = subprocess.Popen(
        [nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # its errors go to error.log
    )
    with serving(proc, port, "nginx", workdir / "error.log") as url:
        yield url


PORTAL_PASSWORD = "correct horse battery"


def portal_account(root: Path, email: str, role: str = "external", accept_dua: bool = True) -> str:
    """An account with a confirmed address (and the current DUA accepted); its new token."""
    import re

    from windl.config import load_site
    from windl.portal import accounts, dua, tokens
    from windl.portal.app import portal_engine

    site = load_site(root)
    engine = portal_engine(site)
    accounts.invite(site, engine, email, role, "http://portal")
    mails = [m.read_text() for m in (root / "portal" / "outbox").glob("*.eml")]
    (secret,) = {re.search(r"/confirm/(\S+)", m).group(1) for m in mails if f"To: {email}" in m}
    user = accounts.confirm(site, engine, secret, "127.0.0.1", PORTAL_PASSWORD)
    if accept_dua:
        dua.accept(engine, user.id, email, dua.current(site).version, "127.0.0.1")
    return tokens.create(engine, user, "test", "127.0.0.1")


def datalad_user(home: Path, base_url: str, token: str | None) -> dict[str, str]:
    """A user's environment on another machine: own HOME, DataLad's git credential helper
    holding ``token`` for ``base_url`` (as the portal's "how to clone" text says).

    Two settings only stand in for "another machine": git-annex refuses loopback
    addresses unless allowed, and the stores' own file:// special remotes (which the
    clone's git-annex branch names) are ignored, so every byte comes through the portal.
    """
    from windl.datasets import tool_env

    home.mkdir(parents=True, exist_ok=True)
    env = {
        **tool_env(),
        "HOME": str(home),
        "GIT_TERMINAL_PROMPT": "0",
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
    }
    settings = {
        "user.name": "external user",
        "user.email": "user@example.org",
        "credential.helper": "datalad",
        "datalad.credentials.githelper.noninteractive": "true",
        "annex.security.allowed-ip-addresses": "127.0.0.1",
        "remote.external-store-storage.annex-ignore": "true",
        "remote.members-store-storage.annex-ignore": "true",
    }
    for key, value in settings.items():
        subprocess.run(["git", "config", "--global", key, value], env=env, check=True)
    if token is not None:
        protocol, host = base_url.split("://")
        subprocess.run(
            ["git", "credential", "approve"],
            input=f"protocol={protocol}\nhost={host}\nusername=user\npassword={token}\n\n",
            text=True,
            env=env,
            check=True,
        )
    return env


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def only_match(folder: Path, pattern: str) -> Path:
    """The one path under ``folder`` matching ``pattern`` (fails on none or several)."""
    (found,) = sorted(folder.glob(pattern))
    return found


# --------------------------------------------------------------------------- Slurm
SLURM_CONF = """\
ClusterName=windltest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
AuthInfo=socket={dir}/munge.sock
CredType=cred/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
NodeName={host} CPUs=2 State=UNKNOWN
PartitionName=windl Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[dict[str, str]]:
    """A real single-node Slurm of Debian's slurm-wlm on this host (munged, slurmctld,
    slurmd as root, no cgroups, state in a temporary folder, free ports); yields the
    environment (``SLURM_CONF``) under which sbatch/squeue talk to it. Stopped at the end."""
    import contextlib
    import signal
    import socket
    import tempfile
    import time

    for program in ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "sinfo"):
        if shutil.which(program, path=os.environ["PATH"] + ":/usr/sbin") is None:
            pytest.fail(f"{program} is not installed (ci/setup.sh installs slurm-wlm and munge)")
    folder = Path(tempfile.mkdtemp(prefix="windl-slurm-"))
    (folder / "state").mkdir()
    (folder / "spool").mkdir()
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(host=host, dir=folder, ctld_port=free_port(), d_port=free_port())
    )
    env = {"SLURM_CONF": str(conf)}
    full_env = {**os.environ, **env}
    key = folder / "munge.key"
    subprocess.run(["/usr/sbin/mungekey", "-c", "-k", str(key)], check=True)
    key.chmod(0o600)
    started = []
    try:
        subprocess.run(
            ["/usr/sbin/munged", "--force", f"--socket={folder}/munge.sock",
             f"--key-file={key}", f"--pid-file={folder}/munged.pid",
             f"--log-file={folder}/munged.log", f"--seed-file={folder}/munge.seed"],
            check=True,
        )  # fmt: skip
        started.append(folder / "munged.pid")
        subprocess.run(["/usr/sbin/slurmctld", "-f", str(conf)], check=True, env=full_env)
        started.append(folder / "slurmctld.pid")
        subprocess.run(["/usr/sbin/slurmd", "-f", str(conf), "-N", host], check=True, env=full_env)
        started.append(folder / "slurmd.pid")
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            state = subprocess.run(
                ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=full_env
            ).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        else:
            log = (folder / "slurmctld.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"Slurm node not idle after 60 s (state {state!r}):\n{log}")
        yield env
    finally:
        for pid_file in reversed(started):
            deadline = time.monotonic() + 10
            while not pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.1)  # daemons write their pid file after forking
            if pid_file.exists():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
        time.sleep(1)
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------ headless Chromium (reports)
#: Debian's Chromium (ci/setup.sh installs it); Playwright drives it, never downloads a browser
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
#: screenshots the tests keep for people to look at (gitignored, as the portal's)
ARTIFACTS = REPO / "tests" / "artifacts" / "qc"


def open_in_chromium(page: Path, screenshot: str) -> dict[str, object]:
    """Open a local HTML file in headless Chromium with a fresh profile; save a full-page
    screenshot as ``ARTIFACTS/<screenshot>``.

    Returns ``errors`` (console errors and uncaught page errors), ``images`` (how many) and
    ``broken_images`` (those that did not decode), ``links`` (local hrefs) and ``screenshot``.
    """
    import tempfile

    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} missing (ci/setup.sh installs Debian's chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / screenshot
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="windl-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": 1280, "height": 900},
        )
        try:
            tab = context.new_page()
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto(page.as_uri(), wait_until="load")
            images = tab.evaluate("document.images.length")
            broken = tab.evaluate(
                "Array.from(document.images).filter(i => !i.complete || !i.naturalWidth).length"
            )
            links = tab.evaluate(
                "Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
            )
            tab.screenshot(path=str(shot), full_page=True)
        finally:
            context.close()
    return {
        "errors": errors,
        "images": images,
        "broken_images": broken,
        "links": links,
        "screenshot": shot,
    }
