"""Shifting DICOM dates by a per-patient offset (Retain Longitudinal Modified Dates).

Every DA and DT value of one patient moves by the same whole number of days,
so intervals between studies stay exact. Times of day are not changed. A value
that cannot be parsed is not guessed at: the caller replaces it with a dummy.
"""

from __future__ import annotations

import datetime as dt
import re

_DA = re.compile(r"^(\d{4})\.?(\d{2})\.?(\d{2})$")
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{0,6}(?:\.\d{1,6})?)?([+-]\d{4})?$")


def shift_da(value: str, days: int) -> str | None:
    """Shift one DA value (``YYYYMMDD`` or the old ``YYYY.MM.DD``, or a range ``A-B``)."""
    value = value.strip()
    if not value:
        return value
    if "-" in value:
        parts = value.split("-")
        if len(parts) != 2:
            return None
        shifted = [shift_da(p, days) if p else "" for p in parts]
        if any(s is None for s in shifted):
            return None
        return "-".join(s for s in shifted if s is not None)
    m = _DA.match(value)
    if not m:
        return None
    try:
        d = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        d += dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def shift_dt(value: str, days: int) -> str | None:
    """Shift one DT value, keeping its precision, time of day and UTC offset."""
    value = value.strip()
    if not value:
        return value
    m = _DT.match(value)
    if not m:
        return None
    year, month, day, rest, tz = m.group(1), m.group(2), m.group(3), m.group(4) or "", m.group(5) or ""
    try:
        if day is not None and month is not None:
            d = dt.date(int(year), int(month), int(day)) + dt.timedelta(days=days)
            return f"{d.year:04d}{d.month:02d}{d.day:02d}{rest}{tz}"
        if month is not None:
            d = dt.date(int(year), int(month), 15) + dt.timedelta(days=days)
            return f"{d.year:04d}{d.month:02d}{rest}{tz}"
        d = dt.date(int(year), 7, 1) + dt.timedelta(days=days)
        return f"{d.year:04d}{rest}{tz}"
    except (ValueError, OverflowError):
        return None


def shift_value(vr: str, value: str, days: int) -> str | None:
    """Shift a possibly multi-valued (backslash-separated) DA or DT string."""
    fn = shift_da if vr == "DA" else shift_dt
    out = []
    for part in value.split("\\"):
        s = fn(part, days)
        if s is None:
            return None
        out.append(s)
    return "\\".join(out)
