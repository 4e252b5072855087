"""A raw IMAP client for transcript tests: send exact bytes, read exact responses."""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
import zlib

from tests.conftest import PASSWORD

_LITERAL = re.compile(rb"\{(\d+)\}\r\n\Z")


class Raw:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.greeting = b""
        self._n = 0
        self._inflate: zlib._Decompress | None = None
        self._deflate: zlib._Compress | None = None
        self._buf = b""

    @classmethod
    async def connect(cls, port: int, *, tls: bool = False) -> Raw:
        ctx = None
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        self = cls(reader, writer)
        self.greeting = await self.line()
        return self

    async def login(self, user: str, password: str = PASSWORD) -> list[bytes]:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return await self.cmd(f"AUTHENTICATE PLAIN {token}")

    async def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if self._deflate is not None:
            data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        self.writer.write(data)
        await self.writer.drain()

    async def _fill(self) -> None:
        chunk = await asyncio.wait_for(self.reader.read(65536), 30)
        if not chunk:
            raise ConnectionError("server closed the connection")
        if self._inflate is not None:
            chunk = self._inflate.decompress(chunk)
        self._buf += chunk

    async def line(self) -> bytes:
        """One response line, literals included inline."""
        out = b""
        while True:
            while b"\r\n" not in self._buf:
                await self._fill()
            i = self._buf.index(b"\r\n") + 2
            part, self._buf = self._buf[:i], self._buf[i:]
            out += part
            m = _LITERAL.search(part)
            if not m:
                return out
            n = int(m.group(1))
            while len(self._buf) < n:
                await self._fill()
            out += self._buf[:n]
            self._buf = self._buf[n:]

    def tag(self) -> str:
        self._n += 1
        return f"t{self._n}"

    async def cmd(self, text: str | bytes, tag: str | None = None) -> list[bytes]:
        """Send ``tag text`` and return every line up to and including the tagged one."""
        tag = tag or self.tag()
        data = text.encode("utf-8") if isinstance(text, str) else text
        await self.send(tag.encode() + b" " + data + b"\r\n")
        return await self.until(tag)

    async def until(self, tag: str) -> list[bytes]:
        lines = []
        while True:
            line = await self.line()
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    def start_compress(self) -> None:
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._inflate = zlib.decompressobj(-15)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except Exception:
            pass


def tagged(lines: list[bytes]) -> bytes:
    return lines[-1]


def ok(lines: list[bytes]) -> bool:
    return lines[-1].split(b" ", 2)[1] == b"OK"
