"""``congvu admin dkim generate``, ``dkim list``, ``dns`` and ``queue list`` through the CLI."""

from __future__ import annotations

import re

from tests.admin.test_cli import fails, ok


def test_dkim_generate_prints_the_txt_record(cli) -> None:  # type: ignore[no-untyped-def]
    ok(cli("domain", "add", "hanoi.gov.vn"))
    out = ok(cli("dkim", "generate", "hanoi.gov.vn", "--selector", "s2026"))
    assert "DKIM key s2026 created for hanoi.gov.vn" in out
    record = out.splitlines()[1]
    assert record.startswith('s2026._domainkey.hanoi.gov.vn. IN TXT "v=DKIM1; k=rsa; p=MII')
    # RFC 1035 §3.3: no character-string longer than 255 octets
    assert all(len(s) <= 255 for s in re.findall(r'"([^"]*)"', record))
    assert "s2026\trsa-sha256\tactive" in ok(cli("dkim", "list", "hanoi.gov.vn"))
    fails(cli("dkim", "generate", "hanoi.gov.vn", "--selector", "s2026"), "already exists")
    fails(cli("dkim", "generate", "other.vn"), "not served")
    audit = ok(cli("audit", "--action", "dkim"))
    assert "dkim.generate" in audit and "selector=s2026" in audit


def test_dns_prints_mx_spf_dkim_dmarc(cli) -> None:
    ok(cli("domain", "add", "hanoi.gov.vn"))
    out = ok(cli("dns", "hanoi.gov.vn"))
    assert "no DKIM key yet" in out
    ok(cli("dkim", "generate", "hanoi.gov.vn", "--selector", "k1"))
    lines = ok(cli("dns", "hanoi.gov.vn")).splitlines()
    assert re.match(r"hanoi\.gov\.vn\.\s+IN MX\s+10 localhost\.$", lines[0])
    assert re.match(r'hanoi\.gov\.vn\.\s+IN TXT "v=spf1 mx -all"$', lines[1])
    assert re.match(r'k1\._domainkey\.hanoi\.gov\.vn\.\s+IN TXT "v=DKIM1; k=rsa; p=', lines[2])
    assert re.match(r'_dmarc\.hanoi\.gov\.vn\.\s+IN TXT "v=DMARC1; p=quarantine;', lines[3])
    fails(cli("dns", "nowhere.vn"), "not served")


def test_queue_list(cli) -> None:
    assert "the queue is empty" in ok(cli("queue", "list"))
