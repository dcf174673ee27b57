"""ProcessCache on a real server (standalone and cluster): registration, heartbeats,
active processes, bounded storage, cleanup and the system health report."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from fullon_cache.config import Settings
from fullon_cache.embedded import free_port
from fullon_cache.exceptions import CacheConnectionError
from fullon_cache.process_cache import ProcessCache, ProcessStatus, ProcessType

DEADLINE = 60.0  # generous: only bounds a hang, never asserts speed


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it is true; fail only after a generous deadline."""
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        await asyncio.sleep(0.05)


def is_utc(value: datetime) -> bool:
    offset = value.utcoffset()
    return offset is not None and offset.total_seconds() == 0


# -- enums --------------------------------------------------------------------------------
def test_enums_are_str_enums_with_the_contract_values() -> None:
    assert [t.value for t in ProcessType] == [
        "tick",
        "ohlcv",
        "bot",
        "account",
        "order",
        "bot_status_service",
        "crawler",
        "user_trades_service",
    ]
    assert [s.value for s in ProcessStatus] == [
        "starting",
        "running",
        "processing",
        "idle",
        "stopping",
        "stopped",
        "error",
    ]
    assert isinstance(ProcessType.TICK, str) and ProcessType.TICK == "tick"
    assert isinstance(ProcessStatus.ERROR, str) and f"{ProcessStatus.ERROR}" == "error"


# -- registration and updates -------------------------------------------------------------
async def test_register_and_get_process(settings: Settings) -> None:
    async with ProcessCache() as cache:
        before = datetime.now(UTC).replace(microsecond=0)
        pid = await cache.register_process(ProcessType.TICK, "binance")
        record = await cache.get_process(pid)
        assert record is not None
        assert record["process_id"] == pid
        assert record["process_type"] is ProcessType.TICK
        assert record["component"] == "binance"
        assert record["params"] == {}
        assert record["status"] is ProcessStatus.STARTING
        assert record["message"] is None
        for name in ("created_at", "updated_at", "heartbeat"):
            assert is_utc(record[name]) and record[name] >= before
        assert record["created_at"] == record["updated_at"] == record["heartbeat"]

        other = await cache.register_process(
            "bot", "bot_7", params={"symbols": ["BTC/USDT"], "id": 7}, message="hi", status="idle"
        )
        assert other != pid
        record = await cache.get_process(other)
        assert record is not None
        assert record["process_type"] is ProcessType.BOT
        assert record["params"] == {"symbols": ["BTC/USDT"], "id": 7}
        assert (record["status"], record["message"]) == (ProcessStatus.IDLE, "hi")
        assert await cache.get_process("nope") is None


async def test_concurrent_registrations_get_distinct_ids(settings: Settings) -> None:
    async with ProcessCache() as cache:
        ids = await asyncio.gather(
            *(cache.register_process(ProcessType.CRAWLER, f"c{i}") for i in range(20))
        )
        assert len(set(ids)) == 20
        assert len(await cache.get_active_processes(ProcessType.CRAWLER)) == 20


async def test_update_process_changes_only_what_is_given(settings: Settings) -> None:
    async with ProcessCache() as cache:
        pid = await cache.register_process("ohlcv", "kraken", params={"tf": "1m"}, message="m0")
        first = await cache.get_process(pid)
        assert first is not None
        assert await cache.update_process(pid) is True  # a plain heartbeat
        record = await cache.get_process(pid)
        assert record is not None
        assert (record["status"], record["message"], record["params"]) == (
            ProcessStatus.STARTING,
            "m0",
            {"tf": "1m"},
        )
        assert record["heartbeat"] >= first["heartbeat"]
        assert record["updated_at"] >= first["updated_at"]
        assert await cache.update_process(pid, status=ProcessStatus.RUNNING)
        assert await cache.update_process(pid, message="m1")
        assert await cache.update_process(pid, params={"tf": "5m"})
        record = await cache.get_process(pid)
        assert record is not None
        assert (record["status"], record["message"], record["params"]) == (
            ProcessStatus.RUNNING,
            "m1",
            {"tf": "5m"},
        )
        assert record["created_at"] == first["created_at"]
        assert await cache.update_process(pid, status="error", message="", params={})
        record = await cache.get_process(pid)
        assert record is not None
        assert (record["status"], record["message"], record["params"]) == (
            ProcessStatus.ERROR,
            "",
            {},
        )


async def test_unknown_process_is_never_created_by_updates(settings: Settings) -> None:
    async with ProcessCache() as cache:
        assert await cache.update_process("ghost", status="running") is False
        assert await cache.heartbeat("ghost") is False
        assert await cache.get_process("ghost") is None
        assert await cache.get_active_processes() == []
        assert await cache.get_keys() == []


async def test_heartbeat_moves_heartbeat_not_updated_at(settings: Settings) -> None:
    async with ProcessCache() as cache:
        pid = await cache.register_process(ProcessType.ACCOUNT, "user_1")
        first = await cache.get_process(pid)
        assert first is not None

        async def moved() -> bool:
            assert await cache.heartbeat(pid) is True
            record = await cache.get_process(pid)
            assert record is not None
            return bool(record["heartbeat"] > first["heartbeat"])

        await eventually(moved, "heartbeat advanced")
        record = await cache.get_process(pid)
        assert record is not None
        assert record["updated_at"] == first["updated_at"]


async def test_delete_process(settings: Settings) -> None:
    async with ProcessCache() as cache:
        pid = await cache.register_process(ProcessType.ORDER, "executor")
        assert await cache.delete_process(pid) is True
        assert await cache.delete_process(pid) is False
        assert await cache.get_process(pid) is None
        assert await cache.get_active_processes() == []
        assert await cache.heartbeat(pid) is False
        assert await cache.get_keys() == []


# -- listing ------------------------------------------------------------------------------
async def test_get_active_processes_filters(settings: Settings) -> None:
    async with ProcessCache() as cache:
        tick = await cache.register_process(ProcessType.TICK, "binance")
        ohlcv = await cache.register_process(ProcessType.OHLCV, "binance")
        kraken = await cache.register_process(ProcessType.TICK, "kraken")
        assert await cache.heartbeat(tick)  # newest heartbeat first

        def ids(records: list[dict[str, Any]]) -> list[str]:
            return [r["process_id"] for r in records]

        everything = await cache.get_active_processes()
        assert ids(everything)[0] == tick
        assert sorted(ids(everything)) == sorted([tick, ohlcv, kraken])
        assert set(ids(await cache.get_active_processes(ProcessType.TICK))) == {tick, kraken}
        assert set(ids(await cache.get_active_processes("tick"))) == {tick, kraken}
        assert set(ids(await cache.get_active_processes(component="binance"))) == {tick, ohlcv}
        assert ids(await cache.get_active_processes("tick", "kraken")) == [kraken]
        assert await cache.get_active_processes(ProcessType.CRAWLER) == []
        assert await cache.get_active_processes(component="none") == []
        for record in everything:
            assert set(record) == {
                "process_id",
                "process_type",
                "component",
                "params",
                "status",
                "message",
                "created_at",
                "updated_at",
                "heartbeat",
            }


async def test_active_window_follows_heartbeats(settings: Settings) -> None:
    async with ProcessCache() as cache:
        pid = await cache.register_process(ProcessType.BOT, "bot_1")

        async def dropped_out() -> bool:
            return await cache.get_active_processes(since_minutes=0.005) == []

        await eventually(dropped_out, "process left the 0.3 s window")
        assert len(await cache.get_active_processes(since_minutes=5)) == 1
        assert await cache.heartbeat(pid)
        active = await cache.get_active_processes(since_minutes=5)
        assert [r["process_id"] for r in active] == [pid]


# -- bounded storage ----------------------------------------------------------------------
async def test_heartbeat_renews_the_record_ttl(settings: Settings) -> None:
    async with ProcessCache() as cache:
        pid = await cache.register_process(ProcessType.TICK, "binance")
        key = cache.keys.process(pid)
        assert 0 < await cache.redis.ttl(key) <= settings.process_ttl
        assert await cache.redis.expire(key, 5)
        assert await cache.heartbeat(pid)
        assert await cache.redis.ttl(key) > 5
        assert await cache.redis.expire(key, 5)
        assert await cache.update_process(pid, status="running")
        assert await cache.redis.ttl(key) > 5


async def test_dead_records_expire_and_leave_the_index(settings: Settings) -> None:
    short = msgspec.structs.replace(settings, process_ttl=1)
    async with ProcessCache(settings=short) as cache:
        index = cache.keys.process_index()
        dead = await cache.register_process(ProcessType.TICK, "binance")
        score = await cache.redis.zscore(index, dead)
        assert score is not None

        async def expired() -> bool:
            return await cache.get_process(dead) is None and time.time() > score + 1.2

        await eventually(expired, "record expired")
        # the index still names it until a writer or a reader trims it
        assert await cache.redis.zscore(index, dead) is not None
        alive = await cache.register_process(ProcessType.TICK, "kraken")
        assert await cache.redis.zscore(index, dead) is None
        assert await cache.redis.zscore(index, alive) is not None

        # a reader drops entries whose record is gone
        other = await cache.register_process(ProcessType.OHLCV, "kraken")
        assert await cache.redis.delete(cache.keys.process(other)) == 1
        assert [r["process_id"] for r in await cache.get_active_processes()] == [alive]
        assert await cache.redis.zscore(index, other) is None


async def test_cleanup_stale_processes(settings: Settings) -> None:
    async with ProcessCache() as cache:
        assert await cache.cleanup_stale_processes() == 0
        old = await cache.register_process(ProcessType.CRAWLER, "news")
        record = await cache.get_process(old)
        assert record is not None

        async def aged() -> bool:
            return time.time() - record["heartbeat"].timestamp() > 0.5

        await eventually(aged, "process aged")
        fresh = await cache.register_process(ProcessType.CRAWLER, "prices")
        assert await cache.cleanup_stale_processes(older_than_minutes=0.005) == 1
        assert await cache.get_process(old) is None
        assert await cache.get_process(fresh) is not None
        assert [r["process_id"] for r in await cache.get_active_processes()] == [fresh]


async def test_cleanup_keeps_a_process_that_beat_meanwhile(settings: Settings) -> None:
    async with ProcessCache() as cache:
        pid = await cache.register_process(ProcessType.BOT, "bot_1")
        # the index still holds an old score (its heartbeat's ZADD has not landed yet)
        await cache.redis.zadd(cache.keys.process_index(), {pid: time.time() - 7200})
        assert await cache.cleanup_stale_processes(older_than_minutes=60) == 0
        assert await cache.get_process(pid) is not None


# -- health -------------------------------------------------------------------------------
async def test_health_of_an_empty_system(settings: Settings) -> None:
    async with ProcessCache() as cache:
        health = await cache.get_system_health()
        assert health["status"] == "healthy"
        assert is_utc(health["timestamp"])
        assert health["total_processes"] == health["active_processes"] == 0
        assert health["stale_processes"] == health["error_processes"] == []
        assert set(health["by_type"]) == {t.value for t in ProcessType}
        assert all(
            c == {"total": 0, "active": 0, "stale": 0, "error": 0}
            for c in health["by_type"].values()
        )
        redis = health["redis"]
        assert redis["connected"] is True
        assert redis["mode"] == ("cluster" if settings.cluster_mode else "standalone")
        assert len(redis["nodes"]) == (3 if settings.cluster_mode else 1)
        assert redis["redis_version"] and "." in redis["redis_version"]
        assert redis["used_memory"] == sum(n["used_memory"] for n in redis["nodes"].values())
        assert redis["used_memory"] > 0
        assert redis["connected_clients"] >= 1
        assert redis["uptime_in_seconds"] >= 0


async def test_health_reports_stale_and_error_processes(settings: Settings) -> None:
    async with ProcessCache() as cache:
        silent = await cache.register_process(ProcessType.TICK, "binance", status="running")
        stopped = await cache.register_process(ProcessType.TICK, "kraken", status="stopped")
        broken = await cache.register_process(ProcessType.BOT, "bot_1", status="error")
        assert (await cache.get_system_health())["status"] == "degraded"  # the error
        live = await cache.register_process(ProcessType.OHLCV, "binance")

        async def silent_is_stale() -> bool:
            assert await cache.heartbeat(live)
            health = await cache.get_system_health(stale_after_seconds=0.3)
            return silent in {r["process_id"] for r in health["stale_processes"]}

        await eventually(silent_is_stale, "silent process reported stale")
        assert await cache.heartbeat(live)
        health = await cache.get_system_health(stale_after_seconds=0.3)
        assert health["status"] == "degraded"
        stale_ids = {r["process_id"] for r in health["stale_processes"]}
        assert silent in stale_ids and stopped not in stale_ids  # stopped is never stale
        assert [r["process_id"] for r in health["error_processes"]] == [broken]
        assert health["total_processes"] == 4
        assert health["active_processes"] == 4 - len(stale_ids)
        tick = health["by_type"]["tick"]
        assert (tick["total"], tick["stale"], tick["active"], tick["error"]) == (2, 1, 1, 0)
        assert health["by_type"]["bot"]["error"] == 1
        assert health["by_type"]["ohlcv"] == {"total": 1, "active": 1, "stale": 0, "error": 0}

        # a long threshold and the error fixed: healthy again
        assert await cache.update_process(broken, status="running")
        healthy = await cache.get_system_health(stale_after_seconds=3600)
        assert healthy["status"] == "healthy"
        assert healthy["stale_processes"] == healthy["error_processes"] == []


async def test_health_is_down_when_redis_is_unreachable(standalone: Settings) -> None:
    down = msgspec.structs.replace(
        standalone, port=free_port(), retry_attempts=0, socket_connect_timeout=1.0
    )
    async with ProcessCache(settings=down) as cache:
        health = await cache.get_system_health()
        assert health["status"] == "down"
        assert health["redis"]["connected"] is False
        assert health["redis"]["error"]
        assert is_utc(health["timestamp"])
        with pytest.raises(CacheConnectionError):
            await cache.register_process(ProcessType.TICK, "binance")
        with pytest.raises(CacheConnectionError):
            await cache.get_active_processes()


async def test_component_status(settings: Settings) -> None:
    async with ProcessCache() as cache:
        assert await cache.get_component_status("binance") is None
        old = await cache.register_process(ProcessType.TICK, "binance", status="running")
        await cache.register_process(ProcessType.TICK, "kraken")
        status = await cache.get_component_status("binance")
        assert status is not None
        assert (status["component"], status["process_id"], status["status"]) == (
            "binance",
            old,
            ProcessStatus.RUNNING,
        )
        assert (status["process_count"], status["stale_count"], status["error_count"]) == (
            1,
            0,
            0,
        )
        assert status["healthy"] is True
        assert is_utc(status["last_heartbeat"])
        new = await cache.register_process(
            ProcessType.OHLCV, "binance", status="error", message="ws closed"
        )
        status = await cache.get_component_status("binance")
        assert status is not None
        assert (status["process_id"], status["status"], status["message"]) == (
            new,
            ProcessStatus.ERROR,
            "ws closed",
        )
        assert (status["process_count"], status["error_count"], status["healthy"]) == (
            2,
            1,
            False,
        )
        assert [r["process_id"] for r in status["processes"]] == [new, old]
        assert await cache.update_process(new, status="running")
        old_record = await cache.get_process(old)
        assert old_record is not None

        async def old_is_stale() -> bool:
            assert await cache.heartbeat(new)
            got = await cache.get_component_status("binance", stale_after_seconds=0.3)
            return got is not None and got["stale_count"] == 1

        await eventually(old_is_stale, "old process stale")
        status = await cache.get_component_status("binance", stale_after_seconds=0.3)
        assert status is not None and status["healthy"] is False
        assert await cache.delete_process(old) and await cache.delete_process(new)
        assert await cache.get_component_status("binance") is None


# -- bad input ----------------------------------------------------------------------------
BAD_NUMBERS = [
    (0, ValueError),
    (-1, ValueError),
    (math.nan, ValueError),
    (math.inf, ValueError),
    ("5", TypeError),
    (True, TypeError),
    (None, TypeError),
]


async def test_bad_input_raises_before_any_write(settings: Settings) -> None:
    async with ProcessCache() as cache:
        pid = await cache.register_process(ProcessType.TICK, "binance", params={"a": 1})
        before = await cache.get_process(pid)
        register_cases: list[tuple[dict[str, Any], type[Exception]]] = [
            ({"process_type": 5}, TypeError),
            ({"process_type": None}, TypeError),
            ({"process_type": "nope"}, ValueError),
            ({"process_type": "TICK"}, ValueError),
            ({"component": None}, TypeError),
            ({"component": 7}, TypeError),
            ({"component": ""}, ValueError),
            ({"component": "  "}, ValueError),
            ({"params": [1, 2]}, TypeError),
            ({"params": "x"}, TypeError),
            ({"params": {1: "a"}}, TypeError),
            ({"params": {"x": object()}}, TypeError),
            ({"message": 5}, TypeError),
            ({"status": "bogus"}, ValueError),
            ({"status": 1}, TypeError),
        ]
        for override, error in register_cases:
            kwargs: dict[str, Any] = {"process_type": "tick", "component": "c", **override}
            with pytest.raises(error):
                await cache.register_process(**kwargs)
        update_cases: list[tuple[dict[str, Any], type[Exception]]] = [
            ({"status": "bogus"}, ValueError),
            ({"status": 3}, TypeError),
            ({"message": 5}, TypeError),
            ({"params": [1]}, TypeError),
            ({"params": {"x": object()}}, TypeError),
        ]
        for kwargs, error in update_cases:
            with pytest.raises(error):
                await cache.update_process(pid, **kwargs)
        for process_id, error in [(None, TypeError), (5, TypeError), ("", ValueError)]:
            for call in (
                cache.update_process,
                cache.heartbeat,
                cache.delete_process,
                cache.get_process,
            ):
                with pytest.raises(error):
                    await call(process_id)
        for value, error in BAD_NUMBERS:
            with pytest.raises(error):
                await cache.get_active_processes(since_minutes=value)
            with pytest.raises(error):
                await cache.cleanup_stale_processes(older_than_minutes=value)
            with pytest.raises(error):
                await cache.get_system_health(stale_after_seconds=value)
            with pytest.raises(error):
                await cache.get_component_status("binance", stale_after_seconds=value)
        with pytest.raises(ValueError, match="unknown process_type"):
            await cache.get_active_processes(process_type="nope")
        with pytest.raises(TypeError):
            await cache.get_active_processes(component=5)  # type: ignore[arg-type]
        for component, error in [(None, TypeError), ("", ValueError)]:
            with pytest.raises(error):
                await cache.get_component_status(component)
        # nothing was written by any of them
        assert await cache.get_process(pid) == before
        assert [r["process_id"] for r in await cache.get_active_processes()] == [pid]
        assert len(await cache.get_keys()) == 2  # the record and the index
