"""Position arithmetic: how one fill changes a position. Pure functions, no Redis.

A position is held as a side (``'long'``/``'short'``, None when flat), an absolute
``volume``, an average entry ``price`` and the ``cost`` of the open volume at that price
(``volume * price``). A fill is a side (``'buy'``/``'sell'``), a volume > 0, a price > 0
and an optional fee:

* a fill on the position's side (or on a flat position) adds to it; the entry price
  becomes the volume-weighted average of the old entry price and the fill price;
* a fill against the position reduces it at the unchanged entry price and realizes
  ``closed_volume * (fill_price - entry_price)`` for a long (the opposite for a short);
* a fill larger than the position closes it and opens the remainder on the other side
  at the fill price (a flip);
* ``realized_pnl`` accumulates over the life of the record, flips and closes included,
  and is gross of fees; ``fee`` accumulates every fee paid (a negative fee is a rebate),
  so the net result is ``realized_pnl - fee``; ``count`` is the number of fills applied;
* a remainder smaller than :data:`VOLUME_DUST` after a reduction is float noise
  (``0.1 + 0.2 - 0.3``), and the position is flat.

``unrealized_pnl`` needs a market price and is left as it is.

Example:
    >>> p = apply_fill(None, symbol="BTC/USDT", ex_id="1", side="buy", volume=2, price=100)
    >>> p = apply_fill(p, symbol="BTC/USDT", ex_id="1", side="sell", volume=3, price=110)
    >>> p.side, p.volume, p.price, p.realized_pnl
    ('short', 1.0, 110.0, 20.0)
"""

from __future__ import annotations

import math
import time

import msgspec

from fullon_cache.models import Position

__all__ = ["FILL_SIDES", "VOLUME_DUST", "apply_fill", "signed_volume"]

FILL_SIDES: dict[str, float] = {"buy": 1.0, "sell": -1.0}
"""The fill sides and the sign they give to a volume."""

VOLUME_DUST = 1e-9
"""A reduction leaving less than this volume leaves a flat position."""


def signed_volume(position: Position | None) -> float:
    """The position's volume, negative for a short, 0.0 for None or flat.

    Example:
        >>> signed_volume(Position(symbol="ETH/USDT", ex_id="1", volume=2, side="short"))
        -2.0
    """
    if position is None or position.side is None:
        return 0.0
    return position.volume if position.side == "long" else -position.volume


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def apply_fill(
    position: Position | None,
    *,
    symbol: str,
    ex_id: str,
    side: str,
    volume: float,
    price: float,
    fee: float = 0.0,
    timestamp: float | None = None,
) -> Position:
    """The position after one fill; ``position`` (None = no position yet) is not changed.

    Raises ValueError for a side other than buy/sell (any case), a volume or price that
    is not > 0, a non-finite fee, or a position of another symbol; TypeError for
    non-numbers.

    Example:
        >>> p = apply_fill(None, symbol="ETH/USDT", ex_id="2", side="sell", volume=1,
        ...                price=50, fee=0.1)
        >>> p = apply_fill(p, symbol="ETH/USDT", ex_id="2", side="BUY", volume=1, price=40)
        >>> p.side, p.volume, p.realized_pnl, p.fee, p.count
        (None, 0.0, 10.0, 0.1, 2.0)
    """
    if not isinstance(side, str) or side.lower() not in FILL_SIDES:
        raise ValueError(f"fill side must be 'buy' or 'sell', got {side!r}")
    qty = _finite("volume", volume)
    fill_price = _finite("price", price)
    if qty <= 0 or fill_price <= 0:
        raise ValueError(f"fill volume and price must be > 0, got {volume!r} at {price!r}")
    paid = _finite("fee", fee)
    if position is not None and position.symbol != symbol:
        raise ValueError(f"position of {position.symbol!r} cannot take a fill of {symbol!r}")

    held = signed_volume(position)
    entry = position.price if position is not None and held else 0.0
    delta = FILL_SIDES[side.lower()] * qty
    realized = 0.0
    if held == 0.0 or (held > 0) == (delta > 0):
        new = held + delta
        new_price = (abs(held) * entry + qty * fill_price) / abs(new)
    else:
        closed = min(abs(held), qty)
        realized = closed * (fill_price - entry) * (1.0 if held > 0 else -1.0)
        new = held + delta
        if abs(new) < VOLUME_DUST:
            new, new_price = 0.0, 0.0
        elif abs(delta) > abs(held):
            new_price = fill_price
        else:
            new_price = entry

    base = position or Position(symbol=symbol, ex_id=ex_id)
    return msgspec.structs.replace(
        base,
        ex_id=ex_id,
        side=None if new == 0.0 else ("long" if new > 0 else "short"),
        volume=abs(new),
        price=new_price,
        cost=abs(new) * new_price,
        fee=base.fee + paid,
        count=base.count + 1,
        realized_pnl=base.realized_pnl + realized,
        timestamp=time.time() if timestamp is None else timestamp,
    )
