"""Search folding for Vietnamese (and any other) text.

IMAP SEARCH, webmail search and the directory all compare *folded* text so
that a search for "ha noi" finds "Hà Nội" and "ĐÀ NẴNG" is found by
"da nang".  The embedded PostgreSQL ships no ``unaccent`` extension
(DESIGN.md §5), so folding happens in Python: once at delivery for the
stored search text, and once per search key.

Folding is: case folding, Unicode NFD, dropping every combining mark
(general category ``Mn`` — the Vietnamese tone marks and the horn/breve/
circumflex), mapping đ/Đ (which do not decompose) to ``d``, and collapsing
each run of whitespace to one space, with none at either end.

The same function must be applied to the stored text and to the search
key; substring matching on the two then gives RFC 3501 §6.4.4 semantics
("case-insensitive substring"), extended to diacritics.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold", "fold_lines"]


class _FoldTable(dict[int, "int | str | None"]):
    """``str.translate`` table filled on demand.

    Precomputing the ~2,000 ``Mn`` code points would cost an import-time scan
    of the whole code space; instead each code point is classified the first
    time it is seen and the answer is cached (``dict.__missing__``), so the
    steady state is one C-level dict lookup per character.
    """

    def __missing__(self, cp: int) -> int | str | None:
        ch = chr(cp)
        # combining marks are deleted, everything else kept
        value: int | str | None = None if unicodedata.category(ch) == "Mn" else cp
        self[cp] = value
        return value


# Combining Diacritical Marks block: every Vietnamese tone and vowel mark.
# Removing them with one C-level regex pass is ~3x faster than translate();
# the table only runs when something non-ASCII is left over.
_COMMON_MARKS = re.compile("[\u0300-\u036f]+")

_TABLE = _FoldTable()
# Letters that carry a stroke rather than a combining mark do not decompose
# under NFD; map them explicitly.  (Casefolding runs first, so only the
# lower-case forms can occur, but the upper-case ones are cheap to add.)
_TABLE.update(
    {
        ord("đ"): ord("d"),
        ord("Đ"): ord("d"),
        ord("ð"): ord("d"),  # Icelandic eth, often mistyped for đ
        ord("Ð"): ord("d"),  # U+00D0, looks like Đ (U+0110) and is confused with it
    }
)


def fold(text: str) -> str:
    """Return *text* folded for diacritic- and case-insensitive search.

    >>> fold("Hà Nội")
    'ha noi'
    >>> fold("  ĐÀ   NẴNG ")
    'da nang'
    """
    if text.isascii():
        # Fast path: most header text and much body text is plain ASCII.
        return " ".join(text.lower().split())
    # Casefold first: it can *produce* combining marks ("İ" -> "i̇"), which
    # NFD + the table then remove.
    text = unicodedata.normalize("NFD", text.casefold())
    text = _COMMON_MARKS.sub("", text).replace("đ", "d")
    if not text.isascii():
        text = text.translate(_TABLE)
    return " ".join(text.split())


def fold_lines(text: str) -> str:
    """Fold each line of *text* separately, dropping lines that fold to nothing.

    Used for ``search_headers`` where one header field per line must be kept
    so a search can be anchored to a field name.
    """
    out = [f for f in (fold(line) for line in text.splitlines()) if f]
    return "\n".join(out)
