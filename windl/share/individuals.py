"""The ``individuals`` scope: release content readable only by named people (GPG keys).

The store of a study's individuals release is ``<site>/stores/individuals/<study>/``:

- ``repo.git``: a bare git repository (the release's history; no content);
- ``annex/<storage>/``: a git-annex *directory* special remote with ``encryption=hybrid``:
  every file is encrypted with a symmetric cipher, and that cipher is stored in the
  git-annex branch encrypted to the GPG keys of the site and of every granted person;
- ``grants.tsv``: who was granted and revoked when, with the key's fingerprint.

The site holds a key of its own (``<site>/stores/individuals/gnupg``, made on first use,
no passphrase: like an SSH host key it lets the server work unattended) so that it can add
content for everyone; people's public keys are imported into that keyring.

Granting adds the person's key to the cipher's recipients (``enableremote keyid+=``).
Revoking cannot be done by removing a recipient alone: git-annex's hybrid cipher does not
change, so anyone who once read it can decrypt everything stored with it. windl therefore
*rotates*: a new special remote with a new cipher for the remaining people, all content
copied there, the old one marked dead and its files deleted. What a revoked person already
downloaded, or copied elsewhere, cannot be taken back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from windl import datasets
from windl.checkpoints import checkpoint
from windl.clock import utc_stamp
from windl.config import Site
from windl.errors import BadInput, WindlError
from windl.files import atomic_write_text
from windl.release.build import release_path
from windl.study import get_study

SCOPE = "individuals"
SIBLING = "individuals-store"
GRANT_COLUMNS = ("person", "fingerprint", "granted", "revoked")
_PERSON = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
_STORAGE = re.compile(r"^individuals-storage-(\d+)$")


class ShareRefused(WindlError):
    """A grant or revoke that cannot be done as asked."""


@dataclass
class ShareResult:
    """What a grant or revoke did (``storage``: the encrypted remote now in use)."""

    study: str
    person: str
    action: str
    fingerprint: str
    storage: str
    changed: bool
    note: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def store_dir(site: Site, study: str) -> Path:
    return site.root / "stores" / SCOPE / study


def repository(site: Site, study: str) -> Path:
    """The bare git repository people clone the individuals release from."""
    return store_dir(site, study) / "repo.git"


def gnupg_home(site: Site) -> Path:
    """The site's GPG keyring for encrypted stores (created with the site key on first use).

    Returned through a short symlink in the temporary folder: gpg-agent's socket lives in
    the keyring folder and a Unix socket path may not exceed 107 bytes.
    """
    real = site.root / "stores" / SCOPE / "gnupg"
    real.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256(str(real.resolve()).encode()).hexdigest()[:12]
    home = Path(tempfile.gettempdir()) / f"windl-gnupg-{os.getuid()}" / digest
    if not home.is_symlink() or home.resolve() != real.resolve():
        home.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = home.with_name(f".{digest}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(real.resolve())
        tmp.replace(home)
    if not (home / "pubring.kbx").exists() or not _secret_fingerprints(home):
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        home.chmod(0o700)
        # a granted key is trusted because the maintainer granted it (fingerprint shown),
        # not through the web of trust, which gpg would otherwise require in batch mode
        (home / "gpg.conf").write_text("trust-model always\n")
        name = str(site.setting("site", "name", site.root.name))
        datasets.run_tool(
            [
                "gpg",
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                f"{name} (windl site key) <windl@{site.root.name}>",
                "default",
                "default",
                "never",
            ],
            env={"GNUPGHOME": str(home)},
        )
    return home


def site_fingerprint(site: Site) -> str:
    return _secret_fingerprints(gnupg_home(site))[0]


def _gpg(site: Site, *args: str) -> str:
    return datasets.run_tool(
        ["gpg", "--batch", *args], env={"GNUPGHOME": str(gnupg_home(site))}
    ).stdout


def _secret_fingerprints(home: Path) -> list[str]:
    proc = datasets.run_tool(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys"],
        env={"GNUPGHOME": str(home)},
        check=False,
    )
    return _fingerprints(proc.stdout)


def _fingerprints(colons: str) -> list[str]:
    """Primary-key fingerprints in ``gpg --with-colons`` output."""
    found, primary = [], False
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sec"):
            primary = True
        elif fields[0] == "fpr" and primary:
            found.append(fields[9])
            primary = False
    return found


def env(site: Site) -> dict[str, str]:
    """Environment for git-annex calls that encrypt or decrypt with the site keyring."""
    return {"GNUPGHOME": str(gnupg_home(site))}


# --------------------------------------------------------------------------- grants
def read_grants(site: Site, study: str) -> list[dict[str, str]]:
    path = store_dir(site, study) / "grants.tsv"
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [dict(zip(GRANT_COLUMNS, line.split("\t"), strict=True)) for line in lines[1:] if line]


def _write_grants(site: Site, study: str, rows: list[dict[str, str]]) -> None:
    text = "\t".join(GRANT_COLUMNS) + "\n"
    text += "".join("\t".join(r[c] for c in GRANT_COLUMNS) + "\n" for r in rows)
    atomic_write_text(store_dir(site, study) / "grants.tsv", text)


def active_fingerprints(site: Site, study: str) -> list[str]:
    return [r["fingerprint"] for r in read_grants(site, study) if r["revoked"] == "n/a"]


def grant(site: Site, study_name: str, person: str, key_file: Path) -> ShareResult:
    """Give ``person`` (whose public key is in ``key_file``) read access to the content.

    Raises
    ------
    BadInput
        If ``key_file`` holds no public key with an encryption subkey.
    """
    study = get_study(site, study_name)
    person = _person(person)
    fingerprint = _import_key(site, Path(key_file))
    rows = read_grants(site, study.name)
    current = [r for r in rows if r["person"] == person and r["revoked"] == "n/a"]
    if current and current[0]["fingerprint"] == fingerprint:
        return ShareResult(
            study.name,
            person,
            "grant",
            fingerprint,
            _storage_of(site, study.name),
            False,
            f"{person} already has access",
        )
    for row in current:  # a new key replaces the old one
        row["revoked"] = utc_stamp()
    rows.append(
        {"person": person, "fingerprint": fingerprint, "granted": utc_stamp(), "revoked": "n/a"}
    )
    ds = release_path(site, study.name, SCOPE)
    storage = _storage_of(site, study.name)
    if storage and (ds / ".git").exists():
        if current:  # the replaced key could still read the cipher: rotate, as for a revoke
            active = [r for r in rows if r["revoked"] == "n/a"]
            storage = _rotate(site, study.name, ds, storage, active)
        else:
            _add_recipient(site, study.name, ds, storage, fingerprint)
            _push_annex_branch(site, study.name, ds)
    _write_grants(site, study.name, rows)
    note = (
        f"{person} can datalad get the content of {repository(site, study.name)} with their key"
        if storage
        else f"{person} will be able to read it once the release is published to {SCOPE}"
    )
    return ShareResult(study.name, person, "grant", fingerprint, storage, True, note)


def revoke(site: Site, study_name: str, person: str) -> ShareResult:
    """Take ``person``'s access away: re-encrypt the store for the remaining people."""
    study = get_study(site, study_name)
    person = _person(person)
    rows = read_grants(site, study.name)
    current = [r for r in rows if r["person"] == person and r["revoked"] == "n/a"]
    if not current:
        raise ShareRefused(f"{person} has no access to the {SCOPE} release of {study.name}")
    for row in current:
        row["revoked"] = utc_stamp()
    ds = release_path(site, study.name, SCOPE)
    old = _storage_of(site, study.name)
    storage = old
    if old and (ds / ".git").exists():
        storage = _rotate(site, study.name, ds, old, [r for r in rows if r["revoked"] == "n/a"])
    _write_grants(site, study.name, rows)
    return ShareResult(
        study.name,
        person,
        "revoke",
        current[0]["fingerprint"],
        storage,
        True,
        "the store is re-encrypted with a new cipher for the remaining people and the old "
        "encrypted files are deleted, so the revoked key can no longer read the store; "
        "what was already downloaded or copied cannot be taken back",
    )


def _person(person: str) -> str:
    if not _PERSON.match(person):
        raise BadInput(f"invalid person name {person!r} (letters, digits, . _ @ + -)")
    return person


def _import_key(site: Site, key_file: Path) -> str:
    if not key_file.is_file():
        raise BadInput("key file not found", key_file)
    shown = datasets.run_tool(
        [
            "gpg",
            "--batch",
            "--with-colons",
            "--import-options",
            "show-only",
            "--import",
            str(key_file),
        ],
        env={"GNUPGHOME": str(gnupg_home(site))},
        check=False,
    ).stdout
    fingerprints = _fingerprints(shown)
    if len(fingerprints) != 1:
        raise BadInput("must hold exactly one OpenPGP public key", key_file)
    if not any(
        line.startswith("sub:") and "e" in line.split(":")[11] for line in shown.splitlines()
    ):
        raise BadInput("the key has no encryption subkey", key_file)
    _gpg(site, "--import", str(key_file))
    # the person's key is trusted by fingerprint: the maintainer checked it out of band
    return fingerprints[0]


# --------------------------------------------------------------------------- the store
def _storage_of(site: Site, study: str) -> str:
    """The current encrypted special remote's name ('' before the first publish)."""
    folder = store_dir(site, study) / "annex"
    numbers = sorted(
        int(m.group(1))
        for p in (folder.iterdir() if folder.is_dir() else [])
        if (m := _STORAGE.match(p.name)) and not (p / ".dead").exists()
    )
    return f"individuals-storage-{numbers[-1]}" if numbers else ""


def ensure_sibling(site: Site, study: str, ds: Path) -> tuple[str, dict[str, str]]:
    """The git remote and encrypted special remote of the individuals store (made if new).

    Returns the special remote's name and the environment git-annex needs to use it.
    """
    people = active_fingerprints(site, study)
    if not people:
        raise ShareRefused(
            f"nobody has access to the {SCOPE} release of {study}: "
            f"windl share grant {study} PERSON --key KEYFILE first"
        )
    repo = repository(site, study)
    if not repo.exists():
        repo.parent.mkdir(parents=True, exist_ok=True)
        datasets.run_tool(["git", "init", "--quiet", "--bare", str(repo)])
    if SIBLING not in datasets.remotes(ds):
        datasets.git(ds, "remote", "add", SIBLING, str(repo))
        checkpoint("individuals-remote-added")
    # the bare repository holds no content, the encrypted remote does: set every time, as a
    # publish killed right after adding the remote left it unset, and git-annex would then
    # copy plaintext into the bare repository
    datasets.git(ds, "config", f"remote.{SIBLING}.annex-ignore", "true")
    storage = _storage_of(site, study)
    if not storage or storage not in datasets.remotes(ds):
        # none yet, or its folder made by a run killed before the remote was initialised
        number = int(_STORAGE.match(storage).group(1)) if storage else 1  # type: ignore[union-attr]
        storage = _new_storage(site, study, ds, number, people)
    for fingerprint in people:  # also completes a grant or a first publish that was cut off
        _add_recipient(site, study, ds, storage, fingerprint)
    datasets.git(ds, "config", f"remote.{SIBLING}.datalad-publish-depends", storage)
    return storage, env(site)


def _new_storage(site: Site, study: str, ds: Path, number: int, people: list[str]) -> str:
    name = f"individuals-storage-{number}"
    directory = store_dir(site, study) / "annex" / name
    directory.mkdir(parents=True, exist_ok=True)
    checkpoint("individuals-storage-folder")
    datasets.git(
        ds,
        "annex",
        "initremote",
        name,
        "type=directory",
        f"directory={directory}",
        "encryption=hybrid",
        f"keyid={site_fingerprint(site)}",
        "autoenable=true",
        env=env(site),
    )
    for fingerprint in people:
        _add_recipient(site, study, ds, name, fingerprint)
    return name


def _recipients_file(site: Site, study: str, storage: str) -> Path:
    return store_dir(site, study) / f"recipients-{storage}.txt"


def _add_recipient(site: Site, study: str, ds: Path, storage: str, fingerprint: str) -> None:
    """Encrypt the storage's cipher to ``fingerprint`` too (once; recorded after success)."""
    recorded = _recipients_file(site, study, storage)
    done = recorded.read_text().split() if recorded.is_file() else []
    if fingerprint in done:
        return
    directory = store_dir(site, study) / "annex" / storage
    datasets.git(
        ds,
        "annex",
        "enableremote",
        storage,
        f"directory={directory}",
        f"keyid+={fingerprint}",
        env=env(site),
    )
    with recorded.open("a") as fh:
        fh.write(fingerprint + "\n")


def _rotate(site: Site, study: str, ds: Path, old: str, remaining: list[dict[str, str]]) -> str:
    number = int(_STORAGE.match(old).group(1)) + 1  # type: ignore[union-attr]
    new = _new_storage(site, study, ds, number, [r["fingerprint"] for r in remaining])
    datasets.git(ds, "annex", "copy", "--all", "--quiet", f"--to={new}", env=env(site))
    datasets.git(ds, "config", f"remote.{SIBLING}.datalad-publish-depends", new)
    datasets.git(ds, "annex", "dead", old, env=env(site))
    old_dir = store_dir(site, study) / "annex" / old
    shutil.rmtree(old_dir)
    old_dir.mkdir()
    (old_dir / ".dead").write_text(f"rotated to {new} on {utc_stamp()}\n")
    _push_annex_branch(site, study, ds)
    return new


def _push_annex_branch(site: Site, study: str, ds: Path) -> None:
    """Publish the remote configuration (the cipher's recipients) to the bare repository."""
    if SIBLING in datasets.remotes(ds) and repository(site, study).exists():
        # the store may hold git-annex branch commits this copy has not merged yet
        datasets.git(ds, "fetch", "--quiet", SIBLING, env=env(site))
        datasets.git(ds, "annex", "merge", env=env(site))
        datasets.git(ds, "push", "--quiet", SIBLING, "git-annex", env=env(site))
