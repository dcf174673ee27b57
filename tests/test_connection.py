from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import msgspec
import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from fullon_cache.base_cache import BaseCache
from fullon_cache.config import Settings, get_settings
from fullon_cache.connection import (
    CircuitBreaker,
    Connection,
    ConnectionPool,
    build_client,
    guard,
    translate_error,
)
from fullon_cache.embedded import EmbeddedServer
from fullon_cache.exceptions import (
    CacheConnectionError,
    CacheError,
    CachePermissionError,
    CacheTimeoutError,
    CircuitOpenError,
)


@pytest.fixture
async def private_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EmbeddedServer]:
    """A server this test may stop and restart."""
    server = EmbeddedServer()
    server.start()
    monkeypatch.setenv("REDIS_HOST", server.host)
    monkeypatch.setenv("REDIS_PORT", str(server.port))
    monkeypatch.setenv("REDIS_CLUSTER_MODE", "false")
    monkeypatch.setenv("FULLON_CACHE_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("FULLON_CACHE_RETRY_BACKOFF", "0.01")
    monkeypatch.setenv("REDIS_SOCKET_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("FULLON_CACHE_BREAKER_THRESHOLD", "0")
    await ConnectionPool.reset_async()
    try:
        yield server
    finally:
        await ConnectionPool.close_loop()
        server.stop()


async def test_stopped_server_gives_a_typed_error_after_retries_then_recovers(
    private_server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    cache = BaseCache()
    assert await cache.ping() == "PONG"
    private_server.stop()
    with (
        caplog.at_level(logging.ERROR, logger="fullon.cache.connection"),
        pytest.raises(CacheConnectionError) as info,
    ):
        await cache.ping()
    assert isinstance(info.value, ConnectionError)
    assert sum("ping failed" in r.getMessage() for r in caplog.records) == 1
    assert await cache.test() is False
    private_server.start()
    assert await cache.ping() == "PONG"
    assert await cache.test() is True


async def test_circuit_breaker_fails_fast_then_probes(
    private_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FULLON_CACHE_BREAKER_THRESHOLD", "2")
    monkeypatch.setenv("FULLON_CACHE_BREAKER_COOLDOWN", "0.3")
    await ConnectionPool.reset_async()
    cache = BaseCache()
    private_server.stop()
    for _ in range(2):
        with pytest.raises(CacheConnectionError):
            await cache.ping()
    assert cache._connection.breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        await cache.ping()
    private_server.start()
    await asyncio.sleep(0.35)
    assert cache._connection.breaker.state == "half_open"
    assert await cache.ping() == "PONG"
    assert cache._connection.breaker.state == "closed"


def test_breaker_states() -> None:
    breaker = CircuitBreaker(threshold=0, cooldown=1)
    for _ in range(10):
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.before_call()
    breaker = CircuitBreaker(threshold=1, cooldown=0)
    breaker.record_failure()
    assert breaker.state == "half_open"
    breaker.before_call()
    breaker.record_success()
    assert (breaker.state, breaker.failures) == ("closed", 0)


async def test_stalled_server_blocking_wait_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts and never answers: the wait ends with CacheTimeoutError."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = Settings(
        port=port, host="127.0.0.1", socket_timeout=0.2, retry_attempts=0, breaker_threshold=0
    )
    cache = BaseCache(settings=settings)
    try:
        with pytest.raises(CacheTimeoutError):
            await cache.pop_global_error(timeout=0.1)
        with pytest.raises(CacheTimeoutError):
            await cache.ping()
    finally:
        await ConnectionPool.get(settings).close()
        server.close()
        await server.wait_closed()


def test_translate_error_maps_every_family() -> None:
    assert isinstance(translate_error(redis_errors.TimeoutError("t")), CacheTimeoutError)
    assert isinstance(translate_error(TimeoutError()), CacheTimeoutError)
    assert isinstance(translate_error(redis_errors.NoPermissionError("acl")), CachePermissionError)
    assert isinstance(translate_error(redis_errors.ClusterDownError("x")), CacheConnectionError)
    assert isinstance(translate_error(OSError("x")), CacheConnectionError)
    plain = translate_error(redis_errors.ResponseError("WRONGTYPE"))
    assert type(plain) is CacheError
    already = CacheError("x")
    assert translate_error(already) is already


async def test_guard_passes_other_exceptions_through_and_translates_redis_ones(
    settings: Settings,
) -> None:
    conn = ConnectionPool.get()
    with pytest.raises(KeyError):
        async with guard(conn, "op"):
            raise KeyError("not redis")
    key = BaseCache().keys.bot("wrongtype")
    await conn.client.set(key, b"x")
    with pytest.raises(CacheError, match="WRONGTYPE"):
        async with guard(conn, "op"):
            await conn.client.lpush(key, b"y")
    assert conn.breaker.failures == 0


async def test_cluster_multi_key_operations_share_a_slot(cluster: Settings) -> None:
    cache = BaseCache()
    assert cache._connection.is_cluster
    assert isinstance(cache.redis, RedisCluster)
    queue, processing = cache.keys.order_queue("binance"), cache.keys.order_processing("binance")
    async with cache.redis.pipeline(transaction=True) as pipe:
        pipe.rpush(queue, b"o1", b"o2")
        pipe.lmove(queue, processing, "LEFT", "RIGHT")
        result = await pipe.execute()
    assert result == [2, b"o1"]
    assert await cache.redis.lrange(processing, 0, -1) == [b"o1"]
    moved = await cache._connection.wait(
        cache._connection.blocking_client.blmove(queue, processing, 1, "LEFT", "RIGHT"), 1
    )
    assert moved == b"o2"
    # keys in different slots: multi-key commands are split across nodes by the client
    others = [cache.keys.bot(i) for i in range(20)]
    for key in others:
        await cache.redis.set(key, b"1")
    assert await cache.redis.unlink(*others) == 20


async def test_pubsub_on_both_backends(settings: Settings) -> None:
    conn = ConnectionPool.get()
    pubsub = await conn.pubsub()
    channel = BaseCache().keys.tick_channel("binance", "BTC/USDT")
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=1)  # subscribe confirmation
    await conn.client.publish(channel, b"hello")
    message = None
    for _ in range(50):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message:
            break
    await pubsub.aclose()
    assert message is not None and message["data"] == b"hello"


async def test_reset_async_rereads_settings_and_replaces_connections(
    standalone: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = ConnectionPool.get()
    monkeypatch.setenv("CACHE_TTL_ORDER", "5")
    await ConnectionPool.reset_async()
    assert before.closed
    await before.close()  # idempotent
    assert get_settings().ttl_order == 5
    assert ConnectionPool.get() is not before


async def test_build_client_options() -> None:
    plain = build_client(Settings(port=7000, password="pw", username="u"))
    assert isinstance(plain, Redis)
    kwargs = plain.connection_pool.connection_kwargs
    assert (kwargs["port"], kwargs["username"], kwargs["password"]) == (7000, "u", "pw")
    assert kwargs["socket_timeout"] == 5.0
    blocking = build_client(Settings(), blocking=True)
    assert blocking.connection_pool.connection_kwargs["socket_timeout"] is None
    tls = build_client(Settings(ssl=True, ssl_ca_certs="/ca.pem"))
    assert tls.connection_pool.connection_kwargs["ssl_ca_certs"] == "/ca.pem"
    for client in (plain, blocking, tls):
        await client.aclose()


async def test_connection_close_is_idempotent_and_pool_replaces_closed(
    standalone: Settings,
) -> None:
    conn = Connection(standalone)
    assert not conn.is_cluster
    await conn.client.ping()
    await conn.blocking_client.ping()
    await conn.close()
    await conn.close()
    assert conn.closed
    shared = ConnectionPool.get(msgspec.structs.replace(standalone))
    await shared.close()
    assert ConnectionPool.get(standalone) is not shared


async def test_blocking_client_is_built_once(standalone: Settings) -> None:
    conn = ConnectionPool.get()
    assert conn.blocking_client is conn.blocking_client


async def test_more_commands_than_connections_wait_for_a_free_one(standalone: Settings) -> None:
    small = msgspec.structs.replace(standalone, max_connections=3)
    cache = BaseCache(settings=small)
    results = await asyncio.gather(*(cache.ping() for _ in range(200)))
    assert results == ["PONG"] * 200
    pool = cache.redis.connection_pool  # type: ignore[union-attr]
    assert len(pool._available_connections) + len(pool._in_use_connections) <= 3
    await ConnectionPool.get(small).close()


async def test_cluster_commands_past_max_connections_wait_their_turn(cluster: Settings) -> None:
    small = msgspec.structs.replace(cluster, max_connections=3)
    cache = BaseCache(settings=small)
    keys = [cache.keys.bot(i) for i in range(200)]
    await asyncio.gather(*(cache.redis.set(k, b"1") for k in keys))
    assert await asyncio.gather(*(cache.redis.get(k) for k in keys)) == [b"1"] * 200
    assert cache.redis.gate_size == 3  # type: ignore[union-attr]
    await cache.redis.unlink(*keys)
    await ConnectionPool.get(small).close()


async def test_ready_is_idempotent(settings: Settings) -> None:
    conn = ConnectionPool.get()
    await conn.ready()
    await conn.ready()
    assert conn.topology_loaded
