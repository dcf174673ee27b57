"""One end-to-end trading flow across the caches.

A bot registers its process, locks BTC/USDT on binance, reads the symbol and the price,
queues a buy order; an executor claims it, fills it and acknowledges it; the fill is
recorded as a trade, which a consumer drains and books as a position; the bot releases
its lock and reports it has stopped.

Run: ``python -m fullon_cache.examples.trading_flow`` (keys live under
``<FULLON_CACHE_NAMESPACE>.trading_flow`` and are removed afterwards).
"""

from __future__ import annotations

import time
from typing import Any

from fullon_cache.account_cache import AccountCache
from fullon_cache.bot_cache import BotCache
from fullon_cache.config import Settings
from fullon_cache.examples import example_settings, run
from fullon_cache.models import Order, Position, Symbol, Tick, Trade
from fullon_cache.orders_cache import OrdersCache
from fullon_cache.process_cache import ProcessCache, ProcessStatus, ProcessType
from fullon_cache.symbol_cache import SymbolCache
from fullon_cache.tick_cache import TickCache
from fullon_cache.trades_cache import TradesCache

EXCHANGE = "binance"
EX_ID = 1001  # the user's account on that exchange
SYMBOL = "BTC/USDT"
BOT_ID = 42


async def main(settings: Settings | None = None) -> dict[str, Any]:
    """Run the flow; returns what each step left behind (``price``, ``order_status``,
    ``trades``, ``position_volume``, ``lock_holder`` after release, ``process_status``).
    """
    settings = example_settings("trading_flow", settings)
    processes = ProcessCache(settings=settings)
    symbols = SymbolCache(settings=settings)
    ticks = TickCache(settings=settings)
    bots = BotCache(settings=settings)
    orders = OrdersCache(settings=settings)
    trades = TradesCache(settings=settings)
    accounts = AccountCache(settings=settings)
    await processes.prepare_cache()
    try:
        # 1. The bot starts and says so.
        pid = await processes.register_process(
            ProcessType.BOT, f"bot-{BOT_ID}", params={"symbol": SYMBOL}, message="starting"
        )
        await processes.update_process(pid, status=ProcessStatus.RUNNING, message="trading")
        print(f"1. bot-{BOT_ID} registered as process {pid[:8]}… and is running")

        # 2. It takes the exchange+symbol lock so no other bot trades BTC/USDT.
        assert await bots.block_exchange(EXCHANGE, SYMBOL, bot_id=BOT_ID)
        other = await bots.block_exchange(EXCHANGE, SYMBOL, bot_id=BOT_ID + 1)
        print(
            f"2. lock on {EXCHANGE} {SYMBOL}: held by {await bots.is_blocked(EXCHANGE, SYMBOL)}"
            f" (another bot trying gets {other})"
        )

        # 3. Symbol metadata (normally read through from PostgreSQL) and the live price.
        await symbols.add_symbol(
            Symbol(
                symbol=SYMBOL,
                cat_ex_id=1,
                base="BTC",
                quote="USDT",
                exchange_name=EXCHANGE,
                decimals=2,
            )
        )
        symbol = await symbols.get_symbol(SYMBOL, exchange_name=EXCHANGE)
        assert symbol is not None
        await ticks.set_ticker(
            Tick(
                symbol=SYMBOL,
                exchange=EXCHANGE,
                price=50_000.0,
                bid=49_999.5,
                ask=50_000.5,
                time=time.time(),
            )
        )
        price = await ticks.get_price(SYMBOL, EXCHANGE)
        print(
            f"3. {SYMBOL}: {symbol.base}/{symbol.quote}, {symbol.decimals} decimals, price {price}"
        )

        # 4. The bot queues a buy order; the order store keeps its state.
        order = Order(
            order_id=1,
            ex_order_id="EX-1",
            bot_id=BOT_ID,
            uid=7,
            ex_id=EX_ID,
            exchange=EXCHANGE,
            symbol=SYMBOL,
            order_type="limit",
            side="buy",
            volume=0.1,
            price=price,
            status="open",
        )
        await orders.save_order_data(EXCHANGE, order)
        await orders.push_open_order(EXCHANGE, order)
        print(f"4. order EX-1 queued: {await orders.get_queue_stats(EXCHANGE)}")

        # 5. An executor claims it, fills it on the exchange and acknowledges it.
        claim = await orders.claim_order(EXCHANGE, "executor-1")
        assert claim is not None
        await orders.save_order_data(EXCHANGE, "EX-1", {"status": "filled", "final_volume": 0.1})
        await orders.ack_order(EXCHANGE, claim)
        stored = await orders.get_order(EXCHANGE, "EX-1")
        assert stored is not None
        print(
            f"5. executor-1 claimed order {claim.order.order_id} and filled it: "
            f"status {stored.status}, {stored.final_volume} {SYMBOL}"
        )

        # 6. The fill is a trade; the account service drains the trade list.
        await trades.push_trade(
            EXCHANGE,
            Trade(
                ex_trade_id="T-1",
                ex_order_id="EX-1",
                uid=7,
                ex_id=EX_ID,
                symbol=SYMBOL,
                side="buy",
                volume=0.1,
                price=price,
                cost=0.1 * price,
                fee=5.0,
                time=time.time(),
            ),
        )
        drained = await trades.get_trades(SYMBOL, EXCHANGE)
        print(
            f"6. trades drained for booking: {[t.ex_trade_id for t in drained]} "
            f"(list now {len(await trades.get_trades(SYMBOL, EXCHANGE))} long)"
        )

        # 7. ... and books the position.
        await accounts.upsert_positions(
            EX_ID,
            [
                Position(
                    symbol=SYMBOL,
                    ex_id=str(EX_ID),
                    volume=sum(t.volume or 0 for t in drained),
                    price=price,
                    cost=sum(t.cost or 0 for t in drained),
                    fee=5.0,
                    side="long",
                )
            ],
        )
        position = await accounts.get_position(EX_ID, SYMBOL)
        assert position is not None
        print(
            f"7. position on account {EX_ID}: {position.side} {position.volume} {SYMBOL} "
            f"at {position.price}"
        )

        # 8. The bot releases its lock and stops.
        await bots.unblock_exchange(EXCHANGE, SYMBOL, bot_id=BOT_ID)
        await processes.update_process(pid, status=ProcessStatus.STOPPED, message="done")
        component = await processes.get_component_status(f"bot-{BOT_ID}")
        assert component is not None
        holder = await bots.is_blocked(EXCHANGE, SYMBOL)
        print(f"8. lock released (holder now {holder}); bot-{BOT_ID} is {component['status']}")
        return {
            "price": price,
            "order_status": stored.status,
            "trades": len(drained),
            "position_volume": position.volume,
            "lock_holder": holder,
            "process_status": str(component["status"]),
        }
    finally:
        await processes.prepare_cache()
        for cache in (processes, symbols, ticks, bots, orders, trades, accounts):
            await cache.close()


if __name__ == "__main__":
    run(main)
