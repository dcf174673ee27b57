"""Several producer and consumer processes on one order queue; consumers are killed
with SIGKILL in the middle of their work. Every pushed order must be processed at least
once and acknowledged exactly once; none may be lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fullon_cache.config import Settings
from fullon_cache.orders_cache import OrdersCache

pytestmark = pytest.mark.reliability

SRC = str(Path(__file__).resolve().parent.parent / "src")
EX = "crash-ex"
PRODUCERS = 2
PER_PRODUCER = 40

# Bookkeeping lives in Redis under the test's namespace: "pushed" once a push returned
# True, "processed" when a consumer starts work on an order, "acked" once an ack
# returned True, "doomed" when a consumer that will be killed holds an order.
WORKER = r"""
import asyncio
import sys

from fullon_cache.models import Order
from fullon_cache.orders_cache import OrdersCache

EX = "crash-ex"


def bk(cache, name):
    return f"{cache.settings.namespace}:crashtest:{{bk}}:{name}"


async def produce(tag, count):
    cache = OrdersCache()
    for n in range(count):
        oid = f"{tag}-{n}"
        assert await cache.push_open_order(EX, Order(order_id=oid, symbol="BTC/USDT"))
        await cache.redis.rpush(bk(cache, "pushed"), oid)
        if n % 5 == 0:
            await asyncio.sleep(0.01)


async def consume(name, mode):
    cache = OrdersCache()
    r = cache.redis
    while True:
        claim = await cache.claim_order(EX, name, timeout=0.5)
        if claim is None:
            if await r.exists(bk(cache, "stop")):
                stats = await cache.get_queue_stats(EX)
                if stats["queued"] == 0 and stats["processing"] == 0:
                    return
            continue
        oid = claim.order.order_id
        await r.rpush(bk(cache, "processed"), oid)
        if mode == "doomed":
            await r.rpush(bk(cache, "doomed"), oid)
            await asyncio.sleep(3600)  # killed here, holding the order
        await r.set(bk(cache, "state:" + name), "working:" + oid)
        await asyncio.sleep(30 if mode == "slow" else 0.01)  # "slow" is killed here
        if await cache.ack_order(EX, claim):
            await r.rpush(bk(cache, "acked"), oid)


role, *args = sys.argv[1:]
if role == "produce":
    asyncio.run(produce(args[0], int(args[1])))
else:
    asyncio.run(consume(args[0], args[1]))
"""


async def _until(check_interval: float, predicate: object) -> None:
    assert callable(predicate)
    while True:
        if await predicate():
            return
        await asyncio.sleep(check_interval)


async def test_sigkilled_consumers_lose_no_order(settings: Settings) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "FULLON_CACHE_ORDER_VISIBILITY_TIMEOUT": "1",
    }
    cache = OrdersCache()
    redis = cache.redis

    def bk(name: str) -> str:
        return f"{settings.namespace}:crashtest:{{bk}}:{name}"

    def spawn(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", WORKER, *args], env=env)

    procs: list[subprocess.Popen[bytes]] = []
    try:
        producers = [spawn("produce", f"p{i}", str(PER_PRODUCER)) for i in range(PRODUCERS)]
        doomed = [spawn("consume", f"doomed{i}", "doomed") for i in range(2)]
        slow = spawn("consume", "slow", "slow")
        workers = [spawn("consume", f"w{i}", "normal") for i in range(2)]
        procs = [*producers, *doomed, slow, *workers]
        async with asyncio.timeout(180):

            async def doomed_hold_orders() -> bool:
                return bool(await redis.llen(bk("doomed")) == len(doomed))  # type: ignore[misc]

            await _until(0.02, doomed_hold_orders)
            for proc in doomed:
                os.kill(proc.pid, signal.SIGKILL)

            async def slow_is_working() -> bool:
                return bool(await redis.exists(bk("state:slow")))

            await _until(0.02, slow_is_working)
            os.kill(slow.pid, signal.SIGKILL)

            for proc in producers:
                assert await asyncio.to_thread(proc.wait) == 0
            await redis.set(bk("stop"), b"1")
            for proc in workers:
                assert await asyncio.to_thread(proc.wait) == 0
            for proc in [*doomed, slow]:
                assert await asyncio.to_thread(proc.wait) == -signal.SIGKILL

        pushed = [x.decode() for x in await redis.lrange(bk("pushed"), 0, -1)]  # type: ignore[misc]
        acked = [x.decode() for x in await redis.lrange(bk("acked"), 0, -1)]  # type: ignore[misc]
        processed = Counter(
            x.decode()
            for x in await redis.lrange(bk("processed"), 0, -1)  # type: ignore[misc]
        )
        held_when_killed = [x.decode() for x in await redis.lrange(bk("doomed"), 0, -1)]  # type: ignore[misc]
        slow_order = (await redis.get(bk("state:slow"))).decode().split(":", 1)[1]

        expected = {f"p{i}-{n}" for i in range(PRODUCERS) for n in range(PER_PRODUCER)}
        assert len(pushed) == len(expected) and set(pushed) == expected
        # acknowledged exactly once, none lost
        assert sorted(acked) == sorted(expected)
        # processed at least once; the orders held by killed consumers were redone
        assert set(processed) == expected
        for oid in [*held_when_killed, slow_order]:
            assert processed[oid] >= 2, oid
        assert await cache.get_queue_stats(EX) == {"queued": 0, "processing": 0, "dead": 0}
        assert await cache.get_dead_letters(EX) == []
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
