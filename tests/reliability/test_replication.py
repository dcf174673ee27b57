"""``FULLON_CACHE_WAIT_REPLICAS``: a critical write confirmed by replicas (``WAIT``)."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from fullon_cache.bot_cache import BotCache
from fullon_cache.config import Settings, settings_from
from fullon_cache.connection import (
    Connection,
    ReplicaWaitError,
    guard,
    replica_wait_marker,
)
from fullon_cache.embedded import EmbeddedServer
from fullon_cache.exceptions import CacheConnectionError
from fullon_cache.keys import Keys
from fullon_cache.orders_cache import OrdersCache
from fullon_cache.trades_cache import TradesCache

from .conftest import fast_settings, wait_replica_link

pytestmark = pytest.mark.reliability


def test_marker_shares_the_slot_of_every_library_key() -> None:
    keys = Keys("ns")
    for key in (
        keys.order_queue("kraken"),
        keys.trades("binance", "BTC/USDT:USDT"),
        keys.global_errors(),
        keys.process_index(),
        keys.order_queue("we{ird}"),
        "plain{",
    ):
        marker = replica_wait_marker("ns", key)
        assert marker.startswith("ns:replica_wait:")
        assert key_slot(marker.encode()) == key_slot(key.encode()), key
    # '{}' is no hash tag: the whole key is hashed, and it holds a '}' -> refused
    with pytest.raises(ValueError, match="slot"):
        replica_wait_marker("ns", "a{}b")


def test_wait_settings_are_validated() -> None:
    parsed = settings_from(
        {"FULLON_CACHE_WAIT_REPLICAS": "1", "FULLON_CACHE_WAIT_TIMEOUT_MS": "50"}
    )
    assert (parsed.wait_replicas, parsed.wait_timeout_ms) == (1, 50)
    assert (Settings().wait_replicas, Settings().wait_timeout_ms) == (0, 1000)
    with pytest.raises(ValueError, match="wait_replicas"):
        Settings(wait_replicas=-1)
    with pytest.raises(ValueError, match="wait_timeout_ms"):
        Settings(wait_timeout_ms=0)  # WAIT 0 would block forever


async def test_wait_is_free_when_not_configured(private_server: EmbeddedServer) -> None:
    conn = Connection(fast_settings(private_server.host, private_server.port))
    try:
        private_server.stop()  # no round trip is made: a stopped server does not matter
        assert await conn.wait_for_replicas("any:key") == 0
    finally:
        await conn.close()


async def test_write_confirmed_by_a_replica_then_refused_without_one(
    private_server: EmbeddedServer,
) -> None:
    master = Connection(fast_settings(private_server.host, private_server.port))
    await master.client.config_set("repl-diskless-sync-delay", 0)
    await master.close()
    replica = EmbeddedServer(
        extra_args=["--replicaof", private_server.host, str(private_server.port)]
    )
    replica.start()
    await wait_replica_link(replica)
    settings = fast_settings(
        private_server.host, private_server.port, wait_replicas=1, wait_timeout_ms=3000
    )
    orders = OrdersCache(settings=settings)
    conn = orders._connection
    try:
        queue = orders.keys.order_queue("binance")
        assert await orders.push_open_order("binance", {"order_id": 1})
        async with guard(conn, "push+wait"):
            assert await conn.wait_for_replicas(queue) == 1
        # the replica has the order (read it there directly)
        direct = Connection(fast_settings(replica.host, replica.port))
        try:
            assert await direct.client.llen(queue) == 1
        finally:
            await direct.close()
        replica.kill()
        fast = Connection(
            fast_settings(
                private_server.host,
                private_server.port,
                namespace=settings.namespace,
                wait_replicas=1,
                wait_timeout_ms=100,
            )
        )
        try:
            with pytest.raises(ReplicaWaitError, match="0 of 1") as info:
                async with guard(fast, "push+wait"):
                    await fast.wait_for_replicas(queue)
            assert not isinstance(info.value, CacheConnectionError)
            assert fast.breaker.failures == 0  # lagging replicas are not "Redis down"
            # the caches wait after their critical writes: the caller learns the write
            # is on the master only, never a silent success
            with pytest.raises(ReplicaWaitError):
                await OrdersCache(connection=fast).push_open_order("binance", {"order_id": 2})
            with pytest.raises(ReplicaWaitError):
                await TradesCache(connection=fast).push_trade(
                    "binance", {"symbol": "BTC/USDT", "ex_trade_id": "t1", "volume": 1.0}
                )
            with pytest.raises(ReplicaWaitError):
                await TradesCache(connection=fast).push_user_trade(
                    1, "binance", {"symbol": "BTC/USDT", "ex_trade_id": "t2"}
                )
            with pytest.raises(ReplicaWaitError):
                await BotCache(connection=fast).block_exchange("binance", "BTC/USDT", "b1")
            assert await OrdersCache(connection=fast).get_queue_length("binance") == 2
        finally:
            await fast.close()
    finally:
        await orders.prepare_cache()
        replica.stop()
