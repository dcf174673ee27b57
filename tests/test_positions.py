from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fullon_cache.models import Position
from fullon_cache.positions import VOLUME_DUST, apply_fill, signed_volume

Fill = tuple[str, Decimal, Decimal, Decimal]

# volumes 0.001 .. 100, prices 0.01 .. 10000, fees 0 .. 1: exact decimals, so the
# reference below is exact and a flat position is exactly flat.
FILLS = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 100_000).map(lambda n: Decimal(n) / 1000),
        st.integers(1, 1_000_000).map(lambda n: Decimal(n) / 100),
        st.integers(0, 1000).map(lambda n: Decimal(n) / 1000),
    ),
    min_size=1,
    max_size=30,
)


def reference(fills: list[Fill]) -> dict[str, Any]:
    """Textbook average-cost bookkeeping, exact, written apart from the library."""
    qty = Decimal(0)  # signed: > 0 long, < 0 short
    avg = Decimal(0)
    realized = Decimal(0)
    fees = Decimal(0)
    for side, volume, price, fee in fills:
        fees += fee
        change = volume if side == "buy" else -volume
        if qty == 0 or (qty > 0) == (change > 0):
            avg = (abs(qty) * avg + volume * price) / (abs(qty) + volume)
            qty += change
            continue
        closing = min(abs(qty), volume)
        realized += closing * (price - avg) if qty > 0 else closing * (avg - price)
        left_over = volume - closing
        qty += change
        if qty == 0:
            avg = Decimal(0)
        elif left_over > 0:
            avg = price  # flipped: the rest opened at the fill price
    return {
        "side": None if qty == 0 else ("long" if qty > 0 else "short"),
        "volume": abs(qty),
        "price": avg,
        "cost": abs(qty) * avg,
        "realized_pnl": realized,
        "fee": fees,
        "count": len(fills),
    }


def assert_matches(position: Position, expected: dict[str, Any]) -> None:
    assert position.side == expected["side"]
    assert position.count == expected["count"]
    for name in ("volume", "price", "cost", "realized_pnl", "fee"):
        want = float(expected[name])
        got = getattr(position, name)
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-6), (name, got, want)


@settings(max_examples=400, deadline=None)
@given(FILLS)
def test_random_fills_match_the_reference(fills: list[Fill]) -> None:
    position = None
    for side, volume, price, fee in fills:
        position = apply_fill(
            position,
            symbol="BTC/USDT",
            ex_id="1",
            side=side,
            volume=float(volume),
            price=float(price),
            fee=float(fee),
        )
    assert position is not None
    assert_matches(position, reference(fills))


def fill(position: Position | None, side: str, volume: float, price: float, **kw: Any) -> Position:
    return apply_fill(
        position, symbol="ETH/USDT", ex_id="7", side=side, volume=volume, price=price, **kw
    )


def test_long_lifecycle_average_reduce_close_and_reopen() -> None:
    p = fill(None, "buy", 1, 100, fee=0.1, timestamp=5.0)
    assert (p.side, p.volume, p.price, p.cost, p.count, p.timestamp) == (
        "long",
        1,
        100,
        100,
        1,
        5.0,
    )
    p = fill(p, "buy", 3, 200)
    assert (p.volume, p.price, p.cost) == (4, 175, 700)
    p = fill(p, "sell", 1, 195)
    assert (p.side, p.volume, p.price, p.realized_pnl) == ("long", 3, 175, 20)
    p = fill(p, "sell", 3, 165, fee=0.2)
    assert (p.side, p.volume, p.price, p.cost, p.realized_pnl) == (None, 0, 0, 0, -10)
    assert math.isclose(p.fee, 0.3)
    p = fill(p, "sell", 2, 50)
    assert (p.side, p.volume, p.price, p.realized_pnl, p.count) == ("short", 2, 50, -10, 5)


def test_short_gains_when_price_falls_and_flips_long() -> None:
    p = fill(None, "SELL", 2, 100)
    assert signed_volume(p) == -2
    p = fill(p, "buy", 5, 80)
    assert (p.side, p.volume, p.price, p.realized_pnl) == ("long", 3, 80, 40)
    assert signed_volume(p) == 3
    assert signed_volume(None) == 0


def test_float_dust_after_a_reduction_is_flat() -> None:
    p = fill(fill(None, "buy", 0.1, 10), "buy", 0.2, 10)
    p = fill(p, "sell", 0.3, 10)
    assert (p.side, p.volume, p.price) == (None, 0.0, 0.0)
    assert VOLUME_DUST < 1e-8  # below one satoshi


def test_input_position_is_not_changed() -> None:
    before = fill(None, "buy", 1, 10)
    snapshot = before.to_dict()
    after = fill(before, "sell", 1, 20)
    assert before.to_dict() == snapshot
    assert after.realized_pnl == 10


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"side": "long"}, ValueError),
        ({"side": None}, ValueError),
        ({"volume": 0}, ValueError),
        ({"volume": -1}, ValueError),
        ({"price": 0}, ValueError),
        ({"volume": math.nan}, ValueError),
        ({"price": math.inf}, ValueError),
        ({"fee": math.nan}, ValueError),
        ({"volume": "1"}, TypeError),
        ({"price": True}, TypeError),
        ({"fee": None}, TypeError),
    ],
)
def test_bad_fills_raise(kwargs: dict[str, Any], error: type[Exception]) -> None:
    args: dict[str, Any] = {"side": "buy", "volume": 1.0, "price": 1.0, **kwargs}
    with pytest.raises(error):
        apply_fill(None, symbol="ETH/USDT", ex_id="7", **args)


def test_position_of_another_symbol_is_refused() -> None:
    other = Position(symbol="BTC/USDT", ex_id="7", volume=1, side="long", price=1)
    with pytest.raises(ValueError, match="BTC/USDT"):
        fill(other, "buy", 1, 1)
