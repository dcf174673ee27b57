from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from fullon_cache.codec import encode
from fullon_cache.config import Settings
from fullon_cache.embedded import EmbeddedServer, free_port
from fullon_cache.exceptions import CacheConnectionError
from fullon_cache.models import Symbol, Tick
from fullon_cache.tick_cache import TickCache

WARM = "WARM/UP"


def tick(
    symbol: str = "BTC/USDT", exchange: str = "binance", price: float = 1.0, **kw: Any
) -> Tick:
    return Tick(symbol=symbol, exchange=exchange, price=price, **kw)


class Dict:
    """A fullon_orm-like object: only ``to_dict()``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)


async def until(condition: Callable[[], bool]) -> None:
    """Wait (polling) until ``condition()`` holds; a hang guard, not a speed check."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


class Collector:
    """Consumes an async iterator of ticks in a task."""

    def __init__(self, stream: AsyncIterator[Tick]) -> None:
        self.stream = stream
        self.items: list[Tick] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for item in self.stream:
                self.items.append(item)
        except Exception as exc:
            self.error = exc

    def live(self) -> list[tuple[str, float]]:
        return [(t.symbol, t.price) for t in self.items if t.symbol != WARM]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.wait({self.task})
        await self.stream.aclose()  # type: ignore[attr-defined]


async def settle(cache: TickCache, *lists: list[Tick], exchange: str = "binance") -> None:
    """Publish warm-up ticks until every subscriber received one: they are subscribed."""
    while not all(any(t.symbol == WARM for t in items) for items in lists):
        await cache.set_ticker(tick(WARM, exchange))
        await asyncio.sleep(0.01)


@pytest.fixture
async def cache(settings: Settings) -> AsyncIterator[TickCache]:
    async with TickCache() as instance:
        yield instance


# -- writes and reads -----------------------------------------------------------------
async def test_set_ticker_stores_contract_layout_and_reads_back(cache: TickCache) -> None:
    t = tick(price=50000.0, volume=3.0, bid=49999.0, ask=50001.0, time=time.time())
    assert await cache.set_ticker(t) is True
    assert await cache.get_ticker("BTC/USDT", "binance") == t
    raw = await cache.redis.hget(cache.keys.tickers("binance"), "BTC/USDT")  # type: ignore[misc]
    assert raw == encode(t)
    index = await cache.redis.smembers(cache.keys.tick_exchanges())  # type: ignore[misc]
    assert index == {b"binance"}
    # a mapping and a to_dict() object are accepted too; the latest write wins
    assert await cache.set_ticker({"symbol": "BTC/USDT", "exchange": "binance", "price": 2})
    assert await cache.get_price("BTC/USDT", "binance") == 2.0
    assert await cache.set_ticker(Dict({"symbol": "BTC/USDT", "exchange": "binance", "price": 3}))
    assert await cache.get_price("BTC/USDT", "binance") == 3.0


async def test_futures_symbols_and_odd_identifiers_work(cache: TickCache) -> None:
    await cache.set_ticker(tick("BTC/USDT:USDT", "bin*ance", 5.0))
    await cache.set_ticker(tick("BTC/USDT", "binance", 6.0))
    assert await cache.get_price("BTC/USDT:USDT", "bin*ance") == 5.0
    assert [t.exchange for t in await cache.get_tickers("bin*ance")] == ["bin*ance"]
    assert await cache.get_price("BTC/USDT:USDT", "binance") == 0.0


async def test_set_tickers_is_one_batch_across_exchanges(cache: TickCache) -> None:
    batch = [tick("BTC/USDT", "kraken", 1.0), tick("ETH/USDT", "binance", 2.0), tick("BTC/USDT")]
    assert await cache.set_tickers(batch) == 3
    assert await cache.set_tickers([tick("XRP/USDT", "kraken", 0.5)]) == 1  # already indexed
    assert [(t.exchange, t.symbol) for t in await cache.get_tickers()] == [
        ("binance", "BTC/USDT"),
        ("binance", "ETH/USDT"),
        ("kraken", "BTC/USDT"),
        ("kraken", "XRP/USDT"),
    ]
    assert await cache.set_tickers([]) == 0
    assert await cache.set_tickers(t for t in [{"symbol": "A/B", "exchange": "x", "price": 1}]) == 1
    assert await cache.get_price("A/B", "x") == 1.0


async def test_get_ticker_with_symbol_model_and_keyword_exchange(cache: TickCache) -> None:
    await cache.set_ticker(tick(price=7.0, time=time.time() - 5))
    await cache.set_ticker(tick(exchange="kraken", price=8.0, time=time.time()))
    with_exchange = Symbol(symbol="BTC/USDT", exchange_name="binance")
    assert (await cache.get_ticker(with_exchange)).price == 7.0  # type: ignore[union-attr]
    assert (await cache.get_ticker(with_exchange, exchange="kraken")).price == 8.0  # type: ignore[union-attr]
    no_exchange = Symbol(symbol="BTC/USDT")
    assert (await cache.get_ticker(no_exchange)).exchange == "kraken"  # type: ignore[union-attr]
    assert (await cache.get_ticker(Dict(with_exchange.to_dict()))).price == 7.0  # type: ignore[union-attr]
    assert await cache.get_ticker("BTC/USDT", exchange="bybit") is None


async def test_without_exchange_the_freshest_tick_wins(cache: TickCache) -> None:
    assert await cache.get_ticker("BTC/USDT") is None  # no exchange at all
    assert await cache.get_price("BTC/USDT") == 0.0
    now = time.time()
    await cache.set_ticker(tick(exchange="kraken", price=10.0, time=now - 1))
    await cache.set_ticker(tick(exchange="binance", price=11.0, time=now))
    await cache.set_ticker(tick(exchange="bybit", price=12.0, time=now - 2))
    await cache.set_ticker(tick("ETH/USDT", "okx", price=1.0, time=now + 1))
    assert await cache.get_price("BTC/USDT") == 11.0
    assert (await cache.get_ticker("BTC/USDT")).exchange == "binance"  # type: ignore[union-attr]
    assert await cache.get_ticker("DOGE/USDT") is None


async def test_stale_ticks_are_unknown_to_get_price_by_default(cache: TickCache) -> None:
    old = time.time() - cache.settings.tick_max_age - 30
    await cache.set_ticker(tick(price=5.0, time=old))
    assert await cache.get_price("BTC/USDT", "binance") == 0.0
    assert await cache.get_price("BTC/USDT") == 0.0
    assert await cache.get_price("BTC/USDT", "binance", max_age=math.inf) == 5.0
    assert await cache.get_price("BTC/USDT", "binance", max_age=3600) == 5.0
    # get_ticker returns any age unless asked
    assert (await cache.get_ticker("BTC/USDT", "binance")).price == 5.0  # type: ignore[union-attr]
    assert await cache.get_ticker("BTC/USDT", "binance", max_age=None) is None
    assert await cache.get_ticker("BTC/USDT", "binance", max_age=10) is None
    # a fresher stale tick elsewhere does not help when all are stale; a fresh one does
    await cache.set_ticker(tick(exchange="kraken", price=6.0))
    assert await cache.get_price("BTC/USDT") == 6.0


async def test_is_stale(cache: TickCache) -> None:
    now = time.time()
    assert cache.is_stale(tick(time=now)) is False
    assert cache.is_stale(tick(time=now - 3600)) is True
    assert cache.is_stale(tick(time=now - 3600), max_age=7200) is False
    assert cache.is_stale(tick(time=now + 3600), max_age=0) is False  # future is not stale
    assert cache.is_stale({"symbol": "A/B", "exchange": "x", "price": 1, "time": 0}) is True
    assert cache.is_stale(tick(time=0), max_age=math.inf) is False
    with pytest.raises(TypeError):
        cache.is_stale(tick(), max_age="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cache.is_stale(tick(), max_age=True)
    with pytest.raises(ValueError, match="max_age"):
        cache.is_stale(tick(), max_age=-1)
    with pytest.raises(ValueError, match="max_age"):
        cache.is_stale(tick(), max_age=math.nan)
    with pytest.raises(TypeError):
        cache.is_stale("BTC/USDT")


async def test_get_price_rounds_to_decimals(cache: TickCache) -> None:
    await cache.set_ticker(tick(price=1.23456))
    assert await cache.get_price("BTC/USDT", "binance") == 1.23456
    assert await cache.get_price("BTC/USDT", "binance", decimals=2) == 1.23
    assert (
        await cache.get_price("BTC/USDT", "binance", decimals=Symbol(symbol="X", decimals=3))
        == 1.235
    )
    assert await cache.get_price("NOPE/USDT", "binance", decimals=2) == 0.0
    with pytest.raises(ValueError, match="decimals"):
        await cache.get_price("BTC/USDT", "binance", decimals=19)


async def test_round_price(cache: TickCache) -> None:
    assert cache.round_price(2.675, 2) == 2.68
    assert cache.round_price(2.665, 2) == 2.67
    assert cache.round_price(50000.123456789, Symbol(symbol="BTC/USDT", decimals=4)) == 50000.1235
    assert cache.round_price(7, 0) == 7.0
    assert cache.round_price(0.5, 0) == 1.0
    assert cache.round_price(1e-9, 18) == 1e-9
    assert cache.round_price(3.14159, {"symbol": "X", "decimals": 1}) == 3.1
    for bad_price in (math.nan, math.inf, -1.0):
        with pytest.raises(ValueError, match="price"):
            cache.round_price(bad_price, 2)
    for bad_type in ("1.0", None, True):
        with pytest.raises(TypeError):
            cache.round_price(bad_type, 2)  # type: ignore[arg-type]
    for bad_decimals in (-1, 19):
        with pytest.raises(ValueError, match="decimals"):
            cache.round_price(1.0, bad_decimals)
    for wrong in (True, "2", 2.0):
        with pytest.raises(TypeError):
            cache.round_price(1.0, wrong)


async def test_update_ticker_accepts_both_seed_forms(cache: TickCache) -> None:
    assert await cache.update_ticker("binance", "BTC/USDT", {"price": 50000.0, "volume": 2.0})
    stored = await cache.get_ticker("BTC/USDT", "binance")
    assert stored is not None
    assert (stored.symbol, stored.exchange, stored.price, stored.volume) == (
        "BTC/USDT",
        "binance",
        50000.0,
        2.0,
    )
    assert await cache.update_ticker("binance", tick("ETH/USDT", price=3.0))
    assert await cache.get_price("ETH/USDT", "binance") == 3.0
    # ccxt-style data: 'last' stands in for a missing price; matching names are fine
    data = {"last": 4.5, "symbol": "XRP/USDT", "exchange": "kraken", "bid": 4.4}
    assert await cache.update_ticker("kraken", "XRP/USDT", data)
    assert (await cache.get_ticker("XRP/USDT", "kraken")).bid == 4.4  # type: ignore[union-attr]
    assert data == {"last": 4.5, "symbol": "XRP/USDT", "exchange": "kraken", "bid": 4.4}
    sym = Symbol(symbol="SOL/USDT")
    assert await cache.update_ticker("kraken", sym, {"price": 9})
    assert await cache.get_price(sym, "kraken") == 9.0
    assert await cache.update_ticker("kraken", Dict(tick("ADA/USDT", "kraken").to_dict()))


async def test_delete_ticker(cache: TickCache) -> None:
    await cache.set_ticker(tick())
    await cache.set_ticker(tick("ETH/USDT"))
    assert await cache.delete_ticker("BTC/USDT", "binance") is True
    assert await cache.delete_ticker(Symbol(symbol="BTC/USDT"), "binance") is False
    assert await cache.get_ticker("BTC/USDT", "binance") is None
    assert [t.symbol for t in await cache.get_tickers("binance")] == ["ETH/USDT"]


async def test_get_tickers_and_get_all_tickers(cache: TickCache) -> None:
    assert await cache.get_tickers() == []
    assert await cache.get_all_tickers() == []
    assert await cache.get_tickers("binance") == []
    exchanges = [f"ex{i}" for i in range(5)]
    await cache.set_tickers([tick(s, e, 1.0) for e in exchanges for s in ("B/C", "A/C")])
    everything = await cache.get_all_tickers()
    assert [(t.exchange, t.symbol) for t in everything] == [
        (e, s) for e in exchanges for s in ("A/C", "B/C")
    ]
    assert [t.symbol for t in await cache.get_all_tickers(exchange_name="ex3")] == ["A/C", "B/C"]
    # the index may name an exchange whose tickers were deleted: it just has none
    await cache.delete_ticker("A/C", "ex0")
    await cache.delete_ticker("B/C", "ex0")
    assert {t.exchange for t in await cache.get_tickers()} == set(exchanges[1:])
    # deleted then written again: the exchange is still indexed
    await cache.set_ticker(tick("A/C", "ex0"))
    assert {t.exchange for t in await cache.get_tickers()} == set(exchanges)


async def test_symbol_cache_style_hdel_is_seen(cache: TickCache) -> None:
    await cache.set_ticker(tick())
    await cache.redis.hdel(cache.keys.tickers("binance"), "BTC/USDT")  # type: ignore[misc]
    assert await cache.get_ticker("BTC/USDT", "binance") is None
    assert await cache.get_price("BTC/USDT") == 0.0


# -- validation: bad input raises before anything is written ---------------------------
@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.set_ticker({"symbol": "", "exchange": "binance", "price": 1}), ValueError),
        (lambda c: c.set_ticker({"symbol": "A/B", "exchange": " ", "price": 1}), ValueError),
        (lambda c: c.set_ticker({"symbol": "A/B", "exchange": "x", "price": -1}), ValueError),
        (lambda c: c.set_ticker({"symbol": "A/B", "exchange": "x", "price": math.nan}), ValueError),
        (lambda c: c.set_ticker({"symbol": "A/B", "exchange": "x", "price": "abc"}), TypeError),
        (lambda c: c.set_ticker({"symbol": "A/B", "exchange": "x"}), ValueError),
        (lambda c: c.set_ticker("BTC/USDT"), TypeError),
        (lambda c: c.set_ticker(None), TypeError),
        (
            lambda c: c.set_tickers([tick(), {"symbol": "A/B", "exchange": "x", "price": -2}]),
            ValueError,
        ),
        (lambda c: c.set_tickers([tick(), 5]), TypeError),
        (lambda c: c.set_tickers(tick()), TypeError),
        (lambda c: c.set_tickers("abc"), TypeError),
        (lambda c: c.set_tickers(5), TypeError),
        (lambda c: c.update_ticker("", "BTC/USDT", {"price": 1}), ValueError),
        (lambda c: c.update_ticker(5, "BTC/USDT", {"price": 1}), TypeError),
        (lambda c: c.update_ticker("binance", "", {"price": 1}), ValueError),
        (lambda c: c.update_ticker("binance", 5, {"price": 1}), TypeError),
        (lambda c: c.update_ticker("binance", "BTC/USDT", {"price": math.inf}), ValueError),
        (lambda c: c.update_ticker("binance", "BTC/USDT", {"volume": 1}), ValueError),
        (lambda c: c.update_ticker("binance", "BTC/USDT", [("price", 1)]), TypeError),
        (
            lambda c: c.update_ticker("binance", "BTC/USDT", {"price": 1, "symbol": "ETH/USDT"}),
            ValueError,
        ),
        (
            lambda c: c.update_ticker("binance", "BTC/USDT", {"price": 1, "exchange": "kraken"}),
            ValueError,
        ),
        (lambda c: c.update_ticker("kraken", tick()), ValueError),
        (lambda c: c.update_ticker("binance", "BTC/USDT"), TypeError),
        (lambda c: c.get_ticker(""), ValueError),
        (lambda c: c.get_ticker(None), TypeError),
        (lambda c: c.get_ticker("BTC/USDT", ""), ValueError),
        (lambda c: c.get_ticker("BTC/USDT", 7), TypeError),
        (lambda c: c.get_ticker("BTC/USDT", "binance", max_age=-5), ValueError),
        (lambda c: c.get_price("BTC/USDT", "binance", max_age="x"), TypeError),
        (lambda c: c.get_price(3), TypeError),
        (lambda c: c.get_tickers(""), ValueError),
        (lambda c: c.get_all_tickers(exchange_name=1), TypeError),
        (lambda c: c.delete_ticker("", "binance"), ValueError),
        (lambda c: c.delete_ticker("BTC/USDT", None), TypeError),
    ],
)
async def test_bad_input_is_rejected_before_any_write(
    cache: TickCache, call: Callable[[TickCache], Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await call(cache)
    assert await cache.get_keys() == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("", ["BTC/USDT"]), ValueError),
        ((None, ["BTC/USDT"]), TypeError),
        (("binance", []), ValueError),
        (("binance", [""]), ValueError),
        (("binance", 5), TypeError),
        (("binance", [5]), TypeError),
    ],
)
async def test_stream_arguments_are_checked_at_call_time(
    cache: TickCache, args: tuple[Any, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        cache.stream_ticker_updates(*args)
    with pytest.raises(error):
        await cache.subscribe(*args, callback=print)
    with pytest.raises(TypeError, match="callback"):
        await cache.subscribe("binance", None, "not callable")  # type: ignore[arg-type]


# -- real time ------------------------------------------------------------------------
async def test_stream_delivers_every_update_in_order(cache: TickCache) -> None:
    collector = Collector(cache.stream_ticker_updates("binance", ["BTC/USDT", "ETH/USDT", WARM]))
    await settle(cache, collector.items)
    expected = []
    for i in range(60):
        symbol = "BTC/USDT" if i % 3 else "ETH/USDT"
        expected.append((symbol, float(i)))
        await cache.set_ticker(tick(symbol, price=float(i)))
    await cache.set_tickers([tick("BTC/USDT", price=100.0), tick("ETH/USDT", price=101.0)])
    await cache.update_ticker("binance", "ETH/USDT", {"price": 102.0})
    expected += [("BTC/USDT", 100.0), ("ETH/USDT", 101.0), ("ETH/USDT", 102.0)]
    # not subscribed: another symbol, another exchange
    await cache.set_ticker(tick("XRP/USDT", price=5.0))
    await cache.set_ticker(tick("BTC/USDT", "kraken", price=5.0))
    await cache.set_ticker(tick("BTC/USDT", price=103.0))
    expected.append(("BTC/USDT", 103.0))
    await until(lambda: len(collector.live()) >= len(expected))
    await collector.close()
    assert collector.live() == expected
    assert all(t.exchange == "binance" for t in collector.items)


async def test_stream_of_every_symbol_uses_an_escaped_pattern(cache: TickCache) -> None:
    # 'bin*' must not widen to 'binance'; '[x]' must stay literal
    wide = Collector(cache.stream_ticker_updates("bin*"))
    odd = Collector(cache.stream_ticker_updates("a[b]c"))
    await settle(cache, wide.items, exchange="bin*")
    await settle(cache, odd.items, exchange="a[b]c")
    await cache.set_ticker(tick("BTC/USDT", "binance", 1.0))
    await cache.set_ticker(tick("BTC/USDT", "abc", 1.0))
    await cache.set_ticker(tick("BTC/USDT:USDT", "bin*", 2.0))
    await cache.set_ticker(tick("ETH/USDT", "bin*", 3.0))
    await cache.set_ticker(tick("ETH/USDT", "a[b]c", 4.0))
    await until(lambda: len(wide.live()) >= 2 and len(odd.live()) >= 1)
    await cache.set_ticker(tick("END/X", "bin*", 9.0))
    await until(lambda: len(wide.live()) >= 3)
    await wide.close()
    await odd.close()
    assert wide.live() == [("BTC/USDT:USDT", 2.0), ("ETH/USDT", 3.0), ("END/X", 9.0)]
    assert odd.live() == [("ETH/USDT", 4.0)]
    assert {t.exchange for t in wide.items} == {"bin*"}


async def test_stream_snapshot_yields_stored_ticks_first(cache: TickCache) -> None:
    await cache.set_ticker(tick("BTC/USDT", price=1.0))
    await cache.set_ticker(tick("ETH/USDT", price=2.0))
    await cache.set_ticker(tick("XRP/USDT", price=3.0))
    updates = cache.stream_ticker_updates(
        "binance", [Symbol(symbol="ETH/USDT"), "BTC/USDT", "NONE/USDT", "BTC/USDT"], snapshot=True
    )
    async with contextlib.aclosing(updates):
        assert [(await anext(updates)).price for _ in range(2)] == [2.0, 1.0]
        await cache.set_ticker(tick("BTC/USDT", price=4.0))
        assert (await anext(updates)).price == 4.0
    every = cache.stream_ticker_updates("binance", None, snapshot=True)
    async with contextlib.aclosing(every):
        assert [(await anext(every)).symbol for _ in range(3)] == [
            "BTC/USDT",
            "ETH/USDT",
            "XRP/USDT",
        ]
    single = cache.stream_ticker_updates("binance", Symbol(symbol="XRP/USDT"), snapshot=True)
    async with contextlib.aclosing(single):
        assert (await anext(single)).price == 3.0


async def test_stream_skips_undecodable_messages(
    cache: TickCache, caplog: pytest.LogCaptureFixture
) -> None:
    collector = Collector(cache.stream_ticker_updates("binance", ["BTC/USDT", WARM]))
    await settle(cache, collector.items)
    await cache.redis.publish(cache.keys.tick_channel("binance", "BTC/USDT"), b"not json")
    await cache.set_ticker(tick(price=8.0))
    await until(lambda: len(collector.live()) >= 1)
    await collector.close()
    assert collector.live() == [("BTC/USDT", 8.0)]
    assert any("undecodable tick" in r.getMessage() for r in caplog.records)


async def test_subscribe_calls_back_in_order(
    cache: TickCache, caplog: pytest.LogCaptureFixture
) -> None:
    plain: list[float] = []
    awaited: list[float] = []

    async def slow(t: Tick) -> None:
        await asyncio.sleep(0)
        awaited.append(t.price)

    def failing(t: Tick) -> None:
        raise RuntimeError("callback bug")

    async with await cache.subscribe("binance", "BTC/USDT", lambda t: plain.append(t.price)) as a:
        b = await cache.subscribe("binance", ["BTC/USDT"], slow)
        c = await cache.subscribe("binance", None, failing)
        assert a.active and b.active and c.active
        for i in range(30):
            await cache.set_ticker(tick(price=float(i)))
        await until(lambda: len(plain) == 30 and len(awaited) == 30)
        await b.close()
        await b.close()
        assert not b.active
        await c.close()
    assert not a.active
    assert plain == awaited == [float(i) for i in range(30)]
    assert any("callback failed" in r.getMessage() for r in caplog.records)


async def test_subscribe_with_snapshot(cache: TickCache) -> None:
    await cache.set_ticker(tick(price=42.0))
    seen: list[float] = []
    async with await cache.subscribe(
        "binance", None, lambda t: seen.append(t.price), snapshot=True
    ):
        await until(lambda: seen == [42.0])


async def test_unreachable_server_fails_the_first_subscription(standalone: Settings) -> None:
    dead = msgspec.structs.replace(standalone, port=free_port(), retry_attempts=0)
    cache = TickCache(settings=dead)
    updates = cache.stream_ticker_updates("binance", "BTC/USDT")
    with pytest.raises(CacheConnectionError):
        await anext(updates)
    with pytest.raises(CacheConnectionError):
        await cache.subscribe("binance", "BTC/USDT", print)


async def test_stream_resubscribes_after_server_restart(
    standalone: Settings, own_server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fullon.cache.tick")
    cache = TickCache(
        settings=msgspec.structs.replace(standalone, port=own_server.port, breaker_threshold=0)
    )
    collector = Collector(cache.stream_ticker_updates("binance", ["BTC/USDT", WARM]))
    seen: list[Tick] = []
    sub = await cache.subscribe("binance", ["BTC/USDT", WARM], seen.append)
    await settle(cache, collector.items, seen)
    await cache.set_ticker(tick(price=1.0))
    await until(lambda: collector.live() == [("BTC/USDT", 1.0)] and seen[-1].price == 1.0)

    own_server.kill()
    await until(lambda: any("subscription lost" in r.getMessage() for r in caplog.records))
    own_server.restart()

    collector.items.clear()
    seen.clear()
    await settle(cache, collector.items, seen)
    for i in range(2, 12):
        await cache.set_ticker(tick(price=float(i)))
    await until(lambda: len(collector.live()) == 10)
    await collector.close()
    assert collector.error is None
    assert collector.live() == [("BTC/USDT", float(i)) for i in range(2, 12)]
    await until(lambda: seen[-1].price == 11.0)
    await sub.close()
    assert [t.price for t in seen if t.symbol != WARM] == [float(i) for i in range(2, 12)]


async def test_stream_without_reconnect_raises_when_the_server_dies(
    standalone: Settings, own_server: EmbeddedServer
) -> None:
    cache = TickCache(
        settings=msgspec.structs.replace(standalone, port=own_server.port, breaker_threshold=0)
    )
    collector = Collector(
        cache.stream_ticker_updates("binance", ["BTC/USDT", WARM], reconnect=False)
    )
    await settle(cache, collector.items)
    try:
        own_server.kill()
        await until(lambda: collector.task.done())
    finally:
        own_server.restart()
    assert isinstance(collector.error, CacheConnectionError)
    assert await cache.set_ticker(tick(price=1.0))
