"""Errors raised by repositories; protocol code turns them into its own replies."""

from __future__ import annotations


class StoreError(Exception):
    """Base class: the message is one line, fit to show a user."""


class NotFound(StoreError):
    """The named thing does not exist."""


class Conflict(StoreError):
    """The change would collide with something that exists (a duplicate, a cycle)."""


class Forbidden(StoreError):
    """The acting principal may not do this."""


class Invalid(StoreError):
    """The input is malformed."""
