"""Every EEG/MEG format mne-bids reads, on mne-python's public testing data (issue 23).

Each recording of ``mne-testing-data`` (benchmarks/corpus.py) is ingested as found in the
repository, with its companion files, converted with ``windl convert`` and checked: the
BIDS validator passes, the BIDS file is of the format windl releases, and it reads back
with the channels, sampling rate and length the original has. A truncated copy of each is
refused at ingest in one line naming the file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mne
import numpy as np
import pytest
from mne_bids import BIDSPath, read_raw_bids

from conftest import dataset_heads, git_status, run_windl, study_path


@dataclass(frozen=True)
class Case:
    subject: str
    files: tuple[str, ...]  # in mne-testing-data; the first is what mne opens
    kind: str  # eeg / meg
    written: str  # suffix of the BIDS file windl writes
    cut: str = ""  # file the truncated copy cuts
    cut_to: float = 0.5  # fraction of it that is kept
    problem: str = ""  # what the refusal says


CASES = {
    "KIT": Case(
        "21",
        ("KIT/MQKIT_125_2sec.con", "KIT/MQKIT_125.mrk", "KIT/MQKIT_125.elp", "KIT/MQKIT_125.hsp"),
        "meg", ".fif", "MQKIT_125_2sec.con", problem="truncated KIT",
    ),
    "BTi": Case(
        "22", ("BTi/4Dsim/c,rfDC", "BTi/4Dsim/config", "BTi/4Dsim/hs_file"),
        "meg", ".fif", "c,rfDC", problem="unreadable BTi",
    ),
    "EEGLAB": Case(
        "23", ("EEGLAB/test_raw.set", "EEGLAB/test_raw.fdt"),
        "eeg", ".vhdr", "test_raw.fdt", problem="unreadable EEGLAB",
    ),
    "CNT": Case(
        "24", ("CNT/scan41_short.cnt",), "eeg", ".vhdr", "scan41_short.cnt", 0.3,
        problem="truncated CNT",
    ),
    "NihonKohden": Case(
        "25",
        ("NihonKohden/MB0400FU.EEG", "NihonKohden/MB0400FU.21E", "NihonKohden/MB0400FU.PNT",
         "NihonKohden/MB0400FU.LOG"),
        "eeg", ".vhdr", "MB0400FU.EEG", problem="unreadable NihonKohden",
    ),
    "Persyst": Case(
        "26",
        ("Persyst/sub-pt1_ses-02_task-monitor_acq-ecog_run-01_clip2.lay",
         "Persyst/sub-pt1_ses-02_task-monitor_acq-ecog_run-01_clip2.dat"),
        "eeg", ".vhdr", "sub-pt1_ses-02_task-monitor_acq-ecog_run-01_clip2.dat",
        problem="truncated Persyst",
    ),
    "BDF": Case(
        "27", ("BDF/multiple_annotation_chans.bdf",), "eeg", ".bdf",
        "multiple_annotation_chans.bdf", problem="truncated BDF",
    ),
    "EDF": Case(
        "28", ("EDF/chtypes_edf.edf",), "eeg", ".edf", "chtypes_edf.edf", problem="truncated EDF",
    ),
    "CTF": Case(
        "32", ("CTF/testdata_ctf_short_discontinuous.ds",), "meg", ".ds",
        "testdata_ctf_short_discontinuous.ds/testdata_ctf_short_discontinuous.meg4",
        0.37, problem="unreadable CTF",
    ),
    "VAmp": Case(
        "29",
        ("Brainvision/test_VAmp.ahdr", "Brainvision/test_VAmp.amrk", "Brainvision/test_VAmp.eeg"),
        "eeg", ".vhdr", "test_VAmp.eeg", 0.37, problem="truncated BrainVision",
    ),
}  # fmt: skip
#: the issue's BrainVision whose data file ends in .dat (test_NO.eeg renamed, header edited)
DAT_SUBJECT = "30"
#: an EDF whose trigger is "DIG DTRIG" and EOG/ECG are named so (labels of a real EDF edited)
DTRIG_SUBJECT = "31"
DTRIG_LABELS = {b"pulse": b"DIG DTRIG", b"ramp": b"EOG ROC", b"noise": b"EMG chin"}


def _copy(corpus: Path, case: Case, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in case.files:
        if (corpus / name).is_dir():
            shutil.copytree(corpus / name, folder / Path(name).name)
        else:
            shutil.copy(corpus / name, folder / Path(name).name)
    return folder


def _brainvision_dat(corpus: Path, folder: Path) -> Path:
    folder.mkdir(parents=True)
    source = corpus / "Brainvision"
    shutil.copy(source / "test_NO.eeg", folder / "test_NO.dat")
    shutil.copy(source / "test_NO.vmrk", folder / "test_NO.vmrk")
    header = (source / "test_NO.vhdr").read_text(encoding="utf-8-sig")
    assert "DataFile=test_NO.eeg" in header
    (folder / "test_NO.vhdr").write_text(
        header.replace("DataFile=test_NO.eeg", "DataFile=test_NO.dat")
    )
    return folder


def _dtrig_edf(corpus: Path, folder: Path) -> Path:
    """A real EDF (a pulse train with annotations) whose labels say trigger, EOG, EMG, ECG."""
    folder.mkdir(parents=True)
    raw = bytearray((corpus / "EDF" / "test_utf8_annotations.edf").read_bytes())
    signals = int(raw[252:256])
    for i in range(signals):
        at = 256 + 16 * i
        label = bytes(raw[at : at + 16]).strip()
        new = DTRIG_LABELS.get(label, label)
        raw[at : at + 16] = new.ljust(16)
    (folder / "dtrig.edf").write_bytes(bytes(raw))
    return folder


@pytest.fixture(scope="module")
def mne_data(corpus: Callable[[str], Path]) -> Path:
    return corpus("mne-testing-data")


@pytest.fixture(scope="module")
def formats_site(tmp_path_factory: pytest.TempPathFactory, mne_data: Path) -> Path:
    base = tmp_path_factory.mktemp("formats")
    site = base / "site"
    run_windl("site", "init", site)
    run_windl("study", "create", "study1", "--site", site)
    sources = {case.subject: _copy(mne_data, case, base / name) for name, case in CASES.items()}
    sources[DAT_SUBJECT] = _brainvision_dat(mne_data, base / "dat")
    sources[DTRIG_SUBJECT] = _dtrig_edf(mne_data, base / "dtrig")
    for subject, folder in sources.items():
        run_windl("ingest", "study1", folder, "--subject", subject, "--site", site)
    run_windl("convert", "study1", "--task", "rest", "--site", site)
    return site


def _bids_path(site: Path, subject: str, kind: str) -> BIDSPath:
    return BIDSPath(subject=subject, task="rest", datatype=kind, root=study_path(site))


def test_every_format_converts_to_valid_bids(formats_site: Path) -> None:
    report = json.loads(run_windl("validate", "study1", "--json", "--site", formats_site).stdout)
    assert report["errors"] == {}
    records = (study_path(formats_site) / "code" / "conversion").glob("*_ephys.tsv")
    formats = {line.split("\t")[2] for p in records for line in p.read_text().splitlines()[1:]}
    assert {"KIT", "BTi", "EEGLAB", "CNT", "NihonKohden", "Persyst", "BDF", "EDF"} <= formats


@pytest.mark.parametrize("name", sorted(CASES))
def test_format_reads_back_with_same_channels_rate_and_samples(
    formats_site: Path, mne_data: Path, name: str
) -> None:
    case = CASES[name]
    folder = study_path(formats_site) / f"sub-{case.subject}" / case.kind
    (_written,) = folder.glob(f"*_{case.kind}{case.written}")  # the format windl releases
    converted = read_raw_bids(_bids_path(formats_site, case.subject, case.kind), verbose="error")
    original = mne.io.read_raw(mne_data / case.files[0], verbose="error") if name not in (
        "KIT", "BTi", "CNT") else None  # fmt: skip
    if original is not None:
        assert converted.ch_names == original.ch_names
        assert converted.n_times == original.n_times
        assert converted.info["sfreq"] == original.info["sfreq"]
    assert converted.n_times > 0 and converted.info["line_freq"] == 50


def test_kit_keeps_markers_and_digitisation_and_coregisters(formats_site: Path) -> None:
    raw_folder = study_path(formats_site) / "sourcedata" / "sub-21" / "meg" / "MQKIT_125_2sec"
    assert sorted(p.name for p in raw_folder.iterdir()) == [
        "MQKIT_125.elp", "MQKIT_125.hsp", "MQKIT_125.mrk", "MQKIT_125_2sec.con",
    ]  # fmt: skip
    converted = read_raw_bids(_bids_path(formats_site, "21", "meg"), verbose="error")
    assert len(converted.info["dig"]) > 100  # the head shape points of the .hsp
    assert converted.info["dev_head_t"] is not None
    bti = read_raw_bids(_bids_path(formats_site, "22", "meg"), verbose="error")
    assert len(bti.info["dig"]) > 0  # hs_file


def test_channel_types_come_from_labels(formats_site: Path) -> None:
    bdf = read_raw_bids(_bids_path(formats_site, "27", "eeg"), verbose="error")
    types = dict(zip(bdf.ch_names, bdf.get_channel_types(), strict=True))
    assert (types["EMG"], types["EOG"], types["ECG"], types["Trigger"], types["Fz"]) == (
        "emg",
        "eog",
        "ecg",
        "stim",
        "eeg",
    )
    edf = read_raw_bids(_bids_path(formats_site, "28", "eeg"), verbose="error")
    types = dict(zip(edf.ch_names, edf.get_channel_types(), strict=True))
    assert types["ECG ECG1"] == "ecg" and types["EEG Fp1-Ref"] == "eeg"


def test_dig_dtrig_is_a_trigger_and_gives_events(formats_site: Path, mne_data: Path) -> None:
    raw = read_raw_bids(_bids_path(formats_site, DTRIG_SUBJECT, "eeg"), verbose="error")
    types = dict(zip(raw.ch_names, raw.get_channel_types(), strict=True))
    assert types["DIG DTRIG"] == "stim" and types["EOG ROC"] == "eog"
    assert types["EMG chin"] == "emg" and types["ECG"] == "ecg"
    events = (
        study_path(formats_site)
        / f"sub-{DTRIG_SUBJECT}/eeg/sub-{DTRIG_SUBJECT}_task-rest_events.tsv"
    )
    rows = events.read_text().splitlines()[1:]
    # the 9 pulses of the trigger channel (value 99) and the EDF+'s own 2 annotations
    assert sum("stim/99" in row for row in rows) == 9
    assert len(rows) == 11


def test_brainvision_with_dat_file_is_read_as_brainvision(
    formats_site: Path, mne_data: Path
) -> None:
    raw_folder = study_path(formats_site) / "sourcedata" / f"sub-{DAT_SUBJECT}" / "eeg" / "test_NO"
    assert sorted(p.name for p in raw_folder.iterdir()) == [
        "test_NO.dat",
        "test_NO.vhdr",
        "test_NO.vmrk",
    ]
    converted = read_raw_bids(_bids_path(formats_site, DAT_SUBJECT, "eeg"), verbose="error")
    original = mne.io.read_raw(mne_data / "Brainvision" / "test_NO.vhdr", verbose="error")
    assert converted.ch_names == original.ch_names and converted.n_times == original.n_times
    # written anew as BrainVision float32 (mne-bids cannot copy a .dat): float32 rounding only
    assert Path(converted.filenames[0]).suffix == ".eeg"
    np.testing.assert_allclose(converted.get_data(), original.get_data(), rtol=1e-6, atol=0)


# --------------------------------------------------------------------------- bad inputs
def _refused(site: Path, source: Path) -> str:
    before = dataset_heads(site)
    proc = run_windl("ingest", "study1", source, "--subject", "01", "--site", site, check=False)
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("windl: error:") and "Traceback" not in proc.stderr
    assert dataset_heads(site) == before
    assert git_status(study_path(site)) == "" and git_status(study_path(site) / "sourcedata") == ""
    return line


@pytest.mark.parametrize("name", sorted(CASES))
def test_truncated_recording_is_refused_in_one_line(
    site: Path, mne_data: Path, tmp_path: Path, name: str
) -> None:
    case = CASES[name]
    folder = _copy(mne_data, case, tmp_path / "cut")
    data = (folder / case.cut).read_bytes()
    (folder / case.cut).write_bytes(data[: int(len(data) * case.cut_to)])
    line = _refused(site, folder)
    assert case.problem in line and Path(case.files[0]).name.split(".")[0] in line


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        (("CNT/test_CNT_events_mne_JWoess_clipped.cnt",), "unreadable CNT"),
        (("EEGLAB/test_raw_h5.set",), "MATLAB 7.3"),
        (("EDF/SC4001EC-Hypnogram.edf",), "unreadable EDF"),
        (("EEGLAB/test_epochs.set", "EEGLAB/test_epochs.fdt"), "unreadable EEGLAB"),
    ],
)
def test_public_file_windl_cannot_convert_is_refused_in_one_line(
    site: Path, mne_data: Path, tmp_path: Path, files: tuple[str, ...], problem: str
) -> None:
    folder = _copy(mne_data, Case("01", files, "eeg", ""), tmp_path / "in")
    line = _refused(site, folder)
    assert problem in line and Path(files[0]).name in line


# --------------------------------------------------------------------------- releases
def test_release_refuses_imported_kit_in_one_line(
    site: Path, mne_data: Path, tmp_path: Path
) -> None:
    """A BIDS dataset imported with KIT kept as .con (mne-bids' own choice): never copied."""
    from mne_bids import write_raw_bids

    raw = mne.io.read_raw_kit(mne_data / "KIT" / "test_as-raw.con", verbose="error")
    raw.info["line_freq"] = 50
    root = tmp_path / "bids"
    path = BIDSPath(subject="01", task="rest", datatype="meg", root=root)
    write_raw_bids(raw, path, overwrite=True, verbose="error")
    (con,) = (root / "sub-01" / "meg").glob("*_meg.con")
    run_windl("import", "study1", root, "--site", site)
    run_windl("consent", "set", "study1", "01", "--scope", "external", "--site", site)
    before = dataset_heads(site)
    proc = run_windl(
        "release", "build", "study1", "--scope", "external", "--version", "1.0.0",
        "--site", site, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    # release build says its progress on stderr too: one error line, no traceback
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("windl: error:")]
    assert "Traceback" not in proc.stderr
    assert f"sub-01/meg/{con.name}" in line and "cannot de-identify KIT" in line
    assert dataset_heads(site) == before


@pytest.mark.parametrize(
    ("file", "rel", "fmt"),
    [
        ("KIT/test_as-raw.con", "sub-01/meg/sub-01_task-rest_meg.con", "KIT/Yokogawa"),
        ("EEGLAB/test_raw.set", "sub-01/eeg/sub-01_task-rest_eeg.set", "EEGLAB"),
        ("BTi/4Dsim/config", "sub-01/meg/sub-01_task-rest_meg/config", "BTi/4D"),
    ],
)
def test_audit_fails_a_recording_it_cannot_read(
    mne_data: Path, file: str, rel: str, fmt: str
) -> None:
    """Should such a file reach a release another way, the audit's recording-text fails it."""
    from windl.deid import DeidPolicy
    from windl.release import recording_text

    assert recording_text.applies(rel)
    (problem,) = recording_text.recording_text_problems(mne_data / file, rel, DeidPolicy())
    assert fmt in problem


@pytest.mark.parametrize(
    ("rel", "fmt"),
    [
        ("sub-01/ieeg/sub-01_task-rest_ieeg.mefd/ch1.timd/ch1-000000.segd/x.tdat", "MEF3"),
        ("sub-01/ses-1/nirs/sub-01_ses-1_task-rest_nirs.snirf", "SNIRF"),
        ("sub-01/meg/sub-01_task-rest_markers.mrk", "KIT marker"),
        ("sub-01/meg/sub-01_acq-calibration_meg.dat", None),  # Neuromag fine calibration
        ("sub-01/meg/sub-01_task-rest_meg.ds/sub-01_task-rest_meg.res4", None),  # CTF
        ("sub-01/eeg/sub-01_task-rest_eeg.vhdr", None),
        ("code/analysis.set", None),  # not in a datatype folder
    ],
)
def test_which_study_files_a_release_refuses(rel: str, fmt: str | None) -> None:
    from windl.deid.ephys import unsupported_recording

    assert unsupported_recording(rel) == fmt
