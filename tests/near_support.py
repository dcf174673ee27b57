"""Helpers for the near-cache tests of SymbolCache and ExchangeCache: a live NearCache on
the standalone server, and bounded waits for convergence (never for speed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from fullon_cache.config import Settings
from fullon_cache.near_cache import NearCache

DEADLINE = 20.0  # generous: convergence is asserted, never speed


@pytest.fixture(name="near")
async def near_fixture(standalone: Settings) -> AsyncIterator[NearCache]:
    """A live near cache on the standalone server (health PING every 0.1 s)."""
    cache = NearCache(health_interval=0.1)
    assert await cache.wait_live()
    yield cache
    await cache.close()


async def until(predicate: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def until_hit(near: NearCache, read: Callable[[], Awaitable[Any]]) -> Any:
    """Read until a read is served by ``near`` (the first ones may miss, or lose their
    entry to the server's invalidation of an earlier write); its value."""
    end = time.monotonic() + DEADLINE
    while True:
        hits = near.hits
        value = await read()
        if near.hits > hits:
            return value
        assert time.monotonic() < end, "no read was served by the near cache"
        await asyncio.sleep(0.01)


async def until_read(read: Callable[[], Awaitable[Any]], predicate: Callable[[Any], bool]) -> Any:
    """Read until ``predicate(value)`` holds (another writer's change reached us)."""
    end = time.monotonic() + DEADLINE
    while True:
        value = await read()
        if predicate(value):
            return value
        assert time.monotonic() < end, f"never read the expected value (last: {value!r})"
        await asyncio.sleep(0.01)
