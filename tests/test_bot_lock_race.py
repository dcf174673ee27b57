"""Locks and heartbeats across real processes (standalone and cluster).

* 5 processes x 10 asyncio tasks race for one exchange+symbol for several rounds;
  exactly one task wins each round (winners recorded in Redis by the workers).
* A holder process killed with SIGKILL loses its lock once the lease runs out, and
  the next holder gets a larger fencing token.
* A process whose service was killed shows up as stale in the health report.

The worker side is this same file run as a script (``python test_bot_lock_race.py
<mode> ...``) with the test's REDIS_* / FULLON_CACHE_NAMESPACE environment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from fullon_cache.bot_cache import BotCache
from fullon_cache.config import Settings
from fullon_cache.process_cache import ProcessCache, ProcessStatus, ProcessType

EXCHANGE = "binance"
SYMBOL = "BTC/USDT:USDT"
PROCESSES = 5
TASKS = 10
ROUNDS = 5
DEADLINE = 120.0  # generous: only bounds a hang, never asserts speed
SRC = Path(__file__).resolve().parent.parent / "src"


# -- worker side (runs in the child processes) --------------------------------------------
def _coord(cache: BotCache, *parts: object) -> str:
    """A coordination key of the test, inside the test's namespace."""
    return ":".join([cache.settings.namespace, "racetest", *map(str, parts)])


async def _wait_for(check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit("worker timed out")
        await asyncio.sleep(0.02)


async def _race_task(cache: BotCache, me: str, total: int, rounds: int) -> None:
    redis = cache.redis
    await redis.incr(_coord(cache, "ready"))

    async def everyone_ready() -> bool:
        return int(await redis.get(_coord(cache, "ready")) or 0) >= total

    await _wait_for(everyone_ready)
    for round_ in range(rounds):
        token = await cache.block_exchange_with_token(EXCHANGE, SYMBOL, me, lease=30)
        await redis.incr(_coord(cache, "attempts", round_))
        if token is None:

            async def round_done(round_: int = round_) -> bool:
                return bool(await redis.exists(_coord(cache, "done", round_)))

            await _wait_for(round_done)
            continue
        await redis.rpush(_coord(cache, "winners", round_), f"{me}|{token}")
        if await cache.is_blocked(EXCHANGE, SYMBOL) != me:
            raise SystemExit("winner does not hold the lock")

        async def all_attempted(round_: int = round_) -> bool:  # hold until everyone tried
            if not await cache.renew_block(EXCHANGE, SYMBOL, me, lease=30):
                raise SystemExit("winner lost the lock")
            return int(await redis.get(_coord(cache, "attempts", round_)) or 0) >= total

        await _wait_for(all_attempted)
        if not await cache.unblock_exchange(EXCHANGE, SYMBOL, me):
            raise SystemExit("winner could not release")
        await redis.set(_coord(cache, "done", round_), 1)


async def _race(proc: int, tasks: int, total: int, rounds: int) -> None:
    async with BotCache() as cache:
        # The coordination counters below use the raw client: load the cluster topology
        # first (a guarded call does), as redis-py 8.1 can run a command twice when many
        # coroutines make a cluster client's very first calls at once.
        await cache.ping()
        await asyncio.gather(
            *(_race_task(cache, f"p{proc}-t{i}", total, rounds) for i in range(tasks))
        )


async def _hold(lease: float) -> None:
    """Take the lock, print the token, renew it until killed."""
    async with BotCache() as cache:
        token = await cache.block_exchange_with_token(EXCHANGE, SYMBOL, "victim", lease=lease)
        print(token, flush=True)
        alive = True
        while alive:
            await asyncio.sleep(0.1)
            alive = await cache.renew_block(EXCHANGE, SYMBOL, "victim", lease=lease)
    raise SystemExit("lost the lock while alive")


async def _beat() -> None:
    """Register a process, print its id, heartbeat until killed."""
    async with ProcessCache() as cache:
        pid = await cache.register_process(ProcessType.TICK, "feed", status="running")
        print(pid, flush=True)
        alive = True
        while alive:
            await asyncio.sleep(0.1)
            alive = await cache.heartbeat(pid)
    raise SystemExit("process record vanished while alive")


def _main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "race":
        proc, tasks, total, rounds = map(int, args)
        asyncio.run(_race(proc, tasks, total, rounds))
    elif mode == "hold":
        asyncio.run(_hold(float(args[0])))
    elif mode == "beat":
        asyncio.run(_beat())
    else:
        raise SystemExit(f"unknown mode {mode}")


# -- test side ----------------------------------------------------------------------------
def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]),
        DOTENV_FILE=os.devnull,
        REDIS_HOST=settings.host,
        REDIS_PORT=str(settings.port),
        REDIS_CLUSTER_MODE="true" if settings.cluster_mode else "false",
        REDIS_CLUSTER_NODES=",".join(f"{h}:{p}" for h, p in settings.cluster_nodes),
        FULLON_CACHE_NAMESPACE=settings.namespace,
    )
    return env


async def _spawn(settings: Settings, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        *args,
        env=_child_env(settings),
        stdout=asyncio.subprocess.PIPE,
    )


async def _first_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE)
    assert line, f"child exited early with {await proc.wait()}"
    return line.decode().strip()


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        await asyncio.sleep(0.05)


async def test_fifty_tasks_in_five_processes_one_winner_per_round(settings: Settings) -> None:
    total = PROCESSES * TASKS
    procs = [
        await _spawn(settings, "race", str(p), str(TASKS), str(total), str(ROUNDS))
        for p in range(PROCESSES)
    ]
    try:
        codes = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 300)
    finally:
        for proc in procs:
            await _kill(proc)
    assert codes == [0] * PROCESSES
    async with BotCache() as cache:
        tokens = []
        for round_ in range(ROUNDS):
            winners = await cache.redis.lrange(_coord(cache, "winners", round_), 0, -1)
            assert len(winners) == 1, f"round {round_}: {winners}"
            attempts = await cache.redis.get(_coord(cache, "attempts", round_))
            assert int(attempts) == total
            tokens.append(int(winners[0].decode().rsplit("|", 1)[1]))
        assert tokens == sorted(set(tokens))  # a new holder each round: tokens grow
        assert await cache.is_blocked(EXCHANGE, SYMBOL) is None


async def test_killed_holder_loses_the_lock_after_its_lease(settings: Settings) -> None:
    lease = 2.0
    proc = await _spawn(settings, "hold", str(lease))
    try:
        victim_token = int(await _first_line(proc))
        async with BotCache() as cache:
            assert await cache.is_blocked(EXCHANGE, SYMBOL) == "victim"
            assert await cache.block_exchange(EXCHANGE, SYMBOL, "successor") is False
            [block] = await cache.get_blocks()
            assert block["token"] == victim_token

            async def outlived_one_lease() -> bool:
                return time.time() - block["since"].timestamp() > lease * 1.5

            await eventually(outlived_one_lease, "holder kept renewing")
            # renewals by the live holder keep the lock past its first lease
            assert await cache.is_blocked(EXCHANGE, SYMBOL) == "victim"

            os.kill(proc.pid, signal.SIGKILL)
            assert await proc.wait() == -signal.SIGKILL

            async def freed() -> bool:
                return await cache.is_blocked(EXCHANGE, SYMBOL) is None

            await eventually(freed, "lease of the killed holder expired")
            assert await cache.renew_block(EXCHANGE, SYMBOL, "victim") is False
            token = await cache.block_exchange_with_token(EXCHANGE, SYMBOL, "successor")
            assert token is not None and token > victim_token
            assert await cache.get_fencing_token(EXCHANGE, SYMBOL) == token
    finally:
        await _kill(proc)


async def test_killed_service_is_reported_stale(settings: Settings) -> None:
    proc = await _spawn(settings, "beat")
    try:
        pid = await _first_line(proc)
        async with ProcessCache() as cache:
            record = await cache.get_process(pid)
            assert record is not None and record["status"] is ProcessStatus.RUNNING

            async def beating() -> bool:
                current = await cache.get_process(pid)
                return current is not None and current["heartbeat"] > record["heartbeat"]

            await eventually(beating, "child heartbeats")
            health = await cache.get_system_health(stale_after_seconds=30)
            assert health["status"] == "healthy"
            assert [r["process_id"] for r in health["stale_processes"]] == []

            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()

            async def reported_stale() -> bool:
                report = await cache.get_system_health(stale_after_seconds=0.5)
                return [r["process_id"] for r in report["stale_processes"]] == [pid]

            await eventually(reported_stale, "killed service reported stale")
            health = await cache.get_system_health(stale_after_seconds=0.5)
            assert health["status"] == "degraded"
            assert health["by_type"]["tick"]["stale"] == 1
            status = await cache.get_component_status("feed", stale_after_seconds=0.5)
            assert status is not None and status["healthy"] is False
    finally:
        await _kill(proc)


if __name__ == "__main__":
    _main(sys.argv[1:])
