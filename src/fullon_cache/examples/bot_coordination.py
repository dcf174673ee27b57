"""Bot coordination: two bots, one symbol. The exchange+symbol lock is atomic, owned,
leased (a crashed bot frees the symbol) and fenced (each new holder gets a larger
token); opening-position marks and bot status complete the picture.

Run: ``python -m fullon_cache.examples.bot_coordination`` (keys live under
``<FULLON_CACHE_NAMESPACE>.bot_coordination`` and are removed afterwards).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fullon_cache.bot_cache import BotCache
from fullon_cache.config import Settings
from fullon_cache.examples import example_settings, run

EXCHANGE = "binance"
SYMBOL = "ETH/USDT"


async def _bot(cache: BotCache, bot_id: int) -> bool:
    """One bot's attempt: True when it got the symbol (and traded)."""
    token = await cache.block_exchange_with_token(EXCHANGE, SYMBOL, bot_id)
    if token is None:
        print(f"  bot {bot_id}: {SYMBOL} is held by bot {await cache.is_blocked(EXCHANGE, SYMBOL)}")
        return False
    print(f"  bot {bot_id}: got {SYMBOL} with fencing token {token}")
    await cache.mark_opening_position(EXCHANGE, SYMBOL, bot_id)
    await cache.update_bot(bot_id, {"status": "opening", "symbol": SYMBOL})
    return True


async def main(settings: Settings | None = None) -> dict[str, Any]:
    """Two bots race for one symbol, the winner trades and releases it, the loser then
    gets it. Returns ``winners`` (per round), ``second_round`` (the loser got it then),
    ``tokens``, ``opening`` and ``bots``.
    """
    settings = example_settings("bot_coordination", settings)
    async with BotCache(settings=settings) as cache:
        await cache.prepare_cache()
        try:
            print(f"round 1: bots 1 and 2 race for {EXCHANGE} {SYMBOL}")
            first = await asyncio.gather(_bot(cache, 1), _bot(cache, 2))
            winner = (1, 2)[first.index(True)]
            loser = 3 - winner
            token1 = await cache.get_fencing_token(EXCHANGE, SYMBOL)
            opening = await cache.is_opening_position(EXCHANGE, SYMBOL)
            print(f"  opening-position mark set: {opening}")

            print(f"bot {winner} is done: unmark, update status, release")
            await cache.unmark_opening_position(EXCHANGE, SYMBOL)
            await cache.update_bot(winner, {"status": "idle"})
            released = await cache.unblock_exchange(EXCHANGE, SYMBOL, bot_id=winner)
            print(f"  released: {released}")

            print(f"round 2: bot {loser} tries again")
            second = await _bot(cache, loser)
            token2 = await cache.get_fencing_token(EXCHANGE, SYMBOL)
            print(f"  fencing token grew {token1} -> {token2}: writes stamped {token1} are stale")
            await cache.unmark_opening_position(EXCHANGE, SYMBOL)
            await cache.unblock_exchange(EXCHANGE, SYMBOL, bot_id=loser)

            bots = await cache.get_bots()
            for bot_id, data in sorted(bots.items()):
                print(f"  bot {bot_id}: status {data.get('status')!r}")
            return {
                "winners": [winner, loser],
                "second_round": second,
                "tokens": [token1, token2],
                "opening": opening,
                "bots": sorted(bots),
            }
        finally:
            await cache.prepare_cache()


if __name__ == "__main__":
    run(main)
