"""The aiosmtpd internals :class:`SmtpConnection` relies on are still there.

pyproject pins aiosmtpd below 1.5; when the pin moves, this test says which
internal went away before any protocol test fails in a confusing way.
"""

from __future__ import annotations

import asyncio
import inspect

import aiosmtpd
from aiosmtpd.smtp import SMTP

from congvu.mailserver.smtp.service import SmtpServer

METHODS = ("_handle_client", "_set_rset_state", "_set_post_data_state", "_call_handler_hook",
           "_create_envelope", "_getaddr", "challenge_auth", "check_helo_needed", "push")


def test_methods_we_override_or_call_exist() -> None:
    assert aiosmtpd.__version__.startswith("1.4.")
    for name in METHODS:
        assert inspect.isfunction(getattr(SMTP, name, None)), name
    assert inspect.iscoroutinefunction(SMTP._handle_client)
    assert inspect.iscoroutinefunction(SMTP._call_handler_hook)
    assert list(inspect.signature(SMTP._getaddr).parameters) == ["self", "arg"]


async def test_attributes_we_read_exist(smtp: SmtpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", smtp.ports["mx"])
    try:
        assert (await reader.readline()).startswith(b"220 ")
        [conn] = list(smtp.connections)
        for name in ("_tls_protocol", "_original_transport", "_reader", "transport", "session"):
            assert hasattr(conn, name), name
        # DATA puts pipelined bytes back into the stream reader's buffer
        assert isinstance(conn._reader, asyncio.StreamReader)
        assert isinstance(conn._reader._buffer, bytearray)
    finally:
        writer.close()
