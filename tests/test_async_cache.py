from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from fullon_cache.async_cache import STATUS_TRANSITIONS, TERMINAL_STATUSES, AsyncCache
from fullon_cache.codec import decode, encode
from fullon_cache.config import Settings
from fullon_cache.connection import ConnectionPool
from fullon_cache.embedded import EmbeddedServer
from fullon_cache.exceptions import CacheConnectionError
from fullon_cache.models import Order, Position

DEADLINE = 60.0  # bounds a hang only; never asserts speed


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it is true; fail only after a generous deadline."""
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        await asyncio.sleep(0.02)


def sid() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


def order(order_id: str | int, symbol: str = "BTC/USDT", **fields: Any) -> Order:
    return Order(order_id=order_id, symbol=symbol, **fields)


async def stored_orders(cache: AsyncCache) -> dict[str, Order]:
    raw = await cache.redis.hgetall(cache.keys.strategy_orders(cache.strategy_id, cache.user_id))
    return {k.decode(): decode(v, Order) for k, v in raw.items()}


async def stored_positions(cache: AsyncCache) -> dict[str, Position]:
    key = cache.keys.strategy_positions(cache.strategy_id, cache.user_id)
    raw = await cache.redis.hgetall(key)
    return {k.decode(): decode(v, Position) for k, v in raw.items()}


@pytest.fixture
def private_server() -> Iterator[EmbeddedServer]:
    """A server of this test alone, to stop and restart at will."""
    server = EmbeddedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def private(private_server: EmbeddedServer) -> AsyncIterator[Settings]:
    """Settings pointing at the private server, failing fast while it is down."""
    yield Settings(
        port=private_server.port,
        namespace=f"p{uuid.uuid4().hex[:12]}",
        retry_attempts=1,
        retry_backoff=0.01,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        breaker_cooldown=0.1,
    )
    await ConnectionPool.close_loop()


def test_ids_may_be_ints_and_keys_share_one_hash_tag() -> None:
    cache = AsyncCache(7, 9)
    assert (cache.strategy_id, cache.user_id) == ("7", "9")
    orders_key = cache.keys.strategy_orders("7", "9")
    positions_key = cache.keys.strategy_positions("7", "9")
    assert "{7}" in orders_key and "{7}" in positions_key


# -- orders ---------------------------------------------------------------------------------
async def test_order_initialized_copies_validates_and_is_idempotent(settings: Settings) -> None:
    async with AsyncCache(sid(), "u") as cache:
        mine = order("o1", side="buy", volume=1.0, price=10.0)
        cache.order_initialized(mine)
        mine.price = 99.0  # the caller's object is not the cached one
        got = await cache.get_order("o1")
        assert got is not None and got.price == 10.0 and got.status == "open"
        got.price = 5.0  # nor is the returned one
        assert (await cache.get_order("o1")).price == 10.0  # type: ignore[union-attr]
        cache.order_initialized(order("o1", side="buy", volume=1.0, price=10.0, status="OPEN"))
        assert cache.dirty_count == 1
        with pytest.raises(ValueError, match="already initialized"):
            cache.order_initialized(order("o1", side="sell"))

        class OrmOrder:
            def to_dict(self) -> dict[str, Any]:
                return {"order_id": 5, "symbol": "ETH/USDT", "status": "pending", "x": 1}

        cache.order_initialized(OrmOrder())
        cache.order_initialized({"order_id": "m", "symbol": "ETH/USDT", "status": "new"})
        assert (await cache.get_order(5)).status == "pending"  # type: ignore[union-attr]
        assert await cache.get_open_orders("ETH/USDT") == {"5", "m"}
        assert await cache.sync() == 3
        assert set(await stored_orders(cache)) == {"o1", "5", "m"}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (order(None), ValueError),
        (order(""), ValueError),
        (Order(order_id="x"), ValueError),
        (order("x", symbol=""), ValueError),
        (order("x", status="weird"), ValueError),
        (order("x", status=""), ValueError),
        ({"order_id": "x", "symbol": "S", "status": 3}, TypeError),
        (Order(order_id="x", symbol="S", status=3), TypeError),  # type: ignore[arg-type]
        ({"order_id": "x", "symbol": "S", "volume": "lots"}, TypeError),
        ("not an order", TypeError),
    ],
)
async def test_bad_orders_raise_before_any_write(
    settings: Settings, value: Any, error: type[Exception]
) -> None:
    async with AsyncCache(sid(), "u") as cache:
        with pytest.raises(error):
            cache.order_initialized(value)
        with pytest.raises(error):
            cache.order_status_update(value)
        assert cache.dirty_count == 0
        assert await cache.get_open_orders() == set()


ALL_STATUSES = sorted(STATUS_TRANSITIONS)


@pytest.mark.parametrize("old", ALL_STATUSES)
@pytest.mark.parametrize("new", ALL_STATUSES)
def test_status_transition_table(old: str, new: str) -> None:
    cache = AsyncCache("s", "u")
    cache.order_initialized(order("o", status=old))
    cancels = {"canceled", "cancelled"}
    allowed = (
        old == new
        or {old, new} == cancels
        or (old in {"open", "pending", "new"} and new in TERMINAL_STATUSES | {"partially_filled"})
        or (old == "pending" and new in {"open", "new"})
        or (old == "new" and new == "open")
        or (old == "partially_filled" and new in {"filled", "expired"} | cancels)
    )
    if allowed:
        cache.order_status_update(order("o", status=new.upper()))
        assert cache._orders["o"].value.status == new
    else:
        with pytest.raises(ValueError, match="cannot go from"):
            cache.order_status_update(order("o", status=new))
        assert cache._orders["o"].value.status == old


async def test_status_update_merges_and_guards_final_volume(settings: Settings) -> None:
    async with AsyncCache(sid(), "u") as cache:
        cache.order_initialized(order("o", side="buy", volume=2.0, price=10.0, exchange="kraken"))
        await cache.sync()
        cache.order_status_update(
            {"order_id": "o", "status": "partially_filled", "final_volume": 1}
        )
        got = await cache.get_order("o")
        assert got is not None
        assert (got.side, got.volume, got.price, got.final_volume) == ("buy", 2.0, 10.0, 1.0)
        with pytest.raises(ValueError, match="cannot go down"):
            cache.order_status_update(order("o", status="filled", final_volume=0.5))
        cache.order_status_update(Order(order_id="o", status="filled", final_volume=2.0))
        cache.order_status_update(Order(order_id="o", status="filled"))  # idempotent
        assert cache.dirty_count == 1
        assert await cache.get_open_orders() == set()
        assert await cache.sync() == 1
        assert (await stored_orders(cache))["o"].status == "filled"


async def test_status_update_of_an_unknown_order_records_it(settings: Settings) -> None:
    async with AsyncCache(sid(), "u") as cache:
        cache.order_status_update(order("ext", status="partially_filled", exchange="ftx"))
        assert await cache.get_open_orders(exchange="ftx") == {"ext"}
        with pytest.raises(ValueError, match="symbol is required"):
            cache.order_status_update(Order(order_id="nosymbol", status="open"))


async def test_get_order_reads_redis_and_prefers_newer_memory(settings: Settings) -> None:
    strategy = sid()
    async with AsyncCache(strategy, "u") as first:
        first.order_initialized(order("a", status="filled"))
        first.order_initialized(order("b", status="filled"))
    async with AsyncCache(strategy, "u") as second:
        assert await second.get_open_orders() == set()  # finished orders are not preloaded
        assert (await second.get_order("a")).status == "filled"  # type: ignore[union-attr]
        assert await second.get_order("missing") is None
        assert await second.get_order(12345) is None
        with pytest.raises(TypeError):
            await second.get_order(1.5)  # type: ignore[arg-type]
        # a write that lands while the Redis read is in flight wins over the stored value
        pending = asyncio.create_task(second.get_order("c"))
        await asyncio.sleep(0)
        second.order_initialized(order("c", status="new"))
        assert (await pending).status == "new"  # type: ignore[union-attr]
        assert second.dirty_count == 1


async def test_symbol_orders_in_memory_and_in_redis(settings: Settings) -> None:
    strategy = sid()
    async with AsyncCache(strategy, "u") as first:
        first.order_initialized(order("open1", "BTC/USDT"))
        first.order_initialized(order("done1", "BTC/USDT", status="filled"))
        first.order_initialized(order("eth1", "ETH/USDT", status="canceled"))
    async with AsyncCache(strategy, "u") as second:
        second.order_initialized(order("new1", "BTC/USDT"))
        assert await second.get_symbol_orders("BTC/USDT") == {"open1", "new1"}
        assert await second.get_symbol_orders("BTC/USDT", in_mem=False) == {
            "open1",
            "new1",
            "done1",
        }
        assert await second.get_symbol_orders("ETH/USDT", in_mem=False) == {"eth1"}
        assert await second.get_symbol_orders("XRP/USDT", in_mem=False) == set()
        with pytest.raises(TypeError):
            await second.get_symbol_orders(b"BTC/USDT")  # type: ignore[arg-type]


async def test_open_orders_filter_by_symbol_and_exchange(settings: Settings) -> None:
    async with AsyncCache(sid(), "u") as cache:
        cache.order_initialized(order("1", "BTC/USDT", exchange="binance", ex_id=10))
        cache.order_initialized(order("2", "ETH/USDT", exchange="binance", ex_id=10))
        cache.order_initialized(order("3", "BTC/USDT", exchange="kraken", ex_id=11))
        cache.order_initialized(order("4", "BTC/USDT", exchange="kraken", status="filled"))
        cache.order_initialized(order("5", "BTC/USDT", status="partially_filled"))
        assert await cache.get_open_orders() == {"1", "2", "3", "5"}
        assert await cache.get_open_orders("BTC/USDT") == {"1", "3", "5"}
        assert await cache.get_open_orders(exchange="binance") == {"1", "2"}
        assert await cache.get_open_orders("BTC/USDT", exchange=11) == {"3"}
        assert await cache.get_open_orders("BTC/USDT", exchange="10") == {"1"}
        with pytest.raises(ValueError, match="symbol must not be empty"):
            await cache.get_open_orders("")
        with pytest.raises(TypeError):
            await cache.get_open_orders(exchange=1.5)  # type: ignore[arg-type]


async def test_restart_loads_open_orders_without_overwriting_memory(settings: Settings) -> None:
    strategy = sid()
    async with AsyncCache(strategy, "u") as first:
        first.order_initialized(order("a", price=1.0))
        first.order_initialized(order("b", price=1.0, status="partially_filled"))
        first.order_initialized(order("c", status="rejected"))
    second = AsyncCache(strategy, "u")
    second.order_initialized(order("a", price=2.0))  # before start: memory wins
    await second.start()
    await second.start()  # idempotent
    assert await second.get_open_orders() == {"a", "b"}
    assert (await second.get_order("a")).price == 2.0  # type: ignore[union-attr]
    await second.close()
    assert (await stored_orders(second))["a"].price == 2.0


# -- positions ------------------------------------------------------------------------------
async def test_apply_position_fee_sources_and_persistence(settings: Settings) -> None:
    strategy = sid()

    class OrmFill:
        fee = 0.25

        def to_dict(self) -> dict[str, Any]:
            return {"symbol": "BTC/USDT", "side": "buy", "ex_id": 3, "volume": 1.0, "price": 130.0}

    async with AsyncCache(strategy, "u") as cache:
        p = await cache.apply_position(
            order("f1", side="buy", ex_id=3, final_volume=2.0, volume=5.0, price=100.0), fee=0.5
        )
        assert (p.side, p.volume, p.price, p.ex_id, p.fee) == ("long", 2.0, 100.0, "3", 0.5)
        p = await cache.apply_position(
            {
                "symbol": "BTC/USDT",
                "side": "buy",
                "exchange": "binance",
                "volume": 1.0,
                "price": 130.0,
                "fee": 0.25,
            }
        )
        assert (p.volume, p.price, p.ex_id, p.fee) == (3.0, 110.0, "binance", 0.75)
        p = await cache.apply_position(OrmFill())
        assert (p.volume, p.price, p.fee) == (4.0, 115.0, 1.0)
        p = await cache.apply_position(order("f4", side="sell", ex_id=3, volume=1.0, price=95.0))
        assert (p.volume, p.price, p.realized_pnl, p.fee, p.count) == (3.0, 115.0, -20.0, 1.0, 4)
        p.volume = 0.0  # the returned position is a copy
        assert (await cache.get_position("BTC/USDT")).volume == 3.0  # type: ignore[union-attr]
    async with AsyncCache(strategy, "u") as again:
        got = await again.get_position("BTC/USDT")
        assert got is not None
        assert (got.side, got.volume, got.price, got.realized_pnl, got.count) == (
            "long",
            3.0,
            115.0,
            -20.0,
            4,
        )
        # the next fill builds on the stored position, not on an empty one
        p = await again.apply_position(order("f5", side="sell", ex_id=3, volume=4.0, price=100.0))
        assert (p.side, p.volume, p.price, p.realized_pnl) == ("short", 1.0, 100.0, -65.0)
        assert await again.get_position("ETH/USDT") is None


@pytest.mark.parametrize(
    ("fill", "kwargs", "error"),
    [
        (order("x", side="buy", ex_id=1, price=1.0), {}, ValueError),  # no volume
        (order("x", side="buy", ex_id=1, volume=1.0), {}, ValueError),  # no price
        (order("x", side="buy", volume=1.0, price=1.0), {}, ValueError),  # no exchange
        (order("x", side="hold", ex_id=1, volume=1.0, price=1.0), {}, ValueError),
        (order("x", ex_id=1, volume=1.0, price=1.0), {}, ValueError),  # no side
        (order("x", side="buy", ex_id=1, volume=-1.0, price=1.0), {}, ValueError),
        (order("x", side="buy", ex_id=1, volume=1.0, price=0.0), {}, ValueError),
        (Order(side="buy", ex_id=1, volume=1.0, price=1.0), {}, ValueError),  # no symbol
        (order("x", side="buy", ex_id=1, volume=1.0, price=1.0), {"fee": math.nan}, ValueError),
        (order("x", side="buy", ex_id=1, volume=1.0, price=1.0), {"fee": "1"}, TypeError),
        (
            {"symbol": "S", "side": "buy", "ex_id": 1, "volume": 1, "price": 1, "fee": "x"},
            {},
            TypeError,
        ),
        (42, {}, TypeError),
    ],
)
async def test_bad_fills_change_nothing(
    settings: Settings, fill: Any, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    async with AsyncCache(sid(), "u") as cache:
        with pytest.raises(error):
            await cache.apply_position(fill, **kwargs)
        assert cache.dirty_count == 0
        assert await cache.get_position("BTC/USDT") is None
        with pytest.raises(ValueError, match="symbol must not be empty"):
            await cache.get_position("")


async def test_concurrent_loads_of_one_position_apply_every_fill(settings: Settings) -> None:
    strategy = sid()
    async with AsyncCache(strategy, "u") as first:
        await first.apply_position(order("a", side="buy", ex_id=1, volume=1.0, price=10.0))
    async with AsyncCache(strategy, "u") as second:
        fills = [order(str(i), side="buy", ex_id=1, volume=1.0, price=10.0) for i in range(5)]
        await asyncio.gather(*(second.apply_position(f) for f in fills))
        got = await second.get_position("BTC/USDT")
        assert got is not None and (got.volume, got.count) == (6.0, 6)
    async with AsyncCache(strategy, "u") as third:
        views = await asyncio.gather(*(third.get_position("BTC/USDT") for _ in range(3)))
        assert all(v is not None and v.volume == 6.0 for v in views)


FILLS = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 100_000).map(lambda n: Decimal(n) / 1000),
        st.integers(1, 1_000_000).map(lambda n: Decimal(n) / 100),
        st.integers(0, 1000).map(lambda n: Decimal(n) / 1000),
    ),
    min_size=1,
    max_size=25,
)


def reference_position(fills: list[tuple[str, Decimal, Decimal, Decimal]]) -> dict[str, Any]:
    """Exact average-cost bookkeeping, written apart from the library."""
    qty, avg, realized, fees = Decimal(0), Decimal(0), Decimal(0), Decimal(0)
    for side, volume, price, fee in fills:
        fees += fee
        signed = volume if side == "buy" else -volume
        if qty == 0 or (qty > 0) == (signed > 0):
            avg = (abs(qty) * avg + volume * price) / (abs(qty) + volume)
        else:
            closing = min(abs(qty), volume)
            realized += closing * ((price - avg) if qty > 0 else (avg - price))
            if volume > abs(qty):
                avg = price
            elif volume == abs(qty):
                avg = Decimal(0)
        qty += signed
    side_name = None if qty == 0 else ("long" if qty > 0 else "short")
    return {
        "side": side_name,
        "volume": abs(qty),
        "price": avg,
        "realized_pnl": realized,
        "fee": fees,
        "count": len(fills),
    }


@hsettings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fills=FILLS)
async def test_property_random_fills_through_the_cache(
    standalone: Settings, fills: list[tuple[str, Decimal, Decimal, Decimal]]
) -> None:
    strategy = sid()
    async with AsyncCache(strategy, "u") as cache:
        for n, (side, volume, price, fee) in enumerate(fills):
            fill = order(
                n, "SOL/USDT", side=side, ex_id=4, final_volume=float(volume), price=float(price)
            )
            await cache.apply_position(fill, fee=float(fee))
    async with AsyncCache(strategy, "u") as reread:  # compare what Redis holds
        got = await reread.get_position("SOL/USDT")
    assert got is not None
    expected = reference_position(fills)
    assert got.side == expected["side"] and got.count == expected["count"]
    for name in ("volume", "price", "realized_pnl", "fee"):
        assert math.isclose(
            getattr(got, name), float(expected[name]), rel_tol=1e-9, abs_tol=1e-6
        ), name
    assert math.isclose(got.cost, got.volume * got.price, rel_tol=1e-12, abs_tol=1e-9)


# -- write-behind ---------------------------------------------------------------------------
async def test_sync_writes_only_dirty_entries_in_one_transaction(standalone: Settings) -> None:
    async with AsyncCache(sid(), "u", idle_flush=3600, sync_interval=3600) as cache:
        assert await cache.sync() == 0
        cache.order_initialized(order("a"))
        cache.order_initialized(order("b"))
        await cache.apply_position(order("a", side="buy", ex_id=1, volume=1.0, price=5.0))
        assert cache.dirty_count == 3
        await cache.redis.config_resetstat()
        assert await cache.sync() == 3
        stats = await cache.redis.info("commandstats")
        assert stats["cmdstat_multi"]["calls"] == 1
        assert stats["cmdstat_exec"]["calls"] == 1
        assert stats["cmdstat_hset"]["calls"] == 2
        assert cache.dirty_count == 0
        assert await cache.sync() == 0
        # tamper with the stored "a": a sync of other entries must not rewrite it
        orders_key = cache.keys.strategy_orders(cache.strategy_id, cache.user_id)
        await cache.redis.hset(orders_key, "a", encode(order("a", price=123.0)))
        cache.order_status_update(order("b", status="filled"))
        assert await cache.sync() == 1
        stored = await stored_orders(cache)
        assert stored["a"].price == 123.0 and stored["b"].status == "filled"
        assert set(await stored_positions(cache)) == {"BTC/USDT"}


async def test_change_during_a_successful_sync_stays_dirty(settings: Settings) -> None:
    async with AsyncCache(sid(), "u", idle_flush=3600, sync_interval=3600) as cache:
        cache.order_initialized(order("a"))
        in_flight = asyncio.create_task(cache.sync())
        await asyncio.sleep(0)  # the sync has taken its snapshot and waits for Redis
        cache.order_status_update(order("a", status="partially_filled", final_volume=0.5))
        assert await in_flight == 1
        assert (await stored_orders(cache))["a"].status == "open"
        assert cache.dirty_count == 1  # the newer value is still to be written
        assert await cache.sync() == 1
        assert (await stored_orders(cache))["a"].status == "partially_filled"


async def test_idle_flush_writes_shortly_after_writes_stop(settings: Settings) -> None:
    async with AsyncCache(sid(), "u", idle_flush=0.05, sync_interval=3600) as cache:
        cache.order_initialized(order("a"))
        await cache.apply_position(order("a", side="sell", ex_id=1, volume=2.0, price=5.0))

        async def written() -> bool:
            return "a" in await stored_orders(cache) and bool(await stored_positions(cache))

        await eventually(written, "idle flush")
        assert cache.dirty_count == 0


async def test_dirty_threshold_triggers_a_sync(settings: Settings) -> None:
    async with AsyncCache(
        sid(), "u", idle_flush=3600, sync_interval=3600, flush_threshold=3
    ) as cache:
        cache.order_initialized(order("a"))
        cache.order_initialized(order("b"))
        cache.order_initialized(order("c"))

        async def written() -> bool:
            return len(await stored_orders(cache)) == 3

        await eventually(written, "threshold flush")


async def test_periodic_sync_and_sweep_while_writes_continue(settings: Settings) -> None:
    async with AsyncCache(
        sid(), "u", idle_flush=3600, sync_interval=0.05, expire_time=0.05
    ) as cache:
        cache.order_initialized(order("done", status="filled"))

        async def written() -> bool:
            return "done" in await stored_orders(cache)

        await eventually(written, "periodic sync")

        async def evicted() -> bool:
            return await cache.get_symbol_orders("BTC/USDT") == set()

        await eventually(evicted, "background expiry sweep")
        assert (await cache.get_order("done")).status == "filled"  # type: ignore[union-attr]


async def test_eviction_keeps_dirty_open_and_recent_entries(settings: Settings) -> None:
    async with AsyncCache(
        sid(), "u", idle_flush=3600, sync_interval=3600, expire_time=0.01
    ) as cache:
        cache.order_initialized(order("open"))
        cache.order_initialized(order("done", status="filled"))
        await cache.apply_position(order("p", side="buy", ex_id=1, volume=1.0, price=2.0))
        await asyncio.sleep(0.05)
        assert cache.evict_expired() == 0  # all dirty
        await cache.sync()
        await asyncio.sleep(0.05)
        assert cache.evict_expired() == 2  # "done" and the position; "open" stays
        assert await cache.get_symbol_orders("BTC/USDT") == {"open"}
        assert await cache.get_open_orders() == {"open"}
        # the evicted position is read back from Redis (proved by changing it there)
        key = cache.keys.strategy_positions(cache.strategy_id, cache.user_id)
        await cache.redis.hset(
            key, "BTC/USDT", encode(Position(symbol="BTC/USDT", ex_id="1", volume=9.0, side="long"))
        )
        assert (await cache.get_position("BTC/USDT")).volume == 9.0  # type: ignore[union-attr]
    async with AsyncCache(sid(), "u", expire_time=3600) as fresh:
        fresh.order_initialized(order("x", status="filled"))
        await fresh.sync()
        assert fresh.evict_expired() == 0  # touched recently


# -- task managers and lifecycle ------------------------------------------------------------
class TaskGroupManager:
    """A task manager with create_task(coro), like an application's supervisor."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []

    def create_task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.append(task)
        return task


async def test_task_manager_with_create_task(settings: Settings) -> None:
    manager = TaskGroupManager()
    cache = AsyncCache(sid(), "u", task_manager=manager, idle_flush=0.05)
    await cache.start()
    assert len(manager.tasks) == 1
    cache.order_initialized(order("a"))

    async def written() -> bool:
        return "a" in await stored_orders(cache)

    await eventually(written, "sync run by the task manager")
    await cache.close()
    assert manager.tasks[0].done()


async def test_callable_task_manager_that_starts_late(settings: Settings) -> None:
    held: list[Coroutine[Any, Any, None]] = []
    cache = AsyncCache(sid(), "u", task_manager=held.append)
    await cache.start()
    cache.order_initialized(order("a"))
    await cache.close()  # the background coroutine never ran: close syncs alone
    assert "a" in await stored_orders(cache)
    await held[0]  # when it finally runs it ends at once


async def test_close_is_idempotent_and_final(settings: Settings) -> None:
    cache = AsyncCache(sid(), "u")
    cache.order_initialized(order("a"))  # usable before start
    await cache.close()
    await cache.close()
    assert cache.closed and "a" in await stored_orders(cache)
    with pytest.raises(RuntimeError):
        cache.order_initialized(order("b"))
    with pytest.raises(RuntimeError):
        cache.order_status_update(order("a", status="filled"))
    with pytest.raises(RuntimeError):
        await cache.apply_position(order("a", side="buy", ex_id=1, volume=1.0, price=1.0))
    with pytest.raises(RuntimeError):
        await cache.start()
    assert (await cache.get_order("a")).status == "open"  # type: ignore[union-attr]


# -- Redis down -----------------------------------------------------------------------------
async def test_nothing_dirty_is_lost_while_redis_is_down(
    private_server: EmbeddedServer, private: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fullon.cache.async")
    cache = AsyncCache(sid(), "u", settings=private, idle_flush=0.05, sync_interval=0.5)
    await cache.start()
    cache.order_initialized(order("before", side="buy", exchange="x"))
    await cache.apply_position(order("before", side="buy", ex_id=1, volume=2.0, price=10.0))
    assert await cache.sync() == 2

    private_server.stop()
    cache.order_initialized(order("during"))
    cache.order_status_update(order("before", status="partially_filled", final_volume=1.0))
    await cache.apply_position(order("f", side="sell", ex_id=1, volume=3.0, price=12.0))
    with pytest.raises(CacheConnectionError):
        await cache.get_position("ETH/USDT")  # not in memory: needs Redis, says so
    with pytest.raises(ValueError, match="fill side"):
        await cache.apply_position(order("f", side="hold", ex_id=1, volume=1.0, price=1.0))
    with pytest.raises(CacheConnectionError):
        await cache.sync()
    # a change that lands while a failing sync is in flight keeps its newest value
    in_flight = asyncio.create_task(cache.sync())
    await asyncio.sleep(0)
    cache.order_status_update(order("during", status="canceled"))
    with pytest.raises(CacheConnectionError):
        await in_flight
    assert cache.dirty_count == 3

    def logged() -> bool:
        return any("dirty entries kept" in r.getMessage() for r in caplog.records)

    async def background_failed() -> bool:
        return logged()

    await eventually(background_failed, "the background sync logs its failure")
    with pytest.raises(CacheConnectionError):
        await cache.close()  # the final sync fails: the cache stays open and dirty
    assert not cache.closed and cache.dirty_count == 3

    private_server.start()  # same port, empty: it keeps nothing on disk
    await asyncio.sleep(0.2)  # past the circuit breaker's cool-down
    await cache.close()
    assert cache.closed and cache.dirty_count == 0
    orders = await stored_orders(cache)
    assert {k: v.status for k, v in orders.items()} == {
        "before": "partially_filled",
        "during": "canceled",
    }
    position = (await stored_positions(cache))["BTC/USDT"]
    assert (position.side, position.volume, position.price, position.realized_pnl) == (
        "short",
        1.0,
        12.0,
        4.0,
    )


async def test_background_sync_recovers_after_a_restart(
    private_server: EmbeddedServer, private: Settings
) -> None:
    cache = AsyncCache(sid(), "u", settings=private, idle_flush=0.05, sync_interval=0.3)
    await cache.start()
    private_server.kill()
    cache.order_initialized(order("a"))
    await asyncio.sleep(0.3)  # let the background task fail at least once
    private_server.restart()

    async def written() -> bool:
        return "a" in await stored_orders(cache)

    await eventually(written, "background retry after the restart")
    assert cache.dirty_count == 0
    await cache.close()


async def test_start_with_redis_down_raises(
    private_server: EmbeddedServer, private: Settings
) -> None:
    private_server.stop()
    cache = AsyncCache(sid(), "u", settings=private)
    with pytest.raises(CacheConnectionError):
        await cache.start()


# -- crash recovery -------------------------------------------------------------------------
CHILD = r"""
import asyncio, sys
from fullon_cache.async_cache import AsyncCache
from fullon_cache.models import Order

async def main(strategy: str) -> None:
    cache = AsyncCache(strategy, "u", idle_flush=0.05, sync_interval=3600)
    await cache.start()
    # A: written by an explicit sync
    cache.order_initialized(Order(order_id="a1", symbol="BTC/USDT", side="buy", exchange="binance"))
    await cache.apply_position(Order(symbol="BTC/USDT", side="buy", ex_id=1,
                                     final_volume=2.0, price=100.0), fee=0.5)
    cache.order_status_update(Order(order_id="a1", status="filled", final_volume=2.0))
    cache.order_initialized(Order(order_id="a2", symbol="ETH/USDT", side="sell",
                                  exchange="binance"))
    assert await cache.sync() == 3
    # B: written by the background idle flush
    await cache.apply_position(Order(symbol="BTC/USDT", side="sell", ex_id=1,
                                     volume=0.5, price=120.0))
    cache.order_initialized(Order(order_id="b1", symbol="BTC/USDT", side="sell", exchange="kraken"))
    while cache.dirty_count:
        await asyncio.sleep(0.01)
    # C: never synced: the write-behind window lost by a crash
    cache.order_initialized(Order(order_id="c1", symbol="BTC/USDT", side="buy"))
    await cache.apply_position(Order(symbol="SOL/USDT", side="buy", ex_id=1, volume=1.0, price=1.0))
    print("READY", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1]))
"""


async def test_sigkilled_process_leaves_what_it_synced(settings: Settings) -> None:
    strategy = sid()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, strategy, stdout=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE)
        assert line.strip() == b"READY"
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    async with AsyncCache(strategy, "u") as cache:
        assert await cache.get_open_orders() == {"a2", "b1"}
        assert await cache.get_open_orders(exchange="kraken") == {"b1"}
        assert (await cache.get_order("a1")).status == "filled"  # type: ignore[union-attr]
        assert await cache.get_order("c1") is None
        btc = await cache.get_position("BTC/USDT")
        assert btc is not None
        assert (btc.side, btc.volume, btc.price, btc.realized_pnl, btc.fee, btc.count) == (
            "long",
            1.5,
            100.0,
            10.0,
            0.5,
            2,
        )
        assert await cache.get_position("SOL/USDT") is None
        # the restarted strategy carries on from the recovered state
        cache.order_status_update(order("b1", status="filled"))
        assert await cache.get_open_orders() == {"a2"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sync_interval": 0}, ValueError),
        ({"sync_interval": float("nan")}, ValueError),
        ({"expire_time": -1}, ValueError),
        ({"sync_interval": "60"}, TypeError),
        ({"expire_time": True}, TypeError),
        ({"flush_threshold": 1.5}, TypeError),
        ({"task_manager": object()}, TypeError),
    ],
)
def test_constructor_arguments_are_validated(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        AsyncCache("s", 1, **kwargs)
