from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec
import pytest

from fullon_cache.base_cache import BaseCache, validate_timeout
from fullon_cache.config import Settings
from fullon_cache.connection import ConnectionPool
from fullon_cache.keys import CacheKey


async def test_context_manager_ping_test_and_idempotent_close(settings: Settings) -> None:
    async with BaseCache() as cache:
        assert await cache.ping() == "PONG"
        assert await cache.test() is True
        assert cache._cache is cache
    assert cache.closed
    await cache.close()
    assert cache.closed


async def test_instances_of_one_loop_share_one_connection(settings: Settings) -> None:
    a, b = BaseCache(), BaseCache()
    assert a._connection is b._connection
    assert a.redis is b.redis


async def test_prepare_cache_clears_only_this_namespace(settings: Settings) -> None:
    cache = BaseCache()
    foreign = f"foreign:{settings.namespace}:{{x}}"
    other_ns = f"{settings.namespace}x:errors"
    await cache.redis.set(foreign, b"keep")
    await cache.redis.set(other_ns, b"keep")
    await cache.push_global_error("boom")
    await cache.redis.set(cache.keys.tickers("binance"), b"1")
    for i in range(1200):  # more than one SCAN/UNLINK batch
        await cache.redis.set(cache.keys.bot(i), b"x")
    assert len(await cache.get_keys()) == 1202
    await cache.prepare_cache()
    assert await cache.get_keys() == []
    assert await cache.redis.get(foreign) == b"keep"
    assert await cache.redis.get(other_ns) == b"keep"
    await cache.redis.delete(foreign)
    await cache.redis.delete(other_ns)


async def test_get_keys_scans_inside_the_namespace(settings: Settings) -> None:
    cache = BaseCache()
    await cache.redis.set(cache.keys.tickers("binance"), b"1")
    await cache.redis.set(cache.keys.tickers("kraken"), b"1")
    await cache.redis.set(cache.keys.bot(1), b"1")
    assert await cache.get_keys("tick:*") == sorted(
        [cache.keys.tickers("binance"), cache.keys.tickers("kraken")]
    )
    assert len(await cache.get_keys()) == 3
    assert await cache.get_keys(
        cache.keys.pattern(CacheKey.BOT)[len(settings.namespace) + 1 :]
    ) == [cache.keys.bot(1)]


async def test_global_errors_are_fifo_bounded_and_stamped(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = BaseCache(settings=msgspec.structs.replace(settings, global_error_max=3))
    before = datetime.now(UTC)
    for i in range(5):
        assert await cache.push_global_error(f"e{i}", component="tick")
    await cache.push_global_error(RuntimeError("bad"))
    first = await cache.pop_global_error()
    assert first is not None
    assert first["error"] == "e3"  # e0..e2 dropped: the queue keeps the newest 3
    assert first["component"] == "tick"
    assert first["time"] >= before.replace(microsecond=0)
    assert first["time"].tzinfo is not None
    second = await cache.pop_global_error()
    assert second is not None and second["error"] == "e4"
    third = await cache.pop_global_error(timeout=0.5)
    assert third == {"error": "RuntimeError: bad", "component": None, "time": third["time"]}
    assert await cache.pop_global_error() is None


async def test_pop_global_error_waits_for_a_push(settings: Settings) -> None:
    cache = BaseCache()

    async def push_later() -> None:
        await asyncio.sleep(0.2)
        await BaseCache().push_global_error("late")

    task = asyncio.create_task(push_later())
    got = await cache.pop_global_error(timeout=5)
    await task
    assert got is not None and got["error"] == "late"


async def test_blocking_pop_waits_past_the_socket_timeout(
    standalone: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = msgspec.structs.replace(standalone, socket_timeout=0.2)
    cache = BaseCache(settings=fast)
    assert await cache.pop_global_error(timeout=0.6) is None
    await ConnectionPool.get(fast).close()


@pytest.mark.parametrize(
    ("bad", "error"),
    [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError), (True, TypeError)],
)
async def test_bad_input_is_rejected(
    settings: Settings, bad: object, error: type[Exception]
) -> None:
    cache = BaseCache()
    with pytest.raises(error):
        await cache.pop_global_error(timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await cache.push_global_error(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await cache.push_global_error("x", component=1)  # type: ignore[arg-type]
    assert await cache.get_keys() == []


def test_validate_timeout() -> None:
    assert validate_timeout(0) == 0.0
    assert validate_timeout(1.5) == 1.5


async def test_raw_client_escape_hatch(settings: Settings) -> None:
    cache = BaseCache()
    async with cache._cache._redis_context() as redis:
        await redis.set(cache.keys.market_data("X"), b"1")
    async with cache.redis_context() as redis:
        assert await redis.get(cache.keys.market_data("X")) == b"1"


async def test_cache_rebinds_when_used_from_another_loop(settings: Settings) -> None:
    cache = BaseCache()
    first = cache._connection
    assert cache._connection is first  # cached binding

    def other_loop() -> bool:
        async def run() -> bool:
            try:
                return cache._connection is not first and await cache.ping() == "PONG"
            finally:
                await ConnectionPool.close_loop()

        return asyncio.run(run())

    assert await asyncio.to_thread(other_loop)


async def test_an_explicit_connection_is_shared_and_kept(standalone: Settings) -> None:
    conn = ConnectionPool.get()
    cache = BaseCache(connection=conn)
    assert cache.settings is conn.settings
    assert cache._connection is conn
    assert await cache.ping() == "PONG"


async def test_lua_scripts_are_built_once_per_client(settings: Settings) -> None:
    source = "return ARGV[1]"
    first, second = BaseCache(), BaseCache()
    script = first._script(source)
    assert first._script(source) is script
    assert second._script(source) is script  # shared by every instance on that client
    assert first._script("return 2") is not script
    assert await script(keys=[], args=["x"]) == b"x"
    # a new connection (the old one closed) has a new client: its own scripts
    await ConnectionPool.close_loop()
    rebuilt = first._script(source)
    assert rebuilt is not script and rebuilt.registered_client is first.redis
    assert await rebuilt(keys=[], args=["y"]) == b"y"
    assert second._script(source) is rebuilt
