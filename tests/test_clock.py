"""The build date: ``SOURCE_DATE_EPOCH`` decides it when set (reproducible builds)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from windl.clock import build_date, today, utc_stamp
from windl.errors import BadInput


def test_build_date_is_today_without_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert build_date() == today() == dt.date.today().isoformat()


def test_source_date_epoch_sets_the_build_date_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # 2023-11-14T22:13:20Z
    assert build_date() == "2023-11-14"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert build_date() == "1970-01-01"


@pytest.mark.parametrize("value", ["yesterday", "-5", "1.5", "9" * 40])
def test_a_malformed_source_date_epoch_is_bad_input(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    with pytest.raises(BadInput, match="SOURCE_DATE_EPOCH"):
        build_date()


def test_utc_stamp_is_iso_8601_to_the_second() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_stamp())
