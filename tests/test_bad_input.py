"""Bad input gets one clear line on stderr, a non-zero exit, and leaves every dataset alone.

All inputs are built in tmp_path from the real scanner data in ../shared/data; the real
CLI runs in a child process.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from conftest import REPO, Runner, dataset_heads, git_status, portal_server, study_path

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


def zeros_zip(data: Path, tmp: Path) -> Case:
    """64 MiB of zeros pack into 64 KB: 1000:1, refused before a byte is extracted."""
    archive = tmp / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(dicoms(data)[0], "scan/first.dcm")
        with zf.open("scan/zeros.dcm", "w") as out:
            for _ in range(64):
                out.write(bytes(1 << 20))
    return archive, [archive.name, "times its size", "max_archive_ratio"]


def zeros_targz(data: Path, tmp: Path) -> Case:
    archive = tmp / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        add_member(tf, "scan/zeros.dcm", bytes(64 << 20))
    return archive, [archive.name, "times its size", "max_archive_ratio"]


def zip_with_duplicate_member(data: Path, tmp: Path) -> Case:
    archive = tmp / "twice.zip"
    first, second = dicoms(data)[:2]
    with zipfile.ZipFile(archive, "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.write(first, "scan/a.dcm")
        zf.write(second, "scan/a.dcm")
    return archive, [archive.name, "'scan/a.dcm'", "appears twice"]


def zip_with_encrypted_member(data: Path, tmp: Path) -> Case:
    """A member flagged password-protected (found by fuzzing: zipfile's RuntimeError)."""
    archive = tmp / "locked.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("scan/a.dcm", dicoms(data)[0].read_bytes())
    raw = bytearray(archive.read_bytes())
    raw[raw.find(b"PK\x01\x02") + 8] |= 0x01  # the central directory's flags, bit 0
    archive.write_bytes(bytes(raw))
    return archive, [archive.name, "'scan/a.dcm'", "encrypted"]


def tar_with_duplicate_member(data: Path, tmp: Path) -> Case:
    archive = tmp / "twice.tar"
    first, second = dicoms(data)[:2]
    with tarfile.open(archive, "w") as tf:
        add_member(tf, "scan/a.dcm", first.read_bytes())
        add_member(tf, "scan/a.dcm", second.read_bytes())
    return archive, [archive.name, "'scan/a.dcm'", "appears twice"]


def zip_whose_header_lies_about_size(data: Path, tmp: Path) -> Case:
    """The central directory says 100 bytes for a whole DICOM file: the bytes are counted."""
    archive = tmp / "liar.zip"
    first = dicoms(data)[0]
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(first, "scan/first.dcm")
    raw = bytearray(archive.read_bytes())
    real = first.stat().st_size.to_bytes(4, "little")
    # the size is in the local header (offset 22) and the central directory (offset 24)
    for at in (raw.find(b"PK\x03\x04") + 22, raw.find(b"PK\x01\x02") + 24):
        assert raw[at : at + 4] == real
        raw[at : at + 4] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    return archive, [archive.name, "scan/first.dcm"]


def tar_with_sparse_member(data: Path, tmp: Path) -> Case:
    sparse = tmp / "sparse.img"
    with sparse.open("wb") as fh:
        fh.seek(8 << 20)
        fh.write(b"end")
    archive = tmp / "sparse.tar"
    proc = subprocess.run(
        ["tar", "--sparse", "-cf", str(archive), "-C", str(tmp), sparse.name],
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr
    sparse.unlink()
    return archive, [archive.name, "sparse.img", "sparse"]


def folder_with_latin1_name(data: Path, tmp: Path) -> Case:
    folder = tmp / "export"
    folder.mkdir()
    shutil.copyfile(dicoms(data)[0], folder / "first.dcm")
    shutil.copyfile(dicoms(data)[1], os.fsdecode(bytes(folder) + b"/M\xfcller.dcm"))
    return folder, [folder.name, "M\\xfcller.dcm", "not UTF-8"]


def folder_with_symlink_loop(data: Path, tmp: Path) -> Case:
    folder = tmp / "export"
    folder.mkdir()
    shutil.copyfile(dicoms(data)[0], folder / "first.dcm")
    (folder / "a.dcm").symlink_to("b.dcm")
    (folder / "b.dcm").symlink_to("a.dcm")
    return folder, [folder.name, "a.dcm", "symbolic link loop"]


def folder_with_link_to_etc_passwd(data: Path, tmp: Path) -> Case:
    folder = tmp / "export"
    folder.mkdir()
    shutil.copyfile(dicoms(data)[0], folder / "first.dcm")
    (folder / "passwd.dcm").symlink_to("/etc/passwd")
    return folder, [folder.name, "passwd.dcm", "/etc/passwd", "outside"]


def folder_with_broken_link(data: Path, tmp: Path) -> Case:
    folder = tmp / "export"
    folder.mkdir()
    shutil.copyfile(dicoms(data)[0], folder / "first.dcm")
    (folder / "gone.dcm").symlink_to("nowhere.dcm")
    return folder, [folder.name, "gone.dcm", "broken link"]


def brainvision_copy(data: Path, tmp: Path) -> Path:
    folder = tmp / "eeg"
    folder.mkdir()
    for path in (data / "mne_testfiles" / "brainvision").iterdir():
        shutil.copyfile(path, folder / path.name)
    return folder


def brainvision_eeg_shorter_than_markers(data: Path, tmp: Path) -> Case:
    """Whole samples, but half of them: the last marker (sample 7700) is past the end."""
    folder = brainvision_copy(data, tmp)
    eeg = folder / "test.eeg"
    eeg.write_bytes(eeg.read_bytes()[: 32 * 2 * 3950])
    return folder, ["test.eeg", "truncated BrainVision", "7700"]


def brainvision_eeg_cut_mid_sample(data: Path, tmp: Path) -> Case:
    folder = brainvision_copy(data, tmp)
    eeg = folder / "test.eeg"
    eeg.write_bytes(eeg.read_bytes()[:-1])
    return folder, ["test.eeg", "truncated BrainVision", "whole number"]


def brainvision_empty_eeg(data: Path, tmp: Path) -> Case:
    folder = brainvision_copy(data, tmp)
    (folder / "test.eeg").write_bytes(b"")
    return folder, ["test.eeg", "truncated BrainVision"]


def brainvision_header_without_channels(data: Path, tmp: Path) -> Case:
    folder = brainvision_copy(data, tmp)
    vhdr = folder / "test.vhdr"
    vhdr.write_text(
        vhdr.read_text(encoding="utf-8").replace("NumberOfChannels=32", "NumberOfChannels=x"),
        encoding="utf-8",
    )
    return folder, ["test.vhdr", "NumberOfChannels"]


def brainvision_marker_without_header(data: Path, tmp: Path) -> Case:
    folder = brainvision_copy(data, tmp)
    (folder / "test.vhdr").unlink()
    return folder, ["test.eeg", "without header"]


def brainvision_data_file_elsewhere(data: Path, tmp: Path) -> Case:
    folder = brainvision_copy(data, tmp)
    vhdr = folder / "test.vhdr"
    text = vhdr.read_text(encoding="utf-8").replace("DataFile=test.eeg", "DataFile=../test.eeg")
    vhdr.write_text(text, encoding="utf-8")
    return folder, ["test.vhdr", "incomplete BrainVision", "../test.eeg"]


def fif_copy(data: Path, tmp: Path, keep: int | None = None) -> Path:
    folder = tmp / "meg"
    folder.mkdir()
    raw = (data / "mne_testfiles" / "fif" / "test_ctf_comp_raw.fif").read_bytes()
    target = folder / "rec_raw.fif"
    target.write_bytes(raw[:keep] if keep is not None else raw)
    return target


def fif_cut_in_its_data(data: Path, tmp: Path) -> Case:
    """mne reads the measurement info of this file without complaint: the tags are walked."""
    target = fif_copy(data, tmp, 300_000)
    return target.parent, ["rec_raw.fif", "truncated FIF"]


def fif_cut_in_a_tag_header(data: Path, tmp: Path) -> Case:
    size = (data / "mne_testfiles" / "fif" / "test_ctf_comp_raw.fif").stat().st_size
    target = fif_copy(data, tmp, size - 8)
    return target.parent, ["rec_raw.fif", "truncated FIF"]


def fif_with_next_pointer_outside(data: Path, tmp: Path) -> Case:
    target = fif_copy(data, tmp)
    raw = bytearray(target.read_bytes())
    raw[12:16] = (10**9).to_bytes(4, "big")  # the first tag's 'next'
    target.write_bytes(bytes(raw))
    return target.parent, ["rec_raw.fif", "unreadable FIF"]


def edf_cut_in_half(data: Path, tmp: Path) -> Case:
    folder = tmp / "edf"
    folder.mkdir()
    raw = (data / "mne_testfiles" / "edf" / "test.edf").read_bytes()
    (folder / "test.edf").write_bytes(raw[: len(raw) // 2])
    return folder, ["test.edf", "truncated EDF"]


def edf_with_garbage_header(data: Path, tmp: Path) -> Case:
    folder = tmp / "edf"
    folder.mkdir()
    raw = bytearray((data / "mne_testfiles" / "edf" / "test.edf").read_bytes())
    raw[236:244] = b"lots    "  # number of records
    (folder / "test.edf").write_bytes(bytes(raw))
    return folder, ["test.edf", "not a valid EDF header"]


def dicom_without_pixel_data_element(data: Path, tmp: Path) -> Case:
    first = dicoms(data)[0]
    bad = truncated_copy(first, tmp / "scan", pixel_data_start(first) + 6)
    return bad.parent, [bad.name, "truncated"]


def dicom_preamble_only(data: Path, tmp: Path) -> Case:
    bad = truncated_copy(dicoms(data)[0], tmp / "scan", 132)
    return bad.parent, [bad.name]


def siemens_truncated(data: Path, tmp: Path) -> Case:
    first = dicoms(data, SIEMENS_SERIES)[0]
    bad = truncated_copy(first, tmp / "scan", first.stat().st_size // 3)
    return bad.parent, [bad.name, "truncated"]


def not_an_archive_file(data: Path, tmp: Path) -> Case:
    path = tmp / "scan.rar"
    path.write_bytes(b"Rar!\x1a\x07\x00" + os.urandom(100))
    return path, ["scan.rar", "not a folder, .zip or .tar"]


def truncated_zip(data: Path, tmp: Path) -> Case:
    archive = tmp / "cut.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in dicoms(data)[:3]:
            zf.write(path, f"scan/{path.name}")
    archive.write_bytes(archive.read_bytes()[:-200])
    return archive, [archive.name, "not a readable zip"]


def truncated_targz(data: Path, tmp: Path) -> Case:
    archive = tmp / "cut.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for path in dicoms(data)[:3]:
            add_member(tf, f"scan/{path.name}", path.read_bytes())
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    return archive, [archive.name, "not a readable tar"]


def tar_with_device_member(data: Path, tmp: Path) -> Case:
    archive = tmp / "dev.tar"
    with tarfile.open(archive, "w") as tf:
        add_member(tf, "scan/first.dcm", dicoms(data)[0].read_bytes())
        info = tarfile.TarInfo("scan/null")
        info.type = tarfile.CHRTYPE
        info.devmajor, info.devminor = 1, 3
        tf.addfile(info)
    return archive, [archive.name, "scan/null", "device"]


def tar_with_hardlink_outside(data: Path, tmp: Path) -> Case:
    archive = tmp / "hard.tar"
    with tarfile.open(archive, "w") as tf:
        add_member(tf, "scan/first.dcm", dicoms(data)[0].read_bytes())
        info = tarfile.TarInfo("scan/shadow")
        info.type = tarfile.LNKTYPE
        info.linkname = "/etc/shadow"
        tf.addfile(info)
    return archive, [archive.name, "/etc/shadow", "outside"]


def zip_with_latin1_member(data: Path, tmp: Path) -> Case:
    """A zip member name in cp437 decodes to text: it is not refused for its encoding, but
    a Windows drive path is."""
    archive = tmp / "drive.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("C:/scan/first.dcm", dicoms(data)[0].read_bytes())
    return archive, [archive.name, "absolute"]


BAD_SOURCES: list[Callable[[Path, Path], Case]] = [
    zeros_zip,
    zeros_targz,
    zip_with_duplicate_member,
    zip_with_encrypted_member,
    tar_with_duplicate_member,
    zip_whose_header_lies_about_size,
    tar_with_sparse_member,
    folder_with_latin1_name,
    folder_with_symlink_loop,
    folder_with_link_to_etc_passwd,
    folder_with_broken_link,
    brainvision_data_file_elsewhere,
    brainvision_eeg_shorter_than_markers,
    brainvision_eeg_cut_mid_sample,
    brainvision_empty_eeg,
    brainvision_header_without_channels,
    brainvision_marker_without_header,
    fif_cut_in_its_data,
    fif_cut_in_a_tag_header,
    fif_with_next_pointer_outside,
    edf_cut_in_half,
    edf_with_garbage_header,
    dicom_without_pixel_data_element,
    dicom_preamble_only,
    siemens_truncated,
    not_an_archive_file,
    truncated_zip,
    truncated_targz,
    tar_with_device_member,
    tar_with_hardlink_outside,
    zip_with_latin1_member,
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


# ----------------------------------------------------------------------------- every dataset
def site_state(site: Path) -> dict[str, tuple[str, str]]:
    """HEAD and ``git status`` of every dataset of the site (the superdataset, studies,
    their subdatasets and subject datasets, releases), by path."""
    state: dict[str, tuple[str, str]] = {}
    for dirpath, dirnames, _files in os.walk(site):
        here = Path(dirpath)
        if (here / ".git").exists():
            head = subprocess.run(
                ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True
            ).stdout.strip()
            state[str(here.relative_to(site))] = (head, git_status(here))
        dirnames[:] = [d for d in dirnames if d != ".git"]
    assert len(state) >= 4, state  # superdataset, study, sourcedata, restricted at least
    return state


#: a case run against a copy of the site: (site, data, tmp) -> (argv, texts of the line)
SiteCase = Callable[[Path, Path, Path], tuple[list[str | Path], list[str]]]


def tiny_bids(data: Path, tmp: Path) -> Path:
    """A writable copy of a small valid BIDS dataset (one EEG subject)."""
    target = tmp / "bids"
    shutil.copytree(data / "mne_bids_tiny_bids" / "tiny_bids", target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return target


def with_site_setting(site: Path, text: str) -> None:
    config = site / "windl.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")


def with_ingest_limit(site: Path, key: str, value: str) -> None:
    """Set ``[ingest] key`` of the site's windl.toml (the template lists every key)."""
    config = site / "windl.toml"
    text, n = re.subn(
        rf"^{key} = .*$", f"{key} = {value}", config.read_text(encoding="utf-8"), flags=re.M
    )
    assert n == 1, f"{key} not in {config}"
    config.write_text(text, encoding="utf-8")


def small_zip(data: Path, tmp: Path, n: int = 4) -> Path:
    archive = tmp / "scan.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in dicoms(data)[:n]:
            zf.write(path, f"scan/{path.name}")
    return archive


def ingest_argv(source: Path) -> list[str | Path]:
    return ["ingest", "study1", source, "--subject", "01"]


# --- archive limits set in windl.toml
def limit_members(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    with_ingest_limit(site, "max_archive_members", "3")
    return ingest_argv(small_zip(data, tmp)), ["scan.zip", "members", "max_archive_members"]


def limit_bytes(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    with_ingest_limit(site, "max_archive_bytes", "100000")
    return ingest_argv(small_zip(data, tmp)), ["scan.zip", "max_archive_bytes"]


def limit_ratio(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    archive = tmp / "pad.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        # packs about 4:1, which the default (100:1) lets through
        add_member(tf, "scan/padded.dcm", os.urandom(5 << 20) + bytes(15 << 20))
    with_ingest_limit(site, "max_archive_ratio", "2")
    return ingest_argv(archive), ["pad.tar.gz", "max_archive_ratio"]


def limit_not_a_number(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    with_ingest_limit(site, "max_archive_ratio", '"lots"')
    return ingest_argv(small_zip(data, tmp)), ["windl.toml", "max_archive_ratio", "'lots'"]


def limit_negative(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    with_ingest_limit(site, "max_archive_members", "-1")
    return ingest_argv(small_zip(data, tmp)), ["windl.toml", "max_archive_members", "-1"]


def ingest_not_a_table(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    config = site / "windl.toml"
    text = config.read_text(encoding="utf-8").replace("[ingest]\n", "[ingest_old]\n")
    config.write_text("ingest = 3\n" + text, encoding="utf-8")
    return ingest_argv(small_zip(data, tmp)), ["windl.toml", "[ingest]", "table"]


def site_toml_broken(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    with_site_setting(site, "[ingest\n")
    return ingest_argv(small_zip(data, tmp)), ["windl.toml", "not valid TOML"]


def site_toml_not_utf8(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    config = site / "windl.toml"
    config.write_bytes(config.read_bytes() + b"\n# M\xfcller\n")
    return ingest_argv(small_zip(data, tmp)), ["windl.toml", "not valid TOML"]


def study_toml_broken(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    settings = study_path(site) / "code" / "study.toml"
    settings.write_text("[convert.tasks\n", encoding="utf-8")
    subprocess.run(["git", "-C", str(study_path(site)), "add", "code/study.toml"], check=True)
    subprocess.run(
        ["git", "-C", str(study_path(site)), "commit", "-qm", "broken settings"], check=True
    )
    return ["release", "build", "study1", "--scope", "members", "--version", "1.0.0"], [
        "study.toml"
    ]


# --- BIDS import
def import_link_to_etc_shadow(
    site: Path, data: Path, tmp: Path
) -> tuple[list[str | Path], list[str]]:
    bids = tiny_bids(data, tmp)
    (bids / "sub-01" / "notes.txt").symlink_to("/etc/shadow")
    return ["import", "study1", bids], ["sub-01/notes.txt", "/etc/shadow", "outside"]


def import_link_upwards(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    bids = tiny_bids(data, tmp)
    secret = tmp / "secret.txt"
    secret.write_text("not for the study\n", encoding="utf-8")
    (bids / "notes.txt").symlink_to("../secret.txt")
    return ["import", "study1", bids], ["notes.txt", "secret.txt", "outside"]


def import_link_loop(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    bids = tiny_bids(data, tmp)
    (bids / "a.txt").symlink_to("b.txt")
    (bids / "b.txt").symlink_to("a.txt")
    return ["import", "study1", bids], ["a.txt", "symbolic link loop"]


def import_dangling_link(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    bids = tiny_bids(data, tmp)
    (bids / "gone.txt").symlink_to("nowhere.txt")
    return ["import", "study1", bids], ["gone.txt", "dangling"]


def import_link_to_folder(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    bids = tiny_bids(data, tmp)
    (bids / "etc").symlink_to("/etc")
    return ["import", "study1", bids], ["etc", "link to a folder"]


def import_latin1_name(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    bids = tiny_bids(data, tmp)
    Path(os.fsdecode(bytes(bids) + b"/M\xfcller.txt")).write_text("x\n", encoding="utf-8")
    return ["import", "study1", bids], ["M\\xfcller.txt", "not UTF-8"]


def import_line_break(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    bids = tiny_bids(data, tmp)
    (bids / "two\nlines.txt").write_text("x\n", encoding="utf-8")
    return ["import", "study1", bids], ["line break"]


def import_not_bids(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    bids = tiny_bids(data, tmp)
    (bids / "dataset_description.json").unlink()
    return ["import", "study1", bids], ["bids", "not valid BIDS"]


def import_a_file(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    path = tmp / "bids.zip"
    path.write_bytes(b"PK\x05\x06" + bytes(18))
    return ["import", "study1", path], ["bids.zip", "not a folder"]


def import_missing(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    return ["import", "study1", tmp / "nothing"], ["nothing", "no such folder"]


def import_the_study(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    return ["import", "study1", study_path(site)], ["overlaps with the study"]


def import_link_in_sourcedata(
    site: Path, data: Path, tmp: Path
) -> tuple[list[str | Path], list[str]]:
    bids = tiny_bids(data, tmp)
    (bids / "sourcedata").mkdir()
    (bids / "sourcedata" / "raw.txt").symlink_to("/etc/passwd")
    return ["import", "study1", bids], ["sourcedata/raw.txt", "/etc/passwd", "outside"]


# --- windl add
def table(
    tmp: Path, name: str = "scores.tsv", text: str = "participant_id\tscore\nsub-01\t3\n"
) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def add_link_to_etc_shadow(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    link = tmp / "scores.tsv"
    link.symlink_to("/etc/shadow")
    return ["add", "study1", link, "--as", "phenotype"], ["scores.tsv", "/etc/shadow", "outside"]


def add_link_out_of_folder(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    real = table(tmp / "elsewhere")
    (tmp / "given").mkdir()
    link = tmp / "given" / "scores.tsv"
    link.symlink_to(real)
    return ["add", "study1", link, "--as", "phenotype"], ["scores.tsv", str(real), "outside"]


def add_folder_link_to_etc(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    link = tmp / "docs"
    link.symlink_to("/etc")
    return ["add", "study1", link, "--as", "docs"], ["docs", "/etc", "outside"]


def add_sidecar_link(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    path = table(tmp)
    (tmp / "scores.json").symlink_to("/etc/passwd")
    return ["add", "study1", path, "--as", "phenotype"], ["scores.json", "/etc/passwd", "outside"]


def add_link_inside_folder(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    folder = tmp / "docs"
    folder.mkdir()
    (folder / "protocol.md").write_text("# protocol\n", encoding="utf-8")
    (folder / "passwd.md").symlink_to("/etc/passwd")
    return ["add", "study1", folder, "--as", "docs"], ["passwd.md", "/etc/passwd", "outside"]


def add_link_loop(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    (tmp / "a.tsv").symlink_to("b.tsv")
    (tmp / "b.tsv").symlink_to("a.tsv")
    return ["add", "study1", tmp / "a.tsv", "--as", "phenotype"], ["a.tsv", "symbolic link loop"]


def add_dangling_link(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    (tmp / "a.tsv").symlink_to("gone.tsv")
    return ["add", "study1", tmp / "a.tsv", "--as", "phenotype"], ["a.tsv", "dangling"]


def add_missing(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    return ["add", "study1", tmp / "gone.tsv", "--as", "phenotype"], ["gone.tsv", "no such file"]


def add_bad_kind(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    return ["add", "study1", table(tmp), "--as", "secrets"], ["secrets"]


def add_bad_derivative(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    return ["add", "study1", table(tmp), "--as", "derivatives/../x"], ["derivatives/../x"]


def add_beh_without_task(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    argv: list[str | Path] = ["add", "study1", table(tmp), "--as", "beh", "--subject", "01"]
    return argv, ["--task"]


def add_subject_on_phenotype(
    site: Path, data: Path, tmp: Path
) -> tuple[list[str | Path], list[str]]:
    argv: list[str | Path] = ["add", "study1", table(tmp), "--as", "phenotype", "--subject", "01"]
    return argv, ["--subject", "only applies to --as beh"]


def add_beh_bad_task_label(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    argv: list[str | Path] = [
        *["add", "study1", table(tmp), "--as", "beh", "--subject", "01", "--task", "a_b"]
    ]
    return argv, ["a_b", "invalid"]


def add_phenotype_without_id(
    site: Path, data: Path, tmp: Path
) -> tuple[list[str | Path], list[str]]:
    path = table(tmp, text="subject\tscore\n01\t3\n")
    return ["add", "study1", path, "--as", "phenotype"], ["scores.tsv", "participant_id"]


def add_ragged_tsv(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    path = table(tmp, text="participant_id\tscore\nsub-01\t3\t4\n")
    return ["add", "study1", path, "--as", "phenotype"], ["scores.tsv"]


def add_tsv_not_utf8(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    path = tmp / "scores.tsv"
    path.write_bytes(b"participant_id\tname\nsub-01\tM\xfcller\n")
    return ["add", "study1", path, "--as", "phenotype"], ["scores.tsv"]


def add_empty_tsv(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    path = table(tmp, text="")
    return ["add", "study1", path, "--as", "phenotype"], ["scores.tsv"]


def add_empty_folder(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    (tmp / "docs").mkdir()
    return ["add", "study1", tmp / "docs", "--as", "docs"], ["docs", "contains no files"]


# --- consent tables
def consent_csv(tmp: Path, text: str | bytes) -> Path:
    path = tmp / "consent.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def consent_missing(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    return ["consent", "import", "study1", tmp / "none.csv"], ["none.csv"]


def consent_empty(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    return ["consent", "import", "study1", consent_csv(tmp, "")], ["consent.csv"]


def consent_not_utf8(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    path = consent_csv(tmp, b"participant_id,scopes,form_version,date\nsub-01,m\xfcmbers,1,\n")
    return ["consent", "import", "study1", path], ["consent.csv"]


def consent_binary(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    path = consent_csv(tmp, dicoms(data)[0].read_bytes()[:4096])
    return ["consent", "import", "study1", path], ["consent.csv"]


def consent_folder(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
    (tmp / "consent.csv").mkdir()
    return ["consent", "import", "study1", tmp / "consent.csv"], ["consent.csv"]


def consent_unknown_subject(
    site: Path, data: Path, tmp: Path
) -> tuple[list[str | Path], list[str]]:
    path = consent_csv(tmp, "participant_id,scopes,form_version,date\nsub-99,members,1,\n")
    return ["consent", "import", "study1", path], ["consent.csv", "sub-99"]


def consent_unknown_participant(
    site: Path, data: Path, tmp: Path
) -> tuple[list[str | Path], list[str]]:
    return ["consent", "set", "study1", "01", "--scope", "members"], ["sub-01", "no participant"]


# --- labels
def label_case(*argv: str, expect: list[str]) -> SiteCase:
    def make(site: Path, data: Path, tmp: Path) -> tuple[list[str | Path], list[str]]:
        return [a.replace("{series}", str(data / GE_SERIES)) for a in argv], expect

    make.__name__ = f"labels {' '.join(argv[2:])}".replace("{series} ", "")
    return make


LABEL_CASES = [
    label_case("ingest", "study1", "{series}", "--subject", "", expect=["invalid"]),
    label_case("ingest", "study1", "{series}", "--subject", "sub-", expect=["invalid"]),
    label_case("ingest", "study1", "{series}", "--subject", "0 1", expect=["'0 1'", "invalid"]),
    label_case("ingest", "study1", "{series}", "--subject", "01_x", expect=["01_x", "invalid"]),
    label_case("ingest", "study1", "{series}", "--subject", "Müller", expect=["invalid"]),
    label_case("ingest", "study1", "{series}", "--subject", "-01", expect=["invalid"]),
    label_case(
        "ingest", "study1", "{series}", "--subject", "01", "--session", "a-b", expect=["a-b"]
    ),
    label_case("ingest", "study1", "{series}", "--subject", "x" * 300, expect=["invalid"]),
    label_case("ingest", "study1", "{series}", "--subject", "01\n02", expect=["invalid"]),
    label_case("ingest", "study1", "{series}", "--subject", "01\n", expect=["invalid"]),
    label_case("study", "create", "new\n", expect=["invalid study name"]),
    label_case("ingest", "../study1", "{series}", "--subject", "01", expect=["../study1"]),
]

SITE_CASES: list[SiteCase] = [
    limit_members,
    limit_bytes,
    limit_ratio,
    limit_not_a_number,
    limit_negative,
    ingest_not_a_table,
    site_toml_broken,
    site_toml_not_utf8,
    study_toml_broken,
    import_link_to_etc_shadow,
    import_link_upwards,
    import_link_loop,
    import_dangling_link,
    import_link_to_folder,
    import_latin1_name,
    import_line_break,
    import_not_bids,
    import_a_file,
    import_missing,
    import_the_study,
    import_link_in_sourcedata,
    add_link_to_etc_shadow,
    add_link_out_of_folder,
    add_folder_link_to_etc,
    add_sidecar_link,
    add_link_inside_folder,
    add_link_loop,
    add_dangling_link,
    add_missing,
    add_bad_kind,
    add_bad_derivative,
    add_beh_without_task,
    add_subject_on_phenotype,
    add_beh_bad_task_label,
    add_phenotype_without_id,
    add_ragged_tsv,
    add_tsv_not_utf8,
    add_empty_tsv,
    add_empty_folder,
    consent_missing,
    consent_empty,
    consent_not_utf8,
    consent_binary,
    consent_folder,
    consent_unknown_subject,
    consent_unknown_participant,
    *LABEL_CASES,
]


@pytest.mark.parametrize("make_case", SITE_CASES, ids=[f.__name__ for f in SITE_CASES])
def test_bad_command_is_refused_in_one_line_and_leaves_every_dataset_alone(
    make_case: SiteCase, site: Path, windl: Runner, data: Path, tmp_path: Path
) -> None:
    """Import, add, consent, settings and labels: one line naming it; no dataset moves."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    argv, expected = make_case(site, data, inputs)
    before = site_state(site)
    proc = windl(*argv, "--site", site, check=False)
    assert_refused(proc, *expected)
    assert site_state(site) == before


# ----------------------------------------------------------------------------- no site needed
def many(key: str, n: int) -> str:
    return " ".join(f"{key}:v{i}" for i in range(n))


#: (argv, texts of the line); each runs without a site, the error comes before one is looked for
USAGE_CASES: list[tuple[list[str], list[str]]] = [
    # click's own usage errors: one line, exit 2
    (["ingest"], ["Missing argument 'STUDY'"]),
    (["ingest", "study1"], ["Missing argument 'SOURCE'"]),
    (["ingest", "study1", "x"], ["Missing option '--subject'"]),
    (["ingest", "--bogus"], ["No such option", "--bogus"]),
    (["no-such-command"], ["No such command", "no-such-command"]),
    (["convert", "study1", "--jobs", "0"], ["--jobs", "0"]),
    (["convert", "study1", "--jobs", "many"], ["--jobs", "many"]),
    (["release", "build", "study1", "--scope", "members"], ["Missing option '--version'"]),
    (["search", "--page", "0"], ["--page", "0"]),
    (["search", "--per-page", "1000"], ["--per-page", "1000"]),
    (["search", "--min-participants", "ten"], ["--min-participants", "ten"]),
    (["serve", "--port", "http"], ["--port", "http"]),
    (["study"], []),  # a bare group: the help, on stderr, exit 2 (checked below)
]
QUERY_CASES: list[tuple[list[str], list[str]]] = [
    (["search", "participants>=99999999999999999999999"], ["participants", "1000000000"]),
    (["search", "participants>1000000000"], ["participants", "1000000000"]),
    (["search", "--min-participants", "99999999999999999999"], ["participants", "1000000000"]),
    (["search", "participants>=²"], ["participants>=²", "whole number"]),
    (["search", "participants>=-1"], ["participants>=-1"]),
    (["search", "participants>=1.5"], ["participants>=1.5", "whole number"]),
    (["search", "participants<5"], ["participants<5", "only participants>=N"]),
    (["search", many("task", 500)], ["at most"]),
    (["search", many("t", 40) + " " + many("task", 40)], ["unknown filter"]),
    (["search", " ".join(f"task:t{i}" for i in range(65))], ["65", "at most 64"]),
    (["search", "task:" + ",".join(f"t{i}" for i in range(100))], ["100", "at most 64"]),
    (["search", " ".join(f"word{i}" for i in range(70))], ["70", "at most 64"]),
    (["search", "x" * 3000], ["3000 characters", "at most 2000"]),
    (["search", 'license:"CC BY'], ["malformed query"]),
    (["search", "colour:blue"], ["unknown filter 'colour:blue'"]),
    (["search", "task:"], ["task:", "no value"]),
    (["search", "qc:maybe"], ["qc:maybe", "yes or no"]),
    (["search", "scope:public"], ["unknown scope 'public'"]),
    # sites
    (["site", "init", "/proc/windl-site"], ["/proc/windl-site", "cannot create"]),
]


NO_SITE_CASES = USAGE_CASES + QUERY_CASES


@pytest.mark.parametrize(
    ("argv", "expected"), NO_SITE_CASES, ids=[" ".join(a)[:60] for a, _ in NO_SITE_CASES]
)
def test_bad_command_line_is_one_error_line(
    argv: list[str], expected: list[str], tmp_path: Path
) -> None:
    """Usage errors, queries out of bounds: one line, no traceback, exit 2 for usage."""
    env = {k: v for k, v in os.environ.items() if k != "WINDL_SITE"}
    proc = subprocess.run(
        [sys.executable, "-m", "windl", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    if not expected:
        assert proc.returncode == 2 and proc.stderr.startswith("Usage:"), proc.stderr
        return
    assert_refused(proc, *expected)
    if (argv, expected) in USAGE_CASES:
        assert proc.returncode == 2, proc.stderr


def test_error_relayed_from_a_child_process_has_one_prefix(tmp_path: Path) -> None:
    """A child windl's error line quoted by its parent (datalad run, rerun, workers)."""
    from windl.cli import error_line

    relayed = "windl: error: windl: error: sub-01_T1w.nii.gz: cannot deface (full log: x)"
    assert error_line(relayed) == "windl: error: sub-01_T1w.nii.gz: cannot deface (full log: x)"
    assert error_line("a\nb") == "windl: error: a b"


def test_long_lists_of_failures_are_capped_and_logged_in_full(tmp_path: Path) -> None:
    """ReleaseFilesFailed on thousands of files: how many, the first five, the log."""
    from windl.errors import capped_list

    failures = [f"sub-{i:04d}/anat/sub-{i:04d}_T1w.nii.gz: cannot deface" for i in range(3000)]
    log = tmp_path / "logs" / "failed-files.log"
    text = capped_list(failures, log)
    assert len(text) < 600, text
    assert failures[0] in text and failures[4] in text and failures[5] not in text
    assert "2995 more" in text and "all 3000" in text and str(log) in text
    assert log.read_text(encoding="utf-8").splitlines() == failures


PORTAL_QUERIES = [
    {"q": "participants>=99999999999999999999999"},
    {"q": " ".join(f"task:t{i}" for i in range(500))},
    {"q": "task:" + ",".join(f"t{i}" for i in range(500))},
    {"min_participants": "99999999999999999999"},
    {"min_participants": "²"},
    {"page": "99999999999999999999"},
    {"page": "²"},
    {"per_page": "99999999999999999999"},
]


def test_portal_answers_bad_queries_with_400_and_a_message(site: Path) -> None:
    """The HTML search page and the JSON API: 400 with the reason, never 500."""
    with portal_server(site) as base:
        for params in PORTAL_QUERIES:
            # per_page is the API's only (the page shows a fixed number)
            pages = ["/api/search"] if "per_page" in params else ["/search", "/api/search"]
            for path in pages:
                url = f"{base}{path}?{urllib.parse.urlencode(params)}"
                with pytest.raises(urllib.error.HTTPError) as caught:
                    urllib.request.urlopen(url, timeout=30)
                body = caught.value.read().decode("utf-8", "replace")
                assert caught.value.code == 400, (url, caught.value.code, body[:500])
                assert "Traceback" not in body
                if path == "/api/search":
                    assert json.loads(body)["error"], body
