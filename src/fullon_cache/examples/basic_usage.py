"""Basic usage: tickers, prices, candlesticks and the operators' error queue.

Run: ``python -m fullon_cache.examples.basic_usage`` (uses REDIS_* from the environment
or ``.env``; keys live under ``<FULLON_CACHE_NAMESPACE>.basic_usage`` and are removed
afterwards).
"""

from __future__ import annotations

import time
from typing import Any

from fullon_cache.base_cache import BaseCache
from fullon_cache.config import Settings
from fullon_cache.examples import example_settings, run
from fullon_cache.models import Tick
from fullon_cache.ohlcv_cache import OHLCVCache
from fullon_cache.tick_cache import TickCache


async def main(settings: Settings | None = None) -> dict[str, Any]:
    """Store two tickers, read them back, keep a few candles, queue an error.

    Returns what was read back: ``price``, ``best_price``, ``spread``, ``bars`` and
    ``error``.
    """
    settings = example_settings("basic_usage", settings)
    async with TickCache(settings=settings) as ticks, OHLCVCache(settings=settings) as ohlcv:
        await ticks.prepare_cache()
        try:
            print(f"Connected: {await ticks.ping()} (namespace {settings.namespace!r})")

            now = time.time()
            await ticks.set_ticker(
                Tick(
                    symbol="BTC/USDT",
                    exchange="binance",
                    price=50_000.0,
                    bid=49_999.0,
                    ask=50_001.0,
                    volume=12.5,
                    time=now - 5,
                )
            )
            await ticks.set_ticker(
                Tick(symbol="BTC/USDT", exchange="kraken", price=50_010.0, time=now)
            )
            tick = await ticks.get_ticker("BTC/USDT", "binance")
            assert tick is not None
            price = await ticks.get_price("BTC/USDT", "binance")
            best = await ticks.get_price("BTC/USDT")  # freshest across exchanges
            print(
                f"binance BTC/USDT: {price} (bid {tick.bid}, ask {tick.ask}, spread {tick.spread})"
            )
            print(f"freshest BTC/USDT on any exchange: {best}")
            print(f"unknown symbol price: {await ticks.get_price('NOPE/USDT', 'binance')}")

            bars = [[60.0 * i, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 10.0] for i in range(5)]
            await ohlcv.update_ohlcv_bars("BTC/USDT", "1m", bars, exchange="binance")
            latest = await ohlcv.get_latest_ohlcv_bars("BTC/USDT", "1m", 3, exchange="binance")
            print(f"latest 3 one-minute bars (oldest first): {[bar[0] for bar in latest]}")

            base = BaseCache(settings=settings)
            await base.push_global_error("feed disconnected", component="ticker")
            error = await base.pop_global_error()
            assert error is not None
            print(f"operator error queue: {error['error']!r} from {error['component']!r}")
            return {
                "price": price,
                "best_price": best,
                "spread": tick.spread,
                "bars": len(latest),
                "error": error["error"],
            }
        finally:
            await ticks.prepare_cache()


if __name__ == "__main__":
    run(main)
