from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fullon_cache.keys import CacheKey, Keys, escape, normalize_symbol, unescape

keys = Keys("ns")
identifiers = st.text(min_size=1).filter(lambda s: s.strip() != "")


@given(identifiers)
def test_escape_round_trips_and_never_carries_pattern_or_separator_characters(ident: str) -> None:
    escaped = escape(ident)
    assert unescape(escaped) == ident
    assert not set(escaped) & set("*?[]\\:{} \n")


@given(identifiers, identifiers)
def test_distinct_identifiers_never_share_a_key(a: str, b: str) -> None:
    if a != b:
        assert keys.block(a, "X") != keys.block(b, "X")
        assert keys.block("X", a) != keys.block("X", b)


@given(identifiers)
def test_an_identifier_never_widens_a_pattern(ident: str) -> None:
    pattern = keys.pattern(CacheKey.TICK, ident)
    assert fnmatch.fnmatchcase(keys.tickers(ident), pattern)
    assert not fnmatch.fnmatchcase(keys.tickers(ident + "x"), pattern.replace("}*", "}"))
    assert (
        not fnmatch.fnmatchcase(keys.tickers("other-exchange"), pattern)
        or ident == "other-exchange"
    )


def test_hostile_identifiers_stay_inside_their_key() -> None:
    assert keys.tickers("*") == "ns:tick:{%2A}"
    assert keys.tickers("a:b") == "ns:tick:{a%3Ab}"
    assert keys.order("bin}ance", "1") == "ns:order:{bin%7Dance}:1"


@pytest.mark.parametrize("bad", [None, 1.5, True, b"x", ["a"]])
def test_non_identifiers_are_type_errors(bad: object) -> None:
    with pytest.raises(TypeError):
        escape(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_identifiers_are_value_errors(bad: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        escape(bad)


def test_key_shapes() -> None:
    assert keys.key(CacheKey.GLOBAL_ERRORS) == "ns:errors"
    assert keys.pattern() == "ns:*"
    assert keys.pattern(CacheKey.BLOCK) == "ns:block:*"
    assert keys.user_pattern("tick:*") == "ns:tick:*"
    assert keys.relative(b"ns:tick:{a}") == "tick:{a}"
    assert keys.relative("other:tick") == "other:tick"
    assert keys.trades("binance", "BTC/USDT") == keys.trades("binance", "BTCUSDT")
    assert keys.ohlcv("BTC/USDT", "1m") == "ns:ohlcv:{BTCUSDT}:1m"
    assert keys.ohlcv("BTC/USDT", "1m", "kraken") == "ns:ohlcv:{BTCUSDT}:1m:kraken"
    assert keys.ohlcv_channel("BTCUSDT", "1h") == "ns:ohlcv_updates:{BTCUSDT}:1h"
    with pytest.raises(TypeError):
        keys.user_pattern(1)  # type: ignore[arg-type]


def test_keys_one_operation_touches_share_a_hash_tag() -> None:
    def tag(key: str) -> str:
        return key[key.index("{") : key.index("}") + 1]

    assert (
        tag(keys.order_queue("bx"))
        == tag(keys.order_processing("bx"))
        == tag(keys.order_dead("bx"))
    )
    assert tag(keys.order("bx", 1)) == tag(keys.order_index("bx"))
    assert tag(keys.block("1", "S")) == tag(keys.fence("1", "S"))
    assert tag(keys.strategy_orders("s", "u")) == tag(keys.strategy_positions("s", "u"))


def test_every_builder_is_namespaced() -> None:
    builders = [
        keys.global_errors(),
        keys.near_cache_channel(),
        keys.process("p"),
        keys.process_index(),
        keys.exchange(1),
        keys.user_exchanges(1),
        keys.cat_exchanges(),
        keys.ws_errors(1),
        keys.symbols("b"),
        keys.symbols_by_cat(1),
        keys.read_through_miss(CacheKey.SYMBOLS, "b"),
        keys.tickers("b"),
        keys.tick_exchanges(),
        keys.tick_channel("b", "s"),
        keys.balances(1),
        keys.positions(1),
        keys.account_index(),
        keys.order_status(1),
        keys.trade_seen("b", "t"),
        keys.user_trades(1, "b"),
        keys.trade_status("k"),
        keys.opening(1, "s"),
        keys.bot(1),
        keys.market_data("s"),
    ]
    assert all(k.startswith("ns:") for k in builders)
    assert len(set(builders)) == len(builders)


def test_normalize_symbol() -> None:
    assert normalize_symbol("BTC/USDT:USDT") == "BTCUSDT:USDT"
    with pytest.raises(TypeError):
        normalize_symbol(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        normalize_symbol("/")


def test_escape_cache_keeps_bools_apart_from_ints() -> None:
    assert escape(1) == "1"
    with pytest.raises(TypeError):
        escape(True)  # type: ignore[arg-type]


def test_user_trade_seen_with_and_without_symbol_share_the_user_tag() -> None:
    plain = keys.user_trade_seen(7, "binance", "t1")
    scoped = keys.user_trade_seen(7, "binance", "t1", "BTC/USDT")
    assert plain != scoped
    assert (
        plain.split(":")[2] == scoped.split(":")[2] == keys.user_trades(7, "binance").split(":")[2]
    )
