"""The audit's second line: every word of a release's names and text must be explained.

A name typed into a sidecar, a table, the README, a file name or a DICOM text element is
not among the identifiers the audit knows; the ``unexplained-text`` check must still fail
on it, naming the file and the field, never the word.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest

from windl.deid.dicom import DeidPolicy
from windl.release.tokens import Explainer, Text, bids_vocabulary, tokens, windl_vocabulary

from conftest import release_dir, run_windl

#: a typed name no vocabulary holds (checked below, so the test cannot pass by luck)
NAME = "Quirinius Wolkenbruch"
CHECK = "unexplained-text"


def _audit(release: Path) -> tuple[int, dict]:
    proc = run_windl("audit", release, "--json", check=False)
    return proc.returncode, json.loads(proc.stdout)


def _text_check(result: dict) -> dict:
    report = json.loads(Path(result["json"]).read_text(encoding="utf-8"))
    return next(c for c in report["checks"] if c["name"] == CHECK)


def test_the_planted_name_is_explained_by_no_source() -> None:
    explainer = Explainer()
    for word in tokens(NAME):
        assert word not in bids_vocabulary() and word not in windl_vocabulary()
        assert explainer.source(word) is None


def test_tokens_are_explained_by_bids_numbers_labels_and_scanner_keys() -> None:
    explainer = Explainer(labels=frozenset(tokens("aB3dE9xY")))
    for word in ("RepetitionTime", "bold", "participant_id", "20180918T101112", "T1w"):
        assert all(explainer.source(t) is not None for t in tokens(word)), word
    assert explainer.source("task1") == "bids"  # a neutral re-key label: entity + index
    assert explainer.source("ab3de9xy") == "labels"
    # a scanner-written key explains its value; a descriptor key does not
    assert explainer.check(Text("x.json", "Manufacturer", NAME, "Manufacturer")) == []
    assert explainer.check(Text("x.json", "SeriesDescription", NAME, "SeriesDescription"))
    assert explainer.check(Text("x.json", "TaskName", NAME, "TaskName"))
    assert explainer.unexplained == {("x.json", "SeriesDescription"): 2, ("x.json", "TaskName"): 2}
    # a key the study's declared options keep on purpose explains its value; else not
    institution = Text("x.dcm", "InstitutionName", NAME, "InstitutionName")
    kept = Explainer(policy=DeidPolicy(retain_institution_identity=True))
    assert kept.key_source(institution) == "policy"
    assert Explainer(policy=DeidPolicy()).key_source(institution) is None
    # marker texts: the recording software's codes are explained, typed ones are not
    assert explainer.key_source(Text("x.vmrk", "line 9", "Stimulus/S  1", "marker")) == "scanner"
    assert explainer.key_source(Text("x.vmrk", "line 9", "patient coughed", "marker")) is None


def _fixture_audits(site: Path) -> list[dict]:
    return [_audit(release_dir(site, scope))[1] for scope in ("members", "external")]


@pytest.mark.parametrize("copy", ["release_site", "qc_release_site"])
def test_fixture_releases_count_every_word_and_quote_none(
    copy: str, request: pytest.FixtureRequest
) -> None:
    for result in _fixture_audits(request.getfixturevalue(copy)):
        report = json.loads(Path(result["json"]).read_text(encoding="utf-8"))
        counts = report["tokens"]
        assert counts["checked"] > 1000
        assert sum(counts["explained"].values()) + counts["unexplained"] == counts["checked"]
        assert counts["explained"]["bids"] > 0 and counts["explained"]["labels"] > 0
        assert counts["explained"]["windl"] > 0 and counts["explained"]["scanner"] > 0
        check = _text_check(result)
        assert check["checked"] == counts["checked"]
        assert counts["unexplained"] < counts["checked"] / 100  # false positives stay rare
        for finding in check["findings"]:  # a place and a count, never the word
            assert re.fullmatch(r".+: \d+ unexplained word\(s\)", finding["message"])
        html = Path(result["html"]).read_text(encoding="utf-8")
        assert "Words in names and text" in html and str(counts["checked"]) in html


@pytest.mark.parametrize("copy", ["release_site", "qc_release_site"])
def test_clean_fixture_releases_pass_the_text_check(
    copy: str, request: pytest.FixtureRequest
) -> None:
    for result in _fixture_audits(request.getfixturevalue(copy)):
        check = _text_check(result)
        assert check["passed"], check["findings"]


# ----------------------------------------------------------------------------- planted
def _plant_json(release: Path) -> tuple[str, str]:
    sidecar = next(release.glob("sub-*/ses-*/func/*_bold.json"))
    data = json.loads(sidecar.read_text())
    data["TaskDescription"] = f"run by {NAME}"
    sidecar.write_text(json.dumps(data))
    return sidecar.relative_to(release).as_posix(), "TaskDescription: 2 unexplained"


def _plant_tsv(release: Path) -> tuple[str, str]:
    scans = next(release.glob("sub-*/*/*_scans.tsv"))
    lines = scans.read_text().splitlines()
    column = lines[0].split("\t")[0]
    first = lines[1].split("\t")
    lines[1] = "\t".join([f"{first[0]} {NAME}", *first[1:]])
    scans.write_text("\n".join(lines) + "\n")
    return scans.relative_to(release).as_posix(), f"column {column}: 2 unexplained"


def _plant_readme(release: Path) -> tuple[str, str]:
    readme = release / "README.md"
    lines = readme.read_text().splitlines()
    lines.insert(3, f"{NAME}.")
    readme.write_text("\n".join(lines) + "\n")
    return "README.md", "line 4: 2 unexplained"


def _plant_file_name(release: Path) -> tuple[str, str]:
    sidecar = next(release.glob("sub-*/anat/*_T1w.json"))
    planted = sidecar.with_name(sidecar.name.replace("_T1w.json", "_Wolkenbruch.txt"))
    planted.write_text("1\n")
    # the finding names the folder: naming the file would quote the name
    return planted.parent.relative_to(release).as_posix(), "a file name: 1 unexplained"


def _plant_dicom(release: Path) -> tuple[str, str]:
    path = next(release.glob("sourcedata/sub-*/**/*.dcm"))
    ds = pydicom.dcmread(path)
    ds.ImageComments = NAME
    path.unlink()  # an annexed file: replace the link by the changed content
    ds.save_as(path)
    return path.relative_to(release).as_posix(), "(0020,4000) ImageComments: 2 unexplained"


PLANTS: dict[str, Callable[[Path], tuple[str, str]]] = {
    "json-value": _plant_json,
    "tsv-cell": _plant_tsv,
    "readme-text": _plant_readme,
    "file-name": _plant_file_name,
    "dicom-element": _plant_dicom,
}


def test_planted_typed_names_fail_the_text_check_naming_file_and_field(
    release_site: Path,
) -> None:
    from windl.datasets import save

    release = release_dir(release_site, "members")
    _, before = _audit(release)
    known = {(f["path"], f["message"]) for f in before["findings"] if f["check"] == CHECK}
    planted = {name: plant(release) for name, plant in PLANTS.items()}
    changed = [rel for rel, _ in planted.values()]
    changed[list(PLANTS).index("file-name")] = next(
        p.relative_to(release).as_posix() for p in release.rglob("*_Wolkenbruch.txt")
    )
    save(release, changed, "careless edits")
    code, result = _audit(release)
    assert code != 0 and not result["passed"]
    findings = [f for f in result["findings"] if f["check"] == CHECK]
    for name, (rel, where) in planted.items():
        assert any(f["path"] == rel and where in f["message"] for f in findings), (name, findings)
    # only the planted places are new: the rest of the release is as it was
    new = {f["path"] for f in findings if (f["path"], f["message"]) not in known}
    assert new == {rel for rel, _ in planted.values()}, findings
    assert "Quirinius" not in json.dumps(findings) and "Wolkenbruch" not in json.dumps(findings)
    report = Path(result["json"])
    shown = [
        json.dumps(result),
        report.read_text(encoding="utf-8"),
        report.with_suffix(".html").read_text(encoding="utf-8"),
        run_windl("audit", release, check=False).stdout,
    ]
    for text in shown:  # the name typed into contents is quoted nowhere
        assert "Quirinius" not in text


# ----------------------------------------------------------------------------- headers
def _unexplained(folder: Path, rel: str) -> dict[str, int]:
    from windl.release.tokens import texts_of

    explainer = Explainer()
    for text in texts_of(folder, rel):
        explainer.check(text)
    return {where: n for (_, where), n in explainer.unexplained.items()}


def test_typed_names_in_real_headers_are_found(tmp_path: Path, data: Path) -> None:
    import shutil

    import mne
    import nibabel as nib
    import numpy as np

    edf = tmp_path / "x_eeg.edf"
    raw = bytearray((data / "mne_testfiles/edf/test.edf").read_bytes())
    raw[8:88] = f"X X X {NAME}".ljust(80).encode("ascii")
    edf.write_bytes(bytes(raw))
    assert _unexplained(tmp_path, edf.name) == {"EDF header patient": 2}

    fif = mne.io.read_raw_fif(data / "mne_testfiles/fif/test_ctf_comp_raw.fif", verbose="error")
    fif.load_data()
    fif.info["description"] = NAME
    fif.set_annotations(mne.Annotations([0.1], [0.0], [NAME]))
    fif.save(tmp_path / "x_meg.fif", verbose="error")
    found = _unexplained(tmp_path, "x_meg.fif")
    assert found == {"FIF info description": 2, "annotation 1": 2}, found

    image = nib.Nifti1Image(np.zeros((2, 2, 2), dtype=np.uint8), np.eye(4))
    image.header["descrip"] = NAME.encode()
    nib.save(image, tmp_path / "x_T1w.nii.gz")
    assert _unexplained(tmp_path, "x_T1w.nii.gz") == {"NIfTI header descrip": 2}

    ds = pydicom.dcmread(data / "dcm_qa_nih/In/20180918Si/mr_0003/epi_pe_ap-00001.dcm")
    item = pydicom.Dataset()
    item.RequestedProcedureDescription = NAME
    ds.RequestAttributesSequence = pydicom.Sequence([item])
    ds.save_as(tmp_path / "x.dcm")
    found = _unexplained(tmp_path, "x.dcm")
    assert (
        found.get(
            "DICOM (0040,0275) RequestAttributesSequence[0] (0032,1060) "
            "RequestedProcedureDescription"
        )
        == 2
    ), found

    # what cannot be read cannot be explained
    (tmp_path / "cut.dcm").write_bytes(b"not a DICOM file")
    assert _unexplained(tmp_path, "cut.dcm") == {"DICOM (unreadable: cannot be checked)": 1}

    for name in ("test.vhdr", "test.vmrk", "test.eeg"):
        shutil.copyfile(data / "mne_testfiles/brainvision" / name, tmp_path / name)
    with (tmp_path / "test.vmrk").open("a", encoding="utf-8") as fh:
        fh.write(f"Mk99=Comment,{NAME},100,1,0\n")
    lines = (tmp_path / "test.vmrk").read_text(encoding="utf-8").splitlines()
    assert _unexplained(tmp_path, "test.vmrk").get(f"line {len(lines)} marker") == 2


def test_report_shows_words_checked_and_what_explained_them(tmp_path: Path) -> None:
    from test_audit_report import _audit as audit_dict

    from windl.release.report import write_audit_report

    audit = audit_dict(passed=False, mosaic=None, findings=[])
    audit["tokens"] = {
        "checked": 4321,
        "explained": {"short": 1000, "bids": 3000, "windl": 300},
        "unexplained": 21,
        "places": 3,
    }
    page = write_audit_report(audit, tmp_path / "audit.html").read_text(encoding="utf-8")
    section = page.split("Words in names and text", 1)[1]
    for shown in ("4321", "<td>bids</td><td>3000</td>", "<th>unexplained</th><th>21</th>"):
        assert shown in section
