"""Test harness: private Redis servers on free loopback ports, one namespace per test.

* ``redis_server`` (session, per xdist worker): a private redis-server/valkey-server.
* ``redis_cluster`` (session, per worker, started on first use): a 3-master cluster.
* ``settings``: runs the test once per backend (standalone and cluster, like cashews'
  backend fixture), under a fresh key namespace, with the library's settings pointing at
  the private server. ``standalone`` does the same on the single server only.

Servers are stopped at session end, even when tests fail. Nothing here ever touches the
Redis on the standard port.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from fullon_cache.base_cache import BaseCache
from fullon_cache.config import Settings, reload_settings
from fullon_cache.connection import ConnectionPool
from fullon_cache.embedded import EmbeddedCluster, EmbeddedServer

# A developer's own .env must never leak into the suite.
os.environ["DOTENV_FILE"] = os.devnull


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedServer]:
    server = EmbeddedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[EmbeddedCluster]:
    cluster = EmbeddedCluster(masters=3)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _standalone_env(server: EmbeddedServer) -> dict[str, str]:
    return {
        "REDIS_HOST": server.host,
        "REDIS_PORT": str(server.port),
        "REDIS_CLUSTER_MODE": "false",
        "REDIS_CLUSTER_NODES": "",
    }


def _cluster_env(cluster: EmbeddedCluster) -> dict[str, str]:
    return {"REDIS_CLUSTER_MODE": "true", "REDIS_CLUSTER_NODES": cluster.nodes_env}


async def _enter(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    env = {**env, "FULLON_CACHE_NAMESPACE": f"t{uuid.uuid4().hex[:16]}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    await ConnectionPool.close_loop()
    return reload_settings()


async def _leave(settings: Settings) -> None:
    try:
        await BaseCache(settings=settings).prepare_cache()
    finally:
        await ConnectionPool.close_loop()


@pytest.fixture(params=["standalone", pytest.param("cluster", marks=pytest.mark.cluster)])
async def settings(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Settings]:
    """Library settings for this test, once per backend, under a fresh namespace."""
    if request.param == "standalone":
        env = _standalone_env(request.getfixturevalue("redis_server"))
    else:
        env = _cluster_env(request.getfixturevalue("redis_cluster"))
    current = await _enter(monkeypatch, env)
    yield current
    await _leave(current)


@pytest.fixture
async def standalone(
    redis_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Settings]:
    """Library settings for this test on the single private server only."""
    current = await _enter(monkeypatch, _standalone_env(redis_server))
    yield current
    await _leave(current)


@pytest.fixture
async def cluster(
    redis_cluster: EmbeddedCluster, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Settings]:
    """Library settings for this test on the private cluster only."""
    current = await _enter(monkeypatch, _cluster_env(redis_cluster))
    yield current
    await _leave(current)


@pytest.fixture
def own_server() -> Iterator[EmbeddedServer]:
    """A private server of this test alone: it may kill and restart it (the session's
    ``redis_server`` is shared by every test of the worker and must stay up)."""
    server = EmbeddedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
