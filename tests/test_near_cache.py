"""NearCache: hits, invalidation by the server (other connections, other processes),
read-your-writes, no serving while the invalidation connection is down (server killed,
restarted, frozen), bounds, and TickCache's opt-in hook. Real servers only."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from fullon_cache.config import Settings
from fullon_cache.connection import ConnectionPool
from fullon_cache.embedded import EmbeddedServer
from fullon_cache.models import Tick
from fullon_cache.near_cache import NearCache, near_for
from fullon_cache.tick_cache import TickCache

DEADLINE = 20.0  # generous: convergence is asserted, never speed


def _tick(price: float, symbol: str = "BTC/USDT", exchange: str = "binance") -> Tick:
    return Tick(symbol=symbol, exchange=exchange, price=price, time=time.time())


async def _until(predicate: object, what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.fixture
async def near(standalone: Settings) -> AsyncIterator[NearCache]:
    cache = NearCache(health_interval=0.1)
    assert await cache.wait_live()
    yield cache
    await cache.close()


@pytest.fixture
def private_server() -> Iterator[EmbeddedServer]:
    """A server of this test alone (it is killed, frozen and restarted)."""
    server = EmbeddedServer()
    server.start()
    try:
        yield server
    finally:
        if server.pid is not None:
            os.kill(server.pid, signal.SIGCONT)
        server.stop()


def _private_settings(server: EmbeddedServer) -> Settings:
    return Settings(
        port=server.port,
        namespace="near",
        retry_attempts=3,
        breaker_threshold=0,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        retry_backoff=0.01,
        retry_backoff_cap=0.05,
    )


# --------------------------------------------------------------------------- hits


async def test_hit_skips_redis_and_returns_the_stored_value(near: NearCache) -> None:
    ticks = TickCache(near_cache=near)
    await ticks.set_ticker(_tick(10.0))
    # the local drop, then the server's own invalidation of that write
    await _until(lambda: near.invalidations >= 2, "the server's invalidation")
    assert await ticks.get_price("BTC/USDT", "binance") == 10.0
    assert (near.misses, near.hits) == (1, 0)
    for _ in range(3):
        assert await ticks.get_price("BTC/USDT", "binance") == 10.0
        tick = await ticks.get_ticker("BTC/USDT", "binance")
        assert tick is not None and tick.price == 10.0
    assert near.hits == 6
    assert len(near) == 1


async def test_misses_are_cached_too_and_dropped_by_a_write(near: NearCache) -> None:
    ticks = TickCache(near_cache=near)
    assert await ticks.get_price("ETH/USDT", "kraken") == 0.0
    assert await ticks.get_price("ETH/USDT", "kraken") == 0.0
    assert near.hits == 1
    await ticks.set_ticker(_tick(3.0, "ETH/USDT", "kraken"))
    assert await ticks.get_price("ETH/USDT", "kraken") == 3.0


async def test_own_writes_are_read_at_once(near: NearCache) -> None:
    """set_ticker, set_tickers and delete_ticker drop the local entries when they return,
    before the server's invalidation arrives."""
    ticks = TickCache(near_cache=near)
    for price in (1.0, 2.0, 3.0):
        await ticks.set_ticker(_tick(price))
        assert await ticks.get_price("BTC/USDT", "binance") == price
        assert await ticks.get_price("BTC/USDT", "binance") == price
    await ticks.set_tickers([_tick(4.0), _tick(5.0, "ETH/USDT")])
    assert await ticks.get_price("BTC/USDT", "binance") == 4.0
    assert await ticks.delete_ticker("BTC/USDT", "binance")
    assert await ticks.get_ticker("BTC/USDT", "binance") is None


async def test_shared_near_cache_per_connection(standalone: Settings) -> None:
    first = TickCache(near_cache=True)
    second = TickCache(near_cache=True)
    near = near_for(True, first)
    assert near is not None and near is near_for(True, second)
    assert near_for(False, first) is None
    await first.set_ticker(_tick(7.0))
    assert await near.wait_live()
    assert await first.get_price("BTC/USDT", "binance") == 7.0
    assert await second.get_price("BTC/USDT", "binance") == 7.0
    assert near.hits == 1
    await near.close()
    assert NearCache.shared(first._connection) is not near  # a closed one is replaced


async def test_shared_near_cache_stops_with_its_connection(standalone: Settings) -> None:
    conn = ConnectionPool.get()
    near = NearCache(connection=conn, health_interval=0.05)
    assert await near.wait_live()
    task = near._task
    assert task is not None
    await ConnectionPool.close_loop()
    await asyncio.wait_for(task, DEADLINE)
    assert not near.live
    await near.close()


# --------------------------------------------------------------------------- invalidation


async def test_write_by_another_client_invalidates(near: NearCache, standalone: Settings) -> None:
    ticks = TickCache(near_cache=near)
    other = TickCache(settings=standalone)  # no near cache: a plain writer
    await other.set_ticker(_tick(1.0))
    assert await ticks.get_price("BTC/USDT", "binance") == 1.0
    raw = Redis(host=standalone.host, port=standalone.port)
    try:
        # a raw write from outside the library is seen as well (the server tracks keys)
        await raw.hset(
            ticks.keys.tickers("binance"),
            "BTC/USDT",
            b'{"symbol":"BTC/USDT","exchange":"binance","price":2.5}',
        )
    finally:
        await raw.aclose()
    await _until(lambda: near.invalidations >= 1, "an invalidation")
    tick = await ticks.get_ticker("BTC/USDT", "binance")
    assert tick is not None and tick.price == 2.5


async def test_reply_overtaken_by_an_invalidation_is_not_stored(near: NearCache) -> None:
    key = near.keys.tickers("binance")

    async def invalidated_meanwhile() -> bytes:
        near.invalidate(key)
        return b"old"

    async def flushed_meanwhile() -> bytes:
        near.clear()
        return b"old"

    assert await near.fetch(("a", key), (key,), invalidated_meanwhile) == b"old"
    assert await near.fetch(("b", key), (key,), flushed_meanwhile) == b"old"
    assert len(near) == 0


async def test_untracked_key_is_refused(near: NearCache) -> None:
    async def load() -> bytes:
        return b"x"

    key = near.keys.order_queue("binance")
    with pytest.raises(ValueError, match="not under a prefix"):
        await near.fetch(("q", key), (key,), load)


async def test_bounds(standalone: Settings) -> None:
    near = NearCache(max_entries=2, health_interval=0.1)
    try:
        assert await near.wait_live()
        keys = [near.keys.exchange(n) for n in range(3)]
        for key in keys:

            async def load(key: str = key) -> bytes:
                return key.encode()

            await near.fetch(key, (key,), load)
        assert len(near) == 1  # full at the third entry: everything was dropped first
        before = near._generation
        near.invalidate(*(near.keys.exchange(n) for n in range(10)))
        assert near._generation == before
        near.invalidate(near.keys.exchange(0))  # the epoch table is over 4 x max_entries
        assert near._generation == before + 1
    finally:
        await near.close()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        NearCache(max_entries=0)
    with pytest.raises(ValueError, match="max_entries"):
        NearCache(max_entries=True)
    with pytest.raises(TypeError, match="health_interval"):
        NearCache(health_interval="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="health_interval"):
        NearCache(health_interval=0)


async def test_closed_near_cache_does_not_start_and_bypasses(standalone: Settings) -> None:
    near = NearCache()
    await near.close()
    near.start()
    assert near._task is None
    ticks = TickCache(near_cache=near)
    await ticks.set_ticker(_tick(4.0))
    assert await ticks.get_price("BTC/USDT", "binance") == 4.0
    assert await ticks.get_price("BTC/USDT", "binance") == 4.0
    assert near.hits == 0
    assert not await near.wait_live(timeout=0.05)


async def test_first_read_starts_the_listener(standalone: Settings) -> None:
    near = NearCache()
    ticks = TickCache(near_cache=near)
    try:
        assert await ticks.get_price("BTC/USDT", "binance") == 0.0  # bypassed: not live yet
        assert near._task is not None
        assert await near.wait_live()
    finally:
        await near.close()


@pytest.mark.cluster
async def test_cluster_bypasses(cluster: Settings) -> None:
    near = NearCache()
    ticks = TickCache(near_cache=near)
    try:
        await ticks.set_ticker(_tick(5.0))
        await ticks.set_ticker(_tick(6.0))
        assert await ticks.get_price("BTC/USDT", "binance") == 6.0
        assert await ticks.get_price("BTC/USDT", "binance") == 6.0
        assert not await near.wait_live(timeout=0.2)
        assert near.hits == 0
    finally:
        await near.close()


# --------------------------------------------------------------------------- outages


async def test_server_flush_clears_everything(private_server: EmbeddedServer) -> None:
    settings = _private_settings(private_server)
    near = NearCache(settings=settings, health_interval=0.1)
    ticks = TickCache(settings=settings, near_cache=near)
    try:
        assert await near.wait_live()
        await ticks.set_ticker(_tick(1.0))
        assert await ticks.get_price("BTC/USDT", "binance") == 1.0
        flushes = near.flushes
        # This test's own private server: FLUSHALL touches nothing else.
        await ticks.redis.flushall()
        await _until(lambda: near.flushes > flushes, "the flush invalidation")
        assert len(near) == 0
        assert await ticks.get_price("BTC/USDT", "binance") == 0.0
    finally:
        await near.close()
        await ConnectionPool.close_loop()


async def test_no_stale_read_across_a_server_restart(private_server: EmbeddedServer) -> None:
    settings = _private_settings(private_server)
    near = NearCache(settings=settings, health_interval=0.1)
    ticks = TickCache(settings=settings, near_cache=near)
    try:
        assert await near.wait_live()
        await ticks.set_ticker(_tick(1.0))
        await _until(lambda: near.invalidations >= 2, "the server's invalidation")
        assert await ticks.get_price("BTC/USDT", "binance") == 1.0
        assert await ticks.get_price("BTC/USDT", "binance") == 1.0
        assert near.hits == 1 and len(near) == 1
        private_server.kill()
        await _until(lambda: not near.live, "the near cache to go down")
        assert len(near) == 0
        private_server.restart()
        # Whether the near cache has reconnected yet or not, the value written on the
        # new server is what is read: it never serves what it held before the outage.
        await ticks.set_ticker(_tick(2.0))
        assert await ticks.get_price("BTC/USDT", "binance") == 2.0
        await _until(lambda: near.live, "the near cache to reconnect")
        assert await ticks.get_price("BTC/USDT", "binance") == 2.0
        await ticks.set_ticker(_tick(3.0))
        assert await ticks.get_price("BTC/USDT", "binance") == 3.0
    finally:
        await near.close()
        await ConnectionPool.close_loop()


async def test_frozen_server_is_detected(private_server: EmbeddedServer) -> None:
    """A server that stops answering (SIGSTOP: the socket stays open) is noticed by the
    PING health check; nothing is served until it answers again."""
    settings = _private_settings(private_server)
    near = NearCache(settings=settings, health_interval=0.1)
    ticks = TickCache(settings=settings, near_cache=near)
    assert private_server.pid is not None
    try:
        assert await near.wait_live()
        await ticks.set_ticker(_tick(1.0))
        assert await ticks.get_price("BTC/USDT", "binance") == 1.0
        os.kill(private_server.pid, signal.SIGSTOP)
        await _until(lambda: not near.live, "the near cache to notice the frozen server")
        assert len(near) == 0
        os.kill(private_server.pid, signal.SIGCONT)
        assert await near.wait_live(timeout=DEADLINE)
        assert await ticks.get_price("BTC/USDT", "binance") == 1.0
    finally:
        os.kill(private_server.pid, signal.SIGCONT)
        await near.close()
        await ConnectionPool.close_loop()


# --------------------------------------------------------------------------- two processes


def _writer(port: int, namespace: str, count: int) -> None:
    """Another process: store ``count`` ticks with rising prices 1..count."""

    async def write() -> None:
        ticks = TickCache(settings=Settings(port=port, namespace=namespace))
        for price in range(1, count + 1):
            await ticks.set_ticker(_tick(float(price)))
            if price % 50 == 0:
                await asyncio.sleep(0.001)
        await ConnectionPool.close_loop()

    asyncio.run(write())


async def test_writer_process_coherence(standalone: Settings, near: NearCache) -> None:
    """A writer process raises the price 1..N; the reader's near cache never goes back
    to an older price (no stale entry kept past an invalidation) and converges to N."""
    count = 2000
    ticks = TickCache(near_cache=near)
    ctx = multiprocessing.get_context("spawn")
    writer = ctx.Process(target=_writer, args=(standalone.port, standalone.namespace, count))
    writer.start()
    seen: list[float] = []
    end = time.monotonic() + 60
    try:
        while (not seen or seen[-1] != count) and time.monotonic() < end:
            seen.append(await ticks.get_price("BTC/USDT", "binance"))
            await asyncio.sleep(0)
    finally:
        await asyncio.to_thread(writer.join, 60)
    assert writer.exitcode == 0
    assert seen[-1] == count, f"did not converge: last read {seen[-1]}"
    assert all(a <= b for a, b in itertools.pairwise(seen)), "a read went back in time"
    assert near.hits > 0 and near.invalidations > 0


async def test_fetch_serves_a_stored_reply(near: NearCache) -> None:
    key = near.keys.symbols("binance")
    calls = 0

    async def load() -> tuple[bytes, int]:
        nonlocal calls
        calls += 1
        return (b"raw", 0)

    for _ in range(3):
        assert await near.fetch(("symbol", key, "BTC/USDT"), (key,), load) == (b"raw", 0)
    assert (calls, near.hits, near.misses) == (1, 2, 1)
