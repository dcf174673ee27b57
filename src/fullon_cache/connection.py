"""The one connection layer every cache uses.

* :class:`Connection` owns the redis-py asyncio clients for one set of settings in one
  event loop: a command client (standalone ``Redis`` or ``RedisCluster``), and a second
  client without a socket timeout for blocking commands and pub/sub, so a wait longer
  than ``REDIS_SOCKET_TIMEOUT`` works (the wait is bounded by the caller's timeout plus
  the socket timeout instead).
* :class:`ConnectionPool` is the registry: one :class:`Connection` per event loop and
  settings, shared by every cache instance in that loop. Building a cache is therefore
  cheap, and services that build one per tick do not open sockets per tick.
* Connection errors are retried by redis-py with exponential back-off and jitter
  (``FULLON_CACHE_RETRY_ATTEMPTS`` times); after that :func:`guarded` turns them into
  :class:`~fullon_cache.exceptions.CacheConnectionError`, logged once. A
  :class:`CircuitBreaker` then fails calls fast for a cool-down and lets one probe
  through. No PING is sent before commands.
* Replication is asynchronous: a write acknowledged by a master that dies before its
  replica copied it is lost at failover. Critical writes (an order pushed, a trade
  pushed) can call :meth:`Connection.wait_for_replicas` after the write: with
  ``FULLON_CACHE_WAIT_REPLICAS`` > 0 it blocks (``WAIT``, at most
  ``FULLON_CACHE_WAIT_TIMEOUT_MS``) until that many replicas have the write, and raises
  :class:`ReplicaWaitError` when they do not confirm it in time.

Example:
    >>> import asyncio
    >>> from fullon_cache.config import Settings
    >>> async def main() -> bool:
    ...     conn = ConnectionPool.get(Settings(port=1))
    ...     same = conn is ConnectionPool.get(Settings(port=1))
    ...     await ConnectionPool.close_loop()
    ...     return same
    >>> asyncio.run(main())
    True
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar, Concatenate, ParamSpec, Protocol, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from fullon_cache.config import Settings, get_settings, reload_settings
from fullon_cache.exceptions import (
    CacheConnectionError,
    CacheError,
    CachePermissionError,
    CacheTimeoutError,
    CircuitOpenError,
)

__all__ = [
    "CircuitBreaker",
    "Client",
    "Connection",
    "ConnectionPool",
    "GatedCluster",
    "GatedRedis",
    "ReplicaWaitError",
    "guard",
    "guarded",
    "replica_wait_marker",
    "translate_error",
]

logger = logging.getLogger("fullon.cache.connection")

Client = Redis | RedisCluster

_UNREACHABLE: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,
    redis_errors.ClusterError,
    redis_errors.MasterDownError,
    redis_errors.SlotNotCoveredError,
    redis_errors.TryAgainError,
    redis_errors.RedisClusterException,
    OSError,
    TimeoutError,
)


class CircuitBreaker:
    """Fails calls fast after ``threshold`` consecutive failures, for ``cooldown``
    seconds; then lets calls through again as probes (half-open): one success closes
    it, one failure re-opens it. A threshold of 0 disables it.

    Example:
        >>> breaker = CircuitBreaker(threshold=2, cooldown=60)
        >>> breaker.record_failure(); breaker.record_failure()
        >>> breaker.state
        'open'
    """

    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        """'closed', 'open' or 'half_open'."""
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at >= self.cooldown:
            return "half_open"
        return "open"

    def before_call(self) -> None:
        """Raise :class:`CircuitOpenError` while the breaker is open."""
        if self.opened_at is not None and self.state == "open":
            raise CircuitOpenError(
                f"Redis failed {self.failures} times in a row; failing fast for "
                f"{self.cooldown:g}s before probing again"
            )

    def record_success(self) -> None:
        """A call succeeded: close the breaker."""
        self.failures = 0
        self.opened_at = None

    def record_failure(self) -> None:
        """A call failed to reach Redis: count it, open the breaker at the threshold."""
        self.failures += 1
        if self.threshold and self.failures >= self.threshold:
            self.opened_at = time.monotonic()


class ReplicaWaitError(CacheError):
    """Fewer replicas than ``FULLON_CACHE_WAIT_REPLICAS`` confirmed a write within
    ``FULLON_CACHE_WAIT_TIMEOUT_MS``. The write is on the master (it is not rolled back)
    but is not yet safe from a failover: do not report it as durable.

    Example:
        >>> issubclass(ReplicaWaitError, CacheConnectionError)
        False
    """


_MARKER_TTL_MS = 60_000


def replica_wait_marker(namespace: str, key: str) -> str:
    """The marker key :meth:`Connection.wait_for_replicas` writes: in the namespace and
    in the same Redis Cluster slot as ``key``.

    Raises ValueError for a key without a hash tag that holds a ``}`` (its slot cannot
    be shared by another key name); the library's keys never do.

    Example:
        >>> replica_wait_marker("fullon", "fullon:order_queue:{kraken}")
        'fullon:replica_wait:{kraken}'
        >>> replica_wait_marker("fullon", "fullon:errors")
        'fullon:replica_wait:{fullon:errors}'
    """
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return f"{namespace}:replica_wait:{{{key[start + 1 : end]}}}"
    if "}" in key:
        raise ValueError(f"cannot build a key in the slot of {key!r}")
    return f"{namespace}:replica_wait:{{{key}}}"


def _retry(settings: Settings) -> Retry:
    backoff = ExponentialWithJitterBackoff(
        cap=settings.retry_backoff_cap, base=settings.retry_backoff
    )
    return Retry(backoff, settings.retry_attempts)


def _common_kwargs(settings: Settings, *, blocking: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "username": settings.username,
        "password": settings.password,
        "socket_timeout": None if blocking else settings.socket_timeout,
        "socket_connect_timeout": settings.socket_connect_timeout,
        "retry": _retry(settings),
        "max_connections": settings.max_connections,
        "health_check_interval": 0,
    }
    if settings.ssl:
        kwargs.update(
            ssl=True,
            ssl_ca_certs=settings.ssl_ca_certs,
            ssl_certfile=settings.ssl_certfile,
            ssl_keyfile=settings.ssl_keyfile,
        )
    return kwargs


def build_client(settings: Settings, *, blocking: bool = False) -> Client:
    """A new redis-py asyncio client for ``settings`` (standalone or cluster).

    Example:
        >>> client = build_client(Settings(port=6390))
        >>> client.connection_pool.connection_kwargs["port"]
        6390
    """
    kwargs = _common_kwargs(settings, blocking=blocking)
    gate = kwargs.pop("max_connections")
    # Pools are unbounded; a semaphore of REDIS_MAX_CONNECTIONS gates the commands
    # instead, so callers past the limit wait their turn (redis-py's cluster nodes
    # cannot wait, and its BlockingConnectionPool costs ~10 us per command). Blocking
    # waits (BLMOVE, BRPOP, pub/sub) are not gated: each holds its socket for its wait.
    if settings.cluster_mode:
        nodes = [ClusterNode(host, port) for host, port in settings.cluster_nodes]
        if blocking:
            return RedisCluster(startup_nodes=nodes, max_connections=_UNBOUNDED, **kwargs)
        return GatedCluster(startup_nodes=nodes, max_connections=gate, **kwargs)
    if blocking:
        return Redis(host=settings.host, port=settings.port, db=settings.db, **kwargs)
    return GatedRedis(host=settings.host, port=settings.port, db=settings.db, gate=gate, **kwargs)


_UNBOUNDED = 2**31 - 1


class _Gated:
    """Mixin: at most ``gate_size`` commands of this client in flight; the others wait."""

    gate_size: int = _UNBOUNDED
    _gate: asyncio.Semaphore | None = None

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.gate_size)
        async with self._gate:
            return await super().execute_command(*args, **kwargs)  # type: ignore[misc]


class GatedRedis(_Gated, Redis):  # type: ignore[misc]
    """A standalone ``Redis`` client whose commands past ``gate`` in flight wait for a
    turn instead of failing.

    Example:
        >>> GatedRedis(port=7000, gate=8).gate_size
        8
    """

    def __init__(self, *args: Any, gate: int = 50, **kwargs: Any) -> None:
        kwargs["max_connections"] = _UNBOUNDED
        super().__init__(*args, **kwargs)
        self.gate_size = gate


class GatedCluster(_Gated, RedisCluster):  # type: ignore[misc]
    """A ``RedisCluster`` whose commands past ``max_connections`` in flight wait for a
    turn instead of failing (redis-py's cluster nodes refuse a command with
    ``MaxConnectionsError`` when their pool is full).

    Example:
        >>> GatedCluster(host="127.0.0.1", port=7000, max_connections=8).gate_size
        8
    """

    def __init__(self, *args: Any, max_connections: int = 50, **kwargs: Any) -> None:
        kwargs["max_connections"] = _UNBOUNDED
        super().__init__(*args, **kwargs)
        self.gate_size = max_connections


class Connection:
    """The clients of one settings object in one event loop.

    Example:
        >>> conn = Connection(Settings())
        >>> conn.is_cluster
        False
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.breaker = CircuitBreaker(settings.breaker_threshold, settings.breaker_cooldown)
        self.client: Client = build_client(settings)
        self._blocking: Client | None = None
        self.topology_loaded = False
        self.closed = False

    @property
    def is_cluster(self) -> bool:
        """True when connected to a Redis Cluster."""
        return self.settings.cluster_mode

    @property
    def blocking_client(self) -> Client:
        """The client without socket timeout, for blocking commands and pub/sub."""
        if self._blocking is None:
            self._blocking = build_client(self.settings, blocking=True)
        return self._blocking

    async def ready(self) -> None:
        """Load a cluster client's topology once, before its first command.

        redis-py 8.1's async ``RedisCluster``, when several coroutines make its very
        first calls at once, can run a command twice or fail with AttributeError; one
        explicit (lock-protected) ``initialize()`` first avoids both. No-op for a
        standalone client and after the first call. :func:`guarded` calls it.

        Example:
            >>> import asyncio
            >>> asyncio.run(Connection(Settings()).ready())
        """
        if self.topology_loaded:
            return
        client = self.client
        if isinstance(client, RedisCluster):
            await client.initialize()
        self.topology_loaded = True

    async def pubsub(self) -> PubSub:
        """A new pub/sub object on the blocking client (no socket timeout while idle).

        In a cluster, classic PUBLISH reaches every node, so the subscriber's node
        (chosen by redis-py) receives every message; the cluster topology is loaded
        first.
        """
        client = self.blocking_client
        if isinstance(client, RedisCluster):
            await client.initialize()
            return client.pubsub()
        return client.pubsub()

    async def wait(self, awaitable: Awaitable[Any], server_wait: float) -> Any:
        """Await a blocking command that waits up to ``server_wait`` seconds on the server.

        The client side allows ``server_wait + socket_timeout`` before giving up, so a
        dead connection raises :class:`CacheTimeoutError` instead of hanging.

        The command runs as its own task and is cancelled (its connection dropped by
        redis-py) when the deadline passes; the caller's task is never cancelled, so a
        cancellation pending on it from elsewhere cannot be mistaken for the deadline.
        """
        deadline = server_wait + self.settings.socket_timeout
        task = asyncio.ensure_future(awaitable)
        try:
            await asyncio.wait({task}, timeout=deadline)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=self.settings.socket_timeout)
        if not task.done() or task.cancelled():
            raise TimeoutError(f"no reply within {deadline:g}s")
        return task.result()

    async def wait_for_replicas(self, key: str) -> int:
        """After a critical write to ``key``: wait until ``FULLON_CACHE_WAIT_REPLICAS``
        replicas of its master have it; returns how many confirmed (0 at once, with no
        round trip, when the setting is 0).

        Redis ``WAIT`` covers the writes made on its own connection, so this writes a
        short-lived marker in ``key``'s slot and sends ``WAIT`` right after it, on one
        connection to ``key``'s master. Replication is ordered, so a replica that has
        the marker has every earlier write to that master, the caller's included.
        Call it inside the caller's ``@guarded`` method (or ``guard`` block), which
        translates errors. Fewer confirmations than required within
        ``FULLON_CACHE_WAIT_TIMEOUT_MS`` raise :class:`ReplicaWaitError`.

        Example:
            >>> import asyncio
            >>> asyncio.run(Connection(Settings()).wait_for_replicas("fullon:errors"))
            0
        """
        needed = self.settings.wait_replicas
        if needed == 0:
            return 0
        marker = replica_wait_marker(self.settings.namespace, key)
        timeout_ms = self.settings.wait_timeout_ms
        # WAIT may block longer than REDIS_SOCKET_TIMEOUT: the blocking client, bounded.
        client = self.blocking_client
        target: dict[str, Any] = {}
        if isinstance(client, RedisCluster):
            await client.initialize()
            target["target_nodes"] = client.get_node_from_key(marker)
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(marker, b"1", px=_MARKER_TTL_MS)
            pipe.execute_command("WAIT", needed, timeout_ms, **target)
            _, confirmed = await self.wait(pipe.execute(), timeout_ms / 1000)
        if confirmed < needed:
            raise ReplicaWaitError(
                f"write to {key!r} confirmed by {confirmed} of {needed} replica(s) "
                f"within {timeout_ms} ms"
            )
        return int(confirmed)

    async def close(self) -> None:
        """Close both clients; idempotent."""
        if self.closed:
            return
        self.closed = True
        for client in (self.client, self._blocking):
            if client is not None:
                await client.aclose()


class ConnectionPool:
    """Registry of :class:`Connection` objects: one per event loop and settings.

    Example:
        >>> import asyncio
        >>> async def main() -> None:
        ...     ConnectionPool.get()
        ...     await ConnectionPool.reset_async()
        >>> asyncio.run(main())
    """

    _by_loop: ClassVar[
        weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Settings, Connection]]
    ] = weakref.WeakKeyDictionary()

    @classmethod
    def get(cls, settings: Settings | None = None) -> Connection:
        """The shared connection for ``settings`` (default: current) in the running loop."""
        settings = settings or get_settings()
        loop = asyncio.get_running_loop()
        per_loop = cls._by_loop.setdefault(loop, {})
        conn = per_loop.get(settings)
        if conn is None or conn.closed:
            conn = per_loop[settings] = Connection(settings)
        return conn

    @classmethod
    async def close_loop(cls) -> None:
        """Close every connection of the running loop."""
        per_loop = cls._by_loop.pop(asyncio.get_running_loop(), {})
        for conn in per_loop.values():
            await conn.close()

    @classmethod
    async def reset_async(cls) -> None:
        """Close this loop's connections and re-read the settings (environment, `.env`)."""
        await cls.close_loop()
        reload_settings()


class _HasConnection(Protocol):
    @property
    def _connection(self) -> Connection: ...


S = TypeVar("S", bound=_HasConnection)
P = ParamSpec("P")
R = TypeVar("R")


def translate_error(exc: BaseException) -> CacheError:
    """The library error for a redis-py (or socket) exception.

    Example:
        >>> from redis.exceptions import ConnectionError
        >>> type(translate_error(ConnectionError("down"))).__name__
        'CacheConnectionError'
    """
    if isinstance(exc, CacheError):
        return exc
    if isinstance(exc, (redis_errors.TimeoutError, TimeoutError)):
        return CacheTimeoutError(f"Redis timed out: {exc}")
    if isinstance(exc, redis_errors.NoPermissionError):
        return CachePermissionError(f"Redis refused the command: {exc}")
    if isinstance(exc, _UNREACHABLE):
        return CacheConnectionError(f"Redis unreachable: {exc}")
    return CacheError(f"Redis error: {exc}")


class guard:  # noqa: N801 - used like a function: ``async with guard(conn, "op"):``
    """Circuit breaker and error translation around one Redis operation.

    Redis-py errors leave as the library's typed errors (logged once); connection
    failures count towards the :class:`CircuitBreaker`.

    Example:
        >>> import asyncio
        >>> from fullon_cache.config import Settings
        >>> async def main() -> str:
        ...     async with guard(Connection(Settings()), "demo"):
        ...         return "ran"
        >>> asyncio.run(main())
        'ran'
    """

    __slots__ = ("_conn", "_operation")

    def __init__(self, conn: Connection, operation: str) -> None:
        self._conn = conn
        self._operation = operation

    async def __aenter__(self) -> None:
        self._conn.breaker.before_call()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self._conn.breaker.record_success()
            return
        if isinstance(exc, _TRANSLATED):
            raise _failed(self._conn, self._operation, exc) from exc


_TRANSLATED = (redis_errors.RedisError, OSError, TimeoutError)


def _failed(conn: Connection, operation: str, exc: BaseException) -> CacheError:
    """The library error for ``exc``, counted by the breaker and logged once."""
    error = translate_error(exc)
    if isinstance(error, CacheConnectionError):
        conn.breaker.record_failure()
    logger.error("%s failed: %s", operation, error)
    return error


def guarded(
    fn: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Decorate a cache method so it runs inside :class:`guard`.

    Example:
        >>> guarded.__name__
        'guarded'
    """
    operation = fn.__qualname__

    @functools.wraps(fn)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        # guard() inlined: this wraps every hot call, so it only touches the breaker
        # when it is not clean and the topology when it is not loaded.
        conn = self._connection
        breaker = conn.breaker
        if breaker.opened_at is not None:
            breaker.before_call()
        try:
            if not conn.topology_loaded:
                await conn.ready()
            result = await fn(self, *args, **kwargs)
        except _TRANSLATED as exc:
            raise _failed(conn, operation, exc) from exc
        if breaker.failures:
            breaker.record_success()
        return result

    return wrapper
