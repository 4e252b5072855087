"""The TTL cache in front of the resolver, and SPF evaluated on the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from congvu.mailserver.smtp import authcheck
from congvu.mailserver.smtp.authcheck import InboundChecker
from congvu.mailserver.smtp.dnsresolve import CachingResolver, DnsTempError, StaticResolver


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_answers_are_kept_for_their_ttl() -> None:
    static = StaticResolver({("example.org", "TXT"): ["v=spf1 -all"]}, ttl=300)
    clock = Clock()
    cache = CachingResolver(static, clock=clock)
    assert cache.peek("example.org", "TXT") is None
    assert await cache.query("Example.ORG.", "TXT") == [b"v=spf1 -all"]
    assert await cache.query("example.org", "TXT") == [b"v=spf1 -all"]
    assert cache.peek("example.org", "txt") == [b"v=spf1 -all"]
    assert static.queries == [("example.org", "TXT")]
    # a negative answer is cached too (RFC 2308)
    assert await cache.query("nothing.example", "TXT") == []
    assert await cache.query("nothing.example", "TXT") == []
    assert static.queries.count(("nothing.example", "TXT")) == 1
    clock.now += 301  # expired: asked again
    static.records[("example.org", "TXT")] = [b"v=spf1 +all"]
    assert await cache.query("example.org", "TXT") == [b"v=spf1 +all"]
    assert static.queries.count(("example.org", "TXT")) == 2


async def test_zero_ttl_and_temporary_failures_are_not_cached() -> None:
    static = StaticResolver({("a.example", "MX"): [(10, "mx.a.example")]})  # ttl 0
    cache = CachingResolver(static)
    await cache.query("a.example", "MX")
    await cache.query("a.example", "MX")
    assert static.queries.count(("a.example", "MX")) == 2
    failing = StaticResolver({("b.example", "TXT"): [DnsTempError("timeout")]}, ttl=300)
    cache = CachingResolver(failing)
    for _ in range(2):
        with pytest.raises(DnsTempError):
            await cache.query("b.example", "TXT")
    assert failing.queries.count(("b.example", "TXT")) == 2


async def test_concurrent_questions_share_one_lookup_and_size_is_bounded() -> None:
    class Slow(StaticResolver):
        async def query(self, name: str, rdtype: str) -> list:
            await asyncio.sleep(0.05)
            return await super().query(name, rdtype)

    slow = Slow({("c.example", "A"): ["192.0.2.7"]}, ttl=60)
    cache = CachingResolver(slow, max_entries=2)
    got = await asyncio.gather(*(cache.query("c.example", "A") for _ in range(10)))
    assert got == [["192.0.2.7"]] * 10
    assert slow.queries == [("c.example", "A")]
    for name in ("d.example", "e.example"):
        await cache.query(name, "A")
    assert cache.peek("c.example", "A") is None  # least recently used went first
    assert cache.peek("e.example", "A") == []


def _records(resolver: StaticResolver) -> None:
    resolver.add("sender.example", "TXT",
                 "v=spf1 include:_spf.provider.example a:relay.sender.example -all")
    resolver.add("_spf.provider.example", "TXT", "v=spf1 ip4:198.51.100.0/24 mx:provider.example ~all")
    resolver.add("provider.example", "MX", (10, "mx1.provider.example"))
    resolver.add("mx1.provider.example", "A", "203.0.113.9")
    resolver.add("relay.sender.example", "A", "192.0.2.25")


@pytest.mark.parametrize(("ip", "expected"), [
    ("198.51.100.7", "pass"), ("203.0.113.9", "pass"), ("192.0.2.25", "pass"),
    ("192.0.2.26", "fail"),
    ("2001:db8::1", "fail"),
])
async def test_spf_on_the_loop_follows_includes(ip: str, expected: str) -> None:
    static = StaticResolver(ttl=300)
    _records(static)
    checker = InboundChecker(CachingResolver(static))
    threads = threading.active_count()
    result = await checker._spf_async(lambda n, t: [], ip, "helo.example", "a@sender.example")
    assert result == (expected, "sender.example", "mailfrom")
    assert threading.active_count() == threads  # no worker thread was needed
    # a second check finds every answer in the cache: no new question
    asked = len(static.queries)
    assert (await checker._spf_async(lambda n, t: [], ip, "helo.example",
                                     "a@sender.example"))[0] == expected
    assert len(static.queries) == asked


async def test_spf_needing_many_lookups_goes_to_a_thread_with_the_same_result(
        monkeypatch: pytest.MonkeyPatch) -> None:
    static = StaticResolver()
    _records(static)
    checker = InboundChecker(CachingResolver(static))
    loop = asyncio.get_running_loop()
    results = []
    for ip in ("203.0.113.9", "192.0.2.99"):
        on_loop = await checker._spf_async(checker._blocking_lookup(loop), ip, "h.example",
                                           "a@sender.example")
        monkeypatch.setattr(authcheck, "_SPF_INLINE_ROUNDS", 1)
        in_thread = await checker._spf_async(checker._blocking_lookup(loop), ip, "h.example",
                                             "a@sender.example")
        monkeypatch.setattr(authcheck, "_SPF_INLINE_ROUNDS", 12)
        assert on_loop == in_thread
        results.append(on_loop[0])
    assert results == ["pass", "fail"]


async def test_spf_temporary_dns_failure_inside_an_include_is_temperror() -> None:
    static = StaticResolver({("sender.example", "TXT"): ["v=spf1 include:broken.example -all"],
                             ("broken.example", "TXT"): [DnsTempError("SERVFAIL")]})
    checker = InboundChecker(CachingResolver(static))
    result = await checker._spf_async(lambda n, t: [], "192.0.2.1", "h", "a@sender.example")
    assert result[0] == "temperror"


def test_negative_answers_live_as_long_as_the_soa_says() -> None:
    import dns.message
    import dns.name
    import dns.resolver

    from congvu.mailserver.smtp.dnsresolve import _negative_ttl

    response = dns.message.from_text(
        "id 1\nopcode QUERY\nrcode NXDOMAIN\nflags QR AA RD RA\n;QUESTION\n"
        "nothing.example.org. IN TXT\n;ANSWER\n;AUTHORITY\n"
        "example.org. 3600 IN SOA ns.example.org. host.example.org. 1 7200 3600 1209600 300\n"
        ";ADDITIONAL\n")
    name = dns.name.from_text("nothing.example.org.")
    nx = dns.resolver.NXDOMAIN(qnames=[name], responses={name: response})
    assert _negative_ttl(nx.responses().values()) == 300.0  # RFC 2308 §5: min(TTL, MINIMUM)
    no_answer = dns.resolver.NoAnswer(response=response)
    assert _negative_ttl([no_answer.kwargs.get("response")]) == 300.0
    assert _negative_ttl([None]) == 0.0  # no SOA: not cached
