"""Restarts and partitions: a server restarted under load, and a TCP proxy that
stalls, drops or refuses connections mid-command.

Checked: no reply is ever handed to the wrong command (after timeouts and
cancellations), pub/sub streams resubscribe, blocking pops resume, and every failure
ends in the library's typed error after the bounded retries, never a hang. Deadlines
below only prevent hangs; nothing asserts speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from fullon_cache.base_cache import BaseCache
from fullon_cache.embedded import EmbeddedServer
from fullon_cache.exceptions import CacheConnectionError, CacheTimeoutError
from fullon_cache.models import Order, Tick
from fullon_cache.orders_cache import OrdersCache
from fullon_cache.tick_cache import TickCache
from support.proxy import FaultProxy

from .conftest import fast_settings

pytestmark = pytest.mark.reliability

HANG_GUARD = 20.0  # seconds: a scenario still running after this has hung


def _symbols(count: int) -> list[str]:
    return [f"S{i}/USDT" for i in range(count)]


async def test_server_restarted_under_load_recovers_without_mixing_data(
    private_server: EmbeddedServer,
) -> None:
    settings = fast_settings(
        private_server.host, private_server.port, retry_attempts=3, retry_backoff_cap=0.2
    )
    ticks = TickCache(settings=settings)
    symbols = _symbols(20)
    stop = asyncio.Event()
    stats = {"ok": 0, "typed_errors": 0, "ok_after_restart": 0}
    restarted = asyncio.Event()

    async def writer_reader(worker: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            symbol = symbols[(worker * 7 + n) % len(symbols)]
            price = float(worker * 1_000_000 + n)
            try:
                await ticks.set_ticker(Tick(symbol=symbol, exchange="binance", price=price))
                got = await ticks.get_ticker(symbol, "binance")
            except CacheConnectionError:
                stats["typed_errors"] += 1
                await asyncio.sleep(0.02)
                continue
            # None is possible: the restarted server (no persistence) lost the write
            # between the two calls. A reply of another key never is.
            assert got is None or got.symbol == symbol
            stats["ok"] += 1
            if restarted.is_set():
                stats["ok_after_restart"] += 1
                if stats["ok_after_restart"] >= 50:
                    stop.set()

    async with asyncio.timeout(HANG_GUARD):
        workers = [asyncio.create_task(writer_reader(w)) for w in range(4)]
        await asyncio.sleep(0.3)
        await asyncio.to_thread(private_server.restart)  # data is gone: no persistence
        restarted.set()
        await asyncio.gather(*workers)
    assert stats["ok"] > stats["ok_after_restart"] > 0


async def test_stalled_replies_never_reach_another_command(proxy: FaultProxy) -> None:
    """Interleaved reads of different keys while the link stalls and resumes: commands
    time out or are cancelled mid-reply; every reply that arrives matches its key."""
    settings = fast_settings(proxy.host, proxy.port, socket_timeout=0.2, retry_attempts=0)
    ticks = TickCache(settings=settings)
    symbols = _symbols(30)
    prices = {s: float(i + 1) for i, s in enumerate(symbols)}
    await ticks.set_tickers(Tick(symbol=s, exchange="ex", price=p) for s, p in prices.items())
    rng = random.Random(7)
    outcomes = {"matched": 0, "timed_out": 0, "cancelled": 0}

    async def read(symbol: str) -> None:
        try:
            got = await asyncio.wait_for(ticks.get_ticker(symbol, "ex"), rng.uniform(0.05, 0.4))
        except CacheTimeoutError:
            outcomes["timed_out"] += 1
            return
        except TimeoutError:  # cancelled by wait_for while in flight
            outcomes["cancelled"] += 1
            return
        assert got is not None
        assert (got.symbol, got.price) == (symbol, prices[symbol])
        outcomes["matched"] += 1

    async with asyncio.timeout(HANG_GUARD):
        for _round in range(6):
            batch = [asyncio.create_task(read(rng.choice(symbols))) for _ in range(40)]
            await asyncio.sleep(rng.uniform(0.0, 0.02))
            proxy.stall()
            await asyncio.sleep(rng.uniform(0.1, 0.3))
            proxy.resume()  # late replies arrive on connections whose command gave up
            await asyncio.gather(*batch)
        # and after the storm, every key still reads its own value
        for symbol in symbols:
            got = await ticks.get_ticker(symbol, "ex")
            assert got is not None and got.price == prices[symbol]
    assert outcomes["matched"] > 0
    assert outcomes["timed_out"] + outcomes["cancelled"] > 0


async def test_unreachable_server_raises_typed_errors_never_hangs(proxy: FaultProxy) -> None:
    settings = fast_settings(proxy.host, proxy.port, socket_timeout=0.3, retry_attempts=2)
    cache = OrdersCache(settings=settings)
    assert await cache.push_open_order("binance", Order(order_id=1))
    async with asyncio.timeout(HANG_GUARD):
        proxy.stall()  # a server that accepts and never answers
        with pytest.raises(CacheTimeoutError):
            await cache.get_queue_length("binance")
        with pytest.raises(CacheTimeoutError):
            await cache.pop_open_order("binance", timeout=0.2)
        await proxy.drop()
        proxy.refuse()  # connections reset as soon as they open
        proxy.resume()
        with pytest.raises(CacheConnectionError) as info:
            await cache.push_open_order("binance", Order(order_id=2))
        assert isinstance(info.value, ConnectionError)
        assert await cache.test() is False
        proxy.refuse(False)
        assert await cache.test() is True
        order = await cache.pop_open_order("binance")
        assert order is not None and order.order_id == 1
        assert await cache.pop_open_order("binance") is None  # the refused push queued nothing


async def test_blocking_pops_resume_after_the_connection_drops(
    proxy: FaultProxy, private_server: EmbeddedServer
) -> None:
    settings = fast_settings(proxy.host, proxy.port, retry_attempts=3)
    orders = OrdersCache(settings=settings)
    errors = BaseCache(settings=settings)
    direct = fast_settings(private_server.host, private_server.port, namespace=settings.namespace)
    async with asyncio.timeout(HANG_GUARD):
        order_pop = asyncio.create_task(orders.pop_open_order("kraken", timeout=5))
        error_pop = asyncio.create_task(errors.pop_global_error(timeout=5))
        await asyncio.sleep(0.3)  # both are blocked on the server
        assert await proxy.drop() >= 2  # reset mid-BLMOVE / mid-BRPOP
        await asyncio.sleep(0.2)
        # pushed by another client, straight to the server
        assert await OrdersCache(settings=direct).push_open_order("kraken", Order(order_id=42))
        assert await BaseCache(settings=direct).push_global_error("feed down", "ticker")
        order = await order_pop
        error = await error_pop
    assert order is not None and order.order_id == 42
    assert error is not None and error["error"] == "feed down"
    await BaseCache(settings=direct).prepare_cache()


async def test_blocking_pop_across_a_server_restart(private_server: EmbeddedServer) -> None:
    settings = fast_settings(private_server.host, private_server.port, retry_attempts=4)
    orders = OrdersCache(settings=settings)
    async with asyncio.timeout(HANG_GUARD):
        waiting = asyncio.create_task(orders.pop_open_order("kraken", timeout=3))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(private_server.restart)
        # the waiting pop either resumed on the new server or raised the typed error
        with contextlib.suppress(CacheConnectionError):
            assert await waiting is None
        later = asyncio.create_task(orders.pop_open_order("kraken", timeout=3))
        await asyncio.sleep(0.1)
        assert await orders.push_open_order("kraken", Order(order_id=7))
        got = await later
    assert got is not None and got.order_id == 7


async def test_tick_stream_resubscribes_after_drop_and_restart(
    proxy: FaultProxy, private_server: EmbeddedServer
) -> None:
    settings = fast_settings(proxy.host, proxy.port)
    ticks = TickCache(settings=settings)
    received: asyncio.Queue[Tick] = asyncio.Queue()
    subscription = await ticks.subscribe("binance", ["BTC/USDT"], received.put_nowait)

    async def until_price(price: float) -> None:
        # publish until the subscriber sees it: it resubscribes with back-off meanwhile
        async with asyncio.timeout(HANG_GUARD / 2):
            while True:
                with contextlib.suppress(CacheConnectionError):
                    await ticks.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=price))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        while (await received.get()).price != price:
                            pass
                        return

    try:
        await until_price(1.0)
        await proxy.drop()  # the subscriber's connection is reset
        await until_price(2.0)
        await asyncio.to_thread(private_server.restart)  # the server itself goes away
        await until_price(3.0)
        assert subscription.active
    finally:
        await subscription.close()
