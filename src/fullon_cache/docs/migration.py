"""Migration guide: coming from the original fullon_cache — what differs and why.

``GUIDE`` is Markdown; its ```` ```python ```` blocks run in the test suite.

Example:
    >>> from fullon_cache.docs import migration
    >>> "## What changed, and why" in migration.GUIDE
    True
"""

from __future__ import annotations

__all__ = ["GUIDE"]

GUIDE = """# Migrating from the original fullon_cache

The public API keeps the original's names and argument orders (the ticker, OHLCV,
account and bot services and the websocket API keep working), and the module paths its
consumers import stay importable: `fullon_cache.process_cache.ProcessType` /
`ProcessStatus`, `fullon_cache.trades_cache.TradesCache`,
`fullon_cache.ohlcv_cache.OHLCVCache`, `fullon_cache.connection.ConnectionPool`. What
changed is what the original got wrong.

## What changed, and why

* **Was:** a PING, then each command as its own round trip (about 6 per tick). **Now:**
  one round trip per hot call (a pipeline or a Lua script), no PING. **Why:** latency
  and load: a ticker service writes thousands of ticks a second.
* **Was:** bot blocking was check-then-set with overwrite. **Now:** `block_exchange` is
  one atomic script; only the holder renews or releases; the lock is leased and fenced.
  **Why:** two bots could trade one symbol at once, and a crashed bot blocked it
  forever.
* **Was:** trade reads were LRANGE then DEL. **Now:** `get_trades` drains in one script.
  **Why:** trades pushed between the two commands were lost.
* **Was:** one cancelled order put a TTL on its exchange's whole hash. **Now:** each
  order is its own record; a cancelled one expires alone. **Why:** the exchange's other
  orders vanished an hour later.
* **Was:** `get_positions` ignored its argument. **Now:** it returns that exchange's
  positions, keyed by symbol. **Why:** every caller got every account's positions.
* **Was:** `update_ticker` never worked (always False). **Now:** both seed forms work:
  `(exchange, symbol, tick_data)` and `(exchange, tick)`.
* **Was:** blocking pops broke on the 5 s socket timeout. **Now:** waits run on a client
  without socket timeout, bounded by your timeout. **Why:** `pop_open_order(...,
  timeout=30)` raised after 5 s.
* **Was:** errors were swallowed: "missing" and "Redis down" both looked like
  False/None. **Now:** a miss returns the default; an outage raises
  `CacheConnectionError` after bounded retries, with a circuit breaker. **Why:**
  services traded on stale data while Redis was down.
* **Was:** lists grew without bound. **Now:** every queue, list and series is bounded or
  expires. **Why:** a stuck consumer filled Redis' memory.
* **Was:** nothing worked on Redis Cluster. **Now:** every multi-key step uses keys of
  one hash tag; the suite runs on a 3-master cluster. **Why:** scaling out was
  impossible.
* **Was:** hard-coded exchange lists. **Now:** exchanges are discovered from what is
  stored. **Why:** a new exchange's tickers were invisible.

## Behaviour you will notice

* **Exceptions instead of False.** Code that did `if not await cache.set_ticker(...)` to
  detect an outage should catch `CacheConnectionError` (a `ConnectionError` too). A miss
  still returns None, 0.0, [] or {}. `test()` still returns False when Redis is down.
* **Bad input fails early.** An empty symbol, a NaN or negative price, an unknown
  timeframe or a wrong type raises ValueError / TypeError before anything is written.
* **Composition, not a class tower.** The original chained the caches by inheritance
  (TickCache was a SymbolCache was an ExchangeCache ...), so any cache had every method.
  Now each cache subclasses `BaseCache` only: call symbol methods on a `SymbolCache`, not
  on a `TickCache`.
* **Locks expire.** `block_exchange` takes a lease (`FULLON_CACHE_LOCK_LEASE`, 30 s by
  default); a bot that holds a symbol longer renews it (`renew_block`, or
  `block_exchange` again). `unblock_exchange(ex_id, symbol)` without a `bot_id` is still
  the operator's unconditional release.
* **`get_order_status` has two forms.** One argument returns the status string; two
  (`exchange, order_id`) return the stored `Order`, as the consumers used it.
* **`prepare_cache()` clears only this library's namespace** (SCAN + UNLINK of
  `FULLON_CACHE_NAMESPACE:*`), never the whole database.
* **Models.** `fullon_orm` is not required: the package ships msgspec models with the
  same field names (`fullon_cache.models`). Anything with `to_dict()` (a real
  fullon_orm model) or a mapping is accepted wherever a model is. Datetimes come back
  timezone-aware UTC.
* **Logging.** The standard `logging` module with the original component names
  (`fullon.cache.tick`, ...); the library never configures handlers.
* **Settings** keep the original variables (REDIS_*, CACHE_TTL_*) and add
  `FULLON_CACHE_*` ones (namespace, retries, breaker, bounds, leases). To re-read them,
  `await ConnectionPool.reset_async()` as before.

## The old names still work

```python
from fullon_cache import Order, Tick, Trade
from fullon_cache.orders_cache import OrdersCache
from fullon_cache.tick_cache import TickCache
from fullon_cache.trades_cache import TradesCache

async with TickCache() as ticks:
    assert await ticks.update_ticker("binance", "BTC/USDT", {"price": 50000.0})
    assert await ticks.update_ticker("binance", Tick(symbol="ETH/USDT", exchange="binance",
                                                     price=3000.0))
    assert sorted(t.symbol for t in await ticks.get_all_tickers("binance")) == [
        "BTC/USDT", "ETH/USDT"
    ]

async with TradesCache() as trades:
    await trades.push_trade_list("BTC/USDT", "binance", {"volume": 1.0, "price": 9.0})
    assert len(await trades.get_trades_list("BTCUSDT", "binance")) == 1

async with OrdersCache() as orders:
    await orders.set_order_status("ORD-1", "open")
    assert await orders.get_order_status("ORD-1") == "open"
    await orders.save_order_data("binance", Order(ex_order_id="ORD-1", status="open"))
    assert (await orders.get_order_status("binance", "ORD-1")).status == "open"
```

## Checklist

1. Replace `from fullon_orm.models import ...` by `from fullon_cache import ...` where
   fullon_orm is not installed (or keep passing fullon_orm models: they are accepted).
2. Catch `CacheConnectionError` where an outage must be handled; stop treating False as
   "Redis down".
3. Call each method on the cache that owns it (no inherited tower).
4. Renew bot locks held longer than the lease.
5. Set `FULLON_CACHE_NAMESPACE` per deployment (and per test).
6. Run `make demo` against your server to see everything work end to end.
"""
