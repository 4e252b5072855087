"""``congvu admin dkim ...``, ``congvu admin dns DOMAIN`` and ``congvu admin queue list``.

- ``dkim generate DOMAIN [--selector S]`` creates an RSA 2048 key, makes it
  the domain's signing key and prints the TXT record to publish (RFC 6376
  §3.6.1); ``dkim list DOMAIN`` shows the keys.
- ``dns DOMAIN`` prints every record the domain needs for mail: MX
  (RFC 5321 §5.1), SPF (RFC 7208), DKIM and DMARC (RFC 7489).
- ``queue list`` shows the outbound queue with each recipient's state.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any

from ..config import Settings
from ..directory.addresses import normalize_domain
from ..directory.service import Directory
from ..mailserver.smtp.dkimsign import default_selector, generate_key, txt_record
from ..store import outqueue
from ..store.db import Database
from ..store.errors import NotFound
from ..store.outqueue import DkimKey

__all__ = ["SMTP_AREAS", "add_smtp_parsers", "create_dkim_key", "dns_records", "smtp_command"]

SMTP_AREAS = ("dkim", "dns", "queue")


def add_smtp_parsers(sub: Any) -> None:
    dkim = sub.add_parser("dkim", help="DKIM signing keys").add_subparsers(dest="action",
                                                                            required=True)
    p = dkim.add_parser("generate", help="create a signing key; print its DNS TXT record")
    p.add_argument("domain")
    p.add_argument("--selector", help="selector name (default: cvYYYYMM)")
    p = dkim.add_parser("list", help="a domain's keys")
    p.add_argument("domain")
    p = sub.add_parser("dns", help="the DNS records a mail domain needs (MX, SPF, DKIM, DMARC)")
    p.add_argument("domain")
    queue = sub.add_parser("queue", help="the outbound queue").add_subparsers(dest="action",
                                                                              required=True)
    queue.add_parser("list", help="queued messages and each recipient's state")


def _quoted(text: str) -> str:
    """A TXT value as DNS character-strings of at most 255 octets (RFC 1035 §3.3)."""
    return " ".join(f'"{text[i:i + 255]}"' for i in range(0, len(text), 255))


async def create_dkim_key(db: Database, domain: str, selector: str | None = None) -> DkimKey:
    domain = normalize_domain(domain)
    selector = selector or default_selector(datetime.now(UTC))
    private_pem, public_b64 = await asyncio.to_thread(generate_key)
    async with db.transaction() as conn:
        return await outqueue.add_dkim_key(conn, domain, selector, private_pem, public_b64)


async def dns_records(db: Database, settings: Settings, domain: str) -> list[tuple[str, str, str]]:
    """(name, type, value) of every record to publish for ``domain``."""
    domain = normalize_domain(domain)
    async with db.connection() as conn:
        if not await conn.fetchval("SELECT 1 FROM domains WHERE name = $1", domain):
            raise NotFound(f"domain {domain} is not served here")
        key = await outqueue.active_dkim_key(conn, domain)
    host = settings.hostname.rstrip(".")
    records = [
        (f"{domain}.", "MX", f"10 {host}."),
        # RFC 7208: only the MX hosts send for the domain; everything else fails.
        (f"{domain}.", "TXT", _quoted("v=spf1 mx -all")),
    ]
    if key is not None:
        records.append((f"{key.selector}._domainkey.{domain}.", "TXT",
                        _quoted(txt_record(key.public_key))))
    records.append((f"_dmarc.{domain}.", "TXT",
                    _quoted(f"v=DMARC1; p=quarantine; adkim=r; aspf=r; "
                            f"rua=mailto:postmaster@{domain}")))
    return records


async def smtp_command(args: argparse.Namespace, d: Directory, settings: Settings,
                       actor: str) -> None:
    if args.area == "dkim" and args.action == "generate":
        key = await create_dkim_key(d.db, args.domain, args.selector)
        await d.record(actor, "dkim.generate", key.domain, {"selector": key.selector})
        print(f"DKIM key {key.selector} created for {key.domain}; publish:")
        print(f"{key.selector}._domainkey.{key.domain}. IN TXT {_quoted(txt_record(key.public_key))}")
    elif args.area == "dkim":
        async with d.db.connection() as conn:
            keys = await outqueue.list_dkim_keys(conn, normalize_domain(args.domain))
        for k in keys:
            print(f"{k.selector}\t{k.algorithm}\t{'active' if k.active else 'inactive'}\t"
                  f"{k.created_at:%Y-%m-%d}")
    elif args.area == "dns":
        records = await dns_records(d.db, settings, args.domain)
        width = max(len(n) for n, _t, _v in records)
        for name, rtype, value in records:
            print(f"{name:<{width}}  IN {rtype:<3} {value}")
        if not any("_domainkey" in n for n, _t, _v in records):
            print(f"; no DKIM key yet: run `congvu admin dkim generate {args.domain}`")
    elif args.area == "queue":
        async with d.db.connection() as conn:
            queued = await outqueue.list_queue(conn)
        for q in queued:
            print(f"{q.id}\t{q.mail_from or '<>'}\t{q.size} bytes\tattempts {q.attempts}\t"
                  f"next {q.next_attempt:%Y-%m-%d %H:%M}\texpires {q.expires_at:%Y-%m-%d %H:%M}")
            for r in q.recipients:
                print(f"\t{r.rcpt}\t{r.status}\t{r.last_reply or ''}")
        if not queued:
            print("the queue is empty")
