"""Hostile input, fuzzed with hypothesis through the public API of the caches.

Every input is either stored and read back equal, or rejected with ValueError /
TypeError before anything is written; and no input reaches another key: after each
operation the namespace holds only keys tagged with the operation's own identifier
(plus the cache's documented global index), and a neighbour's data is untouched.
Runs on the standalone server and on the 3-master cluster (hash tags are escaped,
so a ``{`` in a symbol can never split a multi-key script across slots).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fullon_cache.account_cache import AccountCache
from fullon_cache.base_cache import BaseCache
from fullon_cache.bot_cache import BotCache
from fullon_cache.config import Settings
from fullon_cache.connection import ConnectionPool
from fullon_cache.embedded import EmbeddedCluster, EmbeddedServer
from fullon_cache.keys import escape
from fullon_cache.orders_cache import OrdersCache
from fullon_cache.tick_cache import TickCache
from fullon_cache.trades_cache import TradesCache

pytestmark = pytest.mark.reliability

HOSTILE = "*?[]:{}\\/ %^!-_.$#\x00\n\t'\"aZ9éü€中🙂"
identifiers = st.one_of(
    st.text(alphabet=HOSTILE, max_size=10),
    st.text(max_size=8),
    st.sampled_from(["BTC/USDT:USDT", "*", "?", "[a-z]", "{x}", "a:b", "}{", " ", ""]),
)
anything = st.one_of(
    identifiers,
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
)
json_values = st.one_of(
    identifiers,
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(-10, 10), max_size=2),
)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**6))

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
REJECTED = (ValueError, TypeError)


@pytest.fixture(params=["standalone", pytest.param("cluster", marks=pytest.mark.cluster)])
def backend(request: pytest.FixtureRequest) -> Settings:
    if request.param == "standalone":
        server: EmbeddedServer = request.getfixturevalue("redis_server")
        return Settings(host=server.host, port=server.port, breaker_threshold=0)
    cluster: EmbeddedCluster = request.getfixturevalue("redis_cluster")
    return Settings(
        cluster_mode=True, cluster_nodes=tuple(cluster.startup_nodes), breaker_threshold=0
    )


def run(backend: Settings, scenario: Callable[[Settings], Awaitable[None]]) -> None:
    """Run one example in a fresh namespace (with a neighbour's data in it) and clean up."""
    ns = Settings(**{**_fields(backend), "namespace": f"fz{uuid.uuid4().hex[:12]}"})

    async def main() -> None:
        neighbour = TickCache(settings=ns)
        await neighbour.set_ticker({"symbol": "N/USDT", "exchange": "neighbour", "price": 1.0})
        before = set(await neighbour.get_keys())
        _BASELINE.clear()
        _BASELINE.update(before)
        try:
            await scenario(ns)
            tick = await neighbour.get_ticker("N/USDT", "neighbour")
            assert tick is not None and tick.price == 1.0
            assert before <= set(await neighbour.get_keys())
        finally:
            await BaseCache(settings=ns).prepare_cache()
            await ConnectionPool.close_loop()

    asyncio.run(main())


def _fields(s: Settings) -> dict[str, Any]:
    return {f: getattr(s, f) for f in s.__struct_fields__}


_BASELINE: set[str] = set()  # the neighbour's keys in the running example's namespace


async def keys_of(cache: BaseCache) -> set[str]:
    """Keys of the namespace written since the neighbour's."""
    return set(await cache.get_keys()) - _BASELINE


def only_tagged(found: set[str], tag: object, *globals_: str) -> None:
    """Every key carries the hash tag of ``tag`` or is one of ``globals_``."""
    marker = "{" + escape(tag) + "}"  # type: ignore[arg-type]
    stray = {k for k in found if marker not in k and k not in globals_}
    assert not stray, stray


@FUZZ
@given(symbol=anything, exchange=anything, price=numbers)
def test_tick_fuzz(backend: Settings, symbol: Any, exchange: Any, price: Any) -> None:
    async def scenario(ns: Settings) -> None:
        cache = TickCache(settings=ns)
        try:
            assert await cache.set_ticker({"symbol": symbol, "exchange": exchange, "price": price})
        except REJECTED:
            assert await keys_of(cache) == set()
            return
        got = await cache.get_ticker(symbol, exchange)
        assert got is not None
        assert (got.symbol, got.exchange, got.price) == (symbol, exchange, float(price))
        only_tagged(await keys_of(cache), exchange, cache.keys.tick_exchanges())

    run(backend, scenario)


@FUZZ
@given(exchange=anything, order_id=anything, symbol=anything)
def test_orders_fuzz(backend: Settings, exchange: Any, order_id: Any, symbol: Any) -> None:
    async def scenario(ns: Settings) -> None:
        cache = OrdersCache(settings=ns)
        try:
            assert await cache.push_open_order(exchange, {"order_id": order_id, "symbol": symbol})
        except REJECTED:
            assert await keys_of(cache) == set()
            return
        only_tagged(await keys_of(cache), exchange)
        got = await cache.pop_open_order(exchange)
        assert got is not None and (got.order_id, got.symbol) == (order_id, symbol)
        assert await cache.pop_open_order(exchange) is None

    run(backend, scenario)


@FUZZ
@given(exchange=anything, symbol=anything, trade_id=anything, price=numbers, volume=numbers)
def test_trades_fuzz(
    backend: Settings, exchange: Any, symbol: Any, trade_id: Any, price: Any, volume: Any
) -> None:
    async def scenario(ns: Settings) -> None:
        cache = TradesCache(settings=ns)
        trade = {"ex_trade_id": trade_id, "symbol": symbol, "price": price, "volume": volume}
        try:
            pushed = await cache.push_trade(exchange, trade)
        except REJECTED:
            assert await keys_of(cache) == set()
            return
        assert pushed is True
        only_tagged(await keys_of(cache), exchange)
        got = await cache.get_trades(symbol, exchange)
        assert len(got) == 1
        assert (got[0].ex_trade_id, got[0].symbol) == (trade_id, symbol)
        assert (got[0].price, got[0].volume) == (float(price), float(volume))
        assert await cache.get_trades(symbol, exchange) == []

    run(backend, scenario)


@FUZZ
@given(bot_id=anything, ex_id=anything, symbol=anything, value=json_values)
def test_bot_fuzz(backend: Settings, bot_id: Any, ex_id: Any, symbol: Any, value: Any) -> None:
    async def scenario(ns: Settings) -> None:
        cache = BotCache(settings=ns)
        try:
            stored = await cache.update_bot(bot_id, {"status": value})
        except REJECTED:
            stored = False
        if stored:
            got = await cache.get_bot(bot_id)
            assert got is not None and got["status"] == value
            only_tagged(await keys_of(cache), bot_id)
            await cache.del_bot(bot_id)
        assert await keys_of(cache) == set()
        try:
            blocked = await cache.block_exchange(ex_id, symbol, 1)
        except REJECTED:
            assert await keys_of(cache) == set()
            return
        assert blocked is True
        assert await cache.is_blocked(ex_id, symbol) == "1"
        only_tagged(await keys_of(cache), ex_id)

    run(backend, scenario)


@FUZZ
@given(ex_id=anything, currency=anything, total=numbers, symbol=anything)
def test_account_fuzz(
    backend: Settings, ex_id: Any, currency: Any, total: Any, symbol: Any
) -> None:
    async def scenario(ns: Settings) -> None:
        cache = AccountCache(settings=ns)
        index = cache.keys.account_index()
        try:
            await cache.set_user_balances(ex_id, {currency: {"total": total, "free": total}})
        except REJECTED:
            assert await keys_of(cache) == set()
        else:
            got = await cache.get_user_balance(ex_id, currency)
            assert got is not None and got["total"] == float(total)
            only_tagged(await keys_of(cache), ex_id, index)
        try:
            await cache.set_position(ex_id, {"symbol": symbol, "volume": total})
        except REJECTED:
            return
        position = await cache.get_position(ex_id, symbol)
        assert position is not None and position.symbol == symbol
        assert math.isclose(position.volume, float(total)) or position.volume == float(total)
        only_tagged(await keys_of(cache), ex_id, index)

    run(backend, scenario)


@pytest.mark.parametrize("value", [b"\x01", float("nan"), float("inf")])
def test_bot_status_non_json_values_are_rejected(
    redis_server: EmbeddedServer, value: object
) -> None:
    backend = Settings(host=redis_server.host, port=redis_server.port)

    async def scenario(ns: Settings) -> None:
        cache = BotCache(settings=ns)
        with pytest.raises(REJECTED):
            await cache.update_bot(1, {"status": value})

    run(backend, scenario)
