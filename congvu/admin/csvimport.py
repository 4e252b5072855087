"""Reading the accounts CSV for ``congvu admin import accounts``.

Columns (header row required, UTF-8, comma-separated, a BOM is accepted):

    address,name,unit,title,password,quota,roles,kind

Only ``address`` and ``name`` are required. ``password`` may be empty (the
account then cannot log in until ``account passwd``). ``quota`` like ``2G``.
``roles`` separated by ``;`` (``admin;schedule-manager:so-tttt``). ``kind``
is person (default), room or resource.
"""

from __future__ import annotations

import csv
import io

from ..directory.service import BadRows, NewAccount
from ..store.errors import Invalid

COLUMNS = ("address", "name", "unit", "title", "password", "quota", "roles", "kind")
REQUIRED = ("address", "name")


def read_accounts_csv(path: str) -> list[tuple[int, NewAccount]]:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(f"{path} is not UTF-8 text (byte {exc.start})") from None
    return parse_accounts_csv(text, path)


def parse_accounts_csv(text: str, name: str = "CSV") -> list[tuple[int, NewAccount]]:
    from .commands import UsageError, parse_size

    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise Invalid(f"{name} is empty") from None
    except csv.Error as exc:
        raise Invalid(f"{name} is not a readable CSV file: {exc}") from None
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise Invalid(f"{name}: unknown column(s) {', '.join(unknown)}; "
                      f"columns are {','.join(COLUMNS)}")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise Invalid(f"{name}: missing column(s) {', '.join(missing)}")
    rows: list[tuple[int, NewAccount]] = []
    problems: list[str] = []
    try:
        for record in reader:
            line = reader.line_num
            if not any(field.strip() for field in record):
                continue
            if len(record) != len(header):
                problems.append(f"line {line}: {len(record)} fields, expected {len(header)}")
                continue
            row = dict(zip(header, record))
            try:
                quota = parse_size(row["quota"]) if row.get("quota", "").strip() else None
            except UsageError as exc:
                problems.append(f"line {line}: {exc}")
                continue
            rows.append((line, NewAccount(
                address=row["address"],
                display_name=row["name"],
                unit=row.get("unit", "").strip() or None,
                title=row.get("title", ""),
                password=row.get("password") or None,
                kind=row.get("kind", "").strip() or "person",
                quota_bytes=quota,
                roles=tuple(r.strip() for r in row.get("roles", "").split(";") if r.strip()),
            )))
    except csv.Error as exc:
        raise Invalid(f"{name} is not a readable CSV file (line {reader.line_num}): {exc}") from None
    if problems:
        raise BadRows(problems)
    if not rows:
        raise Invalid(f"{name} has no account rows")
    return rows
