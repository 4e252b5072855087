"""``congvu admin``: every command, and every bad input exits 2 with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from congvu.cli import main


PW = "Mật-khẩu-2026!"


def ok(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 0, err
    return out


def fails(result: tuple[int, str, str], fragment: str) -> None:
    code, out, err = result
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert fragment in lines[0], lines[0]


@pytest.fixture
def city(cli):
    ok(cli("domain", "add", "hanoi.gov.vn"))
    ok(cli("unit", "add", "ubnd-tp", "--name", "UBND Thành phố Hà Nội"))
    ok(cli("unit", "add", "so-tttt", "--name", "Sở Thông tin và Truyền thông", "--parent", "ubnd-tp"))
    ok(cli("unit", "add", "q-hk", "--name", "UBND quận Hoàn Kiếm", "--parent", "ubnd-tp"))
    ok(cli("unit", "add", "p-ht", "--name", "UBND phường Hàng Trống", "--parent", "q-hk"))
    ok(cli("account", "add", "an.nv@hanoi.gov.vn", "--name", "Nguyễn Văn An", "--unit", "so-tttt",
           "--title", "Giám đốc", "--password-stdin", stdin=PW + "\n"))
    ok(cli("account", "add", "thu.lt@hanoi.gov.vn", "--name", "Lê Thị Thu", "--unit", "so-tttt",
           "--title", "Thư ký", "--password-stdin", stdin=PW + "\n"))
    return cli


def test_domains_and_units(city) -> None:
    assert ok(city("domain", "list")).split() == ["hanoi.gov.vn"]
    tree = ok(city("unit", "list"))
    assert tree.splitlines() == [
        "ubnd-tp  UBND Thành phố Hà Nội  [city]",
        "├── so-tttt  Sở Thông tin và Truyền thông  [district-or-department]",
        "└── q-hk  UBND quận Hoàn Kiếm  [district-or-department]",
        "    └── p-ht  UBND phường Hàng Trống  [commune-or-ward]",
    ]
    ok(city("unit", "add", "q-bd", "--name", "UBND quận Ba Đình", "--parent", "ubnd-tp"))
    assert "commune-or-ward" in ok(city("unit", "move", "p-ht", "--parent", "q-bd"))
    assert "(mới)" in ok(city("unit", "rename", "q-bd", "--name", "Quận Ba Đình (mới)"))
    fails(city("domain", "add", "hanoi.gov.vn"), "already exists")
    fails(city("domain", "add", "not a domain"), "malformed domain")
    fails(city("unit", "add", "so-tttt", "--name", "X", "--parent", "ubnd-tp"), "already exists")
    fails(city("unit", "add", "x", "--name", "X", "--parent", "nowhere"), "unknown unit")
    fails(city("unit", "move", "q-bd", "--parent", "p-ht"), "cannot move")
    fails(city("unit", "add", "to-1", "--name", "Tổ 1", "--parent", "p-ht"), "levels")


def test_accounts(city) -> None:
    listing = ok(city("account", "list"))
    assert "an.nv@hanoi.gov.vn" in listing and "Nguyễn Văn An" in listing
    shown = ok(city("account", "show", "an.nv@hanoi.gov.vn"))
    assert "Giám đốc" in shown and "Password:  set" in shown
    assert "argon2" not in shown
    assert "an.nv" in ok(city("account", "list", "--search", "nguyen van"))
    ok(city("account", "passwd", "an.nv@hanoi.gov.vn", "--password-stdin", stdin="Khác-hẳn-2027#\n"))
    assert "disabled" in ok(city("account", "disable", "an.nv@hanoi.gov.vn"))
    assert "enabled" in ok(city("account", "enable", "an.nv@hanoi.gov.vn"))
    assert str(2 * 1024**3) in ok(city("account", "quota", "an.nv@hanoi.gov.vn", "2G"))
    assert "default" in ok(city("account", "quota", "an.nv@hanoi.gov.vn", "none"))
    assert "schedule-manager:so-tttt" in ok(
        city("account", "role", "thu.lt@hanoi.gov.vn", "--add", "schedule-manager:so-tttt"))
    ok(city("account", "update", "thu.lt@hanoi.gov.vn", "--title", "Chuyên viên"))
    ok(city("account", "remove", "thu.lt@hanoi.gov.vn"))
    assert "thu.lt" not in ok(city("account", "list"))


def test_account_bad_input(city) -> None:
    args = ["--name", "X", "--unit", "so-tttt", "--password-stdin"]
    fails(city("account", "add", "an.nv@hanoi.gov.vn", *args, stdin=PW + "\n"), "already in use")
    fails(city("account", "add", "no-at-sign", *args, stdin=PW + "\n"), "malformed address")
    fails(city("account", "add", "x@hanoi.gov.vn", "--name", "X", "--unit", "nowhere",
               "--password-stdin", stdin=PW + "\n"), "unknown unit")
    fails(city("account", "add", "x@hanoi.gov.vn", *args, stdin="abc\n"), "weak password")
    fails(city("account", "add", "x@other.vn", *args, stdin=PW + "\n"), "not served")
    fails(city("account", "passwd", "an.nv@hanoi.gov.vn"), "--password-stdin")
    fails(city("account", "quota", "an.nv@hanoi.gov.vn", "lots"), "malformed size")
    fails(city("account", "show", "ghost@hanoi.gov.vn"), "no account")
    fails(city("account", "role", "an.nv@hanoi.gov.vn", "--add", "king"), "unknown role")
    assert "x@hanoi.gov.vn" not in ok(city("account", "list"))


def test_aliases_groups_and_delegation(city) -> None:
    ok(city("alias", "add", "giamdoc@hanoi.gov.vn", "an.nv@hanoi.gov.vn"))
    assert "giamdoc@hanoi.gov.vn" in ok(city("account", "show", "an.nv@hanoi.gov.vn"))
    fails(city("alias", "add", "thu.lt@hanoi.gov.vn", "an.nv@hanoi.gov.vn"), "already in use")
    ok(city("alias", "remove", "giamdoc@hanoi.gov.vn"))
    fails(city("alias", "remove", "giamdoc@hanoi.gov.vn"), "no alias")

    ok(city("group", "add", "so-tttt-all@hanoi.gov.vn", "--name", "Toàn Sở"))
    ok(city("group", "add-member", "so-tttt-all@hanoi.gov.vn", "unit:so-tttt"))
    ok(city("group", "add-member", "so-tttt-all@hanoi.gov.vn", "an.nv@hanoi.gov.vn"))
    assert "unit:so-tttt" in ok(city("group", "members", "so-tttt-all@hanoi.gov.vn"))
    assert "so-tttt-all@hanoi.gov.vn" in ok(city("group", "list"))
    expanded = ok(city("group", "expand", "so-tttt-all@hanoi.gov.vn")).split()
    assert expanded == ["an.nv@hanoi.gov.vn", "thu.lt@hanoi.gov.vn"]
    ok(city("group", "remove-member", "so-tttt-all@hanoi.gov.vn", "an.nv@hanoi.gov.vn"))
    fails(city("group", "add-member", "so-tttt-all@hanoi.gov.vn", "ghost@hanoi.gov.vn"), "no account")

    out = ok(city("delegate", "grant", "an.nv@hanoi.gov.vn", "--to", "thu.lt@hanoi.gov.vn",
                  "--scope", "calendar-write,mail-send-on-behalf", "--until", "2099-12-31"))
    assert "until 2100-01-01 00:00" in out
    listing = ok(city("delegate", "list"))
    assert "calendar-write,mail-send-on-behalf" in listing and "active" in listing
    ok(city("delegate", "grant", "an.nv@hanoi.gov.vn", "--to", "thu.lt@hanoi.gov.vn",
            "--scope", "mail-read", "--from", "2020-01-01", "--until", "2020-12-31"))
    assert "inactive" in ok(city("delegate", "list", "--owner", "an.nv@hanoi.gov.vn"))
    fails(city("delegate", "grant", "an.nv@hanoi.gov.vn", "--to", "thu.lt@hanoi.gov.vn",
               "--scope", "everything"), "unknown scope")
    fails(city("delegate", "grant", "an.nv@hanoi.gov.vn", "--to", "thu.lt@hanoi.gov.vn",
               "--scope", "mail-read", "--until", "31/12/2026"), "malformed date")
    ok(city("delegate", "revoke", "an.nv@hanoi.gov.vn", "--to", "thu.lt@hanoi.gov.vn"))
    fails(city("delegate", "revoke", "an.nv@hanoi.gov.vn", "--to", "thu.lt@hanoi.gov.vn"),
          "no such delegation")

    audit = ok(city("audit", "--action", "delegate."))
    assert "delegate.revoke" in audit and "delegate.grant" in audit
    assert "account.add" not in audit


def write_csv(path: Path, rows: list[str]) -> str:
    path.write_text("address,name,unit,title,quota\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def test_import_5000_accounts_twice(city, tmp_path) -> None:
    rows = [f"cb{i:04d}@hanoi.gov.vn,Cán bộ số {i},so-tttt,Chuyên viên,1G" for i in range(5000)]
    path = write_csv(tmp_path / "accounts.csv", rows)
    code, out, err = city("import", "accounts", path)
    assert code == 0, err
    assert "imported 5000 accounts" in out
    assert "imported 2500/5000 (50%)" in err and "imported 5000/5000 (100%)" in err
    # again: every row is a duplicate, reported by line, nothing added
    code, out, err = city("import", "accounts", path)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0] == "congvu: line 2: cb0000@hanoi.gov.vn already exists"
    assert lines[4999] == "congvu: line 5001: cb4999@hanoi.gov.vn already exists"
    assert lines[-1] == "congvu: error: 5000 bad row(s); nothing was imported"
    assert ok(city("account", "list", "--unit", "so-tttt")).count("@hanoi.gov.vn") == 5002


def test_import_bad_files(city, tmp_path) -> None:
    fails(city("import", "accounts", str(tmp_path / "missing.csv")), "cannot read")
    (tmp_path / "latin1.csv").write_bytes("address,name\nx@hanoi.gov.vn,Nguy\xeany\n".encode("latin-1"))
    fails(city("import", "accounts", str(tmp_path / "latin1.csv")), "not UTF-8")
    (tmp_path / "cols.csv").write_text("email,fullname\n", encoding="utf-8")
    fails(city("import", "accounts", str(tmp_path / "cols.csv")), "unknown column")
    bad = write_csv(tmp_path / "bad.csv", ["ok1@hanoi.gov.vn,Một,so-tttt,,",
                                           "broken,Hai,so-tttt,,",
                                           "ok3@hanoi.gov.vn,Ba,nowhere,,"])
    code, _, err = city("import", "accounts", bad)
    assert code == 2
    assert "line 3: malformed address" in err and "line 4: unknown unit" in err
    assert "ok1@" not in ok(city("account", "list"))


def test_bad_config_is_one_line(tmp_path, capsys) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[listeners]\nsmtp = 'abc'\n")
    assert main(["admin", "--config", str(cfg), "domain", "list"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "expected a whole number" in err
