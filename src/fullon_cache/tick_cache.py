"""TickCache: the latest ticker of every symbol of every exchange, with pub/sub.

Storage (shared with :class:`~fullon_cache.SymbolCache`, which deletes a symbol's
tickers with HDEL):

* ``keys.tickers(exchange)`` — hash, field = the symbol exactly as given
  (``"BTC/USDT"``), value = ``codec.encode(Tick)``;
* ``keys.tick_exchanges()`` — set of the exchanges that have (or had) tickers;
* ``keys.tick_channel(exchange, symbol)`` — channel on which every stored tick is
  published, the message being the same JSON as the stored value.

Writing a tick is one Lua script (one round trip, atomic): HSET + PUBLISH, and the
exchange index. On one server the script also SADDs the exchange to the index set.
On Redis Cluster the index set lives in another slot than the exchange's hash, so the
script instead checks a marker key in the hash's own slot (``keys.tick_indexed``) and
reports exchanges not yet indexed; only then (once per exchange) the client SADDs the
exchange and sets the marker, in that order, so a crash in between only repeats the
SADD on the next tick. Every later tick of that exchange is one round trip.

Freshness: every tick carries ``time`` (epoch seconds). :meth:`TickCache.get_price`
treats a tick older than ``FULLON_CACHE_TICK_MAX_AGE`` (default 60 s) as unknown and
returns 0.0, so a bot never trades on a dead feed unknowingly; pass ``max_age=math.inf``
to accept any age. :meth:`TickCache.get_ticker` returns the stored tick whatever its age
unless ``max_age`` is given (``None`` = the setting): dashboards show it with its time,
and :meth:`TickCache.is_stale` tells a bot whether to trust it.

Example:
    >>> await cache.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=2.0))
    True
    >>> await cache.get_price("BTC/USDT", "binance")
    2.0
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from decimal import ROUND_HALF_UP, Decimal
from types import TracebackType
from typing import Any, ClassVar, Self, cast

from fullon_cache.base_cache import BaseCache
from fullon_cache.codec import as_model, decode, encode
from fullon_cache.config import Settings
from fullon_cache.connection import Connection, guard, guarded
from fullon_cache.exceptions import CacheConnectionError, CacheDataError
from fullon_cache.keys import escape
from fullon_cache.models import Symbol, Tick
from fullon_cache.near_cache import NearCache, near_for

__all__ = ["TickCache", "TickSubscription"]

TickCallback = Callable[[Tick], Awaitable[None] | None]

# KEYS: (tickers hash, index marker) per exchange, then the index set on one server only.
# ARGV: per exchange: name, count, then count x (symbol, payload, channel).
# Returns the exchanges whose marker is missing (cluster only: the client indexes them).
_SET_TICKS = """
local groups = math.floor(#KEYS / 2)
local index = nil
if #KEYS % 2 == 1 then index = KEYS[#KEYS] end
local unindexed = {}
local a = 1
for g = 1, groups do
  local hash = KEYS[2 * g - 1]
  local exchange = ARGV[a]
  local count = tonumber(ARGV[a + 1])
  a = a + 2
  for _ = 1, count do
    redis.call('HSET', hash, ARGV[a], ARGV[a + 1])
    redis.call('PUBLISH', ARGV[a + 2], ARGV[a + 1])
    a = a + 3
  end
  if index then
    redis.call('SADD', index, exchange)
  elseif redis.call('EXISTS', KEYS[2 * g]) == 0 then
    unindexed[#unindexed + 1] = exchange
  end
end
return unindexed
"""

_DATA_MESSAGES = ("message", "pmessage")


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def _symbol(value: object) -> tuple[str, str | None]:
    """(symbol name, exchange of a Symbol model or None) from a str or a Symbol."""
    if isinstance(value, str):
        return _text("symbol", value), None
    model = as_model(value, Symbol)
    return model.symbol, model.exchange_name


def _max_age(value: float | None, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"max_age must be a number of seconds, got {type(value).__name__}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"max_age must be >= 0, got {value!r}")
    return float(value)


async def _listen(
    conn: Connection,
    operation: str,
    logger: logging.Logger,
    *,
    channels: Sequence[str] = (),
    pattern: str | None = None,
    snapshot: Callable[[], Awaitable[list[bytes]]] | None = None,
    on_ready: Callable[[], None] | None = None,
    reconnect: bool = True,
) -> AsyncGenerator[bytes, None]:
    """Payloads published on ``channels`` (or ``pattern``), in publication order.

    After every (re)subscription is confirmed, ``on_ready`` runs and the payloads of
    ``snapshot()`` are yielded first. The first subscription failing raises
    CacheConnectionError; once subscribed, a lost connection is retried forever with
    capped exponential back-off when ``reconnect`` (messages published while
    disconnected are lost: use the snapshot to catch up).
    """
    expected = 1 if pattern is not None else len(channels)
    settings = conn.settings
    established = False
    failures = 0
    while True:
        try:
            async with guard(conn, operation):
                pubsub = await conn.pubsub()
                try:
                    if pattern is not None:
                        await pubsub.psubscribe(pattern)
                    else:
                        await pubsub.subscribe(*channels)
                    messages = pubsub.listen()
                    while True:
                        message = await anext(messages)
                        if message["type"] in _DATA_MESSAGES:
                            yield message["data"]
                        elif message["data"] == expected:  # every (p)subscribe confirmed
                            established, failures = True, 0
                            if on_ready is not None:
                                on_ready()
                            if snapshot is not None:
                                for raw in await snapshot():
                                    yield raw
                finally:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
        except CacheConnectionError as exc:
            if not (reconnect and established):
                raise
            failures += 1
            delay = min(settings.retry_backoff_cap, settings.retry_backoff * 2 ** min(failures, 16))
            logger.warning("%s: subscription lost (%s); resubscribing", operation, exc)
            await asyncio.sleep(delay)


class TickSubscription:
    """A running callback subscription made by :meth:`TickCache.subscribe`.

    It is subscribed when ``subscribe`` returns; :meth:`close` (or leaving
    ``async with``) stops it.

    Example:
        >>> seen = []
        >>> sub = await cache.subscribe("binance", ["BTC/USDT"], seen.append)
        >>> sub.active
        True
        >>> await sub.close()
        >>> sub.active
        False
    """

    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task

    @property
    def active(self) -> bool:
        """True while the subscription runs."""
        return not self._task.done()

    async def close(self) -> None:
        """Stop the subscription and wait until it has unsubscribed; idempotent.

        Example:
            >>> sub = await cache.subscribe("binance", "BTC/USDT", print)
            >>> await sub.close(); await sub.close()
        """
        self._task.cancel()
        await asyncio.wait({self._task})

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _pump(
    stream: AsyncGenerator[Tick, None], callback: TickCallback, logger: logging.Logger
) -> None:
    async with contextlib.aclosing(stream):
        async for tick in stream:
            try:
                result = callback(tick)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("tick callback failed for %s %s", tick.exchange, tick.symbol)


class TickCache(BaseCache):
    """The latest tick of each symbol per exchange, published to subscribers.

    * one round trip per :meth:`set_ticker` (a Lua script: HSET + PUBLISH + index),
      one per batch in :meth:`set_tickers`;
    * reads by symbol (str or :class:`Symbol`), with or without an exchange;
    * real time: :meth:`stream_ticker_updates` (async iterator) and :meth:`subscribe`
      (callback), both resubscribing after a lost connection;
    * staleness: :meth:`is_stale` and ``max_age=`` on reads (see the module docs);
    * ``near_cache=True`` (or a :class:`~fullon_cache.near_cache.NearCache`): reads of
      one exchange's ticker are served in process until the server invalidates them.

    Example:
        >>> await cache.set_ticker(Tick(symbol="ETH/USDT", exchange="kraken", price=3000.0))
        True
        >>> (await cache.get_ticker("ETH/USDT", "kraken")).price
        3000.0
    """

    component: ClassVar[str] = "tick"

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        connection: Connection | None = None,
        near_cache: bool | NearCache = False,
    ) -> None:
        super().__init__(settings=settings, connection=connection)
        self.near_cache = near_cache

    # -- writes ----------------------------------------------------------------------
    @guarded
    async def set_ticker(self, tick: Tick | Mapping[str, Any] | Any) -> bool:
        """Store a tick and publish it, atomically, in one round trip.

        ``tick`` is a :class:`Tick`, a mapping or an object with ``to_dict()``.
        Returns True once stored.

        Example:
            >>> await cache.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=1.5))
            True
            >>> await cache.get_price("BTC/USDT", "binance")
            1.5
        """
        await self._store([as_model(tick, Tick)])
        return True

    @guarded
    async def set_tickers(self, ticks: Iterable[Tick | Mapping[str, Any] | Any]) -> int:
        """Store and publish a batch of ticks (any exchanges); returns how many.

        Every tick is validated before anything is written. One round trip on one
        server; on a cluster one per exchange of the batch, sent concurrently.

        Example:
            >>> await cache.set_tickers([
            ...     Tick(symbol="BTC/USDT", exchange="binance", price=10.0),
            ...     Tick(symbol="ETH/USDT", exchange="binance", price=2.0),
            ... ])
            2
            >>> [t.symbol for t in await cache.get_tickers("binance")]
            ['BTC/USDT', 'ETH/USDT']
        """
        if isinstance(ticks, (str, bytes, Mapping)) or not isinstance(ticks, Iterable):
            raise TypeError("ticks must be an iterable of ticks")
        models = [as_model(tick, Tick) for tick in ticks]
        if models:
            await self._store(models)
        return len(models)

    async def _store(self, ticks: list[Tick]) -> None:
        groups: dict[str, list[Tick]] = {}
        for tick in ticks:
            groups.setdefault(tick.exchange, []).append(tick)
        script = self._script(_SET_TICKS)
        index = self.keys.tick_exchanges()
        if not self._connection.is_cluster:
            keys: list[str] = []
            args: list[bytes | str | int] = []
            for exchange, group in groups.items():
                keys += self._group_keys(exchange)
                args += self._group_args(exchange, group)
            await script(keys=[*keys, index], args=args)
            self._invalidate(*groups)
            return
        replies = await asyncio.gather(
            *(
                script(keys=self._group_keys(exchange), args=self._group_args(exchange, group))
                for exchange, group in groups.items()
            )
        )
        for reply in replies:
            for raw in reply:
                exchange = cast(bytes, raw).decode()
                await self.redis.sadd(index, exchange)
                await self.redis.set(self.keys.tick_indexed(exchange), b"1")
        self._invalidate(*groups)

    def _invalidate(self, *exchanges: str) -> None:
        near = near_for(self.near_cache, self)
        if near is not None:
            near.invalidate(*(self.keys.tickers(exchange) for exchange in exchanges))

    def _group_keys(self, exchange: str) -> list[str]:
        return [self.keys.tickers(exchange), self.keys.tick_indexed(exchange)]

    def _group_args(self, exchange: str, ticks: list[Tick]) -> list[bytes | str | int]:
        args: list[bytes | str | int] = [exchange, len(ticks)]
        channel = self.keys.tick_channel_prefix(exchange)  # + escape(symbol): tick_channel
        for tick in ticks:
            symbol = tick.symbol
            args += (symbol, encode(tick), channel + escape(symbol))
        return args

    async def update_ticker(
        self,
        exchange: str,
        symbol: str | Symbol | Tick | Mapping[str, Any] | Any,
        tick_data: Mapping[str, Any] | None = None,
    ) -> bool:
        """Store a tick given as ``(exchange, tick)`` or ``(exchange, symbol, tick_data)``.

        ``tick_data`` holds Tick fields (``price`` required; a ccxt-style ``last`` is
        used when ``price`` is missing; ``time`` defaults to now). A symbol or
        exchange inside the data, or a tick of another exchange, that disagrees with
        the arguments is a ValueError. The whole tick is replaced (no merge with the
        stored one). Returns True once stored.

        Example:
            >>> await cache.update_ticker("binance", "BTC/USDT", {"price": 50000.0, "volume": 2.0})
            True
            >>> eth = Tick(symbol="ETH/USDT", exchange="binance", price=3.0)
            >>> await cache.update_ticker("binance", eth)
            True
            >>> [t.price for t in await cache.get_tickers("binance")]
            [50000.0, 3.0]
        """
        exchange = _text("exchange", exchange)
        if tick_data is None:
            tick = as_model(symbol, Tick)
            if tick.exchange != exchange:
                raise ValueError(f"tick is for exchange {tick.exchange!r}, not {exchange!r}")
        else:
            name, _ = _symbol(symbol)
            if not isinstance(tick_data, Mapping):
                raise TypeError(f"tick_data must be a mapping, got {type(tick_data).__name__}")
            data = dict(tick_data)
            for field, expected in (("symbol", name), ("exchange", exchange)):
                if field in data and data[field] != expected:
                    raise ValueError(f"tick_data {field} {data[field]!r} is not {expected!r}")
            if "price" not in data and "last" in data:
                data["price"] = data["last"]
            data.update(symbol=name, exchange=exchange)
            tick = Tick.from_dict(data)
        return await self.set_ticker(tick)

    @guarded
    async def delete_ticker(self, symbol: str | Symbol | Any, exchange: str) -> bool:
        """Delete one ticker; True when it existed.

        Example:
            >>> await cache.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=1.0))
            True
            >>> await cache.delete_ticker("BTC/USDT", "binance")
            True
            >>> await cache.delete_ticker("BTC/USDT", "binance")
            False
        """
        name, _ = _symbol(symbol)
        exchange = _text("exchange", exchange)
        deleted = bool(await self.redis.hdel(self.keys.tickers(exchange), name))
        self._invalidate(exchange)
        return deleted

    # -- reads -----------------------------------------------------------------------
    @guarded
    async def get_ticker(
        self,
        symbol: str | Symbol | Any,
        exchange: str | None = None,
        *,
        max_age: float | None = math.inf,
    ) -> Tick | None:
        """The tick of a symbol, or None.

        ``symbol`` is a str or a :class:`Symbol`; with a Symbol and no ``exchange`` the
        exchange is ``Symbol.exchange_name``. Without any exchange, the freshest tick
        of the symbol across every exchange that has it. A tick older than ``max_age``
        seconds counts as missing (default: any age; ``None`` means
        ``FULLON_CACHE_TICK_MAX_AGE``).

        Example:
            >>> await cache.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=7.0))
            True
            >>> (await cache.get_ticker(Symbol(symbol="BTC/USDT", exchange_name="binance"))).price
            7.0
            >>> await cache.get_ticker("BTC/USDT", exchange="kraken") is None
            True
        """
        name, own_exchange = _symbol(symbol)
        exchange = own_exchange if exchange is None else _text("exchange", exchange)
        limit = _max_age(max_age, self.settings.tick_max_age)
        if exchange is None:
            tick = await self._freshest(name)
        else:
            near = near_for(self.near_cache, self)
            key = self.keys.tickers(exchange)
            if near is None:
                raw = await self.redis.hget(key, name)
            else:
                raw = await near.hget(self.redis, key, name)
            tick = None if raw is None else decode(raw, Tick)
        if tick is None or self.is_stale(tick, limit):
            return None
        return tick

    async def _exchanges(self) -> list[str]:
        members = await self.redis.smembers(self.keys.tick_exchanges())
        return sorted(cast(bytes, member).decode() for member in members)

    async def _freshest(self, symbol: str) -> Tick | None:
        exchanges = await self._exchanges()
        pipe = self.redis.pipeline(transaction=False)
        for exchange in exchanges:
            pipe.hget(self.keys.tickers(exchange), symbol)
        ticks = [decode(raw, Tick) for raw in await pipe.execute() if raw is not None]
        return max(ticks, key=lambda tick: tick.time or 0.0, default=None)

    async def get_price(
        self,
        symbol: str | Symbol | Any,
        exchange: str | None = None,
        *,
        max_age: float | None = None,
        decimals: int | Symbol | None = None,
    ) -> float:
        """The price of a symbol, or 0.0 when unknown or stale.

        Without an exchange (and no ``Symbol.exchange_name``), the price of the
        freshest tick across every exchange that has the symbol. A tick older than
        ``max_age`` seconds (default ``FULLON_CACHE_TICK_MAX_AGE``; ``math.inf``
        accepts any age) counts as unknown. ``decimals`` (an int or a Symbol) rounds
        the price as :meth:`round_price` does.

        Example:
            >>> await cache.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=1.23456))
            True
            >>> await cache.get_price("BTC/USDT", decimals=2)
            1.23
            >>> await cache.get_price("DOGE/USDT", "binance")
            0.0
        """
        if decimals is not None:
            self.round_price(0.0, decimals)  # validates before the round trip
        tick = await self.get_ticker(symbol, exchange, max_age=max_age)
        if tick is None:
            return 0.0
        if decimals is None:
            return tick.price
        return self.round_price(tick.price, decimals)

    @guarded
    async def get_tickers(self, exchange: str | None = None) -> list[Tick]:
        """Every tick of one exchange, or of every exchange that has tickers (never a
        fixed list), sorted by exchange then symbol. Ages are not filtered.

        Example:
            >>> await cache.set_ticker(Tick(symbol="BTC/USDT", exchange="kraken", price=1.0))
            True
            >>> await cache.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=2.0))
            True
            >>> [(t.exchange, t.price) for t in await cache.get_tickers()]
            [('binance', 2.0), ('kraken', 1.0)]
        """
        if exchange is None:
            exchanges = await self._exchanges()
        else:
            exchanges = [_text("exchange", exchange)]
        pipe = self.redis.pipeline(transaction=False)
        for name in exchanges:
            pipe.hgetall(self.keys.tickers(name))
        ticks: list[Tick] = []
        for stored in await pipe.execute():
            ticks += [decode(stored[field], Tick) for field in sorted(stored)]
        return ticks

    async def get_all_tickers(self, exchange_name: str | None = None) -> list[Tick]:
        """Same as :meth:`get_tickers` (the original's name and keyword).

        Example:
            >>> await cache.set_ticker(Tick(symbol="BTC/USDT", exchange="kraken", price=1.0))
            True
            >>> len(await cache.get_all_tickers(exchange_name="kraken"))
            1
        """
        return await self.get_tickers(exchange_name)

    # -- freshness and rounding ------------------------------------------------------
    def is_stale(self, tick: Tick | Mapping[str, Any] | Any, max_age: float | None = None) -> bool:
        """True when the tick is older than ``max_age`` seconds (default
        ``FULLON_CACHE_TICK_MAX_AGE``). A tick from the future is not stale.

        Example:
            >>> cache.is_stale(Tick(symbol="BTC/USDT", exchange="binance", price=1.0))
            False
            >>> cache.is_stale(Tick(symbol="BTC/USDT", exchange="binance", price=1.0, time=0))
            True
        """
        model = as_model(tick, Tick)
        limit = _max_age(max_age, self.settings.tick_max_age)
        return time.time() - (model.time or 0.0) > limit

    def round_price(self, price: float, decimals: int | Symbol | Any) -> float:
        """``price`` rounded half-up to ``decimals`` places (an int 0-18, or a
        :class:`Symbol`, whose ``decimals`` is used). Rounds the decimal form of the
        float, so 2.675 becomes 2.68.

        Example:
            >>> cache.round_price(2.675, 2)
            2.68
            >>> cache.round_price(50000.123456789, Symbol(symbol="BTC/USDT", decimals=4))
            50000.1235
        """
        if isinstance(price, bool) or not isinstance(price, (int, float)):
            raise TypeError(f"price must be a number, got {type(price).__name__}")
        if not math.isfinite(price) or price < 0:
            raise ValueError(f"price must be a finite number >= 0, got {price!r}")
        if isinstance(decimals, int) and not isinstance(decimals, bool):
            places = decimals
            if not 0 <= places <= 18:
                raise ValueError(f"decimals must be between 0 and 18, got {places}")
        else:
            places = as_model(decimals, Symbol).decimals
        step = Decimal(1).scaleb(-places)
        return float(Decimal(repr(float(price))).quantize(step, rounding=ROUND_HALF_UP))

    # -- real time -------------------------------------------------------------------
    def _channels(
        self, exchange: str, symbols: str | Symbol | Iterable[str | Symbol] | None
    ) -> tuple[str, list[str] | None]:
        exchange = _text("exchange", exchange)
        if symbols is None:
            return exchange, None
        if isinstance(symbols, (str, Symbol, Mapping)) or hasattr(symbols, "to_dict"):
            items: list[Any] = [symbols]
        elif isinstance(symbols, Iterable):
            items = list(symbols)
        else:
            raise TypeError(f"symbols must be a symbol or a list of them, not {symbols!r}")
        names = list(dict.fromkeys(_symbol(item)[0] for item in items))
        if not names:
            raise ValueError("symbols must not be empty (pass None for every symbol)")
        return exchange, names

    def _updates(
        self,
        exchange: str,
        names: list[str] | None,
        *,
        snapshot: bool,
        reconnect: bool,
        on_ready: Callable[[], None] | None = None,
    ) -> AsyncGenerator[Tick, None]:
        hash_key = self.keys.tickers(exchange)

        async def current() -> list[bytes]:
            if names is None:
                stored = cast(dict[bytes, bytes], await self.redis.hgetall(hash_key))
                return [stored[field] for field in sorted(stored)]
            values = cast(list[bytes | None], await self.redis.hmget(hash_key, names))
            return [value for value in values if value is not None]

        if names is None:
            source = _listen(
                self._connection,
                "TickCache.stream_ticker_updates",
                self.logger,
                pattern=self.keys.tick_channel_pattern(exchange),
                snapshot=current if snapshot else None,
                on_ready=on_ready,
                reconnect=reconnect,
            )
        else:
            source = _listen(
                self._connection,
                "TickCache.stream_ticker_updates",
                self.logger,
                channels=[self.keys.tick_channel(exchange, name) for name in names],
                snapshot=current if snapshot else None,
                on_ready=on_ready,
                reconnect=reconnect,
            )
        return self._decoded(source)

    async def _decoded(self, source: AsyncGenerator[bytes, None]) -> AsyncGenerator[Tick, None]:
        async with contextlib.aclosing(source):
            async for raw in source:
                try:
                    tick = decode(raw, Tick)
                except CacheDataError as exc:
                    self.logger.error("skipped an undecodable tick message: %s", exc)
                    continue
                yield tick

    def stream_ticker_updates(
        self,
        exchange: str,
        symbols: str | Symbol | Iterable[str | Symbol] | None = None,
        *,
        snapshot: bool = False,
        reconnect: bool = True,
    ) -> AsyncGenerator[Tick, None]:
        """Ticks of ``symbols`` (one, a list, or None for every symbol of the exchange)
        as they are stored, in publication order.

        Arguments are checked at once. The first subscription failing raises
        CacheConnectionError when iteration starts; after that, a lost connection is
        resubscribed with back-off (``reconnect=False`` raises instead). Ticks
        published while disconnected are not replayed: ``snapshot=True`` yields the
        stored ticks after every (re)subscription, so the consumer catches up. Close
        it with ``aclose()`` (or ``contextlib.aclosing``). Publishers are never
        slowed by a subscriber.

        Example:
            >>> await cache.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=1.0))
            True
            >>> updates = cache.stream_ticker_updates("binance", ["BTC/USDT"], snapshot=True)
            >>> (await anext(updates)).price
            1.0
            >>> await updates.aclose()
        """
        exchange, names = self._channels(exchange, symbols)
        return self._updates(exchange, names, snapshot=snapshot, reconnect=reconnect)

    async def subscribe(
        self,
        exchange: str,
        symbols: str | Symbol | Iterable[str | Symbol] | None,
        callback: TickCallback,
        *,
        snapshot: bool = False,
    ) -> TickSubscription:
        """Call ``callback(tick)`` (a function or a coroutine function) for every tick
        of ``symbols`` (None: every symbol of the exchange) from a background task.

        Returns once subscribed (or raises CacheConnectionError); then resubscribes
        after a lost connection. A callback that raises is logged and the
        subscription goes on. Stop it with :meth:`TickSubscription.close`.

        Example:
            >>> seen = []
            >>> async with await cache.subscribe("binance", None, seen.append):
            ...     pass
            >>> seen
            []
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        exchange, names = self._channels(exchange, symbols)
        ready = asyncio.Event()
        stream = self._updates(
            exchange, names, snapshot=snapshot, reconnect=True, on_ready=ready.set
        )
        task = asyncio.create_task(_pump(stream, callback, self.logger))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            await task  # raises the subscription error
        return TickSubscription(task)
