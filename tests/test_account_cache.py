from __future__ import annotations

from typing import Any

import pytest

from fullon_cache.account_cache import AccountCache
from fullon_cache.config import Settings
from fullon_cache.models import Balance, Position, Tick
from fullon_cache.tick_cache import TickCache

BTC = {"total": 1.5, "free": 1.2, "used": 0.3}
USDT = {"total": 10000.0, "free": 8500.0, "used": 1500.0}


class Orm:
    """Stands in for a fullon_orm model: an object with to_dict()."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


# -- balances --------------------------------------------------------------------------


async def test_set_and_read_balances(settings: Settings) -> None:
    async with AccountCache() as cache:
        assert await cache.get_user_balances(1001) == {}
        assert await cache.get_user_balance(1001, "BTC") is None
        assert await cache.set_user_balances(1001, {"BTC": BTC, "USDT": USDT}) is True
        assert await cache.get_user_balance(1001, "BTC") == BTC
        assert await cache.get_user_balance("1001", "USDT") == USDT  # int and str ids agree
        assert await cache.get_full_account(1001, "BTC") == BTC
        assert await cache.get_full_account(1001, "ETH") is None
        assert await cache.get_user_balances(1001) == {"BTC": BTC, "USDT": USDT}
        assert await cache.get_user_balances(1002) == {}


async def test_balance_input_forms(settings: Settings) -> None:
    async with AccountCache() as cache:
        await cache.set_user_balances(
            1,
            {
                "BTC": Balance(total=1.0, free=1.0),
                "ETH": Orm({"total": 2.0, "used": 2.0, "unknown": "x"}),
                "USDT": {"total": 5},
            },
        )
        assert await cache.get_user_balances(1) == {
            "BTC": {"total": 1.0, "free": 1.0, "used": 0.0},
            "ETH": {"total": 2.0, "free": 0.0, "used": 2.0},
            "USDT": {"total": 5.0, "free": 0.0, "used": 0.0},
        }


async def test_set_replaces_and_upsert_merges(settings: Settings) -> None:
    async with AccountCache() as cache:
        await cache.set_user_balances(1, {"BTC": BTC, "USDT": USDT})
        await cache.set_user_balances(1, {"ETH": {"total": 3.0}})
        assert sorted(await cache.get_user_balances(1)) == ["ETH"]
        assert await cache.upsert_user_account(1, {"BTC": {"total": 9.0, "free": 9.0}}) is True
        assert await cache.upsert_user_account(1, {"ETH": {"free": 1.0}}) is True
        assert await cache.get_user_balances(1) == {
            "BTC": {"total": 9.0, "free": 9.0, "used": 0.0},
            "ETH": {"total": 0.0, "free": 1.0, "used": 0.0},  # a currency is replaced whole
        }
        assert await cache.upsert_user_account(1, {}) is True  # nothing to merge
        assert len(await cache.get_user_balances(1)) == 2
        assert await cache.set_user_balances(1, {}) is True  # empties the balances
        assert await cache.get_user_balances(1) == {}


async def test_get_all_accounts(settings: Settings) -> None:
    async with AccountCache() as cache:
        assert await cache.get_all_accounts() == {}
        await cache.set_user_balances(2, {"ETH": {"total": 2.0}})
        await cache.upsert_user_account("1", {"BTC": BTC})
        await cache.set_position(3, {"symbol": "BTC/USDT", "volume": 1.0})  # no balances
        await cache.set_user_balances(4, {})  # emptied
        assert await cache.get_all_accounts() == {
            "1": {"BTC": BTC},
            "2": {"ETH": {"total": 2.0, "free": 0.0, "used": 0.0}},
        }


# -- positions -------------------------------------------------------------------------


async def test_position_round_trip_and_forms(settings: Settings) -> None:
    async with AccountCache() as cache:
        assert await cache.get_position(2000, "BTC/USDT") is None
        position = Position(symbol="BTC/USDT", ex_id="2000", cost=22500.0, volume=0.5, price=45000)
        assert await cache.set_position(2000, position) is True
        assert await cache.get_position("2000", "BTC/USDT") == position
        # a mapping or to_dict() object without ex_id takes the account's
        assert await cache.set_position(2000, {"symbol": "ETH/USDT", "volume": 2.0})
        assert await cache.set_position(2000, Orm({"symbol": "SOL/USDT", "ex_id": None}))
        assert await cache.set_position(2000, Orm({"symbol": "XRP/USDT", "ex_id": 2000}))
        positions = await cache.get_positions(2000)
        assert list(positions) == ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
        assert all(p.ex_id == "2000" for p in positions.values())
        assert positions["ETH/USDT"].volume == 2.0
        # replacing a symbol's position
        await cache.set_position(2000, {"symbol": "ETH/USDT", "volume": 3.0, "side": "short"})
        eth = await cache.get_position(2000, "ETH/USDT")
        assert eth is not None and eth.volume == 3.0 and eth.side == "short"


async def test_get_positions_is_for_that_exchange_only(settings: Settings) -> None:
    async with AccountCache() as cache:
        await cache.set_position(1, {"symbol": "BTC/USDT", "volume": 1.0})
        await cache.set_position(2, {"symbol": "ETH/USDT", "volume": 2.0})
        await cache.set_position(2, {"symbol": "BTC/USDT:USDT", "volume": 3.0})
        assert list(await cache.get_positions(1)) == ["BTC/USDT"]
        assert list(await cache.get_positions(2)) == ["BTC/USDT:USDT", "ETH/USDT"]
        assert await cache.get_positions(3) == {}
        assert await cache.get_position(1, "ETH/USDT") is None


async def test_get_all_positions(settings: Settings) -> None:
    async with AccountCache() as cache:
        assert await cache.get_all_positions() == []
        await cache.set_position("b", {"symbol": "ETH/USDT", "volume": 1.0})
        await cache.set_position("a", {"symbol": "ETH/USDT", "volume": 2.0})
        await cache.set_position("a", {"symbol": "BTC/USDT", "volume": 3.0})
        await cache.set_user_balances("c", {"BTC": BTC})  # an account without positions
        found = await cache.get_all_positions()
        assert [(p.ex_id, p.symbol, p.volume) for p in found] == [
            ("a", "BTC/USDT", 3.0),
            ("a", "ETH/USDT", 2.0),
            ("b", "ETH/USDT", 1.0),
        ]


async def test_upsert_positions_merge_and_replace(settings: Settings) -> None:
    async with AccountCache() as cache:
        rows: list[Any] = [
            Position(symbol="BTC/USDT", ex_id="1", volume=1.0),
            {"symbol": "ETH/USDT", "volume": 2.0, "user_id": 123, "size": 9},  # extra keys
            Orm({"symbol": "SOL/USDT", "ex_id": "1", "volume": 3.0}),
        ]
        assert await cache.upsert_positions(1, rows) is True
        assert list(await cache.get_positions(1)) == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
        # merge: others stay; the last row of a symbol wins
        more = [{"symbol": "ADA/USDT", "volume": 1.0}, {"symbol": "ADA/USDT", "volume": 4.0}]
        assert await cache.upsert_positions(1, iter(more)) is True
        positions = await cache.get_positions(1)
        assert len(positions) == 4 and positions["ADA/USDT"].volume == 4.0
        assert await cache.upsert_positions(1, []) is True
        assert len(await cache.get_positions(1)) == 4
        # replace: the list becomes the whole set
        assert await cache.upsert_positions(1, [{"symbol": "DOT/USDT"}], replace=True) is True
        assert list(await cache.get_positions(1)) == ["DOT/USDT"]
        assert await cache.upsert_positions(1, [], replace=True) is True
        assert await cache.get_positions(1) == {}


async def test_delete_position(settings: Settings) -> None:
    async with AccountCache() as cache:
        await cache.set_position(1, {"symbol": "BTC/USDT", "volume": 1.0})
        await cache.set_position(1, {"symbol": "ETH/USDT", "volume": 1.0})
        assert await cache.delete_position(1, "BTC/USDT") is True
        assert await cache.delete_position(1, "BTC/USDT") is False
        assert await cache.delete_position(2, "ETH/USDT") is False
        assert list(await cache.get_positions(1)) == ["ETH/USDT"]


# -- bad input -------------------------------------------------------------------------

BAD_WRITES: list[tuple[type[Exception], str, tuple[Any, ...]]] = [
    (TypeError, "set_user_balances", (True, {"BTC": BTC})),
    (TypeError, "set_user_balances", (1.5, {"BTC": BTC})),
    (ValueError, "set_user_balances", ("", {"BTC": BTC})),
    (TypeError, "set_user_balances", (1, [("BTC", BTC)])),
    (TypeError, "set_user_balances", (1, {"BTC": 5})),
    (TypeError, "set_user_balances", (1, {5: BTC})),
    (ValueError, "set_user_balances", (1, {" ": BTC})),
    (ValueError, "set_user_balances", (1, {"BTC": {"total": float("nan")}})),
    (TypeError, "set_user_balances", (1, {"BTC": {"total": "lots"}})),
    (ValueError, "upsert_user_account", (1, {"USDT": USDT, "BTC": {"free": float("inf")}})),
    (TypeError, "upsert_user_account", (None, {"BTC": BTC})),
    (TypeError, "set_position", (1, 42)),
    (ValueError, "set_position", (1, {"volume": 1.0})),  # no symbol
    (ValueError, "set_position", (1, {"symbol": "", "volume": 1.0})),
    (ValueError, "set_position", (1, {"symbol": "BTC/USDT", "ex_id": "2"})),  # other account
    (ValueError, "set_position", (1, Position(symbol="BTC/USDT", ex_id="2"))),
    (ValueError, "set_position", (1, {"symbol": "BTC/USDT", "side": "sideways"})),
    (ValueError, "set_position", (1, {"symbol": "BTC/USDT", "volume": float("nan")})),
    (TypeError, "upsert_positions", (1, {"symbol": "BTC/USDT"})),
    (TypeError, "upsert_positions", (1, "BTC/USDT")),
    (TypeError, "upsert_positions", (1, 7)),
    # one bad row: nothing of the batch is written
    (ValueError, "upsert_positions", (1, [{"symbol": "BTC/USDT"}, {"symbol": ""}])),
    (ValueError, "upsert_positions", (1, [{"symbol": "BTC/USDT"}, {"symbol": "X", "ex_id": 9}])),
]


@pytest.mark.parametrize(("error", "method", "args"), BAD_WRITES)
async def test_bad_writes_rejected_before_any_write(
    standalone: Settings, error: type[Exception], method: str, args: tuple[Any, ...]
) -> None:
    async with AccountCache() as cache:
        with pytest.raises(error):
            await getattr(cache, method)(*args)
        assert await cache.get_keys() == []


async def test_bad_arguments_rejected(settings: Settings) -> None:
    async with AccountCache() as cache:
        with pytest.raises(TypeError, match="replace"):
            await cache.upsert_positions(1, [{"symbol": "BTC/USDT"}], replace=1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="currency"):
            await cache.get_user_balance(1, None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            await cache.get_position(1, "")
        with pytest.raises(TypeError, match="exchange_id"):
            await cache.get_positions(["1"])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            await cache.delete_position(1, " ")
        with pytest.raises(ValueError, match="empty"):
            await cache.get_portfolio_summary(1, quote="")
        with pytest.raises(TypeError, match="exchange"):
            await cache.get_portfolio_summary(1, exchange=5)  # type: ignore[arg-type]
        assert await cache.get_keys() == []


async def test_caller_data_is_not_mutated(settings: Settings) -> None:
    row = {"symbol": "BTC/USDT", "volume": 1.0}
    balances = {"BTC": dict(BTC)}
    async with AccountCache() as cache:
        await cache.set_position(1, row)
        await cache.upsert_positions(1, [row])
        await cache.set_user_balances(1, balances)
    assert row == {"symbol": "BTC/USDT", "volume": 1.0}
    assert balances == {"BTC": BTC}


# -- portfolio -------------------------------------------------------------------------


async def test_portfolio_summary_prices_what_it_can_and_lists_the_rest(
    settings: Settings,
) -> None:
    async with AccountCache() as cache, TickCache() as ticks:
        empty = await cache.get_portfolio_summary(9)
        assert empty["complete"] is True and empty["balances"] == {} and empty["positions"] == {}
        assert empty["total_balance_value"] == 0.0
        for symbol, price in (("BTC/USDT", 100.0), ("ETH/USDT", 10.0), ("SOL/USDT", 5.0)):
            await ticks.set_ticker(Tick(symbol=symbol, exchange="binance", price=price))
        await ticks.set_ticker(Tick(symbol="XRP/USDT", exchange="binance", price=1.0, time=0))
        await cache.set_user_balances(
            1,
            {
                "BTC": {"total": 2.0, "free": 2.0},
                "USDT": {"total": 50.0, "free": 50.0},
                "DOGE": {"total": 1000.0},  # no ticker
                "XRP": {"total": 10.0},  # stale ticker: not a price
            },
        )
        await cache.upsert_positions(
            1,
            [
                {"symbol": "BTC/USDT", "volume": 1.0, "price": 80.0, "side": "long"},
                {"symbol": "ETH/USDT", "volume": 2.0, "price": 12.0, "side": "short"},
                {"symbol": "SOL/USDT", "volume": -4.0, "cost": 24.0},  # short by sign
                {"symbol": "ADA/USDT", "volume": 1.0, "price": 1.0},  # unpriced
            ],
        )
        await cache.set_position(2, {"symbol": "BTC/USDT", "volume": 9.0, "price": 1.0})
        summary = await cache.get_portfolio_summary(1)
        assert summary["exchange_id"] == "1" and summary["quote"] == "USDT"
        assert summary["balances"]["BTC"] == {
            "total": 2.0,
            "free": 2.0,
            "used": 0.0,
            "price": 100.0,
            "value": 200.0,
        }
        assert summary["balances"]["USDT"]["price"] == 1.0
        assert summary["balances"]["DOGE"]["value"] is None
        assert summary["balances"]["XRP"]["price"] is None
        assert summary["total_balance_value"] == 250.0
        assert summary["unpriced"] == {"balances": ["DOGE", "XRP"], "positions": ["ADA/USDT"]}
        assert summary["complete"] is False
        btc, eth, sol = (summary["positions"][s] for s in ("BTC/USDT", "ETH/USDT", "SOL/USDT"))
        assert (btc["market_value"], btc["unrealized_pnl"], btc["side"]) == (100.0, 20.0, "long")
        assert (eth["market_value"], eth["unrealized_pnl"], eth["side"]) == (20.0, 4.0, "short")
        assert (sol["entry_price"], sol["market_value"], sol["unrealized_pnl"]) == (6.0, 20.0, 4.0)
        assert sol["side"] == "short"
        ada = summary["positions"]["ADA/USDT"]
        assert (
            ada["price"] is None and ada["market_value"] is None and ada["unrealized_pnl"] is None
        )
        assert summary["total_position_value"] == 140.0
        assert summary["total_unrealized_pnl"] == 28.0
        assert summary["unknown_entry"] == []


async def test_portfolio_summary_by_exchange_and_unknown_entry(settings: Settings) -> None:
    async with AccountCache() as cache, TickCache() as ticks:
        await ticks.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=100.0))
        await ticks.set_ticker(Tick(symbol="BTC/USDT", exchange="kraken", price=120.0))
        await ticks.set_ticker(Tick(symbol="BTC/EUR", exchange="kraken", price=90.0))
        await cache.set_user_balances(7, {"BTC": {"total": 1.0}, "EUR": {"total": 5.0}})
        await cache.upsert_positions(
            7,
            [
                {"symbol": "BTC/USDT", "volume": 2.0},  # no cost, no price: no PnL
                {"symbol": "BTC/EUR", "volume": 0.0, "cost": 3.0},  # flat
            ],
        )
        on_kraken = await cache.get_portfolio_summary(7, quote="EUR", exchange="kraken")
        assert on_kraken["balances"]["BTC"]["value"] == 90.0
        assert on_kraken["balances"]["EUR"]["value"] == 5.0
        assert on_kraken["total_balance_value"] == 95.0
        usdt = on_kraken["positions"]["BTC/USDT"]
        assert (usdt["price"], usdt["market_value"]) == (120.0, 240.0)
        assert usdt["entry_price"] is None and usdt["unrealized_pnl"] is None
        assert on_kraken["unknown_entry"] == ["BTC/EUR", "BTC/USDT"]
        assert on_kraken["total_position_value"] == 240.0
        assert on_kraken["total_unrealized_pnl"] == 0.0
        assert on_kraken["complete"] is True
        on_binance = await cache.get_portfolio_summary(7, quote="EUR", exchange="binance")
        assert on_binance["unpriced"] == {"balances": ["BTC"], "positions": ["BTC/EUR"]}
        assert on_binance["positions"]["BTC/USDT"]["price"] == 100.0
