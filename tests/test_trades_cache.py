from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from fullon_cache.config import Settings, reload_settings
from fullon_cache.connection import ConnectionPool
from fullon_cache.exceptions import CacheError
from fullon_cache.models import Trade
from fullon_cache.trades_cache import TradeListFullError, TradesCache


def trade(n: int | None = None, **fields: Any) -> Trade:
    base: dict[str, Any] = {"symbol": "BTC/USDT", "side": "buy", "volume": 1.0, "price": 100.0}
    if n is not None:
        base["ex_trade_id"] = f"t{n}"
    base.update(fields)
    return Trade(**base)


class Orm:
    """Stands in for a fullon_orm model: an object with to_dict()."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


async def stored_keys(cache: TradesCache) -> list[str]:
    return await cache.get_keys("*")


# -- push / drain ----------------------------------------------------------------------


async def test_push_and_drain_oldest_first_in_every_input_form(settings: Settings) -> None:
    async with TradesCache() as cache:
        assert await cache.push_trade("binance", trade(1, price=1.0))
        assert await cache.push_trade("binance", {"symbol": "BTCUSDT", "price": 2.0})
        assert await cache.push_trade("binance", Orm({"symbol": "BTC/USDT", "price": 3.0}))
        assert await cache.push_trade_list("BTC/USDT", "binance", {"price": 4.0, "x": 1})
        assert await cache.push_trade_list("BTCUSDT", "binance", trade(5, price=5.0).to_dict())
        drained = await cache.get_trades("BTC/USDT", "binance")
        assert [t.price for t in drained] == [1.0, 2.0, 3.0, 4.0, 5.0]
        assert drained[0] == trade(1, price=1.0)
        assert drained[3].symbol == "BTC/USDT"  # filled from the symbol argument
        assert await cache.get_trades("BTCUSDT", "binance") == []
        assert await cache.get_trades_list("BTC/USDT", "binance") == []


async def test_lists_are_per_exchange_and_symbol(settings: Settings) -> None:
    async with TradesCache() as cache:
        await cache.push_trade("binance", trade(symbol="BTC/USDT", price=1.0))
        await cache.push_trade("binance", trade(symbol="ETH/USDT", price=2.0))
        await cache.push_trade("kraken", trade(symbol="BTC/USDT", price=3.0))
        await cache.push_trade("binance", trade(symbol="BTC/USDT:USDT", price=4.0))
        assert [t.price for t in await cache.get_trades_list("BTC/USDT", "kraken")] == [3.0]
        assert [t.price for t in await cache.get_trades("ETH/USDT", "binance")] == [2.0]
        assert [t.price for t in await cache.get_trades("BTC/USDT:USDT", "binance")] == [4.0]
        assert [t.price for t in await cache.get_trades("BTC/USDT", "binance")] == [1.0]


async def test_trade_time_round_trips_as_utc(settings: Settings) -> None:
    naive = datetime(2024, 5, 1, 12, 0, 0)
    async with TradesCache() as cache:
        await cache.push_trade("binance", trade(time=naive))
        await cache.push_trade("binance", trade(time=0.0))
        first, second = await cache.get_trades("BTC/USDT", "binance")
        assert first.time == naive.replace(tzinfo=UTC)
        assert isinstance(first.time, datetime) and first.time.tzinfo is not None
        assert second.time == datetime(1970, 1, 1, tzinfo=UTC)


async def test_peek_does_not_drain(settings: Settings) -> None:
    async with TradesCache() as cache:
        assert await cache.peek_trades("BTC/USDT", "binance") == []
        for i in range(5):
            await cache.push_trade("binance", trade(i, price=float(i)))
        assert [t.price for t in await cache.peek_trades("BTCUSDT", "binance")] == [
            0.0,
            1.0,
            2.0,
            3.0,
            4.0,
        ]
        assert [t.price for t in await cache.peek_trades("BTC/USDT", "binance", 2)] == [3.0, 4.0]
        assert await cache.peek_trades("BTC/USDT", "binance", count=0) == []
        assert len(await cache.peek_trades("BTC/USDT", "binance", count=99)) == 5
        assert len(await cache.get_trades("BTC/USDT", "binance")) == 5


async def test_corrupt_entry_is_skipped_and_the_rest_delivered(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with TradesCache() as cache:
        await cache.push_trade("binance", trade(1))
        await cache.redis.lpush(cache.keys.trades("binance", "BTC/USDT"), b"{not json")
        await cache.push_trade("binance", trade(2))
        assert [t.ex_trade_id for t in await cache.peek_trades("BTC/USDT", "binance")] == [
            "t1",
            "t2",
        ]
        with caplog.at_level("ERROR", logger="fullon.cache.trades"):
            drained = await cache.get_trades("BTC/USDT", "binance")
        assert [t.ex_trade_id for t in drained] == ["t1", "t2"]
        assert "corrupt trade" in caplog.text
        assert await cache.peek_trades("BTC/USDT", "binance") == []


# -- dedupe ----------------------------------------------------------------------------


async def test_dedupe_within_window(settings: Settings) -> None:
    async with TradesCache() as cache:
        assert await cache.push_trade("binance", trade(1, price=1.0)) is True
        # a websocket replay: same exchange, symbol and id, even as a mapping / other spelling
        assert await cache.push_trade("binance", trade(1, price=1.0)) is False
        assert await cache.push_trade_list("BTCUSDT", "binance", {"ex_trade_id": "t1"}) is False
        # drained meanwhile: still a duplicate inside the window
        assert len(await cache.get_trades("BTC/USDT", "binance")) == 1
        assert await cache.push_trade("binance", trade(1, price=1.0)) is False
        # same id elsewhere is another trade: other exchange, other symbol
        assert await cache.push_trade("kraken", trade(1)) is True
        assert await cache.push_trade("binance", trade(1, symbol="ETH/USDT")) is True
        # no id (or a blank one) is never deduped
        assert await cache.push_trade("binance", trade()) is True
        assert await cache.push_trade("binance", trade()) is True
        assert await cache.push_trade("binance", trade(ex_trade_id=" ")) is True
        assert await cache.push_trade("binance", trade(ex_trade_id=" ")) is True
        assert len(await cache.get_trades("BTC/USDT", "binance")) == 4


async def test_dedupe_ends_after_the_window(settings: Settings) -> None:
    short = msgspec.structs.replace(settings, trade_dedupe_window=1)
    async with TradesCache(settings=short) as cache:
        assert await cache.push_trade("binance", trade(1)) is True
        assert await cache.push_trade("binance", trade(1)) is False
        assert await cache.push_user_trade(1, "binance", trade(1)) is True
        assert await cache.push_user_trade(1, "binance", trade(1)) is False
        await asyncio.sleep(1.3)
        assert await cache.push_trade("binance", trade(1)) is True
        assert await cache.push_user_trade(1, "binance", trade(1)) is True
        assert len(await cache.get_trades("BTC/USDT", "binance")) == 2
        assert len(await cache.get_user_trades(1, "binance")) == 2


async def test_window_zero_disables_dedupe(settings: Settings) -> None:
    off = msgspec.structs.replace(settings, trade_dedupe_window=0)
    async with TradesCache(settings=off) as cache:
        assert await cache.push_trade("binance", trade(1)) is True
        assert await cache.push_trade("binance", trade(1)) is True
        assert len(await cache.get_trades("BTC/USDT", "binance")) == 2
        assert not [k for k in await stored_keys(cache) if ":trade_seen:" in k]


async def test_seen_marker_shares_the_list_hash_slot(settings: Settings) -> None:
    cache = TradesCache()
    list_key = cache.keys.trades("bin{x}ance", "BTC/USDT:USDT")
    seen_key = cache.keys.trade_seen("bin{x}ance", "id}{", "BTC/USDT:USDT")
    assert list_key.split("}")[0].split("{")[1] == seen_key.split("}")[0].split("{")[1]
    user_list = cache.keys.user_trades("u:1", "binance")
    user_seen = cache.keys.user_trade_seen("u:1", "binance", "t", "BTC/USDT")
    assert user_list.split("}")[0].split("{")[1] == user_seen.split("}")[0].split("{")[1]
    # and the script works with such identifiers on the backend
    assert await cache.push_trade("bin{x}ance", trade(ex_trade_id="id}{", symbol="BTC/USDT:USDT"))
    assert not await cache.push_trade(
        "bin{x}ance", trade(ex_trade_id="id}{", symbol="BTC/USDT:USDT")
    )
    assert len(await cache.get_trades("BTC/USDT:USDT", "bin{x}ance")) == 1


# -- bounds ----------------------------------------------------------------------------


async def test_full_list_refuses_the_push_and_writes_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    small = msgspec.structs.replace(settings, max_list_length=3)
    async with TradesCache(settings=small) as cache:
        for i in range(3):
            assert await cache.push_trade("binance", trade(i))
        with (
            caplog.at_level("WARNING", logger="fullon.cache.trades"),
            pytest.raises(TradeListFullError, match="drain"),
        ):
            await cache.push_trade("binance", trade(3))
        assert "full" in caplog.text
        assert isinstance(TradeListFullError("x"), CacheError)
        # a duplicate at the cap is still just a duplicate
        assert await cache.push_trade("binance", trade(0)) is False
        assert [t.ex_trade_id for t in await cache.peek_trades("BTC/USDT", "binance")] == [
            "t0",
            "t1",
            "t2",
        ]
        # the refused trade left no dedupe marker: after a drain it is accepted
        assert len(await cache.get_trades("BTC/USDT", "binance")) == 3
        assert await cache.push_trade("binance", trade(3)) is True
        for i in range(3):
            await cache.push_user_trade(9, "binance", trade(i))
        with pytest.raises(TradeListFullError):
            await cache.push_user_trade(9, "binance", trade(3))
        assert len(await cache.get_user_trades(9, "binance")) == 3


# -- concurrency -----------------------------------------------------------------------


async def _drain_until(cache: TradesCache, done: asyncio.Event, out: list[Trade]) -> None:
    while not done.is_set():
        out.extend(await cache.get_trades("BTC/USDT", "binance"))
        await asyncio.sleep(0)
    out.extend(await cache.get_trades("BTC/USDT", "binance"))


async def test_concurrent_pushers_and_drainers_lose_and_duplicate_nothing(
    settings: Settings,
) -> None:
    pushed = [f"p{p}-{i}" for p in range(4) for i in range(500)]

    async def pusher(p: int) -> None:
        async with TradesCache() as cache:
            for i in range(500):
                assert await cache.push_trade("binance", trade(ex_trade_id=f"p{p}-{i}"))

    done = asyncio.Event()
    outs: list[list[Trade]] = [[], [], []]
    drainers = [asyncio.create_task(_drain_until(TradesCache(), done, out)) for out in outs]
    await asyncio.gather(*(pusher(p) for p in range(4)))
    done.set()
    await asyncio.gather(*drainers)
    drained = [t.ex_trade_id for out in outs for t in out]
    assert len(drained) == len(pushed)
    assert sorted(drained) == sorted(pushed)
    # within each drainer's output, each pusher's trades come out in the order pushed
    for out in outs:
        for p in range(4):
            seq = [
                int(t.ex_trade_id.split("-")[1]) for t in out if t.ex_trade_id.startswith(f"p{p}-")
            ]  # type: ignore[union-attr]
            assert seq == sorted(seq)


def _push_in_process(env: dict[str, str], p: int, n: int) -> int:
    import os

    os.environ.update(env)
    reload_settings()

    async def run() -> int:
        async with TradesCache() as cache:
            for i in range(n):
                await cache.push_trade("binance", trade(ex_trade_id=f"proc{p}-{i}"))
        await ConnectionPool.close_loop()
        return n

    return asyncio.run(run())


async def test_pushers_in_other_processes_and_concurrent_drainers(settings: Settings) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k.startswith(("REDIS_", "FULLON_CACHE_"))}
    env["DOTENV_FILE"] = os.devnull
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    outs: list[list[Trade]] = [[], [], []]
    drainers = [asyncio.create_task(_drain_until(TradesCache(), done, out)) for out in outs]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = [loop.run_in_executor(pool, _push_in_process, env, p, 300) for p in range(2)]
        assert await asyncio.gather(*futures) == [300, 300]
    done.set()
    await asyncio.gather(*drainers)
    drained = [t.ex_trade_id for out in outs for t in out]
    expected = [f"proc{p}-{i}" for p in range(2) for i in range(300)]
    assert len(drained) == 600
    assert sorted(drained) == sorted(expected)  # type: ignore[type-var]


# -- user trades -----------------------------------------------------------------------


async def test_user_trades_fifo_peek_and_pop(settings: Settings) -> None:
    async with TradesCache() as cache:
        assert await cache.pop_user_trade(1, "binance") is None
        assert await cache.get_user_trades(1, "binance") == []
        assert await cache.push_user_trade(1, "binance", trade(1, price=1.0))
        assert await cache.push_user_trade(1, "binance", {"price": 2.0})  # no symbol: fine
        assert await cache.push_user_trade("1", "binance", Orm({"price": 3.0}))
        assert await cache.push_user_trade(2, "binance", trade(1, price=9.0))  # other user
        assert await cache.push_user_trade(1, "kraken", trade(1, price=8.0))  # other exchange
        assert await cache.push_user_trade(1, "binance", trade(1)) is False
        assert [t.price for t in await cache.get_user_trades(1, "binance")] == [1.0, 2.0, 3.0]
        popped = [await cache.pop_user_trade(1, "binance") for _ in range(4)]
        assert [t.price if t else None for t in popped] == [1.0, 2.0, 3.0, None]
        assert [t.price for t in await cache.get_user_trades(2, "binance")] == [9.0]
        assert [t.price for t in await cache.get_user_trades(1, "kraken")] == [8.0]


async def test_pop_user_trade_waits_past_the_socket_timeout(settings: Settings) -> None:
    quick = msgspec.structs.replace(settings, socket_timeout=0.5)
    async with TradesCache(settings=quick) as cache:

        async def later() -> None:
            await asyncio.sleep(0.8)  # longer than the socket timeout
            await TradesCache(settings=quick).push_user_trade(1, "binance", trade(7))

        pusher = asyncio.create_task(later())
        got = await cache.pop_user_trade(1, "binance", timeout=10)
        await pusher
        assert got is not None and got.ex_trade_id == "t7"
        assert await cache.pop_user_trade(1, "binance", timeout=0.1) is None


# -- status ----------------------------------------------------------------------------


async def test_trade_status_round_trip_and_bulk_read(settings: Settings) -> None:
    async with TradesCache() as cache:
        assert await cache.get_trade_status("user:1") is None
        assert await cache.get_all_trade_statuses() == {}
        before = datetime.now(UTC)
        assert await cache.update_trade_status("user:1")
        now = await cache.get_trade_status("user:1")
        assert now is not None and now.tzinfo is not None
        assert before - timedelta(seconds=1) <= now <= datetime.now(UTC) + timedelta(seconds=1)
        when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert await cache.update_trade_status("user:2", when)
        assert await cache.update_trade_status("user*[x]?", datetime(2024, 1, 2, 3, 4, 5))
        assert await cache.update_trade_status("bot:1", when.timestamp())
        assert await cache.get_trade_status("user:2") == when
        assert await cache.get_trade_status("bot:1") == when
        everything = await cache.get_all_trade_statuses()
        assert sorted(everything) == ["bot:1", "user*[x]?", "user:1", "user:2"]
        assert everything["user*[x]?"] == when
        assert sorted(await cache.get_all_trade_statuses("user:")) == ["user:1", "user:2"]
        # wildcards in the prefix are literal
        assert sorted(await cache.get_all_trade_statuses("user*")) == ["user*[x]?"]
        assert await cache.get_all_trade_statuses("*") == {}
        assert await cache.delete_trade_status("user:1") is True
        assert await cache.delete_trade_status("user:1") is False
        assert await cache.get_trade_status("user:1") is None


# -- analytics -------------------------------------------------------------------------


async def test_analytics_without_draining(settings: Settings) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    async with TradesCache() as cache:
        empty = await cache.get_trade_analytics("BTC/USDT", "binance")
        assert empty["count"] == 0
        assert empty["vwap"] is None and empty["last_price"] is None
        assert empty["first_time"] is None and empty["total_volume"] == 0.0
        rows = [
            trade(1, side="buy", volume=1.0, price=100.0, fee=0.1, time=t0),
            trade(2, side="SELL", volume=3.0, price=200.0, fee=0.3, time=t0 + timedelta(1)),
            trade(3, side="buy", volume=2.0, price=None, fee=None, time=None),
            trade(4, side=None, volume=None, price=50.0, time=t0 - timedelta(1)),
            trade(5, side="other", volume=4.0, price=10.0),
        ]
        for row in rows:
            await cache.push_trade("binance", row)
        stats = await cache.get_trade_analytics("BTCUSDT", "binance")
        assert stats["symbol"] == "BTCUSDT" and stats["exchange"] == "binance"
        assert stats["count"] == 5
        assert (stats["buy_count"], stats["sell_count"]) == (2, 1)
        assert stats["buy_volume"] == 3.0
        assert stats["sell_volume"] == 3.0
        assert stats["total_volume"] == 10.0
        assert stats["total_cost"] == 100.0 + 600.0 + 40.0
        assert stats["vwap"] == pytest.approx(740.0 / 8.0)
        assert stats["total_fees"] == pytest.approx(0.4)
        assert (stats["min_price"], stats["max_price"], stats["last_price"]) == (10.0, 200.0, 10.0)
        assert stats["first_time"] == t0 - timedelta(1)
        assert stats["last_time"] == t0 + timedelta(1)
        assert len(await cache.peek_trades("BTC/USDT", "binance")) == 5


# -- bad input -------------------------------------------------------------------------

BAD_PUSHES: list[tuple[type[Exception], str, Any]] = [
    (TypeError, "binance", 42),
    (TypeError, "binance", ["not", "a", "trade"]),
    (ValueError, "binance", {"price": 1.0}),  # no symbol
    (ValueError, "binance", {"symbol": "", "price": 1.0}),
    (ValueError, "binance", {"symbol": "/", "price": 1.0}),
    (ValueError, "binance", {"symbol": "BTC/USDT", "price": -1.0}),
    (ValueError, "binance", {"symbol": "BTC/USDT", "volume": -0.5}),
    (ValueError, "binance", {"symbol": "BTC/USDT", "price": float("nan")}),
    (TypeError, "binance", {"symbol": "BTC/USDT", "price": "cheap"}),
    (ValueError, "", trade(1)),
    (ValueError, "  ", trade(1)),
    (TypeError, 7, trade(1)),
    (TypeError, None, trade(1)),
]


@pytest.mark.parametrize(("error", "exchange", "value"), BAD_PUSHES)
async def test_bad_push_rejected_before_any_write(
    standalone: Settings, error: type[Exception], exchange: Any, value: Any
) -> None:
    async with TradesCache() as cache:
        with pytest.raises(error):
            await cache.push_trade(exchange, value)
        if not (isinstance(value, dict) and "symbol" not in value):
            with pytest.raises((TypeError, ValueError)):
                await cache.push_trade_list("BTC/USDT", exchange or "", value)
        assert await stored_keys(cache) == []


async def test_bad_arguments_rejected_before_any_write(settings: Settings) -> None:
    async with TradesCache() as cache:
        with pytest.raises(ValueError, match="does not match"):
            await cache.push_trade_list("ETH/USDT", "binance", trade(1))
        with pytest.raises(ValueError, match="empty"):
            await cache.push_trade_list("", "binance", {"price": 1.0})
        with pytest.raises(TypeError):
            await cache.push_trade_list(None, "binance", {"price": 1.0})  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await cache.push_user_trade(True, "binance", trade(1))
        with pytest.raises(TypeError):
            await cache.push_user_trade(1.5, "binance", trade(1))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            await cache.push_user_trade(" ", "binance", trade(1))
        with pytest.raises(ValueError, match="empty"):
            await cache.push_user_trade(1, "", trade(1))
        with pytest.raises(ValueError, match=">= 0"):
            await cache.push_user_trade(1, "binance", {"price": -2.0})
        with pytest.raises(TypeError):
            await cache.push_user_trade(1, "binance", "trade")
        with pytest.raises(TypeError):
            await cache.update_trade_status(5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            await cache.update_trade_status("")
        with pytest.raises(ValueError, match="finite"):
            await cache.update_trade_status("k", float("inf"))
        with pytest.raises(TypeError):
            await cache.update_trade_status("k", "yesterday")  # type: ignore[arg-type]
        assert await stored_keys(cache) == []
        # reads reject bad input too
        with pytest.raises(ValueError, match="empty"):
            await cache.get_trades("", "binance")
        with pytest.raises(TypeError):
            await cache.get_trades("BTC/USDT", None)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await cache.peek_trades("BTC/USDT", "binance", count="2")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await cache.peek_trades("BTC/USDT", "binance", count=True)
        with pytest.raises(ValueError, match=">= 0"):
            await cache.peek_trades("BTC/USDT", "binance", count=-1)
        with pytest.raises(ValueError, match=">= 0"):
            await cache.pop_user_trade(1, "binance", timeout=-1)
        with pytest.raises(ValueError, match="empty"):
            await cache.get_all_trade_statuses("")
        with pytest.raises(TypeError):
            await cache.get_trade_status(None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            await cache.get_trade_analytics("BTC/USDT", "")
        assert await stored_keys(cache) == []


async def test_caller_objects_are_not_mutated(settings: Settings) -> None:
    data = {"price": 1.0}
    model = Trade(price=2.0)
    async with TradesCache() as cache:
        await cache.push_trade_list("BTC/USDT", "binance", data)
        await cache.push_trade_list("BTC/USDT", "binance", model)
    assert data == {"price": 1.0}
    assert model.symbol is None


async def test_a_push_or_drain_resent_by_a_retry_is_not_doubled_or_lost(
    settings: Settings,
) -> None:
    """redis-py re-sends a command after a connection error even when the server ran
    it; the scripts must give the same answer the second time (same call token)."""
    from fullon_cache import trades_cache as module

    async with TradesCache() as cache:
        list_key = cache.keys.trades("binance", "BTC/USDT")
        push = cache.redis.register_script(module._PUSH_LUA)
        marker = cache.keys.trade_push("binance", "tok")
        for _ in range(2):  # the original and its re-sent copy
            assert await push(keys=[list_key, marker], args=[b"{}", 10, 60, "tok"]) == 1
        assert await cache.redis.llen(list_key) == 1
        # another call with the same marker key but another token is a duplicate
        assert await push(keys=[list_key, marker], args=[b"{}", 10, 60, "other"]) == 0
        await cache.push_trade("binance", trade(1))
        drain = cache.redis.register_script(module._DRAIN_LUA)
        batch = cache.keys.trade_drain("binance", "BTC/USDT", "tok")
        first = await drain(keys=[list_key, batch], args=[60])
        await cache.push_trade("binance", trade(2))  # pushed between original and resend
        assert await drain(keys=[list_key, batch], args=[60]) == first
        assert len(first) == 2
        assert [t.ex_trade_id for t in await cache.get_trades("BTC/USDT", "binance")] == ["t2"]
        assert 0 < await cache.redis.ttl(batch) <= 60
