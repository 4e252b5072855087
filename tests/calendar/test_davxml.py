"""DAV XML requests and multistatus replies (congvu.calendar.davxml, davreport)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from congvu.calendar import davreport, davxml
from congvu.calendar.davxml import CALDAV, CS, DAV, ICAL, DavError, caldav, cs, dav, ical

# Apple Calendar (macOS 14) PROPFIND on the calendar home, Depth 1.
APPLE_HOME_PROPFIND = b"""<?xml version="1.0" encoding="UTF-8"?>
<A:propfind xmlns:A="DAV:">
  <A:prop>
    <A:add-member/>
    <C:allowed-sharing-modes xmlns:C="http://calendarserver.org/ns/"/>
    <D:autoprovisioned xmlns:D="http://apple.com/ns/ical/"/>
    <E:bulk-requests xmlns:E="http://me.com/_namespace/"/>
    <D:calendar-color xmlns:D="http://apple.com/ns/ical/"/>
    <B:calendar-description xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <B:calendar-free-busy-set xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <D:calendar-order xmlns:D="http://apple.com/ns/ical/"/>
    <B:calendar-timezone xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <A:current-user-privilege-set/>
    <C:getctag xmlns:C="http://calendarserver.org/ns/"/>
    <A:displayname/>
    <A:resourcetype/>
    <B:supported-calendar-component-set xmlns:B="urn:ietf:params:xml:ns:caldav"/>
    <A:sync-token/>
  </A:prop>
</A:propfind>"""

# DAVx5 first sync: empty sync-token.
DAVX5_SYNC = b"""<?xml version='1.0' encoding='UTF-8' ?>
<sync-collection xmlns="DAV:" xmlns:CAL="urn:ietf:params:xml:ns:caldav">
  <sync-token />
  <sync-level>1</sync-level>
  <prop><getcontenttype /><getetag /></prop>
</sync-collection>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&lol4;</D:displayname></D:prop></D:propfind>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>
<D:displayname>&xxe;</D:displayname></D:prop></D:set></D:propertyupdate>"""


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_apple_propfind_with_cs_and_ical_props() -> None:
    req = davxml.parse_propfind(APPLE_HOME_PROPFIND)
    assert req.kind == "prop"
    assert ical("calendar-color") in req.props
    assert cs("getctag") in req.props
    assert caldav("supported-calendar-component-set") in req.props
    assert "{http://me.com/_namespace/}bulk-requests" in req.props
    assert req.wants(dav("displayname")) and not req.wants(dav("getetag"))


def test_propfind_empty_allprop_include_and_propname() -> None:
    assert davxml.parse_propfind(b"").kind == "allprop"
    assert davxml.parse_propfind(None).kind == "allprop"
    req = davxml.parse_propfind(
        b'<propfind xmlns="DAV:"><allprop/><include><supported-report-set/></include></propfind>')
    assert req.kind == "allprop" and req.include == (dav("supported-report-set"),)
    assert davxml.parse_propfind(b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
                                 ).kind == "propname"
    with pytest.raises(DavError) as info:
        davxml.parse_propfind(b'<D:propertyupdate xmlns:D="DAV:"/>')
    assert info.value.status == 400


def test_proppatch_set_and_remove_keep_value_elements() -> None:
    body = """<?xml version="1.0" encoding="UTF-8"?>
<A:propertyupdate xmlns:A="DAV:">
  <A:set><A:prop>
    <A:displayname>Lịch công tác UBND</A:displayname>
    <B:calendar-color xmlns:B="http://apple.com/ns/ical/">#FF2968FF</B:calendar-color>
    <C:calendar-timezone xmlns:C="urn:ietf:params:xml:ns:caldav">BEGIN:VCALENDAR
END:VCALENDAR</C:calendar-timezone>
  </A:prop></A:set>
  <A:remove><A:prop><C:calendar-description xmlns:C="urn:ietf:params:xml:ns:caldav"/>
  </A:prop></A:remove>
</A:propertyupdate>""".encode()
    ops = davxml.parse_proppatch(body).ops
    assert [(o.action, o.name) for o in ops] == [
        ("set", dav("displayname")),
        ("set", ical("calendar-color")),
        ("set", caldav("calendar-timezone")),
        ("remove", caldav("calendar-description")),
    ]
    assert ops[0].text == "Lịch công tác UBND"
    assert ops[1].text == "#FF2968FF"
    assert ops[2].value is not None and ops[2].text.startswith("BEGIN:VCALENDAR")
    assert ops[3].value is None


def test_mkcalendar_body_and_empty_body() -> None:
    body = """<?xml version="1.0" encoding="utf-8" ?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop>
    <D:displayname>Lịch phòng họp</D:displayname>
    <C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set>
  </D:prop></D:set>
</C:mkcalendar>""".encode()
    req = davxml.parse_mkcalendar(body)
    assert [p.name for p in req.props] == [dav("displayname"),
                                           caldav("supported-calendar-component-set")]
    assert davxml.parse_mkcalendar(b"").props == ()
    mkcol = davxml.parse_mkcalendar(
        b'<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
        b"<D:resourcetype><D:collection/><C:calendar/></D:resourcetype>"
        b"</D:prop></D:set></D:mkcol>")
    assert mkcol.resourcetype == (dav("collection"), caldav("calendar"))


def test_davx5_sync_collection_with_empty_token() -> None:
    report = davreport.parse_report(DAVX5_SYNC)
    assert isinstance(report, davreport.SyncCollection)
    assert report.sync_token == ""
    assert report.sync_level == "1" and report.limit is None
    assert report.props.props == (dav("getcontenttype"), dav("getetag"))


def test_sync_collection_with_token_and_limit() -> None:
    report = davreport.parse_report(
        b'<D:sync-collection xmlns:D="DAV:"><D:sync-token>https://congvu/ns/sync/42'
        b"</D:sync-token><D:sync-level>1</D:sync-level><D:limit><D:nresults>100</D:nresults>"
        b"</D:limit><D:prop><D:getetag/></D:prop></D:sync-collection>")
    assert isinstance(report, davreport.SyncCollection)
    assert (report.sync_token, report.limit) == ("https://congvu/ns/sync/42", 100)


def test_calendar_multiget_hrefs_are_decoded_paths() -> None:
    report = davreport.parse_report(
        b'<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        b"<D:prop><D:getetag/><C:calendar-data/></D:prop>"
        b"<D:href>/dav/calendars/an/work/a%20b.ics</D:href>"
        b"<D:href>https://mail.hanoi.gov.vn/dav/calendars/an/work/%C4%91.ics</D:href>"
        b"</C:calendar-multiget>")
    assert isinstance(report, davreport.CalendarMultiget)
    assert report.paths == ("/dav/calendars/an/work/a b.ics", "/dav/calendars/an/work/đ.ics")
    assert report.props.calendar_data is not None


def test_calendar_query_with_expand_and_timezone() -> None:
    report = davreport.parse_report(
        b'<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        b"<D:prop><C:calendar-data><C:expand start=\"20240101T000000Z\" end=\"20240108T000000Z\"/>"
        b"</C:calendar-data></D:prop>"
        b'<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VTODO">'
        b'<C:prop-filter name="COMPLETED"><C:is-not-defined/></C:prop-filter>'
        b"</C:comp-filter></C:comp-filter></C:filter>"
        b"<C:timezone-id>Asia/Ho_Chi_Minh</C:timezone-id></C:calendar-query>")
    assert isinstance(report, davreport.CalendarQuery)
    cd = report.props.calendar_data
    assert cd is not None and cd.expand == (utc(2024, 1, 1), utc(2024, 1, 8))
    assert report.timezone == "Asia/Ho_Chi_Minh"
    (todo,) = report.filter.comp_filters
    assert todo.name == "VTODO" and todo.prop_filters[0].is_not_defined


@pytest.mark.parametrize(
    ("filter_xml", "precondition"),
    [
        (b'<C:comp-filter name="VEVENT"/>', "valid-filter"),
        (b'<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
         b'<C:time-range start="yesterday"/></C:comp-filter></C:comp-filter>', "valid-filter"),
        (b'<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
         b'<C:time-range/></C:comp-filter></C:comp-filter>', "valid-filter"),
        (b'<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
         b'<C:prop-filter name="SUMMARY"><C:text-match collation="i;klingon">x</C:text-match>'
         b"</C:prop-filter></C:comp-filter></C:comp-filter>", "supported-collation"),
    ],
)
def test_invalid_filters_carry_caldav_preconditions(filter_xml: bytes, precondition: str) -> None:
    body = (b'<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            b"<D:prop><D:getetag/></D:prop><C:filter>" + filter_xml + b"</C:filter>"
            b"</C:calendar-query>")
    with pytest.raises(DavError) as info:
        davreport.parse_report(body)
    assert info.value.status == 403
    assert info.value.precondition == caldav(precondition)
    assert f"<C:{precondition} />".encode() in info.value.body


def test_free_busy_query() -> None:
    report = davreport.parse_report(
        b'<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
        b'<C:time-range start="20240101T000000Z" end="20240108T000000Z"/></C:free-busy-query>')
    assert report == davreport.FreeBusyQuery(utc(2024, 1, 1), utc(2024, 1, 8))


def test_apple_principal_property_search() -> None:
    body = """<?xml version="1.0" encoding="UTF-8"?>
<A:principal-property-search xmlns:A="DAV:" test="anyof">
  <A:property-search>
    <A:prop><A:displayname/></A:prop>
    <A:match match-type="starts-with">Nguyễn</A:match>
  </A:property-search>
  <A:property-search>
    <A:prop><B:calendar-user-address-set xmlns:B="urn:ietf:params:xml:ns:caldav"/></A:prop>
    <A:match match-type="starts-with">nguyen</A:match>
  </A:property-search>
  <A:prop>
    <A:displayname/>
    <B:calendar-user-address-set xmlns:B="urn:ietf:params:xml:ns:caldav"/>
  </A:prop>
  <A:apply-to-principal-collection-set/>
</A:principal-property-search>""".encode()
    report = davreport.parse_report(body)
    assert isinstance(report, davreport.PrincipalPropertySearch)
    assert report.test == "anyof" and report.apply_to_principal_collection_set
    assert report.searches[0] == davreport.PropertySearch((dav("displayname"),), "Nguyễn",
                                                          "starts-with")
    assert report.props.props == (dav("displayname"), caldav("calendar-user-address-set"))


def test_principal_search_property_set_and_expand_property() -> None:
    assert isinstance(davreport.parse_report(b'<principal-search-property-set xmlns="DAV:"/>'),
                      davreport.PrincipalSearchPropertySet)
    report = davreport.parse_report(
        b'<D:expand-property xmlns:D="DAV:">'
        b'<D:property name="calendar-proxy-write-for" namespace="http://calendarserver.org/ns/">'
        b'<D:property name="displayname"/>'
        b'<D:property name="calendar-user-address-set" '
        b'namespace="urn:ietf:params:xml:ns:caldav"/></D:property></D:expand-property>')
    assert isinstance(report, davreport.ExpandProperty)
    (item,) = report.items
    assert item.name == cs("calendar-proxy-write-for")
    assert [c.name for c in item.children] == [dav("displayname"),
                                               caldav("calendar-user-address-set")]


def test_unknown_report_is_supported_report_403() -> None:
    with pytest.raises(DavError) as info:
        davreport.parse_report(b'<C:addressbook-query xmlns:C="urn:ietf:params:xml:ns:carddav"/>')
    assert (info.value.status, info.value.precondition) == (403, dav("supported-report"))


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_xml_bombs_and_external_entities_are_rejected(body: bytes) -> None:
    with pytest.raises(DavError) as info:
        if b"propertyupdate" in body:
            davxml.parse_proppatch(body)
        else:
            davxml.parse_propfind(body)
    assert info.value.status in (400, 403)
    assert info.value.precondition is None
    assert b"root:" not in info.value.body and b"lol" not in info.value.body


def test_malformed_xml_is_400() -> None:
    with pytest.raises(DavError) as info:
        davxml.parse_propfind(b"<D:propfind xmlns:D='DAV:'><D:prop>")
    assert info.value.status == 400 and info.value.content_type.startswith("text/plain")


def test_error_body() -> None:
    body = davxml.error_body(caldav("valid-calendar-data"))
    root = ET.fromstring(body)
    assert root.tag == dav("error")
    assert [c.tag for c in root] == [caldav("valid-calendar-data")]
    assert b"<C:valid-calendar-data" in body and b"<D:error" in body
    err = DavError(403, dav("valid-sync-token"))
    assert err.content_type.startswith("application/xml")
    assert ET.fromstring(err.body)[0].tag == dav("valid-sync-token")


def _parse_ms(body: bytes) -> ET.Element:
    root = ET.fromstring(body)
    assert root.tag == dav("multistatus")
    return root


def test_multistatus_propstat_grouping_and_values() -> None:
    ms = davxml.Multistatus()
    ms.add(
        "/dav/calendars/an/lịch công tác/",
        {
            dav("displayname"): "Lịch công tác <UBND> & HĐND",
            dav("resourcetype"): [davxml.el(dav("collection")), davxml.el(caldav("calendar"))],
            dav("current-user-principal"): davxml.el(dav("href"), "/dav/principals/an/"),
            ical("calendar-color"): "#FF2968FF",
            "{http://example.com/ns}custom": "x",
            cs("getctag"): None,
        },
        not_found=[caldav("calendar-description")],
        forbidden=[dav("quota-used-bytes")],
    )
    root = _parse_ms(ms.to_bytes())
    (resp,) = root.findall(dav("response"))
    assert resp.findtext(dav("href")) == "/dav/calendars/an/l%E1%BB%8Bch%20c%C3%B4ng%20t%C3%A1c/"
    stats = {ps.findtext(dav("status")): ps.find(dav("prop")) for ps in resp.findall(
        dav("propstat"))}
    assert set(stats) == {"HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found", "HTTP/1.1 403 Forbidden"}
    ok = stats["HTTP/1.1 200 OK"]
    assert ok is not None
    assert ok.findtext(dav("displayname")) == "Lịch công tác <UBND> & HĐND"
    assert [c.tag for c in ok.find(dav("resourcetype"))] == [dav("collection"),  # type: ignore
                                                              caldav("calendar")]
    assert ok.findtext(f"{dav('current-user-principal')}/{dav('href')}") == "/dav/principals/an/"
    assert ok.findtext("{http://example.com/ns}custom") == "x"
    assert ok.find(cs("getctag")) is not None


def test_multistatus_minimal_drops_404_and_stays_valid() -> None:
    ms = davxml.Multistatus(minimal=True)
    ms.add("/a.ics", {dav("getetag"): '"1"'}, not_found=[dav("displayname")])
    ms.add("/b.ics", {}, not_found=[dav("displayname")])
    root = _parse_ms(ms.to_bytes())
    body = ms.to_bytes()
    assert b"404" not in body
    for resp in root.findall(dav("response")):
        assert resp.find(dav("propstat")) is not None


def test_multistatus_status_responses_and_sync_token() -> None:
    ms = davxml.Multistatus()
    ms.add("/dav/c/1.ics", {dav("getetag"): '"abc"'})
    ms.add_status("/dav/c/gone.ics", 404)
    root = _parse_ms(ms.to_bytes(sync_token="https://congvu/ns/sync/7"))
    assert root.findtext(dav("sync-token")) == "https://congvu/ns/sync/7"
    gone = root.findall(dav("response"))[1]
    assert gone.findtext(dav("status")) == "HTTP/1.1 404 Not Found"
    assert ET.tostring(davxml.sync_token_element("t1")) == b'<D:sync-token xmlns:D="DAV:">t1</D:sync-token>'


def test_wants_minimal_and_href_helpers() -> None:
    assert davxml.wants_minimal({"brief": "t"})
    assert davxml.wants_minimal({"Prefer": "return-minimal"})
    assert not davxml.wants_minimal({"prefer": "return=representation"})
    assert not davxml.wants_minimal({})
    assert davxml.quote_href("/dav/a b/ủy.ics") == "/dav/a%20b/%E1%BB%A7y.ics"
    assert davxml.href_to_path("https://h/dav/a%20b/") == "/dav/a b/"


def test_namespaces() -> None:
    assert (DAV, CALDAV, CS, ICAL) == ("DAV:", "urn:ietf:params:xml:ns:caldav",
                                       "http://calendarserver.org/ns/", "http://apple.com/ns/ical/")
    assert b"<C:calendar" in ET.tostring(davxml.el(caldav("calendar")))


def test_depth1_propfind_over_10000_items() -> None:
    # How long this takes is printed by bench/pure_paths.py, not asserted here.
    ms = davxml.Multistatus(minimal=True)
    for i in range(10_000):
        ms.add(f"/dav/calendars/an/work/{i}.ics", {
            dav("getetag"): f'"{i:032x}"',
            dav("getcontenttype"): "text/calendar; charset=utf-8",
            dav("resourcetype"): None,
        }, not_found=[dav("displayname")])
    body = ms.to_bytes()
    assert len(_parse_ms(body)) == 10_000
