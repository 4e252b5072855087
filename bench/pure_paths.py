"""Times of the pure hot paths that have no peer to compare with.

    python bench/pure_paths.py

Prints, without asserting anything (timing belongs here, not in tests):
  * base_subject() on 300 KB subjects (RFC 5256 trailer stripping must stay linear);
  * parse_message() of a ~10 KB multipart message (parse-once at delivery);
  * formatting 100,000 FETCH (UID FLAGS) lines (UID FETCH 1:* (FLAGS));
  * a Depth-1 PROPFIND multistatus of 10,000 items (CalDAV);
  * parsing a CalDAV PUT body (caldav_load.py's events, plain and weekly
    COUNT=10) into its index facts: the fast reader (congvu.calendar.fastical)
    and the full icalendar path it falls back to.
"""

from __future__ import annotations

import statistics
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.caldav_load import event as bench_event
from congvu.calendar import davxml, objects
from congvu.calendar import ical as cal_ical
from congvu.calendar.davxml import dav
from congvu.mailserver.imap import responses as r
from congvu.mailserver.mime import base_subject, parse_message


def timed(fn, repeat: int = 5) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def message_10kb() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Nguyễn Văn An <an.nv@hanoi.gov.vn>"
    msg["To"] = "Phòng Văn thư <vanthu@hanoi.gov.vn>"
    msg["Subject"] = "Công văn số 12/2026 về kế hoạch chuyển đổi số"
    msg.set_content("Kính gửi các đồng chí,\n" + "Nội dung chi tiết của công văn. " * 300)
    msg.add_attachment(b"%PDF-1.4 " + b"x" * 1000, maintype="application", subtype="pdf",
                       filename="Kế hoạch.pdf")
    return msg.as_bytes()


def multistatus_10000() -> bytes:
    ms = davxml.Multistatus(minimal=True)
    for i in range(10_000):
        ms.add(f"/dav/calendars/an/work/{i}.ics", {
            dav("getetag"): f'"{i:032x}"',
            dav("getcontenttype"): "text/calendar; charset=utf-8",
            dav("resourcetype"): None,
        }, not_found=[dav("displayname")])
    return ms.to_bytes()


def main() -> None:
    for n in (12_500, 25_000, 50_000):
        t = timed(lambda n=n: (base_subject("x" + " (fwd)" * n), base_subject("(fwd) " * n + "x")))
        print(f"base_subject, {n:>6} trailers: {t * 1000:8.1f} ms")
    raw = message_10kb()
    t = timed(lambda: [parse_message(raw) for _ in range(50)]) / 50
    print(f"parse_message, {len(raw)} bytes: {t * 1000:8.2f} ms per message")
    flag_sets = [("\\Seen",), ("\\Seen", "\\Flagged"), ()]
    t = timed(lambda: [r.fetch_response(i, [r.fetch_uid(i + 7), r.fetch_flags(flag_sets[i % 3])])
                       for i in range(1, 100_001)])
    print(f"100,000 FETCH (UID FLAGS) lines: {t * 1000:8.1f} ms")
    t = timed(multistatus_10000)
    print(f"PROPFIND Depth 1 multistatus, 10,000 items: {t * 1000:8.1f} ms")
    for label, body in (("plain", bench_event(1)), ("weekly COUNT=10", bench_event(20))):
        def put_parse(body: bytes = body) -> None:
            for _ in range(200):
                objects.index_of(objects.parse(body))
        fast = timed(put_parse) / 200
        with mock.patch.object(cal_ical, "parse_simple", lambda *a, **k: None):
            full = timed(put_parse) / 200
        print(f"PUT body parse + index, {label} event: {fast * 1e6:7.1f} us fast path, "
              f"{full * 1e6:7.1f} us full icalendar path")


if __name__ == "__main__":
    main()
