"""The ``congvu`` command: ``congvu serve`` and ``congvu admin ...``.

Every error a user can cause ends with one line on standard error and a
non-zero exit status (2 for bad input), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .config import ConfigError, load_settings


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML settings file (or CONGVU_CONFIG)")
    parser.add_argument("--data-dir", help="data directory (or CONGVU_DATA_DIR; default ./congvu-data)")


def build_parser() -> argparse.ArgumentParser:
    from .admin.commands import add_admin_parser

    parser = argparse.ArgumentParser(
        prog="congvu", description="Official mail and calendar server."
    )
    parser.add_argument("--version", action="version", version=f"congvu {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (SMTP, IMAP, CalDAV, web)")
    _common(serve)
    serve.add_argument(
        "--demo", action="store_true",
        help="seed a demo organisation into an empty database and print its logins",
    )
    admin = sub.add_parser("admin", help="administer domains, units, accounts, groups, delegation")
    _common(admin)
    add_admin_parser(admin)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, args.data_dir)
    except ConfigError as exc:
        print(f"congvu: error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        from .logsetup import setup_logging
        from .server import run

        setup_logging(settings.log_level, settings.log_format)
        try:
            run(settings, demo=args.demo)
        except KeyboardInterrupt:
            pass
        except OSError as exc:
            print(f"congvu: error: {exc}", file=sys.stderr)
            return 1
        return 0
    from .admin.commands import run_admin

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    return asyncio.run(run_admin(args, settings))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
