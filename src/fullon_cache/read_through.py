"""Read-through caching: on a miss, load from a source once and remember the answer.

:class:`~fullon_cache.symbol_cache.SymbolCache` and
:class:`~fullon_cache.exchange_cache.ExchangeCache` take a ``source`` — anything that
implements :class:`MetadataSource` (``PostgresSource`` from
:mod:`fullon_cache.pg_source` ships with the library). Without a source they are pure
caches and a miss returns the documented default.

With a source, a lookup that Redis cannot answer goes through :func:`read_through`:

1. Redis is read (one pipeline). A stored value, or a *negative* marker left by an
   earlier empty answer (``keys.read_through_miss``, TTL ``FULLON_CACHE_NEGATIVE_TTL``),
   answers at once.
2. Otherwise the load joins the **single flight** of that key in this event loop: the
   first caller starts one task that reads Redis again, queries the source, and stores
   the answer; every concurrent caller awaits that same task. A hundred concurrent
   misses on one symbol cause one source query. A caller that is cancelled does not
   cancel the load its neighbours wait for.
3. An answer is stored with the cache's TTL; an empty answer (None, []) is stored as a
   negative marker for ``negative_ttl`` seconds, so a lookup of something that does not
   exist cannot hammer the database either.

Across processes there is deliberately no Redis lock: each process runs at most one
load per key at a time (the stampede is bounded by the number of processes, and the
second read inside the flight sees a value another process stored first), while a lock
would add a round trip and a wait to every miss. A source that fails raises
:class:`SourceError` (a :class:`~fullon_cache.exceptions.CacheError`); nothing is
cached and the next lookup tries again. It never opens the Redis circuit breaker.

Example:
    >>> import asyncio
    >>> calls = []
    >>> async def load() -> str:
    ...     calls.append(1)
    ...     await asyncio.sleep(0)
    ...     return "value"
    >>> async def main() -> list[str]:
    ...     flight = single_flight()
    ...     return await asyncio.gather(*(flight.run("key", load) for _ in range(100)))
    >>> len(asyncio.run(main())), len(calls)
    (100, 1)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, Protocol, TypeVar, runtime_checkable

from fullon_cache.base_cache import BaseCache
from fullon_cache.codec import decode
from fullon_cache.config import Settings
from fullon_cache.connection import Connection
from fullon_cache.exceptions import CacheError
from fullon_cache.models import CatExchange, Exchange, Symbol
from fullon_cache.near_cache import NearCache, near_for

__all__ = [
    "COMPLETE",
    "MetadataSource",
    "ReadThroughCache",
    "SingleFlight",
    "SourceError",
    "check_source",
    "int_id",
    "read_through",
    "single_flight",
    "text_id",
]

T = TypeVar("T")

logger = logging.getLogger("fullon.cache.read_through")


@runtime_checkable
class MetadataSource(Protocol):
    """Where :class:`SymbolCache` and :class:`ExchangeCache` fill their misses from.

    Any object with these five coroutines works (a repository of your ORM, a REST
    client, a fixture); the models may also be mappings or objects with ``to_dict()``.
    An empty answer is None or [].

    Example:
        >>> class NoSymbols:
        ...     async def get_symbols(self, exchange_name=None, cat_ex_id=None):
        ...         return []
        ...     async def get_symbol(self, symbol, exchange_name=None, cat_ex_id=None):
        ...         return None
        ...     async def get_exchange(self, ex_id):
        ...         return None
        ...     async def get_user_exchanges(self, uid):
        ...         return []
        ...     async def get_cat_exchanges(self):
        ...         return []
        >>> isinstance(NoSymbols(), MetadataSource)
        True
    """

    async def get_symbols(
        self, exchange_name: str | None = None, cat_ex_id: int | None = None
    ) -> list[Symbol]:
        """Symbols of a catalog exchange (by name or id); every symbol when both are None."""
        ...

    async def get_symbol(
        self, symbol: str, exchange_name: str | None = None, cat_ex_id: int | None = None
    ) -> Symbol | None:
        """One symbol of a catalog exchange (by name or id), or None."""
        ...

    async def get_exchange(self, ex_id: int) -> Exchange | None:
        """One user exchange by id, or None."""
        ...

    async def get_user_exchanges(self, uid: int) -> list[Exchange]:
        """The exchanges of one user."""
        ...

    async def get_cat_exchanges(self) -> list[CatExchange]:
        """Every exchange of the catalog."""
        ...


class SourceError(CacheError):
    """The read-through source failed (database down, bad data); nothing was cached.

    Example:
        >>> issubclass(SourceError, CacheError)
        True
    """


def check_source(source: object) -> MetadataSource | None:
    """Validate a cache's ``source`` argument: None or a :class:`MetadataSource`.

    Example:
        >>> check_source(None) is None
        True
        >>> check_source("postgres")
        Traceback (most recent call last):
        ...
        TypeError: source must implement MetadataSource, got str
    """
    if source is None or isinstance(source, MetadataSource):
        return source
    raise TypeError(f"source must implement MetadataSource, got {type(source).__name__}")


def int_id(value: object, name: str) -> int:
    """Validate a numeric identifier (ex_id, uid, cat_ex_id): an int >= 0 or its digits.

    Example:
        >>> int_id("7", "ex_id")
        7
        >>> int_id(-1, "ex_id")
        Traceback (most recent call last):
        ...
        ValueError: ex_id must be >= 0, got -1
    """
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        return int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def text_id(value: object, name: str) -> str:
    """Validate a text identifier (symbol, exchange name): a non-blank str.

    Example:
        >>> text_id("binance", "exchange_name")
        'binance'
        >>> text_id(" ", "symbol")
        Traceback (most recent call last):
        ...
        ValueError: symbol must not be empty
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


class SingleFlight:
    """At most one running load per key: concurrent callers share its result.

    The load runs in its own task, so a caller that is cancelled (or times out) does not
    cancel it for the others; an exception reaches every caller of that flight, and the
    next call after it starts a new flight.

    Example:
        >>> import asyncio
        >>> async def main() -> tuple[int, int]:
        ...     flight = SingleFlight()
        ...     async def load() -> int:
        ...         await asyncio.sleep(0)
        ...         return 7
        ...     first, second = await asyncio.gather(flight.run("k", load), flight.run("k", load))
        ...     return first + second, flight.in_flight
        >>> asyncio.run(main())
        (14, 0)
    """

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Task[Any]] = {}

    @property
    def in_flight(self) -> int:
        """How many loads are running now.

        Example:
            >>> SingleFlight().in_flight
            0
        """
        return len(self._flights)

    async def run(self, key: Hashable, load: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The result of ``load()``, run once for all concurrent callers of ``key``.

        Example:
            >>> import asyncio
            >>> async def one() -> int:
            ...     return 1
            >>> asyncio.run(SingleFlight().run("k", one))
            1
        """
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(load())
            self._flights[key] = task
            task.add_done_callback(functools.partial(self._finished, key))
        result: T = await asyncio.shield(task)
        return result

    def _finished(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        del self._flights[key]
        # Mark the exception retrieved: no "never retrieved" warning if every caller left.
        _ = task.cancelled() or task.exception()


_flights: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SingleFlight] = (
    weakref.WeakKeyDictionary()
)


def single_flight() -> SingleFlight:
    """The :class:`SingleFlight` of the running event loop, shared by every cache instance.

    Example:
        >>> import asyncio
        >>> async def same() -> bool:
        ...     return single_flight() is single_flight()
        >>> asyncio.run(same())
        True
    """
    loop = asyncio.get_running_loop()
    flight = _flights.get(loop)
    if flight is None:
        flight = _flights[loop] = SingleFlight()
    return flight


async def read_through(
    key: Hashable,
    read: Callable[[], Awaitable[tuple[bool, T]]],
    load: Callable[[], Awaitable[T]] | None,
    store: Callable[[T], Awaitable[T]],
) -> T:
    """Answer from Redis, or fill from the source once per key.

    ``read()`` returns ``(known, value)``: known is True for a stored value or a live
    negative marker. Unknown with no ``load`` (no source) returns ``value`` (the
    default). Otherwise the single flight of ``key`` reads again, calls ``load()``
    (errors become :class:`SourceError`), passes the answer to ``store()`` and returns
    what ``store()`` returns (a list merged with entries added meanwhile, say).

    Example:
        >>> import asyncio
        >>> box: dict[str, str] = {}
        >>> async def read() -> tuple[bool, str | None]:
        ...     return ("v" in box, box.get("v"))
        >>> async def load() -> str | None:
        ...     return "loaded"
        >>> async def store(value: str | None) -> str | None:
        ...     box["v"] = value or ""
        ...     return value
        >>> asyncio.run(read_through("k", read, load, store)), box
        ('loaded', {'v': 'loaded'})
    """
    known, value = await read()
    if known or load is None:
        return value
    source_load = load

    async def fill() -> T:
        known, value = await read()
        if known:
            return value
        try:
            loaded = await source_load()
        except Exception as exc:
            logger.warning("read-through source failed for %r: %s", key, exc)
            raise SourceError(f"source failed: {type(exc).__name__}: {exc}") from exc
        return await store(loaded)

    return await single_flight().run(key, fill)


COMPLETE = ""
"""Field of a list hash marking it as loaded whole from the source (no symbol, id or
name is blank, so it never collides with an entry)."""
_COMPLETE_FIELD = COMPLETE.encode()

M = TypeVar("M")


class ReadThroughCache(BaseCache):
    """What SymbolCache and ExchangeCache share: an optional :class:`MetadataSource`
    to fill misses from, an opt-in near cache, and the single-flight key of a load.

    Example:
        >>> cache = ReadThroughCache()
        >>> cache.source is None, cache.near_cache
        (True, False)
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        connection: Connection | None = None,
        source: MetadataSource | None = None,
        near_cache: bool | NearCache = False,
    ) -> None:
        super().__init__(settings=settings, connection=connection)
        self.source = check_source(source)
        self.near_cache = near_cache

    def _invalidate(self, *keys: str) -> None:
        """Drop what the near cache read from ``keys`` (a write of this process is read
        at once; other processes learn it from the server)."""
        near = near_for(self.near_cache, self)
        if near is not None:
            near.invalidate(*keys)

    def _flight(self, *parts: Hashable) -> tuple[Hashable, ...]:
        return (self.settings, id(self.source), *parts)

    async def _read_list(
        self, key: str, model: type[M], order: Callable[[M], Any]
    ) -> tuple[bool, list[M]]:
        """The entries of a list hash sorted by ``order``, and whether the hash holds
        the whole list (marked :data:`COMPLETE`) or only what was added to it."""
        raw: dict[bytes, bytes] = await self.redis.hgetall(key)  # type: ignore[assignment]
        entries = (decode(value, model) for field, value in raw.items() if field != _COMPLETE_FIELD)
        return _COMPLETE_FIELD in raw, sorted(entries, key=order)
