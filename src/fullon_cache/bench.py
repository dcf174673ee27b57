"""``make bench``: the library's hot paths next to bare redis-py sending the same commands.

For every hot path the benchmark times the library call and a bare ``redis.asyncio.Redis``
client that sends the *same* Redis commands (the same ``EVALSHA`` of the cache's own
script with the same keys and arguments, the same ``HGET``/``ZRANGE``...) with its
arguments prepared in advance and its replies left undecoded. The ratio
``library / raw`` (of the median latencies) is therefore everything the library adds:
validation, key building, encoding, decoding, the circuit breaker. Both sides run in the
same process and the same event loop, one call at a time, interleaved: every round runs
each case on both sides, alternating which side goes first, so drift hits both.

``set_tickers`` is also the ingest test: ticks per second in batches of 100 and 1,000,
while a subscriber process (PSUBSCRIBE on the exchange's tick channels, counting with
hiredis) is connected; the benchmark reports how many ticks were published and how many
the subscriber received.

The server: by default a private :class:`~fullon_cache.embedded.EmbeddedServer` on a free
loopback port, started and stopped by the benchmark, so ``make bench`` never writes to a
shared server by surprise. ``--url redis://host:port/db`` (or ``FULLON_CACHE_BENCH_URL``)
targets an existing server instead; the benchmark then works in a namespace of its own
(``bench-<random>``) and removes only that namespace's keys afterwards (never FLUSHDB).

Run: ``python -m fullon_cache.bench [--ops N] [--rounds R] [--only a,b] [--uvloop]
[--url URL] [--json PATH]``. It prints a table and writes the results as JSON
(default ``bench-results.json``).

Example:
    >>> sorted(CASES)[:3]
    ['claim_ack_order', 'get_latest_ohlcv_bars', 'get_price']
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import multiprocessing
import os
import platform
import re
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis
import redis
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

from fullon_cache.base_cache import BaseCache
from fullon_cache.codec import encode
from fullon_cache.config import Settings
from fullon_cache.connection import ConnectionPool
from fullon_cache.embedded import EmbeddedServer
from fullon_cache.models import Order, Tick, Trade
from fullon_cache.near_cache import NearCache
from fullon_cache.ohlcv_cache import OHLCVCache
from fullon_cache.orders_cache import _SCRIPTS as _ORDER_SCRIPTS
from fullon_cache.orders_cache import OrdersCache, _entry
from fullon_cache.process_cache import _TOUCH, ProcessCache, ProcessType
from fullon_cache.tick_cache import _SET_TICKS, TickCache
from fullon_cache.trades_cache import _CALL_TTL, _DRAIN_LUA, _PUSH_LUA, TradesCache

__all__ = ["CASES", "BenchConfig", "main", "parse_args", "run"]

URL_ENV = "FULLON_CACHE_BENCH_URL"
EXCHANGE = "bench"
BATCH_EXCHANGE = "bench-batch"  # the subscriber counts this exchange's ticks only
SYMBOL = "BTC/USDT"
_DRAIN_SIZE = 10  # trades in the list at each timed drain
_BARS = 1000
_END = b"__end__"

Op = Callable[[int], Awaitable[Any]]


# --------------------------------------------------------------------------- config


@dataclass
class BenchConfig:
    """What to run and where.

    Example:
        >>> BenchConfig().ops
        2000
    """

    ops: int = 2000
    rounds: int = 5
    ticks: int = 20_000
    only: tuple[str, ...] = ()
    use_uvloop: bool = False
    url: str | None = None
    json_path: str = "bench-results.json"


def parse_args(argv: Sequence[str] | None = None) -> BenchConfig:
    """The command line as a :class:`BenchConfig`.

    Example:
        >>> parse_args(["--ops", "10", "--only", "get_price,set_ticker"]).only
        ('get_price', 'set_ticker')
    """
    parser = argparse.ArgumentParser(
        prog="python -m fullon_cache.bench",
        description="Library hot paths vs bare redis-py sending the same commands.",
    )
    parser.add_argument("--ops", type=int, default=2000, help="calls per side per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument(
        "--ticks", type=int, default=20_000, help="ticks per side per round (set_tickers)"
    )
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop if installed")
    parser.add_argument(
        "--url", default=os.environ.get(URL_ENV) or None, help=f"existing server (${URL_ENV})"
    )
    parser.add_argument("--json", default="bench-results.json", help="results file")
    ns = parser.parse_args(argv)
    only = tuple(name.strip() for name in ns.only.split(",") if name.strip())
    unknown = sorted(set(only) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(sorted(CASES))}")
    if ns.ops < 1 or ns.rounds < 1 or ns.ticks < 1:
        parser.error("--ops, --rounds and --ticks must be >= 1")
    return BenchConfig(
        ops=ns.ops,
        rounds=ns.rounds,
        ticks=ns.ticks,
        only=only,
        use_uvloop=ns.uvloop,
        url=ns.url,
        json_path=ns.json,
    )


def settings_for_url(url: str, namespace: str) -> Settings:
    """Library settings for a ``redis://`` / ``rediss://`` URL, in ``namespace``.

    Example:
        >>> s = settings_for_url("redis://:pw@127.0.0.1:6390/2", "bench-x")
        >>> (s.host, s.port, s.db, s.password, s.namespace)
        ('127.0.0.1', 6390, 2, 'pw', 'bench-x')
    """
    parts = urlparse(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"--url must be redis://... or rediss://..., got {url!r}")
    path = parts.path.strip("/")
    return Settings(
        host=parts.hostname or "localhost",
        port=parts.port or 6379,
        db=int(path) if path else 0,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "rediss",
        namespace=namespace,
        # a benchmark must see failures at once, not wait out a breaker
        breaker_threshold=0,
    )


# --------------------------------------------------------------------------- timing


@dataclass
class Side:
    """Latencies (ns) of one side of a case, over every round.

    Example:
        >>> side = Side(items_per_op=1)
        >>> side.latencies_ns += [1000, 3000]
        >>> side.summary()["p50_us"]
        2.0
    """

    items_per_op: int
    latencies_ns: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """ops/s (from the summed latencies), items/s, mean, p50 and p99 in µs."""
        lat = sorted(self.latencies_ns)
        total_s = sum(lat) / 1e9
        ops = len(lat) / total_s
        p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
        return {
            "n": len(lat),
            "ops_per_s": round(ops, 1),
            "items_per_s": round(ops * self.items_per_op, 1),
            "mean_us": round(statistics.fmean(lat) / 1e3, 2),
            "p50_us": round(statistics.median(lat) / 1e3, 2),
            "p99_us": round(p99 / 1e3, 2),
        }


async def _timed(side: Side, op: Op, n: int, prep: Op | None) -> None:
    clock = time.perf_counter_ns
    out = side.latencies_ns
    for i in range(n):
        if prep is not None:
            await prep(i)
        start = clock()
        await op(i)
        out.append(clock() - start)


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One hot path: the library call and its baseline, each ``op(i)``; ``before(n)``
    runs untimed before each timed run of ``n`` calls, ``prep(i)`` untimed before each
    call, ``after()`` untimed after it."""

    name: str
    description: str
    round_trips: str
    lib: Op
    raw: Op
    baseline: str = "raw redis-py, same commands"
    items_per_op: int = 1
    ops: int | None = None
    before: Callable[[int], Awaitable[None]] | None = None
    prep: Op | None = None
    after: Callable[[], Awaitable[None]] | None = None


@dataclass
class Env:
    """What every case builder gets: settings, the bare client, the run's config."""

    settings: Settings
    raw: Redis
    config: BenchConfig
    near: NearCache | None = None

    @property
    def keys(self) -> Any:
        return BaseCache(settings=self.settings).keys


Builder = Callable[[Env], Coroutine[Any, Any, Case]]
CASES: dict[str, Builder] = {}


def _case(name: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        CASES[name] = fn
        return fn

    return register


def _tick(symbol: str = SYMBOL, price: float = 50_000.5, exchange: str = EXCHANGE) -> Tick:
    return Tick(
        symbol=symbol,
        exchange=exchange,
        price=price,
        volume=12.5,
        time=time.time(),
        bid=price - 0.5,
        ask=price + 0.5,
        last=price,
    )


def _tick_script_args(env: Env, ticks: list[Tick]) -> tuple[list[str], list[Any]]:
    k = env.keys
    ex = ticks[0].exchange
    keys = [k.tickers(ex), k.tick_indexed(ex), k.tick_exchanges()]
    args: list[Any] = [ex, len(ticks)]
    for t in ticks:
        args += [t.symbol, encode(t), k.tick_channel(ex, t.symbol)]
    return keys, args


@_case("set_ticker")
async def _set_ticker(env: Env) -> Case:
    cache = TickCache(settings=env.settings)
    tick = _tick()
    sha = await env.raw.script_load(_SET_TICKS)
    keys, args = _tick_script_args(env, [tick])

    async def lib(i: int) -> Any:
        return await cache.set_ticker(tick)

    async def raw(i: int) -> Any:
        return await env.raw.evalsha(sha, len(keys), *keys, *args)

    return Case("set_ticker", "store + publish one tick (Lua)", "1", lib, raw)


def _set_tickers(size: int) -> Builder:
    async def build(env: Env) -> Case:
        cache = TickCache(settings=env.settings)
        ticks = [_tick(f"S{n:04d}/USDT", 100.0 + n, BATCH_EXCHANGE) for n in range(size)]
        sha = await env.raw.script_load(_SET_TICKS)
        keys, args = _tick_script_args(env, ticks)

        async def lib(i: int) -> Any:
            return await cache.set_tickers(ticks)

        async def raw(i: int) -> Any:
            return await env.raw.evalsha(sha, len(keys), *keys, *args)

        return Case(
            f"set_tickers_{size}",
            f"store + publish {size} ticks (one Lua call)",
            "1",
            lib,
            raw,
            items_per_op=size,
            ops=max(1, env.config.ticks // size),
        )

    return build


CASES["set_tickers_100"] = _set_tickers(100)
CASES["set_tickers_1000"] = _set_tickers(1000)


@_case("get_ticker")
async def _get_ticker(env: Env) -> Case:
    cache = TickCache(settings=env.settings)
    await cache.set_ticker(_tick())
    key = env.keys.tickers(EXCHANGE)

    async def lib(i: int) -> Any:
        return await cache.get_ticker(SYMBOL, EXCHANGE)

    async def raw(i: int) -> Any:
        return await env.raw.hget(key, SYMBOL)

    return Case("get_ticker", "one ticker, decoded (HGET)", "1", lib, raw)


@_case("get_price")
async def _get_price(env: Env) -> Case:
    cache = TickCache(settings=env.settings)
    await cache.set_ticker(_tick())
    key = env.keys.tickers(EXCHANGE)

    async def lib(i: int) -> Any:
        return await cache.get_price(SYMBOL, EXCHANGE)

    async def raw(i: int) -> Any:
        return await env.raw.hget(key, SYMBOL)

    return Case("get_price", "price of one ticker (HGET)", "1", lib, raw)


@_case("near_get_price")
async def _near_get_price(env: Env) -> Case:
    assert env.near is not None
    near = TickCache(settings=env.settings, near_cache=env.near)
    plain = TickCache(settings=env.settings)
    await plain.set_ticker(_tick())
    await env.near.wait_live()
    await near.get_price(SYMBOL, EXCHANGE)  # fill

    async def lib(i: int) -> Any:
        return await near.get_price(SYMBOL, EXCHANGE)

    async def raw(i: int) -> Any:
        return await plain.get_price(SYMBOL, EXCHANGE)

    return Case(
        "near_get_price",
        "get_price served by the near cache (hit)",
        "0",
        lib,
        raw,
        baseline="library get_price from Redis",
    )


@_case("push_pop_order")
async def _push_pop(env: Env) -> Case:
    cache = OrdersCache(settings=env.settings)
    s = env.settings
    k = env.keys
    push_sha = await env.raw.script_load(_ORDER_SCRIPTS["push"])
    take_sha = await env.raw.script_load(_ORDER_SCRIPTS["take"])
    order = Order(order_id=1, symbol=SYMBOL, side="buy", volume=0.1, price=50_000.0)
    body = encode(order)
    queue = [
        k.order_queue(EXCHANGE),
        k.order_processing(EXCHANGE),
        k.order_claims(EXCHANGE),
        k.order_dead(EXCHANGE),
    ]
    vt = max(1, round(s.order_visibility_timeout * 1000))
    take_args: list[Any] = [vt, s.order_max_deliveries, s.max_list_length, "pop", ""]
    entries: list[bytes] = []

    async def before(n: int) -> None:
        entries[:] = [_entry(uuid.uuid4().hex, body) for _ in range(n)]

    async def lib(i: int) -> Any:
        await cache.push_open_order(EXCHANGE, order)
        return await cache.pop_open_order(EXCHANGE)

    async def raw(i: int) -> Any:
        await env.raw.evalsha(push_sha, 2, queue[0], queue[1], s.max_list_length, entries[i])
        return await env.raw.evalsha(take_sha, 4, *queue, *take_args)

    return Case("push_pop_order", "push_open_order + pop_open_order", "2", lib, raw, before=before)


@_case("claim_ack_order")
async def _claim_ack(env: Env) -> Case:
    cache = OrdersCache(settings=env.settings)
    s = env.settings
    k = env.keys
    take_sha = await env.raw.script_load(_ORDER_SCRIPTS["take"])
    ack_sha = await env.raw.script_load(_ORDER_SCRIPTS["ack"])
    body = encode(Order(order_id=2, symbol=SYMBOL, side="sell", volume=0.1, price=1.0))
    queue = [
        k.order_queue(EXCHANGE),
        k.order_processing(EXCHANGE),
        k.order_claims(EXCHANGE),
        k.order_dead(EXCHANGE),
    ]
    vt = max(1, round(s.order_visibility_timeout * 1000))
    take_args: list[Any] = [
        vt,
        s.order_max_deliveries,
        s.max_list_length,
        "claim",
        "bench-executor",
    ]

    async def before(n: int) -> None:
        # untimed: queue the n orders this run claims
        pipe = env.raw.pipeline(transaction=False)
        for _ in range(n):
            pipe.lpush(queue[0], _entry(uuid.uuid4().hex, body))
        await pipe.execute()

    async def lib(i: int) -> Any:
        claim = await cache.claim_order(EXCHANGE, "bench-executor")
        assert claim is not None
        return await cache.ack_order(EXCHANGE, claim)

    async def raw(i: int) -> Any:
        entry = (await env.raw.evalsha(take_sha, 4, *queue, *take_args))[0]
        return await env.raw.evalsha(ack_sha, 2, queue[1], queue[2], entry)

    return Case("claim_ack_order", "claim_order + ack_order", "2", lib, raw, before=before)


@_case("push_trade")
async def _push_trade(env: Env) -> Case:
    cache = TradesCache(settings=env.settings)
    k = env.keys
    sha = await env.raw.script_load(_PUSH_LUA)
    trade = Trade(symbol=SYMBOL, side="buy", volume=0.5, price=50_000.0, time=time.time())
    payload = encode(trade)
    list_key = k.trades(EXCHANGE, SYMBOL)
    cap = env.settings.max_list_length
    tokens: list[str] = []

    async def before(n: int) -> None:
        tokens[:] = [uuid.uuid4().hex for _ in range(n)]

    async def lib(i: int) -> Any:
        return await cache.push_trade(EXCHANGE, trade)

    async def raw(i: int) -> Any:
        token = tokens[i]
        marker = k.trade_push(EXCHANGE, token)
        return await env.raw.evalsha(sha, 2, list_key, marker, payload, cap, _CALL_TTL, token)

    async def after() -> None:
        await env.raw.delete(list_key)

    return Case(
        "push_trade",
        "append one trade (Lua, retry-safe)",
        "1",
        lib,
        raw,
        before=before,
        after=after,
    )


@_case("get_trades")
async def _get_trades(env: Env) -> Case:
    cache = TradesCache(settings=env.settings)
    k = env.keys
    sha = await env.raw.script_load(_DRAIN_LUA)
    list_key = k.trades(EXCHANGE, "ETH/USDT")
    payloads = [
        encode(Trade(symbol="ETH/USDT", volume=1.0 + n, price=3000.0, time=time.time()))
        for n in range(_DRAIN_SIZE)
    ]
    tokens: list[str] = []

    async def before(n: int) -> None:
        tokens[:] = [uuid.uuid4().hex for _ in range(n)]

    async def prep(i: int) -> None:
        await env.raw.lpush(list_key, *payloads)

    async def lib(i: int) -> Any:
        return await cache.get_trades("ETH/USDT", EXCHANGE)

    async def raw(i: int) -> Any:
        batch = k.trade_drain(EXCHANGE, "ETH/USDT", tokens[i])
        got = await env.raw.evalsha(sha, 2, list_key, batch, _CALL_TTL)
        await env.raw.unlink(batch)  # the library unlinks a non-empty batch: prep fills it
        return got

    return Case(
        "get_trades",
        f"drain a list of {_DRAIN_SIZE} trades (Lua + UNLINK)",
        "2",
        lib,
        raw,
        items_per_op=_DRAIN_SIZE,
        before=before,
        prep=prep,
    )


@_case("get_latest_ohlcv_bars")
async def _ohlcv(env: Env) -> Case:
    cache = OHLCVCache(settings=env.settings)
    bars = [[60.0 * n, 1.0 + n, 2.0 + n, 0.5 + n, 1.5 + n, 10.0 + n] for n in range(_BARS)]
    await cache.update_ohlcv_bars(SYMBOL, "1m", bars)
    key = env.keys.ohlcv(SYMBOL, "1m")

    async def lib(i: int) -> Any:
        return await cache.get_latest_ohlcv_bars(SYMBOL, "1m", _BARS)

    async def raw(i: int) -> Any:
        return await env.raw.zrange(key, -_BARS, -1)

    return Case(
        "get_latest_ohlcv_bars",
        f"newest {_BARS} bars, decoded (ZRANGE)",
        "1",
        lib,
        raw,
        ops=max(1, env.config.ops // 10),
    )


@_case("update_process")
async def _update_process(env: Env) -> Case:
    cache = ProcessCache(settings=env.settings)
    pid = await cache.register_process(ProcessType.TICK, "bench")
    k = env.keys
    sha = await env.raw.script_load(_TOUCH)
    key, index = k.process(pid), k.process_index()
    ttl = env.settings.process_ttl

    async def lib(i: int) -> Any:
        return await cache.update_process(pid, status="running", message="tick")

    async def raw(i: int) -> Any:
        now = repr(time.time())
        fields = ["updated_at", now, "status", "running", "message", "tick"]
        await env.raw.evalsha(sha, 1, key, ttl, now, *fields)  # 1: the process exists
        await env.raw.zadd(index, {pid: float(now)})

    return Case("update_process", "status + heartbeat (Lua + ZADD on the index)", "2", lib, raw)


# --------------------------------------------------------------------------- subscriber


def _resp(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _subscriber(host: str, port: int, password: str | None, pattern: str, pipe: Pipe) -> None:
    """Child process: PSUBSCRIBE ``pattern`` and count messages until the end marker
    (or a disconnect, e.g. the server dropping a slow subscriber); send back
    ``(count, disconnected)``."""
    sock = socket.create_connection((host, port))
    reader = hiredis.Reader()
    if password is not None:
        sock.sendall(_resp("AUTH", password))
    sock.sendall(_resp("PSUBSCRIBE", pattern))
    count, ready, disconnected = 0, False, False
    while True:
        data = sock.recv(1 << 20)
        if not data:
            disconnected = True
            break
        reader.feed(data)
        message = reader.gets()
        done = False
        while message is not False:
            if isinstance(message, list) and message[0] == b"pmessage":
                if message[3] == _END:
                    done = True
                else:
                    count += 1
            elif isinstance(message, list) and message[0] == b"psubscribe":
                ready = True
                pipe.send("ready")
            message = reader.gets()
        if done:
            break
    sock.close()
    pipe.send((count, disconnected or not ready))


class Subscriber:
    """A counting subscriber in its own process (it must not share the writer's CPU
    time slice accounting or event loop)."""

    def __init__(self, settings: Settings, pattern: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_subscriber,
            args=(settings.host, settings.port, settings.password, pattern, child),
            daemon=True,
        )
        self._proc.start()
        child.close()  # a child that dies makes recv() raise EOFError instead of hanging
        self._pipe.recv()  # "ready": subscribed

    def finish(self) -> tuple[int, bool]:
        """(messages received, disconnected) once the end marker was published."""
        result: tuple[int, bool] = self._pipe.recv()
        self._proc.join(10)
        return result


# --------------------------------------------------------------------------- run


def _machine(server_info: dict[str, Any], loop_name: str) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    found = re.search(r"^model name\s*:\s*(.*)$", text, re.MULTILINE)
    cpu = found.group(1).strip() if found else platform.processor() or "unknown"
    server = "valkey" if "valkey_version" in server_info else "redis"
    version = server_info.get("valkey_version") or server_info.get("redis_version")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "redis_py": redis.__version__,
        "hiredis": getattr(hiredis, "__version__", "?"),
        "server": f"{server} {version}",
        "event_loop": loop_name,
    }


async def run(config: BenchConfig, settings: Settings) -> dict[str, Any]:
    """Run the selected cases against the server of ``settings`` and return the results
    (the JSON document). Removes the namespace's keys afterwards.

    Example:
        >>> callable(run)
        True
    """
    raw = Redis(
        host=settings.host,
        port=settings.port,
        db=settings.db,
        username=settings.username,
        password=settings.password,
        ssl=settings.ssl,
    )
    base = BaseCache(settings=settings)
    names = list(config.only) or list(CASES)
    near: NearCache | None = None
    if "near_get_price" in names:
        near = NearCache(settings=settings)
    env = Env(settings, raw, config, near)
    results: list[dict[str, Any]] = []
    ingest: dict[str, Any] = {}
    try:
        cases = [await CASES[name](env) for name in names]
        subscriber: Subscriber | None = None
        if any(c.name.startswith("set_tickers") for c in cases):
            subscriber = Subscriber(settings, env.keys.tick_channel_pattern(BATCH_EXCHANGE))
        sides = {c.name: (Side(c.items_per_op), Side(c.items_per_op)) for c in cases}
        for r in range(config.rounds):
            for case in cases:
                n = case.ops or config.ops
                lib_side, raw_side = sides[case.name]
                order = [(case.lib, lib_side), (case.raw, raw_side)]
                if r % 2:
                    order.reverse()
                for op, side in order:
                    if case.before is not None:
                        await case.before(n)
                    gc.collect()
                    await _timed(side, op, n, case.prep)
                    if case.after is not None:
                        await case.after()
        if subscriber is not None:
            await raw.publish(env.keys.tick_channel(BATCH_EXCHANGE, "__end__"), _END)
            received, disconnected = subscriber.finish()
            published = sum(
                len(s.latencies_ns) * s.items_per_op
                for c in cases
                if c.name.startswith("set_tickers")
                for s in sides[c.name]
            )
            ingest = {"published": published, "received": received}
            ingest["subscriber_disconnected"] = disconnected
        for case in cases:
            lib_side, raw_side = sides[case.name]
            lib_sum, raw_sum = lib_side.summary(), raw_side.summary()
            results.append(
                {
                    "name": case.name,
                    "description": case.description,
                    "round_trips": case.round_trips,
                    "baseline": case.baseline,
                    "library": lib_sum,
                    "raw": raw_sum,
                    "ratio_p50": round(lib_sum["p50_us"] / raw_sum["p50_us"], 3),
                    "ratio_mean": round(lib_sum["mean_us"] / raw_sum["mean_us"], 3),
                }
            )
        info = await raw.info("server")
        loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]
    finally:
        if near is not None:
            await near.close()
        await base.prepare_cache()
        await raw.aclose()
        await ConnectionPool.close_loop()
    batch = next((r for r in results if r["name"] == "set_tickers_1000"), None)
    if batch is not None:
        ingest["ticks_per_s_batch_1000"] = batch["library"]["items_per_s"]
    return {
        "machine": _machine(info, loop_name),
        "config": {
            "ops": config.ops,
            "rounds": config.rounds,
            "ticks": config.ticks,
            "cases": names,
        },
        "results": results,
        "ingest": ingest,
    }


def render(doc: dict[str, Any], console: Console) -> None:
    """Print the results as a rich table (and the ingest line)."""
    m = doc["machine"]
    table = Table(
        title=f"fullon_cache bench — {m['server']}, Python {m['python']}, {m['event_loop']}, "
        f"{m['nproc']} CPU ({m['cpu']})"
    )
    for column in ("case", "RT", "lib ops/s", "lib p50 µs", "lib p99 µs"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for column in ("raw ops/s", "raw p50 µs", "raw p99 µs", "ratio"):
        table.add_column(column, justify="right")
    for row in doc["results"]:
        lib, raw = row["library"], row["raw"]
        table.add_row(
            row["name"],
            row["round_trips"],
            f"{lib['ops_per_s']:,.0f}",
            f"{lib['p50_us']:,.1f}",
            f"{lib['p99_us']:,.1f}",
            f"{raw['ops_per_s']:,.0f}",
            f"{raw['p50_us']:,.1f}",
            f"{raw['p99_us']:,.1f}",
            f"{row['ratio_p50']:.2f}",
        )
    console.print(table)
    ingest = doc["ingest"]
    if ingest:
        console.print(
            f"ingest (set_tickers, batches of 1,000): "
            f"{ingest.get('ticks_per_s_batch_1000', 0):,.0f} ticks/s; subscriber received "
            f"{ingest['received']:,} of {ingest['published']:,} published ticks"
            + (" (DISCONNECTED by the server)" if ingest["subscriber_disconnected"] else "")
        )
    console.print(
        "ratio = library p50 / baseline p50 (raw redis-py with the same commands; for "
        "near_get_price the baseline is the library's get_price from Redis)"
    )


def _loop_factory(use_uvloop: bool, console: Console) -> Callable[[], asyncio.AbstractEventLoop]:
    if use_uvloop:
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            console.print("[yellow]--uvloop: uvloop is not installed; using asyncio[/]")
        else:
            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return factory
    return asyncio.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; returns the exit code (0).

    Example:
        >>> main(["--only", "nope"])  # doctest: +SKIP
    """
    config = parse_args(argv)
    console = Console(width=max(Console().width, 150))
    namespace = f"bench-{uuid.uuid4().hex[:12]}"
    server: EmbeddedServer | None = None
    if config.url is None:
        server = EmbeddedServer()
        server.start()
        url = server.url
        console.print(f"private server on 127.0.0.1:{server.port}")
    else:
        url = config.url
    try:
        settings = settings_for_url(url, namespace)
        with asyncio.Runner(loop_factory=_loop_factory(config.use_uvloop, console)) as runner:
            doc = runner.run(run(config, settings))
    finally:
        if server is not None:
            server.stop()
    Path(config.json_path).write_text(json.dumps(doc, indent=2) + "\n")
    render(doc, console)
    console.print(f"results written to {config.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
