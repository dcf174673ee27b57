"""SymbolCache: the symbols of each catalog exchange, read through from a source.

Symbols live in two hashes, ``symbol -> JSON Symbol``: ``keys.symbols(exchange_name)``
and ``keys.symbols_by_cat(cat_ex_id)``; a symbol is written to each hash whose
identifier it carries. Both expire after ``CACHE_TTL_SYMBOL`` (counted from the last
write). Lookups name the exchange by ``exchange_name`` or by ``cat_ex_id``; when both
are given, ``exchange_name`` is used.

With a ``source`` (:class:`~fullon_cache.read_through.MetadataSource`, e.g.
:class:`~fullon_cache.pg_source.PostgresSource`) a miss is filled from it once per key
(see :mod:`fullon_cache.read_through`); a symbol the source does not know is
remembered for ``FULLON_CACHE_NEGATIVE_TTL`` seconds. A list loaded whole from the
source is marked complete (a hash field named ``""``, which no symbol can be); without
that mark a list is what was added by hand, and with a source it is loaded again.

Example:
    >>> import asyncio
    >>> from fullon_cache import Symbol
    >>> async def main() -> list[str]:
    ...     async with SymbolCache() as cache:
    ...         btc = Symbol(symbol="BTC/USDT", cat_ex_id=1, exchange_name="binance")
    ...         await cache.add_symbol(btc)
    ...         return [s.symbol for s in await cache.get_symbols(exchange_name="binance")]
    >>> asyncio.run(main())  # doctest: +SKIP
    ['BTC/USDT']
"""

from __future__ import annotations

import time
from typing import Any

from fullon_cache.codec import as_model, decode, encode
from fullon_cache.connection import guarded
from fullon_cache.keys import CacheKey
from fullon_cache.models import Symbol
from fullon_cache.near_cache import near_for
from fullon_cache.read_through import (
    COMPLETE,
    ReadThroughCache,
    int_id,
    read_through,
    text_id,
)

__all__ = ["SymbolCache"]


Scope = tuple[str | None, int | None]


def _scope(exchange_name: object, cat_ex_id: object) -> Scope:
    name = None if exchange_name is None else text_id(exchange_name, "exchange_name")
    cat = None if cat_ex_id is None else int_id(cat_ex_id, "cat_ex_id")
    if name is None and cat is None:
        raise ValueError("exchange_name or cat_ex_id is required")
    return name, cat


def _checked(symbol: Any) -> Symbol:
    model = as_model(symbol, Symbol)
    if model.exchange_name is not None:
        text_id(model.exchange_name, "Symbol.exchange_name")
    if model.cat_ex_id is not None:
        int_id(model.cat_ex_id, "Symbol.cat_ex_id")
    if model.exchange_name is None and model.cat_ex_id is None:
        raise ValueError("a Symbol needs exchange_name or cat_ex_id to be cached")
    return model


class SymbolCache(ReadThroughCache):
    """Symbols per exchange (by name and by catalog id), read through from a source.

    ``source`` is optional: without one the cache answers only what was added.
    ``near_cache=True`` (or a :class:`~fullon_cache.near_cache.NearCache`): answers of
    :meth:`get_symbol` are served in process until the server reports a change of the
    exchange's symbols (any writer, any process, or their TTL) or of the remembered miss.

    Example:
        >>> await cache.add_symbol(Symbol(symbol="ETH/USDT", cat_ex_id=1, exchange_name="binance"))
        True
        >>> (await cache.get_symbol("ETH/USDT", cat_ex_id=1)).exchange_name
        'binance'
    """

    component = "symbol"

    # -- helpers ---------------------------------------------------------------------
    def _list_key(self, scope: Scope) -> str:
        name, cat = scope
        if name is not None:
            return self.keys.symbols(name)
        assert cat is not None
        return self.keys.symbols_by_cat(cat)

    def _miss_key(self, scope: Scope, symbol: str) -> str:
        name, cat = scope
        if name is not None:
            return self.keys.read_through_miss(CacheKey.SYMBOLS, name, symbol)
        assert cat is not None
        return self.keys.read_through_miss(CacheKey.SYMBOLS_BY_CAT, cat, symbol)

    @staticmethod
    def _fill(found: Any, scope: Scope) -> Symbol:
        """A source's answer as a Symbol that carries the identifier it was looked up by."""
        model = as_model(found, Symbol)
        name, cat = scope
        if model.exchange_name is None and name is not None:
            model.exchange_name = name
        if model.cat_ex_id is None and cat is not None:
            model.cat_ex_id = cat
        return _checked(model)

    async def _write(self, symbols: list[Symbol], complete: str | None = None) -> None:
        ttl = self.settings.ttl_symbol if symbols else self.settings.negative_ttl
        touched: set[str] = set()
        misses: list[str] = []
        async with self.redis.pipeline(transaction=False) as pipe:
            for symbol in symbols:
                data = encode(symbol)
                if symbol.exchange_name is not None:
                    key = self.keys.symbols(symbol.exchange_name)
                    pipe.hset(key, symbol.symbol, data)
                    misses.append(self._miss_key((symbol.exchange_name, None), symbol.symbol))
                    pipe.delete(misses[-1])
                    touched.add(key)
                if symbol.cat_ex_id is not None:
                    key = self.keys.symbols_by_cat(symbol.cat_ex_id)
                    pipe.hset(key, symbol.symbol, data)
                    misses.append(self._miss_key((None, symbol.cat_ex_id), symbol.symbol))
                    pipe.delete(misses[-1])
                    touched.add(key)
            if complete is not None:
                pipe.hset(complete, COMPLETE, str(time.time()))
                touched.add(complete)
            for key in sorted(touched):
                pipe.expire(key, ttl)
            await pipe.execute()
        self._invalidate(*touched, *misses)

    # -- reads -----------------------------------------------------------------------
    @guarded
    async def get_symbol(
        self,
        symbol: str,
        exchange_name: str | None = None,
        cat_ex_id: int | str | None = None,
    ) -> Symbol | None:
        """One symbol of an exchange, or None. A miss is filled from the source (once,
        however many callers miss together); an unknown symbol is remembered briefly.

        Example:
            >>> btc = Symbol(symbol="BTC/USDT", cat_ex_id=1, exchange_name="binance", decimals=2)
            >>> await cache.add_symbol(btc)
            True
            >>> (await cache.get_symbol("BTC/USDT", exchange_name="binance")).decimals
            2
            >>> await cache.get_symbol("DOGE/USDT", exchange_name="binance") is None
            True
        """
        symbol = text_id(symbol, "symbol")
        scope = _scope(exchange_name, cat_ex_id)
        if scope[0] is not None:
            scope = (scope[0], None)
        key = self._list_key(scope)
        miss = self._miss_key(scope, symbol)
        source = self.source
        near = near_for(self.near_cache, self)

        async def fetch() -> tuple[bytes | None, bool]:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hget(key, symbol)
                pipe.exists(miss)
                raw, missed = await pipe.execute()
            return raw, bool(missed)

        async def read() -> tuple[bool, Symbol | None]:
            if near is None:
                raw, missed = await fetch()
            else:  # the reply (bytes) is kept, never the mutable Symbol
                raw, missed = await near.fetch(("symbol", key, symbol), (key, miss), fetch)
            if raw is not None:
                return True, decode(raw, Symbol)
            return missed, None

        async def load() -> Symbol | None:
            assert source is not None
            found = await source.get_symbol(symbol, exchange_name=scope[0], cat_ex_id=scope[1])
            return None if found is None else self._fill(found, scope)

        async def store(value: Symbol | None) -> Symbol | None:
            if value is None:
                await self.redis.set(miss, b"1", ex=self.settings.negative_ttl)
                self._invalidate(miss)
            else:
                await self._write([value])
            return value

        return await read_through(
            self._flight("symbol", key, symbol), read, load if source else None, store
        )

    @guarded
    async def get_symbols(
        self, exchange_name: str | None = None, cat_ex_id: int | str | None = None
    ) -> list[Symbol]:
        """Every symbol of an exchange, sorted by symbol ([] when none). With a source, a
        list not yet loaded whole is loaded (an empty answer is remembered briefly).

        Example:
            >>> await cache.add_symbol(Symbol(symbol="B/USDT", cat_ex_id=3, exchange_name="kraken"))
            True
            >>> await cache.add_symbol(Symbol(symbol="A/USDT", cat_ex_id=3, exchange_name="kraken"))
            True
            >>> [s.symbol for s in await cache.get_symbols(cat_ex_id=3)]
            ['A/USDT', 'B/USDT']
        """
        scope = _scope(exchange_name, cat_ex_id)
        if scope[0] is not None:
            scope = (scope[0], None)
        key = self._list_key(scope)
        source = self.source

        async def read() -> tuple[bool, list[Symbol]]:
            return await self._read_list(key, Symbol, lambda s: s.symbol)

        async def load() -> list[Symbol]:
            assert source is not None
            found = await source.get_symbols(exchange_name=scope[0], cat_ex_id=scope[1])
            symbols = [self._fill(item, scope) for item in found]
            symbols.sort(key=lambda s: s.symbol)
            return symbols

        async def store(values: list[Symbol]) -> list[Symbol]:
            await self._write(values, complete=key)
            return (await read())[1]  # with what was added while the source answered

        return await read_through(
            self._flight("symbols", key), read, load if source else None, store
        )

    async def symbol_exists(
        self,
        symbol: str,
        exchange_name: str | None = None,
        cat_ex_id: int | str | None = None,
    ) -> bool:
        """True when :meth:`get_symbol` finds the symbol (reading through the source).

        Example:
            >>> await cache.add_symbol(Symbol(symbol="SOL/USDT", cat_ex_id=1, exchange_name="b"))
            True
            >>> await cache.symbol_exists("SOL/USDT", "b")
            True
            >>> await cache.symbol_exists("SOL/USDT", cat_ex_id=2)
            False
        """
        return await self.get_symbol(symbol, exchange_name, cat_ex_id) is not None

    # -- writes ----------------------------------------------------------------------
    @guarded
    async def add_symbol(self, symbol: Symbol | Any) -> bool:
        """Store a symbol (a Symbol, a mapping or an object with ``to_dict()``) under its
        ``exchange_name`` and its ``cat_ex_id`` (one of them is required); replaces a
        stored one and clears a remembered miss.

        Example:
            >>> await cache.add_symbol({"symbol": "ADA/USDT", "cat_ex_id": 1, "exchange_name": "b"})
            True
            >>> await cache.symbol_exists("ADA/USDT", "b")
            True
        """
        await self._write([_checked(symbol)])
        return True

    @guarded
    async def update_symbol(self, symbol: Symbol | Any) -> bool:
        """Store the new version of a symbol (same as :meth:`add_symbol`: an upsert).

        Example:
            >>> await cache.add_symbol(Symbol(symbol="BTC/EUR", cat_ex_id=1, exchange_name="b"))
            True
            >>> new = Symbol(symbol="BTC/EUR", cat_ex_id=1, exchange_name="b", decimals=4)
            >>> await cache.update_symbol(new)
            True
            >>> (await cache.get_symbol("BTC/EUR", "b")).decimals
            4
        """
        await self._write([_checked(symbol)])
        return True

    @guarded
    async def delete_symbol(
        self,
        symbol: str | Symbol | Any,
        exchange_name: str | None = None,
        cat_ex_id: int | str | None = None,
    ) -> bool:
        """Delete a symbol from both hashes and its ticker from ``keys.tickers(exchange)``.

        ``symbol`` is the symbol string or a Symbol (whose exchange_name and cat_ex_id
        are used when not passed). The identifier not given is taken from the stored
        symbol. Order: the ticker is deleted first, then the symbol entries — these are
        separate commands (on a cluster the keys may live in different slots), and if
        the second is never sent, the symbol is still there for a retry while no stale
        price survives for a symbol that is gone. Returns True if a symbol entry was
        deleted.

        Example:
            >>> await cache.add_symbol(Symbol(symbol="XRP/USDT", cat_ex_id=1, exchange_name="b"))
            True
            >>> await cache.delete_symbol("XRP/USDT", exchange_name="b")
            True
            >>> await cache.get_symbol("XRP/USDT", cat_ex_id=1) is None
            True
        """
        if isinstance(symbol, str):
            name = text_id(symbol, "symbol")
        else:
            model = as_model(symbol, Symbol)
            name = model.symbol
            if exchange_name is None:
                exchange_name = model.exchange_name
            if cat_ex_id is None:
                cat_ex_id = model.cat_ex_id
        exchange, cat = _scope(exchange_name, cat_ex_id)

        async with self.redis.pipeline(transaction=False) as pipe:
            if exchange is not None:
                pipe.hget(self.keys.symbols(exchange), name)
            if cat is not None:
                pipe.hget(self.keys.symbols_by_cat(cat), name)
            stored = await pipe.execute()
        for raw in stored:
            if raw is not None:
                found = decode(raw, Symbol)
                exchange = exchange if exchange is not None else found.exchange_name
                cat = cat if cat is not None else found.cat_ex_id

        if exchange is not None:
            await self.redis.hdel(self.keys.tickers(exchange), name)
            self._invalidate(self.keys.tickers(exchange))
        written: list[str] = []
        if exchange is not None:
            written.append(self.keys.symbols(exchange))
        if cat is not None:
            written.append(self.keys.symbols_by_cat(cat))
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in written:
                pipe.hdel(key, name)
            removed = await pipe.execute()
        self._invalidate(*written)
        return bool(sum(removed) > 0)
