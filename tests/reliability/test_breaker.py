"""Circuit breaker of the connection layer, end to end through a fault proxy:
repeated failures -> fail fast (no connection attempted) for the cool-down -> one
probe -> closed again once Redis answers."""

from __future__ import annotations

import asyncio

import pytest

from fullon_cache.exceptions import CacheConnectionError, CircuitOpenError
from fullon_cache.models import Tick
from fullon_cache.tick_cache import TickCache
from support.proxy import FaultProxy

from .conftest import fast_settings

pytestmark = pytest.mark.reliability


async def test_breaker_opens_fails_fast_probes_and_closes(proxy: FaultProxy) -> None:
    settings = fast_settings(
        proxy.host, proxy.port, retry_attempts=1, breaker_threshold=3, breaker_cooldown=0.5
    )
    ticks = TickCache(settings=settings)
    breaker = ticks._connection.breaker
    assert await ticks.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=1.0))
    async with asyncio.timeout(20):
        await proxy.drop()
        proxy.refuse()
        for _ in range(3):  # each failure is a full retried attempt, typed
            with pytest.raises(CacheConnectionError) as info:
                await ticks.get_price("BTC/USDT", "binance")
            assert not isinstance(info.value, CircuitOpenError)
        assert breaker.state == "open"
        # open: calls fail fast without reaching the network
        attempts = proxy.accepted
        for _ in range(20):
            with pytest.raises(CircuitOpenError):
                await ticks.get_price("BTC/USDT", "binance")
        assert proxy.accepted == attempts
        # cool-down over: one probe goes through; Redis still down -> open again
        await asyncio.sleep(0.55)
        assert breaker.state == "half_open"
        with pytest.raises(CacheConnectionError) as info:
            await ticks.get_price("BTC/USDT", "binance")
        assert not isinstance(info.value, CircuitOpenError)
        assert proxy.accepted > attempts
        assert breaker.state == "open"
        with pytest.raises(CircuitOpenError):
            await ticks.get_price("BTC/USDT", "binance")
        # Redis back: the next probe succeeds and closes the breaker
        proxy.refuse(False)
        await asyncio.sleep(0.55)
        assert await ticks.get_price("BTC/USDT", "binance") == 1.0
        assert (breaker.state, breaker.failures) == ("closed", 0)
        assert await ticks.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=2.0))
        assert await ticks.get_price("BTC/USDT", "binance") == 2.0
