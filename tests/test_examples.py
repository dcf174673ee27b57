"""Every example runs against a real server (standalone and cluster), in-process and as
``python -m fullon_cache.examples.<name>``, and ``run_all`` reports each one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

import fullon_cache
from fullon_cache import examples
from fullon_cache.base_cache import BaseCache
from fullon_cache.config import Settings
from fullon_cache.embedded import free_port
from fullon_cache.examples import (
    basic_usage,
    bot_coordination,
    performance_test,
    pubsub_example,
    queue_patterns,
    run_all,
    trading_flow,
)

SRC = str(Path(fullon_cache.__file__).resolve().parent.parent)


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "FULLON_CACHE_"))}
    env.update(
        PYTHONPATH=SRC,
        DOTENV_FILE=os.devnull,
        FULLON_CACHE_NAMESPACE=settings.namespace,
        REDIS_HOST=settings.host,
        REDIS_PORT=str(settings.port),
    )
    return env


async def _assert_clean(settings: Settings, name: str) -> None:
    """An example leaves nothing behind in its namespace, and never writes outside it."""
    own = examples.example_settings(name, settings)
    assert await BaseCache(settings=own).get_keys("*") == []
    assert await BaseCache(settings=settings).get_keys("*") == []


async def test_basic_usage(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    result = await basic_usage.main(settings)
    assert result == {
        "price": 50_000.0,
        "best_price": 50_010.0,
        "spread": 2.0,
        "bars": 3,
        "error": "feed disconnected",
    }
    assert "binance BTC/USDT: 50000.0" in capsys.readouterr().out
    await _assert_clean(settings, "basic_usage")


async def test_trading_flow(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    result = await trading_flow.main(settings)
    assert result == {
        "price": 50_000.0,
        "order_status": "filled",
        "trades": 1,
        "position_volume": 0.1,
        "lock_holder": None,
        "process_status": "stopped",
    }
    out = capsys.readouterr().out
    assert "8. lock released" in out
    await _assert_clean(settings, "trading_flow")


async def test_pubsub_example(settings: Settings) -> None:
    result = await pubsub_example.main(settings)
    assert result == {
        "callback": pubsub_example.PRICES,
        "stream": [("BTC/USDT", 50_050.0), ("BTC/USDT", 50_100.0)],
    }
    await _assert_clean(settings, "pubsub_example")


async def test_queue_patterns(settings: Settings) -> None:
    result = await queue_patterns.main(settings)
    assert result == {
        "fifo": [1, 2, 3],
        "dead": ["insufficient funds"],
        "replayed": 1,
        "drained": ["T1", "T2"],
        "second_drain": [],
        "errors": ["websocket closed", "RuntimeError: order rejected"],
    }
    await _assert_clean(settings, "queue_patterns")


async def test_bot_coordination(settings: Settings) -> None:
    result = await bot_coordination.main(settings)
    assert sorted(result["winners"]) == [1, 2]
    assert result["second_round"] is True
    first, second = result["tokens"]
    assert second > first
    assert result["opening"] is True
    assert result["bots"] == ["1", "2"]
    await _assert_clean(settings, "bot_coordination")


async def test_performance_test(settings: Settings) -> None:
    result = await performance_test.main(settings, operations=20)
    assert result["checks"] == {"tickers": 20, "batch": 20, "last_price": 20.0, "queue": 0}
    assert set(result["rates"]) == {
        "set_ticker (sequential)",
        "get_price (concurrent)",
        "set_tickers (one batch)",
        "push + pop order",
    }
    assert all(rate > 0 for rate in result["rates"].values())
    await _assert_clean(settings, "performance_test")


async def test_performance_test_bounds_concurrency(settings: Settings) -> None:
    """More operations than REDIS_MAX_CONNECTIONS work on both backends (on a cluster an
    exhausted per-node pool refuses connections, so the example bounds concurrency)."""
    small = msgspec.structs.replace(settings, max_connections=4)
    result = await performance_test.main(small, operations=40)
    assert result["checks"]["tickers"] == 40


async def test_run_all_reports_each(
    standalone: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_all.run_all(standalone) == dict.fromkeys(examples.EXAMPLES, True)
    assert "--- trading_flow: ok" in capsys.readouterr().out


async def test_run_all_reports_failures(capsys: pytest.CaptureFixture[str]) -> None:
    down = Settings(port=free_port(), retry_attempts=0, socket_connect_timeout=0.5)
    assert await run_all.run_all(down) == dict.fromkeys(examples.EXAMPLES, False)
    out = capsys.readouterr().out
    assert "--- basic_usage: FAILED" in out
    assert "CacheConnectionError" in out


@pytest.mark.parametrize("name", examples.EXAMPLES)
def test_runs_as_module(standalone: Settings, name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"fullon_cache.examples.{name}"],
        env=_env(standalone),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_run_all_module_exit_codes(standalone: Settings) -> None:
    command = [sys.executable, "-m", "fullon_cache.examples.run_all"]
    ok = subprocess.run(
        command, env=_env(standalone), capture_output=True, text=True, timeout=300, check=False
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{len(examples.EXAMPLES)}/{len(examples.EXAMPLES)} examples ok" in ok.stdout
    env = _env(standalone)
    env.update(REDIS_PORT=str(free_port()), FULLON_CACHE_RETRY_ATTEMPTS="0")
    failed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1
    assert "0/6 examples ok; failed: basic_usage, trading_flow" in failed.stdout


def test_sources_and_settings() -> None:
    sources = examples.get_all_examples()
    assert list(sources) == list(examples.EXAMPLES)
    assert sources["trading_flow"] == examples.TRADING_FLOW
    assert examples.BASIC_USAGE.startswith('"""Basic usage')
    for constant in ("PUBSUB_EXAMPLE", "QUEUE_PATTERNS", "BOT_COORDINATION", "PERFORMANCE_TEST"):
        assert "async def main" in getattr(examples, constant)
    base = Settings(namespace="prod")
    derived = examples.example_settings("queue_patterns", base)
    assert derived == msgspec.structs.replace(base, namespace="prod.queue_patterns")
