"""The read-through machinery: single flight per key, negative answers, source errors."""

from __future__ import annotations

import asyncio

import pytest

from fullon_cache.base_cache import BaseCache
from fullon_cache.config import Settings
from fullon_cache.exceptions import CacheError
from fullon_cache.keys import CacheKey
from fullon_cache.models import CatExchange, Exchange, Symbol
from fullon_cache.read_through import (
    MetadataSource,
    SingleFlight,
    SourceError,
    check_source,
    int_id,
    read_through,
    single_flight,
    text_id,
)


class EmptySource:
    async def get_symbols(
        self, exchange_name: str | None = None, cat_ex_id: int | None = None
    ) -> list[Symbol]:
        return []

    async def get_symbol(
        self, symbol: str, exchange_name: str | None = None, cat_ex_id: int | None = None
    ) -> Symbol | None:
        return None

    async def get_exchange(self, ex_id: int) -> Exchange | None:
        return None

    async def get_user_exchanges(self, uid: int) -> list[Exchange]:
        return []

    async def get_cat_exchanges(self) -> list[CatExchange]:
        return []


def test_any_object_with_the_five_coroutines_is_a_source() -> None:
    source = EmptySource()
    assert isinstance(source, MetadataSource)
    assert check_source(source) is source
    assert check_source(None) is None
    with pytest.raises(TypeError, match="MetadataSource, got int"):
        check_source(5)


def test_identifier_validation() -> None:
    assert int_id(3, "ex_id") == 3
    assert int_id(" 42 ", "ex_id") == 42
    with pytest.raises(ValueError, match="ex_id"):
        int_id("4a", "ex_id")
    with pytest.raises(ValueError, match=">= 0"):
        int_id(-3, "ex_id")
    with pytest.raises(TypeError, match="uid must be int, got bool"):
        int_id(False, "uid")
    with pytest.raises(TypeError, match="got float"):
        int_id(1.0, "uid")
    assert text_id("BTC/USDT:USDT", "symbol") == "BTC/USDT:USDT"
    with pytest.raises(ValueError, match="symbol must not be empty"):
        text_id("\t", "symbol")
    with pytest.raises(TypeError, match="got bytes"):
        text_id(b"BTC", "symbol")


async def test_concurrent_callers_share_one_load() -> None:
    flight = SingleFlight()
    release = asyncio.Event()
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "answer"

    callers = [asyncio.ensure_future(flight.run("k", load)) for _ in range(100)]
    await asyncio.sleep(0)
    assert flight.in_flight == 1
    release.set()
    assert await asyncio.gather(*callers) == ["answer"] * 100
    assert calls == 1
    assert flight.in_flight == 0
    # a new call after the flight landed loads again (storing is the caller's job)
    assert await flight.run("k", load) == "answer"
    assert calls == 2


async def test_different_keys_load_separately() -> None:
    flight = SingleFlight()

    async def load(value: int) -> int:
        await asyncio.sleep(0)
        return value

    both = await asyncio.gather(flight.run("a", lambda: load(1)), flight.run("b", lambda: load(2)))
    assert list(both) == [1, 2]


async def test_an_error_reaches_every_caller_and_the_next_call_retries() -> None:
    flight = SingleFlight()
    release = asyncio.Event()
    attempts = 0

    async def load() -> str:
        nonlocal attempts
        attempts += 1
        await release.wait()
        if attempts == 1:
            raise RuntimeError("database down")
        return "recovered"

    callers = [asyncio.ensure_future(flight.run("k", load)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await flight.run("k", load) == "recovered"
    assert attempts == 2


async def test_a_cancelled_caller_does_not_cancel_the_load() -> None:
    flight = SingleFlight()
    release = asyncio.Event()

    async def load() -> str:
        await release.wait()
        return "done"

    first = asyncio.ensure_future(flight.run("k", load))
    second = asyncio.ensure_future(flight.run("k", load))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    release.set()
    assert await second == "done"
    assert first.cancelled()


async def test_a_load_whose_callers_all_left_still_finishes() -> None:
    flight = SingleFlight()
    release = asyncio.Event()
    finished = asyncio.Event()

    async def load() -> str:
        await release.wait()
        finished.set()
        raise RuntimeError("nobody listens")

    caller = asyncio.ensure_future(flight.run("k", load))
    await asyncio.sleep(0)
    caller.cancel()
    release.set()
    await finished.wait()
    await asyncio.sleep(0)
    assert flight.in_flight == 0


async def test_one_single_flight_per_event_loop() -> None:
    here = single_flight()
    assert single_flight() is here

    async def elsewhere() -> SingleFlight:
        return single_flight()

    other_loop = await asyncio.to_thread(asyncio.run, elsewhere())
    assert other_loop is not here


# -- read_through against Redis ------------------------------------------------------
async def test_read_through_stores_and_then_answers_from_redis(settings: Settings) -> None:
    async with BaseCache() as cache:
        key = cache.keys.key(CacheKey.READ_THROUGH, "demo")
        loads = 0

        async def read() -> tuple[bool, bytes | str | None]:
            raw = await cache.redis.get(key)
            return raw is not None, raw

        async def load() -> bytes | str | None:
            nonlocal loads
            loads += 1
            return b"v"

        async def store(value: bytes | str | None) -> bytes | str | None:
            assert value is not None
            await cache.redis.set(key, value, ex=60)
            return value

        assert await read_through(("t", key), read, load, store) == b"v"
        assert await read_through(("t", key), read, load, store) == b"v"
        assert loads == 1
        # without a source the default (what read found) is the answer
        await cache.redis.delete(key)
        assert await read_through(("t", key), read, None, store) is None
        assert loads == 1


async def test_a_value_stored_by_someone_else_meanwhile_is_not_loaded_again(
    settings: Settings,
) -> None:
    async with BaseCache() as cache:
        key = cache.keys.key(CacheKey.READ_THROUGH, "race")
        reads = 0

        async def read() -> tuple[bool, bytes | str | None]:
            nonlocal reads
            reads += 1
            raw = await cache.redis.get(key)
            if reads == 1:  # another process stores right after our first read
                await cache.redis.set(key, b"theirs", ex=60)
            return raw is not None, raw

        async def load() -> bytes | str | None:
            raise AssertionError("the source must not be asked")

        async def store(value: bytes | str | None) -> bytes | str | None:
            raise AssertionError("nothing to store")

        assert await read_through(("t", key), read, load, store) == b"theirs"
        assert reads == 2


async def test_a_failing_source_raises_source_error_and_stores_nothing(
    settings: Settings,
) -> None:
    async with BaseCache() as cache:
        key = cache.keys.key(CacheKey.READ_THROUGH, "broken")

        async def read() -> tuple[bool, bytes | str | None]:
            raw = await cache.redis.get(key)
            return raw is not None, raw

        async def load() -> bytes | str | None:
            raise OSError("connection refused")

        async def store(value: bytes | str | None) -> bytes | str | None:
            raise AssertionError("nothing to store")

        with pytest.raises(SourceError, match="OSError: connection refused") as info:
            await read_through(("t", key), read, load, store)
        assert isinstance(info.value, CacheError)
        assert isinstance(info.value.__cause__, OSError)
        assert await cache.redis.exists(key) == 0
