"""Bad input gets one clear line on stderr, a non-zero exit, and leaves every dataset alone.

All inputs are built in tmp_path from the real scanner data in ../shared/data; the real
CLI runs in a child process.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from conftest import REPO, Runner, dataset_heads, git_status, study_path

GE_SERIES = "dcm_qa_nih/In/20180918GE/mr_0004"
GE_OTHER_SERIES = "dcm_qa_nih/In/20180918GE/mr_0005"
SIEMENS_SERIES = "dcm_qa_nih/In/20180918Si/mr_0003"

#: (source to ingest, texts the error line must contain: the offending name and the problem)
Case = tuple[Path, list[str]]


# ----------------------------------------------------------------------------- helpers
def dicoms(data: Path, series: str = GE_SERIES) -> list[Path]:
    files = sorted((data / series).glob("*.dcm"))
    assert files, f"no DICOM files in {data / series}"
    return files


def assert_refused(proc: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Non-zero exit and exactly one 'windl: error:' line that contains ``expected``."""
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode != 0, report
    assert "Traceback" not in proc.stderr, report
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"want one error line, got {len(lines)}\n{report}"
    line = lines[0]
    assert line.startswith("windl: error:"), report
    for text in expected:
        assert text in line, f"{text!r} missing from the error line {line!r}"
    return line


def assert_unchanged(site: Path, before: dict[str, str]) -> None:
    """Same commits everywhere, clean trees, no extraction scratch left behind."""
    assert dataset_heads(site) == before
    study = study_path(site)
    assert git_status(study) == ""
    assert git_status(study / "sourcedata") == ""
    scratch = study / "sourcedata" / ".git" / "windl" / "extract"
    assert not scratch.exists() or not any(scratch.iterdir()), list(scratch.iterdir())


def add_member(tf: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tf.addfile(info, io.BytesIO(payload))


def add_symlink(tf: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    tf.addfile(info)


def truncated_copy(source: Path, folder: Path, keep: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    target.write_bytes(source.read_bytes()[:keep])
    return target


def pixel_data_start(path: Path) -> int:
    """Offset of the PixelData element header (explicit VR little endian: 12 bytes)."""
    elem = pydicom.dcmread(path).get_item("PixelData")
    start = elem.value_tell - 12
    assert path.read_bytes()[start : start + 4] == b"\xe0\x7f\x10\x00"
    return start


# ----------------------------------------------------------------------------- bad sources
def truncated_in_header(data: Path, tmp: Path) -> Case:
    first = dicoms(data)[0]
    bad = truncated_copy(first, tmp / "scan", first.stat().st_size // 2)
    return bad.parent, [bad.name, "truncated"]


def truncated_in_pixel_data(data: Path, tmp: Path) -> Case:
    first = dicoms(data)[0]
    bad = truncated_copy(first, tmp / "scan", first.stat().st_size - 100)
    return bad.parent, [bad.name, "truncated"]


def truncated_before_pixel_data(data: Path, tmp: Path) -> Case:
    first = dicoms(data)[0]
    bad = truncated_copy(first, tmp / "scan", pixel_data_start(first))
    return bad.parent, [bad.name, "truncated"]


def zip_with_parent_member(data: Path, tmp: Path) -> Case:
    archive = tmp / "parent.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in dicoms(data)[:3]:
            zf.write(path, f"scan/{path.name}")
        zf.writestr(zipfile.ZipInfo("../evil.dcm"), dicoms(data)[3].read_bytes())
    return archive, [archive.name, "../evil.dcm", "outside"]


def zip_with_absolute_member(data: Path, tmp: Path) -> Case:
    archive = tmp / "absolute.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(dicoms(data)[0], "scan/first.dcm")
        zf.writestr(zipfile.ZipInfo("/tmp/windl-evil.dcm"), dicoms(data)[1].read_bytes())
    return archive, [archive.name, "absolute"]


def zip_with_symlink_member(data: Path, tmp: Path) -> Case:
    archive = tmp / "zlink.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(dicoms(data)[0], "scan/first.dcm")
        link = zipfile.ZipInfo("scan/passwd")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
    return archive, [archive.name, "outside"]


def tar_with_symlink_to_etc_passwd(data: Path, tmp: Path) -> Case:
    archive = tmp / "links.tar"
    with tarfile.open(archive, "w") as tf:
        add_member(tf, "scan/first.dcm", dicoms(data)[0].read_bytes())
        add_symlink(tf, "scan/passwd", "/etc/passwd")
    return archive, [archive.name, "/etc/passwd", "outside"]


def tar_with_symlink_upwards(data: Path, tmp: Path) -> Case:
    archive = tmp / "uplink.tar"
    with tarfile.open(archive, "w") as tf:
        add_member(tf, "scan/first.dcm", dicoms(data)[0].read_bytes())
        add_symlink(tf, "scan/x", "../../x")
    return archive, [archive.name, "../../x", "outside"]


def tar_with_absolute_member(data: Path, tmp: Path) -> Case:
    archive = tmp / "absolute.tar"
    with tarfile.open(archive, "w") as tf:
        add_member(tf, "scan/first.dcm", dicoms(data)[0].read_bytes())
        add_member(tf, "/tmp/windl-evil.dcm", dicoms(data)[1].read_bytes())
    return archive, [archive.name, "absolute"]


def targz_with_parent_member(data: Path, tmp: Path) -> Case:
    archive = tmp / "parent.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        add_member(tf, "scan/first.dcm", dicoms(data)[0].read_bytes())
        add_member(tf, "scan/../../evil.dcm", dicoms(data)[1].read_bytes())
    return archive, [archive.name, "outside"]


def zip_with_truncated_member(data: Path, tmp: Path) -> Case:
    archive = tmp / "scan.zip"
    files = dicoms(data)[:5]
    with zipfile.ZipFile(archive, "w") as zf:
        for path in files[:-1]:
            zf.write(path, f"scan/{path.name}")
        zf.writestr(f"scan/{files[-1].name}", files[-1].read_bytes()[:10_000])
    return archive, [archive.name, files[-1].name, "truncated"]


def text_file_named_dcm(data: Path, tmp: Path) -> Case:
    folder = tmp / "export"
    folder.mkdir()
    (folder / "x.dcm").write_text("this is not DICOM\n", encoding="utf-8")
    return folder, ["x.dcm", "not a DICOM"]


def empty_folder(data: Path, tmp: Path) -> Case:
    folder = tmp / "emptyfolder"
    folder.mkdir()
    return folder, [folder.name, "contains no files"]


def empty_zip(data: Path, tmp: Path) -> Case:
    archive = tmp / "nothing.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo("scan/"), b"")
    return archive, [archive.name, "contains no files"]


def random_bytes_zip(data: Path, tmp: Path) -> Case:
    archive = tmp / "data.zip"
    archive.write_bytes(os.urandom(64 * 1024))
    return archive, [archive.name, "not a readable zip"]


def random_bytes_targz(data: Path, tmp: Path) -> Case:
    archive = tmp / "data.tar.gz"
    archive.write_bytes(os.urandom(64 * 1024))
    return archive, [archive.name, "not a readable tar"]


def folder_with_only_readme(data: Path, tmp: Path) -> Case:
    folder = tmp / "notes"
    folder.mkdir()
    shutil.copyfile(data / GE_SERIES / "README-Series.txt", folder / "README.txt")
    return folder, [folder.name, "no DICOM"]


def nonexistent_source(data: Path, tmp: Path) -> Case:
    return tmp / "no-such-export", ["no-such-export", "no such file"]


BAD_SOURCES: list[Callable[[Path, Path], Case]] = [
    truncated_in_header,
    truncated_in_pixel_data,
    truncated_before_pixel_data,
    zip_with_parent_member,
    zip_with_absolute_member,
    zip_with_symlink_member,
    tar_with_symlink_to_etc_passwd,
    tar_with_symlink_upwards,
    tar_with_absolute_member,
    targz_with_parent_member,
    zip_with_truncated_member,
    text_file_named_dcm,
    empty_folder,
    empty_zip,
    random_bytes_zip,
    random_bytes_targz,
    folder_with_only_readme,
    nonexistent_source,
]


@pytest.mark.parametrize("make_source", BAD_SOURCES, ids=[f.__name__ for f in BAD_SOURCES])
def test_bad_source_is_refused_in_one_line_and_changes_nothing(
    make_source: Callable[[Path, Path], Case],
    site: Path,
    windl: Runner,
    data: Path,
    tmp_path: Path,
) -> None:
    """Each unusable source: one line naming the file and the problem, nothing written."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    source, expected = make_source(data, inputs)
    before = dataset_heads(site)
    proc = windl("ingest", "study1", source, "--subject", "01", "--site", site, check=False)
    assert_refused(proc, *expected)
    assert_unchanged(site, before)


def test_folder_with_good_series_and_one_truncated_file_is_refused_as_a_whole(
    site: Path, windl: Runner, data: Path, tmp_path: Path
) -> None:
    """A whole good series next to one truncated file: nothing of it is ingested."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for path in dicoms(data):
        shutil.copyfile(path, folder / path.name)
    bad = dicoms(data, GE_OTHER_SERIES)[0]
    truncated_copy(bad, folder, bad.stat().st_size * 2 // 3)
    before = dataset_heads(site)

    proc = windl("ingest", "study1", folder, "--subject", "01", "--site", site, check=False)

    assert_refused(proc, bad.name, "truncated")
    assert_unchanged(site, before)
    assert not (study_path(site) / "sourcedata" / "sub-01").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["ingest", "nosuchstudy", "{series}", "--subject", "01"],
            ["nosuchstudy", "unknown study"],
            id="unknown-study",
        ),
        pytest.param(
            ["ingest", "study1", "{series}", "--subject", "a/b"],
            ["a/b", "invalid"],
            id="subject-with-slash",
        ),
        pytest.param(
            ["ingest", "study1", "{series}", "--subject", "01", "--session", "../1"],
            ["../1", "invalid"],
            id="session-with-dots",
        ),
        pytest.param(
            ["convert", "study1"],
            ["study1", "no ingested raw data"],
            id="convert-before-ingest",
        ),
    ],
)
def test_bad_names_and_empty_study_are_refused_in_one_line_and_change_nothing(
    args: list[str], expected: list[str], site: Path, windl: Runner, data: Path
) -> None:
    """Unknown study, invalid labels, convert with nothing ingested."""
    before = dataset_heads(site)
    argv = [a.replace("{series}", str(data / GE_SERIES)) for a in args]
    proc = windl(*argv, "--site", site, check=False)
    assert_refused(proc, *expected)
    assert_unchanged(site, before)


# ----------------------------------------------------------------------------- missing tools
def foreign_python(env: dict[str, str]) -> str | None:
    """A Python (same version) outside the venv, whose bin dir has no heudiconv/dcm2niix.

    windl puts its interpreter's bin dir first on PATH, so only a different interpreter
    can genuinely lack the venv's converters.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    venv_bin = Path(sys.executable).parent
    for candidate in (
        Path(sys.base_prefix) / "bin" / f"python{version}",
        Path(f"/usr/bin/python{version}"),
    ):
        if not candidate.is_file() or candidate.parent == venv_bin:
            continue
        if any((candidate.parent / tool).exists() for tool in ("heudiconv", "dcm2niix")):
            continue
        probe = subprocess.run(
            [str(candidate), "-c", "import sys, windl.cli; print(sys.prefix)"],
            capture_output=True,
            text=True,
            env=env,
        )
        if probe.returncode == 0 and Path(probe.stdout.strip()) != Path(sys.prefix):
            return str(candidate)
    return None


def test_convert_without_converters_on_path_names_the_tool_and_changes_nothing(
    site: Path, windl: Runner, data: Path, tmp_path: Path
) -> None:
    """A machine with git and git-annex but no heudiconv/dcm2niix: one line, exit 3."""
    windl("ingest", "study1", data / SIEMENS_SERIES, "--subject", "01", "--site", site)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("git", "git-annex"):
        found = shutil.which(tool)
        assert found, f"{tool} not installed"
        (bindir / tool).symlink_to(found)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = str(bindir)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), sysconfig.get_paths()["purelib"]])
    python = foreign_python(env)
    if python is None:
        pytest.skip("no Python outside the venv that can import windl without the converters")
    before = dataset_heads(site)

    proc = subprocess.run(
        [python, "-m", "windl", "convert", "study1", "--site", str(site)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )

    assert_refused(proc, "heudiconv", "not installed")
    assert proc.returncode == 3
    assert_unchanged(site, before)
    assert not (study_path(site) / "sub-01").exists()
