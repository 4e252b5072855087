"""Text output of the admin CLI: tables, the unit tree, a progress bar."""

from __future__ import annotations

import sys
import unicodedata
from typing import TextIO
from collections.abc import Callable, Iterable, Sequence

from ..store.accounts import Account
from ..store.grants import Grant
from ..store.units import Unit


def _width(text: str) -> int:
    # Vietnamese text in NFC is one column a character; combining marks add none.
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF"
               else 1 for c in text)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    data = [[str(c) for c in row] for row in rows]
    widths = [_width(h) for h in headers]
    for row in data:
        widths = [max(w, _width(c)) for w, c in zip(widths, row)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths)).rstrip()

    print(line(headers))
    for row in data:
        print(line(row))


def print_unit_tree(units: list[Unit], level_name: Callable[[int], str]) -> None:
    children: dict[int | None, list[Unit]] = {}
    for u in units:
        children.setdefault(u.parent_id, []).append(u)

    def walk(parent: int | None, prefix: str) -> None:
        kids = children.get(parent, [])
        for i, u in enumerate(kids):
            last = i == len(kids) - 1
            branch = "" if parent is None else ("└── " if last else "├── ")
            print(f"{prefix}{branch}{u.slug}  {u.name}  [{level_name(u.depth)}]")
            walk(u.id, prefix + ("" if parent is None else ("    " if last else "│   ")))

    walk(None, "")


def print_account(a: Account, given: list[Grant], received: list[Grant]) -> None:
    quota = "default" if a.quota_bytes is None else f"{a.quota_bytes} bytes"
    fields = [
        ("Address", a.address),
        ("Name", a.display_name),
        ("Kind", a.kind),
        ("Unit", a.unit_slug or "-"),
        ("Title", a.title or "-"),
        ("State", "enabled" if a.enabled else "disabled"),
        ("Password", "set" if a.password_hash else "not set"),
        ("Quota", quota),
        ("Used", f"{a.used_bytes} bytes"),
        ("Roles", ", ".join(map(str, a.roles)) or "-"),
        ("Aliases", ", ".join(a.aliases) or "-"),
        ("Delegates", "; ".join(f"{g.delegate} ({','.join(g.scopes)})" for g in given) or "-"),
        ("Acts for", "; ".join(f"{g.owner} ({','.join(g.scopes)})" for g in received) or "-"),
        ("Created", a.created_at.strftime("%Y-%m-%d %H:%M")),
    ]
    for k, v in fields:
        print(f"{k + ':':<11}{v}")


def progress_printer(total: int, out: TextIO | None = None) -> Callable[[int], None]:
    """A bar on a terminal; on a pipe, a line every 10 %."""
    out = out or sys.stderr
    tty = out.isatty()
    step = max(1, total // 10)

    def show(done: int) -> None:
        if tty:
            filled = int(30 * done / total)
            out.write(f"\rImporting [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
            if done == total:
                out.write("\n")
            out.flush()
        elif done % step == 0 or done == total:
            out.write(f"imported {done}/{total} ({100 * done // total}%)\n")
            out.flush()

    return show
