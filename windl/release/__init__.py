"""Releases: fresh, de-identified datasets per study and scope, and the audit that gates them."""

from windl.release.audit import AuditResult, audit_release, stored_audit
from windl.release.build import (
    ReleaseRefused,
    ReleaseResult,
    ReleaseSettings,
    assemble_release,
    build_release,
    current_dua,
    release_path,
)

__all__ = [
    "AuditResult",
    "ReleaseRefused",
    "ReleaseResult",
    "ReleaseSettings",
    "assemble_release",
    "audit_release",
    "build_release",
    "current_dua",
    "release_path",
    "stored_audit",
]
