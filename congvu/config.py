"""Settings: read once from a TOML file and ``CONGVU_*`` environment variables.

Everything is a frozen dataclass so a running server cannot change its own
configuration by accident. Precedence, lowest first: built-in defaults, the
TOML file (``--config`` or ``CONGVU_CONFIG``), environment variables, and
command-line flags (``--data-dir``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from collections.abc import Mapping


class ConfigError(Exception):
    """A setting is missing, malformed or contradicts another."""


@dataclass(frozen=True)
class Listeners:
    """Where each protocol listens. A port of 0 disables that listener."""

    host: str = "127.0.0.1"
    smtp: int = 2525
    submission: int = 2587
    submissions: int = 2465
    imap: int = 2143
    imaps: int = 2993
    http: int = 8080
    https: int = 8443  # the same app over TLS (443 in production)


@dataclass(frozen=True)
class Limits:
    """Protocol limits, each answered with its own error code."""

    max_message_bytes: int = 50 * 1024 * 1024
    max_recipients: int = 1000
    max_line_length: int = 10000  # RFC 5321 §4.5.3.1.6 says 1000; real mail is sloppier
    max_header_count: int = 1000
    imap_max_literal: int = 64 * 1024 * 1024
    # SMTP MX, per client IP address (0: no limit): simultaneous connections
    # (421 4.7.0) and messages (MAIL commands) per minute (451 4.7.1).
    mx_connections_per_ip: int = 50
    mx_messages_per_ip_per_minute: int = 600
    # Networks the per-IP MX limits do not apply to (trusted relays, gateways).
    mx_limit_exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("congvu-data")
    database_url: str | None = None
    hostname: str = "localhost"
    listeners: Listeners = field(default_factory=Listeners)
    limits: Limits = field(default_factory=Limits)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Names of the unit tree's levels, top first (DESIGN: three levels).
    unit_levels: tuple[str, ...] = ("city", "district-or-department", "commune-or-ward")
    # The organisation's time zone: dates typed in the admin tool are local dates.
    timezone: str = "Asia/Ho_Chi_Minh"
    log_level: str = "INFO"
    log_format: str = "text"  # "text" or "json"
    # Allow LOGIN/AUTH without TLS from loopback clients (development, tests).
    allow_plaintext_loopback: bool = False
    # Authentication throttling (per account and per remote address).
    auth_window_seconds: int = 900
    auth_max_failures_per_account: int = 10
    auth_max_failures_per_ip: int = 30
    auth_failure_delay: float = 1.0
    # Retention of expunged mail, in days (official mail is a record).
    retention_days: int = 30
    # CalDAV schedule-inbox messages are removed this many days after they
    # arrived (clients such as Thunderbird and DAVx5 never empty it); 0 keeps them.
    schedule_inbox_days: int = 30
    # Outbound delivery: smarthost "host:port" or None for MX lookup.
    smarthost: str | None = None
    queue_lifetime_hours: int = 120
    default_quota_bytes: int = 2 * 1024 * 1024 * 1024
    # Inbound mail failing DMARC under p=reject: "reject" (550 5.7.1) or "junk".
    dmarc_reject_action: str = "reject"
    # Where mail to <postmaster> (RFC 5321 §4.5.1) and to postmaster@ a hosted
    # domain without such an address goes: an account, alias or group here.
    # None: the accounts holding the global admin role.
    postmaster: str | None = None

    @property
    def pg_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def cert_path(self) -> Path:
        return self.tls_cert or self.data_dir / "tls" / "cert.pem"

    @property
    def key_path(self) -> Path:
        return self.tls_key or self.data_dir / "tls" / "key.pem"


_SECTIONS = {"listeners": Listeners, "limits": Limits}
_PATHS = {"data_dir", "tls_cert", "tls_key"}


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Turn a TOML or environment value into the type of the default."""
    if name in _PATHS:
        return None if value in (None, "") else Path(str(value))
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if isinstance(default, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a whole number, got {value!r}") from None
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if isinstance(default, tuple):
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, list):
            items = [str(v) for v in value]
        else:
            raise ConfigError(f"{name}: expected a list")
        if not items:
            raise ConfigError(f"{name}: must not be empty")
        return tuple(items)
    return None if value is None else str(value)


def _apply(obj: Any, values: Mapping[str, Any], where: str) -> Any:
    changes: dict[str, Any] = {}
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        current = getattr(obj, name)
        if name in _SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: [{name}] must be a table")
            changes[name] = _apply(current, value, f"{where} [{name}]")
        else:
            default = getattr(type(obj)(), name)
            changes[name] = _coerce(name, value, default if default is not None else "")
    return replace(obj, **changes)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from defaults, the TOML file, the environment and flags."""
    env = os.environ if environ is None else environ
    settings = Settings()
    path = config_file or env.get("CONGVU_CONFIG")
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        settings = _apply(settings, data, str(path))
    env_values: dict[str, Any] = {}
    for f in fields(Settings):
        key = "CONGVU_" + f.name.upper()
        if f.name not in _SECTIONS and key in env:
            env_values[f.name] = env[key]
    for section, cls in _SECTIONS.items():
        sub = {
            f.name: env["CONGVU_" + section.upper() + "_" + f.name.upper()]
            for f in fields(cls)
            if "CONGVU_" + section.upper() + "_" + f.name.upper() in env
        }
        if sub:
            env_values[section] = sub
    if env_values:
        settings = _apply(settings, env_values, "environment")
    if data_dir is not None:
        settings = replace(settings, data_dir=Path(data_dir))
    if settings.database_url == "":
        settings = replace(settings, database_url=None)
    return settings
