"""Cluster failover: 3 masters + 3 replicas, a master SIGKILLed mid-load.

Writes are acknowledged only once ``Connection.wait_for_replicas`` confirmed them
(``FULLON_CACHE_WAIT_REPLICAS=1``): the replica promoted in place of the killed master
must then hold every acknowledged order and trade. The library must recover by itself
(new topology, scripts reloaded on the promoted node) within seconds.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio.cluster import RedisCluster

from fullon_cache.config import Settings
from fullon_cache.connection import ConnectionPool, ReplicaWaitError, guard
from fullon_cache.embedded import EmbeddedCluster
from fullon_cache.exceptions import CacheError
from fullon_cache.models import Order, Trade
from fullon_cache.orders_cache import OrdersCache
from fullon_cache.trades_cache import TradesCache

from .conftest import fast_settings, until

pytestmark = pytest.mark.reliability

EXCHANGES = [f"ex{i}" for i in range(6)]
SYMBOL = "BTC/USDT"
DEADLINE = 60.0  # seconds: a hang guard, not a speed requirement


@pytest.fixture
def replicated_cluster() -> Iterator[EmbeddedCluster]:
    cluster = EmbeddedCluster(masters=3, replicas=1, node_timeout_ms=1000)
    cluster.start(timeout=60)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def cluster_settings(replicated_cluster: EmbeddedCluster) -> AsyncIterator[Settings]:
    settings = fast_settings(
        "127.0.0.1",
        0,
        cluster_mode=True,
        cluster_nodes=tuple(replicated_cluster.startup_nodes),
        retry_attempts=3,
        retry_backoff_cap=0.2,
        wait_replicas=1,
        wait_timeout_ms=500,
    )
    yield settings
    await ConnectionPool.close_loop()


async def test_master_killed_mid_load_loses_no_acknowledged_order_or_trade(
    replicated_cluster: EmbeddedCluster, cluster_settings: Settings
) -> None:
    orders = OrdersCache(settings=cluster_settings)
    trades = TradesCache(settings=cluster_settings)
    conn = orders._connection
    client = conn.client
    assert isinstance(client, RedisCluster)
    await client.initialize()
    victim_port = client.get_node_from_key(orders.keys.order_queue(EXCHANGES[0])).port
    on_victim = {
        ex
        for ex in EXCHANGES
        if client.get_node_from_key(orders.keys.order_queue(ex)).port == victim_port
    }

    acked_orders: dict[str, set[int]] = collections.defaultdict(set)
    acked_trades: dict[str, set[str]] = collections.defaultdict(set)
    stats = collections.Counter[str]()
    phase = {"name": "before"}
    done = asyncio.Event()

    async def load(exchange: str) -> None:
        n = 0
        while not done.is_set():
            n += 1
            try:
                await orders.push_open_order(exchange, Order(order_id=n, symbol=SYMBOL))
                async with guard(conn, "push+wait"):
                    await conn.wait_for_replicas(orders.keys.order_queue(exchange))
                acked_orders[exchange].add(n)
                trade = Trade(ex_trade_id=f"{exchange}-{n}", symbol=SYMBOL, volume=1, price=n)
                await trades.push_trade(exchange, trade)
                async with guard(conn, "push+wait"):
                    await conn.wait_for_replicas(trades.keys.trades(exchange, SYMBOL))
                acked_trades[exchange].add(f"{exchange}-{n}")
                stats[f"acked_{phase['name']}_{exchange in on_victim}"] += 1
            except ReplicaWaitError:
                stats["unconfirmed"] += 1  # written, never reported as durable
            except CacheError:
                stats["typed_errors"] += 1  # CacheConnectionError & co.: not acknowledged
                await asyncio.sleep(0.05)

    async with asyncio.timeout(DEADLINE):
        workers = [asyncio.create_task(load(ex)) for ex in EXCHANGES]
        await until(lambda: stats["acked_before_True"] >= 20)
        replicated_cluster.kill_node(victim_port)
        phase["name"] = "failover"
        # the victim's replica is promoted: every shard accepts writes again
        await until(
            lambda: (
                victim_port not in (ports := replicated_cluster.master_ports()) and len(ports) == 3
            ),
            0.1,
        )
        # the old master rejoins (as the new master's replica): WAIT confirms again
        victim = next(n for n in replicated_cluster.nodes if n.port == victim_port)
        await asyncio.to_thread(victim.restart)
        phase["name"] = "after"
        await until(lambda: stats["acked_after_True"] >= 20)
        done.set()
        await asyncio.gather(*workers)

    assert stats["typed_errors"] > 0  # the kill was felt ...
    assert stats["acked_after_False"] > 0 and stats["acked_after_True"] > 0  # ... and healed
    for exchange in EXCHANGES:
        popped: list[int] = []
        while (order := await orders.pop_open_order(exchange)) is not None:
            popped.append(int(order.order_id or 0))
        assert acked_orders[exchange] <= set(popped), exchange
        drained = [t.ex_trade_id for t in await trades.get_trades(SYMBOL, exchange)]
        assert acked_trades[exchange] <= set(drained), exchange
        assert len(drained) == len(set(drained))  # deduped: a retried push is stored once
    await orders.prepare_cache()
