"""ExchangeCache: user exchanges and the exchange catalog, read through from a source,
and a websocket error queue per exchange.

Storage (all under ``CACHE_TTL_EXCHANGE``, counted from the last write):

* ``keys.exchange(ex_id)`` — one user exchange (string, JSON Exchange);
* ``keys.user_exchanges(uid)`` — a user's exchanges (hash ``ex_id -> JSON Exchange``);
* ``keys.cat_exchanges()`` — the catalog (hash ``name -> JSON CatExchange``);
* ``keys.ws_errors(ex_id)`` — websocket errors of an exchange (list, FIFO, bounded to
  ``FULLON_CACHE_MAX_LIST_LENGTH``, oldest dropped first).

With a ``source`` (:class:`~fullon_cache.read_through.MetadataSource`) a miss is filled
from it once per key; an unknown exchange or a user without exchanges is remembered for
``FULLON_CACHE_NEGATIVE_TTL`` seconds. A list loaded whole from the source carries a
completeness mark (hash field ``""``); a list without it holds only what was added, and
with a source it is loaded again.

Example:
    >>> import asyncio
    >>> from fullon_cache import Exchange
    >>> async def main() -> str | None:
    ...     async with ExchangeCache() as cache:
    ...         await cache.push_ws_error("socket closed", 7)
    ...         return await cache.pop_ws_error(7)
    >>> asyncio.run(main())  # doctest: +SKIP
    'socket closed'
"""

from __future__ import annotations

import time
from typing import Any

from fullon_cache.codec import as_model, decode, encode
from fullon_cache.connection import guarded
from fullon_cache.keys import CacheKey
from fullon_cache.models import CatExchange, Exchange
from fullon_cache.near_cache import near_for
from fullon_cache.read_through import (
    COMPLETE,
    ReadThroughCache,
    int_id,
    read_through,
    text_id,
)

__all__ = ["ExchangeCache"]

_SCAN_BATCH = 500


def _exchange(value: Any) -> Exchange:
    model = as_model(value, Exchange)
    if model.ex_id is None or model.uid is None:
        raise ValueError("an Exchange needs ex_id and uid to be cached")
    int_id(model.ex_id, "Exchange.ex_id")
    int_id(model.uid, "Exchange.uid")
    return model


def _queue_id(ex_id: object) -> str | int:
    if isinstance(ex_id, str):
        return text_id(ex_id, "ex_id")
    return int_id(ex_id, "ex_id")


class ExchangeCache(ReadThroughCache):
    """User exchanges (by id, by user, by name), the exchange catalog, and websocket
    error queues. ``source`` is optional: without one the cache answers only what was
    added. ``near_cache=True`` (or a :class:`~fullon_cache.near_cache.NearCache`):
    answers of :meth:`get_exchange` are served in process until the server reports a
    change of that exchange's key (any writer, any process, its TTL) or of its
    remembered miss.

    Example:
        >>> await cache.add_exchange(Exchange(ex_id=7, uid=1, cat_ex_id=1, name="main"))
        True
        >>> (await cache.get_exchange(7)).name
        'main'
    """

    component = "exchange"

    async def _write(
        self, exchanges: list[Exchange], complete: str | None = None, ttl: int | None = None
    ) -> None:
        ttl = ttl or self.settings.ttl_exchange
        touched: set[str] = set()
        written: list[str] = []  # what a near cache may hold: each exchange and its miss
        async with self.redis.pipeline(transaction=False) as pipe:
            for exchange in exchanges:
                assert exchange.ex_id is not None
                assert exchange.uid is not None
                data = encode(exchange)
                own = self.keys.exchange(exchange.ex_id)
                miss = self.keys.read_through_miss(CacheKey.EXCHANGE, exchange.ex_id)
                pipe.set(own, data, ex=ttl)
                pipe.delete(miss)
                written += (own, miss)
                key = self.keys.user_exchanges(exchange.uid)
                pipe.hset(key, str(exchange.ex_id), data)
                touched.add(key)
            if complete is not None:
                pipe.hset(complete, COMPLETE, str(time.time()))
                touched.add(complete)
            for key in sorted(touched):
                pipe.expire(key, ttl)
            await pipe.execute()
        self._invalidate(*written)

    async def _user_list(self, key: str) -> tuple[bool, list[Exchange]]:
        return await self._read_list(key, Exchange, lambda e: e.ex_id or 0)

    # -- user exchanges --------------------------------------------------------------
    @guarded
    async def get_exchange(self, ex_id: int | str) -> Exchange | None:
        """One user exchange by id, or None (read through the source, misses remembered
        briefly).

        Example:
            >>> await cache.add_exchange(Exchange(ex_id=3, uid=1, cat_ex_id=2, name="kraken-main"))
            True
            >>> (await cache.get_exchange(3)).cat_ex_id
            2
            >>> await cache.get_exchange(4) is None
            True
        """
        ex_id = int_id(ex_id, "ex_id")
        key = self.keys.exchange(ex_id)
        miss = self.keys.read_through_miss(CacheKey.EXCHANGE, ex_id)
        source = self.source
        near = near_for(self.near_cache, self)

        async def fetch() -> tuple[bytes | None, bool]:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.exists(miss)
                raw, missed = await pipe.execute()
            return raw, bool(missed)

        async def read() -> tuple[bool, Exchange | None]:
            if near is None:
                raw, missed = await fetch()
            else:  # the reply (bytes) is kept, never the mutable Exchange
                raw, missed = await near.fetch(("exchange", key), (key, miss), fetch)
            if raw is not None:
                return True, decode(raw, Exchange)
            return missed, None

        async def load() -> Exchange | None:
            assert source is not None
            found = await source.get_exchange(ex_id)
            return None if found is None else _exchange(found)

        async def store(value: Exchange | None) -> Exchange | None:
            if value is None:
                await self.redis.set(miss, b"1", ex=self.settings.negative_ttl)
                self._invalidate(miss)
            else:
                await self._write([value])
            return value

        return await read_through(
            self._flight("exchange", ex_id), read, load if source else None, store
        )

    @guarded
    async def get_exchanges(self, uid: int | str) -> list[Exchange]:
        """The exchanges of one user, sorted by ex_id ([] when none).

        Example:
            >>> await cache.add_exchange(Exchange(ex_id=9, uid=5, cat_ex_id=1, name="b"))
            True
            >>> await cache.add_exchange(Exchange(ex_id=8, uid=5, cat_ex_id=1, name="a"))
            True
            >>> [e.ex_id for e in await cache.get_exchanges(5)]
            [8, 9]
        """
        uid = int_id(uid, "uid")
        key = self.keys.user_exchanges(uid)
        source = self.source

        async def read() -> tuple[bool, list[Exchange]]:
            return await self._user_list(key)

        async def load() -> list[Exchange]:
            assert source is not None
            found = [_exchange(item) for item in await source.get_user_exchanges(uid)]
            found.sort(key=lambda e: e.ex_id or 0)
            return found

        async def store(values: list[Exchange]) -> list[Exchange]:
            ttl = None if values else self.settings.negative_ttl
            await self._write(values, complete=key, ttl=ttl)
            return (await self._user_list(key))[1]  # with what was added meanwhile

        return await read_through(
            self._flight("user_exchanges", uid), read, load if source else None, store
        )

    async def get_user_exchanges(self, uid: int | str) -> list[Exchange]:
        """The exchanges of one user (same as :meth:`get_exchanges`).

        Example:
            >>> await cache.add_exchange(Exchange(ex_id=21, uid=6, cat_ex_id=1, name="x"))
            True
            >>> [e.name for e in await cache.get_user_exchanges(6)]
            ['x']
        """
        return await self.get_exchanges(uid)

    async def get_exchange_by_name(self, name: str, uid: int | str) -> Exchange | None:
        """A user's exchange by its name, or None.

        Example:
            >>> await cache.add_exchange(Exchange(ex_id=31, uid=2, cat_ex_id=1, name="spot"))
            True
            >>> (await cache.get_exchange_by_name("spot", 2)).ex_id
            31
            >>> await cache.get_exchange_by_name("spot", 3) is None
            True
        """
        name = text_id(name, "name")
        for exchange in await self.get_exchanges(uid):
            if exchange.name == name:
                return exchange
        return None

    @guarded
    async def add_exchange(self, exchange: Exchange | Any) -> bool:
        """Store a user exchange (needs ex_id and uid): by id and in its user's list. An
        exchange that moved to another user leaves the old user's list.

        Example:
            >>> await cache.add_exchange({"ex_id": 40, "uid": 1, "cat_ex_id": 1, "name": "new"})
            True
            >>> [e.ex_id for e in await cache.get_exchanges(1)]
            [40]
        """
        model = _exchange(exchange)
        assert model.ex_id is not None
        old_raw = await self.redis.get(self.keys.exchange(model.ex_id))
        if old_raw is not None:
            old = decode(old_raw, Exchange)
            if old.uid is not None and old.uid != model.uid:
                await self.redis.hdel(self.keys.user_exchanges(old.uid), str(model.ex_id))
        await self._write([model])
        return True

    async def update_exchange(self, exchange: Exchange | Any) -> bool:
        """Store the new version of a user exchange (same as :meth:`add_exchange`).

        Example:
            >>> await cache.add_exchange(Exchange(ex_id=50, uid=1, cat_ex_id=1, name="m"))
            True
            >>> off = Exchange(ex_id=50, uid=1, cat_ex_id=1, name="m", active=False)
            >>> await cache.update_exchange(off)
            True
            >>> (await cache.get_exchange(50)).active
            False
        """
        return await self.add_exchange(exchange)

    @guarded
    async def delete_exchange(self, ex_id: int | str, uid: int | str | None = None) -> bool:
        """Delete a user exchange by id, and from its user's list (the stored exchange's
        uid, and ``uid`` when given). True if anything was deleted.

        Example:
            >>> await cache.add_exchange(Exchange(ex_id=60, uid=1, cat_ex_id=1, name="gone"))
            True
            >>> await cache.delete_exchange(60)
            True
            >>> await cache.get_exchange(60) is None
            True
            >>> await cache.delete_exchange(60)
            False
        """
        ex_id = int_id(ex_id, "ex_id")
        uids = set() if uid is None else {int_id(uid, "uid")}
        key = self.keys.exchange(ex_id)
        raw = await self.redis.get(key)
        if raw is not None:
            stored = decode(raw, Exchange)
            assert stored.uid is not None  # only exchanges with a uid are stored
            uids.add(stored.uid)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(key)
            for user in sorted(uids):
                pipe.hdel(self.keys.user_exchanges(user), str(ex_id))
            removed = await pipe.execute()
        self._invalidate(key)
        return bool(sum(removed) > 0)

    # -- catalog ---------------------------------------------------------------------
    @guarded
    async def get_cat_exchanges(self) -> list[CatExchange]:
        """Every exchange of the catalog, sorted by name ([] when none).

        Example:
            >>> await cache.add_cat_exchange(CatExchange(cat_ex_id=2, name="kraken"))
            True
            >>> await cache.add_cat_exchange(CatExchange(cat_ex_id=1, name="binance"))
            True
            >>> [c.name for c in await cache.get_cat_exchanges()]
            ['binance', 'kraken']
        """
        key = self.keys.cat_exchanges()
        source = self.source

        async def read() -> tuple[bool, list[CatExchange]]:
            return await self._read_list(key, CatExchange, lambda c: c.name)

        async def load() -> list[CatExchange]:
            assert source is not None
            found = [as_model(item, CatExchange) for item in await source.get_cat_exchanges()]
            found.sort(key=lambda c: c.name)
            return found

        async def store(values: list[CatExchange]) -> list[CatExchange]:
            ttl = self.settings.ttl_exchange if values else self.settings.negative_ttl
            mapping = {c.name: encode(c) for c in values}
            mapping[COMPLETE] = str(time.time()).encode()
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
                pipe.expire(key, ttl)
                await pipe.execute()
            return (await read())[1]  # with what was added meanwhile

        return await read_through(
            self._flight("cat_exchanges"), read, load if source else None, store
        )

    async def get_cat_exchange_by_name(self, name: str) -> CatExchange | None:
        """One catalog exchange by name, or None.

        Example:
            >>> await cache.add_cat_exchange(CatExchange(cat_ex_id=4, name="bybit"))
            True
            >>> (await cache.get_cat_exchange_by_name("bybit")).cat_ex_id
            4
            >>> await cache.get_cat_exchange_by_name("nope") is None
            True
        """
        name = text_id(name, "name")
        for cat in await self.get_cat_exchanges():
            if cat.name == name:
                return cat
        return None

    @guarded
    async def add_cat_exchange(self, cat_exchange: CatExchange | Any) -> bool:
        """Store one catalog exchange (keyed by name).

        Example:
            >>> await cache.add_cat_exchange({"cat_ex_id": 5, "name": "okx"})
            True
            >>> [c.name for c in await cache.get_cat_exchanges()]
            ['okx']
        """
        model = as_model(cat_exchange, CatExchange)
        if model.cat_ex_id is not None:
            int_id(model.cat_ex_id, "CatExchange.cat_ex_id")
        key = self.keys.cat_exchanges()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, model.name, encode(model))
            pipe.expire(key, self.settings.ttl_exchange)
            await pipe.execute()
        return True

    # -- invalidation ----------------------------------------------------------------
    @guarded
    async def invalidate_cache(
        self, ex_id: int | str | None = None, uid: int | str | None = None
    ) -> None:
        """Forget cached answers so the next read goes to the source: one exchange
        (``ex_id``, with its remembered miss), one user's list (``uid``), or, with no
        argument, every exchange, user list, remembered miss and the catalog.

        Example:
            >>> await cache.add_exchange(Exchange(ex_id=70, uid=1, cat_ex_id=1, name="n"))
            True
            >>> await cache.invalidate_cache()
            >>> await cache.get_exchange(70) is None
            True
        """
        ex = None if ex_id is None else int_id(ex_id, "ex_id")
        user = None if uid is None else int_id(uid, "uid")
        if ex is None and user is None:
            await self._delete_matching(
                self.keys.pattern(CacheKey.EXCHANGE),
                self.keys.pattern(CacheKey.USER_EXCHANGES),
                self.keys.pattern(CacheKey.READ_THROUGH, CacheKey.EXCHANGE.value),
            )
            # CacheKey.CAT_EXCHANGES has no identifier: its key is the bare kind.
            await self.redis.delete(self.keys.cat_exchanges())
            return
        names: list[str] = []
        if ex is not None:
            names += [
                self.keys.exchange(ex),
                self.keys.read_through_miss(CacheKey.EXCHANGE, ex),
            ]
        if user is not None:
            names.append(self.keys.user_exchanges(user))
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.delete(name)
            await pipe.execute()
        self._invalidate(*names)

    async def invalidate(
        self, ex_id: int | str | None = None, uid: int | str | None = None
    ) -> None:
        """Same as :meth:`invalidate_cache`.

        Example:
            >>> await cache.add_exchange(Exchange(ex_id=71, uid=9, cat_ex_id=1, name="n"))
            True
            >>> await cache.invalidate(uid=9)
            >>> await cache.get_exchanges(9)
            []
        """
        await self.invalidate_cache(ex_id=ex_id, uid=uid)

    async def _delete_matching(self, *patterns: str) -> None:
        for pattern in patterns:
            batch: list[bytes] = []
            async for key in self._scan(pattern):
                batch.append(key)
                if len(batch) >= _SCAN_BATCH:
                    await self._unlink(batch)
                    batch.clear()
            if batch:
                await self._unlink(batch)

    async def _unlink(self, keys: list[bytes]) -> None:
        await self.redis.unlink(*keys)
        self._invalidate(*(key.decode() for key in keys))

    # -- websocket errors ------------------------------------------------------------
    @guarded
    async def push_ws_error(self, error: str | BaseException, ex_id: int | str) -> bool:
        """Queue a websocket error of an exchange (FIFO, bounded: the oldest are dropped
        beyond FULLON_CACHE_MAX_LIST_LENGTH).

        Example:
            >>> await cache.push_ws_error("disconnected", 7)
            True
            >>> await cache.pop_ws_error(7)
            'disconnected'
        """
        if isinstance(error, BaseException):
            error = f"{type(error).__name__}: {error}"
        error = text_id(error, "error")
        key = self.keys.ws_errors(_queue_id(ex_id))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, error.encode())
            pipe.ltrim(key, 0, self.settings.max_list_length - 1)
            await pipe.execute()
        return True

    @guarded
    async def pop_ws_error(self, ex_id: int | str, timeout: float = 0) -> str | None:
        """The oldest queued websocket error of an exchange, or None. ``timeout`` > 0
        waits up to that many seconds for one (also past the socket timeout).

        Example:
            >>> await cache.pop_ws_error(8) is None
            True
            >>> await cache.push_ws_error("first", 8)
            True
            >>> await cache.push_ws_error("second", 8)
            True
            >>> await cache.pop_ws_error(8), await cache.pop_ws_error(8, timeout=1)
            ('first', 'second')
        """
        raw = await self._pop_oldest(self.keys.ws_errors(_queue_id(ex_id)), timeout)
        return None if raw is None else raw.decode()
