"""RedisCache: free-form market data per symbol (the seed's ``tradebot.core.cache`` API).

``set_market_data(symbol, data)`` stores any JSON mapping (str keys; values None, bool,
int, finite float, str, lists/tuples and mappings of those) under
``<ns>:market_data:{<symbol>}``, replacing what was there, optionally with a TTL;
``get_market_data(symbol)`` returns it as a dict, or None. Symbols are taken as given
('BTCUSDT' and 'BTC/USDT' are two entries).

Example:
    >>> # async with RedisCache() as cache:
    >>> #     await cache.set_market_data("BTCUSDT", {"bid": 1.0})
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fullon_cache.base_cache import BaseCache
from fullon_cache.codec import check_json, decode_any, encode
from fullon_cache.connection import guarded

__all__ = ["RedisCache"]


class RedisCache(BaseCache):
    """Market data per symbol as JSON.

    Example:
        >>> await cache.set_market_data("BTCUSDT", {"bid": 49999.5, "ask": 50000.5})
        True
        >>> await cache.get_market_data("BTCUSDT")
        {'bid': 49999.5, 'ask': 50000.5}
    """

    component = "redis"

    @guarded
    async def set_market_data(
        self, symbol: str, data: Mapping[str, Any], ttl: float | None = None
    ) -> bool:
        """Store ``data`` for ``symbol``, replacing the previous value; with ``ttl``
        (seconds > 0, fractions allowed) it expires. Returns True once stored.

        Bad input (empty symbol, a non-mapping, non-JSON values, NaN, a ttl <= 0)
        raises ValueError/TypeError and stores nothing.

        Example:
            >>> await cache.set_market_data("ETH/USDT", {"depth": [[3000.0, 2]]}, ttl=60)
            True
            >>> await cache.get_market_data("ETH/USDT")
            {'depth': [[3000.0, 2]]}
        """
        if not isinstance(symbol, str):
            raise TypeError(f"symbol must be a str, got {type(symbol).__name__}")
        if not symbol.strip():
            raise ValueError("symbol must not be empty")
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping, got {type(data).__name__}")
        check_json(data, "data")
        milliseconds: int | None = None
        if ttl is not None:
            if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
                raise TypeError(f"ttl must be a number of seconds, got {type(ttl).__name__}")
            if not math.isfinite(ttl) or ttl <= 0:
                raise ValueError(f"ttl must be a finite number > 0, got {ttl!r}")
            milliseconds = max(1, round(ttl * 1000))
        payload = encode(dict(data))
        await self.redis.set(self.keys.market_data(symbol), payload, px=milliseconds)
        return True

    @guarded
    async def get_market_data(self, symbol: str) -> dict[str, Any] | None:
        """The data stored for ``symbol``, or None (never stored, or expired).

        Example:
            >>> await cache.get_market_data("XRP/USDT") is None
            True
        """
        if not isinstance(symbol, str):
            raise TypeError(f"symbol must be a str, got {type(symbol).__name__}")
        if not symbol.strip():
            raise ValueError("symbol must not be empty")
        raw = await self.redis.get(self.keys.market_data(symbol))
        if raw is None:
            return None
        data: dict[str, Any] = decode_any(raw)
        return data
