"""BotCache: leased exchange+symbol locks with fencing tokens, opening-position marks
and bot status.

Two bots must never trade one symbol at once, and a bot that crashes must not block a
symbol forever. :meth:`BotCache.block_exchange` is therefore a real lock:

* **atomic** — one Lua script checks the holder and takes the lock (no check-then-set);
* **owned** — only the holder renews or releases it (``unblock_exchange`` without a
  ``bot_id`` is the operator's unconditional release, as in the original API);
* **leased** — the lock key carries a PEXPIRE of ``FULLON_CACHE_LOCK_LEASE`` seconds
  (per-call ``lease`` override); the holder calls :meth:`BotCache.renew_block` (or
  ``block_exchange`` again) while it works, and a dead holder's lock simply expires;
* **fenced** — every *new* holder gets a larger fencing token (a counter next to the
  lock, in the same hash tag) so a holder that was paused past its lease can be told
  apart from the current one. :meth:`BotCache.block_exchange_with_token` returns it
  atomically with the acquisition.

Lock layout: ``<ns>:block:{<ex_id>}:<symbol>`` is a hash ``holder, since, token`` with a
PEXPIRE; ``<ns>:fence:{<ex_id>}:<symbol>`` is the counter (never expires, so tokens never
go backwards). Opening-position marks use the same script on ``<ns>:opening:...``.
Bot status is one JSON string per bot (``<ns>:bot:{<bot_id>}``).

Example:
    >>> import asyncio
    >>> from fullon_cache.bot_cache import BotCache
    >>> async def main() -> None:
    ...     async with BotCache() as cache:
    ...         if await cache.block_exchange("binance", "BTC/USDT", bot_id=7):
    ...             try:
    ...                 pass  # trade BTC/USDT
    ...             finally:
    ...                 await cache.unblock_exchange("binance", "BTC/USDT", bot_id=7)
    >>> asyncio.run(main())  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from fullon_cache.base_cache import BaseCache
from fullon_cache.codec import check_json, decode_any, encode
from fullon_cache.connection import guarded
from fullon_cache.keys import CacheKey, unescape

__all__ = ["BotCache"]

_SCAN_BATCH = 500

# KEYS[1] lock hash, KEYS[2] (optional) fencing counter; ARGV[1] holder, ARGV[2] lease ms.
# Returns the holder's token (0 without a counter), or -1 while someone else holds it.
_ACQUIRE = """
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder == false then
    local token = 0
    if #KEYS > 1 then
        token = redis.call('INCR', KEYS[2])
    end
    local now = redis.call('TIME')
    local since = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
    redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'since', since, 'token', token)
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return token
end
if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(redis.call('HGET', KEYS[1], 'token'))
end
return -1
"""

# KEYS[1] lock hash; ARGV[1] holder, ARGV[2] lease ms. 1 when renewed, 0 otherwise.
_RENEW = """
if redis.call('HGET', KEYS[1], 'holder') == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
"""

# KEYS[1] lock hash; ARGV[1] holder. 1 when released, 0 when not held by that holder.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'holder') == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def _check_ex_id(ex_id: object) -> None:
    if isinstance(ex_id, bool) or not isinstance(ex_id, (str, int)):
        raise TypeError(f"ex_id must be str or int, got {type(ex_id).__name__}")
    if isinstance(ex_id, str) and not ex_id.strip():
        raise ValueError("ex_id must not be empty")


def _check_symbol(symbol: object) -> None:
    if not isinstance(symbol, str):
        raise TypeError(f"symbol must be str, got {type(symbol).__name__}")
    if not symbol.strip():
        raise ValueError("symbol must not be empty")


def _bot_text(bot_id: object) -> str:
    if isinstance(bot_id, bool) or not isinstance(bot_id, (str, int)):
        raise TypeError(f"bot_id must be str or int, got {type(bot_id).__name__}")
    text = str(bot_id)
    if not text.strip():
        raise ValueError("bot_id must not be empty")
    return text


def _epoch(raw: bytes) -> datetime:
    return datetime.fromtimestamp(float(raw), tz=UTC)


class BotCache(BaseCache):
    """Exchange+symbol locks (leased, owned, fenced), opening-position marks and the
    status of every bot.

    Example:
        >>> await cache.block_exchange("binance", "BTC/USDT", bot_id=1)
        True
        >>> await cache.block_exchange("binance", "BTC/USDT", bot_id=2)
        False
        >>> await cache.is_blocked("binance", "BTC/USDT")
        '1'
    """

    component: ClassVar[str] = "bot"

    # -- helpers ---------------------------------------------------------------------
    def _lease_ms(self, lease: float | None) -> int:
        if lease is None:
            lease = self.settings.lock_lease
        if isinstance(lease, bool) or not isinstance(lease, (int, float)):
            raise TypeError(f"lease must be a number of seconds, got {type(lease).__name__}")
        if not math.isfinite(lease) or lease <= 0:
            raise ValueError(f"lease must be a positive number of seconds, got {lease!r}")
        return max(1, math.ceil(lease * 1000))

    async def _acquire(self, keys: list[str], holder: str, lease_ms: int) -> int:
        script = self._script(_ACQUIRE)
        return int(await script(keys=keys, args=[holder, lease_ms]))

    async def _release(self, key: str, holder: str | None) -> bool:
        if holder is None:
            return bool(await self.redis.delete(key))
        script = self._script(_RELEASE)
        return bool(await script(keys=[key], args=[holder]))

    async def _holder(self, key: str) -> str | None:
        raw = cast(bytes | None, await self.redis.hget(key, "holder"))
        return None if raw is None else raw.decode()

    # -- exchange blocks -------------------------------------------------------------
    @guarded
    async def block_exchange_with_token(
        self, ex_id: str | int, symbol: str, bot_id: str | int, lease: float | None = None
    ) -> int | None:
        """Take (or renew) the lock on ``ex_id``/``symbol`` for ``bot_id`` and return its
        fencing token, or None while another bot holds it.

        The token is read in the same atomic step as the acquisition. It grows with every
        new holder and stays the same while one holder re-enters; pass it along with
        every write the lock protects so a holder whose lease ran out can be rejected.

        Example:
            >>> first = await cache.block_exchange_with_token("kraken", "ETH/USD", "a")
            >>> await cache.block_exchange_with_token("kraken", "ETH/USD", "a") == first
            True
            >>> await cache.block_exchange_with_token("kraken", "ETH/USD", "b") is None
            True
            >>> await cache.unblock_exchange("kraken", "ETH/USD", "a")
            True
            >>> await cache.block_exchange_with_token("kraken", "ETH/USD", "b") > first
            True
        """
        _check_ex_id(ex_id)
        _check_symbol(symbol)
        holder = _bot_text(bot_id)
        lease_ms = self._lease_ms(lease)
        keys = [self.keys.block(ex_id, symbol), self.keys.fence(ex_id, symbol)]
        token = await self._acquire(keys, holder, lease_ms)
        if token < 0:
            return None
        await self._connection.wait_for_replicas(keys[0])
        return token

    async def block_exchange(
        self, ex_id: str | int, symbol: str, bot_id: str | int, lease: float | None = None
    ) -> bool:
        """Lock ``ex_id``/``symbol`` for ``bot_id``: True for the first bot and for the
        holder again (which renews the lease), False while another bot holds it.

        The lock expires ``lease`` seconds (default ``FULLON_CACHE_LOCK_LEASE``) after
        the last acquisition or renewal, so a crashed bot frees the symbol.

        Example:
            >>> await cache.block_exchange(1001, "BTC/USDT", bot_id=7, lease=60)
            True
            >>> await cache.block_exchange(1001, "BTC/USDT", bot_id=7)
            True
            >>> await cache.block_exchange(1001, "BTC/USDT", bot_id=8)
            False
        """
        token = await self.block_exchange_with_token(ex_id, symbol, bot_id, lease)
        return token is not None

    @guarded
    async def renew_block(
        self, ex_id: str | int, symbol: str, bot_id: str | int, lease: float | None = None
    ) -> bool:
        """Extend the holder's lease to ``lease`` seconds from now. False when ``bot_id``
        does not hold the lock (never held, released, or expired).

        Example:
            >>> await cache.block_exchange("binance", "SOL/USDT", "bot-1", lease=5)
            True
            >>> await cache.renew_block("binance", "SOL/USDT", "bot-1", lease=30)
            True
            >>> await cache.renew_block("binance", "SOL/USDT", "bot-2")
            False
        """
        _check_ex_id(ex_id)
        _check_symbol(symbol)
        holder = _bot_text(bot_id)
        lease_ms = self._lease_ms(lease)
        script = self._script(_RENEW)
        renewed = await script(keys=[self.keys.block(ex_id, symbol)], args=[holder, lease_ms])
        return bool(renewed)

    @guarded
    async def unblock_exchange(
        self, ex_id: str | int, symbol: str, bot_id: str | int | None = None
    ) -> bool:
        """Release the lock. With ``bot_id`` only the holder releases it; without, the
        release is unconditional (the original API; meant for operators). True when a
        lock was removed.

        Example:
            >>> await cache.block_exchange("binance", "BTC/USDT", bot_id=1)
            True
            >>> await cache.unblock_exchange("binance", "BTC/USDT", bot_id=2)
            False
            >>> await cache.unblock_exchange("binance", "BTC/USDT", bot_id=1)
            True
            >>> await cache.unblock_exchange("binance", "BTC/USDT")
            False
        """
        _check_ex_id(ex_id)
        _check_symbol(symbol)
        holder = None if bot_id is None else _bot_text(bot_id)
        return await self._release(self.keys.block(ex_id, symbol), holder)

    @guarded
    async def is_blocked(self, ex_id: str | int, symbol: str) -> str | None:
        """The bot id (as str) holding ``ex_id``/``symbol``, or None when it is free.

        Example:
            >>> await cache.is_blocked("binance", "BTC/USDT") is None
            True
            >>> await cache.block_exchange("binance", "BTC/USDT", bot_id=42)
            True
            >>> await cache.is_blocked("binance", "BTC/USDT")
            '42'
        """
        _check_ex_id(ex_id)
        _check_symbol(symbol)
        return await self._holder(self.keys.block(ex_id, symbol))

    @guarded
    async def get_fencing_token(self, ex_id: str | int, symbol: str) -> int | None:
        """The fencing token of the current holder of ``ex_id``/``symbol``, or None when
        it is free. (To get a token together with the lock, use
        :meth:`block_exchange_with_token`.)

        Example:
            >>> token = await cache.block_exchange_with_token("binance", "XRP/USDT", 3)
            >>> await cache.get_fencing_token("binance", "XRP/USDT") == token
            True
            >>> await cache.get_fencing_token("binance", "ADA/USDT") is None
            True
        """
        _check_ex_id(ex_id)
        _check_symbol(symbol)
        raw = await self.redis.hget(self.keys.block(ex_id, symbol), "token")
        return None if raw is None else int(raw)

    @guarded
    async def get_blocks(self) -> list[dict[str, Any]]:
        """Every held lock as ``{'ex_id', 'symbol', 'bot_id', 'since', 'token'}`` (ex_id,
        symbol and bot_id as str, since a UTC datetime), sorted by ex_id and symbol.
        Found with SCAN, over every master on a cluster.

        Example:
            >>> await cache.block_exchange(1001, "BTC/USDT:USDT", bot_id=5)
            True
            >>> [(b["ex_id"], b["symbol"], b["bot_id"]) for b in await cache.get_blocks()]
            [('1001', 'BTC/USDT:USDT', '5')]
        """
        keys = [
            key
            async for key in self.redis.scan_iter(
                match=self.keys.pattern(CacheKey.BLOCK), count=_SCAN_BATCH
            )
        ]
        if not keys:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, ["holder", "since", "token"])
            rows: list[list[bytes | None]] = await pipe.execute()
        # A lock may expire or be released between SCAN and HMGET: its row is empty.
        blocks = [self._block_entry(k, row) for k, row in zip(keys, rows, strict=True) if row[0]]
        blocks.sort(key=lambda block: (block["ex_id"], block["symbol"]))
        return blocks

    def _block_entry(self, key: bytes, row: list[bytes | None]) -> dict[str, Any]:
        # the acquire script writes holder, since and token together
        holder, since, token = cast(list[bytes], row)
        # relative key: "block:{<ex_id>}:<symbol>", both escaped (no ':' inside)
        tagged, symbol = self.keys.relative(key).split(":", 2)[1:]
        return {
            "ex_id": unescape(tagged[1:-1]),
            "symbol": unescape(symbol),
            "bot_id": holder.decode(),
            "since": _epoch(since),
            "token": int(token),
        }

    # -- opening-position marks ------------------------------------------------------
    @guarded
    async def mark_opening_position(
        self, ex_id: str | int, symbol: str, bot_id: str | int, lease: float | None = None
    ) -> bool:
        """Mark that ``bot_id`` is opening a position on ``ex_id``/``symbol``. Same rules
        as :meth:`block_exchange`: atomic, owned (True for the marker again, False for
        another bot), and leased so a crashed bot's mark expires.

        Example:
            >>> await cache.mark_opening_position("binance", "BTC/USDT", bot_id=1)
            True
            >>> await cache.mark_opening_position("binance", "BTC/USDT", bot_id=2)
            False
        """
        _check_ex_id(ex_id)
        _check_symbol(symbol)
        holder = _bot_text(bot_id)
        lease_ms = self._lease_ms(lease)
        token = await self._acquire([self.keys.opening(ex_id, symbol)], holder, lease_ms)
        return token >= 0

    @guarded
    async def unmark_opening_position(
        self, ex_id: str | int, symbol: str, bot_id: str | int | None = None
    ) -> bool:
        """Remove the opening-position mark: with ``bot_id`` only if that bot set it,
        without unconditionally. True when a mark was removed.

        Example:
            >>> await cache.mark_opening_position("binance", "BTC/USDT", bot_id=1)
            True
            >>> await cache.unmark_opening_position("binance", "BTC/USDT", bot_id=2)
            False
            >>> await cache.unmark_opening_position("binance", "BTC/USDT")
            True
        """
        _check_ex_id(ex_id)
        _check_symbol(symbol)
        holder = None if bot_id is None else _bot_text(bot_id)
        return await self._release(self.keys.opening(ex_id, symbol), holder)

    @guarded
    async def is_opening_position(self, ex_id: str | int, symbol: str) -> bool:
        """True while some bot has an opening-position mark on ``ex_id``/``symbol``.

        Example:
            >>> await cache.is_opening_position("binance", "BTC/USDT")
            False
            >>> await cache.mark_opening_position("binance", "BTC/USDT", bot_id=1)
            True
            >>> await cache.is_opening_position("binance", "BTC/USDT")
            True
        """
        _check_ex_id(ex_id)
        _check_symbol(symbol)
        return bool(await self.redis.exists(self.keys.opening(ex_id, symbol)))

    @guarded
    async def get_opening_position(self, ex_id: str | int, symbol: str) -> str | None:
        """The bot id (as str) that marked ``ex_id``/``symbol`` as opening, or None.

        Example:
            >>> await cache.mark_opening_position("binance", "ETH/USDT", bot_id="grid")
            True
            >>> await cache.get_opening_position("binance", "ETH/USDT")
            'grid'
        """
        _check_ex_id(ex_id)
        _check_symbol(symbol)
        return await self._holder(self.keys.opening(ex_id, symbol))

    # -- bot status ------------------------------------------------------------------
    @guarded
    async def update_bot(self, bot_id: str | int, data: Any) -> bool:
        """Store the status of ``bot_id`` (replacing the previous one). ``data`` is a
        mapping with str keys and JSON-able values, or an object with ``to_dict()``;
        it is never modified. The stored copy gets ``updated_at`` (UTC datetime when
        read back) and ``timestamp`` (epoch seconds).

        Example:
            >>> status = {"status": "running", "symbols": ["BTC/USDT"]}
            >>> await cache.update_bot("bot-1", status)
            True
            >>> status
            {'status': 'running', 'symbols': ['BTC/USDT']}
            >>> (await cache.get_bot("bot-1"))["status"]
            'running'
        """
        key = self.keys.bot(_bot_text(bot_id))
        to_dict = getattr(data, "to_dict", None)
        if not isinstance(data, Mapping) and callable(to_dict):
            data = to_dict()
        if not isinstance(data, Mapping):
            raise TypeError(f"bot data must be a mapping, got {type(data).__name__}")
        check_json(data, "bot data")
        stored = dict(data)
        now = datetime.now(UTC)
        stored["updated_at"] = now.isoformat()
        stored["timestamp"] = now.timestamp()
        payload = encode(stored)
        await self.redis.set(key, payload)
        return True

    def _bot_view(self, raw: bytes | str) -> dict[str, Any]:
        data: dict[str, Any] = decode_any(raw)
        data["updated_at"] = datetime.fromisoformat(data["updated_at"])
        return data

    @guarded
    async def get_bot(self, bot_id: str | int) -> dict[str, Any] | None:
        """The stored status of ``bot_id`` (``updated_at`` a UTC datetime), or None.

        Example:
            >>> await cache.get_bot("nobody") is None
            True
            >>> await cache.update_bot(5, {"pnl": 1.5})
            True
            >>> (await cache.get_bot(5))["pnl"]
            1.5
        """
        raw = await self.redis.get(self.keys.bot(_bot_text(bot_id)))
        return None if raw is None else self._bot_view(raw)

    @guarded
    async def get_bots(self) -> dict[str, dict[str, Any]]:
        """Every stored bot status, keyed by bot id (str). Found with SCAN, over every
        master on a cluster.

        Example:
            >>> await cache.update_bot(1, {"status": "running"})
            True
            >>> await cache.update_bot("grid", {"status": "idle"})
            True
            >>> {k: v["status"] for k, v in sorted((await cache.get_bots()).items())}
            {'1': 'running', 'grid': 'idle'}
        """
        keys = [
            key
            async for key in self.redis.scan_iter(
                match=self.keys.pattern(CacheKey.BOT), count=_SCAN_BATCH
            )
        ]
        if not keys:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
            values: list[bytes | None] = await pipe.execute()
        # A status deleted between SCAN and GET reads back as None and is left out.
        return {
            unescape(self.keys.relative(key).split(":", 1)[1][1:-1]): self._bot_view(raw)
            for key, raw in zip(keys, values, strict=True)
            if raw is not None
        }

    @guarded
    async def del_bot(self, bot_id: str | int) -> bool:
        """Delete the status of ``bot_id``; True when there was one.

        Example:
            >>> await cache.update_bot(9, {"status": "stopped"})
            True
            >>> await cache.del_bot(9)
            True
            >>> await cache.del_bot(9)
            False
        """
        return bool(await self.redis.delete(self.keys.bot(_bot_text(bot_id))))
