"""BotCache on a real server (standalone and cluster): leased, owned, fenced locks,
opening-position marks and bot status."""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import msgspec
import pytest

from fullon_cache.bot_cache import BotCache
from fullon_cache.config import Settings
from fullon_cache.embedded import free_port
from fullon_cache.exceptions import CacheConnectionError
from fullon_cache.models import Bot

DEADLINE = 60.0  # generous: only bounds a hang, never asserts speed


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it is true; fail only after a generous deadline."""
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        await asyncio.sleep(0.05)


async def test_int_and_str_exchange_ids_name_one_lock(settings: Settings) -> None:
    async with BotCache() as cache:
        assert await cache.block_exchange(1001, "BTC/USDT", 7)
        assert await cache.is_blocked("1001", "BTC/USDT") == "7"
        assert not await cache.block_exchange("1001", "BTC/USDT", 8)


async def test_lease_expires_and_next_holder_gets_larger_token(settings: Settings) -> None:
    async with BotCache() as cache:
        first = await cache.block_exchange_with_token("binance", "BTC/USDT", "dead", lease=0.2)
        assert first is not None
        assert await cache.get_fencing_token("binance", "BTC/USDT") == first

        async def freed() -> bool:
            return await cache.is_blocked("binance", "BTC/USDT") is None

        await eventually(freed, "lease expired")
        assert await cache.get_fencing_token("binance", "BTC/USDT") is None
        assert await cache.renew_block("binance", "BTC/USDT", "dead") is False
        second = await cache.block_exchange_with_token("binance", "BTC/USDT", "next")
        assert second is not None and second > first


async def test_fencing_tokens_grow_with_every_new_holder(settings: Settings) -> None:
    async with BotCache() as cache:
        tokens = []
        for round_ in range(5):
            bot = f"bot{round_ % 2}"  # the same bot holding again later is a new holder
            token = await cache.block_exchange_with_token(1, "SOL/USDT", bot)
            assert token is not None
            assert await cache.block_exchange_with_token(1, "SOL/USDT", bot) == token
            assert await cache.block_exchange_with_token(1, "SOL/USDT", "other") is None
            tokens.append(token)
            assert await cache.unblock_exchange(1, "SOL/USDT", bot)
        assert tokens == sorted(set(tokens))
        # each symbol has its own counter
        assert await cache.block_exchange_with_token(1, "ADA/USDT", "x") == 1


async def test_default_lease_comes_from_settings(settings: Settings) -> None:
    async with BotCache() as cache:
        assert await cache.block_exchange("binance", "BTC/USDT", 1)
        ttl = await cache.redis.pttl(cache.keys.block("binance", "BTC/USDT"))
        assert 0 < ttl <= settings.lock_lease * 1000
        short = msgspec.structs.replace(settings, lock_lease=0.5)
        async with BotCache(settings=short) as other:
            assert await other.block_exchange("binance", "ETH/USDT", 1)
            ttl = await other.redis.pttl(other.keys.block("binance", "ETH/USDT"))
            assert 0 < ttl <= 500


async def test_reentry_and_renew_extend_the_lease(settings: Settings) -> None:
    async with BotCache() as cache:
        key = cache.keys.block("binance", "BTC/USDT")
        assert await cache.block_exchange("binance", "BTC/USDT", 1, lease=1)
        assert await cache.redis.pttl(key) <= 1000
        assert await cache.block_exchange("binance", "BTC/USDT", 1, lease=100)
        assert await cache.redis.pttl(key) > 1000
        assert await cache.renew_block("binance", "BTC/USDT", 1, lease=1000)
        assert await cache.redis.pttl(key) > 100_000
        assert await cache.renew_block("binance", "BTC/USDT", 2, lease=5000) is False
        assert await cache.redis.pttl(key) <= 1_000_000
        assert await cache.renew_block("binance", "ETH/USDT", 1) is False
        assert await cache.is_blocked("binance", "ETH/USDT") is None


async def test_concurrent_tasks_exactly_one_wins(settings: Settings) -> None:
    async with BotCache() as cache:
        results = await asyncio.gather(
            *(cache.block_exchange_with_token("binance", "BTC/USDT", f"b{i}") for i in range(40))
        )
        winners = [i for i, token in enumerate(results) if token is not None]
        assert len(winners) == 1
        assert await cache.is_blocked("binance", "BTC/USDT") == f"b{winners[0]}"


async def test_get_blocks_lists_every_lock(settings: Settings) -> None:
    async with BotCache() as cache:
        assert await cache.get_blocks() == []
        before = datetime.now(UTC)
        assert await cache.block_exchange("kraken", "BTC/USDT:USDT", "z")
        assert await cache.block_exchange(1001, "ETH/USDT", 5)
        assert await cache.block_exchange("a*b", "x?[y]{z}", "w")
        token = await cache.get_fencing_token("kraken", "BTC/USDT:USDT")
        assert await cache.mark_opening_position("kraken", "LTC/USDT", 1)  # not a block
        blocks = await cache.get_blocks()
        assert [(b["ex_id"], b["symbol"], b["bot_id"]) for b in blocks] == [
            ("1001", "ETH/USDT", "5"),
            ("a*b", "x?[y]{z}", "w"),
            ("kraken", "BTC/USDT:USDT", "z"),
        ]
        assert blocks[2]["token"] == token
        for block in blocks:
            assert block["since"].tzinfo is not None
            assert block["since"].utcoffset().total_seconds() == 0
            assert abs((block["since"] - before).total_seconds()) < 3600
        assert await cache.unblock_exchange(1001, "ETH/USDT")
        assert [b["symbol"] for b in await cache.get_blocks()] == [
            "x?[y]{z}",
            "BTC/USDT:USDT",
        ]


async def test_pattern_characters_never_reach_other_locks(settings: Settings) -> None:
    async with BotCache() as cache:
        assert await cache.block_exchange("bin*", "BTC/*", 1)
        assert await cache.is_blocked("binance", "BTC/USDT") is None
        assert await cache.block_exchange("binance", "BTC/USDT", 2)
        assert await cache.is_blocked("bin*", "BTC/*") == "1"
        assert await cache.unblock_exchange("bin*", "BTC/*")
        assert await cache.is_blocked("binance", "BTC/USDT") == "2"


# -- opening-position marks ---------------------------------------------------------------
async def test_opening_position_marks(settings: Settings) -> None:
    async with BotCache() as cache:
        assert await cache.is_opening_position("binance", "BTC/USDT") is False
        assert await cache.get_opening_position("binance", "BTC/USDT") is None
        assert await cache.mark_opening_position("binance", "BTC/USDT", 1) is True
        assert await cache.mark_opening_position("binance", "BTC/USDT", 1) is True
        assert await cache.mark_opening_position("binance", "BTC/USDT", 2) is False
        assert await cache.is_opening_position("binance", "BTC/USDT") is True
        assert await cache.get_opening_position("binance", "BTC/USDT") == "1"
        # independent of the block
        assert await cache.is_blocked("binance", "BTC/USDT") is None
        assert await cache.unmark_opening_position("binance", "BTC/USDT", 2) is False
        assert await cache.unmark_opening_position("binance", "BTC/USDT", 1) is True
        assert await cache.is_opening_position("binance", "BTC/USDT") is False
        assert await cache.mark_opening_position("binance", "BTC/USDT", 2) is True
        assert await cache.unmark_opening_position("binance", "BTC/USDT") is True
        assert await cache.unmark_opening_position("binance", "BTC/USDT") is False


async def test_opening_mark_of_a_dead_bot_expires(settings: Settings) -> None:
    async with BotCache() as cache:
        assert await cache.mark_opening_position(7, "BTC/USDT", "dead", lease=0.2)

        async def cleared() -> bool:
            return not await cache.is_opening_position(7, "BTC/USDT")

        await eventually(cleared, "opening mark expired")
        assert await cache.mark_opening_position(7, "BTC/USDT", "alive")


# -- bad input ----------------------------------------------------------------------------
BAD_EX_IDS = [
    (None, TypeError),
    (True, TypeError),
    (1.5, TypeError),
    ("", ValueError),
    (" ", ValueError),
]
BAD_SYMBOLS = [(None, TypeError), (5, TypeError), ("", ValueError), ("  ", ValueError)]
BAD_BOTS = [(None, TypeError), (False, TypeError), (2.0, TypeError), ("", ValueError)]
BAD_LEASES = [
    (0, ValueError),
    (-1, ValueError),
    (math.nan, ValueError),
    (math.inf, ValueError),
    ("1", TypeError),
    (True, TypeError),
]


async def test_bad_input_raises_before_any_write(settings: Settings) -> None:
    async with BotCache() as cache:
        lock_calls = [
            cache.block_exchange,
            cache.block_exchange_with_token,
            cache.renew_block,
            cache.mark_opening_position,
        ]
        for call in lock_calls:
            for ex_id, error in BAD_EX_IDS:
                with pytest.raises(error):
                    await call(ex_id, "BTC/USDT", 1)
            for symbol, error in BAD_SYMBOLS:
                with pytest.raises(error):
                    await call("binance", symbol, 1)
            for bot_id, error in BAD_BOTS:
                with pytest.raises(error):
                    await call("binance", "BTC/USDT", bot_id)
            for lease, error in BAD_LEASES:
                with pytest.raises(error):
                    await call("binance", "BTC/USDT", 1, lease=lease)
        readers = [
            cache.unblock_exchange,
            cache.unmark_opening_position,
            cache.is_blocked,
            cache.is_opening_position,
            cache.get_opening_position,
            cache.get_fencing_token,
        ]
        for read in readers:
            for ex_id, error in BAD_EX_IDS:
                with pytest.raises(error):
                    await read(ex_id, "BTC/USDT")
            for symbol, error in BAD_SYMBOLS:
                with pytest.raises(error):
                    await read("binance", symbol)
        for release in (cache.unblock_exchange, cache.unmark_opening_position):
            for bot_id, error in BAD_BOTS[1:]:
                with pytest.raises(error):
                    await release("binance", "BTC/USDT", bot_id)
        for bot_id, error in BAD_BOTS:
            for bot_call in (cache.get_bot, cache.del_bot):
                with pytest.raises(error):
                    await bot_call(bot_id)
            with pytest.raises(error):
                await cache.update_bot(bot_id, {"a": 1})
        for data in (None, [("a", 1)], "status", 5):
            with pytest.raises(TypeError):
                await cache.update_bot(1, data)
        with pytest.raises(TypeError):
            await cache.update_bot(1, {1: "int key"})
        with pytest.raises(TypeError):
            await cache.update_bot(1, {"x": object()})
        assert await cache.get_blocks() == []
        assert await cache.get_bots() == {}
        assert await cache.get_keys() == []


async def test_unreachable_redis_raises_instead_of_false(standalone: Settings) -> None:
    down = msgspec.structs.replace(
        standalone, port=free_port(), retry_attempts=0, socket_connect_timeout=1.0
    )
    async with BotCache(settings=down) as cache:
        with pytest.raises(CacheConnectionError):
            await cache.block_exchange("binance", "BTC/USDT", 1)
        with pytest.raises(CacheConnectionError):
            await cache.is_blocked("binance", "BTC/USDT")


# -- bot status ---------------------------------------------------------------------------
async def test_update_bot_stores_a_stamped_copy(settings: Settings) -> None:
    async with BotCache() as cache:
        assert await cache.get_bot("b1") is None
        assert await cache.get_bots() == {}
        data = {"status": "running", "pnl": 1.25, "symbols": ["BTC/USDT"], "nested": {"a": 1}}
        original = copy.deepcopy(data)
        before = datetime.now(UTC)
        assert await cache.update_bot("b1", data) is True
        assert data == original  # the caller's dict is untouched
        stored = await cache.get_bot("b1")
        assert stored is not None
        assert {k: stored[k] for k in data} == data
        assert stored["updated_at"].tzinfo is not None
        assert stored["updated_at"].utcoffset().total_seconds() == 0
        assert stored["updated_at"] >= before.replace(microsecond=0)
        assert stored["timestamp"] == pytest.approx(stored["updated_at"].timestamp())
        # an update replaces the status
        assert await cache.update_bot("b1", {"status": "stopped"})
        again = await cache.get_bot("b1")
        assert again is not None
        assert again["status"] == "stopped" and "pnl" not in again
        assert again["updated_at"] >= stored["updated_at"]


async def test_update_bot_accepts_models(settings: Settings) -> None:
    async with BotCache() as cache:
        assert await cache.update_bot(3, Bot(bot_id=3, name="grid", dry_run=False))
        stored = await cache.get_bot(3)
        assert stored is not None
        assert (stored["bot_id"], stored["name"], stored["dry_run"]) == (3, "grid", False)


async def test_get_bots_and_del_bot(settings: Settings) -> None:
    async with BotCache() as cache:
        for bot_id in (1, "grid:2", "a*b"):
            assert await cache.update_bot(bot_id, {"id": str(bot_id)})
        bots = await cache.get_bots()
        assert sorted(bots) == ["1", "a*b", "grid:2"]
        assert all(bots[k]["id"] == k for k in bots)
        assert await cache.del_bot("grid:2") is True
        assert await cache.del_bot("grid:2") is False
        assert await cache.get_bot("grid:2") is None
        assert sorted(await cache.get_bots()) == ["1", "a*b"]
        assert await cache.get_bot(1) == (await cache.get_bots())["1"]
