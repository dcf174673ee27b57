"""Bounded memory: a soak writes ticks, trades, OHLCV bars, orders, operator errors,
process heartbeats and websocket-style churn in a loop for a few seconds against a
private server with small bounds; every list, sorted set, set and hash the library
wrote stays within its bound or carries a TTL, and the key count and server memory
stop growing after warm-up."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import pytest

from fullon_cache.base_cache import BaseCache
from fullon_cache.embedded import EmbeddedServer
from fullon_cache.models import Order, Tick, Trade
from fullon_cache.ohlcv_cache import OHLCVCache
from fullon_cache.orders_cache import OrderQueueFullError, OrdersCache
from fullon_cache.process_cache import ProcessCache, ProcessStatus, ProcessType
from fullon_cache.tick_cache import TickCache
from fullon_cache.trades_cache import TradeListFullError, TradesCache

from .conftest import fast_settings

pytestmark = pytest.mark.reliability

CAP = 50  # FULLON_CACHE_MAX_LIST_LENGTH
ERRORS = 20  # FULLON_CACHE_GLOBAL_ERROR_MAX
BARS = 30  # FULLON_CACHE_OHLCV_MAX_BARS
SYMBOLS = [f"C{i}/USDT" for i in range(10)]
EXCHANGES = ["binance", "kraken"]
WARMUP, SOAK = 1.0, 3.0  # seconds of writing (bounded loop lengths, not speed checks)


async def _snapshot(cache: BaseCache) -> dict[str, Any]:
    client = cache.redis
    sizes: dict[str, tuple[str, int, int]] = {}
    for key in await cache.get_keys():
        kind = (await client.type(key)).decode()
        length = {
            "list": client.llen,
            "zset": client.zcard,
            "set": client.scard,
            "hash": client.hlen,
            "stream": client.xlen,
        }.get(kind)
        size = int(await length(key)) if length is not None else 1
        sizes[key] = (kind, size, int(await client.ttl(key)))
    memory = await client.info("memory")
    return {"keys": sizes, "used_memory": int(memory["used_memory"])}


async def test_soak_memory_stays_bounded(private_server: EmbeddedServer) -> None:
    settings = fast_settings(
        private_server.host,
        private_server.port,
        max_list_length=CAP,
        global_error_max=ERRORS,
        ohlcv_max_bars=BARS,
        trade_dedupe_window=1,
        process_ttl=60,
    )
    ticks, trades = TickCache(settings=settings), TradesCache(settings=settings)
    ohlcv, orders = OHLCVCache(settings=settings), OrdersCache(settings=settings)
    processes, base = ProcessCache(settings=settings), BaseCache(settings=settings)
    rng = random.Random(3)
    ids = [await processes.register_process(ProcessType.TICK, f"feed{i}") for i in range(5)]
    counter = itertools.count()
    refused = 0

    async def burst(seconds: float) -> None:
        nonlocal refused
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            n = next(counter)
            exchange, symbol = rng.choice(EXCHANGES), rng.choice(SYMBOLS)
            await ticks.set_ticker(Tick(symbol=symbol, exchange=exchange, price=rng.random()))
            trade = Trade(ex_trade_id=f"t{n}", symbol=symbol, volume=1, price=n)
            try:
                await trades.push_trade(exchange, trade)
            except TradeListFullError:
                refused += 1  # the consumer is behind: the list is capped, never unbounded
            if n % 200 == 0:  # a (slow) consumer drains now and then
                await trades.get_trades(symbol, exchange)
            await ohlcv.update_ohlcv_bars(symbol, "1m", [[60.0 * n, 1, 2, 0.5, 1.5, 10]])
            await base.push_global_error(f"error {n}", "soak")
            await processes.update_process(ids[n % 5], status=ProcessStatus.RUNNING, message=str(n))
            try:
                await orders.push_open_order(exchange, Order(order_id=n, symbol=symbol))
            except OrderQueueFullError:
                refused += 1  # the executors are behind: the push is refused, not dropped
            if n % 2:
                await orders.pop_open_order(exchange)

    await burst(WARMUP)
    warm = await _snapshot(base)
    await burst(SOAK)
    await asyncio.sleep(1.1)  # dedupe markers (TTL 1 s) of the last writes expire
    end = await _snapshot(base)
    written = next(counter)

    # every structure is within its bound, or expires
    for key, (kind, size, ttl) in end["keys"].items():
        if ttl > 0:
            continue
        bound = {"list": CAP, "zset": max(BARS, CAP), "set": len(EXCHANGES), "hash": 32}
        assert kind in bound or kind == "string", (key, kind)
        assert size <= bound.get(kind, 1), (key, kind, size)
    errors = end["keys"][base.keys.global_errors()]
    assert errors[1] == ERRORS
    queued = [end["keys"][orders.keys.order_queue(e)][1] for e in EXCHANGES]
    assert max(queued) <= CAP and refused > 0  # queues and trade lists hit their caps

    # the key count and the memory stopped growing once the bounds were reached
    def persistent(snapshot: dict[str, Any]) -> int:
        return sum(1 for _kind, _size, ttl in snapshot["keys"].values() if ttl < 0)

    assert persistent(end) <= persistent(warm) + len(EXCHANGES) * len(SYMBOLS)
    assert written > 10 * len(end["keys"])  # expired markers are gone, lists did not grow
    assert end["used_memory"] < warm["used_memory"] + 2_000_000
    await base.prepare_cache()
