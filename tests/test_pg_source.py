"""PostgresSource against a private PostgreSQL server holding the fullon schema."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest

from fullon_cache.config import Settings, settings_from
from fullon_cache.models import CatExchange, Exchange, Symbol
from fullon_cache.pg_source import PostgresSource
from fullon_cache.read_through import MetadataSource
from pg_support import PgServer, pg_dsn, pg_server  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.fixture
async def source(pg_dsn: str) -> AsyncIterator[PostgresSource]:  # noqa: F811
    async with PostgresSource(pg_dsn, max_size=3) as src:
        yield src


async def test_is_a_metadata_source(source: PostgresSource) -> None:
    assert isinstance(source, MetadataSource)
    assert "open=True" in repr(source)


async def test_symbols_join_their_exchange_name(source: PostgresSource) -> None:
    binance = await source.get_symbols(exchange_name="binance")
    assert [s.symbol for s in binance] == ["BTC/USDT", "BTC/USDT:USDT", "ETH/USDT"]
    assert {s.exchange_name for s in binance} == {"binance"}
    eth = binance[2]
    assert (eth.symbol_id, eth.cat_ex_id, eth.updateframe, eth.backtest) == (101, 1, "4h", 60)
    assert (eth.decimals, eth.futures, eth.only_ticker) == (3, False, True)
    assert binance[1].futures is True

    by_cat = await source.get_symbols(cat_ex_id=2)
    assert by_cat == [
        Symbol(
            symbol="XBT/EUR",
            symbol_id=200,
            cat_ex_id=2,
            base="XBT",
            quote="",  # NULL in the database: the model's default
            updateframe="1d",
            backtest=10,
            decimals=1,
            exchange_name="kraken",
        )
    ]
    assert await source.get_symbols(exchange_name="binance", cat_ex_id=2) == []
    everything = await source.get_symbols()
    assert [s.symbol for s in everything] == [
        "BTC/USDT",
        "BTC/USDT:USDT",
        "ETH/USDT",
        "XBT/EUR",
    ]
    assert await source.get_symbols(exchange_name="empty_ex") == []
    assert source.queries["get_symbols"] == 5


async def test_one_symbol(source: PostgresSource) -> None:
    btc = await source.get_symbol("BTC/USDT", exchange_name="binance")
    assert btc is not None
    assert (btc.symbol_id, btc.decimals, btc.exchange_name) == (100, 2, "binance")
    assert await source.get_symbol("BTC/USDT", cat_ex_id=1) == btc
    assert await source.get_symbol("BTC/USDT") == btc
    assert await source.get_symbol("BTC/USDT", exchange_name="kraken") is None
    assert await source.get_symbol("NOPE/USDT", cat_ex_id=1) is None
    assert source.queries["get_symbol"] == 5


async def test_exchanges_and_catalog(source: PostgresSource) -> None:
    assert await source.get_exchange(11) == Exchange(
        ex_id=11, uid=1, cat_ex_id=2, name="kraken-sub", test=True, active=False
    )
    assert await source.get_exchange(999) is None
    assert [e.ex_id for e in await source.get_user_exchanges(1)] == [10, 11]
    assert await source.get_user_exchanges(3) == []
    assert await source.get_cat_exchanges() == [
        CatExchange(cat_ex_id=1, name="binance", ohlcv_view=""),
        CatExchange(cat_ex_id=3, name="empty_ex", ohlcv_view=""),
        CatExchange(cat_ex_id=2, name="kraken", ohlcv_view="kraken_view"),
    ]
    assert dict(source.queries) == {
        "get_exchange": 2,
        "get_user_exchanges": 2,
        "get_cat_exchanges": 1,
    }


async def test_bad_arguments_raise_before_any_query(source: PostgresSource) -> None:
    with pytest.raises(ValueError, match="symbol"):
        await source.get_symbol("  ")
    with pytest.raises(TypeError, match="exchange_name"):
        await source.get_symbols(exchange_name=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cat_ex_id"):
        await source.get_symbols(cat_ex_id=-1)
    with pytest.raises(TypeError, match="ex_id"):
        await source.get_exchange(True)
    with pytest.raises(ValueError, match="uid"):
        await source.get_user_exchanges("abc")  # type: ignore[arg-type]
    assert sum(source.queries.values()) == 0


async def test_pool_opens_lazily_closes_idempotently_and_reopens(pg_dsn: str) -> None:  # noqa: F811
    source = PostgresSource(pg_dsn)
    assert "open=False" in repr(source)
    assert next(c.name for c in await source.get_cat_exchanges()) == "binance"
    assert "open=True" in repr(source)
    await source.close()
    await source.close()
    assert "open=False" in repr(source)
    assert (await source.get_exchange(10)) is not None
    await source.open()
    await source.close()


async def test_dsn_comes_from_the_settings(pg_dsn: str) -> None:  # noqa: F811
    settings = settings_from({"FULLON_CACHE_DATABASE_URL": pg_dsn})
    async with PostgresSource(settings=settings) as source:
        assert source.dsn == pg_dsn
        assert await source.get_exchange(20) is not None


def test_dsn_password_never_shows_in_redacted_settings() -> None:
    settings = Settings(database_url="postgresql://fullon:s3cret@db:5432/fullon")
    assert settings.redacted()["database_url"] == "postgresql://fullon:***@db:5432/fullon"
    assert Settings().redacted()["database_url"] is None


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="FULLON_CACHE_DATABASE_URL"):
        PostgresSource(settings=Settings())
    with pytest.raises(ValueError, match="dsn"):
        PostgresSource("")
    with pytest.raises(TypeError, match="min_size"):
        PostgresSource("postgresql://db/x", min_size=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pool sizes"):
        PostgresSource("postgresql://db/x", min_size=3, max_size=2)
    with pytest.raises(ValueError, match="pool sizes"):
        PostgresSource("postgresql://db/x", min_size=0, max_size=0)
    with pytest.raises(TypeError, match="command_timeout"):
        PostgresSource("postgresql://db/x", command_timeout="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="command_timeout"):
        PostgresSource("postgresql://db/x", command_timeout=0)


async def test_without_asyncpg_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # the package is not installed
    source = PostgresSource("postgresql://db/x")
    with pytest.raises(ImportError, match=r"fullon-cache\[postgres\]"):
        await source.get_cat_exchanges()


async def test_an_unreachable_database_raises(pg_server: PgServer) -> None:  # noqa: F811
    source = PostgresSource(pg_server.dsn("no_such_database"))
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await source.get_exchange(1)


async def test_concurrent_first_queries_open_one_pool(pg_dsn: str) -> None:  # noqa: F811
    source = PostgresSource(pg_dsn, min_size=1, max_size=1)
    try:
        found = await asyncio.gather(*(source.get_exchange(10) for _ in range(5)))
        assert all(e is not None and e.ex_id == 10 for e in found)
        database = pg_dsn.rsplit("/", 1)[1]
        conn = await asyncpg.connect(pg_dsn)
        try:
            count = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        finally:
            await conn.close()
        assert count == 1  # one pool of one connection, not one pool per caller
    finally:
        await source.close()
