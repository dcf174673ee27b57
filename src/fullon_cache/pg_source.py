"""PostgresSource: a :class:`~fullon_cache.read_through.MetadataSource` on the fullon
PostgreSQL schema, with asyncpg (``pip install 'fullon-cache[postgres]'``).

It reads the tables of fullon_orm:

* ``cat_exchanges(cat_ex_id, name, ohlcv_view)``
* ``exchanges(ex_id, uid, cat_ex_id, name, test, active)``
* ``symbols(symbol_id, symbol, cat_ex_id, base, quote, updateframe, backtest, decimals,
  futures, only_ticker)`` — a Symbol's ``exchange_name`` is its catalog exchange's name.

The DSN comes from the ``dsn`` argument or ``FULLON_CACHE_DATABASE_URL``. The source owns
one asyncpg pool, opened on first use in the running event loop (use one source per
loop) and closed by :meth:`PostgresSource.close` or ``async with``. asyncpg is imported
on first use, so the rest of the library works without it. ``queries`` counts the
queries sent, per method, for monitoring.

Example:
    >>> source = PostgresSource("postgresql://fullon@localhost/fullon")
    >>> source.queries["get_symbol"]
    0
"""

from __future__ import annotations

import asyncio
import importlib
from collections import Counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from fullon_cache.config import Settings, get_settings
from fullon_cache.models import CatExchange, Exchange, Symbol
from fullon_cache.read_through import int_id, text_id

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresSource"]

_SYMBOL_COLUMNS = (
    "s.symbol_id, s.symbol, s.cat_ex_id, s.base, s.quote, s.updateframe, s.backtest, "
    "s.decimals, s.futures, s.only_ticker, c.name AS exchange_name"
)
_SYMBOLS_FROM = "FROM symbols s JOIN cat_exchanges c ON c.cat_ex_id = s.cat_ex_id"
_EXCHANGE_COLUMNS = "ex_id, uid, cat_ex_id, name, test, active"


def _import_asyncpg() -> Any:
    try:
        return importlib.import_module("asyncpg")
    except ImportError as exc:
        raise ImportError(
            "PostgresSource needs asyncpg: pip install 'fullon-cache[postgres]'"
        ) from exc


def _row(record: Any) -> dict[str, Any]:
    """A record as a dict without NULLs, so the models' defaults apply."""
    return {key: value for key, value in record.items() if value is not None}


class PostgresSource:
    """Reads symbols, exchanges and the catalog from the fullon PostgreSQL schema.

    ``dsn`` defaults to ``FULLON_CACHE_DATABASE_URL``; ``min_size``/``max_size`` size the
    pool; ``command_timeout`` bounds every query (seconds).

    Example:
        >>> PostgresSource("postgresql://fullon@db/fullon", max_size=2).max_size
        2
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        settings: Settings | None = None,
        min_size: int = 1,
        max_size: int = 5,
        command_timeout: float = 10.0,
    ) -> None:
        if dsn is None:
            dsn = (settings or get_settings()).database_url
        if dsn is None:
            raise ValueError("no database: pass dsn= or set FULLON_CACHE_DATABASE_URL")
        self.dsn = text_id(dsn, "dsn")
        for name, size in (("min_size", min_size), ("max_size", max_size)):
            int_id(size, name)
        if max_size < 1 or min_size > max_size:
            raise ValueError("pool sizes need 1 <= max_size and min_size <= max_size")
        if isinstance(command_timeout, bool) or not isinstance(command_timeout, (int, float)):
            raise TypeError("command_timeout must be a number of seconds")
        if not command_timeout > 0:
            raise ValueError("command_timeout must be > 0")
        self.min_size = min_size
        self.max_size = max_size
        self.command_timeout = float(command_timeout)
        self.queries: Counter[str] = Counter()
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._opening = asyncio.Lock()

    def __repr__(self) -> str:
        return f"PostgresSource(open={self._pool is not None}, max_size={self.max_size})"

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the pool now (otherwise it opens on the first query); idempotent.

        Example:
            >>> # source = PostgresSource(dsn); await source.open()
        """
        await self._get_pool()

    async def close(self) -> None:
        """Close the pool; idempotent. A later query opens a new one.

        Example:
            >>> import asyncio
            >>> asyncio.run(PostgresSource("postgresql://db/fullon").close())
        """
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _get_pool(self) -> asyncpg.Pool[asyncpg.Record]:
        pool = self._pool
        if pool is None:
            async with self._opening:  # concurrent first queries open one pool
                pool = self._pool or await self._create_pool()
        return pool

    async def _create_pool(self) -> asyncpg.Pool[asyncpg.Record]:
        asyncpg_module = _import_asyncpg()
        pool: asyncpg.Pool[asyncpg.Record] = await asyncpg_module.create_pool(
            self.dsn,
            min_size=self.min_size,
            max_size=self.max_size,
            command_timeout=self.command_timeout,
        )
        self._pool = pool
        return pool

    async def _fetch(self, method: str, sql: str, *args: Any) -> list[dict[str, Any]]:
        pool = await self._get_pool()
        self.queries[method] += 1
        return [_row(record) for record in await pool.fetch(sql, *args)]

    @staticmethod
    def _symbol_filters(
        exchange_name: str | None, cat_ex_id: int | None, args: list[Any]
    ) -> list[str]:
        where: list[str] = []
        if exchange_name is not None:
            args.append(text_id(exchange_name, "exchange_name"))
            where.append(f"c.name = ${len(args)}")
        if cat_ex_id is not None:
            args.append(int_id(cat_ex_id, "cat_ex_id"))
            where.append(f"s.cat_ex_id = ${len(args)}")
        return where

    async def get_symbols(
        self, exchange_name: str | None = None, cat_ex_id: int | None = None
    ) -> list[Symbol]:
        """Symbols of a catalog exchange by name and/or id (every symbol when both are
        None), sorted by exchange and symbol.

        Example:
            >>> # await source.get_symbols(exchange_name="binance") -> [Symbol(...), ...]
        """
        args: list[Any] = []
        where = self._symbol_filters(exchange_name, cat_ex_id, args)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = await self._fetch(
            "get_symbols",
            f"SELECT {_SYMBOL_COLUMNS} {_SYMBOLS_FROM}{clause} ORDER BY c.name, s.symbol",
            *args,
        )
        return [Symbol.from_dict(row) for row in rows]

    async def get_symbol(
        self, symbol: str, exchange_name: str | None = None, cat_ex_id: int | None = None
    ) -> Symbol | None:
        """One symbol of a catalog exchange (by name and/or id), or None. Without either,
        the symbol of the lowest cat_ex_id that lists it.

        Example:
            >>> # await source.get_symbol("BTC/USDT", exchange_name="binance") -> Symbol(...)
        """
        args: list[Any] = [text_id(symbol, "symbol")]
        where = ["s.symbol = $1", *self._symbol_filters(exchange_name, cat_ex_id, args)]
        rows = await self._fetch(
            "get_symbol",
            f"SELECT {_SYMBOL_COLUMNS} {_SYMBOLS_FROM} WHERE {' AND '.join(where)} "
            "ORDER BY s.cat_ex_id LIMIT 1",
            *args,
        )
        return Symbol.from_dict(rows[0]) if rows else None

    async def get_exchange(self, ex_id: int) -> Exchange | None:
        """One user exchange by id, or None.

        Example:
            >>> # await source.get_exchange(10) -> Exchange(ex_id=10, ...)
        """
        rows = await self._fetch(
            "get_exchange",
            f"SELECT {_EXCHANGE_COLUMNS} FROM exchanges WHERE ex_id = $1",
            int_id(ex_id, "ex_id"),
        )
        return Exchange.from_dict(rows[0]) if rows else None

    async def get_user_exchanges(self, uid: int) -> list[Exchange]:
        """The exchanges of one user, sorted by ex_id.

        Example:
            >>> # await source.get_user_exchanges(1) -> [Exchange(...), ...]
        """
        rows = await self._fetch(
            "get_user_exchanges",
            f"SELECT {_EXCHANGE_COLUMNS} FROM exchanges WHERE uid = $1 ORDER BY ex_id",
            int_id(uid, "uid"),
        )
        return [Exchange.from_dict(row) for row in rows]

    async def get_cat_exchanges(self) -> list[CatExchange]:
        """Every exchange of the catalog, sorted by name.

        Example:
            >>> # await source.get_cat_exchanges() -> [CatExchange(name='binance', ...), ...]
        """
        rows = await self._fetch(
            "get_cat_exchanges",
            "SELECT cat_ex_id, name, ohlcv_view FROM cat_exchanges ORDER BY name",
        )
        return [CatExchange.from_dict(row) for row in rows]
