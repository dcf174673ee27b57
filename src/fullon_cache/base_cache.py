"""BaseCache: what every cache has — connection, keys, health, namespace housekeeping
and the operators' global error queue.

Every cache of the library subclasses :class:`BaseCache` directly (one level) and
composes other caches where it needs them. Instances are cheap: they share the
:class:`~fullon_cache.connection.ConnectionPool` of their event loop.

Example:
    >>> import asyncio
    >>> from fullon_cache import BaseCache
    >>> async def main() -> str:
    ...     async with BaseCache() as cache:
    ...         return await cache.ping()
    >>> asyncio.run(main())  # doctest: +SKIP
    'PONG'
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Self

from redis.commands.core import AsyncScript

from fullon_cache.codec import decode_any, encode
from fullon_cache.config import Settings, get_settings
from fullon_cache.connection import Client, Connection, ConnectionPool, guarded
from fullon_cache.exceptions import CacheConnectionError
from fullon_cache.keys import Keys

__all__ = ["BaseCache", "validate_timeout"]

_SCAN_BATCH = 500

# The Lua scripts of each client, by source: a redis-py Script hashes its source (SHA1)
# when it is built, so it is built once per client, not once per call.
_client_scripts: weakref.WeakKeyDictionary[Client, dict[str, AsyncScript]] = (
    weakref.WeakKeyDictionary()
)


def validate_timeout(timeout: float) -> float:
    """Check a blocking-wait timeout: a finite number of seconds >= 0.

    Example:
        >>> validate_timeout(2)
        2.0
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")
    if not math.isfinite(timeout) or timeout < 0:
        raise ValueError(f"timeout must be a finite number >= 0, got {timeout!r}")
    return float(timeout)


class BaseCache:
    """Connection, keys and housekeeping shared by every cache.

    Use it as ``async with SomeCache() as cache:`` or as a plain object with
    ``await cache.close()``. Construction takes no required arguments; ``settings``
    overrides the environment, and ``connection`` shares one explicit
    :class:`~fullon_cache.connection.Connection` (``CacheManager`` does this).

    Example:
        >>> cache = BaseCache()
        >>> cache.keys.global_errors().endswith(":errors")
        True
    """

    component: ClassVar[str] = "base"

    def __init__(
        self, *, settings: Settings | None = None, connection: Connection | None = None
    ) -> None:
        if connection is not None:
            settings = connection.settings
        self.settings: Settings = settings or get_settings()
        self.keys = Keys(self.settings.namespace)
        self.logger = logging.getLogger(f"fullon.cache.{self.component}")
        self._fixed = connection
        self._bound: tuple[asyncio.AbstractEventLoop, Connection] | None = None
        self._scripts: tuple[Client, dict[str, AsyncScript]] | None = None
        self.closed = False

    # -- connection ------------------------------------------------------------------
    @property
    def _connection(self) -> Connection:
        if self._fixed is not None:
            return self._fixed
        loop = asyncio.get_running_loop()
        bound = self._bound
        if bound is None or bound[0] is not loop or bound[1].closed:
            conn = ConnectionPool.get(self.settings)
            self._bound = (loop, conn)
            return conn
        return bound[1]

    @property
    def redis(self) -> Client:
        """The redis-py asyncio client (standalone or cluster) of this loop.

        Example:
            >>> BaseCache.redis.__doc__.startswith("The redis-py")
            True
        """
        return self._connection.client

    def _script(self, source: str) -> AsyncScript:
        """The redis-py Script of the Lua ``source`` on this loop's client, built (and its
        SHA1 computed) once per client and source, shared by every cache instance.
        ``await script(keys=[...], args=[...])`` sends EVALSHA (EVAL once if the server
        does not know it yet).

        Example:
            >>> script = cache._script("return ARGV[1]")
            >>> script is cache._script("return ARGV[1]")
            True
            >>> await script(keys=[], args=["hi"])
            b'hi'
        """
        client = self.redis
        scripts = self._scripts
        if scripts is None or scripts[0] is not client:
            by_source = _client_scripts.get(client)
            if by_source is None:
                by_source = _client_scripts[client] = {}
            scripts = self._scripts = (client, by_source)
        script = scripts[1].get(source)
        if script is None:
            script = scripts[1][source] = client.register_script(source)
        return script

    @property
    def _cache(self) -> Self:
        """Compatibility with the original's ``cache._cache._redis_context()``."""
        return self

    @asynccontextmanager
    async def _redis_context(self) -> AsyncIterator[Client]:
        """Raw-client escape hatch: ``async with cache._redis_context() as redis:``.

        Keys written through it are the caller's responsibility; build them with
        ``cache.keys`` to stay inside the namespace.

        Example:
            >>> async with cache.redis_context() as redis:
            ...     await redis.set(cache.keys.market_data("BTC/USDT"), b"raw")
            True
            >>> await cache.get_keys("market_data:*") == [cache.keys.market_data("BTC/USDT")]
            True
        """
        yield self.redis

    redis_context = _redis_context

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Release this instance; idempotent. The shared pool stays open for the other
        instances of the loop (``ConnectionPool.close_loop()`` closes it).

        Example:
            >>> import asyncio
            >>> cache = BaseCache()
            >>> asyncio.run(cache.close()); asyncio.run(cache.close())
            >>> cache.closed
            True
        """
        self.closed = True

    # -- health ----------------------------------------------------------------------
    @guarded
    async def ping(self) -> str:
        """Round trip to Redis; returns ``'PONG'`` or raises CacheConnectionError.

        Example:
            >>> await cache.ping()
            'PONG'
        """
        await self.redis.ping()
        return "PONG"

    async def test(self) -> bool:
        """Health check: True when Redis answers, False (logged) when it cannot be reached.

        Example:
            >>> await cache.test()
            True
        """
        try:
            await self.ping()
        except CacheConnectionError as exc:
            self.logger.warning("health check failed: %s", exc)
            return False
        return True

    # -- namespace housekeeping ------------------------------------------------------
    async def _scan(self, match: str) -> AsyncIterator[bytes]:
        async for key in self.redis.scan_iter(match=match, count=_SCAN_BATCH):
            yield key

    @guarded
    async def prepare_cache(self) -> None:
        """Delete every key of this library's namespace (SCAN + UNLINK), and nothing
        else: other data in the same database is left alone. Never FLUSHDB.

        Example:
            >>> await cache.push_global_error("feed down")
            True
            >>> await cache.prepare_cache()
            >>> await cache.get_keys()
            []
        """
        batch: list[bytes] = []
        async for key in self._scan(self.keys.pattern()):
            batch.append(key)
            if len(batch) >= _SCAN_BATCH:
                await self.redis.unlink(*batch)
                batch.clear()
        if batch:
            await self.redis.unlink(*batch)

    @guarded
    async def get_keys(self, pattern: str = "*") -> list[str]:
        """Keys of this namespace matching a glob ``pattern`` (relative to the namespace),
        found with SCAN (never KEYS). Returned as full key names, sorted.

        Example:
            >>> await cache.push_global_error("feed down")
            True
            >>> await cache.get_keys("err*") == [cache.keys.global_errors()]
            True
            >>> await cache.get_keys("tick:*")
            []
        """
        found = {key.decode() async for key in self._scan(self.keys.user_pattern(pattern))}
        return sorted(found)

    # -- global error queue ----------------------------------------------------------
    @guarded
    async def push_global_error(
        self, error: str | BaseException, component: str | None = None
    ) -> bool:
        """Queue a critical error for operators (bounded to FULLON_CACHE_GLOBAL_ERROR_MAX,
        oldest dropped first), stamped with the component and UTC time.

        Example:
            >>> await cache.push_global_error("feed down", component="ticker")
            True
            >>> (await cache.pop_global_error())["component"]
            'ticker'
        """
        if not isinstance(error, (str, BaseException)):
            raise TypeError("error must be a str or an exception")
        if component is not None and not isinstance(component, str):
            raise TypeError("component must be a str or None")
        entry = {
            "error": str(error) if isinstance(error, str) else f"{type(error).__name__}: {error}",
            "component": component,
            "time": datetime.now(UTC).isoformat(),
        }
        key = self.keys.global_errors()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, encode(entry))
            pipe.ltrim(key, 0, self.settings.global_error_max - 1)
            await pipe.execute()
        return True

    @guarded
    async def pop_global_error(self, timeout: float = 0) -> dict[str, Any] | None:
        """The oldest queued error as ``{'error', 'component', 'time'}`` (time a UTC
        datetime), or None. ``timeout`` > 0 waits up to that many seconds.

        Example:
            >>> await cache.push_global_error(ValueError("bad tick"), component="ticker")
            True
            >>> error = await cache.pop_global_error(timeout=1)
            >>> error["error"], error["time"].tzname()
            ('ValueError: bad tick', 'UTC')
            >>> await cache.pop_global_error() is None
            True
        """
        raw = await self._pop_oldest(self.keys.global_errors(), timeout)
        if raw is None:
            return None
        entry: dict[str, Any] = decode_any(raw)
        entry["time"] = datetime.fromisoformat(entry["time"])
        return entry

    async def _pop_oldest(self, key: str, timeout: float) -> bytes | None:
        """RPOP (timeout 0) or BRPOP up to ``timeout`` seconds on the blocking client.
        Lists are pushed with LPUSH, so this is FIFO."""
        timeout = validate_timeout(timeout)
        if timeout == 0:
            return await self.redis.rpop(key)  # type: ignore[return-value]
        conn = self._connection
        reply = await conn.wait(conn.blocking_client.brpop([key], timeout=timeout), timeout)
        return None if reply is None else reply[1]
