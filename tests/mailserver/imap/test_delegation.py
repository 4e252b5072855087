"""Delegation: the leader's mailboxes under "Other Users" as grants allow
(mail-read: list/examine/search; mail-manage: flags, per-user \\Seen, append,
move, expunge), expiry on the next command, ACL/MYRIGHTS, quota, audit log."""

from __future__ import annotations

from datetime import timedelta

from .conftest import AN, BINH, THU, deliver, message
from .transcript import Raw, ok

LEADER_INBOX = f'"Other Users/{AN}/INBOX"'


async def _login(imap, user: str) -> Raw:
    c = await Raw.connect(imap.port)
    assert ok(await c.login(user))
    return c


def st(lines: list[bytes]) -> bytes:
    return lines[-1].split(b" ", 1)[1]


async def test_read_grant_lists_examines_and_searches_read_only(imap, services):
    await deliver(services, AN, message("Mật: kế hoạch năm"))
    c = await _login(imap, THU)
    lines = await c.cmd('LIST "" "*"')
    assert f'* LIST (\\HasNoChildren) "/" "Other Users/{AN}/INBOX"\r\n'.encode() in lines
    assert f'* LIST (\\HasNoChildren \\Sent) "/" "Other Users/{AN}/Sent"\r\n'.encode() in lines
    lines = await c.cmd('LIST "" "Other Users/%"')
    assert lines[0] == f'* LIST (\\Noselect \\HasChildren) "/" "Other Users/{AN}"\r\n'.encode()
    lines = await c.cmd(f"SELECT {LEADER_INBOX}")
    assert b"[READ-ONLY]" in lines[-1] and b"* 1 EXISTS\r\n" in lines
    assert (await c.cmd('SEARCH SUBJECT "ke hoach"'))[0] == b"* SEARCH 1\r\n"
    assert b"\\Seen" not in (await c.cmd("FETCH 1 (FLAGS BODY[])"))[0]
    assert st(await c.cmd("STORE 1 +FLAGS (\\Flagged)")).startswith(b"NO [READ-ONLY]")
    assert st(await c.cmd("EXPUNGE")).startswith(b"NO [READ-ONLY]")
    assert st(await c.cmd(f"MOVE 1 \"Other Users/{AN}/Trash\"")).startswith(b"NO")
    msg = message("x")
    assert st(await c.cmd(b"APPEND " + LEADER_INBOX.encode() + b" {%d+}\r\n" % len(msg)
                          + msg)).startswith(b"NO [NOPERM]")
    lines = await c.cmd(f"MYRIGHTS {LEADER_INBOX}")
    assert lines[0] == f'* MYRIGHTS "Other Users/{AN}/INBOX" lr\r\n'.encode()
    assert st(await c.cmd(f"GETACL {LEADER_INBOX}")).startswith(b"NO [NOPERM]")
    lines = await c.cmd(f"GETQUOTAROOT {LEADER_INBOX}")
    assert lines[1].startswith(f"* QUOTA {AN} (STORAGE ".encode())
    # Nobody else's mailboxes are visible or reachable.
    assert st(await c.cmd(f'SELECT "Other Users/{BINH}/INBOX"')).startswith(b"NO [NONEXISTENT]")
    entries = await services.directory.audit(actor=THU)
    assert any(e.action == "imap.select" and e.target == AN for e in entries)
    await c.close()
    b = await _login(imap, BINH)
    lines = await b.cmd('LIST "" "*"')
    assert not any(b"Other Users" in x for x in lines)
    await b.close()


async def test_manage_grant_flags_and_seen_per_user(imap, services, org):
    await org.grant(AN, THU, "mail-manage", "test")
    await deliver(services, AN, message("a"))
    await deliver(services, AN, message("b"))
    c = await _login(imap, THU)
    lines = await c.cmd(f"SELECT {LEADER_INBOX}")
    assert b"[READ-WRITE]" in lines[-1]
    assert (await c.cmd("FETCH 1 BODY[TEXT]"))[0].endswith(b"FLAGS (\\Seen))\r\n")
    assert ok(await c.cmd("STORE 2 +FLAGS (\\Flagged)"))
    leader = await _login(imap, AN)
    await leader.cmd("SELECT INBOX")
    lines = await leader.cmd("FETCH 1:2 (FLAGS)")
    assert lines[:-1] == [b"* 1 FETCH (FLAGS ())\r\n", b"* 2 FETCH (FLAGS (\\Flagged))\r\n"]
    assert ok(await leader.cmd("STORE 2 +FLAGS (\\Seen)"))
    lines = await c.cmd("FETCH 1:2 (FLAGS)")
    assert [x for x in lines if x.startswith(b"* 1 FETCH")] == [b"* 1 FETCH (FLAGS (\\Seen))\r\n"]
    assert b"* 2 FETCH (FLAGS (\\Flagged))\r\n" in lines
    assert (await c.cmd("SEARCH UNSEEN"))[0] == b"* SEARCH 2\r\n"
    status = (await c.cmd(f"STATUS {LEADER_INBOX} (UNSEEN)"))[0]
    assert b"UNSEEN 1" in status
    # move, expunge, append as the leader's secretary
    assert ok(await c.cmd(f'MOVE 2 "Other Users/{AN}/Archive"'))
    msg = message("do thu ky soan")
    assert ok(await c.cmd(b"APPEND " + LEADER_INBOX.encode() + b" {%d+}\r\n" % len(msg) + msg))
    lines = await leader.cmd("NOOP")
    assert b"* 2 EXPUNGE\r\n" in lines and b"* 2 EXISTS\r\n" in lines
    lines = await leader.cmd("GETACL INBOX")
    assert lines[0] == f"* ACL \"INBOX\" {AN} lrswipkxteacd {THU} lrswited\r\n".encode()
    lines = await leader.cmd(f"LISTRIGHTS INBOX {THU}")
    assert lines[0] == f'* LISTRIGHTS "INBOX" {THU} "" lr swited\r\n'.encode()
    assert st(await leader.cmd(f"SETACL INBOX {THU} +x")).startswith(b"NO [NOPERM]")
    assert (await leader.cmd("MYRIGHTS INBOX"))[0] == b'* MYRIGHTS "INBOX" lrswipkxteacd\r\n'
    entries = await services.directory.audit(actor=THU)
    actions = {e.action for e in entries}
    assert {"imap.select", "imap.store", "imap.move", "imap.append"} <= actions
    await c.close()
    await leader.close()


async def test_expired_grant_closes_access_on_next_command(imap, services, org):
    await deliver(services, AN, message("a"))
    c = await _login(imap, THU)
    assert ok(await c.cmd(f"SELECT {LEADER_INBOX}"))
    assert ok(await c.cmd("FETCH 1 (FLAGS)"))
    # The grant ends: simulate the clock passing its end.
    now = services.now()
    await org.grant(AN, THU, "mail-read", "test", valid_until=now + timedelta(minutes=1))
    services.authz.now = lambda: now + timedelta(minutes=5)
    lines = await c.cmd("FETCH 1 (FLAGS)")
    assert lines[0].startswith(b"* OK [CLOSED]")
    assert st(lines).startswith(b"NO [NOPERM]")
    assert st(await c.cmd("FETCH 1 (FLAGS)")).startswith(b"BAD")  # no longer selected
    assert st(await c.cmd(f"SELECT {LEADER_INBOX}")).startswith(b"NO [NONEXISTENT]")
    lines = await c.cmd('LIST "" "*"')
    assert not any(b"Other Users" in x for x in lines)
    await c.close()


async def test_subscriptions_to_other_users_folders(imap, services):
    """The leader's folders start subscribed for the delegate (Thunderbird lists
    subscribed folders only); the delegate's own choices then stick."""
    c = await _login(imap, THU)
    leader = [f"Other Users/{AN}/{n}" for n in
              ("INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash")]

    async def subscribed() -> set[str]:
        lines = await c.cmd('LIST (SUBSCRIBED) "" "Other Users/*"')
        assert ok(lines)
        return {x.decode().rsplit(' "/" ', 1)[1].strip().strip('"') for x in lines[:-1]}

    assert await subscribed() == set(leader)
    lines = await c.cmd('LSUB "" "Other Users/*"')
    assert f'* LSUB (\\HasNoChildren) "/" "Other Users/{AN}/INBOX"\r\n'.encode() in lines
    assert len(lines) == len(leader) + 1
    assert ok(await c.cmd(f"UNSUBSCRIBE {LEADER_INBOX}"))
    assert await subscribed() == set(leader) - {f"Other Users/{AN}/INBOX"}
    assert ok(await c.cmd(f'UNSUBSCRIBE "Other Users/{AN}/Junk"'))
    assert ok(await c.cmd(f"SUBSCRIBE {LEADER_INBOX}"))
    assert await subscribed() == set(leader) - {f"Other Users/{AN}/Junk"}
    # Subscribing to one's own folders does not touch the delegated ones.
    assert ok(await c.cmd("UNSUBSCRIBE Junk"))
    assert await subscribed() == set(leader) - {f"Other Users/{AN}/Junk"}
    assert st(await c.cmd(f'CREATE "Other Users/{AN}/New"')).startswith(b"NO [NOPERM]")
    await c.close()
    # Someone without a grant sees none of it.
    b = await _login(imap, BINH)
    assert len(await b.cmd('LSUB "" "Other Users/*"')) == 1
    await b.close()
