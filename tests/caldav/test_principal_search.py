"""principal-property-search finds people, rooms, units and groups (RFC 3744 §9.4).

What Apple Calendar and Thunderbird send while a user types an attendee or
looks for a room: names without diacritics, addresses with or without
``mailto:``, ``match-type``, and ``CALDAV:calendar-user-type`` filters.
"""

from __future__ import annotations

import re

from congvu.directory.service import Directory, NewAccount
from tests.caldav.conftest import AN, DOMAIN

ROOM = f"phong-hop-1@{DOMAIN}"
PROJECTOR = f"may-chieu@{DOMAIN}"
GROUP = f"ban-giam-doc@{DOMAIN}"
NS = ('xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" '
      'xmlns:CS="http://calendarserver.org/ns/"')


async def _setup(org: Directory) -> None:
    await org.add_account(NewAccount(ROOM, "Phòng họp tầng 1", "so-tttt", kind="room"), "test")
    await org.add_account(NewAccount(PROJECTOR, "Máy chiếu phòng họp", "so-tttt",
                                     kind="resource"), "test")
    await org.add_group(GROUP, "Ban Giám đốc Sở", "test")
    await org.add_member(GROUP, AN, "test")
    await org.add_account(NewAccount(f"phong.nv@{DOMAIN}", "Nguyễn Văn Phòng", "so-tttt",
                                     "Chuyên viên", "Mật-khẩu-2026!"), "test")


def search(*searches: str, test: str = "", limit: int | None = None,
           props: str = "<D:displayname/><C:calendar-user-type/>") -> bytes:
    lim = f"<D:limit><D:nresults>{limit}</D:nresults></D:limit>" if limit else ""
    return (f'<D:principal-property-search {NS}{test}>{"".join(searches)}'
            f"<D:prop>{props}</D:prop>{lim}</D:principal-property-search>").encode()


def ps(props: str, match: str, match_type: str = "") -> str:
    mt = f' match-type="{match_type}"' if match_type else ""
    return (f"<D:property-search><D:prop>{props}</D:prop>"
            f"<D:match{mt}>{match}</D:match></D:property-search>")


def found(text: str) -> list[str]:
    return re.findall(r"<D:response><D:href>/dav/principals/[a-z]+/([^<]+?)/</D:href>", text)


async def report(dav, body: bytes) -> str:
    r = await dav.request("REPORT", "/dav/principals/", body=body, Depth="0")
    assert r.status_code == 207, r.text
    return r.text


async def test_rooms_units_and_groups_are_found_by_name(dav, org) -> None:
    await _setup(org)
    # diacritic- and case-insensitive, across every kind of principal
    text = await report(dav, search(ps("<D:displayname/>", "PHONG HOP")))
    assert set(found(text)) == {ROOM, PROJECTOR}
    assert "Phòng họp tầng 1" in text and "<C:calendar-user-type>ROOM<" in text
    text = await report(dav, search(ps("<D:displayname/>", "sở thong tin")))
    assert found(text) == ["so-tttt"] and "<C:calendar-user-type>GROUP<" in text
    text = await report(dav, search(ps("<D:displayname/>", "ban giam doc")))
    assert found(text) == [GROUP]
    # by address, with mailto: (Apple), on groups as on accounts
    text = await report(dav, search(ps("<C:calendar-user-address-set/>", f"mailto:{GROUP}",
                                       "equals")))
    assert found(text) == [GROUP]
    text = await report(dav, search(ps("<CS:email-address-set/>", "phong-hop")))
    assert found(text) == [ROOM]


async def test_calendar_user_type_narrows(dav, org) -> None:
    await _setup(org)
    # "phong" is a room, a resource and a person's name: ROOM keeps the room
    text = await report(dav, search(ps("<D:displayname/>", "phong"),
                                    ps("<C:calendar-user-type/>", "ROOM")))
    assert found(text) == [ROOM]
    text = await report(dav, search(ps("<D:displayname/>", "phong"),
                                    ps("<C:calendar-user-type/>", "INDIVIDUAL")))
    assert found(text) == [f"phong.nv@{DOMAIN}"]
    text = await report(dav, search(ps("<C:calendar-user-type/>", "resource")))
    assert found(text) == [PROJECTOR]
    text = await report(dav, search(ps("<C:calendar-user-type/>", "GROUP")))
    assert set(found(text)) == {GROUP, "ubnd-tp", "so-tttt", "q-hk", "p-ht"}
    # anyof: rooms or resources
    text = await report(dav, search(ps("<C:calendar-user-type/>", "ROOM"),
                                    ps("<C:calendar-user-type/>", "RESOURCE"),
                                    test=' test="anyof"'))
    assert set(found(text)) == {ROOM, PROJECTOR}


async def test_match_types_and_apple_name_parts(dav, org) -> None:
    await _setup(org)
    # starts-with matches the start of a word of the name (Apple types "Ph…")
    text = await report(dav, search(ps("<D:displayname/>", "van p", "starts-with")))
    assert found(text) == [f"phong.nv@{DOMAIN}"]
    text = await report(dav, search(ps("<D:displayname/>", "hop", "starts-with")))
    assert set(found(text)) == {ROOM, PROJECTOR}
    text = await report(dav, search(ps("<D:displayname/>", "ong", "starts-with")))
    assert found(text) == []
    text = await report(dav, search(ps("<D:displayname/>", "nguyen van an", "equals")))
    assert found(text) == [AN]
    # Apple's first-name / last-name / email, anyof, starts-with
    text = await report(dav, search(
        ps("<CS:first-name/>", "Bình", "starts-with"), ps("<CS:last-name/>", "Bình",
                                                          "starts-with"),
        ps("<CS:email-address-set/>", "Bình", "starts-with"), test=' test="anyof"'))
    assert found(text) == [f"binh.tq@{DOMAIN}"]


async def test_limit_truncates_with_507_and_disabled_are_hidden(dav, org) -> None:
    await _setup(org)
    text = await report(dav, search(ps("<C:calendar-user-type/>", "GROUP"), limit=2))
    assert len(found(text)) == 2 and "507" in text
    assert "number-of-matches-within-limits" in text
    await org.set_enabled(f"phong.nv@{DOMAIN}", False, "test")
    text = await report(dav, search(ps("<D:displayname/>", "phong")))
    assert set(found(text)) == {ROOM, PROJECTOR}
    # a LIKE wildcard in the term is literal
    assert found(await report(dav, search(ps("<D:displayname/>", "%")))) == []


def apple(context: str | None, *tokens: str, limit: int | None = None) -> bytes:
    ctx = f' context="{context}"' if context else ""
    lim = f"<CS:limit><CS:nresults>{limit}</CS:nresults></CS:limit>" if limit else ""
    toks = "".join(f"<CS:search-token>{t}</CS:search-token>" for t in tokens)
    return (f"<CS:calendarserver-principal-search {NS}{ctx}>{toks}{lim}"
            "<D:prop><D:displayname/><CS:email-address-set/><C:calendar-user-address-set/>"
            "<C:calendar-user-type/></D:prop></CS:calendarserver-principal-search>").encode()


async def test_apple_calendarserver_principal_search(dav, org) -> None:
    """Apple Calendar's own search: tokens (all must match a name or an address)
    and a context choosing the kinds of principal; advertised on principals."""
    await _setup(org)
    r = await dav.request("PROPFIND", "/dav/principals/", Depth="0", body=(
        f'<D:propfind {NS}><D:prop><D:supported-report-set/></D:prop></D:propfind>'))
    assert "calendarserver-principal-search" in r.text
    r = await dav.request("PROPFIND", f"/dav/principals/users/{AN}/", Depth="0", body=(
        f'<D:propfind {NS}><D:prop><D:supported-report-set/></D:prop></D:propfind>'))
    assert "calendarserver-principal-search" in r.text
    # rooms are locations; "phong" also names a person and a resource
    text = await report(dav, apple("location", "phong"))
    assert found(text) == [ROOM] and f"mailto:{ROOM}" in text
    text = await report(dav, apple("resource", "phong"))
    assert found(text) == [PROJECTOR]
    # attendee: people, groups and resources, never rooms; every token must match
    text = await report(dav, apple("attendee", "phong"))
    assert set(found(text)) == {f"phong.nv@{DOMAIN}", PROJECTOR}
    text = await report(dav, apple("attendee", "nguyen", "van"))
    assert set(found(text)) == {AN, f"phong.nv@{DOMAIN}"}
    text = await report(dav, apple("attendee", "nguyen", "AN.NV@"))
    assert found(text) == [AN]
    text = await report(dav, apple("group", "giam doc"))
    assert found(text) == [GROUP]
    text = await report(dav, apple(None, "so"))  # no context: every kind
    assert "so-tttt" in found(text) and ROOM not in found(text)
    text = await report(dav, apple("user", "thi", limit=1))
    assert len(found(text)) == 1 and "number-of-matches-within-limits" in text
    r = await dav.request("REPORT", "/dav/principals/", Depth="0", body=(
        f"<CS:calendarserver-principal-search {NS}/>"))
    assert r.status_code == 400


def _library_search(url: str, name: str) -> list[tuple[str, str]]:
    import caldav

    with caldav.DAVClient(url=url + "/dav/principals/", username=AN,
                          password="Mật-khẩu-2026!") as client:
        return sorted((str(p.url), str(p.get_display_name()))
                      for p in client.search_principals(name=name))


async def test_caldav_library_search_principals(dav_url: str, org) -> None:
    """The ``caldav`` library's search_principals (principal-property-search on
    DAV:displayname) finds a person and a room without diacritics."""
    import asyncio

    await _setup(org)
    people = await asyncio.to_thread(_library_search, dav_url, "nguyen van")
    assert [n for _, n in people] == ["Nguyễn Văn An", "Nguyễn Văn Phòng"]
    rooms = await asyncio.to_thread(_library_search, dav_url, "PHÒNG HỌP TẦNG")
    assert rooms == [(f"{dav_url}/dav/principals/users/{ROOM}/", "Phòng họp tầng 1")]
