"""OHLCVCache: candlestick bars per symbol, timeframe and (optionally) exchange.

A series is one sorted set (``keys.ohlcv(symbol, timeframe, exchange)``): member =
the bar ``[ts, open, high, low, close, volume]`` as JSON, score = its timestamp.
'BTC/USDT' and 'BTCUSDT' name the same series. :meth:`OHLCVCache.update_ohlcv_bars`
is one Lua script on that one key (one round trip, atomic): a bar whose timestamp is
already stored replaces it, the series is trimmed to its newest
``FULLON_CACHE_OHLCV_MAX_BARS`` bars, and every written bar that is kept is published
on ``keys.ohlcv_channel(...)``, oldest first.

Example:
    >>> await cache.update_ohlcv_bars("BTC/USDT", "1m", [[60, 1, 2, 0.5, 1.5, 10]])
    >>> await cache.get_latest_ohlcv_bars("BTCUSDT", "1m", 1)
    [[60.0, 1.0, 2.0, 0.5, 1.5, 10.0]]
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncGenerator, Sequence
from typing import Any, ClassVar, cast

from fullon_cache.base_cache import BaseCache
from fullon_cache.codec import decode, decode_all, encode
from fullon_cache.connection import guarded
from fullon_cache.exceptions import CacheDataError
from fullon_cache.tick_cache import _listen

__all__ = ["TIMEFRAMES", "OHLCVCache"]

TIMEFRAMES: tuple[str, ...] = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
"""The timeframes a series may have."""

Bar = list[float]

# KEYS[1] series. ARGV[1] max bars, ARGV[2] channel, then (ts, bar) pairs, ascending ts.
_UPDATE = """
for i = 3, #ARGV, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[i], ARGV[i])
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[1]) - 1)
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
for i = 3, #ARGV, 2 do
  if tonumber(ARGV[i]) >= oldest then
    redis.call('PUBLISH', ARGV[2], ARGV[i + 1])
  end
end
"""


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def _series(symbol: object, timeframe: object, exchange: object) -> tuple[str, str, str | None]:
    symbol = _text("symbol", symbol)
    if not symbol.replace("/", "").strip():
        raise ValueError("symbol must not be empty")
    if not isinstance(timeframe, str):
        raise TypeError(f"timeframe must be str, got {type(timeframe).__name__}")
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}")
    return symbol, timeframe, None if exchange is None else _text("exchange", exchange)


def _bar(value: object) -> Bar:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"a bar must be a list [ts, o, h, l, c, v], got {type(value).__name__}")
    if len(value) != 6:
        raise ValueError(f"a bar has 6 numbers [ts, o, h, l, c, v], got {len(value)}")
    bar: Bar = []
    for number in value:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise TypeError(f"bar values must be numbers, got {type(number).__name__}")
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"bar values must be finite and >= 0, got {number!r}")
        bar.append(float(number))
    return bar


class OHLCVCache(BaseCache):
    """Bounded OHLCV series with replace-by-timestamp and live updates.

    Timeframes: ``1m 5m 15m 30m 1h 4h 1d``. Bars are ``[ts, open, high, low, close,
    volume]`` of finite numbers >= 0 (ts in the caller's unit, seconds or ms).

    Example:
        >>> await cache.update_ohlcv_bars("ETH/USDT", "1h", [[0, 1, 1, 1, 1, 0]])
        >>> await cache.get_latest_ohlcv_bars("ETH/USDT", "1h", 10)
        [[0.0, 1.0, 1.0, 1.0, 1.0, 0.0]]
    """

    component: ClassVar[str] = "ohlcv"

    @guarded
    async def update_ohlcv_bars(
        self,
        symbol: str,
        timeframe: str,
        bars: Sequence[Sequence[float]],
        exchange: str | None = None,
    ) -> None:
        """Store bars (one round trip, atomic); a stored timestamp is replaced.

        Within one call the last bar of a timestamp wins. The series keeps its newest
        ``FULLON_CACHE_OHLCV_MAX_BARS`` bars. Each stored bar is published to
        :meth:`stream_ohlcv_updates` subscribers, oldest first. Every bar is checked
        before anything is written; no bars is a no-op.

        Example:
            >>> await cache.update_ohlcv_bars("BTC/USDT", "1m", [[60, 1, 2, 0.5, 1.5, 10]])
            >>> await cache.update_ohlcv_bars("BTCUSDT", "1m", [[60, 1, 3, 0.5, 2.5, 12]])
            >>> await cache.get_latest_ohlcv_bars("BTC/USDT", "1m", 5)
            [[60.0, 1.0, 3.0, 0.5, 2.5, 12.0]]
        """
        symbol, timeframe, exchange = _series(symbol, timeframe, exchange)
        if isinstance(bars, (str, bytes)) or not isinstance(bars, Sequence):
            raise TypeError(f"bars must be a list of bars, got {type(bars).__name__}")
        by_ts = {bar[0]: bar for bar in map(_bar, bars)}
        if not by_ts:
            return
        args: list[Any] = [
            max(self.settings.ohlcv_max_bars, 1),
            self.keys.ohlcv_channel(symbol, timeframe, exchange),
        ]
        for ts in sorted(by_ts):
            args += [repr(ts), encode(by_ts[ts])]
        script = self._script(_UPDATE)
        await script(keys=[self.keys.ohlcv(symbol, timeframe, exchange)], args=args)

    @guarded
    async def get_latest_ohlcv_bars(
        self, symbol: str, timeframe: str, count: int, exchange: str | None = None
    ) -> list[list[float]]:
        """The newest ``count`` bars of a series, oldest first ([] when none).

        Example:
            >>> bars = [[ts, 1, 1, 1, 1, 1] for ts in (0, 300, 600)]
            >>> await cache.update_ohlcv_bars("BTC/USDT", "5m", bars)
            >>> [bar[0] for bar in await cache.get_latest_ohlcv_bars("BTC/USDT", "5m", 2)]
            [300.0, 600.0]
        """
        symbol, timeframe, exchange = _series(symbol, timeframe, exchange)
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"count must be int, got {type(count).__name__}")
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if count == 0:
            return []
        key = self.keys.ohlcv(symbol, timeframe, exchange)
        members = cast(list[bytes], await self.redis.zrange(key, -count, -1))
        return decode_all(members, list[float])

    def stream_ohlcv_updates(
        self,
        symbol: str,
        timeframe: str,
        exchange: str | None = None,
        *,
        reconnect: bool = True,
    ) -> AsyncGenerator[list[float], None]:
        """Bars of one series as they are stored, in publication order.

        Arguments are checked at once; the first subscription failing raises
        CacheConnectionError when iteration starts, later lost connections are
        resubscribed with back-off (bars published meanwhile are not replayed: read
        :meth:`get_latest_ohlcv_bars` to catch up). Close with ``aclose()``.

        Example:
            >>> updates = cache.stream_ohlcv_updates("BTC/USDT", "1m")
            >>> await updates.aclose()
        """
        symbol, timeframe, exchange = _series(symbol, timeframe, exchange)
        source = _listen(
            self._connection,
            "OHLCVCache.stream_ohlcv_updates",
            self.logger,
            channels=[self.keys.ohlcv_channel(symbol, timeframe, exchange)],
            reconnect=reconnect,
        )
        return self._decoded(source)

    async def _decoded(
        self, source: AsyncGenerator[bytes, None]
    ) -> AsyncGenerator[list[float], None]:
        async with contextlib.aclosing(source):
            async for raw in source:
                try:
                    bar = decode(raw, list[float])
                except CacheDataError as exc:
                    self.logger.error("skipped an undecodable bar message: %s", exc)
                    continue
                yield bar
