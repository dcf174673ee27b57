"""Security: least-privilege ACL users (``fullon_cache.acl``), TLS with a private CA,
and passwords that never reach a log line or an error message."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis import exceptions as redis_errors

from fullon_cache.acl import ROLES, acl_rules
from fullon_cache.base_cache import BaseCache
from fullon_cache.bot_cache import BotCache
from fullon_cache.config import Settings, reload_settings
from fullon_cache.connection import Connection, ConnectionPool
from fullon_cache.embedded import EmbeddedServer, make_test_certificates
from fullon_cache.exceptions import CacheConnectionError, CachePermissionError
from fullon_cache.models import Order, Tick, Trade
from fullon_cache.orders_cache import OrdersCache
from fullon_cache.process_cache import ProcessCache, ProcessType
from fullon_cache.tick_cache import TickCache
from fullon_cache.trades_cache import TradesCache

from .conftest import fast_settings

pytestmark = pytest.mark.reliability

ADMIN_PASSWORD = "adm1n-" + uuid.uuid4().hex
SERVICE_PASSWORD = "svc-" + uuid.uuid4().hex
DASHBOARD_PASSWORD = "dash-" + uuid.uuid4().hex


# --------------------------------------------------------------------------- ACL rules


def test_acl_rules_shape_and_validation() -> None:
    service = acl_rules("fullon", "service")
    dashboard = acl_rules("fullon", "dashboard")
    for rules in (service, dashboard):
        assert rules[:4] == ["reset", "on", "~fullon:*", "&fullon:*"]
        assert "-@dangerous" in rules
        assert not any(rule.startswith((">", "nopass", "allkeys", "~*", "&*")) for rule in rules)
    assert "+@all" in service and "+@all" not in dashboard
    assert "+publish" not in dashboard
    assert set(ROLES) == {"service", "dashboard"}
    with pytest.raises(ValueError, match="unknown role"):
        acl_rules("fullon", "admin")
    with pytest.raises(ValueError, match="namespace"):
        acl_rules("ful*lon", "service")  # a glob would widen the key pattern
    with pytest.raises(TypeError):
        acl_rules("fullon", None)  # type: ignore[arg-type]


@pytest.fixture
def acl_server() -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(password=ADMIN_PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def acl_users(acl_server: EmbeddedServer) -> AsyncIterator[tuple[Settings, Settings]]:
    """(service settings, dashboard settings) for one namespace on ``acl_server``."""
    admin = Connection(fast_settings(acl_server.host, acl_server.port, password=ADMIN_PASSWORD))
    namespace = f"acl{uuid.uuid4().hex[:8]}"
    for user, role, password in (
        ("svc", "service", SERVICE_PASSWORD),
        ("dash", "dashboard", DASHBOARD_PASSWORD),
    ):
        await admin.client.execute_command(
            "ACL", "SETUSER", user, *acl_rules(namespace, role), f">{password}"
        )
    await admin.close()
    base = {"namespace": namespace}
    service = fast_settings(
        acl_server.host, acl_server.port, username="svc", password=SERVICE_PASSWORD, **base
    )
    dashboard = fast_settings(
        acl_server.host, acl_server.port, username="dash", password=DASHBOARD_PASSWORD, **base
    )
    yield service, dashboard
    await ConnectionPool.close_loop()


async def test_service_user_runs_the_normal_operations(
    acl_users: tuple[Settings, Settings],
) -> None:
    service, _dashboard = acl_users
    ticks = TickCache(settings=service)
    updates = ticks.stream_ticker_updates("binance", "BTC/USDT")
    first = asyncio.ensure_future(anext(updates))
    await asyncio.sleep(0.2)
    assert await ticks.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=5.0))
    assert (await asyncio.wait_for(first, 5)).price == 5.0
    await updates.aclose()
    assert await ticks.get_price("BTC/USDT") == 5.0

    orders = OrdersCache(settings=service)
    assert await orders.push_open_order("binance", Order(order_id=1))
    claim = await orders.claim_order("binance", "executor", timeout=0.2)
    assert claim is not None and await orders.ack_order("binance", claim)
    assert await orders.pop_open_order("binance", timeout=0.1) is None  # blocking pop
    trades = TradesCache(settings=service)
    assert await trades.push_trade("binance", Trade(ex_trade_id="t1", symbol="BTC/USDT"))
    assert [t.ex_trade_id for t in await trades.get_trades("BTC/USDT", "binance")] == ["t1"]
    bots = BotCache(settings=service)
    assert await bots.block_exchange(1, "BTC/USDT", 7)
    assert await bots.is_blocked(1, "BTC/USDT") == "7"
    processes = ProcessCache(settings=service)
    await processes.register_process(ProcessType.TICK, "ticker")
    assert (await processes.get_system_health())["total_processes"] == 1  # INFO allowed
    base = BaseCache(settings=service)
    assert await base.push_global_error("boom", "svc")
    assert (await base.pop_global_error(timeout=0.5))["error"] == "boom"
    await base.prepare_cache()  # SCAN + UNLINK of its own namespace
    # ... and nothing outside its namespace, and nothing dangerous
    other = TickCache(
        settings=fast_settings(
            service.host, service.port, username="svc", password=SERVICE_PASSWORD, namespace="other"
        )
    )
    with pytest.raises(CachePermissionError):
        await other.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=1.0))
    with pytest.raises(redis_errors.NoPermissionError):
        await base.redis.flushall()
    with pytest.raises(redis_errors.NoPermissionError):
        await base.redis.keys("*")


async def test_dashboard_user_reads_and_cannot_write(acl_users: tuple[Settings, Settings]) -> None:
    service, dashboard = acl_users
    assert await TickCache(settings=service).set_ticker(
        Tick(symbol="ETH/USDT", exchange="kraken", price=3.0)
    )
    assert await BotCache(settings=service).update_bot(9, {"status": "running"})
    ticks = TickCache(settings=dashboard)
    assert await ticks.get_price("ETH/USDT", "kraken") == 3.0
    assert [t.symbol for t in await ticks.get_tickers("kraken")] == ["ETH/USDT"]
    bots = BotCache(settings=dashboard)
    assert (await bots.get_bot(9))["status"] == "running"
    assert await bots.is_blocked(1, "ETH/USDT") is None
    # reads never write: the dashboard lists orders
    assert await OrdersCache(settings=service).save_order_data("kraken", "A", {"status": "open"})
    assert [o.ex_order_id for o in await OrdersCache(settings=dashboard).get_orders("kraken")] == [
        "A"
    ]
    # the dashboard follows live ticks (subscribe is allowed, publish is not)
    updates = ticks.stream_ticker_updates("kraken", "ETH/USDT")
    first = asyncio.ensure_future(anext(updates))
    await asyncio.sleep(0.2)
    assert await TickCache(settings=service).set_ticker(
        Tick(symbol="ETH/USDT", exchange="kraken", price=4.0)
    )
    assert (await asyncio.wait_for(first, 5)).price == 4.0
    await updates.aclose()
    writes = [
        ticks.set_ticker(Tick(symbol="ETH/USDT", exchange="kraken", price=1.0)),
        bots.update_bot(9, {"status": "hacked"}),
        bots.block_exchange(1, "ETH/USDT", 66),
        OrdersCache(settings=dashboard).push_open_order("kraken", Order(order_id=1)),
        TradesCache(settings=dashboard).push_trade("kraken", Trade(symbol="ETH/USDT")),
        BaseCache(settings=dashboard).push_global_error("x"),
        BaseCache(settings=dashboard).prepare_cache(),
        OrdersCache(settings=dashboard).prune_orders("kraken"),
    ]
    for write in writes:
        with pytest.raises(CachePermissionError):
            await write
    assert await TickCache(settings=service).get_price("ETH/USDT", "kraken") == 4.0
    assert (await BotCache(settings=service).get_bot(9))["status"] == "running"


# --------------------------------------------------------------------------- passwords


def _leaks(secret: str, records: list[logging.LogRecord], error: BaseException) -> list[str]:
    found = [r.getMessage() for r in records if secret in r.getMessage()]
    chain: BaseException | None = error
    while chain is not None:
        if secret in str(chain) or secret in repr(chain):
            found.append(repr(chain))
        chain = chain.__cause__ or chain.__context__
    return found


async def test_passwords_never_logged_on_failed_auth_or_connection(
    acl_server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, redis-py's included
    wrong = "wr0ng-" + uuid.uuid4().hex
    bad_auth = fast_settings(acl_server.host, acl_server.port, password=wrong)
    with pytest.raises(CacheConnectionError) as info:
        await TickCache(settings=bad_auth).get_price("BTC/USDT", "binance")
    assert _leaks(wrong, caplog.records, info.value) == []
    bad_user = fast_settings(acl_server.host, acl_server.port, username="nobody", password=wrong)
    with pytest.raises(CacheConnectionError) as info:
        await BaseCache(settings=bad_user).push_global_error("x")
    assert _leaks(wrong, caplog.records, info.value) == []
    port = acl_server.port
    acl_server.stop()  # unreachable, with a password configured
    down = fast_settings("127.0.0.1", port, password=ADMIN_PASSWORD)
    with pytest.raises(CacheConnectionError) as info:
        await ProcessCache(settings=down).get_active_processes()
    assert await BaseCache(settings=down).test() is False
    assert _leaks(ADMIN_PASSWORD, caplog.records, info.value) == []
    assert ADMIN_PASSWORD not in str(down.redacted())
    assert any("failed" in r.getMessage() for r in caplog.records)  # errors were logged


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedServer, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    files = make_test_certificates(folder)
    server = EmbeddedServer(tls=files)
    server.start()
    try:
        yield server, Path(files.ca_cert)
    finally:
        server.stop()


async def test_tls_with_the_private_ca_from_the_environment(
    tls_server: tuple[EmbeddedServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca = tls_server
    for name, value in {
        "REDIS_HOST": server.host,
        "REDIS_PORT": str(server.port),
        "REDIS_SSL": "true",
        "REDIS_SSL_CA_CERTS": str(ca),
        "REDIS_CLUSTER_MODE": "false",
        "FULLON_CACHE_NAMESPACE": f"tls{uuid.uuid4().hex[:8]}",
    }.items():
        monkeypatch.setenv(name, value)
    await ConnectionPool.reset_async()
    try:
        async with TickCache() as ticks:
            assert ticks.settings.ssl
            assert await ticks.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=2.5))
            assert await ticks.get_price("BTC/USDT", "binance") == 2.5
            async with OrdersCache() as orders:
                assert await orders.push_open_order("binance", Order(order_id=3))
                got = await orders.pop_open_order("binance", timeout=1)
                assert got is not None and got.order_id == 3
            await ticks.prepare_cache()
    finally:
        await ConnectionPool.close_loop()
        monkeypatch.undo()
        reload_settings()


async def test_tls_refuses_an_untrusted_server_and_plaintext(
    tls_server: tuple[EmbeddedServer, Path], tmp_path: Path
) -> None:
    server, _ca = tls_server
    other_ca = make_test_certificates(tmp_path).ca_cert  # a CA that did not sign the server
    untrusted = fast_settings(server.host, server.port, ssl=True, ssl_ca_certs=other_ca)
    with pytest.raises(CacheConnectionError, match="certificate"):
        await TickCache(settings=untrusted).get_price("BTC/USDT", "binance")
    plaintext = fast_settings(server.host, server.port)  # a plain client on the TLS port
    with pytest.raises(CacheConnectionError):
        await TickCache(settings=plaintext).get_price("BTC/USDT", "binance")
