"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import pytest

from congvu.mailserver.imap.mutf7 import MUTF7Error, decode, encode

ROUND_TRIP = [
    ("INBOX", "INBOX"),
    ("Sent Items", "Sent Items"),
    ("A&B", "A&-B"),
    ("&", "&-"),
    # RFC 3501 §5.1.3 example
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("Hộp thư đã gửi", "H&Htk-p th&AbA- &AREA4w- g&Hu0-i"),
    ("Lưu trữ/Công văn đến", "L&AbA-u tr&Hu8-/C&APQ-ng v&AQM-n &AREevw-n"),
    ("Thư rác", "Th&AbA- r&AOE-c"),
    ("x😀y", "x&2D3eAA-y"),  # astral plane: a UTF-16 surrogate pair
]


@pytest.mark.parametrize(("text", "wire"), ROUND_TRIP)
def test_round_trip(text: str, wire: str) -> None:
    assert encode(text) == wire
    assert decode(wire) == text
    assert decode(wire.encode("ascii")) == text


@pytest.mark.parametrize(
    "bad",
    [
        "&",  # unterminated shift
        "&ZeVnLIqe",  # unterminated shift
        "&Jjo!",  # "!" is not base64, no "-"
        "&AGE-",  # "a" must not be encoded
        "&U,BTFw-&ZeVnLIqe-",  # two adjacent runs: not canonical
        "&2D0-",  # lone surrogate
        "&AO-",  # odd number of bytes
        "&AOF-",  # non-zero padding bits
        "&AOE=-",  # padding not allowed
        "&AO/h-",  # "/" instead of ","
        "tab\there",  # control character
    ],
)
def test_invalid_rejected(bad: str) -> None:
    with pytest.raises(MUTF7Error):
        decode(bad)


def test_raw_8bit_rejected() -> None:
    with pytest.raises(MUTF7Error):
        decode("Hộp thư".encode())


def test_error_is_value_error() -> None:
    assert issubclass(MUTF7Error, ValueError)
