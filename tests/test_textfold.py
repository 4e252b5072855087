"""Tests for congvu.textfold: Vietnamese-friendly search folding."""

from __future__ import annotations

import unicodedata

import pytest

from congvu.textfold import fold, fold_lines


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Hà Nội", "ha noi"),
        ("ĐÀ NẴNG", "da nang"),
        ("đường Lê Duẩn", "duong le duan"),
        ("Thành phố Hồ Chí Minh", "thanh pho ho chi minh"),
        ("Ủy ban nhân dân", "uy ban nhan dan"),
        ("Ứng dụng Ưu tiên Ơn", "ung dung uu tien on"),
        ("  nhiều   khoảng\ttrắng\r\n và dòng  ", "nhieu khoang trang va dong"),
        ("PLAIN ascii Text", "plain ascii text"),
        ("", ""),
        ("   ", ""),
        ("Straße", "strasse"),  # casefold, not lower
        ("İstanbul", "istanbul"),  # casefold produces a combining dot: dropped
        ("Ðà Lạt", "da lat"),  # U+00D0 mistyped for U+0110
        ("Crème brûlée", "creme brulee"),
        ("日本語", "日本語"),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_fold_is_form_independent() -> None:
    # NFC and NFD spellings (and windows-1258's combining tones) fold alike
    nfc = "Nguyễn Thị Hương"
    nfd = unicodedata.normalize("NFD", nfc)
    assert fold(nfc) == fold(nfd) == "nguyen thi huong"


def test_fold_is_idempotent() -> None:
    for text in ("Hà Nội", "ĐÀ NẴNG", "x  y", "Straße"):
        assert fold(fold(text)) == fold(text)


def test_substring_search_semantics() -> None:
    stored = fold("Công văn số 12/UBND-VP về việc tổ chức họp tại Hà Nội")
    assert fold("ha noi") in stored
    assert fold("HÀ NỘI") in stored
    assert fold("cong van so") in stored
    assert fold("hà nam") not in stored


def test_fold_lines_keeps_one_line_per_field() -> None:
    assert fold_lines("Subject: Hà Nội\n\nFrom:  Đỗ  Văn A \n") == "subject: ha noi\nfrom: do van a"


def test_large_text_is_fast_enough() -> None:
    # not a benchmark; guards against an accidental per-character Python loop
    text = "Ủy ban nhân dân thành phố Hà Nội gửi công văn " * 20_000  # ~1 MB
    assert fold(text).startswith("uy ban nhan dan")
