"""``windl add``: research data alongside the imaging data, at its BIDS place.

Real CLI in a child process, real bids-validator-deno, real git-annex. Tables and
binaries are made in tmp_path; the study holding real data is the imported tiny_bids.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest
from test_import import (
    TINY,
    assert_refused,
    assert_unchanged,
    ls_tree_mode,
    validate_json,
)

from conftest import Runner, dataset_heads, git_status, study_path

PHENOTYPE = "participant_id\tgroup\tscore\nsub-01\tcontrol\t12.5\n"


# ----------------------------------------------------------------------------- helpers
def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def png_bytes() -> bytes:
    """A PNG signature and random bytes: binary by content, as git-annex sees it."""
    return b"\x89PNG\r\n\x1a\n" + os.urandom(4096)


def nii_gz_bytes() -> bytes:
    return gzip.compress(b"\x5c\x01\x00\x00" + os.urandom(4096))


def changed_files(ds: Path) -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(ds), "show", "--name-only", "--format=", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(out.split())


def add(windl: Runner, site: Path, path: Path, kind: str, *extra: str) -> dict[str, object]:
    proc = windl("add", "study1", path, "--as", kind, *extra, "--site", site, "--json")
    result: dict[str, object] = json.loads(proc.stdout)
    return result


@pytest.fixture
def tiny_site(site: Path, windl: Runner, data: Path) -> Path:
    """The fresh site with tiny_bids imported into study1."""
    windl("import", "study1", data / TINY, "--site", site)
    return site


# ----------------------------------------------------------------------------- tests
def test_phenotype_gets_a_data_dictionary_and_the_study_stays_valid(
    tiny_site: Path, windl: Runner, tmp_path: Path
) -> None:
    table = write(tmp_path / "in" / "x.tsv", PHENOTYPE)

    proc = windl("add", "study1", table, "--as", "phenotype", "--site", tiny_site)

    study = study_path(tiny_site)
    assert (study / "phenotype/x.tsv").read_bytes() == table.read_bytes()
    dictionary = json.loads((study / "phenotype/x.json").read_text())
    assert set(dictionary) == {"participant_id", "group", "score"}
    assert dictionary["group"] == {
        "Description": "TODO: describe group",
        "Levels": {"control": "TODO: describe control"},
    }
    assert dictionary["score"] == {"Description": "TODO: describe score"}  # numeric: no Levels
    assert "phenotype/x.json" in proc.stdout.splitlines()[-1]  # the user is told to fill it in
    assert "fill in" in proc.stdout
    assert ls_tree_mode(study, "phenotype/x.tsv") == "100644"
    assert ls_tree_mode(study, "phenotype/x.json") == "100644"
    assert git_status(study) == "" and git_status(tiny_site / "superdataset") == ""
    validate_json(windl, tiny_site)


def test_every_kind_lands_at_its_bids_place_and_the_study_stays_valid(
    tiny_site: Path, windl: Runner, tmp_path: Path
) -> None:
    """All kinds into the tiny_bids study, then 0 validator errors."""
    study = study_path(tiny_site)
    stimuli = tmp_path / "stimuli"
    write(stimuli / "images" / "face.png", png_bytes())
    write(stimuli / "list.tsv", "stim_file\tcategory\nimages/face.png\tface\n")
    code = write(tmp_path / "analysis.py", "print('hello')\n")
    docs = tmp_path / "docs"
    write(docs / "protocol.md", "# Protocol\n")
    write(docs / "forms" / "crf.pdf", b"%PDF-1.4\n" + os.urandom(2048))
    deriv = tmp_path / "deriv"
    write(deriv / "sub-01" / "sub-01_desc-clean_eeg.nii.gz", nii_gz_bytes())

    add(windl, tiny_site, stimuli, "stimuli")
    assert (study / "stimuli/images/face.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (study / "stimuli/list.json").is_file()

    add(windl, tiny_site, code, "code")
    assert (study / "code/analysis.py").read_text() == "print('hello')\n"

    result = add(windl, tiny_site, docs, "docs")
    assert result["added"] == [".bidsignore", "docs/forms/crf.pdf", "docs/protocol.md"]
    # .bidsignore changes in the same commit as the docs
    assert changed_files(study) == [".bidsignore", "docs/forms/crf.pdf", "docs/protocol.md"]
    assert "docs" in (study / ".bidsignore").read_text().splitlines()
    assert "restricted" in (study / ".bidsignore").read_text().splitlines()

    result = add(windl, tiny_site, deriv, "derivatives/cleaning")
    description = "derivatives/cleaning/dataset_description.json"
    assert result["added"] == [
        description,
        "derivatives/cleaning/sub-01/sub-01_desc-clean_eeg.nii.gz",
    ]
    assert result["to_describe"] == [description]
    made = json.loads((study / description).read_text())
    assert made["DatasetType"] == "derivative"
    assert made["GeneratedBy"][0]["Name"] == "cleaning"
    assert made["BIDSVersion"] == "1.7.0"  # the study's (tiny_bids')

    assert git_status(study) == ""
    validate_json(windl, tiny_site)


def test_text_goes_to_git_and_binaries_to_the_annex(
    site: Path, windl: Runner, tmp_path: Path
) -> None:
    folder = tmp_path / "pipeline"
    write(folder / "sub-01" / "mask.nii.gz", nii_gz_bytes())
    write(folder / "figures" / "qc.png", png_bytes())
    write(folder / "table.tsv", "region\tvolume\nleft\t1.5\nright\t1.6\n")
    write(folder / "notes.json", '{"a": 1}\n')

    add(windl, site, folder, "derivatives/pipe")

    study = study_path(site)
    base = "derivatives/pipe"
    assert ls_tree_mode(study, f"{base}/sub-01/mask.nii.gz") == "120000"
    assert ls_tree_mode(study, f"{base}/figures/qc.png") == "120000"
    assert ls_tree_mode(study, f"{base}/table.tsv") == "100644"
    assert ls_tree_mode(study, f"{base}/table.json") == "100644"
    assert ls_tree_mode(study, f"{base}/notes.json") == "100644"
    assert ls_tree_mode(study, f"{base}/dataset_description.json") == "100644"
    # annexed content is there, byte for byte
    assert (study / base / "figures/qc.png").read_bytes() == (
        folder / "figures/qc.png"
    ).read_bytes()
    dictionary = json.loads((study / base / "table.json").read_text())
    assert dictionary["region"]["Levels"] == {
        "left": "TODO: describe left",
        "right": "TODO: describe right",
    }


@pytest.mark.parametrize(
    ("extra", "target"),
    [
        pytest.param(
            ["--subject", "01", "--task", "stroop"],
            "sub-01/beh/sub-01_task-stroop_beh",
            id="no-session",
        ),
        pytest.param(
            ["--subject", "sub-01", "--session", "eeg", "--task", "stroop"],
            "sub-01/ses-eeg/beh/sub-01_ses-eeg_task-stroop_beh",
            id="session",
        ),
    ],
)
def test_beh_file_gets_its_bids_name(
    extra: list[str], target: str, tiny_site: Path, windl: Runner, tmp_path: Path
) -> None:
    table = write(tmp_path / "stroop results.tsv", "trial\tresponse\ncongruent\tred\n")

    result = add(windl, tiny_site, table, "beh", *extra)

    study = study_path(tiny_site)
    assert result["added"] == [f"{target}.json", f"{target}.tsv"]
    assert result["to_describe"] == [f"{target}.json"]
    assert (study / f"{target}.tsv").read_bytes() == table.read_bytes()
    validate_json(windl, tiny_site)


def test_beh_for_a_new_subject_with_its_own_sidecar(
    tiny_site: Path, windl: Runner, tmp_path: Path
) -> None:
    """The user's JSON next to the TSV is taken along; the subject joins participants.tsv."""
    table = write(tmp_path / "s2.tsv", "trial\tresponse\ncongruent\tred\n")
    sidecar = write(tmp_path / "s2.json", '{"trial": {"Description": "Trial type"}}\n')

    result = add(windl, tiny_site, table, "beh", "--subject", "02", "--task", "stroop")

    study = study_path(tiny_site)
    name = "sub-02/beh/sub-02_task-stroop_beh"
    assert result["added"] == ["participants.tsv", f"{name}.json", f"{name}.tsv"]
    assert result["to_describe"] == []
    assert (study / f"{name}.json").read_bytes() == sidecar.read_bytes()
    rows = (study / "participants.tsv").read_text(encoding="utf-8-sig").splitlines()
    assert rows[-1] == "sub-02\tn/a\tn/a\tn/a\tn/a\tn/a"
    validate_json(windl, tiny_site)


def test_adding_the_same_again_makes_no_commit(
    tiny_site: Path, windl: Runner, tmp_path: Path
) -> None:
    table = write(tmp_path / "x.tsv", PHENOTYPE)
    docs = tmp_path / "docs"
    write(docs / "a.md", "hello\n")
    add(windl, tiny_site, table, "phenotype")
    add(windl, tiny_site, docs, "docs")
    before = dataset_heads(tiny_site)

    for path, kind in ((table, "phenotype"), (docs, "docs")):
        proc = windl("add", "study1", path, "--as", kind, "--site", tiny_site)
        assert proc.stdout.startswith("nothing new"), proc.stdout

    assert_unchanged(tiny_site, before)


@pytest.mark.parametrize("as_folder", [False, True], ids=["file", "folder"])
def test_ragged_tsv_is_refused_and_nothing_changes(
    as_folder: bool, site: Path, windl: Runner, tmp_path: Path
) -> None:
    folder = tmp_path / "tables"
    write(folder / "good.tsv", "participant_id\tscore\nsub-01\t1\n")
    bad = write(folder / "ragged.tsv", "participant_id\tscore\nsub-01\t1\nsub-02\n")
    before = dataset_heads(site)

    source = folder if as_folder else bad
    proc = windl("add", "study1", source, "--as", "phenotype", "--site", site, check=False)

    assert_refused(proc, str(bad), "not a valid TSV", "line 3")
    assert_unchanged(site, before)
    assert not (study_path(site) / "phenotype").exists()


def test_other_content_at_an_existing_path_is_refused(
    site: Path, windl: Runner, tmp_path: Path
) -> None:
    table = write(tmp_path / "x.tsv", PHENOTYPE)
    add(windl, site, table, "phenotype")
    write(table, PHENOTYPE.replace("12.5", "13"))
    before = dataset_heads(site)

    proc = windl("add", "study1", table, "--as", "phenotype", "--site", site, check=False)

    assert_refused(proc, "phenotype/x.tsv", "different content")
    assert_unchanged(site, before)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["--as", "beh", "--subject", "01"], ["--task"], id="beh-without-task"),
        pytest.param(["--as", "phenotype", "--subject", "01"], ["--subject"], id="subject-extra"),
        pytest.param(["--as", "images"], ["unknown kind", "images"], id="unknown-kind"),
        pytest.param(["--as", "derivatives/a b"], ["derivatives name"], id="bad-derivative"),
        pytest.param(
            ["--as", "beh", "--subject", "0/1", "--task", "x"], ["0/1", "invalid"], id="bad-label"
        ),
    ],
)
def test_bad_options_are_refused_in_one_line(
    args: list[str], expected: list[str], site: Path, windl: Runner, tmp_path: Path
) -> None:
    table = write(tmp_path / "x.tsv", PHENOTYPE)
    before = dataset_heads(site)
    proc = windl("add", "study1", table, *args, "--site", site, check=False)
    assert_refused(proc, *expected)
    assert_unchanged(site, before)


def test_phenotype_without_participant_id_is_refused(
    site: Path, windl: Runner, tmp_path: Path
) -> None:
    table = write(tmp_path / "y.tsv", "subject\tscore\n01\t3\n")
    before = dataset_heads(site)
    proc = windl("add", "study1", table, "--as", "phenotype", "--site", site, check=False)
    assert_refused(proc, "y.tsv", "participant_id")
    assert_unchanged(site, before)
