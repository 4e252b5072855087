"""Hook point for what must happen when a calendar object is written or removed.

The CalDAV app calls every registered hook after a PUT (or MOVE target) or a
DELETE of a calendar object, *inside the same database transaction*, before
the new body is stored and before anything is acknowledged:

    async def hook(tx, services, actor, owner, calendar, href,
                   old_ics: bytes | None, new_ics: bytes | None) -> HookReply:

- ``tx``: the asyncpg connection of the transaction (use it for every write;
  raise to abort the whole request: a ``DavError`` gives its own reply, any
  other exception a 500, and nothing is stored);
- ``services``: `congvu.services.Services`; ``actor``: the authenticated
  `Account` (may be a delegate of the owner); ``owner``: the
  `congvu.store.calendars.Owner` of the collection; ``calendar``: its
  `congvu.store.calendars.Calendar`; ``href``: the object's name in it;
- ``old_ics``: the stored body before the request (None on create);
  ``new_ics``: the body about to be stored (None on DELETE).

A hook returns None (nothing to change), the bytes of a modified body to
store instead (e.g. with SCHEDULE-STATUS parameters; later hooks see it as
``new_ics``), or a `HookResult` with a modified body and/or a Schedule-Tag
(RFC 6638 §3.2.10) to store with the object and send in the response's
``Schedule-Tag`` header. On DELETE the return value is ignored.

``schedule_reply()`` tells a hook whether the request allows replies to the
organizer (RFC 6638 §8.1 ``Schedule-Reply: F`` turns them off).

A hook that acts only on scheduling objects says so with `scheduling_only`;
while every hook does, a plain PUT skips them (see `plain_objects_skip_hooks`).

Hooks run in registration order. Register with `register_object_hook` at
import time (e.g. in ``congvu.calendar.scheduling``); `congvu.calendar.app`
imports ``congvu.calendar.scheduling`` if it exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["OBJECT_HOOKS", "SCHEDULING_ONLY", "HookResult", "ObjectHook",
           "plain_objects_skip_hooks", "register_object_hook", "run_hooks", "schedule_reply",
           "scheduling_only"]

_SCHEDULE_REPLY: ContextVar[bool] = ContextVar("schedule_reply", default=True)


def schedule_reply() -> bool:
    """False while running the hooks of a request with ``Schedule-Reply: F``."""
    return _SCHEDULE_REPLY.get()


@dataclass(frozen=True)
class HookResult:
    body: bytes | None = None
    schedule_tag: str | None = None


HookReply = bytes | HookResult | None
ObjectHook = Callable[[Any, Any, Any, Any, Any, str, "bytes | None", "bytes | None"],
                      Awaitable[HookReply]]

OBJECT_HOOKS: list[ObjectHook] = []


def register_object_hook(hook: ObjectHook) -> ObjectHook:
    """Add a hook (usable as a decorator); registering twice is a no-op."""
    if hook not in OBJECT_HOOKS:
        OBJECT_HOOKS.append(hook)
    return hook


SCHEDULING_ONLY: set[ObjectHook] = set()


def scheduling_only(hook: ObjectHook) -> ObjectHook:
    """Declare (as a decorator) that ``hook`` returns None at once unless
    ``b"ORGANIZER"`` is in the upper-cased old or new body: it acts on
    scheduling object resources only (RFC 6638 §3.1)."""
    SCHEDULING_ONLY.add(hook)
    return hook


def plain_objects_skip_hooks() -> bool:
    """True when every registered hook is `scheduling_only`: a PUT of an
    object without ORGANIZER over another such object may then store it
    without running them (`congvu.calendar.methods`, one statement)."""
    return all(hook in SCHEDULING_ONLY for hook in OBJECT_HOOKS)


async def run_hooks(
    tx: Any, services: Any, actor: Any, owner: Any, calendar: Any, href: str,
    old_ics: bytes | None, new_ics: bytes | None, *, schedule_reply: bool = True,
) -> tuple[bytes | None, str | None]:
    """Run every hook; return the body to store and the Schedule-Tag (or None).

    ``schedule_reply=False``: the request said ``Schedule-Reply: F`` (RFC 6638 §8.1).
    """
    body = new_ics
    tag: str | None = None
    token = _SCHEDULE_REPLY.set(schedule_reply)
    try:
        for hook in list(OBJECT_HOOKS):
            reply = await hook(tx, services, actor, owner, calendar, href, old_ics, body)
            if new_ics is None or reply is None:
                continue
            if isinstance(reply, HookResult):
                if reply.body is not None:
                    body = reply.body
                if reply.schedule_tag is not None:
                    tag = reply.schedule_tag
            else:
                body = reply
    finally:
        _SCHEDULE_REPLY.reset(token)
    return body, tag
