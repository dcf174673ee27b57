from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

import fullon_cache
from fullon_cache.config import Settings
from fullon_cache.embedded import free_port
from fullon_cache.exceptions import CacheConnectionError
from fullon_cache.redis_cache import RedisCache

DEADLINE = 60.0  # bounds a hang only; never asserts speed


async def test_round_trip_replace_and_miss(settings: Settings) -> None:
    async with RedisCache() as cache:
        assert await cache.get_market_data("BTCUSDT") is None
        data = {
            "bid": 1.5,
            "ask": 2,
            "ok": True,
            "note": None,
            "book": {"bids": [(1.0, 2.0)], "asks": []},
            "name": "x",
        }
        assert await cache.set_market_data("BTCUSDT", data) is True
        got = await cache.get_market_data("BTCUSDT")
        assert got == {**data, "book": {"bids": [[1.0, 2.0]], "asks": []}}
        assert await cache.set_market_data("BTCUSDT", {"bid": 3.0})
        assert await cache.get_market_data("BTCUSDT") == {"bid": 3.0}
        # each symbol is its own entry, odd characters included
        assert await cache.set_market_data("BTC/USDT:USDT", {"x": 1})
        assert await cache.get_market_data("BTC/USDT:USDT") == {"x": 1}
        assert await cache.get_market_data("BTC/USDT") is None
        assert await cache.get_market_data("BTCUSDT") == {"bid": 3.0}
        # the caller's mapping is not kept: changing it later changes nothing stored
        data["bid"] = 99.0
        assert (await cache.get_market_data("BTCUSDT")) == {"bid": 3.0}


async def test_ttl_expires_the_entry_and_no_ttl_keeps_it(settings: Settings) -> None:
    async with RedisCache() as cache:
        assert await cache.set_market_data("A", {"v": 1}, ttl=0.05)
        assert await cache.set_market_data("B", {"v": 2}, ttl=3600)
        assert await cache.set_market_data("C", {"v": 3})
        deadline = time.monotonic() + DEADLINE
        while await cache.get_market_data("A") is not None:
            assert time.monotonic() < deadline, "a 50 ms TTL never expired"
            await asyncio.sleep(0.05)
        assert await cache.get_market_data("B") == {"v": 2}
        assert await cache.get_market_data("C") == {"v": 3}
        assert 0 < await cache.redis.pttl(cache.keys.market_data("B")) <= 3_600_000
        assert await cache.redis.pttl(cache.keys.market_data("C")) == -1


@pytest.mark.parametrize(
    ("symbol", "data", "ttl", "error"),
    [
        ("", {"a": 1}, None, ValueError),
        ("  ", {"a": 1}, None, ValueError),
        (1, {"a": 1}, None, TypeError),
        ("S", [("a", 1)], None, TypeError),
        ("S", {"a": math.nan}, None, ValueError),
        ("S", {"a": [1.0, math.inf]}, None, ValueError),
        ("S", {1: "a"}, None, TypeError),
        ("S", {"a": {2: "b"}}, None, TypeError),
        ("S", {"a": object()}, None, TypeError),
        ("S", {"a": {1, 2}}, None, TypeError),
        ("S", {"a": 1}, 0, ValueError),
        ("S", {"a": 1}, -1, ValueError),
        ("S", {"a": 1}, math.nan, ValueError),
        ("S", {"a": 1}, "10", TypeError),
        ("S", {"a": 1}, True, TypeError),
    ],
)
async def test_bad_input_raises_and_stores_nothing(
    settings: Settings, symbol: Any, data: Any, ttl: Any, error: type[Exception]
) -> None:
    async with RedisCache() as cache:
        with pytest.raises(error):
            await cache.set_market_data(symbol, data, ttl=ttl)
        assert await cache.get_keys() == []


@pytest.mark.parametrize(("symbol", "error"), [("", ValueError), (None, TypeError)])
async def test_get_rejects_bad_symbols(settings: Settings, symbol: Any, error: type) -> None:
    async with RedisCache() as cache:
        with pytest.raises(error):
            await cache.get_market_data(symbol)


async def test_unreachable_redis_raises_a_connection_error() -> None:
    down = Settings(port=free_port(), retry_attempts=0, socket_connect_timeout=1.0)
    async with RedisCache(settings=down) as cache:
        with pytest.raises(CacheConnectionError):
            await cache.set_market_data("BTCUSDT", {"bid": 1.0})
        with pytest.raises(CacheConnectionError):
            await cache.get_market_data("BTCUSDT")
    await fullon_cache.ConnectionPool.close_loop()
