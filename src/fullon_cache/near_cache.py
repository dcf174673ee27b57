"""NearCache: tickers, prices, symbols and exchanges held in process, invalidated by the
server.

Opt-in per cache: ``TickCache(near_cache=True)`` (likewise ``SymbolCache`` and
``ExchangeCache``) reads through a :class:`NearCache` shared by every cache of the
event loop's connection; pass a :class:`NearCache` instance to own one explicitly. A hit
is a dict lookup (plus the cache's usual decode and checks): microseconds instead of a
round trip.

How entries are invalidated — Redis server-assisted client-side caching
(``CLIENT TRACKING``) in broadcast mode, not a channel of the library's own:

* one dedicated connection runs ``CLIENT TRACKING ON REDIRECT <its own id> BCAST
  PREFIX <ns>:tick: PREFIX <ns>:symbols: ...`` and ``SUBSCRIBE __redis__:invalidate``
  (RESP2, documented commands only; redis-py's RESP3 push hooks are internal API).
  The server then sends the name of every key under those prefixes that changes, for
  **any** reason: a write by this library in any process, a raw ``HSET``/``HDEL`` from
  another tool, a TTL expiry (symbols and exchanges expire), an eviction, a FLUSHDB.
  A broadcast channel of our own would only see writes that remember to publish, and
  nothing that expires;
* writers pay nothing extra: the server collects the changed keys of one event-loop
  iteration into one message per prefix (a 1,000-tick batch is one invalidation);
* the price is granularity: an invalidation names a key, and an exchange's tickers are
  one hash, so a tick of any symbol of an exchange drops the near-cached tickers of
  that whole exchange. The near cache pays off for reads far more frequent than the
  writes of the same key (strategies reading prices many times per tick, symbols and
  exchanges that change rarely).

Coherence rules:

* an entry is stored only if no invalidation of its keys (and no reconnection) arrived
  while it was read, so a reply overtaken by an invalidation is never kept;
* a write through a cache that uses this near cache drops the keys it wrote as soon as
  the write returns, so a process reads its own writes;
* while the invalidation connection is not established (not yet, or lost and
  reconnecting) nothing is served or stored: every read goes to Redis, and the entries
  are flushed on every loss and every (re)connection. The connection is checked with a
  PING every ``health_interval`` seconds; no reply within ``3 x health_interval`` counts
  as lost (a frozen server or a silent network cannot keep stale entries alive);
* Redis Cluster is not supported yet (tracking is per node): on a cluster the near
  cache never goes live and every read goes to Redis.

Example:
    >>> near = NearCache()
    >>> ticks = TickCache(near_cache=near)
    >>> await ticks.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=2.0))
    True
    >>> _ = await near.wait_live(timeout=1)  # False on a cluster: every read bypasses it
    >>> await ticks.get_price("BTC/USDT", "binance"), await ticks.get_price("BTC/USDT", "binance")
    (2.0, 2.0)
    >>> await near.close()
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, ClassVar, Final, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from fullon_cache.base_cache import BaseCache
from fullon_cache.config import Settings
from fullon_cache.connection import Client, Connection, _common_kwargs
from fullon_cache.keys import CacheKey

__all__ = ["INVALIDATION_CHANNEL", "NearCache", "near_for"]

INVALIDATION_CHANNEL: Final = "__redis__:invalidate"
"""The server's channel for client-side-caching invalidations (RESP2 redirect)."""

_MISSING: Final = object()
_TRACKED: Final = (
    CacheKey.TICK,
    CacheKey.SYMBOLS,
    CacheKey.SYMBOLS_BY_CAT,
    CacheKey.EXCHANGE,
    CacheKey.USER_EXCHANGES,
    CacheKey.READ_THROUGH,
)

T = TypeVar("T")


class NearCache(BaseCache):
    """In-process cache of Redis replies, kept coherent by server invalidations.

    ``max_entries`` bounds the entries (all are dropped when it is reached);
    ``health_interval`` is the seconds between PINGs of the invalidation connection.
    It serves one event loop. :meth:`close` stops it.

    Example:
        >>> near = NearCache(max_entries=10)
        >>> near.live
        False
        >>> _ = await near.wait_live(timeout=1)
        >>> await near.close()
        >>> near.live
        False
    """

    component: ClassVar[str] = "near"

    _shared: ClassVar[weakref.WeakKeyDictionary[Connection, NearCache]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        connection: Connection | None = None,
        max_entries: int = 100_000,
        health_interval: float = 1.0,
    ) -> None:
        super().__init__(settings=settings, connection=connection)
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be an int >= 1, got {max_entries!r}")
        if isinstance(health_interval, bool) or not isinstance(health_interval, (int, float)):
            raise TypeError("health_interval must be a number of seconds")
        if not 0 < health_interval < float("inf"):
            raise ValueError(f"health_interval must be > 0, got {health_interval!r}")
        self.max_entries = max_entries
        self.health_interval = float(health_interval)
        ns = self.keys.namespace
        self.prefixes: tuple[str, ...] = (
            *(f"{ns}:{kind.value}:" for kind in _TRACKED),
            self.keys.cat_exchanges(),
        )
        self._entries: dict[Hashable, Any] = {}
        self._by_key: dict[str, list[Hashable]] = {}
        self._epochs: dict[str, int] = {}
        self._generation = 0
        self._live = False
        self._live_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.hits = 0
        self.misses = 0
        self.invalidations = 0
        self.flushes = 0

    # -- shared instances ------------------------------------------------------------
    @classmethod
    def shared(cls, connection: Connection) -> NearCache:
        """The near cache of ``connection`` (one per connection, i.e. per event loop and
        settings), created on first use; it stops when the connection is closed.

        Example:
            >>> conn = cache._connection
            >>> NearCache.shared(conn) is NearCache.shared(conn)
            True
        """
        near = cls._shared.get(connection)
        if near is None or near.closed:
            near = cls._shared[connection] = cls(connection=connection)
        return near

    # -- state -----------------------------------------------------------------------
    @property
    def live(self) -> bool:
        """True while invalidations are received: only then are entries served.

        Example:
            >>> NearCache().live
            False
        """
        return self._live

    def __len__(self) -> int:
        return len(self._entries)

    def start(self) -> None:
        """Start the invalidation listener (idempotent; reads start it too).

        Example:
            >>> cache.start(); cache.start()
            >>> cache.closed
            False
        """
        if self._task is None and not self.closed:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def wait_live(self, timeout: float = 10.0) -> bool:
        """Start the listener and wait up to ``timeout`` seconds until it is live;
        True when live.

        Example:
            >>> isinstance(await cache.wait_live(timeout=1), bool)
            True
        """
        self.start()
        waiter = asyncio.ensure_future(self._live_event.wait())
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        finally:
            waiter.cancel()
        return self._live

    async def close(self) -> None:
        """Stop the listener and drop every entry; idempotent.

        Example:
            >>> await cache.close(); await cache.close()
            >>> cache.closed
            True
        """
        await super().close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=5)
        self._down()

    # -- reads -----------------------------------------------------------------------
    async def fetch(
        self, ident: Hashable, keys: tuple[str, ...], load: Callable[[], Awaitable[T]]
    ) -> T:
        """The reply stored under ``ident``, or ``await load()`` (stored when nothing
        invalidated one of ``keys`` meanwhile). ``keys`` are the Redis keys the reply
        was read from; each must be under a tracked prefix (:attr:`prefixes`), so the
        server reports its changes. Replies must be immutable (bytes, tuples).

        Example:
            >>> key = cache.keys.exchange(1)
            >>> async def load() -> bytes:
            ...     return b"from redis"
            >>> await cache.fetch(("doc", key), (key,), load)
            b'from redis'
            >>> await cache.fetch(("doc", key), (key,), load)  # a hit once live
            b'from redis'
            >>> cache.misses + cache.hits
            2
        """
        if self._live:
            value = self._entries.get(ident, _MISSING)
            if value is not _MISSING:
                self.hits += 1
                return value  # type: ignore[no-any-return]
        elif self._task is None:
            self.start()
        for key in keys:
            if not key.startswith(self.prefixes):
                raise ValueError(f"{key!r} is not under a prefix tracked by the near cache")
        self.misses += 1
        generation = self._generation
        epochs = [self._epochs.get(key, 0) for key in keys]
        value = await load()
        if (
            self._live
            and generation == self._generation
            and epochs == [self._epochs.get(key, 0) for key in keys]
        ):
            self._store(ident, keys, value)
        return value

    async def hget(self, client: Client, key: str, field: str) -> bytes | None:
        """``HGET key field`` through the near cache.

        Example:
            >>> await cache.redis.hset(cache.keys.tickers("x"), "A/B", b"1")
            1
            >>> await cache.hget(cache.redis, cache.keys.tickers("x"), "A/B")
            b'1'
        """
        if self._live:
            value = self._entries.get((key, field), _MISSING)
            if value is not _MISSING:
                self.hits += 1
                return cast("bytes | None", value)

        async def load() -> bytes | None:
            return cast("bytes | None", await client.hget(key, field))

        return await self.fetch((key, field), (key,), load)

    def _store(self, ident: Hashable, keys: tuple[str, ...], value: Any) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
            self._by_key.clear()
        self._entries[ident] = value
        for key in keys:
            self._by_key.setdefault(key, []).append(ident)

    # -- invalidation ----------------------------------------------------------------
    def invalidate(self, *keys: str) -> None:
        """Drop every entry read from ``keys`` (a local write calls this as soon as it
        returned; the server's invalidation follows for every other process).

        Example:
            >>> cache.invalidate(cache.keys.tickers("binance"))
            >>> cache.invalidations
            1
        """
        epochs = self._epochs
        if len(epochs) > 4 * self.max_entries:
            epochs.clear()
            self._generation += 1  # reads in flight must not store
        for key in keys:
            self.invalidations += 1
            epochs[key] = epochs.get(key, 0) + 1
            for ident in self._by_key.pop(key, ()):
                self._entries.pop(ident, None)

    def clear(self) -> None:
        """Drop every entry (reads in flight do not store theirs).

        Example:
            >>> cache.clear()
            >>> len(cache), cache.flushes
            (0, 1)
        """
        self.flushes += 1
        self._generation += 1
        self._entries.clear()
        self._by_key.clear()

    def _down(self) -> None:
        if self._live and not self.closed:
            self.logger.warning("near cache bypassed: invalidation connection lost")
        self._live = False
        self._live_event.clear()
        self.clear()

    def _up(self) -> None:
        self.clear()
        self._live = True
        self._live_event.set()

    # -- listener --------------------------------------------------------------------
    def _client(self) -> Redis:
        kwargs = _common_kwargs(self.settings, blocking=True)
        kwargs.update(
            socket_timeout=3 * self.health_interval,
            retry=Retry(NoBackoff(), 0),
            protocol=2,
        )
        return Redis(
            host=self.settings.host, port=self.settings.port, db=self.settings.db, **kwargs
        )

    async def _run(self) -> None:
        if self.settings.cluster_mode:
            self.logger.warning("near cache: Redis Cluster is not supported; reads bypass it")
            return
        client = self._client()
        failures = 0
        try:
            while not (self._fixed is not None and self._fixed.closed):
                conn = client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
                try:
                    await self._subscribe(conn)
                    failures = 0
                    await self._listen(conn)
                except (RedisError, OSError) as exc:
                    self.logger.warning("near cache: invalidation connection failed: %s", exc)
                finally:
                    self._down()
                    await conn.disconnect()
                failures += 1
                s = self.settings
                await asyncio.sleep(
                    min(s.retry_backoff_cap, s.retry_backoff * 2 ** min(failures, 16))
                )
        finally:
            await client.aclose()

    async def _subscribe(self, conn: AbstractConnection) -> None:
        await conn.connect()  # type: ignore[no-untyped-call]
        await conn.send_command("CLIENT", "ID")
        client_id = await conn.read_response()
        prefixes = [arg for prefix in self.prefixes for arg in ("PREFIX", prefix)]
        await conn.send_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", *prefixes
        )
        await conn.read_response()
        await conn.send_command("SUBSCRIBE", INVALIDATION_CHANNEL)
        await conn.read_response()
        self._up()

    async def _listen(self, conn: AbstractConnection) -> None:
        reader = asyncio.get_running_loop().create_task(self._read(conn))
        try:
            while True:
                await asyncio.wait({reader}, timeout=self.health_interval)
                if reader.done():
                    return reader.result()
                if self._fixed is not None and self._fixed.closed:
                    return None
                await conn.send_command("PING")
        finally:
            reader.cancel()
            await asyncio.wait({reader})

    async def _read(self, conn: AbstractConnection) -> None:
        while True:
            message = await conn.read_response()
            if isinstance(message, list) and message[0] == b"message":
                keys = message[2]
                if keys is None:  # FLUSHDB / FLUSHALL
                    self.clear()
                else:
                    self.invalidate(*(key.decode() for key in keys))


def near_for(setting: bool | NearCache, owner: BaseCache) -> NearCache | None:
    """The near cache a cache's ``near_cache=`` argument selects: None (False), the
    shared one of ``owner``'s connection (True) or the given instance.

    Example:
        >>> near_for(False, cache) is None
        True
        >>> near_for(cache, cache) is cache
        True
    """
    if setting is False:
        return None
    if setting is True:
        return NearCache.shared(owner._connection)
    return setting
