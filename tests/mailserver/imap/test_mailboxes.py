"""Mailbox commands: LIST/LSUB (special-use, LIST-EXTENDED, LIST-STATUS, CHILDREN),
CREATE/DELETE/RENAME (INBOX rename, Vietnamese names in modified UTF-7),
SUBSCRIBE/UNSUBSCRIBE, STATUS, NAMESPACE."""

from __future__ import annotations

from congvu.mailserver.imap.mutf7 import encode

from .conftest import AN, deliver, message
from .transcript import Raw, ok


async def _login(imap) -> Raw:
    c = await Raw.connect(imap.port)
    assert ok(await c.login(AN))
    return c


async def test_list_default_mailboxes_with_special_use(imap):
    c = await _login(imap)
    lines = await c.cmd('LIST "" "*"')
    assert lines[:-1] == [
        b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n',
        b'* LIST (\\HasNoChildren \\Archive) "/" "Archive"\r\n',
        b'* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"\r\n',
        b'* LIST (\\HasNoChildren \\Junk) "/" "Junk"\r\n',
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n',
        b'* LIST (\\HasNoChildren \\Trash) "/" "Trash"\r\n',
    ]
    lines = await c.cmd('LIST "" ""')
    assert lines[0] == b'* LIST (\\Noselect) "/" ""\r\n'
    lines = await c.cmd('LIST (SPECIAL-USE) "" "*"')
    assert len(lines) == 6 and all(b"\\HasNoChildren \\" in x for x in lines[:-1])
    lines = await c.cmd('LIST "" "inbox"')  # INBOX is case-insensitive
    assert lines[0] == b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n'
    await c.close()


async def test_create_vietnamese_hierarchy_round_trips(imap):
    c = await _login(imap)
    name = "Công văn đến/Sở Tài chính"
    wire = encode(name)
    assert ok(await c.cmd(f'CREATE "{wire}"'))
    lines = await c.cmd('LIST "" "*"')
    parent = encode("Công văn đến")
    assert f'* LIST (\\HasChildren) "/" "{parent}"\r\n'.encode() in lines
    assert f'* LIST (\\HasNoChildren) "/" "{wire}"\r\n'.encode() in lines
    lines = await c.cmd(f'LIST "" "{parent}/%"')
    assert lines[0] == f'* LIST (\\HasNoChildren) "/" "{wire}"\r\n'.encode()
    assert (await c.cmd(f'CREATE "{wire}"'))[-1].split(b" ", 1)[1].startswith(b"NO [ALREADYEXISTS]")
    assert (await c.cmd("CREATE INBOX"))[-1].split(b" ", 1)[1].startswith(b"NO [ALREADYEXISTS]")
    sel = await c.cmd(f'SELECT "{wire}"')
    assert ok(sel) and b"[READ-WRITE]" in sel[-1]
    await c.close()


async def test_create_special_use_and_delete(imap):
    c = await _login(imap)
    assert ok(await c.cmd('CREATE "Lưu trữ 2025" (USE (\\Archive))'.replace(
        "Lưu trữ 2025", encode("Lưu trữ 2025"))))
    lines = await c.cmd('LIST "" "L*"')
    assert b"\\Archive" in lines[0]
    assert (await c.cmd('CREATE "X" (USE (\\All))'))[-1].split(b" ", 1)[1].startswith(b"NO [USEATTR]")
    assert ok(await c.cmd(f'DELETE "{encode("Lưu trữ 2025")}"'))
    assert (await c.cmd('DELETE "Nope"'))[-1].split(b" ", 1)[1].startswith(b"NO [NONEXISTENT]")
    assert (await c.cmd("DELETE INBOX"))[-1].split(b" ", 1)[1].startswith(b"NO [NOPERM]")
    await c.close()


async def test_rename_moves_children_and_inbox_rename_moves_messages(imap, services):
    await deliver(services, AN, message("một"))
    await deliver(services, AN, message("hai"))
    c = await _login(imap)
    assert ok(await c.cmd("CREATE A/B/C"))
    assert ok(await c.cmd("RENAME A Z"))
    lines = await c.cmd('LIST "" "Z*"')
    assert [x.split(b'"/" ')[1] for x in lines[:-1]] == [b'"Z"\r\n', b'"Z/B"\r\n',
                                                          b'"Z/B/C"\r\n']
    status = await c.cmd("STATUS INBOX (MESSAGES UIDVALIDITY)")
    assert b"MESSAGES 2" in status[0]
    assert ok(await c.cmd("RENAME INBOX Old"))
    assert b"MESSAGES 0" in (await c.cmd("STATUS INBOX (MESSAGES)"))[0]
    assert b"MESSAGES 2" in (await c.cmd("STATUS Old (MESSAGES)"))[0]
    assert (await c.cmd("RENAME Old Z"))[-1].split(b" ", 1)[1].startswith(b"NO [ALREADYEXISTS]")
    await c.close()


async def test_subscribe_lsub_and_list_subscribed(imap):
    c = await _login(imap)
    assert ok(await c.cmd("CREATE Projects/Alpha"))
    assert ok(await c.cmd("UNSUBSCRIBE Projects"))
    assert ok(await c.cmd("UNSUBSCRIBE Junk"))
    lines = await c.cmd('LSUB "" "*"')
    names = [x.rsplit(b" ", 1)[1].strip() for x in lines[:-1]]
    assert b'"Junk"' not in names and b'"Projects/Alpha"' in names
    lines = await c.cmd('LSUB "" "%"')
    assert b'* LSUB (\\Noselect) "/" "Projects"\r\n' in lines
    lines = await c.cmd('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    assert b'* LIST (\\HasChildren) "/" "Projects" ("CHILDINFO" ("SUBSCRIBED"))\r\n' in lines
    lines = await c.cmd('LIST "" "*" RETURN (SUBSCRIBED CHILDREN)')
    assert b'* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"\r\n' in lines
    assert b'* LIST (\\HasNoChildren \\Junk) "/" "Junk"\r\n' in lines
    assert ok(await c.cmd("SUBSCRIBE Junk"))
    assert (await c.cmd("SUBSCRIBE Nope"))[-1].split(b" ", 1)[1].startswith(b"NO [NONEXISTENT]")
    await c.close()


async def test_status_and_list_status(imap, services):
    await deliver(services, AN, message("a"), flags=("\\Seen",))
    await deliver(services, AN, message("b"))
    c = await _login(imap)
    lines = await c.cmd("STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE "
                        "HIGHESTMODSEQ DELETED)")
    st = lines[0]
    assert st.startswith(b'* STATUS "INBOX" (MESSAGES 2 RECENT 0 UIDNEXT 3 UIDVALIDITY ')
    assert b"UNSEEN 1" in st and b"DELETED 0" in st and b"HIGHESTMODSEQ " in st
    lines = await c.cmd('LIST "" "IN*" RETURN (STATUS (MESSAGES UNSEEN))')
    assert lines[0] == b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n'
    assert lines[1] == b'* STATUS "INBOX" (MESSAGES 2 UNSEEN 1)\r\n'
    assert (await c.cmd("STATUS Nope (MESSAGES)"))[-1].split(b" ", 1)[1].startswith(b"NO [NONEXISTENT]")
    # RFC 9208 §4.2/§5.1: QUOTA=RES-STORAGE comes with DELETED-STORAGE (KiB of \Deleted).
    assert ok(await c.cmd("SELECT INBOX"))
    assert ok(await c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)"))
    lines = await c.cmd("STATUS INBOX (DELETED DELETED-STORAGE)")
    assert lines[0] == b'* STATUS "INBOX" (DELETED 1 DELETED-STORAGE 1)\r\n'
    # An item the server does not answer is an error, not silently left out.
    assert (await c.cmd("STATUS INBOX (MAILBOXID)"))[-1].split(b" ", 1)[1].startswith(b"BAD")
    await c.close()


async def test_namespace(imap):
    c = await _login(imap)
    lines = await c.cmd("NAMESPACE")
    assert lines[0] == b'* NAMESPACE (("" "/")) (("Other Users/" "/")) NIL\r\n'
    await c.close()


async def test_check_quota_and_acl_transcripts(imap, services):
    """CHECK (RFC 3501 §6.4.1), GETQUOTA/SETQUOTA (RFC 9208 §4.2-4.3) and
    SETACL/DELETEACL (RFC 4314 §3.1-3.2: rights come from delegation grants)."""
    await deliver(services, AN, message("a", "x" * 3000))
    c = await _login(imap)
    assert (await c.cmd("CHECK"))[-1].split(b" ", 1)[1].startswith(b"BAD")  # not selected
    assert ok(await c.cmd("SELECT INBOX"))
    assert (await c.cmd("CHECK"))[-1].split(b" ", 2)[1] == b"OK"
    lines = await c.cmd('GETQUOTA ""')
    used = (await services.directory.get_account(AN)).used_bytes
    assert lines[0] == b'* QUOTA "" (STORAGE %d 2097152)\r\n' % ((used + 1023) // 1024)
    assert ok(lines)
    lines = await c.cmd('GETQUOTA "nobody@hanoi.gov.vn"')
    assert lines[-1].split(b" ", 1)[1].startswith(b"NO [NONEXISTENT]")
    lines = await c.cmd('SETQUOTA "" (STORAGE 1)')
    assert lines[-1].split(b" ", 1)[1].startswith(b"NO [NOPERM]")
    for cmd in ("SETACL INBOX thu.lt@hanoi.gov.vn lr", "DELETEACL INBOX thu.lt@hanoi.gov.vn"):
        lines = await c.cmd(cmd)
        assert lines[-1].split(b" ", 1)[1].startswith(b"NO [NOPERM]"), lines
    await c.close()


async def test_delete_keeps_the_subscription(imap):
    # RFC 3501 §6.3.4/§6.3.6/§6.3.9: subscriptions do not follow existence.
    c = await _login(imap)
    assert ok(await c.cmd("CREATE Tam"))
    assert ok(await c.cmd("SUBSCRIBE Tam"))
    assert ok(await c.cmd("DELETE Tam"))
    assert b'"Tam"' not in b"".join(await c.cmd('LIST "" "*"'))
    lines = await c.cmd('LSUB "" "*"')
    assert b'* LSUB (\\Noselect \\HasNoChildren) "/" "Tam"\r\n' in lines
    lines = await c.cmd('LIST (SUBSCRIBED) "" "Ta*"')
    assert lines[:-1] == [b'* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" "Tam"\r\n']
    assert ok(await c.cmd("CREATE Tam"))  # subscribed again, as the name was
    lines = await c.cmd('LIST (SUBSCRIBED) "" "Ta*"')
    assert lines[:-1] == [b'* LIST (\\HasNoChildren \\Subscribed) "/" "Tam"\r\n']
    assert ok(await c.cmd("DELETE Tam"))
    assert ok(await c.cmd("UNSUBSCRIBE Tam"))
    assert b'"Tam"' not in b"".join(await c.cmd('LSUB "" "*"'))
    await c.close()
