"""The IMAP state table (RFC 3501 §3): state names and the handler gate.

Each ``do_<command>`` handler declares where it may run with
:func:`allowed_in`; :class:`.session.Session` refuses it elsewhere with
``BAD`` before it runs. Kept apart so the ``commands_*`` mixins and the
session can both import it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["ANY_STATE", "AUTHENTICATED", "AUTH_STATES", "LOGOUT", "NOT_AUTHENTICATED",
           "SELECTED", "allowed_in"]

NOT_AUTHENTICATED = "not-authenticated"
AUTHENTICATED = "authenticated"
SELECTED = "selected"
LOGOUT = "logout"

ANY_STATE = (NOT_AUTHENTICATED, AUTHENTICATED, SELECTED)
AUTH_STATES = (AUTHENTICATED, SELECTED)


def allowed_in(*states: str) -> Callable[[Any], Any]:
    """Declare the states a ``do_<command>`` handler runs in."""

    def mark(fn: Any) -> Any:
        fn.imap_states = frozenset(states)
        return fn

    return mark
