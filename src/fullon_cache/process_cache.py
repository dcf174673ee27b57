"""ProcessCache: the registry of running services, their heartbeats and system health.

Every service (ticker, OHLCV, bots, account, order executors, crawlers ...) registers a
process, then calls :meth:`ProcessCache.update_process` or
:meth:`ProcessCache.heartbeat` while it lives. Dashboards read
:meth:`ProcessCache.get_active_processes`, :meth:`ProcessCache.get_system_health` and
:meth:`ProcessCache.get_component_status`; a process whose heartbeat stopped shows up
as *stale*.

Layout: ``<ns>:process:{<process_id>}`` is a hash (process_type, component, params as
JSON, status, message, created_at, updated_at, heartbeat as epoch seconds) with a TTL of
``FULLON_CACHE_PROCESS_TTL`` seconds renewed by every heartbeat; ``<ns>:processes`` is a
sorted set of process ids scored by their last heartbeat. Storage is bounded: the record
of a dead process expires, index entries older than the TTL are trimmed on every
registration, and readers drop entries whose record is gone.

Example:
    >>> import asyncio
    >>> async def main() -> None:
    ...     async with ProcessCache() as cache:
    ...         pid = await cache.register_process(ProcessType.TICK, "binance")
    ...         await cache.update_process(pid, status=ProcessStatus.RUNNING)
    >>> asyncio.run(main())  # doctest: +SKIP
"""

from __future__ import annotations

import enum
import math
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar, cast

from redis.asyncio.cluster import RedisCluster

from fullon_cache.base_cache import BaseCache
from fullon_cache.codec import decode_any, encode
from fullon_cache.connection import guarded
from fullon_cache.exceptions import CacheConnectionError

__all__ = ["ProcessCache", "ProcessStatus", "ProcessType"]


class ProcessType(enum.StrEnum):
    """The kinds of service that register processes.

    Example:
        >>> ProcessType("tick") is ProcessType.TICK
        True
        >>> ProcessType.BOT == "bot"
        True
    """

    TICK = "tick"
    OHLCV = "ohlcv"
    BOT = "bot"
    ACCOUNT = "account"
    ORDER = "order"
    BOT_STATUS_SERVICE = "bot_status_service"
    CRAWLER = "crawler"
    USER_TRADES_SERVICE = "user_trades_service"


class ProcessStatus(enum.StrEnum):
    """The life-cycle states of a process.

    Example:
        >>> ProcessStatus("running") is ProcessStatus.RUNNING
        True
    """

    STARTING = "starting"
    RUNNING = "running"
    PROCESSING = "processing"
    IDLE = "idle"
    STOPPING = "stopping"
    STOPPED = "stopped"
    ERROR = "error"


# KEYS[1] process record; ARGV[1] ttl seconds, ARGV[2] now, then field/value pairs.
# 1 when the process exists (and was updated), 0 for an unknown process.
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return 0
end
redis.call('HSET', KEYS[1], 'heartbeat', ARGV[2], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS[1] process record; ARGV[1] cutoff. Deletes the record unless its heartbeat is
# newer than the cutoff (a heartbeat that raced the cleanup); 1 when gone, 0 when fresh.
_REAP = """
local beat = redis.call('HGET', KEYS[1], 'heartbeat')
if beat and tonumber(beat) > tonumber(ARGV[1]) then
    return 0
end
redis.call('DEL', KEYS[1])
return 1
"""

E = TypeVar("E", ProcessType, ProcessStatus)


def _member(kind: type[E], value: object, name: str) -> E:
    if isinstance(value, kind):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a {kind.__name__} or str, got {type(value).__name__}")
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValueError(f"unknown {name} {value!r}; expected one of: {allowed}") from None


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def _optional_text(value: object, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be str or None, got {type(value).__name__}")
    return value


def _params(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"params must be a mapping or None, got {type(value).__name__}")
    for name in value:
        if not isinstance(name, str):
            raise TypeError(f"params keys must be str, got {type(name).__name__}")
    return encode(dict(value))


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _stamp(raw: bytes) -> datetime:
    return datetime.fromtimestamp(float(raw), tz=UTC)


class ProcessCache(BaseCache):
    """Process registry with heartbeats, stale detection and a system health report.

    Example:
        >>> pid = await cache.register_process(ProcessType.BOT, "bot_7", params={"id": 7})
        >>> (await cache.get_process(pid))["params"]
        {'id': 7}
        >>> await cache.delete_process(pid)
        True
    """

    component: ClassVar[str] = "process"

    # -- writes ----------------------------------------------------------------------
    @guarded
    async def register_process(
        self,
        process_type: ProcessType | str,
        component: str,
        params: Mapping[str, Any] | None = None,
        message: str | None = None,
        status: ProcessStatus | str = ProcessStatus.STARTING,
    ) -> str:
        """Register a process and return its id (uuid4 hex). It counts as alive while it
        calls :meth:`heartbeat` or :meth:`update_process`.

        Example:
            >>> pid = await cache.register_process("tick", "binance", message="booting")
            >>> len(pid)
            32
            >>> record = await cache.get_process(pid)
            >>> record["process_type"], record["status"], record["message"]
            (<ProcessType.TICK: 'tick'>, <ProcessStatus.STARTING: 'starting'>, 'booting')
        """
        kind = _member(ProcessType, process_type, "process_type")
        component = _text(component, "component")
        encoded = _params(params)
        message = _optional_text(message, "message")
        state = _member(ProcessStatus, status, "status")
        process_id = uuid.uuid4().hex
        now = repr(time.time())
        record: dict[str, str | bytes] = {
            "process_type": kind.value,
            "component": component,
            "status": state.value,
            "created_at": now,
            "updated_at": now,
            "heartbeat": now,
        }
        if encoded is not None:
            record["params"] = encoded
        if message is not None:
            record["message"] = message
        key = self.keys.process(process_id)
        index = self.keys.process_index()
        ttl = self.settings.process_ttl
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping=record)  # type: ignore[arg-type]
            pipe.expire(key, ttl)
            pipe.zadd(index, {process_id: float(now)})
            # entries older than the record TTL belong to records that have expired
            pipe.zremrangebyscore(index, "-inf", f"({float(now) - ttl}")
            await pipe.execute()
        return process_id

    async def _touch(self, process_id: str, fields: list[str | bytes]) -> bool:
        now = repr(time.time())
        script = self._script(_TOUCH)
        key = self.keys.process(process_id)
        args = [self.settings.process_ttl, now, *fields]
        if not await script(keys=[key], args=args):
            return False
        await self.redis.zadd(self.keys.process_index(), {process_id: float(now)})
        return True

    @guarded
    async def update_process(
        self,
        process_id: str,
        status: ProcessStatus | str | None = None,
        message: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> bool:
        """Update a process's status, message and/or params (None leaves a field as it
        is); also a heartbeat. False for an unknown (deleted or expired) process.

        Example:
            >>> pid = await cache.register_process(ProcessType.OHLCV, "kraken")
            >>> await cache.update_process(pid, status="running", message="1m bars")
            True
            >>> (await cache.get_process(pid))["message"]
            '1m bars'
            >>> await cache.update_process("no-such-process", status="running")
            False
        """
        process_id = _text(process_id, "process_id")
        fields: list[str | bytes] = ["updated_at", repr(time.time())]
        if status is not None:
            fields += ["status", _member(ProcessStatus, status, "status").value]
        if message is not None:
            fields += ["message", cast(str, _optional_text(message, "message"))]
        encoded = _params(params)
        if encoded is not None:
            fields += ["params", encoded]
        return await self._touch(process_id, fields)

    @guarded
    async def heartbeat(self, process_id: str) -> bool:
        """Record that the process is alive (renews its record's TTL). False for an
        unknown process.

        Example:
            >>> pid = await cache.register_process(ProcessType.CRAWLER, "news")
            >>> await cache.heartbeat(pid)
            True
            >>> await cache.heartbeat("gone")
            False
        """
        return await self._touch(_text(process_id, "process_id"), [])

    @guarded
    async def delete_process(self, process_id: str) -> bool:
        """Remove a process (on a clean shutdown). True when it existed.

        Example:
            >>> pid = await cache.register_process(ProcessType.ORDER, "executor")
            >>> await cache.delete_process(pid)
            True
            >>> await cache.delete_process(pid)
            False
        """
        process_id = _text(process_id, "process_id")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.process(process_id))
            pipe.zrem(self.keys.process_index(), process_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    @guarded
    async def cleanup_stale_processes(self, older_than_minutes: float = 60) -> int:
        """Delete the processes whose last heartbeat is older than
        ``older_than_minutes``; returns how many were removed. A process that beats
        while the cleanup runs is kept.

        Example:
            >>> pid = await cache.register_process(ProcessType.ACCOUNT, "user_1")
            >>> await cache.cleanup_stale_processes(older_than_minutes=60)
            0
        """
        cutoff = time.time() - _positive(older_than_minutes, "older_than_minutes") * 60
        index = self.keys.process_index()
        ids = cast(list[bytes], await self.redis.zrangebyscore(index, "-inf", cutoff))
        script = self._script(_REAP)
        removed = 0
        for raw in ids:
            process_id = raw.decode()
            if await script(keys=[self.keys.process(process_id)], args=[repr(cutoff)]):
                removed += await self.redis.zrem(index, process_id)
        return removed

    # -- reads -----------------------------------------------------------------------
    def _view(self, process_id: str, raw: dict[bytes, bytes]) -> dict[str, Any]:
        params = raw.get(b"params")
        message = raw.get(b"message")
        return {
            "process_id": process_id,
            "process_type": ProcessType(raw[b"process_type"].decode()),
            "component": raw[b"component"].decode(),
            "params": {} if params is None else decode_any(params),
            "status": ProcessStatus(raw[b"status"].decode()),
            "message": None if message is None else message.decode(),
            "created_at": _stamp(raw[b"created_at"]),
            "updated_at": _stamp(raw[b"updated_at"]),
            "heartbeat": _stamp(raw[b"heartbeat"]),
        }

    @guarded
    async def get_process(self, process_id: str) -> dict[str, Any] | None:
        """One process as a dict (process_id, process_type, component, params, status,
        message, created_at, updated_at, heartbeat; datetimes UTC), or None.

        Example:
            >>> await cache.get_process("unknown") is None
            True
            >>> pid = await cache.register_process(ProcessType.BOT, "bot_1")
            >>> (await cache.get_process(pid))["component"]
            'bot_1'
        """
        process_id = _text(process_id, "process_id")
        raw = cast(dict[bytes, bytes], await self.redis.hgetall(self.keys.process(process_id)))
        return self._view(process_id, raw) if raw else None

    async def _load(self, since: float | None) -> list[dict[str, Any]]:
        """Processes whose last heartbeat is at or after ``since`` (all with None),
        newest heartbeat first. Index entries whose record is gone are removed."""
        index = self.keys.process_index()
        low = "-inf" if since is None else since
        found = cast(list[bytes], await self.redis.zrangebyscore(index, low, "+inf"))
        ids = [raw.decode() for raw in found]
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for process_id in ids:
                pipe.hgetall(self.keys.process(process_id))
            rows: list[dict[bytes, bytes]] = await pipe.execute()
        gone = [pid for pid, row in zip(ids, rows, strict=True) if not row]
        if gone:
            await self.redis.zrem(index, *gone)
        records = [self._view(pid, row) for pid, row in zip(ids, rows, strict=True) if row]
        records.sort(key=lambda record: record["heartbeat"], reverse=True)
        return records

    @guarded
    async def get_active_processes(
        self,
        process_type: ProcessType | str | None = None,
        component: str | None = None,
        since_minutes: float = 5,
    ) -> list[dict[str, Any]]:
        """Processes with a heartbeat in the last ``since_minutes``, optionally of one
        type and/or component, newest heartbeat first (dicts as :meth:`get_process`).

        Example:
            >>> pid = await cache.register_process(ProcessType.TICK, "binance")
            >>> _ = await cache.register_process(ProcessType.OHLCV, "binance")
            >>> [p["process_id"] == pid for p in await cache.get_active_processes("tick")]
            [True]
            >>> len(await cache.get_active_processes(component="binance"))
            2
        """
        kind = None if process_type is None else _member(ProcessType, process_type, "process_type")
        if component is not None:
            component = _text(component, "component")
        window = _positive(since_minutes, "since_minutes") * 60
        records = await self._load(time.time() - window)
        return [
            record
            for record in records
            if (kind is None or record["process_type"] is kind)
            and (component is None or record["component"] == component)
        ]

    async def _server_info(self) -> dict[str, Any]:
        client = self.redis
        if isinstance(client, RedisCluster):
            per_node = await client.info(target_nodes=RedisCluster.PRIMARIES)
            mode = "cluster"
        else:
            per_node = {f"{self.settings.host}:{self.settings.port}": await client.info()}
            mode = "standalone"
        nodes = {
            name: {
                "redis_version": info.get("redis_version"),
                "used_memory": info.get("used_memory", 0),
                "uptime_in_seconds": info.get("uptime_in_seconds", 0),
                "connected_clients": info.get("connected_clients", 0),
            }
            for name, info in sorted(per_node.items())
        }
        values = list(nodes.values())
        return {
            "connected": True,
            "mode": mode,
            "redis_version": ", ".join(sorted({str(n["redis_version"]) for n in values})),
            "used_memory": sum(n["used_memory"] for n in values),
            "uptime_in_seconds": min(n["uptime_in_seconds"] for n in values),
            "connected_clients": sum(n["connected_clients"] for n in values),
            "nodes": nodes,
        }

    @staticmethod
    def _is_stale(record: dict[str, Any], cutoff: datetime) -> bool:
        return bool(record["status"] is not ProcessStatus.STOPPED and record["heartbeat"] < cutoff)

    @guarded
    async def _health(self, stale_after: float) -> dict[str, Any]:
        now = datetime.now(UTC)
        cutoff = datetime.fromtimestamp(now.timestamp() - stale_after, tz=UTC)
        records = await self._load(None)
        stale = [r for r in records if self._is_stale(r, cutoff)]
        errors = [r for r in records if r["status"] is ProcessStatus.ERROR]
        by_type: dict[str, dict[str, int]] = {
            kind.value: {"total": 0, "active": 0, "stale": 0, "error": 0} for kind in ProcessType
        }
        stale_ids = {r["process_id"] for r in stale}
        for record in records:
            counts = by_type[record["process_type"].value]
            counts["total"] += 1
            if record["process_id"] in stale_ids:
                counts["stale"] += 1
            else:
                counts["active"] += 1
            counts["error"] += record["status"] is ProcessStatus.ERROR
        degraded = bool(stale or errors)
        return {
            "status": "degraded" if degraded else "healthy",
            "timestamp": now,
            "total_processes": len(records),
            "active_processes": len(records) - len(stale),
            "by_type": by_type,
            "stale_processes": stale,
            "error_processes": errors,
            "redis": await self._server_info(),
        }

    async def get_system_health(self, stale_after_seconds: float = 300.0) -> dict[str, Any]:
        """A health report: ``status`` ('healthy', 'degraded' when a process is stale
        or in error, 'down' when Redis cannot be reached), ``timestamp``,
        ``total_processes``, ``active_processes``, ``by_type`` (total/active/stale/error
        per process type), ``stale_processes`` (no heartbeat for
        ``stale_after_seconds``; stopped processes are never stale),
        ``error_processes`` and ``redis`` (connected, mode, redis_version, used_memory,
        uptime_in_seconds, connected_clients, summed over the masters of a cluster, and
        per node under ``nodes``).

        Example:
            >>> health = await cache.get_system_health()
            >>> health["status"], health["total_processes"], health["redis"]["connected"]
            ('healthy', 0, True)
            >>> pid = await cache.register_process(ProcessType.BOT, "bot_1", status="error")
            >>> (await cache.get_system_health())["status"]
            'degraded'
        """
        stale_after = _positive(stale_after_seconds, "stale_after_seconds")
        try:
            return await self._health(stale_after)
        except CacheConnectionError as exc:
            return {
                "status": "down",
                "timestamp": datetime.now(UTC),
                "total_processes": 0,
                "active_processes": 0,
                "by_type": {},
                "stale_processes": [],
                "error_processes": [],
                "redis": {"connected": False, "error": str(exc)},
            }

    @guarded
    async def get_component_status(
        self, component: str, stale_after_seconds: float = 300.0
    ) -> dict[str, Any] | None:
        """The state of one component, or None when no process of it is registered:
        ``component``, ``status``/``message``/``process_id``/``last_heartbeat`` of its
        newest process, ``process_count``, ``stale_count``, ``error_count``,
        ``healthy`` (no stale or error process) and ``processes``.

        Example:
            >>> await cache.get_component_status("binance") is None
            True
            >>> pid = await cache.register_process(ProcessType.TICK, "binance", status="running")
            >>> status = await cache.get_component_status("binance")
            >>> status["status"], status["process_count"], status["healthy"]
            (<ProcessStatus.RUNNING: 'running'>, 1, True)
        """
        component = _text(component, "component")
        stale_after = _positive(stale_after_seconds, "stale_after_seconds")
        records = [r for r in await self._load(None) if r["component"] == component]
        if not records:
            return None
        cutoff = datetime.fromtimestamp(time.time() - stale_after, tz=UTC)
        newest = records[0]
        stale = sum(self._is_stale(r, cutoff) for r in records)
        errors = sum(r["status"] is ProcessStatus.ERROR for r in records)
        return {
            "component": component,
            "status": newest["status"],
            "message": newest["message"],
            "process_id": newest["process_id"],
            "last_heartbeat": newest["heartbeat"],
            "process_count": len(records),
            "stale_count": stale,
            "error_count": errors,
            "healthy": not stale and not errors,
            "processes": records,
        }
