"""TradesCache: per-symbol trade lists with an atomic drain, dedupe of replayed trades,
per-user trade queues, trade-stream status times and analytics.

Storage (every key from :mod:`fullon_cache.keys`):

* ``trades:{<exchange>}:<SYMBOL>`` — a list of JSON trades, newest at the head (LPUSH).
  'BTC/USDT' and 'BTCUSDT' name the same list. :meth:`TradesCache.get_trades` drains it
  with one Lua script (RENAME into a batch key + LRANGE), so with any number of
  concurrent pushers and drainers every trade is returned exactly once.
* ``trade_seen:{<exchange>}:<SYMBOL>:<ex_trade_id>`` — the dedupe marker of one trade,
  with a TTL of ``FULLON_CACHE_TRADE_DEDUPE_WINDOW`` seconds. It shares the hash tag of
  the list, so the check, the marker and the push are one atomic script, also on Redis
  Cluster. The id is scoped to the symbol because several exchanges (Binance among them)
  number trades per symbol: the same id on two symbols is two trades.
* ``user_trades:{<uid>}:<exchange>`` (FIFO queue) and its markers ``user_trade_seen:{<uid>}:...``.
* ``trade_push:{<exchange or uid>}:<token>`` and ``trade_drain:{<exchange>}:...:<token>``
  (TTL 120 s): redis-py re-sends a command after a connection error, and a script that
  already ran would then run twice. Every push and drain carries a random token, so the
  re-sent push is recognised as the same push (not stored twice, not reported as a
  duplicate) and the re-sent drain returns the batch the first run took (not lost).
* ``trade_status:{<trade_key>}`` — time of the last update of a trade stream (JSON, ISO UTC).

Bounds: a list holds at most ``FULLON_CACHE_MAX_LIST_LENGTH`` trades. At the cap a push is
*refused* with :class:`TradeListFullError` (nothing is written, not even the dedupe
marker, so the same trade can be pushed again once a consumer drained the list): an
acknowledged trade is never dropped to make room.

Example:
    >>> from fullon_cache.models import Trade
    >>> async def main() -> int:
    ...     async with TradesCache() as cache:
    ...         await cache.push_trade("binance", Trade(symbol="BTC/USDT", volume=1, price=2))
    ...         return len(await cache.get_trades("BTCUSDT", "binance"))
    >>> # asyncio.run(main()) -> 1
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec
from redis.exceptions import RedisError

from fullon_cache.base_cache import BaseCache
from fullon_cache.codec import as_model, decode, decode_all, encode
from fullon_cache.connection import guarded
from fullon_cache.exceptions import CacheDataError, CacheError
from fullon_cache.keys import normalize_symbol
from fullon_cache.models import Trade, to_utc

__all__ = ["TradeListFullError", "TradesCache"]

# KEYS[1] list, KEYS[2] marker: the trade's dedupe marker, or (no id / no dedupe) a
# marker of this call only. ARGV payload, cap, marker TTL, call token.
# Returns 1 pushed (or already pushed by this very call: a retried command),
# 0 duplicate (nothing written), -1 list full (nothing written).
_PUSH_LUA = """
local mark = redis.call('GET', KEYS[2])
if mark then
  if mark == ARGV[4] then
    return 1
  end
  return 0
end
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then
  return -1
end
redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[3])
redis.call('LPUSH', KEYS[1], ARGV[1])
return 1
"""

# KEYS[1] list, KEYS[2] this call's batch; ARGV batch TTL. Moves the whole list into
# the batch key (RENAME: atomic, O(1)) and returns the batch, newest first. Run again
# by a retry, it returns the same batch instead of a later, empty list.
_DRAIN_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    return {}
  end
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return redis.call('LRANGE', KEYS[2], 0, -1)
"""

# How long a call marker / drained batch outlives its call: longer than every retry of
# one command (attempts x socket timeout), short enough to cost little memory.
_CALL_TTL = 120


class TradeListFullError(CacheError):
    """A trade list reached ``FULLON_CACHE_MAX_LIST_LENGTH``: the push was refused and
    nothing was written. Drain the list (its consumer is behind) and push again.

    Example:
        >>> issubclass(TradeListFullError, CacheError)
        True
    """


def _name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value


def _uid(value: object) -> str | int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"uid must be str or int, got {type(value).__name__}")
    if isinstance(value, str) and not value.strip():
        raise ValueError("uid must not be empty")
    return value


def _coerce_trade(trade: Any, symbol: str | None = None, *, need_symbol: bool = True) -> Trade:
    """Validate a trade (model, mapping or ``to_dict()`` object) without touching the
    caller's object; fill or check its symbol against ``symbol``."""
    model = as_model(trade, Trade)
    for field in ("price", "volume"):
        value = getattr(model, field)
        if value is not None and value < 0:
            raise ValueError(f"Trade.{field} must be >= 0, got {value!r}")
    if symbol is not None:
        if model.symbol is None:
            model = msgspec.structs.replace(model, symbol=symbol)
        elif normalize_symbol(model.symbol) != normalize_symbol(symbol):
            raise ValueError(f"trade symbol {model.symbol!r} does not match {symbol!r}")
    if model.symbol is not None:
        normalize_symbol(model.symbol)
    elif need_symbol:
        raise ValueError("the trade has no symbol")
    return model


def _trade_id(model: Trade) -> str | None:
    """The exchange trade id used for dedupe, or None (blank ids are never deduped)."""
    if model.ex_trade_id is None or not model.ex_trade_id.strip():
        return None
    return model.ex_trade_id


def _validate_count(count: int | None) -> int | None:
    if count is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"count must be int or None, got {type(count).__name__}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return count


class TradesCache(BaseCache):
    """Trade lists (atomic drain, dedupe, bounded), user trade queues, trade-stream
    status times and analytics.

    Example:
        >>> cache = TradesCache()
        >>> cache.logger.name
        'fullon.cache.trades'
    """

    component: ClassVar[str] = "trades"

    # -- internals -------------------------------------------------------------------
    async def _push(
        self, list_key: str, tag: str | int, seen_key: str | None, model: Trade
    ) -> bool:
        token = uuid.uuid4().hex
        window = self.settings.trade_dedupe_window
        if seen_key is None or window <= 0:
            marker, ttl = self.keys.trade_push(tag, token), _CALL_TTL
        else:
            marker, ttl = seen_key, window
        script = self._script(_PUSH_LUA)
        cap = self.settings.max_list_length
        result = await script(keys=[list_key, marker], args=[encode(model), cap, ttl, token])
        if result == -1:
            self.logger.warning("trade list %s is full (%d): push refused", list_key, cap)
            raise TradeListFullError(
                f"{self.keys.relative(list_key)} holds {cap} trades "
                "(FULLON_CACHE_MAX_LIST_LENGTH); drain it before pushing more"
            )
        if result == 0:
            self.logger.debug("duplicate trade %s on %s ignored", model.ex_trade_id, list_key)
            return False
        await self._connection.wait_for_replicas(list_key)
        return True

    def _decode_all(self, raws: Iterable[bytes | str], key: str) -> list[Trade]:
        """Decode stored trades, oldest first (lists hold newest first). An entry that
        does not decode is logged with its bytes and skipped, so one corrupt entry
        never costs the valid trades of a drained batch."""
        ordered = list(raws)
        ordered.reverse()
        with contextlib.suppress(CacheDataError):
            return decode_all(ordered, Trade)  # every entry decodes: the usual case
        trades: list[Trade] = []
        for raw in ordered:
            try:
                trades.append(decode(raw, Trade))
            except CacheDataError as exc:
                self.logger.error("skipping corrupt trade in %s: %s (%r)", key, exc, raw[:200])
        return trades

    # -- trade lists -----------------------------------------------------------------
    @guarded
    async def push_trade(self, exchange: str, trade: Trade | Mapping[str, Any] | Any) -> bool:
        """Append a trade to its symbol's list on ``exchange`` (the symbol comes from the
        trade). Returns True when stored, False when the same trade (same exchange,
        symbol and ``ex_trade_id``) was already pushed within
        ``FULLON_CACHE_TRADE_DEDUPE_WINDOW`` seconds — nothing is written then. Trades
        without ``ex_trade_id`` are never deduped. Raises :class:`TradeListFullError`
        when the list is at its cap (nothing written).

        Example:
            >>> trade = Trade(ex_trade_id="t1", symbol="BTC/USDT", side="buy", volume=1, price=5)
            >>> await cache.push_trade("binance", trade)
            True
            >>> await cache.push_trade("binance", trade)
            False
        """
        exchange = _name(exchange, "exchange")
        model = _coerce_trade(trade)
        symbol = model.symbol or ""
        list_key = self.keys.trades(exchange, symbol)
        trade_id = _trade_id(model)
        seen = None if trade_id is None else self.keys.trade_seen(exchange, trade_id, symbol)
        return await self._push(list_key, exchange, seen, model)

    async def push_trade_list(
        self, symbol: str, exchange: str, trade: Trade | Mapping[str, Any] | Any
    ) -> bool:
        """The older name of :meth:`push_trade`, with the symbol first: a trade without a
        symbol takes ``symbol``; a trade with another symbol is a ValueError.

        Example:
            >>> await cache.push_trade_list("BTC/USDT", "binance", {"volume": 1.0, "price": 9.0})
            True
            >>> [t.symbol for t in await cache.get_trades_list("BTC/USDT", "binance")]
            ['BTC/USDT']
        """
        symbol = _name(symbol, "symbol")
        exchange = _name(exchange, "exchange")
        return await self.push_trade(exchange, _coerce_trade(trade, symbol))

    @guarded
    async def get_trades(self, symbol: str, exchange: str) -> list[Trade]:
        """Drain the symbol's trade list atomically and return its trades oldest first.
        Every pushed trade is returned by exactly one drain, even with concurrent
        pushers and drainers. Empty list: ``[]``.

        Example:
            >>> await cache.push_trade("kraken", Trade(symbol="ETH/USDT", volume=2, price=3))
            True
            >>> [t.volume for t in await cache.get_trades("ETHUSDT", "kraken")]
            [2.0]
            >>> await cache.get_trades("ETH/USDT", "kraken")
            []
        """
        exchange, symbol = _name(exchange, "exchange"), _name(symbol, "symbol")
        key = self.keys.trades(exchange, symbol)
        batch = self.keys.trade_drain(exchange, symbol, uuid.uuid4().hex)
        script = self._script(_DRAIN_LUA)
        raws: list[bytes] = await script(keys=[key, batch], args=[_CALL_TTL])
        if raws:
            # The batch is ours now; if this clean-up fails its TTL removes it.
            with contextlib.suppress(RedisError, OSError):
                await self.redis.unlink(batch)
        return self._decode_all(raws, key)

    async def get_trades_list(self, symbol: str, exchange: str) -> list[Trade]:
        """The older name of :meth:`get_trades` (drains the list).

        Example:
            >>> await cache.push_trade_list("BTC/USDT", "binance", {"price": 1.0})
            True
            >>> len(await cache.get_trades_list("BTCUSDT", "binance"))
            1
        """
        return await self.get_trades(symbol, exchange)

    @guarded
    async def peek_trades(
        self, symbol: str, exchange: str, count: int | None = None
    ) -> list[Trade]:
        """The symbol's trades without draining them, oldest first; with ``count``, only
        the ``count`` most recent ones (still oldest first).

        Example:
            >>> for price in (1, 2, 3):
            ...     _ = await cache.push_trade("binance", Trade(symbol="BTC/USDT", price=price))
            >>> [t.price for t in await cache.peek_trades("BTC/USDT", "binance", count=2)]
            [2.0, 3.0]
            >>> len(await cache.peek_trades("BTC/USDT", "binance"))
            3
        """
        key = self.keys.trades(_name(exchange, "exchange"), _name(symbol, "symbol"))
        limit = _validate_count(count)
        if limit == 0:
            return []
        end = -1 if limit is None else limit - 1
        raws = await self.redis.lrange(key, 0, end)
        return self._decode_all(raws, key)

    @guarded
    async def get_trade_analytics(self, symbol: str, exchange: str) -> dict[str, Any]:
        """Statistics of the trades currently in the symbol's list, WITHOUT draining it:
        ``count, buy_count, sell_count, buy_volume, sell_volume, total_volume,
        total_cost`` (sum of price x volume), ``vwap`` (None without volume),
        ``total_fees, min_price, max_price, last_price`` (None without prices),
        ``first_time, last_time`` (UTC datetimes, None without times). Trades lacking a
        price or volume count in ``count`` but not in the volume figures.

        Example:
            >>> buy = Trade(symbol="BTC/USDT", side="buy", volume=1, price=10, fee=0.1)
            >>> sell = Trade(symbol="BTC/USDT", side="sell", volume=3, price=20, fee=0.2)
            >>> for trade in (buy, sell):
            ...     _ = await cache.push_trade("binance", trade)
            >>> stats = await cache.get_trade_analytics("BTC/USDT", "binance")
            >>> stats["count"], stats["buy_volume"], stats["sell_volume"], stats["vwap"]
            (2, 1.0, 3.0, 17.5)
            >>> len(await cache.peek_trades("BTC/USDT", "binance"))
            2
        """
        key = self.keys.trades(_name(exchange, "exchange"), _name(symbol, "symbol"))
        raws = await self.redis.lrange(key, 0, -1)
        return _analytics(symbol, exchange, self._decode_all(raws, key))

    # -- user trades -----------------------------------------------------------------
    @guarded
    async def push_user_trade(
        self, uid: str | int, exchange: str, trade: Trade | Mapping[str, Any] | Any
    ) -> bool:
        """Queue a trade of user ``uid`` on ``exchange`` (FIFO). Deduped like
        :meth:`push_trade` (per user, exchange, symbol and ``ex_trade_id``); True when
        stored, False for a duplicate; :class:`TradeListFullError` at the cap.

        Example:
            >>> trade = {"ex_trade_id": "u1", "symbol": "BTC/USDT", "price": 3.0}
            >>> await cache.push_user_trade(1, "binance", trade)
            True
            >>> (await cache.pop_user_trade(1, "binance")).ex_trade_id
            'u1'
        """
        uid = _uid(uid)
        exchange = _name(exchange, "exchange")
        model = _coerce_trade(trade, need_symbol=False)
        list_key = self.keys.user_trades(uid, exchange)
        trade_id = _trade_id(model)
        seen = (
            None
            if trade_id is None
            else self.keys.user_trade_seen(uid, exchange, trade_id, model.symbol)
        )
        return await self._push(list_key, uid, seen, model)

    @guarded
    async def pop_user_trade(
        self, uid: str | int, exchange: str, timeout: float = 0
    ) -> Trade | None:
        """Remove and return the oldest queued trade of ``uid`` on ``exchange``, or None.
        ``timeout`` 0 returns at once; > 0 waits up to that many seconds (also longer
        than the socket timeout).

        Example:
            >>> await cache.pop_user_trade(7, "kraken") is None
            True
        """
        key = self.keys.user_trades(_uid(uid), _name(exchange, "exchange"))
        raw = await self._pop_oldest(key, timeout)
        return None if raw is None else decode(raw, Trade)

    @guarded
    async def get_user_trades(self, uid: str | int, exchange: str) -> list[Trade]:
        """The queued trades of ``uid`` on ``exchange``, oldest first, WITHOUT removing
        them (:meth:`pop_user_trade` consumes).

        Example:
            >>> _ = await cache.push_user_trade("u", "binance", {"price": 1.0})
            >>> [t.price for t in await cache.get_user_trades("u", "binance")]
            [1.0]
        """
        key = self.keys.user_trades(_uid(uid), _name(exchange, "exchange"))
        raws = await self.redis.lrange(key, 0, -1)
        return self._decode_all(raws, key)

    # -- trade stream status ---------------------------------------------------------
    @guarded
    async def update_trade_status(
        self, trade_key: str, timestamp: datetime | float | None = None
    ) -> bool:
        """Record when the trade stream ``trade_key`` was last updated (default: now;
        a datetime, naive meaning UTC, or epoch seconds).

        Example:
            >>> await cache.update_trade_status("binance:BTC/USDT", 0)
            True
            >>> (await cache.get_trade_status("binance:BTC/USDT")).isoformat()
            '1970-01-01T00:00:00+00:00'
        """
        key = self.keys.trade_status(_name(trade_key, "trade_key"))
        when = datetime.now(UTC) if timestamp is None else to_utc(timestamp)
        await self.redis.set(key, encode(when))
        return True

    @guarded
    async def get_trade_status(self, trade_key: str) -> datetime | None:
        """When the trade stream ``trade_key`` was last updated (UTC), or None.

        Example:
            >>> await cache.get_trade_status("never") is None
            True
        """
        raw = await self.redis.get(self.keys.trade_status(_name(trade_key, "trade_key")))
        return None if raw is None else _parse_time(raw)

    @guarded
    async def get_all_trade_statuses(self, prefix: str | None = None) -> dict[str, datetime]:
        """Every recorded trade stream status (or those whose trade key starts with
        ``prefix``; wildcards in it are literal), as ``{trade_key: UTC datetime}``.
        Found with SCAN on every node, never KEYS.

        Example:
            >>> _ = await cache.update_trade_status("user:1", 0)
            >>> _ = await cache.update_trade_status("user:2", 0)
            >>> _ = await cache.update_trade_status("bot:1", 0)
            >>> sorted(await cache.get_all_trade_statuses("user:"))
            ['user:1', 'user:2']
        """
        if prefix is not None:
            _name(prefix, "prefix")
        found = [key async for key in self._scan(self.keys.trade_status_pattern(prefix))]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in found:
                pipe.get(key)
            values = await pipe.execute()
        return {
            self.keys.trade_key_of(key): _parse_time(raw)
            for key, raw in zip(found, values, strict=True)
            if raw is not None
        }

    @guarded
    async def delete_trade_status(self, trade_key: str) -> bool:
        """Forget the status of ``trade_key``; True when there was one.

        Example:
            >>> _ = await cache.update_trade_status("old")
            >>> await cache.delete_trade_status("old")
            True
            >>> await cache.delete_trade_status("old")
            False
        """
        key = self.keys.trade_status(_name(trade_key, "trade_key"))
        return bool(await self.redis.delete(key))


def _parse_time(raw: bytes | str) -> datetime:
    return to_utc(decode(raw, datetime))


def _analytics(symbol: str, exchange: str, trades: list[Trade]) -> dict[str, Any]:
    buy_count = sell_count = 0
    buy_volume = sell_volume = total_volume = priced_volume = total_cost = total_fees = 0.0
    prices: list[float] = []
    times: list[datetime] = []
    for trade in trades:
        side = (trade.side or "").lower()
        buy_count += side == "buy"
        sell_count += side == "sell"
        if trade.fee is not None:
            total_fees += trade.fee
        if trade.time is not None:
            times.append(to_utc(trade.time))
        if trade.price is not None:
            prices.append(trade.price)
        if trade.volume is None:
            continue
        total_volume += trade.volume
        buy_volume += trade.volume if side == "buy" else 0.0
        sell_volume += trade.volume if side == "sell" else 0.0
        if trade.price is not None:
            priced_volume += trade.volume
            total_cost += trade.price * trade.volume
    return {
        "symbol": symbol,
        "exchange": exchange,
        "count": len(trades),
        "buy_count": buy_count,
        "sell_count": sell_count,
        "buy_volume": buy_volume,
        "sell_volume": sell_volume,
        "total_volume": total_volume,
        "total_cost": total_cost,
        "vwap": total_cost / priced_volume if priced_volume > 0 else None,
        "total_fees": total_fees,
        "min_price": min(prices, default=None),
        "max_price": max(prices, default=None),
        "last_price": prices[-1] if prices else None,
        "first_time": min(times, default=None),
        "last_time": max(times, default=None),
    }
