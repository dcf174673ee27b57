"""Fixtures of the reliability scenarios: private servers a test may kill, restart,
partition (through :class:`support.proxy.FaultProxy`) or reconfigure, and settings
built explicitly for them (never the shared session servers' state)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from fullon_cache.config import Settings
from fullon_cache.connection import Connection, ConnectionPool
from fullon_cache.embedded import EmbeddedServer
from support.proxy import FaultProxy


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/reliability/" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)


def fast_settings(host: str, port: int, **overrides: Any) -> Settings:
    """Settings for a scenario: short timeouts and retries, breaker off, fresh namespace."""
    values: dict[str, Any] = {
        "host": host,
        "port": port,
        "namespace": f"r{uuid.uuid4().hex[:12]}",
        "socket_timeout": 0.5,
        "socket_connect_timeout": 0.5,
        "retry_attempts": 2,
        "retry_backoff": 0.02,
        "retry_backoff_cap": 0.1,
        "breaker_threshold": 0,
    }
    values.update(overrides)
    return Settings(**values)


async def until(condition: Callable[[], bool], interval: float = 0.05) -> None:
    """Poll ``condition`` until true (callers bound the wait with ``asyncio.timeout``)."""
    while True:
        if condition():
            return
        await asyncio.sleep(interval)


async def wait_replica_link(replica: EmbeddedServer, deadline: float = 15.0) -> None:
    """Wait until ``replica`` reports its link to the master up (initial sync done)."""
    conn = Connection(fast_settings(replica.host, replica.port))
    try:
        async with asyncio.timeout(deadline):
            while True:
                info = await conn.client.info("replication")
                if info.get("master_link_status") == "up":
                    return
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


@pytest.fixture
def private_server() -> Iterator[EmbeddedServer]:
    """A server of this test alone: it may be killed and restarted."""
    server = EmbeddedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def proxy(private_server: EmbeddedServer) -> AsyncIterator[FaultProxy]:
    """A fault proxy in front of :func:`private_server`."""
    async with FaultProxy(private_server.host, private_server.port) as running:
        yield running


@pytest.fixture(autouse=True)
async def _close_pools() -> AsyncIterator[None]:
    yield
    await ConnectionPool.close_loop()
