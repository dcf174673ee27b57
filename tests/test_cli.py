"""The ``fullon-cache`` command, each subcommand through typer's CliRunner against the
test server (and the server command as a real process stopped with Ctrl-C)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import fullon_cache
from fullon_cache import cli
from fullon_cache.base_cache import BaseCache
from fullon_cache.cli import app
from fullon_cache.config import Settings, reload_settings
from fullon_cache.connection import ConnectionPool
from fullon_cache.embedded import _command, free_port
from fullon_cache.models import Order, Tick
from fullon_cache.orders_cache import OrdersCache
from fullon_cache.process_cache import ProcessCache, ProcessStatus, ProcessType
from fullon_cache.tick_cache import TickCache

SRC = str(Path(fullon_cache.__file__).resolve().parent.parent)
runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


async def _close(*caches: BaseCache) -> None:
    for cache in caches:
        await cache.close()
    await ConnectionPool.close_loop()


def _setup(settings: Settings) -> None:
    async def work() -> None:
        processes = ProcessCache(settings=settings)
        await processes.register_process(
            ProcessType.TICK, "binance", message="streaming", status=ProcessStatus.RUNNING
        )
        orders = OrdersCache(settings=settings)
        await orders.push_open_order("binance", Order(order_id=1, symbol="BTC/USDT"))
        await orders.push_open_order("kraken:spot", Order(order_id=2, symbol="ETH/USD"))
        ticks = TickCache(settings=settings)
        await ticks.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=50_000.0))
        await processes.redis.set(f"{settings.namespace}:custom", b"1")
        await _close(processes, orders, ticks)

    asyncio.run(work())


def test_help_lists_commands() -> None:
    code, output = _invoke("--help")
    assert code == 0
    for command in ("status", "tickers", "queue", "bench", "server"):
        assert command in output


def test_status(standalone: Settings) -> None:
    _setup(standalone)
    code, output = _invoke("status")
    assert code == 0, output
    assert "health: healthy" in output
    assert "streaming" in output
    lines = output.splitlines()
    assert any("binance" in line and "│ 1 " in line for line in lines)
    assert any("kraken:spot" in line for line in lines)
    assert any("order_queue" in line and " 2 " in line for line in lines)
    assert any("other" in line and " 1 " in line for line in lines)


def test_status_degraded(standalone: Settings) -> None:
    async def work() -> None:
        processes = ProcessCache()
        await processes.register_process(ProcessType.BOT, "bot-1", status="error")
        await _close(processes)

    asyncio.run(work())
    code, output = _invoke("status")
    assert code == 0
    assert "health: degraded" in output


async def test_status_redis_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOTENV_FILE", os.devnull)
    monkeypatch.setenv("REDIS_HOST", "127.0.0.1")
    monkeypatch.setenv("REDIS_PORT", str(free_port()))
    monkeypatch.setenv("REDIS_CLUSTER_MODE", "false")
    monkeypatch.setenv("FULLON_CACHE_RETRY_ATTEMPTS", "0")
    reload_settings()
    console = Console(record=True, width=120)
    assert await cli._status(console) == 1
    assert "down: Redis unreachable" in console.export_text()
    await ConnectionPool.close_loop()


def test_tickers_stops_after_count(standalone: Settings) -> None:
    async def work() -> None:
        ticks = TickCache()
        for symbol, price in (("BTC/USDT", 50_000.0), ("ETH/USDT", 3_000.0)):
            await ticks.set_ticker(Tick(symbol=symbol, exchange="binance", price=price))
        await _close(ticks)

    asyncio.run(work())
    code, output = _invoke("tickers", "binance", "--count", "2")
    assert code == 0, output
    assert "BTC/USDT" in output and "50000" in output
    assert "ETH/USDT" in output and "3000" in output
    assert "2 updates" in output
    code, output = _invoke("tickers", "binance", "-s", "ETH/USDT", "--count", "1")
    assert code == 0
    assert "ETH/USDT" in output and "BTC/USDT" not in output


def test_tickers_stops_after_seconds(standalone: Settings) -> None:
    code, output = _invoke("tickers", "nowhere", "--seconds", "0.2")
    assert code == 0, output
    assert "0 updates" in output


def test_queue_inspect_replay_purge(standalone: Settings) -> None:
    async def work() -> None:
        orders = OrdersCache()
        for order_id in (1, 2):
            await orders.push_open_order("binance", Order(order_id=order_id, side="buy"))
            claim = await orders.claim_order("binance", "executor")
            assert claim is not None
            await orders.fail_order("binance", claim, f"rejected {order_id}", retry=False)
        await _close(orders)

    asyncio.run(work())
    code, output = _invoke("queue", "binance")
    assert code == 0, output
    assert "binance: 0 queued, 0 processing, 2 dead" in output
    assert "rejected 1" in output and "rejected 2" in output
    code, output = _invoke("queue", "binance", "--replay", "--limit", "1")
    assert code == 0
    assert "replayed 1 dead letters" in output
    assert "binance: 1 queued, 0 processing, 1 dead" in output
    code, output = _invoke("queue", "binance", "--purge")
    assert "discarded 1 dead letters" in output
    assert "binance: 1 queued, 0 processing, 0 dead" in output


def test_bench_passes_its_options_through(tmp_path: Path) -> None:
    results = tmp_path / "bench.json"
    code, output = _invoke(
        "bench",
        "--ops",
        "3",
        "--rounds",
        "1",
        "--ticks",
        "3",
        "--only",
        "get_price",
        "--json",
        str(results),
    )
    assert code == 0, output
    assert "get_price" in results.read_text()
    code, output = _invoke("bench", "--only", "no_such_case")
    assert code == 2


def test_server_for_some_seconds() -> None:
    port = free_port()
    code, output = _invoke("server", "--port", str(port), "--seconds", "0.1")
    assert code == 0, output
    assert f"export REDIS_PORT={port}" in output
    assert "export REDIS_HOST=127.0.0.1" in output
    assert "server stopped" in output


def test_server_stops_on_ctrl_c() -> None:
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "fullon_cache.cli", "server"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        port = None
        for line in process.stdout:
            if line.startswith("export REDIS_PORT="):
                port = int(line.split("=", 1)[1])
                break
        assert port is not None
        assert _command("127.0.0.1", port, "PING") == "PONG"
        process.send_signal(signal.SIGINT)
        rest = process.stdout.read()
        assert process.wait(timeout=30) == 0
    assert "server stopped" in rest
    with pytest.raises(ConnectionRefusedError):
        _command("127.0.0.1", port, "PING")


def test_console_script_entry_point() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from fullon_cache.cli import main; sys.argv[1:] = ['--help']; main()",
        ],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "tickers" in done.stdout
