"""Ticker pub/sub: a callback subscription and a stream, fed by a ticker service.

Every :meth:`TickCache.set_ticker` stores the tick and publishes it in the same round
trip. A consumer either registers a callback (:meth:`TickCache.subscribe`, returns once
subscribed) or iterates :meth:`TickCache.stream_ticker_updates` (``snapshot=True``
yields the stored ticks first, so nothing published before the subscription is missed).

Run: ``python -m fullon_cache.examples.pubsub_example`` (keys live under
``<FULLON_CACHE_NAMESPACE>.pubsub_example`` and are removed afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fullon_cache.config import Settings
from fullon_cache.examples import example_settings, run
from fullon_cache.models import Tick
from fullon_cache.tick_cache import TickCache

EXCHANGE = "binance"
PRICES = [("BTC/USDT", 50_000.0), ("ETH/USDT", 3_000.0), ("BTC/USDT", 50_050.0)]
_WAIT = 10.0  # seconds: a safety net, the updates arrive in milliseconds


async def main(settings: Settings | None = None) -> dict[str, Any]:
    """Publish three ticks to a callback subscriber and a stream subscriber.

    Returns ``callback`` and ``stream``: the (symbol, price) pairs each one received.
    """
    settings = example_settings("pubsub_example", settings)
    async with TickCache(settings=settings) as ticks:
        await ticks.prepare_cache()
        try:
            received: list[tuple[str, float]] = []
            all_seen = asyncio.Event()

            def on_tick(tick: Tick) -> None:
                received.append((tick.symbol, tick.price))
                print(f"  callback got {tick.symbol} {tick.price}")
                if len(received) == len(PRICES):
                    all_seen.set()

            print(f"subscribing a callback to every {EXCHANGE} symbol")
            async with await ticks.subscribe(EXCHANGE, None, on_tick):
                for symbol, price in PRICES:
                    print(f"ticker service publishes {symbol} {price}")
                    await ticks.set_ticker(Tick(symbol=symbol, exchange=EXCHANGE, price=price))
                await asyncio.wait_for(all_seen.wait(), _WAIT)

            print("a late subscriber streams BTC/USDT with snapshot=True")
            streamed: list[tuple[str, float]] = []
            updates = ticks.stream_ticker_updates(EXCHANGE, ["BTC/USDT"], snapshot=True)
            async with contextlib.aclosing(updates):
                first = await asyncio.wait_for(anext(updates), _WAIT)
                streamed.append((first.symbol, first.price))
                print(f"  snapshot: {first.symbol} {first.price} (the stored tick)")
                await ticks.set_ticker(Tick(symbol="BTC/USDT", exchange=EXCHANGE, price=50_100.0))
                live = await asyncio.wait_for(anext(updates), _WAIT)
                streamed.append((live.symbol, live.price))
                print(f"  live: {live.symbol} {live.price}")
            return {"callback": received, "stream": streamed}
        finally:
            await ticks.prepare_cache()


if __name__ == "__main__":
    run(main)
