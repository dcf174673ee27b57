"""Settings: every knob of the library, read from the environment and a `.env` file.

Values come from, in order of precedence:

1. the process environment (``os.environ``);
2. a ``.env`` file: the one named by ``DOTENV_FILE`` if set, else the nearest
   ``.env`` found from the current working directory upwards;
3. the defaults below.

The ``.env`` file is read, never written into ``os.environ``: the library does not
change its host process's environment. Settings are read once and cached;
:func:`reload_settings` re-reads them (``ConnectionPool.reset_async()`` calls it).

Example:
    >>> from fullon_cache.config import get_settings
    >>> get_settings().ttl_order > 0
    True
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from dotenv import dotenv_values, find_dotenv

__all__ = ["Settings", "get_settings", "reload_settings", "settings_from"]

_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_DSN_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Immutable library settings. Build them with :func:`settings_from` or
    :func:`get_settings`; every field maps to one environment variable.

    Example:
        >>> Settings(port=6380).port
        6380
    """

    host: str = "localhost"  # REDIS_HOST
    port: int = 6379  # REDIS_PORT
    db: int = 0  # REDIS_DB
    username: str | None = None  # REDIS_USERNAME
    password: str | None = None  # REDIS_PASSWORD
    max_connections: int = 50  # REDIS_MAX_CONNECTIONS
    socket_timeout: float = 5.0  # REDIS_SOCKET_TIMEOUT
    socket_connect_timeout: float = 5.0  # REDIS_SOCKET_CONNECT_TIMEOUT
    ssl: bool = False  # REDIS_SSL
    ssl_ca_certs: str | None = None  # REDIS_SSL_CA_CERTS
    ssl_certfile: str | None = None  # REDIS_SSL_CERTFILE
    ssl_keyfile: str | None = None  # REDIS_SSL_KEYFILE
    cluster_mode: bool = False  # REDIS_CLUSTER_MODE
    cluster_nodes: tuple[tuple[str, int], ...] = ()  # REDIS_CLUSTER_NODES
    namespace: str = "fullon"  # FULLON_CACHE_NAMESPACE
    retry_attempts: int = 3  # FULLON_CACHE_RETRY_ATTEMPTS
    retry_backoff: float = 0.05  # FULLON_CACHE_RETRY_BACKOFF (first back-off, seconds)
    retry_backoff_cap: float = 1.0  # FULLON_CACHE_RETRY_BACKOFF_CAP
    breaker_threshold: int = 5  # FULLON_CACHE_BREAKER_THRESHOLD (0 disables)
    breaker_cooldown: float = 5.0  # FULLON_CACHE_BREAKER_COOLDOWN
    wait_replicas: int = 0  # FULLON_CACHE_WAIT_REPLICAS (replicas a critical write must reach)
    wait_timeout_ms: int = 1000  # FULLON_CACHE_WAIT_TIMEOUT_MS (how long WAIT may block)
    ttl_exchange: int = 86400  # CACHE_TTL_EXCHANGE
    ttl_symbol: int = 86400  # CACHE_TTL_SYMBOL
    ttl_order: int = 3600  # CACHE_TTL_ORDER
    ttl_order_done: int = 604800  # FULLON_CACHE_TTL_ORDER_DONE (finished orders; 0: never)
    negative_ttl: int = 30  # FULLON_CACHE_NEGATIVE_TTL (read-through misses)
    tick_max_age: float = 60.0  # FULLON_CACHE_TICK_MAX_AGE (seconds before stale)
    ohlcv_max_bars: int = 10_000  # FULLON_CACHE_OHLCV_MAX_BARS
    trade_dedupe_window: int = 3600  # FULLON_CACHE_TRADE_DEDUPE_WINDOW (seconds)
    lock_lease: float = 30.0  # FULLON_CACHE_LOCK_LEASE (seconds)
    process_ttl: int = 86400  # FULLON_CACHE_PROCESS_TTL (seconds a silent process is kept)
    order_visibility_timeout: float = 30.0  # FULLON_CACHE_ORDER_VISIBILITY_TIMEOUT
    order_max_deliveries: int = 5  # FULLON_CACHE_ORDER_MAX_DELIVERIES
    max_list_length: int = 100_000  # FULLON_CACHE_MAX_LIST_LENGTH (queues, trades)
    global_error_max: int = 1000  # FULLON_CACHE_GLOBAL_ERROR_MAX
    log_dir: str = "/tmp/fullon_log"  # FULLON_CACHE_LOG_DIR
    database_url: str | None = None  # FULLON_CACHE_DATABASE_URL (PostgresSource DSN)

    def __post_init__(self) -> None:
        if not _NAMESPACE_RE.match(self.namespace):
            raise ValueError(
                f"namespace {self.namespace!r} must be 1-64 characters of A-Z a-z 0-9 _ . -"
            )
        if self.cluster_mode and not self.cluster_nodes:
            raise ValueError("REDIS_CLUSTER_MODE is on but REDIS_CLUSTER_NODES is empty")
        if self.wait_replicas < 0:
            raise ValueError(f"wait_replicas must be >= 0, got {self.wait_replicas!r}")
        if self.wait_timeout_ms < 1:
            # WAIT with a 0 timeout blocks forever: never allowed.
            raise ValueError(f"wait_timeout_ms must be >= 1, got {self.wait_timeout_ms!r}")
        for name in ("socket_timeout", "socket_connect_timeout", "lock_lease"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.redacted().items())
        return f"Settings({fields})"

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with the password hidden, safe to log or print.

        Example:
            >>> Settings(password="s3cret").redacted()["password"]
            '***'
        """
        data = msgspec.structs.asdict(self)
        if data["password"]:
            data["password"] = "***"
        if data["database_url"]:
            data["database_url"] = _DSN_PASSWORD.sub(r"\1***@", data["database_url"])
        return data


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def _parse_nodes(raw: str) -> tuple[tuple[str, int], ...]:
    nodes: list[tuple[str, int]] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host:
            raise ValueError(f"cluster node {item!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    return tuple(nodes)


def _optional(raw: str) -> str | None:
    return raw or None


_Parser = Callable[[str], Any]

# field name -> (environment variable, parser)
_VARIABLES: dict[str, tuple[str, _Parser]] = {
    "host": ("REDIS_HOST", str),
    "port": ("REDIS_PORT", int),
    "db": ("REDIS_DB", int),
    "username": ("REDIS_USERNAME", _optional),
    "password": ("REDIS_PASSWORD", _optional),
    "max_connections": ("REDIS_MAX_CONNECTIONS", int),
    "socket_timeout": ("REDIS_SOCKET_TIMEOUT", float),
    "socket_connect_timeout": ("REDIS_SOCKET_CONNECT_TIMEOUT", float),
    "ssl": ("REDIS_SSL", _parse_bool),
    "ssl_ca_certs": ("REDIS_SSL_CA_CERTS", _optional),
    "ssl_certfile": ("REDIS_SSL_CERTFILE", _optional),
    "ssl_keyfile": ("REDIS_SSL_KEYFILE", _optional),
    "cluster_mode": ("REDIS_CLUSTER_MODE", _parse_bool),
    "cluster_nodes": ("REDIS_CLUSTER_NODES", _parse_nodes),
    "namespace": ("FULLON_CACHE_NAMESPACE", str),
    "retry_attempts": ("FULLON_CACHE_RETRY_ATTEMPTS", int),
    "retry_backoff": ("FULLON_CACHE_RETRY_BACKOFF", float),
    "retry_backoff_cap": ("FULLON_CACHE_RETRY_BACKOFF_CAP", float),
    "breaker_threshold": ("FULLON_CACHE_BREAKER_THRESHOLD", int),
    "breaker_cooldown": ("FULLON_CACHE_BREAKER_COOLDOWN", float),
    "wait_replicas": ("FULLON_CACHE_WAIT_REPLICAS", int),
    "wait_timeout_ms": ("FULLON_CACHE_WAIT_TIMEOUT_MS", int),
    "ttl_exchange": ("CACHE_TTL_EXCHANGE", int),
    "ttl_symbol": ("CACHE_TTL_SYMBOL", int),
    "ttl_order": ("CACHE_TTL_ORDER", int),
    "ttl_order_done": ("FULLON_CACHE_TTL_ORDER_DONE", int),
    "negative_ttl": ("FULLON_CACHE_NEGATIVE_TTL", int),
    "tick_max_age": ("FULLON_CACHE_TICK_MAX_AGE", float),
    "ohlcv_max_bars": ("FULLON_CACHE_OHLCV_MAX_BARS", int),
    "trade_dedupe_window": ("FULLON_CACHE_TRADE_DEDUPE_WINDOW", int),
    "lock_lease": ("FULLON_CACHE_LOCK_LEASE", float),
    "process_ttl": ("FULLON_CACHE_PROCESS_TTL", int),
    "order_visibility_timeout": ("FULLON_CACHE_ORDER_VISIBILITY_TIMEOUT", float),
    "order_max_deliveries": ("FULLON_CACHE_ORDER_MAX_DELIVERIES", int),
    "max_list_length": ("FULLON_CACHE_MAX_LIST_LENGTH", int),
    "global_error_max": ("FULLON_CACHE_GLOBAL_ERROR_MAX", int),
    "log_dir": ("FULLON_CACHE_LOG_DIR", str),
    "database_url": ("FULLON_CACHE_DATABASE_URL", _optional),
}


def settings_from(values: Mapping[str, str | None]) -> Settings:
    """Build :class:`Settings` from a mapping of environment variable names.

    Unknown names are ignored; a value that does not parse raises ValueError naming
    the variable.

    Example:
        >>> settings_from({"REDIS_PORT": "6390", "REDIS_SSL": "true"}).port
        6390
    """
    kwargs: dict[str, Any] = {}
    for field, (variable, parse) in _VARIABLES.items():
        raw = values.get(variable)
        if raw is None:
            continue
        try:
            kwargs[field] = parse(raw)
        except ValueError as exc:
            raise ValueError(f"{variable}={raw!r}: {exc}") from exc
    return Settings(**kwargs)


def _dotenv_path() -> str:
    explicit = os.environ.get("DOTENV_FILE")
    if explicit:
        return explicit
    return find_dotenv(usecwd=True)


def _read_environment() -> Settings:
    path = _dotenv_path()
    values: dict[str, str | None] = dict(dotenv_values(path)) if path else {}
    values.update(os.environ)
    return settings_from(values)


_current: Settings | None = None


def get_settings() -> Settings:
    """The current settings, read from the environment and `.env` on first use.

    Example:
        >>> get_settings() is get_settings()
        True
    """
    global _current
    if _current is None:
        _current = _read_environment()
    return _current


def reload_settings() -> Settings:
    """Re-read the environment and the `.env` file and return the new settings.

    Example:
        >>> isinstance(reload_settings(), Settings)
        True
    """
    global _current
    _current = _read_environment()
    return _current
