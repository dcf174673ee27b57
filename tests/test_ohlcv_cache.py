from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from fullon_cache.config import Settings
from fullon_cache.embedded import EmbeddedServer, free_port
from fullon_cache.exceptions import CacheConnectionError, CacheDataError
from fullon_cache.ohlcv_cache import TIMEFRAMES, OHLCVCache


def bar(ts: float, close: float = 1.0, volume: float = 1.0) -> list[float]:
    return [ts, 1.0, 2.0, 0.5, close, volume]


async def until(condition: Callable[[], bool]) -> None:
    """Wait (polling) until ``condition()`` holds; a hang guard, not a speed check."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


class Collector:
    def __init__(self, stream: AsyncIterator[list[float]]) -> None:
        self.stream = stream
        self.items: list[list[float]] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for item in self.stream:
                self.items.append(item)
        except Exception as exc:
            self.error = exc

    def live(self) -> list[list[float]]:
        return [item for item in self.items if item[0] != WARM_TS]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.wait({self.task})
        await self.stream.aclose()  # type: ignore[attr-defined]


WARM_TS = 1e15  # far in the future: always the newest bar, never trimmed


async def settle(cache: OHLCVCache, items: list[list[float]], *series: Any) -> None:
    """Write warm-up bars until the subscriber receives one: it is subscribed."""
    while not any(item[0] == WARM_TS for item in items):
        await cache.update_ohlcv_bars(*series[:2], [bar(WARM_TS)], *series[2:])
        await asyncio.sleep(0.01)


@pytest.fixture
async def cache(settings: Settings) -> AsyncIterator[OHLCVCache]:
    async with OHLCVCache() as instance:
        yield instance


async def test_bars_come_back_oldest_first(cache: OHLCVCache) -> None:
    assert await cache.get_latest_ohlcv_bars("BTC/USDT", "1m", 10) == []
    await cache.update_ohlcv_bars("BTC/USDT", "1m", [bar(180), bar(60), bar(120)])
    assert await cache.get_latest_ohlcv_bars("BTC/USDT", "1m", 10) == [bar(60), bar(120), bar(180)]
    assert await cache.get_latest_ohlcv_bars("BTC/USDT", "1m", 2) == [bar(120), bar(180)]
    assert await cache.get_latest_ohlcv_bars("BTC/USDT", "1m", 0) == []
    # ints and tuples are accepted, stored as floats
    await cache.update_ohlcv_bars("ETH/USDT", "1d", [(86400, 1, 2, 0, 1, 5)])
    assert await cache.get_latest_ohlcv_bars("ETH/USDT", "1d", 1) == [
        [86400.0, 1.0, 2.0, 0.0, 1.0, 5.0]
    ]


async def test_a_corrupt_stored_bar_is_a_data_error(cache: OHLCVCache) -> None:
    await cache.update_ohlcv_bars("BTC/USDT", "1m", [bar(0), bar(60)])
    await cache.redis.zadd(cache.keys.ohlcv("BTC/USDT", "1m"), {b"[-60, oops]": -60})
    with pytest.raises(CacheDataError, match="does not decode"):
        await cache.get_latest_ohlcv_bars("BTC/USDT", "1m", 3)
    assert await cache.get_latest_ohlcv_bars("BTC/USDT", "1m", 2) == [bar(0), bar(60)]


async def test_same_timestamp_replaces_the_bar(cache: OHLCVCache) -> None:
    await cache.update_ohlcv_bars("BTC/USDT", "5m", [bar(300, close=1.0), bar(600, close=1.0)])
    await cache.update_ohlcv_bars("BTC/USDT", "5m", [bar(600, close=2.0, volume=9.0)])
    # within one call the last bar of a timestamp wins
    await cache.update_ohlcv_bars("BTC/USDT", "5m", [bar(900, close=3.0), bar(900, close=4.0)])
    assert await cache.get_latest_ohlcv_bars("BTC/USDT", "5m", 10) == [
        bar(300, close=1.0),
        bar(600, close=2.0, volume=9.0),
        bar(900, close=4.0),
    ]
    # an identical bar again does not duplicate
    await cache.update_ohlcv_bars("BTC/USDT", "5m", [bar(300, close=1.0)])
    assert len(await cache.get_latest_ohlcv_bars("BTC/USDT", "5m", 10)) == 3


async def test_symbol_with_and_without_slash_is_one_series(cache: OHLCVCache) -> None:
    await cache.update_ohlcv_bars("BTC/USDT", "1h", [bar(3600)])
    await cache.update_ohlcv_bars("BTCUSDT", "1h", [bar(7200)])
    assert await cache.get_latest_ohlcv_bars("BTCUSDT", "1h", 5) == [bar(3600), bar(7200)]
    assert await cache.get_latest_ohlcv_bars("BTC/USDT", "1h", 5) == [bar(3600), bar(7200)]


async def test_series_are_separate_per_timeframe_and_exchange(cache: OHLCVCache) -> None:
    for tf in TIMEFRAMES:
        await cache.update_ohlcv_bars("BTC/USDT", tf, [bar(1, close=float(len(tf)))])
    await cache.update_ohlcv_bars("BTC/USDT", "1m", [bar(1, close=7.0)], "kraken")
    await cache.update_ohlcv_bars("BTC/USDT", "1m", [bar(1, close=8.0)], exchange="bin*")
    for tf in TIMEFRAMES:
        assert await cache.get_latest_ohlcv_bars("BTC/USDT", tf, 5) == [bar(1, close=len(tf))]
    assert await cache.get_latest_ohlcv_bars("BTC/USDT", "1m", 5, "kraken") == [bar(1, close=7)]
    assert await cache.get_latest_ohlcv_bars("BTC/USDT", "1m", 5, exchange="bin*") == [
        bar(1, close=8.0)
    ]
    assert await cache.get_latest_ohlcv_bars("BTC/USDT", "1m", 5, "binance") == []


async def test_storage_keeps_the_newest_bars(settings: Settings) -> None:
    small = msgspec.structs.replace(settings, ohlcv_max_bars=5)
    async with OHLCVCache(settings=small) as cache:
        await cache.update_ohlcv_bars("BTC/USDT", "1m", [bar(float(t)) for t in range(8)])
        assert [b[0] for b in await cache.get_latest_ohlcv_bars("BTC/USDT", "1m", 100)] == [
            3.0,
            4.0,
            5.0,
            6.0,
            7.0,
        ]
        await cache.update_ohlcv_bars("BTC/USDT", "1m", [bar(1.0), bar(10.0)])  # 1.0 is too old
        assert [b[0] for b in await cache.get_latest_ohlcv_bars("BTC/USDT", "1m", 100)] == [
            4.0,
            5.0,
            6.0,
            7.0,
            10.0,
        ]
        key = cache.keys.ohlcv("BTC/USDT", "1m")
        assert await cache.redis.zcard(key) == 5  # type: ignore[misc]


BAD_CALLS: list[tuple[Callable[[OHLCVCache], Any], type[Exception]]] = [
    (lambda c: c.update_ohlcv_bars("", "1m", [bar(1)]), ValueError),
    (lambda c: c.update_ohlcv_bars("/", "1m", [bar(1)]), ValueError),
    (lambda c: c.update_ohlcv_bars(5, "1m", [bar(1)]), TypeError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "2m", [bar(1)]), ValueError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", None, [bar(1)]), TypeError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", [bar(1)], ""), ValueError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", [bar(1)], 3), TypeError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", "bars"), TypeError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", None), TypeError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", [bar(1), [1, 2, 3, 4, 5]]), ValueError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", [bar(1), [1, 2, 3, 4, 5, 6, 7]]), ValueError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", [bar(1), "123456"]), TypeError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", [bar(1), 5]), TypeError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", [bar(1), [1, 1, 1, 1, "1", 1]]), TypeError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", [bar(1), [1, True, 1, 1, 1, 1]]), TypeError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", [bar(1), bar(math.nan)]), ValueError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", [bar(1), bar(-1)]), ValueError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", [bar(1), bar(2, close=math.inf)]), ValueError),
    (lambda c: c.update_ohlcv_bars("BTC/USDT", "1m", [bar(1), bar(2, volume=-1)]), ValueError),
    (lambda c: c.get_latest_ohlcv_bars("BTC/USDT", "1w", 1), ValueError),
    (lambda c: c.get_latest_ohlcv_bars("BTC/USDT", "1m", -1), ValueError),
    (lambda c: c.get_latest_ohlcv_bars("BTC/USDT", "1m", 1.5), TypeError),
    (lambda c: c.get_latest_ohlcv_bars("BTC/USDT", "1m", True), TypeError),
    (lambda c: c.get_latest_ohlcv_bars("", "1m", 1), ValueError),
]


@pytest.mark.parametrize(("call", "error"), BAD_CALLS)
async def test_bad_input_is_rejected_before_any_write(
    cache: OHLCVCache, call: Callable[[OHLCVCache], Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await call(cache)
    assert await cache.get_keys() == []


async def test_no_bars_is_a_no_op(cache: OHLCVCache) -> None:
    await cache.update_ohlcv_bars("BTC/USDT", "1m", [])
    assert await cache.get_keys() == []


@pytest.mark.parametrize(
    "args",
    [("", "1m"), ("BTC/USDT", "3m"), ("BTC/USDT", 1), ("BTC/USDT", "1m", ""), (None, "1m")],
)
def test_stream_arguments_are_checked_at_call_time(
    settings: Settings, args: tuple[Any, ...]
) -> None:
    with pytest.raises((ValueError, TypeError)):
        OHLCVCache().stream_ohlcv_updates(*args)


async def test_stream_delivers_every_new_bar_in_order(cache: OHLCVCache) -> None:
    collector = Collector(cache.stream_ohlcv_updates("BTC/USDT", "1m", "binance"))
    await settle(cache, collector.items, "BTC/USDT", "1m", "binance")
    expected: list[list[float]] = []
    for i in range(40):
        expected.append(bar(60.0 * i, close=float(i)))
        await cache.update_ohlcv_bars("BTCUSDT", "1m", [expected[-1]], "binance")
    batch = [bar(60.0 * 41), bar(60.0 * 40)]  # published oldest first
    await cache.update_ohlcv_bars("BTC/USDT", "1m", batch, exchange="binance")
    expected += [bar(60.0 * 40), bar(60.0 * 41)]
    # other series are not delivered
    await cache.update_ohlcv_bars("BTC/USDT", "5m", [bar(1)], "binance")
    await cache.update_ohlcv_bars("BTC/USDT", "1m", [bar(1)])
    await cache.update_ohlcv_bars("BTC/USDT", "1m", [bar(1)], "kraken")
    await cache.update_ohlcv_bars("BTC/USDT", "1m", [bar(60.0 * 42)], "binance")
    expected.append(bar(60.0 * 42))
    await until(lambda: len(collector.live()) >= len(expected))
    await collector.close()
    assert collector.live() == expected


async def test_trimmed_bars_are_not_published(settings: Settings) -> None:
    small = msgspec.structs.replace(settings, ohlcv_max_bars=3)
    async with OHLCVCache(settings=small) as cache:
        collector = Collector(cache.stream_ohlcv_updates("ETH/USDT", "1h"))
        await settle(cache, collector.items, "ETH/USDT", "1h")
        # stored: WARM_TS; a batch of 4 older bars keeps only the 2 newest of them
        await cache.update_ohlcv_bars("ETH/USDT", "1h", [bar(1), bar(2), bar(3), bar(4)])
        await cache.update_ohlcv_bars("ETH/USDT", "1h", [bar(5)])
        await until(lambda: bool(collector.live()) and collector.live()[-1][0] == 5.0)
        await collector.close()
        assert [b[0] for b in collector.live()] == [3.0, 4.0, 5.0]


async def test_stream_skips_undecodable_messages(
    cache: OHLCVCache, caplog: pytest.LogCaptureFixture
) -> None:
    collector = Collector(cache.stream_ohlcv_updates("BTC/USDT", "1m"))
    await settle(cache, collector.items, "BTC/USDT", "1m")
    await cache.redis.publish(cache.keys.ohlcv_channel("BTC/USDT", "1m"), b'{"no": 1}')
    await cache.update_ohlcv_bars("BTC/USDT", "1m", [bar(60)])
    await until(lambda: len(collector.live()) >= 1)
    await collector.close()
    assert collector.live() == [bar(60)]
    assert any("undecodable bar" in r.getMessage() for r in caplog.records)


async def test_stream_used_with_aclosing(cache: OHLCVCache) -> None:
    updates = cache.stream_ohlcv_updates("BTC/USDT", "4h")
    async with contextlib.aclosing(updates):
        task = asyncio.create_task(anext(updates))
        while not task.done():
            await cache.update_ohlcv_bars("BTC/USDT", "4h", [bar(14400)])
            await asyncio.sleep(0.01)
        assert task.result() == bar(14400)


async def test_unreachable_server_fails_the_first_subscription(standalone: Settings) -> None:
    dead = msgspec.structs.replace(standalone, port=free_port(), retry_attempts=0)
    updates = OHLCVCache(settings=dead).stream_ohlcv_updates("BTC/USDT", "1m")
    with pytest.raises(CacheConnectionError):
        await anext(updates)


async def test_stream_resubscribes_after_server_restart(
    standalone: Settings, own_server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fullon.cache.ohlcv")
    cache = OHLCVCache(
        settings=msgspec.structs.replace(standalone, port=own_server.port, breaker_threshold=0)
    )
    collector = Collector(cache.stream_ohlcv_updates("BTC/USDT", "1m"))
    await settle(cache, collector.items, "BTC/USDT", "1m")
    own_server.kill()
    await until(lambda: any("subscription lost" in r.getMessage() for r in caplog.records))
    own_server.restart()
    collector.items.clear()
    await settle(cache, collector.items, "BTC/USDT", "1m")
    for i in range(5):
        await cache.update_ohlcv_bars("BTC/USDT", "1m", [bar(float(i))])
    await until(lambda: len(collector.live()) == 5)
    await collector.close()
    assert collector.live() == [bar(float(i)) for i in range(5)]
