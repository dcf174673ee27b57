"""OrdersCache against a real server (standalone and cluster): queue, claims, dead
letters, order store, status store, bad input, docstring examples."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

import fullon_cache
from fullon_cache.config import Settings, reload_settings
from fullon_cache.connection import ConnectionPool
from fullon_cache.models import Order
from fullon_cache.orders_cache import (
    ORDER_STATUSES,
    ClaimedOrder,
    DeadLetter,
    OrderQueueFullError,
    OrdersCache,
)

EX = "binance"


def tuned(settings: Settings, **changes: Any) -> OrdersCache:
    """A cache on the test's server with some settings changed."""
    return OrdersCache(settings=msgspec.structs.replace(settings, **changes))


class OrmLike:
    """Stands in for a fullon_orm model: anything with to_dict()."""

    def __init__(self, **data: Any) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


async def wait_for(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll until ``check`` holds (bounded by pytest's timeout, never asserted on time)."""
    while True:
        if await check():
            return
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------------- queue


async def test_push_pop_is_fifo_for_every_accepted_form(settings: Settings) -> None:
    cache = OrdersCache()
    assert await cache.pop_open_order(EX) is None
    assert await cache.get_queue_length(EX) == 0
    assert await cache.push_open_order(EX, Order(order_id=1, symbol="BTC/USDT", price=1.5))
    assert await cache.push_open_order(EX, {"order_id": 2, "side": "buy", "unknown": 1})
    assert await cache.push_open_order(EX, OrmLike(order_id=3, volume=0.25))
    assert await cache.push_open_order(EX, "LOCAL_001")  # the integration guide's form
    assert await cache.push_open_order(EX, 5)
    assert await cache.get_queue_length(EX) == 5
    popped = [await cache.pop_open_order(EX) for _ in range(5)]
    assert [o.order_id for o in popped if o] == [1, 2, 3, "LOCAL_001", 5]
    assert popped[0] == Order(order_id=1, symbol="BTC/USDT", price=1.5)
    assert popped[1] is not None and popped[1].side == "buy"
    assert popped[2] is not None and popped[2].volume == 0.25
    assert await cache.pop_open_order(EX) is None
    assert await cache.get_queue_length(EX) == 0


async def test_queues_are_per_exchange_and_any_identifier_works(settings: Settings) -> None:
    cache = OrdersCache()
    odd = "BTC/USDT:USDT*?[x]{y}"
    await cache.push_open_order(odd, Order(order_id="a"))
    await cache.push_open_order(7, Order(order_id="b"))  # ex_id as int
    assert await cache.get_queue_length(EX) == 0
    assert await cache.pop_open_order(EX) is None
    assert (await cache.get_queue_stats(odd))["queued"] == 1
    assert (await cache.pop_open_order("7")) == Order(order_id="b")
    assert (await cache.pop_open_order(odd)) == Order(order_id="a")


async def test_push_normalizes_status_without_touching_the_callers_order(
    settings: Settings,
) -> None:
    cache = OrdersCache()
    mine = Order(order_id=1, status="  OPEN ")
    await cache.push_open_order(EX, mine)
    assert mine.status == "  OPEN "
    popped = await cache.pop_open_order(EX)
    assert popped is not None and popped.status == "open"


async def test_prices_and_times_survive_the_queue_exactly(settings: Settings) -> None:
    cache = OrdersCache()
    when = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    order = Order(order_id=1, price=50123.123456789012, volume=1e-12, timestamp=when)
    await cache.push_open_order(EX, order)
    claim = await cache.claim_order(EX, "c")
    assert claim is not None
    await cache.fail_order(EX, claim, "retry")  # re-queued by Lua: bytes untouched
    again = await cache.pop_open_order(EX)
    assert again == order
    assert again is not None and again.price == 50123.123456789012


async def test_blocking_pop_waits_longer_than_the_socket_timeout(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT", "0.3")
    await ConnectionPool.close_loop()
    assert reload_settings().socket_timeout == 0.3
    cache = OrdersCache()
    producer = OrdersCache()

    async def push_late() -> None:
        await asyncio.sleep(0.9)  # three socket timeouts
        await producer.push_open_order(EX, Order(order_id="late"))

    pusher = asyncio.create_task(push_late())
    got = await cache.pop_open_order(EX, timeout=10)
    await pusher
    assert got == Order(order_id="late")
    # nothing arrives: the wait ends with None, also past the socket timeout
    assert await cache.pop_open_order(EX, timeout=0.6) is None
    assert await cache.get_queue_stats(EX) == {"queued": 0, "processing": 0, "dead": 0}


async def test_blocking_claim_waits_longer_than_the_socket_timeout(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT", "0.3")
    await ConnectionPool.close_loop()
    reload_settings()
    cache = OrdersCache()

    async def push_late() -> None:
        await asyncio.sleep(0.9)
        await OrdersCache().push_open_order(EX, Order(order_id="late"))

    pusher = asyncio.create_task(push_late())
    claim = await cache.claim_order(EX, "executor", timeout=10)
    await pusher
    assert claim is not None
    assert claim.order == Order(order_id="late")
    assert claim.consumer == "executor" and claim.delivery == 1 and claim.failures == 0
    assert await cache.get_queue_stats(EX) == {"queued": 0, "processing": 1, "dead": 0}
    assert await cache.ack_order(EX, claim)
    assert await cache.get_queue_stats(EX) == {"queued": 0, "processing": 0, "dead": 0}


async def test_pop_and_claim_share_one_queue(settings: Settings) -> None:
    cache = OrdersCache()
    for i in range(6):
        await cache.push_open_order(EX, Order(order_id=i))
    seen: list[Any] = []
    claims: list[ClaimedOrder] = []
    for i in range(6):
        if i % 2:
            popped = await cache.pop_open_order(EX)
            assert popped is not None
            seen.append(popped.order_id)
        else:
            claim = await cache.claim_order(EX, f"c{i}", timeout=0.5)
            assert claim is not None
            claims.append(claim)
            seen.append(claim.order.order_id)
    assert seen == list(range(6))  # FIFO, each order handed out once
    assert await cache.pop_open_order(EX) is None
    assert await cache.claim_order(EX, "late") is None
    assert await cache.get_queue_stats(EX) == {"queued": 0, "processing": 3, "dead": 0}
    assert [await cache.ack_order(EX, c) for c in claims] == [True] * 3
    assert await cache.get_queue_stats(EX) == {"queued": 0, "processing": 0, "dead": 0}


async def test_ack_is_accepted_once(settings: Settings) -> None:
    cache = OrdersCache()
    await cache.push_open_order(EX, Order(order_id=1))
    claim = await cache.claim_order(EX, "c")
    assert claim is not None
    assert claim.id == claim.receipt.split(b":")[0].decode()
    assert len(claim.id) == 32
    assert claim.deadline > 0
    assert await cache.ack_order(EX, claim) is True
    assert await cache.ack_order(EX, claim) is False
    assert await cache.fail_order(EX, claim, "late") is False
    assert await cache.extend_claim(EX, claim) is None
    assert await cache.get_queue_stats(EX) == {"queued": 0, "processing": 0, "dead": 0}


async def test_unacknowledged_claim_goes_to_another_executor(settings: Settings) -> None:
    cache = tuned(settings, order_visibility_timeout=0.2)
    await cache.push_open_order(EX, Order(order_id="A"))
    await cache.push_open_order(EX, Order(order_id="B"))
    first = await cache.claim_order(EX, "dies")
    assert first is not None and first.order.order_id == "A"
    await asyncio.sleep(0.4)  # past the visibility timeout
    second = await cache.claim_order(EX, "survivor")
    assert second is not None
    # the expired order comes back first, before B that was never delivered
    assert second.order.order_id == "A"
    assert (second.delivery, second.failures, second.id) == (2, 0, first.id)
    assert await cache.ack_order(EX, first) is False  # handed over: the old claim is void
    assert await cache.extend_claim(EX, first) is None
    assert await cache.ack_order(EX, second) is True
    third = await cache.claim_order(EX, "survivor")
    assert third is not None and third.order.order_id == "B" and third.delivery == 1
    assert await cache.ack_order(EX, third)


async def test_waiting_claim_recovers_a_dead_executors_order(settings: Settings) -> None:
    cache = tuned(settings, order_visibility_timeout=0.2)
    await cache.push_open_order(EX, Order(order_id="A"))
    lost = await cache.claim_order(EX, "dies")
    assert lost is not None
    # nothing new is pushed: the waiting claim finds A by recovering between slices
    claim = await cache.claim_order(EX, "survivor", timeout=30)
    assert claim is not None and claim.order.order_id == "A" and claim.delivery == 2
    assert await cache.ack_order(EX, claim)


async def test_expired_claims_come_back_oldest_first(settings: Settings) -> None:
    cache = tuned(settings, order_visibility_timeout=0.2)
    for name in "ABCD":
        await cache.push_open_order(EX, Order(order_id=name))
    for _ in range(3):
        assert await cache.claim_order(EX, "dies") is not None
    await asyncio.sleep(0.4)
    assert await cache.recover_stale_orders(EX) == 3
    assert await cache.recover_stale_orders(EX) == 0
    order = [(await cache.pop_open_order(EX)) for _ in range(4)]
    assert [o.order_id for o in order if o] == ["A", "B", "C", "D"]


async def test_extend_claim_renews_the_deadline(settings: Settings) -> None:
    cache = OrdersCache()
    await cache.push_open_order(EX, Order(order_id=1))
    claim = await cache.claim_order(EX, "slow")
    assert claim is not None
    renewed = await cache.extend_claim(EX, claim)
    assert renewed is not None
    assert renewed.deadline >= claim.deadline
    assert renewed.receipt == claim.receipt and renewed.consumer == "slow"
    assert await cache.ack_order(EX, renewed)


async def test_order_whose_mover_died_mid_move_is_recovered(settings: Settings) -> None:
    """A popper killed between BLMOVE and its next step leaves the entry in the
    processing list with no claim; it must come back, not vanish."""
    cache = tuned(settings, order_visibility_timeout=0.2)
    await cache.push_open_order(EX, Order(order_id="orphan"))
    queue, processing = cache.keys.order_queue(EX), cache.keys.order_processing(EX)
    assert await cache.redis.lmove(queue, processing, "RIGHT", "LEFT") is not None
    assert await cache.get_queue_stats(EX) == {"queued": 0, "processing": 1, "dead": 0}
    assert await cache.recover_stale_orders(EX) == 0  # first sight: its clock starts
    await asyncio.sleep(0.4)
    assert await cache.recover_stale_orders(EX) == 1
    popped = await cache.pop_open_order(EX)
    assert popped == Order(order_id="orphan")


async def test_fail_order_requeues_first_then_dead_letters(settings: Settings) -> None:
    cache = tuned(settings, order_max_deliveries=3)
    await cache.push_open_order(EX, Order(order_id="bad"))
    await cache.push_open_order(EX, Order(order_id="good"))
    for attempt in (1, 2):
        claim = await cache.claim_order(EX, "c")
        assert claim is not None and claim.order.order_id == "bad"
        assert (claim.delivery, claim.failures) == (attempt, attempt - 1)
        assert await cache.fail_order(EX, claim, f"error {attempt}") is True
    claim = await cache.claim_order(EX, "c")
    assert claim is not None and claim.delivery == 3
    assert await cache.fail_order(EX, claim, "error 3: no more") is True  # third delivery
    assert await cache.get_queue_stats(EX) == {"queued": 1, "processing": 0, "dead": 1}
    [letter] = await cache.get_dead_letters(EX)
    assert isinstance(letter, DeadLetter)
    assert (letter.order.order_id, letter.deliveries, letter.failures) == ("bad", 3, 3)
    assert letter.error == "error 3: no more"
    assert letter.id == claim.id
    good = await cache.claim_order(EX, "c")
    assert good is not None and good.order.order_id == "good"
    assert await cache.fail_order(EX, good, "insufficient funds", retry=False)
    assert [d.order.order_id for d in await cache.get_dead_letters(EX)] == ["bad", "good"]
    assert (await cache.get_dead_letters(EX))[1].failures == 1


async def test_redelivery_limit_dead_letters_and_replay(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tuned(settings, order_visibility_timeout=0.2, order_max_deliveries=2)
    await cache.push_open_order(EX, Order(order_id="X", price=2.5))
    for delivery in (1, 2):
        claim = await cache.claim_order(EX, "dies")
        assert claim is not None and claim.delivery == delivery
        await asyncio.sleep(0.4)
    with caplog.at_level(logging.ERROR, logger="fullon.cache.orders"):
        assert await cache.recover_stale_orders(EX) == 1
    assert "moved to dead letters" in caplog.text
    assert await cache.claim_order(EX, "c") is None
    [letter] = await cache.get_dead_letters(EX)
    assert (letter.deliveries, letter.failures) == (2, 0)
    assert letter.error == "visibility timeout expired"
    assert letter.order == Order(order_id="X", price=2.5)
    await cache.push_open_order(EX, Order(order_id="Y"))
    assert await cache.replay_dead_letters(EX) == 1
    assert await cache.get_dead_letters(EX) == []
    first = await cache.claim_order(EX, "c")
    assert first is not None and first.order.order_id == "Y"  # replayed ones queue behind
    replayed = await cache.claim_order(EX, "c")
    assert replayed is not None and replayed.order.order_id == "X"
    assert (replayed.delivery, replayed.failures, replayed.id) == (1, 0, letter.id)
    assert await cache.ack_order(EX, replayed) and await cache.ack_order(EX, first)


async def test_stale_ack_cannot_hit_a_replayed_delivery(settings: Settings) -> None:
    cache = tuned(settings, order_visibility_timeout=0.2, order_max_deliveries=1)
    await cache.push_open_order(EX, Order(order_id="X"))
    stale = await cache.claim_order(EX, "slow")
    assert stale is not None
    await asyncio.sleep(0.4)
    assert await cache.recover_stale_orders(EX) == 1  # one delivery allowed: dead
    assert await cache.replay_dead_letters(EX) == 1
    fresh = await cache.claim_order(EX, "other")
    assert fresh is not None and fresh.delivery == stale.delivery == 1
    assert fresh.receipt != stale.receipt
    assert await cache.ack_order(EX, stale) is False
    assert await cache.ack_order(EX, fresh) is True


async def test_queue_bound_rejects_pushes_and_never_drops(settings: Settings) -> None:
    cache = tuned(settings, max_list_length=2)
    await cache.push_open_order(EX, Order(order_id=1))
    await cache.push_open_order(EX, Order(order_id=2))
    with pytest.raises(OrderQueueFullError, match="full"):
        await cache.push_open_order(EX, Order(order_id=3))
    claim = await cache.claim_order(EX, "c")
    assert claim is not None
    with pytest.raises(OrderQueueFullError):  # claimed orders still count
        await cache.push_open_order(EX, Order(order_id=3))
    assert await cache.ack_order(EX, claim)
    assert await cache.push_open_order(EX, Order(order_id=3))
    assert [(await cache.pop_open_order(EX)).order_id for _ in range(2)] == [2, 3]  # type: ignore[union-attr]


async def test_replay_respects_limit_and_queue_bound(settings: Settings) -> None:
    cache = tuned(settings, max_list_length=3)
    for i in range(3):
        await cache.push_open_order(EX, Order(order_id=i))
    for _ in range(3):
        claim = await cache.claim_order(EX, "c")
        assert claim is not None
        await cache.fail_order(EX, claim, "halted", retry=False)
    assert len(await cache.get_dead_letters(EX)) == 3
    assert await cache.replay_dead_letters(EX, limit=0) == 0
    assert await cache.replay_dead_letters(EX, limit=1) == 1
    await cache.push_open_order(EX, Order(order_id="new"))
    await cache.push_open_order(EX, Order(order_id="new2"))
    assert await cache.replay_dead_letters(EX) == 0  # queue full: the rest stay dead
    assert [d.order.order_id for d in await cache.get_dead_letters(EX)] == [1, 2]
    assert await cache.pop_open_order(EX) == Order(order_id=0)
    assert await cache.replay_dead_letters(EX, limit=5) == 1
    assert await cache.delete_dead_letters(EX) == 1
    assert await cache.delete_dead_letters(EX) == 0
    assert await cache.get_queue_length(EX) == 3


async def test_dead_letter_list_is_bounded_and_drops_are_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tuned(settings, max_list_length=2)
    for i in range(3):
        await cache.push_open_order(EX, Order(order_id=i))
        claim = await cache.claim_order(EX, "c")
        assert claim is not None
        with caplog.at_level(logging.ERROR, logger="fullon.cache.orders"):
            await cache.fail_order(EX, claim, "halted", retry=False)
    assert "dropped the 1 oldest" in caplog.text
    assert "order 2 failed (halted), moved to dead letters" in caplog.text
    assert [d.order.order_id for d in await cache.get_dead_letters(EX)] == [1, 2]


async def test_recovery_into_a_full_dead_letter_list_logs_drops(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tuned(settings, max_list_length=1, order_max_deliveries=1, order_visibility_timeout=0.2)
    for i in range(2):
        await cache.push_open_order(EX, Order(order_id=i))
        assert await cache.claim_order(EX, "dies") is not None
        await asyncio.sleep(0.4)
        with caplog.at_level(logging.WARNING, logger="fullon.cache.orders"):
            assert await cache.recover_stale_orders(EX) == 1
    assert "dropped the 1 oldest" in caplog.text
    assert [d.order.order_id for d in await cache.get_dead_letters(EX)] == [1]


async def test_recovery_inside_pop_is_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tuned(settings, order_visibility_timeout=0.2)
    await cache.push_open_order(EX, Order(order_id=1))
    assert await cache.claim_order(EX, "dies") is not None
    await asyncio.sleep(0.4)
    with caplog.at_level(logging.WARNING, logger="fullon.cache.orders"):
        assert await cache.pop_open_order(EX) == Order(order_id=1)
    assert "handed out again" in caplog.text


# --------------------------------------------------------------------------- store


async def test_save_order_data_merges_both_forms(settings: Settings) -> None:
    cache = OrdersCache()
    order = Order(
        order_id=11,
        ex_order_id="ORD_001",
        symbol="BTC/USDT",
        side="buy",
        volume=0.1,
        price=50000.123456789,
        status="open",
    )
    assert await cache.save_order_data(EX, order) is True
    assert await cache.get_order(EX, "ORD_001") == order
    fill = {"status": "Filled", "final_volume": 0.1, "fill_price": 1.0, "price": None}
    assert await cache.save_order_data(EX, "ORD_001", fill) is True
    merged = await cache.get_order_status(EX, "ORD_001")
    assert merged == msgspec.structs.replace(order, status="filled", final_volume=0.1)
    assert await cache.get_order(EX, "ORD_001") == merged
    # model form without ex_order_id: stored under order_id
    assert await cache.save_order_data(EX, {"order_id": 12, "side": "sell"})
    stored = await cache.get_order(EX, 12)
    assert stored == Order(order_id=12, side="sell")
    # dict form: ex_order_id defaults to the id, unless the data has one
    await cache.save_order_data(EX, "B1", {"symbol": "ETH/USDT"})
    await cache.save_order_data(EX, "B2", OrmLike(ex_order_id="other", uid=3))
    assert (await cache.get_order(EX, "B1")) == Order(ex_order_id="B1", symbol="ETH/USDT")
    assert (await cache.get_order(EX, "B2")) == Order(ex_order_id="other", uid=3)
    await cache.save_order_data(EX, "B2", Order(side="buy"))
    assert (await cache.get_order(EX, "B2")) == Order(ex_order_id="other", uid=3, side="buy")


async def test_get_orders_lists_the_exchange_only(settings: Settings) -> None:
    cache = OrdersCache()
    assert await cache.get_orders(EX) == []
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    for i in range(5):
        await cache.save_order_data(EX, f"BATCH_ORD_{i}", {"volume": i, "timestamp": when})
    await cache.save_order_data("kraken", "K1", {"status": "open"})
    orders = await cache.get_orders(EX)
    assert sorted(o.ex_order_id or "" for o in orders) == [f"BATCH_ORD_{i}" for i in range(5)]
    assert all(o.timestamp == when for o in orders)
    assert [o.ex_order_id for o in await cache.get_orders("kraken")] == ["K1"]
    assert await cache.delete_order(EX, "BATCH_ORD_0") is True
    assert await cache.delete_order(EX, "BATCH_ORD_0") is False
    assert await cache.get_order(EX, "BATCH_ORD_0") is None
    assert len(await cache.get_orders(EX)) == 4


async def test_index_forgets_orders_that_vanished(settings: Settings) -> None:
    """An order key evicted by Redis (maxmemory) or deleted by hand is skipped by reads
    (which never write) and leaves the index on prune_orders."""
    cache = OrdersCache()
    await cache.save_order_data(EX, "A", {"status": "open"})
    await cache.save_order_data(EX, "B", {"status": "open"})
    await cache.redis.delete(cache.keys.order(EX, "A"))
    assert [o.ex_order_id for o in await cache.get_orders(EX)] == ["B"]
    assert await cache.redis.zcard(cache.keys.order_index(EX)) == 2
    assert await cache.prune_orders(EX) == 1
    assert await cache.redis.zrange(cache.keys.order_index(EX), 0, -1) == [b"B"]
    assert await cache.prune_orders(EX) == 0
    assert await cache.prune_orders("empty-exchange") == 0


async def test_cancelled_orders_expire_one_by_one(settings: Settings) -> None:
    cache = tuned(settings, ttl_order=1)
    await cache.save_order_data(EX, "keep", {"status": "open", "symbol": "BTC/USDT"})
    await cache.save_order_data(EX, "gone", {"status": "open"})
    await cache.save_order_data(EX, "gone2", Order(ex_order_id="gone2", status="cancelled"))
    await cache.save_order_data(EX, "gone", {"status": "canceled"})
    await cache.save_order_data(EX, "revived", {"status": "canceled"})
    await cache.save_order_data(EX, "revived", {"status": "open"})  # un-cancelled: lives on
    await cache.save_order_data(EX, "gone", {"price": 3.0})  # keeps its expiry

    async def expired() -> bool:
        return await cache.get_order(EX, "gone") is None and (
            await cache.get_order(EX, "gone2") is None
        )

    await wait_for(expired)
    live = {o.ex_order_id: o for o in await cache.get_orders(EX)}
    assert sorted(live) == ["keep", "revived"]
    assert live["keep"].symbol == "BTC/USDT"
    assert await cache.prune_orders(EX) == 2  # the expired ids, without a write first
    assert await cache.redis.zcard(cache.keys.order_index(EX)) == 2
    assert await cache.redis.ttl(cache.keys.order(EX, "keep")) == -1


async def test_order_status_store(settings: Settings) -> None:
    cache = tuned(settings, ttl_order=1)
    assert await cache.get_order_status("ORD_1") is None
    assert await cache.set_order_status("ORD_1", "Partially_Filled")
    assert await cache.get_order_status("ORD_1") == "partially_filled"
    assert await cache.get_order_status(order_id="ORD_1") == "partially_filled"
    assert await cache.set_order_status(42, "open")
    assert await cache.get_order_status(42) == "open"
    await cache.save_order_data(EX, "ORD_1", {"side": "buy"})
    by_kw = await cache.get_order_status(exchange=EX, order_id="ORD_1")
    assert by_kw is not None and by_kw == await cache.get_order_status(EX, order_id="ORD_1")
    assert await cache.delete_order_status("ORD_1") is True
    assert await cache.delete_order_status("ORD_1") is False
    assert await cache.get_order_status("ORD_1") is None
    for status in sorted(ORDER_STATUSES):
        await cache.set_order_status("each", status)
        assert await cache.get_order_status("each") == status
    await cache.set_order_status("c", "cancelled")
    await cache.set_order_status("o", "canceled")
    await cache.set_order_status("o", "open")  # a new status clears the expiry

    async def expired() -> bool:
        return await cache.get_order_status("c") is None

    await wait_for(expired)
    assert await cache.get_order_status("o") == "open"
    assert await cache.get_order_status(42) == "open"


# --------------------------------------------------------------------------- bad input


async def test_bad_input_is_rejected_before_any_write(settings: Settings) -> None:
    cache = OrdersCache()
    await cache.push_open_order(EX, Order(order_id=1))
    claim = await cache.claim_order(EX, "c")
    assert claim is not None
    before = await cache.get_keys()
    state = await cache.get_queue_stats(EX)
    bad: list[tuple[type[Exception], Awaitable[Any]]] = [
        (ValueError, cache.push_open_order("", Order(order_id=1))),
        (ValueError, cache.push_open_order("  ", Order(order_id=1))),
        (TypeError, cache.push_open_order(None, Order(order_id=1))),  # type: ignore[arg-type]
        (TypeError, cache.push_open_order(True, Order(order_id=1))),  # type: ignore[arg-type]
        (TypeError, cache.push_open_order(EX, True)),
        (TypeError, cache.push_open_order(EX, 1.5)),
        (TypeError, cache.push_open_order(EX, None)),
        (ValueError, cache.push_open_order(EX, "")),
        (ValueError, cache.push_open_order(EX, Order(order_id=1, status="exploded"))),
        (TypeError, cache.push_open_order(EX, Order(order_id=1, status=3))),  # type: ignore[arg-type]
        (TypeError, cache.push_open_order(EX, {"order_id": 1, "volume": "lots"})),
        (ValueError, cache.push_open_order(EX, {"order_id": 1, "price": math.nan})),
        (ValueError, cache.pop_open_order(EX, timeout=-1)),
        (ValueError, cache.pop_open_order(EX, timeout=math.inf)),
        (TypeError, cache.pop_open_order(EX, timeout="1")),  # type: ignore[arg-type]
        (ValueError, cache.pop_open_order("")),
        (TypeError, cache.get_queue_length(None)),  # type: ignore[arg-type]
        (ValueError, cache.get_queue_stats("")),
        (ValueError, cache.claim_order(EX, "")),
        (TypeError, cache.claim_order(EX, 5)),  # type: ignore[arg-type]
        (ValueError, cache.claim_order(EX, "c", timeout=-0.1)),
        (ValueError, cache.claim_order("", "c")),
        (TypeError, cache.ack_order(EX, "receipt")),  # type: ignore[arg-type]
        (ValueError, cache.ack_order("", claim)),
        (TypeError, cache.fail_order(EX, claim.receipt, "x")),  # type: ignore[arg-type]
        (TypeError, cache.fail_order(EX, claim, 500)),  # type: ignore[arg-type]
        (TypeError, cache.fail_order(EX, claim, "x", retry=1)),  # type: ignore[arg-type]
        (TypeError, cache.extend_claim(EX, None)),  # type: ignore[arg-type]
        (ValueError, cache.recover_stale_orders("")),
        (ValueError, cache.get_dead_letters("")),
        (TypeError, cache.replay_dead_letters(EX, limit=1.0)),  # type: ignore[arg-type]
        (TypeError, cache.replay_dead_letters(EX, limit=True)),
        (ValueError, cache.replay_dead_letters(EX, limit=-1)),
        (ValueError, cache.replay_dead_letters("")),
        (ValueError, cache.delete_dead_letters("")),
        (ValueError, cache.set_order_status("", "open")),
        (ValueError, cache.set_order_status("X", "bogus")),
        (ValueError, cache.set_order_status("X", " ")),
        (TypeError, cache.set_order_status("X", None)),  # type: ignore[arg-type]
        (TypeError, cache.set_order_status(1.5, "open")),  # type: ignore[arg-type]
        (ValueError, cache.delete_order_status("")),
        (ValueError, cache.get_order_status("")),
        (TypeError, cache.get_order_status()),  # type: ignore[call-overload]
        (TypeError, cache.get_order_status(EX, "a", order_id="b")),  # type: ignore[call-overload]
        (ValueError, cache.get_order_status(EX, "")),
        (TypeError, cache.save_order_data(EX, "ORD")),
        (TypeError, cache.save_order_data(EX, 7)),
        (TypeError, cache.save_order_data(EX, True)),
        (ValueError, cache.save_order_data(EX, Order(side="buy"))),
        (ValueError, cache.save_order_data(EX, {"ex_order_id": " "})),
        (ValueError, cache.save_order_data("", Order(order_id=1))),
        (ValueError, cache.save_order_data(EX, "", {"side": "buy"})),
        (TypeError, cache.save_order_data(EX, None, {"side": "buy"})),
        (TypeError, cache.save_order_data(EX, "ORD", "filled")),
        (TypeError, cache.save_order_data(EX, "ORD", 5)),
        (TypeError, cache.save_order_data(EX, "ORD", [("side", "buy")])),
        (ValueError, cache.save_order_data(EX, "ORD", {"status": "done"})),
        (TypeError, cache.save_order_data(EX, "ORD", {"price": "cheap"})),
        (ValueError, cache.save_order_data(EX, "ORD", {"price": math.inf})),
        (ValueError, cache.get_order(EX, "")),
        (TypeError, cache.get_order(EX, None)),  # type: ignore[arg-type]
        (ValueError, cache.get_orders("")),
        (ValueError, cache.delete_order(EX, "")),
    ]
    for error, call in bad:
        with pytest.raises(error):
            await call
    assert await cache.get_keys() == before
    assert await cache.get_queue_stats(EX) == state
    assert await cache.ack_order(EX, claim)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("order_visibility_timeout", 0.0),
        ("order_visibility_timeout", math.nan),
        ("order_max_deliveries", 0),
        ("max_list_length", 0),
        ("ttl_order", 0),
    ],
)
def test_settings_that_cannot_work_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match="must be"):
        OrdersCache(settings=Settings(**{field: value}))


async def test_context_manager_and_exports(settings: Settings) -> None:
    async with OrdersCache() as cache:
        assert await cache.push_open_order(EX, Order(order_id=1))
        assert cache.logger.name == "fullon.cache.orders"
    assert cache.closed
    assert issubclass(OrderQueueFullError, fullon_cache.CacheError)


# --------------------------------------------------------------------------- examples


def _examples() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    targets: list[tuple[str, Any]] = [
        (name, obj)
        for cls in (OrdersCache, ClaimedOrder, DeadLetter, OrderQueueFullError)
        for name, obj in [(cls.__name__, cls), *vars(cls).items()]
    ]
    for name, obj in targets:
        func = obj.fget if isinstance(obj, property) else obj
        doc = inspect.getdoc(func) if not isinstance(func, str) else None
        if doc and ">>>" in doc and not name.startswith("_"):
            found.append((name, doc))
    return found


EXAMPLES = _examples()


async def test_finished_orders_expire_after_their_own_ttl(settings: Settings) -> None:
    cache = tuned(settings, ttl_order=100, ttl_order_done=50)
    await cache.save_order_data(EX, "F", {"status": "open"})
    await cache.save_order_data(EX, "F", {"status": "filled"})
    await cache.save_order_data(EX, "C", {"status": "cancelled"})
    await cache.save_order_data(EX, "O", {"status": "open"})
    assert 0 < await cache.redis.ttl(cache.keys.order(EX, "F")) <= 50
    assert 50 < await cache.redis.ttl(cache.keys.order(EX, "C")) <= 100
    assert await cache.redis.ttl(cache.keys.order(EX, "O")) == -1
    await cache.set_order_status("F", "rejected")
    assert 0 < await cache.redis.ttl(cache.keys.order_status("F")) <= 50
    forever = tuned(settings, ttl_order_done=0)
    await forever.save_order_data(EX, "K", {"status": "filled"})
    await forever.set_order_status("K", "filled")
    assert await cache.redis.ttl(cache.keys.order(EX, "K")) == -1
    assert await cache.redis.ttl(cache.keys.order_status("K")) == -1
