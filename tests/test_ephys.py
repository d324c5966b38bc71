"""EEG and MEG: ingest by content, mne-bids conversion, read back, rerun, bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mne
import pytest
from mne_bids import BIDSPath, read_raw_bids

from conftest import dataset_heads, git_status, rerun_onto_parent, run_windl, study_path

RECORDINGS = {
    # subject: (folder in mne_testfiles, main file, datatype)
    "11": ("brainvision", "test.vhdr", "eeg"),
    "12": ("edf", "test.edf", "eeg"),
    "13": ("fif", "test_ctf_comp_raw.fif", "meg"),
}


@pytest.fixture(scope="module")
def ephys_site(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    site = tmp_path_factory.mktemp("ephys") / "site"
    run_windl("site", "init", site)
    run_windl("study", "create", "study1", "--site", site)
    for subject, (folder, _main, _kind) in RECORDINGS.items():
        run_windl(
            "ingest",
            "study1",
            data / "mne_testfiles" / folder,
            "--subject",
            subject,
            "--session",
            "1",
            "--site",
            site,
        )
    run_windl("convert", "study1", "--task", "rest", "--site", site)
    return site


@pytest.mark.parametrize("subject", sorted(RECORDINGS))
def test_recording_reads_back_with_same_channels_rate_and_samples(
    ephys_site: Path, data: Path, subject: str
) -> None:
    folder, main, kind = RECORDINGS[subject]
    original = mne.io.read_raw(data / "mne_testfiles" / folder / main, verbose="error")
    path = BIDSPath(
        subject=subject, session="1", task="rest", datatype=kind, root=study_path(ephys_site)
    )
    converted = read_raw_bids(path, verbose="error")
    assert converted.ch_names == original.ch_names
    assert converted.info["sfreq"] == original.info["sfreq"]
    assert converted.n_times == original.n_times
    assert converted.info["line_freq"] == 50


def test_sidecars_channels_and_events_are_written(ephys_site: Path) -> None:
    eeg = study_path(ephys_site) / "sub-11" / "ses-1" / "eeg"
    sidecar = json.loads((eeg / "sub-11_ses-1_task-rest_eeg.json").read_text())
    assert sidecar["PowerLineFrequency"] == 50
    assert (eeg / "sub-11_ses-1_task-rest_channels.tsv").exists()
    events = (eeg / "sub-11_ses-1_task-rest_events.tsv").read_text().splitlines()
    assert len(events) > 1  # the 13 BrainVision annotations, minus those mne-bids skips
    meg = study_path(ephys_site) / "sub-13" / "ses-1" / "meg"
    coordsystem = json.loads((meg / "sub-13_ses-1_coordsystem.json").read_text())
    assert coordsystem["MEGCoordinateSystem"]
    for entries in (
        coordsystem.get("HeadCoilCoordinates", {}),
        coordsystem.get("AnatomicalLandmarkCoordinates", {}),
    ):
        assert all(len(xyz) == 3 for xyz in entries.values())


def test_eeg_meg_study_passes_bids_validator(ephys_site: Path) -> None:
    report = json.loads(run_windl("validate", "study1", "--json", "--site", ephys_site).stdout)
    assert report["errors"] == {}


def test_convert_again_is_up_to_date(ephys_site: Path) -> None:
    before = dataset_heads(ephys_site)
    proc = run_windl("convert", "study1", "--task", "rest", "--site", ephys_site)
    assert proc.stdout.count("up to date") == 3
    assert dataset_heads(ephys_site) == before


def test_datalad_rerun_of_eeg_conversion_reproduces_keys(ephys_site: Path) -> None:
    study = study_path(ephys_site)

    def keys() -> dict[str, str]:
        return {
            p.name: Path(p.readlink()).name
            for p in sorted((study / "sub-11" / "ses-1" / "eeg").iterdir())
            if p.is_symlink()
        }

    original = keys()
    assert any(name.endswith(".eeg") for name in original)
    rerun_onto_parent(study, "convert: sub-11", "rerun-eeg")
    assert keys() == original
    assert git_status(study) == ""


# --------------------------------------------------------------------------- bad inputs
def _brainvision_without_eeg(data: Path, tmp: Path) -> Path:
    folder = tmp / "bv"
    folder.mkdir()
    for name in ("test.vhdr", "test.vmrk"):
        shutil.copy(data / "mne_testfiles" / "brainvision" / name, folder)
    return folder


def _truncated_edf(data: Path, tmp: Path) -> Path:
    folder = tmp / "edf"
    folder.mkdir()
    raw = (data / "mne_testfiles" / "edf" / "test.edf").read_bytes()
    (folder / "test.edf").write_bytes(raw[: len(raw) // 2])
    return folder


def _garbage_fif(data: Path, tmp: Path) -> Path:
    folder = tmp / "fif"
    folder.mkdir()
    raw = bytearray((data / "mne_testfiles" / "fif" / "test_ctf_comp_raw.fif").read_bytes())
    raw[16:4096] = b"\xde\xad\xbe\xef" * 1020
    (folder / "test_ctf_comp_raw.fif").write_bytes(bytes(raw))
    return folder


def _eeg_without_header(data: Path, tmp: Path) -> Path:
    folder = tmp / "bv2"
    folder.mkdir()
    for name in ("test.eeg", "test.vmrk"):
        shutil.copy(data / "mne_testfiles" / "brainvision" / name, folder)
    return folder


@pytest.mark.parametrize(
    ("make", "named", "problem"),
    [
        (_brainvision_without_eeg, "test.vhdr", "incomplete BrainVision"),
        (_truncated_edf, "test.edf", "truncated EDF"),
        (_garbage_fif, "test_ctf_comp_raw.fif", "unreadable FIF"),
        (_eeg_without_header, "test.eeg", "incomplete BrainVision"),
    ],
)
def test_bad_ephys_input_is_refused_in_one_line_and_changes_nothing(
    site: Path,
    data: Path,
    tmp_path: Path,
    make,
    named: str,
    problem: str,
) -> None:
    source = make(data, tmp_path)
    before = dataset_heads(site)
    proc = run_windl("ingest", "study1", source, "--subject", "01", "--site", site, check=False)
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("windl: error:") and named in line and problem in line
    assert "Traceback" not in proc.stderr
    assert dataset_heads(site) == before
    assert git_status(study_path(site)) == "" and git_status(study_path(site) / "sourcedata") == ""


def test_split_fif_is_ingested_as_one_recording_and_converts_whole(
    site: Path, data: Path, tmp_path: Path
) -> None:
    raw = mne.io.read_raw_fif(
        data / "mne_testfiles" / "fif" / "test_ctf_comp_raw.fif", preload=True, verbose="error"
    )
    long = mne.concatenate_raws([raw.copy() for _ in range(40)])
    folder = tmp_path / "split"
    folder.mkdir()
    long.save(folder / "rec_raw.fif", split_size="10MB", verbose="error")
    assert (folder / "rec_raw-1.fif").exists()  # mne really split it
    proc = run_windl("ingest", "study1", folder, "--subject", "01", "--json", "--site", site)
    (recording,) = json.loads(proc.stdout)["recordings"]
    assert recording["files"] == 2 and recording["kind"] == "meg"
    run_windl("convert", "study1", "--task", "rest", "--site", site)
    path = BIDSPath(subject="01", task="rest", datatype="meg", root=study_path(site))
    assert read_raw_bids(path, verbose="error").n_times == long.n_times
