"""The data models the caches take and return, with fullon_orm's field names.

Every model is a :class:`msgspec.Struct`: keyword construction (unknown keywords are a
TypeError), ``to_dict()``, ``from_dict()`` (unknown keys ignored, types validated), and
a JSON form produced by :mod:`fullon_cache.codec`. Datetimes always leave the library
timezone-aware UTC; a float epoch is accepted wherever a datetime is.

Example:
    >>> tick = Tick(symbol="BTC/USDT", exchange="binance", price=50000.0, bid=49999.0, ask=50001.0)
    >>> tick.spread
    2.0
    >>> Tick.from_dict({**tick.to_dict(), "unknown": 1}) == tick
    True
"""

from __future__ import annotations

import math
import time as _time
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import msgspec

__all__ = [
    "Balance",
    "Bot",
    "CatExchange",
    "Exchange",
    "Model",
    "Order",
    "Position",
    "Symbol",
    "Tick",
    "Trade",
    "to_utc",
]

Number = int | float


def to_utc(value: datetime | Number) -> datetime:
    """A timezone-aware UTC datetime from a datetime (naive means UTC) or epoch seconds.

    Example:
        >>> to_utc(0).isoformat()
        '1970-01-01T00:00:00+00:00'
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a datetime or epoch seconds, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError("timestamp must be finite")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"timestamp {value!r} is out of range") from exc


def _text(model: str, name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{model}.{name} must be str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{model}.{name} must not be empty")


def _number(model: str, name: str, value: object, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{model}.{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{model}.{name} must be finite, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{model}.{name} must be >= {minimum}, got {value!r}")
    return float(value)


def _optional_numbers(model: Model, names: tuple[str, ...]) -> None:
    label = type(model).__name__
    for name in names:
        value = getattr(model, name)
        if value is not None:
            setattr(model, name, _number(label, name, value))


class Model(msgspec.Struct, kw_only=True):
    """Base of every model: ``to_dict``/``from_dict`` and validation on construction.

    Example:
        >>> Balance(total=1.0).to_dict()
        {'total': 1.0, 'free': 0.0, 'used': 0.0}
    """

    _numbers: ClassVar[tuple[str, ...]] = ()
    _as_text: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        _optional_numbers(self, self._numbers)

    def to_dict(self) -> dict[str, Any]:
        """The model as a plain dict (datetimes stay datetimes).

        Example:
            >>> Bot(bot_id=1).to_dict()["bot_id"]
            1
        """
        return msgspec.structs.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Build a model from a mapping; unknown keys are ignored, bad types raise.

        Example:
            >>> Balance.from_dict({"total": 2, "free": 1, "used": 1, "extra": 0}).total
            2.0
        """
        from fullon_cache.codec import convert  # late import: codec imports models

        if cls._as_text and isinstance(data, dict):
            data = {
                k: str(v) if k in cls._as_text and isinstance(v, int) else v
                for k, v in data.items()
            }
        return convert(data, cls)


class Tick(Model):
    """A ticker: the latest price of a symbol on an exchange.

    Example:
        >>> Tick(symbol="ETH/USDT", exchange="kraken", price=3000).price
        3000.0
    """

    symbol: str
    exchange: str
    price: float
    volume: float = 0.0
    time: float | None = None
    bid: float | None = None
    ask: float | None = None
    last: float | None = None
    change: float | None = None
    percentage: float | None = None

    _numbers: ClassVar[tuple[str, ...]] = ("bid", "ask", "last", "change", "percentage")

    def __post_init__(self) -> None:
        _text("Tick", "symbol", self.symbol)
        _text("Tick", "exchange", self.exchange)
        self.price = _number("Tick", "price", self.price, minimum=0)
        self.volume = _number("Tick", "volume", self.volume)
        self.time = _time.time() if self.time is None else _number("Tick", "time", self.time)
        super().__post_init__()

    @property
    def spread(self) -> float | None:
        """ask - bid, or None when either is unknown."""
        if self.bid is None or self.ask is None:
            return None
        return self.ask - self.bid

    @property
    def spread_percentage(self) -> float | None:
        """The spread as a percentage of the bid, or None when unknown."""
        spread = self.spread
        if spread is None or not self.bid:
            return None
        return spread / self.bid * 100.0


class Symbol(Model):
    """A tradable symbol of a catalog exchange.

    Example:
        >>> Symbol(symbol="BTC/USDT", cat_ex_id=1, base="BTC", quote="USDT").decimals
        8
    """

    symbol: str
    symbol_id: int | None = None
    cat_ex_id: int | None = None
    base: str = ""
    quote: str = ""
    updateframe: str = "1h"
    backtest: int = 30
    decimals: int = 8
    futures: bool = False
    only_ticker: bool = False
    exchange_name: str | None = None

    def __post_init__(self) -> None:
        _text("Symbol", "symbol", self.symbol)
        if isinstance(self.decimals, bool) or not isinstance(self.decimals, int):
            raise TypeError("Symbol.decimals must be int")
        if not 0 <= self.decimals <= 18:
            raise ValueError("Symbol.decimals must be between 0 and 18")


class CatExchange(Model):
    """An exchange of the catalog (binance, kraken, ...).

    Example:
        >>> CatExchange(cat_ex_id=1, name="binance").name
        'binance'
    """

    name: str
    cat_ex_id: int | None = None
    ohlcv_view: str = ""

    def __post_init__(self) -> None:
        _text("CatExchange", "name", self.name)


class Exchange(Model):
    """A user's account on a catalog exchange.

    Example:
        >>> Exchange(ex_id=7, uid=1, cat_ex_id=1, name="main").active
        True
    """

    name: str
    ex_id: int | None = None
    uid: int | None = None
    cat_ex_id: int | None = None
    test: bool = False
    active: bool = True

    def __post_init__(self) -> None:
        _text("Exchange", "name", self.name)


class Order(Model):
    """An order, as queued for executors and tracked while it lives.

    Example:
        >>> Order(order_id=1, symbol="BTC/USDT", side="buy", volume=0.1).status is None
        True
    """

    order_id: int | str | None = None
    ex_order_id: str | None = None
    bot_id: int | str | None = None
    uid: int | str | None = None
    ex_id: int | str | None = None
    cat_ex_id: int | None = None
    exchange: str | None = None
    symbol: str | None = None
    order_type: str | None = None
    side: str | None = None
    volume: float | None = None
    final_volume: float | None = None
    price: float | None = None
    plimit: float | None = None
    tick: float | None = None
    futures: bool | None = None
    leverage: float | None = None
    status: str | None = None
    command: str | None = None
    reason: str | None = None
    timestamp: datetime | float | None = None

    _numbers: ClassVar[tuple[str, ...]] = (
        "volume",
        "final_volume",
        "price",
        "plimit",
        "tick",
        "leverage",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.timestamp is not None:
            self.timestamp = to_utc(self.timestamp)


class Trade(Model):
    """An executed trade.

    Example:
        >>> Trade(symbol="BTC/USDT", side="buy", volume=1, price=10, time=0).time.year
        1970
    """

    trade_id: int | str | None = None
    ex_trade_id: str | None = None
    ex_order_id: str | None = None
    uid: int | str | None = None
    ex_id: int | str | None = None
    symbol: str | None = None
    order_type: str | None = None
    side: str | None = None
    volume: float | None = None
    price: float | None = None
    cost: float | None = None
    fee: float | None = None
    cur_volume: float | None = None
    cur_avg_price: float | None = None
    cur_avg_cost: float | None = None
    cur_fee: float | None = None
    roi: float | None = None
    roi_pct: float | None = None
    total_fee: float | None = None
    leverage: float | None = None
    time: datetime | float | None = None

    _numbers: ClassVar[tuple[str, ...]] = (
        "volume",
        "price",
        "cost",
        "fee",
        "cur_volume",
        "cur_avg_price",
        "cur_avg_cost",
        "cur_fee",
        "roi",
        "roi_pct",
        "total_fee",
        "leverage",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.time is not None:
            self.time = to_utc(self.time)


class Position(Model):
    """An open position of an account in one symbol.

    Example:
        >>> Position(symbol="BTC/USDT", ex_id=2000, volume=0.5).ex_id
        '2000'
    """

    symbol: str
    ex_id: str
    cost: float = 0.0
    volume: float = 0.0
    fee: float = 0.0
    count: float = 0.0
    price: float = 0.0
    timestamp: float | None = None
    side: str | None = None
    realized_pnl: float = 0.0
    unrealized_pnl: float = 0.0

    _numbers: ClassVar[tuple[str, ...]] = (
        "cost",
        "volume",
        "fee",
        "count",
        "price",
        "realized_pnl",
        "unrealized_pnl",
    )
    _as_text: ClassVar[tuple[str, ...]] = ("ex_id",)

    def __post_init__(self) -> None:
        _text("Position", "symbol", self.symbol)
        if isinstance(self.ex_id, int) and not isinstance(self.ex_id, bool):
            self.ex_id = str(self.ex_id)
        _text("Position", "ex_id", self.ex_id)
        super().__post_init__()
        if self.timestamp is None:
            self.timestamp = _time.time()
        if isinstance(self.timestamp, datetime):
            self.timestamp = to_utc(self.timestamp).timestamp()
        self.timestamp = _number("Position", "timestamp", self.timestamp)
        if self.side is not None and self.side not in ("long", "short"):
            raise ValueError("Position.side must be 'long', 'short' or None")


class Balance(Model):
    """The balance of one currency in an account.

    Example:
        >>> Balance(total=1.5, free=1.2, used=0.3).free
        1.2
    """

    total: float = 0.0
    free: float = 0.0
    used: float = 0.0

    _numbers: ClassVar[tuple[str, ...]] = ("total", "free", "used")


class Bot(Model):
    """A trading bot.

    Example:
        >>> Bot(bot_id=3, name="grid").dry_run
        True
    """

    bot_id: int | str | None = None
    uid: int | str | None = None
    name: str = ""
    active: bool = True
    dry_run: bool = True
