"""Every Redis key and channel the library uses, spelled in this one module.

Keys follow ``<namespace>:<type>:<identifier>[:<subidentifier>...]``. The first
identifier of a key is wrapped in a Redis Cluster hash tag (``{...}``) so that the keys
one operation touches together (an exchange's order queue and its processing list, a
lock and its fencing counter) live in the same slot.

Identifiers are escaped: every character outside ``A-Z a-z 0-9 _ . - ~ /`` is
percent-encoded, so a symbol such as ``BTC/USDT:USDT`` or an identifier holding
``*``, ``?``, ``[``, ``{`` or ``:`` can neither widen a SCAN pattern nor collide
with another key. The encoding is reversible (:func:`unescape`).

Example:
    >>> keys = Keys("fullon")
    >>> keys.tickers("binance")
    'fullon:tick:{binance}'
    >>> keys.order_queue("kraken")
    'fullon:order_queue:{kraken}'
    >>> escape("BTC/USDT:USDT")
    'BTC/USDT%3AUSDT'
    >>> escape("a*b")
    'a%2Ab'
"""

from __future__ import annotations

import enum
from functools import lru_cache
from urllib.parse import quote, unquote

__all__ = ["CacheKey", "Keys", "escape", "normalize_symbol", "unescape"]

_SAFE = "/~"


class CacheKey(enum.StrEnum):
    """The key types of the library: the second segment of every key.

    Example:
        >>> CacheKey.TICK.value
        'tick'
    """

    GLOBAL_ERRORS = "errors"
    PROCESS = "process"
    PROCESS_INDEX = "processes"
    EXCHANGE = "exchange"
    USER_EXCHANGES = "user_exchanges"
    CAT_EXCHANGES = "cat_exchanges"
    WS_ERRORS = "ws_errors"
    SYMBOLS = "symbols"
    SYMBOLS_BY_CAT = "symbols_cat"
    TICK = "tick"
    TICK_EXCHANGES = "tick_exchanges"
    TICK_CHANNEL = "tick_updates"
    BALANCES = "balances"
    POSITIONS = "positions"
    ACCOUNT_INDEX = "accounts"
    ORDER_QUEUE = "order_queue"
    ORDER_PROCESSING = "order_processing"
    ORDER_DEAD = "order_dead"
    ORDER_STATUS = "order_status"
    ORDER = "order"
    ORDER_INDEX = "orders"
    TRADES = "trades"
    TRADE_SEEN = "trade_seen"
    USER_TRADE_SEEN = "user_trade_seen"
    TRADE_PUSH = "trade_push"
    TRADE_DRAIN = "trade_drain"
    USER_TRADES = "user_trades"
    TRADE_STATUS = "trade_status"
    BLOCK = "block"
    OPENING = "opening"
    FENCE = "fence"
    BOT = "bot"
    OHLCV = "ohlcv"
    OHLCV_CHANNEL = "ohlcv_updates"
    MARKET_DATA = "market_data"
    STRATEGY_ORDERS = "strategy_orders"
    STRATEGY_POSITIONS = "strategy_positions"
    NEAR_CACHE_CHANNEL = "invalidate"
    READ_THROUGH = "read_through"


@lru_cache(maxsize=65536, typed=True)
def escape(identifier: str | int) -> str:
    """Escape one identifier for use inside a key.

    Raises TypeError for anything but str or int (bool included) and ValueError for
    an empty or blank string.

    Example:
        >>> escape(42)
        '42'
        >>> escape("weird key{1}")
        'weird%20key%7B1%7D'
    """
    if isinstance(identifier, bool) or not isinstance(identifier, (str, int)):
        raise TypeError(f"identifier must be str or int, got {type(identifier).__name__}")
    text = str(identifier)
    if not text.strip():
        raise ValueError("identifier must not be empty")
    return quote(text, safe=_SAFE)


def unescape(part: str) -> str:
    """Invert :func:`escape`.

    Example:
        >>> unescape(escape("BTC/USDT:USDT"))
        'BTC/USDT:USDT'
    """
    return unquote(part)


def normalize_symbol(symbol: str) -> str:
    """The storage form of a trading symbol: 'BTC/USDT' and 'BTCUSDT' name the same series.

    Example:
        >>> normalize_symbol("BTC/USDT")
        'BTCUSDT'
    """
    if not isinstance(symbol, str):
        raise TypeError(f"symbol must be str, got {type(symbol).__name__}")
    stripped = symbol.replace("/", "")
    if not stripped.strip():
        raise ValueError("symbol must not be empty")
    return stripped


class Keys:
    """Builds the keys of one namespace. Every cache holds one as ``self.keys``.

    Example:
        >>> Keys("test").block("binance", "BTC/USDT")
        'test:block:{binance}:BTC/USDT'
    """

    __slots__ = ("_prefix", "namespace")

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._prefix = namespace + ":"

    # -- generic ---------------------------------------------------------------------
    def key(self, kind: CacheKey, tag: str | int | None = None, *parts: str | int) -> str:
        """``<ns>:<kind>[:{tag}][:part...]`` with every identifier escaped.

        Example:
            >>> Keys("n").key(CacheKey.TRADES, "binance", "BTCUSDT")
            'n:trades:{binance}:BTCUSDT'
        """
        out = self._prefix + kind.value
        if tag is not None:
            out += ":{" + escape(tag) + "}"
        for part in parts:
            out += ":" + escape(part)
        return out

    def pattern(self, kind: CacheKey | None = None, tag: str | int | None = None) -> str:
        """A SCAN pattern for every key of this namespace, of a kind, or of a kind and tag.

        Example:
            >>> Keys("n").pattern(CacheKey.BLOCK)
            'n:block:*'
            >>> Keys("n").pattern()
            'n:*'
        """
        if kind is None:
            return self._prefix + "*"
        if tag is None:
            return f"{self._prefix}{kind.value}:*"
        return f"{self._prefix}{kind.value}:{{{escape(tag)}}}*"

    def user_pattern(self, pattern: str) -> str:
        """Scope a caller's glob pattern to this namespace (the caller's wildcards apply
        only inside it).

        Example:
            >>> Keys("n").user_pattern("tick:*")
            'n:tick:*'
        """
        if not isinstance(pattern, str):
            raise TypeError("pattern must be str")
        return self._prefix + pattern

    def relative(self, key: str | bytes) -> str:
        """The key without the namespace prefix.

        Example:
            >>> Keys("n").relative(b"n:tick:{x}")
            'tick:{x}'
        """
        text = key.decode() if isinstance(key, bytes) else key
        return text[len(self._prefix) :] if text.startswith(self._prefix) else text

    # -- base ------------------------------------------------------------------------
    def global_errors(self) -> str:
        """The bounded list of operator-facing critical errors."""
        return self.key(CacheKey.GLOBAL_ERRORS)

    def near_cache_channel(self) -> str:
        """Channel on which writers broadcast near-cache invalidations."""
        return self.key(CacheKey.NEAR_CACHE_CHANNEL)

    # -- processes -------------------------------------------------------------------
    def process(self, process_id: str) -> str:
        """One process record (hash)."""
        return self.key(CacheKey.PROCESS, process_id)

    def process_index(self) -> str:
        """Sorted set: process id scored by last heartbeat (epoch seconds)."""
        return self.key(CacheKey.PROCESS_INDEX)

    # -- exchanges and symbols -------------------------------------------------------
    def exchange(self, ex_id: str | int) -> str:
        """One user exchange (string, JSON)."""
        return self.key(CacheKey.EXCHANGE, ex_id)

    def user_exchanges(self, uid: str | int) -> str:
        """A user's exchanges (hash ex_id -> JSON Exchange; field "" marks a full load)."""
        return self.key(CacheKey.USER_EXCHANGES, uid)

    def cat_exchanges(self) -> str:
        """The catalog of exchanges (hash name -> JSON; field "" marks a full load)."""
        return self.key(CacheKey.CAT_EXCHANGES)

    def ws_errors(self, ex_id: str | int) -> str:
        """Websocket error queue of one exchange (list)."""
        return self.key(CacheKey.WS_ERRORS, ex_id)

    def symbols(self, exchange_name: str) -> str:
        """Symbols of an exchange by name (hash symbol -> JSON)."""
        return self.key(CacheKey.SYMBOLS, exchange_name)

    def symbols_by_cat(self, cat_ex_id: str | int) -> str:
        """Symbols of a catalog exchange by id (hash symbol -> JSON)."""
        return self.key(CacheKey.SYMBOLS_BY_CAT, cat_ex_id)

    def read_through_miss(self, kind: CacheKey, *parts: str | int) -> str:
        """Negative-cache marker: the source had no answer for this lookup."""
        return self.key(CacheKey.READ_THROUGH, kind.value, *parts)

    # -- tickers ---------------------------------------------------------------------
    def tickers(self, exchange: str) -> str:
        """Tickers of one exchange (hash symbol -> JSON Tick)."""
        return self.key(CacheKey.TICK, exchange)

    def tick_exchanges(self) -> str:
        """Set of exchanges that have tickers."""
        return self.key(CacheKey.TICK_EXCHANGES)

    def tick_channel(self, exchange: str, symbol: str) -> str:
        """Pub/sub channel of one exchange's symbol."""
        return self.key(CacheKey.TICK_CHANNEL, exchange, symbol)

    def tick_indexed(self, exchange: str) -> str:
        """Marker: the exchange is in :meth:`tick_exchanges` (same slot as its tickers)."""
        return self.key(CacheKey.TICK_EXCHANGES, exchange)

    def tick_channel_prefix(self, exchange: str) -> str:
        """What the channel of every symbol of one exchange starts with: a batch builds
        its channels as ``prefix + escape(symbol)``, one key build per exchange.

        Example:
            >>> keys = Keys("n")
            >>> keys.tick_channel_prefix("x") + escape("A/B:C") == keys.tick_channel("x", "A/B:C")
            True
        """
        return self.key(CacheKey.TICK_CHANNEL, exchange) + ":"

    def tick_channel_pattern(self, exchange: str) -> str:
        """PSUBSCRIBE pattern matching the channel of every symbol of one exchange."""
        return self.tick_channel_prefix(exchange) + "*"

    # -- accounts --------------------------------------------------------------------
    def balances(self, ex_id: str | int) -> str:
        """Balances of one account (hash currency -> JSON)."""
        return self.key(CacheKey.BALANCES, ex_id)

    def positions(self, ex_id: str | int) -> str:
        """Positions of one account (hash symbol -> JSON Position)."""
        return self.key(CacheKey.POSITIONS, ex_id)

    def account_index(self) -> str:
        """Set of exchange ids that have balances or positions."""
        return self.key(CacheKey.ACCOUNT_INDEX)

    # -- orders ----------------------------------------------------------------------
    def order_queue(self, exchange: str) -> str:
        """FIFO queue of open orders for an exchange (list)."""
        return self.key(CacheKey.ORDER_QUEUE, exchange)

    def order_processing(self, exchange: str) -> str:
        """Orders claimed by an executor and not yet acknowledged."""
        return self.key(CacheKey.ORDER_PROCESSING, exchange)

    def order_claims(self, exchange: str) -> str:
        """Hash: claimed entry id -> ``<deadline ms>:<consumer>`` (same slot as the queue)."""
        return self.key(CacheKey.ORDER_PROCESSING, exchange, "claims")

    def order_dead(self, exchange: str) -> str:
        """Dead-letter list: orders that failed too often."""
        return self.key(CacheKey.ORDER_DEAD, exchange)

    def order_status(self, order_id: str | int) -> str:
        """Status string of one order."""
        return self.key(CacheKey.ORDER_STATUS, order_id)

    def order(self, exchange: str, order_id: str | int) -> str:
        """One stored order (hash: field -> JSON value); cancelled ones carry their own TTL."""
        return self.key(CacheKey.ORDER, exchange, order_id)

    def order_index(self, exchange: str) -> str:
        """Sorted set of an exchange's order ids (score: expiry in ms, +inf while live)."""
        return self.key(CacheKey.ORDER_INDEX, exchange)

    # -- trades ----------------------------------------------------------------------
    def trades(self, exchange: str, symbol: str) -> str:
        """Trades of an exchange's symbol (list); the symbol is normalized."""
        return self.key(CacheKey.TRADES, exchange, normalize_symbol(symbol))

    def trade_seen(self, exchange: str, ex_trade_id: str | int, symbol: str | None = None) -> str:
        """Dedupe marker for one exchange trade id (string with TTL); same hash tag as
        :meth:`trades`. With ``symbol`` (normalized) the id is scoped to that symbol, for
        exchanges whose trade ids are unique per symbol only."""
        if symbol is None:
            return self.key(CacheKey.TRADE_SEEN, exchange, ex_trade_id)
        return self.key(CacheKey.TRADE_SEEN, exchange, normalize_symbol(symbol), ex_trade_id)

    def trade_push(self, tag: str | int, token: str) -> str:
        """Marker of one push call (string with a short TTL), so a push re-sent by a
        retry is recognised; ``tag`` is the exchange (trade lists) or the uid (user
        trade queues), the hash tag of the list pushed to."""
        return self.key(CacheKey.TRADE_PUSH, tag, token)

    def trade_drain(self, exchange: str, symbol: str, token: str) -> str:
        """The batch taken by one drain call (list with a short TTL), so a drain re-sent
        by a retry returns the same batch; same hash tag as :meth:`trades`."""
        return self.key(CacheKey.TRADE_DRAIN, exchange, normalize_symbol(symbol), token)

    def user_trades(self, uid: str | int, exchange: str) -> str:
        """A user's trades on one exchange (list)."""
        return self.key(CacheKey.USER_TRADES, uid, exchange)

    def user_trade_seen(
        self, uid: str | int, exchange: str, ex_trade_id: str | int, symbol: str | None = None
    ) -> str:
        """Dedupe marker for one user trade (string with TTL); same hash tag as
        :meth:`user_trades`."""
        if symbol is None:
            return self.key(CacheKey.USER_TRADE_SEEN, uid, exchange, ex_trade_id)
        return self.key(
            CacheKey.USER_TRADE_SEEN, uid, exchange, normalize_symbol(symbol), ex_trade_id
        )

    def trade_status(self, trade_key: str) -> str:
        """Last-update time of a trade stream (string, ISO UTC)."""
        return self.key(CacheKey.TRADE_STATUS, trade_key)

    def trade_status_pattern(self, prefix: str | None = None) -> str:
        """SCAN pattern for the trade status keys whose trade key starts with ``prefix``.

        Example:
            >>> Keys("n").trade_status_pattern("user:*")
            'n:trade_status:{user%3A%2A*'
        """
        if prefix is None:
            return self.pattern(CacheKey.TRADE_STATUS)
        return f"{self._prefix}{CacheKey.TRADE_STATUS.value}:{{{escape(prefix)}*"

    def trade_key_of(self, status_key: str | bytes) -> str:
        """The trade key a :meth:`trade_status` key was built from.

        Example:
            >>> keys = Keys("n")
            >>> keys.trade_key_of(keys.trade_status("user:1"))
            'user:1'
        """
        tag = self.relative(status_key)[len(CacheKey.TRADE_STATUS.value) + 2 : -1]
        return unescape(tag)

    # -- bots ------------------------------------------------------------------------
    def block(self, ex_id: str | int, symbol: str) -> str:
        """Lock on an exchange's symbol (string holding the owner, with a lease)."""
        return self.key(CacheKey.BLOCK, ex_id, symbol)

    def opening(self, ex_id: str | int, symbol: str) -> str:
        """Opening-position mark on an exchange's symbol (string with a lease)."""
        return self.key(CacheKey.OPENING, ex_id, symbol)

    def fence(self, ex_id: str | int, symbol: str) -> str:
        """Fencing counter of an exchange's symbol (grows with every new holder)."""
        return self.key(CacheKey.FENCE, ex_id, symbol)

    def bot(self, bot_id: str | int) -> str:
        """Status of one bot (string, JSON)."""
        return self.key(CacheKey.BOT, bot_id)

    # -- OHLCV -----------------------------------------------------------------------
    def ohlcv(self, symbol: str, timeframe: str, exchange: str | None = None) -> str:
        """Bars of one series (sorted set scored by timestamp); symbol normalized.

        The hash tag is the symbol, so series spread over the cluster's slots.
        """
        return self._series(CacheKey.OHLCV, symbol, timeframe, exchange)

    def ohlcv_channel(self, symbol: str, timeframe: str, exchange: str | None = None) -> str:
        """Pub/sub channel announcing new bars of one series."""
        return self._series(CacheKey.OHLCV_CHANNEL, symbol, timeframe, exchange)

    def _series(self, kind: CacheKey, symbol: str, timeframe: str, exchange: str | None) -> str:
        parts: tuple[str, ...] = (timeframe,) if exchange is None else (timeframe, exchange)
        return self.key(kind, normalize_symbol(symbol), *parts)

    # -- AsyncCache / RedisCache -----------------------------------------------------
    def market_data(self, symbol: str) -> str:
        """Free-form market data of one symbol (RedisCache)."""
        return self.key(CacheKey.MARKET_DATA, symbol)

    def strategy_orders(self, strategy_id: str | int, user_id: str | int) -> str:
        """Orders of one strategy and user (hash order_id -> JSON Order)."""
        return self.key(CacheKey.STRATEGY_ORDERS, f"{strategy_id}", user_id)

    def strategy_positions(self, strategy_id: str | int, user_id: str | int) -> str:
        """Positions of one strategy and user (hash symbol -> JSON Position)."""
        return self.key(CacheKey.STRATEGY_POSITIONS, f"{strategy_id}", user_id)
