"""Serve FETCH BODY[section] by slicing the stored bytes (RFC 3501 §6.4.5).

The part map made at delivery (:func:`mime_structure.build_part_map`, kept
as JSON beside the message) says where each part's header and body lie, so
no section needs the message to be parsed again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["parse_section", "render_header_fields", "section_bytes"]

_SECTION = re.compile(r"^((?:[1-9][0-9]*)(?:\.[1-9][0-9]*)*)?(?:\.?)(.*)$", re.DOTALL)
_FIELD_LIST = re.compile(r"^(HEADER\.FIELDS(?:\.NOT)?)\s*\((.*)\)\s*$", re.DOTALL | re.IGNORECASE)


def parse_section(section: str) -> tuple[str, str, list[str] | None]:
    """Split ``"1.2.HEADER.FIELDS (From To)"`` into ("1.2", "HEADER.FIELDS", ["from", "to"])."""
    m = _SECTION.match(section.strip())
    assert m is not None  # the pattern matches every string
    part, spec = m.group(1) or "", m.group(2).strip()
    fields: list[str] | None = None
    fm = _FIELD_LIST.match(spec)
    if fm:
        spec = fm.group(1)
        fields = [f.strip('"').lower() for f in fm.group(2).split() if f.strip('"')]
    return part, spec.upper(), fields


def render_header_fields(header: bytes, names: Iterable[str], exclude: bool = False) -> bytes:
    """The fields of a header block named in *names* (or, with *exclude*, not named).

    RFC 3501 §6.4.5 HEADER.FIELDS / HEADER.FIELDS.NOT: names compare
    case-insensitively, fields keep their original bytes (folding included)
    and order, and the result ends with the blank line.
    """
    wanted = {n.lower() for n in names}
    out: list[bytes] = []
    keep = False
    # split on LF only: a stray CR inside a field is not a line end
    lines = [line + b"\n" for line in header.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    for line in lines:
        if not line:
            break
        if line in (b"\r\n", b"\n"):
            break  # the terminating blank line
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        colon = line.find(b":")
        if colon <= 0:
            keep = False
            continue
        name = line[:colon].strip().decode("latin-1").lower()
        keep = (name in wanted) != exclude
        if keep:
            out.append(line)
    if out and not out[-1].endswith(b"\n"):
        out[-1] += b"\r\n"
    out.append(b"\r\n")
    return b"".join(out)


def _index(part_map: Sequence[Sequence[object]]) -> dict[str, Sequence[object]]:
    return {str(entry[0]): entry for entry in part_map}


def section_bytes(
    raw: bytes,
    part_map: Sequence[Sequence[object]],
    section: str,
    fields: Iterable[str] | None = None,
) -> bytes:
    """The bytes of BODY[*section*] of the message *raw* (RFC 3501 §6.4.5).

    *section* is the text between the brackets, e.g. ``""``, ``"HEADER"``,
    ``"TEXT"``, ``"1.2"``, ``"1.2.MIME"``, ``"2.HEADER.FIELDS (From Subject)"``;
    the field names may instead be passed as *fields*.  A section that does
    not exist in the message yields ``b""``.  Partial ranges (``<0.100>``)
    are the caller's business.
    """
    part, spec, parsed_fields = parse_section(section)
    names: list[str] = list(fields) if fields is not None else (parsed_fields or [])
    index = _index(part_map)
    entry = index.get(part)
    if entry is None:
        return b""
    hs, bs, be = int(entry[1]), int(entry[2]), int(entry[3])  # type: ignore[call-overload]
    if part == "":
        if spec == "":
            return raw
        header, text = raw[hs:bs], raw[bs:be]
    else:
        if spec == "":
            return raw[bs:be]
        if spec == "MIME":
            # the MIME header of the part; for part 1 of a non-multipart
            # message that is the message header
            return raw[hs:bs]
        if len(entry) < 5:
            return b""  # HEADER/TEXT only of message/rfc822 parts
        ibs = int(entry[4])  # type: ignore[call-overload]
        header, text = raw[bs:ibs], raw[ibs:be]
    if spec == "HEADER":
        return header
    if spec == "TEXT":
        return text
    if spec == "HEADER.FIELDS":
        return render_header_fields(header, names)
    if spec == "HEADER.FIELDS.NOT":
        return render_header_fields(header, names, exclude=True)
    return b""
