"""CacheManager: one object that owns one connection and hands out every cache.

Services that use many caches build one manager at start-up and use its attributes;
every cache it gives shares the manager's :class:`~fullon_cache.connection.Connection`
(not the per-loop pool), and closing the manager closes that connection.

Example:
    >>> manager = CacheManager()
    >>> manager.ticks is manager.ticks
    True
    >>> manager.orders.settings is manager.settings
    True
"""

from __future__ import annotations

from functools import cached_property
from types import TracebackType
from typing import Any, Self

from fullon_cache.account_cache import AccountCache
from fullon_cache.async_cache import AsyncCache
from fullon_cache.base_cache import BaseCache
from fullon_cache.bot_cache import BotCache
from fullon_cache.config import Settings, get_settings
from fullon_cache.connection import Connection
from fullon_cache.exchange_cache import ExchangeCache
from fullon_cache.ohlcv_cache import OHLCVCache
from fullon_cache.orders_cache import OrdersCache
from fullon_cache.process_cache import ProcessCache
from fullon_cache.read_through import MetadataSource
from fullon_cache.redis_cache import RedisCache
from fullon_cache.symbol_cache import SymbolCache
from fullon_cache.tick_cache import TickCache
from fullon_cache.trades_cache import TradesCache

__all__ = ["CacheManager"]


class CacheManager:
    """Every cache of the library over one connection.

    ``settings`` defaults to the environment; ``source`` (a
    :class:`~fullon_cache.read_through.MetadataSource`, e.g. ``PostgresSource``) gives the
    symbol and exchange caches their read-through.

    Example:
        >>> manager = CacheManager()
        >>> manager.ticks._connection is manager.orders._connection is manager.connection
        True
    """

    def __init__(
        self, settings: Settings | None = None, *, source: MetadataSource | None = None
    ) -> None:
        self.settings = settings or get_settings()
        self.source = source
        self.connection = Connection(self.settings)

    def _shared(self) -> dict[str, Any]:
        return {"connection": self.connection}

    @cached_property
    def base(self) -> BaseCache:
        """Health, namespace housekeeping and the global error queue."""
        return BaseCache(**self._shared())

    @cached_property
    def processes(self) -> ProcessCache:
        """Process registry, heartbeats and system health."""
        return ProcessCache(**self._shared())

    @cached_property
    def exchanges(self) -> ExchangeCache:
        """Exchanges (read-through from ``source``) and websocket error queues."""
        return ExchangeCache(source=self.source, **self._shared())

    @cached_property
    def symbols(self) -> SymbolCache:
        """Symbols per exchange (read-through from ``source``)."""
        return SymbolCache(source=self.source, **self._shared())

    @cached_property
    def ticks(self) -> TickCache:
        """Tickers, prices and their pub/sub stream."""
        return TickCache(**self._shared())

    @cached_property
    def accounts(self) -> AccountCache:
        """Balances, positions and portfolio summaries."""
        return AccountCache(**self._shared())

    @cached_property
    def orders(self) -> OrdersCache:
        """Order queues (simple and reliable), order data and statuses."""
        return OrdersCache(**self._shared())

    @cached_property
    def trades(self) -> TradesCache:
        """Trade lists, user trades, statuses and analytics."""
        return TradesCache(**self._shared())

    @cached_property
    def bots(self) -> BotCache:
        """Exchange+symbol locks, opening marks and bot status."""
        return BotCache(**self._shared())

    @cached_property
    def ohlcv(self) -> OHLCVCache:
        """Candlestick series."""
        return OHLCVCache(**self._shared())

    @cached_property
    def market_data(self) -> RedisCache:
        """Free-form market data per symbol (the seed's RedisCache)."""
        return RedisCache(**self._shared())

    def async_cache(self, strategy_id: str | int, user_id: str | int, **kwargs: Any) -> AsyncCache:
        """A write-behind AsyncCache for one strategy and user on this connection.

        Example:
            >>> CacheManager().async_cache("grid", 1).strategy_id
            'grid'
        """
        return AsyncCache(strategy_id, user_id, connection=self.connection, **kwargs)

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
        """Close the manager's connection; idempotent."""
        await self.connection.close()
