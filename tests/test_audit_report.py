"""The HTML report of a release audit: self-contained, escaped, honest about what it omits."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from windl.release.report import MAX_FINDINGS, write_audit_report

DATA_URI = "data:image/png;base64,"
SCRIPT = '<script>alert("x")</script> & more'


def _png(path: Path) -> Path:
    fig = Figure(figsize=(2, 1), dpi=40)
    FigureCanvasAgg(fig)
    fig.add_subplot().imshow([[0, 1], [1, 0]], cmap="gray")
    fig.savefig(path, format="png")
    return path


def _audit(*, passed: bool, mosaic: Path | None, findings: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "release": "/data/releases/demo-external-1.0.0",
        "study": "demo",
        "scope": "external",
        "version": "1.0.0",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "audited_at": "2026-11-25T14:00:00Z",
        "windl_version": "0.1.0",
        "policy": {"options": ["retain_modified_dates", "clean_descriptors"]},
        "passed": passed,
        "thresholds": {"face_zero_fraction": 0.95},
        "checks": [
            {
                "name": "identifiers",
                "title": "No original identifier in any file, name or header",
                "passed": not findings,
                "checked": 120,
                "findings": findings,
            },
            {
                "name": "deface",
                "title": "Every face is removed",
                "passed": passed,
                "checked": 2,
                "findings": [],
            },
        ],
        "deface": [
            {
                "path": "sub-ab12CD34/anat/sub-ab12CD34_T1w.nii.gz",
                "face_zero_fraction": 0.991,
                "passed": True,
                "mosaic_png": str(mosaic) if mosaic else None,
            },
            {
                "path": "sub-ef56GH78/anat/sub-ef56GH78_T2w.nii.gz",
                "face_zero_fraction": 0.9 if not passed else 0.97,
                "passed": passed,
                "mosaic_png": None,
            },
        ],
        "participants": {"count": 3, "sessions": 4},
        "files": {
            "count": 57,
            "bytes": 123456789,
            "by_kind": {"nifti": 10, "sidecar": 12, "tsv": 8, "ephys": 3, "dicom": 0, "other": 24},
        },
    }


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]


def test_report_embeds_mosaic_and_names_every_finding(tmp_path: Path) -> None:
    mosaic = _png(tmp_path / "mosaic.png")
    findings = [
        {
            "path": "sub-ab12CD34/anat/sub-ab12CD34_T1w.json",
            "message": "holds the original PatientName of a participant",
        },
        {"path": "sub-ab12CD34/ses-1&2/scans.tsv", "message": SCRIPT},
    ]
    out = write_audit_report(
        _audit(passed=False, mosaic=mosaic, findings=findings), tmp_path / "report" / "audit.html"
    )

    assert out == tmp_path / "report" / "audit.html"
    text = out.read_text(encoding="utf-8")
    assert "FAILED" in text
    assert "PASSED" not in text
    assert "Release audit: demo / external 1.0.0" in text
    for finding in findings:
        assert html.escape(finding["path"]) in text
        assert html.escape(finding["message"]) in text
    assert "<script" not in text
    assert "&lt;script&gt;" in text
    # the mosaic itself, byte for byte, plus the two plots
    images = _images(text)
    assert mosaic.read_bytes() in images
    assert len(images) == 3
    assert all(image.startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    # summary
    assert "123.5 MB" in text
    assert "retain_modified_dates" in text
    assert "99.1 %" in text
    # self-contained, and nothing left behind but the report
    assert "http://" not in text and "https://" not in text
    assert sorted(p.name for p in out.parent.iterdir()) == ["audit.html"]


def test_report_of_passed_audit_says_passed(tmp_path: Path) -> None:
    out = write_audit_report(
        _audit(passed=True, mosaic=_png(tmp_path / "m.png"), findings=[]), tmp_path / "a.html"
    )

    text = out.read_text(encoding="utf-8")
    assert "PASSED" in text
    assert "FAILED" not in text
    assert ">FAIL<" not in text
    assert "No findings." in text


def test_missing_mosaic_is_reported_not_fatal(tmp_path: Path) -> None:
    audit = _audit(passed=True, mosaic=tmp_path / "gone.png", findings=[])

    text = write_audit_report(audit, tmp_path / "a.html").read_text(encoding="utf-8")

    # once for the missing file, once for the image without a mosaic
    assert text.count("(mosaic not available)") == 2
    assert len(_images(text)) == 2  # the plots only


def test_report_without_defaced_images_skips_the_face_plot(tmp_path: Path) -> None:
    audit = _audit(passed=True, mosaic=None, findings=[])
    audit["deface"] = []

    text = write_audit_report(audit, tmp_path / "a.html").read_text(encoding="utf-8")

    assert "Defacing" in text
    assert len(_images(text)) == 1  # files by kind only


def test_long_finding_lists_are_truncated_with_count(tmp_path: Path) -> None:
    findings = [{"path": f"sub-x/file-{i:04d}.json", "message": "bad"} for i in range(250)]

    text = write_audit_report(
        _audit(passed=False, mosaic=None, findings=findings), tmp_path / "a.html"
    ).read_text(encoding="utf-8")

    assert f"sub-x/file-{MAX_FINDINGS - 1:04d}.json" in text
    assert f"sub-x/file-{MAX_FINDINGS:04d}.json" not in text
    assert f"{250 - MAX_FINDINGS} more not shown" in text


def test_report_replaces_an_older_report(tmp_path: Path) -> None:
    target = tmp_path / "a.html"
    target.write_text("old", encoding="utf-8")

    write_audit_report(_audit(passed=True, mosaic=None, findings=[]), target)

    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html"]


def _detector(verdict: str, picture: Path | None, accepted: bool = False) -> dict[str, Any]:
    seen = {"found": True, "strongest": {"frontal": 150, "profile": 90}, "faces": []}
    unseen = {"found": False, "strongest": {"frontal": 40, "profile": 6}, "faces": []}
    return {
        "settings": {"min_neighbours": {"frontal": 120, "profile": 45}},
        "verdict": verdict,
        "accepted": accepted,
        "before": unseen if verdict == "not-judged" else seen,
        "after": seen if verdict == "face-found" else unseen,
        "picture_png": str(picture) if picture else None,
    }


def test_report_shows_the_face_detector_with_its_pictures(tmp_path: Path) -> None:
    """Each image's independent check: verdict, strengths against thresholds, the picture."""
    picture = _png(tmp_path / "faces.png")
    audit = _audit(passed=False, mosaic=None, findings=[])
    audit["deface"][0]["face_detector"] = _detector("no-face", picture)
    audit["deface"][1]["face_detector"] = _detector("face-found", None)
    text = write_audit_report(audit, tmp_path / "a.html").read_text()
    assert picture.read_bytes() in _images(text)
    assert "Face detector (independent of the registration)" in text
    assert "face found before defacing, none after" in text
    assert "a face is still found on the released image" in text
    assert "frontal (needs 120)" in text and "profile (needs 45)" in text
    assert "(pictures not available)" in text


def test_report_says_not_judged_and_whether_the_study_accepted_it(tmp_path: Path) -> None:
    audit = _audit(passed=True, mosaic=None, findings=[])
    audit["deface"][0]["face_detector"] = _detector("not-judged", None)
    audit["deface"][1]["face_detector"] = _detector("not-judged", None, accepted=True)
    text = write_audit_report(audit, tmp_path / "a.html").read_text()
    assert text.count("NOT JUDGED") == 2
    assert text.count("accepted by the study") == 1
    assert '<span class="verdict fail">NOT JUDGED' in text
