"""Queue patterns: the FIFO order queue, reliable claims with dead letters, the trade
list drained atomically, and the operators' error queue.

Run: ``python -m fullon_cache.examples.queue_patterns`` (keys live under
``<FULLON_CACHE_NAMESPACE>.queue_patterns`` and are removed afterwards).
"""

from __future__ import annotations

from typing import Any

from fullon_cache.base_cache import BaseCache
from fullon_cache.config import Settings
from fullon_cache.examples import example_settings, run
from fullon_cache.models import Order, Trade
from fullon_cache.orders_cache import OrdersCache
from fullon_cache.trades_cache import TradesCache

EXCHANGE = "kraken"


async def main(settings: Settings | None = None) -> dict[str, Any]:
    """Show each queue. Returns ``fifo`` (order ids in pop order), ``dead`` (dead
    letter errors), ``replayed``, ``drained`` (trade ids of the first drain),
    ``second_drain`` and ``errors`` (the operator errors, oldest first).
    """
    settings = example_settings("queue_patterns", settings)
    async with OrdersCache(settings=settings) as orders, TradesCache(settings=settings) as trades:
        await orders.prepare_cache()
        try:
            print("1. FIFO: push three orders, pop them (timeout=0 returns at once)")
            for order_id in (1, 2, 3):
                await orders.push_open_order(
                    EXCHANGE, Order(order_id=order_id, symbol="BTC/USD", side="buy", volume=0.1)
                )
            fifo = []
            while (order := await orders.pop_open_order(EXCHANGE)) is not None:
                fifo.append(order.order_id)
            print(f"   popped {fifo}; an empty queue pops None")

            print("2. reliable executors: claim, fail (retried), fail for good (dead letter)")
            await orders.push_open_order(EXCHANGE, Order(order_id=10, symbol="ETH/USD"))
            claim = await orders.claim_order(EXCHANGE, "executor-a")
            assert claim is not None
            await orders.fail_order(EXCHANGE, claim, "exchange timeout")
            again = await orders.claim_order(EXCHANGE, "executor-b")
            assert again is not None
            print(
                f"   order 10 re-delivered to executor-b: delivery {again.delivery}, "
                f"failures {again.failures}"
            )
            await orders.fail_order(EXCHANGE, again, "insufficient funds", retry=False)
            dead = [letter.error for letter in await orders.get_dead_letters(EXCHANGE)]
            print(f"   dead letters: {dead}; stats {await orders.get_queue_stats(EXCHANGE)}")
            replayed = await orders.replay_dead_letters(EXCHANGE)
            final = await orders.claim_order(EXCHANGE, "executor-a")
            assert final is not None
            await orders.ack_order(EXCHANGE, final)
            print(
                f"   replayed {replayed}, claimed again and acknowledged; "
                f"stats {await orders.get_queue_stats(EXCHANGE)}"
            )

            print("3. trades: pushers append, a consumer drains the list atomically")
            for n in (1, 2):
                await trades.push_trade(
                    EXCHANGE,
                    Trade(
                        ex_trade_id=f"T{n}",
                        symbol="BTC/USD",
                        side="buy",
                        volume=0.5,
                        price=60_000.0,
                    ),
                )
            duplicate = await trades.push_trade(
                EXCHANGE, Trade(ex_trade_id="T1", symbol="BTC/USD", volume=0.5, price=60_000.0)
            )
            drained = [t.ex_trade_id for t in await trades.get_trades("BTC/USD", EXCHANGE)]
            second = await trades.get_trades("BTCUSD", EXCHANGE)
            print(
                f"   duplicate T1 stored: {duplicate}; drained {drained}; drained again: {second}"
            )

            print("4. operator error queue (bounded, oldest first)")
            base = BaseCache(settings=settings)
            await base.push_global_error("websocket closed", component="ticker")
            await base.push_global_error(RuntimeError("order rejected"), component="executor")
            errors = []
            while (entry := await base.pop_global_error()) is not None:
                errors.append(entry["error"])
                print(f"   {entry['time']:%H:%M:%S} {entry['component']}: {entry['error']}")
            return {
                "fifo": fifo,
                "dead": dead,
                "replayed": replayed,
                "drained": drained,
                "second_drain": second,
                "errors": errors,
            }
        finally:
            await orders.prepare_cache()


if __name__ == "__main__":
    run(main)
