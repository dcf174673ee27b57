from __future__ import annotations

from fullon_cache import (
    AccountCache,
    AsyncCache,
    BaseCache,
    BotCache,
    CacheManager,
    ExchangeCache,
    OHLCVCache,
    Order,
    OrdersCache,
    ProcessCache,
    RedisCache,
    Settings,
    SymbolCache,
    Tick,
    TickCache,
    TradesCache,
)
from fullon_cache.config import get_settings


async def test_one_connection_serves_every_cache(settings: Settings) -> None:
    async with CacheManager() as manager:
        caches = {
            "base": (manager.base, BaseCache),
            "processes": (manager.processes, ProcessCache),
            "exchanges": (manager.exchanges, ExchangeCache),
            "symbols": (manager.symbols, SymbolCache),
            "ticks": (manager.ticks, TickCache),
            "accounts": (manager.accounts, AccountCache),
            "orders": (manager.orders, OrdersCache),
            "trades": (manager.trades, TradesCache),
            "bots": (manager.bots, BotCache),
            "ohlcv": (manager.ohlcv, OHLCVCache),
            "market_data": (manager.market_data, RedisCache),
        }
        for name, (cache, kind) in caches.items():
            assert isinstance(cache, kind), name
            assert cache._connection is manager.connection, name
            assert getattr(manager, name) is cache, name
        assert manager.settings is get_settings()
        await manager.ticks.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=42.0))
        assert await manager.ticks.get_price("BTC/USDT", "binance") == 42.0
        await manager.orders.push_open_order("binance", Order(order_id=1, symbol="BTC/USDT"))
        assert await manager.orders.get_queue_length("binance") == 1
        strategy = manager.async_cache("grid", 7, sync_interval=5)
        assert isinstance(strategy, AsyncCache)
        assert strategy._connection is manager.connection
    assert manager.connection.closed
    await manager.close()  # idempotent


async def test_a_source_reaches_the_read_through_caches(standalone: Settings) -> None:
    class EmptySource:
        async def get_symbols(self, exchange_name=None, cat_ex_id=None):  # type: ignore[no-untyped-def]
            return []

        async def get_symbol(self, symbol, exchange_name=None, cat_ex_id=None):  # type: ignore[no-untyped-def]
            return None

        async def get_exchange(self, ex_id):  # type: ignore[no-untyped-def]
            return None

        async def get_user_exchanges(self, uid):  # type: ignore[no-untyped-def]
            return []

        async def get_cat_exchanges(self):  # type: ignore[no-untyped-def]
            return []

    source = EmptySource()
    manager = CacheManager(standalone, source=source)
    assert manager.symbols.source is source
    assert manager.exchanges.source is source
    assert await manager.symbols.get_symbol("BTC/USDT", exchange_name="binance") is None
    await manager.close()
