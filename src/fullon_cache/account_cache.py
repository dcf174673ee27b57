"""AccountCache: balances and positions of each exchange account, and a portfolio
summary priced from :class:`~fullon_cache.tick_cache.TickCache`.

Storage (every key from :mod:`fullon_cache.keys`; an account is a user's exchange,
named by its ``exchange_id``, int or str, stored as text):

* ``balances:{<exchange_id>}`` — hash, field = currency, value = JSON
  :class:`~fullon_cache.models.Balance` (``total, free, used``);
* ``positions:{<exchange_id>}`` — hash, field = symbol exactly as given, value = JSON
  :class:`~fullon_cache.models.Position`;
* ``accounts`` — set of the exchange ids that have (or had) balances or positions,
  written *before* the data, so :meth:`AccountCache.get_all_accounts` and
  :meth:`AccountCache.get_all_positions` never miss an account that has data.

Replacing all balances (or all positions) is one Lua script (DEL + HSET): readers see
the old set or the new one, never a mix or an empty account.

Example:
    >>> async def main() -> dict | None:
    ...     async with AccountCache() as cache:
    ...         btc = {"total": 1.5, "free": 1.2, "used": 0.3}
    ...         await cache.set_user_balances(1001, {"BTC": btc})
    ...         return await cache.get_user_balance(1001, "BTC")
    >>> # asyncio.run(main()) -> {'total': 1.5, 'free': 1.2, 'used': 0.3}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, cast

from fullon_cache.base_cache import BaseCache
from fullon_cache.codec import as_model, decode, encode
from fullon_cache.connection import guarded
from fullon_cache.models import Balance, Position
from fullon_cache.tick_cache import TickCache

__all__ = ["AccountCache"]

# KEYS[1] hash; ARGV field, value, field, value, ... Replaces the hash atomically.
_REPLACE_LUA = """
redis.call('DEL', KEYS[1])
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
"""


def _account(exchange_id: object) -> str:
    if isinstance(exchange_id, bool) or not isinstance(exchange_id, (str, int)):
        raise TypeError(f"exchange_id must be int or str, got {type(exchange_id).__name__}")
    text = str(exchange_id)
    if not text.strip():
        raise ValueError("exchange_id must not be empty")
    return text


def _name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value


def _balances(data: object) -> dict[str, bytes]:
    """Validate ``{currency: balance}`` (balance: Balance, mapping or ``to_dict()``
    object) into encoded hash fields."""
    if not isinstance(data, Mapping):
        raise TypeError(f"balances must be a mapping of currency -> balance, got {type(data)}")
    return {
        _name(currency, "currency"): encode(as_model(balance, Balance))
        for currency, balance in data.items()
    }


def _position(account: str, value: object) -> Position:
    """A Position for ``account``: an ``ex_id`` left out is filled in, another one is
    a ValueError (the position would be filed under the wrong account)."""
    if not isinstance(value, Position):
        to_dict = getattr(value, "to_dict", None)
        data = to_dict() if callable(to_dict) else value
        if isinstance(data, Mapping) and data.get("ex_id") is None:
            data = {**data, "ex_id": account}
        value = as_model(data, Position)
    assert isinstance(value, Position)
    if value.ex_id != account:
        raise ValueError(f"position ex_id {value.ex_id!r} is not exchange_id {account!r}")
    return value


class AccountCache(BaseCache):
    """Balances and positions per exchange account, and a priced portfolio summary.

    Example:
        >>> AccountCache().logger.name
        'fullon.cache.account'
    """

    component: ClassVar[str] = "account"

    # -- internals -------------------------------------------------------------------
    async def _replace(self, account: str, key: str, fields: dict[str, bytes]) -> None:
        await self.redis.sadd(self.keys.account_index(), account)
        script = self._script(_REPLACE_LUA)
        await script(keys=[key], args=[item for pair in fields.items() for item in pair])

    async def _merge(self, account: str, key: str, fields: dict[str, bytes]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(self.keys.account_index(), account)
            if fields:
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            await pipe.execute()

    async def _accounts(self) -> list[str]:
        members = cast(set[bytes], await self.redis.smembers(self.keys.account_index()))
        return sorted(m.decode() for m in members)

    async def _hashes(self, keys: list[str]) -> list[dict[bytes, bytes]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(key)
            result: list[dict[bytes, bytes]] = await pipe.execute()
        return result

    # -- balances --------------------------------------------------------------------
    @guarded
    async def set_user_balances(
        self, exchange_id: int | str, balances: Mapping[str, Balance | Mapping[str, Any] | Any]
    ) -> bool:
        """Replace every balance of the account with ``{currency: {total, free, used}}``
        (currencies not given are removed; ``{}`` empties the account's balances).

        Example:
            >>> btc = {"total": 1.5, "free": 1.2, "used": 0.3}
            >>> await cache.set_user_balances(1001, {"BTC": btc})
            True
            >>> await cache.get_user_balance(1001, "BTC")
            {'total': 1.5, 'free': 1.2, 'used': 0.3}
        """
        account = _account(exchange_id)
        fields = _balances(balances)
        await self._replace(account, self.keys.balances(account), fields)
        return True

    @guarded
    async def upsert_user_account(
        self, exchange_id: int | str, balances: Mapping[str, Balance | Mapping[str, Any] | Any]
    ) -> bool:
        """Merge balances into the account: each given currency is replaced whole
        (fields left out are 0.0), the other currencies stay.

        Example:
            >>> _ = await cache.set_user_balances(1, {"BTC": {"total": 1.0}})
            >>> await cache.upsert_user_account(1, {"ETH": {"total": 2.0, "free": 2.0}})
            True
            >>> sorted(await cache.get_user_balances(1))
            ['BTC', 'ETH']
        """
        account = _account(exchange_id)
        fields = _balances(balances)
        await self._merge(account, self.keys.balances(account), fields)
        return True

    @guarded
    async def get_user_balance(
        self, exchange_id: int | str, currency: str
    ) -> dict[str, float] | None:
        """One currency's balance as ``{'total', 'free', 'used'}``, or None.

        Example:
            >>> await cache.get_user_balance(1, "DOGE") is None
            True
        """
        key = self.keys.balances(_account(exchange_id))
        raw = await self.redis.hget(key, _name(currency, "currency"))
        return None if raw is None else decode(raw, Balance).to_dict()

    @guarded
    async def get_user_balances(self, exchange_id: int | str) -> dict[str, dict[str, float]]:
        """Every balance of the account, ``{currency: {'total', 'free', 'used'}}``; ``{}``
        when there is none.

        Example:
            >>> _ = await cache.set_user_balances("7", {"USDT": {"total": 10.0, "free": 10.0}})
            >>> await cache.get_user_balances(7)
            {'USDT': {'total': 10.0, 'free': 10.0, 'used': 0.0}}
        """
        raw = await self.redis.hgetall(self.keys.balances(_account(exchange_id)))
        return _decode_balances(cast(dict[bytes, bytes], raw))

    async def get_full_account(
        self, exchange_id: int | str, currency: str
    ) -> dict[str, float] | None:
        """The seed's name for :meth:`get_user_balance`: the ``{'total', 'free',
        'used'}`` of one currency of the account, or None.

        Example:
            >>> _ = await cache.set_user_balances(2, {"BTC": {"total": 3.0, "free": 3.0}})
            >>> await cache.get_full_account(2, "BTC")
            {'total': 3.0, 'free': 3.0, 'used': 0.0}
        """
        return await self.get_user_balance(exchange_id, currency)

    @guarded
    async def get_all_accounts(self) -> dict[str, dict[str, dict[str, float]]]:
        """Balances of every account that has some: ``{exchange_id: {currency:
        {'total', 'free', 'used'}}}`` (exchange ids as text).

        Example:
            >>> _ = await cache.set_user_balances(1, {"BTC": {"total": 1.0}})
            >>> _ = await cache.set_user_balances(2, {"ETH": {"total": 2.0}})
            >>> sorted(await cache.get_all_accounts())
            ['1', '2']
        """
        accounts = await self._accounts()
        hashes = await self._hashes([self.keys.balances(a) for a in accounts])
        return {a: _decode_balances(h) for a, h in zip(accounts, hashes, strict=True) if h}

    # -- positions -------------------------------------------------------------------
    @guarded
    async def set_position(
        self, exchange_id: int | str, position: Position | Mapping[str, Any] | Any
    ) -> bool:
        """Store (or replace) the account's position in ``position.symbol``. A position
        without ``ex_id`` takes ``exchange_id``; another ``ex_id`` is a ValueError.

        Example:
            >>> position = Position(symbol="BTC/USDT", ex_id="1001", volume=0.5)
            >>> await cache.set_position(1001, position)
            True
            >>> (await cache.get_position(1001, "BTC/USDT")).volume
            0.5
        """
        account = _account(exchange_id)
        model = _position(account, position)
        await self._merge(account, self.keys.positions(account), {model.symbol: encode(model)})
        return True

    @guarded
    async def upsert_positions(
        self,
        exchange_id: int | str,
        positions: Iterable[Position | Mapping[str, Any] | Any],
        *,
        replace: bool = False,
    ) -> bool:
        """Store several positions of the account at once (models, mappings or
        ``to_dict()`` objects; the last one of a symbol wins). With ``replace=True`` they
        become the account's only positions (atomically).

        Example:
            >>> rows = [{"symbol": "BTC/USDT", "volume": 1.0}, Position(symbol="ETH/USDT", ex_id=5)]
            >>> await cache.upsert_positions(5, rows)
            True
            >>> sorted(await cache.get_positions(5))
            ['BTC/USDT', 'ETH/USDT']
        """
        account = _account(exchange_id)
        if isinstance(positions, (str, bytes, Mapping)) or not isinstance(positions, Iterable):
            raise TypeError("positions must be a list of positions")
        if not isinstance(replace, bool):
            raise TypeError("replace must be a bool")
        models = [_position(account, p) for p in positions]
        fields = {m.symbol: encode(m) for m in models}
        key = self.keys.positions(account)
        if replace:
            await self._replace(account, key, fields)
        else:
            await self._merge(account, key, fields)
        return True

    @guarded
    async def get_position(self, exchange_id: int | str, symbol: str) -> Position | None:
        """The account's position in ``symbol``, or None.

        Example:
            >>> await cache.get_position(1, "BTC/USDT") is None
            True
        """
        key = self.keys.positions(_account(exchange_id))
        raw = await self.redis.hget(key, _name(symbol, "symbol"))
        return None if raw is None else decode(raw, Position)

    @guarded
    async def get_positions(self, exchange_id: int | str) -> dict[str, Position]:
        """The positions of THIS account only, keyed by symbol; ``{}`` when none.

        Example:
            >>> _ = await cache.set_position(1, {"symbol": "BTC/USDT", "volume": 1.0})
            >>> _ = await cache.set_position(2, {"symbol": "ETH/USDT", "volume": 1.0})
            >>> list(await cache.get_positions(1))
            ['BTC/USDT']
        """
        raw = await self.redis.hgetall(self.keys.positions(_account(exchange_id)))
        return _decode_positions(cast(dict[bytes, bytes], raw))

    @guarded
    async def get_all_positions(self) -> list[Position]:
        """Every position of every account, ordered by exchange id then symbol.

        Example:
            >>> _ = await cache.set_position(2, {"symbol": "ETH/USDT", "volume": 1.0})
            >>> _ = await cache.set_position(1, {"symbol": "BTC/USDT", "volume": 1.0})
            >>> [(p.ex_id, p.symbol) for p in await cache.get_all_positions()]
            [('1', 'BTC/USDT'), ('2', 'ETH/USDT')]
        """
        accounts = await self._accounts()
        hashes = await self._hashes([self.keys.positions(a) for a in accounts])
        return [p for h in hashes for _, p in sorted(_decode_positions(h).items())]

    @guarded
    async def delete_position(self, exchange_id: int | str, symbol: str) -> bool:
        """Remove the account's position in ``symbol``; True when there was one.

        Example:
            >>> _ = await cache.set_position(1, {"symbol": "BTC/USDT", "volume": 1.0})
            >>> await cache.delete_position(1, "BTC/USDT")
            True
            >>> await cache.delete_position(1, "BTC/USDT")
            False
        """
        key = self.keys.positions(_account(exchange_id))
        return bool(await self.redis.hdel(key, _name(symbol, "symbol")))

    # -- portfolio -------------------------------------------------------------------
    async def get_portfolio_summary(
        self, exchange_id: int | str, quote: str = "USDT", exchange: str | None = None
    ) -> dict[str, Any]:
        """Balances and positions of the account valued in ``quote`` with the latest
        fresh prices of :class:`~fullon_cache.tick_cache.TickCache` (on ``exchange``, or
        the freshest tick of any exchange). A currency ``C`` is priced by ``C/<quote>``,
        a position by its symbol. Nothing unpriced is hidden or counted as 0: it has
        ``price``/``value`` None and is listed under ``unpriced``.

        Returns ``exchange_id, quote, balances`` ({currency: total, free, used, price,
        value}), ``positions`` ({symbol: volume, side, entry_price, price, market_value,
        unrealized_pnl}), ``total_balance_value, total_position_value,
        total_unrealized_pnl`` (sums of what is priced), ``unpriced`` ({'balances':
        [...], 'positions': [...]}), ``unknown_entry`` (positions without cost or entry
        price: no PnL) and ``complete`` (True when everything was priced).

        Example:
            >>> _ = await cache.set_user_balances(1, {"BTC": {"total": 2.0}, "XYZ": {"total": 5.0}})
            >>> tick = Tick(symbol="BTC/USDT", exchange="binance", price=10.0)
            >>> _ = await TickCache().set_ticker(tick)
            >>> summary = await cache.get_portfolio_summary(1)
            >>> summary["total_balance_value"], summary["unpriced"]["balances"]
            (20.0, ['XYZ'])
        """
        account = _account(exchange_id)
        quote = _name(quote, "quote")
        if exchange is not None:
            _name(exchange, "exchange")
        balances = await self.get_user_balances(account)
        positions = await self.get_positions(account)
        ticks = TickCache(connection=self._connection)
        summary: dict[str, Any] = {
            "exchange_id": account,
            "quote": quote,
            "balances": {},
            "positions": {},
            "total_balance_value": 0.0,
            "total_position_value": 0.0,
            "total_unrealized_pnl": 0.0,
            "unpriced": {"balances": [], "positions": []},
            "unknown_entry": [],
        }
        for currency, balance in sorted(balances.items()):
            price: float | None = 1.0
            if currency != quote:
                price = await ticks.get_price(f"{currency}/{quote}", exchange) or None
            value = None if price is None else balance["total"] * price
            summary["balances"][currency] = {**balance, "price": price, "value": value}
            if value is None:
                summary["unpriced"]["balances"].append(currency)
            else:
                summary["total_balance_value"] += value
        for symbol, position in sorted(positions.items()):
            row = _value_position(position, await ticks.get_price(symbol, exchange) or None)
            summary["positions"][symbol] = row
            if row["price"] is None:
                summary["unpriced"]["positions"].append(symbol)
                continue
            summary["total_position_value"] += row["market_value"]
            if row["unrealized_pnl"] is None:
                summary["unknown_entry"].append(symbol)
            else:
                summary["total_unrealized_pnl"] += row["unrealized_pnl"]
        unpriced = summary["unpriced"]
        summary["complete"] = not (unpriced["balances"] or unpriced["positions"])
        return summary


def _decode_balances(raw: Mapping[bytes, bytes]) -> dict[str, dict[str, float]]:
    return {k.decode(): decode(v, Balance).to_dict() for k, v in sorted(raw.items())}


def _decode_positions(raw: Mapping[bytes, bytes]) -> dict[str, Position]:
    return {k.decode(): decode(v, Position) for k, v in sorted(raw.items())}


def _value_position(position: Position, price: float | None) -> dict[str, Any]:
    """Market value and unrealized PnL of one position at ``price`` (None: unpriced).
    Short: ``side == 'short'``, or no side and a negative volume."""
    quantity = abs(position.volume)
    entry = position.price or (abs(position.cost) / quantity if quantity else 0.0)
    short = position.side == "short" or (position.side is None and position.volume < 0)
    row: dict[str, Any] = {
        "volume": position.volume,
        "side": position.side or ("short" if short else "long"),
        "entry_price": entry or None,
        "price": price,
        "market_value": None,
        "unrealized_pnl": None,
    }
    if price is not None:
        row["market_value"] = quantity * price
        if entry:
            row["unrealized_pnl"] = (entry - price if short else price - entry) * quantity
    return row
