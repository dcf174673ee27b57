"""The ``fullon-cache`` command: look into a running cache, and run a local server.

Subcommands (``fullon-cache --help``):

* ``status`` — system health (from :meth:`ProcessCache.get_system_health`), the live
  processes, the order queues of every exchange that has one, and how many keys each
  cache type holds (SCAN of the namespace, grouped by :class:`~fullon_cache.keys.CacheKey`).
* ``tickers EXCHANGE`` — a live table of the exchange's prices
  (:meth:`TickCache.stream_ticker_updates`); ``--count N`` / ``--seconds S`` stop it.
* ``queue EXCHANGE`` — an exchange's order queue and dead letters; ``--replay`` queues
  the dead letters again, ``--purge`` discards them.
* ``bench`` — the benchmark of :mod:`fullon_cache.bench` (its options pass through).
* ``server`` — a private embedded server for local development; prints the
  ``REDIS_HOST``/``REDIS_PORT`` to export; stops on Ctrl-C (or after ``--seconds``).

Settings come from the environment and ``.env`` as for the library.

Example:
    >>> from typer.testing import CliRunner
    >>> "status" in CliRunner().invoke(app, ["--help"]).output
    True
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from fullon_cache.config import get_settings
from fullon_cache.connection import ConnectionPool
from fullon_cache.embedded import EmbeddedServer
from fullon_cache.exceptions import CacheConnectionError
from fullon_cache.keys import CacheKey, unescape
from fullon_cache.models import Tick
from fullon_cache.orders_cache import OrdersCache
from fullon_cache.process_cache import ProcessCache
from fullon_cache.tick_cache import TickCache

__all__ = ["app", "main"]

app = typer.Typer(
    name="fullon-cache",
    help="Inspect a fullon_cache deployment, or run a local server.",
    no_args_is_help=True,
    add_completion=False,
)

_ORDER_KINDS = {CacheKey.ORDER_QUEUE.value, CacheKey.ORDER_PROCESSING.value}
_ORDER_KINDS |= {CacheKey.ORDER_DEAD.value}
_KINDS = {kind.value for kind in CacheKey}


def _console() -> Console:
    return Console(width=120)


def _run(work: Callable[[Console], Awaitable[int]]) -> None:
    """Run ``work`` in a new loop, close the loop's connections, exit with its code."""

    async def wrapper() -> int:
        try:
            return await work(_console())
        finally:
            await ConnectionPool.close_loop()

    raise typer.Exit(asyncio.run(wrapper()))


def _tag(relative: str) -> str:
    """The hash-tag identifier of a relative key ``kind:{tag}...``, unescaped.

    Example:
        >>> _tag("order_queue:{binance%3Aspot}")
        'binance:spot'
    """
    rest = relative.partition(":")[2]
    return unescape(rest[1 : rest.index("}")])


def _text(value: Any) -> str:
    return "" if value is None else str(value)


async def _status(console: Console) -> int:
    settings = get_settings()
    processes = ProcessCache(settings=settings)
    try:
        await processes.ping()
    except CacheConnectionError as exc:
        console.print(f"[bold red]down[/]: {exc}")
        return 1
    health = await processes.get_system_health()
    redis_info = health["redis"]
    style = "green" if health["status"] == "healthy" else "yellow"
    console.print(
        f"health: [bold {style}]{health['status']}[/]  namespace {settings.namespace!r}  "
        f"redis {redis_info.get('redis_version', '?')} ({redis_info.get('mode', '?')})  "
        f"processes {health['active_processes']}/{health['total_processes']} active"
    )

    table = Table(title="processes")
    for column in ("type", "component", "status", "message", "heartbeat"):
        table.add_column(column)
    for record in await processes.get_active_processes(since_minutes=24 * 60):
        table.add_row(
            _text(record["process_type"]),
            _text(record["component"]),
            _text(record["status"]),
            _text(record["message"]),
            _text(record["heartbeat"]),
        )
    console.print(table)

    counts: Counter[str] = Counter()
    exchanges: set[str] = set()
    for key in await processes.get_keys("*"):
        relative = processes.keys.relative(key)
        kind = relative.split(":", 1)[0]
        counts[kind if kind in _KINDS else "other"] += 1
        if kind in _ORDER_KINDS:
            exchanges.add(_tag(relative))

    queues = Table(title="order queues")
    for column in ("exchange", "queued", "processing", "dead"):
        queues.add_column(column)
    orders = OrdersCache(settings=settings)
    for exchange in sorted(exchanges):
        stats = await orders.get_queue_stats(exchange)
        queues.add_row(exchange, *(str(stats[name]) for name in ("queued", "processing", "dead")))
    console.print(queues)

    keys = Table(title="keys per cache type")
    keys.add_column("type")
    keys.add_column("keys", justify="right")
    for kind, count in sorted(counts.items()):
        keys.add_row(kind, str(count))
    console.print(keys)
    return 0


@app.command()
def status() -> None:
    """Health, processes, order queues and key counts of the configured namespace."""
    _run(_status)


def _ticker_table(exchange: str, rows: dict[str, Tick]) -> Table:
    table = Table(title=f"{exchange} tickers")
    for column in ("symbol", "price", "bid", "ask", "volume"):
        table.add_column(column, justify="left" if column == "symbol" else "right")
    for symbol in sorted(rows):
        tick = rows[symbol]
        table.add_row(
            symbol, f"{tick.price:g}", _text(tick.bid), _text(tick.ask), f"{tick.volume:g}"
        )
    return table


async def _tickers(
    console: Console,
    exchange: str,
    symbols: list[str],
    count: int | None,
    seconds: float | None,
) -> int:
    cache = TickCache()
    stream = cache.stream_ticker_updates(exchange, symbols or None, snapshot=True)
    rows: dict[str, Tick] = {}
    live = Live(_ticker_table(exchange, rows), console=console, auto_refresh=False)

    async def consume() -> None:
        while count is None or len(updates) < count:
            tick = await anext(stream)
            updates.append(tick)
            rows[tick.symbol] = tick
            live.update(_ticker_table(exchange, rows), refresh=True)

    updates: list[Tick] = []
    with live:
        # The consumer is a task of its own, cancelled when time is up: the cancellation
        # ends with that task whatever the stream was waiting for (even mid-subscribe).
        task = asyncio.create_task(consume())
        try:
            await asyncio.wait({task}, timeout=seconds)
        finally:
            task.cancel()
            await asyncio.wait({task})
            await stream.aclose()
        if not task.cancelled():
            task.result()  # the consumer's error, if it failed
    seen = len(updates)
    console.print(f"{seen} updates")
    return 0


@app.command()
def tickers(
    exchange: Annotated[str, typer.Argument(help="exchange name, e.g. binance")],
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", "-s", help="only these symbols")
    ] = None,
    count: Annotated[int | None, typer.Option(help="stop after N updates")] = None,
    seconds: Annotated[float | None, typer.Option(help="stop after S seconds")] = None,
) -> None:
    """A live table of the exchange's prices (stored ones first, then every update)."""
    _run(lambda console: _tickers(console, exchange, symbol or [], count, seconds))


async def _queue(
    console: Console, exchange: str, replay: bool, limit: int | None, purge: bool
) -> int:
    orders = OrdersCache()
    if replay:
        console.print(f"replayed {await orders.replay_dead_letters(exchange, limit)} dead letters")
    if purge:
        console.print(f"discarded {await orders.delete_dead_letters(exchange)} dead letters")
    stats = await orders.get_queue_stats(exchange)
    console.print(
        f"{exchange}: {stats['queued']} queued, {stats['processing']} processing, "
        f"{stats['dead']} dead"
    )
    table = Table(title=f"{exchange} dead letters (oldest first)")
    for column in ("id", "order", "symbol", "side", "deliveries", "failures", "error"):
        table.add_column(column)
    for letter in await orders.get_dead_letters(exchange):
        order = letter.order
        table.add_row(
            letter.id,
            _text(order.ex_order_id or order.order_id),
            _text(order.symbol),
            _text(order.side),
            str(letter.deliveries),
            str(letter.failures),
            letter.error,
        )
    console.print(table)
    return 0


@app.command()
def queue(
    exchange: Annotated[str, typer.Argument(help="exchange name, e.g. binance")],
    replay: Annotated[bool, typer.Option(help="queue the dead letters again")] = False,
    limit: Annotated[int | None, typer.Option(help="replay at most N")] = None,
    purge: Annotated[bool, typer.Option(help="discard the dead letters")] = False,
) -> None:
    """An exchange's order queue and dead letters; replay or purge the dead letters."""
    _run(lambda console: _queue(console, exchange, replay, limit, purge))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context) -> None:
    """Benchmark the hot paths next to raw redis-py (``fullon_cache.bench``; its options
    pass through: ``fullon-cache bench --ops 500 --only get_price``)."""
    from fullon_cache import bench as benchmark

    raise typer.Exit(benchmark.main(ctx.args))


@app.command()
def server(
    port: Annotated[int | None, typer.Option(help="port (default: a free one)")] = None,
    seconds: Annotated[
        float | None, typer.Option(help="stop after S seconds (default: on Ctrl-C)")
    ] = None,
) -> None:
    """Run a private Redis-compatible server on 127.0.0.1 until Ctrl-C."""
    console = _console()
    embedded = EmbeddedServer(port)
    embedded.start()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            console.print(f"server running (pid {embedded.pid}); in another shell:")
            console.print(f"export REDIS_HOST={embedded.host}", highlight=False)
            console.print(f"export REDIS_PORT={embedded.port}", highlight=False)
            console.print("Ctrl-C stops it.")
            deadline = None if seconds is None else time.monotonic() + seconds
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        embedded.stop()
        console.print("server stopped")


def main() -> None:
    """Entry point of the ``fullon-cache`` script."""
    app()


if __name__ == "__main__":
    main()
