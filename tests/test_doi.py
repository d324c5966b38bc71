"""``windl doi mint``: DataCite metadata, validation, registration and the DOI in the release.

DataCite itself is not contacted: a local HTTP server enforces the documented REST contract of
``POST /dois`` and ``PUT /dois/{doi}`` (JSON:API body, HTTP Basic auth, ``201``/``200``/``422``
answers) and records every request, and the real ``datacite`` client talks to it.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from windl.config import load_site
from windl.datasets import save

from conftest import (
    build_release,
    consent_external,
    git_head,
    git_status,
    release_dir,
    run_windl,
    study_path,
)

PREFIX = "10.99999"
USER = "WINDL.TEST"
PASSWORD = "s3cret-test-password"
PASSWORD_ENV = "WINDL_TEST_DATACITE_PASSWORD"
DOI = f"{PREFIX}/windl.study1.external.v1.0.0"
LANDING = "https://data.example.org/datasets/{study}/{scope}/{version}"
AUTHORS = ["Doe, Jane", "John Smith", "Ludwig van Beethoven", "Example Imaging Centre", "ENIGMA"]
#: what DataCite requires of a findable DOI (besides the DOI itself)
REQUIRED = ("creators", "titles", "publisher", "publicationYear")


# ----------------------------------------------------------------------------- the server
class DataCiteServer:
    """A local stand-in for DataCite's REST API that holds the client to its contract."""

    def __init__(self, username: str, password: str, prefix: str) -> None:
        self.expected_auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.prefix = prefix
        self.requests: list[dict[str, Any]] = []
        self.dois: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                server.handle(self, "POST")

            def do_PUT(self) -> None:
                server.handle(self, "PUT")

            def do_GET(self) -> None:
                server.handle(self, "GET")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        entry: dict[str, Any] = {
            "method": method,
            "path": request.path,
            "authorised": request.headers.get("Authorization") == self.expected_auth,
            "content_type": request.headers.get("Content-Type"),
            "body": None,
        }
        try:
            entry["body"] = json.loads(raw) if raw else None
        except ValueError:
            entry["body"] = raw.decode(errors="replace")
        with self.lock:
            self.requests.append(entry)
            status, answer = self.answer(method, request.path, entry)
        body = json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/vnd.api+json; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        if status == 401:
            request.send_header("WWW-Authenticate", 'Basic realm="DataCite"')
        request.end_headers()
        request.wfile.write(body)

    @staticmethod
    def errors(status: int, title: str, source: str | None = None) -> tuple[int, dict[str, Any]]:
        error: dict[str, Any] = {"status": str(status), "title": title}
        if source:
            error["source"] = source
        return status, {"errors": [error]}

    def answer(self, method: str, path: str, entry: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not entry["authorised"]:
            return self.errors(401, "Bad credentials.")
        if method == "GET" or not (path == "/dois" or path.startswith("/dois/")):
            return self.errors(404, "The resource you are looking for doesn't exist.")
        if (entry["content_type"] or "").split(";")[0].strip() != "application/vnd.api+json":
            return self.errors(415, "The content type is not recognized.")
        body = entry["body"]
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("attributes"), dict):
            return self.errors(400, "Request body must be a JSON:API document with data.")
        if data.get("type", "dois") != "dois":
            return self.errors(422, "data.type must be 'dois'", "type")
        attributes = data["attributes"]
        if method == "POST" and path == "/dois":
            doi = str(attributes.get("doi") or "").lower()
            if not doi.startswith(self.prefix + "/"):
                return self.errors(422, f"DOI must be under the prefix {self.prefix}", "doi")
            if doi in self.dois:
                return self.errors(422, "This DOI has already been taken", "doi")
            record = dict(attributes)
        elif method == "PUT" and path.startswith("/dois/"):
            doi = path.removeprefix("/dois/").lower()
            if not doi.startswith(self.prefix + "/"):
                return self.errors(422, f"DOI must be under the prefix {self.prefix}", "doi")
            record = {**self.dois.get(doi, {}), **attributes}
        else:
            return self.errors(405, "Method not allowed.")
        event = record.pop("event", None)
        state = {"publish": "findable", "register": "registered"}.get(
            event or "", record.get("state", "draft")
        )
        if state != "draft":
            for key in REQUIRED:
                if not record.get(key):
                    return self.errors(422, f"{key} can't be blank", key)
            if not (record.get("types") or {}).get("resourceTypeGeneral"):
                return self.errors(422, "types.resourceTypeGeneral can't be blank", "types")
            if not str(record.get("url") or "").startswith(("http://", "https://")):
                return self.errors(422, "url can't be blank", "url")
        record.update(doi=doi, state=state)
        created = doi not in self.dois
        self.dois[doi] = record
        return (201 if created else 200), {
            "data": {"id": doi, "type": "dois", "attributes": record}
        }


@pytest.fixture
def datacite() -> Iterator[DataCiteServer]:
    server = DataCiteServer(USER, PASSWORD, PREFIX)
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


# ----------------------------------------------------------------------------- helpers
def describe(dataset: Path, **fields: Any) -> None:
    """Set fields of a dataset's dataset_description.json and commit them."""
    path = dataset / "dataset_description.json"
    description = json.loads(path.read_text())
    description.update(fields)
    path.write_text(json.dumps(description, indent=2) + "\n")
    save(dataset, ["dataset_description.json"], "test: describe")


def configure(site: Path, server: DataCiteServer) -> None:
    with (site / "windl.toml").open("a") as fh:
        fh.write(
            "\n[datacite]\n"
            f'url = "{server.url}"\n'
            f'prefix = "{PREFIX}"\n'
            f'username = "{USER}"\n'
            f'password_env = "{PASSWORD_ENV}"\n'
            f'landing_url = "{LANDING}"\n'
        )


def mint(
    site: Path, version: str = "1.0.0", password: str | None = PASSWORD, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    if password is not None:
        env[PASSWORD_ENV] = password
    return run_windl(
        "doi", "mint", "study1", "--version", version, "--site", site, env=env, check=check
    )


def commits(ds: Path) -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(ds), "log", "--format=%s"], capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


def tag(ds: Path, version: str) -> None:
    """Tag a version as ``windl publish`` does (the store push is not needed here)."""
    subprocess.run(
        ["git", "-C", str(ds), "tag", "-a", f"v{version}", "-m", f"test: publish {version}"],
        check=True,
    )


def attributes(request: dict[str, Any]) -> dict[str, Any]:
    return request["body"]["data"]["attributes"]


# ----------------------------------------------------------------------------- tests
def test_external_release_metadata_validates_against_the_datacite_schema(
    release_site: Path,
) -> None:
    from datacite import schema45

    from windl.share.doi import datacite_metadata, validate_metadata

    release = release_dir(release_site, "external")
    describe(
        release,
        Authors=AUTHORS,
        Funding=["Example Research Council, grant ERC-42"],
        ReferencesAndLinks=[
            "https://example.org/methods-paper",
            "Doe J. (2026). A study of heads. Journal of Examples 1:1.",
            "https://doi.org/10.1234/abcd.5678",
        ],
    )
    metadata = datacite_metadata(load_site(release_site), release, DOI)

    assert schema45.validate(metadata)
    validate_metadata(metadata)
    assert b'<identifier identifierType="DOI">' in schema45.tostring(metadata).encode()
    assert metadata["doi"] == DOI
    assert metadata["creators"] == [
        {"name": "Doe, Jane", "nameType": "Personal", "givenName": "Jane", "familyName": "Doe"},
        {
            "name": "Smith, John",
            "nameType": "Personal",
            "givenName": "John",
            "familyName": "Smith",
        },
        {
            "name": "van Beethoven, Ludwig",
            "nameType": "Personal",
            "givenName": "Ludwig",
            "familyName": "van Beethoven",
        },
        {"name": "Example Imaging Centre", "nameType": "Organizational"},
        {"name": "ENIGMA", "nameType": "Organizational"},
    ]
    assert metadata["titles"] == [{"title": "head"}]
    assert metadata["version"] == "1.0.0"
    assert metadata["publisher"] == {"name": "site"}
    record = json.loads((release / "code/windl/release.json").read_text())
    assert metadata["dates"] == [{"date": record["date"], "dateType": "Issued"}]
    assert metadata["publicationYear"] == record["date"][:4]
    assert metadata["types"] == {"resourceTypeGeneral": "Dataset", "resourceType": "BIDS dataset"}
    cc0 = metadata["rightsList"][0]
    assert cc0["rightsIdentifier"] == "CC0-1.0"
    assert cc0["rightsUri"] == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert "Data Usage Agreement version 1.0" in metadata["rightsList"][1]["rights"]
    # the release as it is once the DOI is in it: its files plus CITATION.cff
    tracked = [
        p
        for p in subprocess.run(
            ["git", "-C", str(release), "ls-files"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        if not p.startswith(".")
    ]
    n_files, n_bytes = metadata["sizes"]
    assert n_files == f"{len(tracked) + 1} files"
    assert int(n_bytes.split()[0]) > sum((release / p).stat().st_size for p in tracked) > 0
    assert {
        "application/x-nifti",
        "application/json",
        "text/tab-separated-values",
        "EEG BrainVision",
    } <= set(metadata["formats"])
    assert [s["subject"] for s in metadata["subjects"]] == ["anat", "eeg"]
    abstract, technical = metadata["descriptions"]
    # the study's README was never approved for release (windl release review): the abstract
    # says so instead of quoting text people wrote
    assert abstract["descriptionType"] == "Abstract"
    assert abstract["description"].startswith("The study's description is withheld pending review")
    assert technical["descriptionType"] == "TechnicalInfo"
    assert "De-identified, consent-filtered" in technical["description"]
    assert "2 participants" in technical["description"]
    assert metadata["fundingReferences"] == [
        {"funderName": "Example Research Council, grant ERC-42"}
    ]
    assert metadata["relatedIdentifiers"] == [
        {
            "relatedIdentifier": "https://example.org/methods-paper",
            "relatedIdentifierType": "URL",
            "relationType": "References",
        },
        {
            "relatedIdentifier": "10.1234/abcd.5678",
            "relatedIdentifierType": "DOI",
            "relationType": "References",
        },
    ]
    assert metadata["language"] == "en"


def test_validate_metadata_names_the_first_schema_violation() -> None:
    from windl.errors import InvalidMetadata
    from windl.share.doi import validate_metadata

    with pytest.raises(InvalidMetadata, match="'creators' is a required property"):
        validate_metadata({"titles": [{"title": "x"}]})
    with pytest.raises(InvalidMetadata, match="no creators"):
        validate_metadata({"creators": []})
    with pytest.raises(InvalidMetadata, match=r"publicationYear: '26' does not match"):
        validate_metadata(
            {
                "schemaVersion": "http://datacite.org/schema/kernel-4",
                "creators": [{"name": "A"}],
                "titles": [{"title": "x"}],
                "publisher": {"name": "p"},
                "publicationYear": "26",
                "types": {"resourceTypeGeneral": "Dataset"},
            }
        )


def test_metadata_without_creators_is_refused_before_any_request(
    release_site: Path, datacite: DataCiteServer
) -> None:
    release = release_dir(release_site, "external")
    describe(release, Authors=[])
    configure(release_site, datacite)
    head = git_head(release)

    proc = mint(release_site, check=False)

    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0] == (
        f"windl: error: {release}/dataset_description.json: "
        "DataCite metadata invalid: no creators (Authors lists nobody)"
    )
    assert datacite.requests == []
    assert git_head(release) == head
    assert git_status(release) == ""
    assert not (release_site / "reports" / "doi").exists()


def test_mint_registers_the_doi_and_writes_it_into_the_release(
    release_site: Path, datacite: DataCiteServer
) -> None:
    release = release_dir(release_site, "external")
    # authors are the study's (written by its lead, released as they are), not a hand edit of
    # the release, which the audit's git-metadata and unexplained-text checks refuse
    describe(study_path(release_site), Authors=AUTHORS[:2])
    build_release(release_site, "external", "1.0.0")
    configure(release_site, datacite)
    before = commits(release)

    proc = mint(release_site)

    assert f"DOI {DOI} created at DataCite" in proc.stdout
    assert f"audit it again before publishing: windl audit {release}" in proc.stdout
    (post,) = datacite.requests
    assert (post["method"], post["path"], post["authorised"]) == ("POST", "/dois", True)
    assert post["content_type"] == "application/vnd.api+json"
    sent = attributes(post)
    assert sent["event"] == "publish"
    assert sent["url"] == "https://data.example.org/datasets/study1/external/1.0.0"
    assert (sent["doi"], sent["prefix"]) == (DOI, PREFIX)
    assert datacite.dois[DOI]["state"] == "findable"
    draft = json.loads((release_site / "reports/doi/study1-external-1.0.0.json").read_text())
    assert {k: v for k, v in sent.items() if k not in ("event", "url", "prefix")} == draft

    description = json.loads((release / "dataset_description.json").read_text())
    assert description["DatasetDOI"] == f"doi:{DOI}"
    citation = (release / "CITATION.cff").read_text()
    assert "cff-version: 1.2.0" in citation
    assert f'doi: "{DOI}"' in citation
    assert '  - family-names: "Doe"\n    given-names: "Jane"' in citation
    assert 'license: "CC0-1.0"' in citation
    readme = (release / "README.md").read_text().splitlines()
    assert readme[0].startswith("# head")
    assert readme[2] == f"**DOI:** https://doi.org/{DOI}"
    assert "CITATION.cff" in (release / ".bidsignore").read_text().split()
    assert commits(release) == [f"windl doi: {DOI}", *before]
    assert git_status(release) == ""
    recorded = subprocess.run(
        [
            "git",
            "-C",
            str(release_site / "superdataset"),
            "ls-tree",
            "HEAD",
            "releases/study1/external",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert recorded[2] == git_head(release)
    # the changed release passes the gate again (BIDS validator included)
    run_windl("audit", release, "--site", release_site)


def test_minting_again_changes_nothing(release_site: Path, datacite: DataCiteServer) -> None:
    release = release_dir(release_site, "external")
    describe(release, Authors=AUTHORS[:2])
    configure(release_site, datacite)
    mint(release_site)
    head = git_head(release)
    report = release_site / "reports/doi/study1-external-1.0.0.json"
    first = report.read_text()

    proc = mint(release_site)

    assert "release unchanged: it already holds this DOI" in proc.stdout
    assert git_head(release) == head
    assert git_status(release) == ""
    assert report.read_text() == first
    assert [(r["method"], r["path"]) for r in datacite.requests] == [
        ("POST", "/dois"),
        ("PUT", f"/dois/{DOI}"),
    ]
    assert all(r["authorised"] for r in datacite.requests)
    post, put = (attributes(r) for r in datacite.requests)
    strip = ("event", "url", "prefix")
    assert {k: v for k, v in put.items() if k not in strip} == {
        k: v for k, v in post.items() if k not in strip
    }
    assert datacite.dois[DOI]["state"] == "findable"


def test_doi_already_at_datacite_is_updated_and_written(
    release_site: Path, datacite: DataCiteServer
) -> None:
    """A mint interrupted after DataCite accepted the DOI completes on the next run."""
    release = release_dir(release_site, "external")
    describe(release, Authors=AUTHORS[:1])
    configure(release_site, datacite)
    datacite.dois[DOI] = {"doi": DOI, "state": "draft"}

    proc = mint(release_site)

    assert f"DOI {DOI} updated at DataCite" in proc.stdout
    assert [(r["method"], r["path"]) for r in datacite.requests] == [
        ("POST", "/dois"),
        ("PUT", f"/dois/{DOI}"),
    ]
    assert datacite.dois[DOI]["state"] == "findable"
    assert json.loads((release / "dataset_description.json").read_text())["DatasetDOI"] == (
        f"doi:{DOI}"
    )
    assert commits(release)[0] == f"windl doi: {DOI}"


def test_wrong_password_is_refused_by_datacite_and_release_unchanged(
    release_site: Path, datacite: DataCiteServer
) -> None:
    release = release_dir(release_site, "external")
    describe(release, Authors=AUTHORS[:1])
    configure(release_site, datacite)
    head = git_head(release)

    proc = mint(release_site, password="Wr0ng-Pa55", check=False)

    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (
        f"windl: error: DataCite at {datacite.url} refused the credentials of {USER} "
        f"(password from ${PASSWORD_ENV})"
    )
    assert "Wr0ng-Pa55" not in proc.stderr + proc.stdout
    assert [r["authorised"] for r in datacite.requests] == [False]
    assert git_head(release) == head
    assert git_status(release) == ""


def test_without_credentials_a_validated_draft_is_written_and_the_release_is_unchanged(
    release_site: Path, datacite: DataCiteServer
) -> None:
    from datacite import schema45

    release = release_dir(release_site, "external")
    describe(release, Authors=AUTHORS[:2])
    head = git_head(release)
    draft = release_site / "reports/doi/study1-external-1.0.0.json"

    proc = mint(release_site, password=None)

    assert proc.stdout.splitlines()[0] == (
        f"validated draft written to {draft}; not registered: "
        "no DataCite credentials in windl.toml [datacite]"
    )
    metadata = json.loads(draft.read_text())
    assert metadata["doi"] == "10.5072/windl.study1.external.v1.0.0"
    assert schema45.validate(metadata)
    assert git_head(release) == head
    assert git_status(release) == ""
    assert not (release / "CITATION.cff").exists()

    # configured, but the password is not in the environment: still a draft, nothing sent
    configure(release_site, datacite)
    proc = mint(release_site, password=None)
    assert f"(missing: the password in ${PASSWORD_ENV})" in proc.stdout
    assert json.loads(draft.read_text())["doi"] == DOI
    assert datacite.requests == []
    assert git_head(release) == head


def test_published_version_without_doi_is_refused(
    release_site: Path, datacite: DataCiteServer
) -> None:
    release = release_dir(release_site, "external")
    describe(release, Authors=AUTHORS[:1])
    configure(release_site, datacite)
    tag(release, "1.0.0")
    head = git_head(release)

    proc = mint(release_site, check=False)

    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert line.endswith(
        "v1.0.0 is published without a DOI; mint the DOI before publishing: "
        "a published version is never rewritten"
    )
    assert datacite.requests == []
    assert git_head(release) == head
    assert not (release_site / "reports" / "doi").exists()


def test_new_version_is_registered_as_new_version_of_the_published_one(
    release_site: Path, datacite: DataCiteServer
) -> None:
    study = study_path(release_site)
    describe(study, Authors=AUTHORS[:2])
    site = ("--site", release_site)
    build = ("release", "build", "study1", "--scope", "external")
    run_windl(*build, "--version", "1.0.0", *site)  # the unpublished 1.0.0, with its authors
    configure(release_site, datacite)
    mint(release_site)
    release = release_dir(release_site, "external")
    tag(release, "1.0.0")
    mint(release_site)  # published with its DOI: DataCite is updated, the release untouched
    run_windl(*build, "--version", "1.1.0", *site)

    mint(release_site, version="1.1.0")

    new_doi = f"{PREFIX}/windl.study1.external.v1.1.0"
    methods = [(r["method"], r["path"]) for r in datacite.requests]
    assert methods == [("POST", "/dois"), ("PUT", f"/dois/{DOI}"), ("POST", "/dois")]
    sent = attributes(datacite.requests[-1])
    assert (sent["doi"], sent["version"]) == (new_doi, "1.1.0")
    assert {
        "relatedIdentifier": DOI,
        "relatedIdentifierType": "DOI",
        "relationType": "IsNewVersionOf",
    } in sent["relatedIdentifiers"]
    description = json.loads((release / "dataset_description.json").read_text())
    assert description["DatasetDOI"] == f"doi:{new_doi}"
    readme = (release / "README.md").read_text()
    assert f"**DOI:** https://doi.org/{new_doi}" in readme
    assert DOI not in readme


def test_rebuilding_a_minted_version_keeps_its_doi(
    release_site: Path, datacite: DataCiteServer
) -> None:
    study = study_path(release_site)
    describe(study, Authors=AUTHORS[:2])
    build = ("release", "build", "study1", "--scope", "external", "--version", "1.0.0")
    run_windl(*build, "--site", release_site)
    configure(release_site, datacite)
    mint(release_site)
    release = release_dir(release_site, "external")
    consent_external(release_site, "01")
    run_windl(*build, "--site", release_site)  # the same, unpublished version, one more person
    description = json.loads((release / "dataset_description.json").read_text())
    assert description["DatasetDOI"] == f"doi:{DOI}"
    assert DOI in (release / "CITATION.cff").read_text()
    assert f"https://doi.org/{DOI}" in (release / "README.md").read_text()
    assert len((release / "participants.tsv").read_text().splitlines()) == 4
    run_windl("audit", release)
