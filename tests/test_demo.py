"""``python -m fullon_cache.demo`` (what ``make demo`` runs): against a server that
answers (standalone and cluster), against none (it starts its own embedded server), and
when no server can be started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

import fullon_cache
from fullon_cache import demo
from fullon_cache.base_cache import BaseCache
from fullon_cache.config import Settings
from fullon_cache.embedded import EmbeddedCluster, EmbeddedServer, free_port
from fullon_cache.examples import EXAMPLES

SRC = str(Path(fullon_cache.__file__).resolve().parent.parent)


def _demo(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "FULLON_CACHE_"))}
    base.update(PYTHONPATH=SRC, DOTENV_FILE=os.devnull, COLUMNS="100", **env)
    return subprocess.run(
        [sys.executable, "-m", "fullon_cache.demo"],
        env=base,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _assert_all_ok(output: str) -> None:
    for name in EXAMPLES:
        assert any(name in line and "ok" in line for line in output.splitlines()), name
    assert "demo passed: every example ran ok" in output
    assert "8. lock released" in output


async def test_with_a_reachable_server(redis_server: EmbeddedServer) -> None:
    done = _demo(REDIS_HOST=redis_server.host, REDIS_PORT=str(redis_server.port))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Redis answers at {redis_server.host}:{redis_server.port}/0" in done.stdout
    assert "namespace 'fullon_demo'" in done.stdout
    _assert_all_ok(done.stdout)
    settings = Settings(host=redis_server.host, port=redis_server.port, namespace="fullon_demo")
    assert await BaseCache(settings=settings).get_keys("*") == []


def test_with_a_reachable_cluster(redis_cluster: EmbeddedCluster) -> None:
    done = _demo(REDIS_CLUSTER_MODE="true", REDIS_CLUSTER_NODES=redis_cluster.nodes_env)
    assert done.returncode == 0, done.stdout + done.stderr
    host, port = redis_cluster.startup_nodes[0]
    assert f"Redis answers at cluster {host}:{port}" in done.stdout
    _assert_all_ok(done.stdout)


def test_starts_an_embedded_server_when_none_answers() -> None:
    port = free_port()
    done = _demo(REDIS_HOST="127.0.0.1", REDIS_PORT=str(port), FULLON_CACHE_NAMESPACE="mine")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"No Redis answers at 127.0.0.1:{port}: starting an embedded server" in done.stdout
    assert "Embedded server 127.0.0.1:" in done.stdout
    assert "Embedded server stopped" in done.stdout
    _assert_all_ok(done.stdout)


def test_fails_when_no_server_can_be_started() -> None:
    done = _demo(REDIS_PORT=str(free_port()), FULLON_CACHE_SERVER_BIN="/bin/false")
    assert done.returncode == 1
    assert "cannot start an embedded server" in done.stdout


def test_redis_answers() -> None:
    with EmbeddedServer() as server:
        assert demo.redis_answers(Settings(host=server.host, port=server.port))
    assert not demo.redis_answers(Settings(port=free_port()))


async def test_failed_examples_fail_the_demo() -> None:
    """Against a server that is gone, every example fails and each is reported."""
    down = Settings(port=free_port(), retry_attempts=0, socket_connect_timeout=0.5)
    console = Console(record=True, width=100)
    assert await demo.run_everything(down, console) is False
    text = console.export_text()
    assert "FAILED" in text
    assert "CacheConnectionError" in text
    assert "demo FAILED" in text


def test_run_exit_code() -> None:
    down = Settings(port=free_port(), retry_attempts=0, socket_connect_timeout=0.5)
    assert demo._run(down, Console(record=True)) == 1
