"""Quick start: from nothing to every cache in a few minutes.

``GUIDE`` is Markdown. Every ```` ```python ```` block in it is a complete program that
the test suite runs against a real server: the first one as a script
(``asyncio.run(main())``), the others with top-level ``await`` as in the asyncio REPL
(``python -m asyncio``).

Example:
    >>> from fullon_cache.docs import quickstart
    >>> quickstart.GUIDE.startswith("# fullon_cache quick start")
    True
"""

from __future__ import annotations

__all__ = ["GUIDE", "QUICK_START"]

GUIDE = """# fullon_cache quick start

fullon_cache is the shared real-time data layer of the fullon trading system: an asyncio
library on Redis or Valkey (standalone or Redis Cluster). Services write prices, orders,
trades, balances and heartbeats; bots and dashboards read them.

## 1. Point it at a server

Settings come from the environment or a `.env` file (the environment wins):

```bash
REDIS_HOST=localhost
REDIS_PORT=6379
REDIS_DB=0
FULLON_CACHE_NAMESPACE=fullon   # every key starts with "fullon:"
```

No server at hand? `fullon-cache server` starts a private one and prints the two
variables to export. `make demo` runs every example against your server, or against an
embedded one when none answers.

## 2. A first program

```python
import asyncio

from fullon_cache import Tick
from fullon_cache.tick_cache import TickCache


async def main() -> None:
    async with TickCache() as cache:
        await cache.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=50000.0))
        print(await cache.get_price("BTC/USDT", "binance"))  # 50000.0


asyncio.run(main())
```

Every cache works as `async with XCache() as cache:` or as a plain object closed with
`await cache.close()`. Construction is cheap (services build one per tick): all instances
of an event loop share one connection pool.

The blocks below use top-level `await`, as in `python -m asyncio`.

## 3. Tickers and prices

```python
from fullon_cache import Symbol, Tick
from fullon_cache.tick_cache import TickCache

async with TickCache() as cache:
    await cache.set_ticker(Tick(symbol="ETH/USDT", exchange="kraken", price=3000.0,
                                bid=2999.5, ask=3000.5))
    tick = await cache.get_ticker("ETH/USDT", "kraken")
    assert tick is not None and tick.spread == 1.0
    # a Symbol carries its exchange; without any exchange, the freshest tick anywhere
    symbol = Symbol(symbol="ETH/USDT", exchange_name="kraken")
    assert (await cache.get_ticker(symbol)).price == 3000.0
    assert await cache.get_price("ETH/USDT") == 3000.0
    assert await cache.get_price("NOPE/USDT", "kraken") == 0.0  # a miss, not an error
```

`TickCache.get_ticker(symbol, exchange=None, max_age=inf)` and
`TickCache.get_price(symbol, exchange=None, max_age=None, decimals=None)` read;
`TickCache.set_ticker(tick)` writes and publishes in one round trip;
`TickCache.stream_ticker_updates(exchange, symbols=None, snapshot=False, reconnect=True)`
streams updates (see `fullon_cache.examples.pubsub_example`).

## 4. Orders: a FIFO queue and an order store

```python
from fullon_cache import Order
from fullon_cache.orders_cache import OrdersCache

async with OrdersCache() as cache:
    order = Order(order_id=1, ex_order_id="EX-1", symbol="BTC/USDT", side="buy",
                  volume=0.1, status="open")
    await cache.save_order_data("binance", order)  # the order store
    await cache.push_open_order("binance", order)  # the queue for executors
    claimed = await cache.pop_open_order("binance", timeout=1)  # waits up to 1 s
    assert claimed is not None and claimed.order_id == 1
    await cache.save_order_data("binance", "EX-1", {"status": "filled"})
    assert (await cache.get_order("binance", "EX-1")).status == "filled"
```

Executors that must not lose an order claim it instead of popping it:
`OrdersCache.claim_order(exchange, consumer, timeout=0)`, then
`OrdersCache.ack_order(exchange, claim)` or
`OrdersCache.fail_order(exchange, claim, error='', retry=True)`; failed orders end up as
dead letters (`fullon-cache queue binance` shows and replays them).

## 5. Trades

```python
from fullon_cache import Trade
from fullon_cache.trades_cache import TradesCache

async with TradesCache() as cache:
    await cache.push_trade("binance", Trade(ex_trade_id="T1", symbol="BTC/USDT",
                                            side="buy", volume=0.1, price=50000.0))
    trades = await cache.get_trades("BTC/USDT", "binance")  # drains the list atomically
    assert [t.ex_trade_id for t in trades] == ["T1"]
    assert await cache.get_trades("BTC/USDT", "binance") == []
```

## 6. Balances and positions

```python
from fullon_cache import Position
from fullon_cache.account_cache import AccountCache

async with AccountCache() as cache:
    await cache.set_user_balances(1001, {"USDT": {"total": 1000.0, "free": 900.0,
                                                  "used": 100.0}})
    assert (await cache.get_user_balance(1001, "USDT"))["free"] == 900.0
    await cache.upsert_positions(1001, [Position(symbol="BTC/USDT", ex_id="1001",
                                                 volume=0.1, price=50000.0)])
    assert (await cache.get_position(1001, "BTC/USDT")).volume == 0.1
    assert list(await cache.get_positions(1001)) == ["BTC/USDT"]
```

## 7. Bots: one symbol, one bot

```python
from fullon_cache.bot_cache import BotCache

async with BotCache() as cache:
    assert await cache.block_exchange("binance", "BTC/USDT", bot_id=1)
    assert not await cache.block_exchange("binance", "BTC/USDT", bot_id=2)
    assert await cache.is_blocked("binance", "BTC/USDT") == "1"
    await cache.unblock_exchange("binance", "BTC/USDT", bot_id=1)
    assert await cache.is_blocked("binance", "BTC/USDT") is None
```

The lock is leased (`FULLON_CACHE_LOCK_LEASE` seconds): a crashed bot frees the symbol.
A bot that works longer renews it with
`BotCache.renew_block(ex_id, symbol, bot_id, lease=None)`.

## 8. Candles and processes

```python
from fullon_cache.ohlcv_cache import OHLCVCache
from fullon_cache.process_cache import ProcessCache, ProcessStatus, ProcessType

async with OHLCVCache() as cache:
    await cache.update_ohlcv_bars("BTC/USDT", "1m", [[60, 1.0, 2.0, 0.5, 1.5, 10.0]])
    assert await cache.get_latest_ohlcv_bars("BTCUSDT", "1m", 10) == [
        [60.0, 1.0, 2.0, 0.5, 1.5, 10.0]
    ]

async with ProcessCache() as cache:
    pid = await cache.register_process(ProcessType.TICK, "binance",
                                       status=ProcessStatus.RUNNING)
    assert await cache.heartbeat(pid)
    assert (await cache.get_system_health())["status"] == "healthy"
```

## 9. Errors

A miss returns the documented default (None, 0.0, [], {}). Bad input raises ValueError or
TypeError before anything is written. A server that cannot be reached raises
`CacheConnectionError` (also a `ConnectionError`) after bounded retries: never a silent
False.

```python
from fullon_cache import CacheConnectionError, Settings
from fullon_cache.embedded import free_port
from fullon_cache.tick_cache import TickCache

down = Settings(port=free_port(), retry_attempts=0, socket_connect_timeout=0.5)
try:
    await TickCache(settings=down).get_price("BTC/USDT", "binance")
except CacheConnectionError as exc:
    print("Redis down:", exc)
else:
    raise AssertionError("expected CacheConnectionError")

try:
    await TickCache().get_price("", "binance")
except ValueError:
    pass
```

## Next

* `fullon_cache.docs.api_reference` — every cache, method and docstring (generated).
* `fullon_cache.docs.caching_guide` — how the caches behave and why.
* `fullon_cache.docs.migration` — coming from the original fullon_cache.
* `python -m fullon_cache.examples.run_all` — every example end to end.
* `fullon-cache status` — what is in the cache right now.
"""

QUICK_START = GUIDE
"""The name fullon_orm's documentation uses for the same guide."""
