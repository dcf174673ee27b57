"""OrdersCache: the per-exchange order queue between bots and executors, and the
order store that tracks every order while it lives.

Queue
-----
Bots push orders (:meth:`OrdersCache.push_open_order`); executors take them, either

* **simply**, with :meth:`OrdersCache.pop_open_order` (the order leaves the queue and
  is the caller's from then on), or
* **reliably**, with :meth:`OrdersCache.claim_order`: the order stays in a processing
  list until the executor calls :meth:`OrdersCache.ack_order` (done) or
  :meth:`OrdersCache.fail_order` (failed; it is queued again with a failure count).
  An order whose executor died, i.e. is not acknowledged within
  ``FULLON_CACHE_ORDER_VISIBILITY_TIMEOUT`` seconds, is handed to another executor;
  :meth:`OrdersCache.extend_claim` buys a slow executor more time. An order delivered
  ``FULLON_CACHE_ORDER_MAX_DELIVERIES`` times without an ack goes to a dead-letter
  list (:meth:`OrdersCache.get_dead_letters`, :meth:`OrdersCache.replay_dead_letters`).

Both ways take from the same queue: each queued order is handed out once, to a pop
or to a claim, never to both. First deliveries are strictly FIFO per exchange; an
order handed out again (failed, or its executor died) goes to the front of the queue,
before the orders that were never delivered.

Guarantees. A push that returned True is never dropped: a full queue rejects the push
with :class:`OrderQueueFullError` (the queue and the processing list together hold at
most ``FULLON_CACHE_MAX_LIST_LENGTH`` orders) instead of discarding anything. A claimed
order is delivered at least once and acknowledged at most once: once an order was
handed to another executor, the first executor's ack returns False. A blocking pop
moves the order into the processing list first (``BLMOVE``) and only then removes it,
so a popper killed mid-way, or a wait cancelled while the reply was in flight, leaves
the order recoverable instead of lost. Only the dead-letter list can shed entries: when
it is full the oldest dead letter is dropped and the drop is logged as an error.

Why lists and not Streams. Lists give strict FIFO, atomic moves (``LMOVE`` /
``BLMOVE``) between lists of one hash tag, and let a retried order go to the front of
the queue. A Stream consumer group would need ``XADD`` at the tail for every retry (a
retried order would wait behind the whole queue), a second structure for failure
counts and errors, and its ``lag``/length bookkeeping breaks with the ``XDEL`` needed
to keep it bounded. Recovery, acks and failures are Lua scripts on keys of one hash tag
(``{exchange}``), so every step is atomic on Redis and on Redis Cluster, and deadlines
use the server's clock (``TIME``), never the executors' clocks.

Each queued entry is ``<id>:<generation>:<deliveries>:<failures>:<len>:<error><order
JSON>``: the id is fixed for the order's life, the generation grows whenever the entry
is queued again, so an entry's bytes are unique and an ack can never hit a newer
delivery of the same order. The order JSON is written by msgspec and never re-encoded
by Lua (Lua's JSON would round prices to 14 digits).

Order store
-----------
Each order is its own hash (``order:{exchange}:<id>``, one field per :class:`Order`
field, each value msgspec JSON) so that :meth:`OrdersCache.save_order_data` merges
with one atomic ``HSET`` and never re-encodes a number. An exchange's orders are
indexed in a sorted set scored by expiry time (``+inf`` while the order lives). A
cancelled order (status ``canceled`` or ``cancelled``) expires after
``CACHE_TTL_ORDER`` seconds: that order alone; a finished one (``filled``,
``rejected``, ``expired``, ``closed``) after ``FULLON_CACHE_TTL_ORDER_DONE`` (7 days by
default; 0 keeps it forever), so the store stays bounded. Expired ids leave the index on every
write (``ZREMRANGEBYSCORE``, which only touches expired entries); reads never write,
so a read-only (dashboard) user can list orders. :meth:`OrdersCache.prune_orders`
also drops ids whose order key vanished (deleted by hand or evicted).

Order statuses are checked against :data:`ORDER_STATUSES` (lower-cased on the way in):
``new, pending, open, partially_filled, filled, canceled, cancelled, rejected,
expired, closed`` (fullon_orm's and ccxt's). Transitions are not policed here.

A separate status store (:meth:`OrdersCache.set_order_status`,
:meth:`OrdersCache.get_order_status` with one argument) keeps one status string per
order id, independently of the order store; a cancelled status expires too.

Example:
    >>> import asyncio
    >>> from fullon_cache.orders_cache import OrdersCache
    >>> async def main() -> None:
    ...     async with OrdersCache() as cache:
    ...         await cache.push_open_order("binance", Order(order_id=1, symbol="BTC/USDT"))
    ...         claim = await cache.claim_order("binance", "executor-1")
    ...         await cache.ack_order("binance", claim)
    >>> asyncio.run(main())  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Mapping
from typing import Any, Final, Literal, overload

import msgspec

from fullon_cache.base_cache import BaseCache, validate_timeout
from fullon_cache.codec import as_model, decode, encode
from fullon_cache.config import Settings
from fullon_cache.connection import Connection, guarded
from fullon_cache.exceptions import CacheError
from fullon_cache.models import Order

__all__ = [
    "ORDER_STATUSES",
    "ClaimedOrder",
    "DeadLetter",
    "OrderQueueFullError",
    "OrdersCache",
]

ORDER_STATUSES: Final = frozenset(
    {
        "new",
        "pending",
        "open",
        "partially_filled",
        "filled",
        "canceled",
        "cancelled",
        "rejected",
        "expired",
        "closed",
    }
)
"""The order statuses the cache accepts (any case; stored lower-cased)."""

_CANCELLED: Final = frozenset({"canceled", "cancelled"})
_FINISHED: Final = frozenset({"filled", "rejected", "expired", "closed"})
_ORDER_FIELDS: Final = frozenset(Order.__struct_fields__)
_RECOVER_BATCH: Final = 100  # oldest claims examined by every pop/claim
_MIN_WAIT: Final = 0.01  # seconds: shortest blocking slice


class OrderQueueFullError(CacheError):
    """The exchange's queue holds ``FULLON_CACHE_MAX_LIST_LENGTH`` orders: the push was
    refused and nothing was written (the order was not queued).

    Example:
        >>> issubclass(OrderQueueFullError, CacheError)
        True
    """


class ClaimedOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order claimed by an executor. Hand it back to :meth:`OrdersCache.ack_order`,
    :meth:`OrdersCache.fail_order` or :meth:`OrdersCache.extend_claim`.

    ``delivery`` is 1 on the first delivery; ``deadline`` (epoch seconds, Redis
    server clock) is when the order may be handed to another executor.

    Example:
        >>> claim = ClaimedOrder(order=Order(order_id=1), exchange="binance",
        ...                      consumer="ex-1", delivery=1, failures=0, deadline=0.0,
        ...                      receipt=b"")
        >>> claim.order.order_id
        1
    """

    order: Order
    exchange: str
    consumer: str
    delivery: int
    failures: int
    deadline: float
    receipt: bytes

    @property
    def id(self) -> str:
        """The queue entry's id (fixed for the order's life in the queue).

        Example:
            >>> ClaimedOrder(order=Order(), exchange="x", consumer="c", delivery=1,
            ...              failures=0, deadline=0.0, receipt=b"ab12:0:0:0:0:{}").id
            'ab12'
        """
        return self.receipt.split(b":", 1)[0].decode()


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """An order that failed or was delivered too often, with its last error.

    Example:
        >>> DeadLetter(id="ab12", order=Order(order_id=1), deliveries=5, failures=5,
        ...            error="boom").error
        'boom'
    """

    id: str
    order: Order
    deliveries: int
    failures: int
    error: str


# --------------------------------------------------------------------------- Lua

_LUA_COMMON = """
local function parse(e)
  local _, stop, tok, gen, dl, fl, n = string.find(e, '^(%x+):(%d+):(%d+):(%d+):(%d+):')
  return tok, tonumber(gen), tonumber(dl), tonumber(fl), string.sub(e, stop + tonumber(n) + 1)
end
local function build(tok, gen, dl, fl, err, body)
  return tok .. ':' .. string.format('%d:%d:%d:%d:', gen, dl, fl, #err) .. err .. body
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function bury(dead, e, cap)
  local n = redis.call('LPUSH', dead, e)
  if n > cap then
    redis.call('LTRIM', dead, 0, cap - 1)
    return n - cap
  end
  return 0
end
-- Hand expired claims back (or to the dead letters); start the clock of entries
-- that sit in the processing list without a claim (their mover died mid-way).
local function recover(q, p, c, dead, now, vt, maxd, cap, limit)
  local items
  if limit > 0 then
    items = redis.call('LRANGE', p, -limit, -1)
  else
    items = redis.call('LRANGE', p, 0, -1)
  end
  local back, buried, dropped = {}, 0, 0
  for i = #items, 1, -1 do
    local e = items[i]
    local tok, gen, dl, fl, body = parse(e)
    local claim = redis.call('HGET', c, tok)
    if not claim then
      redis.call('HSET', c, tok, string.format('%d:', now + vt))
    elseif tonumber(string.match(claim, '^%d+')) <= now then
      redis.call('LREM', p, 1, e)
      redis.call('HDEL', c, tok)
      local again = build(tok, gen + 1, dl + 1, fl, 'visibility timeout expired', body)
      if dl + 1 >= maxd then
        dropped = dropped + bury(dead, again, cap)
        buried = buried + 1
      else
        back[#back + 1] = again
      end
    end
  end
  -- oldest claim ends up first in line
  for i = #back, 1, -1 do
    redis.call('RPUSH', q, back[i])
  end
  return #back, buried, dropped
end
"""

# KEYS: queue, processing; ARGV: cap, entry
_PUSH = """
if redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[1]) then
  return -1
end
return redis.call('LPUSH', KEYS[1], ARGV[2])
"""

# KEYS: queue, processing, claims, dead; ARGV: vt_ms, max_deliveries, cap, mode, consumer
_TAKE = (
    _LUA_COMMON
    + """
local now = now_ms()
local vt = tonumber(ARGV[1])
local r, b, d = recover(KEYS[1], KEYS[2], KEYS[3], KEYS[4], now, vt,
                        tonumber(ARGV[2]), tonumber(ARGV[3]), RECOVER_BATCH)
local e
if ARGV[4] == 'pop' then
  e = redis.call('RPOP', KEYS[1])
else
  e = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if e then
    redis.call('HSET', KEYS[3], (parse(e)), string.format('%d:', now + vt) .. ARGV[5])
  end
end
return {e or false, now + vt, r, b, d}
"""
).replace("RECOVER_BATCH", str(_RECOVER_BATCH))

# KEYS: queue, processing, claims, dead; ARGV: vt_ms, max_deliveries, cap
_RECOVER = (
    _LUA_COMMON
    + """
local r, b, d = recover(KEYS[1], KEYS[2], KEYS[3], KEYS[4], now_ms(), tonumber(ARGV[1]),
                        tonumber(ARGV[2]), tonumber(ARGV[3]), 0)
return {r, b, d}
"""
)

# After BLMOVE queue -> processing (and to extend a claim). KEYS: processing, claims;
# ARGV: entry, vt_ms, mode, consumer. 'pop' removes the entry (the popper owns it);
# 'claim' records the claim's deadline. Returns {entry, deadline}, or {nil, now} when
# the entry is no longer in the processing list (it was recovered meanwhile).
_SETTLE = (
    _LUA_COMMON
    + """
local now = now_ms()
local tok = (parse(ARGV[1]))
if ARGV[3] == 'pop' then
  if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
    return {false, now}
  end
  redis.call('HDEL', KEYS[2], tok)
  return {ARGV[1], now}
end
if not redis.call('LPOS', KEYS[1], ARGV[1]) then
  return {false, now}
end
local deadline = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[2], tok, string.format('%d:', deadline) .. ARGV[4])
return {ARGV[1], deadline}
"""
)

# KEYS: processing, claims; ARGV: entry
_ACK = (
    _LUA_COMMON
    + """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
  return 0
end
redis.call('HDEL', KEYS[2], (parse(ARGV[1])))
return 1
"""
)

# KEYS: queue, processing, claims, dead; ARGV: entry, max_deliveries, cap, error, retry
_FAIL = (
    _LUA_COMMON
    + """
if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0 then
  return {0, 0}
end
local tok, gen, dl, fl, body = parse(ARGV[1])
redis.call('HDEL', KEYS[3], tok)
local e = build(tok, gen + 1, dl + 1, fl + 1, ARGV[4], body)
if ARGV[5] == '0' or dl + 1 >= tonumber(ARGV[2]) then
  return {2, bury(KEYS[4], e, tonumber(ARGV[3]))}
end
redis.call('RPUSH', KEYS[1], e)
return {1, 0}
"""
)

# KEYS: queue, processing, dead; ARGV: cap, limit (-1: all)
_REPLAY = (
    _LUA_COMMON
    + """
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[1]) - redis.call('LLEN', KEYS[2])
local n = tonumber(ARGV[2])
if n < 0 or n > room then
  n = room
end
local moved = 0
while moved < n do
  local e = redis.call('RPOP', KEYS[3])
  if not e then
    break
  end
  local tok, gen, dl, fl, body = parse(e)
  redis.call('LPUSH', KEYS[1], build(tok, gen + 1, 0, 0, '', body))
  moved = moved + 1
end
return moved
"""
)

# KEYS: order, index; ARGV: member, ttl_s, mode (cancel|live|keep), n_set, then n_set
# field/value pairs for HSET, then field/value pairs for HSETNX (defaults).
_SAVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
if ARGV[3] == 'expire' then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
elseif ARGV[3] == 'live' then
  redis.call('PERSIST', KEYS[1])
end
local pttl = redis.call('PTTL', KEYS[1])
if pttl >= 0 then
  redis.call('ZADD', KEYS[2], now + pttl, ARGV[1])
else
  redis.call('ZADD', KEYS[2], '+inf', ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return 1
"""

# KEYS: index, order keys...; ARGV: members. Drops expired ids and ids whose order
# key is gone; returns how many left the index.
_PRUNE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i - 1])
  end
end
return n
"""

_SCRIPTS: Final = {
    "push": _PUSH,
    "take": _TAKE,
    "recover": _RECOVER,
    "settle": _SETTLE,
    "ack": _ACK,
    "fail": _FAIL,
    "replay": _REPLAY,
    "save": _SAVE,
    "prune": _PRUNE,
}


# --------------------------------------------------------------------------- helpers


class _Entry(msgspec.Struct, frozen=True):
    id: str
    deliveries: int
    failures: int
    error: str
    body: bytes


def _entry(token: str, body: bytes) -> bytes:
    return f"{token}:0:0:0:0:".encode() + body


def _parse_entry(raw: bytes) -> _Entry:
    token, _gen, deliveries, failures, size, rest = raw.split(b":", 5)
    length = int(size)
    return _Entry(
        token.decode(),
        int(deliveries),
        int(failures),
        rest[:length].decode(),
        rest[length:],
    )


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def _ident(name: str, value: object) -> str:
    """A str or int identifier (exchange, order id) as text; bool is not an int here."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"{name} must be str or int, got {type(value).__name__}")
    return _text(name, str(value))


def _status(value: object) -> str:
    status = _text("status", value).strip().lower()
    if status not in ORDER_STATUSES:
        raise ValueError(
            f"unknown order status {value!r}; expected one of {sorted(ORDER_STATUSES)}"
        )
    return status


def _order(value: object) -> Order:
    """An Order from a model, mapping, to_dict() object or a bare order id; the status
    (if any) checked and lower-cased. The caller's object is never modified."""
    if isinstance(value, bool):
        raise TypeError("order must be an Order, a mapping or an order id, got bool")
    if isinstance(value, (str, int)):
        return Order(order_id=value if isinstance(value, int) else _text("order id", value))
    order = as_model(value, Order)
    if order.status is not None:
        status = _status(order.status)
        if status != order.status:
            order = msgspec.structs.replace(order, status=status)
    return order


def _order_from_hash(fields: Mapping[bytes, bytes]) -> Order | None:
    if not fields:
        return None
    parts = [
        b'"' + name + b'":' + raw for name, raw in fields.items() if name.decode() in _ORDER_FIELDS
    ]
    return decode(b"{" + b",".join(parts) + b"}", Order)


def _seconds(ms: int) -> float:
    return ms / 1000.0


class OrdersCache(BaseCache):
    """Order queue (simple pop and reliable claim/ack with dead letters), order store
    and order status store. See the module documentation for the guarantees.

    Example:
        >>> await cache.push_open_order("binance", Order(order_id=7, symbol="BTC/USDT"))
        True
        >>> (await cache.pop_open_order("binance")).order_id
        7
    """

    component = "orders"

    def __init__(
        self, *, settings: Settings | None = None, connection: Connection | None = None
    ) -> None:
        super().__init__(settings=settings, connection=connection)
        s = self.settings
        if not math.isfinite(s.order_visibility_timeout) or s.order_visibility_timeout <= 0:
            raise ValueError("FULLON_CACHE_ORDER_VISIBILITY_TIMEOUT must be a positive number")
        if s.order_max_deliveries < 1:
            raise ValueError("FULLON_CACHE_ORDER_MAX_DELIVERIES must be >= 1")
        if s.max_list_length < 1:
            raise ValueError("FULLON_CACHE_MAX_LIST_LENGTH must be >= 1")
        if s.ttl_order < 1:
            raise ValueError("CACHE_TTL_ORDER must be >= 1 second")
        self._visibility_ms = max(1, round(s.order_visibility_timeout * 1000))

    # -- plumbing --------------------------------------------------------------------
    def _queue_keys(self, exchange: str) -> list[str]:
        return [
            self.keys.order_queue(exchange),
            self.keys.order_processing(exchange),
            self.keys.order_claims(exchange),
            self.keys.order_dead(exchange),
        ]

    def _log_recovery(self, exchange: str, requeued: int, buried: int, dropped: int) -> None:
        if requeued:
            self.logger.warning(
                "%s: %d order(s) not acknowledged in time, handed out again", exchange, requeued
            )
        if buried:
            self.logger.error(
                "%s: %d order(s) delivered %d times without ack, moved to dead letters",
                exchange,
                buried,
                self.settings.order_max_deliveries,
            )
        if dropped:
            self.logger.error(
                "%s: dead-letter list full (%d), dropped the %d oldest",
                exchange,
                self.settings.max_list_length,
                dropped,
            )

    def _claim(self, exchange: str, consumer: str, raw: bytes, deadline_ms: int) -> ClaimedOrder:
        entry = _parse_entry(raw)
        return ClaimedOrder(
            order=decode(entry.body, Order),
            exchange=exchange,
            consumer=consumer,
            delivery=entry.deliveries + 1,
            failures=entry.failures,
            deadline=_seconds(deadline_ms),
            receipt=raw,
        )

    async def _take(
        self, exchange: str, timeout: float, mode: Literal["pop", "claim"], consumer: str
    ) -> tuple[bytes, int] | None:
        """One pop or claim: at once, or waiting up to ``timeout`` seconds on the blocking
        client in slices of at most the visibility timeout (between slices, expired claims
        are recovered, so a waiting executor also picks up a dead executor's orders)."""
        keys = self._queue_keys(exchange)
        s = self.settings
        args: list[Any] = [self._visibility_ms, s.order_max_deliveries, s.max_list_length]
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        raw, deadline = await self._take_now(exchange, keys, [*args, mode, consumer])
        while raw is None:
            remaining = end - loop.time()
            if remaining <= 0:
                return None
            # >= 10 ms: Redis before 7.0 truncates a BLMOVE timeout to whole ms, and 0
            # would mean "wait forever".
            wait = max(_MIN_WAIT, min(remaining, s.order_visibility_timeout))
            conn = self._connection
            moved = await conn.wait(
                conn.blocking_client.blmove(keys[0], keys[1], wait, "RIGHT", "LEFT"),  # type: ignore[arg-type]
                wait,
            )
            if moved is None:
                # Between slices, recover expired claims and look again.
                raw, deadline = await self._take_now(exchange, keys, [*args, mode, consumer])
            else:
                # None when the entry was recovered (queued again) between the move and
                # now: it is not ours any more, so keep waiting.
                raw, deadline = await self._script(_SCRIPTS["settle"])(
                    keys=keys[1:3], args=[moved, self._visibility_ms, mode, consumer]
                )
        return raw, deadline

    async def _take_now(
        self, exchange: str, keys: list[str], args: list[Any]
    ) -> tuple[bytes | None, int]:
        raw, deadline, *counts = await self._script(_SCRIPTS["take"])(keys=keys, args=args)
        self._log_recovery(exchange, *counts)
        return raw, deadline

    # -- queue -----------------------------------------------------------------------
    @guarded
    async def push_open_order(self, exchange: str, order: Any) -> bool:
        """Queue an order at the back of the exchange's FIFO queue.

        ``order`` is an :class:`Order`, a mapping, any object with ``to_dict()``, or a
        bare order id (str or int, queued as ``Order(order_id=...)``, the integration
        guide's form). Returns True once the order is queued; a full queue raises
        :class:`OrderQueueFullError` and queues nothing.

        Example:
            >>> await cache.push_open_order("binance", {"order_id": 1, "side": "buy"})
            True
            >>> await cache.push_open_order("binance", "LOCAL_001")
            True
            >>> await cache.get_queue_length("binance")
            2
        """
        name = _ident("exchange", exchange)
        body = encode(_order(order))
        entry = _entry(uuid.uuid4().hex, body)
        keys = self._queue_keys(name)
        length = await self._script(_SCRIPTS["push"])(
            keys=keys[:2], args=[self.settings.max_list_length, entry]
        )
        if length < 0:
            raise OrderQueueFullError(
                f"order queue of {name!r} is full ({self.settings.max_list_length} orders "
                "queued or in processing); the order was not queued"
            )
        await self._connection.wait_for_replicas(keys[0])
        return True

    @guarded
    async def pop_open_order(self, exchange: str, timeout: float = 0) -> Order | None:
        """Take the oldest queued order, or None. ``timeout`` 0 returns at once; > 0 waits
        up to that many seconds (also longer than ``REDIS_SOCKET_TIMEOUT``).

        The order leaves the queue for good: use :meth:`claim_order` when it must survive
        the caller's crash.

        Example:
            >>> await cache.push_open_order("kraken", Order(order_id=1))
            True
            >>> await cache.push_open_order("kraken", Order(order_id=2))
            True
            >>> [(await cache.pop_open_order("kraken")).order_id for _ in range(2)]
            [1, 2]
            >>> await cache.pop_open_order("kraken", timeout=0.1) is None
            True
        """
        name = _ident("exchange", exchange)
        taken = await self._take(name, validate_timeout(timeout), "pop", "")
        if taken is None:
            return None
        return decode(_parse_entry(taken[0]).body, Order)

    @guarded
    async def get_queue_length(self, exchange: str) -> int:
        """How many orders wait in the exchange's queue (claimed ones not counted).

        Example:
            >>> await cache.get_queue_length("binance")
            0
        """
        return int(await self.redis.llen(self.keys.order_queue(_ident("exchange", exchange))))

    @guarded
    async def get_queue_stats(self, exchange: str) -> dict[str, int]:
        """Counts of the exchange's orders: ``queued``, ``processing`` (claimed, not yet
        acknowledged) and ``dead`` (dead letters).

        Example:
            >>> await cache.push_open_order("binance", Order(order_id=1))
            True
            >>> await cache.get_queue_stats("binance")
            {'queued': 1, 'processing': 0, 'dead': 0}
        """
        queue, processing, _claims, dead = self._queue_keys(_ident("exchange", exchange))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(queue)
            pipe.llen(processing)
            pipe.llen(dead)
            counts = await pipe.execute()
        return {"queued": counts[0], "processing": counts[1], "dead": counts[2]}

    # -- reliable consumers ----------------------------------------------------------
    @guarded
    async def claim_order(
        self, exchange: str, consumer: str, timeout: float = 0
    ) -> ClaimedOrder | None:
        """Claim the next order for ``consumer`` (an executor's name), or None.

        The order stays recoverable until :meth:`ack_order`; if it is not acknowledged
        within ``FULLON_CACHE_ORDER_VISIBILITY_TIMEOUT`` seconds it is handed to another
        executor (expired claims are recovered by every claim and pop, and by
        :meth:`recover_stale_orders`). ``timeout`` as in :meth:`pop_open_order`.

        Example:
            >>> await cache.push_open_order("binance", Order(order_id=5))
            True
            >>> claim = await cache.claim_order("binance", "executor-1")
            >>> claim.order.order_id, claim.delivery, claim.consumer
            (5, 1, 'executor-1')
            >>> await cache.ack_order("binance", claim)
            True
        """
        name = _ident("exchange", exchange)
        who = _text("consumer", consumer)
        taken = await self._take(name, validate_timeout(timeout), "claim", who)
        if taken is None:
            return None
        return self._claim(name, who, *taken)

    @guarded
    async def ack_order(self, exchange: str, claim: ClaimedOrder) -> bool:
        """Acknowledge a claimed order: it is done and leaves the cache's queue.

        Returns False when the claim was no longer held (its visibility timeout passed
        and the order was handed to another executor, or it was already acknowledged):
        exactly one ack per order returns True.

        Example:
            >>> await cache.push_open_order("binance", Order(order_id=5))
            True
            >>> claim = await cache.claim_order("binance", "executor-1")
            >>> await cache.ack_order("binance", claim), await cache.ack_order("binance", claim)
            (True, False)
        """
        name = _ident("exchange", exchange)
        receipt = self._receipt(claim)
        keys = self._queue_keys(name)
        return bool(await self._script(_SCRIPTS["ack"])(keys=keys[1:3], args=[receipt]))

    @guarded
    async def fail_order(
        self, exchange: str, claim: ClaimedOrder, error: str = "", *, retry: bool = True
    ) -> bool:
        """Give a claimed order back after a failure (a nack): it goes to the front of
        the queue with its failure count raised, or to the dead letters when it has
        been delivered ``FULLON_CACHE_ORDER_MAX_DELIVERIES`` times or ``retry`` is False
        (a permanent failure). Returns False when the claim was no longer held.

        Example:
            >>> await cache.push_open_order("binance", Order(order_id=5))
            True
            >>> claim = await cache.claim_order("binance", "executor-1")
            >>> await cache.fail_order("binance", claim, "exchange timeout")
            True
            >>> again = await cache.claim_order("binance", "executor-2")
            >>> again.delivery, again.failures
            (2, 1)
            >>> await cache.fail_order("binance", again, "insufficient funds", retry=False)
            True
            >>> [d.error for d in await cache.get_dead_letters("binance")]
            ['insufficient funds']
        """
        name = _ident("exchange", exchange)
        receipt = self._receipt(claim)
        if not isinstance(error, str):
            raise TypeError(f"error must be str, got {type(error).__name__}")
        if not isinstance(retry, bool):
            raise TypeError("retry must be a bool")
        s = self.settings
        outcome, dropped = await self._script(_SCRIPTS["fail"])(
            keys=self._queue_keys(name),
            args=[receipt, s.order_max_deliveries, s.max_list_length, error, int(retry)],
        )
        if outcome == 2:
            self.logger.error(
                "%s: order %s failed (%s), moved to dead letters",
                name,
                claim.order.order_id,
                error or "no error given",
            )
            self._log_recovery(name, 0, 0, dropped)
        return bool(outcome)

    @guarded
    async def extend_claim(self, exchange: str, claim: ClaimedOrder) -> ClaimedOrder | None:
        """Renew a claim for another visibility timeout (a slow executor's heartbeat).
        Returns the renewed claim, or None when it was no longer held.

        Example:
            >>> await cache.push_open_order("binance", Order(order_id=5))
            True
            >>> claim = await cache.claim_order("binance", "executor-1")
            >>> renewed = await cache.extend_claim("binance", claim)
            >>> renewed.deadline >= claim.deadline
            True
            >>> await cache.ack_order("binance", renewed)
            True
            >>> await cache.extend_claim("binance", renewed) is None
            True
        """
        name = _ident("exchange", exchange)
        receipt = self._receipt(claim)
        keys = self._queue_keys(name)
        held, deadline = await self._script(_SCRIPTS["settle"])(
            keys=keys[1:3], args=[receipt, self._visibility_ms, "claim", claim.consumer]
        )
        if held is None:
            return None
        return msgspec.structs.replace(claim, deadline=_seconds(deadline))

    @guarded
    async def recover_stale_orders(self, exchange: str) -> int:
        """Hand every expired claim of the exchange back to the queue (or to the dead
        letters after too many deliveries); returns how many were handled. Claims and
        pops already do this for the oldest claims; call this from a janitor to sweep
        them all.

        Example:
            >>> await cache.recover_stale_orders("binance")
            0
        """
        name = _ident("exchange", exchange)
        s = self.settings
        requeued, buried, dropped = await self._script(_SCRIPTS["recover"])(
            keys=self._queue_keys(name),
            args=[self._visibility_ms, s.order_max_deliveries, s.max_list_length],
        )
        self._log_recovery(name, requeued, buried, dropped)
        return int(requeued + buried)

    @guarded
    async def get_dead_letters(self, exchange: str) -> list[DeadLetter]:
        """The exchange's dead letters, oldest first.

        Example:
            >>> await cache.get_dead_letters("binance")
            []
        """
        key = self.keys.order_dead(_ident("exchange", exchange))
        raws: list[bytes] = await self.redis.lrange(key, 0, -1)  # type: ignore[assignment]
        letters = []
        for raw in reversed(raws):
            entry = _parse_entry(raw)
            letters.append(
                DeadLetter(
                    id=entry.id,
                    order=decode(entry.body, Order),
                    deliveries=entry.deliveries,
                    failures=entry.failures,
                    error=entry.error,
                )
            )
        return letters

    @guarded
    async def replay_dead_letters(self, exchange: str, limit: int | None = None) -> int:
        """Queue dead letters again (oldest first, behind the orders already queued),
        with fresh delivery and failure counts; at most ``limit`` of them and never
        past the queue's bound (the rest stay dead). Returns how many were queued.

        Example:
            >>> await cache.push_open_order("binance", Order(order_id=5))
            True
            >>> claim = await cache.claim_order("binance", "executor-1")
            >>> await cache.fail_order("binance", claim, "halted", retry=False)
            True
            >>> await cache.replay_dead_letters("binance")
            1
            >>> (await cache.claim_order("binance", "executor-1")).delivery
            1
        """
        name = _ident("exchange", exchange)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise TypeError("limit must be an int or None")
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        queue, processing, _claims, dead = self._queue_keys(name)
        moved = await self._script(_SCRIPTS["replay"])(
            keys=[queue, processing, dead],
            args=[self.settings.max_list_length, -1 if limit is None else limit],
        )
        return int(moved)

    @guarded
    async def delete_dead_letters(self, exchange: str) -> int:
        """Discard the exchange's dead letters; returns how many were discarded.

        Example:
            >>> await cache.delete_dead_letters("binance")
            0
        """
        key = self.keys.order_dead(_ident("exchange", exchange))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(key)
            pipe.delete(key)
            count, _ = await pipe.execute()
        return int(count)

    @staticmethod
    def _receipt(claim: object) -> bytes:
        if not isinstance(claim, ClaimedOrder):
            raise TypeError(f"claim must be a ClaimedOrder, got {type(claim).__name__}")
        return claim.receipt

    # -- order status strings --------------------------------------------------------
    @guarded
    async def set_order_status(self, order_id: str | int, status: str) -> bool:
        """Record an order's status string (a cancelled status expires after
        ``CACHE_TTL_ORDER`` seconds, a finished one after ``FULLON_CACHE_TTL_ORDER_DONE``,
        a live one lives until deleted).

        Example:
            >>> await cache.set_order_status("ORD_1", "open")
            True
            >>> await cache.get_order_status("ORD_1")
            'open'
        """
        key = self.keys.order_status(_ident("order_id", order_id))
        value = _status(status)
        await self.redis.set(key, value.encode(), ex=self._ttl_of(value))
        return True

    @guarded
    async def delete_order_status(self, order_id: str | int) -> bool:
        """Forget an order's status string; True if there was one.

        Example:
            >>> await cache.set_order_status("ORD_1", "filled")
            True
            >>> await cache.delete_order_status("ORD_1"), await cache.delete_order_status("ORD_1")
            (True, False)
        """
        key = self.keys.order_status(_ident("order_id", order_id))
        return bool(await self.redis.delete(key))

    @overload
    async def get_order_status(self, order_id: str | int, /) -> str | None: ...

    @overload
    async def get_order_status(self, exchange: str, order_id: str | int, /) -> Order | None: ...

    @guarded
    async def get_order_status(
        self,
        first: str | int | None = None,
        second: str | int | None = None,
        *,
        exchange: str | None = None,
        order_id: str | int | None = None,
    ) -> str | Order | None:
        """With one argument, the order's status string (:meth:`set_order_status`) or
        None; with an exchange and an order id, the stored :class:`Order`
        (:meth:`get_order`) or None.

        Example:
            >>> await cache.set_order_status("ORD_1", "open")
            True
            >>> await cache.get_order_status("ORD_1")
            'open'
            >>> await cache.save_order_data("binance", "ORD_1", {"status": "filled"})
            True
            >>> (await cache.get_order_status("binance", "ORD_1")).status
            'filled'
        """
        given = [v for v in (first, second) if v is not None]
        if exchange is not None:
            given.insert(0, exchange)
        if order_id is not None:
            given.append(order_id)
        if len(given) == 1:
            key = self.keys.order_status(_ident("order_id", given[0]))
            raw: bytes | None = await self.redis.get(key)  # type: ignore[assignment]
            return None if raw is None else raw.decode()
        if len(given) == 2:
            return await self._get_order(_ident("exchange", given[0]), _ident("order_id", given[1]))
        raise TypeError("get_order_status takes (order_id) or (exchange, order_id)")

    # -- order store -----------------------------------------------------------------
    @overload
    async def save_order_data(self, exchange: str | int, order: Any, /) -> bool: ...

    @overload
    async def save_order_data(
        self, exchange: str | int, order_id: str | int, data: Any, /
    ) -> bool: ...

    @guarded
    async def save_order_data(self, exchange: str | int, order: Any, data: Any = None, /) -> bool:
        """Merge order data into the exchange's stored order (created if missing), in
        one atomic step.

        Two forms: ``(exchange, order)`` with an :class:`Order`, mapping or ``to_dict()``
        object, stored under its ``ex_order_id`` (or ``order_id`` when it has none); and
        ``(exchange, order_id, data)`` with a mapping (or model) of the fields to merge
        (``ex_order_id`` defaults to ``order_id``). Fields given as None and unknown keys
        are ignored: a merge never erases a stored value. A cancelled status starts the
        order's ``CACHE_TTL_ORDER`` expiry; another status clears it.

        Example:
            >>> data = {"symbol": "BTC/USDT", "volume": 0.1}
            >>> await cache.save_order_data("binance", "ORD_1", data)
            True
            >>> await cache.save_order_data("binance", "ORD_1", {"status": "filled"})
            True
            >>> order = await cache.get_order("binance", "ORD_1")
            >>> order.symbol, order.volume, order.status, order.ex_order_id
            ('BTC/USDT', 0.1, 'filled', 'ORD_1')
        """
        name = _ident("exchange", exchange)
        defaults: dict[str, Any] = {}
        if data is None:
            if isinstance(order, (str, int)):
                raise TypeError("save_order_data(exchange, order_id) needs the data to save")
            model = _order(order)
            ident = model.ex_order_id if model.ex_order_id is not None else model.order_id
            if ident is None:
                raise ValueError("the order has neither ex_order_id nor order_id")
            member = _ident("order id", ident)
        else:
            member = _ident("order_id", order)
            if isinstance(data, (str, int)):
                raise TypeError("data must be a mapping, an Order or have to_dict()")
            model = _order(data)
            defaults["ex_order_id"] = member
        fields = {k: v for k, v in msgspec.structs.asdict(model).items() if v is not None}
        for key in fields:
            defaults.pop(key, None)
        ttl = None
        if "status" in fields:
            ttl = self._ttl_of(fields["status"])
            mode = "live" if ttl is None else "expire"
        else:
            mode = "keep"
        args: list[Any] = [member, ttl or 0, mode, len(fields)]
        for pairs in (fields, defaults):
            for field, value in pairs.items():
                args += [field, encode(value)]
        await self._script(_SCRIPTS["save"])(
            keys=[self.keys.order(name, member), self.keys.order_index(name)], args=args
        )
        return True

    def _ttl_of(self, status: str) -> int | None:
        """Seconds an order (or status) with ``status`` lives: CACHE_TTL_ORDER once
        cancelled, FULLON_CACHE_TTL_ORDER_DONE once finished otherwise (0: forever),
        None while it lives."""
        if status in _CANCELLED:
            return self.settings.ttl_order
        if status in _FINISHED and self.settings.ttl_order_done > 0:
            return self.settings.ttl_order_done
        return None

    async def _get_order(self, exchange: str, order_id: str) -> Order | None:
        fields = await self.redis.hgetall(self.keys.order(exchange, order_id))
        return _order_from_hash(fields)  # type: ignore[arg-type]

    @guarded
    async def get_order(self, exchange: str | int, order_id: str | int) -> Order | None:
        """The exchange's stored order, or None.

        Example:
            >>> await cache.save_order_data("binance", Order(ex_order_id="X1", side="buy"))
            True
            >>> (await cache.get_order("binance", "X1")).side
            'buy'
            >>> await cache.get_order("binance", "nope") is None
            True
        """
        return await self._get_order(_ident("exchange", exchange), _ident("order_id", order_id))

    @guarded
    async def get_orders(self, exchange: str | int) -> list[Order]:
        """Every stored order of the exchange (expired cancelled ones excluded), in no
        particular order.

        Example:
            >>> await cache.save_order_data("binance", "A", {"status": "open"})
            True
            >>> await cache.save_order_data("binance", "B", {"status": "filled"})
            True
            >>> sorted(o.ex_order_id for o in await cache.get_orders("binance"))
            ['A', 'B']
        """
        name = _ident("exchange", exchange)
        ids = await self._indexed_ids(name)
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for order_id in ids:
                pipe.hgetall(self.keys.order(name, order_id))
            hashes = await pipe.execute()
        return [order for order in map(_order_from_hash, hashes) if order is not None]

    @guarded
    async def prune_orders(self, exchange: str | int) -> int:
        """Drop from the exchange's order index the ids of expired cancelled orders and
        of orders whose key vanished (deleted by hand, evicted); returns how many.
        Writes do the first part as they go; call this from a maintenance task.

        Example:
            >>> await cache.save_order_data("binance", "A", {"status": "open"})
            True
            >>> await cache.redis.delete(cache.keys.order("binance", "A"))
            1
            >>> await cache.prune_orders("binance")
            1
            >>> await cache.get_orders("binance")
            []
        """
        name = _ident("exchange", exchange)
        index = self.keys.order_index(name)
        ids = await self._indexed_ids(name)
        keys = [index, *(self.keys.order(name, i) for i in ids)]
        removed: int = await self._script(_SCRIPTS["prune"])(keys=keys, args=ids)
        return removed

    async def _indexed_ids(self, exchange: str) -> list[str]:
        members: list[bytes] = await self.redis.zrange(self.keys.order_index(exchange), 0, -1)  # type: ignore[assignment]
        return [member.decode() for member in members]

    @guarded
    async def delete_order(self, exchange: str | int, order_id: str | int) -> bool:
        """Remove a stored order; True if it was there.

        Example:
            >>> await cache.save_order_data("binance", "A", {"status": "open"})
            True
            >>> await cache.delete_order("binance", "A"), await cache.get_orders("binance")
            (True, [])
        """
        name = _ident("exchange", exchange)
        member = _ident("order_id", order_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.order(name, member))
            pipe.zrem(self.keys.order_index(name), member)
            deleted, _ = await pipe.execute()
        return bool(deleted)
