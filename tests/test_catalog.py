"""The catalog: indexing real studies and releases, search, facets and who sees what.

Every test runs on SQLite and on a real PostgreSQL (``database_url``).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from windl.catalog.access import Viewer
from windl.catalog.index import IndexResult, index_site
from windl.catalog.models import files_t, versions_t
from windl.catalog.query import Query, QueryError, parse_query
from windl.catalog.search import dataset_detail, search
from windl.config import load_site
from windl.database import engine_for_url
from windl.datasets import save

from conftest import _t1w_bids, build_release, git_head, release_dir, run_windl, study_path

OPERATOR = Viewer("operator")
EXTERNAL = Viewer("external")
_DATA_FILE = re.compile(
    r"^sub-(?P<sub>[^/]+)/(?:ses-(?P<ses>[^/]+)/)?(?P<dt>[a-z]+)/(?P<name>[^/]+)$"
)


def _index(site: Path, url: str) -> IndexResult:
    return index_site(load_site(site), engine_for_url(url))


def _ids(page) -> list[str]:
    return sorted(r.id for r in page.results)


def _tracked(ds: Path) -> list[str]:
    """Files tracked in git (not the subdatasets)."""
    out = subprocess.run(
        ["git", "-C", str(ds), "ls-files", "-s", "-z"], capture_output=True, text=True, check=True
    ).stdout
    entries = [e.split("\t", 1) for e in out.split("\0") if e]
    return [path for meta, path in entries if not meta.startswith("160000")]


def _really_in(ds: Path) -> dict[str, set[str]]:
    """Datatypes, suffixes, tasks and subjects of a dataset, read straight from git."""
    found: dict[str, set[str]] = {"datatype": set(), "suffix": set(), "task": set(), "sub": set()}
    for path in _tracked(ds):
        match = _DATA_FILE.match(path)
        if match is None:
            continue
        stem = match["name"].split(".", 1)[0]
        found["datatype"].add(match["dt"])
        found["suffix"].add(stem.rsplit("_", 1)[1])
        found["sub"].add(match["sub"])
        task = re.search(r"_task-([a-zA-Z0-9]+)", stem)
        if task:
            found["task"].add(task[1])
    return found


def _version_rows(engine: sa.Engine) -> dict[str, list[tuple[int, str]]]:
    """dataset id -> [(version row id, commit)]."""
    rows: dict[str, list[tuple[int, str]]] = {}
    with engine.connect() as connection:
        for dataset_id, vid, commit in connection.execute(
            sa.select(versions_t.c.dataset_id, versions_t.c.id, versions_t.c.commit)
        ):
            rows.setdefault(dataset_id, []).append((vid, commit))
    return rows


def _publish(site: Path, scope: str, version: str = "1.0.0") -> None:
    run_windl("audit", release_dir(site, scope))
    run_windl("publish", "study1", "--scope", scope, "--version", version, "--site", site)


def _add_study2(site: Path, data: Path, tmp_path: Path) -> None:
    """A second study holding only one T1w (no EEG, no task)."""
    run_windl("study", "create", "study2", "--site", site)
    run_windl("import", "study2", _t1w_bids(data, tmp_path / "t1w"), "--site", site)


# ----------------------------------------------------------------------------- index
def test_index_holds_the_datatypes_suffixes_tasks_and_participants_really_present(
    release_site: Path, database_url: str
) -> None:
    result = _index(release_site, database_url)
    assert sorted(result.read) == ["study1", "study1/external", "study1/members"]
    engine = engine_for_url(database_url)
    for dataset_id, ds in (
        ("study1", study_path(release_site)),
        ("study1/members", release_dir(release_site, "members")),
        ("study1/external", release_dir(release_site, "external")),
    ):
        detail = dataset_detail(engine, dataset_id, OPERATOR, files_per_page=1000)
        assert detail is not None
        truth = _really_in(ds)
        assert set(detail.datatypes) == truth["datatype"]
        assert set(detail.suffixes) == truth["suffix"]
        assert set(detail.tasks) == truth["task"]
        assert detail.n_participants == len(truth["sub"])
        # the study has a DICOM session, an EEG recording and a T1w
        assert {"mri", "eeg"} <= set(detail.modalities)
        assert {"T1w", "eeg"} <= set(detail.suffixes)
        # every tracked file is listed, annexed ones with the size of their content
        tracked = [
            p
            for p in _tracked(ds)
            if not p.startswith(".datalad/") and not Path(p).name.startswith(".git")
        ]
        assert detail.files is not None and detail.files.total == len(tracked)
        assert sorted(f["path"] for f in detail.files.files) == sorted(tracked)
        for f in detail.files.files:
            if f["annexed"]:
                assert f["size"] == (ds / f["path"]).resolve().stat().st_size
        assert detail.size == sum(f["size"] for f in detail.files.files)
    members = dataset_detail(engine, "study1/members", OPERATOR)
    external = dataset_detail(engine, "study1/external", OPERATOR)
    assert members is not None and external is not None
    # sub-01 consented to members only
    assert (members.n_participants, external.n_participants) == (3, 2)
    assert external.participants["count"] == 2
    assert members.version == "1.0.0" and not members.published


def test_second_index_reads_nothing_and_a_new_commit_rereads_only_that_dataset(
    release_site: Path, database_url: str
) -> None:
    _index(release_site, database_url)
    engine = engine_for_url(database_url)
    before = _version_rows(engine)
    again = _index(release_site, database_url)
    assert not again.changed and again.read == [] and again.versions_read == 0
    assert _version_rows(engine) == before
    study = study_path(release_site)
    (study / "README").write_text("A study of resting brains.\n", encoding="utf-8")
    save(study, ["README"], "test: README")
    third = _index(release_site, database_url)
    assert third.read == ["study1"] and third.versions_read == 1
    after = _version_rows(engine)
    # the releases' rows were left as they were; the study's HEAD is the new commit
    assert {k: v for k, v in after.items() if k != "study1"} == {
        k: v for k, v in before.items() if k != "study1"
    }
    assert after["study1"][0][1] == git_head(study) != before["study1"][0][1]
    hits = search(engine, parse_query("resting"), OPERATOR)
    assert _ids(hits) == ["study1"]


def _head_rows(engine: sa.Engine, dataset_id: str) -> tuple[dict, set[tuple]]:
    """The HEAD version row (without its id) and its file rows (without ids) of a dataset."""
    with engine.connect() as connection:
        version = (
            connection.execute(
                sa.select(versions_t).where(
                    versions_t.c.dataset_id == dataset_id, versions_t.c.is_head
                )
            )
            .one()
            ._asdict()
        )
        columns = [c for c in files_t.c if c.name not in ("id", "version_id")]
        files = {
            tuple(row)
            for row in connection.execute(
                sa.select(*columns).where(files_t.c.version_id == version["id"])
            )
        }
    return {k: v for k, v in version.items() if k not in ("id", "search_tsv")}, files


def test_one_more_commit_writes_only_its_files_and_equals_a_full_index(
    release_site: Path, database_url: str, tmp_path: Path
) -> None:
    _index(release_site, database_url)
    engine = engine_for_url(database_url)
    study = study_path(release_site)
    n_before = len(_head_rows(engine, "study1")[1])
    # one file added, one changed, one removed: what an ingest + convert of a session does
    (study / "README").write_text("A study of resting brains.\n", encoding="utf-8")
    (study / "phenotype").mkdir(exist_ok=True)
    (study / "phenotype" / "scale.tsv").write_text("participant_id\tx\nsub-01\t1\n")
    removed = next(p for p in _tracked(study) if p.endswith("_scans.tsv"))
    (study / removed).unlink()
    save(study, ["README", "phenotype/scale.tsv", removed], "test: one more commit")
    result = _index(release_site, database_url)
    assert result.read == ["study1"] and result.files == 2  # README and scale.tsv rows
    version, files = _head_rows(engine, "study1")
    assert len(files) == n_before  # +1 file, -1 file
    assert version["commit"] == git_head(study)
    # the same rows as indexing that commit from nothing
    fresh = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    _index(release_site, fresh)
    assert _head_rows(engine_for_url(fresh), "study1") == (version, files)
    assert _ids(search(engine, parse_query("resting"), OPERATOR)) == ["study1"]


def test_a_release_that_disappears_is_removed_with_its_files(
    release_site: Path, database_url: str
) -> None:
    import shutil

    _index(release_site, database_url)
    engine = engine_for_url(database_url)
    shutil.rmtree(release_dir(release_site, "members"))
    result = _index(release_site, database_url)
    assert result.removed == ["study1/members"] and result.read == []
    assert dataset_detail(engine, "study1/members", OPERATOR) is None
    with engine.connect() as connection:
        orphans = connection.execute(
            sa.select(sa.func.count())
            .select_from(files_t)
            .where(~files_t.c.version_id.in_(sa.select(versions_t.c.id)))
        ).scalar_one()
    assert orphans == 0
    assert _ids(search(engine, Query(), OPERATOR)) == ["study1", "study1/external"]


def test_qc_group_tables_give_file_counts_and_metric_medians(
    release_site: Path, database_url: str
) -> None:
    study = study_path(release_site)
    qc = study / "derivatives" / "qc"
    qc.mkdir(parents=True)
    (qc / "group_T1w.tsv").write_text(
        "bids_name\tcjv\tsnr_total\tnote\n"
        "sub-01_T1w\t0.4\t10\tok\n"
        "sub-02_T1w\t0.6\tn/a\tok\n"
        "sub-03_T1w\t0.5\t14\tbad\n",
        encoding="utf-8",
    )
    save(study, ["derivatives/qc/group_T1w.tsv"], "test: QC table")
    _index(release_site, database_url)
    engine = engine_for_url(database_url)
    detail = dataset_detail(engine, "study1", OPERATOR)
    assert detail is not None and detail.has_qc
    assert detail.qc == {"T1w": {"files": 3, "metrics": {"cjv": 0.5, "snr_total": 12.0}}}
    assert detail.derivatives == ["qc"]
    assert _ids(search(engine, parse_query("qc:yes"), OPERATOR)) == ["study1"]
    assert _ids(search(engine, Query(has_qc=False), OPERATOR)) == [
        "study1/external",
        "study1/members",
    ]


# ----------------------------------------------------------------------------- search
def test_search_by_text_each_facet_combinations_and_pages(
    release_site: Path, database_url: str, data: Path, tmp_path: Path
) -> None:
    _add_study2(release_site, data, tmp_path)
    _index(release_site, database_url)
    engine = engine_for_url(database_url)

    def ids(text: str = "", **filters) -> list[str]:
        return _ids(search(engine, parse_query(text, **filters), OPERATOR))

    everything = ["study1", "study1/external", "study1/members", "study2"]
    assert ids() == everything
    assert ids("study2") == ["study2"]
    assert ids("stud") == everything  # words match as prefixes
    assert ids("modality:eeg") == everything[:3]
    assert ids("modality:EEG,meg") == everything[:3]
    assert ids(modality=["mri"]) == everything
    assert ids("suffix:t1w") == everything
    assert ids("datatype:eeg suffix:T1w") == everything[:3]
    assert ids("task:rest") == everything[:3]
    assert ids("scope:external") == ["study1/external"]
    assert ids("scope:members,external") == ["study1/external", "study1/members"]
    assert ids("participants>=3") == ["study1", "study1/members"]
    assert ids(min_participants=2) == everything[:3]
    assert ids("license:cc0") == everything and ids("license:PDDL") == []
    assert ids("rest modality:eeg scope:external participants>=2") == ["study1/external"]
    assert ids("nosuchword") == []

    page = search(engine, parse_query("suffix:T1w"), OPERATOR)
    assert page.total == 4
    assert page.facets["modality"] == {"mri": 4, "eeg": 3}
    assert page.facets["suffix"]["T1w"] == 4 and page.facets["suffix"]["eeg"] == 3
    assert page.facets["task"] == {"rest": 3}
    assert page.facets["scope"] == {"external": 1, "members": 1}
    filtered = search(engine, parse_query("modality:eeg"), OPERATOR)
    assert filtered.facets["modality"]["mri"] == 3  # counts follow the filter

    first = search(engine, Query(), OPERATOR, page=1, per_page=3)
    second = search(engine, Query(), OPERATOR, page=2, per_page=3)
    assert (first.total, second.total, first.pages) == (4, 4, 2)
    assert len(first.results) == 3 and len(second.results) == 1
    assert sorted(r.id for r in first.results + second.results) == everything


def test_malformed_queries_are_refused_with_one_clear_line() -> None:
    for text, expected in (
        ("colour:blue", "unknown filter 'colour:blue'"),
        ("participants>=many", "whole number"),
        ("modality:", "has no value"),
        ('rest "unclosed', "malformed query"),
        ("scope:public", "unknown scope 'public'"),
        ("participants<3", "only participants>=N"),
    ):
        with pytest.raises(QueryError, match=re.escape(expected)) as caught:
            parse_query(text)
        assert "\n" not in str(caught.value)
    query = parse_query("rest  modality:eeg suffix:FLAIR task:rest participants>=20 scope:external")
    assert query == Query(
        text="rest",
        modality=["eeg"],
        suffix=["FLAIR"],
        task=["rest"],
        min_participants=20,
        scope=["external"],
    )
    assert parse_query(query.to_text()) == query


# ----------------------------------------------------------------------------- access
def test_external_viewers_see_only_published_external_releases(
    release_site: Path, database_url: str
) -> None:
    _index(release_site, database_url)
    engine = engine_for_url(database_url)
    # nothing is published yet: outsiders see nothing at all
    for viewer in (EXTERNAL, Viewer("anonymous")):
        page = search(engine, Query(), viewer)
        assert page.total == 0 and page.results == []
        assert all(counts == {} for counts in page.facets.values())

    _publish(release_site, "external")
    build_release(release_site, "external", "1.1.0")  # built, not published
    result = _index(release_site, database_url)
    assert result.read == ["study1/external"]
    for viewer in (EXTERNAL, Viewer("anonymous")):
        page = search(engine, Query(), viewer)
        assert [r.id for r in page.results] == ["study1/external"] and page.total == 1
        assert page.results[0].version == "1.0.0" and page.results[0].published
        assert page.facets["scope"] == {"external": 1}
        assert all(set(c.values()) == {1} for c in page.facets.values() if c)
        # a members-only release and the study: not by name, not by filter, not by address
        assert search(engine, parse_query("study1"), viewer).total == 1
        assert search(engine, parse_query("scope:members"), viewer).total == 0
        assert dataset_detail(engine, "study1", viewer) is None
        assert dataset_detail(engine, "study1/members", viewer) is None
        assert dataset_detail(engine, "no-such-study", viewer) is None
        detail = dataset_detail(engine, "study1/external", viewer)
        assert detail is not None
        assert [(v.version, v.published) for v in detail.versions] == [("1.0.0", True)]
        assert detail.clone == {}
        assert dataset_detail(engine, "study1/external", viewer, version="HEAD") is None
        assert dataset_detail(engine, "study1/external", viewer, version="1.1.0") is None

    member = Viewer("member", "someone@example.org")
    page = search(engine, Query(), member)
    assert _ids(page) == ["study1", "study1/external", "study1/members"]
    detail = dataset_detail(engine, "study1/external", member)
    assert detail is not None and detail.version == "1.1.0" and not detail.published
    assert [(v.version, v.published) for v in detail.versions] == [
        ("1.0.0", True),
        ("1.1.0", False),
    ]
    operator = dataset_detail(engine, "study1/external", OPERATOR, version="1.0.0")
    assert operator is not None and operator.version == "1.0.0"
    assert operator.clone["local"] == (
        f"datalad clone 'ria+file://{release_site.resolve()}/stores/external"
        "#~study1-external@v1.0.0'"
    )


def test_members_see_an_individuals_release_only_while_granted(
    release_site: Path, database_url: str, tmp_path: Path
) -> None:
    from test_share import _gpg_person

    _, alice_key = _gpg_person(tmp_path, "alice")
    for subject in ("02", "03"):
        run_windl(
            "consent", "set", "study1", subject, "--scope", "individuals", "--site", release_site
        )
    build_release(release_site, "individuals", "1.0.0")
    run_windl("share", "grant", "study1", "alice", "--key", alice_key, "--site", release_site)
    assert _index(release_site, database_url).grants_changed == ["study1/individuals"]
    engine = engine_for_url(database_url)
    alice, bob = Viewer("member", "alice"), Viewer("member", "bob")
    assert "study1/individuals" in _ids(search(engine, Query(), alice))
    assert dataset_detail(engine, "study1/individuals", alice) is not None
    bobs = search(engine, Query(), bob)
    assert _ids(bobs) == ["study1", "study1/external", "study1/members"]
    assert "individuals" not in bobs.facets["scope"]
    assert bobs.facets["modality"]["mri"] == 3
    assert dataset_detail(engine, "study1/individuals", bob) is None
    assert dataset_detail(engine, "study1/individuals", Viewer("member")) is None
    assert search(engine, parse_query("scope:individuals"), EXTERNAL).total == 0

    run_windl("share", "revoke", "study1", "alice", "--site", release_site)
    result = _index(release_site, database_url)
    assert result.grants_changed == ["study1/individuals"] and result.read == []
    assert dataset_detail(engine, "study1/individuals", alice) is None
    assert dataset_detail(engine, "study1/individuals", OPERATOR) is not None


# ----------------------------------------------------------------------------- CLI
def _use_database(site: Path, database_url: str) -> None:
    if database_url.startswith("postgresql"):
        with (site / "windl.toml").open("a", encoding="utf-8") as fh:
            fh.write(f'\n[database]\nurl = "{database_url}"\n')


def test_catalog_index_and_search_through_the_cli(release_site: Path, database_url: str) -> None:
    _use_database(release_site, database_url)
    site = ("--site", release_site)
    never = run_windl("search", "rest", *site, check=False)
    assert never.returncode == 1
    assert never.stderr.strip() == (
        "windl: error: this site's catalog was never indexed: run 'windl catalog index'"
    )
    out = run_windl("catalog", "index", *site).stdout
    assert "catalog indexed: 3 datasets" in out
    again = run_windl("catalog", "index", "--json", *site).stdout
    import json

    assert json.loads(again)["changed"] is False
    assert "nothing changed" in run_windl("catalog", "index", *site).stdout

    found = json.loads(
        run_windl(
            "search", "rest", "--modality", "eeg", "--min-participants", "3", "--json", *site
        ).stdout
    )
    assert found["total"] == 2
    assert sorted(r["id"] for r in found["results"]) == ["study1", "study1/members"]
    assert found["facets"]["task"] == {"rest": 2}
    text = run_windl("search", "suffix:T1w", *site).stdout
    assert text.splitlines()[0] == "3 datasets match" and "study1/members" in text
    outside = json.loads(run_windl("search", "--as-external", "--json", *site).stdout)
    assert outside["total"] == 0 and outside["results"] == []

    bad = run_windl("search", "colour:blue", *site, check=False)
    assert bad.returncode == 1 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("windl: error: unknown filter 'colour:blue'")
    assert "Traceback" not in bad.stderr


def test_long_values_read_from_a_dataset_are_indexed_on_both_backends(
    site: Path, database_url: str
) -> None:
    study = study_path(site)
    license_text = ("A custom data license " + "with many conditions " * 10).strip()
    description = study / "dataset_description.json"
    description.write_text(
        description.read_text(encoding="utf-8").replace('"CC0"', f'"{license_text}"'),
        encoding="utf-8",
    )
    odd = "derivatives/notes/sub-01_desc-" + "x" * 80 + "_notes.some-very-long-extension-name.json"
    (study / odd).parent.mkdir(parents=True)
    (study / odd).write_text("{}\n", encoding="utf-8")
    save(study, ["dataset_description.json", odd], "test: long values")
    _index(site, database_url)
    engine = engine_for_url(database_url)
    detail = dataset_detail(engine, "study1", OPERATOR, files_per_page=1000)
    assert detail is not None and detail.license == license_text
    (row,) = [f for f in detail.files.files if f["path"] == odd]
    assert row["extension"] == ".some-very-long-extension-name.json"
    assert search(engine, Query(license=[license_text.upper()]), OPERATOR).total == 1


def test_an_upgraded_catalog_is_emptied_and_search_asks_for_a_new_index(
    database_url: str,
) -> None:
    from alembic import command
    from alembic.config import Config

    from windl.catalog.search import CatalogNotIndexed, require_indexed
    from windl.database import MIGRATIONS_ROOT, migrate, version_table

    engine = engine_for_url(database_url)
    with pytest.raises(CatalogNotIndexed):  # no tables at all yet
        search(engine, Query(), OPERATOR)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_ROOT / "catalog" / "migrations"))
    config.attributes["version_table"] = version_table("catalog")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(sa.text("INSERT INTO catalog_meta VALUES ('indexed_at', 'then')"))
        require_indexed(connection)
    migrate(engine, "catalog")
    migrate(engine, "catalog")  # idempotent
    with engine.connect() as connection, pytest.raises(CatalogNotIndexed, match="never indexed"):
        require_indexed(connection)


def test_cached_searches_follow_every_change_of_the_catalog(
    release_site: Path, database_url: str
) -> None:
    import shutil

    from windl.catalog.search import SearchCache

    _index(release_site, database_url)
    engine = engine_for_url(database_url)
    cache = SearchCache()
    first = cache.search(engine, Query(), OPERATOR)
    assert cache.search(engine, Query(), OPERATOR) is first  # unchanged catalog: kept
    assert _ids(first) == ["study1", "study1/external", "study1/members"]
    shutil.rmtree(release_dir(release_site, "members"))
    assert _index(release_site, database_url).removed == ["study1/members"]
    after = cache.search(engine, Query(), OPERATOR)
    assert after is not first and _ids(after) == ["study1", "study1/external"]
    # another viewer is another answer, never the operator's
    assert _ids(cache.search(engine, Query(), EXTERNAL)) == _ids(search(engine, Query(), EXTERNAL))
