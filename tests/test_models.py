from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fullon_cache.codec import as_model, convert, decode, decode_all, decode_any, encode
from fullon_cache.exceptions import CacheDataError
from fullon_cache.models import (
    Balance,
    Bot,
    CatExchange,
    Exchange,
    Model,
    Order,
    Position,
    Symbol,
    Tick,
    Trade,
    to_utc,
)

MODELS: list[type[Model]] = [
    Tick,
    Symbol,
    CatExchange,
    Exchange,
    Order,
    Trade,
    Position,
    Balance,
    Bot,
]

texts = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")
finite = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e15, max_value=1e15)
utc_times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)

OVERRIDES: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("Tick", "price"): st.floats(min_value=0, max_value=1e12, allow_nan=False),
    ("Tick", "time"): st.floats(min_value=0, max_value=4e9),
    ("Position", "timestamp"): st.floats(min_value=0, max_value=4e9),
    ("Position", "side"): st.sampled_from([None, "long", "short"]),
    ("Symbol", "decimals"): st.integers(0, 18),
    ("Order", "timestamp"): st.one_of(st.none(), utc_times, st.floats(0, 4e9)),
    ("Trade", "time"): st.one_of(st.none(), utc_times, st.floats(0, 4e9)),
}


def _strategy(t: msgspec.inspect.Type) -> st.SearchStrategy[Any]:
    if isinstance(t, msgspec.inspect.UnionType):
        return st.one_of(*[_strategy(x) for x in t.types])
    simple: dict[type[msgspec.inspect.Type], st.SearchStrategy[Any]] = {
        msgspec.inspect.StrType: texts,
        msgspec.inspect.FloatType: finite,
        msgspec.inspect.IntType: st.integers(-(2**53), 2**53),
        msgspec.inspect.BoolType: st.booleans(),
        msgspec.inspect.NoneType: st.none(),
        msgspec.inspect.DateTimeType: utc_times,
    }
    return simple[type(t)]


def model_strategy(model: type[Model]) -> st.SearchStrategy[Model]:
    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType)
    fields = {
        f.name: OVERRIDES.get((model.__name__, f.name), _strategy(f.type)) for f in info.fields
    }
    return st.fixed_dictionaries(fields).map(lambda kw: model(**kw))


any_model = st.one_of(*[model_strategy(m) for m in MODELS])


@given(any_model)
def test_every_valid_model_survives_encode_decode_unchanged(model: Model) -> None:
    assert decode(encode(model), type(model)) == model
    assert type(model).from_dict(model.to_dict()) == model
    assert as_model(model.to_dict(), type(model)) == model


@given(any_model)
def test_datetimes_leave_the_library_in_utc(model: Model) -> None:
    for value in model.to_dict().values():
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("model", "kwargs", "error"),
    [
        (Tick, {"symbol": "A", "exchange": "b", "price": -1.0}, ValueError),
        (Tick, {"symbol": "A", "exchange": "b", "price": math.nan}, ValueError),
        (Tick, {"symbol": "A", "exchange": "b", "price": math.inf}, ValueError),
        (Tick, {"symbol": "", "exchange": "b", "price": 1.0}, ValueError),
        (Tick, {"symbol": "A", "exchange": 3, "price": 1.0}, TypeError),
        (Tick, {"symbol": "A", "exchange": "b", "price": "1"}, TypeError),
        (Tick, {"symbol": "A", "exchange": "b", "price": True}, TypeError),
        (Tick, {"symbol": "A", "exchange": "b", "price": 1.0, "bid": "x"}, TypeError),
        (Tick, {"symbol": "A", "exchange": "b", "price": 1.0, "nope": 1}, TypeError),
        (Symbol, {"symbol": "A", "decimals": 40}, ValueError),
        (Symbol, {"symbol": "A", "decimals": 1.5}, TypeError),
        (Position, {"symbol": "A", "ex_id": "1", "side": "flat"}, ValueError),
        (Position, {"symbol": "A", "ex_id": ""}, ValueError),
        (Position, {"symbol": "A"}, TypeError),
        (Order, {"timestamp": "yesterday"}, TypeError),
        (Trade, {"time": math.nan}, ValueError),
        (CatExchange, {"name": " "}, ValueError),
        (Exchange, {"name": None}, TypeError),
    ],
)
def test_invalid_models_raise(
    model: type[Model], kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        model(**kwargs)


@pytest.mark.parametrize(
    ("model", "data", "error"),
    [
        (Tick, {"symbol": "A", "exchange": "b", "price": -1}, ValueError),
        (Tick, {"symbol": "A", "exchange": "b", "price": "abc"}, TypeError),
        (Tick, {"exchange": "b", "price": 1}, ValueError),
        (Tick, ["not", "a", "mapping"], TypeError),
    ],
)
def test_invalid_dicts_raise(model: type[Model], data: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        model.from_dict(data)


def test_from_dict_ignores_unknown_keys_and_accepts_orm_shapes() -> None:
    pos = Position.from_dict({"symbol": "BTC/USDT", "ex_id": 2000, "size": 3})
    assert pos.ex_id == "2000"
    order = Order.from_dict({"order_id": 1, "timestamp": "2024-01-01T00:00:00", "junk": 1})
    assert order.timestamp == datetime(2024, 1, 1, tzinfo=UTC)


def test_time_fields_normalize_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    trade = Trade(time=datetime(2024, 1, 1, 2, tzinfo=plus2))
    assert trade.time == datetime(2024, 1, 1, tzinfo=UTC) and trade.time.tzinfo is UTC
    assert Trade(time=datetime(2024, 1, 1)).time == datetime(2024, 1, 1, tzinfo=UTC)
    assert (
        Position(symbol="a", ex_id="1", timestamp=datetime(1970, 1, 2, tzinfo=UTC)).timestamp
        == 86400
    )
    assert to_utc(86400).day == 2
    with pytest.raises(TypeError):
        to_utc("2024")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        to_utc(math.inf)
    with pytest.raises(ValueError, match="range"):
        to_utc(1e20)


def test_tick_derived_fields_and_defaults() -> None:
    tick = Tick(symbol="A", exchange="b", price=10, bid=100.0, ask=101.0)
    assert tick.spread == 1.0 and tick.spread_percentage == 1.0
    assert isinstance(tick.time, float) and tick.time > 1.6e9
    assert Tick(symbol="A", exchange="b", price=1).spread is None
    assert Tick(symbol="A", exchange="b", price=1, bid=0.0, ask=1.0).spread_percentage is None
    assert Tick(symbol="A", exchange="b", price=1, bid=1.0).spread_percentage is None


class OrmLike:
    def to_dict(self) -> dict[str, Any]:
        return {"total": 2.5, "free": 2.0, "used": 0.5, "id": 1}


def test_as_model_accepts_models_objects_with_to_dict_and_mappings() -> None:
    b = Balance(total=1)
    assert as_model(b, Balance) is b
    assert as_model(OrmLike(), Balance) == Balance(total=2.5, free=2.0, used=0.5)
    with pytest.raises(TypeError, match="Balance"):
        as_model(42, Balance)


def test_codec_errors() -> None:
    with pytest.raises(CacheDataError):
        decode(b"{not json", Tick)
    with pytest.raises(CacheDataError):
        decode_any(b"{")
    with pytest.raises(CacheDataError, match="stored list does not decode"):
        decode_all([b"[1.0]", b"[oops]"], list[float])
    with pytest.raises(TypeError, match="cannot encode"):
        encode(object())
    with pytest.raises(TypeError):
        convert(3, Balance)


def test_position_accepts_an_integer_exchange_id() -> None:
    assert Position(symbol="A", ex_id=7).ex_id == "7"  # type: ignore[arg-type]
