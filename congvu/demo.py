"""``congvu serve --demo``: a small city administration to try everything with.

Seeded only into an empty database (no domain yet), so restarting with
``--demo`` never duplicates or overwrites anything.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, UTC

from .config import Settings
from .directory.service import Directory, NewAccount
from .store.db import Database

log = logging.getLogger(__name__)

DEMO_DOMAIN = "hanoi.gov.vn"
DEMO_PASSWORD = "Congvu@2026"
ACTOR = "demo-seed"

UNITS = [
    ("ubnd-tp", "UBND Thành phố Hà Nội", None),
    ("so-tttt", "Sở Thông tin và Truyền thông", "ubnd-tp"),
    ("ubnd-q-hoan-kiem", "UBND quận Hoàn Kiếm", "ubnd-tp"),
    ("ubnd-p-hang-trong", "UBND phường Hàng Trống", "ubnd-q-hoan-kiem"),
    ("ubnd-p-trang-tien", "UBND phường Tràng Tiền", "ubnd-q-hoan-kiem"),
]

# (local part, name, unit, title, roles)
PEOPLE = [
    ("admin", "Quản trị hệ thống", "so-tttt", "Quản trị viên", ("admin",)),
    ("chutich", "Trần Sỹ Thanh", "ubnd-tp", "Chủ tịch UBND Thành phố",
     ()),
    ("vanphong", "Lê Thị Hương", "ubnd-tp", "Chánh Văn phòng", ("schedule-manager:ubnd-tp",)),
    ("an.nv", "Nguyễn Văn An", "so-tttt", "Giám đốc Sở", ()),
    ("thu.lt", "Lê Thị Thu", "so-tttt", "Thư ký Giám đốc", ("schedule-manager:so-tttt",)),
    ("binh.tq", "Trần Quốc Bình", "so-tttt", "Phó Giám đốc Sở", ()),
    ("cuong.pv", "Phạm Văn Cường", "ubnd-q-hoan-kiem", "Chủ tịch UBND quận",
     ("unit-admin:ubnd-q-hoan-kiem",)),
    ("dung.ht", "Hoàng Thị Dung", "ubnd-q-hoan-kiem", "Chánh Văn phòng quận",
     ("schedule-manager:ubnd-q-hoan-kiem",)),
    ("giang.dt", "Đỗ Trường Giang", "ubnd-p-hang-trong", "Chủ tịch UBND phường", ()),
    ("hoa.nt", "Ngô Thị Hoa", "ubnd-p-hang-trong", "Công chức Văn phòng - Thống kê", ()),
    ("khanh.vd", "Vũ Duy Khánh", "ubnd-p-trang-tien", "Chủ tịch UBND phường", ()),
]


async def seed_demo(db: Database, settings: Settings) -> bool:
    """Create the demo organisation if the database is empty; print the logins."""
    async with db.connection() as conn:
        if await conn.fetchval("SELECT count(*) FROM domains"):
            log.info("demo: database is not empty, nothing seeded")
            print("Demo: the database already has data; nothing was added.", flush=True)
            return False
    d = Directory(db, settings)
    await d.add_domain(DEMO_DOMAIN, ACTOR)
    for slug, name, parent in UNITS:
        await d.add_unit(slug, name, parent, ACTOR)
    for local, name, unit, title, roles in PEOPLE:
        await d.add_account(
            NewAccount(f"{local}@{DEMO_DOMAIN}", name, unit, title, DEMO_PASSWORD, roles=roles), ACTOR
        )
    await d.add_account(
        NewAccount(f"phong-hop-1@{DEMO_DOMAIN}", "Phòng họp số 1 (tầng 3)", "ubnd-tp",
                   "Phòng họp 30 chỗ", None, kind="room"), ACTOR
    )
    await d.add_group(f"toan-quan-hoan-kiem@{DEMO_DOMAIN}",
                      "Toàn thể cán bộ quận Hoàn Kiếm và các phường", ACTOR)
    await d.add_member(f"toan-quan-hoan-kiem@{DEMO_DOMAIN}", "unit:ubnd-q-hoan-kiem+sub", ACTOR)
    await d.add_alias(f"giamdoc.tttt@{DEMO_DOMAIN}", f"an.nv@{DEMO_DOMAIN}", ACTOR)
    await d.grant(
        f"an.nv@{DEMO_DOMAIN}", f"thu.lt@{DEMO_DOMAIN}",
        "calendar-write,mail-read,mail-send-on-behalf", ACTOR,
        valid_until=datetime.now(UTC) + timedelta(days=365),
    )
    print("Demo organisation created. Every login below has the password "
          f"{DEMO_PASSWORD!r}:", flush=True)
    for local, name, _unit, title, _ in PEOPLE:
        print(f"  {local + '@' + DEMO_DOMAIN:<32} {name} — {title}", flush=True)
    print(f"  Delegation: an.nv@{DEMO_DOMAIN} -> thu.lt@{DEMO_DOMAIN} "
          "(calendar-write, mail-read, mail-send-on-behalf)", flush=True)
    return True
