"""A small performance tour: sequential and concurrent ticker writes and reads, and
the order queue, with their rates. Numbers depend on the machine and the network;
``make bench`` is the real benchmark.

Run: ``python -m fullon_cache.examples.performance_test`` (keys live under
``<FULLON_CACHE_NAMESPACE>.performance_test`` and are removed afterwards).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fullon_cache.config import Settings
from fullon_cache.examples import example_settings, run
from fullon_cache.models import Order, Tick
from fullon_cache.orders_cache import OrdersCache
from fullon_cache.tick_cache import TickCache

OPERATIONS = 200


async def _timed(label: str, count: int, work: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await work()
    elapsed = max(time.perf_counter() - started, 1e-9)
    rate = count / elapsed
    print(f"  {label:<38} {count:>5} ops  {elapsed * 1000:8.1f} ms  {rate:10.0f} ops/s")
    return rate


async def main(settings: Settings | None = None, operations: int = OPERATIONS) -> dict[str, Any]:
    """Time ``operations`` of each kind. Returns the rates (ops/s) by label and the
    ``checks`` made after the run (every write is read back)."""
    settings = example_settings("performance_test", settings)
    symbols = [f"S{n}/USDT" for n in range(operations)]
    async with TickCache(settings=settings) as ticks, OrdersCache(settings=settings) as orders:
        await ticks.prepare_cache()
        try:
            rates: dict[str, float] = {}

            async def write_sequential() -> None:
                for n, symbol in enumerate(symbols):
                    await ticks.set_ticker(Tick(symbol=symbol, exchange="bench", price=n + 1.0))

            # At most REDIS_MAX_CONNECTIONS calls at once: a standalone pool makes the
            # rest wait for a connection, but on Redis Cluster redis-py's per-node pools
            # refuse them, so bound the concurrency of one loop below that setting.
            limit = asyncio.Semaphore(max(1, min(32, settings.max_connections // 2)))

            async def read_one(symbol: str) -> float:
                async with limit:
                    return await ticks.get_price(symbol, "bench")

            async def read_concurrent() -> None:
                await asyncio.gather(*(read_one(symbol) for symbol in symbols))

            async def write_batch() -> None:
                await ticks.set_tickers(
                    Tick(symbol=symbol, exchange="batch", price=1.0) for symbol in symbols
                )

            async def queue_round_trip() -> None:
                for n in range(operations):
                    await orders.push_open_order("bench", Order(order_id=n))
                while await orders.pop_open_order("bench") is not None:
                    pass

            print(f"{operations} operations each:")
            rates["set_ticker (sequential)"] = await _timed(
                "set_ticker (sequential)", operations, write_sequential
            )
            rates["get_price (concurrent)"] = await _timed(
                "get_price (concurrent, gather)", operations, read_concurrent
            )
            rates["set_tickers (one batch)"] = await _timed(
                "set_tickers (one batch)", operations, write_batch
            )
            rates["push + pop order"] = await _timed(
                "push_open_order + pop_open_order", 2 * operations, queue_round_trip
            )
            checks = {
                "tickers": len(await ticks.get_tickers("bench")),
                "batch": len(await ticks.get_tickers("batch")),
                "last_price": await ticks.get_price(symbols[-1], "bench"),
                "queue": await orders.get_queue_length("bench"),
            }
            print(f"checks: {checks}")
            return {"rates": rates, "checks": checks}
        finally:
            await ticks.prepare_cache()


if __name__ == "__main__":
    run(main)
