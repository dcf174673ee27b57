"""AsyncCache: a strategy's orders and positions in memory, written behind to Redis.

One :class:`AsyncCache` serves one strategy of one user (run one live instance per
``(strategy_id, user_id)``: two writers would overwrite each other's entries). Reads and
writes are served from memory; changed entries are *dirty* until a sync writes them.

Write-behind:

* A sync writes only the dirty entries, all in **one** MULTI/EXEC pipeline: the hashes
  ``strategy_orders`` (order_id -> JSON Order) and ``strategy_positions`` (symbol -> JSON
  Position) share the strategy's hash tag, so the transaction works on Redis Cluster too.
* Syncs run in a background task: ``idle_flush`` seconds after the last write (so a
  strategy that goes quiet is persisted shortly after), at once when ``flush_threshold``
  entries are dirty, every ``sync_interval`` seconds while writes keep coming, on
  :meth:`AsyncCache.sync` and on :meth:`AsyncCache.close`.
* A failed sync (Redis down) is logged and drops nothing: every entry stays dirty, and
  an entry changed while a sync is in flight keeps its newest value (it stays dirty
  unless the value written is the current one). The background task retries with an
  exponential back-off from ``idle_flush`` up to ``sync_interval``.
* Memory is bounded by expiry: every ``sync_interval`` seconds, entries not read or
  written for ``expire_time`` seconds are evicted from memory (never from Redis) if they
  are clean. Open orders are never evicted: memory always holds every open order of the
  strategy, so :meth:`AsyncCache.get_open_orders` and status validation need no Redis
  round trip. Evicted entries are read back from Redis on demand.
* :meth:`AsyncCache.start` loads the strategy's open orders from Redis, so an instance
  restarted after a crash finds them again; other orders and positions load lazily.

``task_manager`` protocol: None (``asyncio.create_task``), an object with a
``create_task(coroutine)`` method, or a callable taking the coroutine. Whatever it is
must run the coroutine on the running event loop; the cache never cancels it, but asks
it to stop and waits for it in :meth:`AsyncCache.close`.

Example:
    >>> # async with AsyncCache("grid-1", "user-7") as cache:
    >>> #     cache.order_initialized(Order(order_id="o1", symbol="BTC/USDT", side="buy"))
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

import msgspec

from fullon_cache.base_cache import BaseCache
from fullon_cache.codec import as_model, decode, encode
from fullon_cache.config import Settings
from fullon_cache.connection import Connection, guard, guarded
from fullon_cache.models import Order, Position
from fullon_cache.positions import apply_fill

__all__ = ["OPEN_STATUSES", "STATUS_TRANSITIONS", "TERMINAL_STATUSES", "AsyncCache"]

OPEN_STATUSES = frozenset({"open", "pending", "new", "partially_filled"})
"""Statuses of a live order (kept in memory until it finishes)."""

TERMINAL_STATUSES = frozenset({"filled", "canceled", "cancelled", "rejected", "expired"})
"""Statuses an order never leaves."""

_FINISHED = frozenset(TERMINAL_STATUSES - {"filled"})
STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"pending", "open", "new", "partially_filled", "filled"} | _FINISHED),
    "new": frozenset({"new", "open", "partially_filled", "filled"} | _FINISHED),
    "open": frozenset({"open", "partially_filled", "filled"} | _FINISHED),
    "partially_filled": frozenset(
        {"partially_filled", "filled", "canceled", "cancelled", "expired"}
    ),
    **{status: frozenset({status}) for status in TERMINAL_STATUSES},
}
"""Allowed ``old -> new`` status changes; 'canceled' and 'cancelled' are the same."""

T = TypeVar("T")


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T
    touched: float  # time.monotonic() of the last read or write
    version: int = 0  # bumped by every change
    synced: int = 0  # the version last written to Redis

    @property
    def dirty(self) -> bool:
        return self.version != self.synced


def _identifier(name: str, value: object) -> str:
    if value is None:
        raise ValueError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"{name} must be a str or an int, got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise ValueError(f"{name} must not be empty")
    return text


def _status(value: object) -> str:
    if value is None:
        return "open"
    if not isinstance(value, str):
        raise TypeError(f"order status must be a str, got {type(value).__name__}")
    status = value.strip().lower()
    if status not in STATUS_TRANSITIONS:
        raise ValueError(f"unknown order status {value!r}")
    return status


def _same_status(old: str, new: str) -> bool:
    return old == new or {old, new} == {"canceled", "cancelled"}


def _positive(name: str, value: object, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        kind = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


class AsyncCache(BaseCache):
    """Write-behind cache of one strategy's orders and positions (see the module doc).

    Args:
        strategy_id, user_id: the owner (str or int, not empty).
        task_manager: runs the background sync task (None: ``asyncio.create_task``; or
            an object with ``create_task(coro)``; or a callable taking the coroutine).
        sync_interval: seconds between syncs while writes keep coming, and between
            expiry sweeps; also the cap of the retry back-off.
        expire_time: seconds an unused clean entry stays in memory.
        idle_flush: seconds after the last write at which a sync runs.
        flush_threshold: number of dirty entries that triggers a sync at once.

    Example:
        >>> cache.order_initialized(Order(order_id="o1", symbol="BTC/USDT", side="buy",
        ...                               exchange="binance", volume=1.0, price=100.0))
        >>> cache.dirty_count
        1
        >>> await cache.sync()
        1
        >>> (await cache.get_order("o1")).status
        'open'
    """

    component = "async"

    def __init__(
        self,
        strategy_id: str | int,
        user_id: str | int,
        task_manager: Any = None,
        sync_interval: float = 60,
        expire_time: float = 3600,
        *,
        idle_flush: float = 1.0,
        flush_threshold: int = 100,
        settings: Settings | None = None,
        connection: Connection | None = None,
    ) -> None:
        self.strategy_id = _identifier("strategy_id", strategy_id)
        self.user_id = _identifier("user_id", user_id)
        if task_manager is not None and not (
            callable(getattr(task_manager, "create_task", None)) or callable(task_manager)
        ):
            raise TypeError("task_manager must have create_task(coro) or be callable")
        self.sync_interval = _positive("sync_interval", sync_interval)
        self.expire_time = _positive("expire_time", expire_time)
        self.idle_flush = _positive("idle_flush", idle_flush)
        self.flush_threshold = int(_positive("flush_threshold", flush_threshold, integer=True))
        super().__init__(settings=settings, connection=connection)
        self._task_manager = task_manager
        self._orders_key = self.keys.strategy_orders(self.strategy_id, self.user_id)
        self._positions_key = self.keys.strategy_positions(self.strategy_id, self.user_id)
        self._orders: dict[str, _Entry[Order]] = {}
        self._positions: dict[str, _Entry[Position]] = {}
        self._dirty_orders: set[str] = set()
        self._dirty_positions: set[str] = set()
        self._sync_lock = asyncio.Lock()
        self._kick = asyncio.Event()
        self._done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._running = False
        self._stopping = False
        self._failures = 0
        self._last_write = 0.0
        self._retry_at = 0.0
        self._next_sweep = 0.0

    # -- lifecycle -------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def start(self) -> None:
        """Load the strategy's open orders from Redis and start the background sync
        task. Idempotent; raises RuntimeError after :meth:`close`.

        Example:
            >>> await cache.start()
            >>> await cache.get_open_orders()
            set()
        """
        if self.closed:
            raise RuntimeError("AsyncCache is closed")
        if self._started:
            return
        await self._load_open_orders()
        self._started = True
        self._next_sweep = time.monotonic() + self.sync_interval
        coro = self._run()
        manager = self._task_manager
        if manager is None:
            self._task = asyncio.get_running_loop().create_task(coro)
        elif callable(getattr(manager, "create_task", None)):
            manager.create_task(coro)
        else:
            manager(coro)

    async def close(self) -> None:
        """Stop the background task and write every dirty entry (final sync).

        Idempotent. If Redis cannot be reached the final sync raises
        CacheConnectionError, the entries stay dirty in memory and the cache stays
        open: call ``close()`` (or :meth:`sync`) again once Redis is back.

        Example:
            >>> cache.order_initialized(Order(order_id="o2", symbol="ETH/USDT", side="sell"))
            >>> await cache.close()
            >>> cache.dirty_count, cache.closed
            (0, True)
            >>> await cache.close()
        """
        if self.closed:
            return
        self._stopping = True
        self._kick.set()
        if self._running:
            await self._done.wait()
        await self.sync()
        self.closed = True

    @property
    def dirty_count(self) -> int:
        """Number of entries changed in memory and not yet written to Redis.

        Example:
            >>> cache.dirty_count
            0
        """
        return len(self._dirty_orders) + len(self._dirty_positions)

    # -- orders ----------------------------------------------------------------------
    def order_initialized(self, order: Any) -> None:
        """Record a new order in memory (dirty until the next sync).

        ``order`` is an :class:`Order`, a mapping or an object with ``to_dict()``; it is
        copied. It needs an ``order_id`` and a ``symbol``; a missing status means
        'open'. Initializing a known order again with the same data is a no-op, with
        other data a ValueError (use :meth:`order_status_update`).

        Example:
            >>> cache.order_initialized({"order_id": 9, "symbol": "BTC/USDT", "side": "buy"})
            >>> (await cache.get_order(9)).status
            'open'
        """
        self._check_open()
        record = self._order_record(order)
        order_id = str(record.order_id)
        known = self._orders.get(order_id)
        if known is not None:
            if known.value == record:
                return
            raise ValueError(f"order {order_id} is already initialized")
        self._put_order(order_id, record)

    def order_status_update(self, order: Any) -> None:
        """Update a known order: fields of ``order`` that are not None replace the
        stored ones (dirty until the next sync).

        Impossible status changes raise ValueError (see :data:`STATUS_TRANSITIONS`:
        open/pending/new may become partially_filled, filled, canceled, cancelled,
        rejected or expired; partially_filled may become filled, canceled or expired;
        finished orders stay finished; the same status again is accepted), and so does
        a ``final_volume`` that goes down. An order not in memory (never seen here, or
        finished and evicted) is recorded as given.

        Example:
            >>> cache.order_initialized(Order(order_id="o3", symbol="BTC/USDT"))
            >>> cache.order_status_update(Order(order_id="o3", status="filled",
            ...                                 final_volume=1.0))
            >>> (await cache.get_order("o3")).status
            'filled'
            >>> cache.order_status_update(Order(order_id="o3", status="open"))
            Traceback (most recent call last):
            ...
            ValueError: order o3 cannot go from 'filled' to 'open'
        """
        self._check_open()
        update = as_model(order, Order)
        order_id = _identifier("order_id", update.order_id)
        known = self._orders.get(order_id)
        if known is None:
            self._put_order(order_id, self._order_record(update))
            return
        old = known.value
        changes = {
            name: getattr(update, name)
            for name in update.__struct_fields__
            if getattr(update, name) is not None and name != "order_id"
        }
        old_status = _status(old.status)
        new_status = _status(changes.get("status", old_status))
        if new_status not in STATUS_TRANSITIONS[old_status] and not _same_status(
            old_status, new_status
        ):
            raise ValueError(f"order {order_id} cannot go from {old_status!r} to {new_status!r}")
        final = changes.get("final_volume")
        if final is not None and old.final_volume is not None and final < old.final_volume:
            raise ValueError(
                f"order {order_id} final_volume cannot go down ({old.final_volume} -> {final})"
            )
        changes["status"] = new_status
        self._put_order(order_id, msgspec.structs.replace(old, **changes))

    @guarded
    async def get_order(self, order_id: str | int) -> Order | None:
        """The order from memory, else from Redis (then kept in memory), else None.

        Example:
            >>> await cache.get_order("nope") is None
            True
        """
        key = _identifier("order_id", order_id)
        entry = self._orders.get(key)
        if entry is None:
            raw = await self.redis.hget(self._orders_key, key)
            entry = self._orders.get(key)  # a write may have happened meanwhile
            if entry is None:
                if raw is None:
                    return None
                entry = self._orders[key] = _Entry(decode(raw, Order), time.monotonic())
        entry.touched = time.monotonic()
        return msgspec.structs.replace(entry.value)

    @guarded
    async def get_symbol_orders(self, symbol: str, in_mem: bool = True) -> set[str]:
        """Ids of the strategy's orders of ``symbol``: those in memory (``in_mem``,
        the default: every open order and recent ones), or every stored order.

        Example:
            >>> cache.order_initialized(Order(order_id="a", symbol="SOL/USDT"))
            >>> await cache.get_symbol_orders("SOL/USDT")
            {'a'}
        """
        _identifier("symbol", symbol)
        found = {key for key, entry in self._orders.items() if entry.value.symbol == symbol}
        if not in_mem:
            async for key, raw in self.redis.hscan_iter(self._orders_key, count=500):
                if decode(raw, Order).symbol == symbol:
                    found.add(key.decode())
        return found

    async def get_open_orders(
        self, symbol: str | None = None, exchange: str | int | None = None
    ) -> set[str]:
        """Ids of the strategy's open orders (open, pending, new, partially_filled),
        optionally only of ``symbol`` and of ``exchange`` (its name or ex_id).

        Example:
            >>> cache.order_initialized(Order(order_id="b", symbol="BTC/USDT", exchange="kraken"))
            >>> await cache.get_open_orders(symbol="BTC/USDT", exchange="kraken")
            {'b'}
            >>> await cache.get_open_orders(exchange="binance")
            set()
        """
        if symbol is not None:
            _identifier("symbol", symbol)
        wanted = None if exchange is None else _identifier("exchange", exchange)
        found: set[str] = set()
        for key, entry in self._orders.items():
            order = entry.value
            if order.status not in OPEN_STATUSES:
                continue
            if symbol is not None and order.symbol != symbol:
                continue
            if wanted is not None and wanted not in (order.exchange, str(order.ex_id)):
                continue
            found.add(key)
        return found

    # -- positions -------------------------------------------------------------------
    async def apply_position(self, order: Any, *, fee: float | None = None) -> Position:
        """Apply the order's fill to its symbol's position and return the new position.

        The fill is ``order.final_volume`` (else ``order.volume``) at ``order.price`` on
        ``order.side`` ('buy'/'sell'); the exchange is ``order.ex_id`` (else
        ``order.exchange``). The fee is the ``fee`` argument, else a ``fee`` attribute or
        key of ``order``, else 0 (quote currency; negative is a rebate). Call it once per
        fill. The arithmetic (averaging, reductions, flips, realized PnL) is
        :func:`fullon_cache.positions.apply_fill`. Bad input raises ValueError/TypeError
        and changes nothing.

        Example:
            >>> fill = Order(order_id="f1", symbol="BTC/USDT", side="buy", ex_id=1,
            ...              final_volume=2.0, price=100.0)
            >>> (await cache.apply_position(fill, fee=0.2)).cost
            200.0
            >>> p = await cache.apply_position(Order(order_id="f2", symbol="BTC/USDT",
            ...     side="sell", exchange="binance", volume=3.0, price=90.0))
            >>> p.side, p.volume, p.price, p.realized_pnl, p.fee
            ('short', 1.0, 90.0, -20.0, 0.2)
        """
        self._check_open()
        fill = as_model(order, Order)
        if fee is None:
            fee = order.get("fee") if isinstance(order, Mapping) else getattr(order, "fee", None)
        volume = fill.final_volume if fill.final_volume is not None else fill.volume
        if volume is None or fill.price is None:
            raise ValueError("a fill needs a volume (final_volume or volume) and a price")
        ex_id = fill.exchange if fill.ex_id is None else str(fill.ex_id)
        if ex_id is None:
            raise ValueError("a fill needs ex_id or exchange")
        symbol = _identifier("symbol", fill.symbol)
        side = fill.side or ""
        fee = 0.0 if fee is None else fee
        # validate the fill before any round trip: bad input fails the same with Redis down
        apply_fill(
            None, symbol=symbol, ex_id=ex_id, side=side, volume=volume, price=fill.price, fee=fee
        )
        entry = await self._position_entry(symbol)
        # no await from here on: the position read above cannot be changed meanwhile
        position = apply_fill(
            None if entry is None else entry.value,
            symbol=symbol,
            ex_id=ex_id,
            side=side,
            volume=volume,
            price=fill.price,
            fee=fee,
        )
        self._put(self._positions, self._dirty_positions, symbol, position)
        return msgspec.structs.replace(position)

    async def get_position(self, symbol: str) -> Position | None:
        """The strategy's position in ``symbol`` (memory, else Redis), or None.

        Example:
            >>> await cache.get_position("DOGE/USDT") is None
            True
        """
        entry = await self._position_entry(_identifier("symbol", symbol))
        return None if entry is None else msgspec.structs.replace(entry.value)

    # -- write-behind ----------------------------------------------------------------
    async def sync(self) -> int:
        """Write every dirty entry to Redis in one MULTI/EXEC; return how many were
        written (0 without a round trip when nothing is dirty).

        Raises CacheConnectionError when Redis cannot be reached; nothing is dropped.

        Example:
            >>> await cache.sync()
            0
        """
        async with self._sync_lock:
            orders = self._snapshot(self._orders, self._dirty_orders)
            positions = self._snapshot(self._positions, self._dirty_positions)
            if not orders and not positions:
                return 0
            async with (
                guard(self._connection, "AsyncCache.sync"),
                self.redis.pipeline(transaction=True) as pipe,
            ):
                if orders:
                    pipe.hset(self._orders_key, mapping={k: v for k, _, v in orders})
                if positions:
                    pipe.hset(self._positions_key, mapping={k: v for k, _, v in positions})
                await pipe.execute()
            self._mark_synced(self._orders, self._dirty_orders, orders)
            self._mark_synced(self._positions, self._dirty_positions, positions)
            return len(orders) + len(positions)

    def evict_expired(self) -> int:
        """Drop from memory (not from Redis) the clean entries unused for
        ``expire_time`` seconds, except open orders; return how many were dropped.
        The background task calls it every ``sync_interval`` seconds.

        Example:
            >>> cache.evict_expired()
            0
        """
        horizon = time.monotonic() - self.expire_time
        stale_orders = [
            key
            for key, entry in self._orders.items()
            if not entry.dirty
            and entry.touched <= horizon
            and entry.value.status not in OPEN_STATUSES
        ]
        stale_positions = [
            key
            for key, entry in self._positions.items()
            if not entry.dirty and entry.touched <= horizon
        ]
        for key in stale_orders:
            del self._orders[key]
        for key in stale_positions:
            del self._positions[key]
        return len(stale_orders) + len(stale_positions)

    # -- internals -------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("AsyncCache is closed")

    @staticmethod
    def _order_record(order: Any) -> Order:
        record = msgspec.structs.replace(as_model(order, Order))
        _identifier("order_id", record.order_id)
        _identifier("symbol", record.symbol)
        record.status = _status(record.status)
        return record

    def _put_order(self, order_id: str, record: Order) -> None:
        self._put(self._orders, self._dirty_orders, order_id, record)

    def _put(self, table: dict[str, _Entry[T]], dirty: set[str], key: str, value: T) -> None:
        now = time.monotonic()
        entry = table.get(key)
        if entry is None:
            entry = table[key] = _Entry(value, now, version=1)
        else:
            entry.value, entry.touched, entry.version = value, now, entry.version + 1
        self._last_write = now
        dirty.add(key)
        if len(dirty) == 1 or self.dirty_count == self.flush_threshold:
            self._kick.set()

    @guarded
    async def _position_entry(self, symbol: str) -> _Entry[Position] | None:
        entry = self._positions.get(symbol)
        if entry is None:
            raw = await self.redis.hget(self._positions_key, symbol)
            entry = self._positions.get(symbol)  # a write may have happened meanwhile
            if entry is None:
                if raw is None:
                    return None
                entry = self._positions[symbol] = _Entry(decode(raw, Position), 0.0)
        entry.touched = time.monotonic()
        return entry

    @guarded
    async def _load_open_orders(self) -> None:
        async for key, raw in self.redis.hscan_iter(self._orders_key, count=500):
            order = decode(raw, Order)
            order_id = key.decode()
            if order.status in OPEN_STATUSES and order_id not in self._orders:
                self._orders[order_id] = _Entry(order, time.monotonic())

    @staticmethod
    def _snapshot(table: dict[str, _Entry[T]], dirty: set[str]) -> list[tuple[str, int, bytes]]:
        return [(key, table[key].version, encode(table[key].value)) for key in sorted(dirty)]

    @staticmethod
    def _mark_synced(
        table: dict[str, _Entry[T]], dirty: set[str], written: list[tuple[str, int, bytes]]
    ) -> None:
        for key, version, _ in written:
            entry = table[key]
            entry.synced = max(entry.synced, version)
            if not entry.dirty:
                dirty.discard(key)

    def _sync_due(self, now: float) -> float:
        """Seconds until the next sync should run (0: now); inf when nothing is dirty."""
        if not self.dirty_count:
            return math.inf
        if self.dirty_count >= self.flush_threshold:
            due = now
        else:
            due = min(self._last_write + self.idle_flush, self._next_sweep)
        return max(due, self._retry_at) - now

    async def _run(self) -> None:
        self._running = True
        try:
            while not self._stopping:
                now = time.monotonic()
                wait = min(self._sync_due(now), self._next_sweep - now)
                if wait > 0:
                    # a timer that sets the event: no task cancellation involved
                    timer = asyncio.get_running_loop().call_later(wait, self._kick.set)
                    try:
                        await self._kick.wait()
                    finally:
                        timer.cancel()
                self._kick.clear()
                if self._stopping:
                    break
                now = time.monotonic()
                if self._sync_due(now) <= 0:
                    await self._background_sync(now)
                if now >= self._next_sweep:
                    self._next_sweep = now + self.sync_interval
                    self.evict_expired()
        finally:
            self._done.set()

    async def _background_sync(self, now: float) -> None:
        try:
            await self.sync()
        except Exception as exc:
            self._failures += 1
            backoff = min(self.sync_interval, self.idle_flush * 2 ** min(self._failures, 30))
            self._retry_at = now + backoff
            self.logger.warning(
                "sync of strategy %s user %s failed (%s); %d dirty entries kept, retry in %.3gs",
                self.strategy_id,
                self.user_id,
                exc,
                self.dirty_count,
                backoff,
            )
        else:
            self._failures = 0
            self._retry_at = 0.0
