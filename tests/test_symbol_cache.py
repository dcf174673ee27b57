"""SymbolCache on both backends: pure cache, and read-through from a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from fullon_cache.config import Settings
from fullon_cache.connection import ConnectionPool
from fullon_cache.embedded import EmbeddedServer
from fullon_cache.keys import CacheKey
from fullon_cache.models import CatExchange, Exchange, Symbol
from fullon_cache.near_cache import NearCache
from fullon_cache.pg_source import PostgresSource
from fullon_cache.read_through import SourceError
from fullon_cache.symbol_cache import SymbolCache
from near_support import DEADLINE, near_fixture, until, until_hit, until_read  # noqa: F401
from pg_support import PgServer, pg_dsn, pg_server  # noqa: F401

BTC = Symbol(symbol="BTC/USDT", cat_ex_id=1, exchange_name="binance", base="BTC", quote="USDT")
ETH = Symbol(symbol="ETH/USDT", cat_ex_id=1, exchange_name="binance", decimals=3)
FUT = Symbol(symbol="BTC/USDT:USDT", cat_ex_id=1, exchange_name="binance", futures=True)


@pytest.fixture
async def source(pg_dsn: str) -> AsyncIterator[PostgresSource]:  # noqa: F811
    async with PostgresSource(pg_dsn, max_size=3) as src:
        yield src


async def wait_gone(cache: SymbolCache, key: str) -> None:
    """Wait (bounded) until Redis has expired ``key``."""
    for _ in range(200):
        if not await cache.redis.exists(key):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} never expired")


# -- pure cache ----------------------------------------------------------------------
async def test_add_and_get_by_name_and_by_catalog_id(settings: Settings) -> None:
    async with SymbolCache() as cache:
        assert await cache.add_symbol(BTC) is True
        assert await cache.add_symbol(FUT.to_dict()) is True
        assert await cache.get_symbol("BTC/USDT", "binance") == BTC
        assert await cache.get_symbol("BTC/USDT", cat_ex_id=1) == BTC
        assert await cache.get_symbol("BTC/USDT", cat_ex_id="1") == BTC
        assert await cache.get_symbol("BTC/USDT:USDT", exchange_name="binance") == FUT
        # exchange_name wins over cat_ex_id
        assert await cache.get_symbol("BTC/USDT", "binance", cat_ex_id=2) == BTC
        assert await cache.get_symbol("BTC/USDT", "kraken") is None
        assert await cache.get_symbol("BTC/USDT", cat_ex_id=2) is None
        assert await cache.symbol_exists("BTC/USDT", "binance") is True
        assert await cache.symbol_exists("ETH/USDT", "binance") is False


async def test_get_symbols_sorted_per_exchange(settings: Settings) -> None:
    async with SymbolCache() as cache:
        for symbol in (FUT, ETH, BTC):
            await cache.add_symbol(symbol)
        await cache.add_symbol(Symbol(symbol="XBT/EUR", cat_ex_id=2, exchange_name="kraken"))
        names = ["BTC/USDT", "BTC/USDT:USDT", "ETH/USDT"]
        assert [s.symbol for s in await cache.get_symbols("binance")] == names
        assert [s.symbol for s in await cache.get_symbols(cat_ex_id=1)] == names
        assert [s.symbol for s in await cache.get_symbols(cat_ex_id=2)] == ["XBT/EUR"]
        assert await cache.get_symbols("bybit") == []


async def test_symbols_with_one_identifier_live_only_under_it(settings: Settings) -> None:
    async with SymbolCache() as cache:
        await cache.add_symbol(Symbol(symbol="A/B", exchange_name="only_name"))
        await cache.add_symbol(Symbol(symbol="C/D", cat_ex_id=9))
        assert [s.symbol for s in await cache.get_symbols("only_name")] == ["A/B"]
        assert [s.symbol for s in await cache.get_symbols(cat_ex_id=9)] == ["C/D"]
        assert await cache.get_keys("symbols_cat:*") == [cache.keys.symbols_by_cat(9)]


async def test_update_replaces_and_ttl_is_the_symbol_ttl(settings: Settings) -> None:
    async with SymbolCache() as cache:
        await cache.add_symbol(ETH)
        newer = msgspec.structs.replace(ETH, decimals=5)
        assert await cache.update_symbol(newer) is True
        assert (await cache.get_symbol("ETH/USDT", "binance")) == newer
        assert (await cache.get_symbol("ETH/USDT", cat_ex_id=1)) == newer
        for key in (cache.keys.symbols("binance"), cache.keys.symbols_by_cat(1)):
            assert 0 < await cache.redis.ttl(key) <= settings.ttl_symbol


async def test_delete_removes_both_entries_and_the_ticker(settings: Settings) -> None:
    async with SymbolCache() as cache:
        await cache.add_symbol(BTC)
        await cache.add_symbol(ETH)
        tickers = cache.keys.tickers("binance")
        await cache.redis.hset(tickers, mapping={"BTC/USDT": b"{}", "ETH/USDT": b"{}"})

        assert await cache.delete_symbol("BTC/USDT", exchange_name="binance") is True
        assert await cache.get_symbol("BTC/USDT", "binance") is None
        assert await cache.get_symbol("BTC/USDT", cat_ex_id=1) is None  # learnt from storage
        assert await cache.redis.hkeys(tickers) == [b"ETH/USDT"]
        assert [s.symbol for s in await cache.get_symbols(cat_ex_id=1)] == ["ETH/USDT"]
        assert await cache.delete_symbol("BTC/USDT", exchange_name="binance") is False


async def test_delete_by_catalog_id_finds_the_exchange_for_the_ticker(
    settings: Settings,
) -> None:
    async with SymbolCache() as cache:
        await cache.add_symbol(ETH)
        tickers = cache.keys.tickers("binance")
        await cache.redis.hset(tickers, "ETH/USDT", b"{}")
        assert await cache.delete_symbol("ETH/USDT", cat_ex_id=1) is True
        assert await cache.get_symbol("ETH/USDT", "binance") is None
        assert await cache.redis.exists(tickers) == 0


async def test_delete_with_a_symbol_object(settings: Settings) -> None:
    async with SymbolCache() as cache:
        await cache.add_symbol(FUT)
        assert await cache.delete_symbol(FUT) is True
        assert await cache.get_symbol("BTC/USDT:USDT", cat_ex_id=1) is None
        # the arguments win over the object's own identifiers
        await cache.add_symbol(FUT)
        assert await cache.delete_symbol(FUT, exchange_name="kraken", cat_ex_id=2) is False
        assert await cache.symbol_exists("BTC/USDT:USDT", "binance") is True


async def test_delete_of_a_symbol_known_by_one_identifier_only(settings: Settings) -> None:
    async with SymbolCache() as cache:
        await cache.add_symbol(Symbol(symbol="C/D", cat_ex_id=9))
        assert await cache.delete_symbol("C/D", cat_ex_id=9) is True  # no exchange: no ticker
        await cache.add_symbol(Symbol(symbol="A/B", exchange_name="only_name"))
        tickers = cache.keys.tickers("only_name")
        await cache.redis.hset(tickers, "A/B", b"{}")
        assert await cache.delete_symbol("A/B", "only_name") is True
        assert await cache.redis.exists(tickers) == 0
        # a ticker goes even when the symbol itself was never cached
        await cache.redis.hset(tickers, "X/Y", b"{}")
        assert await cache.delete_symbol("X/Y", "only_name") is False
        assert await cache.redis.exists(tickers) == 0


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.get_symbol("", "binance"), ValueError),
        (lambda c: c.get_symbol(None, "binance"), TypeError),
        (lambda c: c.get_symbol("BTC/USDT"), ValueError),
        (lambda c: c.get_symbol("BTC/USDT", " "), ValueError),
        (lambda c: c.get_symbol("BTC/USDT", cat_ex_id=True), TypeError),
        (lambda c: c.get_symbol("BTC/USDT", cat_ex_id="x"), ValueError),
        (lambda c: c.get_symbols(), ValueError),
        (lambda c: c.get_symbols(exchange_name=3), TypeError),
        (lambda c: c.symbol_exists("BTC/USDT", cat_ex_id=-1), ValueError),
        (lambda c: c.add_symbol("BTC/USDT"), TypeError),
        (lambda c: c.add_symbol(Symbol(symbol="BTC/USDT")), ValueError),
        (lambda c: c.add_symbol(Symbol(symbol="BTC/USDT", exchange_name="")), ValueError),
        (lambda c: c.add_symbol(Symbol(symbol="BTC/USDT", cat_ex_id=-2)), ValueError),
        (lambda c: c.add_symbol({"symbol": "", "cat_ex_id": 1}), ValueError),
        (lambda c: c.update_symbol({"symbol": "A/B", "decimals": 99, "cat_ex_id": 1}), ValueError),
        (lambda c: c.delete_symbol("BTC/USDT"), ValueError),
        (lambda c: c.delete_symbol("", "binance"), ValueError),
        (lambda c: c.delete_symbol(3, "binance"), TypeError),
        (lambda c: c.delete_symbol(Symbol(symbol="BTC/USDT")), ValueError),
    ],
)
async def test_bad_input_is_rejected_before_any_write(
    settings: Settings, call: Any, error: type[Exception]
) -> None:
    async with SymbolCache() as cache:
        with pytest.raises(error):
            await call(cache)
        assert await cache.get_keys() == []


def test_source_must_be_a_metadata_source() -> None:
    with pytest.raises(TypeError, match="MetadataSource"):
        SymbolCache(source="postgresql://db")  # type: ignore[arg-type]


async def test_an_explicit_connection_is_used(settings: Settings) -> None:
    async with SymbolCache() as first:
        second = SymbolCache(connection=first._connection)
        await first.add_symbol(BTC)
        assert await second.get_symbol("BTC/USDT", "binance") == BTC


# -- read-through from PostgreSQL ----------------------------------------------------
pg = pytest.mark.postgres


@pg
async def test_a_miss_is_filled_from_the_database_and_cached(
    settings: Settings, source: PostgresSource
) -> None:
    async with SymbolCache(source=source) as cache:
        btc = await cache.get_symbol("BTC/USDT", "binance")
        assert btc is not None
        assert (btc.symbol_id, btc.decimals, btc.exchange_name, btc.cat_ex_id) == (
            100,
            2,
            "binance",
            1,
        )
        # stored under both identifiers: no second query either way
        assert await cache.get_symbol("BTC/USDT", "binance") == btc
        assert await cache.get_symbol("BTC/USDT", cat_ex_id=1) == btc
        assert source.queries["get_symbol"] == 1
        assert await cache.symbol_exists("XBT/EUR", cat_ex_id=2) is True
        assert source.queries["get_symbol"] == 2
        # the single lookups did not make the list complete: the list is loaded
        assert [s.symbol for s in await cache.get_symbols("binance")] == [
            "BTC/USDT",
            "BTC/USDT:USDT",
            "ETH/USDT",
        ]
        assert source.queries["get_symbols"] == 1


@pg
async def test_a_loaded_list_is_served_from_redis(
    settings: Settings, source: PostgresSource
) -> None:
    async with SymbolCache(source=source) as cache:
        first = await cache.get_symbols(cat_ex_id=1)
        assert [s.exchange_name for s in first] == ["binance"] * 3
        assert await cache.get_symbols(cat_ex_id=1) == first
        assert await cache.get_symbol("ETH/USDT", "binance") == first[2]
        assert source.queries == {"get_symbols": 1}
        assert 0 < await cache.redis.ttl(cache.keys.symbols_by_cat(1)) <= settings.ttl_symbol
        # an add to a complete list keeps it complete
        await cache.add_symbol(Symbol(symbol="ADA/USDT", cat_ex_id=1, exchange_name="binance"))
        assert len(await cache.get_symbols(cat_ex_id=1)) == 4
        assert source.queries == {"get_symbols": 1}


@pg
async def test_a_hundred_concurrent_misses_make_one_query(
    settings: Settings, source: PostgresSource
) -> None:
    # redis-py's pool refuses (does not queue) more than max_connections at once
    wide = msgspec.structs.replace(settings, max_connections=200)
    caches = [SymbolCache(settings=wide, source=source) for _ in range(100)]
    found = await asyncio.gather(*(c.get_symbol("ETH/USDT", "binance") for c in caches))
    assert source.queries["get_symbol"] == 1
    assert all(s is not None and s.symbol_id == 101 for s in found)
    lists = await asyncio.gather(*(c.get_symbols(cat_ex_id=2) for c in caches))
    assert source.queries["get_symbols"] == 1
    assert all([s.symbol for s in symbols] == ["XBT/EUR"] for symbols in lists)
    missing = await asyncio.gather(*(c.get_symbol("NOPE/USDT", cat_ex_id=1) for c in caches))
    assert missing == [None] * 100
    assert source.queries["get_symbol"] == 2


@pg
async def test_negative_answers_are_cached_briefly(
    settings: Settings,
    source: PostgresSource,
    pg_dsn: str,  # noqa: F811
) -> None:
    short = msgspec.structs.replace(settings, negative_ttl=1)
    async with SymbolCache(settings=short, source=source) as cache:
        assert await cache.get_symbol("SOL/USDT", "binance") is None
        assert await cache.get_symbols("empty_ex") == []
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(
                "INSERT INTO symbols (symbol, cat_ex_id, base, quote) VALUES "
                "('SOL/USDT', 1, 'SOL', 'USDT'), ('E/X', 3, 'E', 'X')"
            )
        finally:
            await conn.close()
        # remembered: the database is not asked again while the marker lives
        assert await cache.get_symbol("SOL/USDT", "binance") is None
        assert await cache.get_symbols("empty_ex") == []
        assert dict(source.queries) == {"get_symbol": 1, "get_symbols": 1}

        await wait_gone(
            cache, cache.keys.read_through_miss(CacheKey.SYMBOLS, "binance", "SOL/USDT")
        )
        await wait_gone(cache, cache.keys.symbols("empty_ex"))
        sol = await cache.get_symbol("SOL/USDT", "binance")
        assert sol is not None
        assert sol.base == "SOL"
        assert [s.symbol for s in await cache.get_symbols("empty_ex")] == ["E/X"]
        assert dict(source.queries) == {"get_symbol": 2, "get_symbols": 2}


@pg
async def test_adding_a_symbol_clears_its_remembered_miss(
    settings: Settings, source: PostgresSource
) -> None:
    async with SymbolCache(source=source) as cache:
        assert await cache.get_symbol("NEW/USDT", cat_ex_id=1) is None
        assert await cache.get_symbol("NEW/USDT", "binance") is None
        await cache.add_symbol(Symbol(symbol="NEW/USDT", cat_ex_id=1, exchange_name="binance"))
        assert await cache.get_symbol("NEW/USDT", cat_ex_id=1) is not None
        assert await cache.get_symbol("NEW/USDT", "binance") is not None
        assert source.queries["get_symbol"] == 2


@pg
async def test_delete_then_read_goes_back_to_the_database(
    settings: Settings, source: PostgresSource
) -> None:
    async with SymbolCache(source=source) as cache:
        assert await cache.symbol_exists("BTC/USDT", "binance")
        assert await cache.delete_symbol("BTC/USDT", "binance") is True
        assert await cache.symbol_exists("BTC/USDT", "binance")
        assert source.queries["get_symbol"] == 2


class _PlainSource:
    """A user's own source: its symbols carry no exchange name or catalog id."""

    def __init__(self) -> None:
        self.calls = 0

    async def get_symbols(
        self, exchange_name: str | None = None, cat_ex_id: int | None = None
    ) -> list[Symbol]:
        self.calls += 1
        return [Symbol(symbol="Z/USD"), Symbol(symbol="A/USD", decimals=4)]

    async def get_symbol(
        self, symbol: str, exchange_name: str | None = None, cat_ex_id: int | None = None
    ) -> Symbol | None:
        self.calls += 1
        return Symbol(symbol=symbol, quote="USD")

    async def get_exchange(self, ex_id: int) -> None:
        return None

    async def get_user_exchanges(self, uid: int) -> list[Exchange]:
        return []

    async def get_cat_exchanges(self) -> list[CatExchange]:
        return []


async def test_a_plain_source_gets_the_lookup_identifiers_filled_in(
    settings: Settings,
) -> None:
    source = _PlainSource()
    async with SymbolCache(source=source) as cache:
        by_name = await cache.get_symbols("mine")
        assert [(s.symbol, s.exchange_name, s.cat_ex_id) for s in by_name] == [
            ("A/USD", "mine", None),
            ("Z/USD", "mine", None),
        ]
        one = await cache.get_symbol("Q/USD", cat_ex_id=4)
        assert one is not None
        assert (one.exchange_name, one.cat_ex_id, one.quote) == (None, 4, "USD")
        assert await cache.get_symbol("Q/USD", cat_ex_id=4) == one
        assert source.calls == 2


@pg
async def test_a_failing_database_raises_source_error_and_caches_nothing(
    settings: Settings,
    pg_server: PgServer,  # noqa: F811
) -> None:
    broken = PostgresSource(pg_server.dsn("no_such_database"))
    async with SymbolCache(source=broken) as cache:
        with pytest.raises(SourceError, match="InvalidCatalogName"):
            await cache.get_symbol("BTC/USDT", "binance")
        with pytest.raises(SourceError):
            await cache.get_symbols(cat_ex_id=1)
        assert await cache.get_keys() == []
        assert cache._connection.breaker.state == "closed"  # Redis is fine
        assert await cache.ping() == "PONG"


# --------------------------------------------------------------------------- near cache


async def test_near_cache_serves_hits_in_process(near: NearCache) -> None:
    cache = SymbolCache(near_cache=near)
    await cache.add_symbol(BTC)

    async def btc() -> Symbol | None:
        return await cache.get_symbol("BTC/USDT", "binance")

    first = await until_hit(near, btc)
    second = await until_hit(near, btc)
    assert first == second == BTC
    assert first is not second  # the reply is held, each caller gets its own Symbol
    # an unknown symbol is held as well, and the catalog-id lookup is its own entry
    assert await until_hit(near, lambda: cache.get_symbol("DOGE/USDT", cat_ex_id=1)) is None
    assert await until_hit(near, lambda: cache.get_symbol("BTC/USDT", cat_ex_id=1)) == BTC


async def test_near_cache_reads_its_own_writes_at_once(near: NearCache) -> None:
    cache = SymbolCache(near_cache=near)
    await cache.add_symbol(BTC)
    await until_hit(near, lambda: cache.get_symbol("BTC/USDT", cat_ex_id=1))
    await cache.update_symbol(msgspec.structs.replace(BTC, decimals=4))
    found = await cache.get_symbol("BTC/USDT", cat_ex_id=1)
    assert found is not None and found.decimals == 4
    await until_hit(near, lambda: cache.get_symbol("BTC/USDT", "binance"))
    assert await cache.delete_symbol("BTC/USDT", "binance")
    assert await cache.get_symbol("BTC/USDT", "binance") is None
    assert await cache.get_symbol("BTC/USDT", cat_ex_id=1) is None


async def test_near_cache_sees_writes_of_other_clients(
    near: NearCache, standalone: Settings
) -> None:
    cache = SymbolCache(near_cache=near)
    other = SymbolCache(settings=standalone)  # no near cache: another process, say
    await other.add_symbol(BTC)

    async def btc() -> Symbol | None:
        return await cache.get_symbol("BTC/USDT", "binance")

    assert await until_hit(near, btc) == BTC
    await other.update_symbol(msgspec.structs.replace(BTC, decimals=2))
    found = await until_read(btc, lambda s: s is not None and s.decimals == 2)
    assert found.decimals == 2
    # a raw write from outside the library too: the server tracks the key itself
    await until_hit(near, btc)
    changed = msgspec.structs.replace(BTC, decimals=6)
    await other.redis.hset(cache.keys.symbols("binance"), "BTC/USDT", msgspec.json.encode(changed))
    assert (await until_read(btc, lambda s: s is not None and s.decimals == 6)) == changed
    await until_hit(near, btc)
    await other.delete_symbol("BTC/USDT", "binance")
    assert await until_read(btc, lambda s: s is None) is None


async def test_near_cache_not_live_is_bypassed(standalone: Settings) -> None:
    near = NearCache()
    await near.close()  # its invalidation connection never comes up
    cache = SymbolCache(near_cache=near)
    other = SymbolCache()
    await other.add_symbol(BTC)
    assert await cache.get_symbol("BTC/USDT", "binance") == BTC
    await other.update_symbol(msgspec.structs.replace(BTC, decimals=1))
    found = await cache.get_symbol("BTC/USDT", "binance")
    assert found is not None and found.decimals == 1  # read from Redis, at once
    assert near.hits == 0 and len(near) == 0


async def test_near_cache_holds_nothing_across_an_outage(own_server: EmbeddedServer) -> None:
    settings = Settings(
        port=own_server.port,
        namespace="near-symbols",
        retry_attempts=3,
        breaker_threshold=0,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        retry_backoff=0.01,
        retry_backoff_cap=0.05,
    )
    near = NearCache(settings=settings, health_interval=0.1)
    cache = SymbolCache(settings=settings, near_cache=near)
    try:
        assert await near.wait_live()
        await cache.add_symbol(BTC)
        await until_hit(near, lambda: cache.get_symbol("BTC/USDT", "binance"))
        own_server.kill()
        await until(lambda: not near.live, "the near cache to go down")
        assert len(near) == 0
        own_server.restart()
        # the restarted server is empty: whether the near cache is back or not yet,
        # what it held before the outage is never served
        assert await cache.get_symbol("BTC/USDT", "binance") is None
        await cache.add_symbol(msgspec.structs.replace(BTC, decimals=3))
        found = await cache.get_symbol("BTC/USDT", "binance")
        assert found is not None and found.decimals == 3
        assert await near.wait_live(timeout=DEADLINE)
        found = await until_hit(near, lambda: cache.get_symbol("BTC/USDT", "binance"))
        assert found.decimals == 3
    finally:
        await near.close()
        await ConnectionPool.close_loop()
