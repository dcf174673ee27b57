"""fullon_cache: the shared real-time data layer of the fullon crypto trading system.

An asyncio library on Redis or Valkey (standalone or Redis Cluster). Ticker services
write prices; bots read them, queue orders for executors, record trades, track balances
and positions, lock an exchange+symbol so two bots never trade it at once, and report
heartbeats; dashboards read all of it.

Caches (each usable as ``async with XCache() as cache:``; construction is cheap and
instances in one event loop share one connection pool):

    BaseCache      ping, test, prepare_cache, get_keys, global error queue
    ProcessCache   process registry and heartbeats, system health
    ExchangeCache  exchanges (read-through from PostgreSQL), websocket error queues
    SymbolCache    symbols per exchange (read-through), cascade delete of tickers
    TickCache      tickers with pub/sub streaming, prices, staleness
    AccountCache   balances, positions, portfolio summary
    OrdersCache    FIFO order queue with reliable claim/ack, dead letters, order status
    TradesCache    trade lists with atomic drain, dedupe, user trades, analytics
    BotCache       leased exchange+symbol locks with fencing tokens, bot status
    OHLCVCache     bounded candlestick series
    AsyncCache     write-behind orders/positions of a strategy (with RedisCache,
                   CacheKey and CacheManager)

Keys: ``<namespace>:<type>:{<identifier>}[:<sub>]`` — all spelled in
:mod:`fullon_cache.keys`; identifiers are escaped and can never widen a pattern.

Configuration: environment variables or a ``.env`` file (REDIS_HOST, REDIS_PORT,
REDIS_DB, REDIS_PASSWORD, REDIS_USERNAME, REDIS_SSL, REDIS_CLUSTER_MODE,
REDIS_CLUSTER_NODES, CACHE_TTL_*, FULLON_CACHE_NAMESPACE, ...); see
:mod:`fullon_cache.config`.

Errors: a miss returns None / 0.0 / [] / {}; an unreachable Redis raises
:class:`CacheConnectionError` after bounded retries; bad input raises ValueError or
TypeError before anything is written.

Minimal example::

    import asyncio
    from fullon_cache import TickCache, Tick

    async def main():
        async with TickCache() as cache:
            await cache.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=50000.0))
            print(await cache.get_price("BTC/USDT", "binance"))

    asyncio.run(main())

Everything else is inside the package (no external documentation needed):

* Guides as strings: ``from fullon_cache.docs import get_all_docs`` (``quickstart``,
  ``api_reference``, ``caching_guide``, ``testing_guide``, ``migration``), e.g.
  ``print(fullon_cache.docs.quickstart.GUIDE)``. ``fullon_cache.docs.api_reference`` is
  generated from the code at import time (``TICK_CACHE``, ``ORDERS_CACHE``, ...,
  ``CACHE_MANAGER``, ``API_REFERENCE``), so it cannot drift.
* Runnable examples: ``fullon_cache.examples`` (``basic_usage``, ``trading_flow``,
  ``pubsub_example``, ``queue_patterns``, ``bot_coordination``, ``performance_test``),
  each ``python -m fullon_cache.examples.<name>``; all of them with
  ``python -m fullon_cache.examples.run_all``; their source with
  ``fullon_cache.examples.get_all_examples()``. Each runs under its own namespace
  (``<FULLON_CACHE_NAMESPACE>.<name>``) and removes only its own keys.
* ``make demo`` (``python -m fullon_cache.demo``): the end-to-end trading flow and every
  example against your REDIS_* server, or against an embedded one it starts when none
  answers.
* The ``fullon-cache`` command: ``status`` (health, processes, order queues, keys per
  type), ``tickers EXCHANGE`` (live prices), ``queue EXCHANGE`` (dead letters, replay),
  ``server`` (a local embedded server).
* Every public class and method has a docstring with an ``Example:`` that the test suite
  runs against a real server: ``help(fullon_cache.TickCache.get_price)``.
"""

from __future__ import annotations

from fullon_cache.account_cache import AccountCache
from fullon_cache.async_cache import AsyncCache
from fullon_cache.base_cache import BaseCache
from fullon_cache.bot_cache import BotCache
from fullon_cache.config import Settings, get_settings, reload_settings
from fullon_cache.connection import ConnectionPool, ReplicaWaitError
from fullon_cache.exceptions import (
    CacheConnectionError,
    CacheDataError,
    CacheError,
    CachePermissionError,
    CacheTimeoutError,
    CircuitOpenError,
)
from fullon_cache.exchange_cache import ExchangeCache
from fullon_cache.keys import CacheKey
from fullon_cache.manager import CacheManager
from fullon_cache.models import (
    Balance,
    Bot,
    CatExchange,
    Exchange,
    Order,
    Position,
    Symbol,
    Tick,
    Trade,
)
from fullon_cache.ohlcv_cache import TIMEFRAMES, OHLCVCache
from fullon_cache.orders_cache import (
    ORDER_STATUSES,
    ClaimedOrder,
    DeadLetter,
    OrderQueueFullError,
    OrdersCache,
)
from fullon_cache.pg_source import PostgresSource
from fullon_cache.process_cache import ProcessCache, ProcessStatus, ProcessType
from fullon_cache.read_through import MetadataSource, SourceError
from fullon_cache.redis_cache import RedisCache
from fullon_cache.symbol_cache import SymbolCache
from fullon_cache.tick_cache import TickCache, TickSubscription
from fullon_cache.trades_cache import TradeListFullError, TradesCache

__version__ = "1.0.0"

__all__ = [
    "ORDER_STATUSES",
    "TIMEFRAMES",
    "AccountCache",
    "AsyncCache",
    "Balance",
    "BaseCache",
    "Bot",
    "BotCache",
    "CacheConnectionError",
    "CacheDataError",
    "CacheError",
    "CacheKey",
    "CacheManager",
    "CachePermissionError",
    "CacheTimeoutError",
    "CatExchange",
    "CircuitOpenError",
    "ClaimedOrder",
    "ConnectionPool",
    "DeadLetter",
    "Exchange",
    "ExchangeCache",
    "MetadataSource",
    "OHLCVCache",
    "Order",
    "OrderQueueFullError",
    "OrdersCache",
    "Position",
    "PostgresSource",
    "ProcessCache",
    "ProcessStatus",
    "ProcessType",
    "RedisCache",
    "ReplicaWaitError",
    "Settings",
    "SourceError",
    "Symbol",
    "SymbolCache",
    "Tick",
    "TickCache",
    "TickSubscription",
    "Trade",
    "TradeListFullError",
    "TradesCache",
    "__version__",
    "get_settings",
    "reload_settings",
]
