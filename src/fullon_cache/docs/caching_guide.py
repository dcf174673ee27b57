"""Caching guide: how the caches behave, the patterns to use them with, and why.

``GUIDE`` is Markdown; its ```` ```python ```` blocks are whole programs (top-level
``await``, as in ``python -m asyncio``) that the test suite runs against a real server.

Example:
    >>> from fullon_cache.docs import caching_guide
    >>> "## Connections" in caching_guide.GUIDE
    True
"""

from __future__ import annotations

__all__ = ["GUIDE"]

GUIDE = """# fullon_cache caching guide

## Connections

* One `ConnectionPool` entry per event loop and settings: every cache instance built in
  that loop shares it, so `TickCache()` per tick costs no socket. `await cache.close()`
  (or leaving `async with`) releases the instance, not the pool;
  `ConnectionPool.close_loop()` closes the loop's connections (do it when a loop ends),
  `ConnectionPool.reset_async()` also re-reads the settings.
* A pool hands out at most `REDIS_MAX_CONNECTIONS` connections at once. On a standalone
  server more concurrent operations wait for a free connection (up to the connect plus
  socket timeout); on Redis Cluster, redis-py's per-node pools refuse them
  (`CacheConnectionError`). Keep the concurrency of one loop below the setting (an
  `asyncio.Semaphore` around a large `gather`), or raise it.
* Blocking waits (`pop_open_order(..., timeout=5)`) and pub/sub use a second client
  without a socket timeout, so a wait longer than `REDIS_SOCKET_TIMEOUT` works; the wait
  is still bounded by your timeout.
* No PING before commands: a hot call is one round trip (a pipeline or a Lua script).
* A service that uses many caches can hold one `CacheManager`: it owns one connection
  (not the per-loop pool) and hands out every cache over it; closing it closes that
  connection.

```python
from fullon_cache import CacheManager, Tick

async with CacheManager() as manager:
    await manager.ticks.set_ticker(Tick(symbol="ADA/USDT", exchange="binance", price=0.5))
    assert await manager.ticks.get_price("ADA/USDT", "binance") == 0.5
    assert manager.orders.settings is manager.settings
```

## Keys and namespaces

Every key is `<namespace>:<type>:{<identifier>}[:<sub>]`, built in one module
(`fullon_cache.keys`). The namespace (`FULLON_CACHE_NAMESPACE`, default `fullon`) lets
several deployments or test runs share one database; `prepare_cache()` deletes exactly
that namespace (SCAN + UNLINK), never FLUSHDB. Identifiers are escaped, so a symbol such
as `BTC/USDT:USDT` or an identifier holding `*` can never widen a pattern. The braces are
a Redis Cluster hash tag: the keys one operation touches together share a slot, so every
multi-key step stays atomic on a cluster too.

```python
from fullon_cache import Tick
from fullon_cache.tick_cache import TickCache

async with TickCache() as cache:
    await cache.set_ticker(Tick(symbol="BTC/USDT:USDT", exchange="bybit", price=1.0))
    assert cache.keys.tickers("bybit").endswith(":tick:{bybit}")
    keys = await cache.get_keys("tick:*")  # SCAN, scoped to the namespace
    assert cache.keys.tickers("bybit") in keys
```

## Misses, bad input and outages

* A miss returns the documented default: None, 0.0, [] or {}.
* Bad input (empty symbol, NaN or negative price, unknown timeframe, wrong type) raises
  ValueError or TypeError before anything is written.
* A server that cannot be reached raises `CacheConnectionError` after
  `FULLON_CACHE_RETRY_ATTEMPTS` retries with back-off; after
  `FULLON_CACHE_BREAKER_THRESHOLD` failures in a row the circuit breaker fails calls fast
  (`CircuitOpenError`) for `FULLON_CACHE_BREAKER_COOLDOWN` seconds, then probes again.
  "Missing" and "Redis down" never look the same.

## Tickers

`TickCache.set_ticker(tick)` stores and publishes in one script; `set_tickers` batches.
Readers pick the exchange or take the freshest tick of any exchange; a tick older than
`max_age` seconds counts as missing when you ask for it (`TickCache.is_stale(tick,
max_age=None)`). Subscribers either stream or register a callback; both resubscribe after
a lost connection, and `snapshot=True` yields the stored ticks after each
(re)subscription so nothing published meanwhile is lost for good.

```python
import asyncio
import contextlib

from fullon_cache import Tick
from fullon_cache.tick_cache import TickCache

async with TickCache() as cache:
    await cache.set_ticker(Tick(symbol="SOL/USDT", exchange="binance", price=150.0))
    updates = cache.stream_ticker_updates("binance", ["SOL/USDT"], snapshot=True)
    async with contextlib.aclosing(updates):
        first = await asyncio.wait_for(anext(updates), 10)  # the stored tick
        await cache.set_ticker(Tick(symbol="SOL/USDT", exchange="binance", price=151.0))
        second = await asyncio.wait_for(anext(updates), 10)  # the live update
    assert (first.price, second.price) == (150.0, 151.0)
```

## Orders: at-most-once pop, at-least-once claim

`pop_open_order` removes the order: an executor that crashes right after loses it. An
executor that must not lose orders claims them: the claimed order stays in a processing
list until `ack_order`; if it is not acknowledged within
`FULLON_CACHE_ORDER_VISIBILITY_TIMEOUT` seconds it is handed to another executor;
after `FULLON_CACHE_ORDER_MAX_DELIVERIES` deliveries (or `fail_order(...,
retry=False)`) it becomes a dead letter, which an operator inspects and replays
(`OrdersCache.replay_dead_letters(exchange, limit=None)`, or `fullon-cache queue`).
Queues are bounded by `FULLON_CACHE_MAX_LIST_LENGTH`.

```python
from fullon_cache import Order
from fullon_cache.orders_cache import OrdersCache

async with OrdersCache() as cache:
    await cache.push_open_order("kraken", Order(order_id=7, symbol="ETH/USD"))
    claim = await cache.claim_order("kraken", "executor-1")
    try:
        pass  # place the order on the exchange
    except Exception as exc:
        await cache.fail_order("kraken", claim, str(exc))
    else:
        assert await cache.ack_order("kraken", claim)
    assert await cache.get_queue_stats("kraken") == {"queued": 0, "processing": 0, "dead": 0}
```

The order store (`save_order_data`) merges fields into one record per order; a cancelled
order expires after `CACHE_TTL_ORDER` seconds, that order alone.

## Trades: drained atomically, deduplicated

`TradesCache.get_trades(symbol, exchange)` returns and removes the list in one script:
with concurrent pushers and drainers, each trade is returned exactly once. A trade with
an `ex_trade_id` pushed twice within `FULLON_CACHE_TRADE_DEDUPE_WINDOW` seconds is
stored once (`push_trade` returns False the second time). 'BTC/USDT' and 'BTCUSDT' name
the same list. `TradesCache.peek_trades(symbol, exchange, count=None)` reads without
draining.

## Bot locks: atomic, owned, leased, fenced

`BotCache.block_exchange(ex_id, symbol, bot_id, lease=None)` takes the lock in one
script: True for the first bot and for the holder again (which renews the lease), False
while another bot holds it. Only the holder releases it (the operator may release any
lock with `unblock_exchange(ex_id, symbol)`). The lease expires if the bot dies, so keep
renewing while you work. The fencing token grows with every new holder: stamp your writes
with it, and a bot that was paused past its lease can be told apart.

```python
from fullon_cache.bot_cache import BotCache

async with BotCache() as cache:
    token = await cache.block_exchange_with_token("binance", "BTC/USDT", "bot-a", lease=30)
    assert token is not None
    assert await cache.block_exchange_with_token("binance", "BTC/USDT", "bot-b") is None
    assert await cache.renew_block("binance", "BTC/USDT", "bot-a", lease=30)
    assert await cache.unblock_exchange("binance", "BTC/USDT", bot_id="bot-a")
    later = await cache.block_exchange_with_token("binance", "BTC/USDT", "bot-b")
    assert later > token
    await cache.unblock_exchange("binance", "BTC/USDT", bot_id="bot-b")
```

## Reference data: read-through

`SymbolCache` and `ExchangeCache` hold data whose source of truth is PostgreSQL. With a
source configured (`FULLON_CACHE_DATABASE_URL`), a miss is loaded once however many
callers miss together, stored for `CACHE_TTL_SYMBOL` / `CACHE_TTL_EXCHANGE` seconds, and
an unknown key is remembered for `FULLON_CACHE_NEGATIVE_TTL` seconds so a typo does not
hammer the database. Without a source they are plain caches you fill with `add_symbol`
and `add_exchange`.

## Bounded storage

Everything the library writes is bounded or expires: queues and trade lists by
`FULLON_CACHE_MAX_LIST_LENGTH`, candles by `FULLON_CACHE_OHLCV_MAX_BARS`, the error
queue by `FULLON_CACHE_GLOBAL_ERROR_MAX`, process records by `FULLON_CACHE_PROCESS_TTL`,
locks by their lease, dedupe marks by their window.

## Processes and health

Services register with `ProcessCache.register_process(process_type, component,
params=None, message=None, status=...)`, call `heartbeat` (or `update_process`) while
they run, and dashboards read `get_system_health()` (`healthy`, `degraded` when a process
is stale or in error, `down` when Redis cannot be reached). `fullon-cache status` prints
it.
"""
