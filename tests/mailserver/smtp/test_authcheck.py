"""Inbound SPF, DKIM and DMARC on the MX, all DNS through the injected resolver."""

from __future__ import annotations

import smtplib

import authres
import pytest

from congvu.directory.service import Directory
from congvu.mailserver.smtp.authcheck import organizational_domain, parse_dmarc
from congvu.mailserver.smtp.dkimsign import generate_key, sign
from congvu.mailserver.smtp.dnsresolve import DnsTempError, StaticResolver
from congvu.mailserver.smtp.service import SmtpServer, start_smtp
from congvu.services import Services

from .conftest import AN, DOMAIN, client, inbox, message

SENDER = "vanthu@example.org"


def mx_send(port: int, data: bytes, sender: str = SENDER) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("mail.example.org")
        s.mail(sender)
        s.rcpt(AN)
        try:
            code, msg = s.data(data)
        except smtplib.SMTPDataError as exc:
            code, msg = exc.smtp_code, exc.smtp_error
        return code, msg.decode()


def results(raw: bytes) -> dict[str, str]:
    head = raw.split(b"\r\n\r\n")[0].decode()
    field = next(f for f in head.replace("\r\n\t", " ").split("\r\n")
                 if f.startswith("Authentication-Results:"))
    parsed = authres.AuthenticationResultsHeader.parse(field)  # RFC 8601 syntax
    assert parsed.authserv_id == "mail.hanoi.gov.vn"
    return {r.method: r.result for r in parsed.results}


def signed(resolver: StaticResolver, domain: str = "example.org", body: str = "Nội dung\r\n",
           sender: str = SENDER) -> bytes:
    pem, pub = generate_key(1024)
    resolver.add(f"sel._domainkey.{domain}", "TXT", f"v=DKIM1; k=rsa; p={pub}")
    return sign(message(sender=sender, body=body), domain, "sel", pem)


async def test_spf_pass_dkim_pass_dmarc_pass(smtp: SmtpServer, resolver: StaticResolver,
                                             services: Services) -> None:
    resolver.add("example.org", "TXT", "v=spf1 ip4:127.0.0.0/8 -all")
    resolver.add("_dmarc.example.org", "TXT", "v=DMARC1; p=reject")
    code, _ = await client(lambda: mx_send(smtp.ports["mx"], signed(resolver)))
    assert code == 250
    raw = (await inbox(services, AN))[0]["raw"]
    assert results(raw) == {"spf": "pass", "dkim": "pass", "dmarc": "pass"}
    assert b"header.d=example.org header.s=sel" in raw
    assert ("example.org", "TXT") in resolver.queries  # pyspf asked through our resolver


async def test_dmarc_reject_refuses_spoofed_mail(smtp: SmtpServer, resolver: StaticResolver,
                                                 services: Services) -> None:
    resolver.add("example.org", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    resolver.add("_dmarc.example.org", "TXT", "v=DMARC1; p=reject; pct=100")
    code, msg = await client(lambda: mx_send(smtp.ports["mx"], message(sender=SENDER)))
    assert (code, msg) == (550, "5.7.1 Message rejected by the sender domain's DMARC policy")
    assert await inbox(services, AN) == []


async def test_dmarc_reject_to_junk_when_configured(services: Services, org: Directory) -> None:
    resolver = StaticResolver({
        ("example.org", "TXT"): ["v=spf1 -all"],
        ("_dmarc.example.org", "TXT"): ["v=DMARC1; p=reject"]})
    srv = await start_smtp(services, mx_port=0, resolver=resolver, queue=False,
                           dmarc_reject="junk")
    try:
        # a broken signature from another domain does not align either
        data = signed(resolver, domain="other.example")
        data = data.replace("Nội dung".encode(), b"Noi dung")  # body changed in transit
        code, _ = await client(lambda: mx_send(srv.ports["mx"], data))
        assert code == 250
    finally:
        await srv.stop()
    assert await inbox(services, AN) == []
    [row] = await inbox(services, AN, "Junk")
    assert results(row["raw"]) == {"spf": "fail", "dkim": "fail", "dmarc": "fail"}


async def test_quarantine_goes_to_junk_and_none_is_delivered(
        smtp: SmtpServer, resolver: StaticResolver, services: Services) -> None:
    resolver.add("example.org", "TXT", "v=spf1 -all")
    resolver.add("_dmarc.example.org", "TXT", "v=DMARC1; p=quarantine")
    await client(lambda: mx_send(smtp.ports["mx"], message(sender=SENDER)))
    assert len(await inbox(services, AN, "Junk")) == 1
    # no DMARC record at all: the message is delivered whatever SPF says
    await client(lambda: mx_send(smtp.ports["mx"], message(sender="a@nodmarc.example"),
                                 sender="a@nodmarc.example"))
    [row] = await inbox(services, AN)
    assert results(row["raw"]) == {"spf": "none", "dkim": "none", "dmarc": "none"}


async def test_relaxed_alignment_uses_the_organizational_domain(
        smtp: SmtpServer, resolver: StaticResolver, services: Services) -> None:
    # SPF passes for bounce.example.gov.vn; From is example.gov.vn: aligned (relaxed)
    resolver.add("bounce.example.gov.vn", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    resolver.add("_dmarc.example.gov.vn", "TXT", "v=DMARC1; p=reject; aspf=r")
    code, _ = await client(lambda: mx_send(
        smtp.ports["mx"], message(sender="tb@example.gov.vn"), sender="x@bounce.example.gov.vn"))
    assert code == 250
    assert results((await inbox(services, AN))[0]["raw"])["dmarc"] == "pass"


async def test_forged_results_removed_and_dns_failure_is_temperror(
        smtp: SmtpServer, resolver: StaticResolver, services: Services) -> None:
    resolver.add("example.org", "TXT", DnsTempError("timeout"))
    forged = ("Authentication-Results: mail.hanoi.gov.vn; spf=pass smtp.mailfrom=x\r\n"
              "Authentication-Results: other.example; spf=pass smtp.mailfrom=y\r\n")
    await client(lambda: mx_send(smtp.ports["mx"], message(sender=SENDER, extra=forged)))
    raw = (await inbox(services, AN))[0]["raw"]
    assert raw.count(b"Authentication-Results: mail.hanoi.gov.vn;") == 1
    assert b"Authentication-Results: other.example;" in raw
    assert results(raw)["spf"] == "temperror"


def test_dmarc_record_and_org_domain() -> None:
    assert parse_dmarc("v=DMARC1; p=reject; rua=mailto:x@y") == {
        "v": "DMARC1", "p": "reject", "rua": "mailto:x@y"}
    assert parse_dmarc("v=spf1 -all") is None
    assert organizational_domain("mail.hanoi.gov.vn") == "hanoi.gov.vn"
    assert organizational_domain("a.b.example.org") == "example.org"
    assert DOMAIN == "hanoi.gov.vn"


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
