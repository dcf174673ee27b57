"""ExchangeCache on both backends: pure cache, read-through from a real PostgreSQL,
websocket error queues."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest

from fullon_cache.config import Settings
from fullon_cache.exchange_cache import ExchangeCache
from fullon_cache.keys import CacheKey
from fullon_cache.models import CatExchange, Exchange
from fullon_cache.near_cache import NearCache
from fullon_cache.pg_source import PostgresSource
from fullon_cache.read_through import SourceError
from near_support import near_fixture, until_hit, until_read  # noqa: F401
from pg_support import PgServer, pg_dsn, pg_server  # noqa: F401

MAIN = Exchange(ex_id=10, uid=1, cat_ex_id=1, name="main")
SUB = Exchange(ex_id=11, uid=1, cat_ex_id=2, name="kraken-sub", test=True, active=False)
OTHER = Exchange(ex_id=20, uid=2, cat_ex_id=1, name="other")


@pytest.fixture
async def source(pg_dsn: str) -> AsyncIterator[PostgresSource]:  # noqa: F811
    async with PostgresSource(pg_dsn, max_size=3) as src:
        yield src


async def wait_gone(cache: ExchangeCache, key: str) -> None:
    """Wait (bounded) until Redis has expired ``key``."""
    for _ in range(200):
        if not await cache.redis.exists(key):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} never expired")


# -- pure cache ----------------------------------------------------------------------
async def test_add_and_get_by_id_user_and_name(settings: Settings) -> None:
    async with ExchangeCache() as cache:
        assert await cache.add_exchange(SUB) is True
        assert await cache.add_exchange(MAIN.to_dict()) is True
        assert await cache.add_exchange(OTHER) is True
        assert await cache.get_exchange(10) == MAIN
        assert await cache.get_exchange("11") == SUB
        assert await cache.get_exchange(12) is None
        assert await cache.get_exchanges(1) == [MAIN, SUB]
        assert await cache.get_user_exchanges("2") == [OTHER]
        assert await cache.get_exchanges(3) == []
        assert await cache.get_exchange_by_name("kraken-sub", 1) == SUB
        assert await cache.get_exchange_by_name("kraken-sub", 2) is None
        assert 0 < await cache.redis.ttl(cache.keys.exchange(10)) <= settings.ttl_exchange
        assert 0 < await cache.redis.ttl(cache.keys.user_exchanges(1)) <= settings.ttl_exchange


async def test_update_replaces_and_a_move_leaves_the_old_users_list(settings: Settings) -> None:
    async with ExchangeCache() as cache:
        await cache.add_exchange(MAIN)
        off = msgspec.structs.replace(MAIN, active=False)
        assert await cache.update_exchange(off) is True
        assert await cache.get_exchange(10) == off
        assert await cache.get_exchanges(1) == [off]
        moved = msgspec.structs.replace(off, uid=2)
        await cache.update_exchange(moved)
        assert await cache.get_exchanges(1) == []
        assert await cache.get_exchanges(2) == [moved]


async def test_delete_exchange(settings: Settings) -> None:
    async with ExchangeCache() as cache:
        await cache.add_exchange(MAIN)
        await cache.add_exchange(SUB)
        assert await cache.delete_exchange(10) is True
        assert await cache.get_exchange(10) is None
        assert await cache.get_exchanges(1) == [SUB]
        assert await cache.delete_exchange(10) is False
        # only in the user's list (its own key gone): the uid argument reaches it
        await cache.redis.delete(cache.keys.exchange(11))
        assert await cache.delete_exchange(11) is False
        assert await cache.delete_exchange("11", uid="1") is True
        assert await cache.get_exchanges(1) == []


async def test_catalog(settings: Settings) -> None:
    async with ExchangeCache() as cache:
        assert await cache.get_cat_exchanges() == []
        kraken = CatExchange(cat_ex_id=2, name="kraken", ohlcv_view="kv")
        assert await cache.add_cat_exchange(kraken) is True
        assert await cache.add_cat_exchange({"cat_ex_id": 1, "name": "binance"}) is True
        assert await cache.add_cat_exchange({"name": "no_id_yet"}) is True
        assert [c.name for c in await cache.get_cat_exchanges()] == [
            "binance",
            "kraken",
            "no_id_yet",
        ]
        assert await cache.get_cat_exchange_by_name("kraken") == kraken
        assert await cache.get_cat_exchange_by_name("bybit") is None
        key = cache.keys.cat_exchanges()
        assert 0 < await cache.redis.ttl(key) <= settings.ttl_exchange


async def test_invalidate(settings: Settings) -> None:
    async with ExchangeCache() as cache:
        for exchange in (MAIN, SUB, OTHER):
            await cache.add_exchange(exchange)
        await cache.add_cat_exchange(CatExchange(cat_ex_id=1, name="binance"))
        await cache.push_ws_error("kept", 10)

        await cache.invalidate_cache(ex_id=10)
        assert await cache.get_exchange(10) is None
        assert await cache.get_exchange(11) == SUB
        await cache.invalidate(uid=1)
        assert await cache.get_exchanges(1) == []
        assert await cache.get_exchanges(2) == [OTHER]
        await cache.invalidate_cache(ex_id="20", uid=2)
        assert await cache.get_exchange(20) is None
        assert await cache.get_exchanges(2) == []

        await cache.invalidate()
        assert await cache.get_exchange(11) is None
        assert await cache.get_cat_exchanges() == []
        assert await cache.get_keys() == [cache.keys.ws_errors(10)]  # not an answer cache


async def test_invalidate_all_removes_many_keys(settings: Settings) -> None:
    async with ExchangeCache() as cache:
        for ex_id in range(1200):  # more than one SCAN/UNLINK batch
            await cache.add_exchange(Exchange(ex_id=ex_id, uid=ex_id % 3, name=f"e{ex_id}"))
        await cache.invalidate_cache()
        assert await cache.get_keys() == []


async def test_ws_errors_are_fifo_per_exchange(settings: Settings) -> None:
    async with ExchangeCache() as cache:
        assert await cache.pop_ws_error(7) is None
        assert await cache.push_ws_error("first", 7) is True
        assert await cache.push_ws_error(ConnectionError("reset"), "7") is True
        assert await cache.push_ws_error("elsewhere", "kraken") is True
        assert await cache.pop_ws_error(7) == "first"
        assert await cache.pop_ws_error(7) == "ConnectionError: reset"
        assert await cache.pop_ws_error(7) is None
        assert await cache.pop_ws_error("kraken") == "elsewhere"


async def test_ws_errors_are_bounded(settings: Settings) -> None:
    small = msgspec.structs.replace(settings, max_list_length=3)
    async with ExchangeCache(settings=small) as cache:
        for n in range(5):
            await cache.push_ws_error(f"e{n}", 1)
        assert await cache.redis.llen(cache.keys.ws_errors(1)) == 3
        assert [await cache.pop_ws_error(1) for _ in range(4)] == ["e2", "e3", "e4", None]


async def test_pop_ws_error_waits_for_a_push(settings: Settings) -> None:
    async with ExchangeCache() as cache:
        waiting = asyncio.ensure_future(cache.pop_ws_error(5, timeout=10))
        await asyncio.sleep(0.2)
        await cache.push_ws_error("late", 5)
        assert await waiting == "late"
        assert await cache.pop_ws_error(5, timeout=0.2) is None


async def test_pop_ws_error_waits_past_the_socket_timeout(settings: Settings) -> None:
    quick = msgspec.structs.replace(settings, socket_timeout=0.3)
    async with ExchangeCache(settings=quick) as cache:
        waiting = asyncio.ensure_future(cache.pop_ws_error(6, timeout=5))
        await asyncio.sleep(0.8)  # well past the socket timeout
        await cache.push_ws_error("still there", 6)
        assert await waiting == "still there"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.get_exchange(None), TypeError),
        (lambda c: c.get_exchange(-1), ValueError),
        (lambda c: c.get_exchange("abc"), ValueError),
        (lambda c: c.get_exchanges(True), TypeError),
        (lambda c: c.get_user_exchanges(1.5), TypeError),
        (lambda c: c.get_exchange_by_name("", 1), ValueError),
        (lambda c: c.get_exchange_by_name(3, 1), TypeError),
        (lambda c: c.get_cat_exchange_by_name(""), ValueError),
        (lambda c: c.add_exchange(Exchange(name="x", uid=1)), ValueError),
        (lambda c: c.add_exchange(Exchange(name="x", ex_id=1)), ValueError),
        (lambda c: c.add_exchange(Exchange(name="x", ex_id=-1, uid=1)), ValueError),
        (lambda c: c.add_exchange({"name": "", "ex_id": 1, "uid": 1}), ValueError),
        (lambda c: c.update_exchange("main"), TypeError),
        (lambda c: c.delete_exchange("x"), ValueError),
        (lambda c: c.delete_exchange(1, uid=-1), ValueError),
        (lambda c: c.add_cat_exchange({"name": " "}), ValueError),
        (lambda c: c.add_cat_exchange({"name": "a", "cat_ex_id": -1}), ValueError),
        (lambda c: c.invalidate_cache(ex_id=True), TypeError),
        (lambda c: c.invalidate(uid="u"), ValueError),
        (lambda c: c.push_ws_error("", 1), ValueError),
        (lambda c: c.push_ws_error(42, 1), TypeError),
        (lambda c: c.push_ws_error("e", " "), ValueError),
        (lambda c: c.push_ws_error("e", 1.0), TypeError),
        (lambda c: c.pop_ws_error(None), TypeError),
        (lambda c: c.pop_ws_error(1, timeout=-1), ValueError),
    ],
)
async def test_bad_input_is_rejected_before_any_write(
    settings: Settings, call: Any, error: type[Exception]
) -> None:
    async with ExchangeCache() as cache:
        with pytest.raises(error):
            await call(cache)
        assert await cache.get_keys() == []


def test_source_must_be_a_metadata_source() -> None:
    with pytest.raises(TypeError, match="MetadataSource"):
        ExchangeCache(source=object())  # type: ignore[arg-type]


# -- read-through from PostgreSQL ----------------------------------------------------
pg = pytest.mark.postgres


@pg
async def test_exchanges_are_read_through(settings: Settings, source: PostgresSource) -> None:
    async with ExchangeCache(source=source) as cache:
        assert await cache.get_exchange(11) == SUB
        assert await cache.get_exchange(11) == SUB
        assert source.queries["get_exchange"] == 1
        assert await cache.get_exchanges(1) == [MAIN, SUB]
        assert await cache.get_exchanges(1) == [MAIN, SUB]
        assert await cache.get_exchange(10) == MAIN  # stored by the list load
        assert await cache.get_exchange_by_name("main", 1) == MAIN
        assert dict(source.queries) == {"get_exchange": 1, "get_user_exchanges": 1}


@pg
async def test_a_partial_user_list_is_completed_from_the_database(
    settings: Settings, source: PostgresSource
) -> None:
    async with ExchangeCache(source=source) as cache:
        await cache.add_exchange(Exchange(ex_id=99, uid=1, cat_ex_id=1, name="only-cached"))
        # the list holds only what was added: the database is asked, the add is kept
        assert [e.ex_id for e in await cache.get_exchanges(1)] == [10, 11, 99]
        await cache.add_exchange(Exchange(ex_id=98, uid=1, cat_ex_id=1, name="later"))
        assert [e.ex_id for e in await cache.get_exchanges(1)] == [10, 11, 98, 99]
        assert source.queries["get_user_exchanges"] == 1


@pg
async def test_catalog_is_read_through(settings: Settings, source: PostgresSource) -> None:
    async with ExchangeCache(source=source) as cache:
        assert await cache.get_cat_exchange_by_name("kraken") == CatExchange(
            cat_ex_id=2, name="kraken", ohlcv_view="kraken_view"
        )
        names = [c.name for c in await cache.get_cat_exchanges()]
        assert names == ["binance", "empty_ex", "kraken"]
        assert await cache.get_cat_exchange_by_name("bybit") is None
        assert source.queries["get_cat_exchanges"] == 1
        assert await cache.redis.ttl(cache.keys.cat_exchanges()) > settings.negative_ttl
        await cache.invalidate_cache()
        assert len(await cache.get_cat_exchanges()) == 3
        assert source.queries["get_cat_exchanges"] == 2


@pg
async def test_concurrent_misses_make_one_query_each(
    settings: Settings, source: PostgresSource
) -> None:
    wide = msgspec.structs.replace(settings, max_connections=200)
    caches = [ExchangeCache(settings=wide, source=source) for _ in range(100)]
    found = await asyncio.gather(*(c.get_exchange(20) for c in caches))
    assert found == [OTHER] * 100
    lists = await asyncio.gather(*(c.get_exchanges(1) for c in caches))
    assert lists == [[MAIN, SUB]] * 100
    catalogs = await asyncio.gather(*(c.get_cat_exchanges() for c in caches))
    assert all(len(catalog) == 3 for catalog in catalogs)
    assert dict(source.queries) == {
        "get_exchange": 1,
        "get_user_exchanges": 1,
        "get_cat_exchanges": 1,
    }


@pg
async def test_negative_answers_are_cached_briefly(
    settings: Settings,
    source: PostgresSource,
    pg_dsn: str,  # noqa: F811
) -> None:
    short = msgspec.structs.replace(settings, negative_ttl=1)
    async with ExchangeCache(settings=short, source=source) as cache:
        assert await cache.get_exchange(30) is None
        assert await cache.get_exchanges(3) == []
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(
                "INSERT INTO exchanges (ex_id, uid, cat_ex_id, name) VALUES (30, 3, 1, 'new')"
            )
        finally:
            await conn.close()
        assert await cache.get_exchange(30) is None
        assert await cache.get_exchanges(3) == []
        assert dict(source.queries) == {"get_exchange": 1, "get_user_exchanges": 1}

        await wait_gone(cache, cache.keys.read_through_miss(CacheKey.EXCHANGE, 30))
        await wait_gone(cache, cache.keys.user_exchanges(3))
        new = Exchange(ex_id=30, uid=3, cat_ex_id=1, name="new")
        assert await cache.get_exchange(30) == new
        assert await cache.get_exchanges(3) == [new]
        assert dict(source.queries) == {"get_exchange": 2, "get_user_exchanges": 2}


@pg
async def test_an_empty_catalog_is_remembered_briefly(
    settings: Settings,
    source: PostgresSource,
    pg_dsn: str,  # noqa: F811
) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("TRUNCATE cat_exchanges CASCADE")
    finally:
        await conn.close()
    async with ExchangeCache(source=source) as cache:
        assert await cache.get_cat_exchanges() == []
        assert await cache.get_cat_exchanges() == []
        assert source.queries["get_cat_exchanges"] == 1
        assert 0 < await cache.redis.ttl(cache.keys.cat_exchanges()) <= settings.negative_ttl


@pg
async def test_adding_an_exchange_clears_its_remembered_miss(
    settings: Settings, source: PostgresSource
) -> None:
    async with ExchangeCache(source=source) as cache:
        assert await cache.get_exchange(77) is None
        added = Exchange(ex_id=77, uid=7, cat_ex_id=1, name="fresh")
        await cache.add_exchange(added)
        assert await cache.get_exchange(77) == added
        assert source.queries["get_exchange"] == 1


@pg
async def test_a_failing_database_raises_source_error(
    settings: Settings,
    pg_server: PgServer,  # noqa: F811
) -> None:
    broken = PostgresSource(pg_server.dsn("no_such_database"))
    async with ExchangeCache(source=broken) as cache:
        for call in (cache.get_exchange(1), cache.get_exchanges(1), cache.get_cat_exchanges()):
            with pytest.raises(SourceError):
                await call
        assert await cache.get_keys() == []
        assert cache._connection.breaker.state == "closed"


# --------------------------------------------------------------------------- near cache

NEAR = Exchange(ex_id=7, uid=1, cat_ex_id=1, name="main")


async def test_near_cache_serves_hits_in_process(near: NearCache) -> None:
    cache = ExchangeCache(near_cache=near)
    await cache.add_exchange(NEAR)
    first = await until_hit(near, lambda: cache.get_exchange(7))
    second = await until_hit(near, lambda: cache.get_exchange(7))
    assert first == second == NEAR
    assert first is not second  # the reply is held, each caller gets its own Exchange
    assert await until_hit(near, lambda: cache.get_exchange(8)) is None  # misses too


async def test_near_cache_reads_its_own_writes_at_once(near: NearCache) -> None:
    cache = ExchangeCache(near_cache=near)
    await cache.add_exchange(NEAR)
    await until_hit(near, lambda: cache.get_exchange(7))
    await cache.update_exchange(msgspec.structs.replace(NEAR, name="renamed"))
    found = await cache.get_exchange(7)
    assert found is not None and found.name == "renamed"
    await until_hit(near, lambda: cache.get_exchange(7))
    assert await cache.delete_exchange(7)
    assert await cache.get_exchange(7) is None
    await cache.add_exchange(NEAR)
    await until_hit(near, lambda: cache.get_exchange(7))
    await cache.invalidate_cache(ex_id=7)
    assert await cache.get_exchange(7) is None
    await cache.add_exchange(NEAR)
    await until_hit(near, lambda: cache.get_exchange(7))
    await cache.invalidate_cache()  # every exchange, found by SCAN
    assert await cache.get_exchange(7) is None


async def test_near_cache_sees_writes_of_other_clients(
    near: NearCache, standalone: Settings
) -> None:
    cache = ExchangeCache(near_cache=near)
    other = ExchangeCache(settings=standalone)  # no near cache: another process, say
    await other.add_exchange(NEAR)
    assert await until_hit(near, lambda: cache.get_exchange(7)) == NEAR
    await other.update_exchange(msgspec.structs.replace(NEAR, active=False))
    found = await until_read(
        lambda: cache.get_exchange(7), lambda e: e is not None and not e.active
    )
    assert found.active is False
    await until_hit(near, lambda: cache.get_exchange(7))
    await other.delete_exchange(7)
    assert await until_read(lambda: cache.get_exchange(7), lambda e: e is None) is None


async def test_near_cache_not_live_is_bypassed(standalone: Settings) -> None:
    closed = NearCache()
    await closed.close()  # its invalidation connection never comes up
    cache = ExchangeCache(near_cache=closed)
    other = ExchangeCache()
    await other.add_exchange(NEAR)
    assert await cache.get_exchange(7) == NEAR
    await other.update_exchange(msgspec.structs.replace(NEAR, name="now"))
    found = await cache.get_exchange(7)
    assert found is not None and found.name == "now"  # read from Redis, at once
    assert closed.hits == 0 and len(closed) == 0


async def test_shared_near_cache_of_the_connection(standalone: Settings) -> None:
    cache = ExchangeCache(near_cache=True)
    await cache.add_exchange(NEAR)
    shared = NearCache.shared(cache._connection)
    try:
        assert await shared.wait_live()
        assert await until_hit(shared, lambda: cache.get_exchange(7)) == NEAR
    finally:
        await shared.close()
